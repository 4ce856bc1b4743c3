//! AF_PACKET sockets bound to one interface: whole Ethernet frames in and out, bypassing the
//! interface's own protocol stack. This is the plain socket (one frame per call); the
//! TPACKET_V3 rings of the AF_PACKET port build on it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::SysError;
use crate::port::TxFrame;
use crate::wire::{Fault, Meta, VNET_HDR_LEN};

// The kernel's ABI (linux/if_packet.h, linux/if_ether.h) comes from `libc`.
use libc::{
    PACKET_AUXDATA, PACKET_QDISC_BYPASS, PACKET_VNET_HDR, TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID, tpacket_auxdata,
};

/// `ETH_P_ALL`, every protocol, as the 16-bit value `sockaddr_ll` and `socket` take.
const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;

/// The 4 bytes of the VLAN tag the kernel took out of a received frame, if it did.
fn vlan_tag(msg: &libc::msghdr) -> Option<[u8; 4]> {
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR stay within its control
    // buffer and return null past the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers returned by CMSG_* lie inside the control buffer.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_PACKET && hdr.cmsg_type == PACKET_AUXDATA {
            // SAFETY: a PACKET_AUXDATA message carries a tpacket_auxdata; read unaligned.
            let aux: tpacket_auxdata =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            if aux.tp_status & TP_STATUS_VLAN_VALID == 0 {
                return None;
            }
            let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                aux.tp_vlan_tpid
            } else {
                0x8100
            };
            let mut tag = [0u8; 4];
            tag[..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..].copy_from_slice(&aux.tp_vlan_tci.to_be_bytes());
            return Some(tag);
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

/// Whether `e` says a frame was longer than the interface takes (`EMSGSIZE`).
pub fn too_long(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMSGSIZE)
}

/// A membership a packet socket holds on its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Membership {
    /// Promiscuous mode.
    Promiscuous,
    /// Every multicast.
    AllMulticast,
    /// One MAC in the interface's unicast list.
    Unicast([u8; 6]),
    /// One group in the interface's multicast list.
    Multicast([u8; 6]),
}

/// An AF_PACKET raw socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifname: String,
    ifindex: i32,
}

/// The index of interface `name` in the calling thread's namespace.
pub fn if_index(name: &str) -> Result<i32, SysError> {
    let c = CString::new(name).map_err(|_| {
        SysError::new(
            "if_nametoindex",
            name,
            io::Error::new(io::ErrorKind::InvalidInput, "interface name contains NUL"),
        )
    })?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(SysError::last("if_nametoindex", name));
    }
    i32::try_from(idx).map_err(|_| {
        SysError::new(
            "if_nametoindex",
            name,
            io::Error::other("interface index out of range"),
        )
    })
}

impl PacketSocket {
    /// Opens a non-blocking, close-on-exec socket receiving every frame that arrives on
    /// `ifname` (frames the host itself sends there are ignored) and sending frames out of it.
    pub fn open(ifname: &str) -> Result<PacketSocket, SysError> {
        PacketSocket::bound(ifname, ETH_P_ALL)
    }

    /// Opens a non-blocking, close-on-exec socket that only sends frames out of `ifname`:
    /// bound with protocol 0, it receives nothing (the transmit ring's socket).
    pub fn open_sender(ifname: &str) -> Result<PacketSocket, SysError> {
        PacketSocket::bound(ifname, 0)
    }

    fn bound(ifname: &str, protocol: u16) -> Result<PacketSocket, SysError> {
        let ifindex = if_index(ifname)?;
        let proto = protocol.to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(SysError::last("socket(AF_PACKET)", ifname));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = PacketSocket {
            fd,
            ifname: ifname.to_owned(),
            ifindex,
        };
        if protocol != 0 {
            sock.set_int(
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                1,
                "PACKET_IGNORE_OUTGOING",
            )?;
            sock.set_int(libc::SOL_PACKET, PACKET_AUXDATA, 1, "PACKET_AUXDATA")?;
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value to fill in.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SysError::last("bind(AF_PACKET)", ifname));
        }
        Ok(sock)
    }

    pub(crate) fn set_int(
        &self,
        level: i32,
        opt: i32,
        value: i32,
        what: &'static str,
    ) -> Result<(), SysError> {
        // SAFETY: `value` lives across the call and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                opt,
                (&raw const value).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SysError::last(what, &self.ifname));
        }
        Ok(())
    }

    /// Sets the receive buffer to `bytes` (`SO_RCVBUFFORCE`, beyond `rmem_max`, with
    /// CAP_NET_ADMIN; `SO_RCVBUF` otherwise), so bursts wait in the socket instead of being
    /// dropped while the loop is busy.
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<(), SysError> {
        let v = i32::try_from(bytes).unwrap_or(i32::MAX);
        self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v, "SO_RCVBUFFORCE")
            .or_else(|_| self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, v, "SO_RCVBUF"))
    }

    /// Sets the send buffer to `bytes` (`SO_SNDBUFFORCE`, beyond `wmem_max`, with
    /// CAP_NET_ADMIN; `SO_SNDBUF` otherwise): frames in flight are charged to it.
    pub fn set_sndbuf(&self, bytes: usize) -> Result<(), SysError> {
        let v = i32::try_from(bytes).unwrap_or(i32::MAX);
        self.set_int(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v, "SO_SNDBUFFORCE")
            .or_else(|_| self.set_int(libc::SOL_SOCKET, libc::SO_SNDBUF, v, "SO_SNDBUF"))
    }

    /// Sends frames straight to the driver, bypassing the interface's queueing discipline
    /// (`PACKET_QDISC_BYPASS`): a full driver queue then drops the frame instead of queueing.
    pub fn set_qdisc_bypass(&self) -> Result<(), SysError> {
        self.set_int(
            libc::SOL_PACKET,
            PACKET_QDISC_BYPASS,
            1,
            "PACKET_QDISC_BYPASS",
        )
    }

    /// Makes every frame this socket receives or sends start with a `virtio_net_hdr`
    /// (`PACKET_VNET_HDR`): offloads pass through. Set before any ring.
    pub fn set_vnet_hdr(&self) -> Result<(), SysError> {
        self.set_int(libc::SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR")
    }

    /// Puts the interface in promiscuous mode for as long as the socket lives
    /// (`PACKET_MR_PROMISC`, counted by the kernel, undone when the socket closes).
    pub fn set_promiscuous(&self) -> Result<(), SysError> {
        self.membership(true, Membership::Promiscuous)
    }

    /// Adds (`add`) or drops a membership of the interface for as long as the socket lives:
    /// promiscuity, all-multicast, or one address in its unicast or multicast list
    /// (`PACKET_ADD_MEMBERSHIP` / `PACKET_DROP_MEMBERSHIP`). This is how a port filters in the
    /// NIC, as macvlan adds its MACs to its lower device.
    pub fn membership(&self, add: bool, m: Membership) -> Result<(), SysError> {
        // SAFETY: packet_mreq is plain data; all-zero is valid.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = self.ifindex;
        let (kind, addr) = match m {
            Membership::Promiscuous => (libc::PACKET_MR_PROMISC, None),
            Membership::AllMulticast => (libc::PACKET_MR_ALLMULTI, None),
            Membership::Unicast(a) => (libc::PACKET_MR_UNICAST, Some(a)),
            Membership::Multicast(a) => (libc::PACKET_MR_MULTICAST, Some(a)),
        };
        mreq.mr_type = kind as u16;
        if let Some(a) = addr {
            mreq.mr_alen = 6;
            mreq.mr_address[..6].copy_from_slice(&a);
        }
        let (opt, what) = if add {
            (libc::PACKET_ADD_MEMBERSHIP, "PACKET_ADD_MEMBERSHIP")
        } else {
            (libc::PACKET_DROP_MEMBERSHIP, "PACKET_DROP_MEMBERSHIP")
        };
        // SAFETY: `mreq` lives across the call and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                opt,
                (&raw const mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SysError::last(what, &self.ifname));
        }
        Ok(())
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Sends one whole frame. `Ok(false)` when the interface's queue is full and the frame
    /// was not sent (`EAGAIN`, `ENOBUFS`).
    pub fn send(&self, frame: &[u8]) -> io::Result<bool> {
        // SAFETY: `frame` is valid for reads of its length for the duration of the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Sends `frames` with as few system calls as possible (`sendmmsg`, 64 frames a call);
    /// returns how many were sent before the interface's queue filled up.
    pub fn send_many(&self, frames: &[&[u8]]) -> io::Result<usize> {
        const AT_ONCE: usize = 64;
        let mut sent = 0;
        for chunk in frames.chunks(AT_ONCE) {
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; AT_ONCE];
            // SAFETY: mmsghdr is plain data; all-zero is valid before the fields are set.
            let mut msgs: [libc::mmsghdr; AT_ONCE] = unsafe { std::mem::zeroed() };
            for ((iov, msg), f) in iovs.iter_mut().zip(msgs.iter_mut()).zip(chunk) {
                iov.iov_base = f.as_ptr().cast_mut().cast();
                iov.iov_len = f.len();
                msg.msg_hdr.msg_iov = iov;
                msg.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `chunk.len()` entries of `msgs` point at `iovs`, which point at
            // the frames; all outlive the call, and the kernel only reads them.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    chunk.len() as u32,
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
                {
                    return Ok(sent);
                }
                return Err(e);
            }
            sent += n as usize;
            if (n as usize) < chunk.len() {
                return Ok(sent);
            }
        }
        Ok(sent)
    }

    /// Receives one frame into `buf`, replacing its contents, without zeroing `buf` first:
    /// `Ok(false)` when none is waiting. Frames longer than `max` are cut to `max` bytes.
    ///
    /// Interfaces that parse VLAN tags on receive (veth among them) hand AF_PACKET the frame
    /// without its tag and the tag in metadata; the tag is put back where it was, so the switch
    /// sees the frame as it was on the wire (`PACKET_AUXDATA`).
    pub fn recv_into(&self, buf: &mut Vec<u8>, max: usize) -> io::Result<bool> {
        buf.clear();
        buf.reserve(max + 4);
        let room = buf.spare_capacity_mut();
        let len = room.len().min(max);
        let mut iov = libc::iovec {
            iov_base: room.as_mut_ptr().cast(),
            iov_len: len,
        };
        // Room for one cmsghdr with a tpacket_auxdata, 8-byte aligned.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is valid before the fields are set.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: `msg` points at `iov` (valid for writes of `len` bytes of `buf`'s spare
        // capacity) and at `control`, all of which outlive the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(false);
            }
            return Err(e);
        }
        let n = n as usize;
        // SAFETY: the kernel initialised the first `n <= len <= capacity` bytes.
        unsafe { buf.set_len(n) };
        if let Some(tag) = vlan_tag(&msg)
            && n >= 12
        {
            buf.extend_from_slice(&[0; 4]);
            buf.copy_within(12..n, 16);
            buf[12..16].copy_from_slice(&tag);
        }
        Ok(true)
    }

    /// On a socket with [`PacketSocket::set_vnet_hdr`]: sends one frame behind the
    /// `virtio_net_hdr` its metadata makes (a super-frame whole: the kernel segments it where
    /// the far end needs). `Ok(false)` when the interface's queue is full.
    pub fn send_vnet(&self, tx: &TxFrame<'_>) -> io::Result<bool> {
        Ok(self.send_many_vnet(std::slice::from_ref(tx))? == 1)
    }

    /// [`PacketSocket::send_vnet`] for several frames, with as few system calls as possible
    /// (`sendmmsg`, 64 frames a call); returns how many were sent before the interface's queue
    /// filled up. A frame the interface refuses as too long is skipped (and not counted).
    pub fn send_many_vnet(&self, frames: &[TxFrame<'_>]) -> io::Result<usize> {
        const AT_ONCE: usize = 64;
        let mut sent = 0;
        for chunk in frames.chunks(AT_ONCE) {
            let mut hdrs = [[0u8; VNET_HDR_LEN]; AT_ONCE];
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 2 * AT_ONCE];
            // SAFETY: mmsghdr is plain data; all-zero is valid before the fields are set.
            let mut msgs: [libc::mmsghdr; AT_ONCE] = unsafe { std::mem::zeroed() };
            for (h, tx) in hdrs.iter_mut().zip(chunk) {
                *h = tx.meta.to_vnet(tx.frame);
            }
            for (((iov, msg), h), tx) in iovs
                .chunks_exact_mut(2)
                .zip(msgs.iter_mut())
                .zip(&hdrs)
                .zip(chunk)
            {
                iov[0].iov_base = h.as_ptr().cast_mut().cast();
                iov[0].iov_len = VNET_HDR_LEN;
                iov[1].iov_base = tx.frame.as_ptr().cast_mut().cast();
                iov[1].iov_len = tx.frame.len();
                msg.msg_hdr.msg_iov = iov.as_mut_ptr();
                msg.msg_hdr.msg_iovlen = 2;
            }
            let mut done = 0;
            while done < chunk.len() {
                // SAFETY: entries `done..chunk.len()` of `msgs` point at `iovs`, which point at
                // `hdrs` and the frames; all outlive the call, and the kernel only reads them.
                let n = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        msgs.as_mut_ptr().add(done),
                        (chunk.len() - done) as u32,
                        0,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS)
                    {
                        return Ok(sent);
                    }
                    if too_long(&e) || e.raw_os_error() == Some(libc::EINVAL) {
                        // This frame only: the interface or the header refused it.
                        done += 1;
                        continue;
                    }
                    return Err(e);
                }
                sent += n as usize;
                done += n as usize;
            }
        }
        Ok(sent)
    }

    /// On a socket with [`PacketSocket::set_vnet_hdr`]: receives one frame into `buf`,
    /// replacing its contents, and returns its metadata; `Ok(None)` when none is waiting. A
    /// frame longer than `max` is cut and marked [`Fault::Truncated`]. A VLAN tag the
    /// interface took out is put back, and the offsets moved with it.
    pub fn recv_vnet_into(&self, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Meta>> {
        let mut hdr = [0u8; VNET_HDR_LEN];
        buf.clear();
        buf.reserve(max + 4);
        let room = buf.spare_capacity_mut();
        let len = room.len().min(max);
        let mut iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: VNET_HDR_LEN,
            },
            libc::iovec {
                iov_base: room.as_mut_ptr().cast(),
                iov_len: len,
            },
        ];
        // Room for one cmsghdr with a tpacket_auxdata, 8-byte aligned.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is valid before the fields are set.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 2;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: `msg` points at `iov` (`hdr`, and `len` bytes of `buf`'s spare capacity) and
        // at `control`, all of which outlive the call. MSG_TRUNC: return the frame's real
        // length.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        let real = (n as usize).saturating_sub(VNET_HDR_LEN);
        let got = real.min(len);
        // SAFETY: the kernel initialised the first `got <= len <= capacity` bytes.
        unsafe { buf.set_len(got) };
        let mut meta = if (n as usize) < VNET_HDR_LEN {
            Meta::from_vnet_or_fault(&hdr[..n as usize])
        } else if got < real {
            Meta::faulty(Fault::Truncated {
                len: u32::try_from(real).unwrap_or(u32::MAX),
            })
        } else {
            Meta::from_vnet_or_fault(&hdr)
        };
        if let Some(tag) = vlan_tag(&msg)
            && got >= 12
        {
            buf.extend_from_slice(&[0; 4]);
            buf.copy_within(12..got, 16);
            buf[12..16].copy_from_slice(&tag);
            meta = meta.shifted(4);
        }
        Ok(Some(meta))
    }

    /// Receives one frame into `buf`; `Ok(None)` when none is waiting. Frames longer than
    /// `buf` are cut to its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is valid for writes of its length for the duration of the call.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some(n as usize))
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
