//! 802.1Q on real ports: tagged frames on a trunk port over a veth (whose receive path moves
//! the tag out of the frame into metadata, which the AF_PACKET port puts back) and untagged
//! frames on an access port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, Switch, SwitchConfig, Vid, VidSet, VlanMode};
use l2sw::port::af_packet::AfPacketPort;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{LiveEngine, Sandbox, station};

#[test]
fn tagged_frames_cross_a_trunk_and_leave_untagged_on_the_access_port() {
    let Some(mut sb) = Sandbox::new("vlan") else {
        return;
    };
    let sw = sb.netns("sw");
    let (_, ta) = sb.workload(&sw, "a", 1);
    let (_, tb) = sb.workload(&sw, "b", 2);
    let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
    let max = s.config().max_frame();
    let trunk = VlanMode::Trunk {
        allowed: [Vid::new(10)].into_iter().collect::<VidSet>(),
        native: None,
    };
    let pa = s
        .add_port(PortConfig::bridge("pa").with_vlan(trunk))
        .unwrap();
    let pb = s
        .add_port(PortConfig::bridge("pb").with_vlan(VlanMode::Access { vid: Vid::new(10) }))
        .unwrap();
    let mut e = Engine::new(s);
    let pa_port = AfPacketPort::open_in(&sw, "pa", max).unwrap();
    assert!(
        pa_port.has_ring(),
        "frames arrive through a TPACKET_V3 ring"
    );
    e.attach(pa, Box::new(pa_port)).unwrap();
    e.attach(pb, Box::new(AfPacketPort::open_in(&sw, "pb", max).unwrap()))
        .unwrap();
    let live = LiveEngine::start(e);
    let taps = [ta, tb];
    let plain = craft::ethernet(
        Mac::BROADCAST,
        station(1),
        craft::ETHERTYPE_EXPERIMENTAL,
        b"l2sw vlan",
    );
    // b receives the untagged frame.
    for t in &taps {
        t.drain();
    }
    taps[0].send(&craft::tagged(&plain, 10));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let got_b = taps[1].drain();
    assert_eq!(
        got_b,
        vec![plain.clone()],
        "VLAN 10 from the trunk, untagged on the access port"
    );
    // And back: b's untagged frame leaves the trunk tagged.
    let back = craft::ethernet(
        station(1),
        station(2),
        craft::ETHERTYPE_EXPERIMENTAL,
        b"l2sw vlan",
    );
    taps[0].drain();
    taps[1].send(&back);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let got_a = taps[0].drain();
    assert_eq!(got_a, vec![craft::tagged(&back, 10)], "tagged on the trunk");
    let e = live.stop();
    assert_eq!(e.stats().io_errors, 0);
}
