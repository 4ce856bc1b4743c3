//! The control socket: a unix stream socket (mode 0600) speaking [`crate::api`] one JSON line
//! at a time. The socket file is removed when the server stops.
//!
//! Connections are served concurrently by one thread running a readiness loop (mio) over
//! non-blocking sockets, each connection with buffers of its own. No client can stall another:
//!
//! - a connection is read only as far as its next request line, and at most
//!   [`MAX_REQUEST`] bytes of it: a longer line gets the error response and the connection is
//!   closed after it (counted `oversize`);
//! - a connection holds at most one response it has not read: until the client takes it, no
//!   further request of that connection is read (it stays in the kernel's socket buffer);
//! - every connection must complete an exchange (a request answered and its response taken)
//!   within [`IDLE_TIMEOUT`] of its previous one or of being accepted, or it is closed
//!   (counted `idle_closed`): an idle client, one stalled mid-line, one sending a byte at a
//!   time and one that never reads its responses all go after that long, whatever they do;
//! - at most [`MAX_CONNECTIONS`] are open at once; one more is accepted and closed at once
//!   (counted `refused`, logged at most once a second);
//! - a client that pipelines many requests has at most [`REQUESTS_PER_TURN`] answered before
//!   the other connections get their turn.
//!
//! Why one thread and not a thread per connection or a pool: requests are short (a request
//! that needs an engine waits for it at most two seconds, and each engine runs its jobs one
//! at a time anyway), so the time clients wait for one another is the handling of the
//! requests actually made, never a client's silence. A thread per connection would give a
//! client that opens connections a stack each; a bounded pool would let as many slow clients
//! as it has threads stall the rest, as one did before. Handling requests one at a time also
//! keeps the order in which they change the daemon the order in which they arrived.
//! The counters are logged when the server stops and read by [`Server::stats`].

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::{self, MAX_REQUEST, NetworkSet};

/// The daemon's default control socket.
pub const DEFAULT_SOCKET: &str = "/run/l2sw/l2sw.sock";

/// Connections served at once; one more is refused.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection may take to complete an exchange (send a request line and read its
/// response) after its previous one, or after it was accepted.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests of one connection answered before the other connections get their turn.
pub const REQUESTS_PER_TURN: usize = 8;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 4096;

/// How often the stop flag is looked at, at the latest.
const TICK: Duration = Duration::from_millis(100);

/// The listener's token; connection `i` has token `i + 1`.
const LISTENER: mio::Token = mio::Token(0);

/// Limits of the control server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once ([`MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// See [`IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Counters of the control server (one per event).
#[derive(Debug, Default)]
pub struct ControlStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections refused: [`Limits::max_connections`] were open.
    pub refused: AtomicU64,
    /// Connections closed for taking longer than [`Limits::idle_timeout`] over an exchange.
    pub idle_closed: AtomicU64,
    /// Request lines longer than [`MAX_REQUEST`] (answered with an error, then closed).
    pub oversize: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
}

/// A snapshot of [`ControlStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ControlCounts {
    /// See [`ControlStats::accepted`].
    pub accepted: u64,
    /// See [`ControlStats::refused`].
    pub refused: u64,
    /// See [`ControlStats::idle_closed`].
    pub idle_closed: u64,
    /// See [`ControlStats::oversize`].
    pub oversize: u64,
    /// See [`ControlStats::requests`].
    pub requests: u64,
}

impl ControlStats {
    /// The counters now.
    pub fn snapshot(&self) -> ControlCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ControlCounts {
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            idle_closed: get(&self.idle_closed),
            oversize: get(&self.oversize),
            requests: get(&self.requests),
        }
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another daemon answers on the socket.
    #[error("another l2sw already listens on {0}")]
    InUse(PathBuf),
    /// A file that is not a socket is in the way.
    #[error("{0} exists and is not a socket")]
    NotSocket(PathBuf),
    /// Any other failure, with what was attempted.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ControlError + 'a {
    move |source| ControlError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A running control server.
#[derive(Debug)]
pub struct Server {
    thread: JoinHandle<()>,
    stats: Arc<ControlStats>,
}

impl Server {
    /// Its counters.
    pub fn stats(&self) -> ControlCounts {
        self.stats.snapshot()
    }

    /// Waits for the server to stop (after its stop flag is set) and returns its counters.
    pub fn join(self) -> ControlCounts {
        let _ = self.thread.join();
        self.stats.snapshot()
    }
}

/// Opens the socket at `path` and serves requests on a thread until `stop` is set.
pub fn serve<N: NetworkSet + Send + Sync + ?Sized + 'static>(
    path: &Path,
    networks: Arc<N>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, ControlError> {
    serve_with(path, networks, stop, Limits::default()).map(|s| s.thread)
}

/// [`serve`] within `limits`, returning the server with its counters.
pub fn serve_with<N: NetworkSet + Send + Sync + ?Sized + 'static>(
    path: &Path,
    networks: Arc<N>,
    stop: Arc<AtomicBool>,
    limits: Limits,
) -> Result<Server, ControlError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ControlError::NotSocket(path.to_owned()));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_owned()));
        }
        // A stale socket left by a daemon that died.
        std::fs::remove_file(path).map_err(io_err("removing stale", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io_err("binding", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("restricting", path))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("configuring", path))?;
    let path = path.to_owned();
    let mut listener = mio::net::UnixListener::from_std(listener);
    let poll = mio::Poll::new().map_err(io_err("polling", &path))?;
    poll.registry()
        .register(&mut listener, LISTENER, mio::Interest::READABLE)
        .map_err(io_err("polling", &path))?;
    let stats = Arc::new(ControlStats::default());
    let mut server = Loop {
        poll,
        listener,
        conns: Vec::new(),
        open: 0,
        limits,
        stats: Arc::clone(&stats),
        last_refusal_log: None,
    };
    let thread = std::thread::Builder::new()
        .name("l2sw-control".into())
        .spawn(move || {
            server.run(&*networks, &stop);
            let c = server.stats.snapshot();
            tracing::info!(
                accepted = c.accepted,
                requests = c.requests,
                refused = c.refused,
                idle_closed = c.idle_closed,
                oversize = c.oversize,
                "control socket closed"
            );
            let _ = std::fs::remove_file(&path);
        })
        .map_err(|source| ControlError::Io {
            what: "starting the control thread for",
            path: PathBuf::from(DEFAULT_SOCKET),
            source,
        })?;
    Ok(Server { thread, stats })
}

/// One client connection and what it holds.
struct Conn {
    stream: mio::net::UnixStream,
    /// Bytes received and not yet answered: at most one line of [`MAX_REQUEST`] bytes and
    /// its newline, plus what followed it in the same read.
    input: Vec<u8>,
    /// The response not yet taken by the client, from `written` on.
    output: Vec<u8>,
    written: usize,
    /// When the connection is closed unless it completes an exchange first.
    deadline: Instant,
    /// Close once the output is written (after an over-long line, or the client's EOF).
    closing: bool,
}

/// What serving a connection for one turn left it as.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Waits for the socket (readable or writable).
    Wait,
    /// Has more complete requests: serve it again after the others.
    Again,
    /// Done: close it.
    Close,
}

struct Loop {
    poll: mio::Poll,
    listener: mio::net::UnixListener,
    conns: Vec<Option<Conn>>,
    open: usize,
    limits: Limits,
    stats: Arc<ControlStats>,
    last_refusal_log: Option<Instant>,
}

impl Loop {
    fn run<N: NetworkSet + ?Sized>(&mut self, networks: &N, stop: &AtomicBool) {
        let mut events = mio::Events::with_capacity(64);
        // Connections with complete requests left over from their last turn.
        let mut again: Vec<usize> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let next_deadline = self
                .conns
                .iter()
                .flatten()
                .map(|c| c.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(TICK);
            let timeout = if again.is_empty() {
                next_deadline.min(TICK)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::warn!(error = %e, "control socket poll failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            let mut turn: Vec<usize> = std::mem::take(&mut again);
            for ev in &events {
                match ev.token() {
                    LISTENER => self.accept(),
                    mio::Token(t) => {
                        if let Some(i) = t.checked_sub(1)
                            && !turn.contains(&i)
                        {
                            turn.push(i);
                        }
                    }
                }
            }
            for i in turn {
                let Some(Some(conn)) = self.conns.get_mut(i) else {
                    continue;
                };
                match serve_turn(conn, networks, &self.stats, self.limits) {
                    Turn::Wait => {}
                    Turn::Again => again.push(i),
                    Turn::Close => self.close(i),
                }
            }
            let now = Instant::now();
            for i in 0..self.conns.len() {
                if self.conns[i].as_ref().is_some_and(|c| c.deadline <= now) {
                    ControlStats::bump(&self.stats.idle_closed);
                    tracing::debug!(
                        "control connection closed: no exchange within {:?}",
                        self.limits.idle_timeout
                    );
                    self.close(i);
                    again.retain(|&j| j != i);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the connection waits in the backlog.
                    tracing::warn!(error = %e, "control socket accept failed");
                    return;
                }
            };
            if self.open >= self.limits.max_connections {
                // Closed at once: the client reads the end of the stream.
                drop(stream);
                ControlStats::bump(&self.stats.refused);
                if self
                    .last_refusal_log
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    self.last_refusal_log = Some(Instant::now());
                    tracing::warn!(
                        open = self.open,
                        refused = self.stats.refused.load(Ordering::Relaxed),
                        "control connection refused: too many connections"
                    );
                }
                continue;
            }
            let i = match self.conns.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                mio::Token(i + 1),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            ) {
                tracing::warn!(error = %e, "control connection not served: polling it failed");
                continue;
            }
            ControlStats::bump(&self.stats.accepted);
            self.open += 1;
            self.conns[i] = Some(Conn {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                written: 0,
                deadline: Instant::now() + self.limits.idle_timeout,
                closing: false,
            });
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut c) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.open -= 1;
        }
    }
}

/// Serves `conn` as far as it goes without waiting: writes what it owes, answers its complete
/// requests (at most [`REQUESTS_PER_TURN`]), reads up to the end of its next line.
fn serve_turn<N: NetworkSet + ?Sized>(
    conn: &mut Conn,
    networks: &N,
    stats: &ControlStats,
    limits: Limits,
) -> Turn {
    let mut answered = 0;
    loop {
        // Whatever is owed goes first: nothing more is read until the client has taken it.
        while conn.written < conn.output.len() {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(0) => return Turn::Close,
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Turn::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "control connection ended");
                    return Turn::Close;
                }
            }
        }
        if !conn.output.is_empty() {
            // An exchange completed.
            conn.output.clear();
            conn.written = 0;
            conn.deadline = Instant::now() + limits.idle_timeout;
        }
        if conn.closing {
            return Turn::Close;
        }
        if let Some(end) = conn.input.iter().position(|&b| b == b'\n') {
            if answered == REQUESTS_PER_TURN {
                return Turn::Again;
            }
            let line: Vec<u8> = conn.input.drain(..=end).collect();
            answer(conn, &line, networks, stats);
            answered += 1;
            continue;
        }
        if conn.input.len() > MAX_REQUEST {
            // As the protocol answers an over-long request, and then the connection goes:
            // the rest of the line is not worth reading.
            ControlStats::bump(&stats.oversize);
            let r = api::handle(&"x".repeat(MAX_REQUEST + 1), networks);
            conn.output = r.to_line().into_bytes();
            conn.input = Vec::new();
            conn.closing = true;
            continue;
        }
        // Read no further than one byte past the longest line.
        let room = (MAX_REQUEST + 1 - conn.input.len()).min(READ_CHUNK);
        let start = conn.input.len();
        conn.input.resize(start + room, 0);
        let got = conn.stream.read(&mut conn.input[start..]);
        conn.input.truncate(start + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => {
                // The client is done sending: a last line without its newline is answered.
                if conn.input.is_empty() {
                    return Turn::Close;
                }
                let line = std::mem::take(&mut conn.input);
                answer(conn, &line, networks, stats);
                conn.closing = true;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Turn::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(error = %e, "control connection ended");
                return Turn::Close;
            }
        }
    }
}

fn answer<N: NetworkSet + ?Sized>(
    conn: &mut Conn,
    line: &[u8],
    networks: &N,
    stats: &ControlStats,
) {
    let text = String::from_utf8_lossy(line);
    let r = api::handle(text.trim_end(), networks);
    conn.output = r.to_line().into_bytes();
    conn.written = 0;
    ControlStats::bump(&stats.requests);
}
