//! The engine on in-memory ports: frames read from `Port`s into a batch, decided by
//! `Switch::process`, written out per egress queue with each port's tag edit, without the
//! kernel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, PortId, Switch, SwitchConfig, Vid, VidSet, VlanMode};
use l2sw::port::Port;
use l2sw::port::mem::MemPort;
use l2sw::wire::{FrameInfo, Mac, craft};

/// One turn of the engine over every port; returns the frames it transmitted.
fn pump(engine: &mut Engine) -> u64 {
    let before = engine.stats().tx;
    for i in 0..4 {
        engine.service(PortId::new(i).unwrap());
    }
    engine.stats().tx - before
}

use l2sw::wire::craft::station;

#[test]
fn two_stations_find_each_other_through_a_bridge_on_mem_ports() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let mut switch_side = Vec::new();
    let mut hosts = Vec::new();
    for n in 0..3 {
        let (s, h) = MemPort::pair(&format!("sw{n}"), &format!("h{n}"));
        let id = sw.add_port(PortConfig::bridge(s.name())).unwrap();
        switch_side.push((id, s));
        hosts.push(h);
    }
    let mut engine = Engine::new(sw);
    for (id, s) in switch_side {
        engine.attach(id, Box::new(s)).unwrap();
    }
    let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
    // h0 asks for h1: everyone else hears it.
    hosts[0]
        .send(&craft::arp_request(station(0), ip(0), ip(1)))
        .unwrap();
    assert_eq!(pump(&mut engine), 2);
    assert_eq!(hosts[1].drain().len(), 1);
    assert_eq!(hosts[2].drain().len(), 1);
    // h1 answers: only h0 hears it.
    hosts[1]
        .send(&craft::arp_reply(station(1), ip(1), station(0), ip(0)))
        .unwrap();
    assert_eq!(pump(&mut engine), 1);
    let got = hosts[0].drain();
    assert_eq!(got.len(), 1);
    assert_eq!(FrameInfo::parse(&got[0], 1518).unwrap().src(), station(1));
    assert!(hosts[2].drain().is_empty());
    assert_eq!(engine.stats().rx, 2);
}

#[test]
fn a_trunk_mem_port_carries_tags_the_access_ports_never_see() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let (t, mut trunk_host) = MemPort::pair("trunk", "wire");
    let (a, mut access_host) = MemPort::pair("access", "h");
    let allowed: VidSet = [Vid::new(10)].into_iter().collect();
    let trunk = VlanMode::Trunk {
        allowed,
        native: None,
    };
    let tid = sw
        .add_port(PortConfig::bridge("trunk").with_vlan(trunk))
        .unwrap();
    let aid = sw
        .add_port(PortConfig::bridge("access").with_vlan(VlanMode::Access { vid: Vid::new(10) }))
        .unwrap();
    let mut engine = Engine::new(sw);
    engine.attach(tid, Box::new(t)).unwrap();
    engine.attach(aid, Box::new(a)).unwrap();
    let frame = craft::ipv4_udp(
        station(9),
        station(1),
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::LOCALHOST,
        b"x",
    );
    access_host.send(&frame).unwrap();
    pump(&mut engine);
    assert_eq!(trunk_host.drain(), vec![craft::tagged(&frame, 10)]);
    trunk_host.send(&craft::tagged(&frame, 10)).unwrap();
    trunk_host.send(&craft::tagged(&frame, 20)).unwrap();
    pump(&mut engine);
    assert_eq!(
        access_host.drain(),
        vec![frame],
        "VLAN 20 never reaches the access port"
    );
}

#[test]
fn a_full_tx_queue_loses_frames_and_counts_them() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let (s0, mut h0) = MemPort::pair("s0", "h0");
    let (s1, mut h1) = MemPort::pair_bounded("s1", "h1", 2);
    let i0 = sw.add_port(PortConfig::bridge("s0")).unwrap();
    let i1 = sw.add_port(PortConfig::bridge("s1")).unwrap();
    let mut engine = Engine::new(sw);
    engine.attach(i0, Box::new(s0)).unwrap();
    engine.attach(i1, Box::new(s1)).unwrap();
    for _ in 0..5 {
        h0.send(&craft::ethernet(
            Mac::BROADCAST,
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            b"x",
        ))
        .unwrap();
    }
    pump(&mut engine);
    assert_eq!(h1.drain().len(), 2);
    assert_eq!((engine.stats().tx, engine.stats().tx_full), (2, 3));
}
