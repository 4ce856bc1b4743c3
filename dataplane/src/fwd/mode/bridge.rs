//! The learning bridge (`net/bridge/br_input.c`, `br_forward.c`, `br_fdb.c`), with VLAN
//! filtering expressed by the ports' [`VlanMode`](crate::fwd::VlanMode)s.
//!
//! Invariants: a frame never leaves by its ingress port unless that port is in hairpin mode; a
//! flood reaches exactly the forwarding ports of its VLAN with the class's flood flag, minus the
//! ingress port (unless hairpin) and minus isolated ports when the ingress is isolated; frames
//! are learned in arrival order, each before it is forwarded, as the kernel does; a port at its
//! own cap of learned MACs (port security, l2sw only) forwards no frame from a new source.

use std::time::Duration;

use super::{Ctx, Ingress, Rules};
use crate::fwd::clock::Tick;
use crate::fwd::fdb::{DEFAULT_AGEING, Fdb, Learned};
use crate::fwd::ports::{MAX_PORTS, PortId, PortSet};
use crate::fwd::switch::{ConfigError, PortEntry, Role};
use crate::fwd::verdict::{Decision, DropReason, Verdict, Why};

/// Reserved group addresses the bridge may never forward (`BR_GROUPFWD_RESTRICTED`: STP,
/// PAUSE, LACP).
pub const GROUP_FWD_RESTRICTED: u16 = 0x0007;

/// Bridge-wide settings (`ip link add type bridge ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// FDB ageing time; zero turns learning off so everything floods (`ageing_time`).
    pub ageing: Duration,
    /// Cap on learned entries, 0 = unlimited (`fdb_max_learned`).
    pub max_learned: u32,
    /// Reserved groups 01:80:C2:00:00:0X to forward, bit X (`group_fwd_mask`; bits 0-2 refused).
    pub group_fwd_mask: u16,
    /// STP on: the STP group is then consumed instead of forwarded (`stp_state`).
    pub stp: bool,
    /// Do not learn from link-local frames the bridge consumes (`no_linklocal_learn`).
    pub no_linklocal_learn: bool,
    /// The bridge device is promiscuous: the host side also gets unknown and foreign unicast.
    pub host_promisc: bool,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            ageing: DEFAULT_AGEING,
            max_learned: 0,
            group_fwd_mask: 0,
            stp: false,
            no_linklocal_learn: false,
            host_promisc: false,
        }
    }
}

/// STP port states (`BR_STATE_*`). Without STP every up port is forwarding.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum StpState {
    /// Drops everything.
    Disabled,
    /// Drops everything.
    Listening,
    /// Learns sources, forwards nothing.
    Learning,
    /// Learns and forwards.
    #[default]
    Forwarding,
    /// Drops everything.
    Blocking,
}

/// Per-port bridge flags (`ip link set dev X type bridge_slave ...`), kernel defaults.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BridgePort {
    /// STP state.
    pub state: StpState,
    /// Learn sources seen on this port (`learning`).
    pub learning: bool,
    /// Frames may leave by the port they came in on (`hairpin`, reflective relay for VEPA).
    pub hairpin: bool,
    /// No forwarding to other isolated ports (`isolated`).
    pub isolated: bool,
    /// Receives unknown unicast floods (`flood`).
    pub flood_unicast: bool,
    /// Receives multicast floods (`mcast_flood`).
    pub flood_multicast: bool,
    /// Receives broadcast floods (`bcast_flood`).
    pub flood_broadcast: bool,
    /// Port security (l2sw only; 0 = off, the default): the most MACs the port may have
    /// learned. At the cap a frame from a new source is not learned and is dropped
    /// (`DropReason::PortSecurity`), and a known MAC cannot move onto the port. Dropping, not
    /// forwarding as the bridge-wide `max_learned` does, is what a cap per port is for: a
    /// MAC flood from one port then reaches no other port at all, and a station cannot be
    /// pulled away from its port by a full port spoofing it. Static entries do not count.
    pub max_learned: u32,
}

impl Default for BridgePort {
    fn default() -> Self {
        BridgePort {
            state: StpState::Forwarding,
            learning: true,
            hairpin: false,
            isolated: false,
            flood_unicast: true,
            flood_multicast: true,
            flood_broadcast: true,
            max_learned: 0,
        }
    }
}

/// What the bridge reads of an ingress port on every frame, packed in a byte.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct PortBits(u8);

impl PortBits {
    const BRIDGE_PORT: u8 = 1 << 0;
    const HOST: u8 = 1 << 1;
    const LEARNING: u8 = 1 << 2;
    /// STP state learning or forwarding.
    const STATE_LEARNS: u8 = 1 << 3;
    /// STP state forwarding.
    const STATE_FORWARDS: u8 = 1 << 4;
    const HAIRPIN: u8 = 1 << 5;
    const ISOLATED: u8 = 1 << 6;

    fn of(p: &BridgePort) -> PortBits {
        let mut b = PortBits::BRIDGE_PORT;
        for (on, bit) in [
            (p.learning, PortBits::LEARNING),
            (
                matches!(p.state, StpState::Learning | StpState::Forwarding),
                PortBits::STATE_LEARNS,
            ),
            (p.state == StpState::Forwarding, PortBits::STATE_FORWARDS),
            (p.hairpin, PortBits::HAIRPIN),
            (p.isolated, PortBits::ISOLATED),
        ] {
            if on {
                b |= bit;
            }
        }
        PortBits(b)
    }

    #[inline(always)]
    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The learning bridge's state: settings, FDB and the sets precomputed from the ports.
#[derive(Debug, Clone)]
pub struct Bridge {
    cfg: BridgeConfig,
    fdb: Fdb,
    by_port: Box<[PortBits; MAX_PORTS]>,
    forwarding: PortSet,
    isolated: PortSet,
    flood_uc: PortSet,
    flood_mc: PortSet,
    flood_bc: PortSet,
}

impl Bridge {
    /// A bridge with `cfg`; refuses a group forward mask with restricted bits.
    pub fn new(cfg: BridgeConfig) -> Result<Bridge, ConfigError> {
        if cfg.group_fwd_mask & GROUP_FWD_RESTRICTED != 0 {
            return Err(ConfigError::GroupFwdMask(cfg.group_fwd_mask));
        }
        let mut fdb = Fdb::new();
        fdb.set_ageing(cfg.ageing);
        fdb.set_max_learned(cfg.max_learned);
        Ok(Bridge {
            cfg,
            fdb,
            by_port: Box::new([PortBits::default(); MAX_PORTS]),
            forwarding: PortSet::EMPTY,
            isolated: PortSet::EMPTY,
            flood_uc: PortSet::EMPTY,
            flood_mc: PortSet::EMPTY,
            flood_bc: PortSet::EMPTY,
        })
    }

    /// Settings.
    pub fn config(&self) -> &BridgeConfig {
        &self.cfg
    }

    /// The forwarding database.
    pub fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    /// The forwarding database, for operator changes (static entries, ageing, cap).
    pub fn fdb_mut(&mut self) -> &mut Fdb {
        &mut self.fdb
    }

    /// Where a known unicast goes (`br_forward` → `should_deliver`).
    #[inline(always)]
    fn forward(
        &self,
        cx: &Ctx<'_>,
        rx: &Ingress<'_>,
        from: PortBits,
        to: PortId,
        d: &mut Decision,
    ) {
        let host = self.cfg.host_promisc;
        let hairpin = from.has(PortBits::HAIRPIN);
        let refused = if to == rx.port && !hairpin {
            Some((DropReason::Reflect, Why::BrReflect))
        } else if from.has(PortBits::ISOLATED) && self.isolated.contains(to) {
            Some((DropReason::Isolated, Why::BrIsolated))
        } else if !self.forwarding.contains(to) {
            Some((DropReason::PortState, Why::BrPortState))
        } else if !cx.members_of(rx.vid).contains(to) {
            Some((DropReason::VlanNotAllowed, Why::VlanEgress))
        } else {
            None
        };
        match (refused, host) {
            // A promiscuous bridge device still gets its copy (local_rcv).
            (Some((_, why)), true) => d.set(Verdict::Host, why),
            (Some((reason, why)), false) => d.set(Verdict::Drop(reason), why),
            (None, host) => {
                let why = if to == rx.port {
                    Why::BrHairpin
                } else {
                    Why::BrKnownUnicast
                };
                let v = if host {
                    Verdict::Flood {
                        ports: PortSet::only(to),
                        host,
                    }
                } else {
                    Verdict::Unicast(to)
                };
                d.set(v, why);
            }
        }
    }

    /// Floods to `class` (`br_flood`): eligible ports of the VLAN minus ingress and isolation.
    #[inline(always)]
    fn flood(
        &self,
        cx: &Ctx<'_>,
        rx: &Ingress<'_>,
        from: PortBits,
        class: PortSet,
        host: bool,
    ) -> Verdict {
        let mut set = class.and(self.forwarding).and(*cx.members_of(rx.vid));
        if !from.has(PortBits::HAIRPIN) {
            set.remove(rx.port);
        }
        if from.has(PortBits::ISOLATED) {
            set = set.minus(self.isolated);
        }
        Verdict::deliver(set, host, DropReason::NoDestination)
    }

    fn on_host(&self, cx: &Ctx<'_>, now: Tick, rx: &Ingress<'_>, d: &mut Decision) {
        // br_dev_xmit: no learning, no local delivery back; the multicast and broadcast flood
        // flags do not apply to frames the bridge device itself sends (br_flood), BR_FLOOD does.
        let dst = rx.info.dst();
        if dst.is_broadcast() {
            d.set(
                self.flood(cx, rx, PortBits::default(), self.forwarding, false),
                Why::BrFloodBroadcast,
            );
        } else if dst.is_multicast() {
            d.set(
                self.flood(cx, rx, PortBits::default(), self.forwarding, false),
                Why::BrFloodMulticast,
            );
        } else {
            match self.fdb.lookup_via(now, rx.vid, dst) {
                Some((to, _, vtep)) => {
                    d.vtep = vtep;
                    self.forward(cx, rx, PortBits::default(), to, d);
                    // The host side never gets its own frame back, even with a promiscuous bridge.
                    d.verdict = strip_host(d.verdict);
                }
                None => d.set(
                    self.flood(cx, rx, PortBits::default(), self.flood_uc, false),
                    Why::BrFloodUnknown,
                ),
            }
        }
    }
}

fn strip_host(v: Verdict) -> Verdict {
    match v {
        Verdict::Host => Verdict::Drop(DropReason::NoDestination),
        Verdict::Flood { ports, .. } => Verdict::deliver(ports, false, DropReason::NoDestination),
        other => other,
    }
}

impl Rules for Bridge {
    fn rebuild(&mut self, now: Tick, ports: &[Option<PortEntry>]) -> Result<(), ConfigError> {
        let mut by_port = Box::new([PortBits::default(); MAX_PORTS]);
        let (mut fwd, mut iso, mut uc, mut mc, mut bc) = (
            PortSet::EMPTY,
            PortSet::EMPTY,
            PortSet::EMPTY,
            PortSet::EMPTY,
            PortSet::EMPTY,
        );
        let mut host = None;
        // Port caps are set below for bridge ports; every other slot has none.
        for id in (0..MAX_PORTS).filter_map(PortId::new) {
            self.fdb.set_port_max_learned(id, 0);
        }
        for (i, e) in ports.iter().enumerate() {
            let Some(e) = e else { continue };
            let Some(id) = PortId::new(i) else { continue };
            match &e.cfg.role {
                Role::Bridge(f) => {
                    by_port[i] = PortBits::of(f);
                    self.fdb.set_port_max_learned(id, f.max_learned);
                    if f.state == StpState::Forwarding {
                        fwd.insert(id);
                    }
                    for (on, set) in [
                        (f.isolated, &mut iso),
                        (f.flood_unicast, &mut uc),
                        (f.flood_multicast, &mut mc),
                        (f.flood_broadcast, &mut bc),
                    ] {
                        if on {
                            set.insert(id);
                        }
                    }
                }
                Role::Host => {
                    if let Some(other) = host.replace(id) {
                        return Err(ConfigError::SecondHost { existing: other });
                    }
                    by_port[i] = PortBits(PortBits::HOST);
                }
                other => {
                    return Err(ConfigError::RoleNotInMode {
                        role: other.name(),
                        mode: "bridge",
                    });
                }
            }
            // The bridge's and its ports' own MACs are local entries (fdb_add_local), per VLAN.
            if let Some(mac) = e.cfg.mac {
                for vid in e.cfg.vlan.members().iter() {
                    self.fdb
                        .add_local(now, vid, mac, id)
                        .map_err(ConfigError::Fdb)?;
                }
            }
        }
        self.by_port = by_port;
        (
            self.forwarding,
            self.isolated,
            self.flood_uc,
            self.flood_mc,
            self.flood_bc,
        ) = (fwd, iso, uc, mc, bc);
        Ok(())
    }

    #[inline(always)]
    fn decide(&mut self, cx: &Ctx<'_>, now: Tick, rx: &Ingress<'_>, d: &mut Decision) {
        let f = self.by_port[rx.port.index()];
        if !f.has(PortBits::BRIDGE_PORT) {
            if f.has(PortBits::HOST) {
                return self.on_host(cx, now, rx, d);
            }
            return d.set(Verdict::Drop(DropReason::UnknownPort), Why::NoPort);
        }
        let (src, dst) = (rx.info.src(), rx.info.dst());
        // br_handle_frame: an invalid source is dropped before anything else.
        if !src.is_valid_source() {
            return d.set(
                Verdict::Drop(DropReason::InvalidSource),
                Why::BrInvalidSource,
            );
        }
        let learns = f.has(PortBits::LEARNING) && f.has(PortBits::STATE_LEARNS);
        let mut link_local_forwarded = false;
        if dst.is_link_local() {
            let forward = match dst.0[5] {
                0x00 => !self.cfg.stp || self.cfg.group_fwd_mask & 1 != 0,
                0x01 => return d.set(Verdict::Drop(DropReason::Pause), Why::BrPause),
                g => self.cfg.group_fwd_mask & (1 << g) != 0,
            };
            if !forward {
                // __br_handle_local_finish: learned (unless no_linklocal_learn), passed up the
                // port itself, not forwarded; this happens in any port state.
                d.learned = (learns && !self.cfg.no_linklocal_learn)
                    .then(|| self.fdb.learn_via(now, rx.vid, src, rx.port, rx.vtep));
                return d.set(
                    Verdict::Drop(DropReason::LinkLocal),
                    Why::BrLinkLocalConsumed,
                );
            }
            link_local_forwarded = true;
        }
        if !f.has(PortBits::STATE_LEARNS) {
            return d.set(Verdict::Drop(DropReason::PortState), Why::BrPortState);
        }
        // br_handle_frame_finish: learn first, then the learning state drops.
        if f.has(PortBits::LEARNING) {
            let learned = self.fdb.learn_via(now, rx.vid, src, rx.port, rx.vtep);
            d.learned = Some(learned);
            if matches!(learned, Learned::PortCap) {
                return d.set(Verdict::Drop(DropReason::PortSecurity), Why::BrPortSecurity);
            }
        }
        if !f.has(PortBits::STATE_FORWARDS) {
            return d.set(
                Verdict::Drop(DropReason::LearningState),
                Why::BrLearningState,
            );
        }
        if dst.is_broadcast() {
            d.set(
                self.flood(cx, rx, f, self.flood_bc, true),
                Why::BrFloodBroadcast,
            );
        } else if dst.is_multicast() {
            // No multicast snooping querier: unregistered multicast floods and goes up too.
            d.set(
                self.flood(cx, rx, f, self.flood_mc, true),
                Why::BrFloodMulticast,
            );
        } else {
            match self.fdb.lookup_via(now, rx.vid, dst) {
                Some((_, true, _)) => d.set(Verdict::Host, Why::BrLocal),
                Some((to, false, vtep)) => {
                    d.vtep = vtep;
                    self.forward(cx, rx, f, to, d);
                }
                None => {
                    let v = self.flood(cx, rx, f, self.flood_uc, self.cfg.host_promisc);
                    d.set(v, Why::BrFloodUnknown);
                }
            }
        }
        if link_local_forwarded && !matches!(d.verdict, Verdict::Drop(_)) {
            d.why = Why::BrLinkLocalForwarded;
        }
    }
}
