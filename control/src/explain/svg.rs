//! The SVG renderer: one standalone figure, every step stacked, laid out top to bottom in
//! fixed geometry; all text escaped.

use std::fmt::{self, Write as _};

use super::text::{HASH_NOTE, contrast, hairpin_text, learned_text, reached, rows, wrap_lines};
use super::{Explanation, Hop, StepView, UPSTREAM};
// SVG content and attribute values escape the same five characters as HTML.
use crate::ui::escape as esc;

/// `e` as one standalone SVG figure: every step stacked, each switch a box, ports as rounded
/// boxes, the frame's way as arrows, receivers highlighted, ports it did not reach dashed and
/// crossed, and the rule that decided under each switch.
pub fn render_svg(e: &Explanation) -> String {
    render_svg_many(std::slice::from_ref(e))
}

/// Several explanations stacked in one SVG figure (`l2ctl explain all --format svg`).
pub fn render_svg_many(all: &[Explanation]) -> String {
    let mut svg = Svg::default();
    // Writing into a String cannot fail.
    let _ = all.iter().try_for_each(|e| svg.explanation(e));
    svg.finish()
}

/// SVG geometry, in pixels.
mod px {
    pub(super) const WIDTH: usize = 860;
    pub(super) const MARGIN: usize = 24;
    pub(super) const LINE: usize = 18;
    pub(super) const ROW: usize = 30;
    pub(super) const BOX_TOP: usize = 30;
    pub(super) const IN_X: usize = 40;
    pub(super) const IN_W: usize = 110;
    pub(super) const SW_X: usize = 230;
    pub(super) const SW_W: usize = 190;
    pub(super) const OUT_X: usize = 520;
    pub(super) const OUT_W: usize = 250;
    pub(super) const PORT_H: usize = 22;
    /// Characters of text that fit on a line.
    pub(super) const CHARS: usize = 118;
}

const SENT: &str = "#1a7f37";
const SENT_FILL: &str = "#dafbe1";
const NOT_SENT: &str = "#8c959f";
const CROSS: &str = "#cf222e";
const INGRESS: &str = "#0969da";
const INGRESS_FILL: &str = "#ddf4ff";

/// An SVG figure being laid out top to bottom.
#[derive(Default)]
struct Svg {
    body: String,
    y: usize,
}

impl Svg {
    /// A line of text at the left margin.
    fn text(&mut self, class: &str, s: &str) -> fmt::Result {
        for line in wrap_lines(s, px::CHARS) {
            self.y += px::LINE;
            writeln!(
                self.body,
                r#"<text class="{class}" x="{}" y="{}">{}</text>"#,
                px::MARGIN,
                self.y,
                esc(&line)
            )?;
        }
        Ok(())
    }

    fn explanation(&mut self, e: &Explanation) -> fmt::Result {
        self.y += px::LINE;
        self.text("title", &format!("l2sw explain: {}", e.mode))?;
        self.text("about", e.about)?;
        if let Some(h) = e.upstream_hairpin {
            self.text("about", hairpin_text(h))?;
        }
        for m in &e.members {
            let ip = m.ip.as_deref().map(|ip| format!(", {ip}"));
            let ip = ip.unwrap_or_default();
            self.text("mono", &format!("{}: {}{ip}, {}", m.name, m.mac, m.role))?;
        }
        for (i, s) in e.steps.iter().enumerate() {
            self.step(i + 1, s, e)?;
        }
        self.y += px::LINE;
        Ok(())
    }

    fn step(&mut self, n: usize, s: &StepView, e: &Explanation) -> fmt::Result {
        self.y += px::LINE;
        writeln!(
            self.body,
            r#"<line class="rule" x1="{}" y1="{y}" x2="{}" y2="{y}"/>"#,
            px::MARGIN,
            px::WIDTH - px::MARGIN,
            y = self.y
        )?;
        self.text("step", &format!("{n}. {}", s.what))?;
        self.text("mono", &s.header)?;
        for h in &s.hops {
            self.hop(h, e.switch)?;
        }
        self.y += px::LINE / 2;
        self.text("result", &format!("⇒ {}", reached(&s.receivers)))?;
        if let Some(line) = contrast(s, e) {
            self.text("note", &line)?;
        }
        if s.hashed {
            self.text("note", &format!("note: {HASH_NOTE}"))?;
        }
        Ok(())
    }

    /// A rounded port box with its label, centred on `cy`.
    fn port(&mut self, x: usize, w: usize, cy: usize, class: &str, label: &str) -> fmt::Result {
        writeln!(
            self.body,
            r#"<rect class="{class}" x="{x}" y="{}" width="{w}" height="{}" rx="6"/><text class="{class}" x="{}" y="{}">{}</text>"#,
            cy - px::PORT_H / 2,
            px::PORT_H,
            x + 10,
            cy + 4,
            esc(label)
        )
    }

    fn hop(&mut self, h: &Hop, local: &str) -> fmt::Result {
        let rows = rows(h, local);
        let top = self.y + px::LINE / 2;
        let height = px::BOX_TOP + rows.len() * px::ROW;
        let title = if h.switch == UPSTREAM {
            "upstream bridge"
        } else {
            h.switch
        };
        writeln!(
            self.body,
            r#"<rect class="switch" x="{}" y="{top}" width="{}" height="{height}" rx="12"/><text class="switch" x="{}" y="{}">{}</text><text class="action" x="{}" y="{}">{}</text>"#,
            px::SW_X,
            px::SW_W,
            px::SW_X + px::SW_W / 2,
            top + 20,
            esc(title),
            px::SW_X + px::SW_W / 2,
            top + 20 + px::LINE,
            esc(&h.copies()),
        )?;
        let row_y = |i: usize| top + px::BOX_TOP + i * px::ROW + px::ROW / 2;
        let cy = row_y(0);
        self.port(px::IN_X, px::IN_W, cy, "ingress", &h.ingress)?;
        writeln!(
            self.body,
            r#"<line class="in" x1="{}" y1="{cy}" x2="{}" y2="{cy}" marker-end="url(#arrow-in)"/>"#,
            px::IN_X + px::IN_W,
            px::SW_X - 4,
        )?;
        for (i, r) in rows.iter().enumerate() {
            let cy = row_y(i);
            let (x1, x2) = (px::SW_X + px::SW_W, px::OUT_X - 4);
            if r.sent {
                writeln!(
                    self.body,
                    r#"<line class="sent" x1="{x1}" y1="{cy}" x2="{x2}" y2="{cy}" marker-end="url(#arrow)"/>"#
                )?;
                self.port(px::OUT_X, px::OUT_W, cy, "sent", &r.label)?;
            } else {
                let cx = (x1 + x2) / 2;
                writeln!(
                    self.body,
                    r#"<line class="not" x1="{x1}" y1="{cy}" x2="{x2}" y2="{cy}"/><path class="cross" d="M{} {} l10 10 m0 -10 l-10 10"/>"#,
                    cx - 5,
                    cy - 5,
                )?;
                self.port(px::OUT_X, px::OUT_W, cy, "idle", &r.label)?;
            }
        }
        self.y = top + height;
        self.text("why", &format!("why: {}: {}", h.kernel_fn, h.why))?;
        if let Some(d) = &h.drop {
            self.text("drop", &format!("drop: {}: {}", d.reason, d.description))?;
        }
        if let Some(l) = &h.learned {
            self.text("note", &format!("fdb: {}", learned_text(l)))?;
        }
        if let Some(o) = &h.overlay {
            self.text("note", &format!("vxlan: {o}"))?;
        }
        Ok(())
    }

    fn finish(self) -> String {
        let height = self.y + px::MARGIN;
        format!(
            r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xml:space="preserve" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">
<title>l2sw explain</title>
<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="{SENT}"/></marker>
<marker id="arrow-in" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="{INGRESS}"/></marker>
<style>
text.title {{ font-size: 20px; font-weight: bold; }}
text.about {{ fill: #424a53; }}
text.step {{ font-size: 15px; font-weight: bold; }}
text.mono {{ font-family: DejaVu Sans Mono, Menlo, monospace; font-size: 12px; fill: #57606a; }}
text.result {{ font-weight: bold; }}
text.note {{ font-style: italic; fill: #57606a; }}
text.why {{ font-family: DejaVu Sans Mono, Menlo, monospace; font-size: 12px; }}
text.drop {{ font-family: DejaVu Sans Mono, Menlo, monospace; font-size: 12px; fill: {CROSS}; }}
line.rule {{ stroke: #d0d7de; }}
rect.switch {{ fill: #f6f8fa; stroke: #24292f; stroke-width: 1.5; }}
text.switch {{ font-weight: bold; text-anchor: middle; }}
text.action {{ text-anchor: middle; font-style: italic; fill: #57606a; }}
rect.ingress {{ fill: {INGRESS_FILL}; stroke: {INGRESS}; }}
text.ingress {{ fill: {INGRESS}; font-weight: bold; }}
line.in {{ stroke: {INGRESS}; stroke-width: 2; }}
rect.sent {{ fill: {SENT_FILL}; stroke: {SENT}; stroke-width: 1.5; }}
text.sent {{ fill: {SENT}; font-weight: bold; }}
line.sent {{ stroke: {SENT}; stroke-width: 2; }}
rect.idle {{ fill: #ffffff; stroke: {NOT_SENT}; stroke-dasharray: 4 3; }}
text.idle {{ fill: {NOT_SENT}; }}
line.not {{ stroke: {NOT_SENT}; stroke-dasharray: 4 3; }}
path.cross {{ stroke: {CROSS}; stroke-width: 2; fill: none; }}
</style>
</defs>
<rect width="100%" height="100%" fill="#ffffff"/>
{body}</svg>
"##,
            w = px::WIDTH,
            body = self.body,
        )
    }
}
