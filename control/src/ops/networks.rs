//! Networks and their address pools: `network create` and `rm`, the parent checks, IPAM
//! orchestration (which subnets are taken, the pools a request makes), `host-access`, and the
//! predefined networks of a fresh state.

use super::*;

impl Ctl {
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
        let overlay = self.check_overlay(req)?;
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
            masquerade: req.masquerade && req.driver == Driver::Bridge && !internal,
            pools,
            predefined: false,
            active: true,
            host_port,
            mac: Some(random_mac()),
            host_access: None,
            origin: origin.map(str::to_owned),
            overlay,
        };
        let name = net.name.clone();
        self.state.networks.insert(name.clone(), net);
        self.save()?;
        if let Err(e) = self.apply_network(&name).and_then(|()| self.nat_follow()) {
            self.undo_network(&name);
            self.state.networks.remove(&name);
            self.save()?;
            self.nat_follow_or_warn();
            return Err(e);
        }
        self.network(&name)
    }

    /// An overlay network's VXLAN side, every value checked against the others and against
    /// the other overlay networks (one local VTEP address and port each); `None` for other
    /// drivers, which may not name any of it.
    pub(super) fn check_overlay(&self, req: &NetworkArgs) -> Result<Option<Overlay>, CtlError> {
        if req.driver != Driver::Overlay {
            if req.vni.is_some()
                || req.local.is_some()
                || !req.remote.is_empty()
                || req.learn_remotes
                || req.vxlan_port.is_some()
                || !req.learning
            {
                return refused(format!(
                    "--vni, --local, --remote, --learn-remotes, --vxlan-port and --learning apply to overlay networks, not to a {} network",
                    req.driver.name()
                ));
            }
            return Ok(None);
        }
        if req.parent.is_some() {
            return refused(
                "an overlay network has no --parent: its frames cross the underlay from --local",
            );
        }
        let Some(vni) = req.vni else {
            return refused(
                "an overlay network needs --vni N (1..=16777215, the same on every host)",
            );
        };
        let Some(local) = req.local else {
            return refused(
                "an overlay network needs --local IP, this host's VTEP address on the underlay",
            );
        };
        let vni = Vni::new(vni).map_err(|e| CtlError::Refused(format!("--vni: {e}")))?;
        let port = req.vxlan_port.unwrap_or(l2sw::wire::vxlan::IANA_PORT);
        let cfg = VxlanConfig {
            vni,
            local,
            port,
            remotes: req.remote.clone(),
            learn_remotes: req.learn_remotes,
            learning: req.learning,
            statics: Vec::new(),
        };
        cfg.check()
            .map_err(|e| CtlError::Refused(format!("overlay: {e}")))?;
        for n in self.state.networks.values() {
            let Some(o) = &n.overlay else { continue };
            if o.local == local && o.port == port {
                return refused(format!(
                    "local VTEP {local}:{port} is already used by overlay network {:?}: give another --vxlan-port or --local",
                    n.name
                ));
            }
        }
        let underlay = self.underlay_mtu(local)?;
        let mtu = underlay
            .checked_sub(l2sw::wire::vxlan::OVERHEAD as u32)
            .filter(|m| *m >= 68)
            .ok_or_else(|| {
                CtlError::Refused(format!(
                    "the underlay's MTU {underlay} leaves no room for VXLAN's 50 bytes"
                ))
            })?;
        Ok(Some(Overlay {
            vni: vni.get(),
            local,
            port,
            remotes: req.remote.clone(),
            learn_remotes: req.learn_remotes,
            learning: req.learning,
            statics: Vec::new(),
            mtu,
        }))
    }

    /// The MTU of the host interface that holds `local`.
    fn underlay_mtu(&self, local: std::net::Ipv4Addr) -> Result<u32, CtlError> {
        for name in self.host.names()? {
            let addrs = self.host.addresses(&name)?;
            if addrs.iter().any(|a| a.addr() == IpAddr::V4(local)) {
                return Ok(self.host.mtu(&name)?);
            }
        }
        refused(format!(
            "--local {local} is not an address of the host namespace: give this host's underlay address"
        ))
    }

    /// `l2ctl network remote add`: another host joins the overlay.
    pub fn add_remote(&mut self, name: &str, vtep: std::net::Ipv4Addr) -> Result<(), CtlError> {
        let o = self.overlay_of(name)?;
        if vtep == o.local {
            return refused(format!("remote {vtep} is the local VTEP address itself"));
        }
        if o.remotes.contains(&vtep) {
            return refused(format!(
                "remote {vtep} is already in network {name}'s flood list"
            ));
        }
        self.client.add_remote(name, OVERLAY_PORT, vtep)?;
        self.change_overlay(name, |o| {
            o.remotes.push(vtep);
        })
    }

    /// `l2ctl network remote rm`: a host leaves the overlay; the MACs behind it are forgotten.
    pub fn remove_remote(&mut self, name: &str, vtep: std::net::Ipv4Addr) -> Result<(), CtlError> {
        let o = self.overlay_of(name)?;
        if !o.remotes.contains(&vtep) {
            return refused(format!(
                "remote {vtep} is not in network {name}'s flood list"
            ));
        }
        self.client.remove_remote(name, OVERLAY_PORT, vtep)?;
        self.change_overlay(name, |o| {
            o.remotes.retain(|r| *r != vtep);
            // The daemon forgot every MAC behind it, static ones too.
            o.statics.retain(|s| s.vtep != vtep);
        })
    }

    /// Changes the overlay of network `name` in the state, as the daemon now has it, and
    /// saves the state.
    fn change_overlay(&mut self, name: &str, f: impl FnOnce(&mut Overlay)) -> Result<(), CtlError> {
        if let Some(o) = self
            .state
            .networks
            .get_mut(name)
            .and_then(|n| n.overlay.as_mut())
        {
            f(o);
        }
        self.save()
    }

    /// The overlay of network `name`, or why it has none.
    fn overlay_of(&self, name: &str) -> Result<Overlay, CtlError> {
        let net = self.network(name)?;
        net.overlay.clone().ok_or_else(|| {
            CtlError::Refused(format!(
                "network {name} is a {} network, not an overlay",
                net.driver.name()
            ))
        })
    }

    /// `l2ctl network remote pin`: `mac` is behind remote VTEP `vtep` (as `bridge fdb add MAC
    /// dev vx dst IP` on a kernel VTEP): frames to it go to that VTEP alone, and that VTEP's
    /// packets are accepted. Kept in the state, so a restarted daemon gets it back.
    pub fn pin_remote(
        &mut self,
        name: &str,
        mac: Mac,
        vtep: std::net::Ipv4Addr,
    ) -> Result<(), CtlError> {
        let o = self.overlay_of(name)?;
        if !mac.is_valid_source() {
            return refused(format!(
                "{mac} cannot be pinned: multicast and all-zero addresses are never stations"
            ));
        }
        if vtep == o.local {
            return refused(format!("remote {vtep} is the local VTEP address itself"));
        }
        if let Some(s) = o.statics.iter().find(|s| s.mac == mac) {
            return refused(format!(
                "{mac} is already pinned behind {} in network {name}: unpin it first",
                s.vtep
            ));
        }
        self.client
            .add_static_remote(name, OVERLAY_PORT, mac, vtep)?;
        self.change_overlay(name, |o| {
            o.statics.push(l2sw::config::VxlanStatic { mac, vtep });
        })
    }

    /// `l2ctl network remote unpin`: `mac`'s static entry goes; a VTEP only it named is an
    /// unknown sender again.
    pub fn unpin_remote(&mut self, name: &str, mac: Mac) -> Result<(), CtlError> {
        let o = self.overlay_of(name)?;
        if !o.statics.iter().any(|s| s.mac == mac) {
            return refused(format!("{mac} is not pinned in network {name}"));
        }
        self.client.remove_static(name, mac)?;
        self.change_overlay(name, |o| {
            o.statics.retain(|s| s.mac != mac);
        })
    }

    pub(super) fn check_parent(
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
        let parent = parse_parent(p)?;
        if !self.host.exists(&parent.interface)? {
            return refused(format!(
                "parent interface {} does not exist in the host namespace",
                parent.interface
            ));
        }
        let passthru = req.driver == Driver::Macvlan && mode == Some(MacvlanMode::Passthru);
        parent_free(self.state.networks.values(), &parent, passthru)?;
        Ok(parent)
    }

    /// What addresses are taken: other networks' subnets, and (for a bridge, whose host port
    /// adds a route) the host's routes.
    pub(super) fn in_use(&self, with_routes: bool) -> Result<Vec<InUse>, CtlError> {
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

    pub(super) fn make_pools(
        &self,
        req: &NetworkArgs,
        internal: bool,
    ) -> Result<Vec<Pool>, CtlError> {
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
        self.save()?;
        self.nat_follow_or_warn();
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
    pub(super) fn shared_mac(&self, net: &Network) -> Result<Mac, CtlError> {
        match &net.parent {
            Some(p) => Ok(self.host.mac(&p.interface)?),
            None => Ok(net.mac.unwrap_or_else(random_mac)),
        }
    }
}

/// The first state: the predefined `bridge` (the first default pool the host's routes leave
/// free), `host` and `none`.
pub(super) fn predefined(host_netns: Option<&str>, host: &Links) -> Result<State, CtlError> {
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
    let base = |name: &str, driver: Driver| Network {
        name: name.to_owned(),
        id: random_hex(6),
        driver,
        mode: None,
        parent: None,
        internal: false,
        hairpin: false,
        masquerade: driver == Driver::Bridge,
        pools: Vec::new(),
        predefined: true,
        active: false,
        host_port: None,
        mac: None,
        host_access: None,
        origin: None,
        overlay: None,
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
