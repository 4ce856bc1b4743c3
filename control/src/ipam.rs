//! Docker-style IP address management (docs/spec.md §5.2), after moby libnetwork's default IPAM
//! (`ipams/defaultipam`) and its predefined pools (`ipamutils`).
//!
//! A [`Pool`] is one subnet of a network with its optional ip-range, gateway and aux addresses,
//! and the addresses handed out to endpoints. Everything here is pure: the caller says what is
//! already in use (other networks, routes on the host) and persists pools as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

/// Something already using addresses: another network's subnet, or a route on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    /// The addresses in use.
    pub net: IpNet,
    /// Who uses them, for messages: `network "front"`, `a route on the host`.
    pub owner: String,
}

/// What a new network asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRequest {
    /// `--subnet`; `None` takes the next default IPv4 pool.
    pub subnet: Option<IpNet>,
    /// `--ip-range`: dynamic addresses come only from it.
    pub ip_range: Option<IpNet>,
    /// `--gateway`.
    pub gateway: Option<IpAddr>,
    /// `--aux-address name=ip`: reserved, never handed out.
    pub aux: BTreeMap<String, IpAddr>,
    /// Without `gateway`, make the first free address the gateway (bridge does, macvlan and
    /// ipvlan do not).
    pub auto_gateway: bool,
}

/// What holds an address of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// The IPv4 network address.
    NetworkAddress,
    /// The IPv4 broadcast address.
    BroadcastAddress,
    /// The IPv6 subnet-router anycast address (the first of the subnet).
    SubnetRouterAnycast,
    /// The network's gateway.
    Gateway,
    /// The aux address of this name.
    Aux(String),
    /// An endpoint.
    Endpoint,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::NetworkAddress => f.write_str("the network address"),
            Holder::BroadcastAddress => f.write_str("the broadcast address"),
            Holder::SubnetRouterAnycast => f.write_str("the subnet-router anycast address"),
            Holder::Gateway => f.write_str("the gateway"),
            Holder::Aux(name) => write!(f, "aux address {name:?}"),
            Holder::Endpoint => f.write_str("an endpoint"),
        }
    }
}

/// Why an address or pool was refused. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// The address is taken (`ipamapi.ErrIPAlreadyAllocated`).
    #[error("{}address already in use: {ip} ({holder})", wanted_prefix(.wanted_by))]
    AddressInUse {
        /// The address.
        ip: IpAddr,
        /// What holds it.
        holder: Holder,
        /// The gateway or aux address that wanted it; `None` for an endpoint.
        wanted_by: Option<Holder>,
    },
    /// A static address outside the subnet.
    #[error("no configured subnet contains IP {ip} (the network's subnet is {subnet})")]
    NotInSubnet {
        /// The address.
        ip: IpAddr,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// Every address of the range (or subnet) is taken (`ipamapi.ErrNoAvailableIPs`).
    #[error("no available addresses in pool {0}")]
    Exhausted(IpNet),
    /// An aux address outside the subnet.
    #[error("aux address {name}={ip} must belong to the subnet {subnet}")]
    AuxOutsideSubnet {
        /// The aux address's name.
        name: String,
        /// The address.
        ip: IpAddr,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// An aux address of this name exists already.
    #[error("aux address {name:?} already exists ({ip})")]
    AuxExists {
        /// The aux address's name.
        name: String,
        /// Its address.
        ip: IpAddr,
    },
    /// The subnet overlaps addresses in use.
    #[error("pool {subnet} overlaps with {other}, used by {owner}")]
    Overlap {
        /// The requested subnet.
        subnet: IpNet,
        /// What it overlaps.
        other: IpNet,
        /// Who uses `other`.
        owner: String,
    },
    /// A CIDR with host bits set.
    #[error("invalid {what} {given}: it should be {canonical}")]
    NonCanonical {
        /// "subnet" or "ip-range".
        what: String,
        /// The CIDR as given.
        given: IpNet,
        /// The CIDR with its host bits cleared.
        canonical: IpNet,
    },
    /// An unparsable CIDR.
    #[error("invalid {what} {given:?}: {reason}")]
    Invalid {
        /// "subnet" or "ip-range".
        what: String,
        /// The text as given.
        given: String,
        /// Why it does not parse.
        reason: String,
    },
    /// An ip-range not inside its subnet.
    #[error("ip-range {range} is not inside the subnet {subnet}")]
    RangeOutsideSubnet {
        /// The ip-range.
        range: IpNet,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// A gateway outside its subnet.
    #[error("gateway {gateway} is not inside the subnet {subnet}")]
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: IpAddr,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// An address or ip-range of the other family than the subnet.
    #[error("{what} {value} is {} but the subnet {subnet} is {}", other_family(.subnet), family(.subnet))]
    FamilyMismatch {
        /// What it is: "address", "ip-range", "the gateway", `aux address "host"`.
        what: String,
        /// The address or ip-range.
        value: String,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// An ip-range, gateway or aux address without an explicit subnet (Docker's CLI refuses
    /// these too: "every ip-range or gateway must have a corresponding subnet").
    #[error("{what} needs an explicit subnet")]
    NeedsSubnet {
        /// What was given: "gateway 10.0.0.1".
        what: String,
    },
    /// Every default pool overlaps something in use.
    #[error("all predefined address pools have been fully subnetted")]
    NoDefaultPool,
}

fn wanted_prefix(wanted_by: &Option<Holder>) -> String {
    wanted_by
        .as_ref()
        .map_or_else(String::new, |holder| format!("cannot reserve {holder}: "))
}

fn family(subnet: &IpNet) -> &'static str {
    if is_v4(*subnet) { "IPv4" } else { "IPv6" }
}

fn other_family(subnet: &IpNet) -> &'static str {
    if is_v4(*subnet) { "IPv6" } else { "IPv4" }
}

fn is_v4(net: IpNet) -> bool {
    matches!(net, IpNet::V4(_))
}

/// One subnet of a network and its allocations; serde so it can be persisted as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    subnet: IpNet,
    ip_range: Option<IpNet>,
    gateway: Option<IpAddr>,
    #[serde(default)]
    aux: BTreeMap<String, IpAddr>,
    #[serde(default)]
    allocated: BTreeSet<IpAddr>,
}

impl Pool {
    /// Checks a request against itself and the addresses in use, and sets up its pool: the
    /// subnet (the next default pool if none is given), ip-range, gateway (the first free address
    /// with `auto_gateway`) and aux addresses.
    pub fn new(req: &PoolRequest, in_use: &[InUse]) -> Result<Pool, IpamError> {
        let subnet = match req.subnet {
            Some(subnet) => canonical("subnet", subnet)?,
            None => {
                if let Some(what) = needs_subnet(req) {
                    return Err(IpamError::NeedsSubnet { what });
                }
                default_pool(in_use)?
            }
        };
        if let Some(used) = in_use.iter().find(|used| overlaps(subnet, used.net)) {
            return Err(IpamError::Overlap {
                subnet,
                other: used.net,
                owner: used.owner.clone(),
            });
        }
        let ip_range = req
            .ip_range
            .map(|range| check_range(range, subnet))
            .transpose()?;
        let mut pool = Pool {
            subnet,
            ip_range,
            gateway: None,
            aux: BTreeMap::new(),
            allocated: BTreeSet::new(),
        };
        // The gateway must be in the subnet, but may be outside the range.
        if let Some(gateway) = req.gateway {
            pool.check_free(gateway, Some(&Holder::Gateway))?;
            pool.gateway = Some(gateway);
        }
        for (name, &ip) in &req.aux {
            pool.add_aux(name, Some(ip))?;
        }
        // bridge: the gateway is the first free address of the range, else of the subnet.
        if pool.gateway.is_none() && req.auto_gateway {
            let gateway = pool
                .lowest_free(pool.dynamic_range())
                .or_else(|| pool.lowest_free(subnet))
                .ok_or(IpamError::Exhausted(subnet))?;
            pool.gateway = Some(gateway);
        }
        Ok(pool)
    }

    /// The subnet.
    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    /// The ip-range dynamic addresses come from, if one was given.
    pub fn ip_range(&self) -> Option<IpNet> {
        self.ip_range
    }

    /// The gateway, if any.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    /// The aux addresses by name.
    pub fn aux(&self) -> &BTreeMap<String, IpAddr> {
        &self.aux
    }

    /// The endpoints' addresses, lowest first.
    pub fn allocated(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.allocated.iter().copied()
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.subnet.contains(&ip)
    }

    /// A static address (`Some`, anywhere in the subnet) or the lowest free one in the range.
    pub fn allocate(&mut self, requested: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        let ip = match requested {
            Some(ip) => {
                self.check_free(ip, None)?;
                ip
            }
            // Lowest free, not round robin: a freed address is handed out again at once.
            None => {
                let range = self.dynamic_range();
                self.lowest_free(range).ok_or(IpamError::Exhausted(range))?
            }
        };
        self.allocated.insert(ip);
        Ok(ip)
    }

    /// Frees an allocated address; false if it was not allocated.
    pub fn release(&mut self, ip: IpAddr) -> bool {
        self.allocated.remove(&ip)
    }

    /// Reserves one more aux address (for `l2ctl host-access`): `Some` must be in the subnet and
    /// free; `None` takes the highest free address outside the ip-range, else the highest free
    /// one of the subnet, so a host shim stays clear of the workloads filling the range from below.
    pub fn add_aux(&mut self, name: &str, ip: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        if let Some(&ip) = self.aux.get(name) {
            return Err(IpamError::AuxExists {
                name: name.to_owned(),
                ip,
            });
        }
        let ip = match ip {
            Some(ip) => {
                self.check_free(ip, Some(&Holder::Aux(name.to_owned())))?;
                ip
            }
            None => self
                .aux_candidates()
                .map(|n| self.addr(n))
                .find(|&ip| self.holder(ip).is_none())
                .ok_or(IpamError::Exhausted(self.subnet))?,
        };
        self.aux.insert(name.to_owned(), ip);
        Ok(ip)
    }

    /// Frees an aux address; its address if it existed.
    pub fn remove_aux(&mut self, name: &str) -> Option<IpAddr> {
        self.aux.remove(name)
    }

    /// Where dynamic addresses come from: the ip-range, else the whole subnet.
    fn dynamic_range(&self) -> IpNet {
        self.ip_range.unwrap_or(self.subnet)
    }

    /// What holds `ip`, if anything.
    fn holder(&self, ip: IpAddr) -> Option<Holder> {
        if let Some(reserved) = reserved(self.subnet, ip) {
            return Some(reserved);
        }
        if self.gateway == Some(ip) {
            return Some(Holder::Gateway);
        }
        if let Some((name, _)) = self.aux.iter().find(|&(_, &aux)| aux == ip) {
            return Some(Holder::Aux(name.clone()));
        }
        self.allocated.contains(&ip).then_some(Holder::Endpoint)
    }

    /// Checks that `wanted_by` (`None`: an endpoint) may take `ip`: same family, in the subnet,
    /// free.
    fn check_free(&self, ip: IpAddr, wanted_by: Option<&Holder>) -> Result<(), IpamError> {
        let subnet = self.subnet;
        if ip.is_ipv4() != is_v4(subnet) {
            return Err(IpamError::FamilyMismatch {
                what: wanted_by.map_or_else(|| "address".to_owned(), Holder::to_string),
                value: ip.to_string(),
                subnet,
            });
        }
        if !subnet.contains(&ip) {
            return Err(match wanted_by {
                Some(Holder::Gateway) => IpamError::GatewayOutsideSubnet {
                    gateway: ip,
                    subnet,
                },
                Some(Holder::Aux(name)) => IpamError::AuxOutsideSubnet {
                    name: name.clone(),
                    ip,
                    subnet,
                },
                _ => IpamError::NotInSubnet { ip, subnet },
            });
        }
        match self.holder(ip) {
            Some(holder) => Err(IpamError::AddressInUse {
                ip,
                holder,
                wanted_by: wanted_by.cloned(),
            }),
            None => Ok(()),
        }
    }

    /// The lowest free address of `net`. Walks up from its first address, so it costs one step
    /// per taken address, however large `net` is.
    fn lowest_free(&self, net: IpNet) -> Option<IpAddr> {
        let (first, last) = bounds(net);
        (first..=last)
            .map(|n| self.addr(n))
            .find(|&ip| self.holder(ip).is_none())
    }

    /// Where `add_aux(name, None)` looks, best first: down from the top of the subnet above the
    /// ip-range, then below it, then the whole subnet.
    fn aux_candidates(&self) -> impl Iterator<Item = u128> {
        let (first, last) = bounds(self.subnet);
        let outside = self.ip_range.map(|range| {
            let (low, high) = bounds(range);
            let above = (high < last).then(|| high + 1..=last);
            let below = (low > first).then(|| first..=low - 1);
            let above = above.into_iter().flatten().rev();
            above.chain(below.into_iter().flatten().rev())
        });
        outside.into_iter().flatten().chain((first..=last).rev())
    }

    /// The address numbered `n` in the pool's family.
    fn addr(&self, n: u128) -> IpAddr {
        match self.subnet {
            // `n` comes from the bounds of an IPv4 net, so it fits in 32 bits.
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from_bits(n as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(n)),
        }
    }
}

/// `defaultipam` reserves the first address of a subnet (IPv4 network address, IPv6
/// subnet-router anycast, RFC 4291 §2.6.1) and the IPv4 broadcast address, except where every
/// address counts: IPv4 /31 (RFC 3021) and /32, and here also IPv6 /127 (RFC 6164) and /128.
fn reserved(subnet: IpNet, ip: IpAddr) -> Option<Holder> {
    if subnet.max_prefix_len() - subnet.prefix_len() < 2 {
        return None;
    }
    match subnet {
        IpNet::V4(_) if ip == subnet.network() => Some(Holder::NetworkAddress),
        IpNet::V4(_) if ip == subnet.broadcast() => Some(Holder::BroadcastAddress),
        IpNet::V6(_) if ip == subnet.network() => Some(Holder::SubnetRouterAnycast),
        _ => None,
    }
}

/// The first and last addresses of `net` as numbers.
fn bounds(net: IpNet) -> (u128, u128) {
    (number(net.network()), number(net.broadcast()))
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(ip) => u128::from(ip.to_bits()),
        IpAddr::V6(ip) => ip.to_bits(),
    }
}

/// Whether two nets share an address (never across families).
fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Refuses a CIDR with host bits set, naming the one meant.
fn canonical(what: &str, net: IpNet) -> Result<IpNet, IpamError> {
    let trunc = net.trunc();
    if trunc == net {
        Ok(net)
    } else {
        Err(IpamError::NonCanonical {
            what: what.to_owned(),
            given: net,
            canonical: trunc,
        })
    }
}

/// An ip-range must be canonical, of the subnet's family and inside it.
fn check_range(range: IpNet, subnet: IpNet) -> Result<IpNet, IpamError> {
    let range = canonical("ip-range", range)?;
    if is_v4(range) != is_v4(subnet) {
        return Err(IpamError::FamilyMismatch {
            what: "ip-range".to_owned(),
            value: range.to_string(),
            subnet,
        });
    }
    if !subnet.contains(&range) {
        return Err(IpamError::RangeOutsideSubnet { range, subnet });
    }
    Ok(range)
}

/// What a request without a subnet wrongly gives, if anything.
fn needs_subnet(req: &PoolRequest) -> Option<String> {
    let range = req.ip_range.map(|range| format!("ip-range {range}"));
    let gateway = req.gateway.map(|gateway| format!("gateway {gateway}"));
    let aux = req
        .aux
        .iter()
        .next()
        .map(|(name, ip)| format!("aux address {name}={ip}"));
    range.or(gateway).or(aux)
}

/// `ipamutils`' local-scope predefined pools: each base is split into subnets of the given size.
const DEFAULT_POOLS: [(Ipv4Net, u8); 7] = [
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 17, 0, 0), 16), 16),
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 18, 0, 0), 16), 16),
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 19, 0, 0), 16), 16),
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 20, 0, 0), 14), 16),
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 24, 0, 0), 14), 16),
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 28, 0, 0), 14), 16),
    (Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), 20),
];

/// The default pools in the order they are handed out.
fn default_pools() -> impl Iterator<Item = IpNet> {
    // `subnets` fails only for a size shorter than its base, which the table never has.
    DEFAULT_POOLS
        .into_iter()
        .flat_map(|(base, size)| base.subnets(size).into_iter().flatten())
        .map(IpNet::V4)
}

/// The lowest default pool that overlaps nothing in `in_use`.
pub fn default_pool(in_use: &[InUse]) -> Result<IpNet, IpamError> {
    default_pools()
        .find(|&pool| !in_use.iter().any(|used| overlaps(pool, used.net)))
        .ok_or(IpamError::NoDefaultPool)
}

/// Parses a CIDR and insists it is canonical (`what` is "subnet" or "ip-range" for the message).
pub fn parse_cidr(what: &str, s: &str) -> Result<IpNet, IpamError> {
    let net = s.parse::<IpNet>().map_err(|err| IpamError::Invalid {
        what: what.to_owned(),
        given: s.to_owned(),
        reason: err.to_string(),
    })?;
    canonical(what, net)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn req(subnet: &str) -> PoolRequest {
        PoolRequest {
            subnet: Some(net(subnet)),
            ..PoolRequest::default()
        }
    }

    fn bridge(subnet: &str) -> PoolRequest {
        PoolRequest {
            auto_gateway: true,
            ..req(subnet)
        }
    }

    fn used(s: &str, owner: &str) -> InUse {
        InUse {
            net: net(s),
            owner: owner.to_owned(),
        }
    }

    fn create(req: &PoolRequest) -> Pool {
        Pool::new(req, &[]).unwrap()
    }

    fn message<T: fmt::Debug>(result: Result<T, IpamError>) -> String {
        result.unwrap_err().to_string()
    }

    // parse_cidr

    #[test]
    fn parse_cidr_accepts_canonical_cidrs() {
        assert_eq!(parse_cidr("subnet", "10.0.0.0/24"), Ok(net("10.0.0.0/24")));
        assert_eq!(parse_cidr("subnet", "fd00::/64"), Ok(net("fd00::/64")));
    }

    #[test]
    fn parse_cidr_refuses_host_bits_naming_the_canonical_cidr() {
        let err = parse_cidr("subnet", "10.0.0.1/24").unwrap_err();
        assert_eq!(
            err,
            IpamError::NonCanonical {
                what: "subnet".into(),
                given: net("10.0.0.1/24"),
                canonical: net("10.0.0.0/24"),
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24"
        );
        assert_eq!(
            message(parse_cidr("ip-range", "fd00::1/64")),
            "invalid ip-range fd00::1/64: it should be fd00::/64"
        );
    }

    #[test]
    fn parse_cidr_refuses_garbage_naming_it() {
        for bad in ["10.0.0/24", "10.0.0.0", "10.0.0.0/33", ""] {
            let msg = message(parse_cidr("subnet", bad));
            assert!(
                msg.starts_with(&format!("invalid subnet {bad:?}: ")),
                "{msg}"
            );
        }
    }

    // Default pools

    #[test]
    fn default_pools_come_in_docker_order() {
        let mut in_use = Vec::new();
        while let Ok(pool) = default_pool(&in_use) {
            in_use.push(InUse {
                net: pool,
                owner: "network".into(),
            });
        }
        let got: Vec<String> = in_use.iter().map(|u| u.net.to_string()).collect();
        let mut want: Vec<String> = (17..=31).map(|b| format!("172.{b}.0.0/16")).collect();
        want.extend((0..16).map(|i| format!("192.168.{}.0/20", i * 16)));
        assert_eq!(got, want);
    }

    #[test]
    fn default_pool_skips_pools_in_use() {
        assert_eq!(default_pool(&[]), Ok(net("172.17.0.0/16")));
        let in_use = [used("172.17.0.0/16", "network \"bridge\"")];
        assert_eq!(default_pool(&in_use), Ok(net("172.18.0.0/16")));
        let in_use = [used("172.16.0.0/12", "a route on the host")];
        assert_eq!(default_pool(&in_use), Ok(net("192.168.0.0/20")));
    }

    #[test]
    fn default_pool_skips_pools_overlapping_a_host_route() {
        let in_use = [
            used("172.17.0.0/16", "network \"bridge\""),
            used("172.18.5.0/24", "a route on the host"),
        ];
        assert_eq!(default_pool(&in_use), Ok(net("172.19.0.0/16")));
    }

    #[test]
    fn default_pool_ignores_ipv6_in_use() {
        assert_eq!(
            default_pool(&[used("::/0", "a route on the host")]),
            Ok(net("172.17.0.0/16"))
        );
    }

    #[test]
    fn default_pools_run_out() {
        let in_use = [
            used("172.16.0.0/12", "a route on the host"),
            used("192.168.0.0/16", "a route on the host"),
        ];
        let err = default_pool(&in_use).unwrap_err();
        assert_eq!(err, IpamError::NoDefaultPool);
        assert_eq!(
            err.to_string(),
            "all predefined address pools have been fully subnetted"
        );
        assert_eq!(Pool::new(&PoolRequest::default(), &in_use), Err(err));
    }

    #[test]
    fn a_network_without_subnet_takes_the_default_pool_and_gateway() {
        let in_use = [used("172.17.0.0/16", "network \"bridge\"")];
        let request = PoolRequest {
            auto_gateway: true,
            ..PoolRequest::default()
        };
        let mut pool = Pool::new(&request, &in_use).unwrap();
        assert_eq!(pool.subnet(), net("172.18.0.0/16"));
        assert_eq!(pool.gateway(), Some(ip("172.18.0.1")));
        assert_eq!(pool.allocate(None), Ok(ip("172.18.0.2")));
    }

    #[test]
    fn range_gateway_or_aux_without_subnet_is_refused() {
        let cases = [
            (
                PoolRequest {
                    ip_range: Some(net("172.17.1.0/24")),
                    ..PoolRequest::default()
                },
                "ip-range 172.17.1.0/24 needs an explicit subnet",
            ),
            (
                PoolRequest {
                    gateway: Some(ip("172.17.0.1")),
                    ..PoolRequest::default()
                },
                "gateway 172.17.0.1 needs an explicit subnet",
            ),
            (
                PoolRequest {
                    aux: BTreeMap::from([("host".into(), ip("172.17.0.9"))]),
                    ..PoolRequest::default()
                },
                "aux address host=172.17.0.9 needs an explicit subnet",
            ),
        ];
        for (request, want) in cases {
            assert_eq!(message(Pool::new(&request, &[])), want);
        }
    }

    // Subnets and ranges

    #[test]
    fn overlapping_subnet_is_refused_naming_both_and_the_owner() {
        let in_use = [used("10.0.0.0/16", "network \"x\"")];
        let err = Pool::new(&req("10.0.1.0/24"), &in_use).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pool 10.0.1.0/24 overlaps with 10.0.0.0/16, used by network \"x\""
        );
        // Either way round, and only within a family.
        let in_use = [used("10.0.1.0/24", "a route on the host")];
        assert!(Pool::new(&req("10.0.0.0/8"), &in_use).is_err());
        assert!(Pool::new(&req("11.0.0.0/8"), &in_use).is_ok());
        assert!(Pool::new(&req("::/0"), &in_use).is_ok());
    }

    #[test]
    fn non_canonical_subnet_and_range_are_refused() {
        assert_eq!(
            message(Pool::new(&req("10.0.0.1/24"), &[])),
            "invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24"
        );
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.130/25")),
            ..req("10.0.0.0/24")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "invalid ip-range 10.0.0.130/25: it should be 10.0.0.128/25"
        );
    }

    #[test]
    fn range_outside_subnet_is_refused() {
        for range in ["10.0.1.0/25", "10.0.0.0/23", "0.0.0.0/0"] {
            let request = PoolRequest {
                ip_range: Some(net(range)),
                ..req("10.0.0.0/24")
            };
            let err = Pool::new(&request, &[]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("ip-range {range} is not inside the subnet 10.0.0.0/24")
            );
        }
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.0/24")),
            ..req("10.0.0.0/24")
        };
        assert!(
            Pool::new(&request, &[]).is_ok(),
            "a range may be the subnet"
        );
    }

    #[test]
    fn range_of_the_other_family_is_refused() {
        let request = PoolRequest {
            ip_range: Some(net("fd00::/120")),
            ..req("10.0.0.0/24")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "ip-range fd00::/120 is IPv6 but the subnet 10.0.0.0/24 is IPv4"
        );
    }

    // Gateway

    #[test]
    fn auto_gateway_is_the_first_address_and_is_taken() {
        let mut pool = create(&bridge("10.0.0.0/24"));
        assert_eq!(pool.gateway(), Some(ip("10.0.0.1")));
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.2")));
        assert_eq!(
            message(pool.allocate(Some(ip("10.0.0.1")))),
            "address already in use: 10.0.0.1 (the gateway)"
        );
    }

    /// docs/spec.md §5.2, once an open question, settled by reading moby's `defaultipam`: the
    /// gateway is requested with the pool id that carries the ip-range, so
    /// `requestAddress(Subnet, ChildSubnet, …)` takes the first free address *of the range*
    /// (`AddAnyInRange`).
    #[test]
    fn auto_gateway_comes_from_the_range_else_the_subnet() {
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.128/25")),
            ..bridge("10.0.0.0/24")
        };
        assert_eq!(create(&request).gateway(), Some(ip("10.0.0.128")));
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.8/32")),
            aux: BTreeMap::from([("host".into(), ip("10.0.0.8"))]),
            ..bridge("10.0.0.0/24")
        };
        assert_eq!(create(&request).gateway(), Some(ip("10.0.0.1")));
    }

    #[test]
    fn auto_gateway_skips_aux_addresses() {
        let request = PoolRequest {
            aux: BTreeMap::from([("host".into(), ip("10.0.0.1"))]),
            ..bridge("10.0.0.0/24")
        };
        assert_eq!(create(&request).gateway(), Some(ip("10.0.0.2")));
    }

    #[test]
    fn auto_gateway_needs_a_free_address() {
        let request = PoolRequest {
            aux: BTreeMap::from([("host".into(), ip("10.0.0.7"))]),
            ..bridge("10.0.0.7/32")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "no available addresses in pool 10.0.0.7/32"
        );
    }

    #[test]
    fn macvlan_gets_no_gateway_unless_given() {
        let mut pool = create(&req("10.0.0.0/24"));
        assert_eq!(pool.gateway(), None);
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn given_gateway_is_kept_even_outside_the_range() {
        for auto_gateway in [false, true] {
            let request = PoolRequest {
                ip_range: Some(net("10.0.0.128/25")),
                gateway: Some(ip("10.0.0.1")),
                auto_gateway,
                ..req("10.0.0.0/24")
            };
            let mut pool = create(&request);
            assert_eq!(pool.gateway(), Some(ip("10.0.0.1")));
            assert_eq!(pool.allocate(None), Ok(ip("10.0.0.128")));
        }
    }

    #[test]
    fn given_gateway_inside_the_range_is_skipped() {
        let request = PoolRequest {
            gateway: Some(ip("10.0.0.2")),
            ..req("10.0.0.0/24")
        };
        let mut pool = create(&request);
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.1")));
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.3")));
    }

    #[test]
    fn gateway_outside_subnet_is_refused() {
        let request = PoolRequest {
            gateway: Some(ip("10.0.1.1")),
            ..req("10.0.0.0/24")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "gateway 10.0.1.1 is not inside the subnet 10.0.0.0/24"
        );
    }

    #[test]
    fn gateway_of_the_other_family_is_refused() {
        let request = PoolRequest {
            gateway: Some(ip("fd00::1")),
            ..req("10.0.0.0/24")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "the gateway fd00::1 is IPv6 but the subnet 10.0.0.0/24 is IPv4"
        );
    }

    #[test]
    fn gateway_on_a_reserved_address_is_refused() {
        for (gateway, holder) in [
            ("10.0.0.0", "the network address"),
            ("10.0.0.255", "the broadcast address"),
        ] {
            let request = PoolRequest {
                gateway: Some(ip(gateway)),
                ..req("10.0.0.0/24")
            };
            assert_eq!(
                message(Pool::new(&request, &[])),
                format!("cannot reserve the gateway: address already in use: {gateway} ({holder})")
            );
        }
        let request = PoolRequest {
            gateway: Some(ip("fd00::")),
            ..req("fd00::/64")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "cannot reserve the gateway: address already in use: fd00:: \
             (the subnet-router anycast address)"
        );
    }

    // Aux addresses

    #[test]
    fn aux_addresses_are_never_handed_out() {
        let request = PoolRequest {
            aux: BTreeMap::from([("a".into(), ip("10.0.0.1")), ("b".into(), ip("10.0.0.3"))]),
            ..req("10.0.0.0/29")
        };
        let mut pool = create(&request);
        let got: Vec<_> = std::iter::from_fn(|| pool.allocate(None).ok()).collect();
        assert_eq!(
            got,
            [
                ip("10.0.0.2"),
                ip("10.0.0.4"),
                ip("10.0.0.5"),
                ip("10.0.0.6")
            ]
        );
        assert_eq!(
            message(pool.allocate(Some(ip("10.0.0.3")))),
            "address already in use: 10.0.0.3 (aux address \"b\")"
        );
    }

    #[test]
    fn aux_outside_subnet_is_refused() {
        let request = PoolRequest {
            aux: BTreeMap::from([("host".into(), ip("10.9.0.1"))]),
            ..req("10.0.0.0/24")
        };
        let err = Pool::new(&request, &[]).unwrap_err();
        assert_eq!(
            err,
            IpamError::AuxOutsideSubnet {
                name: "host".into(),
                ip: ip("10.9.0.1"),
                subnet: net("10.0.0.0/24"),
            }
        );
        assert_eq!(
            err.to_string(),
            "aux address host=10.9.0.1 must belong to the subnet 10.0.0.0/24"
        );
    }

    #[test]
    fn aux_of_the_other_family_is_refused() {
        let request = PoolRequest {
            aux: BTreeMap::from([("host".into(), ip("10.0.0.1"))]),
            ..req("fd00::/64")
        };
        assert_eq!(
            message(Pool::new(&request, &[])),
            "aux address \"host\" 10.0.0.1 is IPv4 but the subnet fd00::/64 is IPv6"
        );
    }

    #[test]
    fn aux_on_the_gateway_another_aux_or_a_reserved_address_is_refused() {
        let cases = [
            (
                BTreeMap::from([("host".into(), ip("10.0.0.1"))]),
                "cannot reserve aux address \"host\": address already in use: 10.0.0.1 \
                 (the gateway)",
            ),
            (
                BTreeMap::from([("a".into(), ip("10.0.0.9")), ("b".into(), ip("10.0.0.9"))]),
                "cannot reserve aux address \"b\": address already in use: 10.0.0.9 \
                 (aux address \"a\")",
            ),
            (
                BTreeMap::from([("host".into(), ip("10.0.0.255"))]),
                "cannot reserve aux address \"host\": address already in use: 10.0.0.255 \
                 (the broadcast address)",
            ),
        ];
        for (aux, want) in cases {
            let request = PoolRequest {
                gateway: Some(ip("10.0.0.1")),
                aux,
                ..req("10.0.0.0/24")
            };
            assert_eq!(message(Pool::new(&request, &[])), want);
        }
    }

    #[test]
    fn add_aux_takes_a_free_address_of_the_subnet() {
        let mut pool = create(&bridge("10.0.0.0/24"));
        let endpoint = pool.allocate(None).unwrap();
        assert_eq!(
            pool.add_aux("host", Some(ip("10.0.0.200"))),
            Ok(ip("10.0.0.200"))
        );
        assert_eq!(pool.aux().get("host"), Some(&ip("10.0.0.200")));
        assert_eq!(
            message(pool.add_aux("shim", Some(endpoint))),
            "cannot reserve aux address \"shim\": address already in use: 10.0.0.2 (an endpoint)"
        );
        assert_eq!(
            message(pool.add_aux("shim", Some(ip("10.0.1.1")))),
            "aux address shim=10.0.1.1 must belong to the subnet 10.0.0.0/24"
        );
        assert_eq!(
            message(pool.add_aux("host", Some(ip("10.0.0.201")))),
            "aux address \"host\" already exists (10.0.0.200)"
        );
    }

    #[test]
    fn add_aux_without_address_takes_a_high_one_outside_the_range() {
        let with_range = |range: Option<&str>| {
            let request = PoolRequest {
                ip_range: range.map(net),
                ..req("10.0.0.0/24")
            };
            create(&request).add_aux("host", None).unwrap()
        };
        assert_eq!(with_range(None), ip("10.0.0.254"));
        assert_eq!(with_range(Some("10.0.0.0/25")), ip("10.0.0.254"));
        assert_eq!(with_range(Some("10.0.0.128/25")), ip("10.0.0.127"));
        assert_eq!(with_range(Some("10.0.0.64/26")), ip("10.0.0.254"));
        assert_eq!(with_range(Some("10.0.0.0/24")), ip("10.0.0.254"));
    }

    #[test]
    fn add_aux_without_address_falls_back_to_the_range() {
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.0/30")),
            aux: BTreeMap::from([("x".into(), ip("10.0.0.1")), ("y".into(), ip("10.0.0.2"))]),
            ..req("10.0.0.0/30")
        };
        let mut pool = create(&request);
        assert_eq!(
            message(pool.add_aux("host", None)),
            "no available addresses in pool 10.0.0.0/30"
        );
        pool.remove_aux("y");
        assert_eq!(pool.add_aux("host", None), Ok(ip("10.0.0.2")));

        let request = PoolRequest {
            ip_range: Some(net("10.0.0.4/30")),
            aux: BTreeMap::from([("x".into(), ip("10.0.0.1")), ("y".into(), ip("10.0.0.2"))]),
            ..req("10.0.0.0/29")
        };
        let mut pool = create(&request);
        assert_eq!(pool.add_aux("a", None), Ok(ip("10.0.0.3")));
        assert_eq!(pool.add_aux("b", None), Ok(ip("10.0.0.6")));
    }

    #[test]
    fn removed_aux_address_can_be_handed_out() {
        let request = PoolRequest {
            aux: BTreeMap::from([("host".into(), ip("10.0.0.1"))]),
            ..req("10.0.0.0/24")
        };
        let mut pool = create(&request);
        assert_eq!(pool.remove_aux("host"), Some(ip("10.0.0.1")));
        assert_eq!(pool.remove_aux("host"), None);
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.1")));
    }

    // Allocation

    #[test]
    fn allocation_is_lowest_free_and_reuses_at_once() {
        let mut pool = create(&bridge("10.0.0.0/24"));
        for last in 2..=5 {
            assert_eq!(pool.allocate(None), Ok(IpAddr::from([10, 0, 0, last])));
        }
        assert!(pool.release(ip("10.0.0.3")));
        assert!(!pool.release(ip("10.0.0.3")), "not allocated any more");
        assert!(!pool.release(ip("10.0.0.1")), "the gateway is no endpoint");
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.3")));
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.6")));
        let allocated: Vec<_> = pool.allocated().collect();
        assert_eq!(allocated.len(), 5);
        assert_eq!(allocated.first(), Some(&ip("10.0.0.2")));
    }

    #[test]
    fn dynamic_addresses_stay_in_the_range() {
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.16/30")),
            ..bridge("10.0.0.0/24")
        };
        let mut pool = create(&request);
        assert_eq!(pool.gateway(), Some(ip("10.0.0.16")));
        let got: Vec<_> = std::iter::from_fn(|| pool.allocate(None).ok()).collect();
        assert_eq!(got, [ip("10.0.0.17"), ip("10.0.0.18"), ip("10.0.0.19")]);
        let err = pool.allocate(None).unwrap_err();
        assert_eq!(err, IpamError::Exhausted(net("10.0.0.16/30")));
        assert_eq!(
            err.to_string(),
            "no available addresses in pool 10.0.0.16/30"
        );
    }

    #[test]
    fn static_address_may_be_outside_the_range() {
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.128/25")),
            ..req("10.0.0.0/24")
        };
        let mut pool = create(&request);
        assert_eq!(pool.allocate(Some(ip("10.0.0.5"))), Ok(ip("10.0.0.5")));
        assert_eq!(pool.allocate(None), Ok(ip("10.0.0.128")));
        assert!(pool.contains(ip("10.0.0.5")));
        assert_eq!(pool.allocated().count(), 2);
    }

    #[test]
    fn static_address_outside_the_subnet_is_refused() {
        let mut pool = create(&req("10.0.0.0/24"));
        let err = pool.allocate(Some(ip("10.1.0.5"))).unwrap_err();
        assert_eq!(
            err,
            IpamError::NotInSubnet {
                ip: ip("10.1.0.5"),
                subnet: net("10.0.0.0/24"),
            }
        );
        assert_eq!(
            err.to_string(),
            "no configured subnet contains IP 10.1.0.5 (the network's subnet is 10.0.0.0/24)"
        );
        assert!(!pool.contains(ip("10.1.0.5")));
    }

    #[test]
    fn static_address_of_the_other_family_is_refused() {
        let mut pool = create(&req("10.0.0.0/24"));
        assert_eq!(
            message(pool.allocate(Some(ip("fd00::5")))),
            "address fd00::5 is IPv6 but the subnet 10.0.0.0/24 is IPv4"
        );
    }

    #[test]
    fn static_address_taken_is_refused_saying_by_what() {
        let request = PoolRequest {
            aux: BTreeMap::from([("host".into(), ip("10.0.0.9"))]),
            ..bridge("10.0.0.0/24")
        };
        let mut pool = create(&request);
        assert_eq!(pool.allocate(Some(ip("10.0.0.5"))), Ok(ip("10.0.0.5")));
        for (taken, holder) in [
            ("10.0.0.0", Holder::NetworkAddress),
            ("10.0.0.255", Holder::BroadcastAddress),
            ("10.0.0.1", Holder::Gateway),
            ("10.0.0.9", Holder::Aux("host".into())),
            ("10.0.0.5", Holder::Endpoint),
        ] {
            let err = pool.allocate(Some(ip(taken))).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("address already in use: {taken} ({holder})")
            );
            assert_eq!(
                err,
                IpamError::AddressInUse {
                    ip: ip(taken),
                    holder,
                    wanted_by: None,
                }
            );
        }
    }

    #[test]
    fn small_ipv4_subnets() {
        // /30: network and broadcast reserved, two usable.
        let mut pool30 = create(&req("10.0.0.0/30"));
        assert_eq!(pool30.allocate(None), Ok(ip("10.0.0.1")));
        assert_eq!(pool30.allocate(None), Ok(ip("10.0.0.2")));
        assert_eq!(
            message(pool30.allocate(None)),
            "no available addresses in pool 10.0.0.0/30"
        );
        // /31: both usable (RFC 3021).
        let mut pool31 = create(&req("10.0.0.0/31"));
        assert_eq!(pool31.allocate(None), Ok(ip("10.0.0.0")));
        assert_eq!(pool31.allocate(None), Ok(ip("10.0.0.1")));
        assert!(pool31.allocate(None).is_err());
        // /32: the one address.
        let mut pool32 = create(&req("10.0.0.7/32"));
        assert_eq!(pool32.allocate(None), Ok(ip("10.0.0.7")));
        assert!(pool32.allocate(None).is_err());
        // Auto gateway on a /31 takes the first address.
        assert_eq!(
            create(&bridge("10.0.0.0/31")).gateway(),
            Some(ip("10.0.0.0"))
        );
    }

    #[test]
    fn top_of_the_ipv4_space() {
        let mut pool = create(&bridge("255.255.255.252/30"));
        assert_eq!(pool.gateway(), Some(ip("255.255.255.253")));
        assert_eq!(pool.allocate(None), Ok(ip("255.255.255.254")));
        assert!(pool.allocate(None).is_err());
        assert_eq!(
            pool.add_aux("x", None),
            Err(IpamError::Exhausted(net("255.255.255.252/30")))
        );
    }

    #[test]
    fn ipv6_64_allocates_from_the_bottom_at_once() {
        let mut pool = create(&bridge("fd00:1::/64"));
        assert_eq!(pool.gateway(), Some(ip("fd00:1::1")));
        for n in 2..1000u16 {
            let want = IpAddr::V6(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, n));
            assert_eq!(pool.allocate(None), Ok(want));
        }
        assert!(pool.release(ip("fd00:1::7")));
        assert_eq!(pool.allocate(None), Ok(ip("fd00:1::7")));
        assert_eq!(
            pool.add_aux("host", None),
            Ok(ip("fd00:1::ffff:ffff:ffff:ffff"))
        );
        assert_eq!(
            message(pool.allocate(Some(ip("fd00:1::")))),
            "address already in use: fd00:1:: (the subnet-router anycast address)"
        );
    }

    #[test]
    fn small_ipv6_subnets() {
        // /126: only the first address is reserved; there is no broadcast.
        let mut pool126 = create(&req("fd00::/126"));
        let got: Vec<_> = std::iter::from_fn(|| pool126.allocate(None).ok()).collect();
        assert_eq!(got, [ip("fd00::1"), ip("fd00::2"), ip("fd00::3")]);
        // /127 and /128: every address counts.
        let mut pool127 = create(&req("fd00::/127"));
        assert_eq!(pool127.allocate(None), Ok(ip("fd00::")));
        assert_eq!(pool127.allocate(None), Ok(ip("fd00::1")));
        assert_eq!(
            message(pool127.allocate(None)),
            "no available addresses in pool fd00::/127"
        );
        let mut pool128 = create(&req("fd00::5/128"));
        assert_eq!(pool128.allocate(None), Ok(ip("fd00::5")));
        assert!(pool128.allocate(None).is_err());
    }

    #[test]
    fn the_whole_ipv6_space_does_not_overflow() {
        let mut all = create(&bridge("::/0"));
        assert_eq!(all.gateway(), Some(ip("::1")));
        assert_eq!(all.allocate(None), Ok(ip("::2")));
        let top = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(all.add_aux("host", None), Ok(top));
        assert_eq!(
            all.add_aux("next", None),
            Ok(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"))
        );
        assert_eq!(all.allocate(Some(ip("ffff::1"))), Ok(ip("ffff::1")));

        // A range at the very top, filled up.
        let request = PoolRequest {
            ip_range: Some(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126")),
            ..bridge("ffff::/16")
        };
        let mut high = create(&request);
        assert_eq!(
            high.gateway(),
            Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc"))
        );
        let got: Vec<_> = std::iter::from_fn(|| high.allocate(None).ok()).collect();
        assert_eq!(got.last(), Some(&top));
        assert_eq!(got.len(), 3);
        assert_eq!(
            high.add_aux("host", None),
            Ok(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffb"))
        );
    }

    #[test]
    fn pool_survives_a_json_round_trip() {
        let request = PoolRequest {
            ip_range: Some(net("10.0.0.128/25")),
            aux: BTreeMap::from([("host".into(), ip("10.0.0.200"))]),
            ..bridge("10.0.0.0/24")
        };
        let mut pool = create(&request);
        pool.allocate(None).unwrap();
        pool.allocate(Some(ip("10.0.0.7"))).unwrap();
        let json = serde_json::to_string(&pool).unwrap();
        assert_eq!(
            json,
            r#"{"subnet":"10.0.0.0/24","ip_range":"10.0.0.128/25","gateway":"10.0.0.128","aux":{"host":"10.0.0.200"},"allocated":["10.0.0.7","10.0.0.129"]}"#
        );
        let back: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pool);
        let bare: Pool = serde_json::from_str(r#"{"subnet":"fd00::/64"}"#).unwrap();
        assert_eq!(bare, create(&req("fd00::/64")));
    }

    // Properties

    /// The model: what Docker reserves, written out independently of `reserved`.
    fn is_reserved(subnet: IpNet, ip: IpAddr) -> bool {
        match subnet {
            IpNet::V4(_) if subnet.prefix_len() <= 30 => {
                ip == subnet.network() || ip == subnet.broadcast()
            }
            IpNet::V6(_) if subnet.prefix_len() <= 126 => ip == subnet.network(),
            _ => false,
        }
    }

    /// The `n`th address of `net` (wrapping around it).
    fn nth(net: IpNet, n: u128) -> IpAddr {
        let host_bits = net.max_prefix_len() - net.prefix_len();
        let size = 1u128.checked_shl(u32::from(host_bits)).unwrap_or(0);
        let offset = if size == 0 { n } else { n % size };
        let first = number(net.network());
        match net {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from_bits((first + offset) as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(first + offset)),
        }
    }

    fn addresses(net: IpNet) -> impl Iterator<Item = IpAddr> {
        let (first, last) = bounds(net);
        (first..=last).map(move |n| nth(net, n - first))
    }

    #[derive(Debug, Clone)]
    enum Op {
        Dynamic,
        Static(u128),
        StaticAnywhere(u128),
        Release(u128),
        ReleaseHeld(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => Just(Op::Dynamic),
            2 => any::<u128>().prop_map(Op::Static),
            1 => any::<u128>().prop_map(Op::StaticAnywhere),
            1 => any::<u128>().prop_map(Op::Release),
            2 => any::<usize>().prop_map(Op::ReleaseHeld),
        ]
    }

    fn subnet() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 20u8..=32).prop_map(|(a, len)| {
                IpNet::new(Ipv4Addr::from_bits(a).into(), len)
                    .unwrap()
                    .trunc()
            }),
            (any::<u128>(), 120u8..=128).prop_map(|(a, len)| {
                IpNet::new(Ipv6Addr::from_bits(a).into(), len)
                    .unwrap()
                    .trunc()
            }),
        ]
    }

    #[derive(Debug, Clone)]
    struct Case {
        subnet: IpNet,
        range: Option<(u8, u128)>,
        gateway: Option<u128>,
        aux: Vec<u128>,
        auto_gateway: bool,
        ops: Vec<Op>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            subnet(),
            proptest::option::of((any::<u8>(), any::<u128>())),
            proptest::option::of(any::<u128>()),
            proptest::collection::vec(any::<u128>(), 0..4),
            any::<bool>(),
            proptest::collection::vec(op(), 0..150),
        )
            .prop_map(|(subnet, range, gateway, aux, auto_gateway, ops)| Case {
                subnet,
                range,
                gateway,
                aux,
                auto_gateway,
                ops,
            })
    }

    /// A valid request from the case: reserved, duplicate and gateway aux addresses dropped.
    fn request(case: &Case) -> PoolRequest {
        let subnet = case.subnet;
        let ip_range = case.range.map(|(extra, offset)| {
            let spare = subnet.max_prefix_len() - subnet.prefix_len();
            let len = subnet.prefix_len() + extra % (spare + 1);
            IpNet::new(nth(subnet, offset), len).unwrap().trunc()
        });
        let gateway = case
            .gateway
            .map(|n| nth(subnet, n))
            .filter(|&gw| !is_reserved(subnet, gw));
        let mut aux = BTreeMap::new();
        for (i, &n) in case.aux.iter().enumerate() {
            let ip = nth(subnet, n);
            if !is_reserved(subnet, ip) && gateway != Some(ip) && !aux.values().any(|&a| a == ip) {
                aux.insert(format!("aux{i}"), ip);
            }
        }
        PoolRequest {
            subnet: Some(subnet),
            ip_range,
            gateway,
            aux,
            auto_gateway: case.auto_gateway,
        }
    }

    proptest! {
        #[test]
        fn allocation_matches_the_model(case in case()) {
            let request = request(&case);
            let subnet = case.subnet;
            let everywhere = IpNet::new(subnet.network(), 0).unwrap().trunc();
            let range = request.ip_range.unwrap_or(subnet);
            let aux: BTreeSet<IpAddr> = request.aux.values().copied().collect();
            let fixed_free = |ip: IpAddr| !is_reserved(subnet, ip) && !aux.contains(&ip);

            // The gateway: as given, else (bridge) the lowest free of the range, else the subnet.
            let auto = || {
                addresses(range).find(|&ip| fixed_free(ip))
                    .or_else(|| addresses(subnet).find(|&ip| fixed_free(ip)))
            };
            let gateway = match request.gateway {
                Some(gateway) => Some(gateway),
                None if case.auto_gateway => match auto() {
                    Some(gateway) => Some(gateway),
                    None => {
                        let result = Pool::new(&request, &[]);
                        prop_assert_eq!(result, Err(IpamError::Exhausted(subnet)));
                        return Ok(());
                    }
                },
                None => None,
            };
            let mut pool = Pool::new(&request, &[]).unwrap();
            prop_assert_eq!(pool.gateway(), gateway);

            let mut held = BTreeSet::new();
            let free = |held: &BTreeSet<IpAddr>, ip: IpAddr| {
                fixed_free(ip) && gateway != Some(ip) && !held.contains(&ip)
            };
            for op in case.ops {
                match op {
                    Op::Dynamic => match pool.allocate(None) {
                        Ok(ip) => {
                            prop_assert!(range.contains(&ip), "{ip} outside {range}");
                            prop_assert!(!is_reserved(subnet, ip), "{ip} is reserved");
                            prop_assert!(gateway != Some(ip), "{ip} is the gateway");
                            prop_assert!(!aux.contains(&ip), "{ip} is an aux address");
                            prop_assert!(held.insert(ip), "{ip} handed out twice");
                            let lower = addresses(range).take_while(|&a| a != ip);
                            prop_assert!(lower.filter(|&a| free(&held, a)).count() == 0);
                        }
                        Err(err) => {
                            prop_assert_eq!(err, IpamError::Exhausted(range));
                            let free_left = addresses(range).filter(|&a| free(&held, a));
                            prop_assert_eq!(free_left.count(), 0);
                        }
                    },
                    Op::Static(n) | Op::StaticAnywhere(n) => {
                        let within = match op {
                            Op::Static(_) => subnet,
                            _ => everywhere,
                        };
                        let ip = nth(within, n);
                        let result = pool.allocate(Some(ip));
                        if !subnet.contains(&ip) {
                            prop_assert_eq!(result, Err(IpamError::NotInSubnet { ip, subnet }));
                        } else if free(&held, ip) {
                            prop_assert_eq!(result, Ok(ip));
                            held.insert(ip);
                        } else {
                            let in_use = matches!(
                                result,
                                Err(IpamError::AddressInUse { ip: at, .. }) if at == ip
                            );
                            prop_assert!(in_use, "{ip}: {result:?}");
                        }
                    }
                    Op::Release(n) => {
                        let ip = nth(subnet, n);
                        prop_assert_eq!(pool.release(ip), held.remove(&ip));
                    }
                    Op::ReleaseHeld(i) => {
                        if let Some(&ip) = held.iter().nth(i % held.len().max(1)) {
                            prop_assert!(pool.release(ip));
                            held.remove(&ip);
                        }
                    }
                }
            }
            prop_assert_eq!(pool.allocated().collect::<BTreeSet<_>>(), held);
        }
    }
}
