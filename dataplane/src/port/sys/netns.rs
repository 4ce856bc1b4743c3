//! Running code inside a network namespace: a named one (`ip netns` puts them in `/run/netns`)
//! or, given an absolute path, a namespace file a container engine made (Docker's sandbox key,
//! CNI's `CNI_NETNS`, `/proc/PID/ns/net`). The work runs on a thread of its own that enters
//! the namespace and ends with the work, so no other thread's namespace ever changes. Sockets
//! opened there stay in that namespace.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::SysError;

/// The namespace's file: where `ip netns add NAME` puts it, or `name` itself when it is an
/// absolute path.
pub fn path(name: &str) -> PathBuf {
    if is_path(name) {
        PathBuf::from(name)
    } else {
        PathBuf::from("/run/netns").join(name)
    }
}

/// Whether `name` is an absolute path to a namespace file rather than a namespace's name.
pub fn is_path(name: &str) -> bool {
    name.starts_with('/')
}

/// Whether `name` can name a namespace: a name as `ip netns` takes it (no '/', not empty,
/// not "." or ".."), or an absolute path without "." or ".." components.
pub fn valid(name: &str) -> bool {
    if is_path(name) {
        !name.contains('\0') && !name.split('/').any(|c| c == "." || c == "..")
    } else {
        !(name.contains(['/', '\0']) || name.is_empty() || name == "." || name == "..")
    }
}

/// Runs `work` on a fresh thread inside the network namespace `name` and returns its result.
pub fn run_in<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> Result<T, SysError> {
    if !valid(name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_told_apart() {
        assert_eq!(path("web"), PathBuf::from("/run/netns/web"));
        assert_eq!(path("/proc/1/ns/net"), PathBuf::from("/proc/1/ns/net"));
        for good in [
            "web",
            "cni-1234",
            "/var/run/docker/netns/abc",
            "/proc/7/ns/net",
        ] {
            assert!(valid(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "/run/netns/../x", "/./x", "a\0b"] {
            assert!(!valid(bad), "{bad:?}");
        }
    }
}
