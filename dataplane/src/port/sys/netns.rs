//! Running code inside a named network namespace (`ip netns` puts them in `/run/netns`). The
//! work runs on a thread of its own that enters the namespace and ends with the work, so no
//! other thread's namespace ever changes. Sockets opened there stay in that namespace.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::SysError;

/// Where `ip netns add NAME` puts the namespace handle.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Runs `work` on a fresh thread inside the network namespace `name` and returns its result.
pub fn run_in<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> Result<T, SysError> {
    if name.contains('/') || name.is_empty() || name == "." || name == ".." {
        return Err(SysError::new(
            "open namespace",
            name,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a namespace name"),
        ));
    }
    let handle = File::open(path(name)).map_err(|e| SysError::new("open namespace", name, e))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: `handle` is an open namespace file for the whole call, and setns only
            // changes the calling thread, which is this scoped thread and ends with `work`.
            let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(SysError::last("setns", name));
            }
            Ok(work())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(SysError::new(
                "run in namespace",
                name,
                std::io::Error::other("the work panicked"),
            ))
        })
    })
}
