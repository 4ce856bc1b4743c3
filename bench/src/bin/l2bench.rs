//! `l2bench`: measures every forwarding mode end to end, l2sw beside the kernel's bridge and
//! macvlan, on throw-away network namespaces, with the same generator and sink for all.
//! Needs root (namespaces, AF_PACKET).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use l2sw::port::sys::ring::Handover;
use l2sw_bench::e2e::lab::{self, Kind, Lab, Offloads, Ovs, TARGETS, Target};
use l2sw_bench::e2e::report::{self, Conditions, Report};
use l2sw_bench::e2e::run::{self, Settings};
use l2sw_bench::e2e::traffic::GenKind;

/// Measures l2sw's forwarding modes end to end beside the kernel's.
///
/// For each target l2bench builds throw-away network namespaces: the generator's `eth0` in
/// one, the sink's in another, and between them nothing (`direct`, the generator's own
/// limit), the kernel's bridge or macvlan, or l2sw (the daemon's engine with its default
/// settings, on a core of its own). The generator sends 64-byte-and-up frames from an
/// AF_PACKET socket, through a TPACKET_V2 transmit ring or with sendmmsg (--generator); the
/// sink reads a TPACKET_V3 ring. Per target it measures:
///
///   capacity    l2sw alone: its receive ring filled while stopped, then one core draining it
///   rate, loss  flat out, per frame size (and at 64 B with each other generator asked for)
///   zero-loss   the highest rate with no frame lost (binary search, RFC 2544 style)
///   latency     one way, p50/p99/p999 at half the zero-loss rate (kernel receive time
///               minus send time)
///   RTT         round trip, p50/p99: UDP requests to an echo responder at the sink, one at
///               a time, paced (--round-trips), through the ends' own IP stacks
///   TCP         one stream through the target, Gbit/s, through the ends' own IP stacks
///   CPU         l2sw's CPU seconds per million frames
///   FDB         the rate with 1K, 64K and 1M learned MACs (bridges)
///
/// TCP and the round trip run with the ends' offloads as a new interface (and Docker) has
/// them: checksum, TSO and GSO on, for every target (--offloads). A target that does not
/// carry them is reported with the reason ("fail"), every wait bounded in time. The frame
/// measurements use raw frames, which offloads do not touch.
///
/// Bridges carry a -> b. macvlan's bridge mode carries sub-interface a -> sub-interface b;
/// private, vepa and passthru carry sub-interface a -> a station beyond the uplink, since
/// in those modes two sub-interfaces do not reach each other (without a hairpinning switch
/// outside). So every target, kernel and l2sw, can carry TCP and round trips as built: one
/// that does not is reported as failing, with its reason.
///
/// The overlays (`kernel-vxlan`, `l2sw-overlay`) put the ends on two namespace "hosts"
/// joined by a veth underlay: on each, a bridge of the end's port and a VXLAN port (VNI 42,
/// port 4789), the kernel's bridge and vxlan device or l2sw's engine; a -> b crosses both.
/// Both l2sw engines share core 1 and both count in its CPU figures; so that neither spins
/// through the other's time slice, they sleep as soon as they are idle (`--linger-us 0`)
/// unless --linger-us or --busy-poll says otherwise. l2sw's overlay ends run with their
/// offloads off, as `l2ctl` leaves an overlay's workloads.
///
/// Open vSwitch's userspace datapath (`ovs-netdev`, with `userspace-tso-enable`, so that it
/// carries what the ends offload) is measured where `ovs-vswitchd` is installed. The
/// generator runs on core 0 (and a kernel target's forwarding with it, in the sender's
/// softirq), l2sw (or ovs-vswitchd) on core 1. Nothing outside the namespaces
/// l2bench makes is touched; they are removed on exit.
///
/// Examples:
///   l2bench --quick                                   every target, about a minute
///   l2bench --svg rate.svg                            the full run and its chart
///   l2bench --targets l2sw-bridge,kernel-bridge --sizes 64,1518,9000 --fdb 0
///   l2bench --generator both --offloads both          both generators; TCP, RTT both ways
///   l2bench --json > run.json                         every figure, for a script
#[derive(Debug, Parser)]
#[command(name = "l2bench", version, verbatim_doc_comment)]
struct Args {
    /// A short run for a smoke test (about a minute): 64-byte frames, short trials, 200
    /// round trips, no 1M-MAC table. It fails (exit 1) if any target measured nothing of
    /// something asked, a TCP stream or round trip it did not carry included.
    #[arg(long)]
    quick: bool,
    /// Targets to measure, comma-separated (see --list); default all but an l2sw bridge
    /// whose named receive ring is the daemon's default (`l2sw-bridge` measures that).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
    /// Frame sizes in bytes, FCS included (default 64,128,256,512,1024,1518, or 64 with
    /// --quick; 9000 needs every link at MTU 9000, which l2bench then sets).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Seconds of each rate trial.
    #[arg(long)]
    secs: Option<f64>,
    /// Learned-MAC counts of the FDB-scale trials, comma-separated (0 for none).
    #[arg(long, value_delimiter = ',')]
    fdb: Vec<u32>,
    /// Runs of every target, one after another; each figure reported is the median of the
    /// rounds (default 1; 3 for the README's table).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Seconds of the TCP stream (0 for no TCP test).
    #[arg(long)]
    tcp_secs: Option<f64>,
    /// l2sw targets: keep polling this many microseconds after a frame before sleeping
    /// (default: the daemon's, `l2sw run --linger-us`; 0 for `l2sw-overlay`, whose two
    /// engines share a core), to weigh latency against CPU.
    #[arg(long, value_name = "MICROSECONDS")]
    linger_us: Option<u64>,
    /// l2sw targets: never sleep, as `l2sw run --busy-poll`.
    #[arg(long)]
    busy_poll: bool,
    /// Round trips timed per target, one request every millisecond (0 for none; default
    /// 1000, 200 with --quick).
    #[arg(long)]
    round_trips: Option<usize>,
    /// How the generator sends. Every trial uses the first one; with `both`, the flat-out
    /// 64-byte trial (and its goals) is repeated with sendmmsg.
    #[arg(long, value_enum, default_value_t = GeneratorArg::Ring)]
    generator: GeneratorArg,
    /// The ends' TX offloads (checksum, scatter-gather, TSO, GSO) for TCP and the round trip.
    #[arg(long, value_enum, default_value_t = OffloadsArg::On)]
    offloads: OffloadsArg,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also draw the rate per target and frame size as an SVG chart here.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Measure nothing: print (and chart) the report a `--json` run saved in FILE.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["quick", "targets", "json"])]
    from_json: Option<PathBuf>,
}

/// `--generator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GeneratorArg {
    /// A TPACKET_V2 transmit ring: a burst of frames written into shared slots, one send for
    /// them all, the qdisc skipped.
    Ring,
    /// Batches of frames handed over with sendmmsg (l2bench's generator before the ring).
    Sendmmsg,
    /// The ring for every trial, then sendmmsg for a second set of 64-byte rates.
    Both,
}

/// `--offloads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OffloadsArg {
    /// Left at their defaults (on) for every target.
    On,
    /// The old way: off on the ends of l2sw and OVS targets; kernel targets keep them.
    Off,
    /// On; then TCP and the round trip once more, with them off on l2sw and OVS targets.
    Both,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for t in TARGETS {
            println!("{:<26} {}", t.name, t.describe());
        }
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("l2bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    if let Some(path) = &args.from_json {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let report: Report = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not an l2bench report: {e}", path.display()))?;
        print!("{}", report::table(&report));
        if let Some(svg) = &args.svg {
            report::chart(&report, svg).map_err(|e| e.to_string())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !l2sw_tests::privileged() {
        return Err("needs root: it makes network namespaces and AF_PACKET sockets".into());
    }
    let handover = lab::default_handover().map_err(|e| e.to_string())?;
    let targets: Vec<Target> = if args.targets.is_empty() {
        // Open vSwitch is measured where it is installed.
        let ovs = Ovs::installed();
        if !ovs {
            eprintln!("l2bench: ovs-netdev skipped: Open vSwitch is not installed");
        }
        let ring = match handover {
            Handover::Blocks => "blocks",
            Handover::Frames => "frames",
        };
        for t in TARGETS.iter().filter(|t| t.repeats_default(handover)) {
            eprintln!(
                "l2bench: {t} skipped: l2sw-bridge measures it (the daemon's receive rings \
                 hand over {ring} by default)"
            );
        }
        TARGETS
            .iter()
            .filter(|t| ovs || t.kind != Kind::OvsNetdev)
            .filter(|t| !t.repeats_default(handover))
            .copied()
            .collect()
    } else {
        args.targets
            .iter()
            .map(|n| lab::target(n).ok_or_else(|| format!("no target {n:?} (see --list)")))
            .collect::<Result<_, _>>()?
    };
    let settings = settings(args)?;
    let mtu = if settings.sizes.iter().any(|&s| s > 1518) {
        9000
    } else {
        1500
    };
    let steps: usize = targets.iter().map(|t| settings.steps(t)).sum();
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new((steps * settings.rounds) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let mut rounds: Vec<Vec<run::Results>> = vec![Vec::new(); targets.len()];
    for round in 1..=settings.rounds {
        for (t, kept) in targets.iter().zip(&mut rounds) {
            let r = measure(t, &settings, mtu, handover, &bar);
            let line = match &r.error {
                Some(e) => format!("{t}: failed: {e}"),
                None => format!(
                    "{t}: {:.0} frames/s at 64 B (round {round} of {})",
                    r.rate(64).map_or(0.0, |m| m.fps),
                    settings.rounds
                ),
            };
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            kept.push(r);
        }
    }
    let results: Vec<run::Results> = rounds
        .iter()
        .filter_map(|r| run::Results::median(r))
        .collect();
    bar.finish_and_clear();
    eprintln!(
        "l2bench: {} targets, {} round(s), in {:.0} s",
        targets.len(),
        settings.rounds,
        started.elapsed().as_secs_f64()
    );
    let mut goals = report::goals(&results, &settings.generators);
    let each: Vec<Vec<report::Goal>> = (0..settings.rounds)
        .map(|i| {
            let round: Vec<run::Results> =
                rounds.iter().filter_map(|r| r.get(i).cloned()).collect();
            report::goals(&round, &settings.generators)
        })
        .collect();
    report::with_rounds(&mut goals, &each);
    let report = Report {
        conditions: conditions(args),
        goals,
        rounds: if settings.rounds > 1 {
            // Round by round, in the order they ran.
            (0..settings.rounds)
                .flat_map(|i| rounds.iter().filter_map(move |r| r.get(i).cloned()))
                .collect()
        } else {
            Vec::new()
        },
        settings,
        targets: results,
    };
    if args.json {
        let s = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{s}");
    } else {
        print!("{}", report::table(&report));
    }
    if let Some(path) = &args.svg {
        report::chart(&report, path).map_err(|e| e.to_string())?;
    }
    // The smoke test: every target must have measured everything asked of it.
    let mut failed = false;
    for (t, r) in targets.iter().zip(&report.targets) {
        let missing = r.missing(t, &report.settings);
        if !missing.is_empty() {
            eprintln!("l2bench: {t}: nothing measured for {}", missing.join(", "));
            failed = true;
        }
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds `t` and measures it once.
fn measure(
    t: &Target,
    settings: &Settings,
    mtu: u32,
    handover: Handover,
    bar: &ProgressBar,
) -> run::Results {
    bar.set_message(format!("{t}: building"));
    match Lab::build(*t, mtu, settings.offloads, handover) {
        Ok(lab) => run::measure(lab, settings, &mut |what| {
            bar.inc(1);
            bar.set_message(format!("{t}: {what}"));
        }),
        Err(e) => run::Results::failed(t, e.to_string()),
    }
}

fn settings(args: &Args) -> Result<Settings, String> {
    let quick = args.quick;
    let sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if quick {
        vec![64]
    } else {
        vec![64, 128, 256, 512, 1024, 1518]
    };
    if let Some(bad) = sizes.iter().find(|&&s| !(64..=9018).contains(&s)) {
        return Err(format!("frame size {bad}: between 64 and 9018 bytes"));
    }
    let fdb = if args.fdb == [0] {
        Vec::new()
    } else if !args.fdb.is_empty() {
        args.fdb.clone()
    } else if quick {
        vec![1000, 64_000]
    } else {
        vec![1000, 64_000, 1_000_000]
    };
    Ok(Settings {
        sizes,
        secs: args.secs.unwrap_or(if quick { 0.4 } else { 2.0 }),
        search_steps: if quick { 3 } else { 7 },
        search_secs: if quick { 0.2 } else { 1.0 },
        linger_us: args.linger_us,
        busy_poll: args.busy_poll,
        latency_fraction: 0.5,
        latency_secs: if quick { 0.3 } else { 1.0 },
        tcp_secs: args.tcp_secs.unwrap_or(if quick { 0.5 } else { 3.0 }),
        fdb,
        capacity_rounds: if quick { 1 } else { 5 },
        rounds: usize::from(args.rounds),
        generators: match args.generator {
            GeneratorArg::Ring => vec![GenKind::Ring],
            GeneratorArg::Sendmmsg => vec![GenKind::Sendmmsg],
            GeneratorArg::Both => vec![GenKind::Ring, GenKind::Sendmmsg],
        },
        offloads: match args.offloads {
            OffloadsArg::On => Offloads::On,
            OffloadsArg::Off => Offloads::Off,
            OffloadsArg::Both => Offloads::Both,
        },
        round_trips: args.round_trips.unwrap_or(if quick { 200 } else { 1000 }),
        round_trip_gap_ms: 1.0,
    })
}

fn conditions(args: &Args) -> Conditions {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    Conditions {
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        quick: args.quick,
    }
}
