//! TAP devices with offloads: `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, opened non-blocking and
//! close-on-exec, brought up on creation. Each frame read or written starts with a
//! `virtio_net_hdr`, and `TUNSETOFFLOAD` tells the kernel that l2sw takes checksums left to
//! complete and TCP (and, where the kernel has it, UDP) super-frames, so a workload on a TAP
//! port keeps its offloads as on a veth. Not persistent: the device disappears when the
//! descriptor closes.
//!
//! Written against `/dev/net/tun` directly rather than through `tun-tap`, which cannot ask
//! for `IFF_VNET_HDR` or set offloads; the ioctls are those of `drivers/net/tun.c`.
//!
//! A [`TapRing`] reads or writes a batch of frames with one system call (an io_uring over the
//! device's descriptor) where [`TapDevice::recv`] and [`TapDevice::send`] take one each.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::uring::{FIXED, NOWAIT, Uring};
use super::{SysError, link};
use crate::port::TxFrame;
use crate::wire::VNET_HDR_LEN;

const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// How long creating a TAP device waits for a device of the same name that is still
/// attached (EBUSY) to go, e.g. one held by the io_uring of a daemon just killed.
const BUSY_PATIENCE: Duration = Duration::from_secs(2);
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_TSO_ECN: libc::c_uint = 0x08;
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

/// The offloads a TAP device was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapOffloads {
    /// Checksums left to complete, and TCP super-frames (TSO4/6, with ECN).
    pub tso: bool,
    /// UDP super-frames (USO4/6), where the kernel knows them.
    pub uso: bool,
}

/// A TAP device l2sw created.
#[derive(Debug)]
pub struct TapDevice {
    fd: OwnedFd,
    name: String,
    offloads: TapOffloads,
}

impl TapDevice {
    /// Creates TAP device `name` in the calling thread's namespace with offloads on, and
    /// brings it up.
    pub fn create(name: &str) -> Result<TapDevice, SysError> {
        let mut req = link::ifreq(name)?;
        // SAFETY: a plain open(2) of a NUL-terminated path; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(SysError::last("open /dev/net/tun for", name));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        // A device of that name still attached to a file says EBUSY. After a daemon is killed
        // its TAP devices go with its files, but an io_uring that holds one is torn down
        // later by a kernel worker: give a dying holder a moment before refusing.
        let deadline = Instant::now() + BUSY_PATIENCE;
        loop {
            // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is, for the call's
            // length.
            if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &raw mut req) } == 0 {
                break;
            }
            let e = SysError::last("create TAP (TUNSETIFF)", name);
            if e.source.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let hdr = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int, which `hdr` is.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETVNETHDRSZ, &raw const hdr) } < 0 {
            return Err(SysError::last("TUNSETVNETHDRSZ", name));
        }
        let offloads = set_offloads(&fd, name)?;
        link::set_up(name)?;
        Ok(TapDevice {
            fd,
            name: name.to_owned(),
            offloads,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offloads the kernel accepted.
    pub fn offloads(&self) -> TapOffloads {
        self.offloads
    }

    /// Reads one frame: its `virtio_net_hdr` into `hdr`, the frame into `buf` (replacing its
    /// contents, cut to `max` bytes, without zeroing `buf` first). Returns the frame's length,
    /// or `max + 1` for a frame longer than `max` (the device does not say how long), or
    /// `Ok(None)` when none is waiting.
    pub fn recv(
        &self,
        hdr: &mut [u8; VNET_HDR_LEN],
        buf: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<Option<usize>> {
        buf.clear();
        buf.reserve(max + 1);
        let room = buf.spare_capacity_mut();
        let len = room.len().min(max + 1);
        let iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: VNET_HDR_LEN,
            },
            libc::iovec {
                iov_base: room.as_mut_ptr().cast(),
                iov_len: len,
            },
        ];
        // SAFETY: both iovecs point at memory valid for writes of their lengths (`hdr`, and
        // `len` bytes of `buf`'s spare capacity) that outlives the call.
        let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        // SAFETY: readv returned `n`, having written into `hdr` and `len <= max + 1` bytes
        // of the spare capacity (`max + 1` of them: reserved above).
        Ok(Some(unsafe { read_len(buf, n as usize, max) }))
    }

    /// Writes one frame behind its `virtio_net_hdr`; `Ok(false)` when it was not taken (queue
    /// full, the device not up on its side yet: `EIO`, or a header the kernel refuses:
    /// `EINVAL`).
    pub fn send(&self, hdr: &[u8; VNET_HDR_LEN], frame: &[u8]) -> io::Result<bool> {
        let iov = [
            libc::iovec {
                iov_base: hdr.as_ptr().cast_mut().cast(),
                iov_len: VNET_HDR_LEN,
            },
            libc::iovec {
                iov_base: frame.as_ptr().cast_mut().cast(),
                iov_len: frame.len(),
            },
        ];
        // SAFETY: both iovecs point at memory valid for reads of their lengths that outlives
        // the call; the kernel only reads them.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        if n < 0 {
            return written(io::Error::last_os_error());
        }
        Ok(true)
    }
}

/// Sets `buf`'s length after a read that offered `max + 1` bytes of its spare capacity and
/// returned `n` (header included), and returns the frame's length, or `max + 1` when it was
/// longer than `max` (then cut to `max` bytes). A read from a TAP device returns at most what
/// it was offered (`tun_chr_read_iter`), so the byte beyond `max` is what tells a frame that
/// was cut, and how much longer it was is not known.
///
/// # Safety
///
/// The kernel must have written `n - VNET_HDR_LEN` bytes (at most `max + 1`) into `buf`'s
/// spare capacity.
unsafe fn read_len(buf: &mut Vec<u8>, n: usize, max: usize) -> usize {
    let len = n.saturating_sub(VNET_HDR_LEN).min(max + 1);
    // SAFETY: the caller guarantees these bytes were initialised, within the capacity.
    unsafe { buf.set_len(len.min(max)) };
    len
}

/// What a failed write means: `Ok(false)`, not taken (queue full, the device not up on its
/// side yet: `EIO`, or a header the kernel refuses: `EINVAL`), or a real error.
fn written(e: io::Error) -> io::Result<bool> {
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EIO | libc::EINVAL | libc::ENOBUFS) => Ok(false),
        _ => Err(e),
    }
}

/// The most frames a [`TapRing`] reads or writes with one system call.
pub const RING_BATCH: usize = 32;

/// What one read of a batch brought.
#[derive(Debug, Default)]
pub enum Got {
    /// Nothing (no frame was waiting, or the slot was not read).
    #[default]
    Nothing,
    /// A frame, of this length on the device: more than the buffer holds when it was cut.
    Frame(usize),
    /// The read failed.
    Failed(io::Error),
}

/// A buffer of a batched read: one frame's `virtio_net_hdr` and bytes, and what the read got.
#[derive(Debug, Default)]
pub struct RxSlot {
    /// The frame's `virtio_net_hdr`.
    pub hdr: [u8; VNET_HDR_LEN],
    /// The frame (cut to the bytes the read offered).
    pub buf: Vec<u8>,
    /// What the read got.
    pub got: Got,
}

/// Batched reads and writes on a TAP device: an io_uring over its descriptor, each batch
/// submitted with one `io_uring_enter`. Each read or write asks not to wait, so it runs inline
/// during the submission and nothing stays in flight (see [`super::uring`]). Frames come out in the device's order: the reads of a batch run one
/// after the other, in the order of the slots.
#[derive(Debug)]
pub struct TapRing {
    ring: Uring,
}

impl TapRing {
    /// A ring over `dev`'s descriptor (which it keeps open while it lives), once a read of
    /// nothing showed that the kernel reads the device without waiting.
    pub fn new(dev: &TapDevice) -> Result<TapRing, SysError> {
        let mut ring = Uring::new(dev.as_fd(), RING_BATCH as u32, dev.name())?;
        let iov = [EMPTY_IOV];
        let probe = io_uring::opcode::Readv::new(FIXED, iov.as_ptr(), 1)
            .offset(u64::MAX)
            .rw_flags(NOWAIT)
            .build();
        // SAFETY: the read has no room to write into (tun returns at once, taking no frame);
        // `iov` lives until `run` returns.
        let res = unsafe { ring.run([probe]) }.map(|r| r.first().copied());
        match res {
            Ok(Some(r)) if r >= 0 => Ok(TapRing { ring }),
            Ok(r) => Err(SysError::new(
                "io_uring read without waiting (RWF_NOWAIT)",
                dev.name(),
                io::Error::from_raw_os_error(r.map_or(libc::EIO, |r| -r)),
            )),
            Err(e) => Err(SysError::new("io_uring_enter", dev.name(), e)),
        }
    }

    /// How many reads or writes one call submits at most.
    pub fn capacity(&self) -> usize {
        self.ring.capacity().min(RING_BATCH)
    }

    /// Whether the ring still works: it is given up after a submission failed for good.
    pub fn is_up(&self) -> bool {
        self.ring.is_up()
    }

    /// Reads one frame into each of `slots` (at most [`TapRing::capacity`]), each buffer's
    /// contents replaced by up to `max` bytes, and records what each got. An error means the
    /// ring is given up (the slots' buffers are then left to it: empty afterwards); the
    /// device itself still works.
    pub fn recv(&mut self, slots: &mut [RxSlot], max: usize) -> io::Result<()> {
        let n = slots.len().min(self.capacity());
        let slots = &mut slots[..n];
        let mut iov = [[EMPTY_IOV; 2]; RING_BATCH];
        for (s, iov) in slots.iter_mut().zip(&mut iov) {
            s.got = Got::Nothing;
            s.buf.clear();
            s.buf.reserve(max + 1);
            let spare = s.buf.spare_capacity_mut();
            *iov = [
                libc::iovec {
                    iov_base: s.hdr.as_mut_ptr().cast(),
                    iov_len: VNET_HDR_LEN,
                },
                libc::iovec {
                    iov_base: spare.as_mut_ptr().cast(),
                    iov_len: spare.len().min(max + 1),
                },
            ];
        }
        let entries = iov[..n].iter().map(|v| {
            io_uring::opcode::Readv::new(FIXED, v.as_ptr(), 2)
                .offset(u64::MAX)
                .rw_flags(NOWAIT)
                .build()
        });
        // SAFETY: each entry reads into one slot's header and `max + 1` bytes of its
        // buffer's spare capacity (reserved above), through `iov`; the slots are borrowed mutably
        // and `iov` lives until `run` returns, after every read completed. Reads with NOWAIT
        // on the registered descriptor complete inline.
        match unsafe { self.ring.run(entries) } {
            Ok(res) => {
                for (s, &r) in slots.iter_mut().zip(res) {
                    s.got = match usize::try_from(r) {
                        // SAFETY: the read returned `r` bytes into the iovecs set up above.
                        Ok(r) => Got::Frame(unsafe { read_len(&mut s.buf, r, max) }),
                        Err(_) if r == -libc::EAGAIN => Got::Nothing,
                        Err(_) => Got::Failed(io::Error::from_raw_os_error(-r)),
                    };
                }
                Ok(())
            }
            Err(e) => {
                // A read the ring still holds may write into these buffers: leave them to it.
                for s in slots {
                    std::mem::forget(std::mem::take(&mut s.buf));
                }
                Err(e)
            }
        }
    }

    /// Writes `frames`, each behind the `virtio_net_hdr` of its metadata, at most
    /// [`TapRing::capacity`] per system call; returns how many were taken (those refused are
    /// counted as by [`TapDevice::send`]). An error from the ring means it is given up, and
    /// how many of the frames went out is unknown.
    pub fn send(&mut self, frames: &[TxFrame<'_>]) -> io::Result<usize> {
        let mut taken = 0;
        for chunk in frames.chunks(self.capacity().max(1)) {
            let mut hdr = [[0u8; VNET_HDR_LEN]; RING_BATCH];
            let mut iov = [[EMPTY_IOV; 2]; RING_BATCH];
            for ((f, h), iov) in chunk.iter().zip(&mut hdr).zip(&mut iov) {
                *h = f.meta.to_vnet(f.frame);
                *iov = [
                    libc::iovec {
                        iov_base: h.as_mut_ptr().cast(),
                        iov_len: VNET_HDR_LEN,
                    },
                    libc::iovec {
                        iov_base: f.frame.as_ptr().cast_mut().cast(),
                        iov_len: f.frame.len(),
                    },
                ];
            }
            let entries = iov[..chunk.len()].iter().map(|v| {
                io_uring::opcode::Writev::new(FIXED, v.as_ptr(), 2)
                    .offset(u64::MAX)
                    .rw_flags(NOWAIT)
                    .build()
            });
            // SAFETY: each entry writes from one header of `hdr` and one frame, through
            // `iov`; all three live until `run` returns, after every write completed, and the
            // kernel only reads them. Writes with NOWAIT on the registered descriptor complete
            // inline.
            let res = unsafe { self.ring.run(entries) }?;
            let mut failed = None;
            for &r in res {
                if r >= 0 {
                    taken += 1;
                } else if let Err(e) = written(io::Error::from_raw_os_error(-r)) {
                    failed.get_or_insert(e);
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(taken)
    }
}

const EMPTY_IOV: libc::iovec = libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
};

/// Asks for checksum, TSO and USO offloads; a kernel without USO refuses the whole set
/// (`EINVAL`), and gets it again without.
fn set_offloads(fd: &OwnedFd, name: &str) -> Result<TapOffloads, SysError> {
    let tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    for (flags, uso) in [(tso | TUN_F_USO4 | TUN_F_USO6, true), (tso, false)] {
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, libc::c_ulong::from(flags)) } == 0 {
            return Ok(TapOffloads { tso: true, uso });
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    Err(SysError::last("TUNSETOFFLOAD", name))
}

impl AsFd for TapDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
