//! How fast a TAP port moves 64-byte frames (60 bytes without the FCS) from one TAP device to
//! another, by the way it reads and writes them: one `readv`/`writev` per frame (`syscall`),
//! io_uring batches both ways (`uring`), or io_uring one way only (`rx-uring`, `tx-uring`).
//! Each variant gets two TAP ports, `aN` and `bN`, in a throw-away network namespace (removed
//! at the end; no traffic leaves it). The loop under test is the engine's: up to 32 `recv`s
//! on `aN`, then one `send_batch` of what came to `bN` (whose stack drops the frames, which
//! are for another MAC), until `recv` says nothing is waiting.
//!
//! Two modes:
//! - `drain` (the default): FRAMES frames are queued on `aN` (an AF_PACKET socket sends them
//!   out of it, and the TAP device holds them for its reader) while nothing reads, then one
//!   thread pinned to CPU 1 moves them all: no generator competes for the CPU. Reported: frames
//!   per second of wall time, and CPU time of the thread per frame (the kernel's work on both
//!   devices included: `bN`'s receive runs in the writing thread).
//! - `live`: a thread pinned to CPU 0 sends frames out of `aN` as fast as it can for
//!   a second while the loop, pinned to CPU 1, moves them; reported: frames sent and moved
//!   per second, and the loop's CPU time per frame moved (which includes its idle polling
//!   when the sender is the slower).
//!
//! Rounds alternate between the variants (in a rotating order), so a machine busy with
//! something else for a while weighs on all of them alike; the median and best round of each
//! are reported. Needs root and two CPUs.
//!
//! `cargo run --release -p l2sw-dataplane --example tap_rate -- [ROUNDS] [FRAMES] [MODE] [VARIANTS]`
//! (defaults: 7 rounds, 50000 frames, `drain`, `syscall,uring,rx-uring,tx-uring`;
//! `VERBOSE=1` prints every round)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::port::tap::{Io, Options, TapPort};
use l2sw::port::{Port, TxFrame};
use l2sw::wire::{Mac, craft};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;

const BATCH: usize = 32;
const LIVE: Duration = Duration::from_secs(1);

/// The namespace, removed on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(0), &set).unwrap();
}

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

struct Variant {
    name: String,
    a: TapPort,
    b: TapPort,
    sender: PacketSocket,
    rounds: Vec<Round>,
}

#[derive(Clone, Copy)]
struct Round {
    /// Frames sent into `a` (live mode) or queued on it (drain mode).
    sent: u64,
    moved: u64,
    wall: Duration,
    cpu: Duration,
}

impl Round {
    fn rate(&self) -> f64 {
        self.moved as f64 / self.wall.as_secs_f64()
    }

    fn cpu_ns(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.moved.max(1) as f64
    }
}

fn options(name: &str) -> Options {
    let (rx, tx) = match name {
        "syscall" => (Io::Syscall, Io::Syscall),
        "uring" => (Io::Uring, Io::Uring),
        "rx-uring" => (Io::Uring, Io::Syscall),
        "tx-uring" => (Io::Syscall, Io::Uring),
        other => panic!("unknown variant {other}"),
    };
    Options {
        rx,
        tx,
        ..Options::default()
    }
}

/// The loop under test, once: up to a batch from `a`, sent on to `b`. Returns frames read
/// and frames taken by `b`.
fn step(a: &mut TapPort, b: &mut TapPort, bufs: &mut [Vec<u8>]) -> (usize, usize) {
    let mut n = 0;
    let mut metas = [l2sw::wire::Meta::NONE; BATCH];
    while n < BATCH {
        match a.recv(&mut bufs[n]).unwrap() {
            Some(m) => {
                metas[n] = m;
                n += 1;
            }
            None => break,
        }
    }
    if n == 0 {
        return (0, 0);
    }
    let mut frames = [TxFrame::plain(&[]); BATCH];
    for (i, f) in frames[..n].iter_mut().enumerate() {
        *f = TxFrame {
            frame: &bufs[i],
            meta: metas[i],
        };
    }
    (n, b.send_batch(&frames[..n]).unwrap())
}

fn drain(v: &mut Variant, frame: &[u8], count: usize) -> Round {
    let chunk: Vec<&[u8]> = vec![frame; 64];
    let mut sent = 0;
    while sent < count {
        let want = (count - sent).min(chunk.len());
        let n = v.sender.send_many(&chunk[..want]).unwrap();
        sent += n;
        if n < want {
            std::thread::yield_now();
        }
    }
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::new()).collect();
    let (t0, c0) = (Instant::now(), thread_cpu());
    let mut moved = 0;
    loop {
        let (n, taken) = step(&mut v.a, &mut v.b, &mut bufs);
        if n == 0 {
            break;
        }
        moved += taken as u64;
    }
    Round {
        sent: sent as u64,
        moved,
        wall: t0.elapsed(),
        cpu: thread_cpu() - c0,
    }
}

fn live(v: &mut Variant, frame: &[u8]) -> Round {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::new()).collect();
    // Whatever a previous round left behind.
    while step(&mut v.a, &mut v.b, &mut bufs).0 > 0 {}
    let (t0, c0, moved) = std::thread::scope(|s| {
        let sender = &v.sender;
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        s.spawn(move || {
            pin(0);
            let chunk: Vec<&[u8]> = vec![frame; 64];
            while !stop2.load(Ordering::Relaxed) {
                let n = sender.send_many(&chunk).unwrap();
                sent2.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        let (t0, c0) = (Instant::now(), thread_cpu());
        let mut moved = 0;
        while t0.elapsed() < LIVE {
            moved += step(&mut v.a, &mut v.b, &mut bufs).1 as u64;
        }
        let r = (t0, c0, moved);
        stop.store(true, Ordering::Relaxed);
        r
    });
    let (wall, cpu) = (t0.elapsed(), thread_cpu() - c0);
    Round {
        sent: sent.load(Ordering::Relaxed),
        moved,
        wall,
        cpu,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().map_or(7, |s| s.parse().unwrap());
    let count: usize = args.get(1).map_or(50_000, |s| s.parse().unwrap());
    let mode = args.get(2).map_or("drain", String::as_str).to_owned();
    let names = args
        .get(3)
        .map_or("syscall,uring,rx-uring,tx-uring", String::as_str)
        .to_owned();
    let verbose = std::env::var_os("VERBOSE").is_some();
    assert!(mode == "drain" || mode == "live", "mode: drain or live");

    let ns = Ns(format!("l2sw-taprate-{}", std::process::id()));
    run(&["ip", "netns", "add", &ns.0]);
    for key in ["all", "default"] {
        let kv = format!("net.ipv6.conf.{key}.disable_ipv6=1");
        run(&["ip", "netns", "exec", &ns.0, "sysctl", "-qw", &kv]);
    }
    let qlen = (count + 1024).to_string();
    let mut variants: Vec<Variant> = names
        .split(',')
        .enumerate()
        .map(|(i, name)| {
            let opts = options(name);
            let (a, b) = (format!("a{i}"), format!("b{i}"));
            let pa = TapPort::create_in_with(&ns.0, &a, 1514, opts).unwrap();
            let pb = TapPort::create_in_with(&ns.0, &b, 1514, opts).unwrap();
            run(&["ip", "-n", &ns.0, "link", "set", &a, "txqueuelen", &qlen]);
            let sender = netns::run_in(&ns.0, || {
                let s = PacketSocket::open_sender(&a)?;
                s.set_qdisc_bypass()?;
                s.set_sndbuf(4 << 20)?;
                Ok::<_, l2sw::port::sys::SysError>(s)
            })
            .and_then(|r| r)
            .unwrap();
            let uses_ring = opts.rx == Io::Uring || opts.tx == Io::Uring;
            assert_eq!(pa.batched(), uses_ring, "{name}: io_uring unavailable");
            Variant {
                name: name.to_owned(),
                a: pa,
                b: pb,
                sender,
                rounds: Vec::new(),
            }
        })
        .collect();

    pin(1);
    let frame = craft::ethernet(
        Mac([2, 0, 0, 0, 0, 2]),
        Mac([2, 0, 0, 0, 0, 1]),
        craft::ETHERTYPE_EXPERIMENTAL,
        &[0x5a; 46],
    );
    assert_eq!(frame.len(), 60);
    let k = variants.len();
    for r in 0..rounds {
        for j in 0..k {
            let v = &mut variants[(r + j) % k];
            let round = if mode == "drain" {
                drain(v, &frame, count)
            } else {
                live(v, &frame)
            };
            if verbose {
                println!(
                    "round {r} {:<9} sent {:>8} moved {:>8} {:>10.0} frames/s {:>6.0} ns CPU/frame",
                    v.name,
                    round.sent,
                    round.moved,
                    round.rate(),
                    round.cpu_ns()
                );
            }
            v.rounds.push(round);
        }
    }
    println!(
        "tap_rate {mode}: {rounds} rounds{}, 60-byte frames, the loop on CPU 1",
        if mode == "drain" {
            format!(" of {count} frames")
        } else {
            format!(" of {LIVE:?}")
        }
    );
    println!(
        "{:<9} {:>13} {:>13} {:>13} {:>13} {:>9}",
        "variant", "median fps", "best fps", "median ns/f", "best ns/f", "moved %"
    );
    for v in &variants {
        let rates: Vec<f64> = v.rounds.iter().map(Round::rate).collect();
        let cpus: Vec<f64> = v.rounds.iter().map(Round::cpu_ns).collect();
        let (sent, moved) = v
            .rounds
            .iter()
            .fold((0, 0), |(s, m), r| (s + r.sent, m + r.moved));
        println!(
            "{:<9} {:>13.0} {:>13.0} {:>13.0} {:>13.0} {:>8.1}%",
            v.name,
            median(rates.clone()),
            rates.iter().copied().fold(0.0, f64::max),
            median(cpus.clone()),
            cpus.iter().copied().fold(f64::INFINITY, f64::min),
            100.0 * moved as f64 / sent.max(1) as f64
        );
    }
}
