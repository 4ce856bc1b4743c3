//! Tables for people, JSON for programs: how l2ctl prints networks, workloads, the FDB and
//! counters.

use std::io::{self, Write};

use std::collections::{BTreeMap, BTreeSet};

use l2sw::api::{FdbKind, FdbRow, NetworkStats};
use l2sw::config::StormSpec;
use l2sw::port::vxlan::OverlayState;
use serde_json::{Value, json};

use crate::ops::EndpointState;
use crate::state::{Endpoint, Sandbox, State, Workload};

/// Prints rows under a header, each column as wide as its widest cell.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let text: Vec<String> = cells.zip(&width).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for r in rows {
        line(out, &mut r.iter().map(String::as_str))?;
    }
    Ok(())
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

/// `l2ctl network ls`.
pub fn networks(out: &mut impl Write, state: &State, json: bool) -> io::Result<()> {
    let rows: Vec<Vec<String>> = state
        .networks
        .values()
        .map(|n| {
            let list = |f: &dyn Fn(&crate::ipam::Pool) -> Option<String>| {
                let v: Vec<String> = n.pools.iter().filter_map(f).collect();
                if v.is_empty() {
                    "-".into()
                } else {
                    v.join(",")
                }
            };
            vec![
                n.id.clone(),
                n.name.clone(),
                n.driver.name().into(),
                or_dash(n.mode.map(|m| m.to_string())),
                or_dash(n.parent.as_ref().map(ToString::to_string)),
                list(&|p| Some(p.subnet().to_string())),
                list(&|p| p.gateway().map(|g| g.to_string())),
                state.endpoints_of(&n.name).len().to_string(),
            ]
        })
        .collect();
    if json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"id": r[0], "name": r[1], "driver": r[2], "mode": r[3], "parent": r[4],
                       "subnets": r[5], "gateways": r[6], "endpoints": r[7]})
            })
            .collect();
        return writeln!(out, "{}", Value::from(v));
    }
    table(
        out,
        &[
            "NETWORK ID",
            "NAME",
            "DRIVER",
            "MODE",
            "PARENT",
            "SUBNET",
            "GATEWAY",
            "ENDPOINTS",
        ],
        &rows,
    )
}

/// What `l2ctl attach` made.
pub fn endpoint(
    out: &mut impl Write,
    workload: &str,
    network: &str,
    ep: &Endpoint,
) -> io::Result<()> {
    let ips: Vec<String> = ep.ips.iter().map(ToString::to_string).collect();
    let published = if ep.ports.is_empty() {
        String::new()
    } else {
        format!(", published {}", ports(&ep.ports))
    };
    writeln!(
        out,
        "{workload}: {} on {network} ({}, {} port), {}{published}",
        ep.interface,
        ep.mac,
        ep.kind.name(),
        ips.join(", ")
    )
}

/// Published ports as `docker ps` shows them (`0.0.0.0:8080->80/tcp, …`), `-` for none.
fn ports(maps: &[crate::nat::PortMap]) -> String {
    if maps.is_empty() {
        return "-".into();
    }
    let shown: Vec<String> = maps.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// `l2ctl ps`: each workload's networks, and whether it is still there (`gone`: its
/// namespace was deleted behind l2ctl's back).
pub fn workloads(
    out: &mut impl Write,
    state: &State,
    gone: &BTreeSet<String>,
    json: bool,
) -> io::Result<()> {
    if json {
        /// A workload as saved, with its state.
        #[derive(serde::Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            workload: &'a Workload,
            state: EndpointState,
        }
        let rows: BTreeMap<&str, Row<'_>> = state
            .workloads
            .values()
            .map(|w| {
                let row = Row {
                    workload: w,
                    state: EndpointState::of(w, gone),
                };
                (w.name.as_str(), row)
            })
            .collect();
        let v = serde_json::to_value(&rows).map_err(io::Error::other)?;
        return writeln!(out, "{v}");
    }
    let mut rows = Vec::new();
    for w in state.workloads.values() {
        let ns = match &w.sandbox {
            Sandbox::Engine(e) => e
                .netns
                .clone()
                .unwrap_or_else(|| format!("({} has not joined)", e.engine.name())),
            _ => state.netns_of(w).unwrap_or_else(|| "(host)".into()),
        };
        let st = EndpointState::of(w, gone).describe().to_owned();
        match &w.sandbox {
            Sandbox::Own | Sandbox::Engine(_) => {
                for (net, e) in &w.endpoints {
                    let ips: Vec<String> = e.ips.iter().map(ToString::to_string).collect();
                    rows.push(vec![
                        w.name.clone(),
                        ns.clone(),
                        net.clone(),
                        e.interface.clone(),
                        e.mac.to_string(),
                        ips.join(","),
                        ports(&e.ports),
                        st.clone(),
                    ]);
                }
            }
            other => {
                let net = match other {
                    Sandbox::None => "none".into(),
                    Sandbox::Host => "host".into(),
                    Sandbox::Container(o) => format!("container:{o}"),
                    Sandbox::Own | Sandbox::Engine(_) => String::new(),
                };
                rows.push(vec![
                    w.name.clone(),
                    ns,
                    net,
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    st,
                ]);
            }
        }
    }
    table(
        out,
        &[
            "WORKLOAD",
            "NAMESPACE",
            "NETWORK",
            "INTERFACE",
            "MAC",
            "ADDRESSES",
            "PORTS",
            "STATE",
        ],
        &rows,
    )
}

/// `l2ctl fdb`.
pub fn fdb(out: &mut impl Write, rows: &[FdbRow], json: bool) -> io::Result<()> {
    if json {
        let line = serde_json::to_string(rows).map_err(io::Error::other)?;
        return writeln!(out, "{line}");
    }
    let remote = rows.iter().any(|r| r.vtep.is_some());
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let (kind, age) = match r.kind {
                FdbKind::Dynamic => ("dynamic", format!("{:.1}s", r.age_secs)),
                FdbKind::Static => ("static", "-".into()),
                FdbKind::Local => ("local", "-".into()),
            };
            let mut row = vec![
                r.mac.to_string(),
                r.vid.to_string(),
                r.port.clone(),
                kind.into(),
                age,
            ];
            if remote {
                row.push(r.vtep.map_or_else(|| "-".into(), |v| v.to_string()));
            }
            row
        })
        .collect();
    if remote {
        // An overlay network: each remote MAC with the VTEP it is behind.
        return table(out, &["MAC", "VLAN", "PORT", "KIND", "AGE", "VTEP"], &rows);
    }
    table(out, &["MAC", "VLAN", "PORT", "KIND", "AGE"], &rows)
}

/// A port's storm-control limits, one word: `bc=100,mc=50` (the classes with a limit), or `-`.
fn storm_cell(s: Option<StormSpec>) -> String {
    let Some(s) = s else {
        return "-".into();
    };
    let limits: Vec<String> = [
        ("bc", s.broadcast),
        ("uu", s.unknown_unicast),
        ("mc", s.multicast),
    ]
    .into_iter()
    .filter_map(|(class, rate)| rate.map(|r| format!("{class}={r}")))
    .collect();
    if limits.is_empty() {
        "-".into()
    } else {
        limits.join(",")
    }
}

/// `l2ctl stats`: per network a header line (for a bridge, the FDB's counters and its most
/// recent MAC flaps too) and a table of its ports with their learning (MACs learned and cap,
/// new sources refused by port security, flaps) and storm-control limits.
pub fn stats(
    out: &mut impl Write,
    all: &BTreeMap<String, NetworkStats>,
    json: bool,
) -> io::Result<()> {
    if json {
        let line = serde_json::to_string(all).map_err(io::Error::other)?;
        return writeln!(out, "{line}");
    }
    for (i, (net, s)) in all.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let e = &s.engine;
        writeln!(
            out,
            "network {net}: rx {} tx {} tx-full {} io-errors {} (transient {}) detached {}",
            e.rx, e.tx, e.tx_full, e.io_errors, e.transient_errors, e.detached
        )?;
        if let Some(f) = &s.fdb {
            let cap = match f.max_learned {
                0 => String::new(),
                n => format!(" (cap {n})"),
            };
            writeln!(
                out,
                "fdb: {} entries, {} learned now{cap}; learned {} moves {} flaps {} refused at cap {} at port caps {} expired {}",
                f.entries,
                f.learned_now,
                f.learned,
                f.moves,
                f.flaps,
                f.at_cap,
                f.port_cap,
                f.expired
            )?;
            for fl in &f.recent_flaps {
                writeln!(
                    out,
                    "flap: {} vlan {} {} -> {} ({:.1}s ago)",
                    fl.mac, fl.vid, fl.from, fl.to, fl.age_secs
                )?;
            }
        }
        let rows: Vec<Vec<String>> = s
            .ports
            .iter()
            .map(|p| {
                let drops: Vec<String> = p.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let (learned, refused, flaps) = match p.learning {
                    Some(l) => (
                        match l.max_learned {
                            0 => l.learned.to_string(),
                            cap => format!("{}/{cap}", l.learned),
                        },
                        l.port_security_refused.to_string(),
                        l.flaps.to_string(),
                    ),
                    None => ("-".into(), "-".into(), "-".into()),
                };
                vec![
                    p.name.clone(),
                    p.rx.to_string(),
                    p.tx.to_string(),
                    p.tx_full.to_string(),
                    p.tx_errors.to_string(),
                    learned,
                    refused,
                    flaps,
                    storm_cell(p.storm),
                    if drops.is_empty() {
                        "-".into()
                    } else {
                        drops.join(" ")
                    },
                ]
            })
            .collect();
        table(
            out,
            &[
                "PORT",
                "RX",
                "TX",
                "TX-FULL",
                "TX-ERR",
                "LEARNED",
                "SEC-REFUSED",
                "FLAPS",
                "STORM",
                "DROPS",
            ],
            &rows,
        )?;
        for p in &s.ports {
            if let Some(o) = &p.overlay {
                overlay(out, &p.name, o)?;
            }
        }
    }
    Ok(())
}

/// An overlay port's VNI, its remotes and their counters, and its own.
fn overlay(out: &mut impl Write, port: &str, o: &OverlayState) -> io::Result<()> {
    let c = &o.counters;
    let last = c
        .last_unknown
        .map(|a| format!(" (last {a})"))
        .unwrap_or_default();
    writeln!(
        out,
        "overlay {port}: vni {} local {}:{} learn-remotes {} learning {}; unknown senders {}{last}, super-frames not sent {}",
        o.vni,
        o.local,
        o.port,
        if o.learn_remotes { "on" } else { "off" },
        if o.learning { "on" } else { "off" },
        c.unknown_sender,
        c.super_frames
    )?;
    let rows: Vec<Vec<String>> = o
        .remotes
        .iter()
        .map(|r| {
            vec![
                r.vtep.to_string(),
                if r.flood { "flood" } else { "learned" }.into(),
                r.counters.rx.to_string(),
                r.counters.tx.to_string(),
                r.counters.tx_dropped.to_string(),
            ]
        })
        .collect();
    table(out, &["VTEP", "LIST", "RX", "TX", "TX-DROPPED"], &rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use l2sw::api::proto::{FdbStatsInfo, FlapInfo, PortStats};
    use l2sw::api::{FdbKind, FdbRow, NetworkStats, PortLearning};
    use l2sw::engine::EngineStats;
    use l2sw::wire::Mac;

    use super::*;

    fn render(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_stats_table_shows_learning_flaps_and_storm_limits() {
        let port = PortStats {
            name: "web".into(),
            rx: 10,
            forwarded: 8,
            tx: 7,
            tx_full: 0,
            tx_errors: 0,
            drops: [("PortSecurity".to_owned(), 2)].into(),
            storm: Some(StormSpec {
                broadcast: Some(100),
                ..StormSpec::default()
            }),
            learning: Some(PortLearning {
                learned: 4,
                max_learned: 4,
                port_security_refused: 2,
                flaps: 3,
            }),
            overlay: None,
        };
        let stats = NetworkStats {
            engine: EngineStats {
                rx: 10,
                tx: 7,
                ..EngineStats::default()
            },
            ports: vec![port],
            fdb: Some(FdbStatsInfo {
                entries: 4,
                learned_now: 4,
                max_learned: 0,
                learned: 6,
                moves: 5,
                at_cap: 0,
                port_cap: 2,
                expired: 0,
                own_source: 0,
                flaps: 3,
                recent_flaps: vec![FlapInfo {
                    vid: l2sw::fwd::Vid::UNAWARE,
                    mac: Mac([2, 0, 0, 0, 0, 1]),
                    from: "web".into(),
                    to: "db".into(),
                    age_secs: 0.25,
                }],
            }),
        };
        let all: BTreeMap<String, NetworkStats> = [("front".to_owned(), stats)].into();
        let text = render(|o| super::stats(o, &all, false));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("network front: rx 10 tx 7"), "{text}");
        assert!(lines[1].contains("flaps 3"), "{text}");
        assert!(
            lines[2].contains("02:00:00:00:00:01 vlan 0 web -> db"),
            "{text}"
        );
        let header: Vec<&str> = lines[3].split_whitespace().collect();
        let row: Vec<&str> = lines[4].split_whitespace().collect();
        let cell = |name: &str| {
            let i = header.iter().position(|h| *h == name).unwrap();
            row[i]
        };
        assert_eq!(cell("LEARNED"), "4/4", "{text}");
        assert_eq!(cell("SEC-REFUSED"), "2", "{text}");
        assert_eq!(cell("FLAPS"), "3", "{text}");
        assert_eq!(cell("STORM"), "bc=100", "{text}");
        assert!(lines[4].ends_with("PortSecurity=2"), "{text}");
        // The JSON keeps each network's counters under its name.
        let json = render(|o| super::stats(o, &all, true));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["front"]["ports"][0]["flaps"], 3);
        assert_eq!(v["front"]["rx"], 10);
    }

    #[test]
    fn fdb_rows_show_age_only_for_dynamic_entries() {
        let row = |kind, age_secs| FdbRow {
            vid: l2sw::fwd::Vid::UNAWARE,
            mac: Mac([2, 0, 0, 0, 0, 9]),
            port: "db".into(),
            kind,
            sticky: false,
            age_secs,
            vtep: None,
        };
        let rows = [row(FdbKind::Dynamic, 1.25), row(FdbKind::Static, 0.0)];
        let text = render(|o| super::fdb(o, &rows, false));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["MAC", "VLAN", "PORT", "KIND", "AGE"]
        );
        assert!(
            lines[1].ends_with("dynamic  1.2s") || lines[1].ends_with("dynamic  1.3s"),
            "{text}"
        );
        assert!(lines[2].ends_with("static   -"), "{text}");
    }
}
