//! The daemon's control socket, from the client side: one JSON request line, one response line
//! (the protocol is `l2sw::api`). Each call opens its own connection, because the daemon
//! serves connections one after another and a client that lingers would block the others.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use l2sw::config::{NetworkSpec, PortSpec};
use serde_json::{Value, json};

/// How long a request may take: starting a network opens every port.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why the daemon could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the socket.
    #[error(
        "no l2sw daemon answers on {path} ({source}).\n  Start one first: `sudo l2sw run --socket {path}` (it runs in the foreground; add `&` or use a service manager), then run this command again."
    )]
    NoDaemon {
        /// The socket.
        path: PathBuf,
        /// What connecting said.
        source: io::Error,
    },
    /// The connection broke or the answer was not the protocol.
    #[error("talking to the daemon on {path}: {what}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// The daemon refused the request; its reason.
    #[error("the daemon refused: {0}")]
    Refused(String),
}

impl ClientError {
    /// Whether the daemon said that the network does not exist.
    pub fn is_no_network(&self) -> bool {
        matches!(self, ClientError::Refused(e) if e.starts_with("no network"))
    }
}

/// A port as the daemon lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DaemonPort {
    /// The port's name.
    pub name: String,
    /// Its role.
    pub role: String,
}

/// A network as the daemon lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DaemonNetwork {
    /// The network's name.
    pub name: String,
    /// `bridge`, `macvlan` or `ipvlan`.
    pub mode: String,
    /// Its ports.
    pub ports: Vec<DaemonPort>,
}

/// The way to the daemon.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    /// A client of the daemon listening on `path`.
    pub fn new(path: impl Into<PathBuf>) -> Client {
        Client { path: path.into() }
    }

    /// The socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request (`op` and its fields) and returns the response's data.
    pub fn call(&self, op: &str, fields: Value) -> Result<Value, ClientError> {
        let mut req = json!({"v": l2sw::api::VERSION, "op": op});
        if let (Some(r), Value::Object(f)) = (req.as_object_mut(), fields) {
            r.extend(f);
        }
        let proto = |what: String| ClientError::Protocol {
            path: self.path.clone(),
            what,
        };
        let mut stream =
            UnixStream::connect(&self.path).map_err(|source| ClientError::NoDaemon {
                path: self.path.clone(),
                source,
            })?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| proto(e.to_string()))?;
        let mut line = req.to_string();
        line.push('\n');
        stream
            .write_all(line.as_bytes())
            .map_err(|e| proto(format!("sending: {e}")))?;
        let mut answer = String::new();
        BufReader::new(&stream)
            .read_line(&mut answer)
            .map_err(|e| proto(format!("reading the answer: {e}")))?;
        let resp: Value =
            serde_json::from_str(&answer).map_err(|e| proto(format!("bad answer: {e}")))?;
        if resp.get("ok") == Some(&Value::Bool(true)) {
            Ok(resp.get("data").cloned().unwrap_or(Value::Null))
        } else {
            let why = resp
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            Err(ClientError::Refused(why.to_owned()))
        }
    }

    /// Every running network and its ports.
    pub fn networks(&self) -> Result<Vec<DaemonNetwork>, ClientError> {
        let data = self.call("networks", json!({}))?;
        serde_json::from_value(data).map_err(|e| ClientError::Protocol {
            path: self.path.clone(),
            what: format!("bad network list: {e}"),
        })
    }

    /// Starts a network.
    pub fn add_network(&self, spec: &NetworkSpec) -> Result<(), ClientError> {
        self.call("add_network", json!({ "network": spec }))
            .map(drop)
    }

    /// Stops a network.
    pub fn remove_network(&self, name: &str) -> Result<(), ClientError> {
        self.call("remove_network", json!({ "network": name }))
            .map(drop)
    }

    /// Adds a port to a running network.
    pub fn add_port(&self, network: &str, port: &PortSpec) -> Result<(), ClientError> {
        self.call("add_port", json!({ "network": network, "port": port }))
            .map(drop)
    }

    /// Removes a port from a running network.
    pub fn remove_port(&self, network: &str, port: &str) -> Result<(), ClientError> {
        self.call("remove_port", json!({ "network": network, "port": port }))
            .map(drop)
    }
}
