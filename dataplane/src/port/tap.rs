//! A port on a TAP device l2sw creates: the device is the workload's interface itself, frames
//! l2sw writes arrive on it, frames the workload sends on it are read whole, each with a
//! `virtio_net_hdr`, so checksum offload and super-frames pass through as on a veth.
//!
//! Frames are read and written in batches, one system call each (an io_uring, [`TapRing`]),
//! or one `readv`/`writev` a frame where io_uring is not to be had. A batched read may read
//! ahead: frames it brought are handed out by the next [`Port::recv`] calls before the
//! device is read again, so a reader drains the port until `recv` says nothing is waiting,
//! as the engine does, before it waits on [`Port::readiness`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::sys::tap::{Got, RING_BATCH, RxSlot, TapDevice, TapOffloads, TapRing};
use super::sys::{SysError, netns};
use super::{Port, TxFrame};
use crate::wire::{Fault, Meta, SUPER_FRAME_MAX, VNET_HDR_LEN};

/// How a TAP port reads and writes frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// One `readv` or `writev` per frame.
    Syscall,
    /// Batches of reads or writes through an io_uring, one system call each (falling back
    /// to [`Io::Syscall`], with a warning, where the kernel refuses io_uring).
    Uring,
}

/// How a TAP port reads and writes (benchmarks compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How frames are read.
    pub rx: Io,
    /// How frames are written.
    pub tx: Io,
    /// Bytes read for each frame, at least the switch's largest frame and a byte more:
    /// [`SUPER_FRAME_MAX`] by default, so that the super-frames the device's offloads let
    /// through come whole. A longer frame is cut and reported truncated. Batched reads keep
    /// [`RING_BATCH`] buffers of this size per port.
    pub room: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rx: Io::Uring,
            tx: Io::Uring,
            room: SUPER_FRAME_MAX,
        }
    }
}

/// A TAP port.
#[derive(Debug)]
pub struct TapPort {
    ring: Option<Ring>,
    opts: Options,
    dev: TapDevice,
    max_frame: usize,
}

/// The batched side of a port: the ring and the frames read ahead.
#[derive(Debug)]
struct Ring {
    ring: TapRing,
    /// Buffers of the reads; `slots[next..end]` still to hand out.
    slots: Vec<RxSlot>,
    next: usize,
    end: usize,
    /// How many reads the next batch submits: twice what the last one brought, so that a
    /// lone frame costs few empty reads and a stream soon gets whole batches.
    want: usize,
    /// The last batch found the device empty: once its frames are handed out, `recv` says
    /// nothing is waiting without reading again (a frame arriving since makes the descriptor
    /// ready).
    dry: bool,
}

impl TapPort {
    /// Creates TAP device `name` in this process's namespace and brings it up, with the
    /// default [`Options`]; plain frames longer than `max_frame` are dropped by the switch as
    /// oversize.
    pub fn create(name: &str, max_frame: usize) -> Result<TapPort, SysError> {
        TapPort::create_with(name, max_frame, Options::default())
    }

    /// [`TapPort::create`], reading and writing as `opts` says.
    pub fn create_with(name: &str, max_frame: usize, opts: Options) -> Result<TapPort, SysError> {
        let dev = TapDevice::create(name)?;
        let ring = if opts.rx == Io::Uring || opts.tx == Io::Uring {
            match TapRing::new(&dev) {
                Ok(ring) => Some(Ring {
                    slots: (0..ring.capacity()).map(|_| RxSlot::default()).collect(),
                    ring,
                    next: 0,
                    end: 0,
                    want: 2,
                    dry: false,
                }),
                Err(e) => {
                    tracing::warn!(port = name, error = %e, "io_uring unavailable: one readv/writev per frame");
                    None
                }
            }
        } else {
            None
        };
        Ok(TapPort {
            ring,
            opts,
            dev,
            max_frame: max_frame + 1,
        })
    }

    /// Creates TAP device `name` inside the named network namespace `ns`.
    pub fn create_in(ns: &str, name: &str, max_frame: usize) -> Result<TapPort, SysError> {
        TapPort::create_in_with(ns, name, max_frame, Options::default())
    }

    /// [`TapPort::create_in`], reading and writing as `opts` says.
    pub fn create_in_with(
        ns: &str,
        name: &str,
        max_frame: usize,
        opts: Options,
    ) -> Result<TapPort, SysError> {
        netns::run_in(ns, || TapPort::create_with(name, max_frame, opts))?
    }

    /// The offloads the kernel accepted for the device.
    pub fn offloads(&self) -> TapOffloads {
        self.dev.offloads()
    }

    /// Whether frames go through an io_uring (in either direction) rather than one system
    /// call each.
    pub fn batched(&self) -> bool {
        self.ring.is_some()
    }

    /// Room for one frame: as the options say, and at least the switch's largest plain frame
    /// and a byte more (to see that it was longer).
    fn room(&self) -> usize {
        self.opts.room.max(self.max_frame)
    }

    /// Gives the ring up after it failed: the port goes on with one system call per frame.
    fn give_up(&mut self, e: &io::Error) {
        tracing::warn!(port = self.dev.name(), error = %e, "io_uring failed: one readv/writev per frame from now on");
        self.ring = None;
    }

    /// Reads one frame with `readv`.
    fn recv_plain(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>> {
        let mut hdr = [0u8; VNET_HDR_LEN];
        let Some(n) = self.dev.recv(&mut hdr, buf, self.room())? else {
            return Ok(None);
        };
        Ok(Some(meta(&hdr, buf, n)))
    }
}

/// A received frame's metadata: its header's, or the truncation that cut it (the device
/// does not say how long a cut frame was: its length is reported as a byte more than was
/// kept).
fn meta(hdr: &[u8; VNET_HDR_LEN], buf: &[u8], len: usize) -> Meta {
    if len > buf.len() {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        return Meta::faulty(Fault::Truncated { len });
    }
    Meta::from_vnet_or_fault(hdr)
}

impl Port for TapPort {
    fn name(&self) -> &str {
        self.dev.name()
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>> {
        if self.opts.rx != Io::Uring {
            return self.recv_plain(buf);
        }
        let room = self.room();
        let Some(r) = self.ring.as_mut() else {
            return self.recv_plain(buf);
        };
        let mut refilled = false;
        loop {
            while r.next < r.end {
                let s = &mut r.slots[r.next];
                r.next += 1;
                match std::mem::take(&mut s.got) {
                    Got::Nothing => {}
                    Got::Frame(n) => {
                        // The caller's buffer takes the slot's place for a later read.
                        std::mem::swap(buf, &mut s.buf);
                        return Ok(Some(meta(&s.hdr, buf, n)));
                    }
                    Got::Failed(e) => return Err(e),
                }
            }
            if refilled || r.dry {
                r.dry = false;
                return Ok(None);
            }
            let want = r.want.min(r.slots.len());
            if let Err(e) = r.ring.recv(&mut r.slots[..want], room) {
                self.give_up(&e);
                return self.recv_plain(buf);
            }
            let got = r.slots[..want]
                .iter()
                .filter(|s| matches!(s.got, Got::Frame(_)))
                .count();
            r.dry = r.slots[..want]
                .iter()
                .any(|s| matches!(s.got, Got::Nothing));
            r.want = (2 * got).clamp(2, RING_BATCH);
            (r.next, r.end) = (0, want);
            refilled = true;
        }
    }

    fn send_one(&mut self, tx: TxFrame<'_>) -> io::Result<bool> {
        self.dev.send(&tx.meta.to_vnet(tx.frame), tx.frame)
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> io::Result<usize> {
        let ring = match self.ring.as_mut() {
            Some(r) if self.opts.tx == Io::Uring && frames.len() > 1 => &mut r.ring,
            _ => {
                let mut taken = 0;
                for f in frames {
                    taken += usize::from(self.send_one(*f)?);
                }
                return Ok(taken);
            }
        };
        match ring.send(frames) {
            Ok(n) => Ok(n),
            Err(e) if !ring.is_up() => {
                // Which frames went out is unknown: count them all lost rather than send
                // some twice.
                self.give_up(&e);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn readiness(&self) -> Option<BorrowedFd<'_>> {
        Some(self.dev.as_fd())
    }
}
