//! Endpoints for container engines, through the operation both adapters use
//! (`Ctl::attach_engine`): a CNI-style endpoint that l2ctl puts into a namespace given by its
//! path, and a Docker-style one handed over in the host namespace and moved by the "engine"
//! (here the test, as Docker would). Both carry traffic through the daemon; detaching leaves
//! no link, port or workload; a refused request changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use l2sw_control::args::{AttachArgs, NetworkArgs};
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl::Links;
use l2sw_control::ops::Ctl;
use l2sw_control::probe::udp_reaches;
use l2sw_control::state::{EndpointKind, Engine, EngineSandbox};
use l2sw_tests::Sandbox;

fn attach(network: &str, ip: Option<&str>) -> AttachArgs {
    AttachArgs {
        network: network.into(),
        ip: ip.map(|i| i.parse().unwrap()).into_iter().collect(),
        mac: None,
        port: EndpointKind::Veth,
        source_mac: Vec::new(),
        publish: Vec::new(),
    }
}

fn links_of(links: &Links) -> BTreeSet<String> {
    links.names().unwrap().into_iter().collect()
}

#[test]
fn engine_endpoints_carry_traffic_and_leave_nothing_behind() {
    let Some(mut sandbox) = Sandbox::new("engines") else {
        return;
    };
    let host = sandbox.netns("host");
    let c1 = sandbox.netns("c1");
    let c2 = sandbox.netns("c2");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("l2sw.sock");
    let _daemon = EmbeddedDaemon::start(&socket).unwrap();
    let mut ctl = Ctl::open(&dir.path().join("state"), &socket, Some(&host)).unwrap();
    let net: NetworkArgs = toml::from_str("name = \"enet\"\nsubnet = [\"10.77.0.0/24\"]").unwrap();
    ctl.create_network(&net, None).unwrap();
    let host_links = Links::new(Some(&host));
    let before = links_of(&host_links);

    // CNI: l2ctl moves its end into the namespace named by path and configures it.
    let cni = EngineSandbox {
        engine: Engine::Cni,
        container: "abc123".into(),
        netns: Some(format!("/run/netns/{c1}")),
    };
    let a = ctl
        .attach_engine(
            "cni-a",
            &attach("enet", Some("10.77.0.10")),
            cni.clone(),
            "net1",
            None,
        )
        .unwrap();
    assert_eq!(a.interface, "net1");
    let inside = Links::new(Some(&c1));
    assert_eq!(inside.mac("net1").unwrap(), a.mac);
    let addrs = inside.addresses("net1").unwrap();
    assert!(
        addrs.contains(&"10.77.0.10/24".parse().unwrap()),
        "{addrs:?}"
    );

    // Docker: the link is handed over in the host namespace; the engine moves it.
    let docker = EngineSandbox {
        engine: Engine::Docker,
        container: "def456".into(),
        netns: None,
    };
    let b = ctl
        .attach_engine("d-b", &attach("enet", None), docker, "", None)
        .unwrap();
    assert!(b.interface.starts_with("l2w-"), "{}", b.interface);
    assert_eq!(host_links.mac(&b.interface).unwrap(), b.mac);
    let b_ip = b.ips[0];
    host_links.move_to(&b.interface, &c2).unwrap();
    let theirs = Links::new(Some(&c2));
    theirs.rename(&b.interface, "eth0").unwrap();
    theirs.add_address("eth0", b_ip, 24).unwrap();
    theirs.set_up("eth0").unwrap();
    ctl.engine_joined("d-b", &format!("/run/netns/{c2}"))
        .unwrap();
    assert!(ctl.gone().is_empty());

    assert!(udp_reaches(Some(&c1), Some(&c2), b_ip).unwrap());
    let a_ip: IpAddr = "10.77.0.10".parse().unwrap();
    assert!(udp_reaches(Some(&c2), Some(&c1), a_ip).unwrap());

    // A second endpoint of the same name, a namespace that is not there, an address taken:
    // refused, nothing changes.
    let state = ctl.state.clone();
    let missing = EngineSandbox {
        netns: Some("/run/netns/no-such-l2sw-ns".into()),
        ..cni.clone()
    };
    for (name, sb, req, what) in [
        ("cni-a", cni.clone(), attach("enet", None), "already exists"),
        ("cni-x", missing, attach("enet", None), "does not exist"),
        (
            "cni-y",
            cni.clone(),
            attach("enet", Some("10.77.0.10")),
            "10.77.0.10",
        ),
        ("cni-z", cni.clone(), attach("nonet", None), "nonet"),
    ] {
        let e = ctl.attach_engine(name, &req, sb, "net2", None).unwrap_err();
        assert!(e.to_string().contains(what), "{name}: {e}");
        assert_eq!(ctl.state, state, "{name} changed the state");
    }
    assert!(!inside.exists("net2").unwrap());

    ctl.detach("cni-a", "enet").unwrap();
    ctl.detach("d-b", "enet").unwrap();
    assert!(ctl.state.workloads.is_empty());
    assert_eq!(links_of(&host_links), before);
    assert!(!inside.exists("net1").unwrap());
    assert!(!theirs.exists("eth0").unwrap());
    // The engines' namespaces are theirs: still there.
    assert!(l2sw_control::nl::netns_exists(&c1) && l2sw_control::nl::netns_exists(&c2));
}
