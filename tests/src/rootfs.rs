//! A container image with no registry: a root filesystem of one statically linked busybox
//! (Debian's `busybox-static`) and its applets, as a tar stream that `docker import` and
//! `podman import` turn into an image. The engine tests make it once and import it into their
//! own data roots.

use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `busybox-static` installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets the engine tests run inside containers.
const APPLETS: &[&str] = &[
    "sh", "ping", "nc", "sleep", "ip", "cat", "echo", "ls", "hostname", "arping", "ifconfig",
    "wget", "httpd", "true", "sysctl",
];

/// Builds the root filesystem under `dir` (which must be empty or missing) and writes it as
/// `dir/../NAME.tar`; returns the tar's path. Fails, saying what is missing, when busybox is
/// not installed.
pub fn busybox_tar(dir: &Path) -> io::Result<PathBuf> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{BUSYBOX} not found: install Debian's busybox-static"),
        ));
    }
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    for d in ["etc", "proc", "sys", "dev", "tmp", "run", "var"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(busybox, bin.join("busybox"))?;
    for applet in APPLETS {
        symlink("busybox", bin.join(applet))?;
    }
    let tar = dir.with_extension("tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "tar {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(tar)
}
