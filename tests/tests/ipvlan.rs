//! docs/spec.md §3, ipvlan L2: shared MAC, demux by IP, bridge/private/vepa. This kernel has no
//! ipvlan, so these check the rules read in `ipvlan_core.c` with crafted frames.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use l2sw::fwd::{
    ConfigError, DropReason, IpvlanConfig, IpvlanFlag, MacSet, PortConfig, RxFilter, SwitchConfig,
    Why,
};
use l2sw::wire::craft::station;
use l2sw::wire::{Mac, craft};
use l2sw_tests::lab::{Lab, group};

const M: u8 = 100; // the shared MAC (the uplink's)
const E: u8 = 200; // a station beyond the uplink

fn v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}
fn v6(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(n))
}

/// Slaves "s1" (10.0.0.1, fd00::1) and "s2" (10.0.0.2, fd00::2) on uplink "up".
fn ipvl(flag: IpvlanFlag) -> Lab {
    let mut lab = Lab::new(SwitchConfig::ipvlan(IpvlanConfig { flag }));
    lab.add(PortConfig::uplink("up").with_mac(station(M)));
    for n in [1, 2] {
        let addrs = vec![IpAddr::V4(v4(n)), IpAddr::V6(v6(n))];
        lab.add(PortConfig::ipvlan(format!("s{n}"), addrs).with_mac(station(M)));
    }
    lab
}

fn udp4(dst: Mac, src: Mac, sip: u8, dip: u8) -> Vec<u8> {
    craft::ipv4_udp(dst, src, v4(sip), v4(dip), b"x")
}

#[test]
fn spec3_slaves_share_the_uplink_mac_and_a_mac_of_their_own_is_refused() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let own = PortConfig::ipvlan("s3", vec![IpAddr::V4(v4(3))]).with_mac(station(3));
    assert!(matches!(
        lab.sw.add_port(own),
        Err(ConfigError::IpvlanMac { .. })
    ));
}

#[test]
fn spec3_tx_to_shared_mac_with_a_slave_ip_is_local() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let g = lab.send("s1", &udp4(station(M), station(M), 1, 2));
    assert_eq!((g.to(), g.why), (vec!["s2"], Why::IpLocal));
    let g = lab.send(
        "s1",
        &craft::ipv6_udp(station(M), station(M), v6(1), v6(2), b"x"),
    );
    assert_eq!(g.to(), ["s2"]);
    // ARP is demultiplexed by its target address.
    let g = lab.send(
        "s1",
        &craft::arp_reply(station(M), v4(1), station(M), v4(2)),
    );
    assert_eq!(g.to(), ["s2"]);
}

#[test]
fn spec3_tx_private_drops_slave_to_slave() {
    let mut lab = ipvl(IpvlanFlag::Private);
    let g = lab.send("s1", &udp4(station(M), station(M), 1, 2));
    assert_eq!(
        (g.drop, g.why),
        (Some(DropReason::PrivateMode), Why::IpPrivate)
    );
    // Private blocks only slave to slave: the master still gets the rest.
    let g = lab.send("s1", &udp4(station(M), station(M), 1, 99));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::IpToMaster));
}

#[test]
fn spec3_tx_to_shared_mac_without_a_slave_ip_goes_to_the_master_stack() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let g = lab.send("s1", &udp4(station(M), station(M), 1, 99));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::IpToMaster));
}

#[test]
fn spec3_tx_vepa_sends_every_unicast_out_the_uplink() {
    let mut lab = ipvl(IpvlanFlag::Vepa);
    let g = lab.send("s1", &udp4(station(M), station(M), 1, 2));
    assert_eq!((g.to(), g.why), (vec!["up"], Why::IpToUplink));
}

#[test]
fn spec3_tx_other_unicast_goes_out_the_uplink() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    // Destination MAC is not the shared MAC: out, even if the IP is a slave's.
    let g = lab.send("s1", &udp4(station(E), station(M), 1, 2));
    assert_eq!((g.to(), g.why), (vec!["up"], Why::IpToUplink));
}

#[test]
fn spec3_tx_broadcast_and_multicast_to_other_slaves_and_out_whatever_the_flag() {
    for flag in [IpvlanFlag::Bridge, IpvlanFlag::Private, IpvlanFlag::Vepa] {
        let mut lab = ipvl(flag);
        let g = lab.send("s1", &craft::arp_request(station(M), v4(1), v4(2)));
        assert_eq!(
            (g.to(), g.why),
            (vec!["s2", "up"], Why::IpMulticastTx),
            "{flag:?}"
        );
        // Unjoined multicast: only out.
        let g = lab.send("s1", &udp4(group(9), station(M), 1, 2));
        assert_eq!(g.to(), ["up"], "{flag:?}");
    }
}

#[test]
fn spec3_rx_unicast_is_demultiplexed_by_ip_without_looking_at_the_mac() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let g = lab.send("up", &udp4(station(M), station(E), 200, 2));
    assert_eq!((g.to(), g.why), (vec!["s2"], Why::IpDemux));
    let g = lab.send(
        "up",
        &craft::ipv6_udp(station(M), station(E), v6(200), v6(1), b"x"),
    );
    assert_eq!(g.to(), ["s1"]);
    let g = lab.send(
        "up",
        &craft::arp_reply(station(E), v4(200), station(M), v4(1)),
    );
    assert_eq!(g.to(), ["s1"]);
}

#[test]
fn spec3_rx_dad_neighbour_solicitation_is_keyed_by_its_target() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    // A DAD NS is multicast: every slave whose filter takes the solicited-node group gets it.
    let s2 = lab.id("s2");
    let f = RxFilter::Unicast {
        own: [station(M)].into_iter().collect(),
        groups: [craft::solicited_node_mac(v6(2))].into_iter().collect(),
        allmulti: false,
    };
    lab.sw.set_filter(s2, f).unwrap();
    assert_eq!(
        lab.send("up", &craft::ns_dad(station(E), v6(2))).to(),
        ["host", "s2"]
    );
}

#[test]
fn spec3_rx_unicast_miss_goes_to_the_uplink_stack() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let g = lab.send("up", &udp4(station(M), station(E), 200, 99));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::IpMiss));
    // Not IP or ARP: no L3 header, a miss.
    let g = lab.send("up", &l2sw_tests::lab::uc(station(M), station(E)));
    assert_eq!(g.to(), ["host"]);
}

#[test]
fn spec3_rx_multicast_to_all_slaves_unless_it_is_our_own_reflected() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let g = lab.send("up", &craft::arp_request(station(E), v4(200), v4(1)));
    assert_eq!(
        (g.to(), g.why),
        (vec!["host", "s1", "s2"], Why::IpMulticastRx)
    );
    // s1's own broadcast coming back (shared source MAC and a slave's source IP): master only.
    let g = lab.send("up", &craft::arp_request(station(M), v4(1), v4(200)));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::IpOwnMulticast));
    // PAUSE is never distributed (a filtering uplink would not even pass it up; make it
    // promiscuous, as a veth is).
    let up = lab.id("up");
    lab.sw.set_filter(up, RxFilter::Promiscuous).unwrap();
    let g = lab.send("up", &craft::pause(station(E)));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::IpPause));
}

#[test]
fn spec3_private_and_vepa_together_are_refused() {
    assert_eq!(
        IpvlanFlag::from_bits(true, true),
        Err(ConfigError::IpvlanFlags)
    );
    assert_eq!(IpvlanFlag::from_bits(false, false), Ok(IpvlanFlag::Bridge));
    assert_eq!(IpvlanFlag::from_bits(true, false), Ok(IpvlanFlag::Private));
    assert_eq!(IpvlanFlag::from_bits(false, true), Ok(IpvlanFlag::Vepa));
}

#[test]
fn spec3_duplicate_ip_across_slaves_is_refused() {
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let dup = PortConfig::ipvlan("s3", vec![IpAddr::V4(v4(2))]);
    assert!(matches!(
        lab.sw.add_port(dup),
        Err(ConfigError::DuplicateIp { .. })
    ));
    assert_eq!(
        lab.send("up", &udp4(station(M), station(E), 200, 2)).to(),
        ["s2"]
    );
}

#[test]
#[ignore = "awaiting the ports-and-daemon issue: one uplink serves one switch; the daemon must \
            refuse an interface already used by a bridge or macvlan network (\"device busy\")"]
fn spec3_uplink_already_used_by_bridge_or_macvlan_is_device_busy() {
    unimplemented!("checked by the daemon when it attaches interfaces")
}

#[test]
#[ignore = "open question (docs/spec.md): ARP/ND between ipvlan L2 slaves and the uplink host \
            stack; awaiting a kernel comparison, which needs ipvlan (absent on this kernel)"]
fn spec3_open_question_arp_nd_between_slaves_and_the_uplink_host_stack() {
    // What l2sw does today, for the comparison to check: a slave's ARP request for the
    // master's IP goes to the other slaves and out the uplink (not to the master directly);
    // the master's reply to the shared MAC leaves by the uplink.
    let mut lab = ipvl(IpvlanFlag::Bridge);
    let g = lab.send("s1", &craft::arp_request(station(M), v4(1), v4(254)));
    assert_eq!(g.to(), ["s2", "up"]);
    unimplemented!("compare with the kernel's ipvlan")
}

#[test]
fn spec0_macset_groups_are_exact() {
    let s: MacSet = [group(1), group(2)].into_iter().collect();
    assert!(s.contains(group(2)) && !s.contains(group(3)));
}
