//! Endpoints for container engines (the Docker remote driver, the CNI plugin): the same
//! planning, state, daemon port and undo as `l2ctl attach`, in a namespace the engine owns.
//! One workload per endpoint, named by the adapter; its namespace is never made or deleted
//! here.

use super::*;
use crate::state::EngineSandbox;

/// The longest interface name the kernel takes (IFNAMSIZ less the NUL).
const MAX_IFNAME: usize = 15;

impl Ctl {
    /// Makes the endpoint an engine asked for: workload `workload` (new) on `req.network`,
    /// with `req.ip` (refused unless free) or the pool's next address, MAC `req.mac` or the
    /// usual default, and a veth pair whose switch end becomes the daemon's port.
    ///
    /// When the engine does not move the link itself ([`crate::state::Engine::moves_link`]),
    /// the workload's end is moved into `sandbox.netns`, named `interface`, given the MAC,
    /// the addresses and (unless the network is internal) the default route, and set up.
    /// Otherwise it stays in the host namespace under the name the returned endpoint's
    /// `interface` gives, its MAC set, for the engine to take. On failure nothing is left.
    pub fn attach_engine(
        &mut self,
        workload: &str,
        req: &AttachArgs,
        sandbox: EngineSandbox,
        interface: &str,
        origin: Option<&str>,
    ) -> Result<Endpoint, CtlError> {
        valid_name("workload", workload)?;
        if self.state.workloads.contains_key(workload) {
            return refused(format!("endpoint {workload} already exists"));
        }
        let net = self.network(&req.network)?.clone();
        if !net.driver.switched() {
            return refused(format!("network {} has no endpoints", net.name));
        }
        if req.port != EndpointKind::Veth {
            return refused(format!(
                "endpoints for {} are veth pairs; --port {} is for l2ctl's own workloads",
                sandbox.engine.name(),
                req.port.name()
            ));
        }
        let hands_over = sandbox.engine.moves_link();
        if !hands_over {
            match &sandbox.netns {
                None => {
                    return Err(CtlError::Sandbox {
                        what: SandboxPart::Namespace,
                        message: format!(
                            "not given for {} endpoint {workload}",
                            sandbox.engine.name()
                        ),
                    });
                }
                Some(ns) if !nl::netns_exists(ns) => {
                    return Err(CtlError::Sandbox {
                        what: SandboxPart::Namespace,
                        message: format!(
                            "{ns} does not exist (or is not a network namespace file)"
                        ),
                    });
                }
                Some(_) => {}
            }
            if interface.is_empty()
                || interface.len() > MAX_IFNAME
                || interface.contains(['/', ':', ' ', '\0'])
                || interface == "."
                || interface == ".."
            {
                return Err(CtlError::Sandbox {
                    what: SandboxPart::Interface,
                    message: format!(
                        "{interface:?} is not valid (1 to {MAX_IFNAME} bytes, no '/', ':' or space)"
                    ),
                });
            }
        }
        let mut ep = self.plan_endpoint(workload, &net, req, origin)?;
        ep.interface = match (&ep.peer, hands_over) {
            (Some(peer), true) => format!("l2w-{}", &peer[4..]),
            _ => interface.to_owned(),
        };
        self.state.workloads.insert(
            workload.to_owned(),
            Workload {
                name: workload.to_owned(),
                sandbox: Sandbox::Engine(sandbox),
                made_netns: false,
                endpoints: BTreeMap::from([(net.name.clone(), ep.clone())]),
                origin: origin.map(str::to_owned),
            },
        );
        self.save()?;
        let done = self
            .apply_network(&net.name)
            .and_then(|()| self.apply_endpoint(workload, &net.name));
        if let Err(e) = done {
            let _ = self.undo_endpoint(workload, &net.name);
            if hands_over {
                let _ = gone(self.host.delete(&ep.interface));
            }
            self.forget_endpoint(workload, &net.name)?;
            return Err(e);
        }
        Ok(ep)
    }

    /// Records the namespace an engine took the endpoint's link into (Docker's sandbox key),
    /// so that `l2ctl ps` shows it and a namespace deleted since marks the workload gone.
    pub fn engine_joined(&mut self, workload: &str, netns: &str) -> Result<(), CtlError> {
        let w = self
            .state
            .workloads
            .get_mut(workload)
            .ok_or_else(|| CtlError::Refused(format!("no endpoint named {workload}")))?;
        let Sandbox::Engine(e) = &mut w.sandbox else {
            return refused(format!(
                "workload {workload} is l2ctl's own, not a container engine's"
            ));
        };
        if e.netns.as_deref() != Some(netns) {
            e.netns = Some(netns.to_owned());
            self.save()?;
        }
        Ok(())
    }

    /// Removes an engine's endpoint as [`Ctl::detach`] does, for engines that must be able
    /// to clean up whatever state things are in (CNI's DEL): a daemon that is not running
    /// holds no port to remove, so the link is deleted and the state forgets the endpoint and
    /// frees its addresses anyway (a restarted daemon is given back only what is left).
    pub fn detach_engine(&mut self, workload: &str, network: &str) -> Result<(), CtlError> {
        match self.detach(workload, network) {
            Err(CtlError::Daemon(ClientError::NoDaemon { .. })) => {
                let peer = self
                    .state
                    .workloads
                    .get(workload)
                    .and_then(|w| w.endpoints.get(network))
                    .and_then(|ep| ep.peer.clone());
                if let Some(peer) = peer {
                    gone(self.host.delete(&peer))?;
                }
                self.forget_endpoint(workload, network)
            }
            other => other,
        }
    }
}
