//! `l2bench`: end-to-end measurements of every mode, l2sw beside the kernel, on throw-away
//! namespaces, with a generator and a sink of the harness's own.
//!
//! - [`lab`]: the targets and the namespaces each is built in;
//! - [`traffic`]: the generator and the sink;
//! - [`echo`]: the round trip through the ends' own IP stacks (UDP);
//! - [`run`]: the measurements of one target;
//! - [`report`]: the table, the goals, JSON and the SVG chart.

pub mod echo;
pub mod lab;
pub mod report;
pub mod run;
pub mod sys;
pub mod traffic;

use std::io;

use l2sw_control::nl::NlError;

/// Why a target could not be built or measured.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A system call failed.
    #[error("{op} {object}: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// To what.
        object: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A socket, ring or namespace of the harness's own.
    #[error(transparent)]
    Port(#[from] l2sw::port::sys::SysError),
    /// Links or namespaces could not be made.
    #[error(transparent)]
    Netlink(#[from] NlError),
    /// Anything else in building a target.
    #[error("{0}")]
    Setup(String),
    /// The target did not carry the ends' traffic (no connection, no reply, no data).
    #[error("{0}")]
    Traffic(String),
}

impl BenchError {
    fn sys(op: &'static str, object: impl Into<String>, source: io::Error) -> BenchError {
        BenchError::Sys {
            op,
            object: object.into(),
            source,
        }
    }
}
