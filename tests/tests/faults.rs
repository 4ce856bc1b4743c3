//! Faults under load: a port's interface deleted, a workload's namespace removed, a receiver
//! that never drains. l2sw must keep forwarding between the ports that are left, lose nothing
//! it learned about them, and only the broken or slow port may lose frames. A send error that
//! leaves the interface in place (a full queue, the link down) loses frames; only a vanished
//! interface detaches its port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, Switch, SwitchConfig};
use l2sw::port::Port;
use l2sw::port::mem::MemPort;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{LiveEngine, Sandbox, Tap, station};

/// Counts the frames identical to `frame` arriving at `tap` until none came for a while.
fn count_arrivals(tap: &Tap, frame: &[u8]) -> usize {
    let mut n = 0;
    let mut quiet = Instant::now();
    let start = Instant::now();
    while quiet.elapsed() < Duration::from_millis(300) && start.elapsed() < Duration::from_secs(10)
    {
        let got = tap.drain().iter().filter(|f| f.as_slice() == frame).count();
        if got > 0 {
            n += got;
            quiet = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    n
}

#[test]
fn deleting_a_port_or_its_namespace_under_load_spares_the_others() {
    let Some(mut sb) = Sandbox::new("faults-del") else {
        return;
    };
    let sw = sb.netns("sw");
    let (_, a) = sb.workload(&sw, "a", 1);
    let (_, b) = sb.workload(&sw, "b", 2);
    let (_, _c) = sb.workload(&sw, "c", 3);
    let (d_ns, d) = sb.workload(&sw, "d", 4);
    // The tap's socket would keep d's namespace alive after `ip netns del`.
    let mut d = Some(d);
    let engine = LiveEngine::bridge(&sw, &["pa", "pb", "pc", "pd"]);
    // b speaks first, so that a → b is known unicast from the start.
    b.send(&craft::ethernet(
        Mac::BROADCAST,
        station(2),
        craft::ETHERTYPE_EXPERIMENTAL,
        b"hello",
    ));
    std::thread::sleep(Duration::from_millis(100));
    b.drain();

    let to_b = craft::ethernet(
        station(2),
        station(1),
        craft::ETHERTYPE_EXPERIMENTAL,
        b"load",
    );
    const N: usize = 3000;
    let arrived = std::thread::scope(|s| {
        // b drains as the frames come (a tap's socket buffer holds a few hundred).
        let receiver = s.spawn(|| count_arrivals(&b, &to_b));
        for i in 0..N {
            a.send(&to_b);
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if i == N / 3 {
                // Under load: c's switch end vanishes, then d's whole namespace (its veth
                // with it).
                sb.links(&sw).delete("pc").unwrap();
                drop(d.take());
                l2sw_netlink::netns_delete(&d_ns).unwrap();
            }
        }
        receiver.join().unwrap()
    });
    assert_eq!(arrived, N, "a → b lost frames while c and d went");

    // A namespace is destroyed after `ip netns del` returns, in the background: wait until
    // pd is gone with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::process::Command::new("ip")
        .args(["-n", &sw, "link", "show", "pd"])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "pd outlived d's namespace");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A broadcast now floods towards the dead ports too: the engine must survive the send
    // errors and still deliver to b.
    let bcast = craft::ethernet(
        Mac::BROADCAST,
        station(1),
        craft::ETHERTYPE_EXPERIMENTAL,
        b"after",
    );
    a.send(&bcast);
    assert_eq!(count_arrivals(&b, &bcast), 1);
    // And b is still known (its FDB entry survived): a unicast reaches b only.
    a.send(&to_b);
    assert_eq!(count_arrivals(&b, &to_b), 1);
    let e = engine.stop();
    // pc was deleted, pd went with d's namespace (a veth whose peer vanished): both detached
    // when the broadcast found them gone; nothing else was.
    assert_eq!(e.stats().detached, 2, "{:?}", e.stats());
    let learned: Vec<_> = e
        .switch()
        .fdb()
        .unwrap()
        .entries(e.tick())
        .map(|r| r.mac)
        .collect();
    assert!(
        learned.contains(&station(2)),
        "b is still learned: {learned:?}"
    );
}

#[test]
fn a_slow_receiver_loses_only_its_own_frames() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let (s0, mut h0) = MemPort::pair("s0", "h0");
    let (s1, mut h1) = MemPort::pair("s1", "h1");
    // Port 2's far end never reads: its queue holds 4 frames.
    let (s2, h2) = MemPort::pair_bounded("s2", "h2", 4);
    let ids: Vec<_> = ["s0", "s1", "s2"]
        .iter()
        .map(|n| sw.add_port(PortConfig::bridge(*n)).unwrap())
        .collect();
    let mut engine = Engine::new(sw);
    for (id, p) in ids.iter().zip([s0, s1, s2]) {
        engine.attach(*id, Box::new(p)).unwrap();
    }
    const N: usize = 1000;
    for i in 0..N {
        // Broadcasts reach both receivers: the slow one fills at once, the other must not care.
        h0.send(&craft::ethernet(
            Mac::BROADCAST,
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            &i.to_be_bytes(),
        ))
        .unwrap();
        if i % 32 == 31 {
            while engine.service(ids[0]) > 0 {}
        }
    }
    while engine.service(ids[0]) > 0 {}
    let mut got = 0;
    let mut buf = Vec::new();
    while h1.recv(&mut buf).unwrap().is_some() {
        got += 1;
    }
    assert_eq!(got, N, "the fast receiver got every frame");
    let slow = engine.port_counters(ids[2]);
    assert_eq!((slow.tx, slow.tx_full), (4, N as u64 - 4));
    assert_eq!(engine.port_counters(ids[1]).tx_full, 0);
    drop(h2);
}

#[test]
fn a_transient_send_error_loses_its_frames_a_vanished_interface_detaches() {
    let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
    let (s0, mut h0) = MemPort::pair("s0", "h0");
    let (s1, mut h1) = MemPort::pair("s1", "h1");
    let (s2, mut h2) = MemPort::pair("s2", "h2");
    let ids: Vec<_> = ["s0", "s1", "s2"]
        .iter()
        .map(|n| sw.add_port(PortConfig::bridge(*n)).unwrap())
        .collect();
    let mut engine = Engine::new(sw);
    for (id, p) in ids.iter().zip([s0, s1, s2]) {
        engine.attach(*id, Box::new(p)).unwrap();
    }
    let mut flood = |engine: &mut Engine, i: u8| {
        h0.send(&craft::ethernet(
            Mac::BROADCAST,
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            &[i],
        ))
        .unwrap();
        assert_eq!(engine.service(ids[0]), 1);
    };
    // A full device queue, the link down, an interrupted call: the frame is lost for s2
    // only, counted, and s2 stays.
    for (i, errno) in [libc::ENOBUFS, libc::ENETDOWN, libc::EINTR, libc::EAGAIN]
        .into_iter()
        .enumerate()
    {
        h2.fail_sends_to_me(errno, 1);
        flood(&mut engine, i as u8);
    }
    let s = engine.stats();
    assert_eq!((s.io_errors, s.transient_errors, s.detached), (4, 4, 0));
    let c2 = engine.port_counters(ids[2]);
    assert_eq!((c2.tx, c2.tx_errors, c2.tx_full), (0, 4, 0));
    assert_eq!(h1.drain().len(), 4, "s1 lost nothing");
    assert!(h2.drain().is_empty());
    // The error has passed: s2 gets the next one.
    flood(&mut engine, 10);
    assert_eq!(h2.drain().len(), 1);
    assert_eq!(engine.port_counters(ids[2]).tx, 1);
    // Its interface vanished: s2 is detached, the others go on.
    h2.fail_sends_to_me(libc::ENXIO, 1);
    flood(&mut engine, 11);
    let s = engine.stats();
    assert_eq!((s.io_errors, s.transient_errors, s.detached), (5, 4, 1));
    flood(&mut engine, 12);
    assert_eq!(h1.drain().len(), 3);
    assert!(h2.drain().is_empty(), "a detached port is sent nothing");
    assert_eq!(engine.stats().detached, 1);
    assert_eq!(engine.port_counters(ids[2]).tx, 1);
}

#[test]
fn a_link_set_down_is_transient_and_its_port_forwards_once_it_is_up() {
    let Some(mut sb) = Sandbox::new("faults-down") else {
        return;
    };
    let sw = sb.netns("sw");
    let (_, a) = sb.workload(&sw, "a", 1);
    let (_, b) = sb.workload(&sw, "b", 2);
    let (_, c) = sb.workload(&sw, "c", 3);
    let engine = LiveEngine::bridge(&sw, &["pa", "pb", "pc"]);
    // pc goes down: broadcasts from a still reach b, and the sends to pc fail (`ENETDOWN`).
    sb.ip(&sw, &["link", "set", "pc", "down"]);
    for i in 0..20u8 {
        let f = craft::ethernet(
            Mac::BROADCAST,
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            &[b'd', i],
        );
        a.send(&f);
        assert_eq!(count_arrivals(&b, &f), 1, "b gets broadcast {i}");
    }
    sb.ip(&sw, &["link", "set", "pc", "up"]);
    // Once it is up again c gets broadcasts (the first send after may still report the
    // socket's pending `ENETDOWN` once).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0u8;
    loop {
        let f = craft::ethernet(
            Mac::BROADCAST,
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            &[b'u', i],
        );
        a.send(&f);
        if count_arrivals(&c, &f) == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "c never got a broadcast again");
        i = i.wrapping_add(1);
    }
    let e = engine.stop();
    let s = e.stats();
    assert_eq!(s.detached, 0, "a link set down detaches nothing: {s:?}");
    assert!(s.transient_errors > 0, "the sends to pc failed: {s:?}");
    assert_eq!(s.io_errors, s.transient_errors, "{s:?}");
    let pc = e.switch().port_by_name("pc").unwrap();
    let c = e.port_counters(pc);
    assert!(c.tx_errors > 0 && c.tx > 0, "{c:?}");
}
