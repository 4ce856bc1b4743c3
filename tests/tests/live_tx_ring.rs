//! The AF_PACKET port's transmit paths on real veth links: the TPACKET_V2 ring (with and
//! without a `virtio_net_hdr` in each slot) and `sendmmsg`. Every frame must arrive intact and
//! in order, whatever its size (frames too long for a ring slot take a plain send, after the
//! frames queued before them) and tagged or not; a full ring takes fewer frames than asked
//! instead of blocking; frames the kernel refuses are taken back, never sent later.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, Switch, SwitchConfig};
use l2sw::port::af_packet::{AfPacketPort, Options, Tx};
use l2sw::port::sys::netns;
use l2sw::port::sys::txring::TxRingSize;
use l2sw::port::{Port, TxFrame};
use l2sw::wire::craft;
use l2sw_tests::{Sandbox, Tap, station, teach};

const MTU: usize = 9000;

/// Frame `i` of the sequence from a to b: sizes cycle through the shortest frame, a full
/// 1500-byte MTU frame, a tagged one, and jumbo frames longer than a ring slot; the payload
/// carries `i` and a pattern.
fn frame(i: usize) -> Vec<u8> {
    let len = [60, 1514, 64, 2006 + 32, 4000, 9014][i % 6];
    let mut payload = vec![0u8; len - 14];
    payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
    for (k, b) in payload.iter_mut().enumerate().skip(4) {
        *b = (k * 7 + i) as u8;
    }
    let f = craft::ethernet(
        station(2),
        station(1),
        craft::ETHERTYPE_EXPERIMENTAL,
        &payload,
    );
    if i % 6 == 2 { craft::tagged(&f, 10) } else { f }
}

struct Net {
    _sb: Sandbox,
    engine: Engine,
    pa: l2sw::fwd::PortId,
    tap_a: Tap,
    tap_b: Tap,
}

/// Workloads a and b on a jumbo-MTU veth each, bridged by an idle engine whose ports send
/// through `tx`; b's MAC is learned.
fn net(test: &str, tx: Tx) -> Option<Net> {
    let mut sb = Sandbox::new(test)?;
    let sw = sb.netns("sw");
    let (a, tap_a) = sb.workload(&sw, "a", 1);
    let (b, tap_b) = sb.workload(&sw, "b", 2);
    for (ns, dev) in [(&sw, "pa"), (&sw, "pb"), (&a, "eth0"), (&b, "eth0")] {
        sb.links(ns).set_mtu(dev, MTU as u32).unwrap();
    }
    let mut s = Switch::new(SwitchConfig {
        mtu: MTU,
        ..SwitchConfig::bridge()
    })
    .unwrap();
    let max = s.config().max_frame();
    let pa = s.add_port(PortConfig::bridge("pa")).unwrap();
    let pb = s.add_port(PortConfig::bridge("pb")).unwrap();
    let opts = Options {
        tx,
        ..Options::default()
    };
    let open = |name: &str| {
        let p = netns::run_in(&sw, || AfPacketPort::open_with(name, max, &opts))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.has_tx_ring(),
            tx != Tx::Sendmmsg,
            "transmit path of {name}"
        );
        p
    };
    let mut engine = Engine::new(s);
    engine.attach(pa, Box::new(open("pa"))).unwrap();
    engine.attach(pb, Box::new(open("pb"))).unwrap();
    teach(&mut engine, pb, &tap_b, 2);
    tap_a.drain();
    Some(Net {
        _sb: sb,
        engine,
        pa,
        tap_a,
        tap_b,
    })
}

/// Sends `n` frames from a in chunks, forwarding each chunk, and returns what b received.
fn forward(net: &mut Net, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(60) {
        for &i in chunk {
            net.tap_a.send(&frame(i));
        }
        let want = net.engine.stats().rx + chunk.len() as u64;
        let start = Instant::now();
        while net.engine.stats().rx < want && start.elapsed() < Duration::from_secs(5) {
            if net.engine.service(net.pa) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        got.extend(net.tap_b.drain());
    }
    let start = Instant::now();
    while got.len() < n && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
        got.extend(net.tap_b.drain());
    }
    got
}

fn every_frame_arrives_intact_and_in_order(test: &str, tx: Tx) {
    let Some(mut net) = net(test, tx) else {
        return;
    };
    // More than two rings' worth (256 slots each).
    let n = 600;
    let got = forward(&mut net, n);
    let stats = net.engine.stats();
    assert_eq!(
        (stats.rx, stats.tx_full, stats.io_errors),
        (n as u64 + 1, 0, 0)
    );
    assert_eq!(got.len(), n, "frames received by b");
    for (i, f) in got.iter().enumerate() {
        assert!(*f == frame(i), "frame {i} ({} bytes) differs", f.len());
    }
}

#[test]
fn the_ring_with_virtio_headers_delivers_every_frame_in_order() {
    every_frame_arrives_intact_and_in_order(
        "txvnet",
        Tx::Ring {
            size: TxRingSize::default(),
            vnet_hdr: true,
        },
    );
}

#[test]
fn the_plain_ring_delivers_every_frame_in_order() {
    every_frame_arrives_intact_and_in_order(
        "txring",
        Tx::Ring {
            size: TxRingSize::default(),
            vnet_hdr: false,
        },
    );
}

#[test]
fn sendmmsg_delivers_every_frame_in_order() {
    every_frame_arrives_intact_and_in_order("txmmsg", Tx::Sendmmsg);
}

#[test]
fn a_full_ring_takes_fewer_frames_than_asked_and_recovers() {
    let Some(mut sb) = Sandbox::new("txfull") else {
        return;
    };
    let sw = sb.netns("sw");
    let (_b, tap_b) = sb.workload(&sw, "b", 2);
    // The smallest ring: one 64 KiB block of 32 slots.
    let opts = Options {
        tx: Tx::Ring {
            size: TxRingSize {
                frame_size: 2048,
                frame_nr: 1,
            },
            vnet_hdr: true,
        },
        ..Options::default()
    };
    let mut pb = netns::run_in(&sw, || AfPacketPort::open_with("pb", 1518, &opts))
        .unwrap()
        .unwrap();
    assert!(pb.has_tx_ring());
    let frames: Vec<Vec<u8>> = (0..64).map(|i| frame(i * 6)).collect();
    let refs: Vec<TxFrame<'_>> = frames.iter().map(|f| TxFrame::plain(f)).collect();
    for round in 0..3 {
        let start = Instant::now();
        let taken = pb.send_batch(&refs).unwrap();
        assert!(start.elapsed() < Duration::from_millis(500), "never blocks");
        assert_eq!(taken, 32, "round {round}: the ring's 32 slots");
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < taken && start.elapsed() < Duration::from_secs(2) {
            got.extend(tap_b.drain());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            got == frames[..taken],
            "round {round}: the first {taken} frames, in order"
        );
    }
}

#[test]
fn frames_the_kernel_refuses_are_taken_back_and_never_sent_later() {
    let Some(mut sb) = Sandbox::new("txback") else {
        return;
    };
    let sw = sb.netns("sw");
    let (_b, tap_b) = sb.workload(&sw, "b", 2);
    let mut pb = netns::run_in(&sw, || {
        AfPacketPort::open_with("pb", 1518, &Options::default())
    })
    .unwrap()
    .unwrap();
    assert!(pb.has_tx_ring());
    let batch = |from: usize| -> Vec<Vec<u8>> { (from..from + 20).map(|i| frame(i * 6)).collect() };
    let refused = batch(0);
    sb.ip(&sw, &["link", "set", "pb", "down"]);
    let refs: Vec<TxFrame<'_>> = refused.iter().map(|f| TxFrame::plain(f)).collect();
    assert!(pb.send_batch(&refs).is_err(), "the interface is down");
    sb.ip(&sw, &["link", "set", "pb", "up"]);
    // Wait for the link to come back (the peer's carrier).
    let later = batch(100);
    let refs: Vec<TxFrame<'_>> = later.iter().map(|f| TxFrame::plain(f)).collect();
    let start = Instant::now();
    let mut got = Vec::new();
    while got.is_empty() && start.elapsed() < Duration::from_secs(3) {
        tap_b.drain();
        assert_eq!(pb.send_batch(&refs).unwrap(), refs.len());
        std::thread::sleep(Duration::from_millis(50));
        got = tap_b.drain();
    }
    assert!(
        got == later,
        "only the later batch, once: got {} frames",
        got.len()
    );
}
