//! One io_uring per descriptor, used as a batching system call: a call queues up to
//! [`Uring::capacity`] requests on the descriptor, submits them with one `io_uring_enter` and
//! returns only once every one of them has completed, so no request outlives the memory it
//! names and nothing is left in flight between calls.
//!
//! Reads and writes must ask not to wait (`RWF_NOWAIT`, [`NOWAIT`]): io_uring then runs each
//! inline during the submission and completes it with `-EAGAIN` rather than waiting for the
//! file (`REQ_F_NOWAIT`: no poll armed, no worker thread), so waiting for the completions does
//! not sleep. (`O_NONBLOCK` on the descriptor is not enough: for a file that supports
//! non-blocking I/O, io_uring arms a poll and completes the read when data comes.) Should a
//! request still not complete, the call gives the ring up after [`PATIENCE`] rather than
//! block the caller. The descriptor is registered with the ring (a fixed file: no file lookup
//! per request), which holds a reference to the open file until the ring is dropped. The ring
//! unregisters it before it closes: a ring's teardown runs later in a kernel worker, and the
//! file (a TAP device, which lives as long as it is open) would outlive its descriptor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use io_uring::{IoUring, squeue, types};

use super::SysError;

/// How often an `io_uring_enter` that the kernel could not serve for the moment (`EINTR`,
/// `EAGAIN`, `EBUSY`) is tried again before the ring is given up.
const RETRIES: usize = 16;

/// The registered descriptor, as requests name it.
pub const FIXED: types::Fixed = types::Fixed(0);

/// The `rw_flags` of every read and write: fail with `EAGAIN` rather than wait.
pub const NOWAIT: i32 = libc::RWF_NOWAIT;

/// How long a call waits for requests that did not complete during their submission (none
/// should) before it gives the ring up.
pub const PATIENCE: Duration = Duration::from_millis(100);

/// How long one `io_uring_enter` waits, within [`PATIENCE`].
const WAIT: types::Timespec = types::Timespec::new().nsec(10_000_000);

/// An io_uring over one descriptor, for batches of requests that complete inline.
pub struct Uring {
    /// `None` once given up (a submission failed for good): the requests still queued were
    /// dropped with it, never to be issued.
    ring: Option<IoUring>,
    /// The result of each request of the last call, by position.
    res: Vec<i32>,
    capacity: usize,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("capacity", &self.capacity)
            .field("up", &self.ring.is_some())
            .finish()
    }
}

impl Uring {
    /// A ring for batches of up to `capacity` requests on `fd` (registered with it); `on`
    /// names the interface for errors.
    pub fn new(fd: BorrowedFd<'_>, capacity: u32, on: &str) -> Result<Uring, SysError> {
        let ring = IoUring::builder()
            // Every call reaps what it submits: twice the room is never needed, but costs
            // nothing and keeps the completion queue from overflowing whatever happens.
            .setup_cqsize(capacity.saturating_mul(2))
            .build(capacity)
            .map_err(|e| SysError::new("io_uring_setup", on, e))?;
        ring.submitter()
            .register_files(&[fd.as_raw_fd()])
            .map_err(|e| SysError::new("io_uring_register(FILES)", on, e))?;
        let capacity = ring.params().sq_entries() as usize;
        Ok(Uring {
            ring: Some(ring),
            res: vec![0; capacity],
            capacity,
        })
    }

    /// The most requests one call takes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the ring still works (it is given up after a submission that failed for good).
    pub fn is_up(&self) -> bool {
        self.ring.is_some()
    }

    /// Submits `entries` (at most [`Uring::capacity`]; their `user_data` is set to their
    /// position) and waits for all their completions; returns each one's result, by position
    /// (`-errno` for a failed request).
    ///
    /// An error means the ring could not take or complete the requests (out of memory in
    /// the kernel, say); it is then given up: requests not taken yet are dropped with it,
    /// and any taken but not complete (which [`NOWAIT`] does not allow) may
    /// still use their memory, so a caller whose buffers they write must not reuse those.
    ///
    /// # Safety
    ///
    /// Every buffer and `iovec` the entries point at must stay valid (for writes into them,
    /// unaliased) until this returns, and the entries must name the registered descriptor
    /// ([`FIXED`]) with opcodes that complete inline (reads and writes with [`NOWAIT`]).
    pub unsafe fn run(
        &mut self,
        entries: impl IntoIterator<Item = squeue::Entry>,
    ) -> io::Result<&[i32]> {
        let Some(ring) = self.ring.as_mut() else {
            return Err(io::Error::other(
                "io_uring given up after a failed submission",
            ));
        };
        let mut n = 0;
        {
            let mut sq = ring.submission();
            for (i, e) in entries.into_iter().enumerate() {
                let e = e.user_data(i as u64);
                // SAFETY: the caller keeps what the entry points at valid until the request
                // completes, which this call waits for (or gives the ring up).
                if i >= self.capacity || unsafe { sq.push(&e) }.is_err() {
                    break;
                }
                n += 1;
            }
        }
        let mut done = 0;
        let mut tries = 0;
        let mut deadline = None;
        let args = types::SubmitArgs::new().timespec(&WAIT);
        while done < n {
            match ring.submitter().submit_with_args(n - done, &args) {
                Ok(_) => {}
                Err(e)
                    if tries < RETRIES
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
                        ) =>
                {
                    tries += 1;
                }
                Err(e) => {
                    self.give_up();
                    return Err(e);
                }
            }
            for cqe in ring.completion() {
                if let Some(r) = usize::try_from(cqe.user_data())
                    .ok()
                    .and_then(|i| self.res.get_mut(i))
                {
                    *r = cqe.result();
                    done += 1;
                }
            }
            if done < n {
                let now = Instant::now();
                if *deadline.get_or_insert(now + PATIENCE) <= now {
                    self.give_up();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "io_uring requests did not complete",
                    ));
                }
            }
        }
        Ok(&self.res[..n])
    }

    /// Closes the ring, having unregistered the descriptor: the file is then released now,
    /// with the caller's own descriptor, not whenever the kernel gets round to the ring.
    fn give_up(&mut self) {
        if let Some(ring) = self.ring.take() {
            // Nothing to do if it fails: the file is then released with the ring.
            let _ = ring.submitter().unregister_files();
        }
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        self.give_up();
    }
}
