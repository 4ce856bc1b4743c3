//! Checks of what people type, before anything changes: names, `--mode` for a driver,
//! `--parent IFACE[.VID]` and whether a parent can be shared. Pure: no netlink, no daemon.

use super::*;

pub(super) fn valid_name(what: &str, name: &str) -> Result<(), CtlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        refused(format!(
            "invalid {what} name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ))
    }
}

pub(super) fn check_mode(req: &NetworkArgs) -> Result<Option<MacvlanMode>, CtlError> {
    let allowed = req.driver.modes();
    match (&req.mode, allowed.as_slice()) {
        (None, []) => Ok(None),
        (None, _) => Ok(Some(MacvlanMode::Bridge)),
        (Some(m), []) => refused(format!(
            "--mode {m}: a {} network has no modes (macvlan and ipvlan do)",
            req.driver.name()
        )),
        (Some(m), a) if a.contains(&m.as_str()) => MacvlanMode::from_name(m)
            .map(Some)
            .map_err(|e| CtlError::Refused(e.to_string())),
        (Some(m), a) => refused(format!(
            "--mode {m}: a {} network's mode is one of {}",
            req.driver.name(),
            a.join(", ")
        )),
    }
}

/// `--parent IFACE` or `IFACE.VID`: the interface, and the VLAN l2sw tags its frames with.
pub(super) fn parse_parent(p: &str) -> Result<Parent, CtlError> {
    match p.rsplit_once('.') {
        Some((iface, vid)) if vid.chars().all(|c| c.is_ascii_digit()) => {
            let vid = vid
                .parse::<u16>()
                .ok()
                .filter(|v| (1..=4094).contains(v))
                .ok_or_else(|| {
                    CtlError::Refused(format!(
                        "parent {p}: vlan id must be between 1-4094, not {vid}"
                    ))
                })?;
            Ok(Parent {
                interface: iface.to_owned(),
                vid: Some(vid),
            })
        }
        _ => Ok(Parent {
            interface: p.to_owned(),
            vid: None,
        }),
    }
}

/// Whether `parent` is free for a new network (`passthru`: a passthru macvlan, which shares
/// its parent with nobody) beside `others`: networks on one parent need different VLANs.
pub(super) fn parent_free<'a>(
    others: impl IntoIterator<Item = &'a Network>,
    parent: &Parent,
    passthru: bool,
) -> Result<(), CtlError> {
    for other in others {
        let same = other.parent.as_ref().map(|o| &o.interface) == Some(&parent.interface);
        let other_passthru = other.macvlan_mode() == Some(MacvlanMode::Passthru);
        if same && (other_passthru || passthru) {
            return refused(format!(
                "parent {} is already used by network {:?}: a passthru network cannot share its parent",
                parent.interface, other.name
            ));
        }
        if same && other.parent.as_ref().map(|o| o.vid) == Some(parent.vid) {
            return refused(format!(
                "network {:?} already uses parent {parent}: two networks on one parent need different VLANs",
                other.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(driver: Driver, mode: Option<&str>) -> NetworkArgs {
        use clap::Parser;

        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            net: NetworkArgs,
        }
        let mut argv = vec!["l2ctl", "n", "-d", driver.name()];
        if let Some(m) = mode {
            argv.extend(["--mode", m]);
        }
        Cli::try_parse_from(argv).unwrap().net
    }

    fn refusal<T: std::fmt::Debug>(r: Result<T, CtlError>) -> String {
        match r {
            Err(CtlError::Refused(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn network_args_new_is_the_command_lines_defaults() {
        for d in [
            Driver::Bridge,
            Driver::Macvlan,
            Driver::Ipvlan,
            Driver::Overlay,
        ] {
            let mut parsed = args(d, None);
            parsed.name = "front".into();
            assert_eq!(parsed, NetworkArgs::new("front", d));
        }
    }

    #[test]
    fn names_are_checked_before_anything_changes() {
        assert!(valid_name("network", "front-1.a_b").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            let why = refusal(valid_name("network", bad));
            assert!(why.starts_with("invalid network name"), "{why}");
        }
    }

    #[test]
    fn modes_are_the_drivers_own() {
        assert_eq!(
            check_mode(&args(Driver::Macvlan, None)).unwrap(),
            Some(MacvlanMode::Bridge)
        );
        assert_eq!(
            check_mode(&args(Driver::Macvlan, Some("passthru"))).unwrap(),
            Some(MacvlanMode::Passthru)
        );
        assert_eq!(
            check_mode(&args(Driver::Ipvlan, Some("vepa"))).unwrap(),
            Some(MacvlanMode::Vepa)
        );
        assert_eq!(check_mode(&args(Driver::Bridge, None)).unwrap(), None);
        let why = refusal(check_mode(&args(Driver::Ipvlan, Some("passthru"))));
        assert_eq!(
            why,
            "--mode passthru: a ipvlan network's mode is one of bridge, private, vepa"
        );
        let why = refusal(check_mode(&args(Driver::Macvlan, Some("hub"))));
        assert!(
            why.ends_with("bridge, private, vepa, passthru, source"),
            "{why}"
        );
        let why = refusal(check_mode(&args(Driver::Bridge, Some("private"))));
        assert!(why.contains("has no modes"), "{why}");
    }

    #[test]
    fn parents_parse_and_are_shared_only_on_other_vlans() {
        let p = parse_parent("eth1.10").unwrap();
        assert_eq!((p.interface.as_str(), p.vid), ("eth1", Some(10)));
        assert_eq!(parse_parent("eth1").unwrap().vid, None);
        assert_eq!(parse_parent("br.lan").unwrap().interface, "br.lan");
        assert!(refusal(parse_parent("eth1.4095")).contains("between 1-4094"));
        let on = |vid, mode| {
            let parent = Parent {
                interface: "eth1".into(),
                vid,
            };
            Network::sample(
                &format!("n{vid:?}"),
                Driver::Macvlan,
                Some(mode),
                Some(parent),
            )
        };
        let others = [on(Some(10), MacvlanMode::Bridge)];
        assert!(parent_free(&others, &parse_parent("eth1.20").unwrap(), false).is_ok());
        let why = refusal(parent_free(
            &others,
            &parse_parent("eth1.10").unwrap(),
            false,
        ));
        assert!(why.contains("need different VLANs"), "{why}");
        let why = refusal(parent_free(
            &others,
            &parse_parent("eth1.20").unwrap(),
            true,
        ));
        assert!(why.contains("passthru network cannot share"), "{why}");
        let passthru = [on(None, MacvlanMode::Passthru)];
        assert!(
            refusal(parent_free(
                &passthru,
                &parse_parent("eth1.5").unwrap(),
                false
            ))
            .contains("passthru")
        );
    }
}
