//! `l2ctl explain`: a mode's scenario (see [`modes`]) run through the forwarding core in
//! memory and drawn frame by frame: every switch a frame crossed, the kernel rule that decided
//! there, and who received it. Text for terminals, SVG for handouts, JSON for programs, and
//! the generated `docs/modes.md`.
//!
//! Invariants: nothing here decides forwarding, every arrow is a [`Decision`] of an l2sw
//! [`Switch`]. A macvlan or ipvlan switch's uplink is wired to an upstream l2sw bridge holding
//! the outside station, and a frame is followed across that wire as often as a switch sends it.

use std::collections::VecDeque;
use std::net::IpAddr;

use l2sw::fwd::{
    BridgePort, ConfigError, Decision, IpvlanConfig, Learned, MacvlanMode, PortConfig, PortId,
    Role, Switch, SwitchConfig, Tick, UplinkPort, Verdict,
};
use l2sw::wire::{Mac, Meta, Summary, Vtep};
use serde::{Serialize, Serializer};

use crate::modes::{self, JOINED, Member, Mode, Step, Topology, UPLINK_MAC};

mod markdown;
mod svg;
mod text;

pub use markdown::modes_markdown;
pub use svg::{render_svg, render_svg_many};
pub use text::render_text;

/// The moment every frame is sent at: learning needs a clock, nothing here ages.
const NOW: Tick = Tick::from_secs(1);
/// The port at either end of the wire between a macvlan/ipvlan switch and the upstream bridge.
const UPLINK: &str = "uplink";
/// The upstream bridge's name in a [`Hop`].
const UPSTREAM: &str = "upstream";
/// More switch crossings than any frame makes between two switches: a loop.
const MAX_HOPS: usize = 8;
/// An overlay host's VXLAN port.
const VXLAN: &str = "vxlan";
/// The overlay hosts' switches.
const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

/// Overlay host `i`'s VTEP address.
fn vtep_of(i: usize) -> Vtep {
    Vtep(std::net::Ipv4Addr::new(192, 0, 2, (i + 1) as u8))
}
/// The command that regenerates `docs/modes.md`.
pub const REGENERATE: &str =
    "cargo run -p l2sw-control -- explain all --format markdown > docs/modes.md";

/// Why a mode could not be explained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// The mode's topology was refused by the core.
    #[error("building the {mode} topology: {source}")]
    Config {
        /// The mode.
        mode: Mode,
        /// What the core refused.
        source: ConfigError,
    },
    /// A step's sender is on no switch of the topology.
    #[error("{mode}, step {step}: the sender {from:?} is on no switch of the topology")]
    NoSender {
        /// The mode.
        mode: Mode,
        /// The step, from 1.
        step: usize,
        /// The sender.
        from: &'static str,
    },
    /// A frame kept crossing between the switches.
    #[error("{mode}, step {step} ({what}): the frame still travels after {MAX_HOPS} switches")]
    Loop {
        /// The mode.
        mode: Mode,
        /// The step, from 1.
        step: usize,
        /// What the step shows.
        what: String,
    },
}

/// A mode's scenario, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The mode.
    #[serde(serialize_with = "mode_name")]
    pub mode: Mode,
    /// What the mode does, in one line.
    pub about: &'static str,
    /// The mode's own switch: `bridge`, `macvlan` or `ipvlan`.
    pub switch: &'static str,
    /// Hairpin (reflective relay) on the upstream bridge's port facing the uplink; `None`
    /// when the mode has no upstream (the bridge modes).
    pub upstream_hairpin: Option<bool>,
    /// Who takes part.
    pub members: Vec<MemberView>,
    /// The frames, in the order they were sent.
    pub steps: Vec<StepView>,
}

/// A member of the topology.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberView {
    /// Its name (`a`, `b`, `c`, `e`, `s`).
    pub name: &'static str,
    /// Its MAC.
    pub mac: String,
    /// Its IPv4 address, where the mode looks at it (ipvlan).
    pub ip: Option<String>,
    /// What it is, in a few words.
    pub role: String,
    /// Whether it sits behind the upstream bridge, reached over the uplink.
    pub outside: bool,
}

/// One frame and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    /// What it shows ("peer unicast a → b").
    pub what: String,
    /// The member that sent it.
    pub from: &'static str,
    /// Its headers on one line (source > destination, VLAN, ethertype or ARP/IP, length).
    pub header: String,
    /// Multicast the kernel filters through a hash, where an unjoined group may slip through.
    pub hashed: bool,
    /// The members that received it, sorted (a member twice if it got two copies).
    pub receivers: Vec<String>,
    /// Who receives it with the upstream's hairpin set the other way, when that differs.
    pub other_upstream: Option<Vec<String>>,
    /// Every switch it crossed, in order.
    pub hops: Vec<Hop>,
}

/// What one switch did with the frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    /// The switch: `bridge`, `macvlan`, `ipvlan`, or `upstream` (the bridge beyond the
    /// uplink).
    pub switch: &'static str,
    /// Its ports: members first, then `uplink`.
    pub ports: Vec<String>,
    /// The port the frame came in by.
    pub ingress: String,
    /// What the switch did.
    pub action: Action,
    /// The ports it sent the frame out of.
    pub egress: Vec<String>,
    /// Whether the switch's own host side (the bridge device, the uplink's own stack) got a
    /// copy.
    pub host: bool,
    /// The kernel function whose rule decided.
    pub kernel_fn: &'static str,
    /// The rule, in a few words.
    pub why: &'static str,
    /// Why the frame went nowhere, when it did.
    pub drop: Option<DropView>,
    /// What the forwarding database learned from the frame's source, when it learned.
    pub learned: Option<LearnedView>,
    /// Overlay: what the VXLAN port did, with the kernel functions mirrored (`vxlan_rcv`,
    /// `vxlan_snoop` on the way in, `vxlan_xmit` and the all-zeros flood entries on the way
    /// out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<String>,
}

/// A switch's verdict, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Out of exactly one port.
    Forward,
    /// Out of several ports, or ports and the host side.
    Flood,
    /// To the host side only.
    Host,
    /// Nowhere.
    Drop,
}

impl Hop {
    /// What the switch did, counted: "1 copy", "3 copies", "drop". (A flood that finds one
    /// eligible port is a forward to the core, so the count says it better than a verb.)
    fn copies(&self) -> String {
        match self.egress.len() + usize::from(self.host) {
            0 => "drop".into(),
            1 => "1 copy".into(),
            n => format!("{n} copies"),
        }
    }
}

/// A named drop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DropView {
    /// The counter's name (`Reflect`).
    pub reason: &'static str,
    /// What it means.
    pub description: &'static str,
}

/// An FDB entry made or moved by the frame's source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnedView {
    /// The source MAC.
    pub mac: String,
    /// The port it now points at.
    pub port: String,
    /// The port it pointed at before, when it moved.
    pub moved_from: Option<String>,
}

/// Which upstream settings to show for the modes that have an upstream bridge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UpstreamHairpin {
    /// The upstream bridge never sends a frame back out the port it came in by.
    Off,
    /// The upstream bridge reflects frames back down the uplink (reflective relay).
    On,
    /// Off, and on as well where it changes who receives a frame.
    #[default]
    Both,
}

/// An output format of `l2ctl explain`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Diagrams for a terminal.
    #[default]
    Text,
    /// One standalone SVG figure.
    Svg,
    /// A JSON array of explanations.
    Json,
    /// The docs/modes.md page (both upstream settings where they differ, whatever is asked).
    Markdown,
    /// One self-contained page that steps through the frames (docs/modes.html; both upstream
    /// settings, whatever is asked).
    Html,
}

fn mode_name<S: Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.name())
}

/// Runs `mode`'s scenario through the core with the upstream bridge's hairpin as given (the
/// bridge modes have no upstream and ignore it). Steps whose receivers change with the other
/// hairpin setting say so in [`StepView::other_upstream`].
pub fn explain(mode: Mode, upstream_hairpin: bool) -> Result<Explanation, ExplainError> {
    let mut e = run(mode, upstream_hairpin)?;
    if e.upstream_hairpin.is_some() {
        let other = run(mode, !upstream_hairpin)?;
        for (s, o) in e.steps.iter_mut().zip(other.steps) {
            if s.receivers != o.receivers {
                s.other_upstream = Some(o.receivers);
            }
        }
    }
    Ok(e)
}

/// The explanations `l2ctl explain` shows for `modes`: one per mode, and with
/// [`UpstreamHairpin::Both`] a second, hairpinning one for the modes where that changes who
/// receives a frame.
pub fn explain_modes(
    modes: &[Mode],
    upstream: UpstreamHairpin,
) -> Result<Vec<Explanation>, ExplainError> {
    let mut out = Vec::new();
    for &mode in modes {
        let first = explain(mode, upstream == UpstreamHairpin::On)?;
        let differs = first.steps.iter().any(|s| s.other_upstream.is_some());
        out.push(first);
        if upstream == UpstreamHairpin::Both && differs {
            out.push(explain(mode, true)?);
        }
    }
    Ok(out)
}

/// Everything `l2ctl explain MODE|all --format F --upstream-hairpin U` prints.
pub fn render(
    format: Format,
    modes: &[Mode],
    upstream: UpstreamHairpin,
) -> Result<String, ExplainError> {
    let all = || explain_modes(modes, upstream);
    Ok(match format {
        Format::Text => all()?
            .iter()
            .map(render_text)
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Svg => render_svg_many(&all()?),
        Format::Json => {
            let v = serde_json::Value::Array(all()?.iter().map(render_json).collect());
            format!("{v:#}\n")
        }
        Format::Markdown => markdown::page(modes)?,
        Format::Html => crate::ui::page(modes, false)?,
    })
}

fn run(mode: Mode, hairpin: bool) -> Result<Explanation, ExplainError> {
    let t = modes::topology(mode);
    let mut lab = Lab::new(&t, hairpin).map_err(|source| ExplainError::Config { mode, source })?;
    let steps = modes::scenario(mode)
        .iter()
        .enumerate()
        .map(|(i, s)| lab.send(mode, i + 1, s))
        .collect::<Result<_, _>>()?;
    let by_ip = mode == Mode::IpvlanL2;
    Ok(Explanation {
        mode,
        about: mode.about(),
        switch: if mode == Mode::Overlay {
            "overlay (h1, h2, h3)"
        } else {
            lab.nets.first().map_or("switch", |n| n.label)
        },
        upstream_hairpin: t.upstream.then_some(hairpin),
        members: t
            .members
            .iter()
            .map(|m| member_view(m, by_ip, mode == Mode::Overlay))
            .collect(),
        steps,
    })
}

fn member_view(m: &Member, by_ip: bool, overlay: bool) -> MemberView {
    let role = match &m.role {
        modes::MemberRole::BridgePort { hairpin, isolated } => {
            let mut r = String::from("bridge port");
            if *hairpin {
                r += ", hairpin";
            }
            if *isolated {
                r += ", isolated";
            }
            if let Some(h) = Mode::overlay_host(m.name).filter(|_| overlay) {
                r = format!("bridge port on {} (VTEP {})", HOSTS[h], vtep_of(h));
            }
            r
        }
        modes::MemberRole::Sub {
            mode,
            source,
            joins,
        } => {
            let mut r = format!("{mode} sub-interface");
            if *mode == MacvlanMode::Passthru {
                r += ", the uplink's MAC";
            }
            if !source.is_empty() {
                let list: Vec<String> = source.iter().map(Mac::to_string).collect();
                r += &format!(", copies frames from {}", list.join(", "));
            }
            if *joins {
                r += &format!(", joined {JOINED}");
            }
            r
        }
        modes::MemberRole::Slave => "ipvlan L2 slave, the uplink's MAC".to_string(),
        modes::MemberRole::Outside => "outside station, behind the upstream bridge".to_string(),
    };
    MemberView {
        name: m.name,
        mac: m.mac.to_string(),
        ip: by_ip.then(|| m.ip.to_string()),
        role,
        outside: m.role == modes::MemberRole::Outside,
    }
}

/// One switch of a lab, with the name its hops carry.
#[derive(Debug)]
struct Net {
    sw: Switch,
    label: &'static str,
}

/// A topology as l2sw switches: the mode's own switch first and, for macvlan and ipvlan, the
/// upstream bridge beyond its uplink second. A switch is named by its index.
#[derive(Debug)]
struct Lab {
    nets: Vec<Net>,
}

impl Lab {
    fn new(t: &Topology, hairpin: bool) -> Result<Lab, ConfigError> {
        if t.mode == Mode::Overlay {
            // One bridge per host, each with its members and a VXLAN port.
            let mut nets = Vec::new();
            for (i, label) in HOSTS.iter().enumerate() {
                let mut sw = Switch::new(SwitchConfig::bridge())?;
                for m in t
                    .members
                    .iter()
                    .filter(|m| Mode::overlay_host(m.name) == Some(i))
                {
                    sw.add_port(port_config(m))?;
                }
                sw.add_port(PortConfig::bridge(VXLAN))?;
                nets.push(Net { sw, label });
            }
            return Ok(Lab { nets });
        }
        let cfg = match t.mode {
            Mode::Bridge | Mode::BridgeHairpin | Mode::BridgeIsolated => SwitchConfig::bridge(),
            Mode::IpvlanL2 => SwitchConfig::ipvlan(IpvlanConfig::default()),
            _ => SwitchConfig::macvlan(),
        };
        let mut local = Switch::new(cfg)?;
        let mut nets = Vec::new();
        if t.upstream {
            // A veth uplink: it cannot filter unicast, so the kernel makes it promiscuous as
            // soon as a sub-interface adds its MAC.
            let role = Role::Uplink(UplinkPort {
                promiscuous: false,
                unicast_filtering: false,
            });
            local.add_port(PortConfig::new(UPLINK, role).with_mac(UPLINK_MAC))?;
            let mut up = Switch::new(SwitchConfig::bridge())?;
            let down = BridgePort {
                hairpin,
                ..BridgePort::default()
            };
            up.add_port(PortConfig::new(UPLINK, Role::Bridge(down)))?;
            for m in t
                .members
                .iter()
                .filter(|m| m.role == modes::MemberRole::Outside)
            {
                up.add_port(PortConfig::bridge(m.name))?;
            }
            nets.push(Net {
                sw: up,
                label: UPSTREAM,
            });
        }
        for m in t
            .members
            .iter()
            .filter(|m| m.role != modes::MemberRole::Outside)
        {
            local.add_port(port_config(m))?;
        }
        let label = local.config().mode.name();
        nets.insert(0, Net { sw: local, label });
        Ok(Lab { nets })
    }

    /// The switch and port `name` is on.
    fn locate(&self, name: &str) -> Option<(usize, PortId)> {
        self.nets
            .iter()
            .enumerate()
            .find_map(|(i, n)| Some((i, n.sw.port_by_name(name)?)))
    }

    /// Where a frame sent out of `port` of switch `at` arrives next, when the port is the wire
    /// to the other switch.
    fn across(&self, at: usize, port: &str) -> Option<(usize, PortId)> {
        if port != UPLINK {
            return None;
        }
        let other = if at == 0 { 1 } else { 0 };
        let net = self.nets.get(other)?;
        Some((other, net.sw.port_by_name(UPLINK)?))
    }

    /// Sends step `n` and follows it until no switch sends it further.
    fn send(&mut self, mode: Mode, n: usize, step: &Step) -> Result<StepView, ExplainError> {
        let start = self.locate(step.from).ok_or(ExplainError::NoSender {
            mode,
            step: n,
            from: step.from,
        })?;
        let mut todo = VecDeque::from([(start.0, start.1, Meta::NONE)]);
        let mut hops = Vec::new();
        let mut receivers = Vec::new();
        while let Some((at, port, meta)) = todo.pop_front() {
            if hops.len() == MAX_HOPS {
                return Err(ExplainError::Loop {
                    mode,
                    step: n,
                    what: step.what.clone(),
                });
            }
            let Some(net) = self.nets.get_mut(at) else {
                continue;
            };
            let (mut hop, vtep) = net.cross(port, &step.frame, &meta);
            for out in &hop.egress {
                if out == VXLAN {
                    // vxlan_xmit: the VTEP the FDB names, else every all-zeros entry.
                    let targets: Vec<usize> = match vtep {
                        Some(v) => (0..HOSTS.len()).filter(|h| vtep_of(*h) == v).collect(),
                        None => (0..HOSTS.len()).filter(|h| *h != at).collect(),
                    };
                    let list: Vec<String> =
                        targets.iter().map(|h| vtep_of(*h).to_string()).collect();
                    hop.overlay = Some(match vtep {
                        Some(v) => format!(
                            "vxlan_xmit: the FDB names VTEP {v}: one copy, to {}",
                            HOSTS[targets.first().copied().unwrap_or(at)]
                        ),
                        None => format!(
                            "vxlan_xmit: no VTEP for the destination: the all-zeros entries, one copy to each of {} (head-end replication)",
                            list.join(", ")
                        ),
                    });
                    for h in targets {
                        if let Some(p) = self.nets.get(h).and_then(|n| n.sw.port_by_name(VXLAN)) {
                            let meta = Meta {
                                vtep: Some(vtep_of(at)),
                                snoop: true,
                                ..Meta::NONE
                            };
                            todo.push_back((h, p, meta));
                        }
                    }
                    continue;
                }
                match self.across(at, out) {
                    Some(next) => todo.push_back((next.0, next.1, Meta::NONE)),
                    None => receivers.push(out.clone()),
                }
            }
            if let Some(from) = meta.vtep {
                let src = Mac::from_slice(step.frame.get(6..).unwrap_or(&[]))
                    .map_or_else(String::new, |m| m.to_string());
                hop.overlay = Some(format!(
                    "vxlan_rcv from VTEP {from} (a VTEP of the flood list, the network's VNI); vxlan_snoop: {src} is behind {from}"
                ));
            }
            hops.push(hop);
        }
        receivers.sort();
        Ok(StepView {
            what: step.what.clone(),
            from: step.from,
            header: Summary::new(&step.frame).to_string(),
            hashed: step.hashed,
            receivers,
            other_upstream: None,
            hops,
        })
    }
}

impl Net {
    /// Decides `frame` arriving on `port` with `meta`, as one hop; also the VTEP the decision
    /// names for an overlay port.
    fn cross(&mut self, port: PortId, frame: &[u8], meta: &Meta) -> (Hop, Option<Vtep>) {
        let d: Decision = self.sw.decide_with(NOW, port, frame, meta);
        let name = |p: PortId| {
            self.sw
                .port(p)
                .map_or_else(|| p.to_string(), |e| e.cfg.name.clone())
        };
        let mut ports: Vec<String> = self.sw.ports().map(|(p, _)| name(p)).collect();
        ports.sort_by_key(|p| p == UPLINK || p == VXLAN);
        let ingress = name(port);
        let learned = d.learned.and_then(|l| {
            let moved_from = match l {
                Learned::New => None,
                Learned::Moved { from } => Some(name(from)),
                _ => return None,
            };
            Some(LearnedView {
                mac: Mac::from_slice(frame.get(6..)?)?.to_string(),
                port: ingress.clone(),
                moved_from,
            })
        });
        let (action, drop) = match d.verdict {
            Verdict::Unicast(_) => (Action::Forward, None),
            Verdict::Flood { .. } => (Action::Flood, None),
            Verdict::Host => (Action::Host, None),
            Verdict::Drop(r) => (
                Action::Drop,
                Some(DropView {
                    reason: r.name(),
                    description: r.describe(),
                }),
            ),
        };
        let hop = Hop {
            switch: self.label,
            ports,
            egress: d.verdict.ports().iter().map(name).collect(),
            ingress,
            action,
            host: d.verdict.to_host(),
            kernel_fn: d.why.kernel_fn(),
            why: d.why.describe(),
            drop,
            learned,
            overlay: None,
        };
        (hop, d.vtep)
    }
}

/// A member's port on the mode's own switch, configured as the kernel's would be.
fn port_config(m: &Member) -> PortConfig {
    match &m.role {
        modes::MemberRole::BridgePort { hairpin, isolated } => {
            let flags = BridgePort {
                hairpin: *hairpin,
                isolated: *isolated,
                ..BridgePort::default()
            };
            PortConfig::new(m.name, Role::Bridge(flags))
        }
        modes::MemberRole::Sub { .. } => m
            .macvlan_port(m.name)
            .unwrap_or_else(|| PortConfig::bridge(m.name)),
        modes::MemberRole::Slave => {
            PortConfig::ipvlan(m.name, vec![IpAddr::V4(m.ip)]).with_mac(m.mac)
        }
        modes::MemberRole::Outside => PortConfig::bridge(m.name),
    }
}

/// `e` as JSON: the [`Explanation`] with its steps, hops and receivers.
pub fn render_json(e: &Explanation) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or_else(|err| serde_json::json!({ "error": err.to_string() }))
}
