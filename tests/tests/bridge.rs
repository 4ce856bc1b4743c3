//! docs/spec.md §1, the learning bridge: one test per rule, named after it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use l2sw::fwd::{
    BridgeConfig, BridgePort, ConfigError, DropReason, Learned, ModeConfig, PortConfig, Role,
    StpState, SwitchConfig, Vid, Why,
};
use l2sw::wire::craft::station;
use l2sw::wire::{Mac, craft};
use l2sw_tests::lab::{Lab, bc, group, uc};

fn port(name: &str, f: impl FnOnce(&mut BridgePort)) -> PortConfig {
    let mut b = BridgePort::default();
    f(&mut b);
    PortConfig::new(name, Role::Bridge(b))
}

/// Bridge with ports a, b, c (kernel defaults).
fn abc() -> Lab {
    abc_with(BridgeConfig::default())
}

fn abc_with(cfg: BridgeConfig) -> Lab {
    let mut lab = Lab::new(SwitchConfig {
        mode: ModeConfig::Bridge(cfg),
        ..SwitchConfig::bridge()
    });
    for n in ["a", "b", "c"] {
        lab.add(PortConfig::bridge(n));
    }
    lab
}

fn ll(last: u8) -> Mac {
    Mac([0x01, 0x80, 0xc2, 0, 0, last])
}

#[test]
fn spec1_invalid_source_multicast_or_zero_is_dropped_not_only_unlearned() {
    let mut lab = abc();
    for src in [group(1), Mac::BROADCAST, Mac::ZERO] {
        let g = lab.send("a", &uc(station(2), src));
        assert_eq!(g.drop, Some(DropReason::InvalidSource));
        assert_eq!(g.why, Why::BrInvalidSource);
    }
    assert!(lab.sw.fdb().unwrap().is_empty());
}

#[test]
fn spec1_port_states_disabled_blocking_listening_drop() {
    for state in [StpState::Disabled, StpState::Blocking, StpState::Listening] {
        let mut lab = abc();
        lab.add(port("x", |p| p.state = state));
        let g = lab.send("x", &bc(station(9)));
        assert_eq!(g.drop, Some(DropReason::PortState), "{state:?}");
        assert!(lab.sw.fdb().unwrap().is_empty(), "{state:?} must not learn");
        // And nothing is flooded to it.
        assert_eq!(lab.send("a", &bc(station(1))).to(), ["b", "c", "host"]);
    }
}

#[test]
fn spec1_learning_state_learns_then_drops() {
    let mut lab = abc();
    lab.add(port("x", |p| p.state = StpState::Learning));
    let g = lab.send("x", &bc(station(9)));
    assert_eq!(g.drop, Some(DropReason::LearningState));
    assert_eq!(g.decision.learned, Some(Learned::New));
    let x = lab.id("x");
    assert_eq!(
        lab.sw
            .fdb()
            .unwrap()
            .lookup(lab.now, Vid::UNAWARE, station(9)),
        Some((x, false))
    );
    // A learning port is not a forwarding egress either.
    let g = lab.send("a", &uc(station(9), station(1)));
    assert_eq!(g.drop, Some(DropReason::PortState));
}

#[test]
fn spec1_forwarding_is_the_default_state() {
    let mut lab = abc();
    assert_eq!(lab.send("a", &bc(station(1))).to(), ["b", "c", "host"]);
}

#[test]
fn spec1_learns_every_accepted_frame_then_unicasts() {
    let mut lab = abc();
    assert_eq!(lab.send("a", &uc(station(2), station(1))).to(), ["b", "c"]);
    assert_eq!(lab.send("b", &uc(station(1), station(2))).to(), ["a"]);
    assert_eq!(lab.send("a", &uc(station(2), station(1))).to(), ["b"]);
    assert_eq!(lab.sw.fdb().unwrap().len(), 2);
}

#[test]
fn spec1_learning_off_on_a_port_floods_to_it() {
    let mut lab = abc();
    lab.add(port("x", |p| p.learning = false));
    lab.send("x", &bc(station(9)));
    assert_eq!(lab.sw.fdb().unwrap().len(), 0);
    assert_eq!(
        lab.send("a", &uc(station(9), station(1))).to(),
        ["b", "c", "x"]
    );
}

#[test]
fn spec1_fdb_key_is_vlan_and_mac_unaware_ports_flap_across_vids() {
    // VLAN filtering off: every VID is 0, so one MAC seen tagged 10 on a and tagged 20 on b
    // is one station that moved.
    let mut lab = abc();
    let f10 = craft::tagged(&bc(station(7)), 10);
    let f20 = craft::tagged(&bc(station(7)), 20);
    lab.send("a", &f10);
    let g = lab.send("b", &f20);
    assert_eq!(
        g.decision.learned,
        Some(Learned::Moved { from: lab.id("a") })
    );
    assert_eq!(lab.sw.fdb().unwrap().stats().moves, 1);
    // Tags pass through a VLAN-unaware bridge untouched.
    assert_eq!(g.bytes["c"], f20);
}

#[test]
fn spec1_link_local_frames_teach_unless_no_linklocal_learn() {
    let mut lab = abc();
    let g = lab.send("a", &uc(ll(0x0e), station(1)));
    assert_eq!(g.drop, Some(DropReason::LinkLocal));
    assert_eq!(g.decision.learned, Some(Learned::New));

    let mut lab = abc_with(BridgeConfig {
        no_linklocal_learn: true,
        ..BridgeConfig::default()
    });
    let g = lab.send("a", &uc(ll(0x0e), station(1)));
    assert_eq!(g.decision.learned, None);
    assert!(lab.sw.fdb().unwrap().is_empty());
    // no_linklocal_learn only affects consumed frames: a forwarded STP BPDU (STP off) teaches.
    let g = lab.send("a", &uc(ll(0x00), station(1)));
    assert_eq!(g.decision.learned, Some(Learned::New));
}

#[test]
fn spec1_ageing_zero_disables_learning_everything_floods() {
    let mut lab = abc_with(BridgeConfig {
        ageing: Duration::ZERO,
        ..BridgeConfig::default()
    });
    lab.send("b", &uc(station(1), station(2)));
    assert_eq!(lab.send("a", &uc(station(2), station(1))).to(), ["b", "c"]);
    assert_eq!(lab.sw.fdb().unwrap().len(), 0);
}

#[test]
fn spec1_mac_move_is_immediate_static_moves_sticky_and_local_do_not() {
    let mut lab = abc();
    let (a, b, c) = (lab.id("a"), lab.id("b"), lab.id("c"));
    lab.send("a", &bc(station(1)));
    let g = lab.send("b", &bc(station(1)));
    assert_eq!(g.decision.learned, Some(Learned::Moved { from: a }));
    assert_eq!(lab.send("c", &uc(station(1), station(3))).to(), ["b"]);

    let now = lab.now;
    let fdb = lab.sw.fdb_mut().unwrap();
    fdb.add_static(now, Vid::UNAWARE, station(5), a, false)
        .unwrap();
    fdb.add_static(now, Vid::UNAWARE, station(6), a, true)
        .unwrap();
    lab.send("c", &bc(station(5)));
    lab.send("c", &bc(station(6)));
    let fdb = lab.sw.fdb().unwrap();
    assert_eq!(
        fdb.lookup(now, Vid::UNAWARE, station(5)),
        Some((c, false)),
        "static entries move"
    );
    assert_eq!(
        fdb.lookup(now, Vid::UNAWARE, station(6)),
        Some((a, false)),
        "sticky entries stay"
    );
    let _ = b;
}

#[test]
fn spec1_local_entries_never_move_and_go_to_the_host_only() {
    let mut lab = abc();
    lab.add(PortConfig::new("br0", Role::Host).with_mac(station(100)));
    lab.add(PortConfig::bridge("d").with_mac(station(101)));
    // To the bridge's own MAC or a port's own MAC: up to the host, nowhere else.
    for dst in [station(100), station(101)] {
        let g = lab.send("a", &uc(dst, station(1)));
        assert_eq!(g.to(), ["br0"]);
        assert_eq!(g.why, Why::BrLocal);
    }
    // A frame claiming the bridge's MAC as source does not move it.
    let g = lab.send("b", &bc(station(100)));
    assert_eq!(g.decision.learned, Some(Learned::OwnAddress));
    assert_eq!(lab.send("a", &uc(station(100), station(1))).to(), ["br0"]);
}

#[test]
fn spec1_ageing_default_300s_expires_at_updated_plus_ageing() {
    let mut lab = abc();
    lab.send("b", &bc(station(2)));
    lab.advance(299);
    assert_eq!(lab.send("a", &uc(station(2), station(1))).to(), ["b"]);
    lab.advance(1);
    assert_eq!(
        lab.send("a", &uc(station(2), station(1))).to(),
        ["b", "c"],
        "expired at 300 s"
    );
    assert_eq!(
        lab.sw.age(lab.now),
        1,
        "station(2) swept; station(1) is fresh"
    );
}

#[test]
fn spec1_updated_refreshed_only_by_frames_from_the_mac() {
    let mut lab = abc();
    lab.send("b", &bc(station(2)));
    for _ in 0..11 {
        lab.advance(29); // 319 s in all, refreshed by nothing
        lab.send("a", &uc(station(2), station(1))); // traffic *to* station(2)
    }
    assert_eq!(lab.send("a", &uc(station(2), station(1))).to(), ["b", "c"]);
}

#[test]
fn spec1_static_entries_never_expire() {
    let mut lab = abc();
    let (b, now) = (lab.id("b"), lab.now);
    lab.sw
        .fdb_mut()
        .unwrap()
        .add_static(now, Vid::UNAWARE, station(2), b, false)
        .unwrap();
    lab.advance(1_000_000);
    assert_eq!(lab.sw.age(lab.now), 0);
    assert_eq!(lab.send("a", &uc(station(2), station(1))).to(), ["b"]);
}

#[test]
fn spec1_learn_cap_makes_no_entry_but_still_forwards() {
    let mut lab = abc_with(BridgeConfig {
        max_learned: 2,
        ..BridgeConfig::default()
    });
    let now = lab.now;
    let c = lab.id("c");
    lab.sw
        .fdb_mut()
        .unwrap()
        .add_static(now, Vid::UNAWARE, station(50), c, false)
        .unwrap();
    lab.send("a", &bc(station(1)));
    lab.send("a", &bc(station(2)));
    let g = lab.send("b", &uc(station(1), station(3)));
    assert_eq!(g.decision.learned, Some(Learned::AtCap));
    assert_eq!(g.to(), ["a"], "the frame is still forwarded at the cap");
    let g = lab.send("b", &bc(station(4)));
    assert_eq!(g.to(), ["a", "c", "host"], "and still flooded");
    let fdb = lab.sw.fdb().unwrap();
    assert_eq!((fdb.n_learned(), fdb.len(), fdb.stats().at_cap), (2, 3, 2));
    // Stations learned before the cap keep getting unicast.
    assert_eq!(lab.send("c", &uc(station(2), station(50))).to(), ["a"]);
}

#[test]
fn spec1_known_unicast_goes_to_its_port() {
    let mut lab = abc();
    lab.send("c", &bc(station(3)));
    let g = lab.send("a", &uc(station(3), station(1)));
    assert_eq!((g.to(), g.why), (vec!["c"], Why::BrKnownUnicast));
}

#[test]
fn spec1_entry_on_the_ingress_port_is_dropped_silently() {
    let mut lab = abc();
    lab.send("a", &bc(station(2)));
    let g = lab.send("a", &uc(station(2), station(1)));
    assert_eq!(g.drop, Some(DropReason::Reflect));
    assert_eq!(g.why, Why::BrReflect);
}

#[test]
fn spec1_frame_to_the_senders_own_mac_goes_nowhere() {
    // Measured on 6.18: a frame to the sender's own MAC goes nowhere.
    let mut lab = abc();
    let g = lab.send("a", &uc(station(1), station(1)));
    assert_eq!(g.drop, Some(DropReason::Reflect));
}

#[test]
fn spec1_hairpin_reflects_unicast_floods_and_broadcasts() {
    let mut lab = abc();
    lab.add(port("h", |p| p.hairpin = true));
    lab.send("h", &bc(station(2)));
    let g = lab.send("h", &uc(station(2), station(1)));
    assert_eq!((g.to(), g.why), (vec!["h"], Why::BrHairpin));
    assert_eq!(
        lab.send("h", &bc(station(1))).to(),
        ["a", "b", "c", "h", "host"]
    );
    assert_eq!(
        lab.send("h", &uc(station(99), station(1))).to(),
        ["a", "b", "c", "h"]
    );
    assert_eq!(
        lab.send("h", &uc(group(1), station(1))).to(),
        ["a", "b", "c", "h", "host"]
    );
}

#[test]
fn spec1_multicast_to_unicast_is_not_modelled_hairpin_reflects_multicast() {
    // The kernel's "no copy back to the source MAC" applies only with multicast_to_unicast,
    // off by default and not offered by l2sw: with hairpin, multicast is reflected like
    // broadcast.
    let mut lab = abc();
    lab.add(port("h", |p| p.hairpin = true));
    assert!(lab.send("h", &uc(group(1), station(1))).to().contains(&"h"));
}

#[test]
fn spec1_unknown_unicast_floods_to_unicast_flood_ports() {
    let mut lab = abc();
    lab.add(port("x", |p| p.flood_unicast = false));
    let g = lab.send("a", &uc(station(9), station(1)));
    assert_eq!((g.to(), g.why), (vec!["b", "c"], Why::BrFloodUnknown));
}

#[test]
fn spec1_broadcast_floods_to_bcast_flood_ports_and_the_host() {
    let mut lab = abc();
    lab.add(port("x", |p| p.flood_broadcast = false));
    let g = lab.send("a", &bc(station(1)));
    assert_eq!(
        (g.to(), g.why),
        (vec!["b", "c", "host"], Why::BrFloodBroadcast)
    );
}

#[test]
fn spec1_multicast_floods_to_mcast_flood_ports_and_the_host_joined_or_not() {
    let mut lab = abc();
    lab.add(port("x", |p| p.flood_multicast = false));
    let g = lab.send("a", &uc(group(7), station(1)));
    assert_eq!(
        (g.to(), g.why),
        (vec!["b", "c", "host"], Why::BrFloodMulticast)
    );
}

#[test]
fn spec1_host_side_ignores_mcast_and_bcast_flood_flags_not_unicast_flood() {
    let mut lab = abc();
    lab.add(port("x", |p| {
        p.flood_broadcast = false;
        p.flood_multicast = false;
        p.flood_unicast = false;
    }));
    lab.add(PortConfig::new("br0", Role::Host).with_mac(station(100)));
    assert_eq!(
        lab.send("br0", &bc(station(100))).to(),
        ["a", "b", "c", "x"]
    );
    assert_eq!(
        lab.send("br0", &uc(group(3), station(100))).to(),
        ["a", "b", "c", "x"]
    );
    assert_eq!(
        lab.send("br0", &uc(station(9), station(100))).to(),
        ["a", "b", "c"]
    );
    // The host side does not learn its own frames.
    assert_eq!(lab.sw.fdb().unwrap().n_learned(), 0);
}

#[test]
fn spec1_isolated_ports_do_not_talk_to_each_other() {
    let mut lab = abc();
    lab.add(port("i1", |p| p.isolated = true));
    lab.add(port("i2", |p| p.isolated = true));
    lab.send("i2", &bc(station(2)));
    let g = lab.send("i1", &uc(station(2), station(1)));
    assert_eq!(
        (g.drop, g.why),
        (Some(DropReason::Isolated), Why::BrIsolated)
    );
    assert_eq!(
        lab.send("i1", &bc(station(1))).to(),
        ["a", "b", "c", "host"]
    );
    // Isolated to non-isolated and back is fine.
    assert_eq!(lab.send("a", &uc(station(2), station(3))).to(), ["i2"]);
    assert_eq!(
        lab.send("a", &bc(station(3))).to(),
        ["b", "c", "host", "i1", "i2"]
    );
}

#[test]
fn spec1_link_local_stp_group_forwarded_when_stp_off_consumed_when_on() {
    let mut lab = abc();
    // Forwarded like any multicast, so the bridge device gets a copy too (local_rcv).
    let g = lab.send("a", &uc(ll(0x00), station(1)));
    assert_eq!(
        (g.to(), g.why),
        (vec!["b", "c", "host"], Why::BrLinkLocalForwarded)
    );
    let mut lab = abc_with(BridgeConfig {
        stp: true,
        ..BridgeConfig::default()
    });
    let g = lab.send("a", &uc(ll(0x00), station(1)));
    assert_eq!(
        (g.drop, g.why),
        (Some(DropReason::LinkLocal), Why::BrLinkLocalConsumed)
    );
}

#[test]
fn spec1_link_local_pause_always_dropped() {
    let mut lab = abc_with(BridgeConfig {
        group_fwd_mask: 0xfff8,
        ..BridgeConfig::default()
    });
    let g = lab.send("a", &craft::pause(station(1)));
    assert_eq!((g.drop, g.why), (Some(DropReason::Pause), Why::BrPause));
}

#[test]
fn spec1_link_local_lacp_8021x_lldp_consumed_unless_in_group_fwd_mask() {
    let mut lab = abc();
    for last in [0x02, 0x03, 0x0e] {
        assert_eq!(
            lab.send("a", &uc(ll(last), station(1))).drop,
            Some(DropReason::LinkLocal)
        );
    }
    let mut lab = abc_with(BridgeConfig {
        group_fwd_mask: (1 << 0x03) | (1 << 0x0e),
        ..BridgeConfig::default()
    });
    assert_eq!(
        lab.send("a", &uc(ll(0x03), station(1))).to(),
        ["b", "c", "host"]
    );
    assert_eq!(
        lab.send("a", &uc(ll(0x0e), station(1))).to(),
        ["b", "c", "host"]
    );
    assert_eq!(
        lab.send("a", &uc(ll(0x0d), station(1))).drop,
        Some(DropReason::LinkLocal)
    );
    // LACP (bit 2), like STP and PAUSE, cannot be put in the mask (BR_GROUPFWD_RESTRICTED).
    let refused = l2sw::fwd::Switch::new(SwitchConfig {
        mode: ModeConfig::Bridge(BridgeConfig {
            group_fwd_mask: 1 << 2,
            ..BridgeConfig::default()
        }),
        ..SwitchConfig::bridge()
    });
    assert!(matches!(refused, Err(ConfigError::GroupFwdMask(4))));
}

#[test]
fn spec1_vlan_filtering_off_makes_every_port_promiscuous() {
    let mut lab = abc();
    // No port filter drops a foreign destination: it floods.
    let g = lab.send("a", &uc(Mac([0x0a, 0, 0, 0, 0, 1]), station(1)));
    assert_eq!(g.to(), ["b", "c"]);
}

#[test]
fn spec1_host_gets_unknown_unicast_only_when_the_bridge_is_promiscuous() {
    let mut lab = abc_with(BridgeConfig {
        host_promisc: true,
        ..BridgeConfig::default()
    });
    assert_eq!(
        lab.send("a", &uc(station(9), station(1))).to(),
        ["b", "c", "host"]
    );
    lab.send("b", &bc(station(2)));
    assert_eq!(
        lab.send("a", &uc(station(2), station(1))).to(),
        ["b", "host"]
    );
}

#[test]
fn spec1_frames_in_one_batch_are_learned_in_order() {
    let mut lab = abc();
    let got = lab.send_many(&[
        ("a", uc(station(2), station(1))), // unknown: floods
        ("b", uc(station(1), station(2))), // station(1) learned by the previous frame
        ("a", uc(station(2), station(1))), // station(2) learned by the previous frame
    ]);
    assert_eq!(got[0].to(), ["b", "c"]);
    assert_eq!(got[1].to(), ["a"]);
    assert_eq!(got[2].to(), ["b"]);
}
