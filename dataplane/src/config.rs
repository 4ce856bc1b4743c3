//! The daemon's configuration file (TOML): one `[[network]]` per switch, each with its mode and
//! `[[network.port]]`s on existing interfaces. Unknown keys and settings that do not apply to a
//! port's role are refused with the network and port named, so that nothing is silently lost.
//!
//! ```toml
//! [[network]]
//! name = "lab"
//! mode = "bridge"              # bridge | macvlan | ipvlan
//!
//! [[network.port]]
//! interface = "veth-a"         # an existing interface
//! netns = "switch"             # optional: the named namespace it lives in
//! role = "bridge"              # bridge | host | uplink | macvlan | ipvlan
//! hairpin = true
//! max_learned = 64             # port security: at most 64 MACs, frames from more dropped
//! storm = { broadcast = 1000, unknown_unicast = 1000, multicast = 5000 }   # frames/s
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fwd::{
    BridgeConfig, BridgePort, IpvlanConfig, IpvlanFlag, IpvlanPort, MacSet, MacvlanMode,
    MacvlanPort, ModeConfig, PortConfig, Role, StormControl, StpState, SwitchConfig, UplinkPort,
    Vid, VidSet, VlanMode,
};
use crate::port::sys::ring::Handover;
use crate::port::vxlan::VxlanConfig;
use crate::wire::{Mac, Vni};

/// A value spelled as one of a closed list of names in the configuration file and on the
/// control socket. Serialized as its name; an unknown name is refused with the key it stands
/// under and the names it could be (`mode "hub": expected bridge, macvlan or ipvlan`).
pub trait Named: Copy + Sized + 'static {
    /// The key the value stands under.
    const KEY: &'static str;
    /// Every value, in the order the names are listed in messages.
    const ALL: &'static [Self];
    /// The value's name.
    fn name(self) -> &'static str;

    /// The value named `s`.
    fn from_name(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownName {
                key: Self::KEY,
                name: s.to_owned(),
                expected: Self::ALL.iter().map(|v| v.name()).collect(),
            })
    }
}

/// A name that is none of its key's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {name:?}: expected {}", one_of(expected))]
pub struct UnknownName {
    /// The key.
    pub key: &'static str,
    /// The name given.
    pub name: String,
    /// The names it could be.
    pub expected: Vec<&'static str>,
}

/// `a, b or c`.
fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Implements [`Named`], `serde` and `FromStr` for an enum from its names.
macro_rules! named {
    ($ty:ty, $key:literal, { $($variant:path => $name:literal),+ $(,)? }) => {
        impl Named for $ty {
            const KEY: &'static str = $key;
            const ALL: &'static [Self] = &[$($variant),+];
            fn name(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(Named::name(*self))
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$ty as Named>::from_name(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A network's mode: which kernel device's rules its switch follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// A learning bridge.
    #[default]
    Bridge,
    /// macvlan sub-interfaces on one uplink.
    Macvlan,
    /// ipvlan L2 slaves on one uplink.
    Ipvlan,
}
named!(NetworkMode, "mode", {
    NetworkMode::Bridge => "bridge",
    NetworkMode::Macvlan => "macvlan",
    NetworkMode::Ipvlan => "ipvlan",
});

impl NetworkMode {
    /// Whether a port of `role` can be part of a network of this mode: the one place this
    /// is decided.
    pub fn admits(self, role: PortRole) -> bool {
        use PortRole as R;
        matches!(
            (self, role),
            (NetworkMode::Bridge, R::Bridge | R::Host)
                | (NetworkMode::Macvlan, R::Uplink | R::Macvlan | R::Host)
                | (NetworkMode::Ipvlan, R::Uplink | R::Ipvlan | R::Host)
        )
    }
}

impl From<&ModeConfig> for NetworkMode {
    fn from(m: &ModeConfig) -> NetworkMode {
        match m {
            ModeConfig::Bridge(_) => NetworkMode::Bridge,
            ModeConfig::Macvlan => NetworkMode::Macvlan,
            ModeConfig::Ipvlan(_) => NetworkMode::Ipvlan,
        }
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a port is to its switch, as the configuration names it (the switch's
/// [`Role`] carries each role's settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PortRole {
    /// A learning-bridge port.
    #[default]
    Bridge,
    /// The switch's host side.
    Host,
    /// The lower device of macvlan or ipvlan.
    Uplink,
    /// A macvlan sub-interface.
    Macvlan,
    /// An ipvlan slave.
    Ipvlan,
}
named!(PortRole, "role", {
    PortRole::Bridge => "bridge",
    PortRole::Host => "host",
    PortRole::Uplink => "uplink",
    PortRole::Macvlan => "macvlan",
    PortRole::Ipvlan => "ipvlan",
});

impl std::fmt::Display for PortRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an AF_PACKET port's receive ring hands frames over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RxRing {
    /// TPACKET_V3: whole blocks.
    Blocks,
    /// TPACKET_V2: each frame at once.
    Frames,
}
named!(RxRing, "rx_ring", {
    RxRing::Blocks => "blocks",
    RxRing::Frames => "frames",
});

named!(PortKind, "kind", {
    PortKind::AfPacket => "af_packet",
    PortKind::Tap => "tap",
    PortKind::Vxlan => "vxlan",
});

named!(StpState, "state", {
    StpState::Forwarding => "forwarding",
    StpState::Learning => "learning",
    StpState::Blocking => "blocking",
    StpState::Listening => "listening",
    StpState::Disabled => "disabled",
});

named!(MacvlanMode, "macvlan_mode", {
    MacvlanMode::Bridge => "bridge",
    MacvlanMode::Private => "private",
    MacvlanMode::Vepa => "vepa",
    MacvlanMode::Passthru => "passthru",
    MacvlanMode::Source => "source",
});

named!(IpvlanFlag, "ipvlan_flag", {
    IpvlanFlag::Bridge => "bridge",
    IpvlanFlag::Private => "private",
    IpvlanFlag::Vepa => "vepa",
});

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Not valid TOML, or keys and types that do not fit.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A value that does not make sense where it stands.
    #[error("network {network:?}{}: {what}", port.as_ref().map(|p| format!(", port {p:?}")).unwrap_or_default())]
    Invalid {
        /// The network.
        network: String,
        /// The port, if the problem is in one.
        port: Option<String>,
        /// What is wrong.
        what: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The switches.
    #[serde(default, rename = "network")]
    pub networks: Vec<NetworkSpec>,
}

/// One switch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Its name.
    pub name: String,
    /// `bridge`, `macvlan` or `ipvlan`.
    pub mode: NetworkMode,
    /// MTU of its ports (default 1500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<usize>,
    /// Bridge: FDB ageing in seconds (default 300, 0 = no learning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ageing_secs: Option<u64>,
    /// Bridge: cap on learned entries (default 0 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_learned: Option<u32>,
    /// ipvlan: `bridge`, `private` or `vepa` (default bridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipvlan_flag: Option<IpvlanFlag>,
    /// The ports.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSpec>,
}

/// One port: an existing interface (AF_PACKET) or a TAP device l2sw creates.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// The interface (for `kind = "tap"`, the TAP device to create).
    pub interface: String,
    /// The port's name in the switch (FDB, counters, `remove_port`); default: the interface.
    /// Two ports of one network cannot share a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `af_packet` (default: an existing interface) or `tap` (a TAP device l2sw creates and
    /// removes on exit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<PortKind>,
    /// The named network namespace the interface lives in (default: the daemon's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// AF_PACKET ports: how the receive ring hands frames over. `frames` (default,
    /// TPACKET_V2): each frame at once, in microseconds; super-frames longer than a slot are
    /// queued whole on the socket. `blocks` (TPACKET_V3): frames packed into blocks handed
    /// over when full or after a timer of at least one jiffy (4 ms at HZ=250), for the fewest
    /// wake-ups of l2sw at a high load and the worst latency at a light one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_ring: Option<RxRing>,
    /// `bridge`, `host`, `uplink`, `macvlan` or `ipvlan`.
    pub role: PortRole,
    /// The port's MAC (a sub-interface's MAC, the uplink's, a bridge port's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// 802.1Q: `{ access = 10 }` or `{ trunk = [10, 20], native = 1 }`; default transparent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanSpec>,
    /// Bridge port: hairpin (reflective relay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hairpin: Option<bool>,
    /// Bridge port: isolated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolated: Option<bool>,
    /// Bridge port: learning (default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning: Option<bool>,
    /// Bridge port: STP state (`forwarding`, `learning`, `blocking`, `listening`, `disabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StpState>,
    /// Bridge port: port security, the most MACs learned on this port (default 0 = no cap).
    /// Frames from further new sources are dropped (l2sw only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_learned: Option<u32>,
    /// Storm control: rate limits in frames per second on the broadcast, unknown unicast and
    /// multicast floods this port's frames cause (default: none; l2sw only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormSpec>,
    /// macvlan: the sub-interface's mode (default bridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macvlan_mode: Option<MacvlanMode>,
    /// macvlan source mode: the allowed source MACs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Vec<Mac>>,
    /// macvlan source mode: consume the original frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodst: Option<bool>,
    /// ipvlan slave: its addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpAddr>>,
    /// Uplink: accept every frame (veth-like) instead of the sub-interfaces' MACs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promiscuous: Option<bool>,
    /// `kind = "vxlan"`: the overlay's VNI, local VTEP, UDP port and remotes. The port is a
    /// bridge port (the overlay's split horizon is "never back out of the ingress port").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanSpec>,
}

/// An overlay port's settings, as `[network.port.vxlan]` or `vxlan = { ... }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VxlanSpec {
    /// The VNI, 1..=16777215.
    pub vni: u32,
    /// The local VTEP address (an address of the port's namespace).
    pub local: Ipv4Addr,
    /// The UDP port (default 4789, IANA's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The flood list: the remote VTEPs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<Ipv4Addr>,
    /// Accept frames from any sender, learning it as a remote (default off: only the flood
    /// list's VTEPs get frames in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learn_remotes: Option<bool>,
    /// Learn which VTEP each remote MAC is behind (default on); off for static remote entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning: Option<bool>,
    /// Static entries: each MAC behind a remote VTEP (`bridge fdb add MAC dev vx dst IP` on
    /// a kernel VTEP), in the FDB from the start; that VTEP's packets are accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statics: Vec<VxlanStatic>,
}

/// One static entry of an overlay port: a MAC behind a remote VTEP.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VxlanStatic {
    /// The station.
    pub mac: Mac,
    /// The remote VTEP it is behind.
    pub vtep: Ipv4Addr,
}

impl VxlanSpec {
    /// The port's settings, every value checked (errors name the value).
    pub fn config(&self) -> Result<VxlanConfig, String> {
        let vni = Vni::new(self.vni).map_err(|e| format!("vxlan.vni: {e}"))?;
        let cfg = VxlanConfig {
            vni,
            local: self.local,
            port: self.port.unwrap_or(crate::wire::vxlan::IANA_PORT),
            remotes: self.remotes.clone(),
            learn_remotes: self.learn_remotes.unwrap_or(false),
            learning: self.learning.unwrap_or(true),
            statics: self.statics.iter().map(|s| (s.mac, s.vtep)).collect(),
        };
        cfg.check().map_err(|e| format!("vxlan: {e}"))?;
        Ok(cfg)
    }
}

/// Storm-control limits of a port, in frames per second; an absent class (or 0) is unlimited.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StormSpec {
    /// Broadcast frames a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<u32>,
    /// Unknown unicast frames a second (bridge networks only: nothing else floods them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_unicast: Option<u32>,
    /// Multicast frames a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multicast: Option<u32>,
}

/// A storm-control limit that does not fit the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StormSpecError {
    /// Unknown unicast is limited only where it floods.
    #[error("applies to ports of bridge networks only: a {0} network never floods unknown unicast")]
    UnknownUnicastNotFlooded(NetworkMode),
}

impl StormSpecError {
    /// The key at fault.
    pub fn field(&self) -> &'static str {
        match self {
            StormSpecError::UnknownUnicastNotFlooded(_) => "unknown_unicast",
        }
    }
}

impl StormSpec {
    /// Whether these limits fit a port of a `mode` network (file and control socket alike).
    pub fn check(&self, mode: NetworkMode) -> Result<(), StormSpecError> {
        if mode != NetworkMode::Bridge && self.unknown_unicast.is_some() {
            return Err(StormSpecError::UnknownUnicastNotFlooded(mode));
        }
        Ok(())
    }
}

impl From<StormControl> for StormSpec {
    fn from(s: StormControl) -> StormSpec {
        let limit = |r: u32| (r != 0).then_some(r);
        StormSpec {
            broadcast: limit(s.broadcast),
            unknown_unicast: limit(s.unknown_unicast),
            multicast: limit(s.multicast),
        }
    }
}

impl From<StormSpec> for StormControl {
    fn from(s: StormSpec) -> StormControl {
        StormControl {
            broadcast: s.broadcast.unwrap_or(0),
            unknown_unicast: s.unknown_unicast.unwrap_or(0),
            multicast: s.multicast.unwrap_or(0),
        }
    }
}

/// 802.1Q settings of a port.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VlanSpec {
    /// Access port in this VLAN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<u16>,
    /// Trunk carrying these VLANs tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trunk: Option<Vec<u16>>,
    /// Trunk: the VLAN sent untagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<u16>,
}

/// How a port reaches its frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// An AF_PACKET socket on an existing interface.
    #[default]
    AfPacket,
    /// A TAP device l2sw creates.
    Tap,
    /// An overlay port: a UDP socket on the local VTEP address (`vxlan` table).
    Vxlan,
}

/// Where a port's frames come from: kind, interface and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlace {
    /// AF_PACKET or TAP.
    pub kind: PortKind,
    /// The interface name.
    pub interface: String,
    /// The named network namespace, if not the daemon's.
    pub netns: Option<String>,
    /// AF_PACKET: how the receive ring hands frames over.
    pub handover: Handover,
    /// An overlay port's settings (`kind = "vxlan"`).
    pub vxlan: Option<VxlanConfig>,
}

/// A network ready to build: the switch settings and each port's configuration and place.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    /// The network's name.
    pub name: String,
    /// The switch.
    pub switch: SwitchConfig,
    /// The ports.
    pub ports: Vec<(PortConfig, PortPlace)>,
}

impl Config {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigFileError> {
        Ok(toml::from_str(text)?)
    }

    /// Checks every value and turns each network into a plan.
    pub fn plan(&self) -> Result<Vec<NetworkPlan>, ConfigFileError> {
        let mut names = std::collections::BTreeSet::new();
        self.networks
            .iter()
            .map(|n| {
                if !names.insert(n.name.as_str()) {
                    return Err(invalid(
                        &n.name,
                        None,
                        "a network of that name is already defined".into(),
                    ));
                }
                n.plan()
            })
            .collect()
    }
}

fn invalid(network: &str, port: Option<&str>, what: String) -> ConfigFileError {
    ConfigFileError::Invalid {
        network: network.to_owned(),
        port: port.map(str::to_owned),
        what,
    }
}

impl NetworkSpec {
    fn plan(&self) -> Result<NetworkPlan, ConfigFileError> {
        let err = |what: String| invalid(&self.name, None, what);
        check_label("network name", &self.name).map_err(err)?;
        let not_here = |key: &str| err(format!("{key} does not apply to a {} network", self.mode));
        if self.mode != NetworkMode::Bridge {
            if self.ageing_secs.is_some() {
                return Err(not_here("ageing_secs"));
            }
            if self.max_learned.is_some() {
                return Err(not_here("max_learned"));
            }
        }
        if self.mode != NetworkMode::Ipvlan && self.ipvlan_flag.is_some() {
            return Err(not_here("ipvlan_flag"));
        }
        let mode = match self.mode {
            NetworkMode::Bridge => {
                let mut b = BridgeConfig::default();
                if let Some(s) = self.ageing_secs {
                    b.ageing = Duration::from_secs(s);
                }
                b.max_learned = self.max_learned.unwrap_or(0);
                ModeConfig::Bridge(b)
            }
            NetworkMode::Macvlan => ModeConfig::Macvlan,
            NetworkMode::Ipvlan => ModeConfig::Ipvlan(IpvlanConfig {
                flag: self.ipvlan_flag.unwrap_or_default(),
            }),
        };
        let switch = SwitchConfig {
            mode,
            mtu: self.mtu.unwrap_or(crate::fwd::switch::DEFAULT_MTU),
        };
        let ports = self
            .ports
            .iter()
            .map(|p| p.plan(&self.name, self.mode))
            .collect::<Result<_, ConfigFileError>>()?;
        Ok(NetworkPlan {
            name: self.name.clone(),
            switch,
            ports,
        })
    }
}

/// An interface name the kernel accepts (`dev_valid_name`): 1 to 15 bytes, not `.` or `..`,
/// no `/`, `:` or whitespace. Names come from files and requests, so they are checked before
/// they reach a socket, an ioctl or a path.
fn check_ifname(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "interface {name:?}: not an interface name (1 to 15 bytes, not . or .., no '/', ':' or spaces)"
        ));
    }
    Ok(())
}

/// A network's or port's name: 1 to 64 characters, none a control character (names become
/// thread names, log fields and JSON keys).
fn check_label(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(format!(
            "{what} {name:?}: use 1 to 64 characters, no control characters"
        ));
    }
    Ok(())
}

/// A named namespace (`/run/netns/NAME`): a single path component.
fn check_netns(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.chars().any(|c| c == '/' || c.is_control());
    if bad {
        return Err(format!(
            "netns {name:?}: not a namespace name (a single name as `ip netns add` takes)"
        ));
    }
    Ok(())
}

impl PortSpec {
    /// The port's switch configuration and place, for a port of `network` (of `mode`).
    pub fn plan(
        &self,
        network: &str,
        mode: NetworkMode,
    ) -> Result<(PortConfig, PortPlace), ConfigFileError> {
        Ok((self.port_config(network, mode)?, self.place(network)?))
    }

    /// The port's name in the switch.
    pub fn port_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.interface.clone())
    }

    fn place(&self, network: &str) -> Result<PortPlace, ConfigFileError> {
        let kind = self.kind.unwrap_or_default();
        let err = |what: String| invalid(network, Some(&self.port_name()), what);
        check_ifname(&self.interface).map_err(err)?;
        if let Some(name) = &self.name {
            check_label("port name", name).map_err(err)?;
        }
        if let Some(ns) = &self.netns {
            check_netns(ns).map_err(err)?;
        }
        let handover = match (self.rx_ring, kind) {
            (None | Some(RxRing::Frames), PortKind::AfPacket)
            | (None, PortKind::Tap | PortKind::Vxlan) => Handover::Frames,
            (Some(_), PortKind::Vxlan) => {
                return Err(err("rx_ring: a VXLAN port has no receive ring".into()));
            }
            (Some(RxRing::Blocks), _) => Handover::Blocks,
            (Some(RxRing::Frames), PortKind::Tap) => {
                return Err(err("rx_ring: a TAP port has no receive ring".into()));
            }
        };
        let vxlan = match (kind, &self.vxlan) {
            (PortKind::Vxlan, Some(v)) => Some(v.config().map_err(err)?),
            (PortKind::Vxlan, None) => {
                return Err(err(
                    "kind = \"vxlan\" needs a vxlan table: { vni = N, local = \"IP\", remotes = [...] }"
                        .into(),
                ));
            }
            (_, Some(_)) => {
                return Err(err("vxlan applies to kind = \"vxlan\" ports only".into()));
            }
            (_, None) => None,
        };
        if kind == PortKind::Vxlan && self.role != PortRole::Bridge {
            return Err(err(format!(
                "a VXLAN port is a bridge port, not a {} port",
                self.role
            )));
        }
        Ok(PortPlace {
            kind,
            interface: self.interface.clone(),
            netns: self.netns.clone(),
            handover,
            vxlan,
        })
    }

    fn port_config(&self, network: &str, mode: NetworkMode) -> Result<PortConfig, ConfigFileError> {
        let err = |what: String| invalid(network, Some(&self.port_name()), what);
        let only = |present: bool, key: &str, roles: PortRole| {
            if present && self.role != roles {
                Err(err(format!(
                    "{key} applies to {roles} ports only, not to a {} port",
                    self.role
                )))
            } else {
                Ok(())
            }
        };
        only(self.hairpin.is_some(), "hairpin", PortRole::Bridge)?;
        only(self.isolated.is_some(), "isolated", PortRole::Bridge)?;
        only(self.learning.is_some(), "learning", PortRole::Bridge)?;
        only(self.state.is_some(), "state", PortRole::Bridge)?;
        only(self.max_learned.is_some(), "max_learned", PortRole::Bridge)?;
        only(
            self.macvlan_mode.is_some(),
            "macvlan_mode",
            PortRole::Macvlan,
        )?;
        only(self.source.is_some(), "source", PortRole::Macvlan)?;
        only(self.nodst.is_some(), "nodst", PortRole::Macvlan)?;
        only(self.ips.is_some(), "ips", PortRole::Ipvlan)?;
        only(self.promiscuous.is_some(), "promiscuous", PortRole::Uplink)?;
        if !mode.admits(self.role) {
            return Err(err(format!(
                "a {} port cannot be part of a {mode} network",
                self.role
            )));
        }
        let role = match self.role {
            PortRole::Bridge => Role::Bridge(BridgePort {
                state: self.state.unwrap_or_default(),
                learning: self.learning.unwrap_or(true),
                hairpin: self.hairpin.unwrap_or(false),
                isolated: self.isolated.unwrap_or(false),
                max_learned: self.max_learned.unwrap_or(0),
                ..BridgePort::default()
            }),
            PortRole::Host => Role::Host,
            PortRole::Uplink => Role::Uplink(UplinkPort {
                promiscuous: self.promiscuous.unwrap_or(false),
                ..UplinkPort::default()
            }),
            PortRole::Macvlan => Role::Macvlan(MacvlanPort {
                mode: self.macvlan_mode.unwrap_or_default(),
                source: self.source.iter().flatten().copied().collect::<MacSet>(),
                nodst: self.nodst.unwrap_or(false),
                nopromisc: false,
            }),
            PortRole::Ipvlan => Role::Ipvlan(IpvlanPort {
                addrs: self.ips.clone().unwrap_or_default(),
            }),
        };
        let storm = self.storm.unwrap_or_default();
        storm
            .check(mode)
            .map_err(|e| err(format!("storm.{} {e}", e.field())))?;
        let vlan = match &self.vlan {
            None => VlanMode::Transparent,
            Some(VlanSpec {
                access: Some(vid),
                trunk: None,
                native: None,
            }) => VlanMode::Access {
                vid: Vid::new(*vid),
            },
            Some(VlanSpec {
                access: None,
                trunk: Some(vids),
                native,
            }) => VlanMode::Trunk {
                allowed: vids.iter().copied().map(Vid::new).collect::<VidSet>(),
                native: native.map(Vid::new),
            },
            Some(_) => {
                return Err(err(
                    "vlan: give either { access = VID } or { trunk = [VIDs], native = VID }".into(),
                ));
            }
        };
        vlan.validate().map_err(|e| err(e.to_string()))?;
        let mut cfg = PortConfig::new(self.port_name(), role)
            .with_vlan(vlan)
            .with_storm(storm.into());
        if let Some(m) = self.mac {
            cfg = cfg.with_mac(m);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_plans() {
        let text = r#"
            [[network]]
            name = "lab"
            mode = "bridge"
            ageing_secs = 10
            [[network.port]]
            interface = "pa"
            netns = "sw"
            rx_ring = "blocks"
            role = "bridge"
            hairpin = true
            vlan = { trunk = [10, 20], native = 1 }
            [[network.port]]
            interface = "l2sw0"
            kind = "tap"
            role = "host"
            mac = "02:42:ac:11:00:01"

            [[network]]
            name = "mv"
            mode = "macvlan"
            [[network.port]]
            interface = "eth1"
            role = "uplink"
            [[network.port]]
            interface = "m1"
            role = "macvlan"
            macvlan_mode = "private"
            mac = "02:00:00:00:00:01"
        "#;
        let plans = Config::from_toml(text).unwrap().plan().unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].ports[0].1.netns.as_deref(), Some("sw"));
        assert_eq!(plans[0].ports[1].1.kind, PortKind::Tap);
        assert_eq!(plans[0].ports[0].1.handover, Handover::Blocks);
        // Frames are handed over one by one unless the file says otherwise.
        assert_eq!(plans[1].ports[0].1.handover, Handover::Frames);
        assert!(matches!(
            plans[0].ports[0].0.role,
            Role::Bridge(BridgePort { hairpin: true, .. })
        ));
        assert!(matches!(
            plans[1].ports[1].0.role,
            Role::Macvlan(MacvlanPort {
                mode: MacvlanMode::Private,
                ..
            })
        ));
    }

    #[test]
    fn port_security_and_storm_control_plan() {
        let text = r#"
            [[network]]
            name = "lab"
            mode = "bridge"
            [[network.port]]
            interface = "pa"
            role = "bridge"
            max_learned = 8
            storm = { broadcast = 100, unknown_unicast = 200 }
            [[network]]
            name = "mv"
            mode = "macvlan"
            [[network.port]]
            interface = "eth1"
            role = "uplink"
            storm = { multicast = 50 }
        "#;
        let plans = Config::from_toml(text).unwrap().plan().unwrap();
        let pa = &plans[0].ports[0].0;
        assert!(matches!(
            pa.role,
            Role::Bridge(BridgePort { max_learned: 8, .. })
        ));
        let expect = StormControl {
            broadcast: 100,
            unknown_unicast: 200,
            multicast: 0,
        };
        assert_eq!(pa.storm, expect);
        assert_eq!(plans[1].ports[0].0.storm.multicast, 50);
        // Round trip through the JSON the control socket carries.
        let spec = &Config::from_toml(text).unwrap().networks[0];
        let back: NetworkSpec =
            serde_json::from_value(serde_json::to_value(spec).unwrap()).unwrap();
        assert_eq!(&back, spec);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                color = "blue""#,
                "unknown field",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "hub""#,
                "mode \"hub\"",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "macvlan"
                [[network.port]]
                interface = "m"
                role = "macvlan"
                hairpin = true"#,
                "hairpin applies to bridge ports only",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "macvlan"
                [[network.port]]
                interface = "up"
                role = "uplink"
                max_learned = 4"#,
                "max_learned applies to bridge ports only",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "ipvlan"
                [[network.port]]
                interface = "up"
                role = "uplink"
                storm = { unknown_unicast = 10 }"#,
                "storm.unknown_unicast applies to ports of bridge networks only",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "pa"
                role = "bridge"
                rx_ring = "v2""#,
                "rx_ring \"v2\": expected blocks or frames",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "t0"
                kind = "tap"
                role = "bridge"
                rx_ring = "frames""#,
                "rx_ring: a TAP port has no receive ring",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "p"
                role = "bridge"
                storm = { broadcast = 10, unicast = 5 }"#,
                "unknown field `unicast`",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "p"
                role = "uplink""#,
                "cannot be part of a bridge network",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "p"
                role = "bridge"
                vlan = { access = 5000 }"#,
                "vlan id must be between 1 and 4094",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "p"
                role = "bridge"
                mac = "nope""#,
                "invalid MAC address",
            ),
            (
                "[[network]]\nname = \"a\\u0000b\"\nmode = \"bridge\"",
                "no control characters",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "../../etc"
                role = "bridge""#,
                "not an interface name",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "averyverylongname0"
                role = "bridge""#,
                "not an interface name",
            ),
            (
                r#"[[network]]
                name = "x"
                mode = "bridge"
                [[network.port]]
                interface = "p"
                netns = "../../proc/1/ns/net"
                role = "bridge""#,
                "not a namespace name",
            ),
        ];
        for (text, expect) in cases {
            let got = Config::from_toml(text).and_then(|c| c.plan().map(|_| ()));
            let msg = got.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains(expect), "{expect:?} not in {msg:?}");
        }
    }
}
