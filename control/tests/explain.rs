//! `l2ctl explain` checked against the forwarding core, not against stored text alone: every
//! step's receivers are compared with an independent run of the same frames (switches wired
//! here from the catalogue, frames followed by `Switch::process` and the batch's egress
//! queues, where explain reads `Switch::decide`), and docs/spec.md's rules are checked by name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::net::IpAddr;

use l2sw::fwd::{
    Batch, BridgePort, IpvlanConfig, MacvlanMode, MacvlanPort, PortConfig, PortId, Role, RxFilter,
    Switch, SwitchConfig, Tick, UplinkPort,
};
use l2sw_control::explain::{
    self, Explanation, Format, StepView, UpstreamHairpin, explain, render_svg, render_text,
};
use l2sw_control::modes::{self, JOINED, Mode, UPLINK_MAC, scenario, topology};

/// A mode's topology wired by hand: the mode's switch (0) and the upstream bridge (1).
struct Wired {
    sws: [Switch; 2],
}

fn wired(mode: Mode, hairpin: bool) -> Wired {
    let t = topology(mode);
    let cfg = match mode {
        Mode::Bridge | Mode::BridgeHairpin | Mode::BridgeIsolated => SwitchConfig::bridge(),
        Mode::IpvlanL2 => SwitchConfig::ipvlan(IpvlanConfig::default()),
        _ => SwitchConfig::macvlan(),
    };
    let mut local = Switch::new(cfg).unwrap();
    let mut up = Switch::new(SwitchConfig::bridge()).unwrap();
    if t.upstream {
        let veth = UplinkPort {
            promiscuous: false,
            unicast_filtering: false,
        };
        let uplink = PortConfig::new("uplink", Role::Uplink(veth)).with_mac(UPLINK_MAC);
        local.add_port(uplink).unwrap();
        let down = BridgePort {
            hairpin,
            ..BridgePort::default()
        };
        up.add_port(PortConfig::new("uplink", Role::Bridge(down)))
            .unwrap();
    }
    for m in &t.members {
        let (sw, cfg) = match &m.role {
            modes::MemberRole::Outside => (&mut up, PortConfig::bridge(m.name)),
            modes::MemberRole::BridgePort { hairpin, isolated } => {
                let flags = BridgePort {
                    hairpin: *hairpin,
                    isolated: *isolated,
                    ..BridgePort::default()
                };
                (&mut local, PortConfig::new(m.name, Role::Bridge(flags)))
            }
            modes::MemberRole::Sub {
                mode,
                source,
                joins,
            } => {
                let cfg = MacvlanPort {
                    mode: *mode,
                    source: source.iter().copied().collect(),
                    ..MacvlanPort::default()
                };
                let mut filter = RxFilter::unicast([m.mac]);
                if *joins {
                    filter = RxFilter::Unicast {
                        own: [m.mac].into_iter().collect(),
                        groups: [JOINED].into_iter().collect(),
                        allmulti: false,
                    };
                }
                let mut p = PortConfig::new(m.name, Role::Macvlan(cfg)).with_filter(filter);
                if *mode != MacvlanMode::Passthru {
                    p = p.with_mac(m.mac);
                }
                (&mut local, p)
            }
            modes::MemberRole::Slave => (
                &mut local,
                PortConfig::ipvlan(m.name, vec![IpAddr::V4(m.ip)]),
            ),
        };
        sw.add_port(cfg).unwrap();
    }
    Wired { sws: [local, up] }
}

impl Wired {
    /// Who receives `frame` from `from`, following it across the uplink as often as it goes.
    fn deliveries(&mut self, from: &str, frame: &[u8]) -> Vec<String> {
        let start = (0..2)
            .find_map(|i| Some((i, self.sws[i].port_by_name(from)?)))
            .unwrap();
        let mut todo = VecDeque::from([start]);
        let mut got = Vec::new();
        let mut hops = 0;
        while let Some((i, port)) = todo.pop_front() {
            hops += 1;
            assert!(hops < 8, "frame loops between the switches");
            let mut batch: Batch<&[u8]> = Batch::new();
            batch.push(port, frame).unwrap();
            self.sws[i].process(Tick::from_secs(1), &mut batch);
            for (p, _) in batch.egress() {
                let name = self.sws[i].port(p).unwrap().cfg.name.clone();
                if name == "uplink" {
                    let other = 1 - i;
                    let peer: PortId = self.sws[other].port_by_name("uplink").unwrap();
                    todo.push_back((other, peer));
                } else {
                    got.push(name);
                }
            }
        }
        got.sort();
        got
    }
}

fn has_upstream(mode: Mode) -> bool {
    topology(mode).upstream
}

#[test]
fn every_step_matches_an_independent_run_of_the_core() {
    // The overlay spans three switches joined by VXLAN ports: its own test is below.
    for &mode in Mode::ALL.iter().filter(|m| **m != Mode::Overlay) {
        for hairpin in [false, true] {
            let e = explain(mode, hairpin).unwrap();
            let frames = scenario(mode);
            assert_eq!(e.steps.len(), frames.len(), "{mode}");
            let mut w = wired(mode, hairpin);
            let mut flipped = wired(mode, !hairpin);
            for (s, f) in e.steps.iter().zip(&frames) {
                let ours = w.deliveries(f.from, &f.frame);
                let other = flipped.deliveries(f.from, &f.frame);
                let ctx = format!("{mode}, hairpin {hairpin}, {:?}", s.what);
                assert_eq!(s.receivers, ours, "{ctx}");
                assert_eq!(s.from, f.from, "{ctx}");
                let expect_other = (has_upstream(mode) && other != ours).then_some(other);
                assert_eq!(s.other_upstream, expect_other, "{ctx}");
                assert!(!s.hops.is_empty(), "{ctx}");
                // The last switch of a delivered frame sent it to a receiver.
                for r in &s.receivers {
                    assert!(s.hops.iter().any(|h| h.egress.contains(r)), "{ctx}: {r}");
                }
            }
        }
    }
}

fn step<'a>(e: &'a Explanation, what: &str) -> &'a StepView {
    e.steps
        .iter()
        .find(|s| s.what == what)
        .unwrap_or_else(|| panic!("{}: no step {what:?}", e.mode))
}

/// Who receives step `what` of `mode` with the upstream hairpin as given.
fn got(mode: Mode, hairpin: bool, what: &str) -> Vec<String> {
    step(&explain(mode, hairpin).unwrap(), what)
        .receivers
        .clone()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bridge_forwards_known_unicast_and_floods_unknown_but_never_back_out() {
    let e = explain(Mode::Bridge, false).unwrap();
    assert_eq!(
        step(&e, "peer unicast a → b (b is known)").receivers,
        names(&["b"])
    );
    assert_eq!(
        step(&e, "unknown unicast from a").receivers,
        names(&["b", "c"])
    );
    let back = step(&e, "unicast a → the station behind a's own port");
    assert!(back.receivers.is_empty());
    let h = &back.hops[0];
    assert_eq!(h.kernel_fn, "should_deliver");
    assert_eq!(h.drop.as_ref().unwrap().reason, "Reflect");
    // The learning is shown where it happens.
    let first = &step(&e, "broadcast from a").hops[0];
    let l = first.learned.as_ref().unwrap();
    assert_eq!(
        (l.mac.as_str(), l.port.as_str()),
        ("02:00:00:00:00:01", "a")
    );
}

#[test]
fn bridge_hairpin_sends_a_frame_back_to_the_station_behind_the_same_port() {
    let w = "unicast a → the station behind a's own port";
    assert_eq!(got(Mode::BridgeHairpin, false, w), names(&["a"]));
}

#[test]
fn bridge_isolated_ports_reach_only_non_isolated_ones() {
    let e = explain(Mode::BridgeIsolated, false).unwrap();
    let ab = step(&e, "peer unicast a → b (b is known)");
    assert!(ab.receivers.is_empty());
    assert_eq!(ab.hops[0].drop.as_ref().unwrap().reason, "Isolated");
    assert_eq!(step(&e, "unicast a → c").receivers, names(&["c"]));
}

#[test]
fn macvlan_bridge_delivers_between_peers_inside() {
    let e = explain(Mode::MacvlanBridge, false).unwrap();
    let s = step(&e, "peer unicast a → b");
    assert_eq!(s.receivers, names(&["b"]));
    assert_eq!(s.hops.len(), 1, "never on the wire");
    assert_eq!(s.hops[0].kernel_fn, "macvlan_queue_xmit");
}

#[test]
fn macvlan_private_unicast_comes_back_through_a_hairpin_but_broadcast_never_does() {
    let m = Mode::MacvlanPrivate;
    assert!(!got(m, false, "peer unicast a → b").contains(&"b".into()));
    // docs/spec.md §9, measured: the code, not the docs, is right.
    assert!(got(m, true, "peer unicast a → b").contains(&"b".into()));
    assert_eq!(got(m, true, "broadcast from a"), names(&["a", "e"]));
    assert_eq!(got(m, false, "broadcast from a"), names(&["e"]));
}

#[test]
fn macvlan_vepa_peers_meet_only_through_a_hairpinning_upstream() {
    let m = Mode::MacvlanVepa;
    let off = explain(m, false).unwrap();
    let s = step(&off, "peer unicast a → b");
    assert!(!s.receivers.contains(&"b".into()));
    assert!(s.other_upstream.as_ref().unwrap().contains(&"b".into()));
    assert_eq!(got(m, false, "peer unicast b → a"), Vec::<String>::new());
    assert!(got(m, true, "peer unicast a → b").contains(&"b".into()));
    assert!(got(m, true, "broadcast from a").contains(&"b".into()));
    assert!(!got(m, false, "broadcast from a").contains(&"b".into()));
}

#[test]
fn macvlan_passthru_takes_every_unicast_from_the_wire() {
    let m = Mode::MacvlanPassthru;
    let e = explain(m, false).unwrap();
    let s = step(&e, "unknown unicast from e");
    assert_eq!(s.receivers, names(&["a"]));
    assert_eq!(
        s.hops.last().unwrap().why,
        l2sw::fwd::Why::MvPassthru.describe()
    );
    // docs/spec.md §9, measured: with hairpin, a gets its own broadcast back.
    assert!(got(m, true, "broadcast from a").contains(&"a".into()));
}

#[test]
fn macvlan_source_gets_copies_of_the_listed_sources_frames() {
    let e = explain(Mode::MacvlanSource, false).unwrap();
    for s in e.steps.iter().filter(|s| s.from == "e") {
        assert!(s.receivers.contains(&"s".into()), "{}", s.what);
    }
    for s in e.steps.iter().filter(|s| s.from != "e") {
        assert!(!s.receivers.contains(&"s".into()), "{}", s.what);
    }
    assert_eq!(
        step(&e, "unicast e → a (s listens for e)").receivers,
        names(&["a", "s"])
    );
}

#[test]
fn ipvlan_tells_slaves_apart_by_ip() {
    let e = explain(Mode::IpvlanL2, false).unwrap();
    let s = step(&e, "IPv4 a → b (same MAC, told apart by IP)");
    assert_eq!(s.receivers, names(&["b"]));
    assert_eq!(s.hops[0].kernel_fn, "ipvlan_xmit_mode_l2");
    assert_eq!(
        step(&e, "IPv4 e → a, over the uplink").receivers,
        names(&["a"])
    );
    assert!(
        step(&e, "IPv4 e → an address nobody has")
            .receivers
            .is_empty()
    );
    // The upstream learns the one MAC every slave shares.
    let learned: Vec<_> = e
        .steps
        .iter()
        .flat_map(|s| &s.hops)
        .filter(|h| h.switch == "upstream" && h.ingress == "uplink")
        .filter_map(|h| h.learned.as_ref())
        .map(|l| l.mac.clone())
        .collect();
    assert_eq!(learned, vec![UPLINK_MAC.to_string()]);
}

#[test]
fn both_upstreams_are_shown_only_where_the_hairpin_changes_something() {
    let count = |m| {
        explain::explain_modes(&[m], UpstreamHairpin::Both)
            .unwrap()
            .len()
    };
    assert_eq!(count(Mode::Bridge), 1);
    assert_eq!(count(Mode::MacvlanVepa), 2);
    assert_eq!(count(Mode::MacvlanPrivate), 2);
    assert_eq!(count(Mode::MacvlanPassthru), 2);
    let on = explain::explain_modes(&[Mode::MacvlanVepa], UpstreamHairpin::On).unwrap();
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].upstream_hairpin, Some(true));
    assert_eq!(explain(Mode::Bridge, true).unwrap().upstream_hairpin, None);
}

#[test]
fn docs_modes_md_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/modes.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let fresh = explain::modes_markdown().unwrap();
    let cli = explain::render(Format::Markdown, Mode::ALL, UpstreamHairpin::Both).unwrap();
    assert!(fresh == cli, "the CLI's markdown must be docs/modes.md");
    assert!(
        committed == fresh,
        "docs/modes.md is out of date: run \
         `cargo run -p l2sw-control -- explain all --format markdown > docs/modes.md`"
    );
}

#[test]
fn docs_modes_html_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/modes.html");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let fresh = l2sw_control::ui::modes_html().unwrap();
    let cli = explain::render(Format::Html, Mode::ALL, UpstreamHairpin::Both).unwrap();
    assert!(fresh == cli, "the CLI's html must be docs/modes.html");
    assert!(
        committed == fresh,
        "docs/modes.html is out of date: run `{}`",
        l2sw_control::ui::REGENERATE
    );
}

#[test]
fn text_diagrams_fit_a_terminal() {
    for &mode in Mode::ALL {
        for hairpin in [false, true] {
            let text = render_text(&explain(mode, hairpin).unwrap());
            for line in text.lines() {
                assert!(line.chars().count() <= 80, "{mode}: {line:?}");
            }
            assert!(text.contains("why  "), "{mode}");
        }
    }
    let e = explain(Mode::MacvlanVepa, false).unwrap();
    let text = render_text(&e);
    assert!(text.contains("⇒ nobody receives it"), "{text}");
    assert!(text.contains("with hairpin on upstream:"), "{text}");
}

/// Checks that `xml` is one element with balanced, properly nested tags and no bare `&`.
fn well_formed(xml: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = xml.trim_start();
    if let Some(decl) = rest.strip_prefix("<?xml") {
        rest = &decl[decl.find("?>").ok_or("unterminated declaration")? + 2..];
    }
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        if open.is_empty() && !rest[..lt].trim().is_empty() {
            return Err(format!("text outside the root: {:?}", &rest[..lt]));
        }
        let gt = rest[lt..].find('>').ok_or("unterminated tag")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = open.pop().ok_or(format!("</{name}> closes nothing"))?;
            if top != name.trim() {
                return Err(format!("<{top}> closed by </{name}>"));
            }
            continue;
        }
        if open.is_empty() {
            roots += 1;
        }
        let name = tag.split_whitespace().next().ok_or("empty tag")?;
        let quotes = tag.matches('"').count();
        if !quotes.is_multiple_of(2) || tag.contains('<') {
            return Err(format!("bad attributes in <{tag}>"));
        }
        check_text(tag)?;
        if !tag.ends_with('/') {
            open.push(name);
        }
    }
    match (open.as_slice(), roots, rest.trim()) {
        ([], 1, "") => Ok(()),
        (o, r, t) => Err(format!("unclosed {o:?}, {r} roots, trailing {t:?}")),
    }
}

/// Every `&` starts an entity.
fn check_text(s: &str) -> Result<(), String> {
    for (i, _) in s.match_indices('&') {
        let ent = &s[i..s[i..].find(';').map_or(s.len(), |j| i + j + 1)];
        if !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&ent) {
            return Err(format!("bare & at {ent:?}"));
        }
    }
    Ok(())
}

#[test]
fn svg_is_well_formed_and_escapes_text() {
    for &mode in Mode::ALL {
        let svg = render_svg(&explain(mode, true).unwrap());
        well_formed(&svg).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(svg.contains("marker-end"), "{mode}");
    }
    let mut e = explain(Mode::Bridge, false).unwrap();
    e.steps[0].what = r#"<script>"a" & 'b'</script>"#.into();
    let svg = render_svg(&e);
    well_formed(&svg).unwrap();
    assert!(svg.contains("&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"));
    let all = explain::render(Format::Svg, Mode::ALL, UpstreamHairpin::Both).unwrap();
    well_formed(&all).unwrap();
    assert!(well_formed("<svg><g></svg></g>").is_err());
    assert!(well_formed("<svg>a & b</svg>").is_err());
}

#[test]
fn json_carries_the_same_steps() {
    let e = explain(Mode::MacvlanVepa, true).unwrap();
    let v = explain::render_json(&e);
    assert_eq!(v["mode"], "macvlan-vepa");
    assert_eq!(v["upstream_hairpin"], true);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), e.steps.len());
    for (j, s) in steps.iter().zip(&e.steps) {
        let r: Vec<String> = serde_json::from_value(j["receivers"].clone()).unwrap();
        assert_eq!(r, s.receivers);
    }
    assert_eq!(steps[0]["hops"][0]["action"], "forward");
    let all = explain::render(Format::Json, &[Mode::MacvlanVepa], UpstreamHairpin::Both).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2);
}

#[test]
fn the_overlay_explains_head_end_replication_learned_vteps_and_split_horizon() {
    let e = explain(Mode::Overlay, false).unwrap();
    let got: Vec<(&str, Vec<&str>)> = e
        .steps
        .iter()
        .map(|s| (s.from, s.receivers.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", vec!["b", "c", "d"]),
            ("b", vec!["a"]),
            ("a", vec!["b", "c", "d"]),
            ("c", vec!["a"]),
            ("a", vec!["c"]),
            ("d", vec!["a"]),
        ]
    );
    let notes = |i: usize| -> Vec<String> {
        e.steps[i]
            .hops
            .iter()
            .filter_map(|h| h.overlay.clone())
            .collect()
    };
    // The broadcast: the all-zeros entries, one copy per remote, each received by vxlan_rcv.
    let first = notes(0);
    assert!(first[0].contains("all-zeros") && first[0].contains("192.0.2.2, 192.0.2.3"));
    assert!(
        first[1..]
            .iter()
            .all(|n| n.starts_with("vxlan_rcv from VTEP 192.0.2.1"))
    );
    assert!(first[1].contains("vxlan_snoop"));
    // The learned unicast: one copy, to the VTEP snooped from the broadcast.
    assert!(notes(1)[0].contains("vxlan_xmit: the FDB names VTEP 192.0.2.1"));
    assert_eq!(e.steps[4].hops.len(), 2, "a → c crosses to h3 alone");
    // Split horizon: nothing that came from the overlay goes back into it.
    for s in &e.steps {
        for h in s.hops.iter().filter(|h| h.ingress == "vxlan") {
            assert!(!h.egress.iter().any(|p| p == "vxlan"), "{}", s.what);
        }
    }
    assert!(
        notes(5).is_empty(),
        "local traffic never enters the overlay"
    );
}

#[test]
fn receivers_are_the_member_ports_sent_to_as_the_explorer_counts_them() {
    // The explorer (control/src/ui/app.js, walkReceivers) counts a port as a receiver when a
    // member owns it; every other port is a way between switches (`uplink`, `vxlan`). Held
    // here against the core's receivers, for every mode, the overlay too.
    for &mode in Mode::ALL {
        for hairpin in [false, true] {
            let e = explain(mode, hairpin).unwrap();
            let members: Vec<&str> = e.members.iter().map(|m| m.name).collect();
            for s in &e.steps {
                let ctx = format!("{mode}, hairpin {hairpin}, {:?}", s.what);
                for h in &s.hops {
                    for p in &h.ports {
                        assert!(
                            members.contains(&p.as_str()) || p == "uplink" || p == "vxlan",
                            "{ctx}: port {p} of {} is neither a member's nor a way between switches",
                            h.switch
                        );
                    }
                }
                let mut walked: Vec<String> = s
                    .hops
                    .iter()
                    .flat_map(|h| &h.egress)
                    .filter(|p| members.contains(&p.as_str()))
                    .cloned()
                    .collect();
                walked.sort();
                assert_eq!(walked, s.receivers, "{ctx}");
            }
        }
    }
}
