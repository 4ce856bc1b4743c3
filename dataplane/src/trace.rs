//! Seeing frames: per-frame trace records (what was decided and why) and packet capture.
//!
//! Both are off by default and then cost one test of an empty `Option` per batch, never per
//! frame. When on, a [`Tracer`] writes one [`TraceRecord`] per frame of the chosen port (or
//! every port) until its count runs out: ingress port, the header summary, the VLAN, what the
//! FDB learned, the rule that decided with the kernel function it mirrors, and where the frame
//! went or why it was dropped. A [`Capture`] keeps copies of the frames a port receives and
//! sends, as they were on the wire, for `l2ctl capture` to write into a pcapng file.
//!
//! Records and frames wait in bounded queues until the control socket takes them; when a
//! reader is slow the oldest go and are counted (`lost`), so tracing never grows memory
//! without bound and never blocks forwarding.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::fwd::{Batch, Decision, Learned, PortId, Switch, Verdict, Vid};
use crate::wire::{Meta, Summary};

/// Records or frames kept for the reader at most.
pub const QUEUE: usize = 4096;

/// What happened to one frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Its number in this trace, from 1.
    pub seq: u64,
    /// When it was decided, in microseconds since the Unix epoch.
    pub time_us: u64,
    /// The port it came in on.
    pub ingress: String,
    /// Its length in bytes.
    pub len: usize,
    /// What travelled beside it, for a super-frame or a checksum left to complete: the
    /// segmentation and segment size, the checksum's offsets (`tcp4 seg 1448, csum@34+16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload: Option<String>,
    /// The headers, as tcpdump would print them.
    pub summary: String,
    /// From an overlay port: the remote VTEP the frame came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_vtep: Option<String>,
    /// To an overlay port, a known unicast: the remote VTEP its FDB entry named (a flood
    /// goes to every VTEP of the port's flood list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_vtep: Option<String>,
    /// The VLAN it was classified into ([`Vid::UNAWARE`]: none).
    pub vid: Vid,
    /// What learning its source did (`None`: the mode does not learn or did not get there).
    pub learned: Option<String>,
    /// The kernel function whose rule decided.
    pub kernel_fn: Cow<'static, str>,
    /// The rule, in words.
    pub rule: Cow<'static, str>,
    /// The ports it was sent to.
    pub egress: Vec<String>,
    /// Whether the switch's own host side got a copy.
    pub host: bool,
    /// Why it went nowhere, if it did.
    pub drop: Option<Cow<'static, str>>,
    /// The drop reason's description.
    pub drop_why: Option<Cow<'static, str>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Which frames to look at and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Selection {
    port: Option<PortId>,
    remaining: u64,
}

impl Selection {
    /// Whether a frame of `port` is wanted; counts it.
    #[inline]
    fn take(&mut self, port: PortId) -> bool {
        if self.remaining == 0 || self.port.is_some_and(|p| p != port) {
            return false;
        }
        self.remaining -= 1;
        true
    }
}

/// A bounded queue that drops its oldest entry when full, counting it.
#[derive(Debug, Clone)]
struct Queue<T> {
    items: VecDeque<T>,
    lost: u64,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: VecDeque::new(),
            lost: 0,
        }
    }
}

impl<T> Queue<T> {
    fn push(&mut self, item: T) {
        if self.items.len() == QUEUE {
            self.items.pop_front();
            self.lost += 1;
        }
        self.items.push_back(item);
    }

    fn take(&mut self) -> Vec<T> {
        self.items.drain(..).collect()
    }
}

/// The headers kept of a traced frame: enough for Ethernet, two VLAN tags, IPv6 and UDP.
const HEAD: usize = 96;

/// A traced frame as the forwarding thread keeps it: a copy of its headers and the decision,
/// turned into words only when the records are taken (off the per-frame path).
#[derive(Debug, Clone)]
struct Raw {
    seq: u64,
    time_us: u64,
    ingress: PortId,
    len: usize,
    head: [u8; HEAD],
    meta: Meta,
    decision: Decision,
}

impl Raw {
    fn render(&self, sw: &Switch) -> TraceRecord {
        let d = &self.decision;
        let (drop, drop_why) = match d.verdict {
            Verdict::Drop(r) => (Some(r.name().into()), Some(r.describe().into())),
            _ => (None, None),
        };
        let learned = d.learned.map(|l| match l {
            Learned::New => "new entry".to_owned(),
            Learned::Refreshed => "refreshed".to_owned(),
            Learned::Moved { from } => format!("moved here from {}", sw.port_name(from)),
            Learned::Sticky => "sticky entry elsewhere, kept".to_owned(),
            Learned::OwnAddress => "one of the switch's own addresses, not learned".to_owned(),
            Learned::AtCap => "table full (max_learned), not learned".to_owned(),
            Learned::PortCap => {
                "port at its own max_learned (port security), not learned".to_owned()
            }
            Learned::Off => "learning off".to_owned(),
        });
        let head = &self.head[..self.len.min(HEAD)];
        let offload = Meta {
            vtep: None,
            snoop: false,
            ..self.meta
        };
        TraceRecord {
            seq: self.seq,
            time_us: self.time_us,
            ingress: sw.port_name(self.ingress),
            len: self.len,
            offload: (offload != Meta::NONE).then(|| offload.to_string()),
            summary: Summary::new(head).to_string(),
            from_vtep: self.meta.vtep.map(|v| v.to_string()),
            to_vtep: d.vtep.map(|v| v.to_string()),
            vid: d.vid,
            learned,
            kernel_fn: d.why.kernel_fn().into(),
            rule: d.why.describe().into(),
            egress: d.verdict.ports().iter().map(|p| sw.port_name(p)).collect(),
            host: d.verdict.to_host(),
            drop,
            drop_why,
        }
    }
}

/// A trace in progress.
#[derive(Debug, Clone)]
pub struct Tracer {
    selection: Selection,
    seq: u64,
    queue: Queue<Raw>,
}

impl Tracer {
    /// Traces the next `count` frames received on `port` (`None`: on any port).
    pub fn new(port: Option<PortId>, count: u64) -> Tracer {
        Tracer {
            selection: Selection {
                port,
                remaining: count,
            },
            seq: 0,
            queue: Queue::default(),
        }
    }

    /// Keeps the decision `d` for `frame`, received on `ingress`, if it is wanted: a copy of
    /// the headers and the decision, no formatting.
    #[inline]
    pub fn record(&mut self, ingress: PortId, frame: &[u8], d: &Decision) {
        self.record_at(now_us(), ingress, frame, Meta::NONE, d);
    }

    #[inline]
    fn record_at(&mut self, time_us: u64, ingress: PortId, frame: &[u8], meta: Meta, d: &Decision) {
        if !self.selection.take(ingress) {
            return;
        }
        self.seq += 1;
        let mut head = [0u8; HEAD];
        let n = frame.len().min(HEAD);
        head[..n].copy_from_slice(&frame[..n]);
        self.queue.push(Raw {
            seq: self.seq,
            time_us,
            ingress,
            len: frame.len(),
            head,
            meta,
            decision: *d,
        });
    }

    /// Records every wanted frame of a batch the switch has decided (one clock read for all:
    /// they were decided together).
    pub fn record_batch<B: AsRef<[u8]>>(&mut self, batch: &Batch<B>) {
        if self.done() {
            return;
        }
        let now = now_us();
        for (i, d) in batch.decisions().iter().enumerate() {
            if let Some((p, frame)) = batch.frame(i) {
                self.record_at(now, p, frame, batch.meta(i), d);
            }
        }
    }

    /// The records so far, in words, with port names from `sw` (they leave the queue), and
    /// how many were lost to a full queue.
    pub fn take(&mut self, sw: &Switch) -> (Vec<TraceRecord>, u64) {
        let records = self.queue.take().iter().map(|r| r.render(sw)).collect();
        (records, std::mem::take(&mut self.queue.lost))
    }

    /// Whether every frame asked for has been traced.
    pub fn done(&self) -> bool {
        self.selection.remaining == 0
    }
}

/// Which way a captured frame crossed its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from the port.
    In,
    /// Sent out of the port.
    Out,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// When, in microseconds since the Unix epoch.
    pub time_us: u64,
    /// The port.
    pub port: String,
    /// In or out.
    pub dir: Direction,
    /// The frame, in hex (as on the wire; tag edits applied on the way out).
    pub hex: String,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// A capture in progress.
#[derive(Debug, Clone)]
pub struct Capture {
    selection: Selection,
    queue: Queue<Captured>,
    /// Bytes of hex the queue holds.
    held: usize,
}

/// Bytes of hex a capture keeps for its reader at most: a few hundred super-frames, or the
/// whole queue of MTU-sized frames.
pub const CAPTURE_BYTES: usize = 32 << 20;

impl Capture {
    /// Captures the next `count` frames received on or sent out of `port` (`None`: any).
    pub fn new(port: Option<PortId>, count: u64) -> Capture {
        Capture {
            selection: Selection {
                port,
                remaining: count,
            },
            queue: Queue::default(),
            held: 0,
        }
    }

    /// Keeps a copy of `frame`, seen on `port` going `dir`, if it is wanted.
    pub fn keep(&mut self, sw: &Switch, port: PortId, dir: Direction, frame: &[u8]) {
        if self.selection.take(port) {
            let hex = hex(frame);
            self.held += hex.len();
            // Super-frames are up to 64 KB each: the oldest go, counted, past the budget.
            while self.held > CAPTURE_BYTES {
                let Some(old) = self.queue.items.pop_front() else {
                    break;
                };
                self.held -= old.hex.len();
                self.queue.lost += 1;
            }
            if self.queue.items.len() == QUEUE
                && let Some(old) = self.queue.items.front()
            {
                self.held -= old.hex.len();
            }
            self.queue.push(Captured {
                time_us: now_us(),
                port: sw.port_name(port),
                dir,
                hex,
            });
        }
    }

    /// The frames so far (they leave the queue), and how many were lost to a full queue.
    pub fn take(&mut self) -> (Vec<Captured>, u64) {
        self.held = 0;
        (self.queue.take(), std::mem::take(&mut self.queue.lost))
    }

    /// Whether every frame asked for has been captured.
    pub fn done(&self) -> bool {
        self.selection.remaining == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fwd::{PortConfig, SwitchConfig, Tick};
    use crate::wire::{Mac, craft};

    fn bridge() -> (Switch, PortId, PortId) {
        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        let a = sw.add_port(PortConfig::bridge("a")).unwrap();
        let b = sw.add_port(PortConfig::bridge("b")).unwrap();
        (sw, a, b)
    }

    #[test]
    fn a_record_says_what_happened_and_why() {
        let (mut sw, a, b) = bridge();
        let mut t = Tracer::new(None, 10);
        let (ma, mb) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let mut batch = Batch::new();
        batch
            .push(
                a,
                craft::ethernet(mb, ma, craft::ETHERTYPE_EXPERIMENTAL, b"x"),
            )
            .unwrap();
        batch
            .push(
                b,
                craft::ethernet(ma, mb, craft::ETHERTYPE_EXPERIMENTAL, b"y"),
            )
            .unwrap();
        sw.process(Tick::from_secs(1), &mut batch);
        t.record_batch(&batch);
        let (recs, lost) = t.take(&sw);
        assert_eq!(lost, 0);
        assert_eq!(recs[0].ingress, "a");
        assert_eq!(recs[0].egress, ["b"], "unknown unicast flooded to b");
        assert_eq!(recs[0].kernel_fn, "br_flood");
        assert_eq!(recs[0].learned.as_deref(), Some("new entry"));
        assert_eq!(recs[1].egress, ["a"], "b's reply goes to a, now known");
        assert_eq!(recs[1].kernel_fn, "br_forward");
        assert!(
            recs[0].summary.contains("02:00:00:00:00:01"),
            "{}",
            recs[0].summary
        );
    }

    #[test]
    fn selection_counts_and_filters_by_port() {
        let (sw, a, b) = bridge();
        let mut t = Tracer::new(Some(b), 2);
        let d = Decision::EMPTY;
        for p in [a, b, a, b, b] {
            t.record(p, &[0; 14], &d);
        }
        let (recs, _) = t.take(&sw);
        assert_eq!(recs.len(), 2);
        assert!(recs.iter().all(|r| r.ingress == "b"));
        assert!(t.done());
        assert_eq!(recs[0].drop.as_deref(), Some(d.verdict_drop_name()));
    }

    #[test]
    fn a_slow_reader_loses_the_oldest_and_is_told() {
        let (sw, a, _) = bridge();
        let mut c = Capture::new(None, u64::MAX);
        for i in 0..QUEUE + 5 {
            c.keep(&sw, a, Direction::In, &[(i % 256) as u8]);
        }
        let (frames, lost) = c.take();
        assert_eq!((frames.len(), lost), (QUEUE, 5));
        assert_eq!(frames[0].hex, "05");
        assert_eq!(c.take(), (Vec::new(), 0));
    }

    #[test]
    fn super_frames_are_kept_within_a_byte_budget() {
        let (sw, a, _) = bridge();
        let mut c = Capture::new(None, u64::MAX);
        let big = vec![0xabu8; 65_000];
        let n = CAPTURE_BYTES / (2 * big.len()) + 10;
        for _ in 0..n {
            c.keep(&sw, a, Direction::In, &big);
        }
        let (frames, lost) = c.take();
        let held: usize = frames.iter().map(|f| f.hex.len()).sum();
        assert!(held <= CAPTURE_BYTES, "{held} bytes held");
        assert_eq!(frames.len() as u64 + lost, n as u64);
        assert!(lost >= 10, "the oldest went: {lost}");
        assert!(frames.iter().all(|f| f.hex.len() == 130_000), "kept whole");
    }

    impl Decision {
        fn verdict_drop_name(&self) -> &'static str {
            match self.verdict {
                Verdict::Drop(r) => r.name(),
                _ => "",
            }
        }
    }
}
