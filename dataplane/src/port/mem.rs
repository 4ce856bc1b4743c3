//! An in-memory port pair: what one end sends the other receives, like a veth pair. Bounded,
//! so a slow reader loses frames at the sender (counted) instead of growing without end.
//! Sends into an end can be made to fail ([`MemPort::fail_sends_to_me`]), to test how the
//! engine takes the errors of real ports.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Port, TxFrame};
use crate::wire::Meta;

/// Default queue bound per direction, in frames.
pub const DEFAULT_QUEUE: usize = 4096;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<(Vec<u8>, Meta)>,
    dropped: u64,
    /// The next sends into this queue fail with this OS error, this many times.
    fault: Option<(i32, usize)>,
}

/// One end of an in-memory link.
#[derive(Debug)]
pub struct MemPort {
    name: String,
    rx: Arc<Mutex<Queue>>,
    tx: Arc<Mutex<Queue>>,
    bound: usize,
}

impl MemPort {
    /// A connected pair named `a` and `b`, each direction bounded to [`DEFAULT_QUEUE`].
    pub fn pair(a: &str, b: &str) -> (MemPort, MemPort) {
        MemPort::pair_bounded(a, b, DEFAULT_QUEUE)
    }

    /// A connected pair with `bound` frames per direction.
    pub fn pair_bounded(a: &str, b: &str, bound: usize) -> (MemPort, MemPort) {
        let ab = Arc::new(Mutex::new(Queue::default()));
        let ba = Arc::new(Mutex::new(Queue::default()));
        (
            MemPort {
                name: a.to_owned(),
                rx: Arc::clone(&ba),
                tx: Arc::clone(&ab),
                bound,
            },
            MemPort {
                name: b.to_owned(),
                rx: ab,
                tx: ba,
                bound,
            },
        )
    }

    /// Frames this end sent that the other end's full queue refused.
    pub fn tx_dropped(&self) -> u64 {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }

    /// Fault injection: the next `times` sends of the other end (into this one) fail with
    /// OS error `errno` (`ENOBUFS` as from a full device queue, `ENXIO` as from a deleted
    /// interface, ...) and deliver nothing; the sends after them work again.
    pub fn fail_sends_to_me(&self, errno: i32, times: usize) {
        self.rx.lock().unwrap_or_else(PoisonError::into_inner).fault =
            (times > 0).then_some((errno, times));
    }

    /// Takes every frame waiting at this end.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut q = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        q.frames.drain(..).map(|(f, _)| f).collect()
    }

    /// Takes every frame waiting at this end, with its metadata.
    pub fn drain_with_meta(&mut self) -> Vec<(Vec<u8>, Meta)> {
        let mut q = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        q.frames.drain(..).collect()
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>> {
        let mut q = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(q.frames.pop_front().map(|(f, meta)| {
            buf.clear();
            buf.extend_from_slice(&f);
            meta
        }))
    }

    fn send_one(&mut self, tx: TxFrame<'_>) -> io::Result<bool> {
        let mut q = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((errno, times)) = q.fault {
            q.fault = (times > 1).then_some((errno, times - 1));
            return Err(io::Error::from_raw_os_error(errno));
        }
        if q.frames.len() >= self.bound {
            q.dropped += 1;
            return Ok(false);
        }
        q.frames.push_back((tx.frame.to_vec(), tx.meta));
        Ok(true)
    }

    fn readiness(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_carries_frames_both_ways_and_bounds_queues() {
        let (mut a, mut b) = MemPort::pair_bounded("a", "b", 2);
        assert!(a.send(&[1]).unwrap());
        assert!(a.send(&[2]).unwrap());
        assert!(!a.send(&[3]).unwrap(), "third frame exceeds the bound");
        assert_eq!(a.tx_dropped(), 1);
        let mut got = Vec::new();
        assert_eq!(b.recv(&mut got).unwrap(), Some(Meta::NONE));
        assert_eq!(got, vec![1]);
        assert!(b.recv(&mut got).unwrap().is_some());
        assert_eq!(got, vec![2]);
        assert!(b.send(&[9]).unwrap());
        assert_eq!(a.drain(), vec![vec![9]]);
        assert!(b.recv(&mut got).unwrap().is_none());
    }

    #[test]
    fn injected_send_errors_fail_that_many_sends() {
        let (mut a, b) = MemPort::pair("a", "b");
        b.fail_sends_to_me(libc::ENOBUFS, 2);
        for _ in 0..2 {
            let e = a.send(&[1]).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS));
        }
        assert!(a.send(&[2]).unwrap());
        let mut b = b;
        assert_eq!(b.drain(), vec![vec![2]]);
    }

    #[test]
    fn metadata_travels_beside_the_frame() {
        let (mut a, mut b) = MemPort::pair("a", "b");
        let meta = Meta {
            hdr_len: 54,
            csum_valid: true,
            ..Meta::NONE
        };
        assert!(
            a.send_one(TxFrame {
                frame: &[7; 60],
                meta
            })
            .unwrap()
        );
        let mut got = Vec::new();
        assert_eq!(b.recv(&mut got).unwrap(), Some(meta));
    }
}
