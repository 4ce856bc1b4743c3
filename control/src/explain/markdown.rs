//! The markdown renderer: docs/modes.md, every mode's text diagrams with the pitfalls of
//! docs/spec.md §6.

use std::fmt::{self, Write as _};

use super::text::{text_steps, text_topology};
use super::{ExplainError, Explanation, REGENERATE, UpstreamHairpin, explain_modes};
use crate::modes::Mode;

/// The content of docs/modes.md: every mode explained, with its pitfalls.
pub fn modes_markdown() -> Result<String, ExplainError> {
    page(Mode::ALL)
}

const MD_INTRO: &str = "\
How a frame moves in each mode l2sw mirrors, drawn from the forwarding core itself: every \
arrow below is a decision of an l2sw `Switch`, named by the Linux kernel function whose rule \
it follows. Each mode runs its canonical scenario (`control/src/modes.rs`), the same frames \
`l2ctl verify` sends through the kernel.

How to read a diagram: a box is a switch. `━━━▶┥` is the frame coming in by a port; on the \
right is every port of the switch, `┝━━━━▶` where the frame goes out, `├╌╌╌╌✗` where it does \
not, and `host` when the switch's own stack gets a copy. For macvlan and ipvlan, `uplink` is \
the wire to an upstream bridge (an l2sw bridge standing in for the next switch) with the \
outside station `e` behind it: a frame sent there is followed into the next box, and back if \
the upstream sends it back. `why` names the rule, `drop` the counter a drop is counted under, \
`fdb` what a learning bridge learned.

Run it yourself: `l2ctl explain MODE` (or `all`), `--upstream-hairpin on|off|both`, \
`--format text|svg|json|markdown`.";

/// One of docs/spec.md's "what users trip over" (§6), and how to see it with l2sw.
struct Pitfall {
    title: &'static str,
    text: &'static str,
}

const HOST_ACCESS: Pitfall = Pitfall {
    title: "The host cannot reach its own macvlan workloads ([spec §6.1](spec.md#pitfall-host-access))",
    text: "The uplink's own stack transmits straight onto the wire (`dev_queue_xmit`): a frame \
           from the host to a sub-interface's MAC never passes the macvlan receive path, so it \
           leaves and does not come back. Fix: `l2ctl host-access NET` gives the host a \
           bridge-mode sub-interface of its own, with an address reserved by `--aux-address` \
           and a route to the workloads. See it: `l2ctl demo` fails and fixes it live; \
           `l2ctl trace NET` (coming) shows the host's frame leaving by the uplink.",
};

const PROMISC: Pitfall = Pitfall {
    title: "Promiscuous uplinks ([spec §6.4](spec.md#pitfall-promiscuous))",
    text: "A passthru sub-interface makes its uplink promiscuous (unless `nopromisc`), and so \
           does every sub-interface on a NIC that cannot filter unicast (veth among them): the \
           uplink then takes in every frame on the wire. The uplink in these diagrams is a \
           veth: `e`'s unknown unicast gets in and reaches the uplink's own stack instead of \
           being dropped by the uplink's filter (`FilterMiss`); in passthru it reaches `a`. See \
           it: `l2ctl explain macvlan-passthru`, `l2ctl verify macvlan-passthru` (the kernel \
           agrees), and `l2ctl fdb NET` on an l2sw bridge upstream, which learns every MAC the \
           uplink speaks for.",
};

const VEPA: Pitfall = Pitfall {
    title: "VEPA without a hairpinning switch behaves like private for local traffic \
            ([spec §6.5](spec.md#pitfall-vepa))",
    text: "Every frame leaves by the uplink, and `a` and `b` meet only if the upstream switch \
           sends frames back out the port they came in by (hairpin, reflective relay). Compare \
           the two runs above, or see it with `l2ctl explain macvlan-vepa` and `l2ctl verify \
           macvlan-vepa --upstream-hairpin off` (the kernel agrees). On an l2sw bridge \
           network upstream, `--hairpin` turns reflective relay on.",
};

const PRIVATE: Pitfall = Pitfall {
    title: "Private is not private for unicast behind a hairpinning switch ([spec §9](spec.md#measured))",
    text: "`macvlan_handle_frame` delivers unicast from the wire by destination MAC whatever \
           the mode, so `a`'s unicast to `b`, reflected by a hairpinning upstream, reaches `b`; \
           only broadcasts are held back (they return to the sender alone). Compare the two \
           runs above; `l2ctl verify macvlan-private --upstream-hairpin on` shows the kernel \
           does the same.",
};

const OVERLAY_MTU: Pitfall = Pitfall {
    title: "An overlay costs 50 bytes of every frame ([spec §10](spec.md#overlay))",
    text: "Outer Ethernet, IPv4, UDP and VXLAN headers take 50 bytes, so a workload whose MTU \
           is the underlay's sends frames that no longer fit once wrapped: small pings work, \
           full-size TCP segments vanish. Docker's overlay networks and `l2ctl network create \
           -d overlay` give workloads the underlay's MTU less 50 (1450 on 1500).",
};

const ONE_MAC: Pitfall = Pitfall {
    title: "Switch ports that limit MACs ([spec §6.3](spec.md#pitfall-mac-limit))",
    text: "ipvlan is the cure rather than the pitfall: every slave speaks with the uplink's \
           MAC, so the upstream learns one address where macvlan would show one per workload. \
           See it in the `fdb` lines of the upstream boxes above, and with `l2ctl fdb NET` on \
           an l2sw bridge upstream.",
};

fn pitfalls(mode: Mode) -> &'static [Pitfall] {
    match mode {
        Mode::Bridge | Mode::BridgeHairpin | Mode::BridgeIsolated | Mode::MacvlanSource => &[],
        Mode::MacvlanBridge => &[HOST_ACCESS, PROMISC],
        Mode::MacvlanPrivate => &[HOST_ACCESS, PRIVATE],
        Mode::MacvlanVepa => &[HOST_ACCESS, VEPA],
        Mode::MacvlanPassthru => &[PROMISC],
        Mode::IpvlanL2 => &[ONE_MAC],
        Mode::Overlay => &[OVERLAY_MTU],
    }
}

/// The markdown page for `modes`.
pub(super) fn page(modes: &[Mode]) -> Result<String, ExplainError> {
    let mut out = String::new();
    let mut sections = Vec::new();
    for &mode in modes {
        sections.push((mode, explain_modes(&[mode], UpstreamHairpin::Both)?));
    }
    // Writing into a String cannot fail.
    let _ = md(&mut out, &sections);
    Ok(out)
}

fn md(out: &mut String, sections: &[(Mode, Vec<Explanation>)]) -> fmt::Result {
    writeln!(out, "# Forwarding modes, frame by frame\n")?;
    writeln!(
        out,
        "<!-- Generated: do not edit. Regenerate with `{REGENERATE}`. -->\n"
    )?;
    writeln!(out, "{MD_INTRO}\n")?;
    for (mode, _) in sections {
        writeln!(out, "- [`{mode}`](#{mode}): {}", mode.about())?;
    }
    for (mode, views) in sections {
        let Some(first) = views.first() else {
            continue;
        };
        writeln!(out, "\n## {mode}\n")?;
        writeln!(out, "_{}._\n", mode.about())?;
        code_block(out, |s| text_topology(s, first))?;
        for e in views {
            let heading = match e.upstream_hairpin {
                None => "Frame by frame",
                Some(true) => "Reflected by a hairpinning upstream (hairpin on)",
                Some(false) if views.len() > 1 => "Frame by frame, upstream hairpin off",
                Some(false) => {
                    "Frame by frame, upstream hairpin off (on changes nothing anyone receives \
                     here)"
                }
            };
            writeln!(out, "\n### {heading}\n")?;
            code_block(out, |s| text_steps(s, e))?;
        }
        let pits = pitfalls(*mode);
        if !pits.is_empty() {
            writeln!(out, "\n### Pitfalls\n")?;
        }
        for p in pits {
            writeln!(out, "- **{}.** {}", p.title, p.text)?;
        }
    }
    Ok(())
}

/// A fenced `text` block around what `body` writes (its leading blank line dropped).
fn code_block(out: &mut String, body: impl FnOnce(&mut String) -> fmt::Result) -> fmt::Result {
    let mut inner = String::new();
    body(&mut inner)?;
    writeln!(out, "```text\n{}\n```", inner.trim_matches('\n'))
}
