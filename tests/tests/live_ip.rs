//! Real IP stacks through l2sw: two namespaces with IPv4 and IPv6 addresses talk UDP both ways
//! across an l2sw learning bridge, which means ARP and neighbour discovery work through it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::UdpSocket;
use std::time::Duration;

use l2sw::port::sys::netns;
use l2sw_tests::{LiveEngine, Sandbox};

/// Sends `msg` from `from_ns` to `to` (an address of `to_ns`) and returns what arrived.
fn udp(from_ns: &str, to_ns: &str, bind: &str, to: &str, msg: &[u8]) -> Vec<u8> {
    let rx = netns::run_in(to_ns, || UdpSocket::bind(to))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let tx = netns::run_in(from_ns, || UdpSocket::bind(bind))
        .unwrap()
        .unwrap();
    tx.send_to(msg, to).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = rx
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{to}: {e}"));
    buf[..n].to_vec()
}

#[test]
fn ipv4_and_ipv6_work_both_ways_through_an_l2sw_bridge() {
    let Some(mut sb) = Sandbox::new("ip") else {
        return;
    };
    let sw = sb.netns("sw");
    let (a, _) = sb.workload(&sw, "a", 1);
    let (b, _) = sb.workload(&sw, "b", 2);
    address(&sb, &a, "eth0", "10.0.0.1/24", "fd00::1/64");
    address(&sb, &b, "eth0", "10.0.0.2/24", "fd00::2/64");
    let live = LiveEngine::bridge(&sw, &["pa", "pb"]);
    both_ways(&a, &b, ("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2"));
    let e = live.stop();
    let fdb: Vec<_> = e
        .switch()
        .fdb()
        .unwrap()
        .entries(e.tick())
        .map(|x| x.mac.to_string())
        .collect();
    assert!(
        fdb.contains(&"02:00:00:00:00:01".to_string())
            && fdb.contains(&"02:00:00:00:00:02".to_string()),
        "{fdb:?}"
    );
    assert_eq!(e.stats().io_errors, 0);
}

/// UDP over IPv4 and over IPv6, from `a` to `b` and back: `v4` and `v6` are (a's, b's).
fn both_ways(a: &str, b: &str, v4: (&str, &str), v6: (&str, &str)) {
    let v4 = (v4.0.to_string(), v4.1.to_string());
    let v6 = (format!("[{}]", v6.0), format!("[{}]", v6.1));
    for (x, y) in [v4, v6] {
        assert_eq!(
            udp(a, b, &format!("{x}:0"), &format!("{y}:9000"), b"ping"),
            b"ping"
        );
        assert_eq!(
            udp(b, a, &format!("{y}:0"), &format!("{x}:9000"), b"pong"),
            b"pong"
        );
    }
}

/// Gives interface `dev` of namespace `ns` IPv4 and IPv6 addresses (IPv6 on, no DAD).
fn address(sb: &Sandbox, ns: &str, dev: &str, v4: &str, v6: &str) {
    for key in ["all", "default", dev] {
        let set = format!("net.ipv6.conf.{key}.disable_ipv6=0");
        sb.ip(ns, &["netns", "exec", ns, "sysctl", "-qw", &set]);
    }
    sb.ip(ns, &["addr", "add", v4, "dev", dev]);
    sb.ip(ns, &["addr", "add", v6, "dev", dev, "nodad"]);
}

#[test]
fn ipv4_and_ipv6_work_between_a_tap_workload_and_a_veth_workload() {
    use l2sw::engine::Engine;
    use l2sw::fwd::{PortConfig, Switch, SwitchConfig};
    use l2sw::port::af_packet::AfPacketPort;
    use l2sw::port::tap::TapPort;

    let Some(mut sb) = Sandbox::new("iptap") else {
        return;
    };
    let sw = sb.netns("sw");
    let a = sb.netns("a");
    let (b, _) = sb.workload(&sw, "b", 2);
    let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
    let max = s.config().max_frame();
    let t = s.add_port(PortConfig::bridge("tap0")).unwrap();
    let p = s.add_port(PortConfig::bridge("pb")).unwrap();
    let mut e = Engine::new(s);
    e.attach(t, Box::new(TapPort::create_in(&a, "tap0", max).unwrap()))
        .unwrap();
    e.attach(p, Box::new(AfPacketPort::open_in(&sw, "pb", max).unwrap()))
        .unwrap();
    address(&sb, &a, "tap0", "10.0.1.1/24", "fd01::1/64");
    address(&sb, &b, "eth0", "10.0.1.2/24", "fd01::2/64");
    let live = LiveEngine::start(e);
    both_ways(&a, &b, ("10.0.1.1", "10.0.1.2"), ("fd01::1", "fd01::2"));
    assert_eq!(live.stop().stats().io_errors, 0);
}
