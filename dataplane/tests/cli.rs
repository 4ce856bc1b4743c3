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

#[test]
fn without_a_configuration_file_it_waits_on_the_control_socket() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;

    let dir = std::env::temp_dir().join(format!("l2sw-cli-empty-{}", std::process::id()));
    let sock = dir.join("ctl.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2sw"))
        .args(["run", "--socket", sock.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = UnixStream::connect(&sock) {
            stream = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut stream = stream.expect("the control socket appears");
    stream
        .write_all(b"{\"v\":1,\"op\":\"networks\"}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), r#"{"v":1,"ok":true,"data":[]}"#);
    drop(stream);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "a clean exit on SIGTERM");
    assert!(!sock.exists(), "the socket is removed on exit");
    let _ = std::fs::remove_dir_all(&dir);
}
