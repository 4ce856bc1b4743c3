//! The plugin's socket: HTTP on `PLUGIN_DIR/NAME.sock`, where Docker finds plugins. Served on
//! one thread, one call at a time (Docker's calls for one network are sequential anyway, and
//! l2ctl's state takes one writer), until a flag says stop; the socket file goes with it.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::driver::DockerDriver;

/// The content type of Docker's plugin protocol.
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";
/// The largest request body read; Docker's are a few hundred bytes.
const MAX_BODY: u64 = 1 << 20;

/// Why the plugin could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The plugin name cannot name a socket file.
    #[error(
        "plugin name {0:?} is not valid: use letters, digits, '.', '_' or '-' (Docker's -d takes it)"
    )]
    Name(String),
    /// The plugin directory.
    #[error("creating the plugin directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another plugin answers on the socket.
    #[error("a plugin already listens on {0}: stop it, or pick another --name")]
    Busy(PathBuf),
    /// Binding or serving the socket.
    #[error("serving {path}: {why}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// The socket file of plugin `name` in `dir`.
pub fn socket_path(dir: &Path, name: &str) -> Result<PathBuf, ServeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(ServeError::Name(name.to_owned()));
    }
    Ok(dir.join(format!("{name}.sock")))
}

/// Removes the socket file when serving ends, however it ends.
struct Listening(PathBuf);

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves `driver` on `socket` until `stop` is set; `ready` runs once the socket accepts.
pub fn serve(
    driver: &DockerDriver,
    socket: &Path,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            return Err(ServeError::Busy(socket.to_owned()));
        }
        // Left by a plugin that was killed: nobody answers on it.
        let _ = std::fs::remove_file(socket);
    }
    let sock_err = |why: String| ServeError::Socket {
        path: socket.to_owned(),
        why,
    };
    let server = tiny_http::Server::http_unix(socket).map_err(|e| sock_err(e.to_string()))?;
    let _listening = Listening(socket.to_owned());
    ready();
    while !stop.load(Ordering::Relaxed) {
        let mut request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            // A signal interrupted the wait: look at the flag again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(sock_err(e.to_string())),
        };
        let mut body = Vec::new();
        let answer = match request.as_reader().take(MAX_BODY).read_to_end(&mut body) {
            Ok(_) => driver.handle(request.url(), &body),
            Err(e) => super::driver::Answer {
                status: 400,
                body: serde_json::json!({ "Err": format!("reading the request: {e}") }).to_string(),
            },
        };
        if answer.status != 200 {
            eprintln!("l2ctl plugin: {}: {}", request.url(), answer.body);
        }
        let header = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE)
            .map_err(|()| sock_err("building a header".into()))?;
        let response = tiny_http::Response::from_string(answer.body)
            .with_status_code(answer.status)
            .with_header(header);
        if let Err(e) = request.respond(response) {
            eprintln!("l2ctl plugin: answering {}: {e}", socket.display());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn plugin_names_name_a_socket_file_or_are_refused() {
        let dir = Path::new("/run/docker/plugins");
        assert_eq!(
            socket_path(dir, "l2sw").unwrap(),
            Path::new("/run/docker/plugins/l2sw.sock")
        );
        for bad in ["", "../x", "a/b", "-x", "a b"] {
            assert!(
                matches!(socket_path(dir, bad), Err(ServeError::Name(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn serves_http_on_the_socket_and_removes_it_when_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("plugins/t.sock");
        let driver = DockerDriver {
            state_dir: dir.path().join("state"),
            socket: dir.path().join("l2sw.sock"),
            host_netns: None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let server = {
            let (socket, stop) = (socket.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                serve(&driver, &socket, &stop, || {
                    let _ = tx.send(());
                })
            })
        };
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let mut c = UnixStream::connect(&socket).unwrap();
        write!(
            c,
            "POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.contains(CONTENT_TYPE), "{got}");
        assert!(
            got.ends_with(r#"{"Implements":["NetworkDriver"]}"#),
            "{got}"
        );
        // A second plugin on the same socket is refused.
        let again = serve(
            &DockerDriver {
                state_dir: dir.path().into(),
                socket: dir.path().into(),
                host_netns: None,
            },
            &socket,
            &AtomicBool::new(true),
            || {},
        );
        assert!(matches!(again, Err(ServeError::Busy(_))));
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
        assert!(!socket.exists(), "the socket goes when the plugin stops");
    }
}
