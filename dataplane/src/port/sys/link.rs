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

/// A route netlink socket of the namespace it was opened in, to ask the kernel about one
/// interface.
#[derive(Debug)]
pub struct LinkInfo {
    fd: OwnedFd,
    ifindex: i32,
    name: String,
}

/// `IFLA_PROMISCUITY`: how many holders keep the interface promiscuous (`dev->promiscuity`,
/// every `dev_set_promiscuity` and the kernel's own `uc_promisc` among them). The
/// `IFF_PROMISC` of the link's flags (`dev_get_flags`) shows only what a user asked for.
const IFLA_PROMISCUITY: u16 = 30;

impl LinkInfo {
    /// Opens a route netlink socket in the calling thread's namespace for interface `name`
    /// (index `ifindex` there).
    pub fn open(name: &str, ifindex: i32) -> Result<LinkInfo, SysError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(SysError::last("socket(AF_NETLINK)", name));
        }
        Ok(LinkInfo {
            // SAFETY: `raw` is a fresh descriptor owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
            ifindex,
            name: name.to_owned(),
        })
    }

    /// The interface's promiscuity count (`RTM_GETLINK`): above zero, it accepts every frame.
    pub fn promiscuity(&self) -> Result<u32, SysError> {
        let fail = |e: io::Error| SysError::new("RTM_GETLINK", &self.name, e);
        // struct nlmsghdr (16 bytes) and struct ifinfomsg (16 bytes), native byte order.
        let mut req = [0u8; 32];
        req[0..4].copy_from_slice(&32u32.to_ne_bytes());
        req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
        req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&1u32.to_ne_bytes());
        req[20..24].copy_from_slice(&self.ifindex.to_ne_bytes());
        // SAFETY: `req` is valid for reads of its length for the duration of the call; the
        // socket's default destination is the kernel.
        if unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
            return Err(fail(io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; 32 * 1024];
        // The kernel answers a request for one link within the send: nothing to wait for.
        // SAFETY: `buf` is valid for writes of its length for the duration of the call.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let n = usize::try_from(n).map_err(|_| fail(io::Error::last_os_error()))?;
        parse_promiscuity(&buf[..n]).map_err(fail)
    }
}

/// The `IFLA_PROMISCUITY` of a `RTM_NEWLINK` answer, or the error the kernel answered.
fn parse_promiscuity(msg: &[u8]) -> io::Result<u32> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let u16_at = |i: usize| msg.get(i..i + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        msg.get(i..i + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let len = u32_at(0).ok_or_else(|| bad("short netlink answer"))? as usize;
    let kind = u16_at(4).ok_or_else(|| bad("short netlink answer"))?;
    if kind == libc::NLMSG_ERROR as u16 {
        let code = u32_at(16).ok_or_else(|| bad("short netlink error"))? as i32;
        return Err(io::Error::from_raw_os_error(-code));
    }
    if kind != libc::RTM_NEWLINK {
        return Err(bad("not a link answer"));
    }
    let end = len.min(msg.len());
    // Attributes follow the ifinfomsg, each 4-byte aligned.
    let mut at = 32;
    while at + 4 <= end {
        let (Some(alen), Some(atype)) = (u16_at(at), u16_at(at + 2)) else {
            break;
        };
        let alen = usize::from(alen);
        if alen < 4 {
            break;
        }
        if atype & 0x3fff == IFLA_PROMISCUITY {
            return u32_at(at + 4).ok_or_else(|| bad("short IFLA_PROMISCUITY"));
        }
        at += (alen + 3) & !3;
    }
    Err(bad("no IFLA_PROMISCUITY in the answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; 32];
        for (t, v) in attrs {
            let len = 4 + v.len();
            m.extend_from_slice(&(len as u16).to_ne_bytes());
            m.extend_from_slice(&t.to_ne_bytes());
            m.extend_from_slice(v);
            m.resize(m.len().next_multiple_of(4), 0);
        }
        let total = m.len() as u32;
        m[0..4].copy_from_slice(&total.to_ne_bytes());
        m[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        m
    }

    #[test]
    fn promiscuity_is_read_from_its_attribute() {
        let m = answer(&[(3, b"veth0\0"), (IFLA_PROMISCUITY, &2u32.to_ne_bytes())]);
        assert_eq!(parse_promiscuity(&m).unwrap(), 2);
        let none = answer(&[(3, b"veth0\0")]);
        assert!(parse_promiscuity(&none).is_err());
        assert!(parse_promiscuity(&m[..10]).is_err());
        let mut err = vec![0u8; 36];
        err[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        assert_eq!(
            parse_promiscuity(&err).unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
    }
}
