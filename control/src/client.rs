//! The daemon's control socket, from the client side: one request line, one response line, both
//! the typed contract of `l2sw::api::proto` (a refusal comes back with its [`ErrorKind`]).
//! Each call opens its own connection, so no client holds the daemon's attention between
//! requests.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use l2sw::api::proto::{CaptureTaken, TraceTaken};
use l2sw::api::{ApiError, ErrorKind, FdbRow, NetworkInfo, NetworkStats, Reply, Request, Response};
use l2sw::config::{NetworkSpec, PortSpec, StormSpec};
use l2sw::fwd::Vid;
use l2sw::wire::Mac;

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
    /// The daemon refused the request: its kind and reason.
    #[error("the daemon refused: {0}")]
    Refused(ApiError),
}

impl ClientError {
    /// The kind of the daemon's refusal, if it refused.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            ClientError::Refused(e) => Some(&e.kind),
            _ => None,
        }
    }

    /// Whether the daemon said that the network does not exist.
    pub fn is_no_network(&self) -> bool {
        matches!(self.kind(), Some(ErrorKind::NoSuchNetwork { .. }))
    }
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

    fn protocol(&self, what: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// Sends one request and returns the daemon's reply, or its refusal.
    pub fn call(&self, req: &Request) -> Result<Reply, ClientError> {
        let mut stream =
            UnixStream::connect(&self.path).map_err(|source| ClientError::NoDaemon {
                path: self.path.clone(),
                source,
            })?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| self.protocol(format!("setting a timeout: {e}")))?;
        stream
            .write_all(req.to_line().as_bytes())
            .map_err(|e| self.protocol(format!("sending: {e}")))?;
        let mut answer = String::new();
        BufReader::new(&stream)
            .read_line(&mut answer)
            .map_err(|e| self.protocol(format!("reading the answer: {e}")))?;
        let resp = Response::from_line(&answer, req)
            .map_err(|e| self.protocol(format!("bad answer: {e}")))?;
        resp.result.map_err(ClientError::Refused)
    }

    /// Sends a request whose reply says nothing.
    fn act(&self, req: &Request) -> Result<(), ClientError> {
        match self.call(req)? {
            Reply::Done => Ok(()),
            other => Err(self.unexpected(req, &other)),
        }
    }

    fn unexpected(&self, req: &Request, reply: &Reply) -> ClientError {
        self.protocol(format!("unexpected reply {reply:?} to {req:?}"))
    }

    /// Every running network and its ports.
    pub fn networks(&self) -> Result<Vec<NetworkInfo>, ClientError> {
        let req = Request::Networks;
        match self.call(&req)? {
            Reply::Networks(n) => Ok(n),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// A network's forwarding database.
    pub fn fdb(&self, network: &str) -> Result<Vec<FdbRow>, ClientError> {
        let req = Request::Fdb {
            network: network.to_owned(),
        };
        match self.call(&req)? {
            Reply::Fdb(rows) => Ok(rows),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// A network's counters.
    pub fn stats(&self, network: &str) -> Result<NetworkStats, ClientError> {
        let req = Request::Stats {
            network: network.to_owned(),
        };
        match self.call(&req)? {
            Reply::Stats(s) => Ok(*s),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// Starts a network.
    pub fn add_network(&self, spec: &NetworkSpec) -> Result<(), ClientError> {
        self.act(&Request::AddNetwork {
            network: Box::new(spec.clone()),
        })
    }

    /// Stops a network.
    pub fn remove_network(&self, name: &str) -> Result<(), ClientError> {
        let req = Request::RemoveNetwork {
            network: name.to_owned(),
        };
        match self.call(&req)? {
            Reply::Stopped(_) => Ok(()),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// Adds a port to a running network.
    pub fn add_port(&self, network: &str, port: &PortSpec) -> Result<(), ClientError> {
        let req = Request::AddPort {
            network: network.to_owned(),
            port: Box::new(port.clone()),
        };
        match self.call(&req)? {
            Reply::PortAdded(_) => Ok(()),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// Removes a port from a running network.
    pub fn remove_port(&self, network: &str, port: &str) -> Result<(), ClientError> {
        self.act(&Request::RemovePort {
            network: network.to_owned(),
            port: port.to_owned(),
        })
    }

    /// Puts `mac` behind remote VTEP `vtep` of overlay port `port` (a static entry).
    pub fn add_static_remote(
        &self,
        network: &str,
        port: &str,
        mac: Mac,
        vtep: std::net::Ipv4Addr,
    ) -> Result<(), ClientError> {
        self.act(&Request::AddStatic {
            network: network.to_owned(),
            mac,
            port: port.to_owned(),
            vid: Vid::UNAWARE,
            sticky: false,
            vtep: Some(vtep),
        })
    }

    /// Removes the static entry of `mac`.
    pub fn remove_static(&self, network: &str, mac: Mac) -> Result<(), ClientError> {
        self.act(&Request::RemoveStatic {
            network: network.to_owned(),
            mac,
            vid: Vid::UNAWARE,
        })
    }

    /// Adds a remote VTEP to an overlay port's flood list.
    pub fn add_remote(
        &self,
        network: &str,
        port: &str,
        vtep: std::net::Ipv4Addr,
    ) -> Result<(), ClientError> {
        self.act(&Request::AddRemote {
            network: network.to_owned(),
            port: port.to_owned(),
            vtep,
        })
    }

    /// Removes a remote VTEP from an overlay port (the MACs behind it go too).
    pub fn remove_remote(
        &self,
        network: &str,
        port: &str,
        vtep: std::net::Ipv4Addr,
    ) -> Result<(), ClientError> {
        self.act(&Request::RemoveRemote {
            network: network.to_owned(),
            port: port.to_owned(),
            vtep,
        })
    }

    /// Replaces a port's storm-control limits.
    pub fn set_storm(
        &self,
        network: &str,
        port: &str,
        storm: StormSpec,
    ) -> Result<(), ClientError> {
        self.act(&Request::SetStorm {
            network: network.to_owned(),
            port: port.to_owned(),
            storm,
        })
    }

    /// Caps the MACs a bridge port (or, without one, the whole bridge) may learn.
    pub fn set_max_learned(
        &self,
        network: &str,
        port: Option<&str>,
        max_learned: u32,
    ) -> Result<(), ClientError> {
        self.act(&Request::SetMaxLearned {
            network: network.to_owned(),
            port: port.map(str::to_owned),
            max_learned,
        })
    }

    /// Starts tracing the next `count` frames (of `port`, or any).
    pub fn trace(&self, network: &str, port: Option<&str>, count: u64) -> Result<(), ClientError> {
        self.act(&Request::Trace {
            network: network.to_owned(),
            count,
            port: port.map(str::to_owned),
        })
    }

    /// Takes the trace records so far.
    pub fn trace_take(&self, network: &str) -> Result<TraceTaken, ClientError> {
        let req = Request::TraceTake {
            network: network.to_owned(),
        };
        match self.call(&req)? {
            Reply::Trace(t) => Ok(t),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// Stops tracing.
    pub fn trace_stop(&self, network: &str) -> Result<(), ClientError> {
        self.act(&Request::TraceStop {
            network: network.to_owned(),
        })
    }

    /// Starts capturing the next `count` frames (of `port`, or any).
    pub fn capture(
        &self,
        network: &str,
        port: Option<&str>,
        count: u64,
    ) -> Result<(), ClientError> {
        self.act(&Request::Capture {
            network: network.to_owned(),
            count,
            port: port.map(str::to_owned),
        })
    }

    /// Takes the captured frames so far.
    pub fn capture_take(&self, network: &str) -> Result<CaptureTaken, ClientError> {
        let req = Request::CaptureTake {
            network: network.to_owned(),
        };
        match self.call(&req)? {
            Reply::Capture(c) => Ok(c),
            other => Err(self.unexpected(&req, &other)),
        }
    }

    /// Stops capturing.
    pub fn capture_stop(&self, network: &str) -> Result<(), ClientError> {
        self.act(&Request::CaptureStop {
            network: network.to_owned(),
        })
    }
}
