//! Both receive-ring handovers (TPACKET_V3 blocks, TPACKET_V2 frames) hand l2sw every frame
//! as it was on the wire: small and full-size frames, a VLAN tag the interface took out put
//! back, in order, and more frames than the ring holds at once over several refills; each
//! frame with a kernel timestamp close to when it was sent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::port::sys::ring::{Handover, RingSize, RxRing};
use l2sw::wire::{Mac, craft};
use l2sw_tests::{Sandbox, station};

fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, len) in [0usize, 46, 500, 1499].into_iter().enumerate() {
        let payload: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
        out.push(craft::ethernet(station(2), station(1), 0x88b5, &payload));
    }
    let plain = craft::ethernet(Mac::BROADCAST, station(1), 0x88b5, b"tagged");
    out.push(craft::tagged(&plain, 10));
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
        "02:00:00:00:00:01",
        &b,
        "eth0",
        "02:00:00:00:00:02",
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
        // V3 hands a block over when full or 1 ms after its first frame.
        std::thread::sleep(Duration::from_millis(5));
        while let Some(frame) = ring.next_frame() {
            stamps.push(frame.stamp_ns.saturating_sub(t0));
        }
        // Read again through the copying path: nothing is left, nothing is read twice.
        assert!(!ring.next_into(&mut buf, 2000));
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
    std::thread::sleep(Duration::from_millis(5));
    let mut back = Vec::new();
    while ring.next_into(&mut buf, 2000) {
        back.push(buf.clone());
    }
    // A veth pads nothing: short frames arrive as sent.
    assert_eq!(back, sent);
    // A frame longer than the reader allows is cut to that length.
    assert!(tx.send(&sent[3]).unwrap());
    std::thread::sleep(Duration::from_millis(5));
    assert!(ring.next_into(&mut buf, 100));
    assert_eq!(buf, sent[3][..100]);
}

#[test]
fn v3_blocks_deliver_every_frame_as_sent() {
    handover_delivers_every_frame_as_sent(Handover::Blocks);
}

#[test]
fn v2_frames_deliver_every_frame_as_sent() {
    handover_delivers_every_frame_as_sent(Handover::Frames);
}
