//! The invariants `Switch::process` must keep whatever the frames and the configuration
//! (DESIGN.md's, as `tests/tests/props.rs` checks them with proptest on fixed topologies),
//! checked on a processed batch against the switch's own port configurations:
//!
//! - (a) no frame leaves by its ingress port, except a bridge port with hairpin and the two
//!   kernel paths that deliver a sender's frame to its own address (see [`may_reflect`]);
//! - (b) no cross-VLAN delivery: every receiver is a member of the frame's VLAN, the ingress
//!   port classifies the frame into that VLAN, and each egress port would classify what it
//!   sends (after its tag edit) into the same VLAN;
//! - (c) isolation: isolated bridge ports never reach each other; only bridge-mode macvlan
//!   sub-interfaces deliver locally, never to a private sibling; ipvlan private has no slave to
//!   slave unicast, vepa sends every unicast out the uplink; uplinks never get their own
//!   frames back;
//! - (d) consistency: one decision per frame; the TX queues hold exactly the verdict's ports
//!   (plus the host port for the host side), each once, and only ports the switch has; a drop
//!   sends nothing. The FDB never points at a port that is gone and keeps its cap; a refused
//!   configuration change leaves every port as it was.
//!
//! A broken invariant panics with the frame, its ingress and its decision.

use std::fmt;

use l2sw::fwd::{
    Batch, Decision, IpvlanFlag, MacvlanMode, ModeConfig, PortId, PortSet, Role, Switch, TagOp,
    Tick, Verdict, Why,
};
use l2sw::wire::{FrameInfo, Side, Summary, TPID_8021Q, l3_addr};

/// Checks every frame of a batch `sw` has just processed.
pub fn check_batch(sw: &Switch, batch: &Batch<Vec<u8>>) {
    assert_eq!(
        batch.decisions().len(),
        batch.len(),
        "one decision per frame"
    );
    let mut sent = vec![Vec::<(PortId, TagOp)>::new(); batch.len()];
    for (port, items) in batch.egress() {
        for it in items {
            let to = &mut sent[usize::from(it.frame)];
            assert!(
                to.iter().all(|(p, _)| *p != port),
                "frame {} queued twice on {port}",
                it.frame
            );
            to.push((port, it.tag));
        }
    }
    let mut to_host = vec![false; batch.len()];
    for it in batch.to_host() {
        let seen = std::mem::replace(&mut to_host[usize::from(it.frame)], true);
        assert!(!seen, "frame {} queued twice for the host side", it.frame);
    }
    for (i, d) in batch.decisions().iter().enumerate() {
        let (ingress, bytes) = batch.frame(i).expect("one frame per decision");
        let f = Frame {
            sw,
            ingress,
            bytes,
            d,
        };
        f.consistent(&sent[i], to_host[i]);
        f.not_back_out(&sent[i]);
        f.within_vlan(&sent[i]);
        f.isolated(&sent[i]);
    }
}

/// Checks the switch's tables between steps.
pub fn check_switch(sw: &Switch, now: Tick) {
    let Some(fdb) = sw.fdb() else { return };
    for e in fdb.entries(now) {
        assert!(
            sw.port(e.port).is_some(),
            "FDB entry {e:?} points at a port the switch does not have"
        );
    }
    let cap = fdb.max_learned();
    assert!(
        cap == 0 || fdb.n_learned() <= cap,
        "{} learned entries over the cap of {cap}",
        fdb.n_learned()
    );
}

/// Applies `change`; if the switch refuses it, checks that no port changed.
pub fn refusal_changes_nothing<T, E: fmt::Display>(
    sw: &mut Switch,
    change: impl FnOnce(&mut Switch) -> Result<T, E>,
) {
    let ports = |sw: &Switch| -> Vec<_> { sw.ports().map(|(id, e)| (id, e.cfg.clone())).collect() };
    let before = ports(sw);
    if let Err(e) = change(sw) {
        assert_eq!(
            before,
            ports(sw),
            "a refused change ({e}) changed the switch"
        );
    }
}

/// One processed frame, for the checks and their messages.
struct Frame<'a> {
    sw: &'a Switch,
    ingress: PortId,
    bytes: &'a [u8],
    d: &'a Decision,
}

impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = self.role().map_or("no such port", Role::name);
        write!(
            f,
            "frame [{}] from {} ({role}): {:?}",
            Summary::new(self.bytes),
            self.ingress,
            self.d
        )
    }
}

impl Frame<'_> {
    fn role(&self) -> Option<&Role> {
        self.sw.port(self.ingress).map(|e| &e.cfg.role)
    }

    fn info(&self) -> Option<FrameInfo> {
        FrameInfo::parse(self.bytes, self.sw.config().max_frame()).ok()
    }

    /// (d): the queues hold exactly what the verdict says, on ports the switch has.
    fn consistent(&self, sent: &[(PortId, TagOp)], to_host: bool) {
        let v = self.d.verdict;
        if self.sw.port(self.ingress).is_none() {
            assert!(
                matches!(v, Verdict::Drop(_)),
                "unknown port not dropped: {self}"
            );
        }
        if matches!(v, Verdict::Drop(_)) {
            assert!(sent.is_empty() && !to_host, "a drop was sent: {self}");
        }
        let mut expect = v.ports();
        let host_port = self.sw.host_port();
        if let (true, Some(h)) = (v.to_host(), host_port) {
            expect.insert(h);
        }
        let got: PortSet = sent.iter().map(|(p, _)| *p).collect();
        assert_eq!(got, expect, "TX queues differ from the verdict: {self}");
        assert_eq!(
            to_host,
            v.to_host() && host_port.is_none(),
            "host-side queue differs from the verdict: {self}"
        );
        for (p, _) in sent {
            assert!(self.sw.port(*p).is_some(), "sent to missing {p}: {self}");
        }
    }

    /// (a): never back out the ingress port unless the kernel would do it too.
    fn not_back_out(&self, sent: &[(PortId, TagOp)]) {
        if sent.iter().any(|(p, _)| *p == self.ingress) {
            assert!(self.may_reflect(), "sent back out its ingress port: {self}");
        }
    }

    /// Whether the kernel sends this frame back to the port it came from.
    fn may_reflect(&self) -> bool {
        let Some(info) = self.info() else {
            return false;
        };
        match (self.role(), self.d.why) {
            // should_deliver: the ingress port is a receiver when it has hairpin on.
            (Some(Role::Bridge(p)), _) => p.hairpin,
            // macvlan_queue_xmit: a bridge-mode sub-interface's unicast to a bridge-mode MAC
            // goes round the lower device (dev_forward_skb), whose receive path delivers it to
            // the MAC's owner: the sender itself when it sends to its own MAC.
            (Some(Role::Macvlan(_)), Why::MvBridgeLocal) => self
                .sw
                .macvlan()
                .and_then(|m| m.port_of(info.dst()))
                .is_some_and(|owner| owner == self.ingress),
            // ipvlan_xmit_mode_l2: a slave's frame to the shared MAC goes to the owner of its
            // destination IP (ipvlan_rcv_frame), the sender included.
            (Some(Role::Ipvlan(s)), Why::IpLocal) => l3_addr(self.bytes, &info, Side::Destination)
                .is_some_and(|ip| s.addrs.contains(&ip)),
            _ => false,
        }
    }

    /// (b): the frame stays in the VLAN its ingress port classified it into.
    fn within_vlan(&self, sent: &[(PortId, TagOp)]) {
        if matches!(self.d.verdict, Verdict::Drop(_)) {
            return;
        }
        let vid = self.d.vid;
        let info = self
            .info()
            .unwrap_or_else(|| panic!("unparsable, not dropped: {self}"));
        let port = |p: PortId| self.sw.port(p).expect("checked by `consistent`");
        assert_eq!(
            port(self.ingress).cfg.vlan.classify(&info),
            Some(vid),
            "decided in another VLAN than its ingress port's: {self}"
        );
        let members = self.sw.vlan_members(vid);
        let mut out = Vec::new();
        for (p, tag) in sent {
            assert!(members.contains(*p), "{p} is not in VLAN {vid}: {self}");
            tag.apply(self.bytes, &mut out);
            let seen = FrameInfo::parse(&out, usize::from(u16::MAX))
                .unwrap_or_else(|e| panic!("{tag:?} on {p} made a bad frame ({e}): {self}"));
            // A frame carrying two C-tags keeps the inner one when an untagged port pops the
            // outer (as the kernel's egress does): the receiver sees that inner VID. The switch
            // delivered within the VLAN; what the wire shows is the sender's own stacking.
            let stacked = *tag == TagOp::Pop && info.inner.is_some_and(|t| t.tpid == TPID_8021Q);
            if !stacked {
                assert_eq!(
                    port(*p).cfg.vlan.classify(&seen),
                    Some(vid),
                    "{p} sends it ({tag:?}) as another VLAN: {self}"
                );
            }
        }
    }

    /// (c): the isolation rules of each mode.
    fn isolated(&self, sent: &[(PortId, TagOp)]) {
        let Some(from) = self.role() else { return };
        let receivers = || sent.iter().map(|(p, _)| *p).filter(|p| *p != self.ingress);
        let role_of = |p: PortId| &self.sw.port(p).expect("checked by `consistent`").cfg.role;
        match (&self.sw.config().mode, from) {
            (ModeConfig::Bridge(_), Role::Bridge(f)) if f.isolated => {
                for p in receivers() {
                    let to_isolated = matches!(role_of(p), Role::Bridge(t) if t.isolated);
                    assert!(!to_isolated, "isolated to isolated {p}: {self}");
                }
            }
            (_, Role::Uplink(_)) => {} // never back to itself: checked by `not_back_out`
            (_, Role::Host) if !matches!(self.sw.config().mode, ModeConfig::Bridge(_)) => {
                for p in receivers() {
                    let up = matches!(role_of(p), Role::Uplink(_));
                    assert!(
                        up,
                        "the uplink's stack sent to {p}, not onto the wire: {self}"
                    );
                }
            }
            (_, Role::Macvlan(m)) => {
                for p in receivers() {
                    let ok = match role_of(p) {
                        Role::Uplink(_) => true,
                        // Only bridge mode delivers locally: to bridge-mode peers, and copies
                        // to source-mode devices listing the sender.
                        Role::Macvlan(t) => {
                            m.mode == MacvlanMode::Bridge
                                && matches!(t.mode, MacvlanMode::Bridge | MacvlanMode::Source)
                        }
                        _ => false,
                    };
                    assert!(ok, "{} sub-interface delivered to {p}: {self}", m.mode);
                }
            }
            (ModeConfig::Ipvlan(cfg), Role::Ipvlan(_)) => {
                let unicast = self.info().is_some_and(|i| !i.dst().is_multicast());
                for p in receivers() {
                    let slave = matches!(role_of(p), Role::Ipvlan(_));
                    let refused = match cfg.flag {
                        IpvlanFlag::Private => unicast && slave,
                        IpvlanFlag::Vepa => unicast && !matches!(role_of(p), Role::Uplink(_)),
                        IpvlanFlag::Bridge => false,
                    };
                    assert!(!refused, "{:?} ipvlan delivered to {p}: {self}", cfg.flag);
                }
            }
            _ => {}
        }
    }
}
