//! l2ctl's runtime operations on a running network, end to end: the real `l2ctl` binary against
//! a daemon on a socket of the test's own, workloads in namespaces l2ctl makes. `storm` and
//! `learn-cap` change the running switch, `stats` shows what they did in its table, and a
//! refusal comes back with the daemon's typed kind (no network, no port).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use l2sw::api::ErrorKind;
use l2sw_control::client::Client;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl;
use l2sw_tests::Sandbox;

/// A host namespace, a daemon, a state directory, and the workloads made, removed on drop.
struct Lab {
    _sandbox: Sandbox,
    host: String,
    dir: tempfile::TempDir,
    daemon: Option<EmbeddedDaemon>,
    workloads: Vec<String>,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        let mut sandbox = Sandbox::new(test)?;
        let host = sandbox.netns("host");
        let dir = tempfile::tempdir().unwrap();
        let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
        Some(Lab {
            _sandbox: sandbox,
            host,
            dir,
            daemon,
            workloads: Vec::new(),
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    /// A workload name unique to this process.
    fn w(&mut self, short: &str) -> String {
        let name = format!("rt{}-{short}", std::process::id() % 100_000);
        self.workloads.push(name.clone());
        name
    }

    fn l2ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_l2ctl"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .args(["--host-netns", &self.host])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.l2ctl(args);
        assert!(
            out.status.success(),
            "l2ctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.l2ctl(args);
        assert!(
            !out.status.success(),
            "l2ctl {} should fail",
            args.join(" ")
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
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
        for w in &self.workloads {
            let _ = nl::netns_delete(w);
        }
    }
}

#[test]
fn storm_limits_and_learning_caps_change_a_running_network_and_show_in_stats() {
    let Some(mut lab) = Lab::new("l2ctl-runtime") else {
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
