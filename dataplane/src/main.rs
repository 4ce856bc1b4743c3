//! `l2sw`: the switch daemon.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use l2sw::config::Config;
use l2sw::daemon::Networks;
use l2sw::engine::Polling;

/// l2sw: a userspace L2 switch that forwards frames between interfaces the way the Linux
/// bridge, macvlan and ipvlan do.
#[derive(Debug, Parser)]
#[command(name = "l2sw", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forward frames between the ports of every network in a configuration file.
    ///
    /// Each `[[network]]` is a switch (mode bridge, macvlan or ipvlan) whose
    /// `[[network.port]]`s are existing interfaces opened with AF_PACKET sockets, or TAP
    /// devices l2sw creates (`kind = "tap"`), in a named network namespace with
    /// `netns = "..."`. Runs until SIGINT or SIGTERM, then closes every port (TAP devices
    /// vanish with it) and prints each network's counters. Needs CAP_NET_RAW (and CAP_SYS_ADMIN for
    /// ports in other namespaces). Example:
    ///
    ///   [[network]]
    ///   name = "lab"
    ///   mode = "bridge"
    ///   [[network.port]]
    ///   interface = "veth-a"
    ///   role = "bridge"
    ///   [[network.port]]
    ///   interface = "veth-b"
    ///   role = "bridge"
    ///   hairpin = true
    ///   max_learned = 64     # port security (l2sw only): frames from a 65th MAC dropped
    ///   storm = { broadcast = 1000, multicast = 5000 }   # storm control, frames/s (l2sw only)
    #[command(verbatim_doc_comment)]
    Run {
        /// The configuration file (TOML). Without it the daemon starts with no network and
        /// waits for them on the control socket.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The control socket (JSON lines; `l2ctl` talks to it).
        #[arg(long, default_value = l2sw::control::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Spin on the ports instead of sleeping until one is readable: lowest latency, one
        /// core at 100 % per network. Off by default.
        #[arg(long)]
        busy_poll: bool,
        /// After forwarding a frame, keep polling this many microseconds before sleeping, so
        /// that a reply, the next segments of a TCP window or a client's next request find
        /// l2sw awake (no wake-up: tens of microseconds less per frame). A core spins for
        /// that long after each burst of traffic; an idle switch sleeps and costs nothing.
        /// 0 sleeps as soon as the ports are empty.
        #[arg(long, value_name = "MICROSECONDS", default_value_t = l2sw::engine::DEFAULT_LINGER.as_micros() as u64)]
        linger_us: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            socket,
            busy_poll,
            linger_us,
        } => match run(
            config.as_deref(),
            &socket,
            Polling {
                busy: busy_poll,
                linger: Duration::from_micros(linger_us),
            },
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("l2sw: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The networks of the configuration file, if one is given.
fn plans(path: Option<&std::path::Path>) -> Result<Vec<l2sw::config::NetworkPlan>, String> {
    let Some(path) = path else {
        tracing::info!("no configuration file: waiting for networks on the control socket");
        return Ok(Vec::new());
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let plans = Config::from_toml(&text)
        .and_then(|c| c.plan())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if plans.is_empty() {
        return Err(format!("{}: no [[network]] to run", path.display()));
    }
    Ok(plans)
}

fn run(
    path: Option<&std::path::Path>,
    socket: &std::path::Path,
    polling: Polling,
) -> Result<(), String> {
    let plans = plans(path)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("installing signal handlers: {e}"))?;
    }
    let networks = Arc::new(Networks::with_polling(polling));
    let started = plans
        .into_iter()
        .try_for_each(|plan| networks.start(plan))
        .map_err(|e| e.to_string());
    let control = started.and_then(|()| {
        l2sw::control::serve(socket, Arc::clone(&networks), Arc::clone(&stop))
            .map_err(|e| e.to_string())
    });
    let control = match control {
        Ok(c) => c,
        Err(e) => {
            // Stop what already runs before reporting.
            networks.stop_all();
            return Err(e);
        }
    };
    tracing::info!(socket = %socket.display(), "control socket ready");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = control.join();
    let mut failed = None;
    for (name, result) in networks.stop_all() {
        match result {
            Ok(s) => tracing::info!(
                network = %name, rx = s.rx, tx = s.tx, tx_full = s.tx_full,
                io_errors = s.io_errors, detached = s.detached, "stopped"
            ),
            Err(e) => failed = Some(format!("network {name}: {e}")),
        }
    }
    failed.map_or(Ok(()), Err)
}
