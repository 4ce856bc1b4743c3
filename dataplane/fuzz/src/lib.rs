//! Shared parts of l2sw's fuzz targets: the scenarios the `process` target decodes its input
//! into ([`scenario`]) and the invariants it checks after every batch ([`invariants`]). Only the
//! public API of `l2sw` is used. The targets themselves are in `fuzz_targets/`.

pub mod invariants;
pub mod scenario;
