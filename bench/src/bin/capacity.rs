//! The forwarding capacity of one l2sw core over AF_PACKET ports, without a generator
//! competing for the CPU: port a's receive ring is filled with 64-byte frames (60 bytes
//! without the FCS) to b's MAC while the engine is idle, then one thread pinned to CPU 1
//! drains it (`Engine::service` until it returns 0) and the time that took is reported: frames
//! forwarded per second of wall time and CPU time per frame: the thread's (which includes the
//! kernel's transmit and b's receive work, run on this thread) and CPU 1's `ksoftirqd` (which
//! takes over that receive work when softirqs run long). Nothing listens on b's `eth0`
//! during the drain. Wall-time rates suffer from whatever else runs on CPU 1; CPU time per
//! frame much less. Needs root and two CPUs.
//!
//! `cargo run --release -p l2sw-bench --bin capacity [ROUNDS] [FRAMES] [MODES]` (`VERBOSE=1`
//! prints every round)
//!
//! MODES is a comma-separated list of transmit paths to compare, each on a sandbox of its
//! own: `sendmmsg`, `ring` (a TPACKET_V2 transmit ring), `ring-vnet` (the same with a
//! `virtio_net_hdr` in each slot); all three by default. Rounds alternate between the modes,
//! so that a machine busy with something else for a while weighs on all of them alike. The
//! median and the best round of each are reported (the best is the least disturbed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, PortId, Switch, SwitchConfig};
use l2sw::port::af_packet::{AfPacketPort, Options, Tx};
use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::port::sys::ring::RingSize;
use l2sw::port::sys::txring::TxRingSize;
use l2sw::wire::craft;
use l2sw_bench::e2e::sys::{CpuClock, pin};
use l2sw_tests::{Sandbox, station, teach};

fn thread_cpu() -> Duration {
    CpuClock::this_thread().now()
}

/// The `/proc/PID/schedstat` of CPU 1's softirq thread, which takes over the receive work of
/// the frames l2sw sends when softirqs run long: its run time counts as the switch's too.
fn ksoftirqd() -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "ksoftirqd/1").then(|| e.path().join("schedstat").display().to_string())
    })
}

fn run_time(schedstat: Option<&str>) -> Duration {
    let ns = schedstat
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// One drain: frames read and forwarded, wall time, CPU time (the thread and ksoftirqd/1).
struct Round {
    rx: u64,
    tx: u64,
    full: u64,
    wall: Duration,
    cpu: Duration,
}

fn round(engine: &mut Engine, pa: PortId, gen_ns: &str, frames: usize) -> Round {
    let frame = {
        let mut f = craft::ethernet(
            station(2),
            station(1),
            craft::ETHERTYPE_EXPERIMENTAL,
            &[0u8; 46],
        );
        f.truncate(60);
        f
    };
    // The generator runs on CPU 0, in a's namespace.
    let ns = gen_ns.to_owned();
    std::thread::spawn(move || {
        pin(Some(0));
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
    // Let the kernel finish with the last frames. The last block, not full, is only handed
    // over after a second: it waits for the next round.
    std::thread::sleep(Duration::from_millis(5));
    let before = engine.stats();
    let softirqd = ksoftirqd();
    let (c0, s0, w0) = (thread_cpu(), run_time(softirqd.as_deref()), Instant::now());
    while engine.service(pa) > 0 {}
    let (wall, cpu) = (
        w0.elapsed(),
        thread_cpu() - c0 + (run_time(softirqd.as_deref()) - s0),
    );
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
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(25);
    let frames: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(80_000);
    let modes = args
        .next()
        .unwrap_or_else(|| "sendmmsg,ring,ring-vnet".to_owned());
    let verbose = std::env::var_os("VERBOSE").is_some();
    let mut setups = Vec::new();
    for mode in modes.split(',') {
        let tx = match mode {
            "sendmmsg" => Tx::Sendmmsg,
            "ring" | "ring-vnet" => Tx::Ring {
                size: TxRingSize::default(),
                vnet_hdr: mode == "ring-vnet",
            },
            other => panic!("unknown mode {other}: sendmmsg, ring or ring-vnet"),
        };
        let Some(s) = Setup::new(tx) else {
            return;
        };
        setups.push((mode, s, Vec::new()));
    }
    pin(Some(1));
    for (_, s, _) in &mut setups {
        // One round to warm up, not counted.
        round(&mut s.engine, s.pa, &s.gen_ns, frames);
    }
    for _ in 0..rounds {
        for (mode, s, results) in &mut setups {
            let r = round(&mut s.engine, s.pa, &s.gen_ns, frames);
            if !verbose {
                results.push(r);
                continue;
            }
            println!(
                "{mode:<10} rx {:>6}  tx {:>6}  full {:>4}  wall {:>6.2} ms  cpu {:>6.2} ms  {:.3} Mpps  {:.0} ns/frame",
                r.rx,
                r.tx,
                r.full,
                r.wall.as_secs_f64() * 1e3,
                r.cpu.as_secs_f64() * 1e3,
                r.tx as f64 / r.wall.as_secs_f64() / 1e6,
                r.cpu.as_nanos() as f64 / r.rx.max(1) as f64,
            );
            results.push(r);
        }
    }
    for (mode, _, results) in &setups {
        let mut wall: Vec<f64> = results
            .iter()
            .map(|r| r.tx as f64 / r.wall.as_secs_f64() / 1e6)
            .collect();
        let mut cpu: Vec<f64> = results
            .iter()
            .map(|r| r.cpu.as_nanos() as f64 / r.rx.max(1) as f64)
            .collect();
        let best_wall = wall.iter().copied().fold(0.0, f64::max);
        let best_cpu = cpu.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{mode:<10} median {:.3} Mpps wall (best {best_wall:.3}); median {:.0} ns CPU/frame (best {best_cpu:.0}) = {:.3} Mpps per CPU second (best {:.3})",
            median(&mut wall),
            median(&mut cpu),
            1e3 / median(&mut cpu),
            1e3 / best_cpu,
        );
    }
}

/// A sandbox and an idle engine forwarding from pa (workload a) to pb (workload b).
struct Setup {
    _sb: Sandbox,
    engine: Engine,
    pa: PortId,
    gen_ns: String,
}

impl Setup {
    fn new(tx: Tx) -> Option<Setup> {
        let mut sb = Sandbox::new("cap")?;
        let sw = sb.netns("sw");
        let (a, tap_a) = sb.workload(&sw, "a", 1);
        let (_b, tap_b) = sb.workload(&sw, "b", 2);
        drop(tap_a);
        let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
        let max = s.config().max_frame();
        let pa = s.add_port(PortConfig::bridge("pa")).unwrap();
        let pb = s.add_port(PortConfig::bridge("pb")).unwrap();
        // A 12 MiB ring whose blocks retire when full rather than every millisecond, so that
        // ~80K frames fit and a round lasts long enough to measure.
        let opts = Options {
            rx_ring: RingSize {
                block_nr: 48,
                retire_ms: 1000,
                ..RingSize::default()
            },
            tx,
        };
        let open = |name: &str| {
            let p = netns::run_in(&sw, || AfPacketPort::open_with(name, max, &opts))
                .unwrap()
                .unwrap();
            assert_eq!(p.has_tx_ring(), tx != Tx::Sendmmsg, "transmit path");
            p
        };
        let (port_a, port_b) = (open("pa"), open("pb"));
        let mut engine = Engine::new(s);
        engine.attach(pa, Box::new(port_a)).unwrap();
        engine.attach(pb, Box::new(port_b)).unwrap();
        // Teach the switch where b is; then nothing listens on b's eth0.
        teach(&mut engine, pb, &tap_b, 2);
        drop(tap_b);
        Some(Setup {
            _sb: sb,
            engine,
            pa,
            gen_ns: a,
        })
    }
}
