//! A first end-to-end measurement (the full harness is `l2bench`, to come): 64-byte frames sent
//! as fast as one AF_PACKET socket can from namespace a to namespace b, through the kernel's
//! bridge and then through l2sw (AF_PACKET ports, this build), on the same veth setup with the
//! same generator. Prints frames/s received and sent for each. Needs root.
//!
//! `cargo run --release -p l2sw-bench --bin e2e-quick [SECONDS]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{LiveEngine, Sandbox, station};

/// Runs the generator and sink for `secs` through either switch; returns (sent/s, received/s).
fn measure(kernel: bool, secs: f64) -> Option<(f64, f64)> {
    let mut sb = Sandbox::new(if kernel { "e2ek" } else { "e2el" })?;
    let sw = sb.netns("sw");
    let (a, _) = sb.workload(&sw, "a", 1);
    let (b, _) = sb.workload(&sw, "b", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let engine = if kernel {
        sb.kernel_bridge(&sw, "br0");
        for p in ["pa", "pb"] {
            sb.enslave(&sw, p, "br0", false, false);
        }
        None
    } else {
        Some(LiveEngine::bridge(&sw, &["pa", "pb"]))
    };
    let tx = netns::run_in(&a, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    let rx = netns::run_in(&b, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    rx.set_rcvbuf(16 << 20).unwrap();
    // Teach the switch where b is, then let it settle.
    let hello = craft::ethernet(Mac::BROADCAST, station(2), 0x88b5, b"hello");
    let rx_hello = netns::run_in(&b, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    rx_hello.send(&hello).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let frame = craft::ethernet(station(2), station(1), 0x88b5, b"l2sw e2e");
    let received = Arc::new(AtomicU64::new(0));
    let sink = {
        let received = Arc::clone(&received);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                match rx.recv(&mut buf) {
                    Ok(Some(n)) if buf[..n] == frame[..] => {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    // Empty: sleep rather than spin, so the sink does not take a core from
                    // the switch under test (the socket buffer holds the burst).
                    Ok(_) => std::thread::sleep(Duration::from_micros(200)),
                    Err(_) => break,
                }
            }
        })
    };
    let frame = craft::ethernet(station(2), station(1), 0x88b5, b"l2sw e2e");
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..256 {
            if tx.send(&frame).unwrap_or(false) {
                sent += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    sink.join().unwrap();
    if let Some(e) = engine {
        e.stop();
    }
    Some((
        sent as f64 / elapsed,
        received.load(Ordering::Relaxed) as f64 / elapsed,
    ))
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    for (name, kernel) in [("kernel bridge", true), ("l2sw (AF_PACKET)", false)] {
        match measure(kernel, secs) {
            Some((sent, got)) => println!(
                "{name:<18} sent {:>9.0} frames/s  received {:>9.0} frames/s  ({:.1}% delivered)",
                sent,
                got,
                100.0 * got / sent.max(1.0)
            ),
            None => println!("{name}: skipped (needs root)"),
        }
    }
}
