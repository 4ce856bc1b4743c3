//! What the `process` target decodes its input into: a switch of one mode with fuzzer-chosen
//! ports, then a run of steps (batches of frames, time passing, ageing, configuration changes).
//!
//! Everything is picked from small pools (eight station MACs, a handful of groups, VIDs and IP
//! addresses) so that learning, FDB lookups, RX filters and ipvlan's IP demux actually hit;
//! frames are mostly well-formed (built with `l2sw::wire::craft`) and sometimes raw bytes.
//! Choices that l2sw refuses (a second passthru, a VID of 0 or 4095, a duplicate MAC or IP) are
//! kept: the refusal path is exercised too, and the port is simply not there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use arbitrary::Arbitrary;
use l2sw::fwd::mode::bridge::GROUP_FWD_RESTRICTED;
use l2sw::fwd::{
    BridgeConfig, BridgePort, IpvlanConfig, IpvlanFlag, IpvlanPort, MacSet, MacvlanMode,
    MacvlanPort, ModeConfig, PortConfig, PortId, Role, RxFilter, StormControl, StpState, Switch,
    SwitchConfig, UplinkPort, Vid, VidSet, VlanMode,
};
use l2sw::wire::{Mac, TPID_8021AD, TPID_8021Q, craft};

use crate::invariants::refusal_changes_nothing;

/// Most ports of each kind a scenario builds (the switch holds 256; a few is where bugs live).
pub const MAX_PORTS: usize = 8;
/// Most steps of a scenario and frames of a batch.
pub const MAX_STEPS: usize = 64;
pub const MAX_BATCH: usize = 32;
/// Longest payload of a crafted frame: past every MTU of the pool but the jumbo one.
const MAX_PAYLOAD: usize = 2048;

/// VIDs of configurations and tags: 0 (priority tag; refused in a configuration), a few
/// ordinary ones, the highest usable and the reserved 4095.
const VIDS: [u16; 7] = [10, 20, 30, 1, 0, 4094, 4095];
/// MTUs: the default, the smallest allowed, a jumbo one.
const MTUS: [usize; 3] = [1500, 68, 9000];

/// A station of the pool: 02:00:00:00:00:01 ..= :08.
pub fn station(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, 1 + n % 8])
}

fn group(n: u8) -> Mac {
    const GROUPS: [Mac; 4] = [
        Mac([1, 0, 0x5e, 0, 0, 1]),
        Mac([1, 0, 0x5e, 0, 0, 2]),
        Mac([0x33, 0x33, 0, 0, 0, 1]),
        Mac([0x33, 0x33, 0xff, 0, 0, 1]),
    ];
    GROUPS[usize::from(n) % GROUPS.len()]
}

/// An address of the pool: four IPv4 and four IPv6 addresses slaves may own, and one of each
/// that no slave can own.
fn ip(n: u8) -> IpAddr {
    match n % 10 {
        k @ 0..=3 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, k + 1)),
        k @ 4..=7 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(k) - 3)),
        8 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)),
        _ => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99)),
    }
}

fn ipv4(n: u8) -> Ipv4Addr {
    match ip(n % 4) {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn ipv6(n: u8) -> Ipv6Addr {
    match ip(4 + n % 4) {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
    }
}

/// The members of `pool` whose bit is set in `mask`.
fn pick<T>(mask: u8, pool: impl Fn(u8) -> T) -> impl Iterator<Item = T> {
    (0..8).filter(move |b| mask & (1 << b) != 0).map(pool)
}

/// A MAC: mostly from the pools, sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MacChoice {
    Station(u8),
    Broadcast,
    Group(u8),
    /// 01:80:C2:00:00:0X, the reserved groups the bridge treats specially.
    LinkLocal(u8),
    Zero,
    Any([u8; 6]),
}

impl MacChoice {
    pub fn mac(self) -> Mac {
        match self {
            MacChoice::Station(n) => station(n),
            MacChoice::Broadcast => Mac::BROADCAST,
            MacChoice::Group(n) => group(n),
            MacChoice::LinkLocal(x) => Mac([1, 0x80, 0xc2, 0, 0, x & 0xf]),
            MacChoice::Zero => Mac::ZERO,
            MacChoice::Any(b) => Mac(b),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct VidChoice(u8);

impl VidChoice {
    pub fn vid(self) -> Vid {
        Vid::new(VIDS[usize::from(self.0) % VIDS.len()])
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum VlanChoice {
    Transparent,
    Access(VidChoice),
    /// The VIDs of the pool whose bit is set, and maybe a native VLAN.
    Trunk {
        allowed: u8,
        native: Option<VidChoice>,
    },
}

impl VlanChoice {
    fn mode(&self) -> VlanMode {
        match self {
            VlanChoice::Transparent => VlanMode::Transparent,
            VlanChoice::Access(v) => VlanMode::Access { vid: v.vid() },
            VlanChoice::Trunk { allowed, native } => VlanMode::Trunk {
                allowed: pick(*allowed, |b| VidChoice(b).vid()).collect::<VidSet>(),
                native: native.map(VidChoice::vid),
            },
        }
    }
}

/// A port's RX filter: the role's default, promiscuous, or stations and groups of the pools.
#[derive(Arbitrary, Debug, Clone)]
pub enum FilterChoice {
    Default,
    Promiscuous,
    Unicast { own: u8, groups: u8, allmulti: bool },
}

impl FilterChoice {
    pub fn filter(&self) -> Option<RxFilter> {
        match self {
            FilterChoice::Default => None,
            FilterChoice::Promiscuous => Some(RxFilter::Promiscuous),
            FilterChoice::Unicast {
                own,
                groups,
                allmulti,
            } => Some(RxFilter::Unicast {
                own: pick(*own, station).collect(),
                groups: pick(*groups, group).collect(),
                allmulti: *allmulti,
            }),
        }
    }
}

/// What every port has besides its role: a MAC, a VLAN mode, an RX filter.
#[derive(Arbitrary, Debug, Clone)]
pub struct Common {
    mac: Option<MacChoice>,
    vlan: VlanChoice,
    filter: FilterChoice,
    /// Storm control, frames a second per class (broadcast, unknown unicast, multicast); small
    /// so that the limits are reached.
    storm: Option<(u8, u8, u8)>,
}

impl Common {
    fn port(&self, name: String, role: Role) -> PortConfig {
        let mut cfg = PortConfig::new(name, role).with_vlan(self.vlan.mode());
        cfg.mac = self.mac.map(MacChoice::mac);
        cfg.filter = self.filter.filter();
        if let Some((broadcast, unknown_unicast, multicast)) = self.storm {
            cfg = cfg.with_storm(StormControl {
                broadcast: u32::from(broadcast % 16),
                unknown_unicast: u32::from(unknown_unicast % 16),
                multicast: u32::from(multicast % 16),
            });
        }
        cfg
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct BridgeSpec {
    /// Seconds; 0 turns learning off.
    ageing: u8,
    max_learned: u8,
    group_fwd_mask: u16,
    stp: bool,
    no_linklocal_learn: bool,
    host_promisc: bool,
    ports: Vec<BridgePortSpec>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct BridgePortSpec {
    /// Forwarding for most values, so that most ports forward.
    state: u8,
    learning: bool,
    hairpin: bool,
    isolated: bool,
    flood_unicast: bool,
    flood_multicast: bool,
    flood_broadcast: bool,
    /// Port security: 0 none, else a small cap the MAC pool can reach.
    max_learned: u8,
    common: Common,
}

impl BridgePortSpec {
    fn role(&self) -> Role {
        let state = match self.state {
            0 => StpState::Disabled,
            1 => StpState::Listening,
            2 => StpState::Learning,
            3 => StpState::Blocking,
            _ => StpState::Forwarding,
        };
        Role::Bridge(BridgePort {
            state,
            learning: self.learning,
            hairpin: self.hairpin,
            isolated: self.isolated,
            flood_unicast: self.flood_unicast,
            flood_multicast: self.flood_multicast,
            flood_broadcast: self.flood_broadcast,
            max_learned: u32::from(self.max_learned % 8),
        })
    }
}

/// The lower device of macvlan and ipvlan.
#[derive(Arbitrary, Debug, Clone)]
pub struct UplinkSpec {
    promiscuous: bool,
    unicast_filtering: bool,
    common: Common,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ModeChoice {
    Private,
    Vepa,
    Bridge,
    Passthru,
    Source,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct SubSpec {
    mode: ModeChoice,
    /// Source mode: the stations of the pool whose bit is set.
    source: u8,
    nodst: bool,
    nopromisc: bool,
    common: Common,
}

impl SubSpec {
    fn role(&self) -> Role {
        let mode = match self.mode {
            ModeChoice::Private => MacvlanMode::Private,
            ModeChoice::Vepa => MacvlanMode::Vepa,
            ModeChoice::Bridge => MacvlanMode::Bridge,
            ModeChoice::Passthru => MacvlanMode::Passthru,
            ModeChoice::Source => MacvlanMode::Source,
        };
        Role::Macvlan(MacvlanPort {
            mode,
            source: pick(self.source, station).collect::<MacSet>(),
            nodst: self.nodst,
            nopromisc: self.nopromisc,
        })
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct SlaveSpec {
    /// The addresses of the pool whose bit is set (two slaves may claim one: refused).
    addrs: u8,
    /// Which half of the pool the mask picks from (IPv4 or IPv6).
    v6: bool,
    common: Common,
}

impl SlaveSpec {
    fn role(&self) -> Role {
        let base = if self.v6 { 4 } else { 0 };
        Role::Ipvlan(IpvlanPort {
            addrs: pick(self.addrs & 0xf, |b| ip(base + b)).collect(),
        })
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FlagChoice {
    Bridge,
    Private,
    Vepa,
}

/// A switch of one mode and its ports.
#[derive(Arbitrary, Debug, Clone)]
pub enum Topology {
    Bridge(BridgeSpec),
    Macvlan {
        uplink: UplinkSpec,
        subs: Vec<SubSpec>,
    },
    Ipvlan {
        flag: FlagChoice,
        uplink: UplinkSpec,
        slaves: Vec<SlaveSpec>,
    },
}

impl Topology {
    fn switch_config(&self, mtu: usize) -> SwitchConfig {
        let mode = match self {
            Topology::Bridge(b) => ModeConfig::Bridge(BridgeConfig {
                ageing: Duration::from_secs(u64::from(b.ageing)),
                max_learned: u32::from(b.max_learned),
                group_fwd_mask: b.group_fwd_mask & !GROUP_FWD_RESTRICTED,
                stp: b.stp,
                no_linklocal_learn: b.no_linklocal_learn,
                host_promisc: b.host_promisc,
            }),
            Topology::Macvlan { .. } => ModeConfig::Macvlan,
            Topology::Ipvlan { flag, .. } => ModeConfig::Ipvlan(IpvlanConfig {
                flag: match flag {
                    FlagChoice::Bridge => IpvlanFlag::Bridge,
                    FlagChoice::Private => IpvlanFlag::Private,
                    FlagChoice::Vepa => IpvlanFlag::Vepa,
                },
            }),
        };
        SwitchConfig { mode, mtu }
    }

    /// Every port, in the order they are added.
    fn ports(&self) -> Vec<PortConfig> {
        let name = |i: usize| format!("p{i}");
        match self {
            Topology::Bridge(b) => b
                .ports
                .iter()
                .take(MAX_PORTS)
                .enumerate()
                .map(|(i, p)| p.common.port(name(i), p.role()))
                .collect(),
            Topology::Macvlan { uplink, subs } => {
                let up = uplink_role(uplink);
                let subs = subs.iter().take(MAX_PORTS).map(|s| (&s.common, s.role()));
                std::iter::once((&uplink.common, up))
                    .chain(subs)
                    .enumerate()
                    .map(|(i, (c, role))| c.port(name(i), role))
                    .collect()
            }
            Topology::Ipvlan { uplink, slaves, .. } => {
                let up = uplink_role(uplink);
                let slaves = slaves.iter().take(MAX_PORTS).map(|s| (&s.common, s.role()));
                std::iter::once((&uplink.common, up))
                    .chain(slaves)
                    .enumerate()
                    .map(|(i, (c, role))| c.port(name(i), role))
                    .collect()
            }
        }
    }
}

fn uplink_role(u: &UplinkSpec) -> Role {
    Role::Uplink(UplinkPort {
        promiscuous: u.promiscuous,
        unicast_filtering: u.unicast_filtering,
    })
}

/// A whole scenario.
#[derive(Arbitrary, Debug, Clone)]
pub struct Scenario {
    mtu: u8,
    pub topology: Topology,
    /// The switch's own host side as a port (the bridge device, the uplink's stack).
    host: Option<Common>,
    /// The first tick.
    pub start: u32,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The switch with every port it accepts. A refused port must leave the switch as it was.
    pub fn build(&self) -> Switch {
        let mtu = MTUS[usize::from(self.mtu) % MTUS.len()];
        let mut sw = Switch::new(self.topology.switch_config(mtu))
            .expect("every configuration the scenario makes is valid");
        let host = self.host.iter().map(|c| c.port("host".into(), Role::Host));
        for cfg in self.topology.ports().into_iter().chain(host) {
            refusal_changes_nothing(&mut sw, |sw| sw.add_port(cfg));
        }
        sw
    }
}

/// One thing that happens to the switch.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// A batch through `Switch::process`.
    Frames(Vec<FrameSpec>),
    /// Time passes, in centiseconds.
    Advance(u16),
    /// Time passes by whole seconds (up to 18 hours: entries of every ageing time expire).
    AdvanceSecs(u16),
    /// The FDB's garbage collection runs.
    Age,
    /// A port leaves (index into the switch's ports).
    RemovePort(u8),
    /// A port's RX filter changes (multicast joins, allmulti, promiscuity).
    SetFilter(u8, FilterChoice),
    /// An operator's FDB entry.
    AddStatic {
        vid: VidChoice,
        mac: MacChoice,
        port: u8,
        sticky: bool,
    },
    /// The ageing time changes (0: learning off).
    SetAgeing(u8),
}

/// One frame and the port it arrives on.
#[derive(Arbitrary, Debug, Clone)]
pub struct FrameSpec {
    /// Which of the switch's ports it arrives on; one value in `ports + 1` picks a port the
    /// switch does not have.
    ingress: u8,
    body: Body,
    /// Tags inserted after the MACs, outermost first (at most two are used).
    tags: Vec<TagSpec>,
}

#[derive(Arbitrary, Debug, Clone)]
enum Body {
    Plain {
        dst: MacChoice,
        src: MacChoice,
        ethertype: EtherChoice,
        payload: Vec<u8>,
    },
    Arp {
        reply: bool,
        src: MacChoice,
        dst: MacChoice,
        src_ip: u8,
        dst_ip: u8,
    },
    Udp {
        v6: bool,
        dst: MacChoice,
        src: MacChoice,
        src_ip: u8,
        dst_ip: u8,
    },
    /// A duplicate address detection neighbour solicitation (keyed by its target).
    NsDad {
        src: MacChoice,
        target: u8,
    },
    Pause {
        src: MacChoice,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EtherChoice {
    Known(u8),
    Any(u16),
}

impl EtherChoice {
    fn value(self) -> u16 {
        const KNOWN: [u16; 7] = [
            craft::ETHERTYPE_EXPERIMENTAL,
            0x0800,
            0x86dd,
            0x0806,
            0x8808,
            0x8100,
            0x88a8,
        ];
        match self {
            EtherChoice::Known(n) => KNOWN[usize::from(n) % KNOWN.len()],
            EtherChoice::Any(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct TagSpec {
    /// An 802.1ad service tag instead of an 802.1Q customer tag.
    service: bool,
    pcp: u8,
    vid: VidChoice,
}

impl FrameSpec {
    /// The ingress port: one of `sw`'s, or the lowest index it has no port at (a removed
    /// port's, or the next one).
    pub fn port(&self, sw: &Switch) -> PortId {
        let ports: Vec<PortId> = sw.ports().map(|(id, _)| id).collect();
        ports
            .get(usize::from(self.ingress) % (ports.len() + 1))
            .copied()
            .unwrap_or_else(|| {
                (0..)
                    .map_while(PortId::new)
                    .find(|id| sw.port(*id).is_none())
                    .expect("a scenario never fills every port")
            })
    }

    /// The frame's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let untagged = match &self.body {
            Body::Plain {
                dst,
                src,
                ethertype,
                payload,
            } => {
                let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
                craft::ethernet(dst.mac(), src.mac(), ethertype.value(), payload)
            }
            Body::Arp {
                reply: false,
                src,
                src_ip,
                dst_ip,
                ..
            } => craft::arp_request(src.mac(), ipv4(*src_ip), ipv4(*dst_ip)),
            Body::Arp {
                reply: true,
                src,
                dst,
                src_ip,
                dst_ip,
            } => craft::arp_reply(src.mac(), ipv4(*src_ip), dst.mac(), ipv4(*dst_ip)),
            Body::Udp {
                v6: false,
                dst,
                src,
                src_ip,
                dst_ip,
            } => craft::ipv4_udp(dst.mac(), src.mac(), ipv4(*src_ip), ipv4(*dst_ip), b"fuzz"),
            Body::Udp {
                v6: true,
                dst,
                src,
                src_ip,
                dst_ip,
            } => craft::ipv6_udp(dst.mac(), src.mac(), ipv6(*src_ip), ipv6(*dst_ip), b"fuzz"),
            Body::NsDad { src, target } => craft::ns_dad(src.mac(), ipv6(*target)),
            Body::Pause { src } => craft::pause(src.mac()),
            Body::Raw(b) => return b.clone(),
        };
        self.tags
            .iter()
            .take(2)
            .rev()
            .fold(untagged, |f, t| insert_tag(&f, t))
    }
}

/// `frame` with `tag` inserted after the MACs (the frame is at least 60 bytes: crafted).
fn insert_tag(frame: &[u8], tag: &TagSpec) -> Vec<u8> {
    let tpid = if tag.service { TPID_8021AD } else { TPID_8021Q };
    let tci = u16::from(tag.pcp & 7) << 13 | tag.vid.vid().get();
    let (macs, rest) = frame.split_at(12);
    [macs, &tpid.to_be_bytes(), &tci.to_be_bytes(), rest].concat()
}
