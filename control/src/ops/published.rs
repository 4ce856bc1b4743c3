//! The outside world in the operations: checking `--publish` against the network and the
//! ports already published, and bringing table `ip l2sw` to the state (see [`crate::nat`])
//! after every change of networks and endpoints.

use super::*;
use crate::nat::{self, PortMap};

impl Ctl {
    /// The ports `req` publishes on `net`, one by one, or why they cannot be: only a bridge
    /// network with a way out (a host port) publishes, over IPv4, and a host port is
    /// published once per protocol and host address.
    pub(super) fn check_publish(
        &self,
        workload: &str,
        net: &Network,
        req: &AttachArgs,
    ) -> Result<Vec<PortMap>, CtlError> {
        let Some(first) = req.publish.first() else {
            return Ok(Vec::new());
        };
        if net.driver != Driver::Bridge {
            return refused(format!(
                "--publish {}: network {} is a {} network; ports are published from bridge networks, whose host port routes to them",
                first.text,
                net.name,
                net.driver.name()
            ));
        }
        if net.internal || net.host_port.is_none() {
            return refused(format!(
                "--publish {}: network {} is internal, it has no way in from the host",
                first.text, net.name
            ));
        }
        if !net.pools.iter().any(|p| p.subnet().addr().is_ipv4()) {
            return refused(format!(
                "--publish {}: network {} has no IPv4 subnet; ports are published over IPv4",
                first.text, net.name
            ));
        }
        let mut taken: Vec<(PortMap, String)> = self
            .state
            .workloads
            .values()
            .flat_map(|w| {
                w.endpoints.iter().flat_map(move |(n, e)| {
                    e.ports
                        .iter()
                        .map(move |m| (*m, format!("{} on {n}", w.name)))
                })
            })
            .collect();
        let mut maps = Vec::new();
        for p in &req.publish {
            for m in &p.maps {
                if let Some((_, who)) = taken.iter().find(|(t, _)| t.clashes(m)) {
                    return refused(format!(
                        "--publish {}: host port {}:{}/{} is already published by {who}",
                        p.text,
                        m.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                        m.host_port,
                        m.proto.name()
                    ));
                }
                taken.push((*m, format!("{workload} on {} (this request)", net.name)));
                maps.push(*m);
            }
        }
        Ok(maps)
    }

    /// Brings table `ip l2sw` and IPv4 forwarding in the host namespace to the state.
    pub fn nat_follow(&self) -> Result<(), CtlError> {
        let rules = nat::plan(&self.state);
        Ok(nat::apply(self.state.host_netns.as_deref(), &rules)?)
    }

    /// [`Ctl::nat_follow`] after an operation that has succeeded whatever happens here
    /// (a detach, a network's removal): a failure is a warning on stderr.
    pub(super) fn nat_follow_or_warn(&self) {
        if let Err(e) = self.nat_follow() {
            eprintln!("l2ctl: warning: {e}");
        }
    }
}
