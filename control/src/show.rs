//! Tables for people, JSON for programs: how l2ctl prints networks, workloads, the FDB and
//! counters.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::state::{Endpoint, Sandbox, State};

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
                or_dash(n.mode.clone()),
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
    writeln!(
        out,
        "{workload}: {} on {network} ({}, {} port), {}",
        ep.interface,
        ep.mac,
        ep.kind.name(),
        ips.join(", ")
    )
}

/// `l2ctl ps`.
pub fn workloads(out: &mut impl Write, state: &State, json: bool) -> io::Result<()> {
    if json {
        let v = serde_json::to_value(&state.workloads).map_err(io::Error::other)?;
        return writeln!(out, "{v}");
    }
    let mut rows = Vec::new();
    for w in state.workloads.values() {
        let ns = state.netns_of(w).unwrap_or_else(|| "(host)".into());
        match &w.sandbox {
            Sandbox::Own => {
                for (net, e) in &w.endpoints {
                    let ips: Vec<String> = e.ips.iter().map(ToString::to_string).collect();
                    rows.push(vec![
                        w.name.clone(),
                        ns.clone(),
                        net.clone(),
                        e.interface.clone(),
                        e.mac.to_string(),
                        ips.join(","),
                    ]);
                }
            }
            other => {
                let net = match other {
                    Sandbox::None => "none".into(),
                    Sandbox::Host => "host".into(),
                    Sandbox::Container(o) => format!("container:{o}"),
                    Sandbox::Own => String::new(),
                };
                rows.push(vec![
                    w.name.clone(),
                    ns,
                    net,
                    "-".into(),
                    "-".into(),
                    "-".into(),
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
        ],
        &rows,
    )
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// `l2ctl fdb`.
pub fn fdb(out: &mut impl Write, rows: &Value, json: bool) -> io::Result<()> {
    if json {
        return writeln!(out, "{rows}");
    }
    let rows: Vec<Vec<String>> = rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let kind = text(r, "kind");
                    let age = match kind.as_str() {
                        "dynamic" => format!(
                            "{:.1}s",
                            r.get("age_secs").and_then(Value::as_f64).unwrap_or(0.0)
                        ),
                        _ => "-".into(),
                    };
                    vec![text(r, "mac"), text(r, "vid"), text(r, "port"), kind, age]
                })
                .collect()
        })
        .unwrap_or_default();
    table(out, &["MAC", "VLAN", "PORT", "KIND", "AGE"], &rows)
}

/// `l2ctl stats`.
pub fn stats(out: &mut impl Write, all: &Map<String, Value>, json: bool) -> io::Result<()> {
    if json {
        return writeln!(out, "{}", Value::Object(all.clone()));
    }
    for (i, (net, s)) in all.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "network {net}: rx {} tx {}",
            text(s, "rx"),
            text(s, "tx")
        )?;
        let ports = s
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = ports
            .iter()
            .map(|p| {
                let drops: Vec<String> = p
                    .get("drops")
                    .and_then(Value::as_object)
                    .map(|d| d.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                vec![
                    text(p, "name"),
                    text(p, "rx"),
                    text(p, "tx"),
                    text(p, "tx_full"),
                    if drops.is_empty() {
                        "-".into()
                    } else {
                        drops.join(" ")
                    },
                ]
            })
            .collect();
        table(out, &["PORT", "RX", "TX", "TX-FULL", "DROPS"], &rows)?;
    }
    Ok(())
}
