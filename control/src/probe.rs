//! Reachability probes between namespaces, with plain UDP sockets: the demo and the tests
//! check "can A reach B" without ping or any other tool. The kernel resolves ARP/ND on the way,
//! so a probe that arrives proves the whole path (ARP broadcast, reply, unicast) through l2sw.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use l2sw::port::sys::netns;

/// How long one attempt waits for its datagram.
const WAIT: Duration = Duration::from_millis(400);
/// Attempts before "unreachable" (the first may wait for neighbour resolution).
const ATTEMPTS: usize = 4;

fn in_ns<T: Send>(ns: Option<&str>, work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    match ns {
        Some(name) => netns::run_in(name, work).map_err(io::Error::other)?,
        None => work(),
    }
}

fn any(v4: bool) -> SocketAddr {
    let ip = if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, 0)
}

/// Whether a UDP datagram sent from namespace `from` to `ip` reaches a socket listening in
/// namespace `to` (`None`: this process's own namespace).
pub fn udp_reaches(from: Option<&str>, to: Option<&str>, ip: IpAddr) -> io::Result<bool> {
    udp_reaches_port(from, to, ip, None)
}

/// Whether a UDP datagram sent from namespace `from` to `ip:port` reaches a socket listening
/// on `listen` in namespace `to`: a published port (`port` the host's, `listen` the
/// workload's); `None` for both: one free port.
pub fn udp_reaches_port(
    from: Option<&str>,
    to: Option<&str>,
    ip: IpAddr,
    ports: Option<(u16, u16)>,
) -> io::Result<bool> {
    let rx = in_ns(to, || {
        let mut at = any(ip.is_ipv4());
        at.set_port(ports.map_or(0, |(_, listen)| listen));
        let s = UdpSocket::bind(at)?;
        s.set_read_timeout(Some(WAIT))?;
        Ok(s)
    })?;
    let port = match ports {
        Some((port, _)) => port,
        None => rx.local_addr()?.port(),
    };
    let tx = in_ns(from, || UdpSocket::bind(any(ip.is_ipv4())))?;
    let mut buf = [0u8; 64];
    for attempt in 0..ATTEMPTS {
        let msg = format!("l2sw probe {attempt}");
        match tx.send_to(msg.as_bytes(), (ip, port)) {
            Ok(_) => {}
            // No route, or the neighbour failed: unreachable, as ping would say.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EHOSTDOWN)
                ) =>
            {
                std::thread::sleep(WAIT);
                continue;
            }
            Err(e) => return Err(e),
        }
        match rx.recv_from(&mut buf) {
            Ok((n, _)) if buf.get(..n) == Some(msg.as_bytes()) => return Ok(true),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}
