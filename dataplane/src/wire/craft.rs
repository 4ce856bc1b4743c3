//! Frame crafting with `pnet` packet builders: the canonical frames of tests, benchmarks and the
//! teaching scenarios. Frames are padded to the 60-byte Ethernet minimum (64 on the wire with
//! the FCS), as a NIC would send them.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperation, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherType as PnetEtherType, EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{MutableNeighborSolicitPacket, NdpOption};
use pnet_packet::icmpv6::{Icmpv6Code, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::{self, MutableIpv4Packet};
use pnet_packet::ipv6::MutableIpv6Packet;
use pnet_packet::udp::{self, MutableUdpPacket};

use super::Mac;
use crate::fwd::{TagOp, Vid};

/// The shortest frame a NIC sends, without FCS (`ETH_ZLEN`).
pub const ETH_ZLEN: usize = 60;

/// The ethertype of the made-up frames of tests, benchmarks and the teaching scenarios: 0x88b5,
/// IEEE 802's Local Experimental Ethertype 1, which no protocol stack answers or generates, so
/// such a frame never mixes with a host's own traffic.
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88b5;

/// Station `n`'s MAC in tests, examples and the teaching scenarios: 02:00:00:00:00:nn, a
/// locally administered unicast address.
pub const fn station(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn pnet_mac(m: Mac) -> pnet_base::MacAddr {
    let b = m.0;
    pnet_base::MacAddr::new(b[0], b[1], b[2], b[3], b[4], b[5])
}

/// An Ethernet II frame carrying `payload`, padded to [`ETH_ZLEN`].
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let len = (14 + payload.len()).max(ETH_ZLEN);
    let mut buf = vec![0u8; len];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut buf) {
        eth.set_destination(pnet_mac(dst));
        eth.set_source(pnet_mac(src));
        eth.set_ethertype(PnetEtherType(ethertype));
        eth.payload_mut()[..payload.len()].copy_from_slice(payload);
    }
    buf
}

/// `frame` with an 802.1Q tag for `vid` inserted after the MACs.
pub fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    TagOp::Push(Vid::new(vid)).apply(frame, &mut out);
    out
}

/// An ARP packet (Ethernet/IPv4).
fn arp(op: ArpOperation, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> [u8; 28] {
    let mut buf = [0u8; 28];
    if let Some(mut a) = MutableArpPacket::new(&mut buf) {
        a.set_hardware_type(ArpHardwareTypes::Ethernet);
        a.set_protocol_type(EtherTypes::Ipv4);
        a.set_hw_addr_len(6);
        a.set_proto_addr_len(4);
        a.set_operation(op);
        a.set_sender_hw_addr(pnet_mac(sha));
        a.set_sender_proto_addr(spa);
        a.set_target_hw_addr(pnet_mac(tha));
        a.set_target_proto_addr(tpa);
    }
    buf
}

/// A broadcast ARP request from `src` (`src_ip`) asking for `target`.
pub fn arp_request(src: Mac, src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let a = arp(ArpOperations::Request, src, src_ip, Mac::ZERO, target);
    ethernet(Mac::BROADCAST, src, 0x0806, &a)
}

/// A unicast ARP reply from `src` (`src_ip`) to `dst` (`dst_ip`).
pub fn arp_reply(src: Mac, src_ip: Ipv4Addr, dst: Mac, dst_ip: Ipv4Addr) -> Vec<u8> {
    let a = arp(ArpOperations::Reply, src, src_ip, dst, dst_ip);
    ethernet(dst, src, 0x0806, &a)
}

/// Writes a UDP datagram from port 40000 to port 9 carrying `data` into `buf` (exactly
/// `8 + data.len()` bytes), with the checksum `sum` computes over the pseudo-header.
fn udp_into(buf: &mut [u8], data: &[u8], sum: impl Fn(&udp::UdpPacket<'_>) -> u16) {
    if let Some(mut u) = MutableUdpPacket::new(buf) {
        u.set_source(40000);
        u.set_destination(9);
        u.set_length((8 + data.len()) as u16);
        u.payload_mut().copy_from_slice(data);
        let checksum = sum(&u.to_immutable());
        u.set_checksum(checksum);
    }
}

/// An IPv4/UDP datagram (checksums filled in) from port 40000 to port 9.
pub fn ipv4_udp(dst: Mac, src: Mac, src_ip: Ipv4Addr, dst_ip: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let udp_len = 8 + data.len();
    let mut buf = vec![0u8; 20 + udp_len];
    if let Some(mut ip) = MutableIpv4Packet::new(&mut buf) {
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_total_length((20 + udp_len) as u16);
        ip.set_ttl(64);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Udp);
        ip.set_source(src_ip);
        ip.set_destination(dst_ip);
        udp_into(ip.payload_mut(), data, |u| {
            udp::ipv4_checksum(u, &src_ip, &dst_ip)
        });
        let sum = ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(sum);
    }
    ethernet(dst, src, 0x0800, &buf)
}

/// An IPv6/UDP datagram (checksum filled in) from port 40000 to port 9.
pub fn ipv6_udp(dst: Mac, src: Mac, src_ip: Ipv6Addr, dst_ip: Ipv6Addr, data: &[u8]) -> Vec<u8> {
    let udp_len = 8 + data.len();
    let mut buf = vec![0u8; 40 + udp_len];
    if let Some(mut ip) = MutableIpv6Packet::new(&mut buf) {
        ip.set_version(6);
        ip.set_payload_length(udp_len as u16);
        ip.set_next_header(IpNextHeaderProtocols::Udp);
        ip.set_hop_limit(64);
        ip.set_source(src_ip);
        ip.set_destination(dst_ip);
        udp_into(ip.payload_mut(), data, |u| {
            udp::ipv6_checksum(u, &src_ip, &dst_ip)
        });
    }
    ethernet(dst, src, 0x86dd, &buf)
}

/// The solicited-node multicast MAC of `ip` (33:33:ff:xx:xx:xx).
pub fn solicited_node_mac(ip: Ipv6Addr) -> Mac {
    let o = ip.octets();
    Mac([0x33, 0x33, 0xff, o[13], o[14], o[15]])
}

/// A duplicate-address-detection neighbour solicitation for `target`, sent from `::`.
pub fn ns_dad(src: Mac, target: Ipv6Addr) -> Vec<u8> {
    let o = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let mut buf = vec![0u8; 40 + 24];
    if let Some(mut ip) = MutableIpv6Packet::new(&mut buf) {
        ip.set_version(6);
        ip.set_payload_length(24);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(Ipv6Addr::UNSPECIFIED);
        ip.set_destination(group);
        if let Some(mut ns) = MutableNeighborSolicitPacket::new(ip.payload_mut()) {
            ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
            ns.set_icmpv6_code(Icmpv6Code(0));
            ns.set_target_addr(target);
            ns.set_options(&[] as &[NdpOption]);
        }
    }
    ethernet(solicited_node_mac(target), src, 0x86dd, &buf)
}

/// An IEEE 802.3x PAUSE frame from `src`.
pub fn pause(src: Mac) -> Vec<u8> {
    let dst = Mac([0x01, 0x80, 0xc2, 0, 0, 0x01]);
    ethernet(dst, src, 0x8808, &[0x00, 0x01, 0xff, 0xff])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EtherType, FrameInfo, Side, l3_addr};
    use std::net::IpAddr;

    const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);

    #[test]
    fn crafted_frames_parse_back() {
        let ip_a = Ipv4Addr::new(10, 0, 0, 1);
        let ip_b = Ipv4Addr::new(10, 0, 0, 2);
        let f = arp_request(A, ip_a, ip_b);
        assert_eq!(f.len(), 60);
        let i = FrameInfo::parse(&f, 1518).unwrap();
        assert_eq!(
            (i.dst(), i.src(), i.ethertype),
            (Mac::BROADCAST, A, EtherType::ARP)
        );
        assert_eq!(l3_addr(&f, &i, Side::Destination), Some(IpAddr::V4(ip_b)));
        assert_eq!(l3_addr(&f, &i, Side::Source), Some(IpAddr::V4(ip_a)));

        let f = ipv4_udp(B, A, ip_a, ip_b, b"hi");
        let i = FrameInfo::parse(&f, 1518).unwrap();
        assert_eq!(l3_addr(&f, &i, Side::Destination), Some(IpAddr::V4(ip_b)));

        let v6a: Ipv6Addr = "fd00::a".parse().unwrap();
        let v6b: Ipv6Addr = "fd00::b".parse().unwrap();
        let f = ipv6_udp(B, A, v6a, v6b, b"hi");
        let i = FrameInfo::parse(&f, 1518).unwrap();
        assert_eq!(l3_addr(&f, &i, Side::Destination), Some(IpAddr::V6(v6b)));

        let f = ns_dad(A, v6b);
        let i = FrameInfo::parse(&f, 1518).unwrap();
        assert_eq!(i.dst(), solicited_node_mac(v6b));
        // DAD is keyed by the target whichever side is asked.
        assert_eq!(l3_addr(&f, &i, Side::Source), Some(IpAddr::V6(v6b)));

        let t = tagged(&arp_request(A, ip_a, ip_b), 10);
        let i = FrameInfo::parse(&t, 1518).unwrap();
        assert_eq!(i.ctag().map(|t| t.vid()), Some(10));
        assert_eq!(l3_addr(&t, &i, Side::Destination), Some(IpAddr::V4(ip_b)));
    }
}
