//! The l2sw engine and daemon on real ports: learning bridges over AF_PACKET ports on veth ends
//! in a namespace of their own (and over a TAP device), between workload namespaces. The host
//! side is left out: these switches have no host port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use l2sw::config::Config;
use l2sw::daemon::{self, Running};
use l2sw::engine::{Engine, Polling};
use l2sw::fwd::{BridgePort, PortConfig, Role, Switch, SwitchConfig};
use l2sw::port::af_packet::AfPacketPort;
use l2sw::port::tap::TapPort;
use l2sw::wire::{Mac, craft};
use l2sw_tests::{LiveEngine, Sandbox, Tap, deliveries, station};

fn uc(dst: Mac, src: Mac) -> Vec<u8> {
    craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, b"l2sw live")
}

/// Port flags of a variant: hairpin on port a, isolation on ports a and b.
#[derive(Clone, Copy, Default)]
struct Variant {
    hairpin_a: bool,
    isolated_ab: bool,
}

impl Variant {
    fn flags(self, name: &str) -> BridgePort {
        BridgePort {
            hairpin: self.hairpin_a && name == "a",
            isolated: self.isolated_ab && (name == "a" || name == "b"),
            ..BridgePort::default()
        }
    }
}

/// Workloads a, b, c whose veth peers pa, pb, pc in namespace "sw" are either enslaved to a
/// kernel bridge or served by an l2sw engine, with the variant's port flags. Returns who
/// received each scenario frame.
fn run(test: &str, kernel: bool, v: Variant) -> Option<Vec<(String, Vec<String>)>> {
    let mut sb = Sandbox::new(test)?;
    let sw = sb.netns("sw");
    if kernel {
        sb.kernel_bridge(&sw, "br0", Mac([2, 0, 0, 0, 2, 0xfe]));
    }
    let mut taps = Vec::new();
    for (n, name) in (1..).zip(["a", "b", "c"]) {
        taps.push(sb.workload(&sw, name, n).1);
        if kernel {
            let f = v.flags(name);
            sb.enslave(&sw, &format!("p{name}"), "br0", f.hairpin, f.isolated);
        }
    }
    let engine = (!kernel).then(|| {
        let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
        let max = s.config().max_frame();
        let mut e_ports = Vec::new();
        for name in ["a", "b", "c"] {
            let port = format!("p{name}");
            let id = s
                .add_port(PortConfig::new(&port, Role::Bridge(v.flags(name))))
                .unwrap();
            e_ports.push((id, AfPacketPort::open_in(&sw, &port, max).unwrap()));
        }
        let mut e = Engine::new(s);
        for (id, p) in e_ports {
            e.attach(id, Box::new(p)).unwrap();
        }
        LiveEngine::start(e)
    });
    let (a, b, c) = (station(1), station(2), station(3));
    let scenario = [
        ("a", "broadcast", uc(Mac::BROADCAST, a)),
        ("b", "unicast to a", uc(a, b)),
        ("a", "unknown unicast", uc(station(9), a)),
        ("a", "multicast", uc(Mac([1, 0, 0x5e, 0, 0, 5]), a)),
        ("a", "STP group", uc(Mac([1, 0x80, 0xc2, 0, 0, 0]), a)),
        ("a", "LLDP group", uc(Mac([1, 0x80, 0xc2, 0, 0, 0x0e]), a)),
        ("c", "multicast source", uc(b, Mac([1, 0, 0x5e, 0, 0, 1]))),
        ("c", "unicast to b", uc(b, c)),
        ("b", "unicast to c", uc(c, b)),
        ("a", "to its own MAC", uc(a, a)),
    ];
    let mut out = Vec::new();
    for (from, what, frame) in scenario {
        let sender = taps.iter().find(|t| t.name == from).unwrap();
        out.push((format!("{from} {what}"), deliveries(&taps, sender, &frame)));
    }
    if let Some(e) = engine {
        let e = e.stop();
        assert_eq!(e.stats().io_errors, 0, "{:?}", e.stats());
    }
    Some(out)
}

fn compare_live(test: &str, v: Variant) {
    let Some(kernel) = run(&format!("{test}k"), true, v) else {
        return;
    };
    let Some(ours) = run(&format!("{test}l"), false, v) else {
        return;
    };
    let mut report = String::new();
    for ((what, k), (_, l)) in kernel.iter().zip(&ours) {
        let mark = if k == l { "  " } else { "!!" };
        report += &format!("{mark} {what:<22} kernel {k:?} l2sw {l:?}\n");
    }
    eprintln!("{test}:\n{report}");
    assert_eq!(kernel, ours, "\n{report}");
}

#[test]
fn l2sw_on_af_packet_ports_forwards_as_the_kernel_bridge() {
    compare_live("live", Variant::default());
}

#[test]
fn with_hairpin_and_isolated_ports_too() {
    compare_live(
        "livhp",
        Variant {
            hairpin_a: true,
            ..Variant::default()
        },
    );
    compare_live(
        "liviso",
        Variant {
            isolated_ab: true,
            ..Variant::default()
        },
    );
}

/// Workloads a and b behind ports pa and pb of namespace `sw`, and a daemon running the
/// network "lab" (a learning bridge over both ports) from a configuration file.
struct DaemonLab {
    sb: Sandbox,
    sw: String,
    taps: Vec<Tap>,
    stop: Arc<AtomicBool>,
    running: Running,
}

fn daemon_lab(test: &str) -> Option<DaemonLab> {
    let mut sb = Sandbox::new(test)?;
    let sw = sb.netns("sw");
    let taps = vec![sb.workload(&sw, "a", 1).1, sb.workload(&sw, "b", 2).1];
    let text = format!(
        r#"
        [[network]]
        name = "lab"
        mode = "bridge"
        [[network.port]]
        interface = "pa"
        netns = "{sw}"
        role = "bridge"
        [[network.port]]
        interface = "pb"
        netns = "{sw}"
        role = "bridge"
        "#
    );
    let plan = Config::from_toml(&text).unwrap().plan().unwrap().remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    let running = daemon::start(plan, Arc::clone(&stop)).unwrap();
    Some(DaemonLab {
        sb,
        sw,
        taps,
        stop,
        running,
    })
}

#[test]
fn the_daemon_runs_a_network_from_its_configuration_file() {
    let Some(DaemonLab {
        taps,
        stop,
        running,
        ..
    }) = daemon_lab("cfg")
    else {
        return;
    };
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b"]
    );
    assert_eq!(
        deliveries(&taps, &taps[1], &uc(station(1), station(2))),
        ["a"]
    );
    stop.store(true, Ordering::Relaxed);
    let s = running.join().unwrap();
    assert_eq!((s.rx, s.tx, s.io_errors), (2, 2, 0));
}

#[test]
fn the_control_socket_shows_the_fdb_and_survives_garbage() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    let Some(DaemonLab {
        taps,
        stop,
        running,
        ..
    }) = daemon_lab("ctl")
    else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("l2sw-ctl-{}", std::process::id()));
    let sock = dir.join("l2sw.sock");
    let handles: Arc<[l2sw::daemon::Handle]> = Arc::from(vec![running.handle.clone()]);
    let server = l2sw::control::serve(&sock, handles, Arc::clone(&stop)).unwrap();
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );

    deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1)));
    deliveries(&taps, &taps[1], &uc(station(1), station(2)));
    // A multicast source: dropped, and counted on the port it came in by.
    let bad_source = uc(station(2), Mac([1, 0, 0x5e, 0, 0, 1]));
    assert!(deliveries(&taps, &taps[0], &bad_source).is_empty());

    let stream = UnixStream::connect(&sock).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut ask = |req: &str| {
        out.write_all(format!("{req}\n").as_bytes()).unwrap();
        lines.next().unwrap().unwrap()
    };
    let fdb = ask(r#"{"v":1,"op":"fdb","network":"lab"}"#);
    assert!(fdb.contains(r#""ok":true"#), "{fdb}");
    assert!(
        fdb.contains(r#""mac":"02:00:00:00:00:01","port":"pa""#),
        "{fdb}"
    );
    assert!(
        fdb.contains(r#""mac":"02:00:00:00:00:02","port":"pb""#),
        "{fdb}"
    );
    let bad = ask("this is not json");
    assert!(
        bad.contains(r#""ok":false"#) && bad.contains("malformed request"),
        "{bad}"
    );
    let stats = ask(r#"{"v":1,"op":"stats","network":"lab"}"#);
    assert!(
        stats.contains(r#""rx":3"#) && stats.contains(r#""tx":2"#),
        "{stats}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let pa = &parsed["data"]["ports"][0];
    assert_eq!(
        (&pa["name"], &pa["rx"], &pa["drops"]["InvalidSource"]),
        (&"pa".into(), &2.into(), &1.into()),
        "{stats}"
    );
    let set =
        ask(r#"{"v":1,"op":"add_static","network":"lab","mac":"02:00:00:00:00:09","port":"pb"}"#);
    assert!(set.contains(r#""ok":true"#), "{set}");
    let nets = ask(r#"{"v":1,"op":"networks"}"#);
    assert!(
        nets.contains(r#""name":"lab","#) && nets.contains(r#""name":"pa""#),
        "{nets}"
    );
    // The static entry steers traffic.
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(station(9), station(1))),
        ["b"]
    );
    // Hang up, so that the server is free to stop at once.
    drop(lines);
    drop(out);

    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert!(!sock.exists(), "the socket file is removed on stop");
    running.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tap_port_is_the_workloads_own_interface() {
    let Some(mut sb) = Sandbox::new("tap") else {
        return;
    };
    let sw = sb.netns("sw");
    let a = sb.netns("a");
    let (_, tap_b) = sb.workload(&sw, "b", 2);
    let mut s = Switch::new(SwitchConfig::bridge()).unwrap();
    let max = s.config().max_frame();
    // The TAP device lives in workload a's namespace: l2sw holds its descriptor.
    let tap_id = s.add_port(PortConfig::bridge("tap0")).unwrap();
    let tap = TapPort::create_in(&a, "tap0", max).unwrap();
    let pb_id = s.add_port(PortConfig::bridge("pb")).unwrap();
    let pb = AfPacketPort::open_in(&sw, "pb", max).unwrap();
    let mut e = Engine::new(s);
    e.attach(tap_id, Box::new(tap)).unwrap();
    e.attach(pb_id, Box::new(pb)).unwrap();
    let live = LiveEngine::start(e);
    let taps = [Tap::open("a", &a, "tap0"), tap_b];
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b"]
    );
    assert_eq!(
        deliveries(&taps, &taps[1], &uc(station(1), station(2))),
        ["a"]
    );
    let e = live.stop();
    assert_eq!((e.stats().tx, e.stats().io_errors), (2, 0));
}

#[test]
fn a_vanished_namespace_detaches_its_port_and_the_others_go_on() {
    let Some(mut sb) = Sandbox::new("gone") else {
        return;
    };
    let sw = sb.netns("sw");
    let mut taps = Vec::new();
    let mut nss = Vec::new();
    for (n, name) in (1..).zip(["a", "b", "c"]) {
        let (ns, tap) = sb.workload(&sw, name, n);
        nss.push(ns);
        taps.push(tap);
    }
    let live = LiveEngine::bridge(&sw, &["pa", "pb", "pc"]);
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b", "c"]
    );
    // Workload c's namespace disappears, and its veth pair with it.
    drop(taps.pop());
    l2sw_netlink::netns_delete(&nss[2]).unwrap();
    for _ in 0..3 {
        assert_eq!(
            deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
            ["b"]
        );
    }
    assert_eq!(
        deliveries(&taps, &taps[1], &uc(station(1), station(2))),
        ["a"]
    );
    let e = live.stop();
    assert_eq!(e.stats().detached, 1, "{:?}", e.stats());
}

#[test]
fn ports_are_added_and_removed_while_the_network_runs() {
    let Some(DaemonLab {
        mut sb,
        sw,
        mut taps,
        stop,
        running,
    }) = daemon_lab("live")
    else {
        return;
    };
    let (_, tap_c) = sb.workload(&sw, "c", 3);
    taps.push(tap_c);
    let h = &running.handle;
    let ask = |req: String| l2sw::api::handle(&req, std::slice::from_ref(h));
    let add = ask(format!(
        r#"{{"v":1,"op":"add_port","network":"lab","port":{{"interface":"pc","netns":"{sw}","role":"bridge"}}}}"#
    ));
    assert!(add.is_ok(), "{add:?}");
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b", "c"]
    );
    let again = ask(format!(
        r#"{{"v":1,"op":"add_port","network":"lab","port":{{"interface":"pc","netns":"{sw}","role":"bridge"}}}}"#
    ));
    assert!(
        again
            .error()
            .is_some_and(|e| e.message.contains("already exists"))
    );
    let rm = ask(r#"{"v":1,"op":"remove_port","network":"lab","port":"pb"}"#.into());
    assert!(rm.is_ok(), "{rm:?}");
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["c"]
    );
    let gone = ask(r#"{"v":1,"op":"remove_port","network":"lab","port":"pb"}"#.into());
    assert!(!gone.is_ok());
    stop.store(true, Ordering::Relaxed);
    running.join().unwrap();
}

/// How many entries an `fdb` answer lists.
fn fdb_len(r: &l2sw::api::Response) -> Option<usize> {
    match r.reply() {
        Some(l2sw::api::Reply::Fdb(rows)) => Some(rows.len()),
        _ => None,
    }
}

#[test]
fn learned_stations_age_out_on_a_running_network() {
    let Some(DaemonLab {
        taps,
        stop,
        running,
        ..
    }) = daemon_lab("age")
    else {
        return;
    };
    let h = &running.handle;
    let ask = |req: &str| l2sw::api::handle(req, std::slice::from_ref(h));
    deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1)));
    deliveries(&taps, &taps[1], &uc(Mac::BROADCAST, station(2)));
    let fdb = ask(r#"{"v":1,"op":"fdb","network":"lab"}"#);
    assert_eq!(fdb_len(&fdb), Some(2), "{fdb:?}");
    assert!(ask(r#"{"v":1,"op":"set_ageing","network":"lab","secs":1}"#).is_ok());
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let fdb = ask(r#"{"v":1,"op":"fdb","network":"lab"}"#);
    assert_eq!(fdb_len(&fdb), Some(0), "{fdb:?}");
    stop.store(true, Ordering::Relaxed);
    running.join().unwrap();
}

#[test]
fn networks_are_added_and_removed_over_the_control_protocol() {
    use l2sw::daemon::Networks;

    let Some(mut sb) = Sandbox::new("nets") else {
        return;
    };
    let sw = sb.netns("sw");
    let taps = vec![sb.workload(&sw, "a", 1).1, sb.workload(&sw, "b", 2).1];
    let nets = Networks::new();
    let ask = |req: String| l2sw::api::handle(&req, &nets);
    let add = ask(format!(
        r#"{{"v":1,"op":"add_network","network":{{"name":"lab2","mode":"bridge","port":[
            {{"interface":"pa","netns":"{sw}","role":"bridge"}},
            {{"interface":"pb","netns":"{sw}","role":"bridge"}}]}}}}"#
    ));
    assert!(add.is_ok(), "{add:?}");
    let twice =
        ask(r#"{"v":1,"op":"add_network","network":{"name":"lab2","mode":"bridge"}}"#.into());
    assert!(
        twice
            .error()
            .is_some_and(|e| e.message.contains("already exists"))
    );
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b"]
    );
    let rm = ask(r#"{"v":1,"op":"remove_network","network":"lab2"}"#.into());
    assert!(
        matches!(rm.result, Ok(l2sw::api::Reply::Stopped(s)) if s.rx == 1),
        "{rm:?}"
    );
    assert!(deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))).is_empty());
    assert!(nets.handles().is_empty());
}

#[test]
fn a_busy_polling_engine_forwards_the_same() {
    let Some(mut sb) = Sandbox::new("busy") else {
        return;
    };
    let sw = sb.netns("sw");
    let taps = vec![sb.workload(&sw, "a", 1).1, sb.workload(&sw, "b", 2).1];
    let live = LiveEngine::bridge_with(&sw, &["pa", "pb"], true);
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b"]
    );
    assert_eq!(
        deliveries(&taps, &taps[1], &uc(station(1), station(2))),
        ["a"]
    );
    assert_eq!(live.stop().stats().tx, 2);
}

/// Awake, the engine reads its rings directly and takes them off its poll set; before it
/// sleeps it puts them back. Frames sent at every spacing, back to back, within the linger
/// and well after it, each cross the bridge: none is missed at either change.
#[test]
fn an_engine_that_wakes_and_sleeps_misses_no_frame() {
    let Some(mut sb) = Sandbox::new("linger") else {
        return;
    };
    let sw = sb.netns("sw");
    let taps = vec![sb.workload(&sw, "a", 1).1, sb.workload(&sw, "b", 2).1];
    let polling = Polling {
        busy: false,
        linger: Duration::from_micros(200),
    };
    let live = LiveEngine::bridge_polling(&sw, &["pa", "pb"], polling);
    // Both stations known: what follows is unicast, one delivery each.
    assert_eq!(
        deliveries(&taps, &taps[0], &uc(Mac::BROADCAST, station(1))),
        ["b"]
    );
    assert_eq!(
        deliveries(&taps, &taps[1], &uc(station(1), station(2))),
        ["a"]
    );
    let gaps_us = [0u64, 0, 50, 150, 400, 1000, 0, 3000, 100, 8000];
    let mut sent = 0;
    for round in 0..3u8 {
        for (i, gap) in gaps_us.iter().enumerate() {
            // Pacing, not waiting for a condition: the gap is what is tested.
            std::thread::sleep(Duration::from_micros(*gap));
            let mut frame = uc(station(2), station(1));
            frame.extend_from_slice(&[round, i as u8]);
            taps[0].send(&frame);
            sent += 1;
            let deadline = Instant::now() + Duration::from_secs(2);
            while !taps[1].drain().contains(&frame) {
                assert!(
                    Instant::now() < deadline,
                    "round {round}, frame {i} after {gap} µs: not delivered within 2 s"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    assert_eq!(live.stop().stats().tx, 2 + sent);
}
