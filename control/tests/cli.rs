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
    let out = l2ctl(&["network", "create", "x", "--driver", "overlay"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bridge") && err.contains("macvlan") && err.contains("ipvlan"),
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
