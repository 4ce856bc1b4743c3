//! The rtnetlink facade against the real kernel. Each test works in namespaces of its own
//! (`l2nl-<test>-<pid>`), removed at the end even on failure, and never changes the caller's
//! namespace. Needs root and iproute2 (`ip`, only to cross-check); skipped otherwise.
//!
//! `nl::enter` is not tested here: it changes the calling thread's namespaces for good, which
//! is what `l2ctl exec` does just before `exec()`; that command's tests cover it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use l2sw::fwd::MacvlanMode;
use l2sw::port::sys::netns;
use l2sw::wire::Mac;
use l2sw_control::nl::{self, Links};

/// Whether the tests can run: root, with `ip` installed.
fn can_run(test: &str) -> bool {
    let root = l2sw_tests::privileged();
    let ip = Command::new("ip").arg("-V").output().is_ok();
    if !(root && ip) {
        println!("skipped {test}: needs root and iproute2");
    }
    root && ip
}

/// Named namespaces made for one test, deleted on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    /// Creates `l2nl-<test>-<pid>-<suffix>` for each suffix.
    fn create(test: &str, suffixes: &[&str]) -> Namespaces {
        let mut made = Namespaces(Vec::new());
        for suffix in suffixes {
            let name = format!("l2nl-{test}-{}-{suffix}", std::process::id());
            nl::netns_create(&name).unwrap();
            made.0.push(name);
        }
        made
    }

    fn name(&self, i: usize) -> &str {
        &self.0[i]
    }

    fn links(&self, i: usize) -> Links {
        Links::new(Some(self.name(i)))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = nl::netns_delete(name);
        }
    }
}

/// Runs `ip ARGS` and returns its standard output.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Sends a datagram from a socket of namespace 0 bound to `a` to one of namespace 1 bound to
/// `b`, and one back; returns the sender of each as the receiver saw it (a few tries while
/// neighbour discovery runs).
fn udp_exchange(ns: &Namespaces, a: &str, b: &str) -> (SocketAddr, SocketAddr) {
    let socket = |i: usize, addr: &str| {
        let s = netns::run_in(ns.name(i), || UdpSocket::bind(addr))
            .unwrap()
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s
    };
    let (sa, sb) = (socket(0, a), socket(1, b));
    let send = |from: &UdpSocket, to: &UdpSocket| {
        let mut buf = [0; 16];
        (0..10)
            .find_map(|_| {
                from.send_to(b"l2nl", to.local_addr().unwrap()).unwrap();
                to.recv_from(&mut buf).ok()
            })
            .map(|(n, sender)| {
                assert_eq!(&buf[..n], b"l2nl");
                sender
            })
            .expect("no datagram across the veth")
    };
    (send(&sa, &sb), send(&sb, &sa))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn namespace_lifecycle() {
    if !can_run("namespace_lifecycle") {
        return;
    }
    let name = format!("l2nl-lifecycle-{}", std::process::id());
    let guard = Namespaces(vec![name.clone()]);
    assert!(!nl::netns_exists(&name));

    nl::netns_create(&name).unwrap();
    assert!(nl::netns_exists(&name));
    let listed = nl::netns_list().unwrap();
    assert!(listed.contains(&name), "{listed:?}");
    assert!(listed.is_sorted());
    assert!(
        ip(&["netns", "list"])
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name))
    );
    // lo is up, as in a Docker container.
    assert!(ip(&["-n", &name, "-o", "link", "show", "lo"]).contains(",UP"));
    assert_eq!(Links::new(Some(&name)).names().unwrap(), ["lo"]);

    let again = nl::netns_create(&name).unwrap_err();
    assert!(again.is_exists(), "{again}");
    assert_eq!(
        again.to_string(),
        format!("create namespace {name:?}: File exists (os error 17)")
    );

    nl::netns_delete(&name).unwrap();
    assert!(!nl::netns_exists(&name));
    assert!(!nl::netns_list().unwrap().contains(&name));
    assert!(!ip(&["netns", "list"]).contains(&name));
    let absent = nl::netns_delete(&name).unwrap_err();
    assert!(absent.is_not_found(), "{absent}");
    drop(guard);
}

#[test]
fn namespace_names_are_checked() {
    if !can_run("namespace_names_are_checked") {
        return;
    }
    let long = "n".repeat(256);
    for bad in ["", "/", ".", "..", "a/b", long.as_str()] {
        let e = nl::netns_create(bad).unwrap_err();
        assert_eq!(e.raw_os_error(), None, "{bad:?}: {e}");
        assert!(!nl::netns_exists(bad));
        assert!(nl::netns_delete(bad).is_err());
        assert!(Links::new(Some(bad)).names().is_err());
    }
}

#[test]
fn veth_between_namespaces() {
    if !can_run("veth_between_namespaces") {
        return;
    }
    let ns = Namespaces::create("veth", &["a", "b"]);
    let (a, b) = (ns.links(0), ns.links(1));

    a.create_veth("l2v-test", "l2p-test").unwrap();
    assert!(a.exists("l2v-test").unwrap() && a.exists("l2p-test").unwrap());
    let mut names = a.names().unwrap();
    names.sort();
    assert_eq!(names, ["l2p-test", "l2v-test", "lo"]);
    assert!(a.index("l2p-test").unwrap() > 1);

    a.move_to("l2p-test", ns.name(1)).unwrap();
    assert!(!a.exists("l2p-test").unwrap());
    assert!(b.exists("l2p-test").unwrap());
    b.rename("l2p-test", "eth0").unwrap();
    assert!(!b.exists("l2p-test").unwrap());

    let mac: Mac = "02:42:0a:4d:00:02".parse().unwrap();
    b.set_mac("eth0", mac).unwrap();
    b.set_mtu("eth0", 1400).unwrap();
    b.set_up("eth0").unwrap();
    a.set_up("l2v-test").unwrap();
    assert_eq!(b.mac("eth0").unwrap(), mac);
    assert!(ip(&["-n", ns.name(1), "-o", "link", "show", "eth0"]).contains("mtu 1400"));

    a.add_address("l2v-test", "10.77.0.1".parse().unwrap(), 24)
        .unwrap();
    b.add_address("eth0", "10.77.0.2".parse().unwrap(), 24)
        .unwrap();
    b.add_address("eth0", "fd77::2".parse().unwrap(), 64)
        .unwrap();
    let addresses = b.addresses("eth0").unwrap();
    assert!(addresses.contains(&net("10.77.0.2/24")), "{addresses:?}");
    assert!(addresses.contains(&net("fd77::2/64")), "{addresses:?}");
    let twice = b
        .add_address("eth0", "10.77.0.2".parse().unwrap(), 24)
        .unwrap_err();
    assert!(twice.is_exists(), "{twice}");

    b.add_default_route("10.77.0.1".parse().unwrap(), "eth0")
        .unwrap();
    b.add_default_route("fd77::1".parse().unwrap(), "eth0")
        .unwrap();
    b.add_route(net("10.78.0.0/16"), "eth0").unwrap();
    b.add_route(net("fd78::/48"), "eth0").unwrap();
    assert_eq!(
        b.routes().unwrap(),
        ["10.77.0.0/24", "10.78.0.0/16", "fd77::/64", "fd78::/48"].map(net)
    );
    let shown = ip(&["-n", ns.name(1), "route", "show", "default"]);
    assert!(shown.contains("via 10.77.0.1 dev eth0"), "{shown}");
    let shown = ip(&["-n", ns.name(1), "-6", "route", "show", "default"]);
    assert!(shown.contains("via fd77::1 dev eth0"), "{shown}");
    assert!(ip(&["-n", ns.name(1), "route", "show", "10.78.0.0/16"]).contains("scope link"));

    b.del_route(net("10.78.0.0/16"), "eth0").unwrap();
    b.del_route(net("fd78::/48"), "eth0").unwrap();
    assert_eq!(b.routes().unwrap(), ["10.77.0.0/24", "fd77::/64"].map(net));
    let gone = b.del_route(net("10.78.0.0/16"), "eth0").unwrap_err();
    assert!(gone.is_not_found(), "{gone}");

    // The link is real: a datagram goes from A to B and back (ping is not always installed).
    let (from_a, from_b) = udp_exchange(&ns, "10.77.0.1:0", "10.77.0.2:7777");
    assert_eq!(from_a.ip().to_string(), "10.77.0.1");
    assert_eq!(from_b.to_string(), "10.77.0.2:7777");

    a.delete("l2v-test").unwrap();
    assert!(!a.exists("l2v-test").unwrap());
    assert!(!b.exists("eth0").unwrap());
    assert_eq!(b.names().unwrap(), ["lo"]);
}

#[test]
fn errors_name_operation_and_object() {
    if !can_run("errors_name_operation_and_object") {
        return;
    }
    let ns = Namespaces::create("errors", &["a"]);
    let a = ns.links(0);

    a.create_veth("l2v-1a2b", "l2p-1a2b").unwrap();
    let e = a.create_veth("l2v-1a2b", "l2p-1a2b").unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "create veth l2v-1a2b <-> l2p-1a2b in namespace {:?}: File exists (os error 17)",
            ns.name(0)
        )
    );

    assert!(!a.exists("nothere").unwrap());
    let e = a.set_mtu("nothere", 1400).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "set the MTU of link nothere in namespace {:?} to 1400: No such device (os error 19)",
            ns.name(0)
        )
    );
    assert!(a.mac("nothere").unwrap_err().is_not_found());
    assert!(
        a.move_to("l2v-1a2b", "l2nl-no-such-namespace")
            .unwrap_err()
            .is_not_found()
    );

    let absent = Links::new(Some("l2nl-no-such-namespace"));
    let e = absent.exists("lo").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string()
            .contains("in namespace \"l2nl-no-such-namespace\""),
        "{e}"
    );
}

#[test]
fn tx_offloads_off_on_a_veth() {
    if !can_run("tx_offloads_off_on_a_veth") {
        return;
    }
    let ns = Namespaces::create("offloads", &["a"]);
    let a = ns.links(0);
    a.create_veth("l2v-off", "l2p-off").unwrap();
    a.disable_tx_offloads("l2v-off").unwrap();
    let e = a.disable_tx_offloads("nothere").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string()
            .starts_with("disable TX offloads on link nothere in namespace"),
        "{e}"
    );
}

#[test]
fn bridges_their_port_flags_and_macvlans() {
    if !can_run("bridges_their_port_flags_and_macvlans") {
        return;
    }
    let ns = Namespaces::create("kbr", &["a"]);
    let a = ns.links(0);
    let show = |dev: &str| ip(&["-n", ns.name(0), "-d", "-o", "link", "show", dev]);
    let mac = |s: &str| s.parse::<Mac>().unwrap();

    a.create_bridge("br0", mac("02:00:00:00:00:fe")).unwrap();
    assert_eq!(a.mac("br0").unwrap(), mac("02:00:00:00:00:fe"));
    assert!(show("br0").contains(",UP") && show("br0").contains("bridge forward_delay"));
    a.create_veth("pa", "peer").unwrap();
    a.enslave("pa", "br0").unwrap();
    assert!(show("pa").contains("master br0"), "{}", show("pa"));
    a.set_bridge_port("pa", true, true).unwrap();
    let port = show("pa");
    assert!(
        port.contains("hairpin on") && port.contains("isolated on"),
        "{port}"
    );
    a.set_bridge_port("pa", false, true).unwrap();
    let port = show("pa");
    assert!(
        port.contains("hairpin off") && port.contains("isolated on"),
        "{port}"
    );
    let e = a.enslave("pa", "nothere").unwrap_err();
    assert!(e.is_not_found(), "{e}");

    let sources = [mac("02:00:00:00:00:c8"), mac("02:00:00:00:00:c9")];
    a.create_macvlan(
        "mvs",
        "peer",
        MacvlanMode::Source,
        mac("02:00:00:00:00:03"),
        &sources,
    )
    .unwrap();
    let mvs = show("mvs");
    assert!(mvs.contains("macvlan mode source"), "{mvs}");
    assert!(
        mvs.contains("02:00:00:00:00:c8") && mvs.contains("02:00:00:00:00:c9"),
        "{mvs}"
    );
    assert_eq!(a.mac("mvs").unwrap(), mac("02:00:00:00:00:03"));
    a.create_macvlan(
        "mvv",
        "peer",
        MacvlanMode::Vepa,
        mac("02:00:00:00:00:04"),
        &[],
    )
    .unwrap();
    assert!(show("mvv").contains("macvlan mode vepa"), "{}", show("mvv"));
    // An allow-list belongs to source mode only: the kernel refuses it elsewhere.
    let e = a
        .create_macvlan(
            "mvb",
            "peer",
            MacvlanMode::Bridge,
            mac("02:00:00:00:00:05"),
            &sources,
        )
        .unwrap_err();
    assert!(e.to_string().starts_with("create macvlan link mvb"), "{e}");
}
