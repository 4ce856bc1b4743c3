//! The measurements of one target, in the order they run: capacity (l2sw alone, before the
//! sink exists), rate and loss per frame size, the zero-loss rate, latency, TCP throughput
//! and FDB scale.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use l2sw::engine::Engine;
use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::wire::Mac;
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::lab::{Lab, Target};
use super::sys::{self, CpuClock};
use super::traffic::{BURST, Flow, Generator, Sent, Sink};

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
}

fn one() -> usize {
    1
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
    /// TCP throughput, Gbit/s.
    pub tcp_gbps: Option<f64>,
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
            tcp_gbps: None,
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
        for &size in &s.sizes {
            if self.rate(size).is_none_or(|m| m.fps <= 0.0) {
                out.push(format!("rate at {size} B"));
            }
        }
        if s.search_steps > 0 && self.zero_loss_fps.is_none() {
            out.push("zero-loss rate".into());
        }
        if s.latency_secs > 0.0 && self.latency.as_ref().is_none_or(|l| l.samples == 0) {
            out.push("latency".into());
        }
        if s.tcp_secs > 0.0 && self.tcp_gbps.is_none_or(|g| g <= 0.0) {
            out.push("TCP throughput".into());
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
                let at = |f: fn(&Rate) -> f64| med(&|r: &Results| r.rate(m.size).map(f));
                Rate {
                    size: m.size,
                    offered_fps: at(|x| x.offered_fps).unwrap_or(0.0),
                    fps: at(|x| x.fps).unwrap_or(0.0),
                    gbps: at(|x| x.gbps).unwrap_or(0.0),
                    loss: at(|x| x.loss).unwrap_or(0.0),
                    cpu_s_per_mframe: med(&|r: &Results| {
                        r.rate(m.size).and_then(|x| x.cpu_s_per_mframe)
                    }),
                }
            })
            .collect();
        out.zero_loss_fps = med(&|r| r.zero_loss_fps);
        out.tcp_gbps = med(&|r| r.tcp_gbps);
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

    /// The rate at `size`, if measured.
    pub fn rate(&self, size: usize) -> Option<&Rate> {
        self.rates.iter().find(|r| r.size == size)
    }
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

/// A built target with its generator and sink, measuring.
#[derive(Debug)]
pub struct Bench {
    lab: Lab,
    generator: Generator,
    sink: Option<Sink>,
    forwarder: Option<Forwarder>,
    trial: u32,
}

impl Bench {
    /// Opens the generator on a built target.
    pub fn new(lab: Lab) -> Result<Bench, BenchError> {
        let generator = Generator::open(&lab.gen_end.ns, &lab.gen_end.dev, lab.flow())?;
        Ok(Bench {
            lab,
            generator,
            sink: None,
            forwarder: None,
            trial: 0,
        })
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
            on_gen_core(&mut self.generator, |g| {
                g.run(trial, 64, None, 0.1, BURST, &[])
            })?;
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
        Ok(())
    }

    /// CPU time the switch has used so far, if it is a process of ours: l2sw's engine
    /// thread, or `ovs-vswitchd`.
    fn switch_cpu(&self) -> Option<Duration> {
        if let Some(f) = &self.forwarder {
            return Some(f.clock.now());
        }
        self.lab.ovs.as_ref()?.pid().and_then(sys::process_cpu)
    }

    fn trial(
        &mut self,
        size: usize,
        rate: Option<f64>,
        secs: f64,
        burst: usize,
        flows: &[Flow],
        record: bool,
    ) -> Result<Trial, BenchError> {
        let sink = self
            .sink
            .as_ref()
            .ok_or_else(|| BenchError::Setup("sink not open".into()))?;
        self.trial += 1;
        sink.start(self.trial, record);
        let cpu0 = self.switch_cpu();
        let trial = self.trial;
        let sent = on_gen_core(&mut self.generator, |g| {
            g.run(trial, size, rate, secs, burst, flows)
        })?;
        let (received, latencies) = sink.finish();
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

    /// The rate and loss at `size`, sending flat out for `secs`.
    pub fn rate(&mut self, size: usize, secs: f64) -> Result<Rate, BenchError> {
        let t = self.trial(size, None, secs, BURST, &[], false)?;
        Ok(Rate {
            size,
            offered_fps: t.offered(),
            fps: t.fps(),
            gbps: t.fps() * size as f64 * 8.0 / 1e9,
            loss: t.loss(),
            cpu_s_per_mframe: t.cpu_per_mframe(),
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
            let t = self.trial(64, Some(mid), secs, 8, &[], false)?;
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
        let t = self.trial(64, Some(fps), secs, 1, &[], true)?;
        let at_fps = t.offered();
        let mut l = t.latencies;
        l.sort_unstable();
        let pct = |p: f64| -> f64 {
            if l.is_empty() {
                return 0.0;
            }
            let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
            l[i] as f64 / 1e3
        };
        Ok(Latency {
            at_fps,
            samples: l.len(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
        })
    }

    /// TCP throughput from the generator's end to the sink's, one stream for `secs`.
    pub fn tcp(&mut self, secs: f64) -> Result<f64, BenchError> {
        let (a, b) = (&self.lab.gen_end, &self.lab.sink_end);
        let listener = netns::run_in(&b.ns, || TcpListener::bind((b.ip, 0)))?
            .map_err(|e| BenchError::sys("listen", "tcp", e))?;
        let to = listener
            .local_addr()
            .map_err(|e| BenchError::sys("listen", "tcp", e))?;
        let receiver = std::thread::spawn(move || -> io::Result<(u64, f64)> {
            let (mut s, _) = listener.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = vec![0u8; 1 << 18];
            let mut total = 0u64;
            let mut first = None;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                first.get_or_insert_with(Instant::now);
                total += n as u64;
            }
            Ok((total, first.map_or(0.0, |t| t.elapsed().as_secs_f64())))
        });
        let connect = |addr: SocketAddr| TcpStream::connect_timeout(&addr, Duration::from_secs(3));
        let sent = netns::run_in(&a.ns, || connect(to))
            .map_err(BenchError::from)
            .and_then(|r| r.map_err(|e| BenchError::sys("connect", "tcp", e)))
            .and_then(|mut s| {
                s.set_write_timeout(Some(Duration::from_secs(5)))
                    .and_then(|()| {
                        let buf = vec![0x5au8; 1 << 18];
                        let end = Instant::now() + Duration::from_secs_f64(secs);
                        while Instant::now() < end {
                            s.write_all(&buf)?;
                        }
                        s.shutdown(Shutdown::Write)
                    })
                    .map_err(|e| BenchError::sys("send", "tcp", e))
            });
        let got = receiver
            .join()
            .map_err(|_| BenchError::Setup("TCP receiver panicked".into()))?
            .map_err(|e| BenchError::sys("receive", "tcp", e))?;
        sent?;
        Ok(got.0 as f64 * 8.0 / got.1.max(1e-9) / 1e9)
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
        on_gen_core(&mut self.generator, |g| g.announce(&flows, TEACH))?;
        std::thread::sleep(Duration::from_millis(50));
        let t = self.trial(64, None, secs, BURST, &flows, false)?;
        Ok(FdbPoint {
            macs,
            fps: t.fps(),
            loss: t.loss(),
            cpu_s_per_mframe: t.cpu_per_mframe(),
        })
    }
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
    f[12..14].copy_from_slice(&super::traffic::ETHERTYPE.to_be_bytes());
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
/// and are kept in its results.
pub fn measure(lab: Lab, s: &Settings, step: &mut dyn FnMut(&str)) -> Results {
    let mut r = Results::new(&lab.target);
    let mut bench = match Bench::new(lab) {
        Ok(b) => b,
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
        r.rates.push(b.rate(size, s.secs)?);
    }
    let max64 = match r.rate(64) {
        Some(m) => m.clone(),
        None => b.rate(64, s.secs)?,
    };
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
    if s.tcp_secs > 0.0 {
        step("tcp");
        r.tcp_gbps = Some(b.tcp(s.tcp_secs)?);
    }
    if b.lab.target.learns() {
        for &n in &s.fdb {
            step(&format!("fdb {n} MACs"));
            r.fdb.push(b.fdb(n, s.secs)?);
        }
    }
    Ok(())
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
        r
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
        let s = Settings {
            sizes: vec![64, 1518],
            secs: 1.0,
            search_steps: 1,
            search_secs: 1.0,
            latency_fraction: 0.5,
            latency_secs: 1.0,
            tcp_secs: 1.0,
            fdb: vec![1000],
            capacity_rounds: 1,
            rounds: 1,
        };
        let missing = round(2.0, 1.0, 1.0).missing(&t, &s);
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
    }
}
