//! The control socket: a unix stream socket (mode 0600) speaking [`crate::api`] one JSON line
//! at a time. Connections are served one after another; a client that sends nothing for five
//! seconds is dropped. The socket file is removed when the server stops.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::api::{self, MAX_REQUEST, NetworkSet};

/// The daemon's default control socket.
pub const DEFAULT_SOCKET: &str = "/run/l2sw/l2sw.sock";

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

/// Opens the socket at `path` and serves requests on a thread until `stop` is set.
pub fn serve<N: NetworkSet + Send + Sync + ?Sized + 'static>(
    path: &Path,
    networks: Arc<N>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, ControlError> {
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
    // Readiness instead of sleeping between accept attempts: a request is answered at once,
    // and the stop flag is still seen within a tenth of a second.
    let mut listener = mio::net::UnixListener::from_std(listener);
    let mut poll = mio::Poll::new().map_err(io_err("polling", &path))?;
    poll.registry()
        .register(&mut listener, mio::Token(0), mio::Interest::READABLE)
        .map_err(io_err("polling", &path))?;
    std::thread::Builder::new()
        .name("l2sw-control".into())
        .spawn(move || {
            let mut events = mio::Events::with_capacity(4);
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100))) {
                    if e.kind() != io::ErrorKind::Interrupted {
                        tracing::warn!(error = %e, "control socket poll failed");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    continue;
                }
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let served = std::os::fd::OwnedFd::from(stream);
                            if let Err(e) = serve_one(UnixStream::from(served), &*networks) {
                                tracing::debug!(error = %e, "control connection ended");
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket accept failed");
                            break;
                        }
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        })
        .map_err(|source| ControlError::Io {
            what: "starting the control thread for",
            path: PathBuf::from(DEFAULT_SOCKET),
            source,
        })
}

fn serve_one<N: NetworkSet + ?Sized>(stream: UnixStream, networks: &N) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n > MAX_REQUEST {
            let r = api::handle(&"x".repeat(MAX_REQUEST + 1), networks);
            out.write_all(r.to_line().as_bytes())?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let r = api::handle(text.trim_end(), networks);
        out.write_all(r.to_line().as_bytes())?;
    }
}
