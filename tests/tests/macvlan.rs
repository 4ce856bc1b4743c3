//! docs/spec.md §2, macvlan: the delivery matrix row by row, the uplink side, filters, and the
//! configuration rules. "Reflected" frames are the sub-interface's own frames arriving back on
//! the uplink, as a hairpinning adjacent switch returns them; the VEPA tests use a real l2sw
//! learning bridge as that switch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use l2sw::fwd::{
    BridgePort, ConfigError, DropReason, MacSet, MacvlanMode, MacvlanPort, PortConfig, Role,
    RxFilter, UplinkPort, Why,
};
use l2sw::wire::craft::station;
use l2sw::wire::{Mac, craft};
use l2sw_tests::lab::{Lab, bc, group, uc};

use MacvlanMode::*;

const UP: u8 = 100;
const E: u8 = 200; // a station beyond the uplink

/// A macvlan switch: uplink "up" (a veth-like uplink that cannot filter unicast, as in the
/// measurements) and sub-interfaces named after their MAC number, e.g. ("a", 1, Bridge).
fn mv(subs: &[(&str, u8, MacvlanMode)]) -> Lab {
    let mut lab = Lab::macvlan();
    lab.add(uplink(false));
    for (name, n, mode) in subs {
        if *mode == Passthru {
            // A passthru sub-interface has the uplink's MAC (eth_hw_addr_inherit).
            let cfg = MacvlanPort {
                mode: Passthru,
                ..MacvlanPort::default()
            };
            lab.add(PortConfig::new(*name, Role::Macvlan(cfg)));
        } else {
            lab.add(PortConfig::macvlan(*name, station(*n), *mode));
        }
    }
    lab
}

fn uplink(unicast_filtering: bool) -> PortConfig {
    PortConfig::new(
        "up",
        Role::Uplink(UplinkPort {
            promiscuous: false,
            unicast_filtering,
        }),
    )
    .with_mac(station(UP))
}

fn source_port(name: &str, n: u8, allow: &[Mac], nodst: bool) -> PortConfig {
    PortConfig::new(
        name,
        Role::Macvlan(MacvlanPort {
            mode: Source,
            source: allow.iter().copied().collect::<MacSet>(),
            nodst,
            nopromisc: false,
        }),
    )
    .with_mac(station(n))
}

/// Joins `g` on the sub-interface `name`.
fn join(lab: &mut Lab, name: &str, g: Mac) {
    let id = lab.id(name);
    let own = lab.sw.port(id).unwrap().cfg.mac.unwrap();
    let f = RxFilter::Unicast {
        own: [own].into_iter().collect(),
        groups: [g].into_iter().collect(),
        allmulti: false,
    };
    lab.sw.set_filter(id, f).unwrap();
}

#[test]
fn spec2_l2sw_default_mode_is_bridge_like_docker() {
    assert_eq!(MacvlanMode::default(), Bridge);
    assert_eq!("vepa".parse::<MacvlanMode>().unwrap(), Vepa);
    assert!("nonsense".parse::<MacvlanMode>().is_err());
}

// ---- sender in bridge mode ---------------------------------------------------------------

#[test]
fn spec2_bridge_sender_unicast_to_bridge_peer_is_local_never_on_the_wire() {
    let mut lab = mv(&[("a", 1, Bridge), ("b", 2, Bridge)]);
    let g = lab.send("a", &uc(station(2), station(1)));
    assert_eq!((g.to(), g.why), (vec!["b"], Why::MvBridgeLocal));
}

#[test]
fn spec2_bridge_sender_unicast_to_other_mode_peer_goes_to_the_wire() {
    for peer in [Private, Vepa, Source] {
        let mut lab = mv(&[("a", 1, Bridge), ("b", 2, peer)]);
        let g = lab.send("a", &uc(station(2), station(1)));
        assert_eq!((g.to(), g.why), (vec!["up"], Why::MvToUplink), "{peer}");
        // Reflected, it reaches b by its MAC (any mode but source).
        let r = lab.send("up", &uc(station(2), station(1)));
        let expect: Vec<&str> = if peer == Source {
            vec!["host"]
        } else {
            vec!["b"]
        };
        assert_eq!(r.to(), expect, "{peer}");
    }
}

#[test]
fn spec2_bridge_sender_unknown_unicast_goes_to_the_wire() {
    let mut lab = mv(&[("a", 1, Bridge), ("b", 2, Bridge)]);
    assert_eq!(lab.send("a", &uc(station(E), station(1))).to(), ["up"]);
}

#[test]
fn spec2_bridge_sender_broadcast_local_to_bridge_peers_and_the_wire() {
    let mut lab = mv(&[
        ("a", 1, Bridge),
        ("b", 2, Bridge),
        ("p", 3, Private),
        ("v", 4, Vepa),
    ]);
    let g = lab.send("a", &bc(station(1)));
    assert_eq!((g.to(), g.why), (vec!["b", "up"], Why::MvBridgeFlood));
}

#[test]
fn spec2_bridge_sender_reflected_broadcast_only_to_vepa_peers() {
    let mut lab = mv(&[
        ("a", 1, Bridge),
        ("b", 2, Bridge),
        ("p", 3, Private),
        ("v", 4, Vepa),
    ]);
    let g = lab.send("up", &bc(station(1)));
    assert_eq!((g.to(), g.why), (vec!["host", "v"], Why::MvFloodFromBridge));
}

// ---- sender in vepa mode -----------------------------------------------------------------

#[test]
fn spec2_vepa_sender_sends_everything_to_the_wire() {
    let mut lab = mv(&[("a", 1, Vepa), ("b", 2, Vepa), ("c", 3, Bridge)]);
    for f in [
        uc(station(2), station(1)),
        uc(station(3), station(1)),
        uc(station(E), station(1)),
        bc(station(1)),
    ] {
        let g = lab.send("a", &f);
        assert_eq!((g.to(), g.why), (vec!["up"], Why::MvToUplink));
    }
}

#[test]
fn spec2_vepa_sender_reflected_unicast_reaches_the_peer() {
    let mut lab = mv(&[("a", 1, Vepa), ("b", 2, Vepa)]);
    assert_eq!(lab.send("up", &uc(station(2), station(1))).to(), ["b"]);
}

#[test]
fn spec2_vepa_sender_reflected_broadcast_to_vepa_and_bridge_peers_and_stack_not_sender() {
    let mut lab = mv(&[
        ("a", 1, Vepa),
        ("b", 2, Vepa),
        ("c", 3, Bridge),
        ("p", 4, Private),
    ]);
    let g = lab.send("up", &bc(station(1)));
    assert_eq!(
        (g.to(), g.why),
        (vec!["b", "c", "host"], Why::MvFloodFromVepa)
    );
}

// ---- sender in private mode --------------------------------------------------------------

#[test]
fn spec2_private_sender_sends_everything_to_the_wire() {
    let mut lab = mv(&[("a", 1, Private), ("b", 2, Private), ("c", 3, Bridge)]);
    for f in [
        uc(station(2), station(1)),
        uc(station(3), station(1)),
        uc(station(E), station(1)),
        bc(station(1)),
    ] {
        assert_eq!(lab.send("a", &f).to(), ["up"]);
    }
}

#[test]
fn spec2_private_reflected_unicast_is_delivered_the_code_not_the_docs() {
    // Measured on 6.18: private + hairpinning upstream, unicast A->B IS delivered.
    let mut lab = mv(&[("a", 1, Private), ("b", 2, Private)]);
    let g = lab.send("up", &uc(station(2), station(1)));
    assert_eq!((g.to(), g.why), (vec!["b"], Why::MvToSub));
}

#[test]
fn spec2_private_reflected_broadcast_back_to_the_sender_alone() {
    // Measured on 6.18: A's broadcast comes back to A alone, never to B (nor the stack).
    let mut lab = mv(&[("a", 1, Private), ("b", 2, Private), ("v", 3, Vepa)]);
    let g = lab.send("up", &bc(station(1)));
    assert_eq!((g.to(), g.why), (vec!["a"], Why::MvToOrigin));
}

// ---- passthru ----------------------------------------------------------------------------

#[test]
fn spec2_passthru_sends_unknown_and_broadcast_to_the_wire() {
    let mut lab = mv(&[("a", 1, Passthru)]);
    assert_eq!(lab.send("a", &uc(station(E), station(1))).to(), ["up"]);
    assert_eq!(lab.send("a", &bc(station(1))).to(), ["up"]);
}

#[test]
fn spec2_passthru_takes_every_unicast_including_its_own_reflected_unknowns() {
    // Measured on 6.18: with hairpin, A receives its own unknown unicasts back.
    let mut lab = mv(&[("a", 1, Passthru)]);
    for f in [
        uc(station(E), station(1)),
        uc(station(77), station(E)),
        uc(station(UP), station(E)),
    ] {
        let g = lab.send("up", &f);
        assert_eq!((g.to(), g.why), (vec!["a"], Why::MvPassthru));
    }
}

#[test]
fn spec2_passthru_reflected_broadcast_back_to_it_alone() {
    // Measured on 6.18: A receives its own broadcasts back (its source is the uplink's MAC,
    // which passthru took).
    let mut lab = mv(&[("a", 1, Passthru)]);
    let g = lab.send("up", &bc(station(UP)));
    assert_eq!((g.to(), g.why), (vec!["a"], Why::MvToOrigin));
    // A broadcast from outside reaches it and the uplink stack.
    assert_eq!(lab.send("up", &bc(station(E))).to(), ["a", "host"]);
}

// ---- source mode -------------------------------------------------------------------------

#[test]
fn spec2_source_mode_sends_everything_to_the_wire() {
    let mut lab = mv(&[("b", 2, Bridge)]);
    lab.add(source_port("s", 3, &[station(E)], false));
    assert_eq!(lab.send("s", &uc(station(2), station(3))).to(), ["up"]);
    assert_eq!(lab.send("s", &bc(station(3))).to(), ["up"]);
}

#[test]
fn spec2_source_mode_is_never_a_unicast_destination_by_its_own_mac() {
    // Measured on 6.18.
    let mut lab = mv(&[("b", 2, Bridge)]);
    lab.add(source_port("s", 3, &[station(E)], false));
    let g = lab.send("up", &uc(station(3), station(9)));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::MvSourceNotDest));
    // Not even from a bridge-mode sibling: that goes to the wire.
    assert_eq!(lab.send("b", &uc(station(3), station(2))).to(), ["up"]);
}

#[test]
fn spec2_source_mode_gets_copies_of_frames_whose_source_is_listed() {
    // Measured on 6.18: from E, unicast to any MAC and broadcast.
    let mut lab = mv(&[("b", 2, Bridge)]);
    lab.add(source_port("s", 3, &[station(E)], false));
    assert_eq!(lab.send("up", &uc(station(2), station(E))).to(), ["b", "s"]);
    assert_eq!(
        lab.send("up", &uc(station(66), station(E))).to(),
        ["host", "s"]
    );
    assert_eq!(lab.send("up", &bc(station(E))).to(), ["b", "host", "s"]);
    // Unlisted sources get no copy.
    assert_eq!(lab.send("up", &uc(station(2), station(9))).to(), ["b"]);
}

#[test]
fn spec2_source_mode_nodst_consumes_the_original() {
    let mut lab = mv(&[("b", 2, Bridge)]);
    lab.add(source_port("s", 3, &[station(E)], true));
    let g = lab.send("up", &uc(station(2), station(E)));
    assert_eq!((g.to(), g.why), (vec!["s"], Why::MvNoDst));
    assert_eq!(lab.send("up", &bc(station(E))).to(), ["s"]);
}

// ---- from the uplink ---------------------------------------------------------------------

#[test]
fn spec2_from_uplink_unicast_to_a_sub_mac_whatever_its_mode() {
    let mut lab = mv(&[("p", 1, Private), ("v", 2, Vepa), ("b", 3, Bridge)]);
    for (n, name) in [(1, "p"), (2, "v"), (3, "b")] {
        let g = lab.send("up", &uc(station(n), station(E)));
        assert_eq!((g.to(), g.why), (vec![name], Why::MvToSub));
    }
}

#[test]
fn spec2_from_uplink_unicast_miss_goes_to_the_uplink_stack() {
    let mut lab = mv(&[("a", 1, Bridge)]);
    let g = lab.send("up", &uc(station(77), station(E)));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::MvMiss));
}

#[test]
fn spec2_from_uplink_broadcast_to_every_private_vepa_passthru_bridge_sub_and_the_stack() {
    let mut lab = mv(&[("p", 1, Private), ("v", 2, Vepa), ("b", 3, Bridge)]);
    lab.add(source_port("s", 4, &[], false));
    let g = lab.send("up", &bc(station(E)));
    assert_eq!(
        (g.to(), g.why),
        (vec!["b", "host", "p", "v"], Why::MvFloodExternal)
    );
}

#[test]
fn spec2_unjoined_multicast_is_filtered_unlike_the_bridge() {
    let mut lab = mv(&[("a", 1, Bridge), ("b", 2, Bridge), ("v", 3, Vepa)]);
    // Nobody joined group 5: only the uplink stack gets it from outside.
    assert_eq!(lab.send("up", &uc(group(5), station(E))).to(), ["host"]);
    assert_eq!(lab.send("a", &uc(group(5), station(1))).to(), ["up"]);
    join(&mut lab, "b", group(5));
    join(&mut lab, "v", group(5));
    assert_eq!(
        lab.send("up", &uc(group(5), station(E))).to(),
        ["b", "host", "v"]
    );
    assert_eq!(lab.send("a", &uc(group(5), station(1))).to(), ["b", "up"]);
    assert_eq!(lab.send("up", &uc(group(6), station(E))).to(), ["host"]);
    // allmulti takes every group.
    let a = lab.id("a");
    lab.sw
        .set_filter(
            a,
            RxFilter::Unicast {
                own: [station(1)].into_iter().collect(),
                groups: MacSet::default(),
                allmulti: true,
            },
        )
        .unwrap();
    assert_eq!(
        lab.send("up", &uc(group(6), station(E))).to(),
        ["a", "host"]
    );
}

#[test]
fn spec2_pause_is_never_delivered_to_sub_interfaces() {
    let mut lab = mv(&[("a", 1, Bridge), ("b", 2, Bridge)]);
    for n in ["a", "b"] {
        let id = lab.id(n);
        lab.sw.set_filter(id, RxFilter::Promiscuous).unwrap();
    }
    let g = lab.send("up", &craft::pause(station(E)));
    assert_eq!((g.to(), g.why), (vec!["host"], Why::MvPause));
    assert_eq!(lab.send("a", &craft::pause(station(1))).to(), ["up"]);
}

// ---- VEPA and reflective relay, with an l2sw bridge as the adjacent switch ----------------

/// Sends `frame` from sub-interface `from` of `mv`, through an l2sw learning bridge whose
/// port "down" faces the uplink (hairpin as given) and whose port "e" holds station E; returns
/// what the macvlan side delivered (sub-interfaces and "host") and whether E got it.
fn through_upstream(mv: &mut Lab, br: &mut Lab, from: &str, frame: &[u8]) -> (Vec<String>, bool) {
    let mut delivered = Vec::new();
    let mut e_got = false;
    let first = mv.send(from, frame);
    for to in &first.to {
        if to == "up" {
            let up = br.send("down", frame);
            e_got |= up.to.iter().any(|t| t == "e");
            if up.to.iter().any(|t| t == "down") {
                let back = mv.send("up", frame);
                delivered.extend(back.to);
            }
        } else {
            delivered.push(to.clone());
        }
    }
    delivered.sort();
    (delivered, e_got)
}

fn upstream(hairpin: bool) -> Lab {
    let mut br = Lab::bridge();
    br.add(PortConfig::new(
        "down",
        Role::Bridge(BridgePort {
            hairpin,
            ..BridgePort::default()
        }),
    ));
    br.add(PortConfig::bridge("e"));
    // The bridge has learned where everyone is.
    for n in [1, 2, 3] {
        br.send("down", &bc(station(n)));
    }
    br.send("e", &bc(station(E)));
    br
}

#[test]
fn spec2_vepa_needs_reflective_relay_hairpin_off_peers_cannot_meet() {
    // Measured on 6.18: vepa, hairpin off: A and B cannot reach each other at all.
    let mut lab = mv(&[("a", 1, Vepa), ("b", 2, Vepa)]);
    let mut br = upstream(false);
    assert_eq!(
        through_upstream(&mut lab, &mut br, "a", &uc(station(2), station(1))),
        (vec![], false)
    );
    let (got, e) = through_upstream(&mut lab, &mut br, "a", &bc(station(1)));
    assert_eq!(
        (got, e),
        (vec![], true),
        "the broadcast reaches E but not B"
    );
}

#[test]
fn spec2_vepa_with_hairpin_upstream_peers_meet() {
    // Measured on 6.18: hairpin on, they can.
    let mut lab = mv(&[("a", 1, Vepa), ("b", 2, Vepa)]);
    let mut br = upstream(true);
    assert_eq!(
        through_upstream(&mut lab, &mut br, "a", &uc(station(2), station(1))),
        (vec!["b".into()], false)
    );
    let (got, e) = through_upstream(&mut lab, &mut br, "a", &bc(station(1)));
    assert_eq!((got, e), (vec!["b".into(), "host".into()], true));
}

#[test]
fn spec6_vepa_without_a_hairpinning_switch_behaves_like_private_for_local_traffic() {
    let mut vepa = mv(&[("a", 1, Vepa), ("b", 2, Vepa)]);
    let mut private = mv(&[("a", 1, Private), ("b", 2, Private)]);
    let mut br = upstream(false);
    for f in [uc(station(2), station(1)), bc(station(1))] {
        assert_eq!(
            through_upstream(&mut vepa, &mut br, "a", &f),
            through_upstream(&mut private, &mut br, "a", &f)
        );
    }
}

#[test]
fn spec2_private_with_hairpin_upstream_matches_the_measurement() {
    let mut lab = mv(&[("a", 1, Private), ("b", 2, Private)]);
    let mut br = upstream(true);
    let (got, _) = through_upstream(&mut lab, &mut br, "a", &uc(station(2), station(1)));
    assert_eq!(got, ["b"]);
    let (got, e) = through_upstream(&mut lab, &mut br, "a", &bc(station(1)));
    assert_eq!((got, e), (vec!["a".into()], true));
}

// ---- configuration -----------------------------------------------------------------------

#[test]
fn spec2_sub_macs_join_the_uplink_unicast_filter_so_it_stays_non_promiscuous() {
    let mut lab = Lab::macvlan();
    lab.add(uplink(true));
    lab.add(PortConfig::macvlan("a", station(1), Bridge));
    lab.add(PortConfig::macvlan("b", station(2), Vepa));
    let up = lab.id("up");
    let f = lab.sw.port(up).unwrap().ingress.clone().unwrap();
    for m in [station(UP), station(1), station(2), Mac::BROADCAST] {
        assert!(f.accepts(m), "{m}");
    }
    assert!(!f.accepts(station(77)));
    assert!(!f.accepts(group(5)), "no sub-interface joined it");
    let g = lab.send("up", &uc(station(77), station(E)));
    assert_eq!(
        (g.drop, g.why),
        (Some(DropReason::FilterMiss), Why::RxFilter)
    );
    join(&mut lab, "a", group(5));
    assert!(
        lab.sw
            .port(up)
            .unwrap()
            .ingress
            .as_ref()
            .unwrap()
            .accepts(group(5)),
        "dev_mc_sync"
    );
}

#[test]
fn spec0_uplink_that_cannot_filter_unicast_goes_promiscuous_with_the_first_sub_mac() {
    let mut lab = Lab::macvlan();
    lab.add(uplink(false));
    let up = lab.id("up");
    assert!(
        lab.sw.port(up).unwrap().ingress.is_some(),
        "no secondary MAC yet"
    );
    lab.add(PortConfig::macvlan("a", station(1), Bridge));
    assert_eq!(lab.sw.port(up).unwrap().ingress, None, "promiscuous");
}

#[test]
fn spec2_duplicate_mac_is_address_in_use() {
    let mut lab = mv(&[("a", 1, Bridge)]);
    let dup_sub = lab.sw.add_port(PortConfig::macvlan("b", station(1), Vepa));
    assert!(
        matches!(dup_sub, Err(ConfigError::AddressInUse { .. })),
        "{dup_sub:?}"
    );
    let dup_up = lab
        .sw
        .add_port(PortConfig::macvlan("c", station(UP), Bridge));
    assert!(
        matches!(dup_up, Err(ConfigError::AddressInUse { .. })),
        "{dup_up:?}"
    );
    // Nothing changed.
    assert_eq!(lab.sw.ports().count(), 2);
    assert_eq!(lab.send("up", &uc(station(1), station(E))).to(), ["a"]);
}

#[test]
fn spec2_passthru_is_the_only_sub_interface_of_its_uplink() {
    let mut lab = mv(&[("a", 1, Passthru)]);
    let second = lab
        .sw
        .add_port(PortConfig::macvlan("b", station(2), Bridge));
    assert_eq!(second, Err(ConfigError::PassthruExclusive));
    let mut lab = mv(&[("a", 1, Bridge)]);
    let late = lab
        .sw
        .add_port(PortConfig::macvlan("p", station(2), Passthru));
    assert_eq!(late, Err(ConfigError::PassthruExclusive));
}

#[test]
fn spec2_passthru_refuses_a_mac_of_its_own() {
    let mut lab = mv(&[]);
    let own = PortConfig::macvlan("p", station(1), Passthru);
    assert!(matches!(
        lab.sw.add_port(own),
        Err(ConfigError::PassthruMac { .. })
    ));
    // The uplink's own MAC is accepted.
    lab.add(PortConfig::macvlan("p", station(UP), Passthru));
}

#[test]
fn spec2_passthru_takes_the_uplink_mac_and_makes_it_promiscuous_unless_nopromisc() {
    let mut lab = Lab::macvlan();
    lab.add(uplink(true));
    lab.add(PortConfig::new(
        "p",
        Role::Macvlan(MacvlanPort {
            mode: Passthru,
            ..MacvlanPort::default()
        }),
    ));
    let up = lab.id("up");
    assert_eq!(lab.sw.port(up).unwrap().ingress, None, "promiscuous");
    assert_eq!(
        lab.sw.macvlan().unwrap().port_of(station(UP)),
        Some(lab.id("p"))
    );

    let mut lab = Lab::macvlan();
    lab.add(uplink(true));
    let cfg = MacvlanPort {
        mode: Passthru,
        nopromisc: true,
        ..MacvlanPort::default()
    };
    lab.add(PortConfig::new("p", Role::Macvlan(cfg)));
    let up = lab.id("up");
    assert!(
        lab.sw.port(up).unwrap().ingress.is_some(),
        "nopromisc keeps the filter"
    );
}

#[test]
fn spec2_sub_interfaces_need_a_unicast_mac() {
    let mut lab = mv(&[]);
    let no_mac = PortConfig::new("a", Role::Macvlan(MacvlanPort::default()));
    assert!(matches!(
        lab.sw.add_port(no_mac),
        Err(ConfigError::MissingMac { .. })
    ));
    let bad = PortConfig::macvlan("b", group(1), Bridge);
    assert!(matches!(
        lab.sw.add_port(bad),
        Err(ConfigError::NotUnicast { .. })
    ));
    let bridge_port = PortConfig::bridge("c");
    assert!(matches!(
        lab.sw.add_port(bridge_port),
        Err(ConfigError::RoleNotInMode { .. })
    ));
}

#[test]
fn spec6_host_cannot_reach_its_own_macvlan_workloads() {
    // The uplink's own stack transmits straight onto the wire; the frame never passes the
    // macvlan receive path, so the workload does not get it.
    let mut lab = mv(&[("a", 1, Bridge)]);
    lab.add(PortConfig::new("host0", Role::Host).with_mac(station(UP)));
    let g = lab.send("host0", &uc(station(1), station(UP)));
    assert_eq!((g.to(), g.why), (vec!["up"], Why::MvHostToUplink));
    // The fix: a bridge-mode sub-interface for the host ("shim") reaches it locally.
    lab.add(PortConfig::macvlan("shim", station(50), Bridge));
    assert_eq!(lab.send("shim", &uc(station(1), station(50))).to(), ["a"]);
    assert_eq!(lab.send("a", &uc(station(50), station(1))).to(), ["shim"]);
}
