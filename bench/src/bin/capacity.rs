//! The forwarding capacity of one l2sw core over AF_PACKET ports, without a generator
//! competing for the CPU: port a's receive ring is filled with 64-byte frames (60 bytes
//! without the FCS) to b's MAC while the engine is idle, then one thread pinned to CPU 1
//! drains it (`Engine::service` until it returns 0) and the time that took is reported: frames
//! forwarded per second of wall time and thread CPU time per frame (which includes the kernel's
//! transmit and b's receive work, run on this thread). Nothing listens on b's `eth0`
//! during the drain. Wall-time rates suffer from whatever else runs on CPU 1; CPU time per
//! frame much less. Needs root and two CPUs.
//!
//! `cargo run --release -p l2sw-bench --bin capacity [ROUNDS] [FRAMES]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, PortId, Switch, SwitchConfig};
use l2sw::port::af_packet::{AfPacketPort, Options};
use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::port::sys::ring::RingSize;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{Sandbox, station};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(0), &set).unwrap();
}

fn thread_cpu() -> Duration {
    Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap())
}

/// One drain: frames forwarded, wall time, thread CPU time.
struct Round {
    rx: u64,
    tx: u64,
    full: u64,
    wall: Duration,
    cpu: Duration,
}

fn round(engine: &mut Engine, pa: PortId, gen_ns: &str, frames: usize) -> Round {
    let frame = {
        let mut f = craft::ethernet(station(2), station(1), 0x88b5, &[0u8; 46]);
        f.truncate(60);
        f
    };
    // The generator runs on CPU 0, in a's namespace.
    let ns = gen_ns.to_owned();
    std::thread::spawn(move || {
        pin(0);
        let tx = netns::run_in(&ns, || PacketSocket::open("eth0"))
            .unwrap()
            .unwrap();
        let mut sent = 0;
        while sent < frames {
            if tx.send(&frame).unwrap() {
                sent += 1;
            } else {
                std::thread::yield_now();
            }
        }
    })
    .join()
    .unwrap();
    // Every block handed over (the last one retires after a second).
    std::thread::sleep(Duration::from_millis(1100));
    let before = engine.stats();
    let (c0, w0) = (thread_cpu(), Instant::now());
    while engine.service(pa) > 0 {}
    let (wall, cpu) = (w0.elapsed(), thread_cpu() - c0);
    let after = engine.stats();
    Round {
        rx: after.rx - before.rx,
        tx: after.tx - before.tx,
        full: after.tx_full - before.tx_full,
        wall,
        cpu,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let frames: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(28_000);
    let Some(mut sb) = Sandbox::new("cap") else {
        return;
    };
    let sw = sb.netns("sw");
    let (a, tap_a) = sb.workload(&sw, "a", 1);
    let (_b, tap_b) = sb.workload(&sw, "b", 2);
    drop(tap_a);
    let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
    let max = s.config().max_frame();
    let pa = s.add_port(PortConfig::bridge("pa")).unwrap();
    let pb = s.add_port(PortConfig::bridge("pb")).unwrap();
    // Blocks retire when full rather than every millisecond, so that the whole ring fills.
    let opts = Options {
        rx_ring: RingSize {
            retire_ms: 1000,
            ..RingSize::default()
        },
    };
    let open = |name: &str| {
        netns::run_in(&sw, || AfPacketPort::open_with(name, max, &opts))
            .unwrap()
            .unwrap()
    };
    let (port_a, port_b) = (open("pa"), open("pb"));
    let mut engine = Engine::new(s);
    engine.attach(pa, Box::new(port_a)).unwrap();
    engine.attach(pb, Box::new(port_b)).unwrap();
    // Teach the switch where b is; then nothing listens on b's eth0.
    tap_b.send(&craft::ethernet(
        Mac::BROADCAST,
        station(2),
        0x88b5,
        b"hello",
    ));
    let start = Instant::now();
    while engine.service(pb) == 0 {
        assert!(start.elapsed() < Duration::from_secs(2), "hello not seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(tap_b);
    pin(1);
    // One round to warm up, not counted.
    round(&mut engine, pa, &a, frames);
    let (mut mpps, mut ns, mut cpu_mpps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let r = round(&mut engine, pa, &a, frames);
        let rate = r.tx as f64 / r.wall.as_secs_f64() / 1e6;
        let per = r.cpu.as_nanos() as f64 / r.rx.max(1) as f64;
        println!(
            "rx {:>6}  tx {:>6}  full {:>4}  wall {:>6.2} ms  cpu {:>6.2} ms  {:.3} Mpps  {:.0} ns/frame",
            r.rx,
            r.tx,
            r.full,
            r.wall.as_secs_f64() * 1e3,
            r.cpu.as_secs_f64() * 1e3,
            rate,
            per
        );
        mpps.push(rate);
        ns.push(per);
        cpu_mpps.push(r.tx as f64 / r.cpu.as_secs_f64() / 1e6);
    }
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    let ((lo, hi), (clo, chi)) = (range(&mpps), range(&cpu_mpps));
    println!(
        "median {:.3} Mpps wall (range {lo:.3}-{hi:.3}); {:.0} ns CPU/frame = {:.3} Mpps per CPU second (range {clo:.3}-{chi:.3})",
        median(&mut mpps),
        median(&mut ns),
        median(&mut cpu_mpps)
    );
}
