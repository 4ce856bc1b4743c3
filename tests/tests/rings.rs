//! Both receive-ring handovers (TPACKET_V3 blocks, TPACKET_V2 frames) hand l2sw every frame
//! as it was on the wire: small and full-size frames, a VLAN tag the interface took out put
//! back, in order, and more frames than the ring holds at once over several refills; each
//! frame with a kernel timestamp close to when it was sent. The ring's status word says
//! whether frames wait, as reading would find.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::port::sys::ring::{Handover, RingSize, RxRing};
use l2sw::wire::{Mac, craft};
use l2sw_tests::{Sandbox, station};

fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, len) in [0usize, 46, 500, 1499].into_iter().enumerate() {
        let payload: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
        out.push(craft::ethernet(
            station(2),
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            &payload,
        ));
    }
    let plain = craft::ethernet(
        Mac::BROADCAST,
        station(1),
        craft::ETHERTYPE_EXPERIMENTAL,
        b"tagged",
    );
    out.push(craft::tagged(&plain, 10));
    out
}

/// How long a test waits for frames before it fails: generous, since a loaded machine (a
/// whole `cargo test --workspace`, two cores) can keep the sender from running for a while.
const PATIENCE: Duration = Duration::from_secs(10);

/// Calls `read` until it has returned `want` items, sleeping while it returns none, and
/// returns them; fails after [`PATIENCE`]. A V3 ring hands a block over when it is full or
/// when its timer fires: 1 ms asked, but the kernel counts in jiffies (4 to 8 ms at HZ=250),
/// so no fixed sleep is long enough on every machine.
fn collect<T>(what: &str, want: usize, mut read: impl FnMut() -> Option<T>) -> Vec<T> {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while out.len() < want {
        match read() {
            Some(x) => out.push(x),
            None => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: {} of {want} frames after {PATIENCE:?}",
                    out.len()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    out
}

fn handover_delivers_every_frame_as_sent(handover: Handover) {
    let Some(mut sb) = Sandbox::new(&format!("ring{handover:?}")) else {
        return;
    };
    let a = sb.netns("a");
    let b = sb.netns("b");
    sb.veth(
        &a,
        "eth0",
        Mac([2, 0, 0, 0, 0, 1]),
        &b,
        "eth0",
        Mac([2, 0, 0, 0, 0, 2]),
    );
    let tx = netns::run_in(&a, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    let rx = netns::run_in(&b, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    // A small ring, so that the frames below fill it several times over.
    let size = match handover {
        Handover::Blocks => RingSize {
            block_size: 1 << 16,
            block_nr: 4,
            ..RingSize::default()
        },
        Handover::Frames => RingSize::frames(1 << 17, 1518),
    };
    let mut ring = RxRing::new(&rx, size).unwrap();
    let sent = frames();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut stamps = Vec::new();
    for round in 0..40 {
        let t0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        for f in &sent {
            let mut f = f.clone();
            f.push(round as u8);
            assert!(tx.send(&f).unwrap());
        }
        // The status word tells, without a system call, that frames wait...
        let deadline = Instant::now() + PATIENCE;
        while !ring.pending() {
            assert!(
                Instant::now() < deadline,
                "round {round}: nothing pending after {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        stamps.extend(collect(&format!("round {round}"), sent.len(), || {
            ring.next_frame()
                .map(|frame| frame.stamp_ns.saturating_sub(t0))
        }));
        // Read again through the copying path: nothing is left, nothing is read twice.
        assert!(!ring.next_into(&mut buf, 2000));
        // ... and that none do once every one is read.
        assert!(
            !ring.pending(),
            "round {round}: pending with every frame read"
        );
        got.push(round);
    }
    assert_eq!(stamps.len(), sent.len() * 40, "every frame of every round");
    assert!(
        stamps.iter().all(|&d| d < 1_000_000_000),
        "kernel timestamps within a second of sending"
    );
    // Frame contents, through `next_into` (the port's path), tag put back.
    for f in &sent {
        assert!(tx.send(f).unwrap());
    }
    let back = collect("contents", sent.len(), || {
        ring.next_into(&mut buf, 2000).then(|| buf.clone())
    });
    assert!(!ring.next_into(&mut buf, 2000), "no frame more than sent");
    // A veth pads nothing: short frames arrive as sent.
    assert_eq!(back, sent);
    // A frame longer than the reader allows is cut to that length.
    assert!(tx.send(&sent[3]).unwrap());
    let cut = collect("the long frame", 1, || {
        ring.next_into(&mut buf, 100).then(|| buf.clone())
    });
    assert_eq!(cut, [&sent[3][..100]]);
}

#[test]
fn v3_blocks_deliver_every_frame_as_sent() {
    handover_delivers_every_frame_as_sent(Handover::Blocks);
}

#[test]
fn v2_frames_deliver_every_frame_as_sent() {
    handover_delivers_every_frame_as_sent(Handover::Frames);
}
