//! Adapters: container engines' protocols translated into the same operations `l2ctl` runs
//! (state, undo, daemon calls go through [`crate::ops::Ctl`]; no adapter talks to the daemon
//! itself).

pub mod cni;
pub mod docker;
