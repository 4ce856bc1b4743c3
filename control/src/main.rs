//! l2ctl: the control binary of l2sw. Today it runs the forwarding core's demo; networks,
//! IPAM and namespace wiring come with the daemon.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Control l2sw, a userspace L2 switch that forwards like the Linux bridge, macvlan and ipvlan
/// and says why each frame went where it went.
#[derive(Debug, Parser)]
#[command(name = "l2ctl", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a small topology through the forwarding core and narrate every decision.
    ///
    /// Builds a Docker-style bridge network (three workloads and the host's gateway port) and
    /// a macvlan network (bridge and private sub-interfaces on one uplink) in memory, sends
    /// ARP, unicast, unknown-destination and broadcast frames, and prints for each frame where
    /// it went and the kernel rule that decided it, then the learned FDB and the counters.
    /// Needs no privileges and touches no interface.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => match demo::run(&mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("l2ctl demo: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
