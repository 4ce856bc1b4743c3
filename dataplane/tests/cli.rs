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

/// Runs `ip ARGS`; it must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_under_load_exits_cleanly_and_the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    if !l2sw::port::sys::is_root() {
        eprintln!("skipped: namespaces need root");
        return;
    }
    let ns = format!("l2sw-cli-term-{}", std::process::id());
    ip(&["netns", "add", &ns]);
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir).unwrap();
    let cleanup = || {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        let _ = std::fs::remove_dir_all(&dir);
    };
    for (a, b) in [("pa", "ea"), ("pb", "eb")] {
        ip(&[
            "-n", &ns, "link", "add", a, "type", "veth", "peer", "name", b,
        ]);
        for dev in [a, b] {
            ip(&["-n", &ns, "link", "set", dev, "up"]);
        }
    }
    let config = dir.join("l2sw.toml");
    std::fs::write(
        &config,
        format!(
            "[[network]]\nname = \"lab\"\nmode = \"bridge\"\n\
             [[network.port]]\ninterface = \"pa\"\nnetns = \"{ns}\"\nrole = \"bridge\"\n\
             [[network.port]]\ninterface = \"pb\"\nnetns = \"{ns}\"\nrole = \"bridge\"\n\
             [[network.port]]\ninterface = \"tp\"\nkind = \"tap\"\nnetns = \"{ns}\"\nrole = \"bridge\"\n"
        ),
    )
    .unwrap();
    let sock = dir.join("ctl.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2sw"))
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--socket",
            sock.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sock.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is the owner's alone");

    // Load: broadcasts into pa from its peer as fast as a socket sends them.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sent = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let tx = l2sw::port::sys::netns::run_in(&ns, || {
                l2sw::port::sys::packet::PacketSocket::open("ea")
            })
            .unwrap()
            .unwrap();
            let frame = l2sw::wire::craft::ethernet(
                l2sw::wire::Mac::BROADCAST,
                l2sw::wire::Mac([2, 0, 0, 0, 0, 1]),
                l2sw::wire::craft::ETHERTYPE_EXPERIMENTAL,
                b"load",
            );
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if tx.send(&frame).unwrap_or(false) {
                    n += 1;
                }
            }
            n
        });
        std::thread::sleep(Duration::from_millis(500));
        let term = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exited = child.wait().unwrap();
        let took = term.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            exited.success(),
            "a clean exit on SIGTERM under load: {exited:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "it stopped promptly ({took:?})"
        );
        load.join().unwrap()
    });
    assert!(sent > 1000, "there was load: {sent} frames");
    assert!(!sock.exists(), "the socket is removed on exit");
    let links = Command::new("ip")
        .args(["-n", &ns, "-o", "link"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(" tp:"),
        "the TAP device left with the daemon"
    );
    cleanup();
}
