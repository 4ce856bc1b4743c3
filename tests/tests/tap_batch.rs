//! A TAP port's reads and writes, batched (io_uring) or one system call per frame: thousands
//! of frames of mixed sizes cross it both ways whole and in order, and a frame longer than the
//! port reads is reported truncated, its successor whole.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use l2sw::port::tap::{Io, Options, TapPort};
use l2sw::port::{Port, TxFrame};
use l2sw::wire::{Fault, craft};
use l2sw_tests::{Sandbox, Tap, station};

/// Frames each way.
const N: usize = 3000;
/// Frames sent each way before they are collected.
const CHUNK: usize = 100;
/// The switch's largest frame (MTU 1500, no tag).
const MAX_FRAME: usize = 1514;
/// How long a chunk may take to arrive.
const DEADLINE: Duration = Duration::from_secs(10);

/// Frame `seq` of direction `dir`: a length between 60 and `MAX_FRAME` bytes, the sequence
/// number first, then bytes that depend on both.
fn frame(dir: u8, seq: usize) -> Vec<u8> {
    let len = 60 + (seq * 97 + usize::from(dir) * 31) % (MAX_FRAME - 60 + 1);
    let mut payload = vec![0u8; len - 14];
    payload[0] = dir;
    payload[1..5].copy_from_slice(&(seq as u32).to_be_bytes());
    for (i, b) in payload.iter_mut().enumerate().skip(5) {
        *b = (i as u8) ^ (seq as u8) ^ dir;
    }
    let f = craft::ethernet(
        station(2),
        station(1),
        craft::ETHERTYPE_EXPERIMENTAL,
        &payload,
    );
    assert_eq!(f.len(), len);
    f
}

fn ours(f: &[u8]) -> bool {
    f.get(12..14) == Some(&craft::ETHERTYPE_EXPERIMENTAL.to_be_bytes()[..])
}

/// Reads from `port` until `want` of our frames came (others, from the device's own stack,
/// are skipped), within the deadline.
fn read(port: &mut TapPort, want: usize) -> Vec<(Vec<u8>, l2sw::wire::Meta)> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < want {
        let mut buf = Vec::new();
        match port.recv(&mut buf).unwrap() {
            Some(meta) if ours(&buf) => got.push((buf, meta)),
            Some(_) => {}
            None => {
                assert!(
                    start.elapsed() < DEADLINE,
                    "{} of {want} frames read",
                    got.len()
                );
                std::thread::yield_now();
            }
        }
    }
    got
}

/// Collects from `tap` until `want` of our frames came, within the deadline.
fn collect(tap: &Tap, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < want {
        let before = got.len();
        got.extend(tap.drain().into_iter().filter(|f| ours(f)));
        if got.len() == before {
            assert!(
                start.elapsed() < DEADLINE,
                "{} of {want} frames arrived",
                got.len()
            );
            std::thread::yield_now();
        }
    }
    got
}

fn round_trip(test: &str, io: Io) {
    let Some(mut sb) = Sandbox::new(test) else {
        return;
    };
    let ns = sb.netns("w");
    let opts = Options {
        rx: io,
        tx: io,
        room: MAX_FRAME + 1,
    };
    let mut port = TapPort::create_in_with(&ns, "tap0", MAX_FRAME, opts).unwrap();
    assert_eq!(port.batched(), io == Io::Uring, "io_uring unavailable?");
    // Room for the long frame on the workload's side.
    sb.links(&ns).set_mtu("tap0", 9000).unwrap();
    let wl = Tap::open("w", &ns, "tap0");

    let mut seq = 0;
    while seq < N {
        let n = CHUNK.min(N - seq);
        // In: the workload sends, the port reads.
        for i in seq..seq + n {
            wl.send(&frame(0, i));
        }
        // Out: the port writes in batches, the workload receives.
        let out: Vec<Vec<u8>> = (seq..seq + n).map(|i| frame(1, i)).collect();
        for batch in out.chunks(32) {
            let txs: Vec<TxFrame<'_>> = batch.iter().map(|f| TxFrame::plain(f)).collect();
            assert_eq!(port.send_batch(&txs).unwrap(), batch.len());
        }
        for (k, (f, meta)) in read(&mut port, n).into_iter().enumerate() {
            assert!(f == frame(0, seq + k), "frame {} in: not as sent", seq + k);
            assert_eq!(meta.fault, None, "frame {} in", seq + k);
        }
        for (k, f) in collect(&wl, n).into_iter().enumerate() {
            assert!(f == out[k], "frame {} out: not as sent", seq + k);
        }
        seq += n;
    }

    // A frame longer than the port reads, then one that fits.
    let long = {
        let mut f = frame(0, 0);
        f.resize(3000, 0xa5);
        f
    };
    wl.send(&long);
    wl.send(&frame(0, 1));
    let got = read(&mut port, 2);
    let (cut, meta) = &got[0];
    // The device does not say how long: a byte more than the port read, at least.
    assert!(
        matches!(meta.fault, Some(Fault::Truncated { len }) if len as usize > MAX_FRAME + 1),
        "{meta:?}"
    );
    assert_eq!(cut.as_slice(), &long[..MAX_FRAME + 1]);
    assert!(got[1].0 == frame(0, 1) && got[1].1.fault.is_none());
}

#[test]
fn a_batched_tap_port_moves_every_frame_whole_and_in_order() {
    round_trip("tapb-uring", Io::Uring);
}

#[test]
fn a_tap_port_with_a_system_call_per_frame_does_too() {
    round_trip("tapb-sys", Io::Syscall);
}

/// Whether interface `ifname` exists in namespace `ns`.
fn exists(ns: &str, ifname: &str) -> bool {
    std::process::Command::new("ip")
        .args(["-n", ns, "link", "show", ifname])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_dropped_tap_port_takes_its_device_with_it_at_once() {
    let Some(mut sb) = Sandbox::new("tapb-drop") else {
        return;
    };
    let ns = sb.netns("w");
    for (i, io) in [Io::Uring, Io::Syscall].into_iter().enumerate() {
        let name = format!("tap{i}");
        let opts = Options {
            rx: io,
            tx: io,
            ..Options::default()
        };
        let mut port = TapPort::create_in_with(&ns, &name, MAX_FRAME, opts).unwrap();
        // Used both ways first, so that the ring has done its work.
        let wl = Tap::open("w", &ns, &name);
        wl.send(&frame(0, 0));
        assert_eq!(read(&mut port, 1)[0].0, frame(0, 0));
        assert_eq!(
            port.send_batch(&[TxFrame::plain(&frame(1, 0)); 2]).unwrap(),
            2
        );
        drop(wl);
        assert!(exists(&ns, &name));
        drop(port);
        // No waiting: whoever removed the port may look for the device at once.
        assert!(!exists(&ns, &name), "{io:?}: {name} outlived its port");
    }
}
