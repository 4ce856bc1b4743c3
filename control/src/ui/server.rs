//! `l2ctl ui`: the explorer page and a read-only JSON API over HTTP (tiny_http), on loopback
//! unless told otherwise.
//!
//! Endpoints (GET and HEAD only; anything else is refused with 405). On loopback, a request
//! whose Host is a name other than `localhost` is refused (DNS rebinding), and `verify` runs
//! only for requests with the [`FROM_PAGE`] header, which the page's scripts send:
//! - `/`: the explorer, with the live view.
//! - `/api/explain/MODE[?hairpin=off|on|both]`: `explain MODE --format json`.
//! - `/api/networks`: the daemon's networks and their ports.
//! - `/api/networks/NAME/stats`: a network's counters.
//! - `/api/networks/NAME/trace[?since=N]`: the frames traced since record `N`, sampled.
//! - `/api/verify/MODE?hairpin=off|on`: `verify MODE --json` (root only): the mode's scenario
//!   on the kernel and on l2sw, in namespaces of its own, frame by frame side by side.
//!
//! The live endpoints only read: the daemon's networks, counters and trace records. The trace
//! feed asks the daemon to record frames of the network being watched (a recording changes
//! nothing in forwarding, and ends by itself after [`TRACE_COUNT`] frames or when `ui` stops).
//! The daemon keeps one recording per network: an `l2ctl trace` of the same network at the
//! same time shares it with the page (each sees part of the frames, and the later one's port
//! filter wins). Nothing else of the daemon's is reachable from here: no endpoint creates,
//! attaches, limits or stops anything.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use l2sw::api::ErrorKind;
use l2sw::trace::TraceRecord;
use serde_json::{Value, json};

use crate::client::{Client, ClientError};
use crate::explain::{self, Format, UpstreamHairpin};
use crate::modes::Mode;

/// Where `l2ctl ui` listens unless `--listen` says otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8017";
/// How many frames one recording of the trace feed asks the daemon for.
pub const TRACE_COUNT: u64 = 100_000;
/// At most this many records of one take reach the page; more are sampled evenly.
const SAMPLE: usize = 20;
/// The records kept per network for pages that poll later.
const RING: usize = 200;
/// The header the explorer's scripts send with every API request; `verify` (which builds
/// namespaces as root) is refused without it.
pub const FROM_PAGE: &str = "X-L2sw-Explorer";
/// How long the server waits for a request before looking at its stop flag.
const TICK: Duration = Duration::from_millis(200);

/// Why `l2ctl ui` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address is not `IP:PORT`.
    #[error("--listen {addr:?}: expected IP:PORT, such as 127.0.0.1:8017 ({why})")]
    BadAddress {
        /// What was given.
        addr: String,
        /// What parsing said.
        why: String,
    },
    /// Another server has the port.
    #[error(
        "{addr} is already in use (EADDRINUSE): another `l2ctl ui` or another server listens \
         there; choose a free port with --listen 127.0.0.1:PORT"
    )]
    InUse {
        /// The address.
        addr: SocketAddr,
    },
    /// Binding failed otherwise.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
    /// The HTTP server could not start or stopped.
    #[error("serving on {addr}: {what}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        what: String,
    },
}

/// Binds `addr` (`IP:PORT`; port 0 picks a free one) and returns the server and the address it
/// got.
pub fn bind(addr: &str) -> Result<(tiny_http::Server, SocketAddr), UiError> {
    let want: SocketAddr =
        addr.parse()
            .map_err(|e: std::net::AddrParseError| UiError::BadAddress {
                addr: addr.to_owned(),
                why: e.to_string(),
            })?;
    let listener = TcpListener::bind(want).map_err(|source| match source.kind() {
        io::ErrorKind::AddrInUse => UiError::InUse { addr: want },
        _ => UiError::Bind { addr: want, source },
    })?;
    let got = listener
        .local_addr()
        .map_err(|source| UiError::Bind { addr: want, source })?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| UiError::Serve {
        addr: got,
        what: e.to_string(),
    })?;
    Ok((server, got))
}

/// Answers requests until `stop` is set, then stops the trace recordings it started.
pub fn serve(server: &tiny_http::Server, ui: &Ui, stop: &AtomicBool) -> Result<(), UiError> {
    let addr = match server.server_addr() {
        tiny_http::ListenAddr::IP(a) => a,
        #[allow(unreachable_patterns)]
        _ => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let req = match server.recv_timeout(TICK) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                break Err(UiError::Serve {
                    addr,
                    what: e.to_string(),
                });
            }
        };
        let header = |name: &str| {
            req.headers()
                .iter()
                .find(|h| h.field.to_string().eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str().to_owned())
        };
        let host = header("Host");
        let reply = if addr.ip().is_loopback() && !host_is_an_address(host.as_deref()) {
            // A page of another site that renamed itself to 127.0.0.1 (DNS rebinding) asks
            // with its own name: a server on loopback answers only its addresses.
            Reply::html(
                403,
                super::error_page(
                    403,
                    &format!(
                        "Host {:?} is not this server's address: l2ctl ui on loopback answers \
                         requests for 127.0.0.1, [::1] or localhost only",
                        host.unwrap_or_default()
                    ),
                ),
            )
        } else {
            let from_page = header(FROM_PAGE).is_some_and(|v| v == "1");
            ui.answer(req.method().as_str(), req.url(), from_page)
        };
        let head = *req.method() == tiny_http::Method::Head;
        let body = if head {
            Vec::new()
        } else {
            reply.body.into_bytes()
        };
        let mut resp = tiny_http::Response::from_data(body).with_status_code(reply.status);
        for (k, v) in [
            ("Content-Type", reply.content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ] {
            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp = resp.with_header(h);
            }
        }
        // A browser that went away before its answer is no reason to stop serving.
        let _ = req.respond(resp);
    };
    ui.stop_traces();
    result
}

/// One answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            body: format!("{v:#}\n"),
        }
    }

    fn json_error(status: u16, message: &str) -> Reply {
        Reply::json(status, &json!({ "error": message }))
    }

    fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }
}

/// A network's trace feed: the records taken so far (numbered by the feed, newest last) and
/// what was seen, sampled away and lost.
#[derive(Debug, Default)]
struct Feed {
    /// Whether the daemon is recording for us.
    recording: bool,
    /// The number of the last record kept.
    last: u64,
    records: VecDeque<(u64, TraceRecord)>,
    /// Records the daemon handed over.
    seen: u64,
    /// Records left out by sampling.
    skipped: u64,
    /// Records the daemon lost to a full queue.
    lost: u64,
}

/// The server's state: the page, the daemon's client and the trace feeds.
#[derive(Debug)]
pub struct Ui {
    page: String,
    client: Client,
    feeds: Mutex<HashMap<String, Feed>>,
}

impl Ui {
    /// The explorer of every mode, talking to the daemon through `client`.
    pub fn new(client: Client) -> Result<Ui, explain::ExplainError> {
        Ok(Ui {
            page: super::page(Mode::ALL, true)?,
            client,
            feeds: Mutex::new(HashMap::new()),
        })
    }

    /// The answer to `method url` asked by the explorer's own page. Never panics, whatever
    /// the URL.
    pub fn handle(&self, method: &str, url: &str) -> Reply {
        self.answer(method, url, true)
    }

    /// The answer to `method url`; `from_page`: the request carries the [`FROM_PAGE`]
    /// header, which the explorer's scripts send and which another site's page cannot send
    /// here without this server's leave (a CORS preflight it never grants).
    pub fn answer(&self, method: &str, url: &str, from_page: bool) -> Reply {
        if method != "GET" && method != "HEAD" {
            return Reply::json_error(
                405,
                &format!("{method} refused: the explorer only reads (GET)"),
            );
        }
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segs.as_slice() {
            [] | ["index.html"] => Reply::html(200, self.page.clone()),
            ["api", "explain", mode] => explain_json(mode, query),
            ["api", "networks"] => match self.client.networks() {
                Ok(n) => to_json(&n),
                Err(e) => daemon_error(&e),
            },
            ["api", "networks", name, "stats"] => match self.client.stats(name) {
                Ok(s) => to_json(&s),
                Err(e) => daemon_error(&e),
            },
            ["api", "verify", _] if !from_page => Reply::json_error(
                403,
                &format!(
                    "verify runs only for the explorer's page (the {FROM_PAGE} header), \
                     not for a link or another site"
                ),
            ),
            ["api", "verify", mode] => verify_json(mode, query),
            ["api", "networks", name, "trace"] => {
                let since = param(query, "since").and_then(|s| s.parse::<u64>().ok());
                match self.trace(name, since) {
                    Ok(v) => Reply::json(200, &v),
                    Err(e) => daemon_error(&e),
                }
            }
            ["api", ..] => Reply::json_error(404, &format!("no such endpoint: {path}")),
            _ => Reply::html(
                404,
                super::error_page(404, &format!("nothing here at {path}")),
            ),
        }
    }

    /// The trace feed of `network`: starts a recording if none runs, takes what the daemon
    /// has, keeps an even sample of it, and answers the records after `since` (or the last
    /// few).
    fn trace(&self, network: &str, since: Option<u64>) -> Result<Value, ClientError> {
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ask about the network first, so an unknown one starts nothing.
        self.client.stats(network)?;
        let feed = feeds.entry(network.to_owned()).or_default();
        if !feed.recording {
            self.client.trace(network, None, TRACE_COUNT)?;
            feed.recording = true;
        }
        let taken = match self.client.trace_take(network) {
            // Someone stopped the recording (an `l2ctl trace` of the same network that
            // finished): start another.
            Err(e) if matches!(e.kind(), Some(ErrorKind::NotActive)) => {
                self.client.trace(network, None, TRACE_COUNT)?;
                self.client.trace_take(network)?
            }
            other => other?,
        };
        feed.recording = taken.active;
        feed.lost += taken.lost;
        let n = taken.records.len();
        feed.seen += n as u64;
        let kept = sample(taken.records, SAMPLE);
        feed.skipped += (n - kept.len()) as u64;
        for r in kept {
            feed.last += 1;
            feed.records.push_back((feed.last, r));
            if feed.records.len() > RING {
                feed.records.pop_front();
            }
        }
        let since = since.unwrap_or_else(|| feed.last.saturating_sub(SAMPLE as u64));
        let records: Vec<Value> = feed
            .records
            .iter()
            .filter(|(i, _)| *i > since)
            .map(|(i, r)| {
                let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("n".into(), json!(i));
                }
                v
            })
            .collect();
        Ok(json!({
            "network": network,
            "records": records,
            "last": feed.last,
            "seen": feed.seen,
            "sampled_out": feed.skipped,
            "lost": feed.lost,
        }))
    }

    /// Ends the recordings the feeds started (best effort: each ends by itself too).
    fn stop_traces(&self) {
        let feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, feed) in feeds.iter() {
            if feed.recording {
                let _ = self.client.trace_stop(name);
            }
        }
    }
}

/// Whether a Host header names an address (an IP literal or `localhost`, with or without a
/// port) rather than some other name. No header (HTTP/1.0) passes.
fn host_is_an_address(host: Option<&str>) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, _)) => v6,
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.parse::<std::net::IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost")
}

/// At most `max` of `items`, evenly spread, first and order kept.
fn sample<T>(items: Vec<T>, max: usize) -> Vec<T> {
    let n = items.len();
    if n <= max || max == 0 {
        return items;
    }
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i * max / n != (i + 1) * max / n || *i == 0)
        .map(|(_, t)| t)
        .take(max)
        .collect()
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn explain_json(mode: &str, query: &str) -> Reply {
    let modes = match Mode::parse_list(mode) {
        Ok(m) => m,
        Err(e) => return Reply::json_error(404, &e.to_string()),
    };
    let upstream = match param(query, "hairpin") {
        None | Some("both") => UpstreamHairpin::Both,
        Some("on") => UpstreamHairpin::On,
        Some("off") => UpstreamHairpin::Off,
        Some(other) => {
            return Reply::json_error(400, &format!("hairpin={other:?}: expected off, on or both"));
        }
    };
    match explain::render(Format::Json, &modes, upstream)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => Reply::json(200, &v),
        Err(e) => Reply::json_error(500, &e),
    }
}

/// `verify MODE` for one upstream setting: builds the scenario in namespaces of its own on
/// each side (nothing of the daemon's is touched) and answers the matrix.
fn verify_json(mode: &str, query: &str) -> Reply {
    let mode = match Mode::parse_list(mode).as_deref() {
        Ok([m]) => *m,
        Ok(_) => return Reply::json_error(400, "verify compares one mode at a time"),
        Err(e) => return Reply::json_error(404, &e.to_string()),
    };
    let hairpin = match param(query, "hairpin") {
        None | Some("off") => false,
        Some("on") => true,
        Some(other) => {
            return Reply::json_error(400, &format!("hairpin={other:?}: expected off or on"));
        }
    };
    if !l2sw::port::sys::is_root() {
        return Reply::json_error(
            403,
            "verify builds each side in network namespaces, which needs root: run `sudo l2ctl ui` \
             to see the kernel beside l2sw",
        );
    }
    match crate::verify::verify(mode, hairpin) {
        Ok(m) => to_json(&m),
        Err(e) => Reply::json_error(500, &e.to_string()),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Reply {
    match serde_json::to_value(v) {
        Ok(v) => Reply::json(200, &v),
        Err(e) => Reply::json_error(500, &e.to_string()),
    }
}

fn daemon_error(e: &ClientError) -> Reply {
    let status = match e {
        _ if e.is_no_network() => 404,
        ClientError::NoDaemon { .. } => 503,
        ClientError::Refused(_) => 400,
        ClientError::Protocol { .. } => 502,
    };
    Reply::json_error(status, &e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn ui() -> Ui {
        Ui::new(Client::new("/nonexistent/l2sw-ui-test.sock")).unwrap()
    }

    #[test]
    fn routes_answer_and_never_panic() {
        let ui = ui();
        let r = ui.handle("GET", "/");
        assert_eq!(
            (r.status, r.content_type),
            (200, "text/html; charset=utf-8")
        );
        assert!(r.body.contains("const LIVE = true"));
        let r = ui.handle("GET", "/api/explain/macvlan-vepa?hairpin=on");
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v[0]["upstream_hairpin"], json!(true));
        assert_eq!(ui.handle("GET", "/api/explain/nope").status, 404);
        assert_eq!(ui.handle("GET", "/api/verify/nope").status, 404);
        assert_eq!(ui.handle("GET", "/api/verify/all").status, 400);
        assert_eq!(ui.handle("GET", "/api/verify/bridge?hairpin=x").status, 400);
        assert_eq!(
            ui.handle("GET", "/api/explain/bridge?hairpin=x").status,
            400
        );
        assert_eq!(ui.handle("GET", "/api/networks").status, 503);
        assert_eq!(ui.handle("GET", "/api/networks/x/stats").status, 503);
        assert_eq!(
            ui.handle("GET", "/api/networks/x/trace?since=z").status,
            503
        );
        assert_eq!(ui.handle("POST", "/api/networks").status, 405);
        assert_eq!(ui.handle("GET", "/api/nope").status, 404);
        let r = ui.handle("GET", "/%00/../<x>?a=b&&=");
        assert_eq!(r.status, 404);
        assert!(!r.body.contains("<x>"));
        for url in [
            "",
            "?",
            "//",
            "/api//explain//",
            "/api/explain/",
            "/api/networks/a/b/c",
        ] {
            let _ = ui.handle("GET", url);
        }
    }

    #[test]
    fn verify_only_for_the_page_and_hosts_only_by_address() {
        let ui = ui();
        let r = ui.answer("GET", "/api/verify/bridge", false);
        assert_eq!(r.status, 403);
        assert!(r.body.contains(FROM_PAGE), "{}", r.body);
        for ok in [
            None,
            Some("127.0.0.1:8017"),
            Some("localhost:1"),
            Some("[::1]:80"),
            Some("LOCALHOST"),
        ] {
            assert!(host_is_an_address(ok), "{ok:?}");
        }
        for bad in [
            Some("evil.example:8017"),
            Some("evil.example"),
            Some("[::1"),
            Some(""),
        ] {
            assert!(!host_is_an_address(bad), "{bad:?}");
        }
    }

    #[test]
    fn sampling_keeps_an_even_spread() {
        assert_eq!(sample((0..5).collect(), 20), vec![0, 1, 2, 3, 4]);
        let s = sample((0..100).collect::<Vec<_>>(), 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], 0);
        assert!(
            s.windows(2).all(|w| w[1] - w[0] >= 9 && w[1] - w[0] <= 11),
            "{s:?}"
        );
    }

    #[test]
    fn a_busy_port_is_named() {
        let (_server, addr) = bind("127.0.0.1:0").unwrap();
        let Err(e) = bind(&addr.to_string()) else {
            panic!("a second bind of {addr} succeeded");
        };
        let msg = e.to_string();
        assert!(matches!(e, UiError::InUse { .. }), "{msg}");
        assert!(
            msg.contains("EADDRINUSE") && msg.contains(&addr.to_string()),
            "{msg}"
        );
        assert!(matches!(
            bind("localhost").map(|_| ()),
            Err(UiError::BadAddress { .. })
        ));
    }
}
