//! Soak: mixed traffic through a daemon network for a while, with ports leaving and joining
//! all along, and checks that nothing creeps: resident memory and open descriptors stay flat,
//! and every received frame is accounted for (per port, `rx == forwarded + drops by reason`).
//!
//! The short form runs with the tests (10 s). The long form is one command:
//!
//! ```sh
//! L2SW_SOAK_SECS=600 cargo test --release -p l2sw-tests --test soak -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use l2sw::api;
use l2sw::config::Config;
use l2sw::daemon::Networks;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{Sandbox, Tap, station};
use serde_json::Value;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn request(networks: &Networks, line: &str) -> Value {
    let r = api::handle(line, networks);
    assert!(r.is_ok(), "{line}: {:?}", r.error());
    serde_json::to_value(r.reply()).unwrap()
}

/// The mixed traffic: known unicast, unknown unicast, broadcast, multicast, from station `i`.
fn frame(i: usize, k: u64) -> Vec<u8> {
    let src = station(i as u8 + 1);
    let dst = match k % 8 {
        0 => Mac::BROADCAST,
        1 => Mac([1, 0, 0x5e, 0, 0, 9]),
        2 => Mac([2, 0, 0, 0, 0x77, (k % 200) as u8]),
        _ => station(((i + 1 + (k as usize % 3)) % 4) as u8 + 1),
    };
    craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, &k.to_be_bytes())
}

#[test]
fn a_soak_with_port_churn_leaves_memory_fds_and_counters_straight() {
    let secs: u64 = std::env::var("L2SW_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let Some(mut sb) = Sandbox::new("soak") else {
        return;
    };
    let sw = sb.netns("sw");
    // Four steady workloads, two that keep leaving and coming back.
    let taps: Vec<Tap> = (1..=6)
        .map(|n| sb.workload(&sw, &format!("w{n}"), n).1)
        .collect();
    let port = |n: usize| format!(r#"{{"interface":"pw{n}","netns":"{sw}","role":"bridge"}}"#);
    let spec: Config = toml::from_str(&format!(
        "[[network]]\nname = \"soak\"\nmode = \"bridge\"\n{}",
        (1..=4)
            .map(|n| format!(
                "[[network.port]]\ninterface = \"pw{n}\"\nnetns = \"{sw}\"\nrole = \"bridge\"\n"
            ))
            .collect::<String>()
    ))
    .unwrap();
    let networks = Networks::new();
    networks.start(spec.plan().unwrap().remove(0)).unwrap();

    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (mut baseline, mut churns) = (None, 0u32);
    let start = Instant::now();
    std::thread::scope(|s| {
        // Traffic from the four steady workloads, ~20k frames/s.
        s.spawn(|| {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (i, t) in taps[..4].iter().enumerate() {
                    t.send(&frame(i, k));
                }
                k += 1;
                sent.fetch_add(4, Ordering::Relaxed);
                if k.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        // Every receiver drains, so that the test's own sockets never hold up anything.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for t in &taps {
                    t.drain();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        // Churn: w5 and w6 leave and join in turn, through the control protocol.
        let mut present = false;
        while start.elapsed() < Duration::from_secs(secs) {
            std::thread::sleep(Duration::from_millis(250));
            for n in [5, 6] {
                let line = if present {
                    format!(r#"{{"v":1,"op":"remove_port","network":"soak","port":"pw{n}"}}"#)
                } else {
                    format!(
                        r#"{{"v":1,"op":"add_port","network":"soak","port":{}}}"#,
                        port(n)
                    )
                };
                request(&networks, &line);
            }
            present = !present;
            churns += 1;
            // The baseline is taken once the process has warmed up, in the "absent" phase.
            if !present && baseline.is_none() && start.elapsed() > Duration::from_secs(secs / 5) {
                baseline = Some((rss_kib(), open_fds()));
            }
        }
        if present {
            for n in [5, 6] {
                request(
                    &networks,
                    &format!(r#"{{"v":1,"op":"remove_port","network":"soak","port":"pw{n}"}}"#),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, fds0) = baseline.expect("a baseline was taken");
    let (rss1, fds1) = (rss_kib(), open_fds());
    let stats = request(&networks, r#"{"v":1,"op":"stats","network":"soak"}"#);
    let mut rx_total = 0;
    for p in stats["ports"].as_array().unwrap() {
        let drops: u64 = p["drops"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        let (rx, fwd) = (p["rx"].as_u64().unwrap(), p["forwarded"].as_u64().unwrap());
        assert_eq!(
            rx,
            fwd + drops,
            "port {}: every frame forwarded or dropped by reason",
            p["name"]
        );
        rx_total += rx;
    }
    let sent = sent.load(Ordering::Relaxed);
    eprintln!(
        "soak {secs}s: {sent} frames sent, {rx_total} received by the steady ports, {churns} churns, \
         RSS {rss0} -> {rss1} KiB, fds {fds0} -> {fds1}, io_errors {} detached {}",
        stats["io_errors"], stats["detached"]
    );
    assert!(
        rx_total >= sent * 9 / 10,
        "l2sw kept up: {rx_total} of {sent}"
    );
    assert_eq!(stats["io_errors"], 0, "{stats}");
    assert_eq!(fds1, fds0, "open descriptors are flat");
    assert!(
        rss1 < rss0 + 8 * 1024,
        "resident memory is flat: {rss0} -> {rss1} KiB"
    );
    for (name, r) in networks.stop_all() {
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
