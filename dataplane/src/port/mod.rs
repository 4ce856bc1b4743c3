//! Ports: where frames enter and leave. The [`Port`] trait is small enough for an in-memory
//! implementation ([`mem`]) and for wrappers (tracing, fault injection); the AF_PACKET backend
//! ([`af_packet`]) implements the same trait. Frames are read into buffers the caller owns and
//! reuses, so a port allocates nothing per frame.

pub mod af_packet;
pub mod mem;
#[allow(unsafe_code)]
pub mod sys;
pub mod tap;
pub mod vxlan;

use std::io;
use std::os::fd::BorrowedFd;

use crate::fwd::RxFilter;
use crate::wire::Meta;

/// What an I/O error on a port means for the port: see [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The port's interface is still there: the frames of that receive or send are lost
    /// (counted), and the port goes on.
    Transient,
    /// The port's interface is gone for good: the port is detached.
    Gone,
}

/// Classifies an error a port's receive or send returned; the one place that decides whether
/// a port is detached.
///
/// Only an interface that vanished is [`ErrorClass::Gone`], as the kernel reports it:
///
/// - `ENXIO`: an AF_PACKET socket whose interface was unregistered (deleted, or its
///   namespace deleted: a veth pair goes whole, so does a veth whose peer was deleted) has
///   its bound index reset to -1 by `packet_notifier` (`NETDEV_UNREGISTER`); `packet_snd`
///   and `tpacket_snd` then find no device and return `-ENXIO`.
/// - `EBADFD`: a TAP descriptor whose device was deleted is detached from it
///   (`tun_detach_all`); `tun_chr_read_iter` and `tun_chr_write_iter` find no device
///   (`tun_get`) and return `-EBADFD`.
/// - `ENODEV`: no such device, from any other path that looks the interface up; `EBADF`:
///   the descriptor itself is no more.
///
/// Everything else is [`ErrorClass::Transient`], among them:
///
/// - `ENETDOWN`: the link was set down. `packet_snd` refuses a device without `IFF_UP`, and
///   `packet_notifier` (`NETDEV_DOWN`) sets the socket's error, which the next receive or
///   send reports once, even after the link came back; `NETDEV_UP` hooks the socket in again,
///   so the port works once the link is up. (An interface being deleted reports `ENETDOWN`
///   once too, before `ENXIO`.)
/// - `ENOBUFS`, `EAGAIN`: a full device queue or socket buffer (`net_xmit_errno` of a qdisc
///   drop, `sock_alloc_send_skb`), under load, on the socket that sends super-frames through
///   the qdisc layer among others; `EINTR`; `ENOMEM`; `EMSGSIZE` and `EINVAL` for one frame.
///
/// An error not named here is transient too: detaching cannot be undone, and a port that
/// keeps failing only loses its own frames, counted.
pub fn classify(e: &io::Error) -> ErrorClass {
    match e.raw_os_error() {
        Some(libc::ENXIO | libc::ENODEV | libc::EBADFD | libc::EBADF) => ErrorClass::Gone,
        _ => ErrorClass::Transient,
    }
}

/// One frame to send, with its metadata (a checksum to complete, a super-frame to segment).
#[derive(Copy, Clone, Debug)]
pub struct TxFrame<'a> {
    /// The frame's bytes.
    pub frame: &'a [u8],
    /// What travels beside them.
    pub meta: Meta,
}

impl<'a> TxFrame<'a> {
    /// A complete frame with nothing left to do.
    pub const fn plain(frame: &'a [u8]) -> TxFrame<'a> {
        TxFrame {
            frame,
            meta: Meta::NONE,
        }
    }
}

/// A source and sink of whole Ethernet frames and their metadata. Every port l2sw has carries
/// the metadata end to end: AF_PACKET and TAP ports as a `virtio_net_hdr`, so the kernel
/// completes checksums and segments super-frames wherever the far end needs it, and the
/// in-memory port beside each frame. No port ever has to segment in software.
pub trait Port {
    /// The port's name (the interface name for real ports).
    fn name(&self) -> &str;

    /// Receives one frame into `buf`, replacing its contents, and returns its metadata;
    /// `Ok(None)` when nothing is waiting. Never blocks.
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>>;

    /// Queues one frame for transmission. `Ok(false)` when the TX queue is full and the frame
    /// was dropped (the caller counts it); never blocks.
    fn send_one(&mut self, tx: TxFrame<'_>) -> io::Result<bool>;

    /// [`Port::send_one`] for a complete frame.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.send_one(TxFrame::plain(frame))
    }

    /// Queues several frames, in order; returns how many were taken (the others, refused by
    /// a full TX queue, are dropped and counted by the caller). Never blocks.
    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> io::Result<usize> {
        let mut taken = 0;
        for f in frames {
            taken += usize::from(self.send_one(*f)?);
        }
        Ok(taken)
    }

    /// Programs the interface to accept what `filter` accepts (`None`: everything), as the
    /// switch derives it (a macvlan uplink takes its sub-interfaces' MACs and groups). Ports
    /// without an interface filter ignore it.
    fn program_filter(&mut self, filter: Option<&RxFilter>) -> io::Result<()> {
        let _ = filter;
        Ok(())
    }

    /// Whether frames wait, if the port can tell without a system call (a receive ring's
    /// status word); `None` when it cannot, and only its descriptor can say. An engine that is
    /// awake reads such ports directly and takes them off its poll set, which spares the
    /// sender of every frame a wake-up call into the engine's epoll.
    fn waiting(&self) -> Option<bool> {
        None
    }

    /// Whether the interface accepts every frame now, whatever filter was programmed: the
    /// kernel made it promiscuous (it cannot filter the unicast addresses programmed, or
    /// something else asked for it). `None` when the port cannot tell (no interface).
    fn promiscuous(&self) -> Option<bool> {
        None
    }

    /// A descriptor that becomes readable when frames wait; `None` for ports that must be
    /// polled (in-memory ports).
    fn readiness(&self) -> Option<BorrowedFd<'_>>;

    /// The overlay port behind this one, if it is one (its remotes and counters).
    fn as_vxlan(&self) -> Option<&vxlan::VxlanPort> {
        None
    }

    /// [`Port::as_vxlan`], to change its remotes.
    fn as_vxlan_mut(&mut self) -> Option<&mut vxlan::VxlanPort> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vanished_interface_is_gone() {
        let os = io::Error::from_raw_os_error;
        for errno in [libc::ENXIO, libc::ENODEV, libc::EBADFD, libc::EBADF] {
            assert_eq!(classify(&os(errno)), ErrorClass::Gone, "errno {errno}");
        }
        for errno in [
            libc::ENOBUFS,
            libc::EAGAIN,
            libc::EWOULDBLOCK,
            libc::EINTR,
            libc::ENETDOWN,
            libc::ENOMEM,
            libc::EMSGSIZE,
            libc::EINVAL,
            libc::EIO,
        ] {
            assert_eq!(classify(&os(errno)), ErrorClass::Transient, "errno {errno}");
        }
        assert_eq!(
            classify(&io::Error::from(io::ErrorKind::WouldBlock)),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(&io::Error::other("no errno")),
            ErrorClass::Transient
        );
    }
}
