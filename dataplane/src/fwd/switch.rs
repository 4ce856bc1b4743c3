//! The switch: ports and their configuration, one mode, and `process`, which decides a whole
//! batch and then groups the frames per egress port (netmap's two-pass flush).
//!
//! Data flows one way: bytes → [`FrameInfo`] → VLAN classification → ingress filter → mode →
//! VLAN confinement → storm control → [`Decision`] → per-port TX queues. The switch never performs I/O, reads no clock and, once
//! its queues have grown to the batch size, allocates nothing per frame.

use std::net::IpAddr;

use super::clock::Tick;
use super::fdb::{Fdb, FdbError};
use super::filter::{MacSet, RxFilter};
use super::mode::bridge::{Bridge, BridgeConfig, BridgePort};
use super::mode::ipvlan::{Ipvlan, IpvlanConfig, IpvlanPort};
use super::mode::macvlan::{Macvlan, MacvlanMode, MacvlanPort};
use super::mode::{Ctx, Ingress, Rules};
use super::ports::{MAX_PORTS, PortId, PortSet};
use super::storm::{Police, Storm, StormControl, Unpoliced};
use super::verdict::{Decision, DropReason, Verdict, Why};
use super::vlan::{EgressVlan, TagOp, Vid, VlanError, VlanMode};
use crate::wire::{Fault, FrameInfo, Mac, Meta, OverlayFault, Vtep, WireError};

/// Default MTU; the largest frame is MTU + Ethernet header + one VLAN tag
/// (`is_skb_forwardable`).
pub const DEFAULT_MTU: usize = 1500;

/// The mode of a switch and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeConfig {
    /// Learning bridge.
    Bridge(BridgeConfig),
    /// macvlan sub-interfaces on one uplink (each sub-interface has its own mode).
    Macvlan,
    /// ipvlan L2 slaves on one uplink.
    Ipvlan(IpvlanConfig),
}

impl ModeConfig {
    /// The mode's name.
    pub fn name(&self) -> &'static str {
        match self {
            ModeConfig::Bridge(_) => "bridge",
            ModeConfig::Macvlan => "macvlan",
            ModeConfig::Ipvlan(_) => "ipvlan",
        }
    }
}

/// Switch-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// The mode.
    pub mode: ModeConfig,
    /// MTU of every port: frames longer than MTU + 18 bytes are dropped as oversize.
    pub mtu: usize,
}

impl SwitchConfig {
    /// A learning bridge with kernel defaults.
    pub fn bridge() -> SwitchConfig {
        SwitchConfig {
            mode: ModeConfig::Bridge(BridgeConfig::default()),
            mtu: DEFAULT_MTU,
        }
    }
    /// A macvlan switch.
    pub fn macvlan() -> SwitchConfig {
        SwitchConfig {
            mode: ModeConfig::Macvlan,
            mtu: DEFAULT_MTU,
        }
    }
    /// An ipvlan L2 switch.
    pub fn ipvlan(cfg: IpvlanConfig) -> SwitchConfig {
        SwitchConfig {
            mode: ModeConfig::Ipvlan(cfg),
            mtu: DEFAULT_MTU,
        }
    }
    /// The largest frame accepted: MTU + 14-byte header + 4-byte tag.
    pub fn max_frame(&self) -> usize {
        self.mtu + 18
    }
}

/// The uplink (lower device) of a macvlan or ipvlan switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UplinkPort {
    /// Accept every frame from the wire instead of only the sub-interfaces' MACs and groups.
    pub promiscuous: bool,
    /// The interface can filter secondary unicast addresses (`IFF_UNICAST_FLT`). Without it
    /// (veth, for one) the kernel makes the uplink promiscuous as soon as a sub-interface adds
    /// its MAC (`__dev_set_rx_mode`).
    pub unicast_filtering: bool,
}

impl Default for UplinkPort {
    fn default() -> Self {
        UplinkPort {
            promiscuous: false,
            unicast_filtering: true,
        }
    }
}

/// What a port is to its switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A learning-bridge port.
    Bridge(BridgePort),
    /// The switch's own host side: the bridge device (docker0's address) or the uplink's
    /// own stack. At most one.
    Host,
    /// The lower device of macvlan or ipvlan. At most one.
    Uplink(UplinkPort),
    /// A macvlan sub-interface.
    Macvlan(MacvlanPort),
    /// An ipvlan slave.
    Ipvlan(IpvlanPort),
}

impl Role {
    /// The role's name.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Bridge(_) => "bridge port",
            Role::Host => "host",
            Role::Uplink(_) => "uplink",
            Role::Macvlan(_) => "macvlan sub-interface",
            Role::Ipvlan(_) => "ipvlan slave",
        }
    }
}

/// A port's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// A name for people (the interface name).
    pub name: String,
    /// The port's own MAC: a bridge port's (a local FDB entry), a sub-interface's, the uplink's.
    pub mac: Option<Mac>,
    /// 802.1Q treatment.
    pub vlan: VlanMode,
    /// RX filter; `None` takes the role's default (see [`RxFilter`]).
    pub filter: Option<RxFilter>,
    /// Storm control: rate limits on the floods this port's frames cause (l2sw only; off by
    /// default).
    pub storm: StormControl,
    /// What the port is.
    pub role: Role,
}

impl PortConfig {
    /// A port named `name` with `role`, no MAC, VLAN-transparent, default filter.
    pub fn new(name: impl Into<String>, role: Role) -> PortConfig {
        PortConfig {
            name: name.into(),
            mac: None,
            vlan: VlanMode::Transparent,
            filter: None,
            storm: StormControl::OFF,
            role,
        }
    }
    /// A learning-bridge port with kernel defaults.
    pub fn bridge(name: impl Into<String>) -> PortConfig {
        PortConfig::new(name, Role::Bridge(BridgePort::default()))
    }
    /// A macvlan uplink.
    pub fn uplink(name: impl Into<String>) -> PortConfig {
        PortConfig::new(name, Role::Uplink(UplinkPort::default()))
    }
    /// A macvlan sub-interface with `mac` in `mode`.
    pub fn macvlan(name: impl Into<String>, mac: Mac, mode: MacvlanMode) -> PortConfig {
        PortConfig::new(
            name,
            Role::Macvlan(MacvlanPort {
                mode,
                ..MacvlanPort::default()
            }),
        )
        .with_mac(mac)
    }
    /// An ipvlan slave owning `addrs`.
    pub fn ipvlan(name: impl Into<String>, addrs: Vec<IpAddr>) -> PortConfig {
        PortConfig::new(name, Role::Ipvlan(IpvlanPort { addrs }))
    }
    /// Sets the MAC.
    #[must_use]
    pub fn with_mac(mut self, mac: Mac) -> PortConfig {
        self.mac = Some(mac);
        self
    }
    /// Sets the VLAN mode.
    #[must_use]
    pub fn with_vlan(mut self, vlan: VlanMode) -> PortConfig {
        self.vlan = vlan;
        self
    }
    /// Sets the RX filter.
    #[must_use]
    pub fn with_filter(mut self, filter: RxFilter) -> PortConfig {
        self.filter = Some(filter);
        self
    }
    /// Sets the storm-control limits.
    #[must_use]
    pub fn with_storm(mut self, storm: StormControl) -> PortConfig {
        self.storm = storm;
        self
    }
}

/// A configured port with its effective filters.
#[derive(Clone, Debug)]
pub struct PortEntry {
    /// As configured.
    pub cfg: PortConfig,
    /// The station's filter in effect (role default or configured).
    pub filter: RxFilter,
    /// The filter applied to frames entering the switch by this port (`None` = accept all).
    pub ingress: Option<RxFilter>,
}

/// Why a configuration change was refused. Nothing changes when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Every port index is in use.
    #[error("the switch already has {MAX_PORTS} ports")]
    TooManyPorts,
    /// No such port.
    #[error("no port {0}")]
    NoSuchPort(PortId),
    /// A learning setting for a port that does not learn.
    #[error("port {port:?} is a {role}: only bridge ports learn")]
    NotABridgePort {
        /// The port.
        port: String,
        /// Its role.
        role: &'static str,
    },
    /// A learning setting for a switch that does not learn.
    #[error("a {mode} switch has no FDB: only a learning bridge learns")]
    NotABridge {
        /// The switch's mode.
        mode: &'static str,
    },
    /// A port name used twice.
    #[error("a port named {0:?} already exists")]
    DuplicateName(String),
    /// The role does not exist in this mode.
    #[error("a {role} cannot be added to a {mode} switch")]
    RoleNotInMode {
        /// The role.
        role: &'static str,
        /// The mode.
        mode: &'static str,
    },
    /// A second host port.
    #[error("the switch already has a host port ({existing})")]
    SecondHost {
        /// The existing one.
        existing: PortId,
    },
    /// A second uplink.
    #[error("the switch already has an uplink ({existing})")]
    SecondUplink {
        /// The existing one.
        existing: PortId,
    },
    /// A macvlan MAC already used by the uplink or another sub-interface (`-EADDRINUSE`).
    #[error(
        "address already in use: {mac} (port {port:?}) belongs to the uplink or another sub-interface"
    )]
    AddressInUse {
        /// The MAC.
        mac: Mac,
        /// The port being added.
        port: String,
    },
    /// A sub-interface MAC that is not a unicast address.
    #[error("{mac} (port {port:?}) is not a unicast address")]
    NotUnicast {
        /// The MAC.
        mac: Mac,
        /// The port.
        port: String,
    },
    /// A macvlan sub-interface without a MAC.
    #[error("macvlan sub-interface {port:?} needs a MAC (only passthru takes the uplink's)")]
    MissingMac {
        /// The port.
        port: String,
    },
    /// A passthru sub-interface configured with a MAC other than the uplink's.
    #[error(
        "passthru sub-interface {port:?} takes the uplink's MAC {uplink}, not {mac}: set the uplink's MAC instead"
    )]
    PassthruMac {
        /// The port.
        port: String,
        /// The MAC it was given.
        mac: Mac,
        /// The uplink's MAC.
        uplink: Mac,
    },
    /// Passthru shares its uplink with nobody.
    #[error("a passthru macvlan must be the only sub-interface of its uplink")]
    PassthruExclusive,
    /// An IP owned by two ipvlan slaves.
    #[error("address already assigned to an ipvlan slave: {ip} (port {port:?})")]
    DuplicateIp {
        /// The IP.
        ip: IpAddr,
        /// The port being added.
        port: String,
    },
    /// An ipvlan slave with a MAC of its own.
    #[error("ipvlan slave {port:?} has MAC {mac}, but slaves share the uplink's {shared}")]
    IpvlanMac {
        /// The port.
        port: String,
        /// Its MAC.
        mac: Mac,
        /// The uplink's MAC.
        shared: Mac,
    },
    /// Private and vepa at once.
    #[error("ipvlan private and vepa flags can't be active at the same time")]
    IpvlanFlags,
    /// A group forward mask touching STP, PAUSE or LACP.
    #[error(
        "group_fwd_mask {0:#06x} sets restricted bits 0-2 (STP, PAUSE, LACP are never forwarded by mask)"
    )]
    GroupFwdMask(u16),
    /// A bad VLAN configuration.
    #[error(transparent)]
    Vlan(#[from] VlanError),
    /// A refused FDB change.
    #[error(transparent)]
    Fdb(#[from] FdbError),
    /// The MTU is outside 68..=65000.
    #[error("MTU {0} outside 68..=65000")]
    Mtu(usize),
}

#[derive(Debug, Clone)]
enum ModeState {
    Bridge(Box<Bridge>),
    Macvlan(Box<Macvlan>),
    Ipvlan(Box<Ipvlan>),
}

/// One frame's transmission: which frame of the batch and the tag edit it needs on that port.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TxItem {
    /// Index of the frame in the batch.
    pub frame: u16,
    /// The 802.1Q edit for this egress port.
    pub tag: TagOp,
    /// To an overlay port: the remote VTEP the FDB named (`None`: the flood list).
    pub vtep: Option<Vtep>,
}

/// Frames in, decisions and per-port TX queues out. Reused from batch to batch: after the first
/// few batches nothing in it allocates.
#[derive(Debug)]
pub struct Batch<B> {
    rx: Vec<(PortId, B)>,
    /// Each frame's metadata, beside it (`rx[i]` goes with `meta[i]`).
    meta: Vec<Meta>,
    decisions: Vec<Decision>,
    queues: Vec<Vec<TxItem>>,
    host: Vec<TxItem>,
    touched: PortSet,
}

impl<B: AsRef<[u8]>> Default for Batch<B> {
    fn default() -> Self {
        Batch::new()
    }
}

impl<B: AsRef<[u8]>> Batch<B> {
    /// The largest batch (frame indexes are `u16`).
    pub const MAX: usize = u16::MAX as usize;

    /// An empty batch.
    pub fn new() -> Batch<B> {
        Batch {
            rx: Vec::new(),
            meta: Vec::new(),
            decisions: Vec::new(),
            queues: (0..MAX_PORTS).map(|_| Vec::new()).collect(),
            host: Vec::new(),
            touched: PortSet::EMPTY,
        }
    }

    /// An empty batch with room for `n` frames.
    pub fn with_capacity(n: usize) -> Batch<B> {
        let mut b = Batch::new();
        b.rx.reserve(n);
        b.meta.reserve(n);
        b.decisions.reserve(n);
        b
    }

    /// Adds a plain frame received on `port`. Returns it back if the batch is full.
    pub fn push(&mut self, port: PortId, frame: B) -> Result<(), B> {
        self.push_with(port, frame, Meta::NONE)
    }

    /// Adds a frame received on `port` with its metadata (offloads, truncation). Returns it
    /// back if the batch is full.
    pub fn push_with(&mut self, port: PortId, frame: B, meta: Meta) -> Result<(), B> {
        if self.rx.len() >= Self::MAX {
            return Err(frame);
        }
        self.rx.push((port, frame));
        self.meta.push(meta);
        Ok(())
    }

    /// Removes every frame and result.
    pub fn clear(&mut self) {
        self.rx.clear();
        self.meta.clear();
        self.reset_out();
    }

    fn reset_out(&mut self) {
        self.decisions.clear();
        for p in self.touched.iter() {
            self.queues[p.index()].clear();
        }
        self.host.clear();
        self.touched = PortSet::EMPTY;
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// No frames.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Frame `i` and its ingress port.
    pub fn frame(&self, i: usize) -> Option<(PortId, &[u8])> {
        self.rx.get(i).map(|(p, b)| (*p, b.as_ref()))
    }

    /// The frames with their ingress ports.
    pub fn frames(&self) -> impl Iterator<Item = (PortId, &[u8])> {
        self.rx.iter().map(|(p, b)| (*p, b.as_ref()))
    }

    /// Frame `i`'s metadata ([`Meta::NONE`] past the end).
    pub fn meta(&self, i: usize) -> Meta {
        self.meta.get(i).copied().unwrap_or_default()
    }

    /// The frames with their ingress ports and metadata.
    pub fn frames_with_meta(&self) -> impl Iterator<Item = (PortId, &[u8], Meta)> {
        self.rx
            .iter()
            .zip(&self.meta)
            .map(|((p, b), m)| (*p, b.as_ref(), *m))
    }

    /// Takes the frames out (e.g. to return ring slots), leaving the batch empty.
    pub fn drain(&mut self) -> impl Iterator<Item = (PortId, B)> + '_ {
        self.reset_out();
        self.meta.clear();
        self.rx.drain(..)
    }

    /// The decision for each frame, in order (after [`Switch::process`]).
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The ports that have frames to send, each with its queue, lowest port first.
    pub fn egress(&self) -> impl Iterator<Item = (PortId, &[TxItem])> {
        self.touched
            .iter()
            .map(|p| (p, self.queues[p.index()].as_slice()))
    }

    /// Frames for the host side when the switch has no host port (the uplink's own stack
    /// already has them on AF_PACKET uplinks).
    pub fn to_host(&self) -> &[TxItem] {
        &self.host
    }
}

/// A switch: its ports, its mode and the VLAN membership precomputed from the ports.
#[derive(Debug, Clone)]
pub struct Switch {
    cfg: SwitchConfig,
    ports: Vec<Option<PortEntry>>,
    members: Box<[PortSet; 4096]>,
    egress: Box<[EgressVlan; MAX_PORTS]>,
    host: Option<PortId>,
    mode: ModeState,
    storm: Storm,
    now: Tick,
}

impl Switch {
    /// A switch with no ports.
    pub fn new(cfg: SwitchConfig) -> Result<Switch, ConfigError> {
        if !(68..=65000).contains(&cfg.mtu) {
            return Err(ConfigError::Mtu(cfg.mtu));
        }
        let mode = match &cfg.mode {
            ModeConfig::Bridge(b) => ModeState::Bridge(Box::new(Bridge::new(b.clone())?)),
            ModeConfig::Macvlan => ModeState::Macvlan(Box::default()),
            ModeConfig::Ipvlan(i) => ModeState::Ipvlan(Box::new(Ipvlan::new(*i))),
        };
        Ok(Switch {
            cfg,
            ports: Vec::new(),
            members: Box::new([PortSet::EMPTY; 4096]),
            egress: Box::new([EgressVlan::default(); MAX_PORTS]),
            host: None,
            mode,
            storm: Storm::default(),
            now: Tick::default(),
        })
    }

    /// Settings.
    pub fn config(&self) -> &SwitchConfig {
        &self.cfg
    }

    /// Adds a port; on error nothing changes.
    pub fn add_port(&mut self, cfg: PortConfig) -> Result<PortId, ConfigError> {
        cfg.vlan.validate()?;
        if self.ports().any(|(_, e)| e.cfg.name == cfg.name) {
            return Err(ConfigError::DuplicateName(cfg.name));
        }
        let slot = match self.ports.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.ports.len() < MAX_PORTS => {
                self.ports.push(None);
                self.ports.len() - 1
            }
            None => return Err(ConfigError::TooManyPorts),
        };
        let id = PortId::new(slot).ok_or(ConfigError::TooManyPorts)?;
        let filter = default_filter(&cfg);
        self.ports[slot] = Some(PortEntry {
            cfg,
            filter,
            ingress: None,
        });
        if let Err(e) = self.rebuild() {
            self.ports[slot] = None;
            self.rebuild()?;
            return Err(e);
        }
        Ok(id)
    }

    /// Removes a port, forgetting what the FDB learned on it.
    pub fn remove_port(&mut self, id: PortId) -> Result<PortConfig, ConfigError> {
        let entry = self
            .ports
            .get_mut(id.index())
            .and_then(Option::take)
            .ok_or(ConfigError::NoSuchPort(id))?;
        if let ModeState::Bridge(b) = &mut self.mode {
            b.fdb_mut().flush_port(id);
        }
        self.rebuild()?;
        Ok(entry.cfg)
    }

    /// Replaces a port's RX filter (multicast joins, allmulti, promiscuity).
    pub fn set_filter(&mut self, id: PortId, filter: RxFilter) -> Result<(), ConfigError> {
        let e = self.entry_mut(id)?;
        let old = e.cfg.filter.replace(filter);
        e.filter = default_filter(&e.cfg);
        if let Err(err) = self.rebuild() {
            let e = self.entry_mut(id)?;
            e.cfg.filter = old;
            e.filter = default_filter(&e.cfg);
            self.rebuild()?;
            return Err(err);
        }
        Ok(())
    }

    /// Says whether uplink `id`'s interface can filter unicast addresses (as learned from the
    /// interface: see [`UplinkPort::unicast_filtering`]), and derives the filters again.
    /// Returns whether anything changed: nothing does for a port that is not an uplink.
    pub fn set_unicast_filtering(&mut self, id: PortId, can: bool) -> Result<bool, ConfigError> {
        let Role::Uplink(u) = &mut self.entry_mut(id)?.cfg.role else {
            return Ok(false);
        };
        if u.unicast_filtering == can {
            return Ok(false);
        }
        u.unicast_filtering = can;
        self.rebuild()?;
        Ok(true)
    }

    /// The filter to program into port `id`'s interface (`None`: promiscuous): its ingress
    /// filter, except on an uplink that cannot filter unicast, whose interface is given the
    /// addresses all the same, as the kernel's macvlan gives them to its lower device
    /// (`dev_uc_add`); the kernel makes it promiscuous itself (`__dev_set_rx_mode`).
    pub fn interface_filter(&self, id: PortId) -> Option<RxFilter> {
        let e = self.port(id)?;
        match &e.cfg.role {
            Role::Uplink(u) if !u.unicast_filtering && !u.promiscuous && e.cfg.filter.is_none() => {
                derived_uplink_filter(&self.ports, true)
            }
            _ => e.ingress.clone(),
        }
    }

    /// Replaces a port's storm-control limits (buckets whose rate changes start full).
    pub fn set_storm(&mut self, id: PortId, storm: StormControl) -> Result<(), ConfigError> {
        self.entry_mut(id)?.cfg.storm = storm;
        self.storm.configure(&self.ports, self.now);
        Ok(())
    }

    /// Caps the MACs bridge port `id` may learn (port security; 0 = no cap). Entries over a
    /// lowered cap stay until they age out, as with the bridge-wide cap.
    pub fn set_port_max_learned(&mut self, id: PortId, max: u32) -> Result<(), ConfigError> {
        let e = self.entry_mut(id)?;
        let Role::Bridge(b) = &mut e.cfg.role else {
            return Err(ConfigError::NotABridgePort {
                port: e.cfg.name.clone(),
                role: e.cfg.role.name(),
            });
        };
        b.max_learned = max;
        if let ModeState::Bridge(br) = &mut self.mode {
            br.fdb_mut().set_port_max_learned(id, max);
        }
        Ok(())
    }

    /// Caps the MACs the whole bridge may learn (`fdb_max_learned`; 0 = no cap).
    pub fn set_max_learned(&mut self, max: u32) -> Result<(), ConfigError> {
        let mode = self.cfg.mode.name();
        let (ModeConfig::Bridge(c), ModeState::Bridge(b)) = (&mut self.cfg.mode, &mut self.mode)
        else {
            return Err(ConfigError::NotABridge { mode });
        };
        c.max_learned = max;
        b.fdb_mut().set_max_learned(max);
        Ok(())
    }

    fn entry_mut(&mut self, id: PortId) -> Result<&mut PortEntry, ConfigError> {
        self.ports
            .get_mut(id.index())
            .and_then(Option::as_mut)
            .ok_or(ConfigError::NoSuchPort(id))
    }

    /// A port's configuration and effective filters.
    pub fn port(&self, id: PortId) -> Option<&PortEntry> {
        self.ports.get(id.index()).and_then(Option::as_ref)
    }

    /// Port `id`'s name, or `p<index>` for a port the switch does not have.
    pub fn port_name(&self, id: PortId) -> String {
        self.port(id)
            .map_or_else(|| id.to_string(), |e| e.cfg.name.clone())
    }

    /// The port named `name`.
    pub fn port_by_name(&self, name: &str) -> Option<PortId> {
        self.ports()
            .find(|(_, e)| e.cfg.name == name)
            .map(|(id, _)| id)
    }

    /// Every port.
    pub fn ports(&self) -> impl Iterator<Item = (PortId, &PortEntry)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((PortId::new(i)?, e.as_ref()?)))
    }

    /// The host port, if any.
    pub fn host_port(&self) -> Option<PortId> {
        self.host
    }

    /// The ports that are members of `vid`.
    pub fn vlan_members(&self, vid: Vid) -> PortSet {
        self.members[vid.index()]
    }

    /// The forwarding database (learning bridges only).
    pub fn fdb(&self) -> Option<&Fdb> {
        match &self.mode {
            ModeState::Bridge(b) => Some(b.fdb()),
            _ => None,
        }
    }

    /// The forwarding database, for operator changes.
    pub fn fdb_mut(&mut self) -> Option<&mut Fdb> {
        match &mut self.mode {
            ModeState::Bridge(b) => Some(b.fdb_mut()),
            _ => None,
        }
    }

    /// The macvlan tables (macvlan switches only).
    pub fn macvlan(&self) -> Option<&Macvlan> {
        match &self.mode {
            ModeState::Macvlan(m) => Some(m),
            _ => None,
        }
    }

    /// Removes expired FDB entries; returns how many.
    pub fn age(&mut self, now: Tick) -> usize {
        self.now = now;
        self.fdb_mut().map_or(0, |f| f.age(now))
    }

    fn rebuild(&mut self) -> Result<(), ConfigError> {
        let mut members = Box::new([PortSet::EMPTY; 4096]);
        let mut egress = Box::new([EgressVlan::default(); MAX_PORTS]);
        let mut host = None;
        for (i, e) in self.ports.iter().enumerate() {
            let (Some(e), Some(id)) = (e, PortId::new(i)) else {
                continue;
            };
            egress[i] = e.cfg.vlan.egress();
            for vid in e.cfg.vlan.members().iter() {
                members[vid.index()].insert(id);
            }
            if e.cfg.role == Role::Host {
                host = Some(id);
            }
        }
        let now = self.now;
        match &mut self.mode {
            ModeState::Bridge(b) => b.rebuild(now, &self.ports)?,
            ModeState::Macvlan(m) => m.rebuild(now, &self.ports)?,
            ModeState::Ipvlan(m) => m.rebuild(now, &self.ports)?,
        }
        let uplink_filter = derived_uplink_filter(&self.ports, false);
        for e in self.ports.iter_mut().flatten() {
            e.ingress = match (&e.cfg.role, &e.cfg.filter) {
                (Role::Uplink(u), None) if !u.promiscuous => uplink_filter.clone(),
                (Role::Uplink(_) | Role::Bridge(_), Some(f)) => Some(f.clone()),
                _ => None,
            };
        }
        self.members = members;
        self.egress = egress;
        self.host = host;
        self.storm.configure(&self.ports, now);
        Ok(())
    }

    /// Decides one plain frame (a batch of one); for explaining and testing.
    pub fn decide(&mut self, now: Tick, port: PortId, frame: &[u8]) -> Decision {
        self.decide_with(now, port, frame, &Meta::NONE)
    }

    /// Decides one frame with its metadata (a batch of one).
    pub fn decide_with(&mut self, now: Tick, port: PortId, frame: &[u8], meta: &Meta) -> Decision {
        self.now = now;
        let mut d = Decision::EMPTY;
        let (ports, members, host, storm) =
            (&self.ports, &self.members, self.host, &mut self.storm);
        let max = self.cfg.max_frame();
        match &mut self.mode {
            ModeState::Bridge(m) => {
                Decider::new(ports, members, host, m.as_mut(), storm, max, now)
                    .decide(port, frame, meta, &mut d);
            }
            ModeState::Macvlan(m) => {
                Decider::new(ports, members, host, m.as_mut(), storm, max, now)
                    .decide(port, frame, meta, &mut d);
            }
            ModeState::Ipvlan(m) => {
                Decider::new(ports, members, host, m.as_mut(), storm, max, now)
                    .decide(port, frame, meta, &mut d);
            }
        }
        d
    }

    /// Decides every frame of `batch` in arrival order, each learned before it is forwarded
    /// (the kernel's order, so a reply later in the same batch already finds its station), then
    /// queues each delivery on its egress port with the tag edit that port needs.
    pub fn process<B: AsRef<[u8]>>(&mut self, now: Tick, batch: &mut Batch<B>) {
        self.now = now;
        batch.reset_out();
        let (ports, members, host, storm) =
            (&self.ports, &self.members, self.host, &mut self.storm);
        let max = self.cfg.max_frame();
        let (rx, meta, out) = (&batch.rx, &batch.meta, &mut batch.decisions);
        match &mut self.mode {
            ModeState::Bridge(m) => decide_batch(
                ports,
                members,
                host,
                m.as_mut(),
                storm,
                max,
                now,
                rx,
                meta,
                out,
            ),
            ModeState::Macvlan(m) => decide_batch(
                ports,
                members,
                host,
                m.as_mut(),
                storm,
                max,
                now,
                rx,
                meta,
                out,
            ),
            ModeState::Ipvlan(m) => decide_batch(
                ports,
                members,
                host,
                m.as_mut(),
                storm,
                max,
                now,
                rx,
                meta,
                out,
            ),
        }
        self.group(batch);
    }

    /// Second pass: per egress port queues.
    fn group<B>(&self, batch: &mut Batch<B>) {
        let Batch {
            decisions,
            queues,
            host,
            touched,
            ..
        } = batch;
        for (i, d) in decisions.iter().enumerate() {
            let frame = i as u16;
            let mut push = |p: PortId, vtep: Option<Vtep>| {
                let tag = TagOp::for_egress(self.egress[p.index()], d.vid, d.ctag);
                queues[p.index()].push(TxItem { frame, tag, vtep });
                touched.insert(p);
            };
            match d.verdict {
                Verdict::Unicast(p) => push(p, d.vtep),
                Verdict::Flood { ports, .. } => ports.iter().for_each(|p| push(p, None)),
                Verdict::Host | Verdict::Drop(_) => {}
            }
            if d.verdict.to_host() {
                match self.host {
                    Some(h) => push(h, None),
                    None => host.push(TxItem {
                        frame,
                        tag: TagOp::Keep,
                        vtep: None,
                    }),
                }
            }
        }
    }
}

fn default_filter(cfg: &PortConfig) -> RxFilter {
    if let Some(f) = &cfg.filter {
        return f.clone();
    }
    // A sub-interface filters multicast by its own list, passthru included: passthru makes
    // the *uplink* promiscuous, not the sub-interface (measured against the kernel).
    match (&cfg.role, cfg.mac) {
        (Role::Macvlan(_) | Role::Ipvlan(_), Some(mac)) => RxFilter::unicast([mac]),
        (Role::Macvlan(_) | Role::Ipvlan(_), None) => RxFilter::unicast([]),
        _ => RxFilter::Promiscuous,
    }
}

/// The uplink's filter as the kernel programs it: its own MAC and every sub-interface's
/// (`dev_uc_add`), the union of their groups (`dev_mc_sync`), allmulti if any sub-interface has
/// it; promiscuous with a passthru that did not ask for `nopromisc`, or with a secondary MAC
/// on an interface that cannot filter unicast (unless `as_programmed`: what is given to the
/// interface, which the kernel then makes promiscuous itself). `None` = accept all.
fn derived_uplink_filter(ports: &[Option<PortEntry>], as_programmed: bool) -> Option<RxFilter> {
    let mut own = MacSet::default();
    let mut groups = MacSet::default();
    let mut allmulti = false;
    let mut secondary = false;
    let (can_filter, uplink_mac) = ports
        .iter()
        .flatten()
        .find_map(|e| match &e.cfg.role {
            Role::Uplink(u) => Some((u.unicast_filtering, e.cfg.mac)),
            _ => None,
        })
        .unwrap_or((true, None));
    own.extend(uplink_mac);
    for e in ports.iter().flatten() {
        match &e.cfg.role {
            Role::Macvlan(m) if m.mode == MacvlanMode::Passthru && !m.nopromisc => return None,
            Role::Macvlan(_) | Role::Ipvlan(_) => {
                if let Some(mac) = e.cfg.mac {
                    secondary |= Some(mac) != uplink_mac;
                    own.insert(mac);
                }
                allmulti |= e.filter.all_multicast();
                e.filter.groups().for_each(|g| groups.insert(g));
            }
            _ => {}
        }
    }
    if secondary && !can_filter && !as_programmed {
        return None;
    }
    Some(RxFilter::Unicast {
        own,
        groups,
        allmulti,
    })
}

/// Decides a batch, with storm control only if some port has a limit: one test per batch, and
/// a per-frame path without it for switches that use none (the default). The argument list is
/// the [`Decider`]'s, spelled out once here so that the policing type is chosen per batch.
#[inline]
#[allow(clippy::too_many_arguments)]
fn decide_batch<B: AsRef<[u8]>, M: Rules>(
    ports: &[Option<PortEntry>],
    members: &[PortSet; 4096],
    host: Option<PortId>,
    mode: &mut M,
    storm: &mut Storm,
    max: usize,
    now: Tick,
    rx: &[(PortId, B)],
    meta: &[Meta],
    out: &mut Vec<Decision>,
) {
    if storm.is_on() {
        Decider::new(ports, members, host, mode, storm, max, now).decide_all(rx, meta, out);
    } else {
        Decider::new(ports, members, host, mode, &mut Unpoliced, max, now)
            .decide_all(rx, meta, out);
    }
}

/// What deciding a frame needs: the ports, the VLAN membership, the mode, storm control, the
/// largest frame and the time. Built once per batch.
struct Decider<'a, M, P> {
    ports: &'a [Option<PortEntry>],
    cx: Ctx<'a>,
    mode: &'a mut M,
    storm: &'a mut P,
    max: usize,
    now: Tick,
}

impl<'a, M: Rules, P: Police> Decider<'a, M, P> {
    #[inline(always)]
    fn new(
        ports: &'a [Option<PortEntry>],
        members: &'a [PortSet; 4096],
        host: Option<PortId>,
        mode: &'a mut M,
        storm: &'a mut P,
        max: usize,
        now: Tick,
    ) -> Self {
        Decider {
            ports,
            cx: Ctx { members, host },
            mode,
            storm,
            max,
            now,
        }
    }

    #[inline]
    fn decide_all<B: AsRef<[u8]>>(
        &mut self,
        rx: &[(PortId, B)],
        meta: &[Meta],
        out: &mut Vec<Decision>,
    ) {
        // Each decision is written in place into its output slot.
        out.clear();
        out.resize(rx.len(), Decision::EMPTY);
        for (((port, frame), meta), d) in rx.iter().zip(meta).zip(out.iter_mut()) {
            self.decide(*port, frame.as_ref(), meta, d);
        }
    }

    /// port → view → filter → VLAN → mode → VLAN confinement → storm control, for one
    /// frame, into `d`.
    #[inline(always)]
    fn decide(&mut self, port: PortId, frame: &[u8], meta: &Meta, d: &mut Decision) {
        let Some(entry) = self.ports.get(port.index()).and_then(Option::as_ref) else {
            return d.set(Verdict::Drop(DropReason::UnknownPort), Why::NoPort);
        };
        match meta.fault {
            None => {}
            Some(Fault::Truncated { .. }) => {
                return d.set(Verdict::Drop(DropReason::Truncated), Why::Truncated);
            }
            Some(Fault::BadHeader(_)) => {
                return d.set(Verdict::Drop(DropReason::BadOffload), Why::BadOffload);
            }
            Some(Fault::Overlay(f)) => {
                let (reason, why) = match f {
                    OverlayFault::Header(_) => (DropReason::VxlanHeader, Why::VxBadHeader),
                    OverlayFault::Vni { .. } => (DropReason::VxlanVni, Why::VxWrongVni),
                    OverlayFault::UnknownSender(_) => {
                        (DropReason::VxlanUnknownSender, Why::VxUnknownSender)
                    }
                };
                return d.set(Verdict::Drop(reason), why);
            }
        }
        // A super-frame is judged by its segments, as `is_skb_forwardable` does; its own
        // length is bounded only by what a port can receive.
        let max = match meta.gso {
            None => self.max,
            Some(_) if meta.wire_len(frame) > self.max => {
                return d.set(Verdict::Drop(DropReason::SegmentOversize), Why::GsoOversize);
            }
            Some(_) => usize::MAX,
        };
        // Borrowed from the result in place rather than moved out of it (a 40-byte copy a
        // frame).
        let parsed = FrameInfo::parse(frame, max);
        let info = match &parsed {
            Ok(info) => info,
            Err(e) => {
                let reason = match e {
                    WireError::Runt { .. } => DropReason::Runt,
                    WireError::Oversize { .. } => DropReason::Oversize,
                    WireError::TruncatedTag { .. } => DropReason::Malformed,
                };
                return d.set(Verdict::Drop(reason), Why::Wire);
            }
        };
        d.ctag = info.ctag();
        // The port's RX filter acts first, as a NIC's address filter does.
        if let Some(f) = &entry.ingress
            && !f.accepts(info.dst())
        {
            return d.set(Verdict::Drop(DropReason::FilterMiss), Why::RxFilter);
        }
        let Some(vid) = entry.cfg.vlan.classify(info) else {
            return d.set(Verdict::Drop(DropReason::VlanNotAllowed), Why::VlanIngress);
        };
        d.vid = vid;
        let rx = Ingress {
            port,
            frame,
            info,
            vid,
            vtep: meta.vtep.filter(|_| meta.snoop),
        };
        let now = self.now;
        self.mode.decide(&self.cx, now, &rx, d);
        // No frame ever leaves its VLAN, whatever the mode decided. Without a host port the
        // host side is the uplink's own stack, which sees every VLAN of its interface.
        let members = self.cx.members_of(vid);
        let host_ok = self.cx.host.is_none_or(|h| members.contains(h));
        confine(d, members, host_ok);
        // Last: only a flood that would reach someone is charged to the port's storm bucket
        // (learning, done by the mode, still happened: a looping MAC keeps showing as
        // flapping).
        self.storm.police(now, port, info, d);
    }
}

/// Keeps only receivers that are members of the frame's VLAN.
#[inline(always)]
fn confine(d: &mut Decision, members: &PortSet, host_ok: bool) {
    let (ports, host) = match &d.verdict {
        Verdict::Unicast(p) if members.contains(*p) => return,
        Verdict::Drop(_) => return,
        Verdict::Host if host_ok => return,
        v => (v.ports(), v.to_host()),
    };
    let kept = ports.and(*members);
    if kept == ports && (host_ok || !host) {
        return;
    }
    let host = host && host_ok;
    d.verdict = Verdict::deliver(kept, host, DropReason::VlanNotAllowed);
    if matches!(d.verdict, Verdict::Drop(_)) {
        d.why = Why::VlanEgress;
    }
}
