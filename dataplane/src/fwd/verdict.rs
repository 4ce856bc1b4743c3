//! What the core decided for one frame, and why. A [`Verdict`] says where the frame goes; a
//! [`DropReason`] names every way a frame can be refused (each a counter and a trace line, after
//! VPP's `foreach_l2fwd_error`); a [`Why`] names the rule that decided, with the kernel function
//! it mirrors, so a trace can say exactly what happened.

use super::fdb::Learned;
use super::ports::{PortId, PortSet};
use super::vlan::Vid;
use crate::wire::{Tag, Vtep};

/// Where one frame goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// To exactly one port.
    Unicast(PortId),
    /// To every port of a set, and to the host side if `host`.
    Flood {
        /// Receiving ports.
        ports: PortSet,
        /// Whether the switch's own host side (bridge device, uplink stack) gets a copy.
        host: bool,
    },
    /// To the host side only.
    Host,
    /// Nowhere.
    Drop(DropReason),
}

impl Verdict {
    /// The receiving ports (empty for `Host` and `Drop`).
    #[inline]
    pub fn ports(&self) -> PortSet {
        match self {
            Verdict::Unicast(p) => PortSet::only(*p),
            Verdict::Flood { ports, .. } => *ports,
            Verdict::Host | Verdict::Drop(_) => PortSet::EMPTY,
        }
    }

    /// Whether the host side gets a copy.
    #[inline]
    pub fn to_host(&self) -> bool {
        matches!(self, Verdict::Host | Verdict::Flood { host: true, .. })
    }

    /// The verdict delivering to `ports` and, if `host`, the host side; `Drop(empty)` when that
    /// is nothing at all.
    #[inline]
    pub fn deliver(ports: PortSet, host: bool, empty: DropReason) -> Verdict {
        if ports.is_empty() {
            return if host {
                Verdict::Host
            } else {
                Verdict::Drop(empty)
            };
        }
        match (host, ports.single()) {
            (false, Some(p)) => Verdict::Unicast(p),
            _ => Verdict::Flood { ports, host },
        }
    }
}

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident => $text:literal, )*) => {
        /// Every reason a frame is not forwarded. Closed: each is a counter.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$doc])* $name, )* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons (the length of a per-reason counter array).
            pub const COUNT: usize = DropReason::ALL.len();
            /// A short description for counters and traces.
            pub const fn describe(self) -> &'static str {
                match self { $(DropReason::$name => $text,)* }
            }
            /// The reason's name, as counters are keyed.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$name => stringify!($name),)* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header.
    Runt => "runt frame (shorter than an Ethernet header)",
    /// Longer than the switch's largest frame.
    Oversize => "frame longer than MTU + headers",
    /// Header announces more than the frame holds (truncated VLAN tag).
    Malformed => "malformed header (truncated VLAN tag)",
    /// A super-frame whose segments would be longer than the switch's largest frame.
    SegmentOversize => "super-frame whose segments exceed MTU + headers",
    /// The port received only part of the frame (a ring slot too small, no room to queue it
    /// whole): never forwarded cut.
    Truncated => "frame the port received only in part",
    /// Offload metadata (a `virtio_net_hdr`) l2sw cannot honour.
    BadOffload => "offload metadata l2sw cannot honour",
    /// The ingress port is not part of the switch.
    UnknownPort => "frame from a port the switch does not have",
    /// The ingress port is not in a state that forwards (STP disabled/blocking/listening).
    PortState => "ingress port is not forwarding (STP state)",
    /// The port is in the learning state: the source was learned, the frame dropped.
    LearningState => "ingress port is learning, not forwarding",
    /// The frame's VLAN is not allowed on the ingress port (or on any egress it needed).
    VlanNotAllowed => "VLAN not allowed on the port",
    /// The ingress port's RX filter does not accept the destination.
    FilterMiss => "destination not accepted by the port's RX filter",
    /// Multicast or all-zero source MAC.
    InvalidSource => "invalid source MAC (multicast or zero)",
    /// IEEE 802.3x PAUSE / MAC control, never forwarded.
    Pause => "MAC control (PAUSE) frame",
    /// IEEE 802.1D reserved group address not in the group forward mask: consumed by the port.
    LinkLocal => "link-local group address consumed by the port",
    /// Known unicast whose destination is the ingress port (no hairpin).
    Reflect => "destination is on the ingress port (hairpin off)",
    /// Ingress and egress ports are both isolated.
    Isolated => "ingress and egress ports are both isolated",
    /// Refused by private mode.
    PrivateMode => "private mode forbids local delivery",
    /// Consumed by a source-mode macvlan with `nodst`.
    NoDst => "consumed by a source-mode macvlan with nodst",
    /// No port or host side left to receive the frame.
    NoDestination => "no eligible receiver",
    /// Storm control: a flooded broadcast over the ingress port's rate (l2sw only).
    StormBroadcast => "broadcast over the ingress port's storm-control rate",
    /// Storm control: a flooded unknown unicast over the ingress port's rate (l2sw only).
    StormUnknownUnicast => "unknown unicast over the ingress port's storm-control rate",
    /// Storm control: a flooded multicast over the ingress port's rate (l2sw only).
    StormMulticast => "multicast over the ingress port's storm-control rate",
    /// Port security: a new source on a bridge port already at its cap of learned MACs.
    PortSecurity => "new source on a port at its learned-MAC cap (port security)",
    /// Overlay: a VXLAN header that is too short, has the I flag clear or sets reserved bits.
    VxlanHeader => "malformed VXLAN header (short, I flag clear or reserved bits set)",
    /// Overlay: a VXLAN packet of another VNI than the network's.
    VxlanVni => "VXLAN packet of another VNI",
    /// Overlay: a VXLAN packet from an address that is no VTEP of the network.
    VxlanUnknownSender => "VXLAN packet from a sender that is not a remote VTEP of the network",
}

/// Whether a rule floods, and what: the table's own column, which storm control charges
/// (`fwd::storm`), so a new flooding rule is charged the moment its row says so.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flood {
    /// Not a flood: one port, the host side, the uplink alone, or a drop.
    No,
    /// An unknown unicast flooded to the ports that take it.
    UnknownUnicast,
    /// A broadcast or multicast flooded or fanned out (the destination says which).
    Group,
}

macro_rules! whys {
    ($( $(#[$doc:meta])* $name:ident => ($kfn:literal, $text:literal, $flood:ident), )*) => {
        /// The rule that decided a frame, one per kernel code path l2sw mirrors.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Why { $( $(#[$doc])* $name, )* }

        impl Why {
            /// Every rule.
            pub const ALL: &'static [Why] = &[$(Why::$name,)*];
            /// The kernel function whose behaviour this rule mirrors.
            pub const fn kernel_fn(self) -> &'static str {
                match self { $(Why::$name => $kfn,)* }
            }
            /// What the rule does, in a few words.
            pub const fn describe(self) -> &'static str {
                match self { $(Why::$name => $text,)* }
            }
            /// Whether the rule floods, and what.
            pub const fn flood(self) -> Flood {
                match self { $(Why::$name => Flood::$flood,)* }
            }
        }

        impl std::fmt::Display for Why {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: {}", self.kernel_fn(), self.describe())
            }
        }
    };
}

whys! {
    /// The frame could not be parsed.
    Wire => ("eth_type_trans", "not a well-formed Ethernet frame", No),
    /// A super-frame whose segments exceed the MTU.
    GsoOversize => ("is_skb_forwardable", "super-frame whose segments (headers + gso_size) are longer than MTU + headers", No),
    /// The port received only part of the frame.
    Truncated => ("tpacket_rcv", "the ring slot held only part of the frame and the socket had no room for the rest", No),
    /// The offload metadata cannot be honoured.
    BadOffload => ("virtio_net_hdr_to_skb", "offload metadata (virtio_net_hdr) that cannot be honoured", No),
    /// The ingress port is unknown.
    NoPort => ("netif_receive_skb", "no such port", No),
    /// VLAN ingress classification refused the frame.
    VlanIngress => ("br_allowed_ingress / vlan_do_receive", "VLAN not a member of the ingress port", No),
    /// No egress port is a member of the frame's VLAN.
    VlanEgress => ("br_allowed_egress", "receivers not members of the frame's VLAN", No),
    /// The ingress RX filter refused the destination.
    RxFilter => ("__dev_set_rx_mode", "destination not in the port's unicast/multicast filter", No),

    /// Bridge: source MAC multicast or zero.
    BrInvalidSource => ("br_handle_frame", "invalid source address, dropped", No),
    /// Bridge: PAUSE is never forwarded.
    BrPause => ("br_handle_frame", "01:80:c2:00:00:01 (PAUSE) always dropped", No),
    /// Bridge: reserved group address not in group_fwd_mask, consumed by the port.
    BrLinkLocalConsumed => ("br_handle_frame", "link-local group not in group_fwd_mask, passed up the port", No),
    /// Bridge: STP group forwarded because STP is off (or reserved group in the mask).
    BrLinkLocalForwarded => ("br_handle_frame", "link-local group forwarded (STP off or in group_fwd_mask)", Group),
    /// Bridge: port state forbids forwarding.
    BrPortState => ("br_handle_frame", "port not in forwarding or learning state", No),
    /// Bridge: learning state learns and drops.
    BrLearningState => ("br_handle_frame_finish", "learning state: source learned, frame dropped", No),
    /// Bridge: destination is a local entry, passed up to the bridge device.
    BrLocal => ("br_handle_frame_finish", "destination is a local address: passed up to the host", No),
    /// Bridge: known unicast forwarded.
    BrKnownUnicast => ("br_forward", "known destination: forwarded to its port", No),
    /// Bridge: known unicast sent back out the ingress port in hairpin mode.
    BrHairpin => ("should_deliver", "destination on the ingress port, hairpin mode: reflected", No),
    /// Bridge: known unicast to the ingress port, hairpin off.
    BrReflect => ("should_deliver", "destination on the ingress port, hairpin off: dropped", No),
    /// Bridge: a new source on a port at its cap of learned MACs (port security).
    BrPortSecurity => ("l2sw only: the kernel caps learning bridge-wide (fdb_max_learned), not per port", "port at its learned-MAC cap: new source not learned, frame dropped", No),
    /// Bridge: known unicast between isolated ports.
    BrIsolated => ("br_skb_isolated", "both ports isolated: dropped", No),
    /// Bridge: unknown unicast flooded.
    BrFloodUnknown => ("br_flood", "unknown unicast flooded to unicast-flood ports", UnknownUnicast),
    /// Bridge: multicast flooded (no snooping querier).
    BrFloodMulticast => ("br_flood", "multicast flooded to mcast-flood ports and the host", Group),
    /// Bridge: broadcast flooded.
    BrFloodBroadcast => ("br_flood", "broadcast flooded to bcast-flood ports and the host", Group),

    /// macvlan: bridge-mode sender, destination a bridge-mode peer.
    MvBridgeLocal => ("macvlan_queue_xmit", "bridge-mode peer: local delivery, never on the wire", No),
    /// macvlan: bridge-mode sender, broadcast/multicast.
    MvBridgeFlood => ("macvlan_queue_xmit", "bridge mode: to bridge-mode peers and out the uplink", Group),
    /// macvlan: everything else a sub-interface sends.
    MvToUplink => ("macvlan_queue_xmit", "xmit_world: out the uplink", No),
    /// macvlan: the uplink's own stack transmits straight onto the wire.
    MvHostToUplink => ("dev_queue_xmit", "uplink stack: onto the wire, never to a sub-interface", No),
    /// macvlan: unicast from the uplink to a sub-interface MAC.
    MvToSub => ("macvlan_handle_frame", "destination is a sub-interface: delivered, any mode", No),
    /// macvlan: passthru takes every unicast.
    MvPassthru => ("macvlan_handle_frame", "passthru: the one sub-interface gets every unicast", No),
    /// macvlan: unicast miss, to the uplink's stack.
    MvMiss => ("macvlan_handle_frame", "no sub-interface owns the destination: uplink stack", No),
    /// macvlan: source-mode devices are never unicast destinations by their own MAC.
    MvSourceNotDest => ("macvlan_handle_frame", "source-mode device is not a destination: uplink stack", No),
    /// macvlan: allow-listed source with nodst: copies only.
    MvNoDst => ("macvlan_forward_source", "source-mode nodst: copies delivered, original consumed", No),
    /// macvlan: broadcast whose source is a private/passthru/source sub-interface.
    MvToOrigin => ("macvlan_handle_frame", "source is a private/passthru sub-interface: back to it alone", No),
    /// macvlan: broadcast from outside.
    MvFloodExternal => ("macvlan_process_broadcast", "from outside: private|vepa|passthru|bridge subs and the uplink stack", Group),
    /// macvlan: broadcast reflected from a vepa sub-interface.
    MvFloodFromVepa => ("macvlan_process_broadcast", "from a vepa sub: vepa and bridge subs except the sender, and the uplink stack", Group),
    /// macvlan: broadcast reflected from a bridge sub-interface.
    MvFloodFromBridge => ("macvlan_process_broadcast", "from a bridge sub: vepa subs only (bridge peers saw it leave), and the uplink stack", Group),
    /// macvlan: PAUSE only to the uplink stack.
    MvPause => ("macvlan_broadcast", "MAC control frame: never to sub-interfaces", No),

    /// ipvlan: IP of a slave, local delivery.
    IpLocal => ("ipvlan_xmit_mode_l2", "destination IP is a slave's: local delivery", No),
    /// ipvlan: private forbids slave to slave.
    IpPrivate => ("ipvlan_xmit_mode_l2", "private: slave to slave dropped", No),
    /// ipvlan: to the shared MAC but no slave's IP: the master's stack.
    IpToMaster => ("ipvlan_xmit_mode_l2", "to the shared MAC, no slave owns the IP: master stack", No),
    /// ipvlan: multicast from a slave.
    IpMulticastTx => ("ipvlan_process_multicast", "to the other slaves and out the uplink", Group),
    /// ipvlan: other unicast out the uplink.
    IpToUplink => ("ipvlan_xmit_mode_l2", "dev_queue_xmit: out the uplink", No),
    /// ipvlan: the master's stack transmits straight onto the wire.
    IpHostToUplink => ("dev_queue_xmit", "master stack: onto the wire", No),
    /// ipvlan: unicast from the uplink demuxed by IP.
    IpDemux => ("ipvlan_handle_mode_l3", "destination IP is a slave's: delivered", No),
    /// ipvlan: unicast miss, to the master.
    IpMiss => ("ipvlan_handle_mode_l3", "no slave owns the IP: master stack", No),
    /// ipvlan: external multicast.
    IpMulticastRx => ("ipvlan_handle_mode_l2", "external multicast: every slave and the master", Group),
    /// ipvlan: our own multicast coming back.
    IpOwnMulticast => ("ipvlan_external_frame", "a slave's own multicast reflected: master only", No),
    /// ipvlan: PAUSE never queued for slaves.
    IpPause => ("ipvlan_multicast_enqueue", "MAC control frame: not distributed", No),

    /// Overlay: the VXLAN header is malformed.
    VxBadHeader => ("vxlan_rcv", "VXLAN header too short, I flag clear or reserved bits set: dropped", No),
    /// Overlay: another network's VNI.
    VxWrongVni => ("vxlan_rcv / vxlan_vs_find_vni", "no network with that VNI on this port: dropped", No),
    /// Overlay: a sender that is no remote of the network.
    VxUnknownSender => ("l2sw only: the kernel accepts VXLAN from any sender", "sender not in the flood list nor a static remote (learn-remotes off): dropped", No),

    /// Any mode: a flood or fan-out over its class's rate on the ingress port.
    StormControl => ("l2sw only: the kernel has no storm control", "flood class over the ingress port's rate limit: dropped", No),
}

/// The decision for one frame: where, why, in which VLAN, and what learning did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Where the frame goes.
    pub verdict: Verdict,
    /// The rule that decided.
    pub why: Why,
    /// The VLAN the frame was classified into (0 for VLAN-unaware ports or unparsed frames).
    pub vid: Vid,
    /// The frame's outer 802.1Q tag as received (needed for the egress tag edit).
    pub ctag: Option<Tag>,
    /// What learning the source did (`None` when the mode does not learn or did not get there).
    pub learned: Option<Learned>,
    /// For a known unicast to an overlay port: the remote VTEP its FDB entry names (`None`:
    /// every VTEP of the port's flood list).
    pub vtep: Option<Vtep>,
}

impl Decision {
    /// The placeholder a batch's output slots start from.
    pub const EMPTY: Decision = Decision::drop(DropReason::NoDestination, Why::NoPort);

    /// A drop decided before the mode ran.
    #[inline]
    pub const fn drop(reason: DropReason, why: Why) -> Decision {
        Decision {
            verdict: Verdict::Drop(reason),
            why,
            vid: Vid::UNAWARE,
            ctag: None,
            learned: None,
            vtep: None,
        }
    }

    /// A decision by `why`.
    #[inline]
    pub const fn new(verdict: Verdict, why: Why) -> Decision {
        Decision {
            verdict,
            why,
            vid: Vid::UNAWARE,
            ctag: None,
            learned: None,
            vtep: None,
        }
    }
}
