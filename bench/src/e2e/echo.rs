//! The round trip the ends' own IP stacks see: a UDP echo responder in the sink's namespace
//! and a client in the generator's, one small request at a time, paced, each round trip
//! timed on the monotonic clock. Every wait has a deadline: a path that carries nothing
//! ends the measurement within [`WARMUP`], one that loses replies within the run's bound.
//!
//! Also here: the ends' counts of packets their kernels dropped for bad checksums (what a
//! switch that forwards frames whose checksum offload is unfinished leaves behind).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use l2sw::port::sys::netns;

use super::BenchError;

/// How long the first request may go unanswered (it waits for ARP through the target).
pub const WARMUP: Duration = Duration::from_millis(1500);
/// How long a request waits for its reply before it is counted lost.
const REPLY_WAIT: Duration = Duration::from_millis(50);
/// Bytes of a request: a magic word and a sequence number.
const REQUEST: usize = 12;
const MAGIC: [u8; 4] = *b"L2RT";

/// A UDP echo responder on a thread of its own, stopped on drop.
#[derive(Debug)]
pub struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Starts a responder on `ip` (any port) in namespace `ns`.
    pub fn start(ns: &str, ip: Ipv4Addr) -> Result<Responder, BenchError> {
        let sock = netns::run_in(ns, || UdpSocket::bind((ip, 0)))?
            .map_err(|e| BenchError::sys("bind UDP echo responder", ip.to_string(), e))?;
        let addr = sock
            .local_addr()
            .map_err(|e| BenchError::sys("bind UDP echo responder", ip.to_string(), e))?;
        // The stop flag is checked this often.
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| BenchError::sys("set timeout of", "UDP echo responder", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("l2bench-echo".into())
            .spawn(move || {
                super::sys::pin(None);
                let mut buf = [0u8; 64];
                while !flag.load(Ordering::Relaxed) {
                    // Timeouts and errors alike: go round and look at the flag again.
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            })
            .map_err(|e| BenchError::sys("start", "UDP echo responder", e))?;
        Ok(Responder {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a client's run got.
#[derive(Debug, Clone, Default)]
pub struct Echoes {
    /// Requests sent (after the first answered one).
    pub sent: usize,
    /// Round-trip times of the answered ones, nanoseconds.
    pub rtts_ns: Vec<u64>,
}

/// Sends `count` requests from `from` (an address of namespace `ns`) to `to`, one at a time,
/// each `gap` after the last one's send (or at once after a late reply), and times each
/// round trip; stops at `count` or after `limit`, whichever is first. First it sends until
/// one request is answered, for at most [`WARMUP`]: none answered is an error naming the
/// path. Run it on the thread and core it should be timed on.
pub fn client(
    ns: &str,
    from: Ipv4Addr,
    to: SocketAddr,
    count: usize,
    gap: Duration,
    limit: Duration,
) -> Result<Echoes, BenchError> {
    let sys = |op, e| BenchError::sys(op, format!("UDP {from} -> {to}"), e);
    // Errors of the traffic itself (an ICMP error, no route once ARP gave up) are the
    // path's, not the harness's.
    let path = |op: &str, e: io::Error| BenchError::Traffic(format!("{op} UDP to {to}: {e}"));
    let sock = netns::run_in(ns, || UdpSocket::bind((from, 0)))?.map_err(|e| sys("bind", e))?;
    sock.connect(to).map_err(|e| sys("connect", e))?;
    let mut seq = 0u64;
    let start = Instant::now();
    let mut answered = false;
    let mut tries = 0;
    while !answered && start.elapsed() < WARMUP {
        seq += 1;
        tries += 1;
        send(&sock, seq).map_err(|e| path("send", e))?;
        let wait = Duration::from_millis(100).min(WARMUP.saturating_sub(start.elapsed()));
        answered = reply(&sock, seq, Instant::now() + wait).map_err(|e| path("receive", e))?;
    }
    if !answered {
        return Err(BenchError::Traffic(format!(
            "no UDP reply from {to} to {tries} requests in {:.1} s",
            WARMUP.as_secs_f64()
        )));
    }
    let mut out = Echoes::default();
    let end = Instant::now() + limit;
    let mut due = Instant::now();
    while out.sent < count {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if due > now {
            // Pacing, not waiting on a condition: the next request is due then.
            std::thread::sleep(due - now);
        }
        seq += 1;
        let t0 = Instant::now();
        due = t0 + gap;
        send(&sock, seq).map_err(|e| path("send", e))?;
        out.sent += 1;
        if reply(&sock, seq, (t0 + REPLY_WAIT).min(end)).map_err(|e| path("receive", e))? {
            out.rtts_ns
                .push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }
    Ok(out)
}

fn send(sock: &UdpSocket, seq: u64) -> io::Result<()> {
    let mut req = [0u8; REQUEST];
    req[..4].copy_from_slice(&MAGIC);
    req[4..].copy_from_slice(&seq.to_le_bytes());
    sock.send(&req).map(|_| ())
}

/// Waits until `deadline` for the reply to request `seq` (late replies to earlier requests
/// are passed over). `false` if it did not come.
fn reply(sock: &UdpSocket, seq: u64, deadline: Instant) -> io::Result<bool> {
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                if is_reply(&buf[..n], seq) {
                    return Ok(true);
                }
            }
            Err(e) if super::sys::timed_out(&e) => {
                return Ok(false);
            }
            // An ICMP error for an earlier request (port unreachable): not this reply.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_reply(buf: &[u8], seq: u64) -> bool {
    buf.len() == REQUEST && buf[..4] == MAGIC && buf[4..] == seq.to_le_bytes()
}

/// Packets the kernel of namespace `ns` dropped for bad checksums so far: (UDP, TCP), from
/// its `/proc/net/snmp`. `None` if they could not be read.
pub fn checksum_drops(ns: &str) -> Option<(u64, u64)> {
    // `thread-self`: the namespace of the thread reading, which `run_in` moved.
    let text = netns::run_in(ns, || std::fs::read_to_string("/proc/thread-self/net/snmp"))
        .ok()?
        .ok()?;
    Some((
        snmp_counter(&text, "Udp", "InCsumErrors")?,
        snmp_counter(&text, "Tcp", "InCsumErrors")?,
    ))
}

/// Counter `name` of protocol `proto` in the text of `/proc/net/snmp`, where each protocol
/// has a line of names and then a line of values, both starting with `Proto:`.
pub fn snmp_counter(text: &str, proto: &str, name: &str) -> Option<u64> {
    let tag = format!("{proto}:");
    let mut lines = text
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(&tag));
    let names = lines.next()?;
    let values = lines.next()?;
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn snmp_counters_are_found_by_protocol_and_name() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm InSegs InCsumErrors\nTcp: 1 1444 7\n\
                    Udp: InDatagrams NoPorts InCsumErrors IgnoredMulti\nUdp: 27 0 3 0\n\
                    UdpLite: InDatagrams InCsumErrors\nUdpLite: 0 9\n";
        assert_eq!(snmp_counter(text, "Udp", "InCsumErrors"), Some(3));
        assert_eq!(snmp_counter(text, "Tcp", "InCsumErrors"), Some(7));
        assert_eq!(snmp_counter(text, "UdpLite", "InCsumErrors"), Some(9));
        assert_eq!(snmp_counter(text, "Udp", "NoSuchCounter"), None);
        assert_eq!(snmp_counter(text, "Icmp", "InMsgs"), None);
        assert_eq!(
            snmp_counter("Udp: InCsumErrors\n", "Udp", "InCsumErrors"),
            None
        );
    }

    #[test]
    fn only_the_awaited_reply_counts() {
        let mut req = [0u8; REQUEST];
        req[..4].copy_from_slice(&MAGIC);
        req[4..].copy_from_slice(&7u64.to_le_bytes());
        assert!(is_reply(&req, 7));
        assert!(!is_reply(&req, 6));
        assert!(!is_reply(&req[..8], 7));
    }
}
