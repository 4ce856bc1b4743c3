//! l2sw's CNI plugin driven as a runtime drives it: the built l2ctl exec'd through a symlink
//! named `l2sw` (its type), with the CNI_* variables and the network configuration on stdin,
//! against namespaces the test makes, on a daemon of its own (the l2sw library's, on the
//! test's socket) with a throw-away namespace playing the host. Then podman (its CNI
//! backend, private roots) runs two containers on an l2sw network. Every test uses its own
//! state directory, daemon and namespaces, removed when it ends, also when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use l2sw_control::adapters::cni::CniResult;
use l2sw_control::client::Client;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl::{self, Links};
use l2sw_control::state::{State, Store};
use l2sw_tests::Sandbox;
use serde_json::{Value, json};

/// One test's world: a host namespace, a daemon, a state directory, a plugin directory.
struct Lab {
    sandbox: Sandbox,
    host: String,
    dir: tempfile::TempDir,
    daemon: Option<EmbeddedDaemon>,
}

/// What one plugin run printed.
#[derive(Debug)]
struct Ran {
    ok: bool,
    out: Value,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        let mut sandbox = Sandbox::new(test)?;
        let host = sandbox.netns("host");
        let dir = tempfile::tempdir().unwrap();
        let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_l2ctl"), plugins.join("l2sw")).unwrap();
        Some(Lab {
            sandbox,
            host,
            dir,
            daemon,
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// A namespace for a "container", and its namespace file.
    fn container(&mut self, short: &str) -> (String, String) {
        let ns = self.sandbox.netns(short);
        let path = format!("/run/netns/{ns}");
        (ns, path)
    }

    /// A configuration for l2sw network `network` on this lab's daemon and state, with
    /// `extra` keys added.
    fn conf(&self, network: &str, extra: Value) -> Value {
        let mut c = json!({
            "cniVersion": "1.0.0",
            "name": network,
            "type": "l2sw",
            "stateDir": self.state_dir(),
            "socket": self.socket(),
            "hostNetns": self.host,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// Runs the plugin as a runtime does: `CNI_PATH/l2sw` with the CNI_* variables and the
    /// configuration on stdin.
    fn cni(&self, command: &str, conf: &[u8], id: &str, netns: Option<&str>, ifname: &str) -> Ran {
        let mut cmd = Command::new(self.plugins().join("l2sw"));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_IFNAME", ifname)
            .env(
                "CNI_PATH",
                format!("{}:/usr/lib/cni", self.plugins().display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ns) = netns {
            cmd.env("CNI_NETNS", ns);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(conf).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!(
                    "{command}: stdout is not JSON ({e}): {text}\nstderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        };
        if !out.status.success() {
            eprintln!("{command} {id}: {value}");
        }
        Ran {
            ok: out.status.success(),
            out: value,
        }
    }

    /// Runs the plugin; it must succeed.
    fn ok(
        &self,
        command: &str,
        conf: &Value,
        id: &str,
        netns: Option<&str>,
        ifname: &str,
    ) -> Value {
        let r = self.cni(command, conf.to_string().as_bytes(), id, netns, ifname);
        assert!(r.ok, "{command} {id} failed: {}", r.out);
        r.out
    }

    /// Runs the plugin; it must fail with a CNI error object of `code`.
    fn fails(
        &self,
        command: &str,
        conf: &[u8],
        id: &str,
        netns: Option<&str>,
        ifname: &str,
        code: u64,
    ) {
        let r = self.cni(command, conf, id, netns, ifname);
        assert!(!r.ok, "{command} {id} should have failed: {}", r.out);
        assert_eq!(r.out["code"], code, "{}", r.out);
        assert!(
            r.out["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            r.out
        );
        assert!(r.out["cniVersion"].is_string(), "{}", r.out);
    }

    fn state(&self) -> State {
        Store::peek(&self.state_dir())
            .unwrap()
            .unwrap_or_else(|| State::new(None))
    }

    fn l2ctl(&self, args: &[&str]) -> String {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(["--host-netns", &self.host])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "l2ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The switch-side links l2ctl made in the host namespace (veth ends, `l2v-…`).
    fn switch_links(&self) -> Vec<String> {
        Links::new(Some(&self.host))
            .names()
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with("l2v-"))
            .collect()
    }

    /// The daemon's ports on `network`, but the host's.
    fn ports(&self, network: &str) -> Vec<String> {
        Client::new(self.socket())
            .networks()
            .unwrap()
            .into_iter()
            .filter(|n| n.name == network)
            .flat_map(|n| n.ports.into_iter().map(|p| p.name))
            .filter(|p| p != "host")
            .collect()
    }
}

/// Whether `ns` pings `ip` within a few seconds (the first ARP may take a moment).
fn pings(ns: &str, ip: IpAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-c1", "-W1", &ip.to_string()])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return true;
        }
    }
    false
}

fn result(v: Value) -> CniResult {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not a CNI result ({e}): {v}"))
}

/// The container's address from an ADD result.
fn address(r: &CniResult) -> IpAddr {
    r.ips[0].address.addr()
}

#[test]
fn add_check_del_connect_two_namespaces() {
    let Some(mut lab) = Lab::new("cni-add") else {
        return;
    };
    let (c1, p1) = lab.container("c1");
    let (c2, p2) = lab.container("c2");
    let conf = lab.conf("cninet", json!({"create": {"subnet": ["10.201.0.0/24"]}}));

    let r1 = result(lab.ok("ADD", &conf, "aaaa1111bbbb2222", Some(&p1), "eth0"));
    // In a chain, an earlier plugin's interfaces come first and keep their places.
    let mut chained = conf.clone();
    chained["prevResult"] = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "earlier0"}]});
    let r2 = result(lab.ok("ADD", &chained, "cccc3333dddd4444", Some(&p2), "eth0"));
    assert_eq!(r2.interfaces[0].name, "earlier0");
    assert_eq!(r2.interfaces[2].name, "eth0");
    assert_eq!(r2.ips[0].interface, Some(2));
    assert_eq!(r1.cni_version, "1.0.0");
    // The switch's end in the host namespace, then the container's interface in its own.
    assert_eq!(r1.interfaces.len(), 2, "{r1:?}");
    assert!(r1.interfaces[0].name.starts_with("l2v-") && r1.interfaces[0].sandbox.is_empty());
    assert_eq!(
        (
            r1.interfaces[1].name.as_str(),
            r1.interfaces[1].sandbox.as_str()
        ),
        ("eth0", p1.as_str())
    );
    assert_eq!(r1.ips[0].interface, Some(1));
    assert_eq!(r1.ips[0].address.to_string(), "10.201.0.2/24");
    assert_eq!(r1.ips[0].gateway, Some("10.201.0.1".parse().unwrap()));
    assert_eq!(r1.routes[0].dst.to_string(), "0.0.0.0/0");
    // In the namespace: the interface, its MAC and address.
    let inside = Links::new(Some(&c1));
    assert_eq!(
        inside.mac("eth0").unwrap().to_string(),
        r1.interfaces[1].mac
    );
    assert!(
        inside
            .addresses("eth0")
            .unwrap()
            .contains(&r1.ips[0].address)
    );

    // Through l2sw, seen by l2ctl.
    assert!(pings(&c1, address(&r2)), "c1 cannot ping c2");
    assert!(pings(&c2, address(&r1)), "c2 cannot ping c1");
    let fdb = lab.l2ctl(&["fdb", "cninet"]);
    for r in [&r1, &r2] {
        // The container's interface: the last one.
        let mac = &r.interfaces.last().unwrap().mac;
        assert!(fdb.contains(mac), "{fdb}");
    }
    let stats = lab.l2ctl(&["stats", "cninet"]);
    assert!(
        stats.contains("cni-aaaa1111bbbb-eth0") && stats.contains("cni-cccc3333dddd-eth0"),
        "{stats}"
    );

    // CHECK against the ADD's result; a result that says otherwise fails.
    let mut checked = conf.clone();
    checked["prevResult"] = serde_json::to_value(&r1).unwrap();
    assert_eq!(
        lab.ok("CHECK", &checked, "aaaa1111bbbb2222", Some(&p1), "eth0"),
        Value::Null
    );
    let mut wrong = checked.clone();
    wrong["prevResult"]["ips"][0]["address"] = json!("10.201.0.99/24");
    lab.fails(
        "CHECK",
        wrong.to_string().as_bytes(),
        "aaaa1111bbbb2222",
        Some(&p1),
        "eth0",
        105,
    );
    // CHECK without a previous result is a configuration error.
    lab.fails(
        "CHECK",
        conf.to_string().as_bytes(),
        "aaaa1111bbbb2222",
        Some(&p1),
        "eth0",
        7,
    );
    // The same attachment twice: refused, nothing changes.
    let before = lab.state();
    lab.fails(
        "ADD",
        conf.to_string().as_bytes(),
        "aaaa1111bbbb2222",
        Some(&p1),
        "eth0",
        100,
    );
    assert_eq!(lab.state(), before);

    // DEL, and DEL again.
    assert_eq!(
        lab.ok("DEL", &checked, "aaaa1111bbbb2222", Some(&p1), "eth0"),
        Value::Null
    );
    assert!(!inside.exists("eth0").unwrap());
    lab.ok("DEL", &checked, "aaaa1111bbbb2222", Some(&p1), "eth0");
    lab.ok("DEL", &conf, "cccc3333dddd4444", Some(&p2), "eth0");
    lab.ok("DEL", &conf, "cccc3333dddd4444", Some(&p2), "eth0");
    let state = lab.state();
    assert!(state.workloads.is_empty(), "{:?}", state.workloads);
    assert_eq!(state.networks["cninet"].pools[0].allocated().count(), 0);
    assert!(lab.switch_links().is_empty(), "{:?}", lab.switch_links());
    assert!(lab.ports("cninet").is_empty(), "{:?}", lab.ports("cninet"));
    // The namespaces are the runtime's: still there.
    assert!(nl::netns_exists(&p1) && nl::netns_exists(&p2));
}

#[test]
fn del_succeeds_when_the_namespace_or_the_daemon_is_gone() {
    let Some(mut lab) = Lab::new("cni-gone") else {
        return;
    };
    let (c1, p1) = lab.container("c1");
    let (_c2, p2) = lab.container("c2");
    let (_c3, p3) = lab.container("c3");
    // Spec 0.4.0: the result says each address's version.
    let conf = lab.conf(
        "gonenet",
        json!({"cniVersion": "0.4.0", "create": {"subnet": ["10.202.0.0/24"]}}),
    );
    let r = lab.ok("ADD", &conf, "111111111111aaaa", Some(&p1), "eth0");
    assert_eq!(
        (r["cniVersion"].as_str(), r["ips"][0]["version"].as_str()),
        (Some("0.4.0"), Some("4"))
    );
    lab.ok("ADD", &conf, "222222222222bbbb", Some(&p2), "net1");

    // The runtime deleted the namespace first.
    nl::netns_delete(&c1).unwrap();
    lab.ok("DEL", &conf, "111111111111aaaa", Some(&p1), "eth0");
    lab.ok("DEL", &conf, "111111111111aaaa", None, "eth0");
    assert_eq!(lab.state().workloads.len(), 1);
    assert_eq!(lab.ports("gonenet").len(), 1);

    // The daemon is down: ADD is "try again later" and leaves nothing; DEL still frees it.
    lab.daemon.take().unwrap().stop();
    let before = lab.state();
    lab.fails(
        "ADD",
        conf.to_string().as_bytes(),
        "333333333333cccc",
        Some(&p3),
        "eth0",
        11,
    );
    assert_eq!(lab.state(), before);
    lab.ok("DEL", &conf, "222222222222bbbb", Some(&p2), "net1");
    let state = lab.state();
    assert!(state.workloads.is_empty(), "{:?}", state.workloads);
    assert_eq!(state.networks["gonenet"].pools[0].allocated().count(), 0);
    assert!(lab.switch_links().is_empty(), "{:?}", lab.switch_links());
    assert!(!Links::new(Some(&p2)).exists("net1").unwrap());
}

#[test]
fn concurrent_adds_create_the_network_once() {
    let Some(mut lab) = Lab::new("cni-race") else {
        return;
    };
    let conf = lab.conf("racenet", json!({"create": {"subnet": ["10.207.0.0/24"]}}));
    let spaces: Vec<(String, String)> = (0..4).map(|i| lab.container(&format!("r{i}"))).collect();
    let ids: Vec<String> = (0..4).map(|i| format!("race{i}race{i}race{i}")).collect();
    std::thread::scope(|s| {
        for ((_, path), id) in spaces.iter().zip(&ids) {
            let (lab, conf) = (&lab, &conf);
            s.spawn(move || lab.ok("ADD", conf, id, Some(path), "eth0"));
        }
    });
    let state = lab.state();
    assert_eq!(state.workloads.len(), 4);
    let mut ips: Vec<IpAddr> = state
        .workloads
        .values()
        .flat_map(|w| w.endpoints["racenet"].ips.clone())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 4, "an address was handed out twice: {ips:?}");
    assert_eq!(lab.ports("racenet").len(), 4);
    for ((_, path), id) in spaces.iter().zip(&ids) {
        lab.ok("DEL", &conf, id, Some(path), "eth0");
    }
    assert!(lab.state().workloads.is_empty());
    assert!(lab.switch_links().is_empty());
}

#[test]
fn version_and_bad_configurations_leave_nothing_behind() {
    let Some(mut lab) = Lab::new("cni-bad") else {
        return;
    };
    let (_c1, p1) = lab.container("c1");
    let v = lab.cni("VERSION", br#"{"cniVersion":"1.0.0"}"#, "", None, "");
    assert!(v.ok);
    assert_eq!(v.out["cniVersion"], "1.0.0");
    assert!(
        v.out["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("1.0.0"))
    );

    let good = lab.conf("badnet", json!({"create": {"subnet": ["10.204.0.0/24"]}}));
    let with = |extra: Value| {
        let mut c = good.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string().into_bytes()
    };
    // What, the configuration, CNI_NETNS, CNI_IFNAME, the code expected.
    type Case<'a> = (&'a str, Vec<u8>, Option<&'a str>, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            "not JSON",
            b"{\"cniVersion\": ".to_vec(),
            Some(&p1),
            "eth0",
            6,
        ),
        (
            "unknown field",
            with(json!({"ipMasq": true})),
            Some(&p1),
            "eth0",
            2,
        ),
        (
            "old version",
            with(json!({"cniVersion": "0.2.0"})),
            Some(&p1),
            "eth0",
            1,
        ),
        (
            "no such network",
            with(json!({"create": null})),
            Some(&p1),
            "eth0",
            7,
        ),
        (
            "bad parent",
            with(json!({"create": {"driver": "macvlan", "parent": "nosuchif0"}})),
            Some(&p1),
            "eth0",
            7,
        ),
        (
            "bad subnet",
            with(json!({"create": {"subnet": ["10.204.0.1/24"]}})),
            Some(&p1),
            "eth0",
            7,
        ),
        (
            "unknown create option",
            with(json!({"create": {"colour": "red"}})),
            Some(&p1),
            "eth0",
            2,
        ),
        ("no namespace", with(json!({})), None, "eth0", 4),
        (
            "namespace not there",
            with(json!({})),
            Some("/run/netns/no-such-l2sw-cni-ns"),
            "eth0",
            4,
        ),
        (
            "interface name too long",
            with(json!({})),
            Some(&p1),
            "eth0-far-too-long",
            4,
        ),
        (
            "IPAM plugin not found",
            with(json!({"ipam": {"type": "no-such-ipam"}})),
            Some(&p1),
            "eth0",
            7,
        ),
    ];
    for (what, conf, ns, ifname, code) in cases {
        eprintln!("case: {what}");
        lab.fails("ADD", &conf, "badbadbadbad0001", ns, ifname, code);
        let state = lab.state();
        assert!(state.workloads.is_empty(), "{what}: {:?}", state.workloads);
        assert!(
            lab.switch_links().is_empty(),
            "{what}: {:?}",
            lab.switch_links()
        );
        assert!(
            !Links::new(Some(&p1)).exists(ifname).unwrap_or(false),
            "{what}"
        );
    }
    // Only the network whose create was good may exist, without endpoints.
    assert!(
        lab.state()
            .networks
            .keys()
            .all(|n| ["badnet", "bridge", "host", "none"].contains(&n.as_str()))
    );
    assert!(lab.ports("badnet").is_empty());
}

#[test]
fn host_local_ipam_is_delegated_and_released() {
    if !Path::new("/usr/lib/cni/host-local").exists() {
        eprintln!(
            "skipped host_local_ipam_is_delegated_and_released: /usr/lib/cni/host-local missing (containernetworking-plugins)"
        );
        return;
    }
    let Some(mut lab) = Lab::new("cni-ipam") else {
        return;
    };
    let (c1, p1) = lab.container("c1");
    let (c2, p2) = lab.container("c2");
    let data = lab.dir.path().join("host-local");
    // The network takes its subnet from the IPAM section.
    let conf = lab.conf(
        "hlnet",
        json!({
            "create": {},
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.205.0.0/24", "rangeStart": "10.205.0.50"}]],
                "dataDir": data,
            },
        }),
    );
    let leased = |ip: IpAddr| data.join("hlnet").join(ip.to_string()).exists();

    let r1 = result(lab.ok("ADD", &conf, "4444aaaa5555bbbb", Some(&p1), "eth0"));
    let r2 = result(lab.ok("ADD", &conf, "6666cccc7777dddd", Some(&p2), "eth0"));
    let (a1, a2) = (address(&r1), address(&r2));
    assert_eq!(a1.to_string(), "10.205.0.50");
    assert_eq!(a2.to_string(), "10.205.0.51");
    assert!(leased(a1) && leased(a2));
    let state = lab.state();
    assert_eq!(
        state.networks["hlnet"].pools[0].subnet().to_string(),
        "10.205.0.0/24"
    );
    assert!(
        Links::new(Some(&c1))
            .addresses("eth0")
            .unwrap()
            .contains(&r1.ips[0].address)
    );
    assert!(pings(&c1, a2) && pings(&c2, a1));

    // A failed ADD gives its lease back (here: the interface name is taken in the
    // namespace, which only the kernel finds out, after the lease was made).
    let (c3, p3) = lab.container("c3");
    lab.sandbox.ip(
        &c3,
        &["link", "add", "eth0", "type", "veth", "peer", "name", "x0"],
    );
    lab.fails(
        "ADD",
        conf.to_string().as_bytes(),
        "8888eeee9999ffff",
        Some(&p3),
        "eth0",
        104,
    );
    assert!(lab.state().workloads.len() == 2 && lab.switch_links().len() == 2);
    assert!(!data.join("hlnet").join("10.205.0.52").exists());

    lab.ok("DEL", &conf, "4444aaaa5555bbbb", Some(&p1), "eth0");
    assert!(!leased(a1) && leased(a2));
    lab.ok("DEL", &conf, "6666cccc7777dddd", Some(&p2), "eth0");
    lab.ok("DEL", &conf, "6666cccc7777dddd", Some(&p2), "eth0");
    assert!(!leased(a2));
    assert!(lab.state().workloads.is_empty());
    assert!(lab.switch_links().is_empty());
}

/// A podman of the test's own: private root, run root, tmpdir and network configuration
/// directory, its CNI backend finding `l2sw` in the lab's plugin directory (Debian's podman
/// 4.3 reads the backend and the plugin directories from containers.conf, which
/// `CONTAINERS_CONF` points at). Removes its containers and data when dropped.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new(lab: &Lab, network_conf: &Value) -> Option<Podman> {
        let found = Command::new("podman")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("skipped: podman is not installed (Debian's podman)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let netd = dir.path().join("net.d");
        std::fs::create_dir(&netd).unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            format!(
                "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{}\"\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
                lab.plugins().display(),
                netd.display()
            ),
        )
        .unwrap();
        let list = json!({
            "cniVersion": "1.0.0",
            "name": network_conf["name"],
            "plugins": [network_conf],
        });
        std::fs::write(netd.join("l2sw.conflist"), list.to_string()).unwrap();
        Some(Podman { dir })
    }

    fn run(&self, args: &[&str]) -> Output {
        let p = |sub: &str| self.dir.path().join(sub);
        Command::new("timeout")
            .arg("120")
            .arg("podman")
            .env("CONTAINERS_CONF", p("containers.conf"))
            .arg("--root")
            .arg(p("root"))
            .arg("--runroot")
            .arg(p("runroot"))
            .arg("--tmpdir")
            .arg(p("tmp"))
            .arg("--network-config-dir")
            .arg(p("net.d"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        let _ = self.run(&["system", "reset", "-f"]);
    }
}

#[test]
fn podman_runs_two_containers_on_an_l2sw_network() {
    let Some(lab) = Lab::new("cni-podman") else {
        return;
    };
    let conf = lab.conf("pmnet", json!({"create": {"subnet": ["10.206.0.0/24"]}}));
    let Some(podman) = Podman::new(&lab, &conf) else {
        return;
    };
    let tar = match l2sw_tests::rootfs::busybox_tar(&podman.dir.path().join("rootfs")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("skipped podman_runs_two_containers_on_an_l2sw_network: {e}");
            return;
        }
    };
    let image = "localhost/l2sw-busybox:cni";
    podman.ok(&["import", &tar.display().to_string(), image]);
    let run = |name: &str| {
        podman.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "pmnet",
            // podman's defaults exceed this machine's limits
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            // busybox's ping needs a raw socket; Debian's defaults drop NET_RAW
            "--cap-add",
            "NET_RAW",
            image,
            "sleep",
            "600",
        ])
    };
    run("a");
    run("b");

    // Both are l2ctl workloads in podman's namespaces, in l2ctl's state.
    let state = lab.state();
    assert_eq!(state.workloads.len(), 2, "{:?}", state.workloads);
    let ip_of = |name: &str| -> IpAddr {
        podman
            .ok(&[
                "inspect",
                name,
                "--format",
                "{{(index .NetworkSettings.Networks \"pmnet\").IPAddress}}",
            ])
            .parse()
            .unwrap()
    };
    let (a, b) = (ip_of("a"), ip_of("b"));
    let ours: Vec<IpAddr> = state
        .workloads
        .values()
        .flat_map(|w| w.endpoints["pmnet"].ips.clone())
        .collect();
    assert!(
        ours.contains(&a) && ours.contains(&b),
        "{ours:?} vs {a} {b}"
    );
    let netns: Vec<String> = state
        .workloads
        .values()
        .filter_map(|w| state.netns_of(w))
        .collect();
    assert_eq!(netns.len(), 2);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reached = false;
    while !reached && Instant::now() < deadline {
        reached = podman
            .run(&["exec", "a", "ping", "-c1", "-W1", &b.to_string()])
            .status
            .success();
    }
    assert!(reached, "container a cannot ping b ({b}) through l2sw");
    let fdb = lab.l2ctl(&["fdb", "pmnet"]);
    for w in state.workloads.values() {
        assert!(fdb.contains(&w.endpoints["pmnet"].mac.to_string()), "{fdb}");
    }
    assert_eq!(lab.ports("pmnet").len(), 2);

    podman.ok(&["rm", "-f", "-t", "0", "a", "b"]);
    let state = lab.state();
    assert!(state.workloads.is_empty(), "{:?}", state.workloads);
    assert!(lab.switch_links().is_empty(), "{:?}", lab.switch_links());
    assert!(lab.ports("pmnet").is_empty(), "{:?}", lab.ports("pmnet"));
    for ns in netns {
        assert!(
            !nl::netns_exists(&ns),
            "podman's namespace {ns} is still there"
        );
    }
}
