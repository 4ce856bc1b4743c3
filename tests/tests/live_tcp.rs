//! Real TCP through l2sw: 16 MiB of a pseudo-random pattern from workload a's own stack to
//! workload b's, through every pair of port kinds (an AF_PACKET port on a veth end, a TAP port
//! that is the workload's interface) and across an 802.1Q trunk between two switches. The
//! workloads' transmit offloads are on, as Docker leaves them, so what reaches l2sw is TCP
//! super-frames longer than the MTU (GSO/TSO) and packets whose checksums are only started;
//! a workload that turns them off must work as well. Every byte must arrive as sent within a
//! deadline, and no port may count an Oversize drop. UDP too: datagrams whose checksums were
//! only started must arrive, which proves them completed (a stack drops a bad UDP checksum).
//!
//! With offloads off on both ends (`offloads_off_everywhere_*`) these run on any l2sw; with
//! them on they need ports that carry a `virtio_net_hdr` (GSO type and size, checksum start).
//! A TAP's offloads "on" are what the TAP port offers the kernel (`TUNSETOFFLOAD`): a TAP
//! without a vnet header offers none, so its workload then sends plain frames anyway.
//!
//! A failure reports every port's counters and the checksum errors each workload's stack
//! counted: a handshake that never completes with checksum errors at the receiver means
//! started checksums crossed l2sw as they were.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2sw::fwd::{DropReason, PortConfig, PortId, Switch, SwitchConfig, Vid, VidSet, VlanMode};
use l2sw::port::Port;
use l2sw::port::af_packet::AfPacketPort;
use l2sw::port::sys::netns;
use l2sw::port::tap::TapPort;
use l2sw::wire::Mac;
use l2sw_tests::{LiveEngine, Offloads, Sandbox, station};

/// Bytes per transfer: thousands of full segments, many super-frames.
const BYTES: usize = 16 << 20;
/// A transfer (connection included) that takes longer has failed.
const DEADLINE: Duration = Duration::from_secs(60);
/// Where b listens.
const B: &str = "10.0.0.2";

/// How a workload reaches the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Its `eth0` is a veth whose peer, in the switch's namespace, is an AF_PACKET port.
    Veth,
    /// Its `eth0` is a TAP device whose descriptor is the switch's port.
    Tap,
}

/// One end of a transfer: the port kind and the workload's transmit offloads.
#[derive(Debug, Clone, Copy)]
struct End(Kind, Offloads);

const VETH: End = End(Kind::Veth, Offloads::On);
const TAP: End = End(Kind::Tap, Offloads::On);
const VETH_OFF: End = End(Kind::Veth, Offloads::Off);
const TAP_OFF: End = End(Kind::Tap, Offloads::Off);

/// A switch being put together: its ports' I/O in namespace `ns`, attached when it starts.
struct Sw {
    ns: String,
    s: Switch,
    ports: Vec<(PortId, String, Box<dyn Port + Send>)>,
}

impl Sw {
    fn new(ns: &str) -> Sw {
        Sw {
            ns: ns.to_owned(),
            s: Switch::new(SwitchConfig::bridge()).unwrap(),
            ports: Vec::new(),
        }
    }

    fn max_frame(&self) -> usize {
        self.s.config().max_frame()
    }

    fn add(&mut self, name: &str, vlan: VlanMode, port: Box<dyn Port + Send>) {
        let id = self
            .s
            .add_port(PortConfig::bridge(name).with_vlan(vlan))
            .unwrap();
        self.ports.push((id, name.to_owned(), port));
    }

    /// Adds an AF_PACKET port on interface `name` of the switch's namespace.
    fn add_af_packet(&mut self, name: &str, vlan: VlanMode) {
        let port = AfPacketPort::open_in(&self.ns, name, self.max_frame())
            .unwrap_or_else(|e| panic!("{e}"));
        self.add(name, vlan, Box::new(port));
    }

    fn start(self) -> Running {
        let mut e = l2sw::engine::Engine::new(self.s);
        let mut names = Vec::new();
        for (id, name, port) in self.ports {
            e.attach(id, port).unwrap();
            names.push((id, name));
        }
        Running {
            live: LiveEngine::start(e),
            ports: names,
        }
    }
}

/// A running switch and the names of its ports.
struct Running {
    live: LiveEngine,
    ports: Vec<(PortId, String)>,
}

/// Workload `name`: namespace `name` whose `eth0` (station `n`, 10.0.0.n/24) reaches switch
/// `sw` as `end` says, through port `p{name}` in `vlan`. Returns the workload's namespace.
fn workload(sb: &mut Sandbox, sw: &mut Sw, name: &str, n: u8, end: End, vlan: VlanMode) -> String {
    let port = format!("p{name}");
    let End(kind, offloads) = end;
    let ns = match kind {
        Kind::Veth => {
            // No frame tap: it would copy every segment of the transfer.
            let (ns, _) = sb.workload_with(&sw.ns, name, n, offloads);
            sw.add_af_packet(&port, vlan);
            ns
        }
        Kind::Tap => {
            let ns = sb.netns(name);
            let tap =
                TapPort::create_in(&ns, "eth0", sw.max_frame()).unwrap_or_else(|e| panic!("{e}"));
            sb.links(&ns).set_mac("eth0", station(n)).unwrap();
            offloads.apply(&ns, "eth0");
            sw.add(&port, vlan, Box::new(tap));
            ns
        }
    };
    let ip = std::net::Ipv4Addr::new(10, 0, 0, n);
    sb.links(&ns).add_address("eth0", ip.into(), 24).unwrap();
    ns
}

/// `len` bytes of a xorshift64 sequence: misplaced, repeated or lost segments all show.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Sends [`BYTES`] of the pattern over TCP from namespace `a` to b's address in namespace
/// `b`, and checks every byte that arrives. `Err` says what went wrong and how far it got.
fn tcp(a: &str, b: &str) -> Result<(), String> {
    let start = Instant::now();
    let late = || start.elapsed() > DEADLINE;
    let to: SocketAddr = format!("{B}:5001").parse().unwrap();
    let listener = netns::run_in(b, || TcpListener::bind(to)).unwrap().unwrap();
    listener.set_nonblocking(true).unwrap();
    let data: Arc<[u8]> = pattern(BYTES).into();
    let tx = netns::run_in(a, || {
        TcpStream::connect_timeout(&to, Duration::from_secs(20))
    })
    .unwrap()
    .map_err(|e| {
        format!(
            "a's connection to {to} failed after {:?}: {e}",
            start.elapsed()
        )
    })?;
    let rx = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if timed_out(&e) && !late() => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("b accepted no connection: {e}")),
        }
    };
    rx.set_nonblocking(false).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    tx.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let hang_up = tx.try_clone().unwrap();
    let sender = {
        let data = Arc::clone(&data);
        let mut tx = tx;
        std::thread::spawn(move || -> Result<(), String> {
            let mut sent = 0;
            while sent < data.len() {
                match tx.write(&data[sent..data.len().min(sent + (1 << 20))]) {
                    Ok(n) => sent += n,
                    Err(e) if timed_out(&e) && start.elapsed() <= DEADLINE => {}
                    Err(e) => {
                        return Err(format!("a sent {sent} of {} bytes: {e}", data.len()));
                    }
                }
            }
            tx.shutdown(Shutdown::Write)
                .map_err(|e| format!("a's shutdown: {e}"))
        })
    };
    let received = receive(rx, &data, late);
    if received.is_err() {
        // Unblock the sender at once.
        let _ = hang_up.shutdown(Shutdown::Both);
    }
    let sent = sender.join().unwrap();
    received.and(sent)?;
    eprintln!("{BYTES} bytes in {:?}", start.elapsed());
    Ok(())
}

/// Reads from `rx` until the sender closes, comparing with `data`.
fn receive(mut rx: TcpStream, data: &[u8], late: impl Fn() -> bool) -> Result<(), String> {
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match rx.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let want = data.get(got..got + n).ok_or_else(|| {
                    format!("b received {} bytes, {} were sent", got + n, data.len())
                })?;
                if let Some(i) = (0..n).find(|&i| buf[i] != want[i]) {
                    return Err(format!("b received a wrong byte at offset {}", got + i));
                }
                got += n;
            }
            Err(e) if timed_out(&e) && !late() => {}
            Err(e) if timed_out(&e) => {
                return Err(format!(
                    "b received {got} of {} bytes in {DEADLINE:?}",
                    data.len()
                ));
            }
            Err(e) => return Err(format!("b received {got} of {} bytes: {e}", data.len())),
        }
    }
    if got == data.len() {
        Ok(())
    } else {
        Err(format!(
            "the connection closed after {got} of {} bytes",
            data.len()
        ))
    }
}

/// The checksum errors namespace `ns`'s stack counted (`InCsumErrors` of each protocol in
/// its `/proc/net/snmp`): a frame l2sw passed on with a checksum only started counts there.
fn csum_errors(ns: &str) -> String {
    let snmp = netns::run_in(ns, || std::fs::read_to_string("/proc/thread-self/net/snmp"))
        .unwrap()
        .unwrap();
    let lines: Vec<&str> = snmp.lines().collect();
    let mut out = Vec::new();
    // Pairs of lines: "Proto: Name Name ..." then "Proto: value value ...".
    for pair in lines.chunks(2) {
        if let [names, values] = pair {
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                if name == "InCsumErrors" {
                    out.push(format!("{} {value}", names.split(':').next().unwrap_or("")));
                }
            }
        }
    }
    out.join(", ")
}

/// Stops the switches and fails if `result` is an error, if a port dropped a frame as
/// Oversize or if a port failed; the report shows every port's counters and the checksum
/// errors of the workloads' stacks (`workloads`: name and namespace).
fn check(
    what: &str,
    result: Result<(), String>,
    switches: Vec<Running>,
    workloads: &[(&str, &str)],
) {
    let mut report = String::new();
    for (name, ns) in workloads {
        report += &format!("  {name}'s stack: checksum errors {}\n", csum_errors(ns));
    }
    let mut oversize = 0;
    let mut io_errors = 0;
    for (k, sw) in switches.into_iter().enumerate() {
        let e = sw.live.stop();
        io_errors += e.stats().io_errors;
        for (id, name) in sw.ports {
            let c = e.port_counters(id);
            oversize += c.drops[DropReason::Oversize as usize];
            let drops: Vec<String> = c.drops().map(|(r, n)| format!("{r:?} {n}")).collect();
            report += &format!(
                "  switch {k} port {name}: rx {} forwarded {} tx {} tx_full {} drops [{}]\n",
                c.rx,
                c.forwarded,
                c.tx,
                c.tx_full,
                drops.join(", ")
            );
        }
    }
    eprintln!("{what}:\n{report}");
    if let Err(e) = result {
        panic!("{what}: {e}\n{report}");
    }
    assert_eq!(oversize, 0, "{what}: frames dropped as Oversize\n{report}");
    assert_eq!(io_errors, 0, "{what}: port I/O errors\n{report}");
}

/// A transfer from a to b on one switch.
fn pair(test: &str, a: End, b: End) {
    let Some(mut sb) = Sandbox::new(test) else {
        return;
    };
    let sw_ns = sb.netns("sw");
    let mut sw = Sw::new(&sw_ns);
    let na = workload(&mut sb, &mut sw, "a", 1, a, VlanMode::Transparent);
    let nb = workload(&mut sb, &mut sw, "b", 2, b, VlanMode::Transparent);
    let running = sw.start();
    let what = format!("{a:?} -> {b:?}");
    check(
        &what,
        tcp(&na, &nb),
        vec![running],
        &[("a", &na), ("b", &nb)],
    );
}

/// A transfer from a, on an access port of VLAN 10 of one switch, to b, on an access port of
/// another: the switches' trunk ports on a veth pair carry every frame tagged (a trunk
/// without a native VLAN drops untagged frames).
fn across_a_trunk(test: &str, a: End, b: End) {
    let Some(mut sb) = Sandbox::new(test) else {
        return;
    };
    let sw_ns = sb.netns("sw");
    let access = VlanMode::Access { vid: Vid::new(10) };
    let trunk = || VlanMode::Trunk {
        allowed: [Vid::new(10)].into_iter().collect::<VidSet>(),
        native: None,
    };
    let (mut s1, mut s2) = (Sw::new(&sw_ns), Sw::new(&sw_ns));
    let na = workload(&mut sb, &mut s1, "a", 1, a, access.clone());
    let nb = workload(&mut sb, &mut s2, "b", 2, b, access);
    sb.veth(
        &sw_ns,
        "t1",
        Mac([2, 0, 0, 0, 2, 1]),
        &sw_ns,
        "t2",
        Mac([2, 0, 0, 0, 2, 2]),
    );
    s1.add_af_packet("t1", trunk());
    s2.add_af_packet("t2", trunk());
    let running = vec![s1.start(), s2.start()];
    let what = format!("{a:?} -> trunk -> {b:?}");
    check(&what, tcp(&na, &nb), running, &[("a", &na), ("b", &nb)]);
}

#[test]
fn tcp_from_veth_to_veth() {
    pair("tcpvv", VETH, VETH);
}

#[test]
fn tcp_from_veth_to_tap() {
    pair("tcpvt", VETH, TAP);
}

#[test]
fn tcp_from_tap_to_veth() {
    pair("tcptv", TAP, VETH);
}

#[test]
fn tcp_from_tap_to_tap() {
    pair("tcptt", TAP, TAP);
}

#[test]
fn tcp_across_a_vlan_trunk() {
    across_a_trunk("tcpvlan", VETH, VETH);
}

#[test]
fn tcp_from_a_workload_with_offloads_off_to_one_with_them_on() {
    pair("tcpoffon", VETH_OFF, VETH);
}

#[test]
fn tcp_from_a_workload_with_offloads_on_to_a_tap_with_them_off() {
    pair("tcponoff", VETH, TAP_OFF);
}

#[test]
fn offloads_off_everywhere_every_pair_carries_tcp() {
    for (k, (a, b)) in [
        (VETH_OFF, VETH_OFF),
        (VETH_OFF, TAP_OFF),
        (TAP_OFF, VETH_OFF),
        (TAP_OFF, TAP_OFF),
    ]
    .into_iter()
    .enumerate()
    {
        pair(&format!("tcpoff{k}"), a, b);
    }
    across_a_trunk("tcpoffvlan", VETH_OFF, VETH_OFF);
}

#[test]
fn udp_datagrams_arrive_with_valid_checksums() {
    let Some(mut sb) = Sandbox::new("udpsum") else {
        return;
    };
    let sw_ns = sb.netns("sw");
    let mut sw = Sw::new(&sw_ns);
    let na = workload(&mut sb, &mut sw, "a", 1, VETH, VlanMode::Transparent);
    let nb = workload(&mut sb, &mut sw, "b", 2, VETH, VlanMode::Transparent);
    let running = sw.start();
    // Small and MTU-sized datagrams leave a with their checksums only started (checksum
    // offload); 8000 bytes are checksummed by a's stack and cross in IPv4 fragments.
    let sizes = [64usize, 1400, 8000];
    let to: SocketAddr = format!("{B}:5002").parse().unwrap();
    let rx = netns::run_in(&nb, || UdpSocket::bind(to)).unwrap().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let tx = netns::run_in(&na, || UdpSocket::bind("10.0.0.1:0"))
        .unwrap()
        .unwrap();
    let data = pattern(8000);
    let mut missing = sizes.to_vec();
    let start = Instant::now();
    let mut buf = vec![0u8; 9000];
    // Each size again until it arrives: only a datagram with a valid checksum ever does.
    while !missing.is_empty() && start.elapsed() < Duration::from_secs(10) {
        for &len in &missing {
            tx.send_to(&data[..len], to).unwrap();
        }
        let round = Instant::now();
        while round.elapsed() < Duration::from_millis(500) {
            let Ok(n) = rx.recv(&mut buf) else {
                continue;
            };
            assert_eq!(buf[..n], data[..n], "a {n}-byte datagram's contents");
            missing.retain(|&len| len != n);
        }
    }
    let result = if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no datagram of {missing:?} bytes reached b in 10 s (of {sizes:?})"
        ))
    };
    let workloads = [("a", na.as_str()), ("b", nb.as_str())];
    check("UDP veth -> veth", result, vec![running], &workloads);
}
