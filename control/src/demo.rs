//! `l2ctl demo`: a bridge network and a macvlan network on a real l2sw, in throw-away
//! namespaces, narrated. It brings its own daemon (in this process) and its own state, and a
//! namespace that plays the host, so nothing outside the namespaces it makes is touched; they
//! are all removed at the end, also when a step fails.

use std::io::{self, Write};
use std::net::IpAddr;

use crate::args::{AttachArgs, Aux, NetworkArgs};
use crate::embedded::EmbeddedDaemon;
use crate::nl::{self, Links};
use crate::ops::{Ctl, CtlError};
use crate::probe::{udp_reaches, udp_reaches_port};
use crate::show;
use crate::state::{Driver, EndpointKind};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Not root: namespaces need CAP_SYS_ADMIN.
    #[error(
        "the demo builds network namespaces and needs root: run it with sudo, or run `l2ctl demo --in-memory` to watch the forwarding core alone"
    )]
    NotRoot,
    /// A step failed.
    #[error("{0}")]
    Step(#[from] CtlError),
    /// Output, files or sockets.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The daemon could not start.
    #[error("starting the daemon: {0}")]
    Start(#[from] l2sw::control::ControlError),
    /// The daemon refused or failed.
    #[error(transparent)]
    Daemon(#[from] crate::client::ClientError),
    /// A namespace or link.
    #[error(transparent)]
    Netlink(#[from] crate::nl::NlError),
}

/// Namespaces to remove however the demo ends.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
            let _ = nl::netns_delete(ns);
        }
    }
}

fn net(name: &str, driver: Driver) -> NetworkArgs {
    NetworkArgs::new(name, driver)
}

fn attach(network: &str, port: EndpointKind) -> AttachArgs {
    AttachArgs {
        network: network.into(),
        ip: Vec::new(),
        mac: None,
        port,
        source_mac: Vec::new(),
        publish: Vec::new(),
    }
}

/// Runs the demo, narrating to `out`.
pub fn run(out: &mut impl Write) -> Result<(), DemoError> {
    if !l2sw::port::sys::is_root() {
        return Err(DemoError::NotRoot);
    }
    let tag = std::process::id();
    let tmp = tempfile::Builder::new().prefix("l2ctl-demo-").tempdir()?;
    let host = format!("l2demo-{tag}-host");
    let lan = format!("l2demo-{tag}-lan");
    // Workload namespaces are named after their workloads; plain names unless one is taken.
    let plain = ["web", "db", "cache", "m1", "m2"];
    let names: Vec<String> = if plain.iter().any(|n| nl::netns_exists(n)) {
        plain.iter().map(|w| format!("demo{tag}-{w}")).collect()
    } else {
        plain.iter().map(|w| (*w).to_owned()).collect()
    };
    let mut cleanup = Cleanup(Vec::new());
    for ns in [&host, &lan] {
        nl::netns_create(ns)?;
        cleanup.0.push(ns.clone());
    }
    // Workload namespaces are made by l2ctl; listed here so that a failure removes them too.
    cleanup.0.extend(names.iter().cloned());
    let daemon = EmbeddedDaemon::start(&tmp.path().join("l2sw.sock"))?;
    writeln!(
        out,
        "l2ctl demo: Docker-style networks on a real l2sw, in throw-away namespaces.\n\
         \x20 the host is played by namespace {host} (nothing outside the demo's namespaces is touched)\n\
         \x20 the daemon runs in this process on {}\n",
        daemon.socket().display()
    )?;
    let mut ctl = Ctl::open(&tmp.path().join("state"), daemon.socket(), Some(&host))?;
    let result = story(out, &mut ctl, &host, &lan, &names);
    drop(ctl);
    daemon.stop();
    drop(cleanup);
    let ours: Vec<&String> = names.iter().chain([&host, &lan]).collect();
    let left: Vec<String> = nl::netns_list()?
        .into_iter()
        .filter(|n| ours.contains(&n))
        .collect();
    result?;
    if left.is_empty() {
        writeln!(
            out,
            "\nEverything the demo made is gone: no namespace, link or state left."
        )?;
    } else {
        writeln!(
            out,
            "\nLeft behind (remove with `ip netns del`): {}",
            left.join(", ")
        )?;
    }
    Ok(())
}

fn say_reach(
    out: &mut impl Write,
    what: &str,
    from: Option<&str>,
    to: Option<&str>,
    ip: IpAddr,
    expect: bool,
) -> Result<(), DemoError> {
    let got = udp_reaches(from, to, ip)?;
    let verdict = match (got, expect) {
        (true, true) => "reached",
        (false, false) => "not reached, as expected",
        (true, false) => "REACHED, which the mode should have prevented",
        (false, true) => "NOT REACHED, which is a fault",
    };
    writeln!(out, "    {what} ({ip}): {verdict}")?;
    if got != expect {
        return Err(CtlError::Refused(format!("demo check failed: {what}")).into());
    }
    Ok(())
}

/// What the demo's web publishes.
const PUBLISHED: &str = "8080:80/udp";

/// [`say_reach`] through a published port: `ports` is the host's and the workload's.
fn say_reach_port(
    out: &mut impl Write,
    what: &str,
    (from, to): (Option<&str>, Option<&str>),
    ip: IpAddr,
    ports: (u16, u16),
) -> Result<(), DemoError> {
    let got = udp_reaches_port(from, to, ip, Some(ports))?;
    writeln!(
        out,
        "    {what}: {}",
        if got {
            "reached"
        } else {
            "NOT REACHED, which is a fault"
        }
    )?;
    if !got {
        return Err(CtlError::Refused(format!("demo check failed: {what}")).into());
    }
    Ok(())
}

fn ip_of(ctl: &Ctl, workload: &str, network: &str) -> Result<IpAddr, DemoError> {
    ctl.state
        .workloads
        .get(workload)
        .and_then(|w| w.endpoints.get(network))
        .and_then(|e| e.ips.first().copied())
        .ok_or_else(|| CtlError::Refused(format!("{workload} has no address on {network}")).into())
}

fn story(
    out: &mut impl Write,
    ctl: &mut Ctl,
    host: &str,
    lan: &str,
    names: &[String],
) -> Result<(), DemoError> {
    let [web, db, cache, m1, m2] = names else {
        return Err(CtlError::Refused("the demo needs five workload names".into()).into());
    };
    writeln!(
        out,
        "1. A bridge network, like docker0: a learning switch, and a host port with the gateway."
    )?;
    let mut front = net("front", Driver::Bridge);
    front.subnet = vec!["10.20.0.0/24".into()];
    writeln!(out, "  $ l2ctl network create front --subnet 10.20.0.0/24")?;
    let n = ctl.create_network(&front, None)?;
    writeln!(
        out,
        "    network front: gateway {} on the host's port {}",
        n.pools
            .first()
            .and_then(|p| p.gateway())
            .map(|g| g.to_string())
            .unwrap_or_default(),
        n.host_port.clone().unwrap_or_default()
    )?;
    for (w, kind) in [
        (web, EndpointKind::Veth),
        (db, EndpointKind::Veth),
        (cache, EndpointKind::Tap),
    ] {
        let mut req = attach("front", kind);
        let flag = if kind == EndpointKind::Tap {
            " --port tap"
        } else if w == web {
            req.publish = vec![
                PUBLISHED
                    .parse()
                    .map_err(|e: String| CtlError::Refused(e))?,
            ];
            " --publish 8080:80/udp"
        } else {
            ""
        };
        writeln!(out, "  $ l2ctl attach {w} --network front{flag}")?;
        if let Some(ep) = ctl.attach(w, &req, None)? {
            write!(out, "    ")?;
            show::endpoint(out, w, "front", &ep)?;
        }
    }
    writeln!(
        out,
        "  Traffic (UDP; ARP first, which l2sw floods, then unicast it has learned):"
    )?;
    let (db_ip, cache_ip, web_ip) = (
        ip_of(ctl, db, "front")?,
        ip_of(ctl, cache, "front")?,
        ip_of(ctl, web, "front")?,
    );
    say_reach(
        out,
        &format!("{web} -> {db}"),
        Some(web),
        Some(db),
        db_ip,
        true,
    )?;
    say_reach(
        out,
        &format!("{web} -> {cache} (TAP)"),
        Some(web),
        Some(cache),
        cache_ip,
        true,
    )?;
    say_reach(
        out,
        &format!("host -> {web}, through the gateway port"),
        Some(host),
        Some(web),
        web_ip,
        true,
    )?;
    writeln!(
        out,
        "  $ l2ctl fdb front      (what l2sw learned, and where)"
    )?;
    let rows = ctl.client().fdb("front")?;
    show::fdb(&mut indent(out), &rows, false)?;

    writeln!(
        out,
        "\n2. A macvlan network: sub-interfaces with their own MACs on a parent interface."
    )?;
    writeln!(
        out,
        "  The parent lan0 is a veth whose other end is a station on the LAN (namespace {lan}, 10.30.0.200)."
    )?;
    let hl = Links::new(Some(host));
    hl.create_veth("lan0", "lan-peer")?;
    hl.move_to("lan-peer", lan)?;
    let ll = Links::new(Some(lan));
    ll.rename("lan-peer", "eth0")?;
    for (l, dev, ip) in [(&hl, "lan0", "10.30.0.250"), (&ll, "eth0", "10.30.0.200")] {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            l.add_address(dev, ip, 24)?;
        }
        l.set_up(dev)?;
    }
    let mut mv = net("lan", Driver::Macvlan);
    mv.parent = Some("lan0".into());
    mv.subnet = vec!["10.30.0.0/24".into()];
    mv.ip_range = vec!["10.30.0.0/25".into()];
    mv.aux_address = vec![
        Aux {
            name: "host".into(),
            ip: "10.30.0.250"
                .parse()
                .map_err(|_| CtlError::Refused("bad address".into()))?,
        },
        Aux {
            name: "station".into(),
            ip: "10.30.0.200"
                .parse()
                .map_err(|_| CtlError::Refused("bad address".into()))?,
        },
    ];
    writeln!(
        out,
        "  $ l2ctl network create lan -d macvlan --parent lan0 --subnet 10.30.0.0/24 --ip-range 10.30.0.0/25 \\\n      --aux-address host=10.30.0.250 --aux-address station=10.30.0.200"
    )?;
    ctl.create_network(&mv, None)?;
    for w in [m1, m2] {
        writeln!(out, "  $ l2ctl attach {w} --network lan")?;
        if let Some(ep) = ctl.attach(w, &attach("lan", EndpointKind::Veth), None)? {
            write!(out, "    ")?;
            show::endpoint(out, w, "lan", &ep)?;
        }
    }
    let (m1_ip, m2_ip) = (ip_of(ctl, m1, "lan")?, ip_of(ctl, m2, "lan")?);
    say_reach(
        out,
        &format!("{m1} -> {m2}, bridge mode delivers between sub-interfaces"),
        Some(m1),
        Some(m2),
        m2_ip,
        true,
    )?;
    say_reach(
        out,
        &format!("LAN station -> {m1}, through the parent"),
        Some(lan),
        Some(m1),
        m1_ip,
        true,
    )?;
    say_reach(
        out,
        &format!("host -> {m1}"),
        Some(host),
        Some(m1),
        m1_ip,
        false,
    )?;
    writeln!(
        out,
        "    That is macvlan's best-known pitfall: the host's frames to {m1} leave through lan0\n    onto the wire and never come back to the sub-interfaces. The fix is a sub-interface\n    for the host:"
    )?;
    writeln!(out, "  $ l2ctl host-access lan")?;
    let ha = ctl.host_access("lan")?;
    writeln!(
        out,
        "    host-access: {} with {} and a route to 10.30.0.0/25",
        ha.interface, ha.ip
    )?;
    say_reach(
        out,
        &format!("host -> {m1}, through host-access"),
        Some(host),
        Some(m1),
        m1_ip,
        true,
    )?;

    writeln!(
        out,
        "\n3. The outside world: {web} published its UDP port 80 on the host's port 8080 (attach\n   --publish 8080:80/udp above). The LAN station has no route to front, only to the host's\n   10.30.0.250 on lan0; the host's table ip l2sw leads the port to {web}:"
    )?;
    say_reach_port(
        out,
        &format!("LAN station -> host 10.30.0.250:8080, published to {web}:80"),
        (Some(lan), Some(web)),
        "10.30.0.250"
            .parse()
            .map_err(|_| CtlError::Refused("bad address".into()))?,
        (8080, 80),
    )?;

    writeln!(
        out,
        "\n4. Counters: every frame received, sent, or dropped with its reason."
    )?;
    writeln!(out, "  $ l2ctl stats")?;
    let mut all = std::collections::BTreeMap::new();
    for n in ["front", "lan"] {
        all.insert(n.to_owned(), ctl.client().stats(n)?);
    }
    show::stats(&mut indent(out), &all, false)?;

    writeln!(out, "\n5. Taking it all down.")?;
    for (w, n) in [
        (web, "front"),
        (db, "front"),
        (cache, "front"),
        (m1, "lan"),
        (m2, "lan"),
    ] {
        ctl.detach(w, n)?;
    }
    writeln!(
        out,
        "  $ l2ctl detach ... (each workload; its namespace goes with its last network)"
    )?;
    for n in ["front", "lan"] {
        writeln!(out, "  $ l2ctl network rm {n}")?;
        ctl.remove_network(n)?;
    }
    Ok(())
}

/// Indents what the tables print, under the command that made them.
struct Indent<'a, W: Write> {
    out: &'a mut W,
    at_start: bool,
}

fn indent<W: Write>(out: &mut W) -> Indent<'_, W> {
    Indent {
        out,
        at_start: true,
    }
}

impl<W: Write> Write for Indent<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split_inclusive(|b| *b == b'\n') {
            if self.at_start && line != b"\n" {
                self.out.write_all(b"    ")?;
            }
            self.out.write_all(line)?;
            self.at_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
