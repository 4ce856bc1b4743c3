//! l2ctl end to end: the real `l2ctl` binary against a real daemon (the l2sw library's, on a
//! socket of the test's own), with a throw-away namespace playing the host (`--host-netns`),
//! workloads in namespaces l2ctl makes, and traffic between them. Every test uses its own
//! names, state directory and daemon, so they run in parallel; a guard removes every namespace
//! a test made, also when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw_tests::l2ctl::L2ctl;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use l2sw::api::ErrorKind;
use l2sw::wire::Mac;
use l2sw_control::client::Client;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl::{self, Links};
use l2sw_control::probe::udp_reaches;
use l2sw_tests::{Sandbox, Tap};
use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One test's world: a host namespace, a daemon, a state directory, workload names.
struct Lab {
    sandbox: Sandbox,
    host: String,
    dir: tempfile::TempDir,
    daemon: Option<EmbeddedDaemon>,
    prefix: String,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        let mut sandbox = Sandbox::new(test)?;
        let host = sandbox.netns("host");
        let dir = tempfile::tempdir().unwrap();
        let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("t{}{n}", std::process::id() % 100_000);
        Some(Lab {
            sandbox,
            host,
            dir,
            daemon,
            prefix,
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state/state.json")
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

    fn inspect(&self, net: &str) -> Value {
        serde_json::from_str(&self.ok(&["network", "inspect", net])).unwrap()
    }

    /// A workload's address on a network, from `network inspect`.
    fn ip(&self, workload: &str, net: &str) -> IpAddr {
        let v = self.inspect(net);
        let cidr = v["Containers"][workload]["IPv4Address"]
            .as_str()
            .unwrap_or_else(|| panic!("{workload} has no address on {net}: {v}"));
        cidr.split('/').next().unwrap().parse().unwrap()
    }

    /// Whether UDP from namespace `from` reaches `to`'s address on `net` (`None`: the host).
    fn reaches(&self, from: Option<&str>, to: &str, net: &str) -> bool {
        let from = from.map_or(self.host.clone(), str::to_owned);
        udp_reaches(Some(&from), Some(to), self.ip(to, net)).unwrap()
    }

    /// A parent interface `upl` in the host namespace, its far end `eth0` in a LAN namespace
    /// with a station at `station_ip/24`; returns the LAN namespace.
    fn lan(&mut self, station_ip: &str) -> String {
        let lan = self.sandbox.netns("lan");
        let host = self.host.clone();
        self.sandbox.veth(
            &host,
            "upl",
            Mac([2, 0, 0, 0, 0xaa, 1]),
            &lan,
            "eth0",
            Mac([2, 0, 0, 0, 0xaa, 2]),
        );
        let ip: IpAddr = station_ip.parse().unwrap();
        self.sandbox
            .links(&lan)
            .add_address("eth0", ip, 24)
            .unwrap();
        lan
    }

    /// Workload namespaces that exist now.
    fn our_namespaces(&self) -> Vec<String> {
        nl::netns_list()
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .collect()
    }

    /// Stops the daemon (its TAP devices vanish with it) and starts a fresh one.
    fn restart_daemon(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        self.daemon = Some(EmbeddedDaemon::start(&self.socket()).unwrap());
    }

    /// The `stats` table's cell in column `column` of port `port`'s row.
    fn cell(&self, net: &str, port: &str, column: &str) -> String {
        let text = self.ok(&["stats", net]);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("PORT "))
            .unwrap_or_else(|| panic!("no table in\n{text}"));
        let header: Vec<&str> = lines[at].split_whitespace().collect();
        let i = header
            .iter()
            .position(|h| *h == column)
            .unwrap_or_else(|| panic!("no column {column} in\n{text}"));
        let row = lines[at + 1..]
            .iter()
            .find(|l| l.split_whitespace().next() == Some(port))
            .unwrap_or_else(|| panic!("no port {port} in\n{text}"));
        // Every cell before DROPS is one word.
        row.split_whitespace().nth(i).unwrap().to_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        for ns in self.our_namespaces() {
            let _ = nl::netns_delete(&ns);
        }
        // Names files of workloads a failed test left attached.
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

#[test]
fn bridge_network_connects_workloads_and_the_host() {
    let Some(lab) = Lab::new("l2ctl-bridge") else {
        return;
    };
    let (a, b, c) = (lab.w("a"), lab.w("b"), lab.w("c"));
    lab.ok(&["network", "create", "front", "--subnet", "10.50.0.0/24"]);
    let out = lab.ok(&["attach", &a, "--network", "front"]);
    assert!(
        out.contains("eth0 on front") && out.contains("10.50.0.2"),
        "{out}"
    );
    lab.ok(&["attach", &b, "--network", "front"]);
    lab.ok(&["attach", &c, "--network", "front", "--port", "tap"]);
    // Lowest-free addresses after the gateway .1, Docker's MACs.
    let v = lab.inspect("front");
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.50.0.1");
    assert_eq!(v["Containers"][&b]["IPv4Address"], "10.50.0.3/24");
    assert_eq!(v["Containers"][&c]["MacAddress"], "02:42:0a:32:00:04");
    assert_eq!(v["Containers"][&c]["Port"], "tap");

    assert!(lab.reaches(Some(&a), &b, "front"));
    assert!(lab.reaches(Some(&b), &c, "front"), "veth to TAP");
    assert!(
        lab.reaches(None, &a, "front"),
        "the host, through its gateway port"
    );

    // The FDB names ports after workloads; the host port is a local entry.
    let fdb = lab.ok(&["fdb", "front"]);
    for w in [&a, &b, &c] {
        assert!(fdb.contains(w.as_str()), "{w} not in\n{fdb}");
    }
    assert!(fdb.contains("local"), "{fdb}");
    let stats: Value = serde_json::from_str(&lab.ok(&["stats", "front", "--json"])).unwrap();
    assert!(stats["front"]["rx"].as_u64().unwrap() > 0, "{stats}");

    // The workload's view, through exec.
    let addr = lab.ok(&["exec", &a, "--", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains("10.50.0.2/24"), "{addr}");
    let route = lab.ok(&["exec", &a, "--", "ip", "route", "show", "default"]);
    assert!(route.contains("via 10.50.0.1 dev eth0"), "{route}");

    let err = lab.fails(&["network", "rm", "front"]);
    assert!(
        err.contains("has active endpoints") && err.contains(&a),
        "{err}"
    );
    for w in [&a, &b, &c] {
        lab.ok(&["detach", w, "--network", "front"]);
    }
    assert!(
        lab.our_namespaces().is_empty(),
        "namespaces go with the last network"
    );
    lab.ok(&["network", "rm", "front"]);
    let links = Links::new(Some(&lab.host)).names().unwrap();
    assert!(
        links.iter().all(|l| !l.starts_with("l2")),
        "links left on the host: {links:?}"
    );
}

#[test]
fn predefined_networks_exist_and_stay() {
    let Some(lab) = Lab::new("l2ctl-predef") else {
        return;
    };
    let ls = lab.ok(&["network", "ls"]);
    for n in ["bridge", "host", "none"] {
        assert!(
            ls.lines().any(|l| l.contains(&format!(" {n} "))),
            "{n} in\n{ls}"
        );
    }
    assert!(ls.contains("172.17.0.0/16"), "docker0's pool: {ls}");
    for n in ["bridge", "host", "none"] {
        let err = lab.fails(&["network", "rm", n]);
        assert!(
            err.contains("pre-defined network and cannot be removed"),
            "{err}"
        );
    }
    // The default bridge comes up with its first workload, its host port l2sw0 the gateway.
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&["attach", &a, "--network", "bridge"]);
    lab.ok(&["attach", &b, "--network", "bridge"]);
    assert_eq!(lab.ip(&a, "bridge").to_string(), "172.17.0.2");
    let host = Links::new(Some(&lab.host));
    assert!(
        host.addresses("l2sw0")
            .unwrap()
            .iter()
            .any(|a| a.to_string() == "172.17.0.1/16")
    );
    assert!(lab.reaches(Some(&a), &b, "bridge"));
    // A new network skips the pool in use.
    lab.ok(&["network", "create", "next"]);
    assert_eq!(
        lab.inspect("next")["IPAM"]["Config"][0]["Subnet"],
        "172.18.0.0/16"
    );
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "bridge"]);
    }
}

#[test]
fn macvlan_modes_deliver_as_the_kernel_does() {
    let Some(mut lab) = Lab::new("l2ctl-macvlan") else {
        return;
    };
    let lan = lab.lan("10.60.0.200");
    // Each mode on the same parent in turn; docs/spec.md §2: bridge delivers between sub-interfaces,
    // private and vepa (without a hairpinning neighbour) do not; all reach the outside.
    for (mode, peers) in [("bridge", true), ("private", false), ("vepa", false)] {
        let (a, b) = (lab.w(&format!("{mode}a")), lab.w(&format!("{mode}b")));
        lab.ok(&[
            "network",
            "create",
            "lan",
            "-d",
            "macvlan",
            "--mode",
            mode,
            "--parent",
            "upl",
            "--subnet",
            "10.60.0.0/24",
            "--aux-address",
            "station=10.60.0.200",
        ]);
        lab.ok(&["attach", &a, "--network", "lan"]);
        lab.ok(&["attach", &b, "--network", "lan"]);
        assert_eq!(lab.reaches(Some(&a), &b, "lan"), peers, "{mode}: a -> b");
        assert!(lab.reaches(Some(&lan), &a, "lan"), "{mode}: station -> a");
        for w in [&a, &b] {
            lab.ok(&["detach", w, "--network", "lan"]);
        }
        lab.ok(&["network", "rm", "lan"]);
    }
}

#[test]
fn vepa_peers_meet_through_a_hairpinning_neighbour() {
    let Some(mut lab) = Lab::new("l2ctl-vepa") else {
        return;
    };
    let lan = lab.lan("10.61.0.200");
    // The neighbour: a kernel bridge with hairpin on the port facing us (reflective relay).
    lab.sandbox.ip(&lan, &["addr", "flush", "dev", "eth0"]);
    lab.sandbox
        .kernel_bridge(&lan, "br0", Mac([2, 0, 0, 0, 2, 0xfe]));
    lab.sandbox.enslave(&lan, "eth0", "br0", true, false);
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&[
        "network",
        "create",
        "lan",
        "-d",
        "macvlan",
        "--mode",
        "vepa",
        "--parent",
        "upl",
        "--subnet",
        "10.61.0.0/24",
    ]);
    lab.ok(&["attach", &a, "--network", "lan"]);
    lab.ok(&["attach", &b, "--network", "lan"]);
    assert!(lab.reaches(Some(&a), &b, "lan"), "vepa + hairpin upstream");
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "lan"]);
    }
}

#[test]
fn passthru_and_source_modes_keep_their_rules() {
    let Some(mut lab) = Lab::new("l2ctl-passthru") else {
        return;
    };
    let lan = lab.lan("10.62.0.200");
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&[
        "network",
        "create",
        "pt",
        "-d",
        "macvlan",
        "--mode",
        "passthru",
        "--parent",
        "upl",
        "--subnet",
        "10.62.0.0/24",
        "--aux-address",
        "station=10.62.0.200",
    ]);
    let err = lab.fails(&[
        "network",
        "create",
        "pt2",
        "-d",
        "macvlan",
        "--parent",
        "upl",
        "--subnet",
        "10.63.0.0/24",
    ]);
    assert!(
        err.contains("passthru network cannot share its parent"),
        "{err}"
    );
    lab.ok(&["attach", &a, "--network", "pt"]);
    // Passthru takes the parent's MAC.
    assert_eq!(
        lab.inspect("pt")["Containers"][&a]["MacAddress"],
        "02:00:00:00:aa:01"
    );
    assert!(
        lab.reaches(Some(&lan), &a, "pt"),
        "station -> passthru endpoint"
    );
    let err = lab.fails(&["attach", &b, "--network", "pt"]);
    assert!(err.contains("room for one endpoint"), "{err}");
    lab.ok(&["detach", &a, "--network", "pt"]);
    lab.ok(&["network", "rm", "pt"]);

    lab.ok(&[
        "network",
        "create",
        "src",
        "-d",
        "macvlan",
        "--mode",
        "source",
        "--parent",
        "upl",
        "--subnet",
        "10.62.0.0/24",
    ]);
    lab.ok(&[
        "attach",
        &a,
        "--network",
        "src",
        "--source-mac",
        "02:00:00:00:aa:02",
    ]);
    assert_eq!(
        lab.inspect("src")["Containers"][&a]["SourceMacs"][0],
        "02:00:00:00:aa:02"
    );
    lab.ok(&[
        "network",
        "create",
        "plain",
        "-d",
        "macvlan",
        "--parent",
        "upl.7",
        "--subnet",
        "10.64.0.0/24",
    ]);
    let err = lab.fails(&[
        "attach",
        &b,
        "--network",
        "plain",
        "--source-mac",
        "02:00:00:00:aa:02",
    ]);
    assert!(err.contains("--source-mac is for source-mode"), "{err}");
    lab.ok(&["detach", &a, "--network", "src"]);
}

#[test]
fn ipvlan_endpoints_share_the_parent_mac() {
    let Some(mut lab) = Lab::new("l2ctl-ipvlan") else {
        return;
    };
    let lan = lab.lan("10.65.0.200");
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&[
        "network",
        "create",
        "iv",
        "-d",
        "ipvlan",
        "--parent",
        "upl",
        "--subnet",
        "10.65.0.0/24",
        "--aux-address",
        "station=10.65.0.200",
    ]);
    lab.ok(&["attach", &a, "--network", "iv"]);
    lab.ok(&["attach", &b, "--network", "iv"]);
    let v = lab.inspect("iv");
    for w in [&a, &b] {
        assert_eq!(v["Containers"][w]["MacAddress"], "02:00:00:00:aa:01", "{w}");
    }
    assert!(lab.reaches(Some(&a), &b, "iv"), "ipvlan bridge: a -> b");
    assert!(lab.reaches(Some(&lan), &a, "iv"), "station -> a");
    let err = lab.fails(&[
        "attach",
        &lab.w("c"),
        "--network",
        "iv",
        "--mac",
        "02:00:00:00:00:09",
    ]);
    assert!(err.contains("take the parent's MAC"), "{err}");
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "iv"]);
    }
}

#[test]
fn a_vlan_parent_is_tagged_by_l2sw() {
    let Some(mut lab) = Lab::new("l2ctl-vlan") else {
        return;
    };
    let lan = lab.lan("10.66.0.200");
    let a = lab.w("a");
    let err = lab.fails(&[
        "network", "create", "v", "-d", "macvlan", "--parent", "upl.4095",
    ]);
    assert!(err.contains("vlan id must be between 1-4094"), "{err}");
    lab.ok(&[
        "network",
        "create",
        "v10",
        "-d",
        "macvlan",
        "--parent",
        "upl.10",
        "--subnet",
        "10.66.0.0/24",
    ]);
    lab.ok(&["attach", &a, "--network", "v10"]);
    // The workload's ARP for an address on the LAN leaves the parent tagged with VLAN 10.
    let wire = Tap::open("lan", &lan, "eth0");
    wire.drain();
    let _ = udp_reaches(Some(&a), Some(&lan), "10.66.0.77".parse().unwrap());
    let frames = wire.drain();
    let tagged_arp = frames.iter().any(|f| {
        f.len() > 18
            && f[12..14] == [0x81, 0x00]
            && u16::from_be_bytes([f[14], f[15]]) & 0xfff == 10
            && f[16..18] == [0x08, 0x06]
    });
    assert!(
        tagged_arp,
        "no ARP tagged with VLAN 10 among {} frames",
        frames.len()
    );
    assert!(
        frames
            .iter()
            .all(|f| f.get(12..14) == Some(&[0x81, 0x00][..])),
        "an untagged frame left a VLAN network's parent"
    );
    lab.ok(&["detach", &a, "--network", "v10"]);
}

#[test]
fn container_and_none_share_or_isolate() {
    let Some(lab) = Lab::new("l2ctl-sandboxes") else {
        return;
    };
    let (a, b, n) = (lab.w("a"), lab.w("b"), lab.w("n"));
    lab.ok(&["network", "create", "front", "--subnet", "10.67.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", &format!("container:{a}")]);
    let seen = lab.ok(&["exec", &b, "--", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        seen.contains("10.67.0.2/24"),
        "b sees a's interface: {seen}"
    );
    let err = lab.fails(&["attach", &b, "--network", "front"]);
    assert!(err.contains("cannot join other networks"), "{err}");
    let err = lab.fails(&["detach", &a, "--network", "front"]);
    assert!(err.contains("share the namespace"), "{err}");

    lab.ok(&["attach", &n, "--network", "none"]);
    let links = lab.ok(&["exec", &n, "--", "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "loopback only: {links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    let err = lab.fails(&["attach", &n, "--network", "front"]);
    assert!(err.contains("cannot be combined"), "{err}");

    let ps = lab.ok(&["ps"]);
    assert!(
        ps.contains(&format!("container:{a}")) && ps.contains("none"),
        "{ps}"
    );
    lab.ok(&["detach", &b, "--network", &format!("container:{a}")]);
    lab.ok(&["detach", &a, "--network", "front"]);
    lab.ok(&["detach", &n, "--network", "none"]);
    assert!(lab.our_namespaces().is_empty());
}

#[test]
fn one_workload_on_two_networks() {
    let Some(lab) = Lab::new("l2ctl-multi") else {
        return;
    };
    let (a, b, c) = (lab.w("a"), lab.w("b"), lab.w("c"));
    lab.ok(&["network", "create", "one", "--subnet", "10.68.0.0/24"]);
    lab.ok(&[
        "network",
        "create",
        "two",
        "--subnet",
        "10.69.0.0/24",
        "--internal",
    ]);
    lab.ok(&["attach", &a, "--network", "one"]);
    let out = lab.ok(&["attach", &a, "--network", "two", "--ip", "10.69.0.9"]);
    assert!(
        out.contains("eth1 on two") && out.contains("10.69.0.9"),
        "{out}"
    );
    lab.ok(&["attach", &b, "--network", "one"]);
    lab.ok(&["attach", &c, "--network", "two"]);
    assert!(lab.reaches(Some(&b), &a, "one"));
    assert!(lab.reaches(Some(&c), &a, "two"));
    assert!(
        !lab.reaches(Some(&b), &c, "two"),
        "no route between the networks"
    );
    // An internal network has no host port and gives no default route.
    assert!(lab.inspect("two")["HostPort"].is_null());
    assert!(!lab.reaches(None, &c, "two"));
    for (w, n) in [(&a, "two"), (&a, "one"), (&b, "one"), (&c, "two")] {
        lab.ok(&["detach", w, "--network", n]);
    }
}

#[test]
fn names_resolve_within_a_network_and_not_across() {
    let Some(lab) = Lab::new("l2ctl-names") else {
        return;
    };
    let (web, db, other) = (lab.w("web"), lab.w("db"), lab.w("other"));
    lab.ok(&["network", "create", "front", "--subnet", "10.71.0.0/24"]);
    lab.ok(&["network", "create", "side", "--subnet", "10.72.0.0/24"]);
    lab.ok(&["attach", &web, "--network", "front"]);
    lab.ok(&["attach", &db, "--network", "front", "--ip", "10.71.0.20"]);
    lab.ok(&["attach", &other, "--network", "side"]);
    let lookup = |from: &str, name: &str| {
        lab.l2ctl(&["exec", from, "--", "getent", "-s", "files", "hosts", name])
    };
    let found = lookup(&web, &db);
    assert!(found.status.success(), "{found:?}");
    assert!(
        String::from_utf8_lossy(&found.stdout).starts_with("10.71.0.20 "),
        "{found:?}"
    );
    let ping = lab.l2ctl(&["exec", &web, "--", "ping", "-c", "1", "-W", "2", &db]);
    assert!(ping.status.success(), "ping {db} from {web}: {ping:?}");
    assert!(
        !lookup(&other, &db).status.success(),
        "{other} is on another network"
    );
    assert!(!lookup(&db, &other).status.success());
    // The file follows the state: a peer that leaves is no longer listed.
    let etc = std::path::Path::new(nl::ETC_NETNS);
    let resolv = std::fs::read_to_string(etc.join(&web).join("resolv.conf")).unwrap();
    assert!(
        resolv.contains("nameserver") && !resolv.contains("127.0.0.53"),
        "{resolv}"
    );
    lab.ok(&["detach", &db, "--network", "front"]);
    assert!(!lookup(&web, &db).status.success());
    assert!(!etc.join(&db).exists(), "{db}'s names outlive it");
    lab.ok(&["detach", &web, "--network", "front"]);
    lab.ok(&["detach", &other, "--network", "side"]);
    assert!(!etc.join(&web).exists() && !etc.join(&other).exists());
}

#[test]
fn host_access_lets_the_host_reach_macvlan_workloads() {
    let Some(mut lab) = Lab::new("l2ctl-hostaccess") else {
        return;
    };
    let _lan = lab.lan("10.70.0.200");
    let host = lab.host.clone();
    lab.sandbox
        .ip(&host, &["addr", "add", "10.70.0.250/24", "dev", "upl"]);
    let a = lab.w("a");
    lab.ok(&[
        "network",
        "create",
        "lan",
        "-d",
        "macvlan",
        "--parent",
        "upl",
        "--subnet",
        "10.70.0.0/24",
        "--ip-range",
        "10.70.0.0/25",
        "--aux-address",
        "host=10.70.0.250",
    ]);
    lab.ok(&["attach", &a, "--network", "lan"]);
    assert!(
        !lab.reaches(None, &a, "lan"),
        "docs/spec.md §6.1: the host cannot reach it"
    );
    let out = lab.ok(&["host-access", "lan"]);
    assert!(out.contains("10.70.0.254"), "{out}");
    assert!(lab.reaches(None, &a, "lan"), "through host-access");
    let err = lab.fails(&["host-access", "lan"]);
    assert!(err.contains("already has host access"), "{err}");
    lab.ok(&["detach", &a, "--network", "lan"]);
    let ha = lab.inspect("lan")["HostAccess"]["interface"]
        .as_str()
        .unwrap()
        .to_owned();
    lab.ok(&["network", "rm", "lan"]);
    assert!(
        !Links::new(Some(&host)).exists(&ha).unwrap(),
        "network rm undoes host-access"
    );
}

#[test]
fn up_and_down_leave_nothing_behind() {
    let Some(lab) = Lab::new("l2ctl-updown") else {
        return;
    };
    let (a, b) = (lab.w("a"), lab.w("b"));
    let file = lab.dir.path().join("lab.toml");
    std::fs::write(
        &file,
        format!(
            r#"
            [[network]]
            name = "front"
            subnet = ["10.71.0.0/24"]

            [[network]]
            name = "back"
            subnet = ["10.72.0.0/24"]
            internal = true

            [[workload]]
            name = "{a}"
            [[workload.attach]]
            network = "front"
            [[workload.attach]]
            network = "back"
            ip = ["10.72.0.10"]

            [[workload]]
            name = "{b}"
            [[workload.attach]]
            network = "back"
            port = "tap"
            "#
        ),
    )
    .unwrap();
    let before = std::fs::read_to_string(lab.state_file()).ok();
    let file = file.to_str().unwrap();
    let first = lab.ok(&["up", file]);
    assert!(first.contains("network front: created"), "{first}");
    let again = lab.ok(&["up", file]);
    assert!(
        !again.contains("created") && !again.contains("attached"),
        "idempotent: {again}"
    );
    assert!(lab.reaches(Some(&b), &a, "back"));
    assert_eq!(lab.ip(&a, "back").to_string(), "10.72.0.10");
    let down = lab.ok(&["down", file]);
    assert!(down.contains("network front: removed"), "{down}");
    assert!(lab.our_namespaces().is_empty());
    let ls = lab.ok(&["network", "ls"]);
    assert!(!ls.contains("front") && !ls.contains("back"), "{ls}");
    let links = Links::new(Some(&lab.host)).names().unwrap();
    assert!(links.iter().all(|l| !l.starts_with("l2")), "{links:?}");
    if let Some(before) = before {
        assert_eq!(std::fs::read_to_string(lab.state_file()).unwrap(), before);
    }
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let Some(lab) = Lab::new("l2ctl-badinput") else {
        return;
    };
    let a = lab.w("a");
    lab.ok(&[
        "network",
        "create",
        "front",
        "--subnet",
        "10.73.0.0/24",
        "--ip-range",
        "10.73.0.0/28",
    ]);
    lab.ok(&["attach", &a, "--network", "front"]);
    let state = std::fs::read_to_string(lab.state_file()).unwrap();
    // This lab's namespaces only: other tests make and remove theirs meanwhile.
    let namespaces = lab.our_namespaces();
    let host_links = Links::new(Some(&lab.host)).names().unwrap();
    let b = lab.w("b");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["network", "create", "front"],
            "network with name front already exists",
        ),
        (
            vec!["network", "create", "other", "--subnet", "10.73.0.128/25"],
            "overlaps with 10.73.0.0/24",
        ),
        (
            vec!["network", "create", "other", "--subnet", "10.74.0.1/24"],
            "it should be 10.74.0.0/24",
        ),
        (
            vec![
                "network",
                "create",
                "other",
                "--subnet",
                "10.74.0.0/24",
                "--gateway",
                "10.75.0.1",
            ],
            "10.75.0.1",
        ),
        (
            vec![
                "network",
                "create",
                "other",
                "--subnet",
                "10.74.0.0/24",
                "--ip-range",
                "10.75.0.0/28",
            ],
            "10.75.0.0/28",
        ),
        (
            vec![
                "network",
                "create",
                "other",
                "--subnet",
                "10.74.0.0/24",
                "--aux-address",
                "r=10.75.0.1",
            ],
            "10.75.0.1",
        ),
        (
            vec![
                "network", "create", "other", "-d", "macvlan", "--parent", "nope0",
            ],
            "nope0 does not exist",
        ),
        (
            vec!["network", "create", "other", "--mode", "vepa"],
            "has no modes",
        ),
        (vec!["network", "rm", "front"], "has active endpoints"),
        (vec!["network", "rm", "nothere"], "not found"),
        (
            vec!["attach", &b, "--network", "front", "--ip", "10.99.0.5"],
            "10.99.0.5",
        ),
        (
            vec!["attach", &b, "--network", "front", "--ip", "10.73.0.2"],
            "already in use",
        ),
        (vec!["attach", &b, "--network", "nothere"], "not found"),
        (
            vec!["attach", &a, "--network", "front"],
            "already exists in network front",
        ),
        (
            vec!["attach", "bad/name", "--network", "front"],
            "invalid workload name",
        ),
    ];
    for (args, expect) in cases {
        let err = lab.fails(&args);
        assert!(
            err.contains(expect),
            "l2ctl {}: {expect:?} not in {err}",
            args.join(" ")
        );
        assert_eq!(
            std::fs::read_to_string(lab.state_file()).unwrap(),
            state,
            "state after {args:?}"
        );
    }
    assert_eq!(lab.our_namespaces(), namespaces);
    assert_eq!(Links::new(Some(&lab.host)).names().unwrap(), host_links);
    // A static address outside the range but inside the subnet is fine (Docker allows it).
    lab.ok(&["attach", &b, "--network", "front", "--ip", "10.73.0.100"]);
    for w in ["b", "a"] {
        lab.ok(&["detach", &lab.w(w), "--network", "front"]);
    }
}

#[test]
fn a_restarted_daemon_gets_everything_back() {
    let Some(mut lab) = Lab::new("l2ctl-restart") else {
        return;
    };
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&["network", "create", "front", "--subnet", "10.76.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", "front", "--port", "tap"]);
    assert!(lab.reaches(Some(&a), &b, "front"));
    let before = lab.inspect("front");
    lab.restart_daemon();
    assert!(
        !lab.reaches(Some(&a), &b, "front"),
        "a fresh daemon forwards nothing"
    );
    let out = lab.ok(&["sync"]);
    assert!(out.contains("restored network front"), "{out}");
    assert!(out.contains(&format!("restored {b} on front")), "{out}");
    assert!(lab.reaches(Some(&a), &b, "front"), "veth and TAP are back");
    assert_eq!(
        lab.inspect("front"),
        before,
        "nothing duplicated, nothing lost"
    );
    assert!(lab.ok(&["sync"]).contains("already has everything"));
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "front"]);
    }
}

#[test]
fn without_a_daemon_the_error_says_how_to_start_one() {
    let Some(mut lab) = Lab::new("l2ctl-nodaemon") else {
        return;
    };
    if let Some(d) = lab.daemon.take() {
        d.stop();
    }
    let state = std::fs::read_to_string(lab.state_file()).ok();
    let err = lab.fails(&["network", "create", "front", "--subnet", "10.77.0.0/24"]);
    assert!(
        err.contains("no l2sw daemon answers") && err.contains("l2sw run"),
        "{err}"
    );
    let after = std::fs::read_to_string(lab.state_file()).ok();
    assert_eq!(after, state.or(after.clone()));
    assert!(!lab.ok(&["network", "ls"]).contains("front"));
}

#[test]
fn dual_stack_networks_hand_out_ipv6_too() {
    let Some(lab) = Lab::new("l2ctl-ipv6") else {
        return;
    };
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&[
        "network",
        "create",
        "ds",
        "--subnet",
        "10.78.0.0/24",
        "--subnet",
        "fd00:78::/64",
    ]);
    lab.ok(&["attach", &a, "--network", "ds"]);
    lab.ok(&[
        "attach",
        &b,
        "--network",
        "ds",
        "--ip",
        "fd00:78::99",
        "--port",
        "tap",
    ]);
    let v = lab.inspect("ds");
    assert_eq!(v["IPAM"]["Config"][1]["Gateway"], "fd00:78::1");
    assert_eq!(v["Containers"][&a]["IPv6Address"], "fd00:78::2/64");
    assert_eq!(v["Containers"][&b]["IPv6Address"], "fd00:78::99/64");
    assert_eq!(v["Containers"][&b]["IPv4Address"], "10.78.0.3/24");
    let b6: IpAddr = "fd00:78::99".parse().unwrap();
    assert!(
        udp_reaches(Some(&a), Some(&b), b6).unwrap(),
        "a -> b over IPv6"
    );
    let route = lab.ok(&["exec", &a, "--", "ip", "-6", "route", "show", "default"]);
    assert!(route.contains("via fd00:78::1"), "{route}");
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "ds"]);
    }
}

#[test]
fn the_readme_demo_runs_and_leaves_nothing() {
    if !l2sw_tests::privileged() {
        return;
    }
    let before = nl::netns_list().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "reached",
        "not reached, as expected",
        "l2ctl host-access lan",
        "10.30.0.250:8080, published to",
        "Everything the demo made is gone",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    let after = nl::netns_list().unwrap();
    assert!(
        after
            .iter()
            .all(|n| before.contains(n) || !n.starts_with("l2demo-")),
        "{after:?}"
    );
}

impl Lab {
    /// Runs l2ctl in the background with `args` while UDP probes flow a → b, until it exits.
    fn while_traffic(&self, args: &[&str], a: &str, b: &str, net: &str) -> Output {
        let mut child = self
            .ctl()
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "l2ctl {args:?} never finished"
            );
            let _ = self.reaches(Some(a), b, net);
        }
        child.wait_with_output().unwrap()
    }
}

#[test]
fn trace_says_what_happened_to_each_frame_and_capture_writes_pcapng() {
    let Some(lab) = Lab::new("l2ctl-trace") else {
        return;
    };
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&["network", "create", "front", "--subnet", "10.79.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", "front", "--port", "tap"]);
    let out = lab.while_traffic(
        &["trace", "front", "--port", &a, "--count", "4"],
        &a,
        &b,
        "front",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(&format!("in {a}")).count(), 4, "{text}");
    assert!(
        text.contains("rule:  br_"),
        "the kernel function is named: {text}"
    );
    assert!(text.contains(&format!("→ {b}")), "{text}");

    let json = lab.while_traffic(
        &["trace", "front", "--count", "3", "--json"],
        &a,
        &b,
        "front",
    );
    let records: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r["kernel_fn"].is_string() && r["summary"].is_string())
    );

    let file = lab.dir.path().join("b.pcapng");
    let path = file.to_str().unwrap();
    let out = lab.while_traffic(
        &["capture", "front", "-p", &b, "-w", path, "-c", "6"],
        &a,
        &b,
        "front",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&file).unwrap();
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&data[..]).unwrap();
    let mut names = Vec::new();
    let mut packets = 0;
    while let Some(block) = reader.next_block() {
        match block.unwrap() {
            pcap_file::pcapng::Block::InterfaceDescription(idb) => {
                names.push(format!("{:?}", idb.options))
            }
            pcap_file::pcapng::Block::EnhancedPacket(p) => {
                packets += 1;
                assert!(p.data.len() >= 14, "a whole Ethernet frame");
            }
            _ => {}
        }
    }
    assert_eq!(packets, 6);
    assert_eq!(names.len(), 1, "one port, one interface: {names:?}");
    assert!(
        names[0].contains(&b),
        "the interface is named after the port: {names:?}"
    );
    if Command::new("tcpdump").arg("--version").output().is_ok() {
        let r = Command::new("tcpdump")
            .args(["-nr", path])
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "tcpdump reads it: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "front"]);
    }
}

/// Not a test of its own: with `L2SW_CHILD_DAEMON=SOCKET` set, this runs a daemon on SOCKET
/// until killed, so that a test can `kill -9` a real daemon process.
#[test]
#[ignore = "a daemon for a_killed_daemon_is_restored_with_nothing_lost_or_doubled"]
fn daemon_child() {
    if let Ok(sock) = std::env::var("L2SW_CHILD_DAEMON") {
        let _daemon = EmbeddedDaemon::start(std::path::Path::new(&sock)).unwrap();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// A daemon process, killed (SIGKILL) when dropped, also when a test fails.
struct ChildDaemon(std::process::Child);

impl ChildDaemon {
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

impl Lab {
    /// A daemon in a process of its own on this lab's socket (the embedded one stops).
    fn daemon_process(&mut self) -> ChildDaemon {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "daemon_child", "--ignored", "--nocapture"])
            .env("L2SW_CHILD_DAEMON", self.socket())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "daemon child"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        ChildDaemon(child)
    }
}

#[test]
fn a_killed_daemon_is_restored_with_nothing_lost_or_doubled() {
    let Some(mut lab) = Lab::new("l2ctl-kill9") else {
        return;
    };
    let mut daemon = lab.daemon_process();
    let (a, b, c) = (lab.w("a"), lab.w("b"), lab.w("c"));
    lab.ok(&["network", "create", "front", "--subnet", "10.80.0.0/24"]);
    let _lan = lab.lan("10.81.0.200");
    lab.ok(&[
        "network",
        "create",
        "lan",
        "-d",
        "macvlan",
        "--parent",
        "upl",
        "--subnet",
        "10.81.0.0/24",
        "--aux-address",
        "station=10.81.0.200",
    ]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", "front", "--port", "tap"]);
    lab.ok(&["attach", &a, "--network", "lan"]);
    lab.ok(&["host-access", "lan"]);
    assert!(lab.reaches(Some(&a), &b, "front"));
    let before = (lab.inspect("front"), lab.inspect("lan"));

    daemon.kill(); // SIGKILL: no cleanup at all, a stale socket file stays
    assert!(
        !lab.reaches(Some(&a), &b, "front"),
        "nothing forwards without the daemon"
    );
    let _daemon = lab.daemon_process();
    // The next command that builds on the daemon restores the state first.
    let out = lab.l2ctl(&["attach", &c, "--network", "front"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains("restored to the daemon") && told.contains("network front"),
        "{told}"
    );
    assert!(
        lab.reaches(Some(&a), &b, "front"),
        "veth and TAP workloads forward again"
    );
    assert!(lab.reaches(None, &a, "lan"), "host-access is back");
    // Nothing doubled: the same endpoints and allocations, and c got the next free address.
    let after = (lab.inspect("front"), lab.inspect("lan"));
    assert_eq!(after.1, before.1);
    let mut front = after.0.clone();
    front["Containers"].as_object_mut().unwrap().remove(&c);
    front["IPAM"]["Config"][0]["Allocated"] = before.0["IPAM"]["Config"][0]["Allocated"].clone();
    assert_eq!(front, before.0);
    assert_eq!(lab.ip(&c, "front").to_string(), "10.80.0.4");
    let ports = l2sw_control::client::Client::new(lab.socket())
        .networks()
        .unwrap();
    let front_ports: Vec<_> = ports
        .iter()
        .find(|n| n.name == "front")
        .unwrap()
        .ports
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(
        front_ports.len(),
        4,
        "host, a, b, c once each: {front_ports:?}"
    );
    for (w, n) in [(&a, "front"), (&b, "front"), (&c, "front"), (&a, "lan")] {
        lab.ok(&["detach", w, "--network", n]);
    }
    daemon.kill();
}

#[test]
fn a_source_network_on_a_veth_parent_delivers_as_the_kernel_does() {
    use l2sw::wire::{Mac, craft};
    use l2sw_tests::deliveries;

    let Some(mut lab) = Lab::new("l2ctl-srcveth") else {
        return;
    };
    // l2sw's side, made by l2ctl: a source-mode network on the veth `upl`, whose far end is
    // the station 02:00:00:00:aa:02; the daemon is told nothing about what `upl` can filter.
    let lan = lab.lan("10.65.0.200");
    let a = lab.w("a");
    lab.ok(&[
        "network",
        "create",
        "src",
        "-d",
        "macvlan",
        "--mode",
        "source",
        "--parent",
        "upl",
        "--subnet",
        "10.65.0.0/24",
    ]);
    lab.ok(&[
        "attach",
        &a,
        "--network",
        "src",
        "--source-mac",
        "02:00:00:00:aa:02",
    ]);
    let mac: Mac = lab.inspect("src")["Containers"][&a]["MacAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The kernel's side: the same sub-interface, a kernel macvlan in source mode, on a veth
    // parent of its own.
    let kern = lab.sandbox.netns("kern");
    let klan = lab.sandbox.netns("klan");
    lab.sandbox.veth(
        &kern,
        "kupl",
        Mac([2, 0, 0, 0, 0xaa, 1]),
        &klan,
        "eth0",
        Mac([2, 0, 0, 0, 0xaa, 2]),
    );
    lab.sandbox.ip(
        &kern,
        &[
            "link",
            "add",
            "link",
            "kupl",
            "name",
            "ksrc",
            "address",
            &mac.to_string(),
            "type",
            "macvlan",
            "mode",
            "source",
            "macaddr",
            "add",
            "02:00:00:00:aa:02",
        ],
    );
    lab.sandbox.ip(&kern, &["link", "set", "ksrc", "up"]);
    let (l_station, l_a) = (
        Tap::open("station", &lan, "eth0"),
        Tap::open("a", &a, "eth0"),
    );
    let (k_station, k_a) = (
        Tap::open("station", &klan, "eth0"),
        Tap::open("a", &kern, "ksrc"),
    );

    let listed: Mac = "02:00:00:00:aa:02".parse().unwrap();
    let other: Mac = "02:00:00:00:aa:03".parse().unwrap();
    let unknown: Mac = "02:00:00:00:bb:01".parse().unwrap();
    let group: Mac = "01:00:5e:00:00:fb".parse().unwrap();
    let frames = [
        ("listed source, unknown destination", unknown, listed),
        ("listed source, to the sub-interface", mac, listed),
        ("other source, to the sub-interface", mac, other),
        ("other source, unknown destination", unknown, other),
        ("listed source, broadcast", Mac::BROADCAST, listed),
        ("other source, broadcast", Mac::BROADCAST, other),
        ("listed source, multicast", group, listed),
    ];
    let mut differ = Vec::new();
    let mut copied_to_a = Vec::new();
    for (what, dst, src) in frames {
        let f = craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, what.as_bytes());
        let kernel = deliveries(std::slice::from_ref(&k_a), &k_station, &f);
        let l2sw = deliveries(std::slice::from_ref(&l_a), &l_station, &f);
        if kernel != l2sw {
            differ.push(format!("{what}: kernel {kernel:?}, l2sw {l2sw:?}"));
        }
        if !kernel.is_empty() {
            copied_to_a.push(what);
        }
    }
    assert!(
        differ.is_empty(),
        "l2sw differs from the kernel: {differ:#?}"
    );
    // The parent cannot filter unicast: the kernel made it promiscuous, and a frame from the
    // listed source to a destination nobody has reaches the source-mode sub-interface.
    assert!(
        copied_to_a.contains(&"listed source, unknown destination"),
        "{copied_to_a:?}"
    );
    lab.ok(&["detach", &a, "--network", "src"]);
}

#[test]
fn after_kill_9_and_a_restart_stats_answers_and_traffic_flows_again() {
    let Some(mut lab) = Lab::new("l2ctl-recover") else {
        return;
    };
    let mut daemon = lab.daemon_process();
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&["network", "create", "front", "--subnet", "10.82.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", "front", "--port", "tap"]);
    assert!(lab.reaches(Some(&a), &b, "front"));
    assert!(lab.reaches(Some(&b), &a, "front"));

    daemon.kill(); // SIGKILL: the TAP device goes with the daemon, a stale socket file stays
    let err = lab.fails(&["stats", "front"]);
    assert!(
        err.contains("no l2sw daemon answers") && err.contains("l2sw run"),
        "a daemon that is not running is still said so: {err}"
    );
    let mut daemon = lab.daemon_process();
    // No `sync`: the first command that talks to the daemon restores the state first.
    let out = lab.l2ctl(&["stats", "front"]);
    let (told, table) = (
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    );
    assert!(out.status.success(), "{told}");
    assert!(
        told.contains("restored to the daemon") && told.contains("network front"),
        "{told}"
    );
    assert!(
        table.contains("network front:") && table.contains(&a) && table.contains(&b),
        "{table}"
    );
    assert!(
        lab.reaches(Some(&a), &b, "front"),
        "veth to TAP forwards again"
    );
    assert!(
        lab.reaches(Some(&b), &a, "front"),
        "TAP to veth forwards again"
    );
    // The daemon lacks nothing now: the next command restores nothing.
    let out = lab.l2ctl(&["fdb", "front"]);
    assert!(out.status.success());
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(!told.contains("restored"), "{told}");
    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "front"]);
    }
    daemon.kill();
}

#[test]
fn a_namespace_deleted_behind_l2ctls_back_is_gone_not_made_again() {
    let Some(mut lab) = Lab::new("l2ctl-gone") else {
        return;
    };
    let (a, b, c, d, e) = (lab.w("a"), lab.w("b"), lab.w("c"), lab.w("d"), lab.w("e"));
    lab.ok(&["network", "create", "front", "--subnet", "10.83.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", "front", "--port", "tap"]);
    lab.ok(&["attach", &c, "--network", "front"]);
    lab.ok(&["attach", &d, "--network", "front", "--port", "tap"]);
    assert!(lab.reaches(Some(&a), &c, "front"));
    let (ip_c, ip_d) = (lab.ip(&c, "front"), lab.ip(&d, "front"));
    let before = lab.inspect("front");
    let peer_c = before["Containers"][&c]["SwitchEnd"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(before["Containers"][&c]["State"], "attached");

    // `ip netns del`, behind l2ctl's back: c's is a veth endpoint, d's a TAP.
    nl::netns_delete(&c).unwrap();
    nl::netns_delete(&d).unwrap();

    let ps = lab.ok(&["ps"]);
    for w in [&c, &d] {
        let line = ps.lines().find(|l| l.starts_with(w.as_str())).unwrap();
        assert!(line.contains("gone (namespace deleted)"), "{ps}");
    }
    let line = ps.lines().find(|l| l.starts_with(a.as_str())).unwrap();
    assert!(line.contains("attached"), "{ps}");
    let ps: Value = serde_json::from_str(&lab.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps[&c]["state"], "gone", "{ps}");
    assert_eq!(ps[&a]["state"], "attached", "{ps}");
    let v = lab.inspect("front");
    assert_eq!(v["Containers"][&c]["State"], "gone", "{v}");
    assert_eq!(v["Containers"][&d]["State"], "gone", "{v}");
    assert_eq!(v["Containers"][&b]["State"], "attached", "{v}");

    // Neither `sync` nor the restore after a restart makes the namespaces again.
    let out = lab.l2ctl(&["sync"]);
    assert!(out.status.success());
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(told.contains(&c) && told.contains("deleted"), "{told}");
    lab.restart_daemon();
    let out = lab.l2ctl(&["stats", "front"]);
    assert!(out.status.success());
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(told.contains(&format!("{a} on front")), "{told}");
    assert!(!told.contains(&format!("{c} on front")), "{told}");
    assert!(!nl::netns_exists(&c) && !nl::netns_exists(&d));
    assert!(lab.reaches(Some(&a), &b, "front"), "the others still meet");
    let err = lab.fails(&["attach", &c, "--network", "front"]);
    assert!(err.contains("deleted") && err.contains("detach"), "{err}");
    assert!(!nl::netns_exists(&c));

    // `detach` cleans up: the daemon's port, the switch end, the addresses.
    lab.ok(&["detach", &c, "--network", "front"]);
    lab.ok(&["detach", &d, "--network", "front"]);
    let v = lab.inspect("front");
    assert!(v["Containers"].get(&c).is_none() && v["Containers"].get(&d).is_none());
    assert!(!Links::new(Some(&lab.host)).exists(&peer_c).unwrap());
    let ports = l2sw_control::client::Client::new(lab.socket())
        .networks()
        .unwrap();
    let front = ports.iter().find(|n| n.name == "front").unwrap();
    assert!(
        !front.ports.iter().any(|p| p.name == c || p.name == d),
        "{front:?}"
    );
    assert!(!lab.ok(&["ps"]).contains(&c));
    // The freed addresses are handed out again.
    lab.ok(&[
        "attach",
        &e,
        "--network",
        "front",
        "--ip",
        &ip_c.to_string(),
    ]);
    lab.ok(&[
        "attach",
        &c,
        "--network",
        "front",
        "--ip",
        &ip_d.to_string(),
    ]);
    assert!(nl::netns_exists(&c), "a new attach makes a fresh namespace");
    assert!(lab.reaches(Some(&a), &e, "front"));
    assert!(lab.reaches(Some(&e), &c, "front"));
    assert!(lab.reaches(Some(&b), &a, "front"));
    for w in [&a, &b, &c, &e] {
        lab.ok(&["detach", w, "--network", "front"]);
    }
    assert!(lab.our_namespaces().is_empty());
}

#[test]
fn storm_limits_and_learning_caps_change_a_running_network_and_show_in_stats() {
    let Some(lab) = Lab::new("l2ctl-runtime") else {
        return;
    };
    let (a, b) = (lab.w("a"), lab.w("b"));
    lab.ok(&["network", "create", "front", "--subnet", "10.61.0.0/24"]);
    lab.ok(&["attach", &a, "--network", "front"]);
    lab.ok(&["attach", &b, "--network", "front"]);
    assert_eq!(lab.cell("front", &a, "STORM"), "-");
    // No cap yet: the count alone.
    assert!(lab.cell("front", &a, "LEARNED").parse::<u32>().is_ok());

    lab.ok(&[
        "storm",
        "front",
        &a,
        "--broadcast",
        "100",
        "--multicast",
        "50",
    ]);
    assert_eq!(lab.cell("front", &a, "STORM"), "bc=100,mc=50");
    assert_eq!(lab.cell("front", &b, "STORM"), "-");
    lab.ok(&["storm", "front", &a]);
    assert_eq!(
        lab.cell("front", &a, "STORM"),
        "-",
        "no class given: no limits"
    );

    // A cap of one MAC on a: its second source is refused and counted.
    lab.ok(&["learn-cap", "front", "1", "--port", &a]);
    let ping = |from: &str| {
        lab.l2ctl(&["exec", from, "--", "ping", "-c1", "-W1", "10.61.0.3"]);
    };
    ping(&a);
    assert_eq!(lab.cell("front", &a, "LEARNED"), "1/1");
    assert_eq!(lab.cell("front", &a, "SEC-REFUSED"), "0");
    lab.ok(&[
        "exec",
        &a,
        "--",
        "ip",
        "link",
        "set",
        "dev",
        "eth0",
        "address",
        "02:00:00:61:00:99",
    ]);
    ping(&a);
    let refused: u64 = lab.cell("front", &a, "SEC-REFUSED").parse().unwrap();
    assert!(refused >= 1, "{}", lab.ok(&["stats", "front"]));
    assert!(lab.ok(&["stats", "front"]).contains("PortSecurity="));
    assert_eq!(lab.cell("front", &b, "FLAPS"), "0");

    // The bridge-wide cap shows in the FDB line; 0 lifts it.
    lab.ok(&["learn-cap", "front", "500"]);
    assert!(lab.ok(&["stats", "front"]).contains("(cap 500)"));
    lab.ok(&["learn-cap", "front", "0"]);
    assert!(!lab.ok(&["stats", "front"]).contains("(cap "));

    // Refusals name what is missing, with the daemon's kind underneath.
    let err = lab.fails(&["storm", "front", "nobody", "--broadcast", "1"]);
    assert!(err.contains("no port \"nobody\""), "{err}");
    let err = lab.fails(&["learn-cap", "nowhere", "1"]);
    assert!(err.contains("no network \"nowhere\""), "{err}");
    let client = Client::new(lab.socket());
    let e = client.set_max_learned("nowhere", None, 1).unwrap_err();
    assert!(e.is_no_network(), "{e}");
    let e = client
        .set_storm("front", "nobody", l2sw::config::StormSpec::default())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        Some(&ErrorKind::NoSuchPort {
            port: "nobody".into()
        })
    );

    for w in [&a, &b] {
        lab.ok(&["detach", w, "--network", "front"]);
    }
}
