//! Reports for people and programs: `network inspect` in Docker's shape, and a workload's
//! networks in a sentence. Pure: built from the state alone.

use super::*;
use serde::Serialize;

impl Ctl {
    /// `l2ctl network inspect`: Docker's shape, l2sw's facts.
    pub fn inspect(&self, name: &str) -> Result<NetworkInspect, CtlError> {
        Ok(inspect(&self.state, self.network(name)?, &self.gone()))
    }
}

/// `network inspect`'s answer, in Docker's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    /// The network's name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// `bridge`, `macvlan`, `ipvlan`, `host` or `null`.
    pub driver: &'static str,
    /// The driver's options.
    pub options: InspectOptions,
    /// No way out.
    pub internal: bool,
    /// Bridge ports reflect frames back out.
    pub hairpin: bool,
    /// Made by l2ctl itself.
    pub predefined: bool,
    /// A bridge's host port.
    pub host_port: Option<String>,
    /// `l2ctl host-access`.
    pub host_access: Option<HostAccess>,
    /// The address pools.
    #[serde(rename = "IPAM")]
    pub ipam: InspectIpam,
    /// Each workload's endpoint, by workload.
    pub containers: BTreeMap<String, InspectEndpoint>,
}

/// A network's driver options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectOptions {
    /// The macvlan mode or ipvlan flag.
    pub mode: Option<MacvlanMode>,
    /// The parent (`eth1.10`).
    pub parent: Option<String>,
    /// A bridge network's subnet is masqueraded on its way out (Docker's
    /// `enable_ip_masquerade`).
    pub masquerade: bool,
}

/// A network's IPAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectIpam {
    /// Always `default`.
    pub driver: &'static str,
    /// One entry per pool.
    pub config: Vec<InspectPool>,
}

/// One address pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectPool {
    /// Its subnet.
    pub subnet: IpNet,
    /// Where dynamic addresses come from.
    #[serde(rename = "IPRange")]
    pub ip_range: Option<IpNet>,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// Addresses never handed out, by name.
    pub auxiliary_addresses: BTreeMap<String, IpAddr>,
    /// How many addresses are taken.
    pub allocated: usize,
}

/// A workload's endpoint on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectEndpoint {
    /// The interface in the workload's namespace.
    pub interface: String,
    /// veth or TAP.
    pub port: EndpointKind,
    /// The switch's end of a veth pair.
    pub switch_end: Option<String>,
    /// The interface's MAC.
    pub mac_address: Mac,
    /// Its IPv4 address with the subnet's length.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<String>,
    /// Its IPv6 address with the subnet's length.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: Option<String>,
    /// Source-mode macvlan: the allowed source MACs.
    pub source_macs: Vec<Mac>,
    /// Its published ports, as Docker shows them (`0.0.0.0:8080->80/tcp`).
    pub ports: Vec<String>,
    /// Whether the endpoint is there, or gone with its namespace.
    pub state: EndpointState,
}

/// Whether a workload's endpoints are there (`attached`), or gone with a namespace deleted
/// behind l2ctl's back (`gone`: `detach` cleans up, nothing restores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// Its namespace exists.
    Attached,
    /// Its namespace was deleted.
    Gone,
}

impl EndpointState {
    /// `w`'s, given the workloads that are gone.
    pub fn of(w: &Workload, gone: &BTreeSet<String>) -> EndpointState {
        if gone.contains(&w.name) {
            EndpointState::Gone
        } else {
            EndpointState::Attached
        }
    }

    /// As `ps` shows it.
    pub fn describe(self) -> &'static str {
        match self {
            EndpointState::Attached => "attached",
            EndpointState::Gone => "gone (namespace deleted)",
        }
    }
}

/// `net` as `network inspect` shows it.
pub(super) fn inspect(state: &State, net: &Network, gone: &BTreeSet<String>) -> NetworkInspect {
    let config = net
        .pools
        .iter()
        .map(|p| InspectPool {
            subnet: p.subnet(),
            ip_range: p.ip_range(),
            gateway: p.gateway(),
            auxiliary_addresses: p.aux().clone(),
            allocated: p.allocated().count(),
        })
        .collect();
    let containers = state
        .endpoints_of(&net.name)
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
            let ep = InspectEndpoint {
                interface: e.interface.clone(),
                port: e.kind,
                switch_end: e.peer.clone(),
                mac_address: e.mac,
                ipv4_address: cidr(true),
                ipv6_address: cidr(false),
                source_macs: e.source_macs.clone(),
                ports: e.ports.iter().map(ToString::to_string).collect(),
                state: EndpointState::of(w, gone),
            };
            (w.name.clone(), ep)
        })
        .collect();
    NetworkInspect {
        name: net.name.clone(),
        id: net.id.clone(),
        driver: net.driver.name(),
        options: InspectOptions {
            mode: net.mode,
            parent: net.parent.as_ref().map(ToString::to_string),
            masquerade: net.masquerade,
        },
        internal: net.internal,
        hairpin: net.hairpin,
        predefined: net.predefined,
        host_port: net.host_port.clone(),
        host_access: net.host_access.clone(),
        ipam: InspectIpam {
            driver: "default",
            config,
        },
        containers,
    }
}

pub(super) fn describe(w: &Workload) -> String {
    match &w.sandbox {
        Sandbox::Own => {
            let n: Vec<&str> = w.endpoints.keys().map(String::as_str).collect();
            format!("on {}", n.join(", "))
        }
        Sandbox::None => "on none".into(),
        Sandbox::Host => "on host".into(),
        Sandbox::Container(o) => format!("container:{o}"),
        Sandbox::Engine(e) => {
            let n: Vec<&str> = w.endpoints.keys().map(String::as_str).collect();
            format!("on {} ({} {})", n.join(", "), e.engine.name(), e.container)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn inspect_speaks_dockers_keys_with_each_endpoints_addresses() {
        let pool = Pool::new(
            &PoolRequest {
                subnet: Some("10.20.0.0/24".parse().unwrap()),
                auto_gateway: true,
                ..PoolRequest::default()
            },
            &[],
        )
        .unwrap();
        let mut state = State::new(None);
        let parent = Parent {
            interface: "eth1".into(),
            vid: Some(10),
        };
        let net = Network {
            id: "abc".into(),
            pools: vec![pool],
            ..Network::sample(
                "front",
                Driver::Macvlan,
                Some(MacvlanMode::Source),
                Some(parent),
            )
        };
        state.networks.insert("front".into(), net.clone());
        let ep = Endpoint {
            interface: "eth0".into(),
            peer: Some("l2v-1".into()),
            kind: EndpointKind::Veth,
            mac: Mac([2, 0x42, 10, 20, 0, 2]),
            ips: vec!["10.20.0.2".parse().unwrap()],
            source_macs: vec![Mac([2, 0, 0, 0, 0, 7])],
            ports: Vec::new(),
            origin: None,
        };
        state.workloads.insert(
            "web".into(),
            Workload {
                name: "web".into(),
                sandbox: Sandbox::Own,
                made_netns: true,
                endpoints: [("front".to_owned(), ep)].into(),
                origin: None,
            },
        );
        let v = serde_json::to_value(inspect(&state, &net, &BTreeSet::new())).unwrap();
        assert_eq!(v["Driver"], "macvlan");
        assert_eq!(v["Options"]["mode"], "source");
        assert_eq!(v["Options"]["parent"], "eth1.10");
        assert_eq!(v["IPAM"]["Driver"], "default");
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.20.0.0/24");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.20.0.1");
        let web = &v["Containers"]["web"];
        assert_eq!(web["IPv4Address"], "10.20.0.2/24");
        assert_eq!(web["IPv6Address"], serde_json::Value::Null);
        assert_eq!(web["MacAddress"], "02:42:0a:14:00:02");
        assert_eq!(web["Port"], "veth");
        assert_eq!(web["SwitchEnd"], "l2v-1");
        assert_eq!(web["SourceMacs"][0], "02:00:00:00:00:07");
        assert_eq!(web["State"], "attached");
        assert_eq!(describe(&state.workloads["web"]), "on front");
        let gone = ["web".to_owned()].into();
        let v = serde_json::to_value(inspect(&state, &net, &gone)).unwrap();
        assert_eq!(v["Containers"]["web"]["State"], "gone");
    }
}
