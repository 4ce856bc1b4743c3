//! The operations behind l2ctl's commands. Each one changes the saved state first (so a crash
//! never loses an address it handed out), then brings the kernel and the daemon to that state
//! with steps that can run again without harm; a step that fails undoes the operation.
//!
//! Where things live: the switch's end of every link, a bridge network's host port and a
//! macvlan network's host access sit in the host namespace (`--host-netns`, default l2ctl's
//! own), as docker0 and its veths do; each workload has a named namespace of its own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use l2sw::config::{Named, NetworkSpec, PortKind, PortRole, PortSpec, VlanSpec};
use l2sw::fwd::MacvlanMode;
use l2sw::wire::Mac;
use serde_json::{Value, json};

use crate::args::{AttachArgs, NetworkArgs};
use crate::client::{Client, ClientError};
use crate::ipam::{self, InUse, IpamError, Pool, PoolRequest};
use crate::nl::{self, Links, NlError};
use crate::state::{
    Driver, Endpoint, EndpointKind, HOST_ACCESS_AUX, HostAccess, Network, Parent, Sandbox, State,
    StateError, Store, Workload,
};
use l2sw::api::ErrorKind;

/// The predefined bridge network's host port, as docker0 is Docker's.
pub const DEFAULT_BRIDGE_PORT: &str = "l2sw0";

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The request breaks a rule; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// An address could not be handed out or a pool made.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// The saved state.
    #[error(transparent)]
    State(#[from] StateError),
    /// The daemon.
    #[error(transparent)]
    Daemon(#[from] ClientError),
    /// A link, address, route or namespace.
    #[error(transparent)]
    Netlink(#[from] NlError),
}

fn refused<T>(what: impl Into<String>) -> Result<T, CtlError> {
    Err(CtlError::Refused(what.into()))
}

/// Ignores "already exists", so that a step can run again.
fn again(r: Result<(), NlError>) -> Result<(), NlError> {
    match r {
        Err(e) if e.is_exists() => Ok(()),
        other => other,
    }
}

/// Ignores "not found", so that an undo can run again.
fn gone(r: Result<(), NlError>) -> Result<(), NlError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// `n` random bytes as hex, for link names and ids.
fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        // Never reached on Linux; the clock still gives distinct names.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = (t >> (8 * (i % 16))) as u8 ^ (std::process::id() >> (i % 4)) as u8;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random locally administered unicast MAC.
fn random_mac() -> Mac {
    let hex = random_hex(6);
    let mut m = Mac::ZERO;
    for (i, byte) in m.0.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    m.0[0] = (m.0[0] & 0xfc) | 0x02;
    m
}

/// Docker's classic MAC for an IPv4 address: 02:42 and the address's four bytes.
fn mac_for(ip: Option<IpAddr>) -> Mac {
    match ip {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            Mac([0x02, 0x42, o[0], o[1], o[2], o[3]])
        }
        _ => random_mac(),
    }
}

fn valid_name(what: &str, name: &str) -> Result<(), CtlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        refused(format!(
            "invalid {what} name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ))
    }
}

/// l2ctl's view of the world: the locked state, the daemon, the host namespace.
#[derive(Debug)]
pub struct Ctl {
    store: Store,
    /// The desired state.
    pub state: State,
    client: Client,
    host: Links,
}

impl Ctl {
    /// Opens and locks the state directory (making the predefined networks the first time)
    /// and prepares a client of the daemon on `socket`.
    pub fn open(dir: &Path, socket: &Path, host_netns: Option<&str>) -> Result<Ctl, CtlError> {
        let store = Store::open(dir)?;
        let host = Links::new(host_netns);
        let state = match store.load()? {
            Some(s) => {
                if host_netns.is_some() && s.host_netns.as_deref() != host_netns {
                    return refused(format!(
                        "the state in {} belongs to host namespace {:?}, not {:?}: use another --state-dir",
                        dir.display(),
                        s.host_netns.as_deref().unwrap_or("(l2ctl's own)"),
                        host_netns.unwrap_or_default(),
                    ));
                }
                s
            }
            None => {
                let s = predefined(host_netns, &host)?;
                store.save(&s)?;
                s
            }
        };
        let host = Links::new(state.host_netns.as_deref());
        Ok(Ctl {
            store,
            state,
            client: Client::new(socket),
            host,
        })
    }

    /// The daemon's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The host namespace's links.
    pub fn host(&self) -> &Links {
        &self.host
    }

    fn save(&self) -> Result<(), CtlError> {
        Ok(self.store.save(&self.state)?)
    }

    fn network(&self, name: &str) -> Result<&Network, CtlError> {
        self.state.networks.get(name).ok_or_else(|| {
            CtlError::Refused(format!(
                "network {name:?} not found (see `l2ctl network ls`)"
            ))
        })
    }

    // ---- networks ----

    /// `l2ctl network create`.
    pub fn create_network(
        &mut self,
        req: &NetworkArgs,
        origin: Option<&str>,
    ) -> Result<&Network, CtlError> {
        valid_name("network", &req.name)?;
        if self.state.networks.contains_key(&req.name) {
            return refused(format!("network with name {} already exists", req.name));
        }
        if !req.driver.switched() {
            return refused(format!(
                "only one instance of \"{}\" network is allowed, and it is predefined",
                req.driver.name()
            ));
        }
        let mode = check_mode(req)?;
        let parent = match &req.parent {
            Some(p) => Some(self.check_parent(req, p, mode)?),
            None => None,
        };
        let internal = req.internal || (req.driver != Driver::Bridge && parent.is_none());
        if req.internal && parent.is_some() {
            return refused(format!(
                "an --internal {} network has no parent: drop --parent {}",
                req.driver.name(),
                req.parent.as_deref().unwrap_or_default()
            ));
        }
        if req.hairpin && req.driver != Driver::Bridge {
            return refused("--hairpin applies to bridge networks (it is a bridge port flag)");
        }
        let pools = self.make_pools(req, internal)?;
        let id = random_hex(6);
        let host_port =
            (req.driver == Driver::Bridge && !internal).then(|| format!("l2br-{}", &id[..10]));
        let net = Network {
            name: req.name.clone(),
            id,
            driver: req.driver,
            mode,
            parent,
            internal,
            hairpin: req.hairpin,
            pools,
            predefined: false,
            active: true,
            host_port,
            mac: Some(random_mac()),
            host_access: None,
            origin: origin.map(str::to_owned),
        };
        let name = net.name.clone();
        self.state.networks.insert(name.clone(), net);
        self.save()?;
        if let Err(e) = self.apply_network(&name) {
            self.undo_network(&name);
            self.state.networks.remove(&name);
            self.save()?;
            return Err(e);
        }
        self.network(&name)
    }

    fn check_parent(
        &self,
        req: &NetworkArgs,
        p: &str,
        mode: Option<MacvlanMode>,
    ) -> Result<Parent, CtlError> {
        if req.driver == Driver::Bridge {
            return refused(
                "--parent applies to macvlan and ipvlan networks; a bridge has no parent",
            );
        }
        let parent = match p.rsplit_once('.') {
            Some((iface, vid)) if vid.chars().all(|c| c.is_ascii_digit()) => {
                let vid = vid
                    .parse::<u16>()
                    .ok()
                    .filter(|v| (1..=4094).contains(v))
                    .ok_or_else(|| {
                        CtlError::Refused(format!(
                            "parent {p}: vlan id must be between 1-4094, not {vid}"
                        ))
                    })?;
                Parent {
                    interface: iface.to_owned(),
                    vid: Some(vid),
                }
            }
            _ => Parent {
                interface: p.to_owned(),
                vid: None,
            },
        };
        if !self.host.exists(&parent.interface)? {
            return refused(format!(
                "parent interface {} does not exist in the host namespace",
                parent.interface
            ));
        }
        let passthru = |n: &Network| n.macvlan_mode() == Some(MacvlanMode::Passthru);
        let this_passthru = req.driver == Driver::Macvlan && mode == Some(MacvlanMode::Passthru);
        for other in self.state.networks.values() {
            let same = other.parent.as_ref().map(|o| &o.interface) == Some(&parent.interface);
            if same && (passthru(other) || this_passthru) {
                return refused(format!(
                    "parent {} is already used by network {:?}: a passthru network cannot share its parent",
                    parent.interface, other.name
                ));
            }
            if same && other.parent.as_ref().map(|o| o.vid) == Some(parent.vid) {
                return refused(format!(
                    "network {:?} already uses parent {parent}: two networks on one parent need different VLANs",
                    other.name
                ));
            }
        }
        Ok(parent)
    }

    /// What addresses are taken: other networks' subnets, and (for a bridge, whose host port
    /// adds a route) the host's routes.
    fn in_use(&self, with_routes: bool) -> Result<Vec<InUse>, CtlError> {
        let mut v: Vec<InUse> = self
            .state
            .networks
            .values()
            .flat_map(|n| {
                n.pools.iter().map(|p| InUse {
                    net: p.subnet(),
                    owner: format!("network {:?}", n.name),
                })
            })
            .collect();
        if with_routes {
            let ours: Vec<IpNet> = v.iter().map(|u| u.net).collect();
            v.extend(
                self.host
                    .routes()?
                    .into_iter()
                    .filter(|r| !ours.contains(r))
                    .map(|net| InUse {
                        net,
                        owner: "a route on the host".into(),
                    }),
            );
        }
        Ok(v)
    }

    fn make_pools(&self, req: &NetworkArgs, internal: bool) -> Result<Vec<Pool>, CtlError> {
        let bridge = req.driver == Driver::Bridge;
        let subnets = req
            .subnet
            .iter()
            .map(|s| ipam::parse_cidr("subnet", s))
            .collect::<Result<Vec<_>, _>>()?;
        let ranges = req
            .ip_range
            .iter()
            .map(|s| ipam::parse_cidr("ip-range", s))
            .collect::<Result<Vec<_>, _>>()?;
        if subnets.is_empty() && !(req.gateway.is_empty() && ranges.is_empty()) {
            return refused("--gateway and --ip-range need --subnet");
        }
        let v4 = subnets.iter().filter(|s| s.addr().is_ipv4()).count();
        if v4 > 1 || subnets.len() - v4 > 1 {
            return refused("give at most one IPv4 and one IPv6 --subnet");
        }
        let with_routes = bridge && !internal;
        let mut pools = Vec::new();
        let family_of = |ip: IpAddr| ip.is_ipv4();
        let mut in_use = self.in_use(with_routes)?;
        let subnets = if subnets.is_empty() {
            let all = self.in_use(true)?;
            vec![ipam::default_pool(&all)?]
        } else {
            subnets
        };
        for subnet in subnets {
            let fam = subnet.addr().is_ipv4();
            let pick = |ip: IpAddr| family_of(ip) == fam;
            let ranges: Vec<_> = ranges.iter().filter(|r| pick(r.addr())).collect();
            let gateways: Vec<_> = req.gateway.iter().filter(|g| pick(**g)).collect();
            if ranges.len() > 1 || gateways.len() > 1 {
                return refused(format!(
                    "subnet {subnet}: give at most one --ip-range and one --gateway per family"
                ));
            }
            let request = PoolRequest {
                subnet: Some(subnet),
                ip_range: ranges.first().map(|r| **r),
                gateway: gateways.first().map(|g| **g),
                aux: req
                    .aux_address
                    .iter()
                    .filter(|a| pick(a.ip))
                    .map(|a| (a.name.clone(), a.ip))
                    .collect(),
                auto_gateway: bridge,
            };
            let pool = Pool::new(&request, &in_use)?;
            in_use.push(InUse {
                net: pool.subnet(),
                owner: format!("network {:?}", req.name),
            });
            pools.push(pool);
        }
        if let Some(stray) = req.gateway.iter().find(|g| {
            !pools
                .iter()
                .any(|p| p.subnet().addr().is_ipv4() == g.is_ipv4())
        }) {
            return refused(format!("gateway {stray}: no --subnet of its family"));
        }
        for a in &req.aux_address {
            if !pools.iter().any(|p| p.aux().get(&a.name) == Some(&a.ip)) {
                return refused(format!(
                    "auxiliary address {}={} must belong to a subnet of the network",
                    a.name, a.ip
                ));
            }
        }
        Ok(pools)
    }

    /// `l2ctl network rm`.
    pub fn remove_network(&mut self, name: &str) -> Result<(), CtlError> {
        let net = self.network(name)?;
        if net.predefined {
            return refused(format!(
                "{name} is a pre-defined network and cannot be removed"
            ));
        }
        let users: Vec<_> = self
            .state
            .endpoints_of(name)
            .iter()
            .map(|(w, _)| w.name.clone())
            .collect();
        if !users.is_empty() {
            return refused(format!(
                "error while removing network: network {name} has active endpoints ({}): detach them first",
                users.join(", ")
            ));
        }
        if net.active {
            match self.client.remove_network(name) {
                Err(e) if !e.is_no_network() => return Err(e.into()),
                _ => {}
            }
        }
        self.undo_network(name);
        self.state.networks.remove(name);
        self.save()
    }

    /// Removes what the network put on the host besides its daemon network (host access).
    fn undo_network(&self, name: &str) {
        if let Some(ha) = self
            .state
            .networks
            .get(name)
            .and_then(|n| n.host_access.as_ref())
        {
            let _ = gone(self.host.delete(&ha.interface));
        }
    }

    /// The ports a network has of its own: host port, uplink, host access.
    fn fixed_ports(&self, net: &Network) -> Vec<PortSpec> {
        let host_ns = self.state.host_netns.clone();
        let mut ports = Vec::new();
        if let Some(hp) = &net.host_port {
            ports.push(PortSpec {
                interface: hp.clone(),
                name: Some("host".into()),
                kind: Some(PortKind::Tap),
                netns: host_ns.clone(),
                role: PortRole::Host,
                mac: net.mac,
                ..PortSpec::default()
            });
        }
        if let Some(p) = &net.parent {
            ports.push(PortSpec {
                interface: p.interface.clone(),
                name: Some(p.to_string()),
                netns: host_ns.clone(),
                role: PortRole::Uplink,
                mac: self.host.mac(&p.interface).ok(),
                vlan: p.vid.map(|v| VlanSpec {
                    trunk: Some(vec![v]),
                    ..VlanSpec::default()
                }),
                ..PortSpec::default()
            });
        }
        if let Some(ha) = &net.host_access {
            let mut spec = self.sub_port(net, "host-access", &ha.port, ha.mac, &[ha.ip], &[]);
            spec.netns = host_ns;
            if spec.macvlan_mode.is_some() {
                spec.macvlan_mode = Some(MacvlanMode::Bridge);
            }
            ports.push(spec);
        }
        ports
    }

    /// A workload-facing port of `net` on `interface`.
    fn sub_port(
        &self,
        net: &Network,
        name: &str,
        interface: &str,
        mac: Mac,
        ips: &[IpAddr],
        source: &[Mac],
    ) -> PortSpec {
        let access = net.parent.as_ref().and_then(|p| p.vid).map(|v| VlanSpec {
            access: Some(v),
            ..VlanSpec::default()
        });
        let base = PortSpec {
            interface: interface.to_owned(),
            name: Some(name.to_owned()),
            vlan: access,
            ..PortSpec::default()
        };
        match net.driver {
            Driver::Macvlan => PortSpec {
                role: PortRole::Macvlan,
                mac: Some(mac),
                macvlan_mode: net.macvlan_mode(),
                source: (!source.is_empty()).then(|| source.to_vec()),
                ..base
            },
            Driver::Ipvlan => PortSpec {
                role: PortRole::Ipvlan,
                mac: Some(mac),
                ips: Some(ips.to_vec()),
                ..base
            },
            _ => PortSpec {
                role: PortRole::Bridge,
                hairpin: net.hairpin.then_some(true),
                ..base
            },
        }
    }

    /// Brings the daemon and the host to `name`'s network: its host-access link, the daemon
    /// network with its own ports, the host port's address. Runs again without harm.
    fn apply_network(&mut self, name: &str) -> Result<(), CtlError> {
        let net = self.network(name)?.clone();
        if !net.driver.switched() {
            return Ok(());
        }
        if let Some(ha) = &net.host_access {
            self.ensure_host_access_link(&net, ha)?;
        }
        let fixed = self.fixed_ports(&net);
        let running = self.client.networks()?;
        match running.iter().find(|n| n.name == net.name) {
            None => self.client.add_network(&NetworkSpec {
                name: net.name.clone(),
                mode: net.driver.network_mode().unwrap_or_default(),
                ipvlan_flag: net.ipvlan_flag(),
                ports: fixed,
                ..NetworkSpec::default()
            })?,
            Some(n) => {
                for p in fixed {
                    if !n.ports.iter().any(|q| Some(&q.name) == p.name.as_ref()) {
                        self.client.add_port(&net.name, &p)?;
                    }
                }
            }
        }
        if let (Some(hp), Some(mac)) = (&net.host_port, net.mac) {
            let addrs: Vec<_> = net
                .pools
                .iter()
                .filter_map(|p| p.gateway().map(|g| (g, p.subnet().prefix_len())))
                .collect();
            configure(&self.host, hp, mac, &addrs)?;
        }
        if !net.active {
            if let Some(n) = self.state.networks.get_mut(name) {
                n.active = true;
            }
            self.save()?;
        }
        Ok(())
    }

    fn ensure_host_access_link(&self, net: &Network, ha: &HostAccess) -> Result<(), CtlError> {
        if !self.host.exists(&ha.interface)? {
            again(self.host.create_veth(&ha.interface, &ha.port))?;
        }
        let prefix = if ha.ip.is_ipv4() { 32 } else { 128 };
        configure(&self.host, &ha.interface, ha.mac, &[(ha.ip, prefix)])?;
        self.host.set_up(&ha.port)?;
        if let Some(pool) = net
            .pools
            .iter()
            .find(|p| p.subnet().addr().is_ipv4() == ha.ip.is_ipv4())
        {
            let dest = pool.ip_range().unwrap_or(pool.subnet());
            again(self.host.add_route(dest, &ha.interface))?;
        }
        Ok(())
    }

    /// `l2ctl host-access NET`: the host's own bridge-mode sub-interface on a macvlan (or
    /// ipvlan) network, with an aux address and a route to the network's range.
    pub fn host_access(&mut self, name: &str) -> Result<HostAccess, CtlError> {
        let net = self.network(name)?.clone();
        if !matches!(net.driver, Driver::Macvlan | Driver::Ipvlan) {
            return refused(format!(
                "{name} is a {} network: host access is for macvlan and ipvlan networks (a bridge network gives the host its gateway port already)",
                net.driver.name()
            ));
        }
        if let Some(ha) = &net.host_access {
            return refused(format!(
                "network {name} already has host access: {} with {}",
                ha.interface, ha.ip
            ));
        }
        if net.macvlan_mode() == Some(MacvlanMode::Passthru) {
            return refused(format!(
                "network {name} is passthru: its one sub-interface owns the parent, there is no room for the host's"
            ));
        }
        let mac = match net.driver {
            Driver::Ipvlan => self.shared_mac(&net)?,
            _ => random_mac(),
        };
        let short = &net.id[..10];
        let n = self
            .state
            .networks
            .get_mut(name)
            .ok_or_else(|| CtlError::Refused(format!("network {name:?} not found")))?;
        let pool = n
            .pools
            .iter_mut()
            .find(|p| p.subnet().addr().is_ipv4())
            .ok_or_else(|| CtlError::Refused(format!("network {name} has no IPv4 subnet")))?;
        let ip = pool.add_aux(HOST_ACCESS_AUX, None)?;
        let ha = HostAccess {
            interface: format!("l2ha-{short}"),
            port: format!("l2hp-{short}"),
            mac,
            ip,
        };
        n.host_access = Some(ha.clone());
        self.save()?;
        if let Err(e) = self.apply_network(name) {
            self.undo_network(name);
            if let Some(n) = self.state.networks.get_mut(name) {
                n.host_access = None;
                if let Some(p) = n.pools.iter_mut().find(|p| p.subnet().addr().is_ipv4()) {
                    p.remove_aux(HOST_ACCESS_AUX);
                }
            }
            self.save()?;
            return Err(e);
        }
        Ok(ha)
    }

    /// The MAC every endpoint of an ipvlan network shares: the parent's.
    fn shared_mac(&self, net: &Network) -> Result<Mac, CtlError> {
        match &net.parent {
            Some(p) => Ok(self.host.mac(&p.interface)?),
            None => Ok(net.mac.unwrap_or_else(random_mac)),
        }
    }

    // ---- workloads ----

    /// `l2ctl attach`.
    pub fn attach(
        &mut self,
        workload: &str,
        req: &AttachArgs,
        origin: Option<&str>,
    ) -> Result<Option<Endpoint>, CtlError> {
        valid_name("workload", workload)?;
        let existing = self.state.workloads.get(workload);
        let sandbox = match req.network.as_str() {
            "none" => Some(Sandbox::None),
            "host" => Some(Sandbox::Host),
            n => n
                .strip_prefix("container:")
                .map(|o| Sandbox::Container(o.to_owned())),
        };
        if let Some(sandbox) = sandbox {
            if let Some(w) = existing {
                return refused(format!(
                    "workload {workload} is already networked ({}): {} cannot be combined with other networks",
                    describe(w),
                    req.network
                ));
            }
            if !req.ip.is_empty() || req.mac.is_some() || !req.source_mac.is_empty() {
                return refused(format!(
                    "--ip, --mac and --source-mac need a network with endpoints, not {}",
                    req.network
                ));
            }
            return self
                .attach_special(workload, sandbox, origin)
                .map(|()| None);
        }
        if let Some(w) = existing
            && w.sandbox != Sandbox::Own
        {
            return refused(match &w.sandbox {
                Sandbox::Container(o) => format!(
                    "workload {workload} shares the namespace of {o} (container:{o}): a workload sharing another's namespace cannot join other networks"
                ),
                _ => format!(
                    "workload {workload} is on the {} network, which cannot be combined with other networks",
                    describe(w)
                ),
            });
        }
        let net = self.network(&req.network)?.clone();
        if !net.driver.switched() {
            return refused(format!("network {} has no endpoints", net.name));
        }
        if existing.is_some_and(|w| w.endpoints.contains_key(&net.name)) {
            return refused(format!(
                "endpoint with name {workload} already exists in network {}",
                net.name
            ));
        }
        let ep = self.plan_endpoint(workload, &net, req, origin)?;
        let w = self
            .state
            .workloads
            .entry(workload.to_owned())
            .or_insert_with(|| Workload {
                name: workload.to_owned(),
                sandbox: Sandbox::Own,
                made_netns: false,
                endpoints: BTreeMap::new(),
                origin: origin.map(str::to_owned),
            });
        w.endpoints.insert(net.name.clone(), ep.clone());
        self.save()?;
        let done = self
            .apply_network(&net.name)
            .and_then(|()| self.apply_endpoint(workload, &net.name));
        if let Err(e) = done {
            let _ = self.undo_endpoint(workload, &net.name);
            self.forget_endpoint(workload, &net.name)?;
            return Err(e);
        }
        Ok(Some(ep))
    }

    fn attach_special(
        &mut self,
        workload: &str,
        sandbox: Sandbox,
        origin: Option<&str>,
    ) -> Result<(), CtlError> {
        let mut made = false;
        match &sandbox {
            Sandbox::None => {
                if nl::netns_exists(workload) {
                    return refused(format!(
                        "a namespace named {workload} already exists: pick another workload name"
                    ));
                }
                nl::netns_create(workload)?;
                made = true;
            }
            Sandbox::Container(other) => {
                let o = self.state.workloads.get(other).ok_or_else(|| {
                    CtlError::Refused(format!("container:{other}: no workload named {other}"))
                })?;
                if let Sandbox::Container(oo) = &o.sandbox {
                    return refused(format!(
                        "container:{other}: {other} itself shares {oo}'s namespace; join container:{oo}"
                    ));
                }
                if o.sandbox == Sandbox::Host {
                    return refused(format!(
                        "container:{other}: {other} is on the host network; use --network host"
                    ));
                }
            }
            Sandbox::Host | Sandbox::Own => {}
        }
        self.state.workloads.insert(
            workload.to_owned(),
            Workload {
                name: workload.to_owned(),
                sandbox,
                made_netns: made,
                endpoints: BTreeMap::new(),
                origin: origin.map(str::to_owned),
            },
        );
        self.save()
    }

    fn plan_endpoint(
        &mut self,
        workload: &str,
        net: &Network,
        req: &AttachArgs,
        origin: Option<&str>,
    ) -> Result<Endpoint, CtlError> {
        let mode = net.macvlan_mode();
        let source_mode = mode == Some(MacvlanMode::Source);
        if !req.source_mac.is_empty() && !source_mode {
            return refused("--source-mac is for source-mode macvlan networks");
        }
        if mode == Some(MacvlanMode::Passthru) && !self.state.endpoints_of(&net.name).is_empty() {
            return refused(format!(
                "network {} is passthru: it has room for one endpoint only",
                net.name
            ));
        }
        let shared = match (net.driver, mode) {
            (Driver::Ipvlan, _) | (Driver::Macvlan, Some(MacvlanMode::Passthru)) => {
                Some(self.shared_mac(net)?)
            }
            _ => None,
        };
        if let (Some(m), Some(s)) = (req.mac, shared)
            && m != s
        {
            return refused(format!(
                "--mac {m}: endpoints of {} network {} take the parent's MAC {s}",
                net.driver.name(),
                net.name
            ));
        }
        if let Some(m) = req.mac
            && !m.is_valid_source()
        {
            return refused(format!("--mac {m} is not a unicast address"));
        }
        // Addresses: one per pool, static where asked.
        let mut ips = Vec::new();
        let mut n = net.clone();
        for ip in &req.ip {
            let pool = n.pool_for(*ip).ok_or(IpamError::NotInSubnet {
                ip: *ip,
                subnet: net
                    .pools
                    .first()
                    .map(Pool::subnet)
                    .unwrap_or(IpNet::V4(Default::default())),
            })?;
            ips.push(pool.allocate(Some(*ip))?);
        }
        for pool in &mut n.pools {
            let fam = pool.subnet().addr().is_ipv4();
            if !ips.iter().any(|ip: &IpAddr| ip.is_ipv4() == fam) {
                ips.push(pool.allocate(None)?);
            }
        }
        let v4 = ips.iter().copied().find(IpAddr::is_ipv4);
        let mac = req.mac.or(shared).unwrap_or_else(|| mac_for(v4));
        let taken: Vec<&str> = self
            .state
            .workloads
            .get(workload)
            .map(|w| w.endpoints.values().map(|e| e.interface.as_str()).collect())
            .unwrap_or_default();
        let interface = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !taken.contains(&n.as_str()))
            .unwrap_or_default();
        let peer =
            (req.port == EndpointKind::Veth).then(|| format!("l2v-{}", &random_hex(6)[..11]));
        if let Some(slot) = self.state.networks.get_mut(&net.name) {
            slot.pools = n.pools;
        }
        Ok(Endpoint {
            interface,
            peer,
            kind: req.port,
            mac,
            ips,
            source_macs: req.source_mac.clone(),
            origin: origin.map(str::to_owned),
        })
    }

    /// Brings the kernel and the daemon to a workload's endpoint on `network`: its namespace,
    /// its link, the daemon's port, its MAC, addresses and routes. Runs again without harm.
    fn apply_endpoint(&mut self, workload: &str, network: &str) -> Result<(), CtlError> {
        let net = self.network(network)?.clone();
        let ep = self
            .workload(workload)?
            .endpoints
            .get(network)
            .cloned()
            .ok_or_else(|| CtlError::Refused(format!("{workload} is not attached to {network}")))?;
        if !nl::netns_exists(workload) {
            // A fresh workload, or ours and lost (a reboot): make it.
            nl::netns_create(workload)?;
            if let Some(w) = self.state.workloads.get_mut(workload) {
                w.made_netns = true;
            }
            self.save()?;
        }
        let inside = Links::new(Some(workload));
        let host_ns = self.state.host_netns.clone();
        let mut spec = self.sub_port(&net, workload, "", ep.mac, &ep.ips, &ep.source_macs);
        match (&ep.kind, &ep.peer) {
            (EndpointKind::Veth, Some(peer)) => {
                if !self.host.exists(peer)? {
                    let tmp = format!("l2w-{}", &peer[4..]);
                    let _ = gone(self.host.delete(&tmp));
                    self.host.create_veth(peer, &tmp)?;
                    self.host.move_to(&tmp, workload)?;
                    inside.rename(&tmp, &ep.interface)?;
                }
                self.host.set_up(peer)?;
                spec.interface = peer.clone();
                spec.netns = host_ns;
            }
            _ => {
                spec.interface = ep.interface.clone();
                spec.kind = Some(PortKind::Tap);
                spec.netns = Some(workload.to_owned());
            }
        }
        let running = self.client.networks()?;
        let has_port = running
            .iter()
            .find(|n| n.name == network)
            .is_some_and(|n| n.ports.iter().any(|p| p.name == workload));
        if !has_port {
            self.client.add_port(network, &spec)?;
        }
        let addrs: Vec<_> = ep
            .ips
            .iter()
            .filter_map(|ip| {
                net.pools
                    .iter()
                    .find(|p| p.contains(*ip))
                    .map(|p| (*ip, p.subnet().prefix_len()))
            })
            .collect();
        configure(&inside, &ep.interface, ep.mac, &addrs)?;
        if !net.internal {
            for gw in net.pools.iter().filter_map(Pool::gateway) {
                again(inside.add_default_route(gw, &ep.interface))?;
            }
        }
        Ok(())
    }

    fn workload(&self, name: &str) -> Result<&Workload, CtlError> {
        self.state
            .workloads
            .get(name)
            .ok_or_else(|| CtlError::Refused(format!("no workload named {name} (see `l2ctl ps`)")))
    }

    /// Removes an endpoint's port and link; runs again without harm.
    fn undo_endpoint(&self, workload: &str, network: &str) -> Result<(), CtlError> {
        let Some(ep) = self
            .state
            .workloads
            .get(workload)
            .and_then(|w| w.endpoints.get(network))
        else {
            return Ok(());
        };
        match self.client.remove_port(network, workload) {
            Err(e)
                if matches!(
                    e.kind(),
                    Some(ErrorKind::NoSuchNetwork { .. } | ErrorKind::NoSuchPort { .. })
                ) => {}
            other => other?,
        }
        if let Some(peer) = &ep.peer {
            gone(self.host.delete(peer))?;
        }
        Ok(())
    }

    /// Drops an endpoint from the state, freeing its addresses, and the workload with its
    /// namespace when that was its last endpoint.
    fn forget_endpoint(&mut self, workload: &str, network: &str) -> Result<(), CtlError> {
        let ep = self
            .state
            .workloads
            .get_mut(workload)
            .and_then(|w| w.endpoints.remove(network));
        if let (Some(ep), Some(net)) = (ep, self.state.networks.get_mut(network)) {
            for ip in ep.ips {
                if let Some(p) = net.pool_for(ip) {
                    p.release(ip);
                }
            }
        }
        let empty = self
            .state
            .workloads
            .get(workload)
            .is_some_and(|w| w.endpoints.is_empty() && w.sandbox == Sandbox::Own);
        if empty {
            self.remove_workload(workload)?;
        }
        self.save()
    }

    fn remove_workload(&mut self, workload: &str) -> Result<(), CtlError> {
        if let Some(w) = self.state.workloads.remove(workload)
            && w.made_netns
        {
            gone(nl::netns_delete(workload))?;
        }
        Ok(())
    }

    /// `l2ctl detach`.
    pub fn detach(&mut self, workload: &str, network: &str) -> Result<(), CtlError> {
        let w = self.workload(workload)?.clone();
        let joiners = self.state.joiners_of(workload);
        match (&w.sandbox, network) {
            (Sandbox::None, "none") | (Sandbox::Host, "host") => {}
            (Sandbox::Container(o), n) if n.strip_prefix("container:") == Some(o) => {}
            (Sandbox::Own, n) if w.endpoints.contains_key(n) => {
                if w.endpoints.len() == 1 && !joiners.is_empty() {
                    return refused(format!(
                        "{} share the namespace of {workload}: detach them before its last network",
                        joiners.join(", ")
                    ));
                }
                self.undo_endpoint(workload, network)?;
                return self.forget_endpoint(workload, network);
            }
            _ => {
                return refused(format!(
                    "workload {workload} is not attached to {network} ({})",
                    describe(&w)
                ));
            }
        }
        if !joiners.is_empty() {
            return refused(format!(
                "{} share the namespace of {workload}: detach them first",
                joiners.join(", ")
            ));
        }
        self.remove_workload(workload)?;
        self.save()
    }

    /// Brings a (restarted) daemon and the kernel back to the saved state: every network the
    /// daemon lacks, every port missing from one; returns what it restored.
    pub fn sync(&mut self) -> Result<Vec<String>, CtlError> {
        let running = self.client.networks()?;
        let mut restored = Vec::new();
        let nets: Vec<Network> = self
            .state
            .networks
            .values()
            .filter(|n| n.active && n.driver.switched())
            .cloned()
            .collect();
        for net in nets {
            let present = running.iter().find(|r| r.name == net.name);
            let has = |who: &str| present.is_some_and(|r| r.ports.iter().any(|p| p.name == who));
            let fixed_missing = self.fixed_ports(&net).iter().any(|p| !has(&p.port_name()));
            if present.is_none() || fixed_missing {
                restored.push(format!("network {}", net.name));
                self.apply_network(&net.name)?;
            }
            let users: Vec<String> = self
                .state
                .endpoints_of(&net.name)
                .iter()
                .map(|(w, _)| w.name.clone())
                .filter(|w| !has(w))
                .collect();
            for w in users {
                restored.push(format!("{w} on {}", net.name));
                self.apply_endpoint(&w, &net.name)?;
            }
        }
        Ok(restored)
    }

    // ---- reports ----

    /// `l2ctl network inspect`: Docker's shape, l2sw's facts.
    pub fn inspect(&self, name: &str) -> Result<Value, CtlError> {
        let net = self.network(name)?;
        let config: Vec<Value> = net
            .pools
            .iter()
            .map(|p| {
                json!({
                    "Subnet": p.subnet().to_string(),
                    "IPRange": p.ip_range().map(|r| r.to_string()),
                    "Gateway": p.gateway().map(|g| g.to_string()),
                    "AuxiliaryAddresses": p.aux(),
                    "Allocated": p.allocated().count(),
                })
            })
            .collect();
        let containers: serde_json::Map<String, Value> = self
            .state
            .endpoints_of(name)
            .into_iter()
            .map(|(w, e)| {
                let cidr = |v4: bool| {
                    e.ips.iter().find(|ip| ip.is_ipv4() == v4).map(|ip| {
                        let len = net
                            .pools
                            .iter()
                            .find(|p| p.contains(*ip))
                            .map_or(0, |p| p.subnet().prefix_len());
                        format!("{ip}/{len}")
                    })
                };
                (
                    w.name.clone(),
                    json!({
                        "Interface": e.interface, "Port": e.kind, "SwitchEnd": e.peer,
                        "MacAddress": e.mac, "IPv4Address": cidr(true), "IPv6Address": cidr(false),
                        "SourceMacs": e.source_macs,
                    }),
                )
            })
            .collect();
        Ok(json!({
            "Name": net.name, "Id": net.id, "Driver": net.driver.name(),
            "Options": {"mode": net.mode, "parent": net.parent.as_ref().map(ToString::to_string)},
            "Internal": net.internal, "Hairpin": net.hairpin, "Predefined": net.predefined,
            "HostPort": net.host_port, "HostAccess": net.host_access,
            "IPAM": {"Driver": "default", "Config": config},
            "Containers": containers,
        }))
    }
}

/// Sets a link's MAC (if it differs) and its addresses, and brings it up. Its offloads stay as
/// the kernel made them, as Docker leaves them: l2sw carries checksums left to complete and
/// super-frames through with their `virtio_net_hdr`.
fn configure(links: &Links, name: &str, mac: Mac, addrs: &[(IpAddr, u8)]) -> Result<(), CtlError> {
    if links.mac(name)? != mac {
        links.set_mac(name, mac)?;
    }
    if addrs.iter().any(|(ip, _)| ip.is_ipv6()) {
        // Addresses l2ctl hands out are unique by construction; skipping duplicate address
        // detection makes them usable at once, as Docker does (IFA_F_NODAD).
        links.set_ipv6_conf(name, "disable_ipv6", "0")?;
        links.set_ipv6_conf(name, "accept_dad", "0")?;
    }
    for (ip, len) in addrs {
        again(links.add_address(name, *ip, *len))?;
    }
    links.set_up(name)?;
    Ok(())
}

fn check_mode(req: &NetworkArgs) -> Result<Option<MacvlanMode>, CtlError> {
    let allowed = req.driver.modes();
    match (&req.mode, allowed.as_slice()) {
        (None, []) => Ok(None),
        (None, _) => Ok(Some(MacvlanMode::Bridge)),
        (Some(m), []) => refused(format!(
            "--mode {m}: a {} network has no modes (macvlan and ipvlan do)",
            req.driver.name()
        )),
        (Some(m), a) if a.contains(&m.as_str()) => MacvlanMode::from_name(m)
            .map(Some)
            .map_err(|e| CtlError::Refused(e.to_string())),
        (Some(m), a) => refused(format!(
            "--mode {m}: a {} network's mode is one of {}",
            req.driver.name(),
            a.join(", ")
        )),
    }
}

fn describe(w: &Workload) -> String {
    match &w.sandbox {
        Sandbox::Own => {
            let n: Vec<&str> = w.endpoints.keys().map(String::as_str).collect();
            format!("on {}", n.join(", "))
        }
        Sandbox::None => "on none".into(),
        Sandbox::Host => "on host".into(),
        Sandbox::Container(o) => format!("container:{o}"),
    }
}

/// The first state: the predefined `bridge` (the first default pool the host's routes leave
/// free), `host` and `none`.
fn predefined(host_netns: Option<&str>, host: &Links) -> Result<State, CtlError> {
    let mut s = State::new(host_netns.map(str::to_owned));
    let in_use: Vec<InUse> = host
        .routes()?
        .into_iter()
        .map(|net| InUse {
            net,
            owner: "a route on the host".into(),
        })
        .collect();
    let subnet = ipam::default_pool(&in_use)?;
    let pool = Pool::new(
        &PoolRequest {
            subnet: Some(subnet),
            auto_gateway: true,
            ..PoolRequest::default()
        },
        &in_use,
    )?;
    let base = |name: &str, driver| Network {
        name: name.to_owned(),
        id: random_hex(6),
        driver,
        mode: None,
        parent: None,
        internal: false,
        hairpin: false,
        pools: Vec::new(),
        predefined: true,
        active: false,
        host_port: None,
        mac: None,
        host_access: None,
        origin: None,
    };
    s.networks.insert(
        "bridge".into(),
        Network {
            pools: vec![pool],
            host_port: Some(DEFAULT_BRIDGE_PORT.into()),
            mac: Some(random_mac()),
            ..base("bridge", Driver::Bridge)
        },
    );
    s.networks.insert("host".into(), base("host", Driver::Host));
    s.networks.insert("none".into(), base("none", Driver::Null));
    Ok(s)
}
