//! The targets and the throw-away namespaces each is built in.
//!
//! Every target has the same two ends: the generator's interface `eth0` in namespace `a` and
//! the sink's `eth0` in namespace `b` (or `e`, the station behind a macvlan uplink). Between
//! them is either nothing (a direct veth pair), the kernel (a bridge, a macvlan device) or
//! l2sw, built from the same engine the daemon runs and driven on a core of its own.
//!
//! The ends' offloads stay as a new interface has them (checksum, scatter-gather, TSO and GSO
//! on, as Docker leaves a container's), unless the run asks for the old way ([`Offloads`]).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::config::{Config, NetworkPlan, PortKind, PortPlace};
use l2sw::daemon;
use l2sw::engine::Engine;
use l2sw::fwd::{MacvlanMode, PortConfig, Role as PortRole, SwitchConfig, UplinkPort};
use l2sw::port::sys::ring::Handover;
use l2sw::port::vxlan::VxlanConfig;
use l2sw::wire::{Mac, Vni};
use l2sw_control::modes::{Member, MemberRole};
use l2sw_control::nl::{Links, NlError, Scratch};
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::traffic::Flow;

/// What sits between the generator and the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A veth pair, end to end: the generator's own limit.
    Direct,
    /// The kernel's bridge.
    KernelBridge,
    /// l2sw as a learning bridge, on AF_PACKET ports whose receive rings hand frames over
    /// as said (`None`: as the daemon does by default), or on TAP ports.
    L2swBridge(PortKind, Option<Handover>),
    /// The kernel's macvlan in a mode.
    KernelMacvlan(MacvlanMode),
    /// l2sw as macvlan in a mode (AF_PACKET ports).
    L2swMacvlan(MacvlanMode),
    /// Open vSwitch's userspace (netdev) datapath, a bridge of two AF_PACKET ports, where
    /// `ovs-vswitchd` is installed.
    OvsNetdev,
    /// Two hosts joined by a VXLAN overlay: on each, a bridge of the end's port and a VXLAN
    /// port (the kernel's bridge and vxlan device, or l2sw's), the hosts linked by a veth
    /// underlay.
    Overlay {
        /// l2sw on both hosts (else the kernel's VTEPs).
        l2sw: bool,
    },
}

/// A target: a name and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Its name on the command line and in reports.
    pub name: &'static str,
    /// What it is.
    pub kind: Kind,
}

impl Target {
    /// Whether l2sw forwards (so it has a CPU clock and a capacity).
    pub fn is_l2sw(&self) -> bool {
        matches!(
            self.kind,
            Kind::L2swBridge(..) | Kind::L2swMacvlan(_) | Kind::Overlay { l2sw: true }
        )
    }

    /// Whether it learns (so it has an FDB to fill).
    pub fn learns(&self) -> bool {
        matches!(
            self.kind,
            Kind::KernelBridge | Kind::L2swBridge(..) | Kind::OvsNetdev | Kind::Overlay { .. }
        )
    }

    /// Whether frames cross user space: unless the switch honours the metadata of offloaded
    /// packets, a checksum left to offload arrives unfinished and a TSO super-frame does not
    /// fit a frame. `--offloads off` turns the ends' TX offloads off for these targets.
    pub fn in_userspace(&self) -> bool {
        self.is_l2sw() || self.kind == Kind::OvsNetdev
    }

    /// Whether it is an l2sw bridge whose receive ring is named and is the daemon's default
    /// (`default`), so that it measures what `l2sw-bridge` does.
    pub fn repeats_default(&self, default: Handover) -> bool {
        self.kind == Kind::L2swBridge(PortKind::AfPacket, Some(default))
    }

    /// What it is, in words (`l2bench --list`).
    pub fn describe(&self) -> String {
        let ring = |h: Option<Handover>| match h {
            None => "the daemon's default receive ring",
            Some(Handover::Blocks) => "TPACKET_V3 receive rings (blocks)",
            Some(Handover::Frames) => "TPACKET_V2 receive rings (frames)",
        };
        let what = match self.kind {
            Kind::Direct => "nothing between the ends".to_owned(),
            Kind::KernelBridge => "the kernel's bridge".to_owned(),
            Kind::L2swBridge(PortKind::Tap, _) => "l2sw's bridge on TAP ports".to_owned(),
            Kind::L2swBridge(PortKind::Vxlan, _) => "l2sw's bridge on a VXLAN port".to_owned(),
            Kind::L2swBridge(PortKind::AfPacket, h) => {
                format!("l2sw's bridge on AF_PACKET ports, {}", ring(h))
            }
            Kind::KernelMacvlan(m) => format!("the kernel's macvlan, {}", m.name()),
            Kind::L2swMacvlan(m) => format!("l2sw's macvlan, {}", m.name()),
            Kind::OvsNetdev => "Open vSwitch's userspace datapath".to_owned(),
            Kind::Overlay { l2sw: false } => {
                "the kernel's bridge and vxlan device on each of two hosts".to_owned()
            }
            Kind::Overlay { l2sw: true } => {
                "l2sw's bridge and VXLAN port on each of two hosts".to_owned()
            }
        };
        format!("{what}: {}", self.path())
    }

    /// The path the frames take, in words.
    pub fn path(&self) -> &'static str {
        match self.kind {
            Kind::Direct => "a -> b, one veth pair",
            Kind::Overlay { .. } => "a -> b, known unicast, host A -> VXLAN -> host B",
            Kind::KernelBridge | Kind::L2swBridge(..) | Kind::OvsNetdev => "a -> b, known unicast",
            Kind::KernelMacvlan(MacvlanMode::Bridge) | Kind::L2swMacvlan(MacvlanMode::Bridge) => {
                "sub-interface a -> sub-interface b"
            }
            _ => "sub-interface a -> e, out the uplink",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Every target, in report order.
pub const TARGETS: &[Target] = &[
    Target {
        name: "direct",
        kind: Kind::Direct,
    },
    Target {
        name: "kernel-bridge",
        kind: Kind::KernelBridge,
    },
    Target {
        name: "l2sw-bridge",
        kind: Kind::L2swBridge(PortKind::AfPacket, None),
    },
    Target {
        name: "l2sw-bridge-v2",
        kind: Kind::L2swBridge(PortKind::AfPacket, Some(Handover::Frames)),
    },
    Target {
        name: "l2sw-bridge-v3",
        kind: Kind::L2swBridge(PortKind::AfPacket, Some(Handover::Blocks)),
    },
    Target {
        name: "l2sw-bridge-tap",
        kind: Kind::L2swBridge(PortKind::Tap, None),
    },
    Target {
        name: "kernel-macvlan-bridge",
        kind: Kind::KernelMacvlan(MacvlanMode::Bridge),
    },
    Target {
        name: "l2sw-macvlan-bridge",
        kind: Kind::L2swMacvlan(MacvlanMode::Bridge),
    },
    Target {
        name: "kernel-macvlan-private",
        kind: Kind::KernelMacvlan(MacvlanMode::Private),
    },
    Target {
        name: "l2sw-macvlan-private",
        kind: Kind::L2swMacvlan(MacvlanMode::Private),
    },
    Target {
        name: "kernel-macvlan-vepa",
        kind: Kind::KernelMacvlan(MacvlanMode::Vepa),
    },
    Target {
        name: "l2sw-macvlan-vepa",
        kind: Kind::L2swMacvlan(MacvlanMode::Vepa),
    },
    Target {
        name: "kernel-macvlan-passthru",
        kind: Kind::KernelMacvlan(MacvlanMode::Passthru),
    },
    Target {
        name: "l2sw-macvlan-passthru",
        kind: Kind::L2swMacvlan(MacvlanMode::Passthru),
    },
    Target {
        name: "ovs-netdev",
        kind: Kind::OvsNetdev,
    },
    Target {
        name: "kernel-vxlan",
        kind: Kind::Overlay { l2sw: false },
    },
    Target {
        name: "l2sw-overlay",
        kind: Kind::Overlay { l2sw: true },
    },
];

/// Looks a target up by name.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// How the daemon's AF_PACKET ports hand frames over when the configuration does not say:
/// what a port of a minimal configuration file gets.
pub fn default_handover() -> Result<Handover, BenchError> {
    let text = "[[network]]\nname = \"probe\"\nmode = \"bridge\"\n\
                [[network.port]]\ninterface = \"pa\"\nrole = \"bridge\"\n";
    let bad = |e: &dyn fmt::Display| BenchError::Setup(format!("the daemon's default ring: {e}"));
    let plans = Config::from_toml(text)
        .map_err(|e| bad(&e))?
        .plan()
        .map_err(|e| bad(&e))?;
    plans
        .first()
        .and_then(|p| p.ports.first())
        .map(|(_, place)| place.handover)
        .ok_or_else(|| bad(&"no port planned"))
}

/// What becomes of the ends' TX offloads (checksum, scatter-gather, TSO, GSO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Offloads {
    /// Left on, as a new interface (and Docker) has them, on every target.
    On,
    /// The old way: off on the ends of targets whose frames cross user space (l2sw, OVS);
    /// the kernel's targets keep them.
    Off,
    /// On for everything, then off as `Off` has them for a second TCP and round-trip
    /// measurement of the targets that cross user space.
    Both,
}

impl Offloads {
    /// The setting of runs saved before there was a choice.
    pub fn legacy() -> Offloads {
        Offloads::Off
    }
}

/// One end of a target: an interface in a namespace, with its MAC and IPv4 address.
#[derive(Debug, Clone)]
pub struct End {
    /// The namespace.
    pub ns: String,
    /// The interface.
    pub dev: String,
    /// Its MAC.
    pub mac: Mac,
    /// Its address (for the TCP test).
    pub ip: Ipv4Addr,
}

/// A built target: its two ends, l2sw's engine (built, not running) if it is l2sw, and
/// the namespaces, removed on drop.
#[derive(Debug)]
pub struct Lab {
    /// The target.
    pub target: Target,
    /// The generator's end.
    pub gen_end: End,
    /// The sink's end.
    pub sink_end: End,
    /// l2sw's engine and the names of the ingress and egress ports.
    pub engine: Option<(Engine, &'static str, &'static str)>,
    /// Open vSwitch, stopped before the namespaces go.
    pub ovs: Option<Ovs>,
    /// The far host's l2sw engine of an overlay target (built, not running): it runs beside
    /// `engine` whenever that runs.
    pub peer: Option<Engine>,
    _namespaces: Scratch,
}

/// The address the generator's end has.
pub const GEN_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The address the sink's end has.
pub const SINK_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const GEN_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);
const SINK_MAC: Mac = Mac([2, 0, 0, 0, 0, 2]);
const UPLINK_MAC: Mac = Mac([2, 0, 0, 0, 1, 0]);
const BRIDGE_MAC: Mac = Mac([2, 0, 0, 0, 2, 0]);

impl Lab {
    /// Builds `target` with every link's MTU at `mtu` and the ends' offloads as `offloads`
    /// says; l2sw's ports hand frames over as `handover` unless the target names a way.
    pub fn build(
        target: Target,
        mtu: u32,
        offloads: Offloads,
        handover: Handover,
    ) -> Result<Lab, BenchError> {
        let mut ns = namespaces(target.name);
        let a = ns.create("a")?;
        let b = ns.create("b")?;
        let end = |ns: &str, mac, ip| End {
            ns: ns.to_owned(),
            dev: "eth0".to_owned(),
            mac,
            ip,
        };
        let gen_end = end(&a, GEN_MAC, GEN_IP);
        let mut sink_end = end(&b, SINK_MAC, SINK_IP);
        let mut engine = None;
        let mut ovs = None;
        let mut peer = None;
        let switch = match target.kind {
            Kind::Overlay { l2sw } => {
                let (ha, hb) = (ns.create("ha")?, ns.create("hb")?);
                veth((&a, "eth0", GEN_MAC), (&ha, "pa", station(11)), mtu)?;
                veth((&b, "eth0", SINK_MAC), (&hb, "pb", station(12)), mtu)?;
                // The underlay carries VXLAN's 50 bytes on top of the ends' MTU.
                let under = mtu + l2sw::wire::vxlan::OVERHEAD as u32;
                veth((&ha, "u", station(21)), (&hb, "u", station(22)), under)?;
                let vteps = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
                for (h, ip) in [(&ha, vteps[0]), (&hb, vteps[1])] {
                    Links::new(Some(h)).add_address("u", ip.into(), 24)?;
                }
                let hosts = [(&ha, "pa", 0), (&hb, "pb", 1)];
                if l2sw {
                    let mut engines = Vec::new();
                    for (h, port, me) in hosts {
                        let vx = PortPlace {
                            vxlan: Some(overlay_port(vteps[me], vteps[1 - me])?),
                            ..place(PortKind::Vxlan, h, "vx", handover)
                        };
                        let mut cfg = SwitchConfig::bridge();
                        cfg.mtu = mtu as usize;
                        let plan = NetworkPlan {
                            name: format!("{}-{me}", target.name),
                            switch: cfg,
                            ports: vec![
                                (
                                    PortConfig::bridge(port),
                                    place(PortKind::AfPacket, h, port, handover),
                                ),
                                (PortConfig::bridge("vx"), vx),
                            ],
                        };
                        engines.push(
                            daemon::build(plan).map_err(|e| BenchError::Setup(e.to_string()))?,
                        );
                    }
                    peer = engines.pop();
                    engine = engines.pop().map(|e| (e, "pa", "vx"));
                } else {
                    for (h, port, me) in hosts {
                        kernel_vtep(h, port, vteps[me], vteps[1 - me], mtu)?;
                    }
                }
                None
            }
            Kind::Direct => {
                veth((&a, "eth0", GEN_MAC), (&b, "eth0", SINK_MAC), mtu)?;
                None
            }
            Kind::KernelBridge => {
                let sw = ns.create("sw")?;
                veth((&a, "eth0", GEN_MAC), (&sw, "pa", station(11)), mtu)?;
                veth((&b, "eth0", SINK_MAC), (&sw, "pb", station(12)), mtu)?;
                let l = Links::new(Some(&sw));
                l.create_bridge("br0", BRIDGE_MAC)?;
                l.set_mtu("br0", mtu)?;
                l.enslave("pa", "br0")?;
                l.enslave("pb", "br0")?;
                l.set_up("br0")?;
                None
            }
            Kind::OvsNetdev => {
                let sw = ns.create("sw")?;
                veth((&a, "eth0", GEN_MAC), (&sw, "pa", station(11)), mtu)?;
                veth((&b, "eth0", SINK_MAC), (&sw, "pb", station(12)), mtu)?;
                ovs = Some(Ovs::start(&sw, &["pa", "pb"])?);
                None
            }
            Kind::L2swBridge(PortKind::AfPacket, ring) => {
                let ring = ring.unwrap_or(handover);
                let sw = ns.create("sw")?;
                veth((&a, "eth0", GEN_MAC), (&sw, "pa", station(11)), mtu)?;
                veth((&b, "eth0", SINK_MAC), (&sw, "pb", station(12)), mtu)?;
                Some((
                    SwitchConfig::bridge(),
                    vec![
                        (
                            PortConfig::bridge("pa"),
                            place(PortKind::AfPacket, &sw, "pa", ring),
                        ),
                        (
                            PortConfig::bridge("pb"),
                            place(PortKind::AfPacket, &sw, "pb", ring),
                        ),
                    ],
                    ("pa", "pb"),
                ))
            }
            Kind::L2swBridge(PortKind::Tap, _) => Some((
                SwitchConfig::bridge(),
                vec![
                    (
                        PortConfig::bridge("pa"),
                        place(PortKind::Tap, &a, "eth0", handover),
                    ),
                    (
                        PortConfig::bridge("pb"),
                        place(PortKind::Tap, &b, "eth0", handover),
                    ),
                ],
                ("pa", "pb"),
            )),
            Kind::L2swBridge(PortKind::Vxlan, _) => {
                return Err(BenchError::Setup(
                    "a VXLAN port joins the overlay targets, not the two-end bridge".into(),
                ));
            }
            Kind::KernelMacvlan(mode) => {
                let sw = ns.create("sw")?;
                let e = ns.create("e")?;
                veth((&sw, "up", UPLINK_MAC), (&e, "eth0", SINK_MAC), mtu)?;
                let l = Links::new(Some(&sw));
                let sub = |name: &str, to: &str, mac: Mac| -> Result<(), NlError> {
                    l.create_macvlan(name, "up", mode, mac, &[])?;
                    l.set_mtu(name, mtu)?;
                    l.move_to(name, to)?;
                    let t = Links::new(Some(to));
                    t.rename(name, "eth0")?;
                    t.set_up("eth0")
                };
                if mode == MacvlanMode::Bridge {
                    sub("mva", &a, GEN_MAC)?;
                    sub("mvb", &b, SINK_MAC)?;
                } else {
                    let mac = if mode == MacvlanMode::Passthru {
                        UPLINK_MAC
                    } else {
                        GEN_MAC
                    };
                    sub("mva", &a, mac)?;
                    sink_end.ns = e;
                }
                None
            }
            Kind::L2swMacvlan(mode) => {
                let sw = ns.create("sw")?;
                let e = ns.create("e")?;
                veth((&sw, "up", UPLINK_MAC), (&e, "eth0", SINK_MAC), mtu)?;
                let gen_mac = if mode == MacvlanMode::Passthru {
                    UPLINK_MAC
                } else {
                    GEN_MAC
                };
                veth((&a, "eth0", gen_mac), (&sw, "pa", station(11)), mtu)?;
                let uplink = PortRole::Uplink(UplinkPort {
                    promiscuous: false,
                    unicast_filtering: false,
                });
                let mut ports = vec![
                    (
                        PortConfig::new("up", uplink).with_mac(UPLINK_MAC),
                        place(PortKind::AfPacket, &sw, "up", handover),
                    ),
                    (
                        sub_port("pa", gen_mac, mode)?,
                        place(PortKind::AfPacket, &sw, "pa", handover),
                    ),
                ];
                let egress = if mode == MacvlanMode::Bridge {
                    veth((&b, "eth0", SINK_MAC), (&sw, "pb", station(12)), mtu)?;
                    ports.push((
                        sub_port("pb", SINK_MAC, mode)?,
                        place(PortKind::AfPacket, &sw, "pb", handover),
                    ));
                    "pb"
                } else {
                    sink_end.ns = e;
                    "up"
                };
                Some((SwitchConfig::macvlan(), ports, ("pa", egress)))
            }
        };
        let mut gen_end = gen_end;
        if let Some((mut cfg, ports, (ingress, egress))) = switch {
            cfg.mtu = mtu as usize;
            let plan = NetworkPlan {
                name: target.name.to_owned(),
                switch: cfg,
                ports,
            };
            let e = daemon::build(plan).map_err(|e| BenchError::Setup(e.to_string()))?;
            engine = Some((e, ingress, egress));
            if let Kind::L2swBridge(PortKind::Tap, _) = target.kind {
                // l2sw made the TAP devices: give them the ends' MACs and MTU.
                for end in [&gen_end, &sink_end] {
                    let l = Links::new(Some(&end.ns));
                    l.set_mac(&end.dev, end.mac)?;
                    l.set_mtu(&end.dev, mtu)?;
                }
            }
        }
        if target.kind == Kind::KernelMacvlan(MacvlanMode::Passthru)
            || target.kind == Kind::L2swMacvlan(MacvlanMode::Passthru)
        {
            gen_end.mac = UPLINK_MAC;
        }
        for end in [&gen_end, &sink_end] {
            Links::new(Some(&end.ns)).add_address(&end.dev, end.ip.into(), 24)?;
        }
        let lab = Lab {
            target,
            gen_end,
            sink_end,
            engine,
            ovs,
            peer,
            _namespaces: ns,
        };
        // An l2sw overlay carries frames as they cross the underlay, never super-frames
        // (l2ctl turns the workloads' offloads off on overlay networks too).
        if (offloads == Offloads::Off && target.in_userspace())
            || target.kind == (Kind::Overlay { l2sw: true })
        {
            lab.disable_offloads()?;
        }
        Ok(lab)
    }

    /// Turns the ends' TX offloads off (checksum, scatter-gather, TSO, GSO): what they send
    /// from then on is whole frames, checksummed, of at most the MTU.
    pub fn disable_offloads(&self) -> Result<(), BenchError> {
        for end in [&self.gen_end, &self.sink_end] {
            Links::new(Some(&end.ns)).disable_tx_offloads(&end.dev)?;
        }
        Ok(())
    }

    /// The flow from the generator's end to the sink's.
    pub fn flow(&self) -> Flow {
        Flow {
            dst: self.sink_end.mac,
            src: self.gen_end.mac,
        }
    }
}

use l2sw::wire::craft::station;

/// A macvlan sub-interface port of l2sw, as `l2ctl verify` builds it.
fn sub_port(name: &str, mac: Mac, mode: MacvlanMode) -> Result<PortConfig, BenchError> {
    let member = Member {
        name: "sub",
        mac,
        ip: Ipv4Addr::UNSPECIFIED,
        role: MemberRole::Sub {
            mode,
            source: Vec::new(),
            joins: false,
        },
    };
    member
        .macvlan_port(name)
        .ok_or_else(|| BenchError::Setup(format!("{name}: not a macvlan sub-interface")))
}

fn place(kind: PortKind, ns: &str, interface: &str, handover: Handover) -> PortPlace {
    PortPlace {
        kind,
        interface: interface.to_owned(),
        netns: Some(ns.to_owned()),
        handover,
        vxlan: None,
    }
}

/// An overlay port's settings: VNI 42 on IANA's port, `local` flooding to `remote`.
fn overlay_port(local: Ipv4Addr, remote: Ipv4Addr) -> Result<VxlanConfig, BenchError> {
    Ok(VxlanConfig {
        vni: Vni::new(42).map_err(|e| BenchError::Setup(e.to_string()))?,
        local,
        port: l2sw::wire::vxlan::IANA_PORT,
        remotes: vec![remote],
        learn_remotes: false,
        learning: true,
        statics: Vec::new(),
    })
}

/// The kernel's VTEP in host namespace `h`: a bridge of `port` and a vxlan device (VNI 42,
/// IANA's port, learning as by default) flooding to `remote`.
fn kernel_vtep(
    h: &str,
    port: &str,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    mtu: u32,
) -> Result<(), BenchError> {
    let run = |args: &[&str]| -> Result<(), BenchError> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| BenchError::sys("run", args[0], e))?;
        if !out.status.success() {
            return Err(BenchError::Setup(format!(
                "{}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    };
    let (local, remote) = (local.to_string(), remote.to_string());
    run(&[
        "ip", "-n", h, "link", "add", "vx0", "type", "vxlan", "id", "42", "local", &local,
        "dstport", "4789", "dev", "u",
    ])?;
    run(&[
        "bridge",
        "-n",
        h,
        "fdb",
        "append",
        "00:00:00:00:00:00",
        "dev",
        "vx0",
        "dst",
        &remote,
    ])?;
    let l = Links::new(Some(h));
    l.set_mtu("vx0", mtu)?;
    l.create_bridge("br0", BRIDGE_MAC)?;
    l.set_mtu("br0", mtu)?;
    l.enslave(port, "br0")?;
    l.enslave("vx0", "br0")?;
    l.set_up("vx0")?;
    l.set_up("br0")?;
    Ok(())
}

/// A veth pair with MTU `mtu`, both ends up, each given as (namespace, name, MAC).
fn veth(a: (&str, &str, Mac), b: (&str, &str, Mac), mtu: u32) -> Result<(), NlError> {
    let (links_a, links_b) = (Links::new(Some(a.0)), Links::new(Some(b.0)));
    // The peer is made under a name of its own, then renamed in its namespace: both ends
    // may be `eth0`.
    let peer = "l2bpeer";
    links_a.create_veth(a.1, peer)?;
    links_a.set_mac(peer, b.2)?;
    links_a.set_mtu(peer, mtu)?;
    links_a.move_to(peer, b.0)?;
    links_b.rename(peer, b.1)?;
    links_a.set_mac(a.1, a.2)?;
    links_a.set_mtu(a.1, mtu)?;
    links_a.set_up(a.1)?;
    links_b.set_up(b.1)
}

static LABS: AtomicU32 = AtomicU32::new(0);

/// The namespaces of one lab: `l2bPID-NT-…`, N the lab's number, T the target's initials.
fn namespaces(target: &str) -> Scratch {
    let n = LABS.fetch_add(1, Ordering::Relaxed);
    let tag: String = target.split('-').map(|w| &w[..1]).collect();
    Scratch::new(format!("l2b{}-{n}{tag}", std::process::id()))
}

/// Open vSwitch's two daemons, run for one lab from a directory of their own: the database
/// server, and `ovs-vswitchd` in the switch's namespace, pinned to l2sw's core, with a
/// netdev (userspace) bridge of the given ports.
#[derive(Debug)]
pub struct Ovs {
    dir: PathBuf,
    db: Child,
    vswitchd: Option<Child>,
}

impl Ovs {
    /// Whether Open vSwitch is installed.
    pub fn installed() -> bool {
        ["ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovsdb-tool"]
            .iter()
            .all(|c| which(c).is_some())
    }

    fn start(ns: &str, ports: &[&str]) -> Result<Ovs, BenchError> {
        if !Ovs::installed() {
            return Err(BenchError::Setup(
                "Open vSwitch is not installed (apt-get install openvswitch-switch)".into(),
            ));
        }
        let dir = std::env::temp_dir().join(format!("l2bench-ovs-{ns}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::sys("create", dir.display().to_string(), e))?;
        let p = |f: &str| dir.join(f).display().to_string();
        let schema = [
            "/usr/share/openvswitch/vswitch.ovsschema",
            "/usr/local/share/openvswitch/vswitch.ovsschema",
        ]
        .into_iter()
        .find(|s| Path::new(s).exists())
        .ok_or_else(|| BenchError::Setup("vswitch.ovsschema not found".into()))?;
        run(Command::new("ovsdb-tool").args(["create", &p("conf.db"), schema]))?;
        let env = |c: &mut Command| {
            for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"] {
                c.env(var, &dir);
            }
        };
        let mut db = Command::new("ovsdb-server");
        db.args([
            &p("conf.db"),
            &format!("--remote=punix:{}", p("db.sock")),
            &format!("--unixctl={}", p("db.ctl")),
            &format!("--log-file={}", p("db.log")),
        ]);
        env(&mut db);
        let db = spawn(&mut db)?;
        let sock = format!("unix:{}", p("db.sock"));
        let mut ovs = Ovs {
            dir: dir.clone(),
            db,
            vswitchd: None,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dir.join("db.sock").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let vsctl = |args: &[&str]| {
            let mut c = Command::new("ovs-vsctl");
            c.arg(format!("--db={sock}")).arg("--timeout=10").args(args);
            env(&mut c);
            run(&mut c)
        };
        vsctl(&["--no-wait", "init"])?;
        // Offloads as the ends have them (checksum left to finish, TCP super-frames): without
        // userspace TSO, ovs-vswitchd reads veth frames without their virtio_net_hdr and sends
        // on checksums nobody finishes, which the ends drop. Set before ovs-vswitchd starts,
        // which reads it once.
        vsctl(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:userspace-tso-enable=true",
        ])?;
        let mut v = Command::new("taskset");
        v.args([
            "-c",
            &super::run::SWITCH_CPU.to_string(),
            "ip",
            "netns",
            "exec",
            ns,
            "ovs-vswitchd",
            &sock,
        ])
        .arg(format!("--unixctl={}", p("vswitchd.ctl")))
        .arg(format!("--log-file={}", p("vswitchd.log")));
        env(&mut v);
        ovs.vswitchd = Some(spawn(&mut v)?);
        let mut add = vec![
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ];
        for port in ports {
            add.extend(["--", "add-port", "br0", port]);
        }
        vsctl(&add)?;
        Ok(ovs)
    }

    /// The process id of `ovs-vswitchd` (for its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.vswitchd.as_ref().map(Child::id)
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for child in self.vswitchd.iter_mut().chain([&mut self.db]) {
            // Best effort: SIGTERM lets ovs-vswitchd remove its ports; then reap.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

fn spawn(c: &mut Command) -> Result<Child, BenchError> {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.spawn()
        .map_err(|e| BenchError::sys("start", format!("{c:?}"), e))
}

fn run(c: &mut Command) -> Result<(), BenchError> {
    let out = c
        .output()
        .map_err(|e| BenchError::sys("run", format!("{c:?}"), e))?;
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_default_ring_is_read_from_its_configuration() {
        let default = default_handover().unwrap();
        let named: Vec<&str> = TARGETS
            .iter()
            .filter(|t| t.repeats_default(default))
            .map(|t| t.name)
            .collect();
        // Exactly one of the bridges with a named ring repeats l2sw-bridge.
        let expect = match default {
            Handover::Blocks => "l2sw-bridge-v3",
            Handover::Frames => "l2sw-bridge-v2",
        };
        assert_eq!(named, [expect]);
        assert!(!target("l2sw-bridge").unwrap().repeats_default(default));
        assert!(
            target("l2sw-bridge")
                .unwrap()
                .describe()
                .contains("default")
        );
    }
}
