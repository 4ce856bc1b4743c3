//! What a user asks for, from the command line and from a topology file alike: one struct per
//! request, parsed by clap and by serde, so `l2ctl network create` and `[[network]]` in
//! `l2ctl up` can never disagree.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use l2sw::wire::Mac;
use serde::Deserialize;

use crate::state::{Driver, EndpointKind};

/// `NAME=IP`: an auxiliary address reserved in a network.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Aux {
    /// What it is for.
    pub name: String,
    /// The address.
    pub ip: IpAddr,
}

impl FromStr for Aux {
    type Err = String;

    fn from_str(s: &str) -> Result<Aux, String> {
        let (name, ip) = s
            .split_once('=')
            .ok_or_else(|| format!("aux address {s:?}: expected NAME=IP, like host=10.0.0.254"))?;
        if name.is_empty() {
            return Err(format!("aux address {s:?}: the name before '=' is empty"));
        }
        let ip = ip
            .parse()
            .map_err(|e| format!("aux address {s:?}: {ip:?} is not an IP address ({e})"))?;
        Ok(Aux {
            name: name.to_owned(),
            ip,
        })
    }
}

impl TryFrom<String> for Aux {
    type Error = String;
    fn try_from(s: String) -> Result<Aux, String> {
        s.parse()
    }
}

fn default_driver() -> Driver {
    Driver::Bridge
}

/// `l2ctl network create` and a topology's `[[network]]`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkArgs {
    /// The network's name (letters, digits, '.', '_', '-'; at most 64).
    pub name: String,
    /// bridge: a learning bridge with a host port carrying the gateway (like docker0).
    /// macvlan: sub-interfaces with their own MACs on --parent. ipvlan: sub-interfaces that
    /// share --parent's MAC and are told apart by IP address (L2 mode). overlay: one L2
    /// segment across hosts over VXLAN (--vni, --local, --remote).
    #[arg(long, short = 'd', value_enum, default_value_t = Driver::Bridge)]
    #[serde(default = "default_driver")]
    pub driver: Driver,
    /// macvlan: bridge (default), private, vepa, passthru or source. ipvlan (the L2 mode's
    /// flag): bridge (default), private or vepa.
    #[arg(long, short = 'm')]
    #[serde(default)]
    pub mode: Option<String>,
    /// macvlan/ipvlan: the host interface the network reaches the outside through. IFACE.VID
    /// makes l2sw tag the network's frames on IFACE with VLAN VID (no 802.1Q device needed).
    /// Without a parent the network is internal.
    #[arg(long, short = 'o')]
    #[serde(default)]
    pub parent: Option<String>,
    /// The subnet in CIDR form (canonical: 10.0.0.0/24, not 10.0.0.1/24); once for IPv4 and
    /// once for IPv6. Default: the next free pool from 172.17.0.0/16 on, as Docker does.
    #[arg(long)]
    #[serde(default)]
    pub subnet: Vec<String>,
    /// The gateway (bridge default: the first free address; macvlan/ipvlan: none unless
    /// given, it is a router outside).
    #[arg(long)]
    #[serde(default)]
    pub gateway: Vec<IpAddr>,
    /// Hand out dynamic addresses from this sub-range of the subnet only.
    #[arg(long = "ip-range")]
    #[serde(default)]
    pub ip_range: Vec<String>,
    /// NAME=IP: an address that is never handed out (a router, a printer, the host's shim).
    #[arg(long = "aux-address")]
    #[serde(default)]
    pub aux_address: Vec<Aux>,
    /// No way out: a bridge gets no host port, macvlan/ipvlan no uplink, workloads no default
    /// route.
    #[arg(long)]
    #[serde(default)]
    pub internal: bool,
    /// bridge: every workload port reflects frames back out (reflective relay), so that VEPA
    /// and private macvlans behind it reach each other.
    #[arg(long)]
    #[serde(default)]
    pub hairpin: bool,
    /// overlay: the VXLAN Network Identifier, 1..=16777215 (the same on every host).
    #[arg(long)]
    #[serde(default)]
    pub vni: Option<u32>,
    /// overlay: this host's VTEP address (an address of the host namespace; the underlay).
    #[arg(long)]
    #[serde(default)]
    pub local: Option<Ipv4Addr>,
    /// overlay: another host's VTEP address (repeat): broadcasts, multicasts and unknown
    /// unicasts go to each (head-end replication), and only these get frames in.
    #[arg(long)]
    #[serde(default)]
    pub remote: Vec<Ipv4Addr>,
    /// overlay: accept frames from any VTEP, learning it as a remote (as the kernel does);
    /// off by default.
    #[arg(long = "learn-remotes")]
    #[serde(default)]
    pub learn_remotes: bool,
    /// overlay: the VXLAN UDP port, here and at every remote (default 4789).
    #[arg(long = "vxlan-port")]
    #[serde(default)]
    pub vxlan_port: Option<u16>,
    /// overlay: learn which VTEP each remote MAC is behind (the kernel's vxlan_snoop; on by
    /// default). `--learning=false`, as a kernel vxlan device's `nolearning`: frames to remote
    /// MACs go to every VTEP of the flood list.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(default = "yes")]
    pub learning: bool,
    /// bridge: masquerade the network's IPv4 subnet on its way out of the host, with IPv4
    /// forwarding on (Docker's default); `--masquerade=false` keeps it to the host and its
    /// published ports.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(default = "yes")]
    pub masquerade: bool,
}

fn yes() -> bool {
    true
}

impl NetworkArgs {
    /// `network create NAME -d DRIVER` with every other option at its default, as the
    /// command line and a topology file leave them.
    pub fn new(name: impl Into<String>, driver: Driver) -> NetworkArgs {
        NetworkArgs {
            name: name.into(),
            driver,
            mode: None,
            parent: None,
            subnet: Vec::new(),
            gateway: Vec::new(),
            ip_range: Vec::new(),
            aux_address: Vec::new(),
            internal: false,
            hairpin: false,
            vni: None,
            local: None,
            remote: Vec::new(),
            learn_remotes: false,
            vxlan_port: None,
            learning: true,
            masquerade: true,
        }
    }
}

/// `l2ctl attach` and a topology's `[[workload.attach]]`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AttachArgs {
    /// The network: a network's name, `none` (loopback only), `host` (the host's namespace)
    /// or `container:OTHER` (join workload OTHER's namespace).
    #[arg(long, short = 'n')]
    pub network: String,
    /// A static address (once per family); it must be in the subnet, may be outside
    /// --ip-range. Default: the lowest free address.
    #[arg(long)]
    #[serde(default)]
    pub ip: Vec<IpAddr>,
    /// The workload interface's MAC. Default: 02:42 and the IPv4 address (macvlan, bridge),
    /// the parent's (ipvlan, passthru).
    #[arg(long)]
    #[serde(default)]
    pub mac: Option<Mac>,
    /// veth: a veth pair, the switch's end in the host namespace. tap: a TAP device in the
    /// workload's namespace whose file the daemon holds.
    #[arg(long, value_enum, default_value_t = EndpointKind::Veth)]
    #[serde(default)]
    pub port: EndpointKind,
    /// macvlan source mode: a source MAC whose frames this endpoint receives (repeat).
    #[arg(long = "source-mac")]
    #[serde(default)]
    pub source_mac: Vec<Mac>,
    /// `[HOST_IP:]HOST_PORT[-END]:PORT[-END][/tcp|udp]` (repeat): the host's port (on every
    /// address of the host, or HOST_IP's) leads to the workload's PORT, as Docker's
    /// `--publish`. Bridge networks with a way out only; IPv4.
    #[arg(long, short = 'p', value_name = "SPEC")]
    #[serde(default)]
    pub publish: Vec<crate::nat::Publish>,
}

/// A topology file for `l2ctl up` / `l2ctl down`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Its name: what `down` recognises as made by this file (default: the file's stem).
    pub name: Option<String>,
    /// Networks to create.
    #[serde(default, rename = "network")]
    pub networks: Vec<NetworkArgs>,
    /// Workloads to attach.
    #[serde(default, rename = "workload")]
    pub workloads: Vec<WorkloadSpec>,
}

/// A topology's `[[workload]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The workload (and its namespace).
    pub name: String,
    /// Its attachments, in order (the first gives `eth0`).
    #[serde(default)]
    pub attach: Vec<AttachArgs>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn aux_addresses_parse_or_say_why() {
        let a: Aux = "gw2=10.0.0.254".parse().unwrap();
        assert_eq!(
            (a.name.as_str(), a.ip.to_string().as_str()),
            ("gw2", "10.0.0.254")
        );
        assert!("10.0.0.1".parse::<Aux>().unwrap_err().contains("NAME=IP"));
        assert!("=10.0.0.1".parse::<Aux>().unwrap_err().contains("empty"));
        assert!(
            "x=10.0.0.300"
                .parse::<Aux>()
                .unwrap_err()
                .contains("not an IP")
        );
    }

    #[test]
    fn a_topology_reads_with_the_command_line_names() {
        let t: Topology = toml::from_str(
            r#"
            name = "lab"
            [[network]]
            name = "front"
            subnet = ["10.1.0.0/24"]
            aux-address = ["router=10.1.0.254"]
            [[network]]
            name = "lan"
            driver = "macvlan"
            mode = "private"
            parent = "upl.10"
            [[workload]]
            name = "web"
            [[workload.attach]]
            network = "front"
            ip = ["10.1.0.5"]
            port = "tap"
        "#,
        )
        .unwrap();
        assert_eq!(t.networks[0].driver, Driver::Bridge);
        assert_eq!(t.networks[1].driver, Driver::Macvlan);
        assert_eq!(t.workloads[0].attach[0].port, EndpointKind::Tap);
        let bad = toml::from_str::<Topology>("[[network]]\nname = \"x\"\ncolour = 1\n");
        assert!(bad.unwrap_err().to_string().contains("unknown field"));
    }
}
