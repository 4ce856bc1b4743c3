//! Interface flags through the classic ioctls (`SIOCGIFFLAGS` / `SIOCSIFFLAGS`) on a datagram
//! socket of the calling thread's namespace: enough to bring a TAP device l2sw created up.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::SysError;

fn ifreq(name: &str) -> Result<libc::ifreq, SysError> {
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

/// Brings interface `name` up (sets `IFF_UP`).
pub fn set_up(name: &str) -> Result<(), SysError> {
    let mut req = ifreq(name)?;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(SysError::last("socket(AF_INET)", name));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
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
