//! l2ctl: Docker-style networks for l2sw. It creates namespaces, wires workloads into them,
//! hands out addresses and tells the l2sw daemon what to forward.

#![deny(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand};
use l2sw_control::adapters::cni;
use l2sw_control::args::{AttachArgs, NetworkArgs};
use l2sw_control::client::{Client, ClientError};
use l2sw_control::modes::Mode;
use l2sw_control::ops::{self, Ctl, CtlError};
use l2sw_control::{explain, nl, show, state, topology, verify};

/// Control l2sw, a userspace L2 switch that forwards like the Linux bridge, macvlan and ipvlan
/// and says why each frame went where it went.
///
/// l2ctl keeps Docker's network model: networks with a driver (bridge, macvlan, ipvlan) and
/// IPAM, workloads in named network namespaces (`ip netns` sees them), and the predefined
/// networks `bridge`, `host` and `none`. It needs root and a running daemon (`l2sw run`);
/// `l2ctl demo` brings its own.
///
/// A first session:
///   sudo l2sw run &
///   sudo l2ctl network create front --subnet 10.10.0.0/24
///   sudo l2ctl attach web --network front
///   sudo l2ctl attach db --network front
///   sudo l2ctl exec web -- ping -c1 10.10.0.3
///   sudo l2ctl fdb front
#[derive(Debug, Parser)]
#[command(
    name = "l2ctl",
    version,
    propagate_version = true,
    verbatim_doc_comment
)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, global = true, default_value = l2sw::control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Where l2ctl keeps its networks, workloads and address allocations.
    #[arg(long, global = true, default_value = state::DEFAULT_DIR)]
    state_dir: PathBuf,
    /// A named namespace to treat as the host (its links, routes and parents), instead of
    /// l2ctl's own: for experiments that must not touch the real host. Fixed at the first use
    /// of a state directory.
    #[arg(long, global = true)]
    host_netns: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, inspect and remove networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Connect a workload to a network, making its namespace if needed.
    ///
    /// The workload gets an interface (eth0, eth1, …) in the namespace named after it, with a
    /// MAC, an address from the network's pool (or --ip) and, on a network with a gateway, a
    /// default route. `--network none` gives a namespace with loopback only, `--network host`
    /// none at all (the host's), `--network container:OTHER` joins OTHER's namespace.
    Attach {
        /// The workload (and its namespace's name).
        workload: String,
        #[command(flatten)]
        args: AttachArgs,
    },
    /// Disconnect a workload from a network; its namespace goes with its last network.
    Detach {
        /// The workload.
        workload: String,
        /// The network (`none`, `host` and `container:OTHER` too).
        #[arg(long, short = 'n')]
        network: String,
    },
    /// List workloads: their namespace, networks, interfaces and addresses.
    Ps {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a workload's namespace, as `ip netns exec` does.
    Exec {
        /// The workload.
        workload: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Give the host a way into a macvlan or ipvlan network.
    ///
    /// Frames the parent sends to a sub-interface's MAC leave on the wire and never come back,
    /// so the host cannot reach its own macvlan workloads. This adds a bridge-mode
    /// sub-interface for the host (named l2ha-ID), with an address reserved as aux address
    /// `host-access` and a route to the network's range. `network rm` undoes it.
    HostAccess {
        /// The network.
        network: String,
    },
    /// Show a bridge network's forwarding database: what l2sw learned where.
    Fdb {
        /// The network.
        network: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show counters per port: received, sent, queue-full, learned MACs and cap, port-security
    /// refusals, MAC flaps, storm limits, drops by reason.
    Stats {
        /// One network (default: all).
        network: Option<String>,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Set a port's storm-control limits on the running network, in frames a second.
    ///
    /// Replaces the port's limits: a class not given (or 0) is unlimited, so `storm NET PORT`
    /// alone turns storm control off. Frames over a limit are dropped and counted
    /// (`l2ctl stats`). The limits hold until the daemon restarts.
    Storm {
        /// The network.
        network: String,
        /// The port (a workload's name, `host`, the parent).
        port: String,
        /// Broadcast frames a second.
        #[arg(long)]
        broadcast: Option<u32>,
        /// Unknown unicast frames a second (bridge networks only).
        #[arg(long)]
        unknown_unicast: Option<u32>,
        /// Multicast frames a second.
        #[arg(long)]
        multicast: Option<u32>,
    },
    /// Cap the MACs a bridge port may learn (port security), or with no port the whole
    /// bridge; 0 removes the cap.
    ///
    /// At a port's cap, frames from further new sources are dropped and counted
    /// (`l2ctl stats`: SEC-REFUSED). Entries over a lowered cap stay until they age out. The
    /// cap holds until the daemon restarts.
    LearnCap {
        /// The network.
        network: String,
        /// The cap (0: none).
        max: u32,
        /// The port (default: the bridge-wide cap).
        #[arg(long, short = 'p')]
        port: Option<String>,
    },
    /// Watch what l2sw decides for each frame, and why.
    ///
    /// For each frame received (on --port, or any port of the network): the ingress port, its
    /// headers, what the FDB learned, the rule that decided with the kernel function it
    /// mirrors, and where it went or why it was dropped. Stops after --count frames, or with
    /// Ctrl-C under --follow. Tracing costs nothing while nobody traces.
    Trace {
        /// The network.
        network: String,
        /// How many frames.
        #[arg(long, short = 'c', default_value_t = 20)]
        count: u64,
        /// Only frames received on this port (a workload's name, `host`, the parent).
        #[arg(long, short = 'p')]
        port: Option<String>,
        /// Keep tracing until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Capture frames into a pcapng file that Wireshark and tcpdump open.
    ///
    /// Frames received on and sent out of --port (or every port, one pcapng interface per
    /// port, named after it, each frame marked inbound or outbound), as they were on the wire.
    /// Stops after --count frames or with Ctrl-C.
    Capture {
        /// The network.
        network: String,
        /// Only this port.
        #[arg(long, short = 'p')]
        port: Option<String>,
        /// The file to write.
        #[arg(long, short = 'w')]
        write: PathBuf,
        /// How many frames.
        #[arg(long, short = 'c', default_value_t = 1000)]
        count: u64,
    },
    /// Show how a mode moves each frame of its canonical scenario, and why.
    ///
    /// Runs the scenario (peer unicast, unknown unicast, broadcast, joined and unjoined
    /// multicast, frames from the uplink, and what a hairpinning upstream reflects) through
    /// l2sw's forwarding core in memory and draws, for each frame, the switch, the ports that
    /// receive it and the rule that decided, with the kernel function it mirrors. Needs no
    /// privileges. MODE is one of bridge, bridge-hairpin, bridge-isolated, macvlan-bridge,
    /// macvlan-private, macvlan-vepa, macvlan-passthru, macvlan-source, ipvlan-l2, or all.
    Explain {
        /// The mode, or `all`.
        mode: String,
        /// text (terminal diagrams), svg (one figure for a handout), json, markdown (the
        /// docs/modes.md page), or html (one self-contained page that steps through the
        /// frames: docs/modes.html).
        #[arg(long, value_enum, default_value_t = explain::Format::Text)]
        format: explain::Format,
        /// The upstream bridge of macvlan and ipvlan modes: off, on, or both (on shown where
        /// it changes who receives a frame).
        #[arg(long = "upstream-hairpin", value_enum, default_value_t = explain::UpstreamHairpin::Both)]
        upstream: explain::UpstreamHairpin,
    },
    /// Prove a mode against the kernel: the same scenario through the kernel and through l2sw.
    ///
    /// Builds the mode's scenario twice in throw-away namespaces, once with the kernel's own
    /// bridge or macvlan and once with l2sw forwarding on real ports, sends the same frames
    /// from raw sockets, and prints who received each (kernel|l2sw). Exits 1 on any
    /// difference. Needs root. ipvlan-l2 has no kernel side here (`explain` shows it).
    Verify {
        /// The mode, or `all` (the modes this kernel has).
        mode: String,
        /// The upstream bridge of macvlan modes reflects frames back (on) or not (off).
        /// Default: both, one after the other.
        #[arg(long = "upstream-hairpin", value_parser = on_off)]
        upstream: Option<bool>,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Serve the mode explorer in a browser, and a read-only live view of the daemon's networks.
    ///
    /// The page of `explain --format html` (every mode, stepped frame by frame), plus each
    /// network's counters and traced frames, read from the daemon (nothing is changed there).
    /// Listens on loopback unless --listen says otherwise, and prints the URL. Stops with
    /// Ctrl-C.
    Ui {
        /// The address to listen on (IP:PORT; port 0 picks a free one).
        #[arg(long, default_value = l2sw_control::ui::DEFAULT_LISTEN)]
        listen: String,
    },
    /// Create a topology's networks and workloads (idempotent).
    ///
    /// The file has `[[network]]` tables with the options of `network create` (subnet,
    /// aux-address, ip-range, gateway as lists) and `[[workload]]` tables with a name and
    /// `[[workload.attach]]` tables with the options of `attach`. `down` removes exactly what
    /// `up` made.
    Up {
        /// The topology file (TOML).
        file: PathBuf,
    },
    /// Remove what `up FILE` made.
    Down {
        /// The topology file (TOML).
        file: PathBuf,
    },
    /// Give a restarted daemon back every network and port of the saved state.
    ///
    /// Every command that talks to the daemon does this first, so this is for a service
    /// manager starting the daemon (contrib/systemd/l2sw.service runs it after the start).
    /// Workloads whose namespace was deleted stay gone (`detach` cleans them up).
    Sync {
        /// Wait up to this many seconds for the daemon to answer (it may still be starting).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
    /// Build a small topology in throw-away namespaces and show l2sw forwarding it.
    ///
    /// A bridge network with three workloads (veth and TAP) and a macvlan network with two,
    /// traffic between them, the host reaching a macvlan workload only after host-access, the
    /// FDB and the counters; then everything is removed. Brings its own daemon and state, so it
    /// touches nothing else. Without root, `--in-memory` runs the forwarding core alone.
    Demo {
        /// Run the forwarding core in memory and narrate each frame (no root needed).
        #[arg(long)]
        in_memory: bool,
    },
    /// Serve l2sw to a container engine: Docker's network driver, or the CNI plugin.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum RemoteCmd {
    /// Add a remote VTEP to the flood list: it gets broadcasts and unknown unicasts, and its
    /// frames are accepted.
    Add {
        /// The overlay network.
        name: String,
        /// The remote host's VTEP address.
        vtep: std::net::Ipv4Addr,
    },
    /// Remove a remote VTEP (a host that left): nothing goes to it or comes from it any more,
    /// and the MACs behind it are forgotten.
    Rm {
        /// The overlay network.
        name: String,
        /// The remote host's VTEP address.
        vtep: std::net::Ipv4Addr,
    },
    /// Pin a MAC behind a remote VTEP (a static entry, as `bridge fdb append MAC dev vx0 dst
    /// IP` on a kernel VTEP): frames to it go to that VTEP alone, never moved by learning,
    /// and that VTEP's packets are accepted. With `--learning=false`, the way to give remote
    /// MACs their VTEPs. Kept in l2ctl's state: a restarted daemon gets it back.
    Pin {
        /// The overlay network.
        name: String,
        /// The station's MAC.
        mac: l2sw::wire::Mac,
        /// The remote VTEP it is behind.
        vtep: std::net::Ipv4Addr,
    },
    /// Remove a MAC's pin; a VTEP only pins named (not in the flood list) is refused again.
    Unpin {
        /// The overlay network.
        name: String,
        /// The station's MAC.
        mac: l2sw::wire::Mac,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCmd {
    /// Be Docker's network driver NAME: `docker network create -d NAME` makes l2sw networks.
    ///
    /// Serves Docker's remote network driver protocol on PLUGIN_DIR/NAME.sock, where Docker
    /// looks for plugins, until SIGTERM or Ctrl-C (then the socket goes). Each Docker call is
    /// an l2ctl operation on the same state (--state-dir) and daemon (--socket): the networks
    /// appear in `l2ctl network ls` as docker-<first 12 hex of Docker's network ID>, each
    /// container endpoint as workload d-<first 12 hex of its endpoint ID>; `l2ctl fdb`,
    /// `stats`, `trace` and `capture` work on them. All it knows is in the state file, so a
    /// restarted plugin loses nothing.
    ///
    /// Options (`-o KEY=VALUE`) mirror Docker's own drivers: type=bridge|macvlan|ipvlan
    /// (default bridge), parent=IFACE[.VID], macvlan_mode=bridge|private|vepa|passthru|source,
    /// ipvlan_mode=l2, ipvlan_flag=bridge|private|vepa, hairpin=true (bridge). Endpoint
    /// option (--driver-opt): source_mac=MAC[,MAC…] (source mode). Docker's IPAM hands out
    /// the addresses: --subnet, --gateway, --ip-range, --aux-address, --ip.
    ///
    /// Start it beside the daemon:
    ///   sudo l2sw run &
    ///   sudo l2ctl plugin docker &
    ///   docker network create -d l2sw --subnet 10.20.0.0/24 front
    ///   docker network create -d l2sw -o type=macvlan -o parent=eth1 \
    ///       -o macvlan_mode=bridge --subnet 192.168.1.0/24 --gateway 192.168.1.1 lan
    ///   docker run -d --network front --name web busybox sleep 600
    #[command(verbatim_doc_comment)]
    Docker {
        /// The plugin's name, which `docker network create -d` takes.
        #[arg(long, default_value = "l2sw")]
        name: String,
        /// Where Docker looks for plugin sockets.
        #[arg(long, default_value = "/run/docker/plugins")]
        plugin_dir: PathBuf,
    },
    /// The CNI plugin of type `l2sw` (spec 0.4.0 and 1.0.0): one command read from the
    /// CNI_* variables and the network configuration on stdin, the result on stdout.
    ///
    /// A runtime runs it by its type's file name: link l2ctl into the runtime's plugin
    /// directory as `l2sw` (`ln -s /usr/local/bin/l2ctl /usr/lib/cni/l2sw`), and l2ctl started
    /// as `l2sw` with CNI_COMMAND set is the plugin. --state-dir and --socket are the defaults
    /// for configurations without "stateDir" and "socket".
    #[command(verbatim_doc_comment)]
    Cni,
}

#[derive(Debug, Subcommand)]
enum NetworkCmd {
    /// Create a network.
    ///
    /// Examples:
    ///   l2ctl network create front --subnet 10.10.0.0/24 --ip-range 10.10.0.128/25
    ///   l2ctl network create lan -d macvlan --parent eth1 --subnet 192.168.1.0/24 \
    ///       --gateway 192.168.1.1 --aux-address host=192.168.1.250
    ///   l2ctl network create v10 -d macvlan --mode vepa --parent eth1.10 --subnet 10.0.10.0/24
    ///   l2ctl network create ov -d overlay --vni 4242 --local 192.0.2.1 \
    ///       --remote 192.0.2.2 --remote 192.0.2.3 --subnet 10.42.0.0/24 --ip-range 10.42.0.0/26
    #[command(verbatim_doc_comment)]
    Create(NetworkArgs),
    /// Add or remove an overlay network's remote VTEPs (hosts joining or leaving).
    #[command(subcommand)]
    Remote(RemoteCmd),
    /// List networks.
    Ls {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a network as JSON: driver, options, IPAM, endpoints.
    Inspect {
        /// The network.
        name: String,
    },
    /// Remove a network (it must have no endpoints).
    Rm {
        /// The network.
        name: String,
    },
}

fn main() -> ExitCode {
    if cni::invoked_as_plugin() {
        return cni::main(&cni::Defaults::default());
    }
    let cli = Cli::parse();
    if let Command::Plugin(PluginCmd::Cni) = cli.command {
        return cni::main(&cni::Defaults {
            state_dir: cli.state_dir,
            socket: cli.socket,
        });
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors on their way to the terminal.
type Fallible = Result<(), Box<dyn std::error::Error>>;

fn run(cli: Cli) -> Fallible {
    let open = || -> Result<Ctl, CtlError> {
        Ctl::open(&cli.state_dir, &cli.socket, cli.host_netns.as_deref())
    };
    // Reading the daemon needs no saved state, so these take no lock and run beside others;
    // only when the daemon lacks something of the state (it restarted) do they take it, to
    // restore first.
    let daemon = || {
        let client = Client::new(&cli.socket);
        match ops::daemon_lacks(&cli.state_dir, &client) {
            // Nobody listens: the command itself says how to start one.
            Ok(false) | Err(CtlError::Daemon(ClientError::NoDaemon { .. })) => {}
            Ok(true) => match open() {
                Ok(mut ctl) => restore(&mut ctl),
                Err(e) => eprintln!("l2ctl: warning: could not restore the saved state: {e}"),
            },
            Err(e) => eprintln!("l2ctl: warning: could not read the saved state: {e}"),
        }
        client
    };
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Network(cmd) => match cmd {
            NetworkCmd::Create(args) => {
                let mut ctl = open()?;
                restore(&mut ctl);
                let net = ctl.create_network(&args, None)?;
                writeln!(out, "{}", net.id)?;
            }
            NetworkCmd::Remote(RemoteCmd::Add { name, vtep }) => {
                let mut ctl = open()?;
                restore(&mut ctl);
                ctl.add_remote(&name, vtep)?;
                writeln!(out, "{name}: remote {vtep} added")?;
            }
            NetworkCmd::Remote(RemoteCmd::Rm { name, vtep }) => {
                let mut ctl = open()?;
                restore(&mut ctl);
                ctl.remove_remote(&name, vtep)?;
                writeln!(out, "{name}: remote {vtep} removed")?;
            }
            NetworkCmd::Remote(RemoteCmd::Pin { name, mac, vtep }) => {
                let mut ctl = open()?;
                restore(&mut ctl);
                ctl.pin_remote(&name, mac, vtep)?;
                writeln!(out, "{name}: {mac} pinned behind {vtep}")?;
            }
            NetworkCmd::Remote(RemoteCmd::Unpin { name, mac }) => {
                let mut ctl = open()?;
                restore(&mut ctl);
                ctl.unpin_remote(&name, mac)?;
                writeln!(out, "{name}: {mac} unpinned")?;
            }
            NetworkCmd::Ls { json } => {
                let ctl = open()?;
                show::networks(out, &ctl.state, json)?;
            }
            NetworkCmd::Inspect { name } => {
                let ctl = open()?;
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&ctl.inspect(&name)?)?
                )?;
            }
            NetworkCmd::Rm { name } => {
                let mut ctl = open()?;
                restore(&mut ctl);
                ctl.remove_network(&name)?;
                writeln!(out, "{name}")?;
            }
        },
        Command::Attach { workload, args } => {
            let mut ctl = open()?;
            restore(&mut ctl);
            match ctl.attach(&workload, &args, None)? {
                Some(ep) => show::endpoint(out, &workload, &args.network, &ep)?,
                None => writeln!(out, "{workload}: {}", args.network)?,
            }
        }
        Command::Detach { workload, network } => {
            let mut ctl = open()?;
            restore(&mut ctl);
            ctl.detach(&workload, &network)?;
        }
        Command::Ps { json } => {
            let ctl = open()?;
            show::workloads(out, &ctl.state, &ctl.gone(), json)?;
        }
        Command::Exec { workload, command } => {
            let ns = {
                let ctl = open()?;
                let w = ctl
                    .state
                    .workloads
                    .get(&workload)
                    .ok_or_else(|| format!("no workload named {workload} (see `l2ctl ps`)"))?;
                ctl.state.netns_of(w)
            };
            if let Some(ns) = ns {
                nl::enter(&ns)?;
            }
            let (prog, rest) = command.split_first().ok_or("no command given")?;
            let e = std::os::unix::process::CommandExt::exec(
                std::process::Command::new(prog).args(rest),
            );
            return Err(format!("running {prog}: {e}").into());
        }
        Command::HostAccess { network } => {
            let mut ctl = open()?;
            restore(&mut ctl);
            let ha = ctl.host_access(&network)?;
            writeln!(
                out,
                "host reaches {network} through {} ({}, {}), switch end {}",
                ha.interface, ha.ip, ha.mac, ha.port
            )?;
        }
        Command::Fdb { network, json } => {
            let rows = daemon().fdb(&network)?;
            show::fdb(out, &rows, json)?;
        }
        Command::Stats { network, json } => {
            let client = daemon();
            let names: Vec<String> = match network {
                Some(n) => vec![n],
                None => client.networks()?.into_iter().map(|n| n.name).collect(),
            };
            let mut all = std::collections::BTreeMap::new();
            for n in names {
                let s = client.stats(&n)?;
                all.insert(n, s);
            }
            show::stats(out, &all, json)?;
        }
        Command::Storm {
            network,
            port,
            broadcast,
            unknown_unicast,
            multicast,
        } => {
            let storm = l2sw::config::StormSpec {
                broadcast,
                unknown_unicast,
                multicast,
            };
            daemon().set_storm(&network, &port, storm)?;
        }
        Command::LearnCap { network, max, port } => {
            daemon().set_max_learned(&network, port.as_deref(), max)?;
        }
        Command::Trace {
            network,
            count,
            port,
            follow,
            json,
        } => {
            let client = daemon();
            let stop = interrupted()?;
            let count = if follow { u64::MAX } else { count };
            let (got, lost) = l2sw_control::watch::trace(
                &client,
                &network,
                port.as_deref(),
                count,
                json,
                out,
                &stop,
            )?;
            if !json {
                eprintln!("{got} frames traced{}", lost_note(lost));
            }
        }
        Command::Capture {
            network,
            port,
            write,
            count,
        } => {
            let client = daemon();
            let stop = interrupted()?;
            let (got, lost) = l2sw_control::watch::capture(
                &client,
                &network,
                port.as_deref(),
                count,
                &write,
                &stop,
            )?;
            eprintln!(
                "{got} frames written to {}{}",
                write.display(),
                lost_note(lost)
            );
        }
        Command::Explain {
            mode,
            format,
            upstream,
        } => {
            let modes = Mode::parse_list(&mode)?;
            write!(out, "{}", explain::render(format, &modes, upstream)?)?;
        }
        Command::Ui { listen } => {
            let stop = interrupted()?;
            let (server, addr) = l2sw_control::ui::bind(&listen)?;
            let ui = l2sw_control::ui::Ui::new(Client::new(&cli.socket))?;
            if !addr.ip().is_loopback() {
                eprintln!("l2ctl: warning: {addr} is reachable from beyond this machine");
            }
            writeln!(out, "l2sw explorer: http://{addr}/  (Ctrl-C stops it)")?;
            out.flush()?;
            l2sw_control::ui::serve(&server, &ui, &stop)?;
        }
        Command::Verify {
            mode,
            upstream,
            json,
        } => {
            let all = mode == "all";
            let mut matrices = Vec::new();
            for m in Mode::parse_list(&mode)? {
                if all && !m.in_kernel() {
                    eprintln!(
                        "{m}: skipped, this kernel has no such device (see `l2ctl explain {m}`)"
                    );
                    continue;
                }
                let hairpins = match (upstream, l2sw_control::modes::topology(m).upstream) {
                    (Some(h), _) => vec![h],
                    (None, true) => vec![false, true],
                    (None, false) => vec![false],
                };
                for h in hairpins {
                    let matrix = verify::verify(m, h)?;
                    if !json {
                        writeln!(out, "{}", verify::render(&matrix))?;
                    }
                    matrices.push(matrix);
                }
            }
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&matrices)?)?;
            }
            if !matrices.iter().all(verify::Matrix::matches) {
                return Err("the kernel and l2sw differ (marked !! above)".into());
            }
        }
        Command::Up { file } => {
            let mut ctl = open()?;
            restore(&mut ctl);
            for line in topology::up(&mut ctl, &file)? {
                writeln!(out, "{line}")?;
            }
        }
        Command::Down { file } => {
            let mut ctl = open()?;
            restore(&mut ctl);
            for line in topology::down(&mut ctl, &file)? {
                writeln!(out, "{line}")?;
            }
        }
        Command::Sync { wait } => {
            wait_for_daemon(&Client::new(&cli.socket), Duration::from_secs(wait));
            let mut ctl = open()?;
            let restored = ctl.sync()?;
            warn_gone(&ctl);
            if restored.is_empty() {
                writeln!(out, "the daemon already has everything")?;
            }
            for r in restored {
                writeln!(out, "restored {r}")?;
            }
        }
        Command::Demo { in_memory } => {
            if in_memory {
                l2sw_control::memdemo::run(out)?;
            } else {
                l2sw_control::demo::run(out)?;
            }
        }
        Command::Plugin(PluginCmd::Docker { name, plugin_dir }) => {
            use l2sw_control::adapters::docker;
            let socket = docker::socket_path(&plugin_dir, &name)?;
            let driver = docker::DockerDriver {
                state_dir: cli.state_dir.clone(),
                socket: cli.socket.clone(),
                host_netns: cli.host_netns.clone(),
            };
            let stop = interrupted()?;
            docker::serve(&driver, &socket, &stop, || {
                eprintln!(
                    "l2ctl plugin: Docker network driver {name} listening on {}",
                    socket.display()
                );
            })?;
            eprintln!("l2ctl plugin: stopped, {} removed", socket.display());
        }
        // Answered in main, before any other command.
        Command::Plugin(PluginCmd::Cni) => {}
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "l2ctl", out);
        }
    }
    Ok(())
}

/// Waits until the daemon answers or `patience` has passed (then the command that follows
/// says what is wrong).
fn wait_for_daemon(client: &Client, patience: Duration) {
    let deadline = Instant::now() + patience;
    while client.networks().is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `on` or `off`.
fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?}: expected on or off")),
    }
}

/// A flag Ctrl-C (and SIGTERM) sets, for commands that run until stopped.
fn interrupted() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, std::io::Error> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&flag))?;
    }
    Ok(flag)
}

fn lost_note(lost: u64) -> String {
    if lost == 0 {
        String::new()
    } else {
        format!(" ({lost} lost: the daemon's queue filled before they were read)")
    }
}

/// Gives a restarted daemon its networks back before a command talks to it (cheap when it
/// lacks nothing: one request); says so.
fn restore(ctl: &mut Ctl) {
    match ctl.sync() {
        Ok(r) if !r.is_empty() => {
            eprintln!("l2ctl: restored to the daemon: {}", r.join(", "));
            warn_gone(ctl);
        }
        Ok(_) => {}
        // Nobody listens: the command itself will say how to start one.
        Err(CtlError::Daemon(ClientError::NoDaemon { .. })) => {}
        Err(e) => eprintln!("l2ctl: warning: could not restore the saved state: {e}"),
    }
}

/// Names the workloads a restore skipped because their namespace is gone.
fn warn_gone(ctl: &Ctl) {
    for w in ctl.gone() {
        eprintln!("l2ctl: not restored: {}", ctl.gone_hint(&w));
    }
}
