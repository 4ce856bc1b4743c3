//! The CNI wire types: the plugin's environment, the network configuration it reads on stdin,
//! the result it prints, and its error objects with the spec's codes. Pure: parsing and
//! formatting only.
//!
//! Written with serde by hand: the one Rust crate for CNI plugins (`cni-plugin` 0.2, last
//! released in 2021) reads the environment and exits the process from inside the library,
//! which leaves no room for typed errors, unit tests or an `l2ctl plugin cni` beside other
//! commands, and pins old versions of semver, ipnetwork and a logger of its own.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use l2sw::wire::Mac;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::args::NetworkArgs;

/// The spec versions this plugin speaks: CHECK came with 0.4.0; GC and STATUS (1.1.0) are not
/// implemented, so 1.1.0 is not advertised.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.4.0", "1.0.0"];
/// The version used for answers when the request names none this plugin speaks.
pub const LATEST: &str = "1.0.0";

/// The spec's well-known error codes (0–99) and l2sw's own (100+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    /// The configuration's `cniVersion` is not one this plugin speaks.
    IncompatibleVersion = 1,
    /// The configuration has a field this plugin does not know.
    UnsupportedField = 2,
    /// A `CNI_*` variable is missing or malformed.
    InvalidEnv = 4,
    /// An I/O failure (reading stdin, running the IPAM plugin).
    Io = 5,
    /// The configuration (or a delegate's answer) is not JSON of the expected shape.
    Decode = 6,
    /// The configuration is well-formed but wrong (a network that does not exist, a bad name).
    InvalidConfig = 7,
    /// Something this plugin needs is not there yet (the l2sw daemon is not running).
    TryAgainLater = 11,
    /// l2ctl refused the operation (an address taken, a name already used).
    Refused = 100,
    /// l2ctl's IPAM could not hand out an address.
    Ipam = 101,
    /// l2ctl's state directory could not be read or written.
    State = 102,
    /// The l2sw daemon refused or failed a request.
    Daemon = 103,
    /// A link, address, route or namespace operation failed.
    Netlink = 104,
    /// CHECK found the endpoint not as the previous result says.
    CheckFailed = 105,
}

/// A CNI error object (`{"cniVersion","code","msg","details"}` on stdout, non-zero exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{msg} (CNI error {code}){}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    /// The spec's or the plugin's code.
    pub code: u32,
    /// A short message.
    pub msg: String,
    /// More detail, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with `code` and a message.
    pub fn new(code: Code, msg: impl Into<String>) -> CniError {
        CniError {
            code: code as u32,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with details.
    pub fn details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// The JSON object printed on stdout, in the request's version.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut v = serde_json::json!({
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }
}

/// A CNI command (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach the container to the network.
    Add,
    /// Detach it (idempotent).
    Del,
    /// Check the attachment is as the previous result says.
    Check,
    /// Report the spec versions spoken.
    Version,
}

impl Command {
    /// Parses `CNI_COMMAND`.
    pub fn parse(s: &str) -> Result<Command, CniError> {
        match s {
            "ADD" => Ok(Command::Add),
            "DEL" => Ok(Command::Del),
            "CHECK" => Ok(Command::Check),
            "VERSION" => Ok(Command::Version),
            "GC" | "STATUS" => Err(CniError::new(
                Code::InvalidEnv,
                format!(
                    "CNI_COMMAND {s} is a CNI 1.1.0 command; l2sw speaks {}",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            )),
            other => Err(CniError::new(
                Code::InvalidEnv,
                format!("CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, VERSION"),
            )),
        }
    }

    /// `ADD`, `DEL`, `CHECK` or `VERSION`.
    pub fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
        }
    }
}

/// The `CNI_*` environment a runtime runs a plugin with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Option<String>,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<String>,
    /// `CNI_NETNS`: the namespace file.
    pub netns: Option<String>,
    /// `CNI_IFNAME`: the interface to make in the namespace.
    pub ifname: Option<String>,
    /// `CNI_ARGS`: `KEY=VALUE;…`.
    pub args: Option<String>,
    /// `CNI_PATH`: where plugins (the IPAM ones) are, `:`-separated.
    pub path: Option<String>,
}

impl Env {
    /// Reads the variables through `get` (empty values count as unset).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Env {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        Env {
            command: var("CNI_COMMAND"),
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args: var("CNI_ARGS"),
            path: var("CNI_PATH"),
        }
    }

    /// The process's own environment.
    pub fn from_process() -> Env {
        Env::from_vars(|k| std::env::var(k).ok())
    }

    /// A variable the command needs.
    pub fn need<'a>(&self, name: &str, value: &'a Option<String>) -> Result<&'a str, CniError> {
        value.as_deref().ok_or_else(|| {
            CniError::new(
                Code::InvalidEnv,
                format!(
                    "{name} is not set; {} needs it",
                    self.command.as_deref().unwrap_or("this command")
                ),
            )
        })
    }

    /// `CNI_ARGS` as key/value pairs: `IP` and `MAC` are used, `IgnoreUnknown=1` lets other
    /// keys pass (runtimes add their own, such as `K8S_POD_NAME`); otherwise an unknown key
    /// is refused, as the reference plugins do.
    pub fn cni_args(&self) -> Result<CniArgs, CniError> {
        let mut out = CniArgs::default();
        let Some(args) = &self.args else {
            return Ok(out);
        };
        let mut unknown = Vec::new();
        let mut ignore_unknown = false;
        for pair in args.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                CniError::new(
                    Code::InvalidEnv,
                    format!("CNI_ARGS: {pair:?} is not KEY=VALUE (pairs are separated by ';')"),
                )
            })?;
            match k {
                "IgnoreUnknown" => {
                    ignore_unknown = matches!(v.to_ascii_lowercase().as_str(), "1" | "true")
                }
                "IP" => {
                    for ip in v.split(',').filter(|s| !s.is_empty()) {
                        out.ips.push(parse_ip("CNI_ARGS IP", ip)?);
                    }
                }
                "MAC" => {
                    out.mac = Some(v.parse().map_err(|e| {
                        CniError::new(
                            Code::InvalidEnv,
                            format!("CNI_ARGS MAC={v}: not a MAC address ({e})"),
                        )
                    })?)
                }
                _ => unknown.push(k.to_owned()),
            }
        }
        if !unknown.is_empty() && !ignore_unknown {
            return Err(CniError::new(
                Code::InvalidEnv,
                format!(
                    "CNI_ARGS: unknown key {} (l2sw takes IP and MAC; add IgnoreUnknown=1 to pass others)",
                    unknown.join(", ")
                ),
            ));
        }
        Ok(out)
    }
}

/// What `CNI_ARGS` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// Static addresses (`IP=10.0.0.5`, comma-separated).
    pub ips: Vec<IpAddr>,
    /// A static MAC.
    pub mac: Option<Mac>,
}

/// An address, with or without a prefix length (`10.0.0.5` or `10.0.0.5/24`).
fn parse_ip(what: &str, s: &str) -> Result<IpAddr, CniError> {
    let bare = s.split_once('/').map_or(s, |(ip, _)| ip);
    bare.parse().map_err(|e| {
        CniError::new(
            Code::InvalidEnv,
            format!("{what}: {s:?} is not an IP address ({e})"),
        )
    })
}

/// The top-level keys this plugin reads; any other is refused with code 2 (`args` may carry
/// anything and is ignored, as the spec says).
const KNOWN_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "network",
    "create",
    "stateDir",
    "socket",
    "hostNetns",
    "ipam",
    "dns",
    "prevResult",
    "runtimeConfig",
    "capabilities",
    "args",
];

/// The network configuration on stdin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// The spec version the configuration (and the answer) follow.
    pub cni_version: String,
    /// The CNI network's name; also the l2sw network's when `network` is not given.
    pub name: String,
    /// The plugin (`l2sw`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The l2sw network (default: `name`).
    #[serde(default)]
    pub network: Option<String>,
    /// How to create the l2sw network if it does not exist: `l2ctl network create`'s options
    /// with their long names (`driver`, `mode`, `parent`, `subnet`, `gateway`, `ip-range`,
    /// `aux-address`, `internal`, `hairpin`).
    #[serde(default)]
    pub create: Option<Map<String, Value>>,
    /// l2ctl's state directory (default as l2ctl's `--state-dir`).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The daemon's control socket (default as l2ctl's `--socket`).
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// A named namespace playing the host (l2ctl's `--host-netns`), for experiments.
    #[serde(default)]
    pub host_netns: Option<String>,
    /// An IPAM plugin to delegate to (`{"type":"host-local",…}`); absent or
    /// `{"type":"l2ctl"}`: l2ctl's own IPAM.
    #[serde(default)]
    pub ipam: Option<Map<String, Value>>,
    /// DNS settings, passed through into the result.
    #[serde(default)]
    pub dns: Option<Value>,
    /// The previous result (a chain's earlier plugin on ADD; this plugin's on CHECK and DEL).
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// Capability arguments: `ips` and `mac` are used.
    #[serde(default)]
    pub runtime_config: Option<RuntimeConfig>,
}

/// `runtimeConfig`'s keys this plugin uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RuntimeConfig {
    /// Static addresses (`10.0.0.5/24` or `10.0.0.5`).
    #[serde(default)]
    pub ips: Vec<String>,
    /// A static MAC.
    #[serde(default)]
    pub mac: Option<String>,
}

impl NetConf {
    /// Parses stdin: not JSON or not an object is code 6, an unknown key code 2, a known key
    /// of the wrong shape code 7, a version this plugin does not speak code 1.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                Code::Decode,
                format!("the network configuration on stdin is not JSON: {e}"),
            )
        })?;
        let Value::Object(map) = &v else {
            return Err(CniError::new(
                Code::Decode,
                "the network configuration on stdin is not a JSON object",
            ));
        };
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN_KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(CniError::new(
                Code::UnsupportedField,
                format!(
                    "unsupported field {} in the network configuration",
                    unknown.join(", ")
                ),
            )
            .details(format!("l2sw reads {}", KNOWN_KEYS.join(", "))));
        }
        let conf: NetConf = serde_json::from_value(v).map_err(|e| {
            CniError::new(Code::InvalidConfig, format!("network configuration: {e}"))
        })?;
        check_version(&conf.cni_version)?;
        if conf.name.is_empty() {
            return Err(CniError::new(
                Code::InvalidConfig,
                "network configuration: name is empty",
            ));
        }
        Ok(conf)
    }

    /// The l2sw network's name.
    pub fn network_name(&self) -> &str {
        self.network.as_deref().unwrap_or(&self.name)
    }

    /// The delegated IPAM plugin's type; `None`: l2ctl's own IPAM.
    pub fn ipam_plugin(&self) -> Result<Option<&str>, CniError> {
        let Some(ipam) = &self.ipam else {
            return Ok(None);
        };
        match ipam.get("type") {
            None if ipam.is_empty() => Ok(None),
            Some(Value::String(t)) if t == "l2ctl" => Ok(None),
            Some(Value::String(t))
                if !t.is_empty() && !t.contains('/') && t != "." && t != ".." =>
            {
                Ok(Some(t))
            }
            Some(other) => Err(CniError::new(
                Code::InvalidConfig,
                format!("ipam type {other}: a plugin's file name in CNI_PATH, or \"l2ctl\""),
            )),
            None => Err(CniError::new(
                Code::InvalidConfig,
                "ipam has no type: name an IPAM plugin (host-local, static) or \"l2ctl\"",
            )),
        }
    }

    /// The `create` object as `l2ctl network create`'s arguments, named for the network
    /// (`name` inside it, if given, must agree); the delegated IPAM's subnets and gateways
    /// fill in a create object that names none.
    pub fn create_args(&self) -> Result<Option<NetworkArgs>, CniError> {
        let Some(create) = &self.create else {
            return Ok(None);
        };
        let mut map = create.clone();
        let name = self.network_name();
        match map.get("name") {
            Some(Value::String(n)) if n == name => {}
            None => {
                map.insert("name".into(), Value::String(name.to_owned()));
            }
            Some(other) => {
                return Err(CniError::new(
                    Code::InvalidConfig,
                    format!("create.name {other} differs from the network's name {name:?}"),
                ));
            }
        }
        if let Some(ipam) = self
            .ipam
            .as_ref()
            .filter(|_| self.ipam_plugin().ok().flatten().is_some())
        {
            let (subnets, gateways) = ipam_ranges(ipam);
            if !map.contains_key("subnet") && !subnets.is_empty() {
                map.insert("subnet".into(), serde_json::json!(subnets));
                if !map.contains_key("gateway") && !gateways.is_empty() {
                    map.insert("gateway".into(), serde_json::json!(gateways));
                }
            }
        }
        let args: NetworkArgs = serde_json::from_value(Value::Object(map)).map_err(|e| {
            let code = if e.to_string().starts_with("unknown field") {
                Code::UnsupportedField
            } else {
                Code::InvalidConfig
            };
            CniError::new(code, format!("create: {e}"))
                .details("create takes l2ctl network create's options: driver, mode, parent, subnet, gateway, ip-range, aux-address, internal, hairpin")
        })?;
        Ok(Some(args))
    }

    /// The static addresses and MAC asked for through `runtimeConfig` and `CNI_ARGS`.
    pub fn requested(&self, env: &Env) -> Result<CniArgs, CniError> {
        let mut req = env.cni_args()?;
        if let Some(rc) = &self.runtime_config {
            for ip in &rc.ips {
                let ip = parse_ip("runtimeConfig ips", ip)
                    .map_err(|e| CniError::new(Code::InvalidConfig, e.msg))?;
                if !req.ips.contains(&ip) {
                    req.ips.push(ip);
                }
            }
            if let Some(m) = &rc.mac {
                req.mac = Some(m.parse().map_err(|e| {
                    CniError::new(
                        Code::InvalidConfig,
                        format!("runtimeConfig mac {m:?}: not a MAC address ({e})"),
                    )
                })?);
            }
        }
        Ok(req)
    }
}

/// The subnets and gateways of a host-local (or similar) IPAM section: `subnet`/`gateway`
/// or `ranges: [[{subnet, gateway}, …], …]`, in order, one per family at most.
pub fn ipam_ranges(ipam: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let mut ranges: Vec<&Map<String, Value>> = vec![ipam];
    if let Some(Value::Array(sets)) = ipam.get("ranges") {
        for set in sets {
            if let Value::Array(rs) = set {
                ranges.extend(rs.iter().filter_map(Value::as_object));
            }
        }
    }
    let (mut subnets, mut gateways) = (Vec::new(), Vec::new());
    let mut families = Vec::new();
    for r in ranges {
        let Some(subnet) = r.get("subnet").and_then(Value::as_str) else {
            continue;
        };
        let Ok(net) = subnet.parse::<IpNet>() else {
            continue;
        };
        let v4 = net.addr().is_ipv4();
        if families.contains(&v4) {
            continue;
        }
        families.push(v4);
        subnets.push(net.trunc().to_string());
        if let Some(gw) = r.get("gateway").and_then(Value::as_str) {
            gateways.push(gw.to_owned());
        }
    }
    (subnets, gateways)
}

/// Refuses a version this plugin does not speak (code 1).
pub fn check_version(v: &str) -> Result<(), CniError> {
    if SUPPORTED_VERSIONS.contains(&v) {
        Ok(())
    } else {
        Err(CniError::new(
            Code::IncompatibleVersion,
            format!(
                "cniVersion {v:?} is not supported; l2sw speaks {}",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ))
    }
}

/// An interface in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its MAC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The namespace file it is in (empty: the host's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `"4"` or `"6"`: in 0.4.0 results only (1.0.0 dropped it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The address with its prefix length.
    pub address: IpNet,
    /// The gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Its interface: an index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination.
    pub dst: IpNet,
    /// The next hop (none: on link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// A success result (ADD's answer, an IPAM plugin's answer, a `prevResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CniResult {
    /// Its spec version.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Interfaces (IPAM plugins give none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS settings, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
}

impl CniResult {
    /// Reads a result (`prevResult`, an IPAM plugin's stdout); code 6 when it is not one.
    pub fn from_value(what: &str, v: Value) -> Result<CniResult, CniError> {
        serde_json::from_value(v)
            .map_err(|e| CniError::new(Code::Decode, format!("{what} is not a CNI result: {e}")))
    }

    /// Written for `version`: 0.4.0 results say each address's IP version, 1.0.0 ones do not.
    pub fn for_version(mut self, version: &str) -> CniResult {
        let old = version.starts_with("0.");
        for ip in &mut self.ips {
            ip.version = old.then(|| {
                if ip.address.addr().is_ipv4() {
                    "4"
                } else {
                    "6"
                }
                .into()
            });
        }
        self.cni_version = version.to_owned();
        self
    }
}

/// VERSION's answer.
pub fn version_info(requested: Option<&str>) -> Value {
    let v = requested
        .filter(|r| SUPPORTED_VERSIONS.contains(r))
        .unwrap_or(LATEST);
    serde_json::json!({ "cniVersion": v, "supportedVersions": SUPPORTED_VERSIONS })
}

/// The workload l2ctl keeps for one CNI attachment: `cni-` + the first 12 characters of the
/// container id (letters and digits kept) + `-` + the interface, within l2ctl's name rules.
pub fn workload_name(container_id: &str, ifname: &str) -> String {
    let id: String = container_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let ifname: String = ifname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("cni-{id}-{ifname}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::Driver;

    fn conf(extra: &str) -> Result<NetConf, CniError> {
        NetConf::parse(
            format!(r#"{{"cniVersion":"1.0.0","name":"podnet","type":"l2sw"{extra}}}"#).as_bytes(),
        )
    }

    #[test]
    fn a_configuration_reads_and_names_its_network() {
        let c = conf(r#","network":"front","stateDir":"/tmp/s","socket":"/tmp/l.sock""#).unwrap();
        assert_eq!(c.network_name(), "front");
        assert_eq!(c.state_dir, Some(PathBuf::from("/tmp/s")));
        assert_eq!(c.ipam_plugin().unwrap(), None);
        let c = conf("").unwrap();
        assert_eq!(c.network_name(), "podnet");
        let c = conf(r#","ipam":{"type":"l2ctl"}"#).unwrap();
        assert_eq!(c.ipam_plugin().unwrap(), None);
        let c = conf(r#","ipam":{"type":"host-local","subnet":"10.9.0.0/24"}"#).unwrap();
        assert_eq!(c.ipam_plugin().unwrap(), Some("host-local"));
    }

    #[test]
    fn bad_configurations_get_the_spec_codes() {
        let code = |r: Result<NetConf, CniError>| r.unwrap_err().code;
        assert_eq!(code(NetConf::parse(b"{not json")), Code::Decode as u32);
        assert_eq!(code(NetConf::parse(b"[1]")), Code::Decode as u32);
        assert_eq!(
            code(conf(r#","ipMasq":true"#)),
            Code::UnsupportedField as u32
        );
        assert_eq!(code(conf(r#","network":7"#)), Code::InvalidConfig as u32);
        assert_eq!(
            code(NetConf::parse(br#"{"name":"x","type":"l2sw"}"#)),
            Code::InvalidConfig as u32
        );
        assert_eq!(
            code(NetConf::parse(
                br#"{"cniVersion":"0.3.1","name":"x","type":"l2sw"}"#
            )),
            Code::IncompatibleVersion as u32
        );
        let e = conf(r#","ipam":{"type":"../evil"}"#)
            .unwrap()
            .ipam_plugin()
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig as u32);
        let e = conf(r#","ipam":{"subnet":"10.0.0.0/24"}"#)
            .unwrap()
            .ipam_plugin()
            .unwrap_err();
        assert!(e.msg.contains("no type"), "{e}");
    }

    #[test]
    fn create_takes_network_create_names_and_ipam_subnets() {
        let c = conf(
            r#","create":{"driver":"macvlan","mode":"private","parent":"eth1.10","subnet":["10.5.0.0/24"],"ip-range":["10.5.0.128/25"]}"#,
        )
        .unwrap();
        let a = c.create_args().unwrap().unwrap();
        assert_eq!(a.name, "podnet");
        assert_eq!(a.driver, Driver::Macvlan);
        assert_eq!(a.mode.as_deref(), Some("private"));
        assert_eq!(a.ip_range, vec!["10.5.0.128/25".to_owned()]);
        // No subnet: the delegated IPAM's ranges give it, with their gateway.
        let c = conf(
            r#","create":{},"ipam":{"type":"host-local","ranges":[[{"subnet":"10.6.0.0/24","gateway":"10.6.0.254"}]]}"#,
        )
        .unwrap();
        let a = c.create_args().unwrap().unwrap();
        assert_eq!(a.subnet, vec!["10.6.0.0/24".to_owned()]);
        assert_eq!(a.gateway, vec!["10.6.0.254".parse::<IpAddr>().unwrap()]);
        let e = conf(r#","create":{"colour":"red"}"#)
            .unwrap()
            .create_args()
            .unwrap_err();
        assert_eq!(e.code, Code::UnsupportedField as u32, "{e}");
        let e = conf(r#","create":{"driver":"token-ring"}"#)
            .unwrap()
            .create_args()
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig as u32, "{e}");
        let e = conf(r#","create":{"name":"other"}"#)
            .unwrap()
            .create_args()
            .unwrap_err();
        assert!(e.msg.contains("differs"), "{e}");
        assert_eq!(conf("").unwrap().create_args().unwrap(), None);
    }

    #[test]
    fn cni_args_and_runtime_config_give_static_addresses() {
        let env = Env {
            args: Some("IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5;MAC=02:00:00:00:00:09".into()),
            ..Env::default()
        };
        let c = conf(r#","runtimeConfig":{"ips":["10.0.0.5/24","fd00::5/64"]}"#).unwrap();
        let r = c.requested(&env).unwrap();
        assert_eq!(
            r.ips,
            vec![
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
        assert_eq!(r.mac, Some("02:00:00:00:00:09".parse().unwrap()));
        let strict = Env {
            args: Some("K8S_POD_NAME=web".into()),
            ..Env::default()
        };
        assert_eq!(strict.cni_args().unwrap_err().code, Code::InvalidEnv as u32);
        let broken = Env {
            args: Some("IP".into()),
            ..Env::default()
        };
        assert_eq!(broken.cni_args().unwrap_err().code, Code::InvalidEnv as u32);
        let bad_ip = Env {
            args: Some("IP=10.0.0.300".into()),
            ..Env::default()
        };
        assert!(bad_ip.cni_args().unwrap_err().msg.contains("10.0.0.300"));
    }

    #[test]
    fn commands_and_versions() {
        assert_eq!(Command::parse("ADD").unwrap(), Command::Add);
        assert_eq!(
            Command::parse("GC").unwrap_err().code,
            Code::InvalidEnv as u32
        );
        assert_eq!(
            Command::parse("add").unwrap_err().code,
            Code::InvalidEnv as u32
        );
        let v = version_info(Some("0.4.0"));
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(
            v["supportedVersions"],
            serde_json::json!(["0.4.0", "1.0.0"])
        );
        assert_eq!(version_info(Some("9.9.9"))["cniVersion"], LATEST);
        assert_eq!(version_info(None)["cniVersion"], LATEST);
    }

    #[test]
    fn results_follow_the_version_asked_for() {
        let r = CniResult::from_value(
            "test",
            serde_json::json!({
                "cniVersion": "1.0.0",
                "ips": [{"address": "10.1.0.2/24", "gateway": "10.1.0.1"},
                        {"address": "fd00::2/64"}],
                "routes": [{"dst": "0.0.0.0/0"}],
            }),
        )
        .unwrap();
        let old = serde_json::to_value(r.clone().for_version("0.4.0")).unwrap();
        assert_eq!(old["ips"][0]["version"], "4");
        assert_eq!(old["ips"][1]["version"], "6");
        assert_eq!(old["cniVersion"], "0.4.0");
        let new = serde_json::to_value(r.for_version("1.0.0")).unwrap();
        assert!(new["ips"][0].get("version").is_none());
        assert!(new.get("interfaces").is_none());
        let e = CniResult::from_value("prevResult", serde_json::json!({"ips": 3})).unwrap_err();
        assert_eq!(e.code, Code::Decode as u32);
    }

    #[test]
    fn errors_print_as_cni_error_objects() {
        let e = CniError::new(Code::TryAgainLater, "no daemon").details("start l2sw run");
        assert_eq!(
            e.to_json("1.0.0"),
            serde_json::json!({"cniVersion":"1.0.0","code":11,"msg":"no daemon","details":"start l2sw run"})
        );
        assert!(
            CniError::new(Code::Refused, "x")
                .to_json("0.4.0")
                .get("details")
                .is_none()
        );
    }

    #[test]
    fn workload_names_keep_to_l2ctl_rules() {
        assert_eq!(
            workload_name("0123456789abcdef0123", "eth0"),
            "cni-0123456789ab-eth0"
        );
        assert_eq!(workload_name("a:b/c", "net 1"), "cni-abc-net_1");
    }
}
