//! The core on in-memory ports: frames read from `Port`s into a `Batch`, decided by
//! `Switch::process`, written out per egress queue with each port's tag edit. This is the
//! shape of the daemon's run loop, without the kernel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use l2sw::fwd::{Batch, PortConfig, PortId, Switch, SwitchConfig, Tick, VidSet, VlanMode};
use l2sw::port::Port;
use l2sw::port::mem::MemPort;
use l2sw::wire::{FrameInfo, Mac, craft};

/// One turn of the loop: read every port, decide, transmit.
fn pump(sw: &mut Switch, ports: &mut [MemPort], now: Tick) -> usize {
    let mut bufs = Vec::new();
    let mut batch: Batch<Vec<u8>> = Batch::new();
    for (i, p) in ports.iter_mut().enumerate() {
        bufs.clear();
        p.recv_batch(&mut bufs, 32).unwrap();
        for f in bufs.drain(..) {
            batch.push(PortId::new(i).unwrap(), f).unwrap();
        }
    }
    sw.process(now, &mut batch);
    let mut sent = 0;
    let mut out = Vec::new();
    let plan: Vec<(PortId, Vec<_>)> = batch.egress().map(|(p, q)| (p, q.to_vec())).collect();
    for (port, items) in plan {
        for it in items {
            let (_, frame) = batch.frame(usize::from(it.frame)).unwrap();
            it.tag.apply(frame, &mut out);
            sent += usize::from(ports[port.index()].send(&out).unwrap());
        }
    }
    sent
}

fn station(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

#[test]
fn two_stations_find_each_other_through_a_bridge_on_mem_ports() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let mut switch_side = Vec::new();
    let mut hosts = Vec::new();
    for n in 0..3 {
        let (s, h) = MemPort::pair(&format!("sw{n}"), &format!("h{n}"));
        sw.add_port(PortConfig::bridge(s.name())).unwrap();
        switch_side.push(s);
        hosts.push(h);
    }
    let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
    // h0 asks for h1: everyone else hears it.
    hosts[0]
        .send(&craft::arp_request(station(0), ip(0), ip(1)))
        .unwrap();
    assert_eq!(pump(&mut sw, &mut switch_side, Tick(0)), 2);
    assert_eq!(hosts[1].drain().len(), 1);
    assert_eq!(hosts[2].drain().len(), 1);
    // h1 answers: only h0 hears it.
    hosts[1]
        .send(&craft::arp_reply(station(1), ip(1), station(0), ip(0)))
        .unwrap();
    assert_eq!(pump(&mut sw, &mut switch_side, Tick(1)), 1);
    let got = hosts[0].drain();
    assert_eq!(got.len(), 1);
    assert_eq!(FrameInfo::parse(&got[0], 1518).unwrap().src(), station(1));
    assert!(hosts[2].drain().is_empty());
}

#[test]
fn a_trunk_mem_port_carries_tags_the_access_ports_never_see() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let (t, mut trunk_host) = MemPort::pair("trunk", "wire");
    let (a, mut access_host) = MemPort::pair("access", "h");
    let allowed: VidSet = [10].into_iter().collect();
    sw.add_port(PortConfig::bridge("trunk").with_vlan(VlanMode::Trunk {
        allowed,
        native: None,
    }))
    .unwrap();
    sw.add_port(PortConfig::bridge("access").with_vlan(VlanMode::Access { vid: 10 }))
        .unwrap();
    let mut ports = vec![t, a];
    let frame = craft::ipv4_udp(
        station(9),
        station(1),
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::LOCALHOST,
        b"x",
    );
    access_host.send(&frame).unwrap();
    pump(&mut sw, &mut ports, Tick(0));
    let on_wire = trunk_host.drain();
    assert_eq!(on_wire, vec![craft::tagged(&frame, 10)]);
    trunk_host.send(&craft::tagged(&frame, 10)).unwrap();
    trunk_host.send(&craft::tagged(&frame, 20)).unwrap();
    pump(&mut sw, &mut ports, Tick(1));
    assert_eq!(
        access_host.drain(),
        vec![frame],
        "VLAN 20 never reaches the access port"
    );
}
