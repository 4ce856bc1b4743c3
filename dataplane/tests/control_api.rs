//! The typed control contract across a real socket: the `l2sw` binary on a socket in a temporary
//! directory, requests written with `Request::to_line` (or by hand, for what a typed client
//! cannot write), answers read with `Response::from_line`. Error kinds a client matches on,
//! and the runtime operations on storm limits and learning caps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use l2sw::api::{ApiError, ErrorKind, NetworkStats, Reply, Request, Response, VERSION};
use l2sw::config::{NetworkMode, NetworkSpec, PortKind, PortRole, PortSpec, StormSpec};

/// An `l2sw run` process on a socket of its own, killed when dropped.
struct Daemon {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn start(test: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("l2sw-api-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("l2sw.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_l2sw"))
            .args(["run", "--socket", socket.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the control socket appears"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, dir, socket }
    }

    /// Sends one line, returns the answer line.
    fn raw(&self, line: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        stream.write_all(line.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        answer
    }

    /// Sends `req` as a typed client does.
    fn call(&self, req: &Request) -> Result<Reply, ApiError> {
        let answer = self.raw(req.to_line().trim_end());
        Response::from_line(&answer, req).unwrap().result
    }

    /// The error kind of an answer to a hand-written line (decoded as if it asked `networks`).
    fn refusal(&self, line: &str) -> ApiError {
        let answer = self.raw(line);
        match Response::from_line(&answer, &Request::Networks)
            .unwrap()
            .result
        {
            Err(e) => e,
            Ok(r) => panic!("{line}: not refused: {r:?}"),
        }
    }

    fn stats(&self, network: &str) -> NetworkStats {
        match self.call(&Request::Stats {
            network: network.into(),
        }) {
            Ok(Reply::Stats(s)) => *s,
            other => panic!("stats: {other:?}"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn network(name: &str, mode: NetworkMode, ports: Vec<PortSpec>) -> Request {
    Request::AddNetwork {
        network: Box::new(NetworkSpec {
            name: name.into(),
            mode,
            ports,
            ..NetworkSpec::default()
        }),
    }
}

#[test]
fn error_kinds_cross_the_socket() {
    let d = Daemon::start("kinds");
    // An unknown network.
    let e = d
        .call(&Request::Stats {
            network: "nope".into(),
        })
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::NoSuchNetwork {
            network: "nope".into()
        }
    );
    assert_eq!(e.message, "no network \"nope\"");
    // Another version: both are named, whatever else the request says.
    let e = d.refusal(r#"{"v":2,"op":"networks"}"#);
    assert_eq!(
        e.kind,
        ErrorKind::Version {
            client: Some(2),
            daemon: VERSION
        }
    );
    assert!(
        e.message.contains("version 2") && e.message.contains(&format!("speaks {VERSION}")),
        "{e}"
    );
    let e = d.refusal(r#"{"v":3,"op":"a_future_op","thing":true}"#);
    assert!(
        matches!(
            e.kind,
            ErrorKind::Version {
                client: Some(3),
                ..
            }
        ),
        "{e:?}"
    );
    // Bad fields are named.
    for (line, field) in [
        (
            r#"{"v":1,"op":"add_static","network":"lab","mac":"02:00:zz:00:00:01","port":"pa"}"#,
            "mac",
        ),
        (
            r#"{"v":1,"op":"set_ageing","network":"lab","secs":"soon"}"#,
            "secs",
        ),
        (
            r#"{"v":1,"op":"add_network","network":{"name":"x","mode":"hub"}}"#,
            "network",
        ),
        (
            r#"{"v":1,"op":"set_max_learned","network":"lab","max_learned":-3}"#,
            "max_learned",
        ),
    ] {
        let e = d.refusal(line);
        assert_eq!(
            e.kind,
            ErrorKind::Invalid {
                field: field.into()
            },
            "{line}: {e}"
        );
    }
    assert!(
        d.refusal(r#"{"v":1,"op":"add_network","network":{"name":"x","mode":"hub"}}"#)
            .message
            .contains("mode \"hub\": expected bridge, macvlan or ipvlan")
    );
    assert_eq!(d.refusal("not json").kind, ErrorKind::Malformed);
    assert_eq!(
        d.refusal(r#"{"v":1,"op":"reboot"}"#).kind,
        ErrorKind::Malformed
    );

    // Networks without ports need no privileges: names, kinds and caps.
    d.call(&network("lab", NetworkMode::Bridge, Vec::new()))
        .unwrap();
    let e = d
        .call(&network("lab", NetworkMode::Bridge, Vec::new()))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Exists { name: "lab".into() });
    d.call(&network("mv", NetworkMode::Macvlan, Vec::new()))
        .unwrap();
    let e = d
        .call(&Request::SetStorm {
            network: "lab".into(),
            port: "pa".into(),
            storm: StormSpec::default(),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchPort { port: "pa".into() });
    let e = d
        .call(&Request::SetStorm {
            network: "mv".into(),
            port: "up".into(),
            storm: StormSpec {
                unknown_unicast: Some(10),
                ..StormSpec::default()
            },
        })
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Invalid {
            field: "storm".into()
        },
        "{e}"
    );
    let e = d
        .call(&Request::SetMaxLearned {
            network: "mv".into(),
            port: None,
            max_learned: 5,
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotABridge, "{e}");
    let e = d
        .call(&Request::Fdb {
            network: "mv".into(),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotABridge, "{e}");
    d.call(&Request::SetMaxLearned {
        network: "lab".into(),
        port: None,
        max_learned: 64,
    })
    .unwrap();
    assert_eq!(d.stats("lab").fdb.map(|f| f.max_learned), Some(64));
    let stopped = d
        .call(&Request::RemoveNetwork {
            network: "lab".into(),
        })
        .unwrap();
    assert!(matches!(stopped, Reply::Stopped(s) if s.rx == 0));
    let e = d
        .call(&Request::RemoveNetwork {
            network: "lab".into(),
        })
        .unwrap_err();
    assert!(
        d.refusal(r#"{"op":"networks"}"#)
            .message
            .contains("protocol version")
    );
    assert_eq!(
        e.kind,
        ErrorKind::NoSuchNetwork {
            network: "lab".into()
        }
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A named network namespace, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(short: &str) -> Netns {
        let name = format!("l2t-api-{short}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn storm_limits_and_learning_caps_change_on_a_running_network() {
    if !is_root() {
        eprintln!("skipped: TAP ports in a namespace need root");
        return;
    }
    let ns = Netns::new("rt");
    let d = Daemon::start("runtime");
    let tap = |name: &str| PortSpec {
        interface: name.into(),
        kind: Some(PortKind::Tap),
        netns: Some(ns.0.clone()),
        role: PortRole::Bridge,
        ..PortSpec::default()
    };
    d.call(&network(
        "lab",
        NetworkMode::Bridge,
        vec![tap("ta"), tap("tb")],
    ))
    .unwrap();
    let before = d.stats("lab");
    assert_eq!(before.ports[0].storm, None);
    assert_eq!(before.ports[0].learning.map(|l| l.max_learned), Some(0));

    let storm = StormSpec {
        broadcast: Some(100),
        multicast: Some(50),
        ..StormSpec::default()
    };
    d.call(&Request::SetStorm {
        network: "lab".into(),
        port: "ta".into(),
        storm,
    })
    .unwrap();
    d.call(&Request::SetMaxLearned {
        network: "lab".into(),
        port: Some("tb".into()),
        max_learned: 2,
    })
    .unwrap();
    let after = d.stats("lab");
    assert_eq!(after.ports[0].storm, Some(storm));
    assert_eq!(after.ports[1].storm, None);
    assert_eq!(after.ports[1].learning.map(|l| l.max_learned), Some(2));
    // The wire keeps each port's learning beside its counters.
    let line = d.raw(r#"{"v":1,"op":"stats","network":"lab"}"#);
    assert!(
        line.contains(r#""storm":{"broadcast":100,"multicast":50}"#),
        "{line}"
    );
    // Off again: a port with no limits shows none.
    d.call(&Request::SetStorm {
        network: "lab".into(),
        port: "ta".into(),
        storm: StormSpec::default(),
    })
    .unwrap();
    assert_eq!(d.stats("lab").ports[0].storm, None);
    // A port that is not a bridge port has nothing to cap.
    let e = d
        .call(&Request::SetMaxLearned {
            network: "lab".into(),
            port: Some("nope".into()),
            max_learned: 1,
        })
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::NoSuchPort {
            port: "nope".into()
        }
    );
}
