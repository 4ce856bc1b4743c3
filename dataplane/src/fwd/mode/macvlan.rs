//! macvlan (`drivers/net/macvlan.c`): sub-interfaces with fixed MACs on one uplink, no learning.
//! Frames a sub-interface sends follow `macvlan_queue_xmit` (only bridge mode delivers locally);
//! frames arriving on the uplink follow `macvlan_handle_frame` and `macvlan_process_broadcast`
//! (delivery by destination MAC whatever the mode; broadcasts by the source's mode mask).
//!
//! Invariants: a private sub-interface never receives a frame sent by a sibling except through
//! the uplink (reflected by an adjacent switch); nothing is learned, so a spoofed source MAC
//! never redirects a later frame; every delivery to a sub-interface is by its MAC, its mode
//! mask, or its source allow-list.

use std::fmt;
use std::str::FromStr;

use hashbrown::HashMap;

use super::{Ctx, Ingress, Outcome, Rules};
use crate::fwd::clock::Tick;
use crate::fwd::filter::MacSet;
use crate::fwd::ports::{MAX_PORTS, PortId, PortSet};
use crate::fwd::switch::{ConfigError, PortEntry, Role};
use crate::fwd::verdict::{Decision, DropReason, Verdict, Why};
use crate::wire::{EtherType, Mac};

/// A sub-interface's mode (`MACVLAN_MODE_*`). l2sw's default is `bridge`, as Docker's; the
/// kernel's own default is `vepa`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum MacvlanMode {
    /// Never delivers to siblings itself; reflected broadcasts come back to the sender only.
    Private,
    /// Everything leaves by the uplink; siblings meet only through a hairpinning switch.
    Vepa,
    /// Delivers to bridge-mode siblings directly.
    #[default]
    Bridge,
    /// The only sub-interface: takes the uplink's MAC and every unicast.
    Passthru,
    /// Receives copies of frames whose source is on its allow-list.
    Source,
}

impl MacvlanMode {
    /// Every mode, in kernel bit order.
    pub const ALL: [MacvlanMode; 5] = [
        MacvlanMode::Private,
        MacvlanMode::Vepa,
        MacvlanMode::Bridge,
        MacvlanMode::Passthru,
        MacvlanMode::Source,
    ];

    /// The kernel's name.
    pub const fn name(self) -> &'static str {
        match self {
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Passthru => "passthru",
            MacvlanMode::Source => "source",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for MacvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown macvlan mode name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown macvlan mode {0:?}: expected bridge, private, vepa, passthru or source")]
pub struct ParseModeError(String);

impl FromStr for MacvlanMode {
    type Err = ParseModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MacvlanMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ParseModeError(s.to_owned()))
    }
}

/// A macvlan sub-interface port. Its MAC is the port's `mac` (passthru may omit it and takes
/// the uplink's); its `filter` is the sub-interface's own RX filter, applied to multicast.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacvlanPort {
    /// Mode.
    pub mode: MacvlanMode,
    /// Source mode: the sources whose frames this sub-interface gets a copy of.
    pub source: MacSet,
    /// Source mode: consume the original of an allow-listed frame (`MACVLAN_FLAG_NODST`).
    pub nodst: bool,
    /// Passthru: leave the uplink non-promiscuous (`MACVLAN_FLAG_NOPROMISC`).
    pub nopromisc: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    None,
    Uplink,
    Host,
    Sub(MacvlanMode),
}

/// The macvlan port's tables, rebuilt from the ports on every change.
#[derive(Debug, Clone)]
pub struct Macvlan {
    kind: Box<[Kind; MAX_PORTS]>,
    uplink: Option<PortId>,
    by_mac: HashMap<u64, PortId, foldhash::fast::RandomState>,
    by_mode: [PortSet; 5],
    allmulti: PortSet,
    groups: HashMap<u64, PortSet, foldhash::fast::RandomState>,
    sources: HashMap<u64, (PortSet, bool), foldhash::fast::RandomState>,
    passthru: Option<PortId>,
    /// Receivers of a broadcast from outside: private, vepa, passthru and bridge subs.
    from_outside: PortSet,
    /// Receivers of a reflected broadcast from a vepa sub: vepa and bridge subs.
    from_vepa: PortSet,
    /// Receivers of a reflected broadcast from a bridge sub: vepa subs.
    from_bridge: PortSet,
}

impl Default for Macvlan {
    fn default() -> Self {
        Macvlan::new()
    }
}

impl Macvlan {
    /// No ports yet.
    pub fn new() -> Macvlan {
        Macvlan {
            kind: Box::new([Kind::None; MAX_PORTS]),
            uplink: None,
            by_mac: HashMap::default(),
            by_mode: [PortSet::EMPTY; 5],
            allmulti: PortSet::EMPTY,
            groups: HashMap::default(),
            sources: HashMap::default(),
            passthru: None,
            from_outside: PortSet::EMPTY,
            from_vepa: PortSet::EMPTY,
            from_bridge: PortSet::EMPTY,
        }
    }

    /// The port a sub-interface MAC belongs to.
    pub fn port_of(&self, mac: Mac) -> Option<PortId> {
        self.by_mac.get(&mac.key()).copied()
    }

    fn set(&self, modes: &[MacvlanMode]) -> PortSet {
        modes
            .iter()
            .fold(PortSet::EMPTY, |s, m| s.or(self.by_mode[m.index()]))
    }

    /// The receiver masks of `macvlan_process_broadcast`, computed once per configuration.
    fn precompute_masks(&mut self) {
        use MacvlanMode::*;
        self.from_outside = self.set(&[Private, Vepa, Passthru, Bridge]);
        self.from_vepa = self.set(&[Vepa, Bridge]);
        self.from_bridge = self.set(&[Vepa]);
    }

    /// Narrows `set` to the sub-interfaces whose filter accepts `dst` (`vlan->mc_filter`).
    /// Broadcast passes every filter. The kernel filters by a 256-bucket hash, so a group that
    /// collides with a joined one slips through there; l2sw filters exactly.
    #[inline]
    fn mc_receivers(&self, dst: Mac, set: PortSet) -> PortSet {
        if dst.is_broadcast() {
            return set;
        }
        let joined = self.groups.get(&dst.key()).copied().unwrap_or_default();
        set.and(self.allmulti.or(joined))
    }

    /// Source-mode devices listing `src`, and whether one of them has `nodst`
    /// (`macvlan_forward_source`). Most uplinks have no source-mode device: no lookup then.
    #[inline]
    fn source_copies(&self, src: Mac) -> (PortSet, bool) {
        if self.sources.is_empty() {
            return (PortSet::EMPTY, false);
        }
        self.sources.get(&src.key()).copied().unwrap_or_default()
    }

    fn mode_of(&self, p: PortId) -> Option<MacvlanMode> {
        match self.kind[p.index()] {
            Kind::Sub(m) => Some(m),
            _ => None,
        }
    }

    fn to_uplink(&self, why: Why) -> Outcome {
        let v = match self.uplink {
            Some(u) => Verdict::Unicast(u),
            None => Verdict::Drop(DropReason::NoDestination),
        };
        (v, why, None)
    }

    /// `macvlan_handle_frame` for unicast; `local` when a bridge-mode sibling's frame came
    /// round through `dev_forward_skb(lowerdev)`.
    fn uplink_unicast(&self, rx: &Ingress<'_>, copies: PortSet, local: bool) -> Outcome {
        let nd = DropReason::NoDestination;
        if let Some(p) = self.passthru {
            return (
                Verdict::deliver(copies.or(PortSet::only(p)), false, nd),
                Why::MvPassthru,
                None,
            );
        }
        let (v, why) = match self.port_of(rx.info.dst()) {
            Some(d) if self.mode_of(d) != Some(MacvlanMode::Source) => {
                let why = if local {
                    Why::MvBridgeLocal
                } else {
                    Why::MvToSub
                };
                (
                    Verdict::deliver(copies.or(PortSet::only(d)), false, nd),
                    why,
                )
            }
            Some(_) => (Verdict::deliver(copies, true, nd), Why::MvSourceNotDest),
            None => (Verdict::deliver(copies, true, nd), Why::MvMiss),
        };
        (v, why, None)
    }

    fn on_uplink(&self, rx: &Ingress<'_>) -> Outcome {
        let nd = DropReason::NoDestination;
        let (src, dst) = (rx.info.src(), rx.info.dst());
        // macvlan_forward_source: copies to source-mode devices listing the source, first.
        let (copies, nodst) = self.source_copies(src);
        if nodst {
            return (
                Verdict::deliver(copies, false, DropReason::NoDst),
                Why::MvNoDst,
                None,
            );
        }
        if !dst.is_multicast() {
            return self.uplink_unicast(rx, copies, false);
        }
        // The kernel's source check (`macvlan_handle_frame`: `src = macvlan_hash_lookup(port,
        // eth->h_source)`) only chooses the receivers; it authenticates nothing, and l2sw
        // does not drop a frame from the uplink that claims a sub-interface's MAC, in bridge
        // mode or any other: reflective relay (VEPA, private, a bridge-mode sender's frame to
        // a vepa peer, through a hairpinning upstream) returns exactly such frames, and a VRRP
        // virtual MAC (keepalived's `use_vmac`, a private macvlan) arrives from the peer
        // router with the sub-interface's own MAC as source (netdev, "macvlan breaks garp for
        // vrrp", 2021). A spoofer gets what the kernel gives it: a private/passthru/source
        // victim receives the broadcast alone (`MvToOrigin`: its peers and the uplink stack
        // lose it), a bridge victim and its bridge peers skip it. Since nothing is learned,
        // no later frame to the victim's MAC goes anywhere but to the victim.
        let origin = self.port_of(src);
        let origin_mode = origin.and_then(|p| self.mode_of(p));
        if let (Some(o), Some(m)) = (origin, origin_mode)
            && m != MacvlanMode::Vepa
            && m != MacvlanMode::Bridge
        {
            // Our own broadcast reflected back: to the original sender only, consumed.
            return (
                Verdict::deliver(copies.or(PortSet::only(o)), false, nd),
                Why::MvToOrigin,
                None,
            );
        }
        if rx.info.ethertype == EtherType::MAC_CONTROL {
            return (Verdict::deliver(copies, true, nd), Why::MvPause, None);
        }
        let (mask, why) = match origin_mode {
            Some(MacvlanMode::Vepa) => (self.from_vepa, Why::MvFloodFromVepa),
            Some(_) => (self.from_bridge, Why::MvFloodFromBridge),
            None => (self.from_outside, Why::MvFloodExternal),
        };
        let mask = match origin {
            Some(o) => mask.without(o),
            None => mask,
        };
        let recv = self.mc_receivers(dst, mask);
        (Verdict::deliver(copies.or(recv), true, nd), why, None)
    }

    fn on_sub(&self, rx: &Ingress<'_>, mode: MacvlanMode) -> Outcome {
        if mode != MacvlanMode::Bridge {
            return self.to_uplink(Why::MvToUplink);
        }
        let dst = rx.info.dst();
        if dst.is_multicast() {
            // macvlan_broadcast(MACVLAN_MODE_BRIDGE), then xmit_world. The sender is skipped
            // by device (`vlan->dev == src`), not by source MAC: a spoofed source changes
            // nothing here.
            let peers = self.by_mode[MacvlanMode::Bridge.index()].without(rx.port);
            let local = if rx.info.ethertype == EtherType::MAC_CONTROL {
                PortSet::EMPTY
            } else {
                self.mc_receivers(dst, peers)
            };
            let out = self.uplink.map(PortSet::only).unwrap_or_default();
            let v = Verdict::deliver(local.or(out), false, DropReason::NoDestination);
            return (v, Why::MvBridgeFlood, None);
        }
        match self.port_of(dst) {
            Some(d) if self.mode_of(d) == Some(MacvlanMode::Bridge) => {
                // dev_forward_skb(lowerdev): received on the uplink again, source copies and all.
                let (copies, nodst) = self.source_copies(rx.info.src());
                if nodst {
                    return (
                        Verdict::deliver(copies, false, DropReason::NoDst),
                        Why::MvNoDst,
                        None,
                    );
                }
                self.uplink_unicast(rx, copies, true)
            }
            _ => self.to_uplink(Why::MvToUplink),
        }
    }
}

impl Rules for Macvlan {
    fn rebuild(&mut self, _now: Tick, ports: &[Option<PortEntry>]) -> Result<(), ConfigError> {
        let mut t = Macvlan::new();
        let mut host = None;
        let uplink_mac = ports
            .iter()
            .flatten()
            .find(|e| matches!(e.cfg.role, Role::Uplink(_)))
            .and_then(|e| e.cfg.mac);
        let subs = ports
            .iter()
            .flatten()
            .filter(|e| matches!(e.cfg.role, Role::Macvlan(_)))
            .count();
        for (i, e) in ports.iter().enumerate() {
            let Some(e) = e else { continue };
            let Some(id) = PortId::new(i) else { continue };
            match &e.cfg.role {
                Role::Uplink(_) => {
                    if let Some(other) = t.uplink.replace(id) {
                        return Err(ConfigError::SecondUplink { existing: other });
                    }
                    t.kind[i] = Kind::Uplink;
                }
                Role::Host => {
                    if let Some(other) = host.replace(id) {
                        return Err(ConfigError::SecondHost { existing: other });
                    }
                    t.kind[i] = Kind::Host;
                }
                Role::Macvlan(m) => {
                    t.kind[i] = Kind::Sub(m.mode);
                    t.by_mode[m.mode.index()].insert(id);
                    if m.mode == MacvlanMode::Passthru {
                        if subs > 1 {
                            return Err(ConfigError::PassthruExclusive);
                        }
                        t.passthru = Some(id);
                    }
                    // A passthru device takes the uplink's MAC, whatever it was created with
                    // (eth_hw_addr_inherit; measured: `ip link add ... address X ... mode
                    // passthru` shows the uplink's MAC). Its own frames are recognised by it.
                    let mac = match (m.mode, e.cfg.mac, uplink_mac) {
                        (MacvlanMode::Passthru, Some(mac), Some(up)) if mac != up => {
                            return Err(ConfigError::PassthruMac {
                                port: e.cfg.name.clone(),
                                mac,
                                uplink: up,
                            });
                        }
                        (MacvlanMode::Passthru, _, Some(up)) => up,
                        (MacvlanMode::Passthru, Some(mac), None) => mac,
                        (MacvlanMode::Passthru, None, None) => continue,
                        (_, Some(mac), _) => mac,
                        (_, None, _) => {
                            return Err(ConfigError::MissingMac {
                                port: e.cfg.name.clone(),
                            });
                        }
                    };
                    if m.mode != MacvlanMode::Passthru && Some(mac) == uplink_mac {
                        return Err(ConfigError::AddressInUse {
                            mac,
                            port: e.cfg.name.clone(),
                        });
                    }
                    if !mac.is_valid_source() {
                        return Err(ConfigError::NotUnicast {
                            mac,
                            port: e.cfg.name.clone(),
                        });
                    }
                    if t.by_mac.insert(mac.key(), id).is_some() {
                        return Err(ConfigError::AddressInUse {
                            mac,
                            port: e.cfg.name.clone(),
                        });
                    }
                    if e.filter.all_multicast() {
                        t.allmulti.insert(id);
                    }
                    for g in e.filter.groups() {
                        t.groups.entry(g.key()).or_default().insert(id);
                    }
                    if m.mode == MacvlanMode::Source {
                        for s in m.source.iter() {
                            let slot = t.sources.entry(s.key()).or_default();
                            slot.0.insert(id);
                            slot.1 |= m.nodst;
                        }
                    }
                }
                other => {
                    return Err(ConfigError::RoleNotInMode {
                        role: other.name(),
                        mode: "macvlan",
                    });
                }
            }
        }
        t.precompute_masks();
        *self = t;
        Ok(())
    }

    #[inline]
    fn decide(&mut self, _cx: &Ctx<'_>, _now: Tick, rx: &Ingress<'_>, d: &mut Decision) {
        d.set_outcome(match self.kind[rx.port.index()] {
            Kind::Uplink => self.on_uplink(rx),
            Kind::Sub(mode) => self.on_sub(rx, mode),
            Kind::Host => self.to_uplink(Why::MvHostToUplink),
            Kind::None => (Verdict::Drop(DropReason::UnknownPort), Why::NoPort, None),
        })
    }
}
