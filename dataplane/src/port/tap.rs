//! A port on a TAP device l2sw creates: the device is the workload's interface itself, frames
//! l2sw writes arrive on it, frames the workload sends on it are read whole, each with a
//! `virtio_net_hdr`, so checksum offload and super-frames pass through as on a veth.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::sys::tap::{TapDevice, TapOffloads};
use super::sys::{SysError, netns};
use super::{Port, TxFrame};
use crate::wire::{Fault, Meta, SUPER_FRAME_MAX, VNET_HDR_LEN};

/// A TAP port.
#[derive(Debug)]
pub struct TapPort {
    dev: TapDevice,
    max_frame: usize,
}

impl TapPort {
    /// Creates TAP device `name` in this process's namespace and brings it up; plain frames
    /// longer than `max_frame` are dropped by the switch as oversize.
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

    /// The offloads the kernel accepted for the device.
    pub fn offloads(&self) -> TapOffloads {
        self.dev.offloads()
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        self.dev.name()
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>> {
        let room = SUPER_FRAME_MAX.max(self.max_frame);
        let mut hdr = [0u8; VNET_HDR_LEN];
        let Some(n) = self.dev.recv(&mut hdr, buf, room)? else {
            return Ok(None);
        };
        if n > buf.len() {
            let len = u32::try_from(n).unwrap_or(u32::MAX);
            return Ok(Some(Meta::faulty(Fault::Truncated { len })));
        }
        Ok(Some(Meta::from_vnet_or_fault(&hdr)))
    }

    fn send_one(&mut self, tx: TxFrame<'_>) -> io::Result<bool> {
        self.dev.send(&tx.meta.to_vnet(tx.frame), tx.frame)
    }

    fn readiness(&self) -> Option<BorrowedFd<'_>> {
        Some(self.dev.as_fd())
    }
}
