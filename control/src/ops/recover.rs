//! Recovery, decided without I/O: what a (restarted) daemon lacks of the saved state, and
//! which workloads lost their namespace behind l2ctl's back.
//!
//! The rule for a lost namespace: a workload whose namespace (its own, or for
//! `container:OTHER` OTHER's) no longer exists is *gone*. l2ctl does not make it again, since
//! what ran in it is gone too and an empty namespace with the old addresses would only hide
//! that; `ps` and `network inspect` say so, restoring skips it, and `detach` cleans up what is
//! left (the daemon's port, the switch end of a veth) and frees its addresses.

use std::collections::BTreeSet;

use l2sw::api::NetworkInfo;

use super::specs::fixed_ports;
use crate::state::{Sandbox, State};

/// One step of bringing a daemon back to the saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The daemon lacks the network, or one of its own ports (host port, uplink, host access).
    Network(String),
    /// The daemon's network lacks a workload's port.
    Endpoint {
        /// The workload.
        workload: String,
        /// The network.
        network: String,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Network(n) => write!(f, "network {n}"),
            Step::Endpoint { workload, network } => write!(f, "{workload} on {network}"),
        }
    }
}

/// What the daemon, running `running`, lacks of `state`: every active switched network it does
/// not run or that misses a port of its own, then every endpoint port it misses, except those
/// of `gone` workloads. Empty: nothing to restore.
pub fn plan(state: &State, running: &[NetworkInfo], gone: &BTreeSet<String>) -> Vec<Step> {
    let mut steps = Vec::new();
    for net in state
        .networks
        .values()
        .filter(|n| n.active && n.driver.switched())
    {
        let present = running.iter().find(|r| r.name == net.name);
        let has = |who: &str| present.is_some_and(|r| r.ports.iter().any(|p| p.name == who));
        let fixed_missing = fixed_ports(net, state.host_netns.as_deref(), None)
            .iter()
            .any(|p| !has(&p.port_name()));
        if present.is_none() || fixed_missing {
            steps.push(Step::Network(net.name.clone()));
        }
        for (w, _) in state.endpoints_of(&net.name) {
            if !has(&w.name) && !gone.contains(&w.name) {
                steps.push(Step::Endpoint {
                    workload: w.name.clone(),
                    network: net.name.clone(),
                });
            }
        }
    }
    steps
}

/// The workloads whose namespace no longer exists, by `netns_exists`. A workload on the host
/// network is never gone; one that shares another's namespace is gone with it.
pub fn gone_workloads(state: &State, netns_exists: impl Fn(&str) -> bool) -> BTreeSet<String> {
    state
        .workloads
        .values()
        .filter(|w| w.sandbox != Sandbox::Host)
        .filter(|w| state.netns_of(w).is_some_and(|ns| !netns_exists(&ns)))
        .map(|w| w.name.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use l2sw::api::PortInfo;
    use l2sw::config::NetworkMode;

    use super::*;
    use crate::state::{Driver, Endpoint, EndpointKind, Network, Workload};
    use l2sw::wire::Mac;

    fn net(name: &str, host_port: bool) -> Network {
        Network {
            internal: !host_port,
            host_port: host_port.then(|| "l2br-x".into()),
            ..Network::sample(name, Driver::Bridge, None, None)
        }
    }

    fn workload(name: &str, sandbox: Sandbox, nets: &[&str]) -> Workload {
        let ep = Endpoint {
            interface: "eth0".into(),
            peer: None,
            kind: EndpointKind::Tap,
            mac: Mac([2, 0, 0, 0, 0, 1]),
            ips: Vec::new(),
            source_macs: Vec::new(),
            ports: Vec::new(),
            origin: None,
        };
        Workload {
            name: name.into(),
            sandbox,
            made_netns: true,
            endpoints: nets
                .iter()
                .map(|n| ((*n).to_owned(), ep.clone()))
                .collect::<BTreeMap<_, _>>(),
            origin: None,
        }
    }

    fn running(name: &str, ports: &[&str]) -> NetworkInfo {
        NetworkInfo {
            name: name.into(),
            mode: NetworkMode::Bridge,
            ports: ports
                .iter()
                .enumerate()
                .map(|(id, p)| PortInfo {
                    id,
                    name: (*p).into(),
                    role: "bridge port".into(),
                })
                .collect(),
        }
    }

    fn state() -> State {
        let mut s = State::new(None);
        s.networks.insert("front".into(), net("front", true));
        s.networks.insert("back".into(), net("back", false));
        let mut idle = net("idle", true);
        idle.active = false;
        s.networks.insert("idle".into(), idle);
        s.workloads
            .insert("a".into(), workload("a", Sandbox::Own, &["front", "back"]));
        s.workloads
            .insert("b".into(), workload("b", Sandbox::Own, &["front"]));
        s
    }

    #[test]
    fn a_daemon_with_everything_needs_nothing() {
        let run = [
            running("front", &["host", "a", "b"]),
            running("back", &["a"]),
        ];
        assert_eq!(plan(&state(), &run, &BTreeSet::new()), vec![]);
    }

    #[test]
    fn a_fresh_daemon_gets_every_active_network_and_endpoint() {
        let steps: Vec<String> = plan(&state(), &[], &BTreeSet::new())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            steps,
            [
                "network back",
                "a on back",
                "network front",
                "a on front",
                "b on front"
            ]
        );
    }

    #[test]
    fn a_missing_port_of_its_own_or_of_a_workload_is_restored_alone() {
        let run = [running("front", &["a", "b"]), running("back", &[])];
        assert_eq!(
            plan(&state(), &run, &BTreeSet::new()),
            vec![
                Step::Endpoint {
                    workload: "a".into(),
                    network: "back".into()
                },
                Step::Network("front".into()),
            ]
        );
    }

    #[test]
    fn gone_workloads_are_not_restored() {
        let gone: BTreeSet<String> = ["a".to_owned()].into();
        let run = [running("front", &["host"])];
        assert_eq!(
            plan(&state(), &run, &gone),
            vec![
                Step::Network("back".into()),
                Step::Endpoint {
                    workload: "b".into(),
                    network: "front".into()
                },
            ]
        );
    }

    #[test]
    fn a_workload_is_gone_with_its_namespace_or_the_one_it_shares() {
        let mut s = state();
        s.workloads.insert(
            "j".into(),
            workload("j", Sandbox::Container("a".into()), &[]),
        );
        s.workloads
            .insert("n".into(), workload("n", Sandbox::None, &[]));
        s.workloads
            .insert("h".into(), workload("h", Sandbox::Host, &[]));
        let all = gone_workloads(&s, |_| true);
        assert!(all.is_empty(), "{all:?}");
        let gone = gone_workloads(&s, |ns| ns == "b");
        let names: Vec<&str> = gone.iter().map(String::as_str).collect();
        assert_eq!(names, ["a", "j", "n"], "the host network is never gone");
    }
}
