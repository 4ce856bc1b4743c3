//! l2sw's integration and conformance harness: throw-away network namespaces (unique names,
//! removed on drop, so tests run in parallel and never touch the host's interfaces), veth
//! links between them, and frame taps that inject and capture whole frames over AF_PACKET
//! from Rust (no ping, tcpdump or scapy needed).
//!
//! Namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN). Without it, [`Sandbox::new`]
//! returns `None` and the tests that need one say so and return.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod docker;
pub mod l2ctl;
pub mod lab;
pub mod rootfs;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::engine::Engine;
use l2sw::fwd::{PortConfig, Switch, SwitchConfig};
use l2sw::port::af_packet::AfPacketPort;
use l2sw::port::sys::netns;
use l2sw::port::sys::packet::PacketSocket;
use l2sw::wire::Mac;
use l2sw_netlink::{Links, Scratch, veth_pair};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether this process may create network namespaces (it runs as root).
pub fn privileged() -> bool {
    l2sw::port::sys::is_root()
}

/// [`privileged`], saying "skipped TEST: network namespaces need root" when not: a test that
/// needs root returns at once if this is false.
pub fn privileged_or_skip(test: &str) -> bool {
    let root = privileged();
    if !root {
        eprintln!("skipped {test}: network namespaces need root");
    }
    root
}

/// A set of network namespaces that exist as long as the sandbox does, built through
/// l2ctl's netlink facade (`l2sw-netlink`), the same one `l2ctl verify` builds its kernel
/// side with.
#[derive(Debug)]
pub struct Sandbox {
    namespaces: Scratch,
}

impl Sandbox {
    /// A new, empty sandbox named after `test`; `None` without the privileges namespaces need.
    pub fn new(test: &str) -> Option<Sandbox> {
        if !privileged_or_skip(test) {
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Some(Sandbox {
            namespaces: Scratch::new(format!("l2t-{}-{}-{n}", test, std::process::id())),
        })
    }

    /// Creates namespace `short` (IPv6 off, so that no router solicitation or DAD frame
    /// mixes with a test's frames; loopback up) and returns its full name.
    pub fn netns(&mut self, short: &str) -> String {
        self.namespaces
            .create(short)
            .unwrap_or_else(|e| panic!("namespace {short}: {e}"))
    }

    /// The links of namespace `ns`.
    pub fn links(&self, ns: &str) -> Links {
        Links::new(Some(ns))
    }

    /// Runs `ip -n NS ARGS...` (or `ip ARGS...` when `args` starts with "netns"), for what the
    /// netlink facade does not do (multicast memberships, addresses without DAD, sysctls).
    pub fn ip(&self, ns: &str, args: &[&str]) {
        if args.first() == Some(&"netns") {
            run("ip", args);
        } else {
            let mut full = vec!["-n", ns];
            full.extend_from_slice(args);
            run("ip", &full);
        }
    }

    /// A kernel bridge `br` (STP off, the kernel's default) with MAC `mac` in namespace `ns`,
    /// up.
    pub fn kernel_bridge(&self, ns: &str, br: &str, mac: Mac) {
        let links = self.links(ns);
        links
            .create_bridge(br, mac)
            .and_then(|()| links.set_up(br))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Makes `port` of namespace `ns` a port of kernel bridge `br`, hairpin and isolation as
    /// given.
    pub fn enslave(&self, ns: &str, port: &str, br: &str, hairpin: bool, isolated: bool) {
        let links = self.links(ns);
        links
            .enslave(port, br)
            .and_then(|()| links.set_bridge_port(port, hairpin, isolated))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// A veth pair: `a` in namespace `ns_a`, `b` in `ns_b`, both up, with the given MACs.
    pub fn veth(&self, ns_a: &str, a: &str, mac_a: Mac, ns_b: &str, b: &str, mac_b: Mac) {
        veth_pair((ns_a, a, mac_a), (ns_b, b, mac_b)).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Runs a command that must succeed; panics with its output otherwise.
pub fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A frame tap on one interface of one namespace: injects frames as if the interface's own
/// stack sent them, and captures what arrives on it.
#[derive(Debug)]
pub struct Tap {
    /// A name for reports ("a", "host", ...).
    pub name: String,
    sock: PacketSocket,
}

impl Tap {
    /// Opens a tap on `ifname` inside namespace `ns`.
    pub fn open(name: &str, ns: &str, ifname: &str) -> Tap {
        let sock = netns::run_in(ns, || PacketSocket::open(ifname))
            .and_then(|r| r)
            .unwrap_or_else(|e| panic!("tap {name}: {e}"));
        // Room for bursts, so that a test reading a little late still sees every frame.
        sock.set_rcvbuf(4 << 20)
            .unwrap_or_else(|e| panic!("tap {name}: {e}"));
        Tap {
            name: name.to_owned(),
            sock,
        }
    }

    /// Sends `frame` out of the interface.
    pub fn send(&self, frame: &[u8]) {
        let sent = self
            .sock
            .send(frame)
            .unwrap_or_else(|e| panic!("tap {}: send: {e}", self.name));
        assert!(sent, "tap {}: queue full", self.name);
    }

    /// Every frame waiting, in arrival order, as it was on the wire (VLAN tags included).
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Ok(true) = self.sock.recv_into(&mut buf, 65536) {
            out.push(buf.clone());
        }
        out
    }
}

/// Teaches an engine that is not running where station `n` is: sends a broadcast from it
/// through `tap` and services `port` until the engine has read the frame.
pub fn teach(engine: &mut Engine, port: l2sw::fwd::PortId, tap: &Tap, n: u8) {
    tap.send(&l2sw::wire::craft::ethernet(
        l2sw::wire::Mac::BROADCAST,
        station(n),
        l2sw::wire::craft::ETHERTYPE_EXPERIMENTAL,
        b"hello",
    ));
    let start = Instant::now();
    while engine.service(port) == 0 {
        assert!(start.elapsed() < Duration::from_secs(2), "hello not seen");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends `frame` from `from` and returns, sorted, the names of the taps that received an
/// identical frame (the sender too, if it came back), waiting until the taps have been quiet
/// for a while.
pub fn deliveries(taps: &[Tap], from: &Tap, frame: &[u8]) -> Vec<String> {
    for t in taps {
        t.drain();
    }
    from.send(frame);
    let mut got: Vec<String> = Vec::new();
    let start = Instant::now();
    let mut last_new = Instant::now();
    while start.elapsed() < Duration::from_millis(500)
        && last_new.elapsed() < Duration::from_millis(60)
    {
        for t in taps {
            for f in t.drain() {
                if f == frame {
                    got.push(t.name.clone());
                    last_new = Instant::now();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    got.sort();
    got
}

/// Station `n`'s MAC: 02:00:00:00:00:nn.
pub use l2sw::wire::craft::station;

/// A workload interface's transmit offloads: checksum offload, scatter-gather, TSO and GSO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Offloads {
    /// Left as the kernel sets them, as Docker leaves a container's veth: on a veth, what
    /// reaches l2sw is then TCP super-frames longer than the MTU (GSO/TSO) and TCP and UDP
    /// packets whose checksums are only started (checksum offload).
    #[default]
    On,
    /// Turned off (`ethtool -K IF tx off sg off tso off gso off`): the interface sends whole,
    /// checksummed frames of at most its MTU.
    Off,
}

impl Offloads {
    /// Applies the choice to interface `ifname` of namespace `ns`: [`Offloads::On`] leaves it
    /// as it is, [`Offloads::Off`] turns its transmit offloads off.
    pub fn apply(self, ns: &str, ifname: &str) {
        if self == Offloads::Off {
            netns::run_in(ns, || l2sw::port::sys::link::disable_tx_offloads(ifname))
                .and_then(|r| r)
                .unwrap_or_else(|e| panic!("{ifname} in {ns}: {e}"));
        }
    }
}

impl Sandbox {
    /// Workload `name`: namespace `name` whose `eth0` has MAC `station(n)`, linked by a veth
    /// pair to port `p{name}` (MAC 02:00:00:00:01:nn) in namespace `sw`. Its transmit offloads
    /// are left on, as Docker leaves them (see [`Sandbox::workload_with`]). Returns the
    /// workload's namespace and a tap on its `eth0`.
    pub fn workload(&mut self, sw: &str, name: &str, n: u8) -> (String, Tap) {
        self.workload_with(sw, name, n, Offloads::On)
    }

    /// [`Sandbox::workload`] with `eth0`'s transmit offloads as `offloads` says: a workload
    /// that turns them off must work as well as one that leaves them on.
    pub fn workload_with(
        &mut self,
        sw: &str,
        name: &str,
        n: u8,
        offloads: Offloads,
    ) -> (String, Tap) {
        let ns = self.netns(name);
        let port_mac = Mac([2, 0, 0, 0, 1, n]);
        self.veth(sw, &format!("p{name}"), port_mac, &ns, "eth0", station(n));
        offloads.apply(&ns, "eth0");
        let tap = Tap::open(name, &ns, "eth0");
        (ns, tap)
    }
}

/// An l2sw engine running on a thread of its own until stopped.
#[derive(Debug)]
pub struct LiveEngine {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Engine>,
}

impl LiveEngine {
    /// Runs `engine` on a new thread.
    pub fn start(mut engine: Engine) -> LiveEngine {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            engine.run(&flag).expect("engine run");
            engine
        });
        LiveEngine { stop, thread }
    }

    /// A learning bridge with default ports over AF_PACKET sockets on `ifaces` in namespace
    /// `ns`, running.
    pub fn bridge(ns: &str, ifaces: &[&str]) -> LiveEngine {
        LiveEngine::bridge_with(ns, ifaces, false)
    }

    /// [`LiveEngine::bridge`], spinning instead of sleeping if `busy_poll`.
    pub fn bridge_with(ns: &str, ifaces: &[&str], busy_poll: bool) -> LiveEngine {
        LiveEngine::bridge_polling(
            ns,
            ifaces,
            l2sw::engine::Polling {
                busy: busy_poll,
                ..l2sw::engine::Polling::default()
            },
        )
    }

    /// [`LiveEngine::bridge`], waiting for frames as `polling` says.
    pub fn bridge_polling(ns: &str, ifaces: &[&str], polling: l2sw::engine::Polling) -> LiveEngine {
        let mut sw = Switch::new(SwitchConfig::bridge()).expect("bridge");
        let max = sw.config().max_frame();
        let mut ports = Vec::new();
        for name in ifaces {
            let id = sw.add_port(PortConfig::bridge(*name)).expect("add port");
            let port = AfPacketPort::open_in(ns, name, max).unwrap_or_else(|e| panic!("{e}"));
            ports.push((id, port));
        }
        let mut engine = Engine::new(sw);
        engine.set_polling(polling);
        for (id, p) in ports {
            engine.attach(id, Box::new(p)).unwrap();
        }
        LiveEngine::start(engine)
    }

    /// Stops the engine and returns it (for its counters).
    pub fn stop(self) -> Engine {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("engine thread")
    }
}
