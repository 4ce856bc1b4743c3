//! `l2ctl verify`: a mode's canonical scenario ([`modes`]) built twice in throw-away network
//! namespaces, once on the kernel's own bridge or macvlan and once with l2sw forwarding on
//! AF_PACKET ports, the same frames sent from AF_PACKET taps, and who received each compared.
//!
//! Every namespace a run makes is named `l2v-MODE-PID-N-…` and removed however the run ends;
//! the caller's namespace is never touched. The receivers are the topology's members: the
//! bridge device and the uplink's own stack are no workload's and are left out.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::config::{NetworkPlan, PortKind, PortPlace};
use l2sw::daemon::{self, DaemonError, Running};
use l2sw::engine::EngineStats;
use l2sw::fwd::{BridgePort, PortConfig, Role as PortRole, SwitchConfig, UplinkPort};
use l2sw::port::sys::SysError;
use l2sw::port::sys::netns;
use l2sw::port::sys::packet::{Membership, PacketSocket};
use l2sw::port::sys::ring::Handover;
use l2sw::wire::Mac;
use serde::Serialize;

use crate::modes::{self, JOINED, Member, MemberRole, Mode, Step, Topology, UPLINK_MAC};
use crate::nl::{Links, NlError, Scratch, veth_pair};

/// The longest wait for a frame's copies.
const WAIT: Duration = Duration::from_millis(500);
/// The taps have had every copy once they have been quiet this long.
const QUIET: Duration = Duration::from_millis(80);
/// How often the taps are read while waiting.
const POLL: Duration = Duration::from_millis(5);

/// The bridge under test (bridge modes, kernel side) and its MAC.
const BRIDGE: (&str, Mac) = ("br0", Mac([2, 0, 0, 0, 0, 0xfe]));
/// The upstream bridge (macvlan modes) and its MAC.
const UPSTREAM: (&str, Mac) = ("br1", Mac([2, 0, 0, 0, 2, 0xfe]));
/// The uplink, in the namespace of the sub-interfaces (or of l2sw's ports for them).
const UPLINK: &str = "upl";
/// The upstream bridge's port facing the uplink, and its MAC.
const DOWN: (&str, Mac) = ("dwn", Mac([2, 0, 0, 0, 2, 0]));

/// The two implementations compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// The kernel's bridge or macvlan.
    Kernel,
    /// l2sw on AF_PACKET ports.
    L2sw,
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Implementation::Kernel => "kernel",
            Implementation::L2sw => "l2sw",
        })
    }
}

/// Why `verify` has no matrix to show.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The kernel has no counterpart of the mode.
    #[error(
        "{0}: this kernel has no ipvlan, so there is nothing to compare l2sw with; `l2ctl explain {0}` shows what l2sw does"
    )]
    NotInKernel(Mode),
    /// One side could not be built, run or taken down.
    #[error("{mode}, {side} side: {source}")]
    Side {
        /// The mode.
        mode: Mode,
        /// The side.
        side: Implementation,
        /// What went wrong.
        #[source]
        source: SideError,
    },
}

/// What went wrong on one side of a run.
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    /// A namespace or link.
    #[error(transparent)]
    Netlink(#[from] NlError),
    /// A frame tap.
    #[error("tap {tap}: {source}")]
    Tap {
        /// The member it taps.
        tap: &'static str,
        /// The failed call.
        #[source]
        source: SysError,
    },
    /// l2sw did not start.
    #[error("starting l2sw: {0}")]
    Start(#[from] DaemonError),
    /// l2sw did not stop cleanly.
    #[error("stopping l2sw: {0}")]
    Stop(#[source] io::Error),
    /// l2sw lost frames to I/O errors or full queues: its deliveries prove nothing.
    #[error("l2sw lost frames on its ports, so the comparison would not be fair: {0:?}")]
    Lost(EngineStats),
    /// The topology has ipvlan slaves, which this kernel cannot build.
    #[error("this kernel has no ipvlan")]
    NoIpvlan,
    /// A scenario step names a sender that is no member (a catalogue mistake).
    #[error("the scenario sends from {0:?}, which is not in the topology")]
    NoSender(&'static str),
}

/// How one frame's receivers compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    /// Both delivered to the same receivers.
    Same,
    /// Multicast the kernel filters by hash, and the kernel delivered to more receivers
    /// than l2sw (an unjoined group colliding with a joined one): tolerated.
    HashedMulticast,
    /// A real difference.
    Differ,
}

impl Mark {
    /// Compares who received a frame on each side (names, once per copy, in the same order
    /// on both). `hashed`: the frame is multicast the kernel filters through a hash, where
    /// an unjoined group may slip through; only that direction is tolerated, only then.
    pub fn of(kernel: &[String], l2sw: &[String], hashed: bool) -> Mark {
        if kernel == l2sw {
            Mark::Same
        } else if hashed && l2sw.iter().all(|r| kernel.contains(r)) {
            Mark::HashedMulticast
        } else {
            Mark::Differ
        }
    }
}

/// One scenario step and who received its frame on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// What the step shows.
    pub what: String,
    /// The member that sent it.
    pub from: String,
    /// The receivers on the kernel side, in the matrix's receiver order, once per copy.
    pub kernel: Vec<String>,
    /// The receivers on the l2sw side, likewise.
    pub l2sw: Vec<String>,
    /// How the two compare.
    pub mark: Mark,
}

/// The delivery matrix of a mode: scenario step × receiver, kernel and l2sw side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    /// The mode.
    #[serde(serialize_with = "by_name")]
    pub mode: Mode,
    /// Hairpin on the upstream bridge's port facing the uplink; `None` where there is no
    /// uplink (bridge modes).
    pub upstream_hairpin: Option<bool>,
    /// The receivers, in the topology's order.
    pub receivers: Vec<String>,
    /// One row per scenario step, in order.
    pub rows: Vec<Row>,
}

fn by_name<S: serde::Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.name())
}

impl Matrix {
    /// Whether the kernel and l2sw agree on every frame (hashed multicast tolerated).
    pub fn matches(&self) -> bool {
        self.rows.iter().all(|r| r.mark != Mark::Differ)
    }
}

/// The start of the names of the namespaces `verify(mode, …)` makes in this process
/// (`l2v-MODE-PID-`), to look for leftovers.
pub fn netns_prefix(mode: Mode) -> String {
    format!("l2v-{mode}-{}-", std::process::id())
}

/// Runs `mode`'s scenario on the kernel and on l2sw, one after the other, and compares who
/// received each frame. `upstream_hairpin` sets hairpin on the upstream bridge's port facing
/// the uplink (macvlan modes; bridge modes have no uplink and ignore it). Needs root.
pub fn verify(mode: Mode, upstream_hairpin: bool) -> Result<Matrix, VerifyError> {
    if !mode.in_kernel() {
        return Err(VerifyError::NotInKernel(mode));
    }
    let topology = modes::topology(mode);
    let script = modes::scenario(mode);
    let run = |side| {
        run(&topology, &script, upstream_hairpin, side).map_err(|source| VerifyError::Side {
            mode,
            side,
            source,
        })
    };
    let kernel = run(Implementation::Kernel)?;
    let l2sw = run(Implementation::L2sw)?;
    let rows = script
        .iter()
        .zip(kernel.into_iter().zip(l2sw))
        .map(|(step, (kernel, l2sw))| Row {
            what: step.what.clone(),
            from: step.from.to_owned(),
            mark: Mark::of(&kernel, &l2sw, step.hashed),
            kernel,
            l2sw,
        })
        .collect();
    Ok(Matrix {
        mode,
        upstream_hairpin: topology.upstream.then_some(upstream_hairpin),
        receivers: topology.members.iter().map(|m| m.name.to_owned()).collect(),
        rows,
    })
}

/// The matrix as a table: a row per step, a `kernel|l2sw` cell per receiver, a legend, and
/// a last line saying on how many frames the two agree, and which they differ on.
pub fn render(m: &Matrix) -> String {
    let hairpin = match m.upstream_hairpin {
        Some(true) => "upstream hairpin on",
        Some(false) => "upstream hairpin off",
        None => "no uplink: --upstream-hairpin does not apply",
    };
    let width = m
        .rows
        .iter()
        .map(|r| r.what.chars().count())
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut lines = vec![format!(
        "{} ({hairpin}): who received each frame, kernel|l2sw",
        m.mode
    )];
    let names: String = m.receivers.iter().map(|r| format!(" {r:^5}")).collect();
    lines.push(format!("   {:<width$}  from{names}", "frame"));
    for r in &m.rows {
        let mark = match r.mark {
            Mark::Same => "  ",
            Mark::HashedMulticast => "~~",
            Mark::Differ => "!!",
        };
        let cells: String = m
            .receivers
            .iter()
            .map(|who| format!(" {}", cell(r, who)))
            .collect();
        lines.push(format!("{mark} {:<width$}  {:^4}{cells}", r.what, r.from));
    }
    lines.push(
        "● received (a digit: that many copies), · not; [ ] and !! a difference, \
         ( ) and ~~ an unjoined group the kernel's multicast hash let through (tolerated)"
            .to_owned(),
    );
    let differ: Vec<&str> = m
        .rows
        .iter()
        .filter(|r| r.mark == Mark::Differ)
        .map(|r| r.what.as_str())
        .collect();
    let n = m.rows.len();
    let mut last = format!(
        "kernel and l2sw agree on {} of {n} frames",
        n - differ.len()
    );
    if !differ.is_empty() {
        last += &format!("; they differ on: {}", differ.join("; "));
    }
    lines.push(last);
    lines
        .iter()
        .map(|l| l.trim_end().to_owned() + "\n")
        .collect()
}

/// `kernel|l2sw` for receiver `who` in row `r`, 5 characters wide, bracketed if they differ.
fn cell(r: &Row, who: &str) -> String {
    let copies = |got: &[String]| match got.iter().filter(|g| *g == who).count() {
        0 => "·".to_owned(),
        1 => "●".to_owned(),
        n => n.to_string(),
    };
    let (kernel, l2sw) = (copies(&r.kernel), copies(&r.l2sw));
    let (open, close) = match r.mark {
        _ if kernel == l2sw => (' ', ' '),
        Mark::HashedMulticast => ('(', ')'),
        Mark::Same | Mark::Differ => ('[', ']'),
    };
    format!("{open}{kernel}|{l2sw}{close}")
}

/// Builds one side, sends every step's frame and returns who received each, then takes the
/// side down.
fn run(
    topology: &Topology,
    script: &[Step],
    upstream_hairpin: bool,
    side: Implementation,
) -> Result<Vec<Vec<String>>, SideError> {
    let mut lab = build(topology, upstream_hairpin, side)?;
    let got = script
        .iter()
        .map(|step| deliveries(&lab.taps, step))
        .collect::<Result<_, _>>()?;
    if let Some(engine) = lab.engine.take() {
        engine.stop()?;
    }
    Ok(got)
}

/// One side, built: l2sw (on its side), the taps in the topology's member order, and the
/// namespaces, dropped in that order.
#[derive(Debug)]
struct Lab {
    engine: Option<L2sw>,
    taps: Vec<Tap>,
    _namespaces: Scratch,
}

/// Builds `topology` on `side`. Bridge modes: workloads on ports `pNAME` of namespace `sw`,
/// enslaved to the kernel bridge or served by l2sw. macvlan modes: the uplink `upl` in
/// namespace `up`, wired to port `dwn` of the upstream kernel bridge (hairpin as asked) in
/// `sw`, behind which the outside station is a workload; the sub-interfaces are the kernel's
/// macvlan devices moved into namespaces of their own, or workloads on ports `pNAME` of `up`
/// served by l2sw with the uplink.
fn build(
    topology: &Topology,
    upstream_hairpin: bool,
    side: Implementation,
) -> Result<Lab, SideError> {
    let mut namespaces = namespaces(topology.mode);
    let sw = namespaces.create("sw")?;
    let sw_links = Links::new(Some(&sw));
    let mut ports = Vec::new();
    // `home`: the namespace of the ports that l2sw serves, or the kernel replaces.
    let (switch, home) = if topology.upstream {
        let up = namespaces.create("up")?;
        sw_links.create_bridge(UPSTREAM.0, UPSTREAM.1)?;
        veth_pair((&up, UPLINK, UPLINK_MAC), (&sw, DOWN.0, DOWN.1))?;
        sw_links.enslave(DOWN.0, UPSTREAM.0)?;
        sw_links.set_bridge_port(DOWN.0, upstream_hairpin, false)?;
        // A veth cannot filter unicast: promiscuous once a sub-interface adds its MAC.
        let uplink = PortRole::Uplink(UplinkPort {
            promiscuous: false,
            unicast_filtering: false,
        });
        let uplink = PortConfig::new(UPLINK, uplink).with_mac(UPLINK_MAC);
        ports.push((uplink, place(&up, UPLINK)));
        (SwitchConfig::macvlan(), up)
    } else {
        if side == Implementation::Kernel {
            sw_links.create_bridge(BRIDGE.0, BRIDGE.1)?;
        }
        (SwitchConfig::bridge(), sw.clone())
    };
    let mut taps = Vec::new();
    for m in &topology.members {
        let port = port_name(m);
        let tap = match (&m.role, side) {
            (MemberRole::Slave, _) => return Err(SideError::NoIpvlan),
            (MemberRole::Outside, _) => {
                let tap = workload(&mut namespaces, &sw, m)?;
                sw_links.enslave(&port, UPSTREAM.0)?;
                tap
            }
            (MemberRole::BridgePort { hairpin, isolated }, Implementation::Kernel) => {
                let tap = workload(&mut namespaces, &sw, m)?;
                sw_links.enslave(&port, BRIDGE.0)?;
                sw_links.set_bridge_port(&port, *hairpin, *isolated)?;
                tap
            }
            (MemberRole::Sub { mode, source, .. }, Implementation::Kernel) => {
                let ns = namespaces.create(m.name)?;
                let dev = format!("mv{}", m.name);
                let home_links = Links::new(Some(&home));
                home_links.create_macvlan(&dev, UPLINK, *mode, m.mac, source)?;
                home_links.move_to(&dev, &ns)?;
                Links::new(Some(&ns)).set_up(&dev)?;
                Tap::open(m, &ns, &dev)?
            }
            (MemberRole::BridgePort { hairpin, isolated }, Implementation::L2sw) => {
                let flags = BridgePort {
                    hairpin: *hairpin,
                    isolated: *isolated,
                    ..BridgePort::default()
                };
                let cfg = PortConfig::new(&port, PortRole::Bridge(flags)).with_mac(port_mac(m));
                ports.push((cfg, place(&home, &port)));
                workload(&mut namespaces, &home, m)?
            }
            (MemberRole::Sub { .. }, Implementation::L2sw) => {
                ports.extend(m.macvlan_port(&port).map(|cfg| (cfg, place(&home, &port))));
                workload(&mut namespaces, &home, m)?
            }
        };
        taps.push(tap);
    }
    let engine = match side {
        Implementation::Kernel => None,
        Implementation::L2sw => Some(L2sw::start(NetworkPlan {
            name: format!("verify-{}", topology.mode),
            switch,
            ports,
        })?),
    };
    Ok(Lab {
        engine,
        taps,
        _namespaces: namespaces,
    })
}

/// The switch-side port of member `m`'s workload.
fn port_name(m: &Member) -> String {
    format!("p{}", m.name)
}

/// The MAC of that port: 02:00:00:00:01:NN, NN the station's number (the last byte of its
/// address: a passthru sub-interface's MAC is the uplink's).
fn port_mac(m: &Member) -> Mac {
    Mac([2, 0, 0, 0, 1, m.ip.octets()[3]])
}

/// An AF_PACKET port on `interface` in namespace `ns`.
fn place(ns: &str, interface: &str) -> PortPlace {
    PortPlace {
        kind: PortKind::AfPacket,
        interface: interface.to_owned(),
        netns: Some(ns.to_owned()),
        handover: Handover::Blocks,
        vxlan: None,
    }
}

/// Workload `m`: namespace NAME whose `eth0` has the member's MAC and TX offloads off (as
/// l2ctl sets a workload on an AF_PACKET port), wired by a veth pair to port `pNAME` in
/// namespace `sw`; returns a tap on its `eth0`.
fn workload(namespaces: &mut Scratch, sw: &str, m: &Member) -> Result<Tap, SideError> {
    let ns = namespaces.create(m.name)?;
    veth_pair((&ns, "eth0", m.mac), (sw, &port_name(m), port_mac(m)))?;
    Links::new(Some(&ns)).disable_tx_offloads("eth0")?;
    Tap::open(m, &ns, "eth0")
}

/// Sends `step`'s frame from its sender's tap and returns the names of the taps that
/// received an identical frame (the sender's too, if it came back), once per copy, in the
/// taps' order, once they have been quiet for [`QUIET`] ([`WAIT`] at most).
fn deliveries(taps: &[Tap], step: &Step) -> Result<Vec<String>, SideError> {
    let sender = taps
        .iter()
        .find(|t| t.name == step.from)
        .ok_or(SideError::NoSender(step.from))?;
    let mut buf = Vec::new();
    for t in taps {
        // Whatever a previous step left behind is not this step's.
        t.copies_of(&step.frame, &mut buf)?;
    }
    sender.send(&step.frame)?;
    let mut copies = vec![0; taps.len()];
    let start = Instant::now();
    let mut last = start;
    while start.elapsed() < WAIT && last.elapsed() < QUIET {
        std::thread::sleep(POLL);
        for (t, n) in taps.iter().zip(&mut copies) {
            let got = t.copies_of(&step.frame, &mut buf)?;
            if got > 0 {
                *n += got;
                last = Instant::now();
            }
        }
    }
    Ok(taps
        .iter()
        .zip(copies)
        .flat_map(|(t, n)| std::iter::repeat_n(t.name.to_owned(), n))
        .collect())
}

/// A frame tap on a receiver's interface: sends as its stack would, captures what arrives.
#[derive(Debug)]
struct Tap {
    name: &'static str,
    sock: PacketSocket,
}

impl Tap {
    /// Opens a tap for member `m` on `ifname` in namespace `ns`; while it lives, the
    /// interface has joined [`JOINED`] if the member joins it.
    fn open(m: &Member, ns: &str, ifname: &str) -> Result<Tap, SideError> {
        let err = |source| SideError::Tap {
            tap: m.name,
            source,
        };
        let sock = netns::run_in(ns, || PacketSocket::open(ifname))
            .and_then(|opened| opened)
            .map_err(err)?;
        if matches!(m.role, MemberRole::Sub { joins: true, .. }) {
            let group = Membership::Multicast(JOINED.0);
            sock.membership(true, group).map_err(err)?;
        }
        Ok(Tap { name: m.name, sock })
    }

    fn error(&self, op: &'static str, source: io::Error) -> SideError {
        let on = self.sock.ifname().to_owned();
        let source = SysError { op, on, source };
        SideError::Tap {
            tap: self.name,
            source,
        }
    }

    fn send(&self, frame: &[u8]) -> Result<(), SideError> {
        match self.sock.send(frame) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.error("send", io::ErrorKind::WouldBlock.into())),
            Err(e) => Err(self.error("send", e)),
        }
    }

    /// Reads every frame waiting and counts those identical to `frame`.
    fn copies_of(&self, frame: &[u8], buf: &mut Vec<u8>) -> Result<usize, SideError> {
        let mut n = 0;
        while self
            .sock
            .recv_into(buf, frame.len() + 1)
            .map_err(|e| self.error("receive", e))?
        {
            n += usize::from(buf.as_slice() == frame);
        }
        Ok(n)
    }
}

/// l2sw running the side's network, stopped on drop.
#[derive(Debug)]
struct L2sw(Option<Running>);

impl L2sw {
    fn start(plan: NetworkPlan) -> Result<L2sw, SideError> {
        let stop = Arc::new(AtomicBool::new(false));
        Ok(L2sw(Some(daemon::start(plan, stop)?)))
    }

    /// Stops l2sw; an error if it lost frames on the way.
    fn stop(mut self) -> Result<(), SideError> {
        let Some(running) = self.0.take() else {
            return Ok(());
        };
        let stats = running.stop_and_join().map_err(SideError::Stop)?;
        if stats.io_errors + stats.tx_full + stats.detached > 0 {
            return Err(SideError::Lost(stats));
        }
        Ok(())
    }
}

impl Drop for L2sw {
    fn drop(&mut self) {
        if let Some(running) = self.0.take() {
            // Best effort: an error is already on its way to the caller.
            let _ = running.stop_and_join();
        }
    }
}

/// Every run's number in this process.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// The namespaces of one side of a run, named after the mode and the run.
fn namespaces(mode: Mode) -> Scratch {
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    Scratch::new(format!("{}{n}", netns_prefix(mode)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|n| (*n).to_owned()).collect()
    }

    fn row(what: &str, kernel: &[&str], l2sw: &[&str], hashed: bool) -> Row {
        let (kernel, l2sw) = (names(kernel), names(l2sw));
        Row {
            what: what.into(),
            from: "a".into(),
            mark: Mark::of(&kernel, &l2sw, hashed),
            kernel,
            l2sw,
        }
    }

    fn matrix(rows: Vec<Row>) -> Matrix {
        Matrix {
            mode: Mode::MacvlanVepa,
            upstream_hairpin: Some(false),
            receivers: names(&["a", "b", "e"]),
            rows,
        }
    }

    #[test]
    fn only_extra_kernel_receivers_of_hashed_multicast_are_tolerated() {
        let mark = |k: &[&str], l: &[&str], hashed| Mark::of(&names(k), &names(l), hashed);
        assert_eq!(mark(&["b", "e"], &["b", "e"], false), Mark::Same);
        assert_eq!(mark(&["b", "e"], &["e"], true), Mark::HashedMulticast);
        assert_eq!(mark(&["b", "e"], &["e"], false), Mark::Differ);
        assert_eq!(mark(&["e"], &["b", "e"], true), Mark::Differ);
        assert_eq!(mark(&["e"], &["e", "e"], false), Mark::Differ);
    }

    #[test]
    fn a_difference_fails_and_is_shown() {
        let m = matrix(vec![
            row("broadcast from a", &["e"], &["e"], false),
            row("unjoined multicast from a", &["b", "e"], &["e"], true),
            row("peer unicast a → b", &["e"], &["b"], false),
        ]);
        assert!(!m.matches());
        let text = render(&m);
        assert!(
            text.starts_with("macvlan-vepa (upstream hairpin off)"),
            "{text}"
        );
        let line = |what: &str| text.lines().find(|l| l.contains(what)).unwrap().to_owned();
        assert!(line("broadcast").starts_with("   "), "{text}");
        assert!(line("broadcast").ends_with("·|·   ·|·   ●|●"), "{text}");
        assert!(line("unjoined").starts_with("~~"), "{text}");
        assert!(line("unjoined").contains("(●|·)"), "{text}");
        assert!(line("peer unicast").starts_with("!!"), "{text}");
        assert!(line("peer unicast").ends_with("[·|●] [●|·]"), "{text}");
        assert!(
            text.ends_with(
                "kernel and l2sw agree on 2 of 3 frames; they differ on: peer unicast a → b\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_agreement_passes() {
        let mut m = matrix(vec![row("unjoined", &["b", "e"], &["e"], true)]);
        m.upstream_hairpin = None;
        assert!(m.matches());
        let text = render(&m);
        assert!(text.contains("--upstream-hairpin does not apply"), "{text}");
        assert!(
            text.ends_with("kernel and l2sw agree on 1 of 1 frames\n"),
            "{text}"
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["mode"], "macvlan-vepa");
        assert_eq!(json["upstream_hairpin"], serde_json::Value::Null);
        assert_eq!(json["rows"][0]["mark"], "hashed-multicast");
    }

    #[test]
    fn ipvlan_has_no_kernel_side() {
        let e = verify(Mode::IpvlanL2, false).unwrap_err().to_string();
        assert!(
            e.contains("no ipvlan") && e.contains("l2ctl explain ipvlan-l2"),
            "{e}"
        );
    }
}
