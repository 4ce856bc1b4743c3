//! The daemon's control socket under clients that misbehave: idle ones, one stalled in the
//! middle of a line, one that never reads its responses, too many of them, an over-long line.
//! Each runs the real `l2sw` binary (no network: no privileges needed) on a socket in a
//! directory of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use l2sw::api::MAX_REQUEST;
use l2sw::control::{IDLE_TIMEOUT, MAX_CONNECTIONS};

const NETWORKS: &[u8] = b"{\"v\":1,\"op\":\"networks\"}\n";

/// A daemon with no network, killed if the test fails before stopping it.
struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
    sock: PathBuf,
}

impl Daemon {
    fn start(tag: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("l2sw-ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sock = dir.join("ctl.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_l2sw"))
            .args(["run", "--socket", sock.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            dir,
            sock,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&d.sock).is_err() {
            assert!(Instant::now() < deadline, "the control socket appears");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.sock).unwrap()
    }

    /// Stops the daemon with SIGTERM and returns what it logged.
    fn stop(mut self) -> String {
        let child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "a clean exit: {log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The counter `name=N` of the daemon's closing log line.
fn counter(log: &str, name: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("control socket closed"))
        .unwrap_or_else(|| panic!("no closing line in the log: {log}"));
    let key = format!("{name}=");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        + key.len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Asks one request on `s` and returns the response line.
fn ask(s: &UnixStream, req: &[u8]) -> String {
    (&*s).write_all(req).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

/// Waits for the daemon to close `s` (end of stream or reset) within `within`; whatever it
/// sent before is returned.
fn wait_closed(s: &UnixStream, within: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("not closed within {within:?} ({:?}): {e}", start.elapsed()),
        }
        assert!(start.elapsed() < within, "not closed within {within:?}");
    }
}

fn sock_dir(sock: &Path) -> &Path {
    sock.parent().unwrap()
}

#[test]
fn misbehaving_clients_delay_nobody_and_are_closed_after_the_idle_timeout() {
    let d = Daemon::start("stall");
    assert!(sock_dir(&d.sock).exists());
    // Idle clients: connected, never a byte.
    let idle: Vec<UnixStream> = (0..4).map(|_| d.connect()).collect();
    // One stalled in the middle of a line.
    let stalled = d.connect();
    (&stalled).write_all(b"{\"v\":1,\"op\":").unwrap();
    // One that pipelines requests and never reads a response: it writes until its socket
    // is full, so the daemon holds a response it cannot deliver.
    let deaf = d.connect();
    deaf.set_nonblocking(true).unwrap();
    let burst = NETWORKS.repeat(4096);
    let mut off = 0;
    let fill_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < fill_until && off < burst.len() {
        match (&deaf).write(&burst[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("writing the burst: {e}"),
        }
    }
    assert!(off > 0);
    // One that sends a byte at a time.
    let dribble = d.connect();
    let dribbler = {
        let s = dribble.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in NETWORKS.iter().take(NETWORKS.len() - 1).cycle().take(200) {
                if (&s).write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };

    // Another client's requests are all answered promptly, on one connection and on fresh
    // ones, while those hang on.
    let deadline = Duration::from_millis(500);
    assert!(deadline * 4 < IDLE_TIMEOUT);
    let began = Instant::now();
    let good = d.connect();
    for i in 0..40 {
        let t = Instant::now();
        let line = if i % 2 == 0 {
            ask(&good, NETWORKS)
        } else {
            ask(&d.connect(), NETWORKS)
        };
        assert_eq!(line.trim(), r#"{"v":1,"ok":true,"data":[]}"#);
        let took = t.elapsed();
        assert!(took < deadline, "request {i} took {took:?}");
    }
    assert!(
        began.elapsed() < IDLE_TIMEOUT,
        "all answered before any timeout"
    );

    // The misbehaving ones are closed after the idle timeout, whatever they do.
    let limit = IDLE_TIMEOUT + Duration::from_secs(3);
    for s in &idle {
        assert!(wait_closed(s, limit).is_empty());
    }
    assert!(wait_closed(&stalled, limit).is_empty());
    deaf.set_nonblocking(false).unwrap();
    let owed = wait_closed(&deaf, limit);
    assert!(
        owed.len() < 64 * 1024 * 1024,
        "what the deaf client was owed is bounded"
    );
    assert!(wait_closed(&dribble, limit).is_empty());
    dribbler.join().unwrap();
    // And the daemon still answers.
    assert_eq!(
        ask(&d.connect(), NETWORKS).trim(),
        r#"{"v":1,"ok":true,"data":[]}"#
    );
    drop(good);
    let log = d.stop();
    assert!(
        counter(&log, "idle_closed") >= 7,
        "idle, stalled, deaf and dribbling clients counted: {log}"
    );
    assert_eq!(counter(&log, "refused"), 0, "{log}");
}

#[test]
fn connections_over_the_limit_are_refused_and_counted() {
    let d = Daemon::start("limit");
    // Each answered once, so that every one is known to be served.
    let open: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let s = d.connect();
            assert!(ask(&s, NETWORKS).contains("\"ok\":true"));
            s
        })
        .collect();
    let extra = d.connect();
    assert!(
        wait_closed(&extra, Duration::from_secs(2)).is_empty(),
        "the connection over the limit is closed at once"
    );
    let again = d.connect();
    assert!(wait_closed(&again, Duration::from_secs(2)).is_empty());
    // One goes, and a new one is served. Until the daemon has seen the close, a try is
    // refused like the two above (a loaded machine may take many tries).
    drop(open.into_iter().next());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tries_refused = 0;
    loop {
        let s = d.connect();
        (&s).write_all(NETWORKS).unwrap();
        let mut line = String::new();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if BufReader::new(&s).read_line(&mut line).is_ok() && line.contains("\"ok\":true") {
            break;
        }
        tries_refused += 1;
        assert!(Instant::now() < deadline, "a freed slot is served");
    }
    let log = d.stop();
    assert!(
        log.contains("control connection refused: too many connections"),
        "{log}"
    );
    let refused = counter(&log, "refused");
    assert!(
        (2..=2 + tries_refused).contains(&refused),
        "refused={refused}, tries refused after the close {tries_refused}: {log}"
    );
    assert!(counter(&log, "accepted") > MAX_CONNECTIONS as u64, "{log}");
}

#[test]
fn an_over_long_line_gets_the_error_and_the_daemon_lives_on() {
    let d = Daemon::start("long");
    let s = d.connect();
    // The daemon answers once it has read one byte past the limit and closes; the rest of
    // what the client wrote may never be read.
    let writer = {
        let s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = (&s).write_all(&vec![b'x'; MAX_REQUEST + 4096]);
        })
    };
    let got = wait_closed(&s, Duration::from_secs(5));
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("\"ok\":false"), "{text}");
    assert!(
        text.contains(&format!("request longer than {MAX_REQUEST} bytes")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    // A line of exactly the limit is read (and refused as malformed, not as too long).
    let exact = d.connect();
    let mut line = vec![b' '; MAX_REQUEST];
    line.push(b'\n');
    let answer = ask(&exact, &line);
    assert!(answer.contains("malformed request"), "{answer}");
    assert_eq!(
        ask(&exact, NETWORKS).trim(),
        r#"{"v":1,"ok":true,"data":[]}"#
    );
    let log = d.stop();
    assert_eq!(counter(&log, "oversize"), 1, "{log}");
}
