//! l2sw as Docker's network driver, end to end: a private dockerd (its own data root, exec
//! root and socket: see `l2sw_tests::docker`), an l2sw daemon process, and `l2ctl plugin
//! docker` under a name unique to the test, all children of the test and stopped at its end.
//! Containers from a busybox image made here (no registry) run on l2sw networks made with
//! `docker network create -d PLUGIN`, and traffic between them, the FDB, the counters, the
//! error messages and what is left afterwards are checked.
//!
//! The l2ctl state's host namespace is the test's own (the host's): Docker takes the
//! containers' links from the namespace dockerd runs in. Every link the test or l2ctl makes
//! there has a name unique to the test and is checked gone at the end. The tests take one lock
//! so that only one dockerd runs at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw_tests::l2ctl::L2ctl;
use std::collections::BTreeSet;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw_control::client::Client;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl::Links;
use l2sw_tests::Sandbox;
use l2sw_tests::docker::Dockerd;
use serde_json::Value;

static ONE_DOCKERD: Mutex<()> = Mutex::new(());
static NEXT: AtomicU32 = AtomicU32::new(0);
const IMAGE: &str = "l2sw-busybox:test";

/// Not a test of its own: with `L2SW_CHILD_DAEMON=SOCKET` set, this runs an l2sw daemon on
/// SOCKET until killed, so that a test can SIGKILL a real daemon process.
/// Pings a check sends before it says "no answer" (each waits 2 s): a loaded machine can
/// lose one exchange, and a way that is closed stays closed for all of them.
const PING_TRIES: usize = 3;

#[test]
#[ignore = "a daemon process for the tests in this file"]
fn daemon_child() {
    if let Ok(sock) = std::env::var("L2SW_CHILD_DAEMON") {
        let _daemon = EmbeddedDaemon::start(Path::new(&sock)).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Kills (SIGKILL) a child when dropped, also when a test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One test's world: dockerd, the l2sw daemon, the plugin, l2ctl's state, links in the host
/// namespace the test made, and every link name l2ctl's state ever held.
struct World {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    // Field order is drop order: the plugin and the daemon go before dockerd.
    plugin: Option<Killed>,
    daemon: Option<Killed>,
    docker: Dockerd,
    name: String,
    host_links: Vec<String>,
    seen: BTreeSet<String>,
    tag: String,
}

impl World {
    fn new(test: &str) -> Option<World> {
        let sandbox = Sandbox::new(test)?;
        let docker = Dockerd::start(test)?;
        docker.import_busybox(IMAGE);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:05}{n}", std::process::id() % 100_000);
        let mut w = World {
            sandbox,
            dir: tempfile::tempdir().unwrap(),
            plugin: None,
            daemon: None,
            docker,
            name: format!("l2sw-t{tag}"),
            host_links: Vec::new(),
            seen: BTreeSet::new(),
            tag,
        };
        w.start_daemon();
        w.start_plugin();
        Some(w)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    fn plugin_socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/docker/plugins/{}.sock", self.name))
    }

    fn start_daemon(&mut self) {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "daemon_child", "--ignored", "--nocapture"])
            .env("L2SW_CHILD_DAEMON", self.socket())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.daemon = Some(Killed(child));
        let s = self.socket();
        wait_for("the l2sw daemon", || UnixStream::connect(&s).is_ok());
    }

    /// SIGKILL: the daemon leaves everything as it was.
    fn kill_daemon(&mut self) {
        self.daemon = None;
    }

    fn start_plugin(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("plugin.log"))
            .unwrap();
        let child = self
            .ctl()
            .command(&["plugin", "docker", "--name", &self.name])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.plugin = Some(Killed(child));
        let s = self.plugin_socket();
        wait_for("the plugin's socket", || UnixStream::connect(&s).is_ok());
    }

    /// SIGTERM, as a service manager stops it: it must remove its socket.
    fn stop_plugin(&mut self) {
        let Some(mut p) = self.plugin.take() else {
            return;
        };
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        unsafe {
            libc::kill(p.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = p.0.wait().unwrap();
        assert!(status.success(), "the plugin stops cleanly: {status}");
        assert!(
            !self.plugin_socket().exists(),
            "the plugin removed its socket"
        );
    }

    fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("plugin.log")).unwrap_or_default()
    }

    /// l2ctl on this test's daemon and state, in the host namespace (dockerd's).
    fn ctl(&self) -> L2ctl {
        L2ctl::new(env!("CARGO_BIN_EXE_l2ctl"), self.dir.path(), None)
    }

    fn l2ok(&self, args: &[&str]) -> String {
        self.ctl().ok(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.docker.ok(args)
    }

    /// `docker network create -d PLUGIN ARGS NAME`; returns the l2ctl network's name.
    fn network(&mut self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["network", "create", "-d", &self.name];
        all.extend_from_slice(args);
        all.push(name);
        let id = self.ok(&all);
        self.remember();
        format!("docker-{}", &id[..12])
    }

    /// `docker network create -d PLUGIN ARGS NAME` must fail; returns Docker's error, after
    /// checking nothing was left: no Docker network, no l2ctl network.
    fn refused(&self, name: &str, args: &[&str]) -> String {
        let before = self.l2ok(&["network", "ls"]);
        let mut all = vec!["network", "create", "-d", &self.name];
        all.extend_from_slice(args);
        all.push(name);
        let err = self.docker.fails(&all);
        assert!(
            !self
                .ok(&["network", "ls", "--format", "{{.Name}}"])
                .lines()
                .any(|l| l == name),
            "docker network {name} was left"
        );
        assert_eq!(self.l2ok(&["network", "ls"]), before, "l2ctl state changed");
        err
    }

    /// `docker run -d --name NAME --network NET ARGS IMAGE sleep 600`.
    fn run(&mut self, name: &str, net: &str, args: &[&str]) {
        let mut all = vec!["run", "-d", "--name", name, "--network", net];
        all.extend_from_slice(args);
        all.extend_from_slice(&[IMAGE, "sleep", "600"]);
        self.ok(&all);
        self.remember();
    }

    /// Container `c`'s address on Docker network `net`.
    fn ip(&self, c: &str, net: &str) -> String {
        self.ok(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            c,
        ])
    }

    /// Container `c`'s MAC on Docker network `net`, from inside the container.
    fn mac(&self, c: &str, iface: &str) -> String {
        self.ok(&["exec", c, "cat", &format!("/sys/class/net/{iface}/address")])
    }

    /// Container `c`'s l2ctl workload on Docker network `net`.
    fn workload(&self, c: &str, net: &str) -> String {
        let ep = self.ok(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").EndpointID}}}}"),
            c,
        ]);
        format!("d-{}", &ep[..12])
    }

    /// Whether `docker exec c ping -c1 -W2 ip` gets an answer.
    fn pings(&self, c: &str, ip: &str) -> bool {
        (0..PING_TRIES).any(|_| {
            self.docker
                .docker(&["exec", c, "ping", "-c1", "-W2", ip])
                .status
                .success()
        })
    }

    /// Whether a ping from namespace `ns` (`None`: the host) gets an answer.
    fn ns_pings(&self, ns: Option<&str>, ip: &str) -> bool {
        (0..PING_TRIES).any(|_| {
            let mut cmd = match ns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, "busybox"]);
                    c
                }
                None => Command::new("busybox"),
            };
            cmd.args(["ping", "-c1", "-W2", ip])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        })
    }

    /// Every link name l2ctl's state holds now, kept to check they are gone at the end.
    fn remember(&mut self) {
        let Ok(text) = std::fs::read_to_string(self.dir.path().join("state/state.json")) else {
            return;
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        fn walk(v: &Value, out: &mut BTreeSet<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if let (true, Some(s)) = (
                            matches!(k.as_str(), "peer" | "interface" | "host_port"),
                            x.as_str(),
                        ) && s.starts_with("l2")
                            && s != "l2sw0"
                        {
                            out.insert(s.to_owned());
                        }
                        walk(x, out);
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&v, &mut self.seen);
    }

    /// A parent for macvlan/ipvlan networks: veth `l2p<tag><short>` in the host namespace,
    /// its far end `eth0` in a LAN namespace with a station at `station/24`, or (hairpin
    /// `Some`) on a kernel bridge there with that hairpin setting. Returns (parent, LAN).
    fn parent(&mut self, short: &str, station: &str, hairpin: Option<bool>) -> (String, String) {
        let lan = self.sandbox.netns(&format!("lan{short}"));
        let parent = format!("l2p{}{short}", self.tag);
        l2sw_tests::run(
            "ip",
            &[
                "link", "add", &parent, "type", "veth", "peer", "name", "eth0", "netns", &lan,
            ],
        );
        self.host_links.push(parent.clone());
        l2sw_tests::run("ip", &["link", "set", &parent, "up"]);
        let on = match hairpin {
            Some(h) => {
                self.sandbox
                    .kernel_bridge(&lan, "br0", l2sw::wire::Mac([2, 0, 0, 0, 0xbb, 1]));
                self.sandbox.enslave(&lan, "eth0", "br0", h, false);
                "br0"
            }
            None => "eth0",
        };
        self.sandbox.ip(&lan, &["link", "set", "eth0", "up"]);
        self.sandbox
            .ip(&lan, &["addr", "add", &format!("{station}/24"), "dev", on]);
        (parent, lan)
    }

    /// Removes every container and network, then checks nothing is left: no l2ctl network or
    /// workload, no daemon network, no link l2ctl's state ever named.
    fn remove_all_and_check(&mut self) {
        self.remember();
        let cs = self.ok(&["ps", "-aq"]);
        for c in cs.lines() {
            self.ok(&["rm", "-f", c]);
        }
        let nets = self.ok(&["network", "ls", "-q", "--filter", "type=custom"]);
        for n in nets.lines() {
            self.ok(&["network", "rm", n]);
        }
        let ls = self.l2ok(&["network", "ls"]);
        assert!(!ls.contains("docker-"), "l2ctl networks left:\n{ls}");
        let ps: Value = serde_json::from_str(&self.l2ok(&["ps", "--json"])).unwrap();
        assert!(!ps.to_string().contains("\"d-"), "workloads left: {ps:#}");
        let daemon = Client::new(self.socket()).networks().unwrap();
        assert!(
            daemon.iter().all(|n| !n.name.starts_with("docker-")),
            "daemon networks left: {:?}",
            daemon.iter().map(|n| &n.name).collect::<Vec<_>>()
        );
        let host: BTreeSet<String> = Links::new(None).names().unwrap().into_iter().collect();
        let left: Vec<_> = self
            .seen
            .intersection(&host)
            .filter(|l| !self.host_links.contains(l))
            .collect();
        assert!(
            left.is_empty(),
            "links left in the host namespace: {left:?}"
        );
        assert!(!self.seen.is_empty(), "the state named links");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("plugin log:\n{}", self.plugin_log());
        }
        // Containers first, while the plugin still answers, so the links go the usual way.
        if let Ok(out) = Command::new("docker")
            .args([
                "-H",
                &format!("unix://{}/docker.sock", self.docker.dir().display()),
            ])
            .args(["ps", "-aq"])
            .output()
        {
            for c in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.docker.docker(&["rm", "-f", c]);
            }
        }
        if let Some(p) = &self.plugin {
            // SAFETY: kill(2) on a child this test spawned and has not reaped.
            unsafe {
                libc::kill(p.0.id() as libc::pid_t, libc::SIGTERM);
            }
            let s = self.plugin_socket();
            let start = Instant::now();
            while s.exists() && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.plugin = None;
        let _ = std::fs::remove_file(self.plugin_socket());
        let host = Links::new(None);
        for l in self.host_links.iter().chain(&self.seen) {
            let _ = host.delete(l);
        }
    }
}

#[test]
fn docker_bridge_networks_containers_restarts_and_bad_input() {
    let _one = ONE_DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut w) = World::new("docker-bridge") else {
        return;
    };

    // Bad input reaches the user through docker's error, and leaves nothing.
    let err = w.refused("bad1", &["--subnet", "10.241.9.0/24", "-o", "colour=blue"]);
    assert!(err.contains("unknown option -o colour"), "{err}");
    let err = w.refused(
        "bad2",
        &[
            "--subnet",
            "10.241.9.0/24",
            "-o",
            "type=macvlan",
            "-o",
            "parent=nosuchif0",
        ],
    );
    assert!(
        err.contains("nosuchif0") && err.contains("does not exist"),
        "{err}"
    );
    let err = w.refused(
        "bad3",
        &[
            "--subnet",
            "10.241.9.0/24",
            "-o",
            "type=macvlan",
            "-o",
            "macvlan_mode=vepa",
        ],
    );
    assert!(err.contains("needs -o parent"), "{err}");
    let err = w.refused(
        "bad4",
        &[
            "--subnet",
            "10.241.9.0/24",
            "-o",
            "type=ipvlan",
            "-o",
            "ipvlan_mode=l3",
        ],
    );
    assert!(err.contains("ipvlan_mode=l3"), "{err}");

    // A bridge network with Docker's IPAM: subnet, gateway, ip-range, aux address.
    let front = w.network(
        "front",
        &[
            "--subnet",
            "10.241.0.0/24",
            "--gateway",
            "10.241.0.1",
            "--ip-range",
            "10.241.0.128/25",
            "--aux-address",
            "router=10.241.0.130",
            // The host is the machine's own: no NAT table or forwarding switched on there.
            "-o",
            "masquerade=false",
        ],
    );
    assert!(w.l2ok(&["network", "ls"]).contains(&front));
    let err = w.refused("bad5", &["--subnet", "10.241.0.0/16"]);
    assert!(err.contains("overlaps"), "{err}");

    w.run("ca", "front", &[]);
    w.run("cb", "front", &["--ip", "10.241.0.20"]);
    let (ip_a, ip_b) = (w.ip("ca", "front"), w.ip("cb", "front"));
    assert_eq!(
        ip_a, "10.241.0.128",
        "the first of --ip-range (.130 is aux)"
    );
    assert_eq!(ip_b, "10.241.0.20");
    let inside = w.ok(&["exec", "cb", "ip", "-o", "addr", "show", "eth0"]);
    assert!(inside.contains("10.241.0.20/24"), "{inside}");
    let route = w.ok(&["exec", "ca", "ip", "route"]);
    assert!(route.contains("default via 10.241.0.1"), "{route}");
    assert!(w.pings("ca", &ip_b) && w.pings("cb", &ip_a));
    assert!(
        w.ns_pings(None, &ip_a),
        "the host reaches a through the gateway port"
    );

    // l2ctl sees them: workloads, the FDB, the counters.
    let (wa, wb) = (w.workload("ca", "front"), w.workload("cb", "front"));
    let ps = w.l2ok(&["ps"]);
    assert!(ps.contains(&wa) && ps.contains(&wb), "{ps}");
    let (mac_a, mac_b) = (w.mac("ca", "eth0"), w.mac("cb", "eth0"));
    let fdb = w.l2ok(&["fdb", &front]);
    assert!(fdb.contains(&mac_a) && fdb.contains(&mac_b), "{fdb}");
    assert!(fdb.contains(&wa) && fdb.contains(&wb), "{fdb}");
    let stats = w.l2ok(&["stats", &front]);
    assert!(stats.contains(&wa) && stats.contains(&wb), "{stats}");

    // One container on two l2sw networks: connect, then disconnect.
    // Dual stack: Docker's IPv6 pool and addresses too.
    let back = w.network(
        "back",
        &[
            "--ipv6",
            "--subnet",
            "10.242.0.0/24",
            "--subnet",
            "fd00:242::/64",
            "-o",
            "masquerade=false",
        ],
    );
    w.run("cc", "back", &[]);
    w.ok(&["network", "connect", "back", "ca"]);
    w.remember();
    let ip_c = w.ip("cc", "back");
    assert!(w.pings("ca", &ip_c), "a reaches c on back");
    let ip6_c = w.ok(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"back\").GlobalIPv6Address}}",
        "cc",
    ]);
    assert!(ip6_c.starts_with("fd00:242::"), "{ip6_c:?}");
    let inside = w.ok(&["exec", "cc", "ip", "-o", "-6", "addr", "show", "eth0"]);
    assert!(inside.contains(&format!("{ip6_c}/64")), "{inside}");
    let l2_back: Value = serde_json::from_str(&w.l2ok(&["network", "inspect", &back])).unwrap();
    assert!(
        l2_back.to_string().contains("fd00:242::/64"),
        "l2ctl has Docker's IPv6 pool: {l2_back}"
    );
    // Duplicate address detection first: wait for the address to answer.
    wait_for("IPv6 between a and c", || w.pings("ca", &ip6_c));
    let wa2 = w.workload("ca", "back");
    assert!(w.l2ok(&["fdb", &back]).contains(&w.mac("ca", "eth1")));
    w.ok(&["network", "disconnect", "back", "ca"]);
    let links = w.ok(&["exec", "ca", "ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    assert!(
        !w.l2ok(&["ps"]).contains(&wa2),
        "the endpoint's workload went"
    );

    // Stop and start: the endpoint goes and comes back with the same address.
    w.ok(&["stop", "-t", "1", "cb"]);
    assert!(!w.l2ok(&["ps"]).contains(&wb));
    assert!(!w.pings("ca", &ip_b));
    w.ok(&["start", "cb"]);
    w.remember();
    assert_eq!(w.ip("cb", "front"), ip_b);
    assert!(w.pings("ca", &ip_b));
    // Kill and rm.
    w.ok(&["kill", "cb"]);
    wait_for("b's endpoint to go", || !w.l2ok(&["ps"]).contains(&wb));
    w.ok(&["rm", "cb"]);
    w.run("cd", "front", &[]);
    let ip_d = w.ip("cd", "front");
    assert!(w.pings("ca", &ip_d));

    // The daemon killed with SIGKILL: nothing forwards; a new one and `l2ctl sync` bring it all
    // back.
    w.kill_daemon();
    assert!(!w.pings("ca", &ip_d), "nothing forwards without the daemon");
    w.start_daemon();
    let synced = w.l2ok(&["sync"]);
    assert!(
        synced.contains(&front) && synced.contains(&back),
        "{synced}"
    );
    assert!(w.pings("ca", &ip_d), "traffic flows again after sync");

    // The plugin restarted while containers run: nothing lost, Docker carries on.
    let before = w.l2ok(&["ps"]);
    w.stop_plugin();
    w.start_plugin();
    assert_eq!(w.l2ok(&["ps"]), before);
    assert!(w.pings("cd", &ip_a));
    w.ok(&["rm", "-f", "cd"]);
    w.run("ce", "front", &[]);
    assert!(w.pings("ce", &ip_a));

    w.remove_all_and_check();
}

#[test]
fn docker_macvlan_and_ipvlan_networks_keep_their_modes() {
    let _one = ONE_DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut w) = World::new("docker-vlan") else {
        return;
    };
    // (docker network, options, subnet third octet, x↔y expected)
    let modes: &[(&str, &[&str], u8, bool)] = &[
        (
            "mv-bridge",
            &["-o", "type=macvlan", "-o", "macvlan_mode=bridge"],
            1,
            true,
        ),
        (
            "mv-private",
            &["-o", "type=macvlan", "-o", "macvlan_mode=private"],
            2,
            false,
        ),
        (
            "iv-l2",
            &["-o", "type=ipvlan", "-o", "ipvlan_mode=l2"],
            3,
            true,
        ),
        (
            "iv-private",
            &[
                "-o",
                "type=ipvlan",
                "-o",
                "ipvlan_mode=l2",
                "-o",
                "ipvlan_flag=private",
            ],
            4,
            false,
        ),
    ];
    for (i, (net, opts, octet, peers)) in modes.iter().enumerate() {
        let station = format!("10.243.{octet}.200");
        let (parent, lan) = w.parent(&i.to_string(), &station, None);
        let subnet = format!("10.243.{octet}.0/24");
        let aux = format!("station={station}");
        let parent_opt = format!("parent={parent}");
        let mut args: Vec<&str> = vec![
            "--subnet",
            &subnet,
            "--aux-address",
            &aux,
            "-o",
            &parent_opt,
        ];
        args.extend_from_slice(opts);
        let l2net = w.network(net, &args);
        let (x, y) = (format!("{net}-x"), format!("{net}-y"));
        w.run(&x, net, &[]);
        w.run(&y, net, &[]);
        let (ip_x, ip_y) = (w.ip(&x, net), w.ip(&y, net));
        assert_eq!(w.pings(&x, &ip_y), *peers, "{net}: x to y");
        assert_eq!(w.pings(&y, &ip_x), *peers, "{net}: y to x");
        assert!(w.pings(&x, &station), "{net}: x reaches the station");
        assert!(
            w.ns_pings(Some(&lan), &ip_y),
            "{net}: the station reaches y"
        );
        let stats = w.l2ok(&["stats", &l2net]);
        assert!(stats.contains(&w.workload(&x, net)), "{stats}");
        if net.starts_with("iv") {
            let parent_mac = Links::new(None).mac(&parent).unwrap().to_string();
            assert_eq!(
                w.mac(&x, "eth0"),
                parent_mac,
                "ipvlan shares the parent's MAC"
            );
            assert_eq!(w.mac(&y, "eth0"), parent_mac);
        } else {
            assert!(stats.contains(&w.workload(&y, net)), "{stats}");
            assert!(
                stats.contains(&parent),
                "the parent is the uplink port: {stats}"
            );
        }
    }

    // VEPA: neighbours meet only through a hairpinning upstream.
    let (parent, lan) = w.parent("v", "10.243.5.200", Some(false));
    let parent_opt = format!("parent={parent}");
    w.network(
        "mv-vepa",
        &[
            "--subnet",
            "10.243.5.0/24",
            "--aux-address",
            "station=10.243.5.200",
            "-o",
            "type=macvlan",
            "-o",
            "macvlan_mode=vepa",
            "-o",
            &parent_opt,
        ],
    );
    w.run("vx", "mv-vepa", &[]);
    w.run("vy", "mv-vepa", &[]);
    let ip_vy = w.ip("vy", "mv-vepa");
    assert!(w.pings("vx", "10.243.5.200"));
    assert!(
        !w.pings("vx", &ip_vy),
        "vepa without hairpin: no way between neighbours"
    );
    w.sandbox
        .links(&lan)
        .set_bridge_port("eth0", true, false)
        .unwrap();
    assert!(w.pings("vx", &ip_vy), "vepa with a hairpinning upstream");

    // Passthru: one endpoint, with the parent's MAC.
    let (parent, _lan) = w.parent("p", "10.243.6.200", None);
    let parent_opt = format!("parent={parent}");
    w.network(
        "mv-pass",
        &[
            "--subnet",
            "10.243.6.0/24",
            "--aux-address",
            "station=10.243.6.200",
            "-o",
            "type=macvlan",
            "-o",
            "macvlan_mode=passthru",
            "-o",
            &parent_opt,
        ],
    );
    w.run("px", "mv-pass", &[]);
    assert!(w.pings("px", "10.243.6.200"));
    let err = w.docker.fails(&[
        "run",
        "-d",
        "--name",
        "py",
        "--network",
        "mv-pass",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(err.contains("passthru"), "{err}");

    // Source: an endpoint receives what comes from the sources listed for it
    // (`driver-opt=source_mac=…`), and nothing from others.
    let (parent, lan) = w.parent("s", "10.243.7.200", None);
    let station_mac = w.sandbox.links(&lan).mac("eth0").unwrap().to_string();
    let parent_opt = format!("parent={parent}");
    w.network(
        "mv-source",
        &[
            "--subnet",
            "10.243.7.0/24",
            "--aux-address",
            "station=10.243.7.200",
            "-o",
            "type=macvlan",
            "-o",
            "macvlan_mode=source",
            "-o",
            &parent_opt,
        ],
    );
    let listed = format!("name=mv-source,driver-opt=source_mac={station_mac}");
    w.ok(&[
        "run",
        "-d",
        "--name",
        "sx",
        "--network",
        &listed,
        IMAGE,
        "sleep",
        "600",
    ]);
    w.run("sy", "mv-source", &[]);
    w.remember();
    let (ip_sx, ip_sy) = (w.ip("sx", "mv-source"), w.ip("sy", "mv-source"));
    assert!(
        w.ns_pings(Some(&lan), &ip_sx),
        "source mode: a listed source gets through"
    );
    assert!(
        !w.ns_pings(Some(&lan), &ip_sy),
        "source mode: an unlisted one does not"
    );

    w.remove_all_and_check();
}

#[test]
fn docker_macvlan_side_by_side_with_dockers_own() {
    let _one = ONE_DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut w) = World::new("docker-side") else {
        return;
    };
    let (pk, lan_k) = w.parent("k", "10.244.1.200", None);
    let (pl, lan_l) = w.parent("l", "10.244.2.200", None);
    // The host has an address on each parent: neither kernel macvlan nor l2sw lets it reach
    // its own macvlan containers that way.
    l2sw_tests::run("ip", &["addr", "add", "10.244.1.254/24", "dev", &pk]);
    l2sw_tests::run("ip", &["addr", "add", "10.244.2.254/24", "dev", &pl]);
    let common = |octet: u8, parent: &str| -> Vec<String> {
        vec![
            "--subnet".into(),
            format!("10.244.{octet}.0/24"),
            "--aux-address".into(),
            format!("station=10.244.{octet}.200"),
            "--aux-address".into(),
            format!("host=10.244.{octet}.254"),
            "-o".into(),
            "macvlan_mode=bridge".into(),
            "-o".into(),
            format!("parent={parent}"),
        ]
    };
    let kargs = common(1, &pk);
    let mut all = vec!["network", "create", "-d", "macvlan"];
    all.extend(kargs.iter().map(String::as_str));
    all.push("kernel");
    w.ok(&all);
    let mut largs = common(2, &pl);
    largs.extend(["-o".into(), "type=macvlan".into()]);
    let largs: Vec<&str> = largs.iter().map(String::as_str).collect();
    w.network("l2sw", &largs);

    let reach = |w: &mut World, net: &str, octet: u8, lan: &str| -> Vec<(String, bool)> {
        let (x, y) = (format!("{net}-x"), format!("{net}-y"));
        w.run(&x, net, &[]);
        w.run(&y, net, &[]);
        let (ip_x, ip_y) = (w.ip(&x, net), w.ip(&y, net));
        let station = format!("10.244.{octet}.200");
        vec![
            ("x to y".into(), w.pings(&x, &ip_y)),
            ("y to x".into(), w.pings(&y, &ip_x)),
            ("x to station".into(), w.pings(&x, &station)),
            ("station to y".into(), w.ns_pings(Some(lan), &ip_y)),
            ("host to x".into(), w.ns_pings(None, &ip_x)),
        ]
    };
    let kernel = reach(&mut w, "kernel", 1, &lan_k);
    let l2sw = reach(&mut w, "l2sw", 2, &lan_l);
    assert_eq!(
        l2sw, kernel,
        "l2sw's macvlan (left) and the kernel's (right)"
    );
    let expected: Vec<bool> = vec![true, true, true, true, false];
    assert_eq!(
        kernel.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
        expected,
        "{kernel:?}"
    );

    w.remove_all_and_check();
}
