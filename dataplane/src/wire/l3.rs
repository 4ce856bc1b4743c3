//! The L3 addresses ipvlan demultiplexes on (`ipvlan_get_L3_hdr`, `ipvlan_addr_lookup`), read
//! with `pnet` packet views. Only what the demux needs: IPv4 and IPv6 source/destination, the
//! ARP sender/target protocol address, and the target of a DAD neighbour solicitation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::Packet;
use pnet_packet::arp::{ArpHardwareTypes, ArpPacket};
use pnet_packet::ethernet::EtherTypes;
use pnet_packet::icmpv6::ndp::NeighborSolicitPacket;
use pnet_packet::icmpv6::{Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;

use super::{EtherType, FrameInfo};

/// Which address of a packet to read: ipvlan looks destinations up on delivery and sources up to
/// recognise its own frames coming back (`use_dest` in `ipvlan_addr_lookup`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// Source address (ARP sender).
    Source,
    /// Destination address (ARP target).
    Destination,
}

/// The L3 address ipvlan would use for `frame`, or `None` when `ipvlan_get_L3_hdr` finds no
/// usable header (not IP/ARP, bad version, short header, ARP not Ethernet/IPv4).
///
/// As in the kernel, a neighbour solicitation sent from `::` (duplicate address detection) is
/// keyed by its *target* address whichever side is asked for.
pub fn l3_addr(frame: &[u8], info: &FrameInfo, side: Side) -> Option<IpAddr> {
    let l3 = frame.get(usize::from(info.l3_offset)..)?;
    match info.ethertype {
        EtherType::ARP => {
            let arp = ArpPacket::new(l3)?;
            let ok = arp.get_hardware_type() == ArpHardwareTypes::Ethernet
                && arp.get_protocol_type() == EtherTypes::Ipv4
                && arp.get_hw_addr_len() == 6
                && arp.get_proto_addr_len() == 4;
            ok.then(|| {
                IpAddr::V4(match side {
                    Side::Source => arp.get_sender_proto_addr(),
                    Side::Destination => arp.get_target_proto_addr(),
                })
            })
        }
        EtherType::IPV4 => {
            let ip = Ipv4Packet::new(l3)?;
            let ihl = usize::from(ip.get_header_length());
            let total = usize::from(ip.get_total_length());
            let ok = ip.get_version() == 4 && ihl >= 5 && l3.len() >= ihl * 4 && total >= ihl * 4;
            let addr: Ipv4Addr = match side {
                Side::Source => ip.get_source(),
                Side::Destination => ip.get_destination(),
            };
            ok.then_some(IpAddr::V4(addr))
        }
        EtherType::IPV6 => {
            let ip = Ipv6Packet::new(l3)?;
            if ip.get_version() != 6 {
                return None;
            }
            if let Some(target) = dad_target(&ip) {
                return Some(IpAddr::V6(target));
            }
            let addr: Ipv6Addr = match side {
                Side::Source => ip.get_source(),
                Side::Destination => ip.get_destination(),
            };
            Some(IpAddr::V6(addr))
        }
        _ => None,
    }
}

/// The target of a neighbour solicitation sent from the unspecified address (DAD).
fn dad_target(ip: &Ipv6Packet<'_>) -> Option<Ipv6Addr> {
    if !ip.get_source().is_unspecified() || ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        return None;
    }
    let icmp = Icmpv6Packet::new(ip.payload())?;
    if icmp.get_icmpv6_type() != Icmpv6Types::NeighborSolicit {
        return None;
    }
    Some(NeighborSolicitPacket::new(ip.payload())?.get_target_addr())
}
