//! The system side of ports. Every `unsafe` block and every libc call of l2sw lives below this
//! module, each with a `// SAFETY:` comment; file descriptors are `OwnedFd`s, opened
//! non-blocking and close-on-exec, closed on drop. Errors name the interface or namespace.

pub mod link;
pub mod netns;
pub mod packet;
pub mod ring;
pub mod tap;
pub mod txring;
pub mod udp;
pub mod uring;

use std::io;

/// Whether this process runs as root (effective UID 0), as creating network namespaces,
/// AF_PACKET sockets and TAP devices needs. The one check l2sw, l2ctl and the tests make.
pub fn is_root() -> bool {
    // SAFETY: geteuid takes nothing, cannot fail and only reads the process's credentials.
    unsafe { libc::geteuid() == 0 }
}

/// A failed system call, with what l2sw was doing and on which interface or namespace.
#[derive(Debug, thiserror::Error)]
#[error("{op} on {on}: {source}")]
pub struct SysError {
    /// What was attempted (`"socket(AF_PACKET)"`, `"setns"`, ...).
    pub op: &'static str,
    /// The interface or namespace concerned.
    pub on: String,
    /// The kernel's answer.
    #[source]
    pub source: io::Error,
}

impl SysError {
    pub(crate) fn last(op: &'static str, on: &str) -> SysError {
        SysError {
            op,
            on: on.to_owned(),
            source: io::Error::last_os_error(),
        }
    }

    pub(crate) fn new(op: &'static str, on: &str, source: io::Error) -> SysError {
        SysError {
            op,
            on: on.to_owned(),
            source,
        }
    }
}
