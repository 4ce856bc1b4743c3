//! The forwarding core with an overlay port, in memory: a learning bridge with two local
//! ports and one overlay port, frames from the overlay carrying the VTEP they came from. The
//! kernel's behaviour mirrored (`vxlan_xmit`, `vxlan_rcv`, `vxlan_snoop`): known unicast goes
//! to the VTEP its entry names, floods go to the whole flood list (no VTEP named), a frame from
//! the overlay never goes back into it, and refused packets are named drops.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use l2sw::fwd::{Batch, DropReason, PortConfig, PortId, Switch, SwitchConfig, Tick, Verdict, Why};
use l2sw::wire::craft::{ethernet, station};
use l2sw::wire::{Fault, Mac, Meta, OverlayFault, Vtep, VxlanError};

const VX: usize = 2;

fn switch() -> (Switch, [PortId; 3]) {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let a = sw.add_port(PortConfig::bridge("a")).unwrap();
    let b = sw.add_port(PortConfig::bridge("b")).unwrap();
    let vx = sw.add_port(PortConfig::bridge("vxlan")).unwrap();
    (sw, [a, b, vx])
}

fn vtep(last: u8) -> Vtep {
    Vtep(Ipv4Addr::new(192, 0, 2, last))
}

fn from(v: Vtep, snoop: bool) -> Meta {
    Meta {
        vtep: Some(v),
        snoop,
        ..Meta::NONE
    }
}

fn frame(dst: Mac, src: Mac) -> Vec<u8> {
    ethernet(dst, src, 0x0800, &[0; 46])
}

/// Runs one frame through the switch as a batch; the decision and its egress queues with the
/// VTEP each names.
fn run(
    sw: &mut Switch,
    now: Tick,
    port: PortId,
    f: Vec<u8>,
    meta: Meta,
) -> (Verdict, Why, Vec<(PortId, Option<Vtep>)>) {
    let mut batch = Batch::new();
    batch.push_with(port, f, meta).unwrap();
    sw.process(now, &mut batch);
    let d = batch.decisions()[0];
    let out = batch
        .egress()
        .flat_map(|(p, items)| items.iter().map(move |it| (p, it.vtep)))
        .collect();
    (d.verdict, d.why, out)
}

#[test]
fn a_learned_remote_mac_is_sent_to_its_vtep_alone() {
    let (mut sw, [a, _, vx]) = switch();
    let t = Tick::from_secs(1);
    let (remote, local) = (station(9), station(1));
    // A broadcast from behind VTEP .2 floods to the local ports, never back into the overlay.
    let (v, _, out) = run(
        &mut sw,
        t,
        vx,
        frame(Mac::BROADCAST, remote),
        from(vtep(2), true),
    );
    assert!(!v.ports().contains(vx), "split horizon: {v:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    // The reply to it goes to the overlay port, naming VTEP .2 (vxlan_xmit's FDB hit).
    let (v, why, out) = run(&mut sw, t, a, frame(remote, local), Meta::NONE);
    assert_eq!((v, why), (Verdict::Unicast(vx), Why::BrKnownUnicast));
    assert_eq!(out, vec![(vx, Some(vtep(2)))]);
    let row = sw
        .fdb()
        .unwrap()
        .entries(t)
        .find(|e| e.mac == remote)
        .unwrap();
    assert_eq!((row.port, row.vtep), (vx, Some(vtep(2))));
    // The station moves to VTEP .3: the entry follows.
    run(&mut sw, t, vx, frame(local, remote), from(vtep(3), true));
    let (_, _, out) = run(&mut sw, t, a, frame(remote, local), Meta::NONE);
    assert_eq!(out, vec![(vx, Some(vtep(3)))]);
}

#[test]
fn floods_into_the_overlay_name_no_vtep_and_unicast_back_into_it_is_refused() {
    let (mut sw, [a, _, vx]) = switch();
    let t = Tick::from_secs(1);
    // Unknown unicast from a local port: to every port, the overlay's copy to the flood list.
    let (_, why, out) = run(&mut sw, t, a, frame(station(7), station(1)), Meta::NONE);
    assert_eq!(why, Why::BrFloodUnknown);
    assert!(out.contains(&(PortId::new(VX).unwrap(), None)), "{out:?}");
    // A remote station sends to another remote station: never back into the overlay.
    run(
        &mut sw,
        t,
        vx,
        frame(Mac::BROADCAST, station(8)),
        from(vtep(2), true),
    );
    let (v, _, out) = run(
        &mut sw,
        t,
        vx,
        frame(station(8), station(9)),
        from(vtep(3), true),
    );
    assert_eq!(v, Verdict::Drop(DropReason::Reflect));
    assert!(out.is_empty());
}

#[test]
fn without_snooping_remote_macs_stay_behind_the_flood_list() {
    let (mut sw, [a, _, vx]) = switch();
    let t = Tick::from_secs(1);
    let remote = station(9);
    run(
        &mut sw,
        t,
        vx,
        frame(Mac::BROADCAST, remote),
        from(vtep(2), false),
    );
    let (v, _, out) = run(&mut sw, t, a, frame(remote, station(1)), Meta::NONE);
    assert_eq!(v, Verdict::Unicast(vx), "the bridge still learns the port");
    assert_eq!(out, vec![(vx, None)], "but no VTEP: head-end replication");
    // A static remote entry names its VTEP, and learning does not overwrite it.
    sw.fdb_mut()
        .unwrap()
        .add_static_via(t, l2sw::fwd::Vid::UNAWARE, remote, vx, false, Some(vtep(5)))
        .unwrap();
    run(
        &mut sw,
        t,
        vx,
        frame(Mac::BROADCAST, remote),
        from(vtep(2), true),
    );
    let (_, _, out) = run(&mut sw, t, a, frame(remote, station(1)), Meta::NONE);
    assert_eq!(out, vec![(vx, Some(vtep(5)))]);
}

#[test]
fn a_remote_that_leaves_takes_its_macs_with_it() {
    let (mut sw, [a, _, vx]) = switch();
    let t = Tick::from_secs(1);
    for (mac, v) in [(station(8), vtep(2)), (station(9), vtep(3))] {
        run(&mut sw, t, vx, frame(Mac::BROADCAST, mac), from(v, true));
    }
    assert_eq!(sw.fdb_mut().unwrap().flush_vtep(vtep(3)), 1);
    let (_, why, _) = run(&mut sw, t, a, frame(station(9), station(1)), Meta::NONE);
    assert_eq!(why, Why::BrFloodUnknown);
    let (_, _, out) = run(&mut sw, t, a, frame(station(8), station(1)), Meta::NONE);
    assert_eq!(out, vec![(vx, Some(vtep(2)))]);
    // Entries age out with their VTEPs.
    sw.age(Tick::from_secs(400));
    assert_eq!(sw.fdb().unwrap().len(), 0);
}

#[test]
fn refused_overlay_packets_are_named_drops() {
    let (mut sw, [_, _, vx]) = switch();
    let t = Tick::from_secs(1);
    for (fault, reason, why) in [
        (
            OverlayFault::Header(VxlanError::NoVni { flags: 0 }),
            DropReason::VxlanHeader,
            Why::VxBadHeader,
        ),
        (
            OverlayFault::Vni { vni: 7 },
            DropReason::VxlanVni,
            Why::VxWrongVni,
        ),
        (
            OverlayFault::UnknownSender(vtep(66)),
            DropReason::VxlanUnknownSender,
            Why::VxUnknownSender,
        ),
    ] {
        let (v, w, out) = run(
            &mut sw,
            t,
            vx,
            frame(Mac::BROADCAST, station(9)),
            Meta::faulty(Fault::Overlay(fault)),
        );
        assert_eq!((v, w), (Verdict::Drop(reason), why));
        assert!(out.is_empty());
    }
    assert_eq!(sw.fdb().unwrap().len(), 0, "nothing learned from them");
}
