//! The `l2sw` binary's command line: help that teaches, and clear errors on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn l2sw(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_l2sw"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn help_explains_the_configuration_file() {
    let (ok, text) = l2sw(&["run", "--help"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("[[network.port]]") && text.contains("SIGTERM"),
        "{text}"
    );
    assert!(
        text.contains("--busy-poll") && text.contains("--socket"),
        "{text}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let (ok, text) = l2sw(&["run", "--config", "/nonexistent/l2sw.toml"]);
    assert!(!ok);
    assert!(text.contains("reading /nonexistent/l2sw.toml"), "{text}");
}

#[test]
fn a_bad_file_says_where() {
    let dir = std::env::temp_dir().join(format!("l2sw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[network]]\nname = \"x\"\nmode = \"hub\"\n").unwrap();
    let (ok, text) = l2sw(&["run", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        text.contains("mode \"hub\": expected bridge, macvlan or ipvlan"),
        "{text}"
    );
    std::fs::write(&path, "").unwrap();
    let (ok, text) = l2sw(&["run", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("no [[network]] to run"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
