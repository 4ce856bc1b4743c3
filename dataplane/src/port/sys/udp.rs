//! The sockets of an overlay port: a UDP socket bound to the local VTEP address and port that
//! receives VXLAN packets in batches (`recvmmsg`), and a raw IPv4 socket of protocol UDP that
//! sends them in batches (`sendmmsg`) with a UDP header l2sw writes itself, so that each
//! packet's source port can be hashed from its inner flow (RFC 7348 §5), as the kernel's
//! `udp_flow_src_port` does. The raw socket never reads: a filter drops everything it would
//! otherwise queue (every UDP packet of the namespace).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::SysError;

/// The most packets one receive or send call moves.
pub const MMSG: usize = 32;

/// The receive socket's buffer: 4 MiB, some 5000 small packets. The default (212 KiB, a few
/// hundred packets of 64 bytes, each costing a whole buffer) overflows within a fraction of a
/// millisecond at line rate whenever the engine is off its core; the kernel's own vxlan device
/// has no socket to overflow.
pub const RX_BUFFER: usize = 4 << 20;

/// The receive socket: UDP, bound to the local VTEP's address and port, non-blocking, with a
/// receive buffer of [`RX_BUFFER`] (forced past `net.core.rmem_max` when privileged, else as
/// much of it as that limit allows).
pub fn open_rx(local: SocketAddrV4, on: &str) -> Result<UdpSocket, SysError> {
    let sock = UdpSocket::bind(local).map_err(|e| SysError::new("bind(UDP)", on, e))?;
    sock.set_nonblocking(true)
        .map_err(|e| SysError::new("fcntl(O_NONBLOCK)", on, e))?;
    let size = libc::c_int::try_from(RX_BUFFER).unwrap_or(libc::c_int::MAX);
    let set = |opt: libc::c_int| {
        // SAFETY: `size` is a c_int that lives across the call; the kernel copies it.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) != 0 && set(libc::SO_RCVBUF) != 0 {
        return Err(SysError::last("setsockopt(SO_RCVBUF)", on));
    }
    Ok(sock)
}

/// The send socket: raw IPv4, protocol UDP, bound to the local VTEP's address (the source of
/// every packet), non-blocking and close-on-exec, with a filter that accepts nothing.
pub fn open_tx(local: Ipv4Addr, on: &str) -> Result<OwnedFd, SysError> {
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_UDP,
        )
    };
    if fd < 0 {
        return Err(SysError::last("socket(AF_INET, SOCK_RAW, UDP)", on));
    }
    // SAFETY: `fd` was just returned by socket and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // One instruction: return 0 (keep no byte of any packet).
    let mut drop_all = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: drop_all.as_mut_ptr(),
    };
    // SAFETY: `prog` points at a one-instruction program that lives across the call; the
    // kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const prog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(SysError::last("setsockopt(SO_ATTACH_FILTER)", on));
    }
    let addr = sockaddr(local);
    // SAFETY: `addr` is a valid sockaddr_in of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(SysError::last("bind(raw UDP)", on));
    }
    Ok(fd)
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    }
}

/// One received packet: its length, its sender, and whether it was longer than the buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The sender's address.
    pub from: Ipv4Addr,
    /// The packet was longer than the buffer (`MSG_TRUNC`).
    pub truncated: bool,
}

/// Receives up to `bufs.len()` (at most [`MMSG`]) packets from `sock` at once, each into its
/// buffer (used up to its capacity); returns what arrived, in order. `Ok(0)` when nothing waits.
pub fn recv_batch(
    sock: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut [Received; MMSG],
) -> io::Result<usize> {
    let n = bufs.len().min(MMSG);
    // SAFETY: all-zero bytes are valid values of these plain C structs.
    let mut iov: [libc::iovec; MMSG] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut names: [libc::sockaddr_in; MMSG] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MMSG] = unsafe { zeroed() };
    for i in 0..n {
        let b = &mut bufs[i];
        iov[i] = libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.capacity(),
        };
        hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at iovecs covering each buffer's allocated capacity
    // and at sockaddr_in slots, all alive until the call returns; the kernel writes at most
    // those lengths.
    let got = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(0),
            _ => Err(e),
        };
    }
    let got = got as usize;
    for i in 0..got {
        let cap = bufs[i].capacity();
        let len = (hdrs[i].msg_len as usize).min(cap);
        // SAFETY: the kernel wrote `msg_len` bytes (at most the capacity) into the buffer.
        unsafe { bufs[i].set_len(len) };
        out[i] = Received {
            len,
            from: Ipv4Addr::from(u32::from_be(names[i].sin_addr.s_addr)),
            truncated: hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(got)
}

/// One packet to send: the outer UDP and VXLAN headers, then the frame, to `to`.
#[derive(Copy, Clone, Debug)]
pub struct Outgoing<'a> {
    /// The remote VTEP.
    pub to: Ipv4Addr,
    /// UDP header and VXLAN header.
    pub head: &'a [u8],
    /// The inner frame.
    pub frame: &'a [u8],
}

/// Sends up to [`MMSG`] packets through the raw socket `fd` at once; returns how many the
/// kernel took (`Ok(0)` when its buffer is full).
pub fn send_batch(fd: &OwnedFd, packets: &[Outgoing<'_>]) -> io::Result<usize> {
    let n = packets.len().min(MMSG);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero bytes are valid values of these plain C structs.
    let mut iov: [[libc::iovec; 2]; MMSG] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut names: [libc::sockaddr_in; MMSG] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MMSG] = unsafe { zeroed() };
    for (i, p) in packets.iter().take(n).enumerate() {
        names[i] = sockaddr(p.to);
        iov[i] = [
            libc::iovec {
                iov_base: p.head.as_ptr().cast_mut().cast(),
                iov_len: p.head.len(),
            },
            libc::iovec {
                iov_base: p.frame.as_ptr().cast_mut().cast(),
                iov_len: p.frame.len(),
            },
        ];
        hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        hdrs[i].msg_hdr.msg_iov = iov[i].as_mut_ptr();
        hdrs[i].msg_hdr.msg_iovlen = 2;
    }
    // SAFETY: the first `n` headers point at live iovecs over borrowed byte slices the kernel
    // only reads, and at sockaddr_in values; all outlive the call.
    let sent = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(0),
            _ => Err(e),
        };
    }
    Ok(sent as usize)
}
