//! The measurements of one target, in the order they run: capacity (l2sw alone, before the
//! sink exists), rate and loss per frame size (and at 64 bytes with every other generator),
//! the zero-loss rate, one-way latency, the round trip and TCP throughput through the ends'
//! own IP stacks (again with their offloads off, if asked), and FDB scale.
//!
//! A round trip or TCP stream that the target does not carry is a result, kept with its
//! reason, not an error that ends the target's run; every wait in them has a deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use l2sw::engine::{Engine, Polling};
use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::wire::Mac;
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::echo::{self, Responder};
use super::lab::{Lab, Offloads, Target};
use super::sys::{self, CpuClock};
use super::traffic::{BURST, Flow, GenKind, Generator, Sent, Sink};

/// The core the generator runs on (its kernel work, and a kernel switch's, runs there too).
pub const GEN_CPU: usize = 0;
/// The core l2sw runs on.
pub const SWITCH_CPU: usize = 1;

/// How long and how much to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Frame sizes (bytes on the wire, FCS included).
    pub sizes: Vec<usize>,
    /// Seconds of each rate trial.
    pub secs: f64,
    /// Steps of the zero-loss search, and seconds of each.
    pub search_steps: usize,
    /// Seconds of each zero-loss trial.
    pub search_secs: f64,
    /// l2sw's engine: microseconds it keeps polling after a frame (`None`: the daemon's
    /// default).
    #[serde(default)]
    pub linger_us: Option<u64>,
    /// l2sw's engine never sleeps.
    #[serde(default)]
    pub busy_poll: bool,
    /// Latency is measured at this fraction of the zero-loss rate.
    pub latency_fraction: f64,
    /// Seconds of the latency trial.
    pub latency_secs: f64,
    /// Seconds of the TCP stream (0: no TCP test).
    pub tcp_secs: f64,
    /// Learned MACs of the FDB-scale trials (bridges only).
    pub fdb: Vec<u32>,
    /// Fills of the capacity test (the median is kept).
    pub capacity_rounds: usize,
    /// Rounds of the whole run, target after target; each figure is the median of the
    /// rounds (so that a machine whose speed drifts weighs on every target alike).
    #[serde(default = "one")]
    pub rounds: usize,
    /// How the generator sends: the first way for every trial, the others for one more
    /// flat-out trial of 64-byte frames each.
    #[serde(default = "legacy_generators")]
    pub generators: Vec<GenKind>,
    /// The ends' TX offloads during TCP and the round trip.
    #[serde(default = "Offloads::legacy")]
    pub offloads: Offloads,
    /// Round trips timed (0: none).
    #[serde(default)]
    pub round_trips: usize,
    /// Milliseconds from one round-trip request to the next.
    #[serde(default)]
    pub round_trip_gap_ms: f64,
}

fn one() -> usize {
    1
}

fn legacy_generators() -> Vec<GenKind> {
    vec![GenKind::legacy()]
}

impl Settings {
    /// The generator every trial uses.
    pub fn generator(&self) -> GenKind {
        self.generators
            .first()
            .copied()
            .unwrap_or_else(GenKind::legacy)
    }

    /// How many steps one target's run has (for a progress bar).
    pub fn steps(&self, target: &Target) -> usize {
        let ends = usize::from(self.round_trips > 0) + usize::from(self.tcp_secs > 0.0);
        let again = self.offloads == Offloads::Both && target.in_userspace();
        // `measure_into` steps past the capacity of kernel targets too.
        usize::from(self.capacity_rounds > 0)
            + self.sizes.len()
            + self.generators.len().saturating_sub(1)
            + if self.search_steps > 0 {
                1 + usize::from(self.latency_secs > 0.0)
            } else {
                0
            }
            + ends * if again { 2 } else { 1 }
            + if target.learns() { self.fdb.len() } else { 0 }
    }
}

/// Rate and loss at one frame size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rate {
    /// Frame size (bytes on the wire, FCS included).
    pub size: usize,
    /// Frames offered per second (what the generator's kernel took).
    pub offered_fps: f64,
    /// Frames received per second.
    pub fps: f64,
    /// Bits per second received (frames only, no preamble or gap).
    pub gbps: f64,
    /// Fraction of the offered frames lost.
    pub loss: f64,
    /// l2sw's CPU seconds per million frames received (l2sw targets).
    pub cpu_s_per_mframe: Option<f64>,
    /// How the generator sent.
    #[serde(default = "GenKind::legacy")]
    pub generator: GenKind,
}

/// Latency percentiles at a fixed rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    /// Offered rate, frames/s.
    pub at_fps: f64,
    /// Frames timed.
    pub samples: usize,
    /// Percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
}

/// Round trips through the target, one request at a time (UDP, the ends' own stacks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundTrip {
    /// Requests sent.
    pub sent: usize,
    /// Replies received in time.
    pub samples: usize,
    /// Median round trip, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

impl RoundTrip {
    /// The percentiles of `rtts_ns` (in any order) out of `sent` requests.
    pub fn of(sent: usize, mut rtts_ns: Vec<u64>) -> RoundTrip {
        rtts_ns.sort_unstable();
        let us = |p| percentile(&rtts_ns, p).map_or(0.0, |ns| ns as f64 / 1e3);
        RoundTrip {
            sent,
            samples: rtts_ns.len(),
            p50_us: us(0.50),
            p99_us: us(0.99),
        }
    }
}

/// What the ends' own IP stacks got through the target: a TCP stream and round trips. A
/// figure that could not be had has its reason instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ends {
    /// TCP throughput, Gbit/s.
    #[serde(default)]
    pub tcp_gbps: Option<f64>,
    /// Why TCP has no figure, or why its figure is short (the stream stalled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_error: Option<String>,
    /// Round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<RoundTrip>,
    /// Why the round trip has no figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_error: Option<String>,
}

impl Ends {
    /// The median of several rounds', figure by figure; the first reason any round gave.
    fn median(rounds: &[&Ends]) -> Ends {
        let med = |f: &dyn Fn(&Ends) -> Option<f64>| median(rounds.iter().filter_map(|e| f(e)));
        let first = |f: fn(&Ends) -> &Option<String>| rounds.iter().find_map(|e| f(e).clone());
        let trips: Vec<&RoundTrip> = rounds
            .iter()
            .filter_map(|e| e.round_trip.as_ref())
            .collect();
        let rt = |f: fn(&RoundTrip) -> f64| median(trips.iter().map(|r| f(r))).unwrap_or(0.0);
        Ends {
            tcp_gbps: med(&|e| e.tcp_gbps),
            tcp_error: first(|e| &e.tcp_error),
            round_trip: (!trips.is_empty()).then(|| RoundTrip {
                sent: trips.iter().map(|r| r.sent).sum(),
                samples: trips.iter().map(|r| r.samples).sum(),
                p50_us: rt(|r| r.p50_us),
                p99_us: rt(|r| r.p99_us),
            }),
            round_trip_error: first(|e| &e.round_trip_error),
        }
    }

    /// What of these is missing: `tcp`, `round trip`, each with its reason.
    fn missing(&self, s: &Settings, out: &mut Vec<String>, suffix: &str) {
        let why = |e: &Option<String>| e.as_ref().map(|e| format!(" ({e})")).unwrap_or_default();
        if s.round_trips > 0 && self.round_trip.as_ref().is_none_or(|r| r.samples == 0) {
            out.push(format!("round trip{suffix}{}", why(&self.round_trip_error)));
        }
        if s.tcp_secs > 0.0 && self.tcp_gbps.is_none_or(|g| g <= 0.0) {
            out.push(format!("TCP throughput{suffix}{}", why(&self.tcp_error)));
        }
    }
}

/// l2sw alone draining a full receive ring on one core.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capacity {
    /// Frames drained (the ring's worth).
    pub frames: u64,
    /// Frames forwarded per second of wall time.
    pub fps: f64,
    /// CPU microseconds per frame.
    pub cpu_us_per_frame: f64,
}

/// Rate with many learned MACs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FdbPoint {
    /// Learned MACs (half behind each port).
    pub macs: u32,
    /// Frames received per second, 64-byte frames spread over every learned MAC.
    pub fps: f64,
    /// Loss.
    pub loss: f64,
    /// l2sw's CPU seconds per million frames (l2sw targets).
    pub cpu_s_per_mframe: Option<f64>,
}

/// Everything measured of one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// The target's name.
    pub target: String,
    /// The frames' path.
    pub path: String,
    /// Rate and loss per frame size.
    pub rates: Vec<Rate>,
    /// Highest rate with no loss (64-byte frames), frames/s.
    pub zero_loss_fps: Option<f64>,
    /// Latency.
    pub latency: Option<Latency>,
    /// TCP and round trips, the ends' offloads as the run's setting has them.
    #[serde(flatten)]
    pub ends: Ends,
    /// TCP and round trips again with the ends' offloads off (`--offloads both`, targets
    /// whose frames cross user space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloads_off: Option<Ends>,
    /// Capacity (l2sw targets).
    pub capacity: Option<Capacity>,
    /// FDB scale (bridges).
    pub fdb: Vec<FdbPoint>,
    /// What failed, if anything did.
    pub error: Option<String>,
}

impl Results {
    fn new(target: &Target) -> Results {
        Results {
            target: target.name.to_owned(),
            path: target.path().to_owned(),
            rates: Vec::new(),
            zero_loss_fps: None,
            latency: None,
            ends: Ends::default(),
            offloads_off: None,
            capacity: None,
            fdb: Vec::new(),
            error: None,
        }
    }

    /// The results of a target that could not be built.
    pub fn failed(target: &Target, error: String) -> Results {
        Results {
            error: Some(error),
            ..Results::new(target)
        }
    }

    /// What this run should have measured of `target` under `s` and did not (or measured
    /// as nothing): the smoke test of `l2bench --quick`.
    pub fn missing(&self, target: &Target, s: &Settings) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("failed: {e}"));
            return out;
        }
        let primary = s.generator();
        for &size in &s.sizes {
            if self.rate_with(primary, size).is_none_or(|m| m.fps <= 0.0) {
                out.push(format!("rate at {size} B"));
            }
        }
        for &g in s.generators.iter().skip(1) {
            if self.rate_with(g, 64).is_none_or(|m| m.fps <= 0.0) {
                out.push(format!("rate at 64 B ({g} generator)"));
            }
        }
        if s.search_steps > 0 && self.zero_loss_fps.is_none() {
            out.push("zero-loss rate".into());
        }
        if s.search_steps > 0
            && s.latency_secs > 0.0
            && self.latency.as_ref().is_none_or(|l| l.samples == 0)
        {
            out.push("latency".into());
        }
        self.ends.missing(s, &mut out, "");
        if s.offloads == Offloads::Both && target.in_userspace() {
            self.offloads_off.clone().unwrap_or_default().missing(
                s,
                &mut out,
                " with offloads off",
            );
        }
        if target.is_l2sw() {
            if s.capacity_rounds > 0 && self.capacity.as_ref().is_none_or(|c| c.frames == 0) {
                out.push("capacity".into());
            }
            if self.rates.iter().any(|m| m.cpu_s_per_mframe.is_none()) {
                out.push("l2sw CPU time".into());
            }
        }
        if target.learns() && self.fdb.len() != s.fdb.len() || self.fdb.iter().any(|p| p.fps <= 0.0)
        {
            out.push("FDB scale".into());
        }
        out
    }

    /// The median of several rounds' results of one target, figure by figure (each rate,
    /// percentile and count its own median); a round that failed makes the whole fail.
    pub fn median(rounds: &[Results]) -> Option<Results> {
        let first = rounds.first()?;
        if let Some(failed) = rounds.iter().find(|r| r.error.is_some()) {
            return Some(failed.clone());
        }
        let med = |f: &dyn Fn(&Results) -> Option<f64>| median(rounds.iter().filter_map(f));
        let mut out = first.clone();
        out.rates = first
            .rates
            .iter()
            .map(|m| {
                let (g, z) = (m.generator, m.size);
                let at = |f: fn(&Rate) -> f64| med(&|r: &Results| r.rate_with(g, z).map(f));
                Rate {
                    size: z,
                    offered_fps: at(|x| x.offered_fps).unwrap_or(0.0),
                    fps: at(|x| x.fps).unwrap_or(0.0),
                    gbps: at(|x| x.gbps).unwrap_or(0.0),
                    loss: at(|x| x.loss).unwrap_or(0.0),
                    cpu_s_per_mframe: med(&|r: &Results| {
                        r.rate_with(g, z).and_then(|x| x.cpu_s_per_mframe)
                    }),
                    generator: g,
                }
            })
            .collect();
        out.zero_loss_fps = med(&|r| r.zero_loss_fps);
        out.ends = Ends::median(&rounds.iter().map(|r| &r.ends).collect::<Vec<_>>());
        let off: Vec<&Ends> = rounds
            .iter()
            .filter_map(|r| r.offloads_off.as_ref())
            .collect();
        out.offloads_off = (!off.is_empty()).then(|| Ends::median(&off));
        out.latency = first.latency.as_ref().map(|_| {
            let at = |f: fn(&Latency) -> f64| {
                med(&|r: &Results| r.latency.as_ref().map(f)).unwrap_or(0.0)
            };
            Latency {
                at_fps: at(|x| x.at_fps),
                samples: rounds
                    .iter()
                    .filter_map(|r| r.latency.as_ref())
                    .map(|x| x.samples)
                    .sum(),
                p50_us: at(|x| x.p50_us),
                p99_us: at(|x| x.p99_us),
                p999_us: at(|x| x.p999_us),
            }
        });
        let mut caps: Vec<Capacity> = rounds.iter().filter_map(|r| r.capacity.clone()).collect();
        caps.sort_by(|a, b| a.fps.total_cmp(&b.fps));
        out.capacity = caps.get(caps.len() / 2).cloned();
        out.fdb = first
            .fdb
            .iter()
            .map(|p| {
                let at = |f: fn(&FdbPoint) -> Option<f64>| {
                    med(&|r: &Results| r.fdb.iter().find(|q| q.macs == p.macs).and_then(f))
                };
                FdbPoint {
                    macs: p.macs,
                    fps: at(|q| Some(q.fps)).unwrap_or(0.0),
                    loss: at(|q| Some(q.loss)).unwrap_or(0.0),
                    cpu_s_per_mframe: at(|q| q.cpu_s_per_mframe),
                }
            })
            .collect();
        Some(out)
    }

    /// The rate at `size` of the generator every trial used (the first rows), if measured.
    pub fn rate(&self, size: usize) -> Option<&Rate> {
        self.rates.iter().find(|r| r.size == size)
    }

    /// The rate at `size` sent by generator `g`, if measured.
    pub fn rate_with(&self, g: GenKind, size: usize) -> Option<&Rate> {
        self.rates
            .iter()
            .find(|r| r.size == size && r.generator == g)
    }
}

/// The `p` quantile (0 to 1) of `sorted` by nearest rank: the smallest value at least a
/// fraction `p` of the values are not above. `None` if empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let n = sorted.len();
    let rank = (n as f64 * p.clamp(0.0, 1.0)).ceil() as usize;
    sorted.get(rank.clamp(1, n.max(1)) - 1).copied()
}

/// The median of `v` (the mean of the middle two of an even count), `None` if empty.
fn median(v: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// One trial: what was sent and what arrived.
#[derive(Debug, Default)]
struct Trial {
    sent: Sent,
    received: u64,
    cpu: Option<Duration>,
    latencies: Vec<u64>,
}

impl Trial {
    fn fps(&self) -> f64 {
        self.received as f64 / self.sent.secs.max(1e-9)
    }
    fn offered(&self) -> f64 {
        self.sent.frames as f64 / self.sent.secs.max(1e-9)
    }
    fn loss(&self) -> f64 {
        if self.sent.frames == 0 {
            return 1.0;
        }
        self.sent.frames.saturating_sub(self.received) as f64 / self.sent.frames as f64
    }
    fn cpu_per_mframe(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() / (self.received.max(1) as f64 / 1e6))
    }
}

/// l2sw's engine running on its own core.
#[derive(Debug)]
struct Forwarder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<Engine>>,
    clock: CpuClock,
}

impl Forwarder {
    fn start(mut engine: Engine) -> Result<Forwarder, BenchError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("l2sw".into())
            .spawn(move || {
                sys::pin(Some(SWITCH_CPU));
                engine.run(&flag).map(|()| engine)
            })
            .map_err(|e| BenchError::sys("start l2sw", "engine", e))?;
        let clock =
            CpuClock::of(&thread).map_err(|e| BenchError::sys("read CPU clock", "l2sw", e))?;
        Ok(Forwarder {
            stop,
            thread,
            clock,
        })
    }

    fn stop(self) -> Result<Engine, BenchError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(r) => r.map_err(|e| BenchError::sys("run l2sw", "engine", e)),
            Err(_) => Err(BenchError::Setup("l2sw's engine panicked".into())),
        }
    }
}

/// A built target with its generators and sink, measuring.
#[derive(Debug)]
pub struct Bench {
    lab: Lab,
    /// The generators; the first sends every trial but the other generators' own.
    generators: Vec<Generator>,
    sink: Option<Sink>,
    forwarder: Option<Forwarder>,
    /// An overlay target's far host, running while `forwarder` does.
    peer: Option<Forwarder>,
    trial: u32,
}

/// How long a TCP connection may take to open (time for one retransmitted SYN).
const TCP_CONNECT: Duration = Duration::from_secs(2);
/// How long a TCP stream may go without progress before it counts as stalled.
const TCP_STALL: Duration = Duration::from_secs(1);

/// What a TCP stream got across.
#[derive(Debug, Clone, Copy)]
struct Received {
    bytes: u64,
    /// From the first byte to the end of the stream (or to the last byte, if it stalled).
    secs: f64,
    stalled: bool,
}

impl Bench {
    /// Opens generators of `kinds` (at least one) on a built target.
    pub fn new(lab: Lab, kinds: &[GenKind]) -> Result<Bench, BenchError> {
        let kinds = if kinds.is_empty() {
            &[GenKind::legacy()][..]
        } else {
            kinds
        };
        let end = &lab.gen_end;
        let generators = kinds
            .iter()
            .map(|&k| Generator::open(k, &end.ns, &end.dev, lab.flow()))
            .collect::<Result<_, _>>()?;
        Ok(Bench {
            lab,
            generators,
            sink: None,
            forwarder: None,
            peer: None,
            trial: 0,
        })
    }

    /// The generator of kind `g`, or the first.
    fn generator(&mut self, g: Option<GenKind>) -> Result<&mut Generator, BenchError> {
        let i = match g {
            None => 0,
            Some(g) => self
                .generators
                .iter()
                .position(|x| x.kind() == g)
                .ok_or_else(|| BenchError::Setup(format!("no {g} generator open")))?,
        };
        self.generators
            .get_mut(i)
            .ok_or_else(|| BenchError::Setup("no generator open".into()))
    }

    /// l2sw alone: fills the ingress port's receive ring while the engine is stopped, then
    /// times one core draining it (nothing listens at the far end, so only l2sw's work and
    /// the kernel's transmit path are on that core). `None` for kernel targets.
    pub fn capacity(&mut self, rounds: usize) -> Result<Option<Capacity>, BenchError> {
        let Some((engine, ingress, egress)) = self.lab.engine.as_mut() else {
            return Ok(None);
        };
        let port = |name: &str| {
            engine
                .switch()
                .port_by_name(name)
                .ok_or_else(|| BenchError::Setup(format!("no port {name}")))
        };
        let (ingress, egress) = (port(ingress)?, port(egress)?);
        if self.lab.target.learns() {
            // Teach the bridge where the sink is, from a socket that is gone before the
            // drain: nothing may listen there while l2sw is timed.
            let end = &self.lab.sink_end;
            let hello = hello(end.mac);
            let sock = netns::run_in(&end.ns, || PacketSocket::open(&end.dev))??;
            sock.send(&hello)
                .map_err(|e| BenchError::sys("send", &end.dev, e))?;
            drop(sock);
            std::thread::sleep(Duration::from_millis(20));
            while engine.service(egress) > 0 {}
        }
        let mut runs = Vec::new();
        for _ in 0..rounds {
            while engine.service(ingress) > 0 {}
            self.trial += 1;
            // More than the ring holds: the kernel drops the rest.
            let trial = self.trial;
            let g = self
                .generators
                .first_mut()
                .ok_or_else(|| BenchError::Setup("no generator open".into()))?;
            on_gen_core(g, |g| g.run(trial, 64, None, 0.1, BURST, &[]))?;
            // The last block is handed over after the ring's 1 ms timeout.
            std::thread::sleep(Duration::from_millis(20));
            let before = engine.stats().tx;
            let (secs, cpu) = std::thread::scope(|s| {
                s.spawn(|| {
                    sys::pin(Some(SWITCH_CPU));
                    let clock = CpuClock::this_thread();
                    let (c0, t0) = (clock.now(), Instant::now());
                    while engine.service(ingress) > 0 {}
                    (t0.elapsed().as_secs_f64(), clock.now() - c0)
                })
                .join()
            })
            .map_err(|_| BenchError::Setup("drain panicked".into()))?;
            let frames = engine.stats().tx - before;
            if frames > 0 {
                runs.push(Capacity {
                    frames,
                    fps: frames as f64 / secs,
                    cpu_us_per_frame: cpu.as_secs_f64() * 1e6 / frames as f64,
                });
            }
        }
        runs.sort_by(|a, b| a.fps.total_cmp(&b.fps));
        Ok(runs.get(runs.len() / 2).cloned())
    }

    /// Opens the sink, starts l2sw (if it is the target) and teaches a bridge where the sink
    /// is.
    pub fn start(&mut self) -> Result<(), BenchError> {
        let end = &self.lab.sink_end;
        let sink = Sink::open(&end.ns, &end.dev)?;
        if let Some((engine, _, _)) = self.lab.engine.take() {
            self.forwarder = Some(Forwarder::start(engine)?);
        }
        if let Some(engine) = self.lab.peer.take() {
            self.peer = Some(Forwarder::start(engine)?);
        }
        if self.lab.target.learns() {
            let me = Flow {
                dst: Mac::BROADCAST,
                src: end.mac,
            };
            sink.announce(&[me], 1000.0)
                .map_err(|e| BenchError::sys("send", "sink", e))?;
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sink = Some(sink);
        Ok(())
    }

    /// Stops l2sw.
    pub fn stop(&mut self) -> Result<(), BenchError> {
        if let Some(f) = self.forwarder.take() {
            f.stop()?;
        }
        if let Some(f) = self.peer.take() {
            f.stop()?;
        }
        Ok(())
    }

    /// CPU time the switch has used so far, if it is a process of ours: l2sw's engine
    /// thread, or `ovs-vswitchd`.
    fn switch_cpu(&self) -> Option<Duration> {
        if let Some(f) = &self.forwarder {
            // An overlay's far host works for the same frames: both hosts' engines count.
            let peer = self.peer.as_ref().map_or(Duration::ZERO, |p| p.clock.now());
            return Some(f.clock.now() + peer);
        }
        self.lab.ovs.as_ref()?.pid().and_then(sys::process_cpu)
    }

    #[allow(clippy::too_many_arguments)]
    fn trial(
        &mut self,
        gen_kind: Option<GenKind>,
        size: usize,
        rate: Option<f64>,
        secs: f64,
        burst: usize,
        flows: &[Flow],
        record: bool,
    ) -> Result<Trial, BenchError> {
        self.trial += 1;
        let trial = self.trial;
        self.sink()?.start(trial, record);
        let cpu0 = self.switch_cpu();
        let sent = on_gen_core(self.generator(gen_kind)?, |g| {
            g.run(trial, size, rate, secs, burst, flows)
        })?;
        let (received, latencies) = self.sink()?.finish();
        let cpu = self
            .switch_cpu()
            .zip(cpu0)
            .map(|(c, c0)| c.saturating_sub(c0));
        Ok(Trial {
            sent,
            received,
            cpu,
            latencies,
        })
    }

    fn sink(&self) -> Result<&Sink, BenchError> {
        self.sink
            .as_ref()
            .ok_or_else(|| BenchError::Setup("sink not open".into()))
    }

    /// The rate and loss at `size`, sending flat out for `secs` with generator `g` (the
    /// first if `None`).
    pub fn rate(&mut self, g: Option<GenKind>, size: usize, secs: f64) -> Result<Rate, BenchError> {
        let generator = self.generator(g)?.kind();
        let t = self.trial(g, size, None, secs, BURST, &[], false)?;
        Ok(Rate {
            size,
            offered_fps: t.offered(),
            fps: t.fps(),
            gbps: t.fps() * size as f64 * 8.0 / 1e9,
            loss: t.loss(),
            cpu_s_per_mframe: t.cpu_per_mframe(),
            generator,
        })
    }

    /// The highest rate of 64-byte frames with no loss (RFC 2544's throughput), by binary
    /// search below `max` (the flat-out trial), `steps` trials of `secs`.
    pub fn zero_loss(&mut self, max: &Rate, steps: usize, secs: f64) -> Result<f64, BenchError> {
        if max.loss == 0.0 {
            return Ok(max.fps);
        }
        let (mut lo, mut hi) = (0.0, max.offered_fps);
        for _ in 0..steps {
            let mid = (lo + hi) / 2.0;
            let t = self.trial(None, 64, Some(mid), secs, 8, &[], false)?;
            if t.received >= t.sent.frames && t.sent.frames > 0 {
                lo = t.offered().min(mid);
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Latency percentiles of 64-byte frames sent one per system call at `fps`.
    pub fn latency(&mut self, fps: f64, secs: f64) -> Result<Latency, BenchError> {
        let t = self.trial(None, 64, Some(fps), secs, 1, &[], true)?;
        let at_fps = t.offered();
        let mut l = t.latencies;
        l.sort_unstable();
        let pct = |p: f64| percentile(&l, p).map_or(0.0, |ns| ns as f64 / 1e3);
        Ok(Latency {
            at_fps,
            samples: l.len(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
        })
    }

    /// Up to `count` round trips from the generator's end to a UDP echo responder at the
    /// sink's, a request every `gap`, within about twice the time that takes.
    pub fn round_trip(&mut self, count: usize, gap: Duration) -> Result<RoundTrip, BenchError> {
        let (a, b) = (&self.lab.gen_end, &self.lab.sink_end);
        let responder = Responder::start(&b.ns, b.ip)?;
        let limit = gap * u32::try_from(count).unwrap_or(u32::MAX) * 2 + Duration::from_secs(1);
        let to = responder.addr();
        let drops = self.checksum_drops();
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                sys::pin(Some(GEN_CPU));
                echo::client(&a.ns, a.ip, to, count, gap, limit)
            })
            .join()
        })
        .map_err(|_| BenchError::Setup("round-trip client panicked".into()))?;
        drop(responder);
        let got = got.map_err(|e| self.explain(e, drops))?;
        Ok(RoundTrip::of(got.sent, got.rtts_ns))
    }

    /// TCP throughput from the generator's end to the sink's, one stream for `secs`, and
    /// why the figure is short if the stream stalled. Bounded in time: the connection has
    /// `TCP_CONNECT` (2 s), the stream `secs` and `TCP_STALL` (1 s) more on either side.
    pub fn tcp(&mut self, secs: f64) -> Result<(f64, Option<String>), BenchError> {
        let drops = self.checksum_drops();
        let (a, b) = (&self.lab.gen_end, &self.lab.sink_end);
        let tcp = |op, e| BenchError::sys(op, format!("TCP {} -> {}", a.ip, b.ip), e);
        // Errors of the stream itself (a reset) are the path's, not the harness's.
        let path = |op: &str, e: io::Error| BenchError::Traffic(format!("TCP {op}: {e}"));
        let listener =
            netns::run_in(&b.ns, || TcpListener::bind((b.ip, 0)))?.map_err(|e| tcp("listen", e))?;
        let to = listener.local_addr().map_err(|e| tcp("listen", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| tcp("listen", e))?;
        let stream = Duration::from_secs_f64(secs);
        let gave_up = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&gave_up);
        let receiver = std::thread::spawn(move || receive(&listener, stream, &flag));
        let connect = |addr: SocketAddr| TcpStream::connect_timeout(&addr, TCP_CONNECT);
        let sent = netns::run_in(&a.ns, || connect(to))
            .map_err(BenchError::from)
            .inspect_err(|_| gave_up.store(true, Ordering::Relaxed))
            .and_then(|r| {
                r.map_err(|e| {
                    BenchError::Traffic(format!(
                        "no TCP connection to {to} in {} s ({e})",
                        TCP_CONNECT.as_secs()
                    ))
                })
            })
            .and_then(|s| send(s, stream).map_err(|e| path("send", e)));
        let got = receiver
            .join()
            .map_err(|_| BenchError::Setup("TCP receiver panicked".into()))?
            .map_err(|e| path("receive", e));
        let stalled_out = sent.map_err(|e| self.explain(e, drops))?;
        let got = match got? {
            Some(g) if g.bytes > 0 => g,
            _ => {
                let e = BenchError::Traffic(format!(
                    "connected to {to}, but no data arrived in {:.1} s",
                    secs + TCP_STALL.as_secs_f64()
                ));
                return Err(self.explain(e, drops));
            }
        };
        let gbps = got.bytes as f64 * 8.0 / got.secs.max(1e-9) / 1e9;
        let short = (got.stalled || stalled_out).then(|| {
            format!(
                "stalled: no progress for {} s after {:.1} MB",
                TCP_STALL.as_secs(),
                got.bytes as f64 / 1e6
            )
        });
        Ok((gbps, short))
    }

    /// Packets both ends' kernels have dropped for bad checksums so far (UDP, TCP).
    fn checksum_drops(&self) -> Option<(u64, u64)> {
        let (a, b) = (&self.lab.gen_end, &self.lab.sink_end);
        let (ua, ta) = echo::checksum_drops(&a.ns)?;
        let (ub, tb) = echo::checksum_drops(&b.ns)?;
        Some((ua + ub, ta + tb))
    }

    /// `e`, with the packets the ends dropped for bad checksums since `before` if any were:
    /// the trace of offloaded checksums forwarded unfinished.
    fn explain(&self, e: BenchError, before: Option<(u64, u64)>) -> BenchError {
        let BenchError::Traffic(why) = e else {
            return e;
        };
        let after = self.checksum_drops();
        let Some(((u0, t0), (u1, t1))) = before.zip(after) else {
            return BenchError::Traffic(why);
        };
        let (udp, tcp) = (u1.saturating_sub(u0), t1.saturating_sub(t0));
        if udp + tcp == 0 {
            return BenchError::Traffic(why);
        }
        BenchError::Traffic(format!(
            "{why}; the ends dropped {udp} UDP and {tcp} TCP packets with bad checksums"
        ))
    }

    /// The rate with `macs` learned MACs: half behind the sink, taught by frames from the
    /// sink's side, half behind the generator, taught by one pass of the trial's flows;
    /// then 64-byte frames flat out, each from the next source to a destination far from
    /// the last one's in the table.
    pub fn fdb(&mut self, macs: u32, secs: f64) -> Result<FdbPoint, BenchError> {
        let half = (macs / 2).max(1);
        let behind_sink: Vec<Flow> = (0..half)
            .map(|j| Flow {
                dst: self.lab.gen_end.mac,
                src: mac(0xb0, j),
            })
            .collect();
        let flows: Vec<Flow> = (0..half)
            .map(|i| Flow {
                dst: mac(0xb0, spread(i, half)),
                src: mac(0xa0, i),
            })
            .collect();
        // Learning rates low enough that nothing is lost on the way.
        const TEACH: f64 = 200_000.0;
        self.sink
            .as_ref()
            .ok_or_else(|| BenchError::Setup("sink not open".into()))?
            .announce(&behind_sink, TEACH)
            .map_err(|e| BenchError::sys("send", "sink", e))?;
        on_gen_core(self.generator(None)?, |g| g.announce(&flows, TEACH))?;
        std::thread::sleep(Duration::from_millis(50));
        let t = self.trial(None, 64, None, secs, BURST, &flows, false)?;
        Ok(FdbPoint {
            macs,
            fps: t.fps(),
            loss: t.loss(),
            cpu_s_per_mframe: t.cpu_per_mframe(),
        })
    }
}

/// Accepts one connection on `listener` (non-blocking) within [`TCP_CONNECT`] and a second
/// (or until `gave_up` is set), and reads it to its end, for at most `stream` and
/// [`TCP_STALL`] twice over. `None` if nobody connected.
fn receive(
    listener: &TcpListener,
    stream: Duration,
    gave_up: &AtomicBool,
) -> io::Result<Option<Received>> {
    let deadline = Instant::now() + TCP_CONNECT + Duration::from_secs(1);
    let mut s = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || gave_up.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                sys::wait_readable(listener.as_fd(), left.min(Duration::from_millis(50)));
            }
            Err(e) => return Err(e),
        }
    };
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(TCP_STALL))?;
    let end = Instant::now() + stream + 2 * TCP_STALL;
    let mut buf = vec![0u8; 1 << 18];
    let (mut bytes, mut first, mut last) = (0u64, None, Instant::now());
    let mut stalled = false;
    loop {
        if Instant::now() >= end {
            stalled = true;
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => {
                last = Instant::now();
                break;
            }
            Ok(n) => {
                last = Instant::now();
                first.get_or_insert(last);
                bytes += n as u64;
            }
            Err(e) if sys::timed_out(&e) => {
                stalled = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset after the data is an end like another.
            Err(e) if bytes > 0 && e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Some(Received {
        bytes,
        secs: first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
        stalled,
    }))
}

/// Writes to `s` for `stream`, then closes its sending side; `true` if a write made no
/// progress for [`TCP_STALL`] (and the stream was cut short there).
fn send(mut s: TcpStream, stream: Duration) -> io::Result<bool> {
    s.set_write_timeout(Some(TCP_STALL))?;
    let buf = vec![0x5au8; 1 << 18];
    let end = Instant::now() + stream;
    let mut stalled = false;
    while Instant::now() < end {
        match s.write(&buf) {
            Ok(_) => {}
            Err(e) if sys::timed_out(&e) => {
                stalled = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The receiver gave up on a stalled stream and closed it.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ) =>
            {
                stalled = true;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    // A stalled stream may not take the FIN either: the receiver's deadline ends it.
    let _ = s.shutdown(Shutdown::Write);
    Ok(stalled)
}

/// Runs `work` with the generator on a thread pinned to the generator's core.
fn on_gen_core<T: Send>(
    g: &mut Generator,
    work: impl FnOnce(&mut Generator) -> io::Result<T> + Send,
) -> Result<T, BenchError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            sys::pin(Some(GEN_CPU));
            work(g)
        })
        .join()
    })
    .map_err(|_| BenchError::Setup("generator panicked".into()))?
    .map_err(|e| BenchError::sys("send", "generator", e))
}

/// A broadcast frame from `src`, for a bridge to learn.
fn hello(src: Mac) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&Mac::BROADCAST.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&l2sw::wire::craft::ETHERTYPE_EXPERIMENTAL.to_be_bytes());
    f
}

/// MAC `02:TT:nn:nn:nn:nn`.
fn mac(tag: u8, n: u32) -> Mac {
    let b = n.to_be_bytes();
    Mac([2, tag, b[0], b[1], b[2], b[3]])
}

/// `i * odd mod n`: a permutation of `0..n` for `n` a power of two, consecutive `i` far
/// apart; for other `n` merely a spread.
fn spread(i: u32, n: u32) -> u32 {
    i.wrapping_mul(0x9e37_79b1) % n
}

/// Measures everything of one built target. Errors in one measurement end the target's run
/// and are kept in its results (but a TCP stream or round trip that the target does not
/// carry is kept as such, and the run goes on).
pub fn measure(lab: Lab, s: &Settings, step: &mut dyn FnMut(&str)) -> Results {
    let mut r = Results::new(&lab.target);
    let mut bench = match Bench::new(lab, &s.generators) {
        Ok(mut b) => {
            let mut polling = Polling {
                busy: s.busy_poll,
                ..Polling::default()
            };
            if let Some(us) = s.linger_us {
                polling.linger = Duration::from_micros(us);
            } else if b.lab.peer.is_some() {
                // An overlay's two hosts share one core here: an engine lingering after a
                // frame would spin through the other's time slice while the other's frames
                // wait (on two hosts each has its own core). Unless told otherwise, both
                // sleep as soon as they are idle.
                polling.linger = Duration::ZERO;
            }
            if let Some((engine, _, _)) = b.lab.engine.as_mut() {
                engine.set_polling(polling);
            }
            if let Some(peer) = b.lab.peer.as_mut() {
                peer.set_polling(polling);
            }
            b
        }
        Err(e) => {
            r.error = Some(e.to_string());
            return r;
        }
    };
    if let Err(e) = measure_into(&mut bench, s, &mut r, step) {
        r.error = Some(e.to_string());
    }
    if let Err(e) = bench.stop()
        && r.error.is_none()
    {
        r.error = Some(e.to_string());
    }
    r
}

fn measure_into(
    b: &mut Bench,
    s: &Settings,
    r: &mut Results,
    step: &mut dyn FnMut(&str),
) -> Result<(), BenchError> {
    if s.capacity_rounds > 0 {
        step("capacity");
        r.capacity = b.capacity(s.capacity_rounds)?;
    }
    b.start()?;
    for &size in &s.sizes {
        step(&format!("rate {size} B"));
        r.rates.push(b.rate(None, size, s.secs)?);
    }
    let max64 = match r.rate(64) {
        Some(m) => m.clone(),
        None => b.rate(None, 64, s.secs)?,
    };
    for &g in s.generators.iter().skip(1) {
        step(&format!("rate 64 B, {g} generator"));
        r.rates.push(b.rate(Some(g), 64, s.secs)?);
    }
    if s.search_steps > 0 {
        step("zero-loss search");
        let z = b.zero_loss(&max64, s.search_steps, s.search_secs)?;
        r.zero_loss_fps = Some(z);
        if s.latency_secs > 0.0 {
            step("latency");
            let base = if z > 0.0 { z } else { max64.fps };
            r.latency = Some(b.latency(base * s.latency_fraction, s.latency_secs)?);
        }
    }
    r.ends = ends(b, s, step, "")?;
    if s.offloads == Offloads::Both && b.lab.target.in_userspace() {
        b.lab.disable_offloads()?;
        r.offloads_off = Some(ends(b, s, step, ", offloads off")?);
    }
    if b.lab.target.learns() {
        for &n in &s.fdb {
            step(&format!("fdb {n} MACs"));
            r.fdb.push(b.fdb(n, s.secs)?);
        }
    }
    Ok(())
}

/// The round trip and TCP through the ends' own stacks; what the target does not carry is
/// kept with its reason. Only the harness's own failures are errors.
fn ends(
    b: &mut Bench,
    s: &Settings,
    step: &mut dyn FnMut(&str),
    what: &str,
) -> Result<Ends, BenchError> {
    let mut e = Ends::default();
    let kept = |r: Result<(), BenchError>, why: &mut Option<String>| match r {
        Err(BenchError::Traffic(t)) => {
            *why = Some(t);
            Ok(())
        }
        other => other,
    };
    if s.round_trips > 0 {
        step(&format!("round trip{what}"));
        let gap = Duration::from_secs_f64(s.round_trip_gap_ms.max(0.0) / 1e3);
        let r = b.round_trip(s.round_trips, gap).map(|rt| {
            e.round_trip = Some(rt);
        });
        kept(r, &mut e.round_trip_error)?;
    }
    if s.tcp_secs > 0.0 {
        step(&format!("tcp{what}"));
        let r = b.tcp(s.tcp_secs).map(|(g, short)| {
            e.tcp_gbps = Some(g);
            e.tcp_error = short;
        });
        kept(r, &mut e.tcp_error)?;
    }
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::e2e::lab::target;

    fn round(fps: f64, p50: f64, capacity: f64) -> Results {
        let mut r = Results::new(&target("l2sw-bridge").unwrap());
        r.rates.push(Rate {
            size: 64,
            offered_fps: fps * 1.1,
            fps,
            gbps: fps * 64.0 * 8.0 / 1e9,
            loss: 0.0,
            cpu_s_per_mframe: Some(fps / 1e6),
            generator: GenKind::Ring,
        });
        r.latency = Some(Latency {
            at_fps: fps / 2.0,
            samples: 10,
            p50_us: p50,
            p99_us: p50 * 2.0,
            p999_us: p50 * 3.0,
        });
        r.capacity = Some(Capacity {
            frames: 1000,
            fps: capacity,
            cpu_us_per_frame: 1e6 / capacity,
        });
        r.ends.tcp_gbps = Some(fps);
        r.ends.round_trip = Some(RoundTrip {
            sent: 10,
            samples: 10,
            p50_us: p50 * 3.0,
            p99_us: p50 * 5.0,
        });
        r
    }

    fn settings() -> Settings {
        Settings {
            sizes: vec![64, 1518],
            secs: 1.0,
            search_steps: 1,
            search_secs: 1.0,
            linger_us: None,
            busy_poll: false,
            latency_fraction: 0.5,
            latency_secs: 1.0,
            tcp_secs: 1.0,
            fdb: vec![1000],
            capacity_rounds: 1,
            rounds: 1,
            generators: vec![GenKind::Ring],
            offloads: Offloads::On,
            round_trips: 100,
            round_trip_gap_ms: 1.0,
        }
    }

    #[test]
    fn the_median_of_rounds_is_taken_figure_by_figure() {
        let rounds = [
            round(3.0, 10.0, 100.0),
            round(1.0, 30.0, 300.0),
            round(2.0, 20.0, 200.0),
        ];
        let m = Results::median(&rounds).unwrap();
        let r = m.rate(64).unwrap();
        assert_eq!((r.fps, r.offered_fps), (2.0, 2.2));
        assert_eq!(r.cpu_s_per_mframe, Some(2e-6));
        let l = m.latency.unwrap();
        assert_eq!((l.p50_us, l.p99_us, l.samples), (20.0, 40.0, 30));
        // The middle capacity run, whole (its frames and CPU belong to it).
        let c = m.capacity.unwrap();
        assert_eq!((c.fps, c.cpu_us_per_frame), (200.0, 1e6 / 200.0));
        assert_eq!(m.ends.tcp_gbps, Some(2.0));
        let rt = m.ends.round_trip.unwrap();
        assert_eq!(
            (rt.p50_us, rt.p99_us, rt.samples, rt.sent),
            (60.0, 100.0, 30, 30)
        );
        assert_eq!(median([4.0, 1.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn a_failed_round_fails_the_target_and_the_smoke_test_names_what_is_missing() {
        let mut bad = round(1.0, 1.0, 1.0);
        bad.error = Some("generator panicked".into());
        let m = Results::median(&[round(2.0, 1.0, 1.0), bad]).unwrap();
        assert_eq!(m.error.as_deref(), Some("generator panicked"));
        let t = target("l2sw-bridge").unwrap();
        let mut s = settings();
        let mut r = round(2.0, 1.0, 1.0);
        r.ends.tcp_gbps = None;
        let missing = r.missing(&t, &s);
        assert_eq!(
            missing,
            [
                "rate at 1518 B",
                "zero-loss rate",
                "TCP throughput",
                "FDB scale"
            ]
        );
        assert!(m.missing(&t, &s)[0].starts_with("failed"));
        // What the target did not carry is missing, with its reason; so are the second
        // generator's rate and the figures with offloads off.
        r.ends.tcp_error = Some("no TCP connection".into());
        r.ends.round_trip = None;
        r.ends.round_trip_error = Some("no UDP reply".into());
        s.sizes = vec![64];
        s.search_steps = 0;
        s.fdb.clear();
        s.generators.push(GenKind::Sendmmsg);
        s.offloads = Offloads::Both;
        r.offloads_off = Some(Ends {
            tcp_gbps: Some(1.0),
            ..Ends::default()
        });
        assert_eq!(
            r.missing(&t, &s),
            [
                "rate at 64 B (sendmmsg generator)",
                "round trip (no UDP reply)",
                "TCP throughput (no TCP connection)",
                "round trip with offloads off",
            ]
        );
        // A kernel target has no second measurement with offloads off.
        let mut k = round(2.0, 1.0, 1.0);
        k.target = "kernel-bridge".into();
        k.rates.push(Rate {
            generator: GenKind::Sendmmsg,
            ..k.rates[0].clone()
        });
        assert!(k.missing(&target("kernel-bridge").unwrap(), &s).is_empty());
    }

    fn loopback() -> TcpListener {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    }

    #[test]
    fn a_tcp_stream_is_read_to_its_end_and_a_stalled_one_cut_short() {
        // A whole stream: sent for a while, then closed.
        let l = loopback();
        let to = l.local_addr().unwrap();
        let stream = Duration::from_millis(200);
        let sender = std::thread::spawn(move || send(TcpStream::connect(to).unwrap(), stream));
        let got = receive(&l, stream, &AtomicBool::new(false))
            .unwrap()
            .unwrap();
        assert!(!sender.join().unwrap().unwrap());
        assert!(got.bytes > 0 && !got.stalled && got.secs > 0.1, "{got:?}");
        // A stalled one: a little data, then nothing, the connection left open.
        let l = loopback();
        let to = l.local_addr().unwrap();
        let mut c = TcpStream::connect(to).unwrap();
        c.write_all(b"some bytes").unwrap();
        let t0 = Instant::now();
        let got = receive(&l, Duration::from_secs(5), &AtomicBool::new(false))
            .unwrap()
            .unwrap();
        assert!(got.stalled && got.bytes == 10, "{got:?}");
        let waited = t0.elapsed();
        assert!(waited >= TCP_STALL && waited < TCP_STALL * 3, "{waited:?}");
    }

    #[test]
    fn the_tcp_receiver_stops_waiting_when_the_sender_gives_up() {
        let l = loopback();
        let t0 = Instant::now();
        assert!(
            receive(&l, Duration::from_secs(1), &AtomicBool::new(true))
                .unwrap()
                .is_none()
        );
        assert!(t0.elapsed() < TCP_CONNECT);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 0.999), Some(100));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1, 2, 3], 2.0), Some(3));
        let rt = RoundTrip::of(5, vec![40_000, 10_000, 30_000, 20_000]);
        assert_eq!((rt.sent, rt.samples), (5, 4));
        assert_eq!((rt.p50_us, rt.p99_us), (20.0, 40.0));
        assert_eq!(RoundTrip::of(3, Vec::new()).p50_us, 0.0);
    }

    #[test]
    fn the_first_reason_of_any_round_is_kept() {
        let ok = Ends {
            tcp_gbps: Some(3.0),
            ..Ends::default()
        };
        let bad = Ends {
            tcp_error: Some("no TCP connection".into()),
            round_trip_error: Some("no UDP reply".into()),
            ..Ends::default()
        };
        let m = Ends::median(&[&ok, &bad, &ok]);
        assert_eq!(m.tcp_gbps, Some(3.0));
        assert_eq!(m.tcp_error.as_deref(), Some("no TCP connection"));
        assert_eq!(m.round_trip, None);
        assert_eq!(m.round_trip_error.as_deref(), Some("no UDP reply"));
    }

    #[test]
    fn results_saved_before_the_new_fields_still_read() {
        let old = r#"{"target": "l2sw-bridge", "path": "a -> b", "zero_loss_fps": 1.0,
            "rates": [{"size": 64, "offered_fps": 2.0, "fps": 1.0, "gbps": 0.1, "loss": 0.5,
                       "cpu_s_per_mframe": null}],
            "latency": null, "tcp_gbps": 2.5, "capacity": null, "fdb": [], "error": null}"#;
        let r: Results = serde_json::from_str(old).unwrap();
        assert_eq!(r.rates[0].generator, GenKind::Sendmmsg);
        assert_eq!(r.ends.tcp_gbps, Some(2.5));
        assert_eq!(
            (r.ends.round_trip.as_ref(), r.offloads_off.as_ref()),
            (None, None)
        );
        // And what is written now reads back the same.
        let mut new = r.clone();
        new.ends.tcp_error = Some("stalled".into());
        new.offloads_off = Some(Ends::default());
        let again: Results = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(again.ends, new.ends);
        assert_eq!(again.offloads_off, new.offloads_off);
        let s: Settings = serde_json::from_str(
            r#"{"sizes": [64], "secs": 0.4, "search_steps": 3, "search_secs": 0.2,
                "latency_fraction": 0.5, "latency_secs": 0.3, "tcp_secs": 0.5,
                "fdb": [], "capacity_rounds": 1}"#,
        )
        .unwrap();
        assert_eq!(s.generators, [GenKind::Sendmmsg]);
        assert_eq!((s.offloads, s.round_trips, s.rounds), (Offloads::Off, 0, 1));
    }
}
