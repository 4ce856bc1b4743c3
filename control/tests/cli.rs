//! l2ctl's command line without a daemon or privileges: help that teaches, completions,
//! refused arguments, the in-memory demo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn l2ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2ctl"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_teaches_the_model_and_a_first_session() {
    let out = l2ctl(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for needle in [
        "A first session",
        "l2sw run",
        "network create",
        "host-access",
        "--host-netns",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from --help");
    }
    let create = stdout(&l2ctl(&["network", "create", "--help"]));
    for needle in [
        "--ip-range",
        "--aux-address",
        "IFACE.VID",
        "passthru",
        "l2ctl network create lan -d macvlan",
    ] {
        assert!(
            create.contains(needle),
            "{needle:?} missing from network create --help"
        );
    }
}

#[test]
fn completions_cover_every_command() {
    let out = l2ctl(&["completions", "bash"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in ["network", "attach", "host-access", "up", "down", "sync"] {
        assert!(
            text.contains(cmd),
            "{cmd} missing from the bash completions"
        );
    }
}

#[test]
fn wrong_arguments_are_refused_with_the_choices() {
    // `overlay` is a driver now; `hub` never was.
    let out = l2ctl(&["network", "create", "x", "--driver", "hub"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bridge")
            && err.contains("macvlan")
            && err.contains("ipvlan")
            && err.contains("overlay"),
        "{err}"
    );
    let out = l2ctl(&["attach", "w", "--network", "n", "--mac", "not-a-mac"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid MAC address"));
}

#[test]
fn the_in_memory_demo_runs_without_privileges() {
    let out = l2ctl(&["demo", "--in-memory"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("in memory"));
}

/// The shipped systemd unit: restarts a failed daemon, restores l2ctl's state once it
/// answers with a command line l2ctl accepts, and (where `systemd-analyze` exists) parses.
#[test]
fn the_systemd_unit_restarts_the_daemon_and_restores_the_state() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/systemd/l2sw.service"
    );
    let unit = std::fs::read_to_string(path).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}= missing from {path}"))
            .to_owned()
    };
    assert_eq!(value("Restart"), "on-failure");
    let start = value("ExecStart");
    assert!(
        start.contains(" run --socket /run/l2sw/l2sw.sock"),
        "{start}"
    );
    let post = value("ExecStartPost");
    let mut words = post.trim_start_matches('-').split_whitespace();
    assert!(words.next().unwrap().ends_with("/l2ctl"), "{post}");
    let args: Vec<&str> = words.collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--socket", "/run/l2sw/l2sw.sock"]),
        "the daemon's socket: {post}"
    );
    assert!(args.contains(&"sync"), "{post}");
    // l2ctl accepts exactly these arguments (help stops it before it does anything).
    let out = l2ctl(&[args.as_slice(), &["--help"]].concat());
    assert!(
        out.status.success(),
        "{post}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("--wait"));

    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze is not installed: the unit's syntax is not checked");
        return;
    };
    // The binaries where this build put them (verify checks that they exist).
    let dir = tempfile::tempdir().unwrap();
    let local = unit.replace("/usr/local/bin/l2ctl", env!("CARGO_BIN_EXE_l2ctl"));
    let local = local.replace("/usr/local/bin/l2sw", env!("CARGO_BIN_EXE_l2ctl"));
    let copy = dir.path().join("l2sw.service");
    std::fs::write(&copy, local).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("l2sw.service"),
        "{said}"
    );
}

fn which(prog: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
        .ok_or(())
}
