//! Workloads and their endpoints in the state: `attach` (a namespace of its own, `none`,
//! `host` or `container:OTHER`), planning an endpoint (its addresses from the pools, its MAC,
//! its interface name), `detach`, and forgetting an endpoint with its addresses.

use super::*;

impl Ctl {
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
            if !req.ip.is_empty()
                || req.mac.is_some()
                || !req.source_mac.is_empty()
                || !req.publish.is_empty()
            {
                return refused(format!(
                    "--ip, --mac, --source-mac and --publish need a network with endpoints, not {}",
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
        if existing.is_some() && self.gone().contains(workload) {
            return refused(self.gone_hint(workload));
        }
        let fresh = existing.is_none();
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
        let ports = self.check_publish(workload, &net, req)?;
        let ep = Endpoint {
            ports,
            ..self.plan_endpoint(workload, &net, req, origin)?
        };
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
            .make_netns(workload, fresh)
            .and_then(|()| self.apply_network(&net.name))
            .and_then(|()| self.apply_endpoint(workload, &net.name))
            .and_then(|()| {
                // Published ports are this request's; anything else in the table is not.
                if ep.ports.is_empty() {
                    self.nat_follow_or_warn();
                    Ok(())
                } else {
                    self.nat_follow()
                }
            });
        if let Err(e) = done {
            let _ = self.undo_endpoint(workload, &net.name);
            self.forget_endpoint(workload, &net.name)?;
            return Err(e);
        }
        self.names_follow();
        Ok(Some(ep))
    }

    /// Makes a fresh workload's namespace, unless one of its name exists already (then it is
    /// the user's, and stays when the workload goes). Only here: a namespace lost later is
    /// gone, never made again.
    fn make_netns(&mut self, workload: &str, fresh: bool) -> Result<(), CtlError> {
        if fresh && !nl::netns_exists(workload) {
            nl::netns_create(workload)?;
            if let Some(w) = self.state.workloads.get_mut(workload) {
                w.made_netns = true;
            }
            self.save()?;
        }
        Ok(())
    }

    pub(super) fn attach_special(
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
                if self.gone().contains(other) {
                    return refused(format!(
                        "container:{other}: the namespace of {other} was deleted behind l2ctl's back"
                    ));
                }
                if o.sandbox == Sandbox::Host {
                    return refused(format!(
                        "container:{other}: {other} is on the host network; use --network host"
                    ));
                }
            }
            Sandbox::Host | Sandbox::Own | Sandbox::Engine(_) => {}
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
        self.save()?;
        self.names_follow();
        Ok(())
    }

    pub(super) fn plan_endpoint(
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
            ports: Vec::new(),
            origin: origin.map(str::to_owned),
        })
    }

    /// Drops an endpoint from the state, freeing its addresses, and the workload with its
    /// namespace when that was its last endpoint.
    pub(super) fn forget_endpoint(
        &mut self,
        workload: &str,
        network: &str,
    ) -> Result<(), CtlError> {
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
        let empty = self.state.workloads.get(workload).is_some_and(|w| {
            w.endpoints.is_empty() && matches!(w.sandbox, Sandbox::Own | Sandbox::Engine(_))
        });
        if empty {
            self.remove_workload(workload)?;
        }
        self.save()?;
        self.names_follow();
        self.nat_follow_or_warn();
        Ok(())
    }

    pub(super) fn remove_workload(&mut self, workload: &str) -> Result<(), CtlError> {
        if let Some(w) = self.state.workloads.remove(workload) {
            if w.sandbox == Sandbox::Own
                && let Err(e) = names::remove_names(workload)
            {
                eprintln!(
                    "warning: the names of {workload} in {}: {e}",
                    names::ETC_NETNS
                );
            }
            if w.made_netns {
                gone(nl::netns_delete(workload))?;
            }
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
            (Sandbox::Own | Sandbox::Engine(_), n) if w.endpoints.contains_key(n) => {
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
        self.save()?;
        self.names_follow();
        Ok(())
    }
}
