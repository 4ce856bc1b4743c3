//! Storm control (l2sw only: the kernel has no storm control). Per port and per flood class
//! (broadcast, unknown unicast, multicast), a token bucket of `rate` frames a second that holds
//! at most one second's worth, refilled from the `now` callers pass in. A frame the mode decided
//! to flood (or fan out to sub-interfaces) is charged to its ingress port's bucket for its class;
//! an empty bucket turns the verdict into `Drop(Storm*)`.
//!
//! Invariants: known unicast, and every frame a mode refused earlier, is never charged; over any
//! interval of `t` whole ticks a bucket admits at most `rate + rate * t / 100` frames; a port
//! with no limit costs one bit test per frame; nothing here allocates after configuration.

use super::clock::{TICKS_PER_SEC, Tick};
use super::ports::{MAX_PORTS, PortId, PortSet};
use super::switch::PortEntry;
use super::verdict::{Decision, DropReason, Flood, Verdict, Why};
use crate::wire::{FrameInfo, Mac};

/// A port's storm-control limits, in frames per second per class; 0 turns a class's limit
/// off (the default: the kernel has no storm control, and l2sw forwards as the kernel does
/// unless asked). Each bucket holds one second's worth, so a burst of up to `rate` frames
/// passes at once.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StormControl {
    /// Broadcast frames a second.
    pub broadcast: u32,
    /// Unknown unicast frames a second (only the learning bridge floods unknown unicast:
    /// macvlan and ipvlan send it to the uplink, so the limit never applies there).
    pub unknown_unicast: u32,
    /// Multicast frames a second (link-local groups the bridge forwards included).
    pub multicast: u32,
}

impl StormControl {
    /// No limits.
    pub const OFF: StormControl = StormControl {
        broadcast: 0,
        unknown_unicast: 0,
        multicast: 0,
    };

    /// Whether every class is unlimited.
    pub fn is_off(&self) -> bool {
        *self == StormControl::OFF
    }

    /// The limit of `class` (0 = none).
    pub fn rate(&self, class: StormClass) -> u32 {
        match class {
            StormClass::Broadcast => self.broadcast,
            StormClass::UnknownUnicast => self.unknown_unicast,
            StormClass::Multicast => self.multicast,
        }
    }
}

/// The traffic classes storm control limits.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StormClass {
    /// Frames to ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// Unicast to a station the bridge does not know, flooded.
    UnknownUnicast,
    /// Frames to a group address other than broadcast.
    Multicast,
}

impl StormClass {
    /// Every class, in bucket order.
    pub const ALL: [StormClass; 3] = [
        StormClass::Broadcast,
        StormClass::UnknownUnicast,
        StormClass::Multicast,
    ];

    /// The drop reason of a frame over this class's limit.
    pub const fn drop_reason(self) -> DropReason {
        match self {
            StormClass::Broadcast => DropReason::StormBroadcast,
            StormClass::UnknownUnicast => DropReason::StormUnknownUnicast,
            StormClass::Multicast => DropReason::StormMulticast,
        }
    }

    /// The class a frame to `dst` decided by `why` is charged to, or `None` when the rule is
    /// not a flood or fan-out (known unicast, delivery to one sub-interface, to the host, to
    /// the uplink only, or back to the sender alone). The rule table's own column says which
    /// rules flood ([`Why::flood`]); the destination tells broadcast from multicast.
    #[inline]
    pub fn of(why: Why, dst: Mac) -> Option<StormClass> {
        match why.flood() {
            Flood::No => None,
            Flood::UnknownUnicast => Some(StormClass::UnknownUnicast),
            Flood::Group if dst.is_broadcast() => Some(StormClass::Broadcast),
            Flood::Group => Some(StormClass::Multicast),
        }
    }
}

/// What one frame costs, in bucket units: a bucket gains `rate` units a tick, so at
/// [`TICKS_PER_SEC`] units a frame it admits exactly `rate` frames a second with integer math.
const COST: u64 = TICKS_PER_SEC as u64;

/// One token bucket.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Bucket {
    /// Frames a second; 0 = unlimited.
    rate: u32,
    /// When it was last refilled.
    last: Tick,
    /// Units left (at most `rate * COST`, one second's worth).
    tokens: u64,
}

impl Bucket {
    /// A full bucket of `rate` frames a second.
    fn full(rate: u32, now: Tick) -> Bucket {
        Bucket {
            rate,
            last: now,
            tokens: u64::from(rate) * COST,
        }
    }

    /// Refills for the ticks since the last call and takes one frame's worth if there is one.
    /// A second or more refills the bucket completely, so the elapsed time is capped there:
    /// no overflow, and a clock that wrapped or stepped back costs at most one refill.
    #[inline]
    fn admit(&mut self, now: Tick) -> bool {
        let elapsed = u64::from(now.since(self.last).min(TICKS_PER_SEC));
        self.last = now;
        let rate = u64::from(self.rate);
        self.tokens = (self.tokens + elapsed * rate).min(rate * COST);
        if self.tokens >= COST {
            self.tokens -= COST;
            true
        } else {
            false
        }
    }
}

/// What the per-frame path does after the mode has decided: police floods ([`Storm`]) or
/// nothing ([`Unpoliced`]). `Switch::process` picks one per batch, so that a switch with no
/// limit anywhere pays nothing per frame.
pub(crate) trait Police {
    /// Charges `d`, decided for a frame from `port`, and drops it if over its limit.
    fn police(&mut self, now: Tick, port: PortId, info: &FrameInfo, d: &mut Decision);
}

/// No storm control on any port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unpoliced;

impl Police for Unpoliced {
    #[inline(always)]
    fn police(&mut self, _: Tick, _: PortId, _: &FrameInfo, _: &mut Decision) {}
}

/// The storm-control state of a switch: a bucket per port and class, and the ports with any
/// limit. Lives beside the ports' configuration; rebuilt (keeping the fill of unchanged
/// buckets) whenever the ports change.
#[derive(Debug, Clone)]
pub(crate) struct Storm {
    /// Ports with at least one limit: the only ones that pay more than a bit test.
    on: PortSet,
    buckets: Box<[[Bucket; StormClass::ALL.len()]; MAX_PORTS]>,
}

impl Default for Storm {
    fn default() -> Self {
        Storm {
            on: PortSet::EMPTY,
            buckets: Box::new([[Bucket::default(); StormClass::ALL.len()]; MAX_PORTS]),
        }
    }
}

impl Storm {
    /// Takes the limits from the ports' configuration. A bucket whose rate did not change
    /// keeps its fill (a configuration change elsewhere must not reopen a storm); a new or
    /// changed one starts full.
    pub(crate) fn configure(&mut self, ports: &[Option<PortEntry>], now: Tick) {
        let mut on = PortSet::EMPTY;
        for (i, buckets) in self.buckets.iter_mut().enumerate() {
            let limits = ports
                .get(i)
                .and_then(Option::as_ref)
                .map_or(StormControl::OFF, |e| e.cfg.storm);
            for (b, class) in buckets.iter_mut().zip(StormClass::ALL) {
                let rate = limits.rate(class);
                if b.rate != rate {
                    *b = Bucket::full(rate, now);
                }
            }
            if let (false, Some(id)) = (limits.is_off(), PortId::new(i)) {
                on.insert(id);
            }
        }
        self.on = on;
    }

    /// Whether any port has a limit.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        !self.on.is_empty()
    }
}

impl Police for Storm {
    /// Charges a flooded frame from `port` to its class's bucket; over the limit, the frame is
    /// dropped instead (`Why::StormControl`). Anything else passes untouched; a port with no
    /// limit costs a bit test.
    #[inline(always)]
    fn police(&mut self, now: Tick, port: PortId, info: &FrameInfo, d: &mut Decision) {
        if !self.on.contains(port) || matches!(d.verdict, Verdict::Drop(_)) {
            return;
        }
        let Some(class) = StormClass::of(d.why, info.dst()) else {
            return;
        };
        let b = &mut self.buckets[port.index()][class as usize];
        if b.rate != 0 && !b.admit(now) {
            d.set(Verdict::Drop(class.drop_reason()), Why::StormControl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(b: &mut Bucket, now: Tick, n: u32) -> u32 {
        (0..n).filter(|_| b.admit(now)).count() as u32
    }

    #[test]
    fn a_bucket_admits_one_seconds_worth_at_once_then_its_rate() {
        let mut b = Bucket::full(100, Tick(0));
        assert_eq!(admitted(&mut b, Tick(0), 1000), 100);
        // One tick later: 100 frames/s is one frame a centisecond.
        assert_eq!(admitted(&mut b, Tick(1), 10), 1);
        // Half a second: half the bucket.
        assert_eq!(admitted(&mut b, Tick(51), 1000), 50);
        // Long idle: full again, never more.
        assert_eq!(admitted(&mut b, Tick(100_000), 1000), 100);
    }

    #[test]
    fn slow_rates_are_exact_with_integer_math() {
        // 1 frame/s: one frame, then nothing until a whole second has passed.
        let mut b = Bucket::full(1, Tick(0));
        assert_eq!(admitted(&mut b, Tick(0), 5), 1);
        for t in 1..100 {
            assert_eq!(admitted(&mut b, Tick(t), 5), 0, "tick {t}");
        }
        assert_eq!(admitted(&mut b, Tick(100), 5), 1);
        // 150 frames/s over 10 s, one batch a tick: 150 burst + 1500.
        let mut b = Bucket::full(150, Tick(0));
        let total: u32 = (0..=1000).map(|t| admitted(&mut b, Tick(t), 10)).sum();
        assert_eq!(total, 150 + 1500);
    }

    #[test]
    fn extreme_rates_and_a_wrapping_clock_do_not_overflow() {
        let mut b = Bucket::full(u32::MAX, Tick(u32::MAX - 10));
        assert!(b.admit(Tick(u32::MAX)));
        assert!(b.admit(Tick(5)));
        assert!(b.tokens <= u64::from(u32::MAX) * COST);
    }

    #[test]
    fn every_flooding_rule_of_the_table_is_classed() {
        let g = Mac([1, 0, 0x5e, 0, 0, 1]);
        let u = Mac([2, 0, 0, 0, 0, 1]);
        let flooding_fns = [
            "br_flood",
            "macvlan_process_broadcast",
            "ipvlan_process_multicast",
        ];
        let mut classed = Vec::new();
        for &why in Why::ALL {
            let says_flood = format!("{why:?}").contains("Flood")
                || why.describe().contains("flooded")
                || flooding_fns.contains(&why.kernel_fn());
            assert!(
                !says_flood || why.flood() != Flood::No,
                "{why:?} reads as a flood but its row says it is not one"
            );
            let classes = [Mac::BROADCAST, g, u].map(|dst| StormClass::of(why, dst));
            let expect = match why.flood() {
                Flood::No => [None; 3],
                Flood::UnknownUnicast => [Some(StormClass::UnknownUnicast); 3],
                Flood::Group => [
                    Some(StormClass::Broadcast),
                    Some(StormClass::Multicast),
                    Some(StormClass::Multicast),
                ],
            };
            assert_eq!(classes, expect, "{why:?}");
            if why.flood() != Flood::No {
                classed.push(why);
            }
        }
        // The rules storm control charges today; a new flooding rule lands here by its row.
        assert_eq!(
            classed,
            [
                Why::BrLinkLocalForwarded,
                Why::BrFloodUnknown,
                Why::BrFloodMulticast,
                Why::BrFloodBroadcast,
                Why::MvBridgeFlood,
                Why::MvFloodExternal,
                Why::MvFloodFromVepa,
                Why::MvFloodFromBridge,
                Why::IpMulticastTx,
                Why::IpMulticastRx,
            ]
        );
    }

    #[test]
    fn every_decision_that_copies_to_several_ports_is_a_flood_by_its_rule() {
        use crate::fwd::{PortConfig, Switch, SwitchConfig};
        use crate::wire::craft;

        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        let ports: Vec<PortId> = ["a", "b", "c"]
            .iter()
            .map(|n| sw.add_port(PortConfig::bridge(*n)).unwrap())
            .collect();
        let dsts = [
            Mac::BROADCAST,
            Mac([1, 0, 0x5e, 0, 0, 1]),
            Mac([1, 0x80, 0xc2, 0, 0, 0]),
            Mac([2, 0, 0, 0, 0, 0x77]),
        ];
        for (i, &p) in ports.iter().enumerate() {
            let src = craft::station(10 + i as u8);
            for dst in dsts {
                let frame = craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, b"x");
                let d = sw.decide(Tick(1), p, &frame);
                if d.verdict.ports().len() >= 2 {
                    assert_ne!(d.why.flood(), Flood::No, "{d:?}");
                    assert!(StormClass::of(d.why, dst).is_some(), "{d:?}");
                }
            }
        }
    }

    #[test]
    fn classes_follow_the_rule_and_the_destination() {
        let g = Mac([1, 0, 0x5e, 0, 0, 1]);
        let u = Mac([2, 0, 0, 0, 0, 1]);
        assert_eq!(
            StormClass::of(Why::BrFloodUnknown, u),
            Some(StormClass::UnknownUnicast)
        );
        assert_eq!(
            StormClass::of(Why::MvFloodExternal, Mac::BROADCAST),
            Some(StormClass::Broadcast)
        );
        assert_eq!(
            StormClass::of(Why::IpMulticastTx, g),
            Some(StormClass::Multicast)
        );
        for why in [
            Why::BrKnownUnicast,
            Why::MvToOrigin,
            Why::MvToUplink,
            Why::IpOwnMulticast,
        ] {
            assert_eq!(StormClass::of(why, Mac::BROADCAST), None, "{why:?}");
        }
    }
}
