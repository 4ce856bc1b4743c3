//! The outside world, as docker0 gives it: outbound masquerade, published ports and the
//! isolation of bridge networks from each other through the host, all in one nftables table,
//! `ip l2sw`, in the host namespace. Nothing else of the host's rules is touched.
//!
//! The rules are a pure function of the state ([`plan`]), and [`apply`] replaces the whole
//! table with them in one atomic netlink batch (add, delete, add again), so a rerun is
//! harmless and two l2ctl processes, serialised by the state's lock, never lose each other's
//! rules. IPv4 only: IPv6 subnets are neither masqueraded nor published (see docs/spec.md).

// The one place in l2ctl with `unsafe`: libnftnl's `fib` expression, which `nftnl` lacks
// (see the module's doc). It is netlink message building for the control plane, not the
// dataplane's kernel interface, so it lives here rather than in the dataplane's port/sys.
#[allow(unsafe_code)]
mod nft;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::state::{Driver, State};

/// The table l2sw owns (family `ip`).
pub const TABLE: &str = "l2sw";
/// The most ports one `--publish` may name: each is a rule of its own.
pub const MAX_RANGE: u32 = 1024;

/// A transport protocol a port is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IP protocol number.
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// One published port: the host's `host_ip:host_port` (every address of the host when
/// `host_ip` is `None`) leads to the endpoint's `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMap {
    /// Only this address of the host (`None`: all of them, Docker's `0.0.0.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
    /// The host's port.
    pub host_port: u16,
    /// The workload's port.
    pub port: u16,
    /// TCP or UDP.
    pub proto: Proto,
}

impl PortMap {
    /// Whether the two cannot both be published: same protocol and host port, and host
    /// addresses that overlap (one of them all addresses, or the same one).
    pub fn clashes(&self, other: &PortMap) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

/// As `docker ps` shows it: `0.0.0.0:8080->80/tcp`.
impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.port,
            self.proto.name()
        )
    }
}

/// What `--publish [HOST_IP:]HOST_PORT[-END]:PORT[-END][/tcp|udp]` asks for: one mapping per
/// port of the range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Publish {
    /// The text as given.
    pub text: String,
    /// Its ports, one by one.
    pub maps: Vec<PortMap>,
}

/// `N` or `N-M`, each in 1..=65535, `N <= M`; `what` names it in errors.
fn port_range(spec: &str, what: &str, text: &str) -> Result<(u16, u16), String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(n) => Err(format!(
                "--publish {text:?}: {what} {n} is out of range (1-65535)"
            )),
            Err(_) => Err(format!(
                "--publish {text:?}: {what} {p:?} is not a port number"
            )),
        }
    };
    let (a, b) = match spec.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let p = one(spec)?;
            (p, p)
        }
    };
    if a > b {
        return Err(format!(
            "--publish {text:?}: {what} range {spec} runs backwards"
        ));
    }
    Ok((a, b))
}

impl FromStr for Publish {
    type Err = String;

    fn from_str(text: &str) -> Result<Publish, String> {
        let (ports, proto) = match text.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some((_, other)) => {
                return Err(format!(
                    "--publish {text:?}: unknown protocol {other:?} (tcp or udp)"
                ));
            }
            None => (text, Proto::Tcp),
        };
        let (host, inner) = ports.rsplit_once(':').ok_or_else(|| {
            format!(
                "--publish {text:?}: expected [HOST_IP:]HOST_PORT[-END]:PORT[-END][/tcp|udp], like 8080:80"
            )
        })?;
        let (host_ip, host_ports) = match host.rsplit_once(':') {
            Some((ip, p)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                let ip: IpAddr = ip.parse().map_err(|_| {
                    format!("--publish {text:?}: host address {ip:?} is not an IP address")
                })?;
                match ip {
                    IpAddr::V4(v4) if v4.is_unspecified() => (None, p),
                    IpAddr::V4(v4) if v4.is_loopback() => {
                        return Err(format!(
                            "--publish {text:?}: host address {v4} is loopback; l2sw has no userland proxy, so only the host's other addresses lead to a workload"
                        ));
                    }
                    IpAddr::V4(v4) => (Some(v4), p),
                    IpAddr::V6(_) => {
                        return Err(format!(
                            "--publish {text:?}: host address {ip} is IPv6; l2sw publishes on IPv4 only"
                        ));
                    }
                }
            }
            None => (None, host),
        };
        let (h0, h1) = port_range(host_ports, "host port", text)?;
        let (c0, c1) = port_range(inner, "port", text)?;
        if h1 - h0 != c1 - c0 {
            return Err(format!(
                "--publish {text:?}: host ports {host_ports} ({} ports) and ports {inner} ({} ports) differ in length",
                u32::from(h1 - h0) + 1,
                u32::from(c1 - c0) + 1
            ));
        }
        if u32::from(h1 - h0) + 1 > MAX_RANGE {
            return Err(format!(
                "--publish {text:?}: {} ports in one range; at most {MAX_RANGE}",
                u32::from(h1 - h0) + 1
            ));
        }
        let maps = (0..=h1 - h0)
            .map(|i| PortMap {
                host_ip,
                host_port: h0 + i,
                port: c0 + i,
                proto,
            })
            .collect();
        Ok(Publish {
            text: text.to_owned(),
            maps,
        })
    }
}

impl TryFrom<String> for Publish {
    type Error = String;
    fn try_from(s: String) -> Result<Publish, String> {
        s.parse()
    }
}

/// A bridge network's subnet leaving through every interface but its host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masquerade {
    /// The network's IPv4 subnet.
    pub subnet: Ipv4Net,
    /// Its host port.
    pub host_port: String,
}

/// A published port: traffic to the host's `host_ip:host_port` goes to `to:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    /// What is published.
    pub map: PortMap,
    /// The endpoint's address.
    pub to: Ipv4Addr,
}

/// The whole of table `ip l2sw`, computed from the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Outbound masquerade, per network.
    pub masquerade: Vec<Masquerade>,
    /// Networks with published ports: a workload reaching a published port of its own
    /// network through the host is masqueraded, so the answer comes back the same way.
    pub hairpin: Vec<Masquerade>,
    /// Published ports.
    pub published: Vec<Dnat>,
    /// The host ports of bridge networks: forwarding between two of them is dropped.
    pub isolated: Vec<String>,
}

impl Ruleset {
    /// Whether the table has nothing to hold (then it is removed).
    pub fn is_empty(&self) -> bool {
        self.masquerade.is_empty() && self.published.is_empty() && self.isolated.len() < 2
    }

    /// Whether the host must forward IPv4 (something leaves or enters through it).
    pub fn forwards(&self) -> bool {
        !(self.masquerade.is_empty() && self.published.is_empty())
    }
}

/// The rules the state asks for: every active bridge network with a host port is isolated
/// from the others, masqueraded unless `--masquerade=false`, and its endpoints' published
/// ports lead to their IPv4 addresses.
pub fn plan(state: &State) -> Ruleset {
    let mut r = Ruleset::default();
    for net in state.networks.values() {
        let Some(hp) = net
            .host_port
            .as_ref()
            .filter(|_| net.driver == Driver::Bridge && net.active && !net.internal)
        else {
            continue;
        };
        r.isolated.push(hp.clone());
        let subnet = net.pools.iter().find_map(|p| match p.subnet() {
            ipnet::IpNet::V4(v4) => Some(v4),
            ipnet::IpNet::V6(_) => None,
        });
        let Some(subnet) = subnet else { continue };
        let m = Masquerade {
            subnet,
            host_port: hp.clone(),
        };
        if net.masquerade {
            r.masquerade.push(m.clone());
        }
        let mut any = false;
        for (_, ep) in state.endpoints_of(&net.name) {
            let Some(to) = ep.ips.iter().find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            }) else {
                continue;
            };
            for map in &ep.ports {
                any = true;
                r.published.push(Dnat { map: *map, to });
            }
        }
        if any {
            r.hairpin.push(m);
        }
    }
    r.published.sort_by_key(|d| (d.map, d.to));
    r
}

/// Why the rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// The kernel has no nf_tables.
    #[error(
        "nftables table ip {TABLE}{place}: the kernel lacks nf_tables ({source}); published ports and masquerade need it"
    )]
    Unsupported {
        /// ` in namespace "NS"` or nothing.
        place: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The kernel refused the batch, or the socket failed.
    #[error("nftables table ip {TABLE}{place}: {source}")]
    Netlink {
        /// ` in namespace "NS"` or nothing.
        place: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// IPv4 forwarding could not be turned on.
    #[error("turning on IPv4 forwarding (net.ipv4.ip_forward){place}: {source}")]
    Forwarding {
        /// ` in namespace "NS"` or nothing.
        place: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

impl NatError {
    /// Whether the kernel lacks nf_tables.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, NatError::Unsupported { .. })
    }
}

/// ` in namespace "NS"`, or nothing for l2ctl's own.
fn place(ns: Option<&str>) -> String {
    ns.map(|n| format!(" in namespace {n:?}"))
        .unwrap_or_default()
}

/// Runs `work` in the host namespace `ns` (`None`: this one).
fn in_ns<T: Send>(ns: Option<&str>, work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    match ns {
        None => work(),
        Some(n) => l2sw::port::sys::netns::run_in(n, work).map_err(|e| e.source)?,
    }
}

/// Replaces table `ip l2sw` in the host namespace `ns` with `rules` (removes it when they are
/// empty), in one atomic batch, and turns on IPv4 forwarding when something leaves or enters
/// through the host.
pub fn apply(ns: Option<&str>, rules: &Ruleset) -> Result<(), NatError> {
    let sent = in_ns(ns, || nft::replace(rules));
    if let Err(source) = sent {
        let unsupported = matches!(
            source.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::EOPNOTSUPP)
        );
        // Without nf_tables l2ctl turns no forwarding on, so with nothing to masquerade or
        // publish the isolation stages have nothing to guard: the rest works without them.
        if unsupported && !rules.forwards() {
            return Ok(());
        }
        let place = place(ns);
        return Err(if unsupported {
            NatError::Unsupported { place, source }
        } else {
            NatError::Netlink { place, source }
        });
    }
    if rules.forwards() {
        in_ns(ns, || {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1\n")?;
            // The host's own traffic to its addresses (the output hook's DNAT) is routed to
            // a host port; loopback sources may not leave, so nothing more is needed.
            Ok(())
        })
        .map_err(|source| NatError::Forwarding {
            place: place(ns),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ipam::{Pool, PoolRequest};
    use crate::state::{Endpoint, EndpointKind, Network, Sandbox, Workload};
    use l2sw::wire::Mac;
    use std::collections::BTreeMap;

    fn err(s: &str) -> String {
        s.parse::<Publish>().unwrap_err()
    }

    #[test]
    fn docker_publish_syntax_parses() {
        let p: Publish = "8080:80".parse().unwrap();
        assert_eq!(p.maps.len(), 1);
        assert_eq!(p.maps[0].to_string(), "0.0.0.0:8080->80/tcp");
        let p: Publish = "192.0.2.1:5353:53/udp".parse().unwrap();
        assert_eq!(p.maps[0].to_string(), "192.0.2.1:5353->53/udp");
        let p: Publish = "0.0.0.0:9000-9002:7000-7002".parse().unwrap();
        let shown: Vec<String> = p.maps.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "0.0.0.0:9000->7000/tcp",
                "0.0.0.0:9001->7001/tcp",
                "0.0.0.0:9002->7002/tcp"
            ]
        );
        assert_eq!(p.maps[0].host_ip, None);
    }

    #[test]
    fn bad_publish_specs_name_the_value() {
        assert!(err("0:80").contains("host port 0 is out of range"));
        assert!(err("65536:80").contains("host port 65536 is out of range"));
        assert!(err("8080:70000").contains("port 70000 is out of range"));
        assert!(err("8080:80/sctp").contains("unknown protocol \"sctp\""));
        let e = err("8080-8081:80-82");
        assert!(
            e.contains("8080-8081") && e.contains("differ in length"),
            "{e}"
        );
        assert!(err("80").contains("expected [HOST_IP:]"));
        assert!(err("x:80").contains("\"x\" is not a port"));
        assert!(err("1.2.3:80:80").contains("\"1.2.3\" is not an IP"));
        assert!(err("[::1]:80:80").contains("IPv6"));
        assert!(err("127.0.0.1:80:80").contains("loopback"));
        assert!(err("90-80:90-80").contains("backwards"));
        assert!(err("1-2000:1-2000").contains("at most 1024"));
    }

    #[test]
    fn clashes_need_the_same_protocol_port_and_overlapping_address() {
        let m = |s: &str| s.parse::<Publish>().unwrap().maps[0];
        assert!(m("8080:80").clashes(&m("8080:81")));
        assert!(m("8080:80").clashes(&m("10.0.0.1:8080:81")));
        assert!(!m("10.0.0.2:8080:80").clashes(&m("10.0.0.1:8080:81")));
        assert!(!m("8080:80/udp").clashes(&m("8080:80/tcp")));
        assert!(!m("8081:80").clashes(&m("8080:80")));
    }

    fn bridge(name: &str, subnet: &str, hp: &str) -> Network {
        let pool = Pool::new(
            &PoolRequest {
                subnet: Some(subnet.parse().unwrap()),
                auto_gateway: true,
                ..PoolRequest::default()
            },
            &[],
        )
        .unwrap();
        Network {
            pools: vec![pool],
            host_port: Some(hp.into()),
            ..Network::sample(name, Driver::Bridge, None, None)
        }
    }

    fn state() -> State {
        let mut s = State::new(None);
        s.networks
            .insert("front".into(), bridge("front", "10.1.0.0/24", "l2br-a"));
        let mut back = bridge("back", "10.2.0.0/24", "l2br-b");
        back.masquerade = false;
        s.networks.insert("back".into(), back);
        let mut off = bridge("bridge", "172.17.0.0/16", "l2sw0");
        off.active = false;
        s.networks.insert("bridge".into(), off);
        let mut internal = bridge("int", "10.3.0.0/24", "x");
        internal.internal = true;
        s.networks.insert("int".into(), internal);
        let ep = |ip: &str, ports: &[&str]| Endpoint {
            interface: "eth0".into(),
            peer: None,
            kind: EndpointKind::Veth,
            mac: Mac([2, 0, 0, 0, 0, 1]),
            ips: vec![ip.parse().unwrap()],
            source_macs: Vec::new(),
            ports: ports
                .iter()
                .flat_map(|p| p.parse::<Publish>().unwrap().maps)
                .collect(),
            origin: None,
        };
        let mut endpoints = BTreeMap::new();
        endpoints.insert("front".into(), ep("10.1.0.2", &["8080:80", "53:53/udp"]));
        endpoints.insert("back".into(), ep("10.2.0.2", &[]));
        s.workloads.insert(
            "web".into(),
            Workload {
                name: "web".into(),
                sandbox: Sandbox::Own,
                made_netns: true,
                endpoints,
                origin: None,
            },
        );
        s
    }

    #[test]
    fn the_plan_follows_the_state() {
        let r = plan(&state());
        // back has --masquerade=false; bridge is not active yet; int is internal.
        assert_eq!(
            r.masquerade,
            [Masquerade {
                subnet: "10.1.0.0/24".parse().unwrap(),
                host_port: "l2br-a".into()
            }]
        );
        assert_eq!(r.isolated, ["l2br-b", "l2br-a"]);
        let shown: Vec<String> = r
            .published
            .iter()
            .map(|d| format!("{} {}", d.map, d.to))
            .collect();
        assert_eq!(
            shown,
            [
                "0.0.0.0:53->53/udp 10.1.0.2",
                "0.0.0.0:8080->80/tcp 10.1.0.2"
            ]
        );
        assert_eq!(r.hairpin.len(), 1);
        assert!(r.forwards() && !r.is_empty());
    }

    #[test]
    fn an_empty_state_empties_the_table() {
        let mut s = state();
        s.workloads.clear();
        for n in s.networks.values_mut() {
            n.masquerade = false;
        }
        s.networks.remove("back");
        let r = plan(&s);
        assert!(r.is_empty() && !r.forwards(), "{r:?}");
        assert_eq!(plan(&State::new(None)), Ruleset::default());
    }
}
