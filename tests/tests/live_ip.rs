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
    for (ns, v4, v6) in [
        (&a, "10.0.0.1/24", "fd00::1/64"),
        (&b, "10.0.0.2/24", "fd00::2/64"),
    ] {
        for key in ["all", "default", "eth0"] {
            sb.ip(
                ns,
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=0"),
                ],
            );
        }
        sb.ip(ns, &["addr", "add", v4, "dev", "eth0"]);
        sb.ip(ns, &["addr", "add", v6, "dev", "eth0", "nodad"]);
    }
    let live = LiveEngine::bridge(&sw, &["pa", "pb"]);
    assert_eq!(
        udp(&a, &b, "10.0.0.1:0", "10.0.0.2:9000", b"ping4"),
        b"ping4"
    );
    assert_eq!(
        udp(&b, &a, "10.0.0.2:0", "10.0.0.1:9000", b"pong4"),
        b"pong4"
    );
    assert_eq!(
        udp(&a, &b, "[fd00::1]:0", "[fd00::2]:9000", b"ping6"),
        b"ping6"
    );
    assert_eq!(
        udp(&b, &a, "[fd00::2]:0", "[fd00::1]:9000", b"pong6"),
        b"pong6"
    );
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
