//! Property tests of the invariants in DESIGN.md, over random frame sequences and random port
//! configurations: never back out the ingress port without hairpin; a flood reaches exactly the
//! eligible ports; private sub-interfaces never get a sibling's frame inside the switch; no
//! frame crosses VLANs; a learned station is found until it expires; nothing panics on
//! arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use l2sw::fwd::{
    Batch, BridgeConfig, BridgePort, Fdb, MacvlanMode, ModeConfig, PortConfig, PortId, PortSet,
    Role, Switch, SwitchConfig, Tick, Verdict, Vid, VidSet, VlanMode,
};
use l2sw::wire::{FrameInfo, Mac, craft};
use proptest::prelude::*;

use l2sw::wire::craft::station;

/// A destination: a station of the pool, broadcast, a multicast group or a link-local group.
fn dst() -> impl Strategy<Value = Mac> {
    prop_oneof![
        6 => (1u8..=8).prop_map(station),
        1 => Just(Mac::BROADCAST),
        1 => (1u8..=3).prop_map(|g| Mac([1, 0, 0x5e, 0, 0, g])),
        1 => (0u8..=15).prop_map(|l| Mac([1, 0x80, 0xc2, 0, 0, l])),
    ]
}

/// A source: mostly stations, sometimes invalid.
fn src() -> impl Strategy<Value = Mac> {
    prop_oneof![8 => (1u8..=8).prop_map(station), 1 => Just(Mac::ZERO), 1 => Just(Mac::BROADCAST)]
}

/// A frame: dst, src, optional 802.1Q VID (0 = priority tag).
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        dst(),
        src(),
        prop::option::of(prop_oneof![Just(0u16), Just(10), Just(20), Just(30)]),
    )
        .prop_map(|(d, s, vid)| {
            let f = craft::ethernet(d, s, craft::ETHERTYPE_EXPERIMENTAL, b"prop");
            match vid {
                Some(v) => craft::tagged(&f, v),
                None => f,
            }
        })
}

fn vlan_mode() -> impl Strategy<Value = VlanMode> {
    prop_oneof![
        Just(VlanMode::Transparent),
        prop_oneof![Just(10u16), Just(20)].prop_map(|vid| VlanMode::Access { vid: Vid::new(vid) }),
        (
            prop::sample::subsequence(vec![10u16, 20, 30], 0..=3),
            prop::option::of(prop_oneof![Just(10u16), Just(20)])
        )
            .prop_map(|(allowed, native)| VlanMode::Trunk {
                allowed: allowed.into_iter().map(Vid::new).collect::<VidSet>(),
                native: native.map(Vid::new),
            }),
    ]
}

fn bridge_port() -> impl Strategy<Value = BridgePort> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(hairpin, isolated, fu, fb)| BridgePort {
            hairpin,
            isolated,
            flood_unicast: fu,
            flood_broadcast: fb,
            ..BridgePort::default()
        },
    )
}

/// Runs `frames` (ingress port index, bytes) through `sw` in batches of 8 and calls `check`
/// with each frame's ingress, bytes, decision, index in its batch and the batch.
fn run(
    sw: &mut Switch,
    frames: &[(usize, Vec<u8>)],
    mut check: impl FnMut(PortId, &[u8], &l2sw::fwd::Decision, usize, &Batch<Vec<u8>>),
) {
    let mut batch = Batch::new();
    for chunk in frames.chunks(8) {
        batch.clear();
        for (p, f) in chunk {
            batch.push(PortId::new(*p).unwrap(), f.clone()).unwrap();
        }
        sw.process(Tick::from_secs(1), &mut batch);
        for (i, d) in batch.decisions().iter().enumerate() {
            let (p, f) = batch.frame(i).unwrap();
            check(p, f, d, i, &batch);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bridge_never_back_out_ingress_without_hairpin_and_isolation_holds(
        ports in prop::collection::vec(bridge_port(), 2..6),
        frames in prop::collection::vec((0usize..6, frame()), 1..60),
    ) {
        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        for (i, p) in ports.iter().enumerate() {
            sw.add_port(PortConfig::new(format!("p{i}"), Role::Bridge(*p))).unwrap();
        }
        let frames: Vec<_> = frames.into_iter().map(|(p, f)| (p % ports.len(), f)).collect();
        run(&mut sw, &frames, |ingress, _, d, _, _| {
            let from = ports[ingress.index()];
            let to = d.verdict.ports();
            if to.contains(ingress) {
                assert!(from.hairpin, "back out non-hairpin ingress {ingress:?}: {d:?}");
            }
            if from.isolated {
                for p in to.iter().filter(|p| *p != ingress) {
                    assert!(!ports[p.index()].isolated, "isolated to isolated: {d:?}");
                }
            }
        });
    }

    #[test]
    fn bridge_broadcast_floods_exactly_the_eligible_ports(
        ports in prop::collection::vec(bridge_port(), 2..8),
        ingress in 0usize..8,
        sender in 1u8..=8,
    ) {
        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        for (i, p) in ports.iter().enumerate() {
            sw.add_port(PortConfig::new(format!("p{i}"), Role::Bridge(*p))).unwrap();
        }
        let ingress = ingress % ports.len();
        let from = ports[ingress];
        let d = sw.decide(Tick::from_secs(1), PortId::new(ingress).unwrap(), &craft::ethernet(Mac::BROADCAST, station(sender), craft::ETHERTYPE_EXPERIMENTAL, b"x"));
        let expect: PortSet = ports
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                p.flood_broadcast
                    && (*i != ingress || from.hairpin)
                    && !(from.isolated && p.isolated)
            })
            .map(|(i, _)| PortId::new(i).unwrap())
            .collect();
        prop_assert_eq!(d.verdict.ports(), expect);
        prop_assert!(d.verdict.to_host());
    }

    #[test]
    fn no_frame_crosses_vlans(
        modes in prop::collection::vec(vlan_mode(), 2..6),
        frames in prop::collection::vec((0usize..6, frame()), 1..60),
    ) {
        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        for (i, m) in modes.iter().enumerate() {
            sw.add_port(PortConfig::bridge(format!("p{i}")).with_vlan(m.clone())).unwrap();
        }
        let frames: Vec<_> = frames.into_iter().map(|(p, f)| (p % modes.len(), f)).collect();
        run(&mut sw, &frames, |ingress, bytes, d, i, batch| {
            if matches!(d.verdict, Verdict::Drop(_)) {
                return;
            }
            let info = FrameInfo::parse(bytes, 1600).unwrap();
            prop_assert_eq_vlan(modes[ingress.index()].classify(&info), d.vid);
            for (egress, items) in batch.egress() {
                for it in items.iter().filter(|it| usize::from(it.frame) == i) {
                    let mut out = Vec::new();
                    it.tag.apply(bytes, &mut out);
                    let seen = FrameInfo::parse(&out, 1600).unwrap();
                    // What the egress port sends, it would itself classify into the same VLAN.
                    prop_assert_eq_vlan(modes[egress.index()].classify(&seen), d.vid);
                }
            }
        });
    }

    #[test]
    fn macvlan_private_never_gets_a_siblings_frame_inside_the_switch(
        modes in prop::collection::vec(prop::sample::select(vec![MacvlanMode::Private, MacvlanMode::Vepa, MacvlanMode::Bridge, MacvlanMode::Source]), 1..6),
        frames in prop::collection::vec((0usize..7, frame()), 1..60),
    ) {
        let mut sw = Switch::new(SwitchConfig::macvlan()).unwrap();
        sw.add_port(PortConfig::uplink("up").with_mac(Mac([2, 0, 0, 0, 1, 0]))).unwrap();
        for (i, m) in modes.iter().enumerate() {
            sw.add_port(PortConfig::macvlan(format!("s{i}"), station(i as u8 + 1), *m)).unwrap();
        }
        let n = modes.len() + 1;
        let frames: Vec<_> = frames.into_iter().map(|(p, f)| (p % n, f)).collect();
        let mode_of = |p: PortId| (p.index() > 0).then(|| modes[p.index() - 1]);
        run(&mut sw, &frames, |ingress, _, d, _, _| {
            let to = d.verdict.ports();
            if ingress.index() == 0 {
                assert!(!to.contains(ingress), "uplink back to uplink: {d:?}");
                return;
            }
            for p in to.iter() {
                if p != ingress {
                    assert_ne!(mode_of(p), Some(MacvlanMode::Private), "sibling to private sub: {d:?}");
                }
            }
            if mode_of(ingress) != Some(MacvlanMode::Bridge) {
                assert!(to.iter().all(|p| p.index() == 0), "non-bridge sub delivered locally: {d:?}");
            }
        });
    }

    #[test]
    fn learned_station_is_found_until_it_expires(
        ageing in 1u32..1000,
        learned_at in any::<u32>(),
        vid in 0u16..4095,
        n in 1u8..255,
        port in 0usize..256,
        probe in 0u32..2000,
    ) {
        let mut fdb = Fdb::new();
        fdb.set_ageing(Duration::from_secs(u64::from(ageing)));
        let p = PortId::new(port).unwrap();
        fdb.learn(Tick(learned_at), Vid::new(vid), station(n), p);
        let now = Tick(learned_at.wrapping_add(probe * 100 / 2));
        let found = fdb.lookup(now, Vid::new(vid), station(n));
        if now.since(Tick(learned_at)) < ageing * 100 {
            prop_assert_eq!(found, Some((p, false)));
        } else {
            prop_assert_eq!(found, None);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_in_any_mode(
        frames in prop::collection::vec((0usize..4, prop::collection::vec(any::<u8>(), 0..100)), 1..40),
        mode in 0usize..3,
    ) {
        let cfg = match mode {
            0 => SwitchConfig::bridge(),
            1 => SwitchConfig::macvlan(),
            _ => SwitchConfig::ipvlan(Default::default()),
        };
        let mut sw = Switch::new(cfg).unwrap();
        match mode {
            0 => {
                sw.add_port(PortConfig::bridge("a")).unwrap();
                sw.add_port(PortConfig::bridge("b").with_vlan(VlanMode::Access { vid: Vid::new(10) })).unwrap();
                sw.add_port(PortConfig::new("h", Role::Host).with_mac(station(9))).unwrap();
            }
            1 => {
                sw.add_port(PortConfig::uplink("up").with_mac(station(9))).unwrap();
                sw.add_port(PortConfig::macvlan("a", station(1), MacvlanMode::Bridge)).unwrap();
                sw.add_port(PortConfig::macvlan("b", station(2), MacvlanMode::Vepa)).unwrap();
            }
            _ => {
                sw.add_port(PortConfig::uplink("up").with_mac(station(9))).unwrap();
                sw.add_port(PortConfig::ipvlan("a", vec!["10.0.0.1".parse().unwrap()])).unwrap();
                sw.add_port(PortConfig::ipvlan("b", vec!["fd00::2".parse().unwrap()])).unwrap();
            }
        }
        let mut batch = Batch::new();
        for (p, f) in frames {
            batch.push(PortId::new(p).unwrap(), f).unwrap();
        }
        sw.process(Tick::from_secs(1), &mut batch);
        prop_assert_eq!(batch.decisions().len(), batch.len());
        let _ = FrameInfo::parse(batch.frame(0).unwrap().1, 1518);
    }
}

fn prop_assert_eq_vlan(classified: Option<Vid>, vid: Vid) {
    assert_eq!(
        classified,
        Some(vid),
        "frame seen in a VLAN other than its own"
    );
}

#[test]
fn bridge_config_defaults_match_the_kernel() {
    let b = BridgeConfig::default();
    assert_eq!(b.ageing, Duration::from_secs(300));
    assert_eq!((b.max_learned, b.group_fwd_mask, b.stp), (0, 0, false));
    assert!(matches!(SwitchConfig::bridge().mode, ModeConfig::Bridge(_)));
}
