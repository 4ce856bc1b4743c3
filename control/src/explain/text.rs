//! The text renderer: per frame, each switch it crossed drawn as a box of at most 80 columns,
//! the frame's way in on the left, every port on the right with an arrow or a cross, and the
//! kernel rule that decided. Also the pieces `docs/modes.md` is made of.

use std::fmt::{self, Write as _};

use super::{Explanation, Hop, LearnedView, MemberView, StepView, UPLINK, UPSTREAM};

/// Terminal width the text diagrams keep to.
const WIDTH: usize = 80;

/// `e` as terminal diagrams: the topology, then per frame each switch it crossed as a box, the
/// frame's way in on the left, every port on the right with an arrow (sent) or a cross (not),
/// and the kernel rule that decided.
pub fn render_text(e: &Explanation) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = text_title(&mut out, e)
        .and_then(|()| text_topology(&mut out, e))
        .and_then(|()| text_steps(&mut out, e));
    out
}

/// `text` cut into lines of at most `width` columns, at spaces.
pub(super) fn wrap_lines(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && cols(&line) + 1 + cols(word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Writes `text` after `first`, continuation lines indented as deep, within [`WIDTH`].
fn wrap(out: &mut String, first: &str, text: &str) -> fmt::Result {
    let indent = cols(first);
    for (i, line) in wrap_lines(text, WIDTH - indent).iter().enumerate() {
        let lead = if i == 0 { first } else { "" };
        writeln!(out, "{lead:indent$}{line}")?;
    }
    Ok(())
}

/// Display columns of `s` (every character here is one column wide).
fn cols(s: &str) -> usize {
    s.chars().count()
}

pub(super) fn hairpin_text(on: bool) -> &'static str {
    if on {
        "upstream bridge: hairpin on (reflective relay: it sends a frame back down the uplink \
         when its destination is there, and floods back down it too)"
    } else {
        "upstream bridge: hairpin off (it never sends a frame back out the port it came in by)"
    }
}

fn text_title(out: &mut String, e: &Explanation) -> fmt::Result {
    writeln!(out, "{}", e.mode)?;
    wrap(out, "  ", e.about)?;
    if let Some(h) = e.upstream_hairpin {
        wrap(out, "  ", hairpin_text(h))?;
    }
    writeln!(out)
}

/// The topology as a small picture and a table of members.
pub(super) fn text_topology(out: &mut String, e: &Explanation) -> fmt::Result {
    let (outside, local): (Vec<&MemberView>, Vec<&MemberView>) =
        e.members.iter().partition(|m| m.outside);
    let w = local.iter().map(|m| cols(m.name)).max().unwrap_or(0);
    let switch = e.switch;
    for (i, m) in local.iter().enumerate() {
        let joint = match (i, local.len()) {
            (_, 1) => "───",
            (0, _) => "──┬",
            (i, n) if i + 1 == n => "──┘",
            _ => "──┤",
        };
        write!(out, "  {:w$} {joint}", m.name)?;
        if i == 0 {
            write!(out, "── {switch}")?;
            if !outside.is_empty() {
                let names: Vec<&str> = outside.iter().map(|m| m.name).collect();
                write!(out, " ── uplink ══ upstream bridge ── {}", names.join(", "))?;
            }
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    let w = e.members.iter().map(|m| cols(m.name)).max().unwrap_or(0);
    for m in &e.members {
        let ip =
            m.ip.as_deref()
                .map(|ip| format!("{ip:<11} "))
                .unwrap_or_default();
        wrap(out, &format!("  {:w$}  {}  {ip}", m.name, m.mac), &m.role)?;
    }
    Ok(())
}

pub(super) fn text_steps(out: &mut String, e: &Explanation) -> fmt::Result {
    for (i, s) in e.steps.iter().enumerate() {
        writeln!(out)?;
        text_step(out, i + 1, s, e)?;
    }
    Ok(())
}

/// "b receives it", "a and e receive it", "nobody receives it".
pub(super) fn reached(receivers: &[String]) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(r) = receivers.get(i) {
        let n = receivers[i..].iter().take_while(|x| *x == r).count();
        names.push(if n == 1 {
            r.clone()
        } else {
            format!("{r} ({n} copies)")
        });
        i += n;
    }
    match names.as_slice() {
        [] => "nobody receives it".into(),
        [one] => format!("{one} receives it"),
        [rest @ .., last] => format!("{} and {last} receive it", rest.join(", ")),
    }
}

/// "with hairpin on upstream: b receives it", when the other upstream setting changes who
/// receives `s`.
pub(super) fn contrast(s: &StepView, e: &Explanation) -> Option<String> {
    let (other, hairpin) = (s.other_upstream.as_ref()?, e.upstream_hairpin?);
    let setting = if hairpin { "off" } else { "on" };
    Some(format!(
        "with hairpin {setting} upstream: {}",
        reached(other)
    ))
}

pub(super) const HASH_NOTE: &str = "the kernel filters multicast through a hash, so an unjoined group \
                         can slip through there; l2sw filters exactly";

fn text_step(out: &mut String, n: usize, s: &StepView, e: &Explanation) -> fmt::Result {
    wrap(out, &format!("{n:>2}. "), &s.what)?;
    wrap(out, "    ", &s.header)?;
    for hop in &s.hops {
        writeln!(out)?;
        text_hop(out, hop, e.switch)?;
    }
    writeln!(out)?;
    writeln!(out, "    ⇒ {}", reached(&s.receivers))?;
    if let Some(line) = contrast(s, e) {
        wrap(out, "      ", &line)?;
    }
    if s.hashed {
        wrap(out, "    note ", HASH_NOTE)?;
    }
    Ok(())
}

/// One row on the right of a switch box: a port (or the host side) and whether it got the
/// frame.
pub(super) struct Row {
    pub(super) label: String,
    pub(super) sent: bool,
}

/// The rows of `h`: every port, with where it leads, then the host side if it got a copy.
/// `local` names the switch below the upstream bridge.
pub(super) fn rows(h: &Hop, local: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = h
        .ports
        .iter()
        .map(|p| Row {
            label: match (p.as_str(), h.switch) {
                (UPLINK, UPSTREAM) => format!("uplink → back down to {local}"),
                (UPLINK, _) => "uplink → upstream bridge".into(),
                _ => p.clone(),
            },
            sent: h.egress.contains(p),
        })
        .collect();
    if h.host {
        let side = match h.switch {
            "macvlan" | "ipvlan" => "host (the uplink's own stack)",
            _ => "host (the bridge device)",
        };
        rows.push(Row {
            label: side.into(),
            sent: true,
        });
    }
    rows
}

fn text_hop(out: &mut String, h: &Hop, local: &str) -> fmt::Result {
    let rows = rows(h, local);
    let w = cols(&h.ingress).max(6);
    let lead = w + 9; // "    " + label + " ━━━▶"
    let title = if h.switch == UPSTREAM {
        "upstream bridge"
    } else {
        h.switch
    };
    let inner = (cols(title) + 4).max(12);
    let rule = "─".repeat(inner - cols(title) - 3);
    writeln!(out, "{:lead$}┌─ {title} {rule}┐", "")?;
    for (i, r) in rows.iter().enumerate() {
        let copies = h.copies();
        let (left, body) = if i == 0 {
            (format!("    {:>w$} ━━━▶┥", h.ingress), copies.as_str())
        } else {
            (format!("{:lead$}│", ""), "")
        };
        let right = if r.sent {
            "┝━━━━▶"
        } else {
            "├╌╌╌╌✗"
        };
        writeln!(out, "{left} {body:<0$}{right} {1}", inner - 1, r.label)?;
    }
    writeln!(out, "{:lead$}└{}┘", "", "─".repeat(inner))?;
    wrap(out, "    why  ", &format!("{}: {}", h.kernel_fn, h.why))?;
    if let Some(d) = &h.drop {
        wrap(
            out,
            "    drop ",
            &format!("{}: {}", d.reason, d.description),
        )?;
    }
    if let Some(l) = &h.learned {
        wrap(out, "    fdb  ", &learned_text(l))?;
    }
    if let Some(o) = &h.overlay {
        wrap(out, "    vxlan ", o)?;
    }
    Ok(())
}

pub(super) fn learned_text(l: &LearnedView) -> String {
    match &l.moved_from {
        Some(from) => format!("learned {} on {} (moved from {from})", l.mac, l.port),
        None => format!("learned {} on {}", l.mac, l.port),
    }
}
