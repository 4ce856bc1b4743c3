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

/// A source and sink of whole Ethernet frames.
pub trait Port {
    /// The port's name (the interface name for real ports).
    fn name(&self) -> &str;

    /// Receives one frame into `buf`, replacing its contents. `Ok(false)` when nothing is
    /// waiting; never blocks.
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool>;

    /// Queues one frame for transmission. `Ok(false)` when the TX queue is full and the frame
    /// was dropped (the caller counts it); never blocks.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool>;

    /// Queues several frames, in order; returns how many were taken (the others, refused by
    /// a full TX queue, are dropped and counted by the caller). Never blocks.
    fn send_batch(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        for (i, f) in frames.iter().enumerate() {
            if !self.send(f)? {
                return Ok(i);
            }
        }
        Ok(frames.len())
    }

    /// Programs the interface to accept what `filter` accepts (`None`: everything), as the
    /// switch derives it (a macvlan uplink takes its sub-interfaces' MACs and groups). Ports
    /// without an interface filter ignore it.
    fn program_filter(&mut self, filter: Option<&RxFilter>) -> io::Result<()> {
        let _ = filter;
        Ok(())
    }

    /// A descriptor that becomes readable when frames wait; `None` for ports that must be
    /// polled (in-memory ports).
    fn readiness(&self) -> Option<BorrowedFd<'_>>;
}
