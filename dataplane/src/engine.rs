//! The run loop: wait for ports to become readable (mio), read a batch per ready port, let the
//! switch decide it, transmit each egress queue, and return the frame buffers to a pool. The
//! engine never decides forwarding; the switch never does I/O. A full TX queue loses the frame
//! (counted) and never blocks the loop. An error that leaves the interface in place (no
//! buffer space, the link down) loses the frames of that receive or send (counted); a port
//! whose interface vanished is detached (counted, logged) while the others go on
//! ([`crate::port::classify`] decides which is which).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::fwd::{
    Batch, ConfigError, DropReason, FLAP_MOVES, FdbError, MAX_PORTS, PortConfig, PortId, PortSet,
    Role, RxFilter, StormControl, Switch, TagOp, Tick, Verdict, Vid,
};
use crate::port::vxlan::{OverlayState, VxlanConfigError, VxlanPort};
use crate::port::{ErrorClass, Port, TxFrame, classify};
use crate::trace::{Capture, Direction, Tracer};
use crate::wire::{Mac, Meta, Vtep};
use std::net::Ipv4Addr;

/// Frames read from one port before the switch decides them.
pub const BATCH: usize = 32;

/// How long an engine keeps polling after the last frame before it sleeps, by default.
///
/// Sleeping costs a wake-up for every frame that finds l2sw asleep: in a VM, tens of
/// microseconds on the sender's core and on l2sw's. A reply, the next segments of a TCP
/// window, the ACKs coming back and the next request of a client that asks a thousand times a
/// second all arrive within this time and find l2sw awake; an idle switch sleeps after it and
/// costs nothing. The engine does not yield while it lingers: yielding hands the core to any
/// runnable thread for a whole time slice (a jiffy, 4 ms at HZ=250), which measured as
/// millisecond tails at half load; the scheduler already shares the core fairly with threads
/// that want it.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);

/// How an engine waits for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// Never sleep: spin on the ports (a core at 100 %).
    pub busy: bool,
    /// After a frame, keep polling this long before sleeping ([`DEFAULT_LINGER`]; zero sleeps
    /// as soon as the ports are empty).
    pub linger: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            busy: false,
            linger: DEFAULT_LINGER,
        }
    }
}

/// Work sent to an engine's thread, run between two batches (control requests).
pub type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// The token of the waker that announces jobs.
pub const WAKER: Token = Token(MAX_PORTS);

/// Counters of the engine (one per event).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineStats {
    /// Frames read from ports.
    pub rx: u64,
    /// Frames written to ports.
    pub tx: u64,
    /// Frames lost to a full TX queue.
    pub tx_full: u64,
    /// Receive or send errors other than a full queue, transient or not.
    pub io_errors: u64,
    /// Of `io_errors`, those that left their port attached (no buffer space, interrupted,
    /// the link down: [`ErrorClass::Transient`]); the frames of a failed send are counted in
    /// the egress port's [`PortCounters::tx_errors`].
    pub transient_errors: u64,
    /// Ports detached after an error.
    pub detached: u64,
}

/// Counters of one port (one per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames read from the port.
    pub rx: u64,
    /// Frames read from the port and sent on (to ports or the host side): with the drops,
    /// every received frame is in exactly one of them (`rx == forwarded + Σ drops`).
    pub forwarded: u64,
    /// Frames written to the port.
    pub tx: u64,
    /// Frames for the port lost to its full TX queue.
    pub tx_full: u64,
    /// Frames for the port lost to a send error that left it attached
    /// ([`ErrorClass::Transient`]; some of them may have left before the error).
    pub tx_errors: u64,
    /// Frames read from the port and dropped, by [`DropReason`] (index `reason as usize`).
    pub drops: [u64; DropReason::COUNT],
}

impl Default for PortCounters {
    fn default() -> Self {
        PortCounters {
            rx: 0,
            forwarded: 0,
            tx: 0,
            tx_full: 0,
            tx_errors: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl PortCounters {
    /// The non-zero drop counters, by reason.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.drops)
            .filter(|(_, n)| *n != 0)
            .map(|(r, n)| (*r, n))
    }
}

/// A switch and its ports.
pub struct Engine {
    sw: Switch,
    ports: Vec<Option<Box<dyn Port + Send>>>,
    pool: Vec<Vec<u8>>,
    batch: Batch<Vec<u8>>,
    scratch: Vec<Vec<u8>>,
    stats: EngineStats,
    epoch: Instant,
    registry: Option<mio::Registry>,
    /// Ports without a descriptor, polled every round.
    polled: PortSet,
    /// Ports taken off the poll set while the engine is awake: their rings are read directly
    /// ([`Port::waiting`]), and the kernel's sending side skips waking the engine's epoll.
    peeked: PortSet,
    counters: Box<[PortCounters; MAX_PORTS]>,
    polling: Polling,
    tracer: Option<Box<Tracer>>,
    capture: Option<Box<Capture>>,
    /// FDB flaps already logged.
    flaps_logged: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "ports",
                &self
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
            )
            .field("stats", &self.stats)
            .finish()
    }
}

impl Engine {
    /// An engine around `sw`, with no port attached yet.
    pub fn new(sw: Switch) -> Engine {
        Engine {
            sw,
            ports: (0..MAX_PORTS).map(|_| None).collect(),
            pool: Vec::new(),
            batch: Batch::with_capacity(BATCH),
            scratch: (0..BATCH).map(|_| Vec::new()).collect(),
            stats: EngineStats::default(),
            epoch: Instant::now(),
            registry: None,
            polled: PortSet::EMPTY,
            peeked: PortSet::EMPTY,
            counters: Box::new([PortCounters::default(); MAX_PORTS]),
            polling: Polling::default(),
            tracer: None,
            capture: None,
            flaps_logged: 0,
        }
    }

    /// Attaches the I/O of switch port `id` (also while running: a job may attach ports);
    /// its counters start from zero.
    pub fn attach(&mut self, id: PortId, port: Box<dyn Port + Send>) -> io::Result<()> {
        self.counters[id.index()] = PortCounters::default();
        self.peeked.remove(id);
        if let Some(registry) = &self.registry {
            match port.readiness() {
                Some(fd) => registry.register(
                    &mut SourceFd(&fd.as_raw_fd()),
                    Token(id.index()),
                    Interest::READABLE,
                )?,
                None => self.polled.insert(id),
            }
        }
        self.ports[id.index()] = Some(port);
        Ok(())
    }

    /// Programs every port's interface with the filter the switch derives for it (after a
    /// configuration change: a new macvlan sub-interface adds its MAC to the uplink's list).
    /// A port that refuses keeps its previous filter, with a warning.
    ///
    /// An uplink whose interface the kernel made promiscuous once its unicast addresses were
    /// programmed cannot filter them (`__dev_set_rx_mode` in `net/core/dev.c`: a device
    /// without `IFF_UNICAST_FLT`, veth among them, goes promiscuous while its unicast list is
    /// not empty), so the switch learns it and accepts every frame there, as the kernel's
    /// macvlan and ipvlan then do.
    pub fn program_filters(&mut self) {
        let ids: Vec<PortId> = (0..MAX_PORTS).filter_map(PortId::new).collect();
        let mut learned = false;
        for id in ids {
            let filter = self.sw.interface_filter(id);
            let Some(port) = self.ports[id.index()].as_mut() else {
                continue;
            };
            if let Err(e) = port.program_filter(filter.as_ref()) {
                tracing::warn!(port = %id, name = port.name(), error = %e, "interface filter not programmed");
                continue;
            }
            let filters_unicast = self.sw.port(id).is_some_and(|e| {
                matches!(&e.cfg.role, Role::Uplink(u) if u.unicast_filtering)
                    && matches!(filter, Some(RxFilter::Unicast { .. }))
            });
            if filters_unicast
                && port.promiscuous() == Some(true)
                && self.sw.set_unicast_filtering(id, false).unwrap_or(false)
            {
                tracing::info!(port = %id, name = port.name(), "the interface cannot filter unicast: the kernel made it promiscuous");
                learned = true;
            }
        }
        if learned {
            // Once: the uplinks that cannot filter are known now.
            self.program_filters();
        }
    }

    /// Detaches and returns the I/O of switch port `id`.
    pub fn detach(&mut self, id: PortId) -> Option<Box<dyn Port + Send>> {
        let port = self.ports[id.index()].take()?;
        if self.peeked.contains(id) {
            self.peeked.remove(id);
        } else if let (Some(registry), Some(fd)) = (&self.registry, port.readiness()) {
            // The descriptor closes with the port anyway; deregistering first keeps epoll tidy.
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        self.polled.remove(id);
        Some(port)
    }

    /// Never sleep in the poll: spin on the ports (a core at 100 %, for the lowest latency).
    pub fn set_busy_poll(&mut self, on: bool) {
        self.polling.busy = on;
    }

    /// Sets how the engine waits for frames.
    pub fn set_polling(&mut self, polling: Polling) {
        self.polling = polling;
    }

    /// The switch.
    pub fn switch(&self) -> &Switch {
        &self.sw
    }

    /// The switch, for configuration changes.
    pub fn switch_mut(&mut self) -> &mut Switch {
        &mut self.sw
    }

    /// Starts (replacing any) or stops (`None`) tracing decisions.
    pub fn set_tracer(&mut self, tracer: Option<Tracer>) {
        self.tracer = tracer.map(Box::new);
    }

    /// The trace in progress, and the switch to name its ports.
    pub fn tracer_mut(&mut self) -> Option<(&mut Tracer, &Switch)> {
        let sw = &self.sw;
        self.tracer.as_deref_mut().map(|t| (t, sw))
    }

    /// Starts (replacing any) or stops (`None`) capturing frames.
    pub fn set_capture(&mut self, capture: Option<Capture>) {
        self.capture = capture.map(Box::new);
    }

    /// The capture in progress.
    pub fn capture_mut(&mut self) -> Option<&mut Capture> {
        self.capture.as_deref_mut()
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Counters of port `id` (zero for a port never attached).
    pub fn port_counters(&self, id: PortId) -> PortCounters {
        self.counters[id.index()]
    }

    /// The current time on the engine's clock (for FDB ages and operator entries).
    pub fn tick(&self) -> Tick {
        self.now()
    }

    fn now(&self) -> Tick {
        Tick::from_duration(self.epoch.elapsed())
    }

    /// Logs the MAC flaps the FDB detected since the last call (at most the FDB's ring of
    /// recent ones, and how many more): a loop between two ports, most likely.
    fn log_flaps(&mut self) {
        let Some(fdb) = self.sw.fdb() else {
            return;
        };
        let total = fdb.stats().flaps;
        let new = total - self.flaps_logged;
        if new == 0 {
            return;
        }
        self.flaps_logged = total;
        let kept = fdb.recent_flaps().count();
        let shown = usize::try_from(new).map_or(kept, |n| n.min(kept));
        for f in fdb.recent_flaps().skip(kept - shown) {
            tracing::warn!(
                mac = %f.mac, vid = %f.vid, from = %self.sw.port_name(f.from),
                to = %self.sw.port_name(f.to),
                "MAC flapping: {FLAP_MOVES} moves within a second, a loop between these ports?"
            );
        }
        if new > shown as u64 {
            tracing::warn!(more = new - shown as u64, "more MAC flaps not shown");
        }
    }

    /// Takes every port that can say whether frames wait without a system call off the poll
    /// set: the engine is awake and reads their rings itself. A port that cannot be taken off
    /// stays polled.
    fn start_peeking(&mut self) {
        let Some(registry) = &self.registry else {
            return;
        };
        for (i, slot) in self.ports.iter().enumerate() {
            let (Some(port), Some(id)) = (slot, PortId::new(i)) else {
                continue;
            };
            if self.peeked.contains(id) || port.waiting().is_none() {
                continue;
            }
            if let Some(fd) = port.readiness()
                && registry.deregister(&mut SourceFd(&fd.as_raw_fd())).is_ok()
            {
                self.peeked.insert(id);
            }
        }
    }

    /// Puts the peeked ports back on the poll set before the engine sleeps. Registering a
    /// descriptor that is already readable reports it at once, so a frame that arrived since
    /// the last look wakes the engine straight away.
    fn stop_peeking(&mut self) {
        let Some(registry) = &self.registry else {
            return;
        };
        for id in self.peeked.iter() {
            let Some(port) = self.ports[id.index()].as_ref() else {
                continue;
            };
            if let Some(fd) = port.readiness()
                && let Err(e) = registry.register(
                    &mut SourceFd(&fd.as_raw_fd()),
                    Token(id.index()),
                    Interest::READABLE,
                )
            {
                // Not polled, the port would never be read again: poll it every round.
                tracing::warn!(port = %id, name = port.name(), error = %e, "port not put back on the poll set: polled instead");
                self.polled.insert(id);
            }
        }
        self.peeked = PortSet::EMPTY;
    }

    /// The peeked ports that have frames waiting.
    fn peek(&self) -> PortSet {
        let mut ready = PortSet::EMPTY;
        for id in self.peeked.iter() {
            if let Some(port) = self.ports[id.index()].as_ref()
                && port.waiting() == Some(true)
            {
                ready.insert(id);
            }
        }
        ready
    }

    /// Reads up to [`BATCH`] frames from `id`, forwards them; returns how many were read.
    pub fn service(&mut self, id: PortId) -> usize {
        let Engine {
            sw,
            ports,
            pool,
            batch,
            scratch,
            stats,
            epoch,
            counters,
            tracer,
            capture,
            ..
        } = self;
        let Some(port) = ports[id.index()].as_mut() else {
            return 0;
        };
        batch.clear();
        while batch.len() < BATCH {
            let mut buf = pool.pop().unwrap_or_default();
            match port.recv(&mut buf) {
                Ok(Some(meta)) => {
                    if let Err(buf) = batch.push_with(id, buf, meta) {
                        pool.push(buf);
                        break;
                    }
                }
                Ok(None) => {
                    pool.push(buf);
                    break;
                }
                Err(e) => {
                    pool.push(buf);
                    stats.io_errors += 1;
                    match classify(&e) {
                        ErrorClass::Transient => {
                            // What was read so far is forwarded; a new frame makes the
                            // port readable again.
                            stats.transient_errors += 1;
                            tracing::debug!(port = %id, name = port.name(), error = %e, "receive failed for now");
                        }
                        ErrorClass::Gone => {
                            stats.detached += 1;
                            tracing::warn!(port = %id, name = port.name(), error = %e, "receive failed: port detached");
                            ports[id.index()] = None;
                        }
                    }
                    break;
                }
            }
        }
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        stats.rx += n as u64;
        sw.process(Tick::from_duration(epoch.elapsed()), batch);
        // Tracing and capture cost this one test per batch when off.
        if let Some(t) = tracer.as_deref_mut() {
            t.record_batch(batch);
        }
        if let Some(c) = capture.as_deref_mut() {
            for (p, frame) in batch.frames() {
                c.keep(sw, p, Direction::In, frame);
            }
        }
        let ingress = &mut counters[id.index()];
        ingress.rx += n as u64;
        for d in batch.decisions() {
            match d.verdict {
                Verdict::Drop(r) => ingress.drops[r as usize] += 1,
                _ => ingress.forwarded += 1,
            }
        }
        let mut failed = PortSet::EMPTY;
        for (egress, items) in batch.egress() {
            let Some(out) = ports[egress.index()].as_mut() else {
                continue;
            };
            // Each frame appears at most once per egress queue, so a queue holds at most a
            // batch; frames needing a tag edit are written into their own scratch buffer, and
            // their checksum and header offsets move with the tag.
            let mut frames: [TxFrame<'_>; BATCH] = [TxFrame::plain(&[]); BATCH];
            let mut n = 0;
            for (it, scratch) in items.iter().zip(scratch.iter_mut()).take(BATCH) {
                let i = usize::from(it.frame);
                let Some((_, frame)) = batch.frame(i) else {
                    continue;
                };
                // On the way out the metadata names the VTEP the FDB chose (none: the flood
                // list), never the one the frame came from.
                let meta = Meta {
                    vtep: it.vtep,
                    snoop: false,
                    ..batch.meta(i)
                };
                frames[n] = match it.tag {
                    TagOp::Keep => TxFrame { frame, meta },
                    op => {
                        op.apply(frame, scratch);
                        TxFrame {
                            frame: scratch.as_slice(),
                            meta: meta.shifted(op.len_delta()),
                        }
                    }
                };
                n += 1;
            }
            if let Some(c) = capture.as_deref_mut() {
                for tx in &frames[..n] {
                    c.keep(sw, egress, Direction::Out, tx.frame);
                }
            }
            match out.send_batch(&frames[..n]) {
                Ok(sent) => {
                    stats.tx += sent as u64;
                    stats.tx_full += (n - sent) as u64;
                    let c = &mut counters[egress.index()];
                    c.tx += sent as u64;
                    c.tx_full += (n - sent) as u64;
                }
                Err(e) => {
                    stats.io_errors += 1;
                    match classify(&e) {
                        // The frames are dropped, not sent again: the queue or buffer that
                        // refused them is as full a moment later, a retry would cost a
                        // system call per batch while the interface is congested, and the
                        // kernel's bridge drops a frame its port's queue refuses too.
                        ErrorClass::Transient => {
                            stats.transient_errors += 1;
                            counters[egress.index()].tx_errors += n as u64;
                            tracing::debug!(port = %egress, name = out.name(), error = %e, "send failed for now: frames dropped");
                        }
                        ErrorClass::Gone => {
                            failed.insert(egress);
                            tracing::warn!(port = %egress, name = out.name(), error = %e, "send failed: port detached");
                        }
                    }
                }
            }
        }
        for p in failed.iter() {
            ports[p.index()] = None;
            stats.detached += 1;
        }
        pool.extend(batch.drain().map(|(_, buf)| buf));
        n
    }

    /// Runs until `stop` is set: waits for readable ports (polling those without a
    /// descriptor every millisecond), forwards, and ages the FDB once a second.
    pub fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        self.run_with(stop, Poll::new()?, None)
    }

    /// [`Engine::run`] on a `poll` made by the caller, also running the [`Job`]s that arrive
    /// on `jobs` (announced by a `mio::Waker` registered on `poll` with token [`WAKER`]).
    pub fn run_with(
        &mut self,
        stop: &AtomicBool,
        mut poll: Poll,
        jobs: Option<crossbeam_channel::Receiver<Job>>,
    ) -> io::Result<()> {
        self.registry = Some(poll.registry().try_clone()?);
        let ids: Vec<PortId> = (0..MAX_PORTS).filter_map(PortId::new).collect();
        for id in ids {
            if let Some(p) = self.ports[id.index()].take() {
                self.attach(id, p)?;
            }
        }
        let mut events = Events::with_capacity(MAX_PORTS);
        // Ports may hold more than one batch: keep servicing them until they run dry, since
        // readiness is reported on edges.
        let mut ready = PortSet::EMPTY;
        let mut last_age = Instant::now();
        // When the last frame was forwarded (`None`: not since the engine went to sleep).
        let mut last_frame: Option<Instant> = None;
        // Whether the peekable ports are off the poll set (while lingering).
        let mut peeking = false;
        while !stop.load(Ordering::Relaxed) {
            let lingering =
                self.polling.busy || last_frame.is_some_and(|t| t.elapsed() < self.polling.linger);
            if lingering {
                if !peeking {
                    self.start_peeking();
                    peeking = true;
                }
                ready = ready.or(self.peek());
            } else if peeking {
                self.stop_peeking();
                peeking = false;
            }
            let timeout = if !ready.is_empty() || lingering {
                Duration::ZERO
            } else if !self.polled.is_empty() {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(100)
            };
            match poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in &events {
                if ev.token() == WAKER {
                    while let Some(job) = jobs.as_ref().and_then(|j| j.try_recv().ok()) {
                        job(self);
                    }
                } else if let Some(p) = PortId::new(ev.token().0) {
                    ready.insert(p);
                }
            }
            ready = ready.or(self.polled);
            let mut forwarded = 0;
            for p in ready.iter() {
                let n = self.service(p);
                forwarded += n;
                if n < BATCH {
                    ready.remove(p);
                }
            }
            if forwarded > 0 {
                last_frame = Some(Instant::now());
            } else if !lingering {
                last_frame = None;
            }
            if last_age.elapsed() >= Duration::from_secs(1) {
                let now = self.now();
                self.sw.age(now);
                self.log_flaps();
                last_age = Instant::now();
            }
        }
        // The poll set goes with `poll`; a later run registers every port again.
        self.peeked = PortSet::EMPTY;
        self.registry = None;
        Ok(())
    }
}

/// Why a change to a running engine was refused. Nothing changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No port of that name.
    #[error("no port {0:?}")]
    NoSuchPort(String),
    /// The switch has no FDB.
    #[error("not a learning bridge: it has no FDB")]
    NoFdb,
    /// The port is not an overlay (VXLAN) port.
    #[error("port {0:?} is not an overlay (VXLAN) port")]
    NotOverlay(String),
    /// The overlay port refused the change.
    #[error(transparent)]
    Overlay(#[from] VxlanConfigError),
    /// The switch refused the configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The FDB refused the entry.
    #[error(transparent)]
    Fdb(#[from] FdbError),
    /// The port's I/O could not be attached.
    #[error("attaching {port}: {source}")]
    Attach {
        /// The port's name.
        port: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Transactions on a running engine: each one is whole or leaves nothing changed.
impl Engine {
    /// The port named `name`.
    pub fn port_id(&self, name: &str) -> Result<PortId, ChangeError> {
        self.sw
            .port_by_name(name)
            .ok_or_else(|| ChangeError::NoSuchPort(name.to_owned()))
    }

    /// Adds a port to the switch and attaches its I/O, then programs every interface's filter
    /// (a new sub-interface joins its uplink's address list). If the I/O cannot be attached,
    /// the switch port is removed again.
    pub fn add_port(
        &mut self,
        cfg: PortConfig,
        io: Box<dyn Port + Send>,
    ) -> Result<PortId, ChangeError> {
        let name = cfg.name.clone();
        let id = self.sw.add_port(cfg)?;
        if let Err(source) = self.attach(id, io) {
            // The port was just added, so removing it cannot fail for want of it.
            let _ = self.sw.remove_port(id);
            return Err(ChangeError::Attach { port: name, source });
        }
        self.program_filters();
        tracing::info!(port = %id, name = %name, "port added");
        Ok(id)
    }

    /// Removes port `name`: the switch forgets it (and what was learned on it), its I/O
    /// closes (a TAP device vanishes), and the other interfaces' filters are reprogrammed.
    pub fn remove_port(&mut self, name: &str) -> Result<PortConfig, ChangeError> {
        let id = self.port_id(name)?;
        let cfg = self.sw.remove_port(id)?;
        self.detach(id);
        self.program_filters();
        tracing::info!(port = %name, "port removed");
        Ok(cfg)
    }

    /// Adds an operator entry for `mac` on `vid` behind port `port` (sticky: never moves).
    pub fn add_static(
        &mut self,
        vid: Vid,
        mac: Mac,
        port: &str,
        sticky: bool,
    ) -> Result<(), ChangeError> {
        let now = self.now();
        let id = self.port_id(port)?;
        let fdb = self.sw.fdb_mut().ok_or(ChangeError::NoFdb)?;
        fdb.add_static(now, vid, mac, id, sticky)?;
        Ok(())
    }

    /// Adds an operator entry for `mac` behind remote VTEP `vtep` of overlay port `port`
    /// (`bridge fdb add MAC dev vx dst IP`): frames to it go to that VTEP alone, and packets
    /// from that VTEP are accepted (a VTEP given statically is no unknown sender).
    pub fn add_static_remote(
        &mut self,
        vid: Vid,
        mac: Mac,
        port: &str,
        vtep: Ipv4Addr,
    ) -> Result<(), ChangeError> {
        let now = self.now();
        let id = self.port_id(port)?;
        self.overlay_mut(port)?.config().check_remote(vtep)?;
        let fdb = self.sw.fdb_mut().ok_or(ChangeError::NoFdb)?;
        fdb.add_static_via(now, vid, mac, id, false, Some(Vtep(vtep)))?;
        self.overlay_mut(port)?.know_remote(vtep)?;
        Ok(())
    }

    /// Removes the operator entry for `mac` on `vid` (`bridge fdb del`). A remote VTEP no
    /// flood list holds and no other static entry names is forgotten with it: its packets
    /// are an unknown sender's again.
    pub fn remove_static(&mut self, vid: Vid, mac: Mac) -> Result<(), ChangeError> {
        let fdb = self.sw.fdb_mut().ok_or(ChangeError::NoFdb)?;
        let Some(vtep) = fdb.remove_static(vid, mac)? else {
            return Ok(());
        };
        if fdb.names_vtep(vtep) {
            return Ok(());
        }
        for p in self.ports.iter_mut().flatten() {
            if let Some(o) = p.as_vxlan_mut() {
                o.forget_remote(vtep.0);
            }
        }
        Ok(())
    }

    /// The overlay port `port`, or why not.
    fn overlay_mut(&mut self, port: &str) -> Result<&mut VxlanPort, ChangeError> {
        let id = self.port_id(port)?;
        self.ports[id.index()]
            .as_mut()
            .and_then(|p| p.as_vxlan_mut())
            .ok_or_else(|| ChangeError::NotOverlay(port.to_owned()))
    }

    /// Adds remote VTEP `vtep` to overlay port `port`'s flood list.
    pub fn add_remote(&mut self, port: &str, vtep: Ipv4Addr) -> Result<(), ChangeError> {
        self.overlay_mut(port)?.add_remote(vtep)?;
        tracing::info!(port = %port, %vtep, "remote VTEP added");
        Ok(())
    }

    /// Removes remote VTEP `vtep` from overlay port `port` and forgets every MAC behind it
    /// (a host that left the overlay); returns how many FDB entries went with it.
    pub fn remove_remote(&mut self, port: &str, vtep: Ipv4Addr) -> Result<usize, ChangeError> {
        self.overlay_mut(port)?.remove_remote(vtep)?;
        let flushed = self.sw.fdb_mut().map_or(0, |f| f.flush_vtep(Vtep(vtep)));
        tracing::info!(port = %port, %vtep, flushed, "remote VTEP removed");
        Ok(flushed)
    }

    /// Every overlay port's state (remotes, counters), by port.
    pub fn overlays(&self) -> Vec<(PortId, OverlayState)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let state = p.as_ref()?.as_vxlan()?.state();
                Some((PortId::new(i)?, state))
            })
            .collect()
    }

    /// Sets the FDB's ageing time (zero: nothing is learned).
    pub fn set_ageing(&mut self, ageing: Duration) -> Result<(), ChangeError> {
        let fdb = self.sw.fdb_mut().ok_or(ChangeError::NoFdb)?;
        fdb.set_ageing(ageing);
        Ok(())
    }

    /// Replaces port `port`'s storm-control limits.
    pub fn set_storm(&mut self, port: &str, storm: StormControl) -> Result<(), ChangeError> {
        let id = self.port_id(port)?;
        self.sw.set_storm(id, storm)?;
        tracing::info!(port = %port, ?storm, "storm control set");
        Ok(())
    }

    /// Caps the MACs bridge port `port` may learn, or (`None`) the whole bridge; 0 = no cap.
    pub fn set_max_learned(&mut self, port: Option<&str>, max: u32) -> Result<(), ChangeError> {
        match port {
            Some(name) => {
                let id = self.port_id(name)?;
                self.sw.set_port_max_learned(id, max)?;
            }
            None => self.sw.set_max_learned(max)?,
        }
        tracing::info!(port = ?port, max, "learning cap set");
        Ok(())
    }
}
