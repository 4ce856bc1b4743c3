//! A port on a TAP device l2sw creates: the device is the workload's interface itself, frames
//! l2sw writes arrive on it, frames the workload sends on it are read whole.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::Port;
use super::sys::tap::TapDevice;
use super::sys::{SysError, netns};

/// A TAP port.
#[derive(Debug)]
pub struct TapPort {
    dev: TapDevice,
    max_frame: usize,
}

impl TapPort {
    /// Creates TAP device `name` in this process's namespace and brings it up; frames longer
    /// than `max_frame` are cut (and then dropped by the switch as oversize).
    pub fn create(name: &str, max_frame: usize) -> Result<TapPort, SysError> {
        Ok(TapPort {
            dev: TapDevice::create(name)?,
            max_frame: max_frame + 1,
        })
    }

    /// Creates TAP device `name` inside the named network namespace `ns`.
    pub fn create_in(ns: &str, name: &str, max_frame: usize) -> Result<TapPort, SysError> {
        netns::run_in(ns, || TapPort::create(name, max_frame))?
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        self.dev.name()
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.resize(self.max_frame, 0);
        match self.dev.recv(buf)? {
            Some(n) => {
                buf.truncate(n);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.dev.send(frame)
    }

    fn readiness(&self) -> Option<BorrowedFd<'_>> {
        Some(self.dev.as_fd())
    }
}
