//! One-line, tcpdump-like descriptions of frames, for traces and demos:
//! `02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff vlan 10 ARP who-has 10.0.0.2 tell 10.0.0.1`.

use std::fmt;

use pnet_packet::arp::{ArpOperations, ArpPacket};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;

use super::{EtherType, FrameInfo, WireError};

/// A frame's description; `Display` writes it on one line.
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    frame: &'a [u8],
    info: Result<FrameInfo, WireError>,
}

impl<'a> Summary<'a> {
    /// Describes `frame` (any bytes; malformed frames say why).
    pub fn new(frame: &'a [u8]) -> Summary<'a> {
        Summary {
            frame,
            info: FrameInfo::parse(frame, usize::from(u16::MAX)),
        }
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = match &self.info {
            Ok(i) => i,
            Err(e) => return write!(f, "{e}"),
        };
        write!(f, "{} > {}", info.src(), info.dst())?;
        for t in [info.outer, info.inner].into_iter().flatten() {
            let kind = if t.tpid == super::TPID_8021AD {
                "s-vlan"
            } else {
                "vlan"
            };
            write!(f, " {kind} {}", t.vid())?;
        }
        let l3 = self
            .frame
            .get(usize::from(info.l3_offset)..)
            .unwrap_or_default();
        match info.ethertype {
            EtherType::ARP => match ArpPacket::new(l3) {
                Some(a) if a.get_operation() == ArpOperations::Request => write!(
                    f,
                    " ARP who-has {} tell {}",
                    a.get_target_proto_addr(),
                    a.get_sender_proto_addr()
                ),
                Some(a) if a.get_operation() == ArpOperations::Reply => write!(
                    f,
                    " ARP reply {} is-at {}",
                    a.get_sender_proto_addr(),
                    a.get_sender_hw_addr()
                ),
                _ => write!(f, " ARP"),
            },
            EtherType::IPV4 => match Ipv4Packet::new(l3) {
                Some(ip) => write!(
                    f,
                    " IPv4 {} > {} proto {}",
                    ip.get_source(),
                    ip.get_destination(),
                    ip.get_next_level_protocol().0
                ),
                None => write!(f, " IPv4 (truncated)"),
            },
            EtherType::IPV6 => match Ipv6Packet::new(l3) {
                Some(ip) => write!(
                    f,
                    " IPv6 {} > {} next {}",
                    ip.get_source(),
                    ip.get_destination(),
                    ip.get_next_header().0
                ),
                None => write!(f, " IPv6 (truncated)"),
            },
            EtherType::MAC_CONTROL => write!(f, " MAC control (PAUSE)"),
            other => write!(f, " ethertype {:#06x}", other.0),
        }?;
        write!(f, ", length {}", self.frame.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Mac, craft};

    #[test]
    fn describes_frames() {
        let a = Mac([2, 0, 0, 0, 0, 1]);
        let f = craft::tagged(
            &craft::arp_request(a, "10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()),
            10,
        );
        assert_eq!(
            Summary::new(&f).to_string(),
            "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff vlan 10 ARP who-has 10.0.0.2 tell 10.0.0.1, length 64"
        );
        assert!(Summary::new(&[0; 3]).to_string().contains("runt"));
    }
}
