//! What a run prints: the table of every target, the goals with their ratios, the JSON
//! document and the SVG chart of rate per target and frame size.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::lab::Offloads;
use super::run::{Ends, Results, Settings};
use super::traffic::GenKind;

/// Where and how a run was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conditions {
    /// `uname -r`.
    pub kernel: String,
    /// Cores the machine has.
    pub cores: usize,
    /// The CPU's model name.
    pub cpu: String,
    /// The command line.
    pub command: String,
    /// Whether it was `--quick`.
    pub quick: bool,
}

/// One goal of the project, met or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// What is asked.
    pub goal: String,
    /// The measured ratio (or value); 0 if it `failed`.
    pub measured: f64,
    /// What it must reach (or stay within).
    pub threshold: f64,
    /// Whether it does.
    pub met: bool,
    /// The figure must stay at or below the threshold (a latency), not reach it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub at_most: bool,
    /// Why there is no figure (a target did not carry the traffic): the goal is not met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// With several rounds, the figure in each round, in the order they ran (rounds
    /// without one left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<f64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A figure a goal judges: a value, or why there is none.
#[derive(Debug, Clone, PartialEq)]
enum Figure {
    Value(f64),
    Failed(String),
}

/// `a / b`, or the reason one of them has no value.
fn ratio(a: Option<Figure>, b: Option<Figure>) -> Option<Figure> {
    match (a?, b?) {
        (Figure::Value(a), Figure::Value(b)) => (b > 0.0).then(|| Figure::Value(a / b)),
        (Figure::Failed(e), _) | (_, Figure::Failed(e)) => Some(Figure::Failed(e)),
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Conditions.
    pub conditions: Conditions,
    /// Settings.
    pub settings: Settings,
    /// Every target's results (with several rounds, the median of each figure).
    pub targets: Vec<Results>,
    /// With several rounds, every round's results, in the order they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Results>,
    /// The goals that this run's targets let us judge.
    pub goals: Vec<Goal>,
}

impl Report {
    /// The results of target `name`.
    pub fn get(&self, name: &str) -> Option<&Results> {
        self.targets.iter().find(|r| r.target == name)
    }
}

/// The goals this set of results can judge: the 64-byte ones for each generator of
/// `generators`. A goal whose figure a target did not carry (no TCP connection, no reply) is
/// judged not met, with the reason.
pub fn goals(targets: &[Results], generators: &[GenKind]) -> Vec<Goal> {
    let get = |n: &str| targets.iter().find(|r| r.target == n && r.error.is_none());
    let value = |v: Option<f64>| v.map(Figure::Value);
    let mut out = Vec::new();
    let mut goal = |what: String, figure: Option<Figure>, threshold: f64, at_most: bool| {
        let (measured, failed) = match figure {
            Some(Figure::Value(m)) if m.is_finite() => (m, None),
            Some(Figure::Failed(e)) => (0.0, Some(e)),
            _ => return,
        };
        let met = failed.is_none()
            && if at_most {
                measured <= threshold
            } else {
                measured >= threshold
            };
        out.push(Goal {
            goal: what,
            measured,
            threshold,
            met,
            at_most,
            failed,
            rounds: Vec::new(),
        });
    };
    for &g in generators {
        let rate64 = |n: &str| value(get(n).and_then(|r| r.rate_with(g, 64)).map(|r| r.fps));
        let l2 = || rate64("l2sw-bridge");
        let of = format!(", 64 B, {g}");
        for (base, name, threshold) in [
            ("direct", "direct veth", 0.9),
            ("kernel-bridge", "kernel bridge", 1.5),
            ("ovs-netdev", "OVS netdev", 2.0),
        ] {
            let what = format!("l2sw bridge / {name}{of}");
            goal(what, ratio(l2(), rate64(base)), threshold, false);
        }
        for mode in ["bridge", "private", "vepa", "passthru"] {
            goal(
                format!("l2sw macvlan {mode} / kernel macvlan {mode}{of}"),
                ratio(
                    rate64(&format!("l2sw-macvlan-{mode}")),
                    rate64(&format!("kernel-macvlan-{mode}")),
                ),
                1.0,
                false,
            );
        }
        goal(
            format!("l2sw overlay / kernel vxlan{of}"),
            ratio(rate64("l2sw-overlay"), rate64("kernel-vxlan")),
            1.2,
            false,
        );
    }
    goal(
        "capacity of one l2sw core, 64 B (M frames/s)".into(),
        value(
            get("l2sw-bridge")
                .and_then(|r| r.capacity.as_ref())
                .map(|c| c.fps / 1e6),
        ),
        1.2,
        false,
    );
    let zero_loss = |n: &str| value(get(n).and_then(|r| r.zero_loss_fps));
    goal(
        "zero-loss rate: l2sw bridge on TAP / on AF_PACKET".into(),
        ratio(zero_loss("l2sw-bridge-tap"), zero_loss("l2sw-bridge")),
        0.8,
        false,
    );
    let tcp = |n: &str| {
        let e = &get(n)?.ends;
        match (e.tcp_gbps, &e.tcp_error) {
            (Some(g), _) => Some(Figure::Value(g)),
            (None, Some(why)) => Some(Figure::Failed(format!("{n}: {why}"))),
            (None, None) => None,
        }
    };
    for (target, name, threshold) in [
        ("l2sw-bridge", "l2sw bridge", 0.8),
        ("l2sw-bridge-tap", "l2sw bridge on TAP", 0.5),
    ] {
        goal(
            format!("TCP: {name} / kernel bridge"),
            ratio(tcp(target), tcp("kernel-bridge")),
            threshold,
            false,
        );
    }
    goal(
        "TCP: l2sw overlay / kernel vxlan".into(),
        ratio(tcp("l2sw-overlay"), tcp("kernel-vxlan")),
        0.5,
        false,
    );
    if let Some(l) = get("l2sw-bridge").and_then(|r| r.latency.as_ref()) {
        let fig = |v: f64| {
            Some(if l.samples > 0 {
                Figure::Value(v)
            } else {
                Figure::Failed("l2sw-bridge: no frame timed".into())
            })
        };
        let half = "at half load, l2sw bridge (µs)";
        goal(
            format!("one-way latency p50 {half}"),
            fig(l.p50_us),
            20.0,
            true,
        );
        goal(
            format!("one-way latency p99 {half}"),
            fig(l.p99_us),
            100.0,
            true,
        );
    }
    let rtt =
        get("l2sw-bridge").and_then(|r| match (&r.ends.round_trip, &r.ends.round_trip_error) {
            (Some(rt), _) if rt.samples > 0 => Some(Figure::Value(rt.p50_us)),
            (_, Some(why)) => Some(Figure::Failed(format!("l2sw-bridge: {why}"))),
            _ => None,
        });
    goal("round trip p50, l2sw bridge (µs)".into(), rtt, 60.0, true);
    if let Some(r) = get("l2sw-bridge") {
        let small = r.fdb.iter().find(|p| p.macs == 1000).map(|p| p.fps);
        if let Some(big) = r
            .fdb
            .iter()
            .filter(|p| p.macs > 1000)
            .max_by_key(|p| p.macs)
        {
            goal(
                format!("l2sw bridge with {} MACs / with 1000", big.macs),
                ratio(Some(Figure::Value(big.fps)), value(small)),
                0.7,
                false,
            );
        }
    }
    out
}

/// Gives each goal its figure in every round: `rounds[i]` is round `i`'s goals (judged on
/// that round's results alone). Nothing with fewer than two rounds.
pub fn with_rounds(goals: &mut [Goal], rounds: &[Vec<Goal>]) {
    if rounds.len() < 2 {
        return;
    }
    for g in goals {
        g.rounds = rounds
            .iter()
            .filter_map(|r| r.iter().find(|x| x.goal == g.goal && x.failed.is_none()))
            .map(|x| x.measured)
            .collect();
    }
}

fn kfps(f: f64) -> String {
    if f >= 1e6 {
        format!("{:.2}M", f / 1e6)
    } else {
        format!("{:.0}K", f / 1e3)
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

fn pct_us(p50: f64, p99: f64) -> String {
    format!("{p50:.0}/{p99:.0}µs")
}

/// The TCP cell: the figure, `fail` (reason below the table) or `-` (not measured).
fn tcp_cell(e: &Ends) -> String {
    match (e.tcp_gbps, &e.tcp_error) {
        (Some(g), None) => format!("{g:.1}G"),
        (Some(g), Some(_)) => format!("{g:.1}G*"),
        (None, Some(_)) => "fail".to_owned(),
        (None, None) => "-".to_owned(),
    }
}

/// The round-trip cell: p50/p99, `fail` or `-`.
fn rtt_cell(e: &Ends) -> String {
    match (&e.round_trip, &e.round_trip_error) {
        (Some(r), _) if r.samples > 0 => pct_us(r.p50_us, r.p99_us),
        (_, Some(_)) => "fail".to_owned(),
        _ => "-".to_owned(),
    }
}

/// What the run's settings were, in one line.
fn setup_line(s: &Settings) -> String {
    let offloads = match s.offloads {
        Offloads::On => "on",
        Offloads::Off => "off on l2sw and OVS targets",
        Offloads::Both => "on (and again off, below)",
    };
    format!(
        "64-byte rates from the {} generator; TCP and round trips with the ends' offloads {offloads}\n",
        s.generator()
    )
}

/// The report as text tables.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let primary = r.settings.generator();
    s.push_str(&setup_line(&r.settings));
    let direct = r
        .get("direct")
        .and_then(|d| d.rate_with(primary, 64))
        .map(|d| d.fps);
    let _ = writeln!(
        s,
        "{:<24} {:>8} {:>6} {:>7} {:>9} {:>17} {:>12} {:>7} {:>8} {:>9}",
        "target (64 B)",
        "frames/s",
        "loss",
        "×direct",
        "zero-loss",
        "lat p50/p99/p999",
        "RTT p50/p99",
        "TCP",
        "CPU s/M",
        "capacity"
    );
    for t in &r.targets {
        if let Some(e) = &t.error {
            let _ = writeln!(s, "{:<24} failed: {e}", t.target);
            continue;
        }
        let m = t.rate_with(primary, 64);
        let lat = t.latency.as_ref().map_or_else(
            || "-".to_owned(),
            |l| format!("{:.0}/{:.0}/{:.0}µs", l.p50_us, l.p99_us, l.p999_us),
        );
        let _ = writeln!(
            s,
            "{:<24} {:>8} {:>5.1}% {:>7} {:>9} {:>17} {:>12} {:>7} {:>8} {:>9}",
            t.target,
            opt(m.map(|m| m.fps), kfps),
            m.map_or(0.0, |m| m.loss * 100.0),
            opt(
                m.map(|m| m.fps).zip(direct).map(|(a, d)| a / d),
                |x| format!("{x:.2}")
            ),
            opt(t.zero_loss_fps, kfps),
            lat,
            rtt_cell(&t.ends),
            tcp_cell(&t.ends),
            opt(m.and_then(|m| m.cpu_s_per_mframe), |c| format!("{c:.2}")),
            opt(t.capacity.as_ref().map(|c| c.fps), kfps),
        );
    }
    let ok = || r.targets.iter().filter(|t| t.error.is_none());
    let sizes: Vec<usize> = r.settings.sizes.clone();
    if sizes.len() > 1 {
        let _ = write!(s, "\n{:<24}", "frames/s (loss) by size");
        for z in &sizes {
            let _ = write!(s, " {:>13}", format!("{z} B"));
        }
        s.push('\n');
        for t in ok() {
            let _ = write!(s, "{:<24}", t.target);
            for z in &sizes {
                let cell = t.rate_with(primary, *z).map_or_else(
                    || "-".to_owned(),
                    |m| format!("{} ({:.0}%)", kfps(m.fps), m.loss * 100.0),
                );
                let _ = write!(s, " {cell:>13}");
            }
            s.push('\n');
        }
    }
    let gens = &r.settings.generators;
    if gens.len() > 1 {
        let _ = write!(s, "\n{:<24}", "64 B by generator");
        for g in gens {
            let _ = write!(s, " {:>20}", g.name());
        }
        s.push('\n');
        for t in ok() {
            let _ = write!(s, "{:<24}", t.target);
            for &g in gens {
                let base = r.get("direct").and_then(|d| d.rate_with(g, 64));
                let cell = t.rate_with(g, 64).map_or_else(
                    || "-".to_owned(),
                    |m| {
                        let x = base
                            .filter(|b| b.fps > 0.0)
                            .map(|b| format!(" {:.2}×", m.fps / b.fps))
                            .unwrap_or_default();
                        format!("{} ({:.0}%){x}", kfps(m.fps), m.loss * 100.0)
                    },
                );
                let _ = write!(s, " {cell:>20}");
            }
            s.push('\n');
        }
    }
    if ok().any(|t| t.offloads_off.is_some()) {
        let _ = writeln!(
            s,
            "\n{:<24} {:>7} {:>7} {:>12} {:>12}",
            "ends' offloads on / off", "TCP on", "off", "RTT on", "off"
        );
        for t in ok().filter(|t| t.offloads_off.is_some()) {
            let off = t.offloads_off.clone().unwrap_or_default();
            let _ = writeln!(
                s,
                "{:<24} {:>7} {:>7} {:>12} {:>12}",
                t.target,
                tcp_cell(&t.ends),
                tcp_cell(&off),
                rtt_cell(&t.ends),
                rtt_cell(&off)
            );
        }
    }
    let mut notes = Vec::new();
    for t in ok() {
        let mut note = |e: &Ends, what: &str| {
            if let Some(why) = &e.round_trip_error {
                notes.push(format!("{}: round trip{what}: {why}", t.target));
            }
            if let Some(why) = &e.tcp_error {
                notes.push(format!("{}: TCP{what}: {why}", t.target));
            }
        };
        note(&t.ends, "");
        if let Some(off) = &t.offloads_off {
            note(off, " (offloads off)");
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(
            s,
            "\nnot carried through the target (fail) or cut short (*)"
        );
        for n in notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    let fdb: Vec<_> = r.targets.iter().filter(|t| !t.fdb.is_empty()).collect();
    if !fdb.is_empty() {
        let _ = writeln!(s, "\nFDB scale (64 B, frames/s; l2sw CPU s per M frames)");
        for t in fdb {
            let _ = write!(s, "{:<24}", t.target);
            for p in &t.fdb {
                let _ = write!(
                    s,
                    "  {} MACs: {}{}",
                    p.macs,
                    kfps(p.fps),
                    opt(p.cpu_s_per_mframe, |c| format!(" ({c:.2})"))
                );
            }
            s.push('\n');
        }
    }
    if !r.goals.is_empty() {
        let _ = writeln!(s, "\ngoals");
        for g in &r.goals {
            let measured = if g.failed.is_some() {
                "failed".to_owned()
            } else {
                format!("{:.3}", g.measured)
            };
            let rounds = if g.rounds.is_empty() {
                String::new()
            } else {
                let each: Vec<String> = g.rounds.iter().map(|x| format!("{x:.2}")).collect();
                format!(" [{}]", each.join(", "))
            };
            let _ = writeln!(
                s,
                "  {:<5} {:<64} {:>8} ({} {}){rounds}",
                if g.met { "met" } else { "NOT" },
                g.goal,
                measured,
                if g.at_most { "≤" } else { "≥" },
                g.threshold
            );
        }
    }
    s
}

/// The colour of a target in the chart: one hue per mode, so that the kernel's line and
/// l2sw's line of a mode pair up (l2sw's drawn thick); the baselines grey and black.
fn hue(target: &str) -> RGBColor {
    let mode = target
        .trim_start_matches("kernel-")
        .trim_start_matches("l2sw-");
    match mode {
        "direct" => BLACK,
        "bridge" => RGBColor(0x1f, 0x77, 0xb4),
        "bridge-v2" => RGBColor(0x17, 0xbe, 0xcf),
        "bridge-v3" => RGBColor(0x0b, 0x5f, 0x8a),
        "bridge-tap" => RGBColor(0x94, 0x67, 0xbd),
        "macvlan-bridge" => RGBColor(0x2c, 0xa0, 0x2c),
        "macvlan-private" => RGBColor(0xd6, 0x27, 0x28),
        "macvlan-vepa" => RGBColor(0xff, 0x7f, 0x0e),
        "macvlan-passthru" => RGBColor(0x8c, 0x56, 0x4b),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// Draws rate (M frames/s) against frame size, one line per target, into an SVG file: the
/// frame sizes evenly spaced, the legend beside the plot.
pub fn chart(r: &Report, path: &Path) -> Result<(), BenchError> {
    let err =
        |e: &dyn std::fmt::Display| BenchError::Setup(format!("chart {}: {e}", path.display()));
    let sizes = &r.settings.sizes;
    let primary = r.settings.generator();
    let series: Vec<(&str, Vec<(f64, f64)>)> = r
        .targets
        .iter()
        .filter(|t| t.error.is_none() && !t.rates.is_empty())
        .map(|t| {
            let pts = sizes
                .iter()
                .enumerate()
                .filter_map(|(i, z)| t.rate_with(primary, *z).map(|m| (i as f64, m.fps / 1e6)))
                .collect();
            (t.target.as_str(), pts)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.1f64, f64::max)
        * 1.1;
    let last = sizes.len().saturating_sub(1).max(1) as f64;
    let root = SVGBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (plot, legend) = root.split_horizontally(860);
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            "l2bench: frames/s received by frame size (median of the rounds)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2..last + 0.2, 0.0..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_labels(sizes.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                sizes
                    .get(i as usize)
                    .map_or(String::new(), |z| format!("{z} B"))
            } else {
                String::new()
            }
        })
        .x_desc("frame size (FCS included)")
        .y_desc("M frames/s")
        .disable_x_mesh()
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = hue(name);
        let style = if name.starts_with("l2sw") {
            color.stroke_width(3)
        } else {
            color.mix(0.8).stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), style))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| err(&e))?;
        // The legend, one row a target, beside the plot.
        let y = 60 + 28 * i as i32;
        legend
            .draw(&PathElement::new(vec![(0, y), (30, y)], style))
            .map_err(|e| err(&e))?;
        legend
            .draw(&Text::new(
                name.to_string(),
                (38, y - 8),
                ("sans-serif", 15).into_font(),
            ))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::e2e::run::{Capacity, FdbPoint, Latency, Rate, RoundTrip};

    fn target(name: &str, fps: f64) -> Results {
        let mut r = Results::failed(&crate::e2e::lab::target(name).unwrap(), String::new());
        r.error = None;
        for generator in [GenKind::Ring, GenKind::Sendmmsg] {
            r.rates.push(Rate {
                size: 64,
                offered_fps: fps,
                // The sendmmsg generator offers a fifth less.
                fps: if generator == GenKind::Ring {
                    fps
                } else {
                    fps * 0.8
                },
                gbps: 0.0,
                loss: 0.0,
                cpu_s_per_mframe: None,
                generator,
            });
        }
        r
    }

    fn find<'a>(goals: &'a [Goal], prefix: &str) -> &'a Goal {
        goals.iter().find(|g| g.goal.starts_with(prefix)).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn run() -> Vec<Results> {
        let mut l2 = target("l2sw-bridge", 900.0);
        l2.capacity = Some(Capacity {
            frames: 1,
            fps: 1.3e6,
            cpu_us_per_frame: 0.7,
        });
        l2.zero_loss_fps = Some(500.0);
        l2.ends.tcp_gbps = Some(8.0);
        l2.latency = Some(Latency {
            at_fps: 250.0,
            samples: 100,
            p50_us: 15.0,
            p99_us: 120.0,
            p999_us: 300.0,
        });
        l2.ends.round_trip = Some(RoundTrip {
            sent: 200,
            samples: 200,
            p50_us: 45.0,
            p99_us: 90.0,
        });
        for (macs, fps) in [(1000, 900.0), (1_000_000, 600.0)] {
            l2.fdb.push(FdbPoint {
                macs,
                fps,
                loss: 0.0,
                cpu_s_per_mframe: None,
            });
        }
        let mut tap = target("l2sw-bridge-tap", 700.0);
        tap.zero_loss_fps = Some(300.0);
        tap.ends.tcp_error = Some("no TCP connection to 10.77.0.2:1 in 2 s".into());
        let mut kb = target("kernel-bridge", 600.0);
        kb.ends.tcp_gbps = Some(10.0);
        vec![
            target("direct", 1000.0),
            kb,
            l2,
            tap,
            target("kernel-macvlan-vepa", 800.0),
            target("l2sw-macvlan-vepa", 800.0),
        ]
    }

    #[test]
    fn goals_are_ratios_of_the_same_run_and_judged_against_their_thresholds() {
        let g = goals(&run(), &[GenKind::Ring]);
        let direct = find(&g, "l2sw bridge / direct veth, 64 B, ring");
        assert!(close(direct.measured, 0.9) && direct.met);
        let kernel = find(&g, "l2sw bridge / kernel bridge, 64 B, ring");
        assert!(close(kernel.measured, 1.5) && kernel.met);
        assert!(find(&g, "l2sw macvlan vepa").met);
        assert!(find(&g, "capacity").met);
        let tap = find(&g, "zero-loss rate: l2sw bridge on TAP");
        assert!(close(tap.measured, 0.6) && !tap.met);
        let tcp = find(&g, "TCP: l2sw bridge / kernel");
        assert!(close(tcp.measured, 0.8) && tcp.met && !tcp.at_most);
        let fdb = find(&g, "l2sw bridge with 1000000 MACs");
        assert!(close(fdb.measured, 600.0 / 900.0) && !fdb.met);
        // Only the chosen generator's 64-byte goals.
        assert!(!g.iter().any(|g| g.goal.contains("sendmmsg")));
        // Nothing is judged without both sides: no OVS, no macvlan bridge here.
        assert!(
            !g.iter()
                .any(|g| g.goal.contains("OVS") || g.goal.contains("macvlan bridge"))
        );
    }

    #[test]
    fn latencies_must_stay_within_their_bounds() {
        let g = goals(&run(), &[GenKind::Ring]);
        let p50 = find(&g, "one-way latency p50");
        assert!(p50.at_most && close(p50.measured, 15.0) && p50.met);
        let p99 = find(&g, "one-way latency p99");
        assert!(p99.at_most && close(p99.threshold, 100.0) && !p99.met);
        let rtt = find(&g, "round trip p50");
        assert!(rtt.at_most && close(rtt.measured, 45.0) && rtt.met);
        // No reply at all fails the goal, with the reason.
        let mut r = run();
        r[2].ends.round_trip = None;
        r[2].ends.round_trip_error = Some("no UDP reply".into());
        let g = goals(&r, &[GenKind::Ring]);
        let rtt = find(&g, "round trip p50");
        assert!(!rtt.met);
        assert_eq!(rtt.failed.as_deref(), Some("l2sw-bridge: no UDP reply"));
    }

    #[test]
    fn a_stream_the_target_did_not_carry_fails_its_goal_with_the_reason() {
        let g = goals(&run(), &[GenKind::Ring]);
        let tcp = find(&g, "TCP: l2sw bridge on TAP / kernel bridge");
        assert!(!tcp.met && close(tcp.measured, 0.0));
        assert_eq!(
            tcp.failed.as_deref(),
            Some("l2sw-bridge-tap: no TCP connection to 10.77.0.2:1 in 2 s")
        );
    }

    #[test]
    fn the_overlay_is_judged_against_the_kernels_vteps() {
        let mut r = run();
        let mut ov = target("l2sw-overlay", 300.0);
        ov.ends.tcp_gbps = Some(2.0);
        let mut kv = target("kernel-vxlan", 200.0);
        kv.ends.tcp_gbps = Some(5.0);
        r.extend([ov, kv]);
        let g = goals(&r, &[GenKind::Ring]);
        let rate = find(&g, "l2sw overlay / kernel vxlan, 64 B, ring");
        assert!(close(rate.measured, 1.5) && close(rate.threshold, 1.2) && rate.met);
        let tcp = find(&g, "TCP: l2sw overlay / kernel vxlan");
        assert!(close(tcp.measured, 0.4) && close(tcp.threshold, 0.5) && !tcp.met);
        // Without the overlay targets there is nothing to judge.
        let g = goals(&run(), &[GenKind::Ring]);
        assert!(!g.iter().any(|g| g.goal.contains("overlay")));
    }

    #[test]
    fn the_64_byte_goals_are_judged_for_each_generator() {
        let g = goals(&run(), &[GenKind::Ring, GenKind::Sendmmsg]);
        let ring = find(&g, "l2sw bridge / direct veth, 64 B, ring");
        let mmsg = find(&g, "l2sw bridge / direct veth, 64 B, sendmmsg");
        // Each generator against itself: the same ratio here.
        assert!(close(ring.measured, 0.9) && close(mmsg.measured, 0.9));
        assert_eq!(g.iter().filter(|g| g.goal.contains("capacity")).count(), 1);
    }

    #[test]
    fn each_goal_keeps_its_figure_in_every_round() {
        let mut g = goals(&run(), &[GenKind::Ring]);
        let mut slow = run();
        slow[2].rates[0].fps = 450.0;
        let rounds = vec![
            goals(&run(), &[GenKind::Ring]),
            goals(&slow, &[GenKind::Ring]),
        ];
        with_rounds(&mut g, &rounds);
        let direct = find(&g, "l2sw bridge / direct veth");
        assert_eq!(direct.rounds.len(), 2);
        assert!(close(direct.rounds[0], 0.9) && close(direct.rounds[1], 0.45));
        // A failed figure has no round figures.
        assert!(find(&g, "TCP: l2sw bridge on TAP").rounds.is_empty());
        with_rounds(&mut g[..1], &rounds[..1]);
        assert_eq!(g[0].rounds.len(), 2, "one round leaves them as they were");
    }

    fn report(targets: Vec<Results>) -> Report {
        Report {
            conditions: Conditions {
                kernel: "6.x".into(),
                cores: 2,
                cpu: String::new(),
                command: "l2bench".into(),
                quick: true,
            },
            settings: Settings {
                sizes: vec![64],
                secs: 0.1,
                search_steps: 0,
                search_secs: 0.1,
                linger_us: None,
                busy_poll: false,
                latency_fraction: 0.5,
                latency_secs: 0.0,
                tcp_secs: 0.0,
                fdb: Vec::new(),
                capacity_rounds: 0,
                rounds: 1,
                generators: vec![GenKind::Ring, GenKind::Sendmmsg],
                offloads: Offloads::Both,
                round_trips: 10,
                round_trip_gap_ms: 1.0,
            },
            targets,
            rounds: Vec::new(),
            goals: Vec::new(),
        }
    }

    #[test]
    fn the_table_shows_failures_and_every_target() {
        let mut bad = target("l2sw-bridge-v2", 1.0);
        bad.error = Some("create veth: File exists".into());
        let mut tap = target("l2sw-bridge-tap", 1.0);
        tap.ends.tcp_error = Some("no TCP connection".into());
        tap.offloads_off = Some(Ends {
            tcp_gbps: Some(1.5),
            round_trip: Some(RoundTrip {
                sent: 10,
                samples: 10,
                p50_us: 30.0,
                p99_us: 80.0,
            }),
            ..Ends::default()
        });
        let mut r = report(vec![target("direct", 800_000.0), bad, tap]);
        r.goals = goals(&r.targets, &r.settings.generators);
        let t = table(&r);
        assert!(t.contains("direct") && t.contains("800K"));
        assert!(t.contains("l2sw-bridge-v2           failed: create veth: File exists"));
        assert!(t.contains("ring generator; TCP and round trips with the ends' offloads on"));
        // The second generator's rates, and the figures with offloads off.
        assert!(t.contains("640K (0%) 1.00×"), "{t}");
        assert!(t.contains("1.5G") && t.contains("30/80µs"), "{t}");
        assert!(t.contains("l2sw-bridge-tap: TCP: no TCP connection"), "{t}");
    }

    #[test]
    fn a_report_saved_before_the_new_fields_still_prints() {
        let old = r#"{
          "conditions": {"kernel": "6.18", "cores": 2, "cpu": "x", "command": "l2bench",
                         "quick": true},
          "settings": {"sizes": [64], "secs": 0.4, "search_steps": 3, "search_secs": 0.2,
                       "latency_fraction": 0.5, "latency_secs": 0.3, "tcp_secs": 0.5,
                       "fdb": [], "capacity_rounds": 1, "rounds": 1},
          "targets": [{"target": "direct", "path": "a -> b", "zero_loss_fps": 1.0,
            "rates": [{"size": 64, "offered_fps": 2.0, "fps": 1000.0, "gbps": 0.1,
                       "loss": 0.0, "cpu_s_per_mframe": null}],
            "latency": null, "tcp_gbps": 2.5, "capacity": null, "fdb": [], "error": null}],
          "goals": [{"goal": "TCP: l2sw bridge / kernel bridge", "measured": 0.2,
                     "threshold": 0.5, "met": false}]
        }"#;
        let r: Report = serde_json::from_str(old).unwrap();
        let t = table(&r);
        assert!(t.contains("sendmmsg generator"), "{t}");
        assert!(t.contains("2.5G") && t.contains("(≥ 0.5)"), "{t}");
        assert!(!r.goals[0].at_most && r.goals[0].failed.is_none());
    }
}
