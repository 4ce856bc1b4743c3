//! Conformance of the forwarding core with the kernel's bridge: the same topology built once
//! with a kernel bridge in throw-away namespaces and once as an l2sw `Switch`, the same frames
//! sent in the same order, and the set of receivers of every frame compared. ("host" is the
//! bridge device itself: a tap on br0 on the kernel side, the host port on the l2sw side.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw::fwd::{BridgePort, PortConfig, Role};
use l2sw::wire::{Mac, craft};
use l2sw_tests::lab::Lab;
use l2sw_tests::{Sandbox, Tap, deliveries};

const NAMES: [&str; 3] = ["a", "b", "c"];

use l2sw::wire::craft::station;
fn port_mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 1, n])
}
const BRIDGE_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfe]);

/// Port options of one variant.
#[derive(Clone, Copy, Default)]
struct Variant {
    hairpin_a: bool,
    isolated_ab: bool,
}

/// The kernel side: br0 in namespace "sw", ports pa/pb/pc to namespaces a/b/c.
struct Kernel {
    taps: Vec<Tap>,
    _sb: Sandbox,
}

fn kernel(test: &str, v: Variant) -> Option<Kernel> {
    let mut sb = Sandbox::new(test)?;
    let sw = sb.netns("sw");
    sb.kernel_bridge(&sw, "br0", BRIDGE_MAC);
    let mut taps = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let n = i as u8 + 1;
        let ns = sb.netns(name);
        let port = format!("p{name}");
        sb.veth(&sw, &port, port_mac(n), &ns, "eth0", station(n));
        let hairpin = v.hairpin_a && *name == "a";
        let isolated = v.isolated_ab && (*name == "a" || *name == "b");
        sb.enslave(&sw, &port, "br0", hairpin, isolated);
        taps.push(Tap::open(name, &ns, "eth0"));
    }
    taps.push(Tap::open("host", &sw, "br0"));
    Some(Kernel { taps, _sb: sb })
}

/// The l2sw side: the same ports and MACs, "host" the bridge's own port.
fn core(v: Variant) -> Lab {
    let mut lab = Lab::bridge();
    for (i, name) in NAMES.iter().enumerate() {
        let flags = BridgePort {
            hairpin: v.hairpin_a && *name == "a",
            isolated: v.isolated_ab && (*name == "a" || *name == "b"),
            ..BridgePort::default()
        };
        lab.add(PortConfig::new(*name, Role::Bridge(flags)).with_mac(port_mac(i as u8 + 1)));
    }
    lab.add(PortConfig::new("host", Role::Host).with_mac(BRIDGE_MAC));
    lab
}

fn ll(last: u8) -> Mac {
    Mac([0x01, 0x80, 0xc2, 0, 0, last])
}

fn uc(dst: Mac, src: Mac) -> Vec<u8> {
    craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, b"l2sw conformance")
}

/// The scenario: (sender, what, frame), in order (learning depends on it).
fn scenario() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let (a, b, c) = (station(1), station(2), station(3));
    vec![
        ("a", "broadcast", uc(Mac::BROADCAST, a)),
        ("b", "unicast to a (learned)", uc(a, b)),
        ("a", "unknown unicast", uc(station(9), a)),
        (
            "a",
            "multicast 01:00:5e:00:00:05",
            uc(Mac([1, 0, 0x5e, 0, 0, 5]), a),
        ),
        ("a", "STP group 01:80:c2:00:00:00", uc(ll(0), a)),
        ("a", "PAUSE", craft::pause(a)),
        ("a", "LACP group :02", uc(ll(2), a)),
        ("a", "LLDP group :0e", uc(ll(0x0e), a)),
        ("c", "multicast source", uc(b, Mac([1, 0, 0x5e, 0, 0, 1]))),
        ("c", "all-zero source", uc(b, Mac::ZERO)),
        ("a", "to the sender's own MAC", uc(a, a)),
        ("c", "to the bridge's MAC", uc(BRIDGE_MAC, c)),
        ("c", "to a bridge port's MAC", uc(port_mac(1), c)),
        ("b", "unicast to c (learned)", uc(c, b)),
        ("a", "unicast to b (learned)", uc(b, a)),
        ("b", "broadcast", uc(Mac::BROADCAST, b)),
        ("c", "broadcast", uc(Mac::BROADCAST, c)),
    ]
}

fn compare(test: &str, v: Variant) {
    let Some(k) = kernel(test, v) else { return };
    let mut l2 = core(v);
    let mut report = String::new();
    let mut differ = 0;
    for (from, what, frame) in scenario() {
        let sender = k.taps.iter().find(|t| t.name == from).unwrap();
        let kernel = deliveries(&k.taps, sender, &frame);
        let ours = l2.send(from, &frame).to;
        let mark = if kernel == ours { "  " } else { "!!" };
        differ += usize::from(kernel != ours);
        report += &format!("{mark} {from} {what:<28} kernel {kernel:?} l2sw {ours:?}\n");
    }
    eprintln!("{test}:\n{report}");
    assert_eq!(differ, 0, "l2sw and the kernel bridge differ:\n{report}");
}

#[test]
fn bridge_matches_the_kernel() {
    compare("br", Variant::default());
}

#[test]
fn bridge_with_hairpin_matches_the_kernel() {
    compare(
        "brhp",
        Variant {
            hairpin_a: true,
            ..Variant::default()
        },
    );
}

#[test]
fn bridge_with_isolated_ports_matches_the_kernel() {
    compare(
        "briso",
        Variant {
            isolated_ab: true,
            ..Variant::default()
        },
    );
}
