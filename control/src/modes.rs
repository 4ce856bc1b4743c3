//! The modes l2ctl teaches and the canonical scenario of each: who sits on which port with
//! which MAC, and the frames they send, in order. `l2ctl explain` runs a scenario through the
//! forwarding core in memory; `l2ctl verify` runs the same one through the kernel and through
//! l2sw on real ports. One catalogue, so the two never show different things.
//!
//! The macvlan and ipvlan topologies are the ones docs/spec.md §9 measured: sub-interfaces `a` and `b`
//! on an uplink whose wire leads to an upstream bridge (hairpin on or off) shared with an
//! outside station `e`. The bridge topologies are three ports `a`, `b`, `c`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use l2sw::fwd::{MacvlanMode, MacvlanPort, PortConfig, Role as PortRole, RxFilter};
use l2sw::wire::{Mac, craft};

macro_rules! modes {
    ($( $(#[$doc:meta])* $name:ident => $text:literal, $about:literal, )*) => {
        /// A forwarding mode people study.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Mode { $( $(#[$doc])* $name, )* }

        impl Mode {
            /// Every mode, in teaching order.
            pub const ALL: &'static [Mode] = &[$(Mode::$name,)*];

            /// The name on the command line (`macvlan-vepa`).
            pub const fn name(self) -> &'static str {
                match self { $(Mode::$name => $text,)* }
            }

            /// What the mode does, in one line.
            pub const fn about(self) -> &'static str {
                match self { $(Mode::$name => $about,)* }
            }
        }
    };
}

modes! {
    /// The learning bridge (docker0, a Linux bridge).
    Bridge => "bridge",
        "a learning bridge: learns where each source is, forwards known unicast, floods the rest, never back out the ingress port",
    /// The bridge with hairpin (reflective relay) on port a.
    BridgeHairpin => "bridge-hairpin",
        "hairpin on port a: a frame for a station behind a's own port goes back out of it (reflective relay, what VEPA needs upstream)",
    /// The bridge with ports a and b isolated.
    BridgeIsolated => "bridge-isolated",
        "a and b isolated: isolated ports reach only non-isolated ones (c), never each other",
    /// macvlan sub-interfaces in bridge mode.
    MacvlanBridge => "macvlan-bridge",
        "sub-interfaces with their own MACs; frames between them are delivered inside, everything else goes out the uplink",
    /// macvlan sub-interfaces in private mode.
    MacvlanPrivate => "macvlan-private",
        "sub-interfaces never reach each other inside, and frames from each other that come back over the uplink are dropped too, except unicast",
    /// macvlan sub-interfaces in vepa mode.
    MacvlanVepa => "macvlan-vepa",
        "every frame goes out the uplink; sub-interfaces meet only if the upstream switch sends it back (hairpin)",
    /// One macvlan sub-interface in passthru mode.
    MacvlanPassthru => "macvlan-passthru",
        "one sub-interface takes over the uplink: its MAC, and every frame that arrives",
    /// A source-mode macvlan beside a bridge-mode one.
    MacvlanSource => "macvlan-source",
        "a source-mode sub-interface receives copies of frames whose source MAC is on its list, never by its own MAC",
    /// ipvlan L2 slaves (bridge flag).
    IpvlanL2 => "ipvlan-l2",
        "slaves share the uplink's MAC and are told apart by IP address; broadcasts reach them all",
    /// One bridge per host joined by VXLAN: an overlay network across hosts h1, h2, h3.
    Overlay => "overlay",
        "one L2 segment across hosts: each host's bridge has a VXLAN port; a known MAC goes to the VTEP it was learned behind, broadcast and unknown unicast to every VTEP of the flood list, never back into the overlay",
}

impl Mode {
    /// Whether `verify` can run the mode through the kernel (ipvlan is absent here; the
    /// overlay spans hosts, and is compared with the kernel's VTEPs by control/tests/overlay.rs).
    pub const fn in_kernel(self) -> bool {
        !matches!(self, Mode::IpvlanL2 | Mode::Overlay)
    }

    /// The host an overlay member lives on (`h1`, `h2`, `h3`), by member name.
    pub fn overlay_host(member: &str) -> Option<usize> {
        match member {
            "a" | "d" => Some(0),
            "b" => Some(1),
            "c" => Some(2),
            _ => None,
        }
    }

    /// `MODE` or `all`, as the command line takes them.
    pub fn parse_list(s: &str) -> Result<Vec<Mode>, ParseModeError> {
        if s == "all" {
            return Ok(Mode::ALL.to_vec());
        }
        s.parse().map(|m| vec![m])
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mode name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}: expected all, {names}", names = Mode::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "))]
pub struct ParseModeError(pub String);

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Mode, ParseModeError> {
        Mode::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| ParseModeError(s.to_owned()))
    }
}

/// Station `n`'s MAC: 02:00:00:00:00:nn.
pub use l2sw::wire::craft::station;

/// The uplink's MAC (macvlan and ipvlan topologies); ipvlan slaves share it.
pub const UPLINK_MAC: Mac = Mac([2, 0, 0, 0, 1, 0]);
/// The outside station's number.
pub const E: u8 = 200;
/// A multicast group `b` joins.
pub const JOINED: Mac = Mac([1, 0, 0x5e, 0, 0, 7]);
/// A multicast group nobody joins.
pub const UNJOINED: Mac = Mac([1, 0, 0x5e, 0, 0, 5]);
/// A station nobody has heard of.
pub const UNKNOWN: Mac = station(99);
/// A station that lives behind port `a` (bridge topologies): the hairpin case.
pub const BEHIND_A: Mac = station(9);

/// Station `n`'s IPv4 address: 10.0.0.n.
pub const fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// What a member of a topology is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRole {
    /// A port of the bridge.
    BridgePort {
        /// Hairpin (reflective relay) on.
        hairpin: bool,
        /// Isolated.
        isolated: bool,
    },
    /// A macvlan sub-interface.
    Sub {
        /// Its mode.
        mode: MacvlanMode,
        /// Source mode: the MACs whose frames it receives copies of.
        source: Vec<Mac>,
        /// Whether it joins [`JOINED`].
        joins: bool,
    },
    /// An ipvlan L2 slave (bridge flag), with its address.
    Slave,
    /// The outside station behind the upstream bridge, reached over the uplink.
    Outside,
}

/// One member: a workload on a switch port, or the outside station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name (`a`, `b`, `c`, `e`).
    pub name: &'static str,
    /// The MAC its interface has (ipvlan slaves and passthru: the uplink's).
    pub mac: Mac,
    /// Its IPv4 address (used by ipvlan).
    pub ip: Ipv4Addr,
    /// What it is.
    pub role: MemberRole,
}

impl Member {
    /// The l2sw port of a macvlan sub-interface member, named `port`: its mode and
    /// allow-list, an RX filter of its own MAC and joined group, and its MAC (a passthru one
    /// has none of its own: it takes the uplink's). `None` for other members.
    pub fn macvlan_port(&self, port: &str) -> Option<PortConfig> {
        let MemberRole::Sub {
            mode,
            source,
            joins,
        } = &self.role
        else {
            return None;
        };
        let sub = MacvlanPort {
            mode: *mode,
            source: source.iter().copied().collect(),
            ..MacvlanPort::default()
        };
        let filter = RxFilter::Unicast {
            own: [self.mac].into_iter().collect(),
            groups: joins.then_some(JOINED).into_iter().collect(),
            allmulti: false,
        };
        let cfg = PortConfig::new(port, PortRole::Macvlan(sub)).with_filter(filter);
        Some(if *mode == MacvlanMode::Passthru {
            cfg
        } else {
            cfg.with_mac(self.mac)
        })
    }
}

/// A mode's topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The mode.
    pub mode: Mode,
    /// The members, in display order.
    pub members: Vec<Member>,
    /// Whether there is an uplink with an upstream bridge and the outside station `e` behind
    /// it (macvlan and ipvlan).
    pub upstream: bool,
}

fn member(name: &'static str, n: u8, role: MemberRole) -> Member {
    Member {
        name,
        mac: station(n),
        ip: ip(n),
        role,
    }
}

fn sub(name: &'static str, n: u8, mode: MacvlanMode, joins: bool) -> Member {
    let mut m = member(
        name,
        n,
        MemberRole::Sub {
            mode,
            source: Vec::new(),
            joins,
        },
    );
    if mode == MacvlanMode::Passthru {
        m.mac = UPLINK_MAC;
    }
    m
}

/// The topology of `mode`.
pub fn topology(mode: Mode) -> Topology {
    let port = |hairpin, isolated| MemberRole::BridgePort { hairpin, isolated };
    let e = member("e", E, MemberRole::Outside);
    let (members, upstream) = match mode {
        Mode::Bridge | Mode::BridgeHairpin | Mode::BridgeIsolated => {
            let hairpin = mode == Mode::BridgeHairpin;
            let isolated = mode == Mode::BridgeIsolated;
            (
                vec![
                    member("a", 1, port(hairpin, isolated)),
                    member("b", 2, port(false, isolated)),
                    member("c", 3, port(false, false)),
                ],
                false,
            )
        }
        Mode::MacvlanBridge | Mode::MacvlanPrivate | Mode::MacvlanVepa => {
            let m = match mode {
                Mode::MacvlanPrivate => MacvlanMode::Private,
                Mode::MacvlanVepa => MacvlanMode::Vepa,
                _ => MacvlanMode::Bridge,
            };
            (vec![sub("a", 1, m, false), sub("b", 2, m, true), e], true)
        }
        Mode::MacvlanPassthru => (vec![sub("a", 1, MacvlanMode::Passthru, false), e], true),
        Mode::MacvlanSource => {
            let mut s = sub("s", 3, MacvlanMode::Source, false);
            s.role = MemberRole::Sub {
                mode: MacvlanMode::Source,
                source: vec![station(E)],
                joins: false,
            };
            (vec![sub("a", 1, MacvlanMode::Bridge, false), s, e], true)
        }
        Mode::Overlay => (
            vec![
                member("a", 1, port(false, false)),
                member("d", 4, port(false, false)),
                member("b", 2, port(false, false)),
                member("c", 3, port(false, false)),
            ],
            false,
        ),
        Mode::IpvlanL2 => {
            let slave = |name, n| Member {
                mac: UPLINK_MAC,
                ..member(name, n, MemberRole::Slave)
            };
            (vec![slave("a", 1), slave("b", 2), e], true)
        }
    };
    Topology {
        mode,
        members,
        upstream,
    }
}

/// One frame of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it shows, in a few words ("peer unicast a → b").
    pub what: String,
    /// The member that sends it.
    pub from: &'static str,
    /// The frame, as it leaves the sender.
    pub frame: Vec<u8>,
    /// Multicast the kernel filters through a hash (an unjoined group may slip through there;
    /// docs/spec.md §8, README).
    pub hashed: bool,
}

fn raw(dst: Mac, src: Mac) -> Vec<u8> {
    craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, b"l2sw scenario")
}

fn step(what: impl Into<String>, from: &'static str, frame: Vec<u8>) -> Step {
    Step {
        what: what.into(),
        from,
        frame,
        hashed: false,
    }
}

fn hashed(mut s: Step) -> Step {
    s.hashed = true;
    s
}

/// The frames of `mode`'s scenario, in the order they are sent (what is learned from one is
/// known to the next).
pub fn scenario(mode: Mode) -> Vec<Step> {
    let (a, b, c, e) = (station(1), station(2), station(3), station(E));
    match mode {
        Mode::Overlay => vec![
            step("broadcast from a (h1)", "a", raw(Mac::BROADCAST, a)),
            step("unicast b → a, learned behind h1's VTEP", "b", raw(a, b)),
            step("unknown unicast a → c (c has not spoken)", "a", raw(c, a)),
            step("unicast c → a", "c", raw(a, c)),
            step("unicast a → c, learned behind h3's VTEP", "a", raw(c, a)),
            step(
                "local unicast d → a, never into the overlay",
                "d",
                raw(a, station(4)),
            ),
        ],
        Mode::Bridge | Mode::BridgeHairpin | Mode::BridgeIsolated => vec![
            step("broadcast from a", "a", raw(Mac::BROADCAST, a)),
            step("unicast b → a (a is known)", "b", raw(a, b)),
            step("peer unicast a → b (b is known)", "a", raw(b, a)),
            step("unknown unicast from a", "a", raw(UNKNOWN, a)),
            step("unicast c → a", "c", raw(a, c)),
            step("unicast a → c", "a", raw(c, a)),
            step("unjoined multicast from a", "a", raw(UNJOINED, a)),
            step("joined multicast from a", "a", raw(JOINED, a)),
            step(
                "a station behind a speaks (learned on a)",
                "a",
                raw(Mac::BROADCAST, BEHIND_A),
            ),
            step(
                "unicast a → the station behind a's own port",
                "a",
                raw(BEHIND_A, a),
            ),
        ],
        Mode::MacvlanBridge | Mode::MacvlanPrivate | Mode::MacvlanVepa => vec![
            step("broadcast from a", "a", raw(Mac::BROADCAST, a)),
            step("peer unicast a → b", "a", raw(b, a)),
            step("unknown unicast from a", "a", raw(UNKNOWN, a)),
            step("unicast a → e (outside)", "a", raw(e, a)),
            step(
                "broadcast from e, over the uplink",
                "e",
                raw(Mac::BROADCAST, e),
            ),
            step("unicast e → a, over the uplink", "e", raw(a, e)),
            step("unknown unicast from e", "e", raw(UNKNOWN, e)),
            hashed(step("unjoined multicast from a", "a", raw(UNJOINED, a))),
            hashed(step(
                "joined multicast from a (b joined)",
                "a",
                raw(JOINED, a),
            )),
            hashed(step(
                "joined multicast from e (b joined)",
                "e",
                raw(JOINED, e),
            )),
            hashed(step("unjoined multicast from e", "e", raw(UNJOINED, e))),
            step("broadcast from b", "b", raw(Mac::BROADCAST, b)),
            step("peer unicast b → a", "b", raw(a, b)),
        ],
        Mode::MacvlanPassthru => vec![
            step("broadcast from a", "a", raw(Mac::BROADCAST, UPLINK_MAC)),
            step("unicast a → e (outside)", "a", raw(e, UPLINK_MAC)),
            step("unknown unicast from a", "a", raw(UNKNOWN, UPLINK_MAC)),
            step("broadcast from e", "e", raw(Mac::BROADCAST, e)),
            step("unicast e → a", "e", raw(UPLINK_MAC, e)),
            step("unknown unicast from e", "e", raw(UNKNOWN, e)),
            hashed(step("unjoined multicast from e", "e", raw(UNJOINED, e))),
        ],
        Mode::MacvlanSource => vec![
            step(
                "broadcast from e (s listens for e)",
                "e",
                raw(Mac::BROADCAST, e),
            ),
            step("unicast e → a (s listens for e)", "e", raw(a, e)),
            step("unknown unicast from e", "e", raw(UNKNOWN, e)),
            step("unicast e → s's own MAC", "e", raw(station(3), e)),
            step("broadcast from a", "a", raw(Mac::BROADCAST, a)),
            step("unicast a → e", "a", raw(e, a)),
        ],
        Mode::IpvlanL2 => {
            let udp = |src: u8, dst: u8, dst_mac: Mac, src_mac: Mac| {
                craft::ipv4_udp(dst_mac, src_mac, ip(src), ip(dst), b"l2sw scenario")
            };
            vec![
                step(
                    "ARP broadcast from a",
                    "a",
                    craft::arp_request(UPLINK_MAC, ip(1), ip(2)),
                ),
                step(
                    "IPv4 a → b (same MAC, told apart by IP)",
                    "a",
                    udp(1, 2, UPLINK_MAC, UPLINK_MAC),
                ),
                step("IPv4 a → e (outside)", "a", udp(1, E, e, UPLINK_MAC)),
                step("IPv4 e → a, over the uplink", "e", udp(E, 1, UPLINK_MAC, e)),
                step(
                    "IPv4 e → an address nobody has",
                    "e",
                    udp(E, 77, UPLINK_MAC, e),
                ),
                step("broadcast from e", "e", raw(Mac::BROADCAST, e)),
            ]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_all_expands() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), *m);
        }
        assert_eq!(Mode::parse_list("all").unwrap().len(), Mode::ALL.len());
        let e = "macvlan-nope".parse::<Mode>().unwrap_err().to_string();
        assert!(e.contains("macvlan-vepa") && e.contains("all"), "{e}");
    }

    #[test]
    fn every_sender_is_a_member() {
        for m in Mode::ALL {
            let t = topology(*m);
            for s in scenario(*m) {
                assert!(
                    t.members.iter().any(|x| x.name == s.from),
                    "{m}: {}",
                    s.from
                );
            }
        }
    }
}
