//! Bringing the daemon and the kernel to the state: a network's daemon network and fixed
//! ports, an endpoint's link, port, addresses and routes, and `sync` after a restart. Each
//! step runs again without harm.

use super::*;

impl Ctl {
    /// Brings the daemon and the host to `name`'s network: its host-access link, the daemon
    /// network with its own ports, the host port's address. Runs again without harm.
    pub(super) fn apply_network(&mut self, name: &str) -> Result<(), CtlError> {
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

    /// Brings the kernel and the daemon to a workload's endpoint on `network`: its namespace,
    /// its link, the daemon's port, its MAC, addresses and routes. Runs again without harm.
    pub(super) fn apply_endpoint(&mut self, workload: &str, network: &str) -> Result<(), CtlError> {
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
        let mut spec = sub_port(&net, workload, "", ep.mac, &ep.ips, &ep.source_macs);
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
}
