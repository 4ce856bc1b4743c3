//! The explorer in a real browser: headless Debian `chromium`, driven over WebDriver
//! (`chromedriver`) by a small HTTP client written here. The page's receivers are checked
//! against `l2ctl explain --format json`, the hairpin toggle against the data's other setting,
//! the static `docs/modes.html` from a file:// URL, and the live view against a daemon network
//! in throw-away namespaces while traffic runs. Screenshots land in `target/tmp/ui/`.
//!
//! Without `chromium` and `chromedriver` the browser tests say so and pass; CI installs both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw_tests::l2ctl::L2ctl;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use l2sw::wire::Mac;
use l2sw_control::embedded::EmbeddedDaemon;
use l2sw_control::nl;
use l2sw_control::probe::udp_reaches;
use l2sw_tests::Sandbox;
use serde_json::{Value, json};

const W3C_ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const ARROW_RIGHT: &str = "\u{E014}";

/// Polls `f` until it gives `Some`, or panics with `what` after `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when the test ends, however it ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where screenshots go: under the target directory, for people to look at.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- a WebDriver client over plain HTTP/1.1 ----

/// One HTTP exchange with `Connection: close`; returns the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // chromedriver keeps the connection open whatever the request says: read the header,
    // then Content-Length bytes (or to the end, or the chunks).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (split, head) = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (at, String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase());
        }
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "no HTTP header in {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    };
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let have = raw.len() - (split + 4);
        let done = match length {
            Some(len) => have >= len,
            None if chunked => raw[split + 4..].ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let mut rest = raw[split + 4..].to_vec();
    if chunked {
        rest = dechunk(&rest);
    }
    (status, rest)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let data: Vec<u32> = chunk
            .iter()
            .take_while(|&&c| c != b'=')
            .map(|&c| val(c))
            .collect();
        let mut n = 0u32;
        for (i, v) in data.iter().enumerate() {
            n |= v << (18 - 6 * i);
        }
        for i in 0..data.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// chromedriver and one headless chromium session.
struct Browser {
    addr: SocketAddr,
    session: String,
    _driver: Kill,
}

impl Browser {
    /// A browser, or `None` (with the reason printed) when chromium or chromedriver is absent.
    fn start(test: &str) -> Option<Browser> {
        let find = |names: &[&str]| {
            names.iter().find_map(|n| {
                let out = Command::new("sh")
                    .args(["-c", &format!("command -v {n}")])
                    .output()
                    .ok()?;
                let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                (out.status.success() && !p.is_empty()).then_some(p)
            })
        };
        let (Some(chromium), Some(driver)) = (
            find(&["chromium", "chromium-browser"]),
            find(&["chromedriver"]),
        ) else {
            eprintln!(
                "skipped {test}: chromium and chromedriver are not installed \
                 (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Kill(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for(30, "chromedriver to be ready", || {
            TcpStream::connect(addr).ok()?;
            let (_, body) = http(addr, "GET", "/status", None);
            let v: Value = serde_json::from_slice(&body).ok()?;
            (v["value"]["ready"] == json!(true)).then_some(())
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1100",
                         "--hide-scrollbars"],
            },
        }}});
        let (status, body) = http(addr, "POST", "/session", Some(&caps));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "new session: {v}");
        let session = v["value"]["sessionId"].as_str().unwrap().to_owned();
        Some(Browser {
            addr,
            session,
            _driver: driver,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (status, raw) = http(self.addr, method, &path, body.as_ref());
        let v: Value = serde_json::from_slice(&raw)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&raw)));
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn click(&self, css: &str) {
        let e = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        let id = e[W3C_ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {e}"))
            .to_owned();
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Presses and releases `key` (a character, or a WebDriver key code) as a person would.
    fn key(&self, key: &str) {
        self.call(
            "POST",
            "/actions",
            Some(
                json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
                    { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key },
                ]}]}),
            ),
        );
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.call("GET", "/screenshot", None);
        let path = shots().join(format!("{name}.png"));
        std::fs::write(&path, base64_decode(b64.as_str().unwrap())).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = TcpStream::connect(self.addr).map(|_| http(self.addr, "DELETE", &path, None));
    }
}

// ---- l2ctl ----

/// `l2ctl --socket SOCKET ui --listen 127.0.0.1:0` running, and the URL it printed.
fn ui(socket: &Path) -> (Kill, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
        .arg("--socket")
        .arg(socket)
        .args(["ui", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (Kill(child), url)
}

/// `explain all --format json` for both upstream settings, keyed by (mode, off|on|none) as
/// the page keys them.
fn explanations() -> BTreeMap<(String, String), Value> {
    let mut all = BTreeMap::new();
    for hp in ["off", "on"] {
        let out = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
            .args([
                "explain",
                "all",
                "--format",
                "json",
                "--upstream-hairpin",
                hp,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        for e in v {
            let key = match e["upstream_hairpin"].as_bool() {
                None => "none",
                Some(true) => "on",
                Some(false) => "off",
            };
            all.insert((e["mode"].as_str().unwrap().to_owned(), key.to_owned()), e);
        }
    }
    all
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

fn split(s: &Value) -> Vec<String> {
    let mut n: Vec<String> = s
        .as_str()
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    n.sort();
    n
}

/// What the page shows now.
const SHOWN: &str = r##"
    const b = document.body.dataset, r = document.getElementById("result");
    const marks = Array.from(document.querySelectorAll("#port-marks li"));
    return { mode: b.mode, hairpin: b.hairpin, frame: +b.frame, hop: +b.hop,
             final: r.dataset.final === "yes", receivers: r.dataset.receivers,
             result: r.textContent,
             sent: marks.filter((x) => x.dataset.sent === "yes").map((x) => x.dataset.port),
             not: marks.filter((x) => x.dataset.sent === "no").map((x) => x.textContent),
             pressed: document.getElementById("hairpin").getAttribute("aria-pressed"),
             active: Array.from(document.querySelectorAll("#topo .sw.active"))
               .map((x) => x.dataset.switch),
             overlay: document.getElementById("overlay")?.textContent ?? null,
             vteps: Array.from(document.querySelectorAll("#topo [data-vtep]"))
               .map((x) => x.dataset.vtep),
             vtep_ok: Array.from(document.querySelectorAll("#topo [data-vtep-mark=ok]"))
               .map((x) => x.dataset.vtepIp) };
"##;

/// The IPv4 addresses named in `s` (the VTEPs an overlay hop's words name).
fn addresses(s: &str) -> Vec<String> {
    let mut a: Vec<String> = s
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| w.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_owned)
        .collect();
    a.sort();
    a.dedup();
    a
}

#[test]
fn the_explorer_shows_what_explain_json_says_for_every_mode_and_frame() {
    let Some(b) = Browser::start("the_explorer_shows_what_explain_json_says") else {
        return;
    };
    let want = explanations();
    let (_ui, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    b.open(&format!("{url}#mode=bridge&hairpin=off&frame=1&hop=1"));
    b.screenshot("explorer-bridge");
    // The overlay: its first frame (a broadcast) on h1, fanning out to the other VTEPs, then
    // taken in on h2.
    b.open(&format!("{url}#mode=overlay&frame=1&hop=1"));
    let at_rest = || {
        wait_for(10, "the animation to end", || {
            (b.js("return document.body.dataset.moving ?? null") == json!("no")).then_some(())
        })
    };
    at_rest();
    b.screenshot("explorer-overlay");
    b.key(ARROW_RIGHT);
    at_rest();
    b.screenshot("explorer-overlay-h2");
    b.open(&format!("{url}#mode=bridge&hairpin=off&frame=1&hop=1"));
    let modes: BTreeSet<&String> = want.keys().map(|(m, _)| m).collect();
    let mut seen = BTreeSet::new();
    let mut frames = 0;
    let mut overlay_hops = 0;
    assert!(modes.contains(&"overlay".to_owned()), "{modes:?}");
    for _ in 0..modes.len() {
        let mode = b.js(SHOWN)["mode"].as_str().unwrap().to_owned();
        let settings: &[&str] = if want.contains_key(&(mode.clone(), "on".into())) {
            &["off", "on"]
        } else {
            &["none"]
        };
        for &hp in settings {
            if hp != "none" && b.js(SHOWN)["hairpin"] != json!(hp) {
                b.key("h");
            }
            b.key("1");
            let e = &want[&(mode.clone(), hp.to_owned())];
            let steps = e["steps"].as_array().unwrap();
            let mut last = (0, 0);
            loop {
                let s = b.js(SHOWN);
                assert_eq!(
                    (s["mode"].as_str(), s["hairpin"].as_str()),
                    (Some(&*mode), Some(hp))
                );
                let (f, h) = (s["frame"].as_u64().unwrap(), s["hop"].as_u64().unwrap());
                if (f, h) == last {
                    break;
                }
                last = (f, h);
                let step = &steps[f as usize - 1];
                let hop = &step["hops"][h as usize - 1];
                let ctx = format!("{mode} hairpin {hp} frame {f} hop {h}: {s}");
                assert_eq!(names(&s["sent"]), names(&hop["egress"]), "✓ marks of {ctx}");
                assert_eq!(s["active"], json!([hop["switch"]]), "switch lit: {ctx}");
                // An overlay hop's words, beside the bridge's rule; the VTEPs it marks ✓
                // are the ones those words name.
                match hop["overlay"].as_str() {
                    Some(o) => {
                        let shown = s["overlay"].as_str().unwrap_or_default();
                        assert_eq!(shown, format!("VXLAN: {o}"), "{ctx}");
                        assert_eq!(s["vteps"].as_array().map(Vec::len), Some(3), "{ctx}");
                        if o.starts_with("vxlan_xmit") {
                            assert_eq!(names(&s["vtep_ok"]), addresses(o), "{ctx}");
                        }
                        overlay_hops += 1;
                    }
                    None => assert_eq!(s["overlay"], Value::Null, "{ctx}"),
                }
                let kfn = hop["kernel_fn"].as_str().unwrap();
                for not in s["not"].as_array().unwrap() {
                    let t = not.as_str().unwrap();
                    assert!(t.starts_with('✗') || t.starts_with('⇢'), "{ctx}");
                    assert!(
                        t.starts_with('⇢') || t.contains(kfn),
                        "✗ names {kfn}: {ctx}"
                    );
                }
                if s["final"] == json!(true) {
                    assert_eq!(split(&s["receivers"]), names(&step["receivers"]), "{ctx}");
                    assert!(s["result"].as_str().unwrap().starts_with('⇒'), "{ctx}");
                    frames += 1;
                }
                b.key(ARROW_RIGHT);
            }
            assert_eq!(
                last.0 as usize,
                steps.len(),
                "{mode} {hp}: every frame stepped"
            );
            seen.insert((mode.clone(), hp.to_owned()));
        }
        b.key("m");
    }
    assert_eq!(seen.len(), want.len(), "every mode and setting: {seen:?}");
    let total: usize = want
        .values()
        .map(|e| e["steps"].as_array().unwrap().len())
        .sum();
    assert_eq!(frames, total);
    let want_overlay = want
        .values()
        .flat_map(|e| e["steps"].as_array().unwrap())
        .flat_map(|s| s["hops"].as_array().unwrap())
        .filter(|h| h["overlay"].is_string())
        .count();
    assert!(want_overlay > 0);
    assert_eq!(
        overlay_hops, want_overlay,
        "every overlay hop's words shown"
    );
}

#[test]
fn the_hairpin_toggle_and_play_change_what_the_explorer_shows() {
    let Some(b) = Browser::start("the_hairpin_toggle_and_play_change_what_the_explorer_shows")
    else {
        return;
    };
    let want = explanations();
    // The first frame of macvlan-vepa whose receivers differ with the upstream hairpin.
    let off = &want[&("macvlan-vepa".into(), "off".into())]["steps"];
    let on = &want[&("macvlan-vepa".into(), "on".into())]["steps"];
    let i = (0..off.as_array().unwrap().len())
        .find(|&i| names(&off[i]["receivers"]) != names(&on[i]["receivers"]))
        .expect("a frame the hairpin changes");
    let (_ui, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    b.open(&format!(
        "{url}#mode=macvlan-vepa&hairpin=off&frame={}&hop=end",
        i + 1
    ));
    let s = b.js(SHOWN);
    assert_eq!(split(&s["receivers"]), names(&off[i]["receivers"]), "{s}");
    assert_eq!(s["pressed"], json!("false"));
    b.screenshot("hairpin-off");
    b.click("#hairpin");
    // The same frame from its start, with the hairpin on: step to its end.
    for _ in 0..10 {
        if b.js(SHOWN)["final"] == json!(true) {
            break;
        }
        b.key(ARROW_RIGHT);
    }
    let s = b.js(SHOWN);
    assert_eq!(s["hairpin"], json!("on"));
    assert_eq!(s["pressed"], json!("true"));
    assert_eq!(s["frame"].as_u64(), Some(i as u64 + 1));
    assert_eq!(split(&s["receivers"]), names(&on[i]["receivers"]), "{s}");
    b.screenshot("hairpin-on");
    b.key("h");
    assert_eq!(b.js(SHOWN)["hairpin"], json!("off"));

    // Play moves on by itself; pause stops it.
    b.open(&format!("{url}#mode=bridge&frame=1&hop=1"));
    b.click("#play");
    wait_for(20, "play to step", || {
        (b.js(SHOWN)["frame"].as_u64() != Some(1)).then_some(())
    });
    b.click("#pause");
    let at = b.js(SHOWN)["frame"].clone();
    assert_eq!(
        b.js("return document.getElementById('pause').disabled"),
        json!(true)
    );
    assert_eq!(b.js(SHOWN)["frame"], at);
}

#[test]
fn bad_input_gives_an_error_page_not_a_panic() {
    let Some(b) = Browser::start("bad_input_gives_an_error_page_not_a_panic") else {
        return;
    };
    let (_ui, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    b.open(&format!("{url}#mode=no-such-mode"));
    let err = b.js("return document.getElementById('error').textContent");
    assert!(
        err.as_str()
            .unwrap()
            .contains("unknown mode \"no-such-mode\""),
        "{err}"
    );
    b.open(&format!("{url}api/explain/no-such-mode"));
    let body = b.js("return document.body.textContent");
    assert!(body.as_str().unwrap().contains("no-such-mode"), "{body}");
    b.open(&format!("{url}no/such/page"));
    let h1 = b.js("return document.querySelector('h1').textContent");
    assert_eq!(h1, json!("✗ 404"));
    // No daemon: the live view says so, in words and with a ✗.
    b.open(&format!("{url}?network=no-such-network"));
    let status = wait_for(20, "the live view's status", || {
        let t = b.js("return document.getElementById('live-status').textContent");
        let t = t.as_str()?.to_owned();
        (!t.is_empty()).then_some(t)
    });
    assert!(
        status.starts_with('✗') && status.contains("daemon"),
        "{status}"
    );
    // The server still answers.
    b.open(&url);
    assert_eq!(b.js(SHOWN)["mode"], json!("bridge"));
}

#[test]
fn docs_modes_html_steps_its_frames_from_a_file() {
    let Some(b) = Browser::start("docs_modes_html_steps_its_frames_from_a_file") else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/modes.html");
    let path = path.canonicalize().unwrap();
    b.open(&format!(
        "file://{}#mode=macvlan-vepa&hairpin=off",
        path.display()
    ));
    assert_eq!(
        b.js("return document.getElementById('live').hidden"),
        json!(true)
    );
    let s = b.js(SHOWN);
    assert_eq!(
        (s["mode"].clone(), s["frame"].clone()),
        (json!("macvlan-vepa"), json!(1))
    );
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        b.click("#step");
        let s = b.js(SHOWN);
        seen.insert((s["frame"].as_u64().unwrap(), s["hop"].as_u64().unwrap()));
    }
    assert_eq!(seen.len(), 6, "every step moved: {seen:?}");
    b.screenshot("modes-html-file");
}

// ---- the live view ----

/// A daemon, a host namespace and two workloads on network `front`, cleaned up on drop.
struct Lab {
    _sandbox: Sandbox,
    host: String,
    dir: tempfile::TempDir,
    daemon: Option<EmbeddedDaemon>,
    prefix: String,
}

impl Lab {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("l2sw.sock")
    }

    fn l2ctl(&self, args: &[&str]) -> String {
        L2ctl::new(
            env!("CARGO_BIN_EXE_l2ctl"),
            self.dir.path(),
            Some(&self.host),
        )
        .ok(args)
    }

    fn ip(&self, workload: &str, net: &str) -> IpAddr {
        let v: Value = serde_json::from_str(&self.l2ctl(&["network", "inspect", net])).unwrap();
        let cidr = v["Containers"][workload]["IPv4Address"].as_str().unwrap();
        cidr.split('/').next().unwrap().parse().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        let ours = format!("{}-", self.prefix);
        for ns in nl::netns_list().unwrap_or_default() {
            if ns.starts_with(&ours) {
                let _ = nl::netns_delete(&ns);
            }
        }
        if let Ok(dirs) = std::fs::read_dir(nl::ETC_NETNS) {
            for d in dirs.flatten() {
                if d.file_name().to_string_lossy().starts_with(&ours) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
    }
}

#[test]
fn the_live_view_shows_counters_rise_and_frames_pass_while_traffic_runs() {
    let test = "the_live_view_shows_counters_rise_and_frames_pass";
    let Some(mut sandbox) = Sandbox::new("ui-live") else {
        return;
    };
    let Some(b) = Browser::start(test) else {
        return;
    };
    let host = sandbox.netns("host");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
    let lab = Lab {
        _sandbox: sandbox,
        host,
        dir,
        daemon,
        prefix: format!("u{}", std::process::id() % 100_000),
    };
    let (a, c) = (format!("{}-a", lab.prefix), format!("{}-c", lab.prefix));
    lab.l2ctl(&["network", "create", "front", "--subnet", "10.81.0.0/24"]);
    lab.l2ctl(&["attach", &a, "--network", "front"]);
    lab.l2ctl(&["attach", &c, "--network", "front"]);
    let to = lab.ip(&c, "front");

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, a, c) = (stop.clone(), a.clone(), c.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = udp_reaches(Some(&a), Some(&c), to);
            }
        })
    };
    let (_ui, url) = ui(&lab.socket());
    b.open(&format!("{url}?network=front"));
    let rx = |b: &Browser| -> Option<u64> {
        let v = b.js(
            "return Array.from(document.querySelectorAll('#counters tbody td[data-k=rx]'))\
             .map((td) => +td.textContent)",
        );
        let v = v.as_array()?;
        (!v.is_empty()).then(|| v.iter().filter_map(Value::as_u64).sum())
    };
    let first = wait_for(30, "the counters table", || rx(&b));
    wait_for(30, "rx counters to rise", || {
        rx(&b).filter(|&n| n > first).map(|_| ())
    });
    let feed = wait_for(30, "traced frames in the feed", || {
        let n = b.js("return document.querySelectorAll('#feed li').length");
        n.as_u64().filter(|&n| n >= 3)
    });
    assert!(feed >= 3);
    let status = b.js("return document.getElementById('live-status').textContent");
    assert_eq!(status, json!("✓ live: front"));
    // Frames move through the ports as they come: the way in lit, the way out ticked.
    let moving = wait_for(30, "a traced frame animated through the ports", || {
        let v = b.js(
            "return { now: document.getElementById('live-now').textContent, \
             lit: document.querySelectorAll('#live-ports .port.in, #live-ports .port.sent').length }",
        );
        (v["lit"].as_u64()? >= 1 && !v["now"].as_str()?.is_empty()).then_some(v)
    });
    assert!(moving["now"].as_str().unwrap().contains(" in "), "{moving}");
    b.click("#feed li button");
    let detail = b.js("return document.getElementById('feed-detail').textContent");
    let detail = detail.as_str().unwrap();
    assert!(
        detail.contains("rule:") && detail.contains(" in "),
        "a frame's decode, rule and destination: {detail}"
    );
    assert!(
        detail.contains("to:") || detail.contains("dropped"),
        "{detail}"
    );
    assert_eq!(
        b.js("return document.getElementById('overlay-live').hidden"),
        json!(true),
        "a bridge network has no overlay panel"
    );
    b.screenshot("live-front");

    // An `l2ctl trace` of the same network meanwhile takes the recording over and stops it
    // when done; the live view starts another and goes on.
    let seen = |b: &Browser| -> u64 {
        let t = b.js("return document.getElementById('feed-stats').textContent");
        t.as_str()
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    lab.l2ctl(&["trace", "front", "--count", "3"]);
    let after = seen(&b);
    wait_for(30, "the live feed to go on after another trace", || {
        (seen(&b) > after).then_some(())
    });

    // An unknown network: the page says so.
    b.open(&format!("{url}?network=no-such-network"));
    let status = wait_for(20, "the live view's status", || {
        let t = b.js("return document.getElementById('live-status').textContent");
        let t = t.as_str()?.to_owned();
        t.contains("no-such-network").then_some(t)
    });
    assert!(status.starts_with('✗'), "{status}");

    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    for w in [&a, &c] {
        lab.l2ctl(&["detach", w, "--network", "front"]);
    }
}

#[test]
fn the_live_view_shows_an_overlay_networks_vxlan_port() {
    let test = "the_live_view_shows_an_overlay_networks_vxlan_port";
    let Some(mut sandbox) = Sandbox::new("ui-overlay") else {
        return;
    };
    let Some(b) = Browser::start(test) else {
        return;
    };
    // The underlay: this host's VTEP address on a veth to a namespace that answers nothing
    // (the remote VTEP is absent; the copies for it still leave by the vxlan port).
    let host = sandbox.netns("host");
    let far = sandbox.netns("far");
    sandbox.veth(
        &host,
        "eth0",
        Mac([2, 0, 0, 0xfb, 0, 1]),
        &far,
        "eth0",
        Mac([2, 0, 0, 0xfb, 0, 2]),
    );
    sandbox
        .links(&host)
        .add_address("eth0", IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 24)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Some(EmbeddedDaemon::start(&dir.path().join("l2sw.sock")).unwrap());
    let lab = Lab {
        _sandbox: sandbox,
        host,
        dir,
        daemon,
        prefix: format!("v{}", std::process::id() % 100_000),
    };
    let a = format!("{}-a", lab.prefix);
    lab.l2ctl(&[
        "network",
        "create",
        "ov",
        "-d",
        "overlay",
        "--vni",
        "4242",
        "--local",
        "192.0.2.1",
        "--remote",
        "192.0.2.2",
        "--subnet",
        "10.91.0.0/24",
    ]);
    lab.l2ctl(&["attach", &a, "--network", "ov"]);
    // Datagrams to an address nobody has: ARP broadcasts, flooded into the overlay.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, a) = (stop.clone(), a.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = udp_reaches(Some(&a), None, "10.91.0.250".parse().unwrap());
            }
        })
    };
    let (_ui, url) = ui(&lab.socket());
    b.open(&format!("{url}?network=ov"));
    wait_for(30, "the vxlan port's tx counter to rise", || {
        let v = b.js(
            "const td = document.querySelector('#counters tbody tr[data-port=vxlan] td[data-k=tx]');\
             return td ? +td.textContent : null",
        );
        v.as_u64().filter(|&n| n > 0)
    });
    let into = wait_for(30, "a traced frame sent into the overlay", || {
        let v = b.js("return Array.from(document.querySelectorAll('#feed li'))\
             .map((li) => li.textContent).filter((t) => t.includes('vxlan'))");
        v.as_array()?.first()?.as_str().map(str::to_owned)
    });
    assert!(into.contains(" in "), "{into}");
    let status = b.js("return document.getElementById('live-status').textContent");
    assert_eq!(status, json!("✓ live: ov"));
    // The overlay's own panel: its VNI and settings, and the remote's copies counted.
    let about = b.js("return document.getElementById('overlay-about').textContent");
    let about = about.as_str().unwrap_or_default();
    assert!(
        about.contains("VNI 4242") && about.contains("192.0.2.1:4789"),
        "{about}"
    );
    wait_for(30, "the remote VTEP's tx counter to rise", || {
        let v = b.js(
            "const td = document.querySelector('#remotes tbody tr[data-vtep=\"192.0.2.2\"] td[data-k=tx]');\
             return td ? +td.textContent : null",
        );
        v.as_u64().filter(|&n| n > 0)
    });
    assert_eq!(
        b.js("return document.getElementById('overlay-live').hidden"),
        json!(false)
    );
    b.js("document.getElementById('live').scrollIntoView(); return null");
    b.screenshot("live-overlay");
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    lab.l2ctl(&["detach", &a, "--network", "ov"]);
}

#[test]
fn kernel_beside_l2sw_marks_each_frame_by_agreement() {
    let test = "kernel_beside_l2sw_marks_each_frame_by_agreement";
    if !l2sw_tests::privileged_or_skip(test) {
        return;
    }
    let Some(b) = Browser::start(test) else {
        return;
    };
    let want = explanations();
    let (_ui, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    b.open(&format!(
        "{url}#mode=macvlan-bridge&hairpin=off&frame=1&hop=end"
    ));
    assert_eq!(
        b.js("return document.getElementById('verify').hidden"),
        json!(false)
    );
    b.key("k");
    let done = wait_for(180, "verify to answer", || {
        let v = b.js("return document.getElementById('verify-status').dataset.done || ''");
        let v = v.as_str()?.to_owned();
        (!v.is_empty()).then_some(v)
    });
    let status = b.js("return document.getElementById('verify-status').textContent");
    assert_eq!(done, "macvlan-bridge|off", "{status}");
    let marks = b.js(
        "return Array.from(document.querySelectorAll('#frame-list button'))\
         .map((x) => [x.dataset.verify || '', x.textContent])",
    );
    let steps = want[&("macvlan-bridge".into(), "off".into())]["steps"]
        .as_array()
        .unwrap()
        .len();
    let marks = marks.as_array().unwrap();
    assert_eq!(marks.len(), steps);
    for m in marks {
        let (mark, text) = (m[0].as_str().unwrap(), m[1].as_str().unwrap());
        let sign = match mark {
            "same" => '✓',
            "hashed-multicast" => '~',
            "differ" => '✗',
            other => panic!("frame without a verify mark: {other:?} {text}"),
        };
        assert!(text.starts_with(sign), "{mark}: {text}");
    }
    let sides = b.js("const s = document.getElementById('sides'); \
         return s && Array.from(s.querySelectorAll('li')).map((x) => x.textContent)");
    let sides = sides.as_array().expect("the frame's kernel|l2sw receivers");
    assert!(!sides.is_empty());
    assert!(
        sides.iter().all(|x| x.as_str().unwrap().contains("| l2sw")),
        "{sides:?}"
    );
    b.screenshot("kernel-beside-l2sw");
}

// ---- the server without a browser ----

#[test]
fn a_second_ui_on_a_busy_port_says_so() {
    let (_first, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let out = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
        .args(["ui", "--listen", addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains(addr),
        "{err}"
    );
}

/// The status line of a raw GET of `path` with these extra header lines.
fn raw_get(addr: &str, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn another_sites_names_and_links_cannot_reach_verify_or_the_page() {
    let (_ui, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let ok = raw_get(addr, "/", &format!("Host: {addr}\r\n"));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let port = addr.rsplit(':').next().unwrap();
    let ok = raw_get(addr, "/", &format!("Host: localhost:{port}\r\n"));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    let no = raw_get(addr, "/", &format!("Host: evil.example:{port}\r\n"));
    assert!(no.starts_with("HTTP/1.1 403"), "{no}");
    assert!(no.contains("is not this server"), "{no}");
    // A link or an <img> elsewhere cannot start verify (it builds namespaces as root).
    let no = raw_get(addr, "/api/verify/bridge", &format!("Host: {addr}\r\n"));
    assert!(no.starts_with("HTTP/1.1 403"), "{no}");
    assert!(no.contains(l2sw_control::ui::FROM_PAGE), "{no}");
    // Nothing but reading.
    for method in ["POST", "PUT", "DELETE"] {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "{method} /api/networks HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 405"), "{method}: {out}");
    }
}

#[test]
fn ui_listens_on_loopback_unless_asked() {
    let default: SocketAddr = l2sw_control::ui::DEFAULT_LISTEN.parse().unwrap();
    assert!(default.ip().is_loopback());
    let (_ui, url) = ui(Path::new("/nonexistent/l2sw-ui-test.sock"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // Without --listen: 127.0.0.1:8017, unless something has that port already.
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
        .args(["--socket", "/nonexistent/l2sw-ui-test.sock", "ui"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut child = Kill(child);
    if line.is_empty() {
        let mut err = String::new();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(err.contains("already in use"), "{err}");
        eprintln!("the default port is busy here; checked the constant only: {err}");
    } else {
        assert!(line.contains("http://127.0.0.1:8017/"), "{line}");
    }
    drop(child);
    // Asked for a wider address, it warns.
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2ctl"))
        .args(["--socket", "/nonexistent/l2sw-ui-test.sock"])
        .args(["ui", "--listen", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _kill = Kill(child);
    assert!(line.contains("beyond this machine"), "{line}");
}
