//! Ports: where frames enter and leave. The [`Port`] trait is small enough for an in-memory
//! implementation ([`mem`]) and for wrappers (tracing, fault injection); the AF_PACKET backend
//! ([`af_packet`]) implements the same trait. Frames are read into buffers the caller owns and
//! reuses, so a port allocates nothing per frame.

pub mod af_packet;
pub mod mem;
#[allow(unsafe_code)]
pub mod sys;
pub mod tap;

use std::io;
use std::os::fd::BorrowedFd;

use crate::fwd::RxFilter;
use crate::wire::Meta;

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

    /// A descriptor that becomes readable when frames wait; `None` for ports that must be
    /// polled (in-memory ports).
    fn readiness(&self) -> Option<BorrowedFd<'_>>;
}
