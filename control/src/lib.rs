//! l2ctl's library: Docker-style networks, IPAM, namespaces and links, and the daemon client.
//! The `l2ctl` binary is a thin command line over it; tests drive both.
//!
//! No `unsafe` here, but for one module: `nat::nft`'s `fib` expression, which the `nftnl`
//! crate does not wrap (two calls into libnftnl, each with its SAFETY comment).

#![deny(unsafe_code)]

pub mod adapters;
pub mod args;
pub mod client;
pub mod demo;
pub mod embedded;
pub mod explain;
pub mod ipam;
pub mod memdemo;
pub mod modes;
pub mod nat;
/// Namespaces, links, addresses and routes over rtnetlink (the `l2sw-netlink` crate, which the
/// test sandbox shares).
pub use l2sw_netlink as nl;
pub mod ops;
pub mod probe;
pub mod show;
pub mod state;
pub mod topology;
pub mod ui;
pub mod verify;
pub mod watch;
