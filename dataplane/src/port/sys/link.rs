//! Interface settings through the classic ioctls on a datagram socket of the calling thread's
//! namespace: bringing a TAP device up (`SIOCSIFFLAGS`) and turning transmit offloads off
//! (`SIOCETHTOOL`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::SysError;

pub(super) fn ifreq(name: &str) -> Result<libc::ifreq, SysError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(SysError::new(
            "interface name",
            name,
            io::Error::new(io::ErrorKind::InvalidInput, "1 to 15 bytes, no NUL"),
        ));
    }
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn ioctl_socket(name: &str) -> Result<OwnedFd, SysError> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(SysError::last("socket(AF_INET)", name));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;

/// Turns off transmit checksum offload, scatter-gather, TSO and GSO on interface `name`, so
/// that what it sends is whole, checksummed frames of at most its MTU. A workload whose frames
/// reach l2sw through an AF_PACKET port needs this: otherwise the kernel hands l2sw UDP and TCP
/// packets whose checksums are only started, and super-frames larger than the MTU.
pub fn disable_tx_offloads(name: &str) -> Result<(), SysError> {
    let sock = ioctl_socket(name)?;
    for (cmd, what) in [
        (ETHTOOL_STXCSUM, "ETHTOOL_STXCSUM"),
        (ETHTOOL_SSG, "ETHTOOL_SSG"),
        (ETHTOOL_STSO, "ETHTOOL_STSO"),
        (ETHTOOL_SGSO, "ETHTOOL_SGSO"),
    ] {
        let mut value = EthtoolValue { cmd, data: 0 };
        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_data = (&raw mut value).cast();
        // SAFETY: `req` names the interface and points at `value`, both live across the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) } < 0 {
            return Err(SysError::last(what, name));
        }
    }
    Ok(())
}

/// Brings interface `name` up (sets `IFF_UP`).
pub fn set_up(name: &str) -> Result<(), SysError> {
    let mut req = ifreq(name)?;
    let sock = ioctl_socket(name)?;
    // SAFETY: `req` is a valid ifreq naming the interface, living across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(SysError::last("SIOCGIFFLAGS", name));
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) } < 0 {
        return Err(SysError::last("SIOCSIFFLAGS", name));
    }
    Ok(())
}
