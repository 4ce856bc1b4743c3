//! The daemon's view of a network: the `[[network.port]]` tables l2ctl sends for a network's
//! own ports (host port, uplink, host access) and for each workload. Pure: no netlink, no
//! daemon.

use super::*;

impl Ctl {
    /// The ports a network has of its own, with the parent's MAC read from the host.
    pub(super) fn fixed_ports(&self, net: &Network) -> Vec<PortSpec> {
        let parent_mac = net
            .parent
            .as_ref()
            .and_then(|p| self.host.mac(&p.interface).ok());
        fixed_ports(net, self.state.host_netns.as_deref(), parent_mac)
    }
}

/// The ports a network has of its own: host port (a TAP device carrying the gateway), uplink
/// (the parent, with `parent_mac`, tagged with its VLAN), host access; their links live in
/// `host_ns`.
pub(super) fn fixed_ports(
    net: &Network,
    host_ns: Option<&str>,
    parent_mac: Option<Mac>,
) -> Vec<PortSpec> {
    let host_ns = host_ns.map(str::to_owned);
    let mut ports = Vec::new();
    if let Some(hp) = &net.host_port {
        ports.push(PortSpec {
            interface: hp.clone(),
            name: Some("host".into()),
            kind: Some(PortKind::Tap),
            netns: host_ns.clone(),
            role: PortRole::Host,
            mac: net.mac,
            ..PortSpec::default()
        });
    }
    if let Some(p) = &net.parent {
        ports.push(PortSpec {
            interface: p.interface.clone(),
            name: Some(p.to_string()),
            netns: host_ns.clone(),
            role: PortRole::Uplink,
            mac: parent_mac,
            vlan: p.vid.map(|v| VlanSpec {
                trunk: Some(vec![v]),
                ..VlanSpec::default()
            }),
            ..PortSpec::default()
        });
    }
    if let Some(o) = &net.overlay {
        ports.push(PortSpec {
            interface: OVERLAY_PORT.into(),
            name: Some(OVERLAY_PORT.into()),
            kind: Some(PortKind::Vxlan),
            netns: host_ns.clone(),
            role: PortRole::Bridge,
            vxlan: Some(l2sw::config::VxlanSpec {
                vni: o.vni,
                local: o.local,
                port: Some(o.port),
                remotes: o.remotes.clone(),
                learn_remotes: Some(o.learn_remotes),
                learning: Some(o.learning),
                statics: o.statics.clone(),
            }),
            ..PortSpec::default()
        });
    }
    if let Some(ha) = &net.host_access {
        let mut spec = sub_port(net, "host-access", &ha.port, ha.mac, &[ha.ip], &[]);
        spec.netns = host_ns;
        if spec.macvlan_mode.is_some() {
            spec.macvlan_mode = Some(MacvlanMode::Bridge);
        }
        ports.push(spec);
    }
    ports
}

/// A workload-facing port of `net` on `interface`.
pub(super) fn sub_port(
    net: &Network,
    name: &str,
    interface: &str,
    mac: Mac,
    ips: &[IpAddr],
    source: &[Mac],
) -> PortSpec {
    let access = net.parent.as_ref().and_then(|p| p.vid).map(|v| VlanSpec {
        access: Some(v),
        ..VlanSpec::default()
    });
    let base = PortSpec {
        interface: interface.to_owned(),
        name: Some(name.to_owned()),
        vlan: access,
        ..PortSpec::default()
    };
    match net.driver {
        Driver::Macvlan => PortSpec {
            role: PortRole::Macvlan,
            mac: Some(mac),
            macvlan_mode: net.macvlan_mode(),
            source: (!source.is_empty()).then(|| source.to_vec()),
            ..base
        },
        Driver::Ipvlan => PortSpec {
            role: PortRole::Ipvlan,
            mac: Some(mac),
            ips: Some(ips.to_vec()),
            ..base
        },
        _ => PortSpec {
            role: PortRole::Bridge,
            hairpin: net.hairpin.then_some(true),
            ..base
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use l2sw::config::NetworkMode;

    use super::*;

    fn network(driver: Driver, mode: Option<MacvlanMode>, parent: Option<Parent>) -> Network {
        Network::sample("lan", driver, mode, parent)
    }

    /// Every port table l2ctl sends plans as the daemon would plan it.
    fn plans(net: &Network, ports: &[PortSpec]) {
        let mode = net.driver.network_mode().unwrap();
        for p in ports {
            p.plan(&net.name, mode).unwrap();
        }
    }

    #[test]
    fn a_vlan_parent_is_a_trunk_uplink_and_workloads_are_access_ports() {
        let parent = Parent {
            interface: "eth1".into(),
            vid: Some(10),
        };
        let net = network(Driver::Macvlan, Some(MacvlanMode::Private), Some(parent));
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let fixed = fixed_ports(&net, Some("host"), Some(mac));
        assert_eq!(fixed.len(), 1);
        let up = &fixed[0];
        assert_eq!(up.role, PortRole::Uplink);
        assert_eq!(up.name.as_deref(), Some("eth1.10"));
        assert_eq!(up.mac, Some(mac));
        assert_eq!(up.netns.as_deref(), Some("host"));
        assert_eq!(
            up.vlan.as_ref().and_then(|v| v.trunk.clone()),
            Some(vec![10])
        );
        let w = sub_port(&net, "web", "l2v-1", Mac([2, 0, 0, 0, 0, 2]), &[], &[mac]);
        assert_eq!(w.role, PortRole::Macvlan);
        assert_eq!(w.macvlan_mode, Some(MacvlanMode::Private));
        assert_eq!(w.source, Some(vec![mac]));
        assert_eq!(w.vlan.as_ref().and_then(|v| v.access), Some(10));
        plans(&net, &[up.clone(), w]);
    }

    #[test]
    fn host_access_is_a_bridge_mode_sub_interface_and_ipvlan_ports_carry_addresses() {
        let mut net = network(Driver::Macvlan, Some(MacvlanMode::Vepa), None);
        net.host_access = Some(HostAccess {
            interface: "l2ha".into(),
            port: "l2ha-sw".into(),
            mac: Mac([2, 0, 0, 0, 0, 3]),
            ip: "10.0.0.9".parse().unwrap(),
        });
        let fixed = fixed_ports(&net, None, None);
        assert_eq!(fixed[0].macvlan_mode, Some(MacvlanMode::Bridge));
        assert_eq!(fixed[0].name.as_deref(), Some("host-access"));
        plans(&net, &fixed);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let net = network(Driver::Ipvlan, Some(MacvlanMode::Private), None);
        let slave = sub_port(&net, "db", "db0", Mac([2, 0, 0, 0, 0, 4]), &[ip], &[]);
        assert_eq!(slave.ips, Some(vec![ip]));
        assert_eq!(slave.macvlan_mode, None);
        plans(&net, &[slave]);
        assert_eq!(net.ipvlan_flag(), Some(l2sw::fwd::IpvlanFlag::Private));
        assert_eq!(Driver::Ipvlan.network_mode(), Some(NetworkMode::Ipvlan));
    }

    #[test]
    fn a_bridge_has_a_tap_host_port_and_hairpin_ports() {
        let mut net = network(Driver::Bridge, None, None);
        net.host_port = Some("l2br-1".into());
        net.hairpin = true;
        let fixed = fixed_ports(&net, None, None);
        assert_eq!(fixed[0].kind, Some(PortKind::Tap));
        assert_eq!(fixed[0].role, PortRole::Host);
        let w = sub_port(&net, "web", "l2v-2", Mac([2, 0, 0, 0, 0, 5]), &[], &[]);
        assert_eq!(w.hairpin, Some(true));
        plans(&net, &[fixed[0].clone(), w]);
    }
}
