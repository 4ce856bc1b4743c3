//! `l2ctl verify` against the real kernel: every mode this kernel has, with the upstream
//! bridge's hairpin on and off where there is one, must come out the same on the kernel and
//! on l2sw, and leave no namespace behind. Needs root; skipped otherwise. The modes are spread
//! over a few tests so that they run two at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use l2sw_control::modes::{self, Mode};
use l2sw_control::nl;
use l2sw_control::verify::{self, render, verify};

/// Verifies each mode, with hairpin on and off where it applies; every matrix must match and
/// no namespace of the mode may remain.
fn check(test: &str, list: &[Mode]) {
    if !l2sw_tests::privileged_or_skip(test) {
        return;
    }
    let mut failed = Vec::new();
    for &mode in list {
        assert!(mode.in_kernel(), "{mode}");
        let hairpins: &[bool] = if modes::topology(mode).upstream {
            &[false, true]
        } else {
            &[false]
        };
        for &hairpin in hairpins {
            let m = verify(mode, hairpin).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{}", render(&m));
            if !m.matches() {
                failed.push(render(&m));
            }
        }
        let prefix = verify::netns_prefix(mode);
        let left: Vec<String> = nl::netns_list()
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "{mode} left namespaces behind: {left:?}");
    }
    assert!(
        failed.is_empty(),
        "the kernel and l2sw differ:\n{}",
        failed.join("\n")
    );
}

/// The kernel modes, in the groups the tests below verify (two groups run at a time).
const GROUPS: [&[Mode]; 4] = [
    &[Mode::Bridge, Mode::BridgeHairpin, Mode::BridgeIsolated],
    &[Mode::MacvlanBridge, Mode::MacvlanPrivate],
    &[Mode::MacvlanVepa, Mode::MacvlanPassthru],
    &[Mode::MacvlanSource],
];

#[test]
fn the_groups_hold_every_kernel_mode_once() {
    let mut grouped: Vec<Mode> = GROUPS.concat();
    grouped.sort();
    let kernel: Vec<Mode> = Mode::ALL
        .iter()
        .copied()
        .filter(|m| m.in_kernel())
        .collect();
    assert_eq!(grouped, kernel);
}

#[test]
fn bridge_modes_match_the_kernel() {
    check("bridge_modes_match_the_kernel", GROUPS[0]);
}

#[test]
fn macvlan_bridge_and_private_match_the_kernel() {
    check("macvlan_bridge_and_private_match_the_kernel", GROUPS[1]);
}

#[test]
fn macvlan_vepa_and_passthru_match_the_kernel() {
    check("macvlan_vepa_and_passthru_match_the_kernel", GROUPS[2]);
}

#[test]
fn macvlan_source_matches_the_kernel() {
    check("macvlan_source_matches_the_kernel", GROUPS[3]);
}

#[test]
fn ipvlan_says_why_it_cannot_be_verified() {
    let e = verify(Mode::IpvlanL2, true).unwrap_err().to_string();
    assert!(e.contains("no ipvlan"), "{e}");
    assert!(e.contains("`l2ctl explain ipvlan-l2`"), "{e}");
}
