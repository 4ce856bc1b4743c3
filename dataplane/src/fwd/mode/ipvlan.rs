//! ipvlan in L2 mode (`drivers/net/ipvlan/ipvlan_core.c`): slaves share the uplink's MAC and are
//! told apart by IP. A slave's frame to the shared MAC is delivered by destination IP
//! (`ipvlan_xmit_mode_l2`); unicast from the uplink is demultiplexed by destination IP without
//! looking at the MAC (`ipvlan_handle_mode_l3`); multicast reaches every slave whose filter
//! accepts it, whatever the private/vepa flag (`ipvlan_process_multicast`).
//!
//! Invariants: with `private`, no unicast passes from slave to slave inside the switch; with
//! `vepa`, every unicast leaves by the uplink; an IP belongs to at most one slave.

use std::net::IpAddr;

use hashbrown::HashMap;

use super::{Ctx, Ingress, Outcome, Rules};
use crate::fwd::clock::Tick;
use crate::fwd::ports::{MAX_PORTS, PortId, PortSet};
use crate::fwd::switch::{ConfigError, PortEntry, Role};
use crate::fwd::verdict::{Decision, DropReason, Verdict, Why};
use crate::wire::{EtherType, Mac, Side, l3_addr};

/// The port-wide ipvlan flag (`IPVLAN_F_PRIVATE`, `IPVLAN_F_VEPA`; neither = bridge).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpvlanFlag {
    /// Slaves reach each other inside the switch.
    #[default]
    Bridge,
    /// Slave-to-slave unicast is dropped.
    Private,
    /// Every unicast leaves by the uplink.
    Vepa,
}

impl IpvlanFlag {
    /// The flag from the kernel's two bits; both together are refused (`ipvlan_nl_validate`).
    pub fn from_bits(private: bool, vepa: bool) -> Result<IpvlanFlag, ConfigError> {
        match (private, vepa) {
            (false, false) => Ok(IpvlanFlag::Bridge),
            (true, false) => Ok(IpvlanFlag::Private),
            (false, true) => Ok(IpvlanFlag::Vepa),
            (true, true) => Err(ConfigError::IpvlanFlags),
        }
    }
}

/// Settings of an ipvlan L2 switch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvlanConfig {
    /// bridge, private or vepa.
    pub flag: IpvlanFlag,
}

/// An ipvlan slave port: the addresses it owns. Its MAC is the uplink's; its `filter` is the
/// slave's multicast filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvlanPort {
    /// IPv4 and IPv6 addresses of the slave.
    pub addrs: Vec<IpAddr>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    None,
    Uplink,
    Host,
    Slave,
}

/// The ipvlan port's tables.
#[derive(Debug, Clone)]
pub struct Ipvlan {
    cfg: IpvlanConfig,
    kind: Box<[Kind; MAX_PORTS]>,
    uplink: Option<PortId>,
    shared: Option<Mac>,
    by_ip: HashMap<IpAddr, PortId, foldhash::fast::RandomState>,
    slaves: PortSet,
    allmulti: PortSet,
    groups: HashMap<u64, PortSet, foldhash::fast::RandomState>,
}

impl Ipvlan {
    /// No ports yet.
    pub fn new(cfg: IpvlanConfig) -> Ipvlan {
        Ipvlan {
            cfg,
            kind: Box::new([Kind::None; MAX_PORTS]),
            uplink: None,
            shared: None,
            by_ip: HashMap::default(),
            slaves: PortSet::EMPTY,
            allmulti: PortSet::EMPTY,
            groups: HashMap::default(),
        }
    }

    /// Settings.
    pub fn config(&self) -> IpvlanConfig {
        self.cfg
    }

    /// The slave owning `ip`.
    pub fn port_of(&self, ip: IpAddr) -> Option<PortId> {
        self.by_ip.get(&ip).copied()
    }

    #[inline]
    fn mc_receivers(&self, dst: Mac, set: PortSet) -> PortSet {
        if dst.is_broadcast() {
            return set;
        }
        let joined = self.groups.get(&dst.key()).copied().unwrap_or_default();
        set.and(self.allmulti.or(joined))
    }

    fn lookup(&self, rx: &Ingress<'_>, side: Side) -> Option<PortId> {
        l3_addr(rx.frame, rx.info, side).and_then(|ip| self.port_of(ip))
    }

    fn to_uplink(&self, why: Why) -> Outcome {
        let v = match self.uplink {
            Some(u) => Verdict::Unicast(u),
            None => Verdict::Drop(DropReason::NoDestination),
        };
        (v, why, None)
    }

    fn on_slave(&self, rx: &Ingress<'_>) -> Outcome {
        let (src, dst) = (rx.info.src(), rx.info.dst());
        if self.cfg.flag != IpvlanFlag::Vepa && dst == src {
            return match self.lookup(rx, Side::Destination) {
                Some(_) if self.cfg.flag == IpvlanFlag::Private => {
                    (Verdict::Drop(DropReason::PrivateMode), Why::IpPrivate, None)
                }
                Some(d) => (Verdict::Unicast(d), Why::IpLocal, None),
                None => (Verdict::Host, Why::IpToMaster, None),
            };
        }
        if dst.is_multicast() {
            if rx.info.ethertype == EtherType::MAC_CONTROL {
                return (Verdict::Drop(DropReason::Pause), Why::IpPause, None);
            }
            let peers = self.mc_receivers(dst, self.slaves.without(rx.port));
            let out = self.uplink.map(PortSet::only).unwrap_or_default();
            let v = Verdict::deliver(peers.or(out), false, DropReason::NoDestination);
            return (v, Why::IpMulticastTx, None);
        }
        self.to_uplink(Why::IpToUplink)
    }

    fn on_uplink(&self, rx: &Ingress<'_>) -> Outcome {
        let (src, dst) = (rx.info.src(), rx.info.dst());
        if !dst.is_multicast() {
            return match self.lookup(rx, Side::Destination) {
                Some(d) => (Verdict::Unicast(d), Why::IpDemux, None),
                None => (Verdict::Host, Why::IpMiss, None),
            };
        }
        let own = Some(src) == self.shared && self.lookup(rx, Side::Source).is_some();
        if own {
            return (Verdict::Host, Why::IpOwnMulticast, None);
        }
        if rx.info.ethertype == EtherType::MAC_CONTROL {
            return (Verdict::Host, Why::IpPause, None);
        }
        let recv = self.mc_receivers(dst, self.slaves);
        (
            Verdict::deliver(recv, true, DropReason::NoDestination),
            Why::IpMulticastRx,
            None,
        )
    }
}

impl Rules for Ipvlan {
    fn rebuild(&mut self, _now: Tick, ports: &[Option<PortEntry>]) -> Result<(), ConfigError> {
        let mut t = Ipvlan::new(self.cfg);
        let mut host = None;
        t.shared = ports
            .iter()
            .flatten()
            .find(|e| matches!(e.cfg.role, Role::Uplink(_)))
            .and_then(|e| e.cfg.mac);
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
                Role::Ipvlan(s) => {
                    if let (Some(mac), Some(shared)) = (e.cfg.mac, t.shared)
                        && mac != shared
                    {
                        return Err(ConfigError::IpvlanMac {
                            port: e.cfg.name.clone(),
                            mac,
                            shared,
                        });
                    }
                    t.kind[i] = Kind::Slave;
                    t.slaves.insert(id);
                    for ip in &s.addrs {
                        if t.by_ip.insert(*ip, id).is_some() {
                            return Err(ConfigError::DuplicateIp {
                                ip: *ip,
                                port: e.cfg.name.clone(),
                            });
                        }
                    }
                    if e.filter.all_multicast() {
                        t.allmulti.insert(id);
                    }
                    for g in e.filter.groups() {
                        t.groups.entry(g.key()).or_default().insert(id);
                    }
                }
                other => {
                    return Err(ConfigError::RoleNotInMode {
                        role: other.name(),
                        mode: "ipvlan",
                    });
                }
            }
        }
        *self = t;
        Ok(())
    }

    #[inline]
    fn decide(&mut self, _cx: &Ctx<'_>, _now: Tick, rx: &Ingress<'_>, d: &mut Decision) {
        d.set_outcome(match self.kind[rx.port.index()] {
            Kind::Uplink => self.on_uplink(rx),
            Kind::Slave => self.on_slave(rx),
            Kind::Host => self.to_uplink(Why::IpHostToUplink),
            Kind::None => (Verdict::Drop(DropReason::UnknownPort), Why::NoPort, None),
        })
    }
}
