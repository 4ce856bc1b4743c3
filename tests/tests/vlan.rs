//! docs/spec.md §0 and §4, 802.1Q on ports: classification, tag push/pop, and no frame ever crossing
//! VLANs. This kernel has no 802.1Q devices, so crafted tagged frames check the rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use l2sw::fwd::{DropReason, MacvlanMode, PortConfig, TagOp, Vid, VidSet, VlanMode, Why};
use l2sw::wire::craft::station;
use l2sw::wire::{FrameInfo, craft};
use l2sw_tests::lab::{Lab, bc, uc};

fn trunk(vids: &[u16], native: Option<u16>) -> VlanMode {
    VlanMode::Trunk {
        allowed: vids.iter().copied().map(Vid::new).collect::<VidSet>(),
        native: native.map(Vid::new),
    }
}

/// A bridge with access ports a10, b10 (VLAN 10), c20 (VLAN 20) and trunk t (10, 20).
fn vlans() -> Lab {
    let mut lab = Lab::bridge();
    lab.add(PortConfig::bridge("a10").with_vlan(VlanMode::Access { vid: Vid::new(10) }));
    lab.add(PortConfig::bridge("b10").with_vlan(VlanMode::Access { vid: Vid::new(10) }));
    lab.add(PortConfig::bridge("c20").with_vlan(VlanMode::Access { vid: Vid::new(20) }));
    lab.add(PortConfig::bridge("t").with_vlan(trunk(&[10, 20], None)));
    lab
}

fn vid_of(frame: &[u8]) -> Option<u16> {
    FrameInfo::parse(frame, 1600)
        .unwrap()
        .ctag()
        .map(|t| t.vid())
}

#[test]
fn spec4_access_floods_stay_in_their_vlan_and_leave_the_trunk_tagged() {
    let mut lab = vlans();
    let g = lab.send("a10", &bc(station(1)));
    assert_eq!(g.to(), ["b10", "host", "t"]);
    assert_eq!(g.decision.vid, Vid::new(10));
    assert_eq!(g.tags["t"], TagOp::Push(Vid::new(10)));
    assert_eq!(vid_of(&g.bytes["t"]), Some(10));
    assert_eq!(vid_of(&g.bytes["b10"]), None);
}

#[test]
fn spec4_tagged_frames_from_a_trunk_are_popped_on_access_ports() {
    let mut lab = vlans();
    let g = lab.send("t", &craft::tagged(&bc(station(1)), 20));
    assert_eq!(g.to(), ["c20", "host"]);
    assert_eq!(g.tags["c20"], TagOp::Pop);
    assert_eq!(g.bytes["c20"], bc(station(1)), "exactly the untagged frame");
}

#[test]
fn spec4_fdb_is_per_vlan_the_same_mac_in_two_vlans_is_two_stations() {
    let mut lab = vlans();
    lab.send("a10", &bc(station(7)));
    let g = lab.send("c20", &bc(station(7)));
    assert_eq!(g.decision.learned, Some(l2sw::fwd::Learned::New));
    assert_eq!(
        lab.send("t", &craft::tagged(&uc(station(7), station(1)), 10))
            .to(),
        ["a10"]
    );
    assert_eq!(
        lab.send("t", &craft::tagged(&uc(station(7), station(1)), 20))
            .to(),
        ["c20"]
    );
}

#[test]
fn spec0_nonzero_vid_no_port_claims_is_dropped() {
    let mut lab = vlans();
    let g = lab.send("t", &craft::tagged(&bc(station(1)), 30));
    assert_eq!(
        (g.drop, g.why),
        (Some(DropReason::VlanNotAllowed), Why::VlanIngress)
    );
    // An access port refuses another VLAN's tag.
    let g = lab.send("a10", &craft::tagged(&bc(station(1)), 20));
    assert_eq!(g.drop, Some(DropReason::VlanNotAllowed));
    // A trunk without a native VLAN refuses untagged frames.
    assert_eq!(
        lab.send("t", &bc(station(1))).drop,
        Some(DropReason::VlanNotAllowed)
    );
}

#[test]
fn spec0_vid0_priority_tag_is_stripped() {
    let mut lab = vlans();
    let prio = craft::tagged(&bc(station(1)), 0);
    let g = lab.send("a10", &prio);
    assert_eq!(g.decision.vid, Vid::new(10));
    assert_eq!(g.bytes["b10"], bc(station(1)));
    assert_eq!(g.tags["t"], TagOp::SetVid(Vid::new(10)));
    assert_eq!(vid_of(&g.bytes["t"]), Some(10));
}

#[test]
fn spec4_trunk_native_vlan_is_untagged() {
    let mut lab = vlans();
    lab.add(PortConfig::bridge("n").with_vlan(trunk(&[20], Some(10))));
    let g = lab.send("n", &bc(station(1)));
    assert_eq!(g.to(), ["a10", "b10", "host", "t"]);
    let g = lab.send("t", &craft::tagged(&bc(station(2)), 10));
    assert_eq!(g.tags["n"], TagOp::Pop);
    let g = lab.send("t", &craft::tagged(&bc(station(2)), 20));
    assert_eq!(g.tags["n"], TagOp::Keep);
}

#[test]
fn spec4_known_unicast_never_crosses_vlans() {
    let mut lab = vlans();
    lab.send("c20", &bc(station(2)));
    // station(2) is known in VLAN 20 only; from VLAN 10 it is unknown and floods VLAN 10 only.
    assert_eq!(
        lab.send("a10", &uc(station(2), station(1))).to(),
        ["b10", "t"]
    );
}

#[test]
fn spec4_macvlan_on_a_vlan_sees_only_that_vlan_untagged() {
    // A macvlan network on "eth0.10": the uplink carries VLAN 10 tagged, the sub-interfaces
    // are untagged members of VLAN 10; l2sw pushes and pops the tag itself.
    let mut lab = Lab::macvlan();
    lab.add(
        PortConfig::uplink("up")
            .with_mac(station(100))
            .with_vlan(trunk(&[10], None)),
    );
    for (n, name) in [(1, "a"), (2, "b")] {
        let p = PortConfig::macvlan(name, station(n), MacvlanMode::Bridge)
            .with_vlan(VlanMode::Access { vid: Vid::new(10) });
        lab.add(p);
    }
    let g = lab.send("up", &craft::tagged(&uc(station(1), station(200)), 10));
    assert_eq!(g.to(), ["a"]);
    assert_eq!(g.bytes["a"], uc(station(1), station(200)));
    assert_eq!(
        lab.send("up", &craft::tagged(&uc(station(1), station(200)), 20))
            .drop,
        Some(DropReason::VlanNotAllowed)
    );
    assert_eq!(
        lab.send("up", &uc(station(1), station(200))).drop,
        Some(DropReason::VlanNotAllowed)
    );
    let g = lab.send("a", &bc(station(1)));
    assert_eq!(g.to(), ["b", "up"]);
    assert_eq!(vid_of(&g.bytes["up"]), Some(10));
    assert_eq!(vid_of(&g.bytes["b"]), None);
}

#[test]
fn spec4_a_mode_delivery_outside_the_vlan_is_confined() {
    // A transparent sub-interface is in the VLAN-unaware domain; frames of VLAN 10 never reach
    // it, whatever macvlan decided.
    let mut lab = Lab::macvlan();
    lab.add(
        PortConfig::uplink("up")
            .with_mac(station(100))
            .with_vlan(trunk(&[10], None)),
    );
    lab.add(PortConfig::macvlan("a", station(1), MacvlanMode::Bridge));
    let g = lab.send("up", &craft::tagged(&uc(station(1), station(200)), 10));
    assert_eq!(
        (g.drop, g.why),
        (Some(DropReason::VlanNotAllowed), Why::VlanEgress)
    );
}

#[test]
fn spec4_the_host_port_gets_only_its_own_vlans() {
    let mut lab = vlans();
    lab.add(
        PortConfig::new("br0", l2sw::fwd::Role::Host)
            .with_mac(station(100))
            .with_vlan(VlanMode::Access { vid: Vid::new(10) }),
    );
    assert_eq!(lab.send("a10", &bc(station(1))).to(), ["b10", "br0", "t"]);
    assert_eq!(lab.send("c20", &bc(station(2))).to(), ["t"]);
    // The bridge's own MAC is local in VLAN 10 only.
    assert_eq!(lab.send("a10", &uc(station(100), station(1))).to(), ["br0"]);
    assert_eq!(lab.send("c20", &uc(station(100), station(2))).to(), ["t"]);
}

#[test]
fn spec4_bad_vids_are_refused() {
    let mut lab = Lab::bridge();
    let bad = PortConfig::bridge("x").with_vlan(VlanMode::Access {
        vid: Vid::new(4095),
    });
    assert!(lab.sw.add_port(bad).is_err());
}

#[test]
fn spec1_learning_happens_after_vlan_ingress_filtering() {
    let mut lab = vlans();
    // Refused by the access port's VLAN: not learned.
    let g = lab.send("a10", &craft::tagged(&bc(station(5)), 20));
    assert_eq!(g.decision.learned, None);
    assert!(lab.sw.fdb().unwrap().is_empty());
    // Accepted: learned in the VLAN it was classified into.
    lab.send("a10", &bc(station(5)));
    let a10 = lab.id("a10");
    assert_eq!(
        lab.sw
            .fdb()
            .unwrap()
            .lookup(lab.now, Vid::new(10), station(5)),
        Some((a10, false))
    );
    assert_eq!(
        lab.sw
            .fdb()
            .unwrap()
            .lookup(lab.now, Vid::new(20), station(5)),
        None
    );
}
