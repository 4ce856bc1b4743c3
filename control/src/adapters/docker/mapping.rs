//! Docker's requests as l2ctl's: which network and workload a Docker id names, the
//! `NetworkArgs` of `docker network create -d l2sw -o …`, the `AttachArgs` of an endpoint, and
//! the answers built from what l2ctl made. Pure: no state, no netlink, no daemon.
//!
//! Names: CreateNetwork carries Docker's network id but not its name, so the l2ctl network is
//! `docker-` and the id's first 12 hex digits (what `docker network ls` shows as NETWORK ID),
//! with origin `docker:` and the whole id. Each endpoint is a workload of its own, `d-` and
//! the first 12 hex digits of the endpoint id.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::api::{
    CreateNetworkRequest, EndpointInterface, GENERIC_OPTIONS, INTERNAL, IpamData, JoinResponse,
};
use crate::args::{AttachArgs, Aux, NetworkArgs};
use crate::ops::CtlError;
use crate::state::{Driver, Endpoint, EndpointKind, Network};

/// The prefix of the l2ctl networks Docker makes.
pub const NETWORK_PREFIX: &str = "docker-";
/// The prefix of the workloads Docker's endpoints become.
pub const WORKLOAD_PREFIX: &str = "d-";
/// The `-o` options l2sw takes.
pub const OPTIONS: &[&str] = &[
    "type",
    "parent",
    "macvlan_mode",
    "ipvlan_mode",
    "ipvlan_flag",
    "hairpin",
    "masquerade",
];
/// How many hex digits of an id make a name, as Docker shortens ids.
const SHORT: usize = 12;

fn refused<T>(why: impl Into<String>) -> Result<T, CtlError> {
    Err(CtlError::Refused(why.into()))
}

fn short(what: &str, id: &str) -> Result<String, CtlError> {
    match id.get(..SHORT) {
        Some(s) if id.chars().all(|c| c.is_ascii_hexdigit()) => Ok(s.to_ascii_lowercase()),
        _ => refused(format!(
            "{what} id {id:?} is not a Docker id (at least {SHORT} hex digits)"
        )),
    }
}

/// The l2ctl network of Docker network `id`.
pub fn network_name(id: &str) -> Result<String, CtlError> {
    Ok(format!("{NETWORK_PREFIX}{}", short("network", id)?))
}

/// The workload of Docker endpoint `id`.
pub fn workload_name(id: &str) -> Result<String, CtlError> {
    Ok(format!("{WORKLOAD_PREFIX}{}", short("endpoint", id)?))
}

/// What the state records as the maker of Docker's network or endpoint `id`.
pub fn origin(id: &str) -> String {
    format!("docker:{id}")
}

/// `docker network create -d l2sw [-o …] [--subnet …] [--internal] NAME` as l2ctl's
/// `network create`.
pub fn network_args(req: &CreateNetworkRequest) -> Result<NetworkArgs, CtlError> {
    let opts = generic_options(req.options.get(GENERIC_OPTIONS))?;
    let get = |k: &str| opts.get(k).map(String::as_str);
    let driver = match get("type").unwrap_or("bridge") {
        "bridge" => Driver::Bridge,
        "macvlan" => Driver::Macvlan,
        "ipvlan" => Driver::Ipvlan,
        other => {
            return refused(format!(
                "-o type={other}: l2sw's network types are bridge, macvlan and ipvlan"
            ));
        }
    };
    let only_for = |key: &str, wanted: Driver| -> Result<(), CtlError> {
        match get(key) {
            Some(v) if driver != wanted => refused(format!(
                "-o {key}={v} applies to -o type={} networks, not {}",
                wanted.name(),
                driver.name()
            )),
            _ => Ok(()),
        }
    };
    only_for("macvlan_mode", Driver::Macvlan)?;
    only_for("ipvlan_mode", Driver::Ipvlan)?;
    only_for("ipvlan_flag", Driver::Ipvlan)?;
    only_for("hairpin", Driver::Bridge)?;
    only_for("masquerade", Driver::Bridge)?;
    if let Some(p) = get("parent")
        && driver == Driver::Bridge
    {
        return refused(format!(
            "-o parent={p} applies to -o type=macvlan and ipvlan networks; a bridge has no parent"
        ));
    }
    if let Some(m) = get("ipvlan_mode")
        && m != "l2"
    {
        return refused(format!(
            "-o ipvlan_mode={m}: l2sw switches frames, so its ipvlan is L2 mode only (ipvlan_mode=l2)"
        ));
    }
    let (mode_key, mode) = match driver {
        Driver::Macvlan => ("macvlan_mode", get("macvlan_mode")),
        _ => ("ipvlan_flag", get("ipvlan_flag")),
    };
    if let Some(m) = mode {
        let allowed = driver.modes();
        if !allowed.contains(&m) {
            return refused(format!(
                "-o {mode_key}={m}: a {} network's {mode_key} is one of {}",
                driver.name(),
                allowed.join(", ")
            ));
        }
        if get("parent").is_none() && matches!(m, "vepa" | "passthru" | "source") {
            return refused(format!(
                "-o {mode_key}={m} needs -o parent=IFACE: it is about frames to and from the parent, and without one the network is internal"
            ));
        }
    }
    let hairpin = match get("hairpin") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return refused(format!("-o hairpin={other}: expected true or false")),
    };
    // On by default, as Docker's bridge driver's enable_ip_masquerade.
    let masquerade = match get("masquerade") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return refused(format!("-o masquerade={other}: expected true or false")),
    };
    let internal = match req.options.get(INTERNAL) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => return refused(format!("option {INTERNAL}={other}: expected a boolean")),
    };
    // The overlay's options stay unset: Docker's own overlay driver is a swarm's, and l2sw's
    // overlay is l2ctl's (-d overlay).
    let mut args = NetworkArgs {
        mode: mode.map(str::to_owned),
        parent: get("parent").map(str::to_owned),
        internal,
        hairpin,
        masquerade,
        ..NetworkArgs::new(network_name(&req.network_id)?, driver)
    };
    for data in req.ipv4_data.iter().chain(&req.ipv6_data) {
        ipam(&mut args, data)?;
    }
    Ok(args)
}

/// The user's `-o KEY=VALUE` options; an option l2sw does not know is refused by name.
fn generic_options(v: Option<&Value>) -> Result<BTreeMap<String, String>, CtlError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return refused(format!(
                "option {GENERIC_OPTIONS}: expected KEY=VALUE options, not {other}"
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        if !OPTIONS.contains(&k.as_str()) {
            return refused(format!(
                "unknown option -o {k}: l2sw takes {}",
                OPTIONS.join(", ")
            ));
        }
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            other => return refused(format!("-o {k}={other}: expected a string")),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// An address with or without `/LEN`, as Docker writes gateways and aux addresses.
fn address(what: &str, s: &str) -> Result<IpAddr, CtlError> {
    let ip = s.split_once('/').map_or(s, |(ip, _)| ip);
    ip.parse()
        .map_err(|e| CtlError::Refused(format!("{what} {s:?} is not an IP address ({e})")))
}

/// One of Docker's IPAM pools as `--subnet`, `--gateway` and `--aux-address`. Docker keeps
/// `--ip-range` to itself (it hands out the addresses), so it never reaches a driver.
fn ipam(args: &mut NetworkArgs, data: &IpamData) -> Result<(), CtlError> {
    if !data.pool.is_empty() {
        args.subnet.push(data.pool.clone());
    }
    if !data.gateway.is_empty() {
        args.gateway.push(address("gateway", &data.gateway)?);
    }
    for (name, ip) in &data.aux_addresses {
        args.aux_address.push(Aux {
            name: name.clone(),
            ip: address(&format!("aux address {name}"), ip)?,
        });
    }
    Ok(())
}

/// The endpoint options l2sw takes (`docker network connect --driver-opt KEY=VALUE`,
/// `docker run --network name=NET,driver-opt=KEY=VALUE`): a source-mode macvlan endpoint's
/// allowed source MACs, comma-separated.
pub const ENDPOINT_OPTIONS: &[&str] = &["source_mac"];

/// An endpoint on l2ctl network `network` with the addresses and MAC Docker handed out, and
/// the user's endpoint options (Docker's own, `com.docker.*`, are not l2sw's business).
pub fn attach_args(
    network: &str,
    iface: &EndpointInterface,
    options: &BTreeMap<String, Value>,
) -> Result<AttachArgs, CtlError> {
    let mut source_mac = Vec::new();
    for (k, v) in options {
        if k.starts_with("com.docker.") {
            continue;
        }
        if !ENDPOINT_OPTIONS.contains(&k.as_str()) {
            return refused(format!(
                "unknown endpoint option {k} (--driver-opt): l2sw takes {}",
                ENDPOINT_OPTIONS.join(", ")
            ));
        }
        let Value::String(list) = v else {
            return refused(format!("--driver-opt {k}={v}: expected MAC[,MAC…]"));
        };
        for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            source_mac.push(m.parse().map_err(|e: l2sw::wire::ParseMacError| {
                CtlError::Refused(format!("--driver-opt {k}: {e}"))
            })?);
        }
    }
    let mut ip = Vec::new();
    for (what, s) in [
        ("address", &iface.address),
        ("IPv6 address", &iface.address_ipv6),
    ] {
        if !s.is_empty() {
            ip.push(address(what, s)?);
        }
    }
    let mac = match iface.mac_address.as_str() {
        "" => None,
        m => Some(
            m.parse()
                .map_err(|e: l2sw::wire::ParseMacError| CtlError::Refused(e.to_string()))?,
        ),
    };
    Ok(AttachArgs {
        network: network.to_owned(),
        ip,
        mac,
        port: EndpointKind::Veth,
        source_mac,
        // Docker's port bindings come with ProgramExternalConnectivity, not here.
        publish: Vec::new(),
    })
}

/// CreateEndpoint's answer: what l2ctl chose where Docker gave nothing (Docker refuses an
/// answer that changes what it gave).
pub fn endpoint_answer(
    asked: &EndpointInterface,
    ep: &Endpoint,
    net: &Network,
) -> EndpointInterface {
    let cidr = |v4: bool| {
        ep.ips.iter().find(|ip| ip.is_ipv4() == v4).and_then(|ip| {
            net.pools
                .iter()
                .find(|p| p.subnet().addr().is_ipv4() == v4)
                .map(|p| format!("{ip}/{}", p.subnet().prefix_len()))
        })
    };
    EndpointInterface {
        address: if asked.address.is_empty() {
            cidr(true).unwrap_or_default()
        } else {
            String::new()
        },
        address_ipv6: if asked.address_ipv6.is_empty() {
            cidr(false).unwrap_or_default()
        } else {
            String::new()
        },
        mac_address: if asked.mac_address.is_empty() {
            ep.mac.to_string()
        } else {
            String::new()
        },
    }
}

/// Join's answer: the link Docker moves into the container (named `eth` and an index there),
/// and the network's gateways unless it is internal (a macvlan or ipvlan network has one only
/// when it was given one).
pub fn join_answer(ep: &Endpoint, net: &Network) -> JoinResponse {
    let gw = |v4: bool| {
        net.pools
            .iter()
            .filter(|_| !net.internal)
            .filter_map(|p| p.gateway())
            .find(|g| g.is_ipv4() == v4)
            .map(|g| g.to_string())
            .unwrap_or_default()
    };
    JoinResponse {
        interface_name: super::api::InterfaceName {
            src_name: ep.interface.clone(),
            dst_prefix: "eth".into(),
        },
        gateway: gw(true),
        gateway_ipv6: gw(false),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const NID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn request(opts: &[(&str, &str)], internal: Option<bool>) -> CreateNetworkRequest {
        let generic: serde_json::Map<String, Value> = opts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let mut options = BTreeMap::from([(GENERIC_OPTIONS.to_owned(), Value::Object(generic))]);
        if let Some(i) = internal {
            options.insert(INTERNAL.to_owned(), Value::Bool(i));
        }
        CreateNetworkRequest {
            network_id: NID.into(),
            options,
            ipv4_data: vec![IpamData {
                pool: "10.9.0.0/24".into(),
                gateway: "10.9.0.1/24".into(),
                aux_addresses: BTreeMap::from([("router".into(), "10.9.0.254/24".into())]),
            }],
            ipv6_data: Vec::new(),
        }
    }

    fn refusal<T: std::fmt::Debug>(r: Result<T, CtlError>) -> String {
        match r {
            Err(CtlError::Refused(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn names_come_from_docker_ids() {
        assert_eq!(network_name(NID).unwrap(), "docker-0123456789ab");
        assert_eq!(
            workload_name(&NID.to_uppercase()).unwrap(),
            "d-0123456789ab"
        );
        assert_eq!(origin("ab"), "docker:ab");
        assert!(refusal(network_name("0123")).contains("\"0123\""));
        assert!(refusal(workload_name("0123456789abzz")).contains("not a Docker id"));
        assert!(refusal(network_name("")).contains("network id"));
    }

    #[test]
    fn a_plain_request_is_a_bridge_with_dockers_ipam() {
        let a = network_args(&request(&[], None)).unwrap();
        assert_eq!(a.name, "docker-0123456789ab");
        assert_eq!(a.driver, Driver::Bridge);
        assert_eq!(a.subnet, vec!["10.9.0.0/24"]);
        assert_eq!(a.gateway, vec!["10.9.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.aux_address[0].name, "router");
        assert_eq!(a.aux_address[0].ip.to_string(), "10.9.0.254");
        assert!(!a.internal && !a.hairpin && a.parent.is_none() && a.mode.is_none());
        assert!(
            a.masquerade,
            "on by default, as Docker's enable_ip_masquerade"
        );
        let mut r = request(&[("hairpin", "true"), ("masquerade", "false")], Some(true));
        r.ipv6_data.push(IpamData {
            pool: "fd00:9::/64".into(),
            gateway: "fd00:9::1/64".into(),
            aux_addresses: BTreeMap::new(),
        });
        let a = network_args(&r).unwrap();
        assert!(a.hairpin && a.internal && !a.masquerade);
        assert_eq!(a.subnet, vec!["10.9.0.0/24", "fd00:9::/64"]);
        assert_eq!(a.gateway.len(), 2);
        let r = CreateNetworkRequest {
            network_id: NID.into(),
            ..Default::default()
        };
        assert_eq!(network_args(&r).unwrap().subnet, Vec::<String>::new());
    }

    #[test]
    fn macvlan_and_ipvlan_options_mirror_dockers_drivers() {
        let a = network_args(&request(
            &[
                ("type", "macvlan"),
                ("parent", "eth1.10"),
                ("macvlan_mode", "vepa"),
            ],
            None,
        ))
        .unwrap();
        assert_eq!(
            (a.driver, a.parent.as_deref(), a.mode.as_deref()),
            (Driver::Macvlan, Some("eth1.10"), Some("vepa"))
        );
        let a = network_args(&request(
            &[
                ("type", "ipvlan"),
                ("parent", "eth1"),
                ("ipvlan_mode", "l2"),
                ("ipvlan_flag", "private"),
            ],
            None,
        ))
        .unwrap();
        assert_eq!(
            (a.driver, a.mode.as_deref()),
            (Driver::Ipvlan, Some("private"))
        );
        let a = network_args(&request(
            &[("type", "macvlan"), ("macvlan_mode", "private")],
            None,
        ))
        .unwrap();
        assert_eq!(
            a.parent, None,
            "private without a parent: an internal macvlan"
        );
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("colour", "blue")], "unknown option -o colour"),
            (&[("type", "overlay")], "-o type=overlay"),
            (&[("parent", "eth1")], "-o parent=eth1 applies to"),
            (
                &[("macvlan_mode", "vepa")],
                "-o macvlan_mode=vepa applies to -o type=macvlan",
            ),
            (
                &[("type", "macvlan"), ("hairpin", "true")],
                "-o hairpin=true applies to -o type=bridge",
            ),
            (
                &[("masquerade", "yes")],
                "-o masquerade=yes: expected true or false",
            ),
            (
                &[("type", "macvlan"), ("masquerade", "false")],
                "-o masquerade=false applies to -o type=bridge",
            ),
            (
                &[("type", "macvlan"), ("macvlan_mode", "mirror")],
                "-o macvlan_mode=mirror",
            ),
            (
                &[("type", "ipvlan"), ("ipvlan_mode", "l3")],
                "-o ipvlan_mode=l3",
            ),
            (
                &[("type", "ipvlan"), ("ipvlan_flag", "passthru")],
                "-o ipvlan_flag=passthru",
            ),
            (
                &[("type", "macvlan"), ("macvlan_mode", "vepa")],
                "needs -o parent",
            ),
            (
                &[("type", "macvlan"), ("macvlan_mode", "passthru")],
                "needs -o parent",
            ),
            (
                &[("type", "ipvlan"), ("ipvlan_flag", "vepa")],
                "needs -o parent",
            ),
            (&[("hairpin", "yes")], "-o hairpin=yes"),
        ];
        for (opts, want) in cases {
            let why = refusal(network_args(&request(opts, None)));
            assert!(why.contains(want), "{opts:?}: {why}");
        }
        let mut r = request(&[], None);
        r.options
            .insert(GENERIC_OPTIONS.into(), Value::String("x".into()));
        assert!(refusal(network_args(&r)).contains("KEY=VALUE"));
        let mut r = request(&[], None);
        r.ipv4_data[0].gateway = "10.9.0.x/24".into();
        assert!(refusal(network_args(&r)).contains("gateway \"10.9.0.x/24\""));
    }

    #[test]
    fn endpoints_take_the_addresses_docker_handed_out() {
        let iface = EndpointInterface {
            address: "10.9.0.7/24".into(),
            address_ipv6: "fd00:9::7/64".into(),
            mac_address: "02:42:0a:09:00:07".into(),
        };
        let none = BTreeMap::new();
        let a = attach_args("docker-0123456789ab", &iface, &none).unwrap();
        assert_eq!(a.network, "docker-0123456789ab");
        assert_eq!(a.ip.len(), 2);
        assert_eq!(a.ip[0].to_string(), "10.9.0.7");
        assert_eq!(a.mac.unwrap().to_string(), "02:42:0a:09:00:07");
        assert_eq!(a.port, EndpointKind::Veth);
        let plain = attach_args("n", &EndpointInterface::default(), &none).unwrap();
        assert!(plain.ip.is_empty() && plain.mac.is_none() && plain.source_mac.is_empty());
        let bad = EndpointInterface {
            mac_address: "02:42".into(),
            ..Default::default()
        };
        assert!(refusal(attach_args("n", &bad, &none)).contains("02:42"));
        let opts = |k: &str, v: Value| {
            BTreeMap::from([
                (
                    "com.docker.network.portmap".to_owned(),
                    Value::Array(Vec::new()),
                ),
                (k.to_owned(), v),
            ])
        };
        let a = attach_args(
            "n",
            &iface,
            &opts("source_mac", "02:00:00:00:00:01, 02:00:00:00:00:02".into()),
        )
        .unwrap();
        assert_eq!(a.source_mac.len(), 2);
        assert_eq!(a.source_mac[1].to_string(), "02:00:00:00:00:02");
        let why = refusal(attach_args("n", &iface, &opts("mtu", "9000".into())));
        assert!(why.contains("unknown endpoint option mtu"), "{why}");
        let why = refusal(attach_args(
            "n",
            &iface,
            &opts("source_mac", "02:00".into()),
        ));
        assert!(why.contains("source_mac") && why.contains("02:00"), "{why}");
        let why = refusal(attach_args(
            "n",
            &iface,
            &opts("source_mac", Value::Bool(true)),
        ));
        assert!(why.contains("MAC[,MAC"), "{why}");
    }

    fn net(driver: Driver, internal: bool, gateway: Option<&str>) -> Network {
        use crate::ipam::{Pool, PoolRequest};
        let mut n = Network::sample("n", driver, None, None);
        n.internal = internal;
        n.pools = vec![
            Pool::new(
                &PoolRequest {
                    subnet: Some("10.9.0.0/24".parse().unwrap()),
                    ip_range: None,
                    gateway: gateway.map(|g| g.parse().unwrap()),
                    aux: BTreeMap::new(),
                    auto_gateway: false,
                },
                &[],
            )
            .unwrap(),
        ];
        n
    }

    fn endpoint() -> Endpoint {
        Endpoint {
            interface: "l2w-0123456789a".into(),
            peer: Some("l2v-0123456789a".into()),
            kind: EndpointKind::Veth,
            mac: "02:42:0a:09:00:07".parse().unwrap(),
            ips: vec!["10.9.0.7".parse().unwrap()],
            source_macs: Vec::new(),
            origin: None,
            ports: Vec::new(),
        }
    }

    #[test]
    fn answers_carry_what_docker_lacks_and_the_gateway_where_there_is_one() {
        let n = net(Driver::Bridge, false, Some("10.9.0.1"));
        let j = join_answer(&endpoint(), &n);
        assert_eq!(j.interface_name.src_name, "l2w-0123456789a");
        assert_eq!(j.interface_name.dst_prefix, "eth");
        assert_eq!(j.gateway, "10.9.0.1");
        assert_eq!(j.gateway_ipv6, "");
        assert_eq!(
            join_answer(&endpoint(), &net(Driver::Bridge, true, Some("10.9.0.1"))).gateway,
            ""
        );
        assert_eq!(
            join_answer(&endpoint(), &net(Driver::Macvlan, false, None)).gateway,
            ""
        );

        let asked = EndpointInterface {
            address: "10.9.0.7/24".into(),
            ..Default::default()
        };
        let a = endpoint_answer(&asked, &endpoint(), &n);
        assert_eq!(
            a,
            EndpointInterface {
                address: String::new(),
                address_ipv6: String::new(),
                mac_address: "02:42:0a:09:00:07".into(),
            }
        );
        let a = endpoint_answer(&EndpointInterface::default(), &endpoint(), &n);
        assert_eq!(a.address, "10.9.0.7/24");
    }
}
