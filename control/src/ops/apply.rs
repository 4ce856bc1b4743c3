//! Bringing the daemon and the kernel to the state: a network's daemon network and fixed
//! ports, an endpoint's link, port, addresses and routes, and `sync` after a restart. Each
//! step runs again without harm.

use super::*;

/// Where a workload's end of a link lives.
struct Home {
    /// Its namespace (a name or a namespace file's path); `None`: not known yet (an engine
    /// that has not joined), so the host namespace.
    netns: Option<String>,
    /// Whether l2ctl puts the link there and sets its name, MAC, addresses and routes (`false`:
    /// the engine does, l2ctl hands the link over in the host namespace).
    configure: bool,
}

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
        let home = self.home(workload)?;
        if let Some(ns) = &home.netns
            && !nl::netns_exists(ns)
        {
            // Made (or found) at attach: lost since, so gone, never made again empty.
            return refused(gone_note(workload, network));
        }
        let inside = match &home.netns {
            Some(ns) if home.configure => Links::new(Some(ns)),
            _ => self.host.clone(),
        };
        let host_ns = self.state.host_netns.clone();
        let mut spec = sub_port(&net, workload, "", ep.mac, &ep.ips, &ep.source_macs);
        match (&ep.kind, &ep.peer) {
            (EndpointKind::Veth, Some(peer)) => {
                if !self.host.exists(peer)? {
                    if !home.configure && home.netns.is_some() {
                        // The engine took its end into its namespace; a pair lost since is
                        // not the engine's to be given again.
                        return refused(gone_note(workload, network));
                    }
                    let tmp = format!("l2w-{}", &peer[4..]);
                    let _ = gone(self.host.delete(&tmp));
                    self.host.create_veth(peer, &tmp)?;
                    match (&home.netns, home.configure) {
                        (Some(ns), true) => {
                            self.host.move_to(&tmp, ns)?;
                            inside.rename(&tmp, &ep.interface)?;
                        }
                        // Left in the host namespace, named as the endpoint says, for the
                        // engine to take.
                        _ => self.host.set_mac(&tmp, ep.mac)?,
                    }
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
        if !home.configure {
            return Ok(());
        }
        configure(&inside, &ep.interface, ep.mac, &addrs)?;
        if let Some(o) = &net.overlay {
            // Docker's overlay MTU: the underlay's less VXLAN's 50 bytes, so that a frame and
            // its outer headers fit the underlay. Segmentation and checksums are done in the
            // workload: the overlay port carries frames as they will cross the underlay.
            inside.set_mtu(&ep.interface, o.mtu)?;
            inside.disable_tx_offloads(&ep.interface)?;
            if let (EndpointKind::Veth, Some(peer)) = (&ep.kind, &ep.peer) {
                self.host.set_mtu(peer, o.mtu)?;
            }
        }
        if !net.internal {
            for gw in net.pools.iter().filter_map(Pool::gateway) {
                again(inside.add_default_route(gw, &ep.interface))?;
            }
        }
        Ok(())
    }

    /// Where `workload`'s end of its links goes, and whether l2ctl configures it there.
    fn home(&self, workload: &str) -> Result<Home, CtlError> {
        let w = self.workload(workload)?;
        Ok(match &w.sandbox {
            Sandbox::Engine(e) => Home {
                netns: e.netns.clone(),
                configure: !e.engine.moves_link(),
            },
            _ => Home {
                netns: Some(workload.to_owned()),
                configure: true,
            },
        })
    }

    /// Brings a (restarted) daemon and the kernel back to the saved state: every network the
    /// daemon lacks, every port missing from one, except the endpoints of workloads whose
    /// namespace is gone; returns what it restored.
    pub fn sync(&mut self) -> Result<Vec<String>, CtlError> {
        let running = self.client.networks()?;
        let steps = recover::plan(&self.state, &running, &self.gone());
        for step in &steps {
            match step {
                Step::Network(n) => self.apply_network(n)?,
                Step::Endpoint { workload, network } => self.apply_endpoint(workload, network)?,
            }
        }
        self.names_follow();
        self.nat_follow()?;
        Ok(steps.iter().map(ToString::to_string).collect())
    }

    /// The workloads whose namespace was deleted behind l2ctl's back (see [`gone_note`]).
    pub fn gone(&self) -> BTreeSet<String> {
        recover::gone_workloads(&self.state, nl::netns_exists)
    }

    /// [`gone_note`] for `workload`, naming a network it can be detached from.
    pub fn gone_hint(&self, workload: &str) -> String {
        let net = self
            .state
            .workloads
            .get(workload)
            .map(|w| match &w.sandbox {
                Sandbox::Own | Sandbox::Engine(_) => {
                    w.endpoints.keys().next().cloned().unwrap_or_default()
                }
                Sandbox::None => "none".to_owned(),
                Sandbox::Host => "host".to_owned(),
                Sandbox::Container(o) => format!("container:{o}"),
            });
        gone_note(workload, net.as_deref().unwrap_or("NETWORK"))
    }
}

/// Whether the daemon on `client` lacks something of the state saved in `dir`, read without
/// taking the state's lock (so that it costs one request and one file read, and waits for
/// nobody). No saved state: nothing lacks.
pub fn daemon_lacks(dir: &Path, client: &Client) -> Result<bool, CtlError> {
    let Some(state) = Store::peek(dir)? else {
        return Ok(false);
    };
    let running = client.networks()?;
    let gone = recover::gone_workloads(&state, nl::netns_exists);
    Ok(!recover::plan(&state, &running, &gone).is_empty())
}

/// What to say of a workload whose namespace is gone, and how to clean up after it.
pub fn gone_note(workload: &str, network: &str) -> String {
    format!(
        "the namespace of workload {workload} was deleted behind l2ctl's back, so l2ctl does not make it again: `l2ctl detach {workload} --network {network}` cleans up and frees its addresses"
    )
}
