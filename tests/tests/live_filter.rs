//! The uplink of an l2sw macvlan network filters in the interface, as the kernel's macvlan
//! makes its lower device do: every sub-interface MAC is added to the uplink's unicast list
//! (PACKET_MR_UNICAST) instead of making it promiscuous, and follows sub-interfaces coming
//! and going.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use l2sw::config::Config;
use l2sw::daemon;
use l2sw::wire::Mac;
use l2sw_tests::Sandbox;

/// The unicast and multicast lists of interface `dev` in namespace `ns` (`bridge fdb show`
/// lists a plain device's address lists).
fn address_lists(ns: &str, dev: &str) -> String {
    let out = Command::new("bridge")
        .args(["-n", ns, "fdb", "show", "dev", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sub_interface_macs_join_the_uplinks_unicast_list() {
    let Some(mut sb) = Sandbox::new("uc") else {
        return;
    };
    let sw = sb.netns("sw");
    let wire = sb.netns("wire");
    let a = sb.netns("a");
    sb.veth(
        &sw,
        "upl",
        Mac([2, 0, 0, 0, 1, 0]),
        &wire,
        "eth0",
        Mac([2, 0, 0, 0, 2, 0]),
    );
    let text = format!(
        r#"
        [[network]]
        name = "mv"
        mode = "macvlan"
        [[network.port]]
        interface = "upl"
        netns = "{sw}"
        role = "uplink"
        mac = "02:00:00:00:01:00"
        [[network.port]]
        interface = "tap-a"
        kind = "tap"
        netns = "{a}"
        role = "macvlan"
        mac = "02:00:00:00:00:0a"
        "#
    );
    let plan = Config::from_toml(&text).unwrap().plan().unwrap().remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    let running = daemon::start(plan, Arc::clone(&stop)).unwrap();
    let lists = address_lists(&sw, "upl");
    assert!(lists.contains("02:00:00:00:00:0a"), "{lists}");
    assert!(!lists.contains("02:00:00:00:00:0b"), "{lists}");
    // A second sub-interface joins the list, and leaves it with its port.
    let h = &running.handle;
    let ask = |req: String| l2sw::api::handle(&req, std::slice::from_ref(h));
    let add = ask(format!(
        r#"{{"v":1,"op":"add_port","network":"mv","port":{{"interface":"tap-b","kind":"tap","netns":"{a}","role":"macvlan","mac":"02:00:00:00:00:0b"}}}}"#
    ));
    assert!(add.is_ok(), "{add:?}");
    assert!(address_lists(&sw, "upl").contains("02:00:00:00:00:0b"));
    let rm = ask(r#"{"v":1,"op":"remove_port","network":"mv","port":"tap-b"}"#.into());
    assert!(rm.is_ok(), "{rm:?}");
    let lists = address_lists(&sw, "upl");
    assert!(
        !lists.contains("02:00:00:00:00:0b") && lists.contains("02:00:00:00:00:0a"),
        "{lists}"
    );
    stop.store(true, Ordering::Relaxed);
    running.join().unwrap();
}
