//! The outside world, end to end: outbound masquerade, published ports and the isolation of
//! bridge networks, with the real `l2ctl` and a real daemon. A throw-away namespace plays the
//! host (`--host-netns`), another the outside ("internet": a router with services of its
//! own), linked to the host by a veth; the outside routes back only to the host's address,
//! never to a workload's subnet, so an answer reaches a workload only through the host's NAT.
//! Services are std sockets opened in namespaces; every wait has a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw_tests::l2ctl::L2ctl;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::port::sys::netns::run_in;
use l2sw::wire::Mac;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl;
use l2sw_tests::Sandbox;
use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The host's address on the link to the outside.
const HOST_WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The outside's address.
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// One test's world: a host namespace linked to an outside namespace, a daemon, a state
/// directory, workload names.
struct Lab {
    _sandbox: Sandbox,
    host: String,
    outside: String,
    dir: tempfile::TempDir,
    daemon: Option<EmbeddedDaemon>,
    prefix: String,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        let mut sandbox = Sandbox::new(test)?;
        let host = sandbox.netns("host");
        let outside = sandbox.netns("out");
        sandbox.veth(
            &host,
            "wan",
            Mac([2, 0, 0, 0, 0xbb, 1]),
            &outside,
            "eth0",
            Mac([2, 0, 0, 0, 0xbb, 2]),
        );
        sandbox
            .links(&host)
            .add_address("wan", IpAddr::V4(HOST_WAN), 24)
            .unwrap();
        sandbox
            .links(&outside)
            .add_address("eth0", IpAddr::V4(OUTSIDE), 24)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("n{}{n}", std::process::id() % 100_000);
        Some(Lab {
            _sandbox: sandbox,
            host,
            outside,
            dir,
            daemon,
            prefix,
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    /// A workload name unique to this test.
    fn w(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// l2ctl on this test's daemon, state and host namespace.
    fn ctl(&self) -> L2ctl {
        L2ctl::new(
            env!("CARGO_BIN_EXE_l2ctl"),
            self.dir.path(),
            Some(&self.host),
        )
    }

    /// Runs l2ctl; it must succeed. Returns its output.
    fn ok(&self, args: &[&str]) -> String {
        self.ctl().ok(args)
    }

    /// Runs l2ctl; it must fail. Returns its error message.
    fn fails(&self, args: &[&str]) -> String {
        self.ctl().fails(args)
    }

    fn inspect(&self, net: &str) -> Value {
        serde_json::from_str(&self.ok(&["network", "inspect", net])).unwrap()
    }

    /// A workload's IPv4 address on a network.
    fn ip(&self, workload: &str, net: &str) -> Ipv4Addr {
        let v = self.inspect(net);
        let cidr = v["Containers"][workload]["IPv4Address"]
            .as_str()
            .unwrap_or_else(|| panic!("{workload} has no address on {net}: {v}"));
        cidr.split('/').next().unwrap().parse().unwrap()
    }

    /// `nft list table ip l2sw` in the host namespace, or `None` when there is no such table
    /// (shown in failures, compared before and after a refusal).
    fn table(&self) -> Option<String> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.host, "nft", "list", "table", "ip", "l2sw",
            ])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The host namespace's links, by `ip -o link` (names and flags).
    fn links(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.host, "-o", "link"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn state_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/state.json")).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        for ns in nl::netns_list().unwrap_or_default() {
            if ns.starts_with(&format!("{}-", self.prefix)) {
                let _ = nl::netns_delete(&ns);
            }
        }
        if let Ok(dirs) = std::fs::read_dir(nl::ETC_NETNS) {
            for d in dirs.flatten() {
                if d.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{}-", self.prefix))
                {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
    }
}

/// How long one probe waits for its answer.
const WAIT: Duration = Duration::from_millis(1500);

/// Whether a TCP connection from namespace `from` to `dst` reaches a listener on `port` in
/// namespace `server`; if so, the source address the server saw.
fn tcp(from: &str, dst: SocketAddr, server: &str, port: u16) -> Option<IpAddr> {
    let listener = run_in(server, || TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let accept = std::thread::spawn(move || {
        let deadline = Instant::now() + WAIT * 2;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, peer)) => {
                    let _ = s.write_all(peer.ip().to_string().as_bytes());
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
    });
    let seen = run_in(from, || {
        let mut s = TcpStream::connect_timeout(&dst, WAIT).ok()?;
        s.set_read_timeout(Some(WAIT)).ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.parse::<IpAddr>().ok()
    })
    .unwrap();
    let _ = accept.join();
    seen
}

/// Whether a UDP datagram from namespace `from` to `dst` reaches a socket on `port` in
/// namespace `server` and its answer comes back; if so, the source address the server saw.
fn udp(from: &str, dst: SocketAddr, server: &str, port: u16) -> Option<IpAddr> {
    let rx = run_in(server, || UdpSocket::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let tx = run_in(from, || UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    tx.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..4 {
        if tx.send_to(b"probe", dst).is_err() {
            continue;
        }
        let Ok((_, peer)) = rx.recv_from(&mut buf) else {
            continue;
        };
        let _ = rx.send_to(peer.ip().to_string().as_bytes(), peer);
        if let Ok((n, _)) = tx.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).parse().ok();
        }
    }
    None
}

fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

#[test]
fn a_workload_goes_out_masqueraded_and_published_ports_come_in() {
    let Some(lab) = Lab::new("nat-out-in") else {
        return;
    };
    let web = lab.w("web");
    lab.ok(&["network", "create", "front", "--subnet", "10.70.0.0/24"]);
    let shown = lab.ok(&[
        "attach",
        &web,
        "--network",
        "front",
        "-p",
        "8080:80",
        "--publish",
        "5353:53/udp",
    ]);
    assert!(shown.contains("0.0.0.0:8080->80/tcp"), "{shown}");
    let table = lab.table().expect("table ip l2sw");

    // Out: the outside sees the host's address, never the workload's.
    assert_eq!(
        tcp(&web, at(OUTSIDE, 7000), &lab.outside, 7000),
        Some(IpAddr::V4(HOST_WAN)),
        "{table}"
    );
    assert_eq!(
        udp(&web, at(OUTSIDE, 7001), &lab.outside, 7001),
        Some(IpAddr::V4(HOST_WAN)),
        "{table}"
    );
    // In: the outside reaches the workload's TCP and UDP services through the host's ports.
    assert_eq!(
        tcp(&lab.outside, at(HOST_WAN, 8080), &web, 80),
        Some(IpAddr::V4(OUTSIDE)),
        "{table}"
    );
    assert_eq!(
        udp(&lab.outside, at(HOST_WAN, 5353), &web, 53),
        Some(IpAddr::V4(OUTSIDE)),
        "{table}"
    );
    // And so does the host, through its own address.
    assert!(
        tcp(&lab.host, at(HOST_WAN, 8080), &web, 80).is_some(),
        "{table}"
    );
    assert!(
        udp(&lab.host, at(HOST_WAN, 5353), &web, 53).is_some(),
        "{table}"
    );
    // A neighbour on the same network reaches it through the host's address too (hairpin).
    let peer = lab.w("peer");
    lab.ok(&["attach", &peer, "--network", "front"]);
    assert!(
        tcp(&peer, at(HOST_WAN, 8080), &web, 80).is_some(),
        "{table}"
    );
    lab.ok(&["detach", &peer, "--network", "front"]);
    // A port not published stays closed.
    assert_eq!(tcp(&lab.outside, at(HOST_WAN, 8081), &web, 81), None);

    // Shown as Docker shows them.
    let ps = lab.ok(&["ps"]);
    assert!(
        ps.contains("0.0.0.0:8080->80/tcp, 0.0.0.0:5353->53/udp"),
        "{ps}"
    );
    let v = lab.inspect("front");
    assert_eq!(
        v["Containers"][&web]["Ports"],
        serde_json::json!(["0.0.0.0:8080->80/tcp", "0.0.0.0:5353->53/udp"]),
        "{v}"
    );
    let forwarding = run_in(&lab.host, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
    })
    .unwrap()
    .unwrap();
    assert_eq!(forwarding.trim(), "1");

    // Removing the endpoint closes the port; removing the network removes every rule.
    lab.ok(&["detach", &web, "--network", "front"]);
    let after = lab.table().unwrap_or_default();
    assert!(!after.contains("dnat to"), "{after}");
    let db = lab.w("db");
    lab.ok(&["attach", &db, "--network", "front"]);
    assert_eq!(tcp(&lab.outside, at(HOST_WAN, 8080), &db, 80), None);
    lab.ok(&["detach", &db, "--network", "front"]);
    lab.ok(&["network", "rm", "front"]);
    assert_eq!(lab.table(), None, "network rm leaves no rule behind");
}

#[test]
fn internal_and_unmasqueraded_networks_keep_to_the_host() {
    let Some(lab) = Lab::new("nat-internal") else {
        return;
    };
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&[
        "network",
        "create",
        "quiet",
        "--internal",
        "--subnet",
        "10.71.0.0/24",
    ]);
    lab.ok(&[
        "network",
        "create",
        "plain",
        "--masquerade=false",
        "--subnet",
        "10.72.0.0/24",
    ]);
    lab.ok(&["attach", &a, "--network", "quiet"]);
    lab.ok(&["attach", &b, "--network", "plain"]);
    // Even with the outside routing the internal subnet to the host, nothing passes.
    let out = Command::new("ip")
        .args([
            "-n",
            &lab.outside,
            "route",
            "add",
            "10.71.0.0/24",
            "via",
            &HOST_WAN.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(tcp(&a, at(OUTSIDE, 7000), &lab.outside, 7000), None);
    let a_ip = lab.ip(&a, "quiet");
    assert_eq!(tcp(&lab.outside, at(a_ip, 80), &a, 80), None);
    assert_eq!(udp(&lab.outside, at(a_ip, 53), &a, 53), None);
    // --masquerade=false: no masquerade rule, and the outside cannot answer the subnet.
    let table = lab.table().unwrap_or_default();
    assert!(!table.contains("10.72.0.0/24"), "{table}");
    assert_eq!(tcp(&b, at(OUTSIDE, 7000), &lab.outside, 7000), None);
    let v = lab.inspect("plain");
    assert_eq!(v["Options"]["masquerade"], false, "{v}");
    // Publishing on an internal network is refused.
    let e = lab.fails(&["attach", &lab.w("c"), "--network", "quiet", "-p", "8080:80"]);
    assert!(e.contains("8080:80") && e.contains("internal"), "{e}");
}

#[test]
fn two_bridge_networks_cannot_reach_each_other_through_the_host() {
    let Some(lab) = Lab::new("nat-isolation") else {
        return;
    };
    let (a, b, both) = (lab.w("a"), lab.w("b"), lab.w("both"));
    lab.ok(&["network", "create", "red", "--subnet", "10.73.0.0/24"]);
    lab.ok(&["network", "create", "blue", "--subnet", "10.74.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "red"]);
    lab.ok(&["attach", &b, "--network", "blue"]);
    lab.ok(&["attach", &both, "--network", "red"]);
    lab.ok(&["attach", &both, "--network", "blue"]);
    let forwarding = run_in(&lab.host, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
    })
    .unwrap()
    .unwrap();
    assert_eq!(forwarding.trim(), "1", "forwarding is on");
    let table = lab.table().unwrap_or_default();
    let (a_ip, b_ip) = (lab.ip(&a, "red"), lab.ip(&b, "blue"));
    assert_eq!(tcp(&a, at(b_ip, 80), &b, 80), None, "{table}");
    assert_eq!(udp(&b, at(a_ip, 53), &a, 53), None, "{table}");
    // Both still go out, and a workload on both networks reaches each side.
    assert!(tcp(&a, at(OUTSIDE, 7000), &lab.outside, 7000).is_some());
    assert!(tcp(&b, at(OUTSIDE, 7000), &lab.outside, 7000).is_some());
    assert!(tcp(&both, at(a_ip, 80), &a, 80).is_some());
    assert!(tcp(&both, at(b_ip, 80), &b, 80).is_some());
}

/// Not a test of its own: with `L2SW_CHILD_DAEMON=SOCKET` set, this runs a daemon on SOCKET
/// until killed, so that a test can `kill -9` a real daemon process.
#[test]
#[ignore = "a daemon for published_ports_survive_a_killed_daemon_and_sync"]
fn daemon_child() {
    if let Ok(sock) = std::env::var("L2SW_CHILD_DAEMON") {
        let _daemon = EmbeddedDaemon::start(std::path::Path::new(&sock)).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

/// A daemon process, killed (SIGKILL) when dropped, also when a test fails.
struct ChildDaemon(std::process::Child);

impl ChildDaemon {
    fn start(lab: &mut Lab) -> ChildDaemon {
        if let Some(d) = lab.daemon.take() {
            d.stop();
        }
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "daemon_child", "--ignored", "--nocapture"])
            .env("L2SW_CHILD_DAEMON", lab.socket())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(lab.socket()).is_err() {
            assert!(Instant::now() < deadline, "daemon child");
            std::thread::sleep(Duration::from_millis(20));
        }
        ChildDaemon(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn published_ports_survive_a_killed_daemon_and_sync() {
    let Some(mut lab) = Lab::new("nat-kill9") else {
        return;
    };
    let mut daemon = ChildDaemon::start(&mut lab);
    let (web, dns) = (lab.w("web"), lab.w("dns"));
    lab.ok(&["network", "create", "front", "--subnet", "10.75.0.0/24"]);
    lab.ok(&["attach", &web, "--network", "front", "-p", "8080:80"]);
    lab.ok(&[
        "attach",
        &dns,
        "--network",
        "front",
        "-p",
        &format!("{HOST_WAN}:5300-5301:53-54/udp"),
    ]);
    let before = lab.table().expect("table ip l2sw");
    assert!(tcp(&lab.outside, at(HOST_WAN, 8080), &web, 80).is_some());

    daemon.kill();
    // A reboot loses the kernel's rules too.
    let out = Command::new("ip")
        .args([
            "netns", "exec", &lab.host, "nft", "delete", "table", "ip", "l2sw",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let _daemon = ChildDaemon::start(&mut lab);
    lab.ok(&["sync"]);
    assert_eq!(lab.table().as_deref(), Some(before.as_str()));
    assert_eq!(
        tcp(&lab.outside, at(HOST_WAN, 8080), &web, 80),
        Some(IpAddr::V4(OUTSIDE))
    );
    assert!(udp(&lab.outside, at(HOST_WAN, 5300), &dns, 53).is_some());
    assert!(udp(&lab.outside, at(HOST_WAN, 5301), &dns, 54).is_some());
    // Only on the host address given.
    assert!(udp(&web, at(lab.ip(&web, "front"), 5300), &dns, 53).is_none());
}

#[test]
fn bad_publish_input_is_refused_and_changes_nothing() {
    let Some(mut lab) = Lab::new("nat-bad") else {
        return;
    };
    let (web, x) = (lab.w("web"), lab.w("x"));
    let parent_ns = lab.host.clone();
    let lan = lab._sandbox.netns("lan");
    lab._sandbox.veth(
        &parent_ns,
        "upl",
        Mac([2, 0, 0, 0, 0xcc, 1]),
        &lan,
        "eth0",
        Mac([2, 0, 0, 0, 0xcc, 2]),
    );
    lab.ok(&["network", "create", "front", "--subnet", "10.76.0.0/24"]);
    lab.ok(&[
        "network",
        "create",
        "quiet",
        "--internal",
        "--subnet",
        "10.77.0.0/24",
    ]);
    lab.ok(&[
        "network",
        "create",
        "lan",
        "-d",
        "macvlan",
        "--parent",
        "upl",
        "--subnet",
        "10.78.0.0/24",
    ]);
    lab.ok(&["attach", &web, "--network", "front", "-p", "8080:80"]);
    let snapshot = || (lab.state_file(), lab.table(), lab.links());
    let before = snapshot();
    for (spec, net, names) in [
        ("0:80", "front", "0"),
        ("65536:80", "front", "65536"),
        ("8080:80", "front", "8080"),
        ("198.51.100.1:8080:81", "front", "already published"),
        ("127.0.0.1:9000:80", "front", "loopback"),
        ("9000:80/sctp", "front", "sctp"),
        ("9000-9002:80-81", "front", "9000-9002"),
        ("9000:80", "quiet", "internal"),
        ("9000:80", "lan", "macvlan"),
    ] {
        let e = lab.fails(&["attach", &x, "--network", net, "-p", spec]);
        assert!(e.contains(spec) && e.contains(names), "{spec}: {e}");
        assert_eq!(
            snapshot(),
            before,
            "--publish {spec} on {net} changed something"
        );
    }
    // The same port for the other protocol is free.
    lab.ok(&["attach", &x, "--network", "front", "-p", "8080:80/udp"]);
}

#[test]
fn a_topology_publishes_and_down_takes_its_rules_away() {
    let Some(lab) = Lab::new("nat-topology") else {
        return;
    };
    let web = lab.w("web");
    let file = lab.dir.path().join("shop.toml");
    std::fs::write(
        &file,
        format!(
            r#"
            [[network]]
            name = "shop"
            subnet = ["10.79.0.0/24"]
            [[network]]
            name = "backroom"
            subnet = ["10.79.1.0/24"]
            masquerade = false
            [[workload]]
            name = "{web}"
            [[workload.attach]]
            network = "shop"
            publish = ["8080:80", "5353:53/udp"]
            "#
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    lab.ok(&["up", path]);
    let table = lab.table().expect("table ip l2sw");
    assert!(
        table.contains("10.79.0.0/24") && !table.contains("10.79.1.0/24"),
        "{table}"
    );
    assert!(
        tcp(&lab.outside, at(HOST_WAN, 8080), &web, 80).is_some(),
        "{table}"
    );
    lab.ok(&["up", path]);
    assert_eq!(
        lab.table().as_deref(),
        Some(table.as_str()),
        "up again changes nothing"
    );
    lab.ok(&["down", path]);
    assert_eq!(lab.table(), None, "down leaves no rule behind");
}
