//! The control protocol's types: every request, every reply and every error, each deriving
//! both `Serialize` and `Deserialize`, so that the daemon and its clients speak one contract.
//!
//! On the wire a request is one JSON object on one line, its operation under `op` and the
//! protocol version under `v`: `{"v":1,"op":"fdb","network":"lab"}`. The answer is one line too:
//! `{"v":1,"ok":true,"data":…}` (no `data` when there is nothing to say), or
//! `{"v":1,"ok":false,"error":"no network \"x\"","kind":{"kind":"no_such_network","network":"x"}}`:
//! the message for people and an [`ErrorKind`] for programs to match.
//!
//! A reply's shape follows from the request (the `data` of `fdb` is a list of [`FdbRow`]s, of
//! `stats` a [`NetworkStats`]), so a client decodes an answer with the request it sent:
//! [`Response::from_line`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{NetworkMode, NetworkSpec, PortSpec, StormSpec};
use crate::engine::EngineStats;
use crate::fwd::{EntryKind, Vid};
use crate::port::vxlan::OverlayState;
use crate::trace::{Captured, TraceRecord};
use crate::wire::Mac;
use std::net::Ipv4Addr;

/// The protocol version this daemon and its clients speak.
pub const VERSION: u32 = 1;
/// The largest request line, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request: what to do, on which network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Every network with its mode and ports.
    Networks,
    /// A network's forwarding database.
    Fdb {
        /// The network.
        network: String,
    },
    /// A network's counters.
    Stats {
        /// The network.
        network: String,
    },
    /// Sets a bridge network's ageing time (0 = no learning).
    SetAgeing {
        /// The network.
        network: String,
        /// Seconds.
        secs: u64,
    },
    /// Starts a network, written as a `[[network]]` table of the configuration file, ports
    /// included.
    AddNetwork {
        /// The network.
        network: Box<NetworkSpec>,
    },
    /// Stops a network: its ports close (TAP devices vanish); answers its last counters.
    RemoveNetwork {
        /// The network's name.
        network: String,
    },
    /// Adds a port to a running network, written as in the configuration file.
    AddPort {
        /// The network.
        network: String,
        /// The port, as a `[[network.port]]` table.
        port: Box<PortSpec>,
    },
    /// Removes a port (by its name) from a running network; TAP devices vanish.
    RemovePort {
        /// The network.
        network: String,
        /// The port's name.
        port: String,
    },
    /// Adds a static FDB entry to a bridge network.
    AddStatic {
        /// The network.
        network: String,
        /// The station.
        mac: Mac,
        /// The port's name.
        port: String,
        /// VLAN (0 on VLAN-unaware ports).
        #[serde(default)]
        vid: Vid,
        /// Never moves.
        #[serde(default)]
        sticky: bool,
        /// On an overlay port: the remote VTEP the station is behind (frames to it go there
        /// alone, as `bridge fdb add MAC dev vx dst IP` on a kernel VTEP).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vtep: Option<Ipv4Addr>,
    },
    /// Removes a static FDB entry (`bridge fdb del`); a remote VTEP only it named is
    /// forgotten with it.
    RemoveStatic {
        /// The network.
        network: String,
        /// The station.
        mac: Mac,
        /// VLAN (0 on VLAN-unaware ports).
        #[serde(default)]
        vid: Vid,
    },
    /// Adds a remote VTEP to an overlay port's flood list.
    AddRemote {
        /// The network.
        network: String,
        /// The overlay port's name.
        port: String,
        /// The remote VTEP's underlay address.
        vtep: Ipv4Addr,
    },
    /// Removes a remote VTEP from an overlay port; the MACs behind it are forgotten.
    RemoveRemote {
        /// The network.
        network: String,
        /// The overlay port's name.
        port: String,
        /// The remote VTEP's underlay address.
        vtep: Ipv4Addr,
    },
    /// Replaces a port's storm-control limits (an absent class, or 0, is unlimited), as the
    /// configuration file's `storm` table.
    SetStorm {
        /// The network.
        network: String,
        /// The port's name.
        port: String,
        /// The limits, in frames a second.
        storm: StormSpec,
    },
    /// Caps the MACs a bridge port may learn (port security), or without `port` the whole
    /// bridge; 0 = no cap. Entries over a lowered cap stay until they age out.
    SetMaxLearned {
        /// The network.
        network: String,
        /// The port's name; absent: the bridge-wide cap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<String>,
        /// The cap.
        max_learned: u32,
    },
    /// Traces the decisions for the next `count` frames (of `port`, or any port).
    Trace {
        /// The network.
        network: String,
        /// How many frames.
        count: u64,
        /// Only frames received on this port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<String>,
    },
    /// Takes the trace records so far.
    TraceTake {
        /// The network.
        network: String,
    },
    /// Stops tracing.
    TraceStop {
        /// The network.
        network: String,
    },
    /// Captures the next `count` frames received on or sent out of `port` (or any port).
    Capture {
        /// The network.
        network: String,
        /// How many frames.
        count: u64,
        /// Only frames of this port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<String>,
    },
    /// Takes the captured frames so far.
    CaptureTake {
        /// The network.
        network: String,
    },
    /// Stops capturing.
    CaptureStop {
        /// The network.
        network: String,
    },
}

/// A request as it travels: the version beside the operation.
#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(flatten)]
    request: &'a Request,
}

/// Whether a field's value alone fits its type (why not, if not).
type FieldCheck = fn(&Value) -> Result<(), String>;

/// Each typed field of a request, and a check of its value alone: a request that does not
/// decode is blamed on the first field whose value does not fit ([`ErrorKind::Invalid`]).
const FIELDS: &[(&str, FieldCheck)] = &[
    ("mac", fits::<Mac>),
    ("vid", fits::<Vid>),
    ("secs", fits::<u64>),
    ("count", fits::<u64>),
    ("sticky", fits::<bool>),
    ("max_learned", fits::<u32>),
    ("storm", fits::<StormSpec>),
    ("network", fits_network),
    ("port", fits_port),
];

fn fits<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
    T::deserialize(v).map(drop).map_err(|e| e.to_string())
}

/// A network's name, or a whole network (`add_network`).
fn fits_network(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(_) => fits::<NetworkSpec>(v),
        _ => fits::<String>(v),
    }
}

/// A port's name, or a whole port (`add_port`).
fn fits_port(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(_) => fits::<PortSpec>(v),
        Value::Null => Ok(()),
        _ => fits::<String>(v),
    }
}

impl Request {
    /// The request as one line of JSON, with the version and the newline.
    pub fn to_line(&self) -> String {
        let envelope = Envelope {
            v: VERSION,
            request: self,
        };
        // Every field is a string, a number, a bool or a table of them: encoding cannot fail.
        let mut s = serde_json::to_string(&envelope).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Decodes one request line: its version first (a client of another version is told so
    /// whatever else it sent), then the operation and its fields.
    pub fn from_line(line: &str) -> Result<Request, ApiError> {
        if line.len() > MAX_REQUEST {
            return Err(ApiError::new(
                ErrorKind::TooLong { max: MAX_REQUEST },
                format!("request longer than {MAX_REQUEST} bytes"),
            ));
        }
        let mut map: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| ApiError::new(ErrorKind::Malformed, format!("malformed request: {e}")))?;
        match map.remove("v") {
            Some(Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
            Some(Value::Number(n)) => {
                let client = n.as_u64().and_then(|v| u32::try_from(v).ok());
                return Err(ApiError::new(
                    ErrorKind::Version {
                        client,
                        daemon: VERSION,
                    },
                    format!(
                        "protocol version {n} not supported (this daemon speaks {VERSION}): use an l2ctl of the daemon's version"
                    ),
                ));
            }
            other => {
                let what = other.map_or_else(|| "no".to_owned(), |v| format!("the version {v}"));
                return Err(ApiError::new(
                    ErrorKind::Version {
                        client: None,
                        daemon: VERSION,
                    },
                    format!(
                        "request carries {what} as its protocol version \"v\" (this daemon speaks {VERSION})"
                    ),
                ));
            }
        }
        let value = Value::Object(map);
        Request::deserialize(&value).map_err(|e| {
            let blamed = value.as_object().and_then(|m| {
                FIELDS.iter().find_map(|(field, check)| {
                    let v = m.get(*field)?;
                    check(v).err().map(|why| (*field, why))
                })
            });
            match blamed {
                Some((field, why)) => ApiError::invalid(field, format!("{field}: {why}")),
                None => ApiError::new(ErrorKind::Malformed, format!("malformed request: {e}")),
            }
        })
    }
}

/// What kind of error an answer is, for a client to match (the message is for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not JSON, or not a request: an unknown operation, a missing or unknown field.
    Malformed,
    /// The request is longer than the daemon reads.
    TooLong {
        /// The longest request, in bytes.
        max: usize,
    },
    /// The client speaks another version of the protocol.
    Version {
        /// The client's version (`None`: it gave none the daemon could read).
        client: Option<u32>,
        /// The daemon's.
        daemon: u32,
    },
    /// A field's value is not valid, or does not fit the network.
    Invalid {
        /// The field.
        field: String,
    },
    /// No network of that name is running.
    NoSuchNetwork {
        /// The name.
        network: String,
    },
    /// The network has no port of that name.
    NoSuchPort {
        /// The name.
        port: String,
    },
    /// A network or port of that name already exists.
    Exists {
        /// The name.
        name: String,
    },
    /// The operation needs a learning bridge (an FDB), and the network is not one.
    NotABridge,
    /// Nothing in progress to take from (`trace_take`, `capture_take`).
    NotActive,
    /// The network's engine did not answer in time.
    Busy,
    /// The network's engine has stopped.
    Stopped,
    /// This daemon cannot do it (a fixed set of networks cannot grow or shrink).
    Unsupported,
    /// The change was refused or failed for another reason (the message says why).
    Failed,
}

/// An error answer: its kind and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of error, for programs.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// An invalid `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            ErrorKind::Invalid {
                field: field.to_owned(),
            },
            message,
        )
    }

    /// No network `name`.
    pub fn no_network(name: &str) -> ApiError {
        ApiError::new(
            ErrorKind::NoSuchNetwork {
                network: name.to_owned(),
            },
            format!("no network {name:?}"),
        )
    }
}

/// A running network, as `networks` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Its name.
    pub name: String,
    /// Its mode.
    pub mode: NetworkMode,
    /// Its ports.
    pub ports: Vec<PortInfo>,
}

/// A port of a running network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    /// Its index in the switch.
    pub id: usize,
    /// Its name.
    pub name: String,
    /// Its role, as people read it (`bridge port`, `uplink`, `macvlan sub-interface`).
    pub role: String,
}

/// What made an FDB entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdbKind {
    /// Learned from a source address; ages.
    Dynamic,
    /// Added by the operator.
    Static,
    /// The switch's own address.
    Local,
}

impl From<EntryKind> for FdbKind {
    fn from(k: EntryKind) -> FdbKind {
        match k {
            EntryKind::Dynamic => FdbKind::Dynamic,
            EntryKind::Static => FdbKind::Static,
            EntryKind::Local => FdbKind::Local,
        }
    }
}

/// One FDB entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdbRow {
    /// Its VLAN.
    pub vid: Vid,
    /// The station.
    pub mac: Mac,
    /// The port it lives behind.
    pub port: String,
    /// What made it.
    pub kind: FdbKind,
    /// Never moves.
    pub sticky: bool,
    /// Seconds since it was last seen (dynamic entries).
    pub age_secs: f64,
    /// Behind an overlay port: the remote VTEP the station is behind (absent: unknown, frames
    /// to it go to every VTEP of the flood list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep: Option<Ipv4Addr>,
}

/// A network's counters: the engine's, each port's and, for a bridge, the FDB's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// The engine's totals.
    #[serde(flatten)]
    pub engine: EngineStats,
    /// Each port's counters.
    pub ports: Vec<PortStats>,
    /// A bridge's FDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fdb: Option<FdbStatsInfo>,
}

/// One port's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    /// The port's name.
    pub name: String,
    /// Frames received.
    pub rx: u64,
    /// Frames received and sent on.
    pub forwarded: u64,
    /// Frames sent.
    pub tx: u64,
    /// Frames for the port lost to its full TX queue.
    pub tx_full: u64,
    /// Frames for the port lost to a transient send error (`ENOBUFS`, `EAGAIN`, a link
    /// down): the port stays.
    #[serde(default)]
    pub tx_errors: u64,
    /// Frames received and dropped, by reason name (storm control and port security
    /// included); reasons never seen are left out.
    pub drops: BTreeMap<String, u64>,
    /// Storm-control limits, when any is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormSpec>,
    /// A bridge port's learning.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<PortLearning>,
    /// An overlay port's VNI, remotes and counters per remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<OverlayState>,
}

/// A bridge port's learned MACs, cap and refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortLearning {
    /// MACs learned on the port now.
    pub learned: u32,
    /// Its cap (0 = none).
    pub max_learned: u32,
    /// New sources refused at the cap (port security).
    pub port_security_refused: u64,
    /// MAC flaps onto or off the port.
    pub flaps: u64,
}

/// A bridge's FDB counters and its most recent MAC flaps (a loop shows there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdbStatsInfo {
    /// Entries now.
    pub entries: usize,
    /// Learned entries now.
    pub learned_now: u32,
    /// The bridge-wide cap on learned entries (0 = none).
    #[serde(default)]
    pub max_learned: u32,
    /// Sources learned.
    pub learned: u64,
    /// Stations that moved.
    pub moves: u64,
    /// Sources refused at the bridge-wide cap.
    pub at_cap: u64,
    /// Sources refused at a port's cap.
    pub port_cap: u64,
    /// Entries aged out.
    pub expired: u64,
    /// Frames whose source was the switch's own address.
    pub own_source: u64,
    /// MAC flaps.
    pub flaps: u64,
    /// The most recent flaps, oldest first.
    pub recent_flaps: Vec<FlapInfo>,
}

/// One MAC flap: a station seen moving between two ports again and again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlapInfo {
    /// Its VLAN.
    pub vid: Vid,
    /// The station.
    pub mac: Mac,
    /// The port it left.
    pub from: String,
    /// The port it went to.
    pub to: String,
    /// Seconds ago.
    pub age_secs: f64,
}

/// The port `add_port` added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAdded {
    /// Its index in the switch.
    pub id: usize,
}

/// What `trace_take` took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceTaken {
    /// The records since the last take.
    pub records: Vec<TraceRecord>,
    /// Records lost to a full queue.
    pub lost: u64,
    /// Whether the trace goes on.
    pub active: bool,
}

/// What `capture_take` took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureTaken {
    /// The frames since the last take.
    pub frames: Vec<Captured>,
    /// Frames lost to a full queue.
    pub lost: u64,
    /// Whether the capture goes on.
    pub active: bool,
}

/// The data of a successful answer; which variant follows from the request
/// ([`Reply::decode`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// Done, nothing to say (no `data`).
    Done,
    /// `networks`.
    Networks(Vec<NetworkInfo>),
    /// `fdb`.
    Fdb(Vec<FdbRow>),
    /// `stats`.
    Stats(Box<NetworkStats>),
    /// `add_port`.
    PortAdded(PortAdded),
    /// `remove_network`: the network's last counters.
    Stopped(EngineStats),
    /// `trace_take`.
    Trace(TraceTaken),
    /// `capture_take`.
    Capture(CaptureTaken),
}

impl Reply {
    /// Decodes the `data` of an answer to `request`.
    pub fn decode(request: &Request, data: Option<Value>) -> Result<Reply, serde_json::Error> {
        let data = data.unwrap_or(Value::Null);
        Ok(match request {
            Request::Networks => Reply::Networks(serde_json::from_value(data)?),
            Request::Fdb { .. } => Reply::Fdb(serde_json::from_value(data)?),
            Request::Stats { .. } => Reply::Stats(serde_json::from_value(data)?),
            Request::AddPort { .. } => Reply::PortAdded(serde_json::from_value(data)?),
            Request::RemoveNetwork { .. } => Reply::Stopped(serde_json::from_value(data)?),
            Request::TraceTake { .. } => Reply::Trace(serde_json::from_value(data)?),
            Request::CaptureTake { .. } => Reply::Capture(serde_json::from_value(data)?),
            Request::SetAgeing { .. }
            | Request::AddNetwork { .. }
            | Request::RemovePort { .. }
            | Request::AddStatic { .. }
            | Request::RemoveStatic { .. }
            | Request::AddRemote { .. }
            | Request::RemoveRemote { .. }
            | Request::SetStorm { .. }
            | Request::SetMaxLearned { .. }
            | Request::Trace { .. }
            | Request::TraceStop { .. }
            | Request::Capture { .. }
            | Request::CaptureStop { .. } => {
                <()>::deserialize(&data)?;
                Reply::Done
            }
        })
    }
}

/// An answer as it travels.
#[derive(Debug, Serialize, Deserialize)]
struct WireResponse<D> {
    v: u32,
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<D>,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The protocol version of the answer.
    pub v: u32,
    /// The reply, or why there is none.
    pub result: Result<Reply, ApiError>,
}

impl From<Result<Reply, ApiError>> for Response {
    fn from(result: Result<Reply, ApiError>) -> Response {
        Response { v: VERSION, result }
    }
}

impl Response {
    /// Whether the request was carried out.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// Why not, if it was not.
    pub fn error(&self) -> Option<&ApiError> {
        self.result.as_ref().err()
    }

    /// The reply, if the request was carried out.
    pub fn reply(&self) -> Option<&Reply> {
        self.result.as_ref().ok()
    }

    /// The response as one line of JSON (with its newline).
    pub fn to_line(&self) -> String {
        let wire = match &self.result {
            Ok(reply) => WireResponse {
                v: self.v,
                ok: true,
                error: None,
                kind: None,
                data: (*reply != Reply::Done).then_some(reply),
            },
            Err(e) => WireResponse {
                v: self.v,
                ok: false,
                error: Some(e.message.clone()),
                kind: Some(e.kind.clone()),
                data: None,
            },
        };
        let mut s = serde_json::to_string(&wire).unwrap_or_else(|_| {
            format!(
                r#"{{"v":{VERSION},"ok":false,"error":"response could not be encoded","kind":{{"kind":"failed"}}}}"#
            )
        });
        s.push('\n');
        s
    }

    /// Decodes the answer line to `request`.
    pub fn from_line(line: &str, request: &Request) -> Result<Response, serde_json::Error> {
        let wire: WireResponse<Value> = serde_json::from_str(line)?;
        let result = if wire.ok {
            Ok(Reply::decode(request, wire.data)?)
        } else {
            Err(ApiError {
                kind: wire.kind.unwrap_or(ErrorKind::Failed),
                message: wire.error.unwrap_or_else(|| "no reason given".to_owned()),
            })
        };
        Ok(Response { v: wire.v, result })
    }
}
