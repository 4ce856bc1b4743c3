//! `l2ctl demo --in-memory`: a bridge network and a macvlan network, in memory, narrated frame by frame.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::Ipv4Addr;

use l2sw::fwd::{
    Batch, ConfigError, DropReason, EntryKind, MacvlanMode, PortConfig, PortId, Role, Switch,
    SwitchConfig, Tick, Verdict,
};
use l2sw::wire::{Mac, Summary, craft};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum MemDemoError {
    /// The topology was refused.
    #[error("building the demo topology: {0}")]
    Config(#[from] ConfigError),
    /// The output could not be written.
    #[error("writing the narration: {0}")]
    Io(#[from] io::Error),
}

/// A switch with named ports, narrating what it does.
struct Net<'w, W: Write> {
    name: &'static str,
    sw: Switch,
    names: BTreeMap<PortId, String>,
    now: Tick,
    batch: Batch<Vec<u8>>,
    sent: BTreeMap<String, u64>,
    drops: BTreeMap<DropReason, u64>,
    out: &'w mut W,
}

impl<'w, W: Write> Net<'w, W> {
    fn new(name: &'static str, cfg: SwitchConfig, out: &'w mut W) -> Result<Self, MemDemoError> {
        Ok(Net {
            name,
            sw: Switch::new(cfg)?,
            names: BTreeMap::new(),
            now: Tick::from_secs(1),
            batch: Batch::new(),
            sent: BTreeMap::new(),
            drops: BTreeMap::new(),
            out,
        })
    }

    fn add(&mut self, cfg: PortConfig) -> Result<PortId, MemDemoError> {
        let name = cfg.name.clone();
        let id = self.sw.add_port(cfg)?;
        self.names.insert(id, name);
        Ok(id)
    }

    fn name(&self, p: PortId) -> &str {
        self.names.get(&p).map_or("?", String::as_str)
    }

    /// Sends `frame` in on `from` and narrates the decision.
    fn send(&mut self, from: PortId, what: &str, frame: Vec<u8>) -> Result<(), MemDemoError> {
        self.batch.clear();
        // A batch of one always has room.
        let _ = self.batch.push(from, frame);
        self.sw.process(self.now, &mut self.batch);
        let d = self.batch.decisions().first().copied();
        let mut receivers: Vec<String> = Vec::new();
        for (p, items) in self.batch.egress() {
            let n = self.name(p).to_owned();
            *self.sent.entry(n.clone()).or_default() += items.len() as u64;
            receivers.push(n);
        }
        if !self.batch.to_host().is_empty() {
            receivers.push("the uplink's own stack".into());
        }
        let (_, bytes) = self.batch.frame(0).unwrap_or((from, &[]));
        let summary = Summary::new(bytes).to_string();
        let from_name = self.name(from).to_owned();
        writeln!(self.out, "  {from_name} sends {what}")?;
        writeln!(self.out, "      {summary}")?;
        if let Some(d) = d {
            let verb = match d.verdict {
                Verdict::Unicast(_) => "forwarded to",
                Verdict::Flood { .. } => "delivered to",
                Verdict::Host => "passed up to",
                Verdict::Drop(r) => {
                    *self.drops.entry(r).or_default() += 1;
                    "dropped"
                }
            };
            match d.verdict {
                Verdict::Drop(r) => writeln!(self.out, "      -> {verb}: {}", r.describe())?,
                _ => writeln!(self.out, "      -> {verb} {}", receivers.join(", "))?,
            }
            writeln!(self.out, "      why: {}", d.why)?;
        }
        Ok(())
    }

    fn heading(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "\n[{}] {text}", self.name)
    }

    fn counters(&mut self) -> io::Result<()> {
        writeln!(self.out, "\n[{}] frames sent per port:", self.name)?;
        for (port, n) in &self.sent {
            writeln!(self.out, "      {port:<12} {n}")?;
        }
        if !self.drops.is_empty() {
            writeln!(self.out, "[{}] drops by reason:", self.name)?;
            for (r, n) in &self.drops {
                writeln!(self.out, "      {:<14} {n}  ({})", r.name(), r.describe())?;
            }
        }
        Ok(())
    }
}

fn docker_mac(last: u8) -> Mac {
    Mac([0x02, 0x42, 0xac, 0x11, 0x00, last])
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 17, 0, last)
}

/// Runs the demo, writing the narration to `out`.
pub fn run(out: &mut impl Write) -> Result<(), MemDemoError> {
    writeln!(
        out,
        "l2sw demo: the forwarding core, in memory (no interfaces touched).\n\
         Each frame shows where it went and the kernel rule l2sw mirrored to decide it."
    )?;
    bridge_network(out)?;
    macvlan_network(out)?;
    writeln!(
        out,
        "\nDone. Every decision above came from the same core the daemon runs on real ports."
    )?;
    Ok(())
}

fn bridge_network(out: &mut impl Write) -> Result<(), MemDemoError> {
    let mut net = Net::new("bridge", SwitchConfig::bridge(), out)?;
    writeln!(
        net.out,
        "\n== A Docker-style bridge network: 172.17.0.0/16, gateway 172.17.0.1 on the host ==",
    )?;
    net.add(PortConfig::new("l2sw0", Role::Host).with_mac(docker_mac(1)))?;
    let web = net.add(PortConfig::bridge("veth-web"))?;
    let db = net.add(PortConfig::bridge("veth-db"))?;
    let _cache = net.add(PortConfig::bridge("veth-cache"))?;
    let (mweb, mdb) = (docker_mac(2), docker_mac(3));

    net.heading("web looks for db: broadcasts flood, and the bridge learns web's MAC")?;
    net.send(
        web,
        "an ARP request",
        craft::arp_request(mweb, ip(2), ip(3)),
    )?;
    net.heading("db answers: web is known now, so the reply goes to web alone")?;
    net.send(
        db,
        "an ARP reply",
        craft::arp_reply(mdb, ip(3), mweb, ip(2)),
    )?;
    net.heading("web talks to db: both are learned, plain unicast")?;
    net.send(
        web,
        "a UDP datagram",
        craft::ipv4_udp(mdb, mweb, ip(2), ip(3), b"hello"),
    )?;
    net.heading("web talks to the gateway: the bridge's own MAC goes up to the host")?;
    let gw = docker_mac(1);
    net.send(
        web,
        "a UDP datagram to the gateway",
        craft::ipv4_udp(gw, mweb, ip(2), ip(1), b"hi"),
    )?;
    net.heading("web writes to a MAC nobody has used: unknown unicast floods")?;
    let gone = docker_mac(0x99);
    net.send(
        web,
        "a UDP datagram",
        craft::ipv4_udp(gone, mweb, ip(2), ip(0x99), b"anyone?"),
    )?;
    net.heading("a broken sender uses a multicast source MAC: the bridge drops it")?;
    let bad = Mac([0x01, 0x00, 0x5e, 0, 0, 1]);
    net.send(
        db,
        "a frame with a multicast source",
        craft::ipv4_udp(mweb, bad, ip(3), ip(2), b"x"),
    )?;

    writeln!(
        net.out,
        "\n[bridge] the forwarding database (ageing 300 s):"
    )?;
    let now = net.now;
    let mut rows: Vec<_> = net
        .sw
        .fdb()
        .map(|f| f.entries(now).collect())
        .unwrap_or_default();
    rows.sort_by_key(|e| (e.port, e.mac));
    for e in rows {
        let kind = match e.kind {
            EntryKind::Local => "local (the host's own)",
            EntryKind::Static => "static",
            EntryKind::Dynamic => "learned",
        };
        let port = net.name(e.port).to_owned();
        writeln!(
            net.out,
            "      {}  on {port:<10} {kind}, {} s old",
            e.mac,
            e.age / 100
        )?;
    }
    net.heading("five minutes of silence later, web and db have aged out: unicast floods again")?;
    net.now = Tick(net.now.0 + 301 * 100);
    let aged = net.sw.age(net.now);
    writeln!(net.out, "      ({aged} entries aged out)")?;
    net.send(
        db,
        "a UDP datagram",
        craft::ipv4_udp(mweb, mdb, ip(3), ip(2), b"still there?"),
    )?;
    net.counters()?;
    Ok(())
}

fn macvlan_network(out: &mut impl Write) -> Result<(), MemDemoError> {
    let mut net = Net::new("macvlan", SwitchConfig::macvlan(), out)?;
    writeln!(
        net.out,
        "\n== A macvlan network on uplink eth0: app1, app2 in bridge mode, vault in private mode ==",
    )?;
    let m = |n: u8| Mac([0x02, 0x00, 0x00, 0x00, 0x01, n]);
    let eth0 = net.add(PortConfig::uplink("eth0").with_mac(m(0)))?;
    let app1 = net.add(PortConfig::macvlan("app1", m(1), MacvlanMode::Bridge))?;
    let _app2 = net.add(PortConfig::macvlan("app2", m(2), MacvlanMode::Bridge))?;
    let vault = net.add(PortConfig::macvlan("vault", m(3), MacvlanMode::Private))?;
    let host = net.add(PortConfig::new("eth0-stack", Role::Host).with_mac(m(0)))?;
    let router = Mac([0x02, 0x00, 0x00, 0x00, 0x02, 0x01]);
    let ipm = |n: u8| Ipv4Addr::new(192, 168, 1, n);

    net.heading("app1 to app2, both bridge mode: delivered inside, never on the wire")?;
    net.send(
        app1,
        "a UDP datagram",
        craft::ipv4_udp(m(2), m(1), ipm(11), ipm(12), b"hi"),
    )?;
    net.heading(
        "app1 to vault (private): out the uplink; only a hairpinning switch brings it back",
    )?;
    net.send(
        app1,
        "a UDP datagram",
        craft::ipv4_udp(m(3), m(1), ipm(11), ipm(13), b"hi"),
    )?;
    net.heading("vault sends anything: private mode always uses the wire")?;
    net.send(
        vault,
        "an ARP request",
        craft::arp_request(m(3), ipm(13), ipm(11)),
    )?;
    net.heading("the router outside broadcasts: every sub-interface and the uplink's stack")?;
    net.send(
        eth0,
        "an ARP request",
        craft::arp_request(router, ipm(1), ipm(11)),
    )?;
    net.heading("the router answers app1: by destination MAC, whatever the mode")?;
    net.send(
        eth0,
        "a UDP datagram",
        craft::ipv4_udp(m(1), router, ipm(1), ipm(11), b"pong"),
    )?;
    net.heading(
        "the host itself writes to app1: it goes to the wire, not to app1 (a classic trap)",
    )?;
    net.send(
        host,
        "a UDP datagram",
        craft::ipv4_udp(m(1), m(0), ipm(2), ipm(11), b"hello?"),
    )?;
    net.counters()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_narrates_the_expected_decisions() {
        let mut out = Vec::new();
        run(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for needle in [
            "-> delivered to l2sw0, veth-db, veth-cache",
            "-> forwarded to veth-web",
            "-> passed up to l2sw0",
            "-> dropped: invalid source MAC",
            "why: macvlan_queue_xmit: bridge-mode peer: local delivery, never on the wire",
            "why: dev_queue_xmit: uplink stack: onto the wire, never to a sub-interface",
            "2 entries aged out",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }
}
