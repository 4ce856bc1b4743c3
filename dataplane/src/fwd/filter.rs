//! Port RX filters (`__dev_set_rx_mode`): which destination MACs a station accepts.
//!
//! A filter belongs to the interface the kernel would filter on. For a port facing a wire (a
//! bridge port, a macvlan or ipvlan uplink) the station is the switch, so the filter is applied
//! to frames *entering* it. For a sub-interface port (macvlan, ipvlan) the station is the
//! workload, so the filter is applied to multicast *delivered* to it. Broadcast always passes.

use crate::wire::Mac;

/// A set of MACs, kept sorted for binary search (small and read-mostly).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacSet(Vec<u64>);

impl MacSet {
    /// Adds `m`.
    pub fn insert(&mut self, m: Mac) {
        if let Err(at) = self.0.binary_search(&m.key()) {
            self.0.insert(at, m.key());
        }
    }
    /// Adds every MAC of `it`.
    pub fn extend(&mut self, it: impl IntoIterator<Item = Mac>) {
        it.into_iter().for_each(|m| self.insert(m));
    }
    /// Removes `m`.
    pub fn remove(&mut self, m: Mac) {
        if let Ok(at) = self.0.binary_search(&m.key()) {
            self.0.remove(at);
        }
    }
    /// Whether `m` is in the set.
    #[inline]
    pub fn contains(&self, m: Mac) -> bool {
        self.0.binary_search(&m.key()).is_ok()
    }
    /// The MACs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Mac> + '_ {
        self.0.iter().map(|k| Mac::from_key(*k))
    }
    /// Number of MACs.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// No MACs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Mac> for MacSet {
    fn from_iter<I: IntoIterator<Item = Mac>>(iter: I) -> MacSet {
        let mut v: Vec<u64> = iter.into_iter().map(Mac::key).collect();
        v.sort_unstable();
        v.dedup();
        MacSet(v)
    }
}

/// What a station accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RxFilter {
    /// Every frame (`IFF_PROMISC`).
    #[default]
    Promiscuous,
    /// Its own unicast MACs (primary and secondary), broadcast, the multicast groups it joined,
    /// or every multicast with `allmulti` (`IFF_ALLMULTI`).
    Unicast {
        /// Unicast MACs accepted.
        own: MacSet,
        /// Multicast groups joined.
        groups: MacSet,
        /// Accept every multicast.
        allmulti: bool,
    },
}

impl RxFilter {
    /// A unicast filter that accepts `own` and broadcast, no multicast group yet.
    pub fn unicast(own: impl IntoIterator<Item = Mac>) -> RxFilter {
        RxFilter::Unicast {
            own: own.into_iter().collect(),
            groups: MacSet::default(),
            allmulti: false,
        }
    }

    /// Whether the station accepts a frame to `dst`.
    #[inline]
    pub fn accepts(&self, dst: Mac) -> bool {
        match self {
            RxFilter::Promiscuous => true,
            RxFilter::Unicast {
                own,
                groups,
                allmulti,
            } => {
                if dst.is_broadcast() {
                    true
                } else if dst.is_multicast() {
                    *allmulti || groups.contains(dst)
                } else {
                    own.contains(dst)
                }
            }
        }
    }

    /// Whether every multicast passes (promiscuous or allmulti).
    pub fn all_multicast(&self) -> bool {
        match self {
            RxFilter::Promiscuous => true,
            RxFilter::Unicast { allmulti, .. } => *allmulti,
        }
    }

    /// The multicast groups joined (empty for promiscuous, which needs none).
    pub fn groups(&self) -> impl Iterator<Item = Mac> + '_ {
        let g = match self {
            RxFilter::Promiscuous => None,
            RxFilter::Unicast { groups, .. } => Some(groups.iter()),
        };
        g.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    #[test]
    fn unicast_filter() {
        let own = mac("02:00:00:00:00:01");
        let group = mac("01:00:5e:00:00:fb");
        let mut f = RxFilter::unicast([own]);
        assert!(f.accepts(own));
        assert!(f.accepts(Mac::BROADCAST));
        assert!(!f.accepts(mac("02:00:00:00:00:02")));
        assert!(!f.accepts(group), "unjoined multicast is filtered");
        if let RxFilter::Unicast { groups, .. } = &mut f {
            groups.insert(group);
        }
        assert!(f.accepts(group));
        assert!(!f.accepts(mac("33:33:00:00:00:01")));
        assert!(RxFilter::Promiscuous.accepts(mac("02:00:00:00:00:02")));
    }
}
