//! What l2ctl has made, kept on disk: networks (driver, mode, parent, address pools with their
//! allocations), workloads and their endpoints. This is the desired state; the daemon and the
//! kernel are brought to it (`l2ctl sync`, which daemon commands run first), so a restarted
//! daemon gets it all back.
//!
//! One file, `state.json`, in the state directory. Every change is written to a temporary file,
//! flushed, and renamed over the old one, then the directory is flushed: a crash leaves either
//! the old state or the new one, never half of one. An exclusive lock on `lock` in the same
//! directory serialises l2ctl processes, so two never hand out the same address.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use l2sw::config::{Named, NetworkMode};
use l2sw::fwd::{IpvlanFlag, MacvlanMode};
use l2sw::wire::Mac;
use serde::{Deserialize, Serialize};

use crate::ipam::Pool;

/// The state directory when `--state-dir` is not given.
pub const DEFAULT_DIR: &str = "/var/lib/l2sw";
/// The layout version of `state.json`.
const VERSION: u32 = 1;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The file is not a state l2ctl wrote.
    #[error("{path} is not a state this l2ctl can read: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// A network's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A learning bridge with a host port carrying the gateway, like docker0.
    Bridge,
    /// Sub-interfaces with fixed MACs on a parent interface.
    Macvlan,
    /// Sub-interfaces sharing the parent's MAC, told apart by IP address (L2 mode).
    Ipvlan,
    /// One L2 segment across hosts: a learning bridge whose VXLAN port reaches the other
    /// hosts' VTEPs (Docker's `overlay`).
    Overlay,
    /// The predefined `host` network: no namespace of its own.
    #[value(skip)]
    Host,
    /// The predefined `none` network: loopback only.
    #[value(skip)]
    Null,
}

impl Driver {
    /// The name Docker uses.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
            Driver::Overlay => "overlay",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }

    /// Whether the network is forwarded by the daemon (not `host` or `none`).
    pub fn switched(self) -> bool {
        self.network_mode().is_some()
    }

    /// The daemon's mode for the network (`None`: `host` and `none`, which it never sees).
    pub fn network_mode(self) -> Option<NetworkMode> {
        match self {
            Driver::Bridge | Driver::Overlay => Some(NetworkMode::Bridge),
            Driver::Macvlan => Some(NetworkMode::Macvlan),
            Driver::Ipvlan => Some(NetworkMode::Ipvlan),
            Driver::Host | Driver::Null => None,
        }
    }

    /// The names `--mode` takes for this driver: macvlan's modes, ipvlan's flags, or none.
    pub fn modes(self) -> Vec<&'static str> {
        match self {
            Driver::Macvlan => <MacvlanMode as Named>::ALL
                .iter()
                .map(|m| Named::name(*m))
                .collect(),
            Driver::Ipvlan => <IpvlanFlag as Named>::ALL
                .iter()
                .map(|f| Named::name(*f))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A network's parent interface, with the VLAN l2sw tags its frames with (`eth0.10`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The interface, in the host namespace.
    pub interface: String,
    /// The VLAN: frames on the parent carry this tag, l2sw pushes and pops it.
    pub vid: Option<u16>,
}

impl std::fmt::Display for Parent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.vid {
            Some(v) => write!(f, "{}.{v}", self.interface),
            None => f.write_str(&self.interface),
        }
    }
}

/// The host's way into a macvlan or ipvlan network (`l2ctl host-access`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAccess {
    /// The host's end, carrying `ip`.
    pub interface: String,
    /// The switch's end.
    pub port: String,
    /// The host end's MAC.
    pub mac: Mac,
    /// Its address, reserved as an aux address named [`HOST_ACCESS_AUX`].
    pub ip: IpAddr,
}

/// The aux address name `host-access` reserves.
pub const HOST_ACCESS_AUX: &str = "host-access";

#[cfg(test)]
impl Network {
    /// A network for unit tests: made by l2ctl, active, with no pools and no host side.
    pub(crate) fn sample(
        name: &str,
        driver: Driver,
        mode: Option<MacvlanMode>,
        parent: Option<Parent>,
    ) -> Network {
        Network {
            name: name.into(),
            id: "0123456789ab".into(),
            driver,
            mode,
            parent,
            internal: false,
            hairpin: false,
            masquerade: true,
            pools: Vec::new(),
            predefined: false,
            active: true,
            host_port: None,
            mac: None,
            host_access: None,
            origin: None,
            overlay: None,
        }
    }
}

/// Networks saved before masquerade existed masquerade, as Docker's do by default.
fn masquerade_default() -> bool {
    true
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// A short random id, which names its links (`l2br-<id>`).
    pub id: String,
    /// The driver.
    pub driver: Driver,
    /// The macvlan mode; for ipvlan, its L2 flag, which shares the names of three macvlan
    /// modes (`bridge`, `private`, `vepa`: see [`Network::ipvlan_flag`]). Docker keeps both
    /// as the one option `mode`, and so does the state file.
    pub mode: Option<MacvlanMode>,
    /// The parent (macvlan, ipvlan).
    pub parent: Option<Parent>,
    /// No way out: no host port, no uplink, no default route.
    pub internal: bool,
    /// Bridge ports reflect frames back out (reflective relay, for VEPA neighbours).
    pub hairpin: bool,
    /// A bridge network's IPv4 subnet is masqueraded on its way out of the host (Docker's
    /// `enable_ip_masquerade`; `--masquerade=false` turns it off).
    #[serde(default = "masquerade_default")]
    pub masquerade: bool,
    /// One address pool per family.
    pub pools: Vec<Pool>,
    /// `bridge`, `host` and `none`: made by l2ctl itself, never removed.
    pub predefined: bool,
    /// Whether the daemon has been told about it (a predefined bridge waits for its first
    /// workload).
    pub active: bool,
    /// The bridge network's host port (a TAP device carrying the gateway address).
    pub host_port: Option<String>,
    /// The MAC of the host port (ipvlan: the MAC every endpoint shares when there is no parent).
    pub mac: Option<Mac>,
    /// `l2ctl host-access`.
    pub host_access: Option<HostAccess>,
    /// The topology (`l2ctl up`) that made it.
    pub origin: Option<String>,
    /// An overlay network's VXLAN settings and remotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
}

/// An overlay network's VXLAN side, as `network create -d overlay` and `network remote`
/// leave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    /// The VNI (1..=16777215).
    pub vni: u32,
    /// The local VTEP address (an address of the host namespace).
    pub local: std::net::Ipv4Addr,
    /// The UDP port (4789 unless given).
    pub port: u16,
    /// The flood list.
    pub remotes: Vec<std::net::Ipv4Addr>,
    /// Frames from any sender are accepted (and it is learned as a remote).
    pub learn_remotes: bool,
    /// Remote MACs are learned behind their VTEPs (else they go to the whole flood list).
    #[serde(default = "learning_default")]
    pub learning: bool,
    /// Static entries: MACs put behind remote VTEPs (`network remote pin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statics: Vec<l2sw::config::VxlanStatic>,
    /// The workloads' MTU: the underlay's less the 50 bytes VXLAN adds.
    pub mtu: u32,
}

fn learning_default() -> bool {
    true
}

/// The name of an overlay network's VXLAN port in the daemon.
pub const OVERLAY_PORT: &str = "vxlan";

impl Network {
    /// An ipvlan network's flag (`None` for other drivers).
    pub fn ipvlan_flag(&self) -> Option<IpvlanFlag> {
        let m = self.mode.filter(|_| self.driver == Driver::Ipvlan)?;
        IpvlanFlag::from_name(Named::name(m)).ok()
    }

    /// A macvlan network's mode (`None` for other drivers).
    pub fn macvlan_mode(&self) -> Option<MacvlanMode> {
        self.mode.filter(|_| self.driver == Driver::Macvlan)
    }

    /// The pool of `ip`'s family.
    pub fn pool_for(&mut self, ip: IpAddr) -> Option<&mut Pool> {
        self.pools
            .iter_mut()
            .find(|p| p.subnet().addr().is_ipv4() == ip.is_ipv4())
    }
}

/// How a workload's endpoint reaches the switch (the daemon's own [`l2sw::config::PortKind`]
/// is how a port's I/O is opened: a veth's switch end is an AF_PACKET port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// A veth pair: the workload's end and the switch's end (AF_PACKET).
    #[default]
    Veth,
    /// A TAP device in the workload's namespace, its file held by the daemon.
    Tap,
}

impl EndpointKind {
    /// `veth` or `tap`.
    pub fn name(self) -> &'static str {
        match self {
            EndpointKind::Veth => "veth",
            EndpointKind::Tap => "TAP",
        }
    }
}

/// A workload's link to one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The interface in the workload's namespace (`eth0`, `eth1`, …).
    pub interface: String,
    /// The switch's end of a veth pair, in the host namespace (TAP: none).
    pub peer: Option<String>,
    /// veth or TAP.
    pub kind: EndpointKind,
    /// The workload interface's MAC.
    pub mac: Mac,
    /// Its addresses, one per pool.
    pub ips: Vec<IpAddr>,
    /// Source-mode macvlan: the allowed source MACs.
    pub source_macs: Vec<Mac>,
    /// Its published ports (`--publish`), one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::nat::PortMap>,
    /// The topology (`l2ctl up`) that made it.
    pub origin: Option<String>,
}

/// How a workload is networked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sandbox {
    /// A namespace of its own, named after the workload.
    Own,
    /// The `none` network: a namespace with loopback only.
    None,
    /// The `host` network: the host namespace.
    Host,
    /// `container:OTHER`: OTHER's namespace.
    Container(String),
    /// A namespace a container engine owns (Docker's sandbox, a CNI runtime's `CNI_NETNS`):
    /// l2ctl never makes or deletes it, and the workload has the one endpoint the engine
    /// asked for.
    Engine(EngineSandbox),
}

/// The container engine that asked for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Docker, through l2sw's remote network driver: Docker moves the workload's end of the
    /// veth into the container and configures it there.
    Docker,
    /// A CNI runtime (podman, containerd): l2ctl moves the workload's end into `CNI_NETNS`
    /// and configures it, as a CNI plugin must.
    Cni,
}

impl Engine {
    /// `docker` or `cni`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Cni => "cni",
        }
    }

    /// Whether the engine moves the workload's end of the link into its namespace itself
    /// (and sets its name, addresses and routes there), so l2ctl leaves it in the host
    /// namespace for the engine to take.
    pub fn moves_link(self) -> bool {
        self == Engine::Docker
    }
}

/// Where a container engine's workload lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSandbox {
    /// Which engine.
    pub engine: Engine,
    /// The engine's id for what runs there (Docker's endpoint, `CNI_CONTAINERID`).
    pub container: String,
    /// The namespace file (`CNI_NETNS`, Docker's sandbox key once joined); `None` while the
    /// engine has not said.
    pub netns: Option<String>,
}

/// A workload: a namespace (or the host's) and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Its name, also its namespace's.
    pub name: String,
    /// How it is networked.
    pub sandbox: Sandbox,
    /// Whether l2ctl made its namespace (and so removes it with the last endpoint).
    pub made_netns: bool,
    /// Endpoints by network.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The topology (`l2ctl up`) that made it.
    pub origin: Option<String>,
}

/// Everything l2ctl keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Layout version.
    pub version: u32,
    /// The namespace that plays the host (`--host-netns`); `None`: l2ctl's own.
    pub host_netns: Option<String>,
    /// Networks by name.
    pub networks: BTreeMap<String, Network>,
    /// Workloads by name.
    pub workloads: BTreeMap<String, Workload>,
}

impl State {
    /// An empty state (the caller adds the predefined networks).
    pub fn new(host_netns: Option<String>) -> State {
        State {
            version: VERSION,
            host_netns,
            networks: BTreeMap::new(),
            workloads: BTreeMap::new(),
        }
    }

    /// The workloads attached to `network`, sorted.
    pub fn endpoints_of(&self, network: &str) -> Vec<(&Workload, &Endpoint)> {
        self.workloads
            .values()
            .filter_map(|w| w.endpoints.get(network).map(|e| (w, e)))
            .collect()
    }

    /// The workloads that share `name`'s namespace.
    pub fn joiners_of(&self, name: &str) -> Vec<&str> {
        self.workloads
            .values()
            .filter(|w| w.sandbox == Sandbox::Container(name.to_owned()))
            .map(|w| w.name.as_str())
            .collect()
    }

    /// The namespace a workload's processes run in (`None`: the host's).
    pub fn netns_of(&self, w: &Workload) -> Option<String> {
        match &w.sandbox {
            Sandbox::Own | Sandbox::None => Some(w.name.clone()),
            Sandbox::Host => self.host_netns.clone(),
            Sandbox::Engine(e) => e.netns.clone(),
            Sandbox::Container(other) => self
                .workloads
                .get(other)
                .and_then(|o| self.netns_of(o))
                .or_else(|| Some(other.clone())),
        }
    }
}

/// The state directory, locked for this process.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating it if needed, mode 0700) and locks the state directory; waits for
    /// another l2ctl holding it.
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        let io_err = |what, path: &Path| {
            let path = path.to_owned();
            move |source| StateError::Io { what, path, source }
        };
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        lock.lock().map_err(io_err("locking", &lock_path))?;
        Ok(Store {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    fn file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved state, or `None` if nothing was ever saved.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        read(self.file())
    }

    /// The state saved in `dir`, read without the lock (a save replaces the file whole, so a
    /// reader sees the old state or the new one), for a quick look; `None` if there is none.
    pub fn peek(dir: &Path) -> Result<Option<State>, StateError> {
        read(dir.join("state.json"))
    }

    /// Saves `state` atomically: temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.file();
        let tmp = self.dir.join("state.json.tmp");
        let io_err = |what, path: &Path| {
            let path = path.to_owned();
            move |source| StateError::Io { what, path, source }
        };
        let text = serde_json::to_string_pretty(state).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            what: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(io_err("writing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("replacing", &path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("flushing", &self.dir))
    }
}

/// Reads and checks a state file.
fn read(path: PathBuf) -> Result<Option<State>, StateError> {
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                what: "reading",
                path,
                source,
            });
        }
    };
    let state: State = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        what: e.to_string(),
    })?;
    if state.version != VERSION {
        return Err(StateError::Corrupt {
            path,
            what: format!(
                "layout version {} (this l2ctl writes {VERSION})",
                state.version
            ),
        });
    }
    Ok(Some(state))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let mut s = State::new(Some("lab".into()));
        s.workloads.insert(
            "web".into(),
            Workload {
                name: "web".into(),
                sandbox: Sandbox::Container("db".into()),
                made_netns: false,
                endpoints: BTreeMap::new(),
                origin: None,
            },
        );
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), Some(s));
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join("state.json"), "{\"version\": 1, \"netw").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("state.json is not a state"), "{e}");
    }
}
