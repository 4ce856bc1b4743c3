//! l2sw: a userspace L2 switch that moves frames the way the Linux bridge, macvlan and ipvlan
//! do, and says why.
//!
//! - [`wire`]: frame views over bytes (Ethernet, 802.1Q/802.1ad, ARP, IPv4/IPv6).
//! - [`fwd`]: the pure forwarding core: FDB, RX filters, modes, verdicts, [`fwd::Switch`].
//! - [`port`]: the `Port` trait and its backends (in-memory today).

#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod fwd;
pub mod port;
pub mod wire;
