//! The control protocol: one JSON object per line each way, versioned. A request names an
//! operation (`op`) and carries `"v": 1`; every request gets exactly one response with `ok`,
//! and `error` or `data`. Requests are limited to [`MAX_REQUEST`] bytes; a malformed one gets
//! an error response and never harms the daemon.
//!
//! ```text
//! {"v":1,"op":"networks"}
//! {"v":1,"op":"fdb","network":"lab"}
//! {"v":1,"op":"stats","network":"lab"}
//! {"v":1,"op":"set_ageing","network":"lab","secs":30}
//! {"v":1,"op":"add_static","network":"lab","mac":"02:00:00:00:00:01","port":"veth-a","vid":0,"sticky":false}
//! {"v":1,"op":"add_port","network":"lab","port":{"interface":"veth-c","role":"bridge"}}
//! {"v":1,"op":"remove_port","network":"lab","port":"veth-c"}
//! {"v":1,"op":"add_network","network":{"name":"lab2","mode":"bridge","port":[{"interface":"veth-d","role":"bridge"}]}}
//! {"v":1,"op":"remove_network","network":"lab2"}
//! {"v":1,"op":"trace","network":"lab","count":20,"port":"veth-a"}
//! {"v":1,"op":"trace_take","network":"lab"}
//! {"v":1,"op":"trace_stop","network":"lab"}
//! {"v":1,"op":"capture","network":"lab","count":100}
//! {"v":1,"op":"capture_take","network":"lab"}
//! {"v":1,"op":"capture_stop","network":"lab"}
//! ```
//!
//! `trace` and `capture` start (replacing any in progress) and return at once; `*_take`
//! returns what was recorded since the last take (`records` or `frames`), how many were
//! `lost` to a full queue, and whether it is still `active`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Config, NetworkSpec, PortSpec};
use crate::daemon::{self, Handle, Networks};
use crate::engine::Engine;
use crate::fwd::{EntryKind, PortId, Vid};
use crate::trace::{Capture, Tracer};
use crate::wire::Mac;

/// The protocol version this daemon speaks.
pub const VERSION: u32 = 1;
/// The largest request line, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Every network with its mode and ports.
    Networks {
        /// Protocol version.
        v: u32,
    },
    /// A network's forwarding database.
    Fdb {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
    },
    /// A network's counters.
    Stats {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
    },
    /// Sets a bridge network's ageing time (0 = no learning).
    SetAgeing {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
        /// Seconds.
        secs: u64,
    },
    /// Starts a network; `network` is written as a `[[network]]` table of the configuration
    /// file, ports included.
    AddNetwork {
        /// Protocol version.
        v: u32,
        /// The network.
        network: Box<NetworkSpec>,
    },
    /// Stops a network: its ports close (TAP devices vanish); answers its last counters.
    RemoveNetwork {
        /// Protocol version.
        v: u32,
        /// The network's name.
        network: String,
    },
    /// Adds a port to a running network; `port` is written as in the configuration file.
    AddPort {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
        /// The port, as a `[[network.port]]` table.
        port: Box<PortSpec>,
    },
    /// Removes a port (by its interface name) from a running network; TAP devices vanish.
    RemovePort {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
        /// The port's name.
        port: String,
    },
    /// Traces the decisions for the next `count` frames (of `port`, or any port).
    Trace {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
        /// How many frames.
        count: u64,
        /// Only frames received on this port.
        #[serde(default)]
        port: Option<String>,
    },
    /// Takes the trace records so far.
    TraceTake {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
    },
    /// Stops tracing.
    TraceStop {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
    },
    /// Captures the next `count` frames received on or sent out of `port` (or any port).
    Capture {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
        /// How many frames.
        count: u64,
        /// Only frames of this port.
        #[serde(default)]
        port: Option<String>,
    },
    /// Takes the captured frames so far.
    CaptureTake {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
    },
    /// Stops capturing.
    CaptureStop {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
    },
    /// Adds a static FDB entry to a bridge network.
    AddStatic {
        /// Protocol version.
        v: u32,
        /// The network.
        network: String,
        /// The station.
        mac: String,
        /// The port's name (its interface).
        port: String,
        /// VLAN (0 on VLAN-unaware ports).
        #[serde(default)]
        vid: u16,
        /// Never moves.
        #[serde(default)]
        sticky: bool,
    },
}

impl Request {
    fn version(&self) -> u32 {
        match self {
            Request::Networks { v }
            | Request::Fdb { v, .. }
            | Request::Stats { v, .. }
            | Request::SetAgeing { v, .. }
            | Request::AddNetwork { v, .. }
            | Request::RemoveNetwork { v, .. }
            | Request::AddPort { v, .. }
            | Request::RemovePort { v, .. }
            | Request::AddStatic { v, .. }
            | Request::Trace { v, .. }
            | Request::TraceTake { v, .. }
            | Request::TraceStop { v, .. }
            | Request::Capture { v, .. }
            | Request::CaptureTake { v, .. }
            | Request::CaptureStop { v, .. } => *v,
        }
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

impl Response {
    fn ok(data: Value) -> Response {
        Response {
            v: VERSION,
            ok: true,
            error: None,
            data,
        }
    }

    fn error(e: impl std::fmt::Display) -> Response {
        Response {
            v: VERSION,
            ok: false,
            error: Some(e.to_string()),
            data: Value::Null,
        }
    }

    /// The response as one line of JSON (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"v":1,"ok":false,"error":"response could not be encoded"}"#.to_owned()
        });
        s.push('\n');
        s
    }
}

/// What requests act on: the running networks, and whether networks can be added or removed
/// (the daemon's [`Networks`]) or not (a fixed list of handles).
pub trait NetworkSet {
    /// The ways to every running engine.
    fn handles(&self) -> Vec<Handle>;
    /// Starts a network.
    fn add(&self, spec: &NetworkSpec) -> Result<(), String>;
    /// Stops a network and returns its counters.
    fn remove(&self, name: &str) -> Result<Value, String>;
}

impl NetworkSet for [Handle] {
    fn handles(&self) -> Vec<Handle> {
        self.to_vec()
    }
    fn add(&self, _: &NetworkSpec) -> Result<(), String> {
        Err("networks cannot be added here".into())
    }
    fn remove(&self, _: &str) -> Result<Value, String> {
        Err("networks cannot be removed here".into())
    }
}

impl NetworkSet for Networks {
    fn handles(&self) -> Vec<Handle> {
        Networks::handles(self)
    }
    fn add(&self, spec: &NetworkSpec) -> Result<(), String> {
        let plan = Config {
            networks: vec![spec.clone()],
        }
        .plan()
        .map_err(|e| e.to_string())?
        .remove(0);
        self.start(plan)
    }
    fn remove(&self, name: &str) -> Result<Value, String> {
        let s = Networks::remove(self, name)?;
        serde_json::to_value(s).map_err(|e| e.to_string())
    }
}

/// Answers one request line against the running networks.
pub fn handle<N: NetworkSet + ?Sized>(line: &str, set: &N) -> Response {
    let networks = &set.handles()[..];
    if line.len() > MAX_REQUEST {
        return Response::error(format!("request longer than {MAX_REQUEST} bytes"));
    }
    let req: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return Response::error(format!("malformed request: {e}")),
    };
    if req.version() != VERSION {
        return Response::error(format!(
            "protocol version {} not supported (this daemon speaks {VERSION})",
            req.version()
        ));
    }
    let find = |name: &str| {
        networks
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| format!("no network {name:?}"))
    };
    let result: Result<Value, String> = match req {
        Request::Networks { .. } => networks
            .iter()
            .map(|n| {
                let ports = n.call(port_list).map_err(|e| e.to_string())?;
                Ok(json!({"name": n.name, "mode": n.mode, "ports": ports}))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Value::from),
        Request::Fdb { network, .. } => find(&network).and_then(|n| {
            n.call(fdb_rows).map_err(|e| e.to_string())?.ok_or_else(|| {
                format!("network {network:?} is not a learning bridge: it has no FDB")
            })
        }),
        Request::Stats { network, .. } => {
            find(&network).and_then(|n| n.call(stats).map_err(|e| e.to_string()))
        }
        Request::SetAgeing { network, secs, .. } => find(&network).and_then(|n| {
            n.call(move |e| {
                e.switch_mut()
                    .fdb_mut()
                    .map(|f| f.set_ageing(Duration::from_secs(secs)))
                    .ok_or("not a learning bridge: it has no FDB")
            })
            .map_err(|e| e.to_string())?
            .map(|()| Value::Null)
            .map_err(str::to_owned)
        }),
        Request::AddNetwork { network, .. } => set.add(&network).map(|()| Value::Null),
        Request::RemoveNetwork { network, .. } => set.remove(&network),
        Request::AddPort { network, port, .. } => find(&network).and_then(|n| add_port(n, &port)),
        Request::RemovePort { network, port, .. } => find(&network).and_then(|n| {
            n.call(move |e| {
                let sw = e.switch_mut();
                let id = sw
                    .port_by_name(&port)
                    .ok_or_else(|| format!("no port {port:?}"))?;
                sw.remove_port(id).map_err(|e| e.to_string())?;
                e.detach(id);
                e.program_filters();
                tracing::info!(port = %port, "port removed");
                Ok(Value::Null)
            })
            .map_err(|e| e.to_string())?
        }),
        Request::AddStatic {
            network,
            mac,
            port,
            vid,
            sticky,
            ..
        } => find(&network).and_then(|n| {
            let mac: Mac = mac
                .parse()
                .map_err(|e: crate::wire::ParseMacError| e.to_string())?;
            n.call(move |e| add_static(e, mac, &port, vid, sticky))
                .map_err(|e| e.to_string())?
                .map(|()| Value::Null)
        }),
        Request::Trace {
            network,
            count,
            port,
            ..
        } => find(&network).and_then(|n| {
            n.call(move |e| {
                let port = named_port(e, port.as_deref())?;
                e.set_tracer(Some(Tracer::new(port, count)));
                Ok(Value::Null)
            })
            .map_err(|e| e.to_string())?
        }),
        Request::TraceTake { network, .. } => find(&network).and_then(|n| {
            n.call(|e| {
                let (t, sw) = e
                    .tracer_mut()
                    .ok_or("no trace in progress: start one with `trace`")?;
                let (records, lost) = t.take(sw);
                Ok(json!({"records": records, "lost": lost, "active": !t.done()}))
            })
            .map_err(|e| e.to_string())?
            .map_err(|e: &str| e.to_owned())
        }),
        Request::TraceStop { network, .. } => find(&network).and_then(|n| {
            n.call(|e| e.set_tracer(None))
                .map(|()| Value::Null)
                .map_err(|e| e.to_string())
        }),
        Request::Capture {
            network,
            count,
            port,
            ..
        } => find(&network).and_then(|n| {
            n.call(move |e| {
                let port = named_port(e, port.as_deref())?;
                e.set_capture(Some(Capture::new(port, count)));
                Ok(Value::Null)
            })
            .map_err(|e| e.to_string())?
        }),
        Request::CaptureTake { network, .. } => find(&network).and_then(|n| {
            n.call(|e| {
                let c = e
                    .capture_mut()
                    .ok_or("no capture in progress: start one with `capture`")?;
                let (frames, lost) = c.take();
                Ok(json!({"frames": frames, "lost": lost, "active": !c.done()}))
            })
            .map_err(|e| e.to_string())?
            .map_err(|e: &str| e.to_owned())
        }),
        Request::CaptureStop { network, .. } => find(&network).and_then(|n| {
            n.call(|e| e.set_capture(None))
                .map(|()| Value::Null)
                .map_err(|e| e.to_string())
        }),
    };
    match result {
        Ok(data) => Response::ok(data),
        Err(e) => Response::error(e),
    }
}

/// The port named `name` (`None`: every port).
fn named_port(e: &Engine, name: Option<&str>) -> Result<Option<PortId>, String> {
    name.map(|n| {
        e.switch()
            .port_by_name(n)
            .ok_or_else(|| format!("no port {n:?}"))
    })
    .transpose()
}

/// Opens the port's I/O here (sockets in other namespaces included), then hands it to the
/// engine with the switch configuration; the switch refuses what the kernel would refuse.
fn add_port(n: &Handle, spec: &PortSpec) -> Result<Value, String> {
    let (cfg, place) = spec.plan(&n.name, n.mode).map_err(|e| e.to_string())?;
    let io = daemon::open_port(&place, n.max_frame).map_err(|e| e.to_string())?;
    let name = cfg.name.clone();
    n.call(move |e| {
        let id = e.switch_mut().add_port(cfg).map_err(|e| e.to_string())?;
        if let Err(err) = e.attach(id, io) {
            let _ = e.switch_mut().remove_port(id);
            return Err(format!("attaching {name}: {err}"));
        }
        e.program_filters();
        tracing::info!(port = %id, name = %name, "port added");
        Ok(json!({"id": id.index()}))
    })
    .map_err(|e| e.to_string())?
}

/// The network's totals and each port's counters, drops by reason name (storm control and
/// port security included); for a bridge, also each port's learned MACs, cap, refusals and
/// flaps, and the table's counters with the most recent flaps (a loop shows there).
fn stats(e: &mut Engine) -> Value {
    let now = e.tick();
    let sw = e.switch();
    let fdb = sw.fdb();
    let ports: Vec<Value> = sw
        .ports()
        .map(|(id, p)| {
            let c = e.port_counters(id);
            let drops: serde_json::Map<String, Value> =
                c.drops().map(|(r, n)| (r.name().to_owned(), Value::from(n))).collect();
            let mut port = json!({"name": p.cfg.name, "rx": c.rx, "forwarded": c.forwarded, "tx": c.tx, "tx_full": c.tx_full, "tx_errors": c.tx_errors, "drops": drops});
            if let Some(f) = fdb {
                let s = f.port_stats(id);
                port["learned"] = s.learned.into();
                port["max_learned"] = s.max_learned.into();
                port["port_security_refused"] = s.refused.into();
                port["flaps"] = s.flaps.into();
            }
            port
        })
        .collect();
    let s = e.stats();
    let mut out = json!({
        "rx": s.rx, "tx": s.tx, "tx_full": s.tx_full, "io_errors": s.io_errors,
        "transient_errors": s.transient_errors, "detached": s.detached, "ports": ports,
    });
    if let Some(f) = fdb {
        let st = f.stats();
        let flaps: Vec<Value> = f
            .recent_flaps()
            .map(|fl| {
                json!({
                    "vid": fl.vid, "mac": fl.mac.to_string(), "from": sw.port_name(fl.from),
                    "to": sw.port_name(fl.to), "age_secs": f64::from(now.since(fl.at)) / 100.0,
                })
            })
            .collect();
        out["fdb"] = json!({
            "entries": f.len(), "learned_now": f.n_learned(), "learned": st.learned,
            "moves": st.moves, "at_cap": st.at_cap, "port_cap": st.port_cap,
            "expired": st.expired, "own_source": st.own_source, "flaps": st.flaps,
            "recent_flaps": flaps,
        });
    }
    out
}

fn port_list(e: &mut Engine) -> Value {
    e.switch()
        .ports()
        .map(|(id, p)| json!({"id": id.index(), "name": p.cfg.name, "role": p.cfg.role.name()}))
        .collect()
}

fn fdb_rows(e: &mut Engine) -> Option<Value> {
    let now = e.tick();
    let sw = e.switch();
    let fdb = sw.fdb()?;
    let mut rows: Vec<_> = fdb.entries(now).collect();
    rows.sort_by_key(|r| (r.vid, r.mac));
    Some(
        rows.into_iter()
            .map(|r| {
                let kind = match r.kind {
                    EntryKind::Dynamic => "dynamic",
                    EntryKind::Static => "static",
                    EntryKind::Local => "local",
                };
                json!({
                    "vid": r.vid, "mac": r.mac.to_string(), "port": sw.port_name(r.port),
                    "kind": kind, "sticky": r.sticky, "age_secs": f64::from(r.age) / 100.0,
                })
            })
            .collect(),
    )
}

fn add_static(e: &mut Engine, mac: Mac, port: &str, vid: u16, sticky: bool) -> Result<(), String> {
    let now = e.tick();
    let sw = e.switch_mut();
    let id = sw
        .port_by_name(port)
        .ok_or_else(|| format!("no port {port:?}"))?;
    let fdb = sw.fdb_mut().ok_or("not a learning bridge: it has no FDB")?;
    fdb.add_static(now, Vid::new(vid), mac, id, sticky)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_report_port_security_storm_drops_and_flaps() {
        use crate::fwd::{
            Batch, BridgePort, FLAP_MOVES, PortConfig, Role, StormControl, Switch, SwitchConfig,
            Tick,
        };
        use crate::wire::craft;

        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        let capped = BridgePort {
            max_learned: 1,
            ..BridgePort::default()
        };
        let a = sw
            .add_port(PortConfig::new("a", Role::Bridge(capped)))
            .unwrap();
        let b = sw.add_port(PortConfig::bridge("b")).unwrap();
        let storm = StormControl {
            broadcast: 1,
            ..StormControl::OFF
        };
        sw.set_storm(b, storm).unwrap();
        let mut e = Engine::new(sw);
        let bc = |n: u8| {
            craft::ethernet(
                Mac::BROADCAST,
                craft::station(n),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            )
        };
        let mut batch: Batch<Vec<u8>> = Batch::new();
        // Station 1 flaps between a and b; b's broadcasts are over its limit after the first.
        for i in 0..=FLAP_MOVES {
            batch.push(if i % 2 == 0 { a } else { b }, bc(1)).unwrap();
        }
        // Station 2 on a is one over a's cap.
        batch.push(a, bc(2)).unwrap();
        e.switch_mut().process(Tick(1), &mut batch);
        let v = stats(&mut e);
        assert_eq!(v["fdb"]["flaps"], 1);
        assert_eq!(v["fdb"]["port_cap"], 1);
        assert_eq!(v["fdb"]["recent_flaps"][0]["mac"], "02:00:00:00:00:01");
        assert_eq!(v["ports"][0]["name"], "a");
        assert_eq!(v["ports"][0]["max_learned"], 1);
        assert_eq!(v["ports"][0]["port_security_refused"], 1);
        assert_eq!(v["ports"][1]["flaps"], 1);
    }

    #[test]
    fn malformed_requests_get_errors() {
        for (line, expect) in [
            ("", "malformed request"),
            ("{", "malformed request"),
            (r#"{"v":1,"op":"reboot"}"#, "unknown variant"),
            (r#"{"v":1,"op":"fdb"}"#, "missing field `network`"),
            (
                r#"{"v":1,"op":"fdb","network":"x","extra":1}"#,
                "unknown field",
            ),
            (
                r#"{"v":2,"op":"networks"}"#,
                "protocol version 2 not supported",
            ),
            (
                r#"{"v":1,"op":"fdb","network":"nope"}"#,
                "no network \"nope\"",
            ),
            (
                r#"{"v":1,"op":"add_network","network":{"name":"x","mode":"bridge"}}"#,
                "cannot be added here",
            ),
        ] {
            let r = handle(line, &[][..]);
            assert!(!r.ok);
            let e = r.error.clone().unwrap_or_default();
            assert!(e.contains(expect), "{line}: {e}");
            assert!(r.to_line().ends_with('\n'));
        }
        let huge = "x".repeat(MAX_REQUEST + 1);
        assert!(
            handle(&huge, &[][..])
                .error
                .unwrap_or_default()
                .contains("longer than")
        );
        let none = handle(r#"{"v":1,"op":"networks"}"#, &[][..]);
        assert!(none.ok);
        assert_eq!(none.data, json!([]));
    }
}
