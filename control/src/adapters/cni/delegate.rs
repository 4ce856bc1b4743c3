//! Delegating IPAM as the spec says: the IPAM plugin named by `ipam.type` is found in
//! `CNI_PATH` and run with the same environment and the same configuration on stdin (only
//! `CNI_COMMAND` set for the step); its result or its error object is read back. Its error
//! codes pass through to the runtime unchanged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use super::types::{CniError, CniResult, Code, Command, Env};

/// The IPAM plugin `kind` in `CNI_PATH`.
pub fn find(env: &Env, kind: &str) -> Result<PathBuf, CniError> {
    let path = env.need("CNI_PATH", &env.path)?;
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                Code::InvalidConfig,
                format!("IPAM plugin {kind:?} not found in CNI_PATH {path}"),
            )
        })
}

/// Runs the IPAM plugin for `command` with `stdin` (the configuration as received); returns
/// its result on ADD, `None` otherwise.
pub fn run(
    env: &Env,
    kind: &str,
    command: Command,
    stdin: &[u8],
) -> Result<Option<CniResult>, CniError> {
    let bin = find(env, kind)?;
    let io = |what: &str, e: std::io::Error| {
        CniError::new(
            Code::Io,
            format!("IPAM plugin {}: {what}: {e}", bin.display()),
        )
    };
    let mut child = Process::new(&bin)
        .env("CNI_COMMAND", command.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io("starting it", e))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .map_err(|e| io("writing its configuration", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| io("waiting for it", e))?;
    if !out.status.success() {
        // Its own error object, passed on with its code; otherwise say what it printed.
        let err = serde_json::from_slice::<CniError>(&out.stdout)
            .map(|e| CniError {
                msg: format!("IPAM plugin {kind}: {}", e.msg),
                ..e
            })
            .unwrap_or_else(|_| {
                CniError::new(
                    Code::Io,
                    format!("IPAM plugin {kind} failed ({})", out.status),
                )
                .details(String::from_utf8_lossy(&out.stdout).trim().to_owned())
            });
        return Err(err);
    }
    if command != Command::Add {
        return Ok(None);
    }
    let v = serde_json::from_slice(&out.stdout).map_err(|e| {
        CniError::new(
            Code::Decode,
            format!("IPAM plugin {kind}'s answer is not JSON: {e}"),
        )
    })?;
    CniResult::from_value(&format!("IPAM plugin {kind}'s answer"), v).map(Some)
}
