//! The control protocol: one JSON object per line each way, versioned. A request names an
//! operation (`op`) and carries `"v": 1`; every request gets exactly one response with `ok`,
//! and `error` with its `kind`, or `data`. Requests are limited to [`MAX_REQUEST`] bytes; a
//! malformed one gets an error response and never harms the daemon.
//!
//! ```text
//! {"v":1,"op":"networks"}
//! {"v":1,"op":"fdb","network":"lab"}
//! {"v":1,"op":"stats","network":"lab"}
//! {"v":1,"op":"set_ageing","network":"lab","secs":30}
//! {"v":1,"op":"add_static","network":"lab","mac":"02:00:00:00:00:01","port":"veth-a","vid":0,"sticky":false}
//! {"v":1,"op":"set_storm","network":"lab","port":"veth-a","storm":{"broadcast":100}}
//! {"v":1,"op":"set_max_learned","network":"lab","port":"veth-a","max_learned":8}
//! {"v":1,"op":"set_max_learned","network":"lab","max_learned":1000}
//! {"v":1,"op":"add_port","network":"lab","port":{"interface":"veth-c","role":"bridge"}}
//! {"v":1,"op":"remove_port","network":"lab","port":"veth-c"}
//! {"v":1,"op":"add_network","network":{"name":"lab2","mode":"bridge","port":[{"interface":"veth-d","role":"bridge"}]}}
//! {"v":1,"op":"remove_network","network":"lab2"}
//! {"v":1,"op":"add_remote","network":"ov","port":"vxlan","vtep":"192.0.2.3"}
//! {"v":1,"op":"remove_remote","network":"ov","port":"vxlan","vtep":"192.0.2.3"}
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
//!
//! The contract lives in [`proto`]: every request, reply and error as a type, shared by the
//! daemon (which decodes requests and encodes replies here) and by `l2ctl` (which encodes
//! requests and decodes replies with the same types). It is a module of this crate rather
//! than a crate of its own because its types are this crate's: the configuration tables a
//! request carries (`NetworkSpec`, `PortSpec`), `Mac`, the engine's counters and the trace
//! records; and `l2ctl` already depends on this crate. This module only decodes, calls the
//! engine's transactions ([`Engine::add_port`] and the like) or reads its counters, and
//! encodes.

pub mod proto;

use std::time::Duration;

pub use proto::{
    ApiError, ErrorKind, FdbKind, FdbRow, MAX_REQUEST, NetworkInfo, NetworkStats, PortInfo,
    PortLearning, Reply, Request, Response, VERSION,
};

use crate::config::{ConfigFileError, NetworkSpec, PortSpec, StormSpec};
use crate::daemon::{self, CallError, Handle, Networks, NetworksError};
use crate::engine::{ChangeError, Engine, EngineStats};
use crate::fwd::{ConfigError, PortId};
use crate::port::vxlan::VxlanConfigError;
use crate::trace::{Capture, Tracer};

/// What requests act on: the running networks, and whether networks can be added or removed
/// (the daemon's [`Networks`]) or not (a fixed list of handles).
pub trait NetworkSet {
    /// The ways to every running engine.
    fn handles(&self) -> Vec<Handle>;
    /// Starts a network.
    fn add(&self, spec: &NetworkSpec) -> Result<(), ApiError>;
    /// Stops a network and returns its counters.
    fn remove(&self, name: &str) -> Result<EngineStats, ApiError>;
}

impl NetworkSet for [Handle] {
    fn handles(&self) -> Vec<Handle> {
        self.to_vec()
    }
    fn add(&self, _: &NetworkSpec) -> Result<(), ApiError> {
        Err(ApiError::new(
            ErrorKind::Unsupported,
            "networks cannot be added here",
        ))
    }
    fn remove(&self, _: &str) -> Result<EngineStats, ApiError> {
        Err(ApiError::new(
            ErrorKind::Unsupported,
            "networks cannot be removed here",
        ))
    }
}

impl NetworkSet for Networks {
    fn handles(&self) -> Vec<Handle> {
        Networks::handles(self)
    }
    fn add(&self, spec: &NetworkSpec) -> Result<(), ApiError> {
        Networks::add(self, spec).map_err(ApiError::from)
    }
    fn remove(&self, name: &str) -> Result<EngineStats, ApiError> {
        Networks::remove(self, name).map_err(ApiError::from)
    }
}

impl From<NetworksError> for ApiError {
    fn from(e: NetworksError) -> ApiError {
        let kind = match &e {
            NetworksError::Exists(name) => ErrorKind::Exists { name: name.clone() },
            NetworksError::NoSuchNetwork(network) => ErrorKind::NoSuchNetwork {
                network: network.clone(),
            },
            NetworksError::Plan(_) => ErrorKind::Invalid {
                field: "network".into(),
            },
            NetworksError::Start(_) | NetworksError::Stop { .. } => ErrorKind::Failed,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> ApiError {
        let kind = match e {
            CallError::Timeout(..) => ErrorKind::Busy,
            CallError::Stopped(_) => ErrorKind::Stopped,
        };
        ApiError::new(kind, e.to_string())
    }
}

/// An engine's refusal; `field` names the request field a refused configuration came from.
fn refused(e: ChangeError, field: &str) -> ApiError {
    let kind = match &e {
        ChangeError::NoSuchPort(port) => ErrorKind::NoSuchPort { port: port.clone() },
        ChangeError::NoFdb | ChangeError::Config(ConfigError::NotABridge { .. }) => {
            ErrorKind::NotABridge
        }
        ChangeError::Config(ConfigError::DuplicateName(name)) => {
            ErrorKind::Exists { name: name.clone() }
        }
        ChangeError::Config(ConfigError::NotABridgePort { .. }) => ErrorKind::Invalid {
            field: "port".into(),
        },
        ChangeError::Config(_) => ErrorKind::Invalid {
            field: field.into(),
        },
        ChangeError::Fdb(_) => ErrorKind::Invalid {
            field: "mac".into(),
        },
        ChangeError::Attach { .. } => ErrorKind::Failed,
        ChangeError::NotOverlay(_) => ErrorKind::Invalid {
            field: "port".into(),
        },
        ChangeError::Overlay(VxlanConfigError::Duplicate(v)) => ErrorKind::Exists {
            name: v.to_string(),
        },
        ChangeError::Overlay(_) => ErrorKind::Invalid {
            field: "vtep".into(),
        },
    };
    ApiError::new(kind, e.to_string())
}

fn invalid_spec(e: ConfigFileError, field: &str) -> ApiError {
    ApiError::invalid(field, e.to_string())
}

/// Answers one request line against the running networks.
pub fn handle<N: NetworkSet + ?Sized>(line: &str, set: &N) -> Response {
    Response::from(Request::from_line(line).and_then(|req| dispatch(req, set)))
}

/// Carries out one decoded request.
pub fn dispatch<N: NetworkSet + ?Sized>(req: Request, set: &N) -> Result<Reply, ApiError> {
    let networks = set.handles();
    let find = |name: &str| {
        networks
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ApiError::no_network(name))
    };
    // Runs `f` on `network`'s engine, which answers or refuses.
    fn on<T: Send + 'static>(
        n: &Handle,
        f: impl FnOnce(&mut Engine) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        n.call(f)?
    }
    let done = |()| Reply::Done;
    match req {
        Request::Networks => networks
            .iter()
            .map(|n| {
                let ports = n.call(port_list)?;
                Ok(NetworkInfo {
                    name: n.name.clone(),
                    mode: n.mode,
                    ports,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Reply::Networks),
        Request::Fdb { network } => {
            let rows = find(&network)?.call(fdb_rows)?;
            rows.map(Reply::Fdb).ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotABridge,
                    format!("network {network:?} is not a learning bridge: it has no FDB"),
                )
            })
        }
        Request::Stats { network } => Ok(Reply::Stats(Box::new(find(&network)?.call(stats)?))),
        Request::SetAgeing { network, secs } => on(find(&network)?, move |e| {
            e.set_ageing(Duration::from_secs(secs))
                .map_err(|e| refused(e, "secs"))
        })
        .map(done),
        Request::AddNetwork { network } => set.add(&network).map(done),
        Request::RemoveNetwork { network } => set.remove(&network).map(Reply::Stopped),
        Request::AddPort { network, port } => add_port(find(&network)?, &port),
        Request::RemovePort { network, port } => on(find(&network)?, move |e| {
            e.remove_port(&port).map_err(|e| refused(e, "port"))
        })
        .map(|_| Reply::Done),
        Request::AddStatic {
            network,
            mac,
            port,
            vid,
            sticky,
            vtep,
        } => on(find(&network)?, move |e| {
            match vtep {
                None => e.add_static(vid, mac, &port, sticky),
                Some(v) => e.add_static_remote(vid, mac, &port, v),
            }
            .map_err(|e| refused(e, "mac"))
        })
        .map(done),
        Request::RemoveStatic { network, mac, vid } => on(find(&network)?, move |e| {
            e.remove_static(vid, mac).map_err(|e| refused(e, "mac"))
        })
        .map(done),
        Request::AddRemote {
            network,
            port,
            vtep,
        } => on(find(&network)?, move |e| {
            e.add_remote(&port, vtep).map_err(|e| refused(e, "vtep"))
        })
        .map(done),
        Request::RemoveRemote {
            network,
            port,
            vtep,
        } => on(find(&network)?, move |e| {
            e.remove_remote(&port, vtep)
                .map(|_| ())
                .map_err(|e| refused(e, "vtep"))
        })
        .map(done),
        Request::SetStorm {
            network,
            port,
            storm,
        } => {
            let n = find(&network)?;
            storm
                .check(n.mode)
                .map_err(|e| ApiError::invalid("storm", format!("storm.{} {e}", e.field())))?;
            on(n, move |e| {
                e.set_storm(&port, storm.into())
                    .map_err(|e| refused(e, "storm"))
            })
            .map(done)
        }
        Request::SetMaxLearned {
            network,
            port,
            max_learned,
        } => on(find(&network)?, move |e| {
            e.set_max_learned(port.as_deref(), max_learned)
                .map_err(|e| refused(e, "max_learned"))
        })
        .map(done),
        Request::Trace {
            network,
            count,
            port,
        } => on(find(&network)?, move |e| {
            let port = named_port(e, port.as_deref())?;
            e.set_tracer(Some(Tracer::new(port, count)));
            Ok(())
        })
        .map(done),
        Request::TraceTake { network } => on(find(&network)?, |e| {
            let (t, sw) = e.tracer_mut().ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotActive,
                    "no trace in progress: start one with `trace`",
                )
            })?;
            let (records, lost) = t.take(sw);
            Ok(proto::TraceTaken {
                records,
                lost,
                active: !t.done(),
            })
        })
        .map(Reply::Trace),
        Request::TraceStop { network } => find(&network)?
            .call(|e| e.set_tracer(None))
            .map_err(ApiError::from)
            .map(done),
        Request::Capture {
            network,
            count,
            port,
        } => on(find(&network)?, move |e| {
            let port = named_port(e, port.as_deref())?;
            e.set_capture(Some(Capture::new(port, count)));
            Ok(())
        })
        .map(done),
        Request::CaptureTake { network } => on(find(&network)?, |e| {
            let c = e.capture_mut().ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotActive,
                    "no capture in progress: start one with `capture`",
                )
            })?;
            let (frames, lost) = c.take();
            Ok(proto::CaptureTaken {
                frames,
                lost,
                active: !c.done(),
            })
        })
        .map(Reply::Capture),
        Request::CaptureStop { network } => find(&network)?
            .call(|e| e.set_capture(None))
            .map_err(ApiError::from)
            .map(done),
    }
}

/// The port named `name` (`None`: every port).
fn named_port(e: &Engine, name: Option<&str>) -> Result<Option<PortId>, ApiError> {
    name.map(|n| e.port_id(n).map_err(|e| refused(e, "port")))
        .transpose()
}

/// Opens the port's I/O here (sockets in other namespaces included), then hands it to the
/// engine, which adds it whole or not at all; the switch refuses what the kernel would refuse.
fn add_port(n: &Handle, spec: &PortSpec) -> Result<Reply, ApiError> {
    let (cfg, place) = spec
        .plan(&n.name, n.mode)
        .map_err(|e| invalid_spec(e, "port"))?;
    let io = daemon::open_port(&place, n.max_frame).map_err(|e| {
        ApiError::new(
            ErrorKind::Failed,
            format!("opening {}: {e}", place.interface),
        )
    })?;
    let id = n.call(move |e| e.add_port(cfg, io).map_err(|e| refused(e, "port")))??;
    Ok(Reply::PortAdded(proto::PortAdded { id: id.index() }))
}

/// The network's totals and each port's counters, drops by reason name (storm control and
/// port security included); for a bridge, also each port's learned MACs, cap, refusals and
/// flaps, and the table's counters with the most recent flaps (a loop shows there).
fn stats(e: &mut Engine) -> NetworkStats {
    let now = e.tick();
    let sw = e.switch();
    let fdb = sw.fdb();
    let mut overlays = e.overlays();
    let ports = sw
        .ports()
        .map(|(id, p)| {
            let overlay = overlays
                .iter()
                .position(|(o, _)| *o == id)
                .map(|i| overlays.swap_remove(i).1);
            let c = e.port_counters(id);
            let storm = p.cfg.storm;
            proto::PortStats {
                name: p.cfg.name.clone(),
                rx: c.rx,
                forwarded: c.forwarded,
                tx: c.tx,
                tx_full: c.tx_full,
                tx_errors: c.tx_errors,
                drops: c.drops().map(|(r, n)| (r.name().to_owned(), n)).collect(),
                storm: (!storm.is_off()).then(|| StormSpec::from(storm)),
                learning: fdb.map(|f| {
                    let s = f.port_stats(id);
                    PortLearning {
                        learned: s.learned,
                        max_learned: s.max_learned,
                        port_security_refused: s.refused,
                        flaps: s.flaps,
                    }
                }),
                overlay,
            }
        })
        .collect();
    let fdb = fdb.map(|f| {
        let st = f.stats();
        proto::FdbStatsInfo {
            entries: f.len(),
            learned_now: f.n_learned(),
            max_learned: f.max_learned(),
            learned: st.learned,
            moves: st.moves,
            at_cap: st.at_cap,
            port_cap: st.port_cap,
            expired: st.expired,
            own_source: st.own_source,
            flaps: st.flaps,
            recent_flaps: f
                .recent_flaps()
                .map(|fl| proto::FlapInfo {
                    vid: fl.vid,
                    mac: fl.mac,
                    from: sw.port_name(fl.from),
                    to: sw.port_name(fl.to),
                    age_secs: f64::from(now.since(fl.at)) / 100.0,
                })
                .collect(),
        }
    });
    NetworkStats {
        engine: e.stats(),
        ports,
        fdb,
    }
}

fn port_list(e: &mut Engine) -> Vec<PortInfo> {
    e.switch()
        .ports()
        .map(|(id, p)| PortInfo {
            id: id.index(),
            name: p.cfg.name.clone(),
            role: p.cfg.role.name().to_owned(),
        })
        .collect()
}

fn fdb_rows(e: &mut Engine) -> Option<Vec<FdbRow>> {
    let now = e.tick();
    let sw = e.switch();
    let fdb = sw.fdb()?;
    let mut rows: Vec<_> = fdb.entries(now).collect();
    rows.sort_by_key(|r| (r.vid, r.mac));
    Some(
        rows.into_iter()
            .map(|r| FdbRow {
                vid: r.vid,
                mac: r.mac,
                port: sw.port_name(r.port),
                kind: r.kind.into(),
                sticky: r.sticky,
                age_secs: f64::from(r.age) / 100.0,
                vtep: r.vtep.map(|v| v.0),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Mac;

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
        let s = stats(&mut e);
        let fdb = s.fdb.clone().unwrap();
        assert_eq!(fdb.flaps, 1);
        assert_eq!(fdb.port_cap, 1);
        assert_eq!(fdb.recent_flaps[0].mac.to_string(), "02:00:00:00:00:01");
        assert_eq!(s.ports[0].name, "a");
        let learning = |i: usize| s.ports[i].learning.unwrap();
        assert_eq!(learning(0).max_learned, 1);
        assert_eq!(learning(0).port_security_refused, 1);
        assert_eq!(learning(1).flaps, 1);
        assert_eq!(s.ports[1].storm.and_then(|st| st.broadcast), Some(1));
        // On the wire, under the keys clients have always read.
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["fdb"]["flaps"], 1);
        assert_eq!(v["fdb"]["recent_flaps"][0]["mac"], "02:00:00:00:00:01");
        assert_eq!(v["ports"][0]["port_security_refused"], 1);
        assert_eq!(v["ports"][1]["flaps"], 1);
        assert_eq!(v["rx"], 0);
    }

    #[test]
    fn runtime_storm_limits_and_learning_caps_are_transactions() {
        use crate::fwd::{PortConfig, StormControl, Switch, SwitchConfig};

        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        sw.add_port(PortConfig::bridge("a")).unwrap();
        let mut e = Engine::new(sw);
        let storm = StormControl {
            multicast: 7,
            ..StormControl::OFF
        };
        e.set_storm("a", storm).unwrap();
        e.set_max_learned(Some("a"), 3).unwrap();
        e.set_max_learned(None, 100).unwrap();
        let s = stats(&mut e);
        assert_eq!(s.ports[0].storm.and_then(|st| st.multicast), Some(7));
        assert_eq!(s.ports[0].learning.map(|l| l.max_learned), Some(3));
        assert_eq!(s.fdb.map(|f| f.max_learned), Some(100));
        assert!(matches!(
            e.set_storm("zz", storm),
            Err(ChangeError::NoSuchPort(p)) if p == "zz"
        ));
        let mut mv = Engine::new(Switch::new(SwitchConfig::macvlan()).unwrap());
        assert!(matches!(
            mv.set_max_learned(None, 1),
            Err(ChangeError::Config(ConfigError::NotABridge { .. }))
        ));
    }

    fn error_of(line: &str) -> ApiError {
        let r = handle(line, &[][..]);
        assert!(!r.is_ok(), "{line}");
        assert!(r.to_line().ends_with('\n'));
        r.error().cloned().unwrap()
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
            let e = error_of(line);
            assert!(e.message.contains(expect), "{line}: {e}");
        }
        let huge = "x".repeat(MAX_REQUEST + 1);
        assert!(error_of(&huge).message.contains("longer than"));
        let none = handle(r#"{"v":1,"op":"networks"}"#, &[][..]);
        assert_eq!(none.result, Ok(Reply::Networks(Vec::new())));
        assert_eq!(none.to_line(), "{\"v\":1,\"ok\":true,\"data\":[]}\n");
    }

    #[test]
    fn errors_carry_a_kind_a_client_can_match() {
        let kind = |line: &str| error_of(line).kind;
        assert_eq!(kind("{"), ErrorKind::Malformed);
        assert_eq!(kind(r#"{"v":1,"op":"reboot"}"#), ErrorKind::Malformed);
        assert_eq!(
            kind(r#"{"v":2,"op":"networks"}"#),
            ErrorKind::Version {
                client: Some(2),
                daemon: VERSION
            }
        );
        // A client of another version is told so even when its request means nothing here.
        assert_eq!(
            kind(r#"{"v":7,"op":"teleport","where":"mars"}"#),
            ErrorKind::Version {
                client: Some(7),
                daemon: VERSION
            }
        );
        assert_eq!(
            kind(r#"{"op":"networks"}"#),
            ErrorKind::Version {
                client: None,
                daemon: VERSION
            }
        );
        assert_eq!(
            kind(r#"{"v":1,"op":"fdb","network":"nope"}"#),
            ErrorKind::NoSuchNetwork {
                network: "nope".into()
            }
        );
        for (line, field) in [
            (
                r#"{"v":1,"op":"add_static","network":"lab","mac":"nope","port":"a"}"#,
                "mac",
            ),
            (
                r#"{"v":1,"op":"add_static","network":"lab","mac":"02:00:00:00:00:01","port":"a","vid":70000}"#,
                "vid",
            ),
            (
                r#"{"v":1,"op":"set_storm","network":"lab","port":"a","storm":{"broadcast":-1}}"#,
                "storm",
            ),
            (
                r#"{"v":1,"op":"add_port","network":"lab","port":{"interface":"p","role":"switch"}}"#,
                "port",
            ),
            (
                r#"{"v":1,"op":"add_network","network":{"name":"x","mode":"hub"}}"#,
                "network",
            ),
        ] {
            let e = error_of(line);
            assert_eq!(
                e.kind,
                ErrorKind::Invalid {
                    field: field.into()
                },
                "{line}: {e}"
            );
            assert!(e.message.starts_with(field), "{e}");
        }
        assert_eq!(
            kind(r#"{"v":1,"op":"add_network","network":{"name":"x","mode":"bridge"}}"#),
            ErrorKind::Unsupported
        );
        // The kind travels with the message, and comes back as it went.
        let r = handle(r#"{"v":9,"op":"networks"}"#, &[][..]);
        let back = Response::from_line(&r.to_line(), &Request::Networks).unwrap();
        assert_eq!(back, r);
        assert!(
            r.to_line()
                .contains(r#""kind":{"kind":"version","client":9,"daemon":1}"#)
        );
    }

    #[test]
    fn every_request_round_trips_through_its_line() {
        use crate::config::{NetworkMode, PortRole};

        let spec = NetworkSpec {
            name: "lab".into(),
            mode: NetworkMode::Bridge,
            ports: vec![PortSpec {
                interface: "pa".into(),
                role: PortRole::Bridge,
                max_learned: Some(4),
                ..PortSpec::default()
            }],
            ..NetworkSpec::default()
        };
        let net = || "lab".to_owned();
        let storm = StormSpec {
            broadcast: Some(10),
            ..StormSpec::default()
        };
        let all = [
            Request::Networks,
            Request::Fdb { network: net() },
            Request::Stats { network: net() },
            Request::SetAgeing {
                network: net(),
                secs: 30,
            },
            Request::AddNetwork {
                network: Box::new(spec.clone()),
            },
            Request::RemoveNetwork { network: net() },
            Request::AddPort {
                network: net(),
                port: Box::new(spec.ports[0].clone()),
            },
            Request::RemovePort {
                network: net(),
                port: "pa".into(),
            },
            Request::AddStatic {
                network: net(),
                mac: Mac([2, 0, 0, 0, 0, 9]),
                port: "pa".into(),
                vid: crate::fwd::Vid::new(10),
                sticky: true,
                vtep: None,
            },
            Request::AddStatic {
                network: net(),
                mac: Mac([2, 0, 0, 0, 0, 9]),
                port: "vxlan".into(),
                vid: crate::fwd::Vid::UNAWARE,
                sticky: false,
                vtep: Some(std::net::Ipv4Addr::new(192, 0, 2, 7)),
            },
            Request::RemoveStatic {
                network: net(),
                mac: Mac([2, 0, 0, 0, 0, 9]),
                vid: crate::fwd::Vid::UNAWARE,
            },
            Request::AddRemote {
                network: net(),
                port: "vxlan".into(),
                vtep: std::net::Ipv4Addr::new(192, 0, 2, 7),
            },
            Request::RemoveRemote {
                network: net(),
                port: "vxlan".into(),
                vtep: std::net::Ipv4Addr::new(192, 0, 2, 7),
            },
            Request::SetStorm {
                network: net(),
                port: "pa".into(),
                storm,
            },
            Request::SetMaxLearned {
                network: net(),
                port: Some("pa".into()),
                max_learned: 8,
            },
            Request::SetMaxLearned {
                network: net(),
                port: None,
                max_learned: 0,
            },
            Request::Trace {
                network: net(),
                count: 5,
                port: None,
            },
            Request::TraceTake { network: net() },
            Request::TraceStop { network: net() },
            Request::Capture {
                network: net(),
                count: 5,
                port: Some("pa".into()),
            },
            Request::CaptureTake { network: net() },
            Request::CaptureStop { network: net() },
        ];
        for req in all {
            let line = req.to_line();
            assert!(line.starts_with(r#"{"v":1,"op":""#), "{line}");
            assert_eq!(
                Request::from_line(line.trim_end()),
                Ok(req.clone()),
                "{line}"
            );
        }
    }

    #[test]
    fn every_reply_round_trips_with_its_request() {
        use crate::trace::{Captured, Direction, TraceRecord};

        let net = || "lab".to_owned();
        let engine = EngineStats {
            rx: 5,
            tx: 4,
            tx_full: 1,
            io_errors: 1,
            transient_errors: 1,
            detached: 0,
        };
        let stats = NetworkStats {
            engine,
            ports: vec![proto::PortStats {
                name: "pa".into(),
                rx: 5,
                forwarded: 4,
                tx: 4,
                tx_full: 1,
                tx_errors: 1,
                drops: [("PortSecurity".to_owned(), 1)].into(),
                storm: Some(StormSpec {
                    multicast: Some(3),
                    ..StormSpec::default()
                }),
                learning: Some(PortLearning {
                    learned: 2,
                    max_learned: 2,
                    port_security_refused: 1,
                    flaps: 0,
                }),
                overlay: None,
            }],
            fdb: Some(proto::FdbStatsInfo {
                entries: 2,
                learned_now: 2,
                max_learned: 0,
                learned: 2,
                moves: 0,
                at_cap: 0,
                port_cap: 1,
                expired: 0,
                own_source: 0,
                flaps: 1,
                recent_flaps: vec![proto::FlapInfo {
                    vid: crate::fwd::Vid::UNAWARE,
                    mac: Mac([2, 0, 0, 0, 0, 1]),
                    from: "pa".into(),
                    to: "pb".into(),
                    age_secs: 0.5,
                }],
            }),
        };
        let record = TraceRecord {
            seq: 1,
            time_us: 7,
            ingress: "pa".into(),
            len: 60,
            offload: None,
            summary: "s".into(),
            from_vtep: Some("192.0.2.7".into()),
            to_vtep: None,
            vid: crate::fwd::Vid::UNAWARE,
            learned: Some("new entry".into()),
            kernel_fn: "br_flood".into(),
            rule: "r".into(),
            egress: vec!["pb".into()],
            host: false,
            drop: None,
            drop_why: None,
        };
        let pairs = [
            (
                Request::Networks,
                Reply::Networks(vec![NetworkInfo {
                    name: net(),
                    mode: crate::config::NetworkMode::Macvlan,
                    ports: vec![PortInfo {
                        id: 0,
                        name: "up".into(),
                        role: "uplink".into(),
                    }],
                }]),
            ),
            (Request::Networks, Reply::Networks(Vec::new())),
            (
                Request::Fdb { network: net() },
                Reply::Fdb(vec![FdbRow {
                    vid: crate::fwd::Vid::new(1),
                    mac: Mac([2, 0, 0, 0, 0, 1]),
                    port: "pa".into(),
                    kind: FdbKind::Dynamic,
                    sticky: false,
                    age_secs: 1.5,
                    vtep: Some(std::net::Ipv4Addr::new(192, 0, 2, 7)),
                }]),
            ),
            (
                Request::Stats { network: net() },
                Reply::Stats(Box::new(stats.clone())),
            ),
            (
                Request::Stats { network: net() },
                Reply::Stats(Box::new(NetworkStats {
                    fdb: None,
                    ports: vec![proto::PortStats {
                        storm: None,
                        learning: None,
                        ..stats.ports[0].clone()
                    }],
                    ..stats
                })),
            ),
            (
                Request::AddPort {
                    network: net(),
                    port: Box::default(),
                },
                Reply::PortAdded(proto::PortAdded { id: 3 }),
            ),
            (
                Request::RemoveNetwork { network: net() },
                Reply::Stopped(engine),
            ),
            (
                Request::TraceTake { network: net() },
                Reply::Trace(proto::TraceTaken {
                    records: vec![record],
                    lost: 2,
                    active: true,
                }),
            ),
            (
                Request::CaptureTake { network: net() },
                Reply::Capture(proto::CaptureTaken {
                    frames: vec![Captured {
                        time_us: 1,
                        port: "pa".into(),
                        dir: Direction::Out,
                        hex: "00ff".into(),
                    }],
                    lost: 0,
                    active: false,
                }),
            ),
            (Request::TraceStop { network: net() }, Reply::Done),
        ];
        for (req, reply) in pairs {
            let r = Response::from(Ok(reply));
            let line = r.to_line();
            assert_eq!(Response::from_line(&line, &req).unwrap(), r, "{line}");
        }
        // A reply that does not fit the request is refused, not guessed at.
        let stats_line = Response::from(Ok(Reply::PortAdded(proto::PortAdded { id: 1 }))).to_line();
        assert!(Response::from_line(&stats_line, &Request::Fdb { network: net() }).is_err());
        let kinds = [
            ErrorKind::Malformed,
            ErrorKind::TooLong { max: 1 },
            ErrorKind::Version {
                client: Some(2),
                daemon: 1,
            },
            ErrorKind::Invalid {
                field: "mac".into(),
            },
            ErrorKind::NoSuchNetwork { network: net() },
            ErrorKind::NoSuchPort { port: "p".into() },
            ErrorKind::Exists { name: net() },
            ErrorKind::NotABridge,
            ErrorKind::NotActive,
            ErrorKind::Busy,
            ErrorKind::Stopped,
            ErrorKind::Unsupported,
            ErrorKind::Failed,
        ];
        for kind in kinds {
            let r = Response::from(Err(ApiError::new(kind, "why")));
            assert_eq!(
                Response::from_line(&r.to_line(), &Request::Networks).unwrap(),
                r
            );
        }
    }
}
