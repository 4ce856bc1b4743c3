//! Overlay networks across hosts, end to end: namespaces play three hosts on one underlay (a
//! kernel bridge in a fabric namespace). H1 and H2 each run their own l2sw daemon driven by
//! the real `l2ctl` (`--host-netns`); H3 runs the kernel's own VTEP, a bridge with a vxlan
//! device (`nolearning`, flood entries with `bridge fdb append 00:00:00:00:00:00 ... dst`).
//! Workloads on every host reach each other (ARP, ping, TCP with its bytes checked), the FDBs
//! name the VTEPs, a host that leaves is forgotten while the others go on, and packets that
//! are malformed, of another VNI or from an unknown sender are counted drops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw_tests::l2ctl::L2ctl;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::port::sys::netns::run_in;
use l2sw::wire::Mac;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl;
use l2sw_tests::Sandbox;
use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

const VNI: &str = "4242";
const UNDERLAY: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 1),
    Ipv4Addr::new(192, 0, 2, 2),
    Ipv4Addr::new(192, 0, 2, 3),
];

/// One l2sw host: its namespace, daemon and l2ctl state.
struct L2swHost {
    ns: String,
    dir: tempfile::TempDir,
    daemon: Option<EmbeddedDaemon>,
}

impl L2swHost {
    fn new(ns: String) -> L2swHost {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
        L2swHost { ns, dir, daemon }
    }

    /// Stops the daemon and starts a fresh one with nothing in it; `l2ctl sync` restores.
    fn restart(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        self.daemon = Some(EmbeddedDaemon::start(&self.socket()).unwrap());
        self.ok(&["sync"]);
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    /// l2ctl on this test's daemon, state and host namespace.
    fn ctl(&self) -> L2ctl {
        L2ctl::new(env!("CARGO_BIN_EXE_l2ctl"), self.dir.path(), Some(&self.ns))
    }

    fn l2ctl(&self, args: &[&str]) -> Output {
        self.ctl().run(args)
    }

    /// Runs l2ctl; it must succeed. Returns its output.
    fn ok(&self, args: &[&str]) -> String {
        self.ctl().ok(args)
    }

    /// Runs l2ctl; it must fail. Returns its error message.
    fn fails(&self, args: &[&str]) -> String {
        self.ctl().fails(args)
    }

    /// The workload's address and MAC on `net`, from `network inspect`.
    fn endpoint(&self, workload: &str, net: &str) -> (Ipv4Addr, Mac) {
        let v: Value = serde_json::from_str(&self.ok(&["network", "inspect", net])).unwrap();
        let c = &v["Containers"][workload];
        let ip = c["IPv4Address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let mac = c["MacAddress"].as_str().unwrap();
        (ip.parse().unwrap(), mac.parse().unwrap())
    }

    /// The overlay port's drop counters and per-remote counters.
    fn vxlan_stats(&self, net: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["stats", net, "--json"])).unwrap();
        v[net]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "vxlan")
            .cloned()
            .unwrap()
    }

    /// The VTEP the FDB names for `mac` (`None`: no entry, or no VTEP).
    fn vtep_of(&self, net: &str, mac: Mac) -> Option<String> {
        let rows: Value = serde_json::from_str(&self.ok(&["fdb", net, "--json"])).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["mac"] == mac.to_string())
            .and_then(|r| r["vtep"].as_str().map(str::to_owned))
    }
}

impl Drop for L2swHost {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
    }
}

/// The three hosts and their underlay.
struct Fabric {
    sandbox: Sandbox,
    fabric: String,
    hosts: [String; 3],
    prefix: String,
}

impl Fabric {
    fn new(test: &str) -> Option<Fabric> {
        let mut sandbox = Sandbox::new(test)?;
        let fabric = sandbox.netns("fab");
        sandbox.kernel_bridge(&fabric, "br0", Mac([2, 0, 0, 0xfa, 0, 1]));
        let hosts = ["h1", "h2", "h3"].map(|h| sandbox.netns(h));
        for (i, h) in hosts.iter().enumerate() {
            let port = format!("p{}", i + 1);
            let n = u8::try_from(i).unwrap() + 1;
            sandbox.veth(
                &fabric,
                &port,
                Mac([2, 0, 0, 0xfa, 1, n]),
                h,
                "eth0",
                Mac([2, 0, 0, 0xfa, 2, n]),
            );
            sandbox.enslave(&fabric, &port, "br0", false, false);
            sandbox
                .links(h)
                .add_address("eth0", IpAddr::V4(UNDERLAY[i]), 24)
                .unwrap();
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("o{}{n}", std::process::id() % 100_000);
        Some(Fabric {
            sandbox,
            fabric,
            hosts,
            prefix,
        })
    }

    fn w(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// H3: a kernel bridge with a vxlan device and one workload `w` at `ip`; the flood list
    /// `remotes`.
    fn kernel_vtep(&mut self, remotes: &[Ipv4Addr], ip: &str, mac: Mac) -> String {
        self.kernel_host(2, remotes, ip, mac)
    }

    /// Host `i` as a kernel VTEP: a bridge with a vxlan device (`nolearning`, one all-zeros
    /// flood entry per remote) and one workload with `mac` at `ip`; returns its namespace.
    fn kernel_host(&mut self, i: usize, remotes: &[Ipv4Addr], ip: &str, mac: Mac) -> String {
        // A sandbox namespace: IPv6 off, so no router solicitation mixes with the test's frames.
        let w = &self.sandbox.netns(&format!("w{}", i + 1));
        let h = self.hosts[i].clone();
        let n = u8::try_from(i).unwrap();
        let local = UNDERLAY[i].to_string();
        self.sandbox.ip(
            &h,
            &[
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                VNI,
                "local",
                &local,
                "dstport",
                "4789",
                "nolearning",
                "dev",
                "eth0",
            ],
        );
        self.sandbox
            .kernel_bridge(&h, "brov", Mac([2, 0, 0, 0xb0 + n, 0, 1]));
        self.sandbox.enslave(&h, "vx0", "brov", false, false);
        self.sandbox.links(&h).set_up("vx0").unwrap();
        for r in remotes {
            l2sw_tests::run(
                "bridge",
                &[
                    "-n",
                    &h,
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    "vx0",
                    "dst",
                    &r.to_string(),
                ],
            );
        }
        self.sandbox
            .veth(&h, "wp", Mac([2, 0, 0, 0xb0 + n, 0, 2]), w, "eth0", mac);
        self.sandbox.enslave(&h, "wp", "brov", false, false);
        let l = self.sandbox.links(w);
        l.set_mtu("eth0", 1450).unwrap();
        // The underlay is veth: a checksum the workload leaves to offload would cross it
        // unfinished inside the VXLAN payload (the kernel's own receiver keeps the skb's
        // CHECKSUM_PARTIAL, a UDP socket sees only bytes). On a real NIC the NIC finishes it.
        l.disable_tx_offloads("eth0").unwrap();
        l.add_address("eth0", ip.parse().unwrap(), 24).unwrap();
        w.clone()
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        for ns in nl::netns_list().unwrap_or_default() {
            if ns.starts_with(&format!("{}-", self.prefix)) {
                let _ = nl::netns_delete(&ns);
            }
        }
    }
}

/// Pings `to` from namespace `from` until one answer comes or `within` passes.
fn pings(from: &str, to: Ipv4Addr, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        let ok = Command::new("ip")
            .args(["netns", "exec", from, "ping", "-c1", "-W1", &to.to_string()])
            .output()
            .unwrap()
            .status
            .success();
        if ok {
            return true;
        }
    }
    false
}

/// Sends `data` over TCP from namespace `from` to `to` (listening in namespace `server`);
/// returns what the server received.
fn tcp_transfer(from: &str, server: &str, to: Ipv4Addr, data: Vec<u8>) -> Vec<u8> {
    let listener = run_in(server, || {
        TcpListener::bind(SocketAddr::new(IpAddr::V4(to), 5201))
    })
    .unwrap()
    .unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let stream = run_in(from, || {
        TcpStream::connect_timeout(
            &SocketAddr::new(IpAddr::V4(to), 5201),
            Duration::from_secs(10),
        )
    })
    .unwrap()
    .unwrap();
    let mut stream = stream;
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(&data).unwrap();
    drop(stream);
    receiver.join().unwrap()
}

/// Sends one UDP datagram `payload` to `to:4789` from `from` (bound to `src` in namespace
/// `ns`).
fn send_udp(ns: &str, src: Ipv4Addr, to: Ipv4Addr, payload: &[u8]) {
    let payload = payload.to_vec();
    run_in(ns, move || {
        let s = UdpSocket::bind((src, 0)).unwrap();
        s.send_to(&payload, (to, 4789)).unwrap();
    })
    .unwrap();
}

fn vxlan_frame(flags: u8, reserved: u8, vni: u32, src: Mac) -> Vec<u8> {
    let v = vni.to_be_bytes();
    let mut p = vec![flags, 0, 0, 0, v[1], v[2], v[3], reserved];
    p.extend_from_slice(&[0xff; 6]);
    p.extend_from_slice(&src.0);
    p.extend_from_slice(&[0x08, 0x06]);
    p.extend_from_slice(&[0; 28]);
    p
}

/// Asks the daemon at `socket` one control request (a JSON line); returns the answer line.
fn ask(socket: &std::path::Path, req: &str) -> String {
    use std::io::BufRead;
    let s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(&s).read_line(&mut line).unwrap();
    line
}

/// Waits until `f` holds or `within` passes.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The three hosts with one overlay network `ov` and a workload each: a1 (veth) on H1, a2
/// (TAP) on H2, w3 on the kernel VTEP of H3.
struct World {
    fab: Fabric,
    l1: L2swHost,
    l2: L2swHost,
    a1: String,
    a2: String,
    w3: String,
    ip1: Ipv4Addr,
    ip2: Ipv4Addr,
    ip3: Ipv4Addr,
    mac1: Mac,
    mac2: Mac,
    mac3: Mac,
}

fn create_overlay(host: &L2swHost, me: usize, others: &[usize], range: &str, extra: &[&str]) {
    let s = |a: Ipv4Addr| a.to_string();
    let local = s(UNDERLAY[me]);
    let mut args = vec![
        "network", "create", "ov", "-d", "overlay", "--vni", VNI, "--local", &local,
    ];
    let remotes: Vec<String> = others.iter().map(|o| s(UNDERLAY[*o])).collect();
    for r in &remotes {
        args.extend(["--remote", r]);
    }
    args.extend(["--subnet", "10.42.0.0/24", "--ip-range", range]);
    args.extend_from_slice(extra);
    host.ok(&args);
}

impl World {
    fn new(test: &str) -> Option<World> {
        World::with(test, &[])
    }

    /// The same, with more options for H1's `network create`.
    fn with(test: &str, h1_options: &[&str]) -> Option<World> {
        let mut fab = Fabric::new(test)?;
        let [h1, h2, _] = fab.hosts.clone();
        let (a1, a2) = (fab.w("a1"), fab.w("a2"));
        let (l1, l2) = (L2swHost::new(h1), L2swHost::new(h2));
        // IPAM is partitioned per host with --ip-range; the kernel host's workload is static.
        create_overlay(&l1, 0, &[1, 2], "10.42.0.0/26", h1_options);
        create_overlay(&l2, 1, &[0, 2], "10.42.0.64/26", &[]);
        l1.ok(&["attach", &a1, "--network", "ov"]);
        l2.ok(&["attach", &a2, "--network", "ov", "--port", "tap"]);
        let mac3 = Mac([2, 0x42, 10, 42, 0, 130]);
        let w3 = fab.kernel_vtep(&[UNDERLAY[0], UNDERLAY[1]], "10.42.0.130", mac3);
        let (ip1, mac1) = l1.endpoint(&a1, "ov");
        let (ip2, mac2) = l2.endpoint(&a2, "ov");
        Some(World {
            fab,
            l1,
            l2,
            a1,
            a2,
            w3,
            ip1,
            ip2,
            ip3: "10.42.0.130".parse().unwrap(),
            mac1,
            mac2,
            mac3,
        })
    }
}

#[test]
fn l2sw_and_kernel_vteps_form_one_segment() {
    let Some(w) = World::new("overlay") else {
        return;
    };
    let World {
        l1,
        l2,
        a1,
        a2,
        w3,
        ip1,
        ip2,
        ip3,
        mac1,
        mac2,
        mac3: w3_mac,
        ..
    } = &w;
    let (a1, a2, w3) = (a1.as_str(), a2.as_str(), w3.as_str());
    let (ip1, ip2, ip3, mac1, mac2, w3_mac) = (*ip1, *ip2, *ip3, *mac1, *mac2, *w3_mac);
    assert!(ip1.octets()[3] < 64 && (64..128).contains(&ip2.octets()[3]));

    // Workloads get the underlay's MTU less VXLAN's 50 bytes.
    let out = Command::new("ip")
        .args(["-n", a1, "-j", "link", "show", "eth0"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["mtu"], 1450, "{v}");

    // Every pair reaches each other: ARP across the overlay, then ICMP.
    let t = Duration::from_secs(10);
    assert!(pings(a1, ip2, t), "l2sw H1 -> l2sw H2");
    assert!(pings(a1, ip3, t), "l2sw H1 -> kernel H3");
    assert!(pings(a2, ip3, t), "l2sw H2 -> kernel H3");
    assert!(pings(w3, ip1, t), "kernel H3 -> l2sw H1");
    assert!(pings(w3, ip2, t), "kernel H3 -> l2sw H2");

    // TCP, full-size segments, bytes checked: l2sw to l2sw and kernel to l2sw.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    assert!(tcp_transfer(w3, a1, ip1, data.clone()) == data, "H3 -> H1");
    assert!(tcp_transfer(a1, a2, ip2, data.clone()) == data, "H1 -> H2");

    // Each FDB names the VTEP every remote MAC is behind.
    assert_eq!(l1.vtep_of("ov", mac2).as_deref(), Some("192.0.2.2"));
    assert_eq!(l1.vtep_of("ov", w3_mac).as_deref(), Some("192.0.2.3"));
    assert_eq!(l2.vtep_of("ov", mac1).as_deref(), Some("192.0.2.1"));
    assert_eq!(l1.vtep_of("ov", mac1), None, "a local MAC has no VTEP");
    let table = l1.ok(&["fdb", "ov"]);
    assert!(table.lines().next().unwrap().ends_with("VTEP"), "{table}");
    // Counters per remote.
    let st = l1.vxlan_stats("ov");
    let remotes = st["overlay"]["remotes"].as_array().unwrap();
    assert_eq!(remotes.len(), 2, "{st}");
    for r in remotes {
        assert!(r["counters"]["rx"].as_u64().unwrap() > 0, "{st}");
        assert!(r["counters"]["tx"].as_u64().unwrap() > 0, "{st}");
    }
    assert!(l1.ok(&["stats", "ov"]).contains("192.0.2.3"));

    // A trace on H1 names the VTEP a frame came from, and a trace of a1's frames the VTEP
    // they go to.
    let traced = |port: &str| {
        std::thread::scope(|sc| {
            let t = sc.spawn(|| l1.ok(&["trace", "ov", "--count", "1", "--port", port, "--json"]));
            while !t.is_finished() {
                pings(a2, ip1, Duration::from_secs(1));
            }
            t.join().unwrap()
        })
    };
    let (from, to) = (traced("vxlan"), traced(a1));
    let from: Value = serde_json::from_str(from.lines().next().unwrap()).unwrap();
    assert_eq!(from["from_vtep"], "192.0.2.2", "{from}");
    let to: Value = serde_json::from_str(to.lines().next().unwrap()).unwrap();
    assert_eq!(to["to_vtep"], "192.0.2.2", "{to}");
}

#[test]
fn a_host_that_leaves_is_forgotten_and_the_others_go_on() {
    let Some(w) = World::new("overlay-leave") else {
        return;
    };
    let t = Duration::from_secs(10);
    assert!(pings(&w.a1, w.ip2, t) && pings(&w.a1, w.ip3, t));
    assert_eq!(w.l1.vtep_of("ov", w.mac2).as_deref(), Some("192.0.2.2"));
    // H2 leaves: H1 and the kernel VTEP drop it from their flood lists.
    let out = w.l1.ok(&["network", "remote", "rm", "ov", "192.0.2.2"]);
    assert!(out.contains("removed"), "{out}");
    l2sw_tests::run(
        "bridge",
        &[
            "-n",
            &w.fab.hosts[2],
            "fdb",
            "del",
            "00:00:00:00:00:00",
            "dev",
            "vx0",
            "dst",
            "192.0.2.2",
        ],
    );
    // Its MACs are flushed with it; the others keep forwarding.
    assert_eq!(w.l1.vtep_of("ov", w.mac2), None);
    assert!(pings(&w.a1, w.ip3, t), "H1 and H3 go on");
    assert!(pings(&w.w3, w.ip1, t), "H3 and H1 go on");
    // What H2 still sends is refused at H1 as from an unknown sender, and counted.
    assert!(!pings(&w.a2, w.ip1, Duration::from_secs(2)));
    let st = w.l1.vxlan_stats("ov");
    assert!(
        st["drops"]["VxlanUnknownSender"].as_u64().unwrap_or(0) > 0,
        "{st}"
    );
    assert_eq!(
        st["overlay"]["counters"]["last_unknown"], "192.0.2.2",
        "{st}"
    );
    assert!(
        !st["overlay"]["remotes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["vtep"] == "192.0.2.2"),
        "{st}"
    );
    // Removing it again, or a remote that never was, is refused by value.
    let e = w.l1.fails(&["network", "remote", "rm", "ov", "192.0.2.2"]);
    assert!(e.contains("192.0.2.2"), "{e}");
    // It comes back.
    w.l1.ok(&["network", "remote", "add", "ov", "192.0.2.2"]);
    assert!(pings(&w.a2, w.ip1, t), "H2 is back");
    let e = w.l1.fails(&["network", "remote", "add", "ov", "192.0.2.2"]);
    assert!(e.contains("already"), "{e}");
}

#[test]
fn without_learning_remote_macs_go_to_every_vtep() {
    // H1 as a kernel VTEP with `nolearning`: no remote MAC is learned behind a VTEP, and
    // frames to them go to the whole flood list, which still reaches them.
    let Some(w) = World::with("overlay-nolearn", &["--learning=false"]) else {
        return;
    };
    let t = Duration::from_secs(10);
    assert!(pings(&w.a1, w.ip2, t) && pings(&w.a1, w.ip3, t));
    assert!(pings(&w.w3, w.ip1, t) && pings(&w.a2, w.ip1, t));
    assert_eq!(w.l1.vtep_of("ov", w.mac2), None, "H1 learns no VTEP");
    assert_eq!(w.l1.vtep_of("ov", w.mac3), None, "H1 learns no VTEP");
    let st = w.l1.vxlan_stats("ov");
    assert_eq!(st["overlay"]["learning"], false, "{st}");
    // H2 learns as before.
    assert_eq!(w.l2.vtep_of("ov", w.mac1).as_deref(), Some("192.0.2.1"));

    // Pinned, as `bridge fdb append MAC dev vx0 dst IP`: the MAC has its VTEP, and keeps
    // it across a daemon restart (l2ctl's state has it).
    let mac3 = w.mac3.to_string();
    let out =
        w.l1.ok(&["network", "remote", "pin", "ov", &mac3, "192.0.2.3"]);
    assert!(out.contains("pinned behind 192.0.2.3"), "{out}");
    assert_eq!(w.l1.vtep_of("ov", w.mac3).as_deref(), Some("192.0.2.3"));
    assert!(pings(&w.a1, w.ip3, t));
    let mut w = w;
    w.l1.restart();
    assert_eq!(w.l1.vtep_of("ov", w.mac3).as_deref(), Some("192.0.2.3"));
    assert!(pings(&w.a1, w.ip3, t), "pinned, after a restart");
    // Refused by value, changing nothing.
    for (args, says) in [
        (
            vec!["ov", &*mac3, "192.0.2.2"],
            "already pinned behind 192.0.2.3",
        ),
        (vec!["ov", "02:00:00:00:00:99", "192.0.2.1"], "local VTEP"),
        (
            vec!["ov", "01:00:5e:00:00:01", "192.0.2.2"],
            "never stations",
        ),
        (vec!["nope", &*mac3, "192.0.2.2"], "nope"),
    ] {
        let mut a = vec!["network", "remote", "pin"];
        a.extend(args);
        let e = w.l1.fails(&a);
        assert!(e.contains(says), "{a:?}: {e}");
    }
    let e =
        w.l1.fails(&["network", "remote", "unpin", "ov", "02:00:00:00:00:99"]);
    assert!(e.contains("not pinned"), "{e}");
    // Unpinned: no VTEP again; the flood list still reaches it.
    w.l1.ok(&["network", "remote", "unpin", "ov", &mac3]);
    assert_eq!(w.l1.vtep_of("ov", w.mac3), None);
    assert!(pings(&w.a1, w.ip3, t));
    // Learning is an overlay's setting; a bridge network refuses it by name.
    let out =
        w.l1.l2ctl(&["network", "create", "plain", "--learning=false"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("--learning"), "{e}");
}

#[test]
fn bad_input_is_refused_by_value_and_leaves_nothing_behind() {
    let Some(fab) = Fabric::new("overlay-bad") else {
        return;
    };
    let l1 = L2swHost::new(fab.hosts[0].clone());
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec!["network", "create", name, "-d", "overlay"];
        args.extend_from_slice(extra);
        l1.l2ctl(&args)
    };
    let refused = |name: &str, extra: &[&str], says: &str| {
        let out = create(name, extra);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(says), "{extra:?}: {e}");
    };
    let base = ["--local", "192.0.2.1", "--subnet", "10.43.0.0/24"];
    let with = |more: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(more);
        v
    };
    refused("b0", &with(&["--vni", "0"]), "VNI 0");
    refused("b1", &with(&["--vni", "16777216"]), "VNI 16777216");
    refused(
        "b2",
        &with(&["--vni", "7", "--remote", "192.0.2.1"]),
        "remote 192.0.2.1 is the local VTEP",
    );
    refused(
        "b3",
        &[
            "--vni",
            "7",
            "--local",
            "10.9.9.9",
            "--subnet",
            "10.43.0.0/24",
        ],
        "10.9.9.9",
    );
    refused("b4", &with(&[]), "--vni");
    let bridge = l1.fails(&["network", "create", "b5", "--vni", "7"]);
    assert!(bridge.contains("overlay"), "{bridge}");
    // A port clash: with another overlay network, and with a socket already on the port.
    l1.ok(&[
        "network",
        "create",
        "good",
        "-d",
        "overlay",
        "--vni",
        "7",
        "--local",
        "192.0.2.1",
        "--remote",
        "192.0.2.2",
        "--subnet",
        "10.44.0.0/24",
    ]);
    refused("b6", &with(&["--vni", "8"]), "192.0.2.1:4789");
    let squatter = run_in(&fab.hosts[0], || UdpSocket::bind(("192.0.2.1", 4790)))
        .unwrap()
        .unwrap();
    refused("b7", &with(&["--vni", "9", "--vxlan-port", "4790"]), "4790");
    drop(squatter);
    // Nothing of the refused networks is left, in l2ctl or in the daemon.
    let ls = l1.ok(&["network", "ls"]);
    for b in ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"] {
        assert!(
            !ls.split_whitespace().any(|wd| wd == b),
            "{b} left behind:\n{ls}"
        );
    }
    let stats: Value = serde_json::from_str(&l1.ok(&["stats", "--json"])).unwrap();
    let names: Vec<&String> = stats.as_object().unwrap().keys().collect();
    assert_eq!(names, ["good"], "{stats}");
}

#[test]
fn malformed_and_foreign_vxlan_packets_are_counted_drops() {
    let Some(w) = World::new("overlay-junk") else {
        return;
    };
    assert!(pings(&w.a1, w.ip3, Duration::from_secs(10)));
    let h3 = &w.fab.hosts[2];
    let to = UNDERLAY[0];
    let before = w.l1.vxlan_stats("ov");
    // Watches what reaches the workload.
    let seen = l2sw_tests::Tap::open("a1", &w.a1, "eth0");
    let stranger = Mac([2, 0xee, 0, 0, 0, 1]);
    // From a known remote: I flag clear, reserved bits set, too short, another VNI.
    send_udp(h3, UNDERLAY[2], to, &vxlan_frame(0x00, 0, 4242, stranger));
    send_udp(h3, UNDERLAY[2], to, &vxlan_frame(0x88, 0, 4242, stranger));
    send_udp(h3, UNDERLAY[2], to, &vxlan_frame(0x08, 1, 4242, stranger));
    send_udp(h3, UNDERLAY[2], to, &[0x08, 0, 0, 0, 0, 0x10, 0x92]);
    send_udp(h3, UNDERLAY[2], to, &vxlan_frame(0x08, 0, 4243, stranger));
    // A well-formed broadcast of the right VNI from a sender that is no remote.
    w.fab
        .sandbox
        .links(&w.fab.fabric)
        .add_address("br0", "192.0.2.9".parse().unwrap(), 24)
        .unwrap();
    send_udp(
        &w.fab.fabric,
        "192.0.2.9".parse().unwrap(),
        to,
        &vxlan_frame(0x08, 0, 4242, stranger),
    );
    let drops = |st: &Value, r: &str| st["drops"][r].as_u64().unwrap_or(0);
    assert!(
        eventually(Duration::from_secs(5), || {
            let st = w.l1.vxlan_stats("ov");
            drops(&st, "VxlanHeader") >= drops(&before, "VxlanHeader") + 4
                && drops(&st, "VxlanVni") > drops(&before, "VxlanVni")
                && drops(&st, "VxlanUnknownSender") > drops(&before, "VxlanUnknownSender")
        }),
        "{}",
        w.l1.ok(&["stats", "ov"])
    );
    let st = w.l1.vxlan_stats("ov");
    assert_eq!(st["overlay"]["counters"]["last_unknown"], "192.0.2.9");
    // None of it got in: nothing learned, nothing delivered to the workload.
    assert_eq!(w.l1.vtep_of("ov", stranger), None);
    let fdb = w.l1.ok(&["fdb", "ov"]);
    assert!(!fdb.contains(&stranger.to_string()), "{fdb}");
    // The broadcast went everywhere a broadcast goes, had it got in: a1 would have it now.
    assert!(
        !seen
            .drain()
            .iter()
            .any(|f| f.get(6..12) == Some(&stranger.0[..])),
        "a frame of the refused packets reached the workload"
    );
    // A VTEP given statically is no unknown sender: once an entry pins a MAC behind
    // 192.0.2.9 (the kernel's `bridge fdb add MAC dev vx0 dst IP`), its packets get in.
    let pinned = Mac([2, 0xee, 0, 0, 0, 2]);
    let answer = ask(
        &w.l1.socket(),
        &format!(
            r#"{{"v":1,"op":"add_static","network":"ov","mac":"{pinned}","port":"vxlan","vtep":"192.0.2.9"}}"#
        ),
    );
    assert!(answer.contains(r#""ok":true"#), "{answer}");
    assert_eq!(w.l1.vtep_of("ov", pinned).as_deref(), Some("192.0.2.9"));
    let from_stranger = |f: &Vec<u8>| f.get(6..12) == Some(&stranger.0[..]);
    assert!(
        eventually(Duration::from_secs(5), || {
            send_udp(
                &w.fab.fabric,
                "192.0.2.9".parse().unwrap(),
                to,
                &vxlan_frame(0x08, 0, 4242, stranger),
            );
            seen.drain().iter().any(from_stranger)
        }),
        "the static entry's VTEP was not let in: {}",
        w.l1.ok(&["stats", "ov"])
    );
    // A static entry cannot name the local VTEP.
    let answer = ask(
        &w.l1.socket(),
        &format!(
            r#"{{"v":1,"op":"add_static","network":"ov","mac":"{pinned}","port":"vxlan","vtep":"192.0.2.1"}}"#
        ),
    );
    assert!(answer.contains("192.0.2.1"), "{answer}");
    // And the overlay still works.
    assert!(pings(&w.a1, w.ip2, Duration::from_secs(10)));
}

/// The workloads' MACs in the conformance runs, one per host.
const STATION: [Mac; 3] = [
    Mac([2, 0x42, 0, 0, 0, 1]),
    Mac([2, 0x42, 0, 0, 0, 2]),
    Mac([2, 0x42, 0, 0, 0, 3]),
];

/// Runs the frame set through three hosts, `l2sw[i]` saying whether host i runs l2sw (else
/// the kernel's VTEP); returns, for each frame, which hosts' workloads received it.
fn receivers(test: &str, l2sw: [bool; 3]) -> Option<Vec<(String, Vec<usize>)>> {
    let mut fab = Fabric::new(test)?;
    let mut daemons = Vec::new();
    let mut workloads = Vec::new();
    for i in 0..3 {
        let others: Vec<usize> = (0..3).filter(|o| *o != i).collect();
        let ip = format!("10.42.0.{}", 10 + i);
        if l2sw[i] {
            let host = L2swHost::new(fab.hosts[i].clone());
            let range = format!("10.42.0.{}/28", 16 * (i + 1));
            create_overlay(&host, i, &others, &range, &[]);
            let w = fab.w(&format!("c{i}"));
            host.ok(&[
                "attach",
                &w,
                "--network",
                "ov",
                "--ip",
                &ip,
                "--mac",
                &STATION[i].to_string(),
            ]);
            daemons.push(host);
            workloads.push(w);
        } else {
            let remotes: Vec<Ipv4Addr> = others.iter().map(|o| UNDERLAY[*o]).collect();
            workloads.push(fab.kernel_host(i, &remotes, &ip, STATION[i]));
        }
    }
    let taps: Vec<l2sw_tests::Tap> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| l2sw_tests::Tap::open(&format!("h{}", i + 1), w, "eth0"))
        .collect();
    // Experimental ethertype; the payload's first byte numbers the frame.
    let frame = |dst: Mac, src: Mac, n: u8| {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&[0x88, 0xb5, n]);
        f.resize(60, 0);
        f
    };
    let ours = |f: &Vec<u8>| f.get(12..14) == Some(&[0x88, 0xb5][..]);
    // Every station announces itself first, so that the tables are filled.
    for (i, t) in taps.iter().enumerate() {
        t.send(&frame(Mac::BROADCAST, STATION[i], 0));
    }
    let settle = |taps: &[l2sw_tests::Tap]| {
        // Wait until each workload got the others' announcements.
        let mut got = vec![0usize; taps.len()];
        let end = Instant::now() + Duration::from_secs(5);
        while got.iter().any(|g| *g < 2) && Instant::now() < end {
            for (i, t) in taps.iter().enumerate() {
                got[i] += t.drain().iter().filter(|f| ours(f)).count();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        got
    };
    let got = settle(&taps);
    assert!(got.iter().all(|g| *g >= 2), "announcements: {got:?}");
    let unknown = Mac([2, 0, 0, 0, 0x99, 0x99]);
    let group = Mac([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]);
    let set: Vec<(&str, usize, Vec<u8>)> = vec![
        ("broadcast from h1", 0, frame(Mac::BROADCAST, STATION[0], 1)),
        ("unknown unicast from h1", 0, frame(unknown, STATION[0], 2)),
        ("h1 to h3", 0, frame(STATION[2], STATION[0], 3)),
        ("h1 to h2", 0, frame(STATION[1], STATION[0], 4)),
        ("multicast from h2", 1, frame(group, STATION[1], 5)),
        ("h3 to h2", 2, frame(STATION[1], STATION[2], 6)),
        ("h2 to itself", 1, frame(STATION[1], STATION[1], 7)),
    ];
    let mut out = Vec::new();
    for (what, from, f) in &set {
        taps[*from].send(f);
        // Deliveries take microseconds; a quiet moment after the last one ends the wait.
        let mut who = std::collections::BTreeSet::new();
        let end = Instant::now() + Duration::from_millis(700);
        while Instant::now() < end {
            for (i, t) in taps.iter().enumerate() {
                if t.drain().iter().any(|g| ours(g) && g.get(14) == f.get(14)) {
                    who.insert(i);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        out.push(((*what).to_owned(), who.into_iter().collect()));
    }
    drop(daemons);
    Some(out)
}

#[test]
fn mixed_and_all_kernel_overlays_deliver_alike() {
    let Some(mixed) = receivers("overlay-mixed", [true, true, false]) else {
        return;
    };
    let Some(kernel) = receivers("overlay-kernel", [false, false, false]) else {
        return;
    };
    assert_eq!(mixed, kernel);
    // And what that is, so that an agreement on nothing cannot pass.
    let expect: Vec<(String, Vec<usize>)> = [
        ("broadcast from h1", vec![1, 2]),
        ("unknown unicast from h1", vec![1, 2]),
        ("h1 to h3", vec![2]),
        ("h1 to h2", vec![1]),
        ("multicast from h2", vec![0, 2]),
        ("h3 to h2", vec![1]),
        ("h2 to itself", vec![]),
    ]
    .into_iter()
    .map(|(w, v)| (w.to_owned(), v))
    .collect();
    assert_eq!(kernel, expect);
}
