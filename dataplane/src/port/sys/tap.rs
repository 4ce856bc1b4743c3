//! TAP devices through `tun-tap` (`IFF_TAP | IFF_NO_PI`), non-blocking, brought up on creation.
//! Not persistent: the device disappears when the descriptor closes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use tun_tap::{Iface, Mode};

use super::{SysError, link};

/// A TAP device l2sw created.
#[derive(Debug)]
pub struct TapDevice {
    iface: Iface,
}

impl TapDevice {
    /// Creates TAP device `name` in the calling thread's namespace and brings it up.
    pub fn create(name: &str) -> Result<TapDevice, SysError> {
        let iface = Iface::without_packet_info(name, Mode::Tap)
            .map_err(|e| SysError::new("create TAP", name, e))?;
        iface
            .set_non_blocking()
            .map_err(|e| SysError::new("set TAP non-blocking", name, e))?;
        link::set_up(iface.name())?;
        Ok(TapDevice { iface })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// Reads one frame into `buf`; `Ok(None)` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.iface.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes one frame; `Ok(false)` when it was not taken (queue full, or the device is not
    /// up on its side yet: `EIO`).
    pub fn send(&self, frame: &[u8]) -> io::Result<bool> {
        match self.iface.send(frame) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for TapDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor is owned by `self.iface` (a File inside `Iface`) and stays
        // open for as long as `self` lives, which bounds the borrow.
        unsafe { BorrowedFd::borrow_raw(self.iface.as_raw_fd()) }
    }
}
