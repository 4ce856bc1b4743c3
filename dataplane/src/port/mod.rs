//! Ports: where frames enter and leave. The [`Port`] trait is small enough for an in-memory
//! implementation ([`mem`]) and for wrappers (tracing, fault injection); TAP and AF_PACKET
//! backends implement the same trait.

pub mod mem;
#[allow(unsafe_code)]
pub mod sys;

use std::io;

/// A source and sink of whole Ethernet frames.
pub trait Port {
    /// The port's name (the interface name for real ports).
    fn name(&self) -> &str;

    /// Receives up to `max` frames, appending each to `out`. Returns how many; `Ok(0)` when
    /// nothing is waiting (never blocks).
    fn recv_batch(&mut self, out: &mut Vec<Vec<u8>>, max: usize) -> io::Result<usize>;

    /// Queues one frame for transmission. `Ok(false)` when the TX queue is full and the frame
    /// was dropped (the caller counts it); never blocks.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool>;
}
