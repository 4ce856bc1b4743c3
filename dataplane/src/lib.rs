//! l2sw: a userspace L2 switch that moves frames the way the Linux bridge, macvlan and ipvlan
//! do, and says why.
//!
//! - [`wire`]: frame views over bytes (Ethernet, 802.1Q/802.1ad, ARP, IPv4/IPv6).
//! - [`fwd`]: the pure forwarding core: FDB, RX filters, modes, verdicts, [`fwd::Switch`].
//! - [`port`]: the `Port` trait and its backends (in memory, AF_PACKET, TAP).
//! - [`engine`], [`daemon`], [`config`], [`api`], [`control`]: the run loop, the networks of a
//!   daemon, its configuration file and its control socket.
//! - [`trace`]: per-frame trace records and packet capture.

#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod fwd;
pub mod port;
pub mod trace;
pub mod wire;
