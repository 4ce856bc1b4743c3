//! VEPA with l2sw as the adjacent switch: two kernel macvlan sub-interfaces in vepa mode send
//! everything out of their uplink; they reach each other only if the switch on the other end
//! of the wire hairpins (reflective relay). Here that switch is an l2sw learning bridge whose
//! port facing the uplink has hairpin on, or off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw::engine::Engine;
use l2sw::fwd::{BridgePort, MacvlanMode, PortConfig, Role, Switch, SwitchConfig};
use l2sw::port::af_packet::AfPacketPort;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{LiveEngine, Sandbox, Tap, deliveries, station};

fn uc(dst: Mac, src: Mac) -> Vec<u8> {
    craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, b"l2sw vepa")
}

/// Who receives A's broadcast, A's unicast to B and B's unicast to A.
fn vepa_through_l2sw(test: &str, hairpin: bool) -> Option<Vec<Vec<String>>> {
    let mut sb = Sandbox::new(test)?;
    let host = sb.netns("up");
    let sw = sb.netns("sw");
    sb.veth(
        &host,
        "upl",
        Mac([2, 0, 0, 0, 1, 0]),
        &sw,
        "dwn",
        Mac([2, 0, 0, 0, 2, 0]),
    );
    let (_, tap_e) = sb.workload(&sw, "e", 200);
    let mut taps = vec![tap_e];
    for (n, name) in (1..).zip(["a", "b"]) {
        let ns = sb.netns(name);
        let dev = format!("mv{name}");
        let links = sb.links(&host);
        links
            .create_macvlan(&dev, "upl", MacvlanMode::Vepa, station(n), &[])
            .and_then(|()| links.move_to(&dev, &ns))
            .and_then(|()| sb.links(&ns).set_up(&dev))
            .unwrap_or_else(|e| panic!("{e}"));
        taps.push(Tap::open(name, &ns, &dev));
    }
    let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
    let max = s.config().max_frame();
    let facing = BridgePort {
        hairpin,
        ..BridgePort::default()
    };
    let dwn = s
        .add_port(PortConfig::new("dwn", Role::Bridge(facing)))
        .unwrap();
    let pe = s.add_port(PortConfig::bridge("pe")).unwrap();
    let mut e = Engine::new(s);
    let dwn_port = AfPacketPort::open_in(&sw, "dwn", max).unwrap();
    e.attach(dwn, Box::new(dwn_port)).unwrap();
    e.attach(pe, Box::new(AfPacketPort::open_in(&sw, "pe", max).unwrap()))
        .unwrap();
    let live = LiveEngine::start(e);
    let tap = |n: &str| taps.iter().find(|t| t.name == n).unwrap();
    let got = vec![
        deliveries(&taps, tap("a"), &uc(Mac::BROADCAST, station(1))),
        deliveries(&taps, tap("b"), &uc(Mac::BROADCAST, station(2))),
        deliveries(&taps, tap("a"), &uc(station(2), station(1))),
        deliveries(&taps, tap("b"), &uc(station(1), station(2))),
    ];
    live.stop();
    Some(got)
}

#[test]
fn vepa_siblings_meet_through_an_l2sw_bridge_with_hairpin() {
    let Some(got) = vepa_through_l2sw("vepa1", true) else {
        return;
    };
    assert_eq!(got, [vec!["b", "e"], vec!["a", "e"], vec!["b"], vec!["a"]]);
}

#[test]
fn vepa_siblings_cannot_meet_without_hairpin() {
    let Some(got) = vepa_through_l2sw("vepa0", false) else {
        return;
    };
    let none: Vec<&str> = Vec::new();
    assert_eq!(got, [vec!["e"], vec!["e"], none.clone(), none]);
}
