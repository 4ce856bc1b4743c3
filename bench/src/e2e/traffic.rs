//! The traffic generator and the sink: AF_PACKET sockets of the harness's own, the same for
//! every target, so that targets differ only in what sits between them.
//!
//! The generator sends in one of two ways ([`GenKind`]): batches handed to the kernel with
//! `sendmmsg`, or a TPACKET_V2 transmit ring (l2sw's own [`TxRing`]) whose slots one `send`
//! hands over together, skipping the interface's qdisc.
//!
//! Each frame carries, after its Ethernet header, a magic word, the trial's number, a
//! sequence number and the wall-clock time it was handed to the kernel. The sink reads frames
//! in place from a TPACKET_V3 ring, counts those of the current trial and, when asked, keeps
//! their latency: the kernel's receive timestamp minus the one in the payload (so the sink's
//! own scheduling never adds to it).

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use l2sw::port::sys::packet::PacketSocket;
use l2sw::port::sys::ring::{RingSize, RxRing};
use l2sw::port::sys::txring::{TxRing, TxRingSize};
use l2sw::port::sys::{SysError, netns};
use l2sw::wire::Mac;
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::sys;

const MAGIC: [u8; 4] = *b"L2BN";
const AT_MAGIC: usize = 14;
const AT_TRIAL: usize = 18;
const AT_SEQ: usize = 22;
const AT_STAMP: usize = 30;
/// Bytes of header and payload every frame needs.
const HEAD: usize = 38;

/// A source and destination MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Destination.
    pub dst: Mac,
    /// Source.
    pub src: Mac,
}

/// How the generator hands frames to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenKind {
    /// A TPACKET_V2 transmit ring: up to a burst of frames written into shared slots, then
    /// one `send` for all of them; the qdisc is skipped.
    Ring,
    /// `sendmmsg` on an AF_PACKET socket: one system call per burst, each frame copied in.
    Sendmmsg,
}

impl GenKind {
    /// The generator of runs saved before there was a choice.
    pub fn legacy() -> GenKind {
        GenKind::Sendmmsg
    }

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            GenKind::Ring => "ring",
            GenKind::Sendmmsg => "sendmmsg",
        }
    }
}

impl std::fmt::Display for GenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The generator's way out.
#[derive(Debug)]
enum Tx {
    /// A send-only socket for `sendmmsg`.
    Mmsg(PacketSocket),
    /// A transmit ring (with a virtio header in each slot, as l2sw's ports send: the kernel
    /// copies the frame into the socket buffer instead of pinning the ring's page).
    Ring(TxRing),
}

/// The generator: one AF_PACKET socket in the sending namespace.
#[derive(Debug)]
pub struct Generator {
    kind: GenKind,
    ns: String,
    dev: String,
    tx: Tx,
    frames: Vec<Vec<u8>>,
    flow: Flow,
    seq: u64,
    /// The frames carry another flow's addresses (a run with `flows` wrote them).
    readdress: bool,
}

/// What a generator run sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// Frames the kernel took.
    pub frames: u64,
    /// Wall time of the run.
    pub secs: f64,
}

/// Frames handed to the kernel per system call (`sendmmsg`, or `send` on the ring) when
/// sending flat out.
pub const BURST: usize = 64;

/// Slots of the generator's transmit ring: four bursts.
const RING_SLOTS: usize = 4 * BURST;

impl Generator {
    /// A generator of `kind` on interface `dev` of namespace `ns`, sending frames of `flow`.
    pub fn open(kind: GenKind, ns: &str, dev: &str, flow: Flow) -> Result<Generator, BenchError> {
        let tx = match kind {
            // Bound with protocol 0: it receives nothing, so nothing queues up unread.
            GenKind::Sendmmsg => Tx::Mmsg(netns::run_in(ns, || PacketSocket::open_sender(dev))??),
            GenKind::Ring => Tx::Ring(open_ring(ns, dev, TxRingSize::default().frame_size)?),
        };
        Ok(Generator {
            kind,
            ns: ns.to_owned(),
            dev: dev.to_owned(),
            tx,
            frames: Vec::new(),
            flow,
            seq: 0,
            readdress: false,
        })
    }

    /// How it sends.
    pub fn kind(&self) -> GenKind {
        self.kind
    }

    /// Builds frames of `size` bytes on the wire (the 4-byte FCS included, as RFC 2544
    /// counts them), at least 64; a ring whose slots are too small for them is replaced.
    fn shape(&mut self, size: usize) -> io::Result<()> {
        let len = size.max(64) - 4;
        if let Tx::Ring(ring) = &self.tx
            && ring.max_frame() < len
        {
            // Room for the slot's header and the virtio header besides the frame.
            let slot = (len + 64).next_power_of_two();
            self.tx = Tx::Ring(open_ring(&self.ns, &self.dev, slot).map_err(io::Error::other)?);
        }
        if self.frames.first().is_some_and(|f| f.len() == len) {
            return Ok(());
        }
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&self.flow.dst.0);
        f[6..12].copy_from_slice(&self.flow.src.0);
        f[12..14].copy_from_slice(&l2sw::wire::craft::ETHERTYPE_EXPERIMENTAL.to_be_bytes());
        f[AT_MAGIC..AT_MAGIC + 4].copy_from_slice(&MAGIC);
        for (i, b) in f[HEAD..].iter_mut().enumerate() {
            *b = i as u8;
        }
        self.frames = vec![f; BURST];
        Ok(())
    }

    /// Hands the first `n` frames to the kernel; returns how many it took.
    fn send(&mut self, n: usize) -> io::Result<u64> {
        let frames = &self.frames[..n];
        match &mut self.tx {
            Tx::Mmsg(sock) => {
                let mut refs: [&[u8]; BURST] = [&[]; BURST];
                for (r, f) in refs.iter_mut().zip(frames) {
                    *r = f;
                }
                Ok(sock.send_many(&refs[..n])? as u64)
            }
            Tx::Ring(ring) => {
                // A slot still in flight ends the batch; what the kernel refuses is dropped
                // (and not counted as offered).
                for f in frames {
                    if !ring.queue(f) {
                        break;
                    }
                }
                Ok(ring.send()?.sent as u64)
            }
        }
    }

    /// Sends `size`-byte frames of trial `trial` for `secs`, flat out (`rate` `None`) or
    /// paced at `rate` frames/s, `burst` frames per system call; frame `k` of the run takes
    /// its addresses from `flows[k % len]` when `flows` is not empty.
    pub fn run(
        &mut self,
        trial: u32,
        size: usize,
        rate: Option<f64>,
        secs: f64,
        burst: usize,
        flows: &[Flow],
    ) -> io::Result<Sent> {
        self.shape(size)?;
        if flows.is_empty() && self.readdress {
            for f in &mut self.frames {
                f[0..6].copy_from_slice(&self.flow.dst.0);
                f[6..12].copy_from_slice(&self.flow.src.0);
            }
        }
        self.readdress = !flows.is_empty();
        let burst = burst.clamp(1, BURST);
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(secs);
        let gap = rate.map(|r| Duration::from_secs_f64(burst as f64 / r.max(1.0)));
        let mut due = start;
        let mut sent = 0u64;
        let mut k = 0usize;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if let Some(gap) = gap {
                if now < due {
                    std::hint::spin_loop();
                    continue;
                }
                due += gap;
            }
            let stamp = sys::realtime_ns();
            for f in &mut self.frames[..burst] {
                if !flows.is_empty() {
                    let fl = flows[k % flows.len()];
                    f[0..6].copy_from_slice(&fl.dst.0);
                    f[6..12].copy_from_slice(&fl.src.0);
                    k += 1;
                }
                f[AT_TRIAL..AT_TRIAL + 4].copy_from_slice(&trial.to_le_bytes());
                f[AT_SEQ..AT_SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
                f[AT_STAMP..AT_STAMP + 8].copy_from_slice(&stamp.to_le_bytes());
                self.seq += 1;
            }
            sent += self.send(burst)?;
        }
        Ok(Sent {
            frames: sent,
            secs: start.elapsed().as_secs_f64(),
        })
    }

    /// Sends one frame from each source of `flows` to its destination, paced at `rate`
    /// frames/s: how stations get learned before a trial.
    pub fn announce(&mut self, flows: &[Flow], rate: f64) -> io::Result<u64> {
        let secs = flows.len() as f64 / rate;
        let mut sent = 0;
        // `run` stops on time, not on a count: go on from where a short run (a full queue)
        // stopped, within a bound.
        let start = Instant::now();
        while sent < flows.len() as u64 && start.elapsed().as_secs_f64() < secs * 3.0 + 1.0 {
            let s = self.run(0, 64, Some(rate), secs, 16, &flows[sent as usize..])?;
            sent += s.frames;
        }
        Ok(sent)
    }
}

/// A transmit ring on `dev` in namespace `ns` with slots of `slot` bytes.
fn open_ring(ns: &str, dev: &str, slot: usize) -> Result<TxRing, BenchError> {
    let size = TxRingSize {
        frame_size: slot,
        frame_nr: RING_SLOTS,
    };
    Ok(netns::run_in(ns, || TxRing::open(dev, size, true))??)
}

/// What the sink shares with the harness.
#[derive(Debug, Default)]
struct Shared {
    trial: AtomicU32,
    frames: AtomicU64,
    record: AtomicBool,
    latencies: Mutex<Vec<u64>>,
    stop: AtomicBool,
}

/// The sink: a thread reading a receive ring in the receiving namespace.
#[derive(Debug)]
pub struct Sink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// A second socket on the same interface, for frames the sink's side must send (to be
    /// learned by a bridge).
    tx: PacketSocket,
}

impl Sink {
    /// A sink on interface `dev` of namespace `ns`.
    pub fn open(ns: &str, dev: &str) -> Result<Sink, BenchError> {
        let open = || -> Result<(PacketSocket, PacketSocket), SysError> {
            Ok((PacketSocket::open(dev)?, PacketSocket::open(dev)?))
        };
        let (rx, tx) = netns::run_in(ns, open)??;
        // 32 MiB: a fifth of a second of 64-byte frames at 1.5 M frames/s.
        let size = RingSize {
            block_size: 1 << 20,
            block_nr: 32,
            retire_ms: 1,
            ..RingSize::default()
        };
        let mut ring = RxRing::new(&rx, size)?;
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("l2bench-sink".into())
            .spawn(move || {
                sys::pin(None);
                let mut lat = Vec::new();
                while !s.stop.load(Ordering::Relaxed) {
                    let trial = s.trial.load(Ordering::Relaxed);
                    let record = s.record.load(Ordering::Relaxed);
                    let mut n = 0;
                    while let Some(f) = ring.next_frame() {
                        let d = f.data;
                        if d.len() < HEAD
                            || d[AT_MAGIC..AT_MAGIC + 4] != MAGIC
                            || d[AT_TRIAL..AT_TRIAL + 4] != trial.to_le_bytes()
                        {
                            continue;
                        }
                        n += 1;
                        if record {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&d[AT_STAMP..AT_STAMP + 8]);
                            lat.push(f.stamp_ns.saturating_sub(u64::from_le_bytes(b)));
                        }
                    }
                    if n > 0 {
                        s.frames.fetch_add(n, Ordering::Relaxed);
                    }
                    if !lat.is_empty() {
                        s.latencies
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .append(&mut lat);
                    }
                    if n == 0 {
                        sys::wait_readable(rx.as_fd(), Duration::from_millis(5));
                    }
                }
            })
            .map_err(|e| BenchError::sys("start sink thread", dev, e))?;
        Ok(Sink {
            shared,
            thread: Some(thread),
            tx,
        })
    }

    /// Starts counting the frames of `trial` (and keeping their latencies if `record`).
    pub fn start(&self, trial: u32, record: bool) {
        self.shared.frames.store(0, Ordering::Relaxed);
        self.shared
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.shared.record.store(record, Ordering::Relaxed);
        self.shared.trial.store(trial, Ordering::Relaxed);
    }

    /// Waits until frames stop arriving (the queues between generator and sink have
    /// drained), then returns how many of the trial's arrived and their latencies.
    pub fn finish(&self) -> (u64, Vec<u64>) {
        let mut last = u64::MAX;
        let deadline = Instant::now() + Duration::from_secs(2);
        std::thread::sleep(Duration::from_millis(30));
        loop {
            let n = self.shared.frames.load(Ordering::Relaxed);
            if n == last || Instant::now() > deadline {
                break;
            }
            last = n;
            std::thread::sleep(Duration::from_millis(30));
        }
        self.shared.trial.store(0, Ordering::Relaxed);
        self.shared.record.store(false, Ordering::Relaxed);
        // The sink thread appends its samples after each pass over the ring; the one in
        // progress is finished within the 30 ms waits above.
        let lat = std::mem::take(
            &mut *self
                .shared
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        (self.shared.frames.load(Ordering::Relaxed), lat)
    }

    /// Sends one frame from each source in `flows` (so a bridge learns them behind the
    /// sink), paced at `rate` frames/s.
    pub fn announce(&self, flows: &[Flow], rate: f64) -> io::Result<()> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&l2sw::wire::craft::ETHERTYPE_EXPERIMENTAL.to_be_bytes());
        let start = Instant::now();
        for (i, fl) in flows.iter().enumerate() {
            f[0..6].copy_from_slice(&fl.dst.0);
            f[6..12].copy_from_slice(&fl.src.0);
            while !self.tx.send(&f)? {
                std::thread::yield_now();
            }
            let due = start + Duration::from_secs_f64((i + 1) as f64 / rate);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
