//! What a run prints: the table of every target, the goals with their ratios, the JSON
//! document and the SVG chart of rate per target and frame size.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::run::{Results, Settings};

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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    /// What is asked.
    pub goal: String,
    /// The measured ratio (or value).
    pub measured: f64,
    /// What it must reach.
    pub threshold: f64,
    /// Whether it does.
    pub met: bool,
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

/// The goals this set of results can judge.
pub fn goals(targets: &[Results]) -> Vec<Goal> {
    let get = |n: &str| targets.iter().find(|r| r.target == n);
    let rate64 = |n: &str| get(n).and_then(|r| r.rate(64)).map(|r| r.fps);
    let mut out = Vec::new();
    let mut goal = |what: String, measured: Option<f64>, threshold: f64| {
        if let Some(m) = measured.filter(|m| m.is_finite()) {
            out.push(Goal {
                goal: what,
                measured: m,
                threshold,
                met: m >= threshold,
            });
        }
    };
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
    let l2 = rate64("l2sw-bridge");
    goal(
        "l2sw bridge (AF_PACKET) / direct veth, 64 B".into(),
        ratio(l2, rate64("direct")),
        0.9,
    );
    goal(
        "l2sw bridge (AF_PACKET) / kernel bridge, 64 B".into(),
        ratio(l2, rate64("kernel-bridge")),
        1.5,
    );
    goal(
        "l2sw bridge (AF_PACKET) / OVS netdev, 64 B".into(),
        ratio(l2, rate64("ovs-netdev")),
        2.0,
    );
    for mode in ["bridge", "private", "vepa", "passthru"] {
        goal(
            format!("l2sw macvlan {mode} / kernel macvlan {mode}, 64 B"),
            ratio(
                rate64(&format!("l2sw-macvlan-{mode}")),
                rate64(&format!("kernel-macvlan-{mode}")),
            ),
            1.0,
        );
    }
    goal(
        "capacity of one l2sw core, 64 B (M frames/s)".into(),
        get("l2sw-bridge")
            .and_then(|r| r.capacity.as_ref())
            .map(|c| c.fps / 1e6),
        1.2,
    );
    goal(
        "TCP: l2sw bridge / kernel bridge".into(),
        ratio(
            get("l2sw-bridge").and_then(|r| r.tcp_gbps),
            get("kernel-bridge").and_then(|r| r.tcp_gbps),
        ),
        0.5,
    );
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
                ratio(Some(big.fps), small),
                0.7,
            );
        }
    }
    out
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

/// The report as text tables.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let direct = r.get("direct").and_then(|d| d.rate(64)).map(|d| d.fps);
    let _ = writeln!(
        s,
        "{:<24} {:>8} {:>6} {:>7} {:>9} {:>17} {:>7} {:>8} {:>12}",
        "target (64 B)",
        "frames/s",
        "loss",
        "×direct",
        "zero-loss",
        "lat p50/p99/p999",
        "TCP",
        "CPU s/M",
        "capacity"
    );
    for t in &r.targets {
        if let Some(e) = &t.error {
            let _ = writeln!(s, "{:<24} failed: {e}", t.target);
            continue;
        }
        let m = t.rate(64);
        let lat = t.latency.as_ref().map_or_else(
            || "-".to_owned(),
            |l| format!("{:.0}/{:.0}/{:.0}µs", l.p50_us, l.p99_us, l.p999_us),
        );
        let _ = writeln!(
            s,
            "{:<24} {:>8} {:>5.1}% {:>7} {:>9} {:>17} {:>7} {:>8} {:>12}",
            t.target,
            opt(m.map(|m| m.fps), kfps),
            m.map_or(0.0, |m| m.loss * 100.0),
            opt(
                m.map(|m| m.fps).zip(direct).map(|(a, d)| a / d),
                |x| format!("{x:.2}")
            ),
            opt(t.zero_loss_fps, kfps),
            lat,
            opt(t.tcp_gbps, |g| format!("{g:.1}G")),
            opt(m.and_then(|m| m.cpu_s_per_mframe), |c| format!("{c:.2}")),
            opt(t.capacity.as_ref().map(|c| c.fps), kfps),
        );
    }
    let sizes: Vec<usize> = r.settings.sizes.clone();
    if sizes.len() > 1 {
        let _ = write!(s, "\n{:<24}", "frames/s (loss) by size");
        for z in &sizes {
            let _ = write!(s, " {:>13}", format!("{z} B"));
        }
        s.push('\n');
        for t in r.targets.iter().filter(|t| t.error.is_none()) {
            let _ = write!(s, "{:<24}", t.target);
            for z in &sizes {
                let cell = t.rate(*z).map_or_else(
                    || "-".to_owned(),
                    |m| format!("{} ({:.0}%)", kfps(m.fps), m.loss * 100.0),
                );
                let _ = write!(s, " {cell:>13}");
            }
            s.push('\n');
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
            let _ = writeln!(
                s,
                "  {:<5} {:<52} {:>7.3} (≥ {})",
                if g.met { "met" } else { "NOT" },
                g.goal,
                g.measured,
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
    let series: Vec<(&str, Vec<(f64, f64)>)> = r
        .targets
        .iter()
        .filter(|t| t.error.is_none() && !t.rates.is_empty())
        .map(|t| {
            let pts = sizes
                .iter()
                .enumerate()
                .filter_map(|(i, z)| t.rate(*z).map(|m| (i as f64, m.fps / 1e6)))
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
    use crate::e2e::run::{Capacity, FdbPoint, Rate};

    fn target(name: &str, fps: f64) -> Results {
        let mut r = Results::failed(&crate::e2e::lab::target(name).unwrap(), String::new());
        r.error = None;
        r.rates.push(Rate {
            size: 64,
            offered_fps: fps,
            fps,
            gbps: 0.0,
            loss: 0.0,
            cpu_s_per_mframe: None,
        });
        r
    }

    fn find<'a>(goals: &'a [Goal], prefix: &str) -> &'a Goal {
        goals.iter().find(|g| g.goal.starts_with(prefix)).unwrap()
    }

    #[test]
    fn goals_are_ratios_of_the_same_run_and_judged_against_their_thresholds() {
        let mut l2 = target("l2sw-bridge", 900.0);
        l2.capacity = Some(Capacity {
            frames: 1,
            fps: 1.3e6,
            cpu_us_per_frame: 0.7,
        });
        l2.tcp_gbps = Some(4.0);
        for (macs, fps) in [(1000, 900.0), (1_000_000, 600.0)] {
            l2.fdb.push(FdbPoint {
                macs,
                fps,
                loss: 0.0,
                cpu_s_per_mframe: None,
            });
        }
        let mut kb = target("kernel-bridge", 600.0);
        kb.tcp_gbps = Some(10.0);
        let all = [
            target("direct", 1000.0),
            kb,
            l2,
            target("kernel-macvlan-vepa", 800.0),
            target("l2sw-macvlan-vepa", 800.0),
        ];
        let g = goals(&all);
        let direct = find(&g, "l2sw bridge (AF_PACKET) / direct");
        assert!((direct.measured - 0.9).abs() < 1e-9 && direct.met);
        let kernel = find(&g, "l2sw bridge (AF_PACKET) / kernel");
        assert!((kernel.measured - 1.5).abs() < 1e-9 && kernel.met);
        assert!(find(&g, "l2sw macvlan vepa").met);
        assert!(find(&g, "capacity").met);
        let tcp = find(&g, "TCP");
        assert!((tcp.measured - 0.4).abs() < 1e-9 && !tcp.met);
        let fdb = find(&g, "l2sw bridge with 1000000 MACs");
        assert!((fdb.measured - 600.0 / 900.0).abs() < 1e-9 && !fdb.met);
        // Nothing is judged without both sides: no OVS, no macvlan bridge here.
        assert!(
            !g.iter()
                .any(|g| g.goal.contains("OVS") || g.goal.contains("macvlan bridge"))
        );
    }

    #[test]
    fn the_table_shows_failures_and_every_target() {
        let mut bad = target("l2sw-bridge-tap", 1.0);
        bad.error = Some("create veth: File exists".into());
        let r = Report {
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
                latency_fraction: 0.5,
                latency_secs: 0.0,
                tcp_secs: 0.0,
                fdb: Vec::new(),
                capacity_rounds: 0,
                rounds: 1,
            },
            targets: vec![target("direct", 800_000.0), bad],
            rounds: Vec::new(),
            goals: Vec::new(),
        };
        let t = table(&r);
        assert!(t.contains("direct") && t.contains("800K"));
        assert!(t.contains("l2sw-bridge-tap          failed: create veth: File exists"));
    }
}
