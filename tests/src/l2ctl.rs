//! Running the `l2ctl` binary from a test, against one daemon socket and one state directory
//! (`DIR/l2sw.sock`, `DIR/state`), with a namespace playing the host where the test made one.
//! Only a crate's own integration tests know the binary's path (`CARGO_BIN_EXE_l2ctl`), so
//! they pass it in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One `l2ctl` setting: binary, socket, state directory, host namespace.
#[derive(Debug, Clone)]
pub struct L2ctl {
    bin: PathBuf,
    dir: PathBuf,
    host_netns: Option<String>,
}

impl L2ctl {
    /// `l2ctl` at `bin`, its socket and state under `dir`, `--host-netns HOST` if given.
    pub fn new(bin: impl Into<PathBuf>, dir: &Path, host_netns: Option<&str>) -> L2ctl {
        L2ctl {
            bin: bin.into(),
            dir: dir.to_owned(),
            host_netns: host_netns.map(str::to_owned),
        }
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("l2sw.sock")
    }

    /// l2ctl's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `l2ctl ARGS` with this setting, to run or spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.state_dir());
        if let Some(ns) = &self.host_netns {
            cmd.args(["--host-netns", ns]);
        }
        cmd.args(args);
        cmd
    }

    /// Runs `l2ctl ARGS`, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin.display()))
    }

    /// Runs `l2ctl ARGS`; it must succeed. Returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "l2ctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `l2ctl ARGS`; it must fail. Returns its error message.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "l2ctl {} should have failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}
