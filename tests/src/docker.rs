//! A private Docker daemon for the engine tests: its own data root, exec root, pid file,
//! config file and API socket under a fresh directory, no iptables, no default bridge, no
//! sysctl changes, vfs storage; so it never meets another dockerd on the machine. Stopped
//! (SIGTERM, then SIGKILL after a deadline) and its directory removed when dropped, also when a
//! test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::NEXT;

/// How long dockerd may take to answer after it starts, and to stop.
const PATIENCE: Duration = Duration::from_secs(60);

/// Whether `prog` runs (`prog --version` succeeds).
fn runs(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running private dockerd.
#[derive(Debug)]
pub struct Dockerd {
    dir: PathBuf,
    host: String,
    child: Option<Child>,
}

impl Dockerd {
    /// Starts one for `test`; `None` (saying why) without root, `dockerd` or `docker`.
    pub fn start(test: &str) -> Option<Dockerd> {
        if !crate::privileged_or_skip(test) {
            return None;
        }
        for prog in ["dockerd", "docker"] {
            if !runs(prog) {
                eprintln!("skipped {test}: {prog} is not installed (Debian: docker.io)");
                return None;
            }
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/l2sw-dk-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("daemon.json");
        std::fs::write(&config, "{}\n").unwrap();
        let host = format!("unix://{}", dir.join("docker.sock").display());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["-H", &host])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
                "--userland-proxy=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Dockerd {
            dir,
            host,
            child: Some(child),
        };
        let start = Instant::now();
        loop {
            if d.docker(&["version"]).status.success() {
                return Some(d);
            }
            if let Some(c) = d.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("dockerd exited ({status}): {}", d.log());
            }
            assert!(
                start.elapsed() < PATIENCE,
                "dockerd did not answer within {PATIENCE:?}: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its directory (data root, exec root, sockets, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Runs `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["-H", &self.host])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `docker ARGS`; it must succeed. Returns its output, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Runs `docker ARGS`; it must fail. Returns its error output.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {} should have failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Imports the busybox root filesystem ([`crate::rootfs::busybox_tar`]) as image `tag`.
    pub fn import_busybox(&self, tag: &str) {
        let tar = crate::rootfs::busybox_tar(&self.dir.join("rootfs")).unwrap();
        self.ok(&["import", &tar.to_string_lossy(), tag]);
    }

    /// Stops the daemon: SIGTERM, then SIGKILL if it has not exited by the deadline (its
    /// containerd with it).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) with the pid of a child this process spawned and has not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let pidfile = self.dir.join("exec/containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2); the pid is the containerd this dockerd started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
        // Whatever it left mounted under its directory (namespace files, layers).
        let prefix = self.dir.to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
