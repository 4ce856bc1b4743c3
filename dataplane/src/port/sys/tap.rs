//! TAP devices with offloads: `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, opened non-blocking and
//! close-on-exec, brought up on creation. Each frame read or written starts with a
//! `virtio_net_hdr`, and `TUNSETOFFLOAD` tells the kernel that l2sw takes checksums left to
//! complete and TCP (and, where the kernel has it, UDP) super-frames, so a workload on a TAP
//! port keeps its offloads as on a veth. Not persistent: the device disappears when the
//! descriptor closes.
//!
//! Written against `/dev/net/tun` directly rather than through `tun-tap`, which cannot ask
//! for `IFF_VNET_HDR` or set offloads; the ioctls are those of `drivers/net/tun.c`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{SysError, link};
use crate::wire::VNET_HDR_LEN;

const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
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
        // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is, for the call's length.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &raw mut req) } < 0 {
            return Err(SysError::last("create TAP (TUNSETIFF)", name));
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
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EIO | libc::EINVAL | libc::ENOBUFS) => Ok(false),
                _ => Err(e),
            };
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
