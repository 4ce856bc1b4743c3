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

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fwd::{
    BridgeConfig, BridgePort, IpvlanConfig, IpvlanFlag, IpvlanPort, MacSet, MacvlanMode,
    MacvlanPort, ModeConfig, PortConfig, Role, StormControl, StpState, SwitchConfig, UplinkPort,
    Vid, VidSet, VlanMode,
};
use crate::port::sys::ring::Handover;
use crate::wire::Mac;

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
    pub mode: String,
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
    pub ipvlan_flag: Option<String>,
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
    pub kind: Option<String>,
    /// The named network namespace the interface lives in (default: the daemon's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// AF_PACKET ports: how the receive ring hands frames over. `frames` (default,
    /// TPACKET_V2): each frame at once, in microseconds; super-frames longer than a slot are
    /// queued whole on the socket. `blocks` (TPACKET_V3): frames packed into blocks handed
    /// over when full or after a timer of at least one jiffy (4 ms at HZ=250), for the fewest
    /// wake-ups of l2sw at a high load and the worst latency at a light one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_ring: Option<String>,
    /// `bridge`, `host`, `uplink`, `macvlan` or `ipvlan`.
    pub role: String,
    /// The port's MAC (a sub-interface's MAC, the uplink's, a bridge port's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
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
    pub state: Option<String>,
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
    pub macvlan_mode: Option<String>,
    /// macvlan source mode: the allowed source MACs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Vec<String>>,
    /// macvlan source mode: consume the original frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodst: Option<bool>,
    /// ipvlan slave: its addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpAddr>>,
    /// Uplink: accept every frame (veth-like) instead of the sub-interfaces' MACs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promiscuous: Option<bool>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// An AF_PACKET socket on an existing interface.
    AfPacket,
    /// A TAP device l2sw creates.
    Tap,
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
        let mode = match self.mode.as_str() {
            "bridge" => {
                if self.ipvlan_flag.is_some() {
                    return Err(not_here("ipvlan_flag"));
                }
                let mut b = BridgeConfig::default();
                if let Some(s) = self.ageing_secs {
                    b.ageing = Duration::from_secs(s);
                }
                b.max_learned = self.max_learned.unwrap_or(0);
                ModeConfig::Bridge(b)
            }
            "macvlan" | "ipvlan" => {
                if self.ageing_secs.is_some() {
                    return Err(not_here("ageing_secs"));
                }
                if self.max_learned.is_some() {
                    return Err(not_here("max_learned"));
                }
                if self.mode == "macvlan" {
                    if self.ipvlan_flag.is_some() {
                        return Err(not_here("ipvlan_flag"));
                    }
                    ModeConfig::Macvlan
                } else {
                    let flag = match self.ipvlan_flag.as_deref().unwrap_or("bridge") {
                        "bridge" => IpvlanFlag::Bridge,
                        "private" => IpvlanFlag::Private,
                        "vepa" => IpvlanFlag::Vepa,
                        other => {
                            return Err(err(format!(
                                "ipvlan_flag {other:?}: expected bridge, private or vepa"
                            )));
                        }
                    };
                    ModeConfig::Ipvlan(IpvlanConfig { flag })
                }
            }
            other => {
                return Err(err(format!(
                    "mode {other:?}: expected bridge, macvlan or ipvlan"
                )));
            }
        };
        let switch = SwitchConfig {
            mode,
            mtu: self.mtu.unwrap_or(crate::fwd::switch::DEFAULT_MTU),
        };
        let ports = self
            .ports
            .iter()
            .map(|p| Ok((p.port_config(&self.name, &self.mode)?, p.place(&self.name)?)))
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
        mode: &str,
    ) -> Result<(PortConfig, PortPlace), ConfigFileError> {
        Ok((self.port_config(network, mode)?, self.place(network)?))
    }

    /// The port's name in the switch.
    pub fn port_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.interface.clone())
    }

    fn place(&self, network: &str) -> Result<PortPlace, ConfigFileError> {
        let kind = match self.kind.as_deref().unwrap_or("af_packet") {
            "af_packet" => PortKind::AfPacket,
            "tap" => PortKind::Tap,
            other => {
                let what = format!("kind {other:?}: expected af_packet or tap");
                return Err(invalid(network, Some(&self.port_name()), what));
            }
        };
        let err = |what: String| invalid(network, Some(&self.port_name()), what);
        check_ifname(&self.interface).map_err(err)?;
        if let Some(name) = &self.name {
            check_label("port name", name).map_err(err)?;
        }
        if let Some(ns) = &self.netns {
            check_netns(ns).map_err(err)?;
        }
        let handover = match (self.rx_ring.as_deref(), kind) {
            (None, _) | (Some("frames"), PortKind::AfPacket) => Handover::Frames,
            (Some("blocks"), _) => Handover::Blocks,
            (Some("frames"), PortKind::Tap) => {
                return Err(err("rx_ring: a TAP port has no receive ring".into()));
            }
            (Some(other), _) => {
                return Err(err(format!("rx_ring {other:?}: expected blocks or frames")));
            }
        };
        Ok(PortPlace {
            kind,
            interface: self.interface.clone(),
            netns: self.netns.clone(),
            handover,
        })
    }

    fn port_config(&self, network: &str, mode: &str) -> Result<PortConfig, ConfigFileError> {
        let err = |what: String| invalid(network, Some(&self.port_name()), what);
        let parse_mac = |s: &str| s.parse::<Mac>().map_err(|e| err(e.to_string()));
        let only = |present: bool, key: &str, roles: &str| {
            if present {
                Err(err(format!(
                    "{key} applies to {roles} ports only, not to a {} port",
                    self.role
                )))
            } else {
                Ok(())
            }
        };
        let is_bridge = self.role == "bridge";
        only(!is_bridge && self.hairpin.is_some(), "hairpin", "bridge")?;
        only(!is_bridge && self.isolated.is_some(), "isolated", "bridge")?;
        only(!is_bridge && self.learning.is_some(), "learning", "bridge")?;
        only(!is_bridge && self.state.is_some(), "state", "bridge")?;
        only(
            !is_bridge && self.max_learned.is_some(),
            "max_learned",
            "bridge",
        )?;
        let is_macvlan = self.role == "macvlan";
        only(
            !is_macvlan && self.macvlan_mode.is_some(),
            "macvlan_mode",
            "macvlan",
        )?;
        only(!is_macvlan && self.source.is_some(), "source", "macvlan")?;
        only(!is_macvlan && self.nodst.is_some(), "nodst", "macvlan")?;
        only(self.role != "ipvlan" && self.ips.is_some(), "ips", "ipvlan")?;
        only(
            self.role != "uplink" && self.promiscuous.is_some(),
            "promiscuous",
            "uplink",
        )?;
        let role = match self.role.as_str() {
            "bridge" => {
                let state = match self.state.as_deref().unwrap_or("forwarding") {
                    "forwarding" => StpState::Forwarding,
                    "learning" => StpState::Learning,
                    "blocking" => StpState::Blocking,
                    "listening" => StpState::Listening,
                    "disabled" => StpState::Disabled,
                    other => {
                        return Err(err(format!(
                            "state {other:?}: expected forwarding, learning, blocking, listening or disabled"
                        )));
                    }
                };
                Role::Bridge(BridgePort {
                    state,
                    learning: self.learning.unwrap_or(true),
                    hairpin: self.hairpin.unwrap_or(false),
                    isolated: self.isolated.unwrap_or(false),
                    max_learned: self.max_learned.unwrap_or(0),
                    ..BridgePort::default()
                })
            }
            "host" => Role::Host,
            "uplink" => Role::Uplink(UplinkPort {
                promiscuous: self.promiscuous.unwrap_or(false),
                ..UplinkPort::default()
            }),
            "macvlan" => {
                let mode = match &self.macvlan_mode {
                    Some(m) => m.parse::<MacvlanMode>().map_err(|e| err(e.to_string()))?,
                    None => MacvlanMode::default(),
                };
                let source = self
                    .source
                    .iter()
                    .flatten()
                    .map(|s| parse_mac(s))
                    .collect::<Result<MacSet, _>>()?;
                Role::Macvlan(MacvlanPort {
                    mode,
                    source,
                    nodst: self.nodst.unwrap_or(false),
                    nopromisc: false,
                })
            }
            "ipvlan" => Role::Ipvlan(IpvlanPort {
                addrs: self.ips.clone().unwrap_or_default(),
            }),
            other => {
                return Err(err(format!(
                    "role {other:?}: expected bridge, host, uplink, macvlan or ipvlan"
                )));
            }
        };
        let fits = matches!(
            (mode, &role),
            ("bridge", Role::Bridge(_) | Role::Host)
                | ("macvlan", Role::Uplink(_) | Role::Macvlan(_) | Role::Host)
                | ("ipvlan", Role::Uplink(_) | Role::Ipvlan(_) | Role::Host)
        );
        if !fits {
            return Err(err(format!(
                "a {} port cannot be part of a {mode} network",
                self.role
            )));
        }
        let storm = self.storm.unwrap_or_default();
        if mode != "bridge" && storm.unknown_unicast.is_some() {
            return Err(err(format!(
                "storm.unknown_unicast applies to ports of bridge networks only: a {mode} network never floods unknown unicast"
            )));
        }
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
        if let Some(m) = &self.mac {
            cfg = cfg.with_mac(parse_mac(m)?);
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
