//! l2sw's CNI plugin (spec 0.4.0 and 1.0.0): a thin adapter over the operations `l2ctl`
//! uses. ADD makes one workload per (container id, interface), `cni-<id>-<ifname>`, through
//! [`Ctl::attach_engine`]; DEL removes it through the same detach as `l2ctl detach`; CHECK
//! compares the namespace with the previous result. It never talks to the daemon except
//! through [`Ctl`], so endpoints it makes are in l2ctl's state, restored after a daemon
//! restart and listed by `l2ctl ps`.
//!
//! The binary is l2ctl itself: `l2ctl plugin cni`, or l2ctl started under the file name
//! `l2sw` (a symlink in `CNI_PATH`) with `CNI_COMMAND` set. Invariants: every failure is a
//! CNI error object on stdout with a non-zero exit; DEL succeeds whatever is already gone;
//! an ADD that fails leaves no workload, link, port or delegated address behind.

pub mod delegate;
pub mod types;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ipnet::IpNet;
use serde_json::Value;

use crate::args::{AttachArgs, NetworkArgs};
use crate::client::ClientError;
use crate::nl::{self, Links};
use crate::ops::{Ctl, CtlError, SandboxPart};
use crate::state::{
    self, Endpoint, EndpointKind, Engine, EngineSandbox, Network, Sandbox, State, Store,
};
pub use types::{
    CniError, CniResult, Code, Command, Env, Interface, IpConfig, LATEST, NetConf, Route,
    SUPPORTED_VERSIONS,
};

/// The file name under which l2ctl acts as the CNI plugin of type `l2sw`.
pub const PLUGIN_NAME: &str = "l2sw";

/// Where l2ctl's state and the daemon are when the configuration does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// l2ctl's state directory.
    pub state_dir: PathBuf,
    /// The daemon's control socket.
    pub socket: PathBuf,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            state_dir: PathBuf::from(state::DEFAULT_DIR),
            socket: PathBuf::from(l2sw::control::DEFAULT_SOCKET),
        }
    }
}

/// Whether this process was started as the CNI plugin: its file name is `l2sw` and a
/// runtime set `CNI_COMMAND`.
pub fn invoked_as_plugin() -> bool {
    let named = std::env::args_os()
        .next()
        .is_some_and(|p| is_plugin_path(Path::new(&p)));
    named && std::env::var_os("CNI_COMMAND").is_some_and(|c| !c.is_empty())
}

/// Runs one CNI command from the process's environment and stdin, prints the answer (or the
/// error object) on stdout and returns the exit code.
pub fn main(defaults: &Defaults) -> ExitCode {
    let env = Env::from_process();
    let mut stdin = Vec::new();
    let answer = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => handle(&env, &stdin, defaults),
        Err(e) => Err((
            LATEST.to_owned(),
            CniError::new(Code::Io, format!("reading stdin: {e}")),
        )),
    };
    let (out, code) = match answer {
        Ok(Some(v)) => (Some(v), ExitCode::SUCCESS),
        Ok(None) => (None, ExitCode::SUCCESS),
        Err((version, e)) => {
            eprintln!("l2sw CNI plugin: {e}");
            (Some(e.to_json(&version)), ExitCode::FAILURE)
        }
    };
    if let Some(v) = out {
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{v}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    code
}

/// One CNI command: the answer to print on success (`None`: nothing), or the error with the
/// version to write it in.
pub fn handle(
    env: &Env,
    stdin: &[u8],
    defaults: &Defaults,
) -> Result<Option<Value>, (String, CniError)> {
    let command = env
        .command
        .as_deref()
        .ok_or_else(|| {
            CniError::new(
                Code::InvalidEnv,
                "CNI_COMMAND is not set: l2sw's CNI plugin is run by a container runtime",
            )
        })
        .and_then(Command::parse)
        .map_err(|e| (LATEST.to_owned(), e))?;
    if command == Command::Version {
        // stdin is `{"cniVersion": …}` or nothing.
        let asked = serde_json::from_slice::<Value>(stdin).ok().and_then(|v| {
            v.get("cniVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        return Ok(Some(types::version_info(asked.as_deref())));
    }
    let conf = NetConf::parse(stdin).map_err(|e| {
        // Answer in the version asked for when it is one spoken, else in the latest.
        let v = serde_json::from_slice::<Value>(stdin)
            .ok()
            .and_then(|v| {
                v.get("cniVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
            .unwrap_or_else(|| LATEST.to_owned());
        (v, e)
    })?;
    let version = conf.cni_version.clone();
    let fail = |e| (version.clone(), e);
    if conf.kind != PLUGIN_NAME {
        return Err(fail(CniError::new(
            Code::InvalidConfig,
            format!("type {:?}: this is the {PLUGIN_NAME} plugin", conf.kind),
        )));
    }
    match command {
        Command::Add => add(env, &conf, stdin, defaults)
            .map(|r| Some(serde_json::to_value(r.for_version(&version)).unwrap_or(Value::Null)))
            .map_err(fail),
        Command::Del => del(env, &conf, stdin, defaults)
            .map(|()| None)
            .map_err(fail),
        Command::Check => check(env, &conf, stdin, defaults)
            .map(|()| None)
            .map_err(fail),
        Command::Version => Ok(None),
    }
}

/// Maps l2ctl's errors to CNI codes: a daemon that is not running is "try again later".
pub fn from_ctl(e: CtlError) -> CniError {
    let code = match &e {
        CtlError::Refused(_) => Code::Refused,
        CtlError::Sandbox { .. } => Code::InvalidEnv,
        CtlError::Ipam(_) => Code::Ipam,
        CtlError::State(_) => Code::State,
        CtlError::Daemon(ClientError::NoDaemon { .. }) => Code::TryAgainLater,
        CtlError::Daemon(_) => Code::Daemon,
        CtlError::Netlink(_) | CtlError::Nat(_) => Code::Netlink,
    };
    CniError::new(code, e.to_string())
}

fn state_dir(conf: &NetConf, defaults: &Defaults) -> PathBuf {
    conf.state_dir
        .clone()
        .unwrap_or_else(|| defaults.state_dir.clone())
}

fn open(conf: &NetConf, defaults: &Defaults) -> Result<Ctl, CniError> {
    let socket = conf
        .socket
        .clone()
        .unwrap_or_else(|| defaults.socket.clone());
    Ctl::open(
        &state_dir(conf, defaults),
        &socket,
        conf.host_netns.as_deref(),
    )
    .map_err(|e| match e {
        // A state of another host namespace is a configuration mistake.
        CtlError::Refused(m) => CniError::new(Code::InvalidConfig, m),
        other => from_ctl(other),
    })
}

/// The workload and network of the attachment (`container`, `ifname`) on `network`.
fn find_attachment(
    state: &State,
    container: &str,
    ifname: &str,
    network: &str,
) -> Option<(String, Endpoint)> {
    state.workloads.values().find_map(|w| match &w.sandbox {
        Sandbox::Engine(e) if e.engine == Engine::Cni && e.container == container => w
            .endpoints
            .get(network)
            .filter(|ep| ep.interface == ifname)
            .map(|ep| (w.name.clone(), ep.clone())),
        _ => None,
    })
}

/// The network the configuration names, created first from its `create` object if missing
/// (under l2ctl's state lock, so concurrent ADDs create it once).
fn ensure_network(
    ctl: &mut Ctl,
    name: &str,
    create: Option<NetworkArgs>,
) -> Result<Network, CniError> {
    if let Some(net) = ctl.state.networks.get(name) {
        if !net.driver.switched() {
            return Err(CniError::new(
                Code::InvalidConfig,
                format!(
                    "network {name} is l2ctl's predefined {} network, which has no endpoints",
                    net.driver.name()
                ),
            ));
        }
        return Ok(net.clone());
    }
    let Some(args) = create else {
        return Err(CniError::new(
            Code::InvalidConfig,
            format!(
                "l2sw network {name:?} does not exist: create it (`l2ctl network create {name} …`) or describe it in a \"create\" object"
            ),
        ));
    };
    let net = ctl.create_network(&args, None).map_err(|e| match e {
        // Whatever the request breaks (a bad parent, an overlapping subnet) is the
        // configuration's fault.
        CtlError::Refused(m) => {
            CniError::new(Code::InvalidConfig, format!("creating network {name}: {m}"))
        }
        CtlError::Ipam(i) => {
            CniError::new(Code::InvalidConfig, format!("creating network {name}: {i}"))
        }
        other => from_ctl(other),
    })?;
    Ok(net.clone())
}

/// Gives a restarted daemon its networks back first, as every l2ctl command does; a daemon
/// that is not there is reported by the step that needs it.
fn restore(ctl: &mut Ctl) {
    if let Err(e) = ctl.sync()
        && !matches!(e, CtlError::Daemon(ClientError::NoDaemon { .. }))
    {
        eprintln!("l2sw CNI plugin: warning: could not restore the saved state: {e}");
    }
}

fn is_default(dst: &IpNet) -> bool {
    dst.prefix_len() == 0
}

fn add(env: &Env, conf: &NetConf, raw: &[u8], defaults: &Defaults) -> Result<CniResult, CniError> {
    let container = env.need("CNI_CONTAINERID", &env.container_id)?;
    let netns = env.need("CNI_NETNS", &env.netns)?;
    let ifname = env.need("CNI_IFNAME", &env.ifname)?;
    // Checked before anything is allocated (attach_engine checks again).
    if !nl::netns_exists(netns) {
        return Err(CniError::new(
            Code::InvalidEnv,
            format!("CNI_NETNS {netns}: not a network namespace (file)"),
        ));
    }
    if ifname.len() > 15
        || ifname.contains(['/', ':', ' ', '\0'])
        || ifname == "."
        || ifname == ".."
    {
        return Err(CniError::new(
            Code::InvalidEnv,
            format!(
                "CNI_IFNAME {ifname:?}: not an interface name the kernel takes (1 to 15 bytes, no '/', ':' or space)"
            ),
        ));
    }
    let requested = conf.requested(env)?;
    let create = conf.create_args()?;
    let ipam = conf.ipam_plugin()?;
    let prev = conf
        .prev_result
        .clone()
        .map(|v| CniResult::from_value("prevResult", v))
        .transpose()?;
    let network = conf.network_name();
    let mut ctl = open(conf, defaults)?;
    restore(&mut ctl);
    let net = ensure_network(&mut ctl, network, create)?;
    let workload = types::workload_name(container, ifname);
    if let Some((w, _)) = find_attachment(&ctl.state, container, ifname, network) {
        return Err(CniError::new(
            Code::Refused,
            format!(
                "container {container} already has {ifname} on network {network} (workload {w}); DEL it first"
            ),
        ));
    }
    let delegated = match ipam {
        Some(kind) => delegate::run(env, kind, Command::Add, raw)?,
        None => None,
    };
    let made = attach(
        &mut ctl,
        &net,
        &workload,
        container,
        netns,
        ifname,
        &requested,
        delegated.as_ref(),
    );
    match made {
        Ok(ep) => Ok(result(
            &ctl,
            conf,
            &net,
            &ep,
            netns,
            prev,
            delegated.as_ref(),
        )),
        Err(e) => {
            if let Some(kind) = ipam
                && let Err(undo) = delegate::run(env, kind, Command::Del, raw)
            {
                eprintln!("l2sw CNI plugin: releasing the delegated addresses: {undo}");
            }
            Err(e)
        }
    }
}

/// The endpoint itself: addresses from the delegated IPAM (or l2ctl's), the link, the port,
/// and the IPAM's extra on-link routes. Undone whole on failure.
#[allow(clippy::too_many_arguments)]
fn attach(
    ctl: &mut Ctl,
    net: &Network,
    workload: &str,
    container: &str,
    netns: &str,
    ifname: &str,
    requested: &types::CniArgs,
    delegated: Option<&CniResult>,
) -> Result<Endpoint, CniError> {
    let ips: Vec<IpAddr> = match delegated {
        Some(r) => r.ips.iter().map(|i| i.address.addr()).collect(),
        None => requested.ips.clone(),
    };
    let extra: Vec<&Route> = delegated
        .map(|r| r.routes.iter().filter(|r| !is_default(&r.dst)).collect())
        .unwrap_or_default();
    if let Some(r) = extra.iter().find(|r| r.gw.is_some()) {
        return Err(CniError::new(
            Code::InvalidConfig,
            format!(
                "IPAM route {} via {}: l2sw routes through the network's gateway; only on-link routes (no gw) can be added",
                r.dst,
                r.gw.map(|g| g.to_string()).unwrap_or_default()
            ),
        ));
    }
    let req = AttachArgs {
        network: net.name.clone(),
        ip: ips,
        mac: requested.mac,
        port: EndpointKind::Veth,
        source_mac: Vec::new(),
        publish: Vec::new(),
    };
    let sandbox = EngineSandbox {
        engine: Engine::Cni,
        container: container.to_owned(),
        netns: Some(netns.to_owned()),
    };
    let ep = ctl
        .attach_engine(workload, &req, sandbox, ifname, None)
        .map_err(|e| match e {
            e @ CtlError::Sandbox { what, .. } => {
                let var = match what {
                    SandboxPart::Namespace => "CNI_NETNS",
                    SandboxPart::Interface => "CNI_IFNAME",
                };
                CniError::new(Code::InvalidEnv, format!("{var}: {e}"))
            }
            other => from_ctl(other),
        })?;
    let inside = Links::new(Some(netns));
    for r in extra {
        if let Err(e) = inside.add_route(r.dst, ifname)
            && !e.is_exists()
        {
            let _ = ctl.detach_engine(workload, &net.name);
            return Err(from_ctl(e.into()));
        }
    }
    Ok(ep)
}

/// ADD's answer: a chain's earlier interfaces, then the switch's end (host namespace) and the
/// container's interface, with the addresses, gateways and routes as configured.
fn result(
    ctl: &Ctl,
    conf: &NetConf,
    net: &Network,
    ep: &Endpoint,
    netns: &str,
    prev: Option<CniResult>,
    delegated: Option<&CniResult>,
) -> CniResult {
    let mut r = prev.unwrap_or(CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces: Vec::new(),
        ips: Vec::new(),
        routes: Vec::new(),
        dns: None,
    });
    if let Some(peer) = &ep.peer {
        r.interfaces.push(Interface {
            name: peer.clone(),
            mac: ctl
                .host()
                .mac(peer)
                .map(|m| m.to_string())
                .unwrap_or_default(),
            sandbox: String::new(),
        });
    }
    let index = r.interfaces.len();
    r.interfaces.push(Interface {
        name: ep.interface.clone(),
        mac: ep.mac.to_string(),
        sandbox: netns.to_owned(),
    });
    for ip in &ep.ips {
        let pool = net.pools.iter().find(|p| p.contains(*ip));
        let prefix = pool.map_or(if ip.is_ipv4() { 32 } else { 128 }, |p| {
            p.subnet().prefix_len()
        });
        r.ips.push(IpConfig {
            version: None,
            address: IpNet::new(*ip, prefix).unwrap_or_else(|_| IpNet::from(*ip)),
            gateway: pool.and_then(|p| p.gateway()),
            interface: Some(index),
        });
    }
    if !net.internal {
        for gw in net.pools.iter().filter_map(|p| p.gateway()) {
            let any = if gw.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
            if let Ok(dst) = any.parse() {
                r.routes.push(Route { dst, gw: Some(gw) });
            }
        }
    }
    if let Some(d) = delegated {
        r.routes
            .extend(d.routes.iter().filter(|x| !is_default(&x.dst)).cloned());
    }
    if let Some(dns) = conf
        .dns
        .clone()
        .or_else(|| delegated.and_then(|d| d.dns.clone()))
    {
        r.dns = Some(dns);
    }
    r
}

fn del(env: &Env, conf: &NetConf, raw: &[u8], defaults: &Defaults) -> Result<(), CniError> {
    let container = env.need("CNI_CONTAINERID", &env.container_id)?;
    let ifname = env.need("CNI_IFNAME", &env.ifname)?;
    let ipam = conf.ipam_plugin()?;
    let dir = state_dir(conf, defaults);
    // No state at all: nothing of ours to remove (and nothing to create by opening it).
    if Store::peek(&dir).map_err(|e| from_ctl(e.into()))?.is_some() {
        let mut ctl = open(conf, defaults)?;
        let network = conf.network_name();
        if let Some((workload, _)) = find_attachment(&ctl.state, container, ifname, network) {
            ctl.detach_engine(&workload, network).map_err(from_ctl)?;
        }
    }
    if let Some(kind) = ipam {
        delegate::run(env, kind, Command::Del, raw)?;
    }
    Ok(())
}

fn check(env: &Env, conf: &NetConf, raw: &[u8], defaults: &Defaults) -> Result<(), CniError> {
    let container = env.need("CNI_CONTAINERID", &env.container_id)?;
    let netns = env.need("CNI_NETNS", &env.netns)?;
    let ifname = env.need("CNI_IFNAME", &env.ifname)?;
    let prev = conf.prev_result.clone().ok_or_else(|| {
        CniError::new(
            Code::InvalidConfig,
            "CHECK needs prevResult (the result of the ADD)",
        )
    })?;
    let prev = CniResult::from_value("prevResult", prev)?;
    let ipam = conf.ipam_plugin()?;
    let network = conf.network_name();
    let ctl = open(conf, defaults)?;
    let failed = |m: String| CniError::new(Code::CheckFailed, m);
    let (workload, ep) =
        find_attachment(&ctl.state, container, ifname, network).ok_or_else(|| {
            failed(format!(
                "no l2sw endpoint for container {container} interface {ifname} on network {network}"
            ))
        })?;
    if !nl::netns_exists(netns) {
        return Err(failed(format!("namespace {netns} does not exist")));
    }
    let inside = Links::new(Some(netns));
    if !inside.exists(ifname).map_err(|e| from_ctl(e.into()))? {
        return Err(failed(format!("{ifname} is not in namespace {netns}")));
    }
    let mac = inside.mac(ifname).map_err(|e| from_ctl(e.into()))?;
    if mac != ep.mac {
        return Err(failed(format!(
            "{ifname} has MAC {mac}, l2sw gave it {}",
            ep.mac
        )));
    }
    let addrs = inside.addresses(ifname).map_err(|e| from_ctl(e.into()))?;
    let ours = prev
        .interfaces
        .iter()
        .position(|i| i.name == ifname && i.sandbox == netns);
    if let Some(i) = ours {
        let said = &prev.interfaces[i].mac;
        if !said.is_empty() && said.parse::<l2sw::wire::Mac>().ok() != Some(mac) {
            return Err(failed(format!(
                "{ifname} has MAC {mac}, the previous result says {said}"
            )));
        }
    }
    let wanted = prev
        .ips
        .iter()
        .filter(|ip| ours.is_some() && ip.interface == ours)
        .map(|ip| ip.address)
        .chain(ep.ips.iter().map(|ip| IpNet::from(*ip)));
    for want in wanted {
        if !addrs.iter().any(|a| a.addr() == want.addr()) {
            return Err(failed(format!(
                "{ifname} in {netns} lacks address {want} (it has {})",
                addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let running = ctl.client().networks().map_err(|e| from_ctl(e.into()))?;
    let has_port = running
        .iter()
        .find(|n| n.name == network)
        .is_some_and(|n| n.ports.iter().any(|p| p.name == workload));
    if !has_port {
        return Err(failed(format!(
            "the l2sw daemon has no port {workload} on network {network} (`l2ctl sync` restores it)"
        )));
    }
    if let Some(kind) = ipam {
        delegate::run(env, kind, Command::Check, raw)?;
    }
    Ok(())
}

/// Whether `path` is a file named as the plugin's type (`…/l2sw`).
pub fn is_plugin_path(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == PLUGIN_NAME)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(command: &str) -> Env {
        Env {
            command: Some(command.into()),
            container_id: Some("0123456789abcdef".into()),
            ifname: Some("eth0".into()),
            ..Env::default()
        }
    }

    fn defaults(dir: &Path) -> Defaults {
        Defaults {
            state_dir: dir.join("state"),
            socket: dir.join("no.sock"),
        }
    }

    #[test]
    fn version_needs_no_configuration() {
        let d = Defaults::default();
        let v = handle(&env("VERSION"), b"", &d).unwrap().unwrap();
        assert_eq!(
            v["supportedVersions"],
            serde_json::json!(SUPPORTED_VERSIONS)
        );
        let v = handle(&env("VERSION"), br#"{"cniVersion":"0.4.0"}"#, &d)
            .unwrap()
            .unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
    }

    #[test]
    fn errors_carry_the_version_and_code() {
        let dir = tempfile::tempdir().unwrap();
        let d = defaults(dir.path());
        let (v, e) = handle(&Env::default(), b"{}", &d).unwrap_err();
        assert_eq!((v.as_str(), e.code), (LATEST, Code::InvalidEnv as u32));
        let wrong = br#"{"cniVersion":"0.4.0","name":"n","type":"bridge"}"#;
        let (v, e) = handle(&env("ADD"), wrong, &d).unwrap_err();
        assert_eq!((v.as_str(), e.code), ("0.4.0", Code::InvalidConfig as u32));
        // ADD without a namespace: the environment is wrong, nothing is made.
        let conf = br#"{"cniVersion":"1.0.0","name":"n","type":"l2sw"}"#;
        let (_, e) = handle(&env("ADD"), conf, &d).unwrap_err();
        assert_eq!(e.code, Code::InvalidEnv as u32, "{e}");
        assert!(e.msg.contains("CNI_NETNS"), "{e}");
        assert!(!dir.path().join("state").exists());
    }

    #[test]
    fn del_of_nothing_succeeds_and_makes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = defaults(dir.path());
        let conf = br#"{"cniVersion":"1.0.0","name":"n","type":"l2sw"}"#;
        assert_eq!(handle(&env("DEL"), conf, &d).unwrap(), None);
        assert!(!dir.path().join("state").exists());
        let mut no_id = env("DEL");
        no_id.container_id = None;
        let (_, e) = handle(&no_id, conf, &d).unwrap_err();
        assert_eq!(e.code, Code::InvalidEnv as u32);
    }

    #[test]
    fn a_missing_daemon_is_try_again_later() {
        let e = from_ctl(CtlError::Daemon(ClientError::NoDaemon {
            path: "/run/l2sw/l2sw.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }));
        assert_eq!(e.code, Code::TryAgainLater as u32);
        assert_eq!(
            from_ctl(CtlError::Refused("x".into())).code,
            Code::Refused as u32
        );
    }
}
