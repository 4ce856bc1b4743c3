//! The forwarding database (`net/bridge/br_fdb.c`): `(VLAN, MAC) -> port`, learned from sources,
//! aged by the `now` callers pass in, with static, sticky and local entries and a cap on learned
//! entries. Invariants: local entries never move; sticky entries never move; static and local
//! entries never expire and never count toward the cap; a lookup never returns an expired entry.
//!
//! The table is a `hashbrown` map from a packed `u64` key (VID in bits 48..60, MAC below) to an
//! 8-byte entry, hashed with foldhash: one multiply-fold per lookup, where SipHash costs about
//! three times as much on 8-byte keys. Each table gets its own random seed, so an attacker who
//! floods source MACs cannot precompute colliding keys.

use std::time::Duration;

use hashbrown::HashMap;

use super::clock::{Tick, ticks};
use super::ports::PortId;
use super::vlan::Vid;
use crate::wire::Mac;

/// Default ageing time (`BR_DEFAULT_AGEING_TIME`, 300 s).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);

const STATIC: u8 = 1;
const STICKY: u8 = 2;
const LOCAL: u8 = 4;

#[derive(Copy, Clone, Debug)]
struct Entry {
    port: PortId,
    flags: u8,
    updated: Tick,
}

impl Entry {
    #[inline]
    fn counts_as_learned(&self) -> bool {
        self.flags & (STATIC | LOCAL) == 0
    }
}

#[inline]
fn key(vid: Vid, mac: Mac) -> u64 {
    (u64::from(vid & 0xfff) << 48) | mac.key()
}

/// The kind of an FDB entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Learned from traffic; ages out.
    Dynamic,
    /// Added by the operator; never ages, moves when its MAC appears elsewhere (unless sticky).
    Static,
    /// The switch's own or a port's own MAC: frames to it go to the host side; never moves.
    Local,
}

/// One entry, as shown to operators.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// VLAN (0 on VLAN-unaware ports).
    pub vid: Vid,
    /// Station MAC.
    pub mac: Mac,
    /// Port the MAC was seen on (for local entries, the port that owns it).
    pub port: PortId,
    /// Kind.
    pub kind: EntryKind,
    /// Never moves to another port.
    pub sticky: bool,
    /// Centiseconds since the MAC last sent a frame (or since it was added).
    pub age: u32,
}

/// What learning a source did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A new dynamic entry.
    New,
    /// The entry existed on this port; its timer was refreshed.
    Refreshed,
    /// The MAC moved here from another port (`br_fdb_update`: no hysteresis).
    Moved {
        /// Where it was.
        from: PortId,
    },
    /// A sticky entry on another port kept its port (timer refreshed).
    Sticky,
    /// The source is one of the switch's own MACs; nothing changed (the kernel warns).
    OwnAddress,
    /// At `max_learned`: no entry made, the frame still goes on (`fdb_create` returns NULL).
    AtCap,
    /// Learning is off (ageing time 0).
    Off,
}

/// Why an operator's FDB change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FdbError {
    /// The MAC is multicast or all-zero.
    #[error("{mac} cannot be an FDB entry: multicast and all-zero addresses are never stations")]
    NotUnicast {
        /// The MAC.
        mac: Mac,
    },
    /// The MAC is a local entry (the switch's own).
    #[error("{mac} on VLAN {vid} is a local address of the switch and cannot be replaced")]
    Local {
        /// The MAC.
        mac: Mac,
        /// The VLAN.
        vid: Vid,
    },
}

/// Counters of the table (documented, one per event).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FdbStats {
    /// Dynamic entries created by learning.
    pub learned: u64,
    /// Entries re-pointed because their MAC appeared on another port.
    pub moves: u64,
    /// New sources not learned because the table was at `max_learned`.
    pub at_cap: u64,
    /// Dynamic entries removed by ageing.
    pub expired: u64,
    /// Frames whose source was one of the switch's own (local) MACs.
    pub own_source: u64,
}

/// The forwarding database of one switch.
#[derive(Debug, Clone)]
pub struct Fdb {
    map: HashMap<u64, Entry, foldhash::fast::RandomState>,
    ageing: u32,
    max_learned: u32,
    n_learned: u32,
    stats: FdbStats,
}

impl Default for Fdb {
    fn default() -> Self {
        Fdb::new()
    }
}

impl Fdb {
    /// An empty table with the kernel defaults: 300 s ageing, no cap.
    pub fn new() -> Fdb {
        Fdb {
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            ageing: ticks(DEFAULT_AGEING),
            max_learned: 0,
            n_learned: 0,
            stats: FdbStats::default(),
        }
    }

    /// Reserves room for `n` more entries (benchmarks and large tables avoid rehashing).
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
    }

    /// Sets the ageing time; zero turns learning off and makes every dynamic entry expired.
    pub fn set_ageing(&mut self, ageing: Duration) {
        self.ageing = ticks(ageing);
    }

    /// The ageing time.
    pub fn ageing(&self) -> Duration {
        Duration::from_millis(u64::from(self.ageing) * 10)
    }

    /// Caps dynamically learned entries (0 = unlimited, the default). Entries over a lowered cap
    /// stay until they age out, as in the kernel.
    pub fn set_max_learned(&mut self, max: u32) {
        self.max_learned = max;
    }

    /// The cap on learned entries (0 = unlimited).
    pub fn max_learned(&self) -> u32 {
        self.max_learned
    }

    /// Entries of every kind.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Dynamic entries (those the cap counts).
    pub fn n_learned(&self) -> u32 {
        self.n_learned
    }

    /// Counters.
    pub fn stats(&self) -> FdbStats {
        self.stats
    }

    /// Bytes the table holds in memory (buckets, entries and control bytes).
    pub fn memory_bytes(&self) -> usize {
        let buckets = if self.map.capacity() == 0 {
            0
        } else {
            (self.map.capacity() * 8 / 7).next_power_of_two()
        };
        buckets * (std::mem::size_of::<(u64, Entry)>() + 1)
    }

    #[inline]
    fn expired(&self, e: &Entry, now: Tick) -> bool {
        e.flags & (STATIC | LOCAL) == 0 && now.since(e.updated) >= self.ageing
    }

    /// Learns that `mac` on `vid` sent a frame on `port` at `now` (`br_fdb_update`).
    // Always inlined: called once per frame from one place; as a call it ran 2-5x slower.
    #[inline(always)]
    pub fn learn(&mut self, now: Tick, vid: Vid, mac: Mac, port: PortId) -> Learned {
        if self.ageing == 0 {
            return Learned::Off;
        }
        if let Some(e) = self.map.get_mut(&key(vid, mac)) {
            if e.flags & LOCAL != 0 {
                self.stats.own_source += 1;
                return Learned::OwnAddress;
            }
            // Write only when something changed: at tens of millions of frames a second most
            // frames refresh an entry already refreshed this centisecond.
            if e.updated != now {
                e.updated = now;
            }
            if e.port == port {
                return Learned::Refreshed;
            }
            if e.flags & STICKY != 0 {
                return Learned::Sticky;
            }
            let from = e.port;
            e.port = port;
            self.stats.moves += 1;
            return Learned::Moved { from };
        }
        if self.max_learned != 0 && self.n_learned >= self.max_learned {
            self.stats.at_cap += 1;
            return Learned::AtCap;
        }
        self.map.insert(
            key(vid, mac),
            Entry {
                port,
                flags: 0,
                updated: now,
            },
        );
        self.n_learned += 1;
        self.stats.learned += 1;
        Learned::New
    }

    /// Where frames to `mac` on `vid` go at `now`: `Some((port, is_local))`, `None` if unknown.
    ///
    /// The kernel's forwarding lookup (`br_fdb_find_rcu`) does not test expiry and relies on its
    /// garbage collector, which runs at the nearest expiry; testing here makes the same decision
    /// at exactly the expiry time, independent of when [`Fdb::age`] runs.
    #[inline(always)]
    pub fn lookup(&self, now: Tick, vid: Vid, mac: Mac) -> Option<(PortId, bool)> {
        let e = self.map.get(&key(vid, mac))?;
        if self.expired(e, now) {
            return None;
        }
        Some((e.port, e.flags & LOCAL != 0))
    }

    /// Removes expired dynamic entries (`br_fdb_cleanup`); returns how many.
    pub fn age(&mut self, now: Tick) -> usize {
        let before = self.map.len();
        let ageing = self.ageing;
        let mut removed_learned = 0u32;
        self.map.retain(|_, e| {
            let keep = !(e.flags & (STATIC | LOCAL) == 0 && now.since(e.updated) >= ageing);
            if !keep {
                removed_learned += 1;
            }
            keep
        });
        self.n_learned -= removed_learned;
        self.stats.expired += u64::from(removed_learned);
        before - self.map.len()
    }

    /// Adds or replaces an operator entry: static (never ages) and optionally sticky (never
    /// moves). Replacing a learned entry frees its place under the cap.
    pub fn add_static(
        &mut self,
        now: Tick,
        vid: Vid,
        mac: Mac,
        port: PortId,
        sticky: bool,
    ) -> Result<(), FdbError> {
        self.add(
            now,
            vid,
            mac,
            port,
            STATIC | if sticky { STICKY } else { 0 },
        )
    }

    /// Adds a local entry: `mac` is the switch's own (or `port`'s own) address, frames to it go
    /// to the host side, and it never moves or ages.
    pub fn add_local(
        &mut self,
        now: Tick,
        vid: Vid,
        mac: Mac,
        port: PortId,
    ) -> Result<(), FdbError> {
        self.add(now, vid, mac, port, LOCAL)
    }

    fn add(
        &mut self,
        now: Tick,
        vid: Vid,
        mac: Mac,
        port: PortId,
        flags: u8,
    ) -> Result<(), FdbError> {
        if !mac.is_valid_source() {
            return Err(FdbError::NotUnicast { mac });
        }
        let new = Entry {
            port,
            flags,
            updated: now,
        };
        match self.map.insert(key(vid, mac), new) {
            Some(old) if old.flags & LOCAL != 0 && flags & LOCAL == 0 => {
                self.map.insert(key(vid, mac), old);
                Err(FdbError::Local { mac, vid })
            }
            Some(old) => {
                if old.counts_as_learned() {
                    self.n_learned -= 1;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Removes the entry for `mac` on `vid`; returns whether there was one.
    pub fn remove(&mut self, vid: Vid, mac: Mac) -> bool {
        match self.map.remove(&key(vid, mac)) {
            Some(e) => {
                if e.counts_as_learned() {
                    self.n_learned -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Removes every entry pointing at `port` (`br_fdb_delete_by_port`), e.g. when it leaves.
    pub fn flush_port(&mut self, port: PortId) {
        let mut removed_learned = 0;
        self.map.retain(|_, e| {
            let keep = e.port != port;
            if !keep && e.counts_as_learned() {
                removed_learned += 1;
            }
            keep
        });
        self.n_learned -= removed_learned;
    }

    /// Removes every dynamic entry.
    pub fn flush_dynamic(&mut self) {
        self.map.retain(|_, e| !e.counts_as_learned());
        self.n_learned = 0;
    }

    /// Every live entry at `now`, in no particular order.
    pub fn entries(&self, now: Tick) -> impl Iterator<Item = FdbEntry> + '_ {
        self.map
            .iter()
            .filter(move |(_, e)| !self.expired(e, now))
            .map(move |(k, e)| FdbEntry {
                vid: (k >> 48) as Vid,
                mac: Mac::from_key(*k),
                port: e.port,
                kind: if e.flags & LOCAL != 0 {
                    EntryKind::Local
                } else if e.flags & STATIC != 0 {
                    EntryKind::Static
                } else {
                    EntryKind::Dynamic
                },
                sticky: e.flags & STICKY != 0,
                age: now.since(e.updated),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(i: usize) -> PortId {
        PortId::new(i).unwrap()
    }
    fn mac(last: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, last])
    }

    #[test]
    fn learn_lookup_and_expire_at_exactly_ageing() {
        let mut f = Fdb::new();
        assert_eq!(f.learn(Tick::from_secs(10), 0, mac(1), p(1)), Learned::New);
        assert_eq!(
            f.lookup(Tick::from_secs(309), 0, mac(1)),
            Some((p(1), false))
        );
        // `updated + ageing <= now` is expired (br_fdb_cleanup / has_expired).
        assert_eq!(f.lookup(Tick::from_secs(310), 0, mac(1)), None);
        assert_eq!(f.age(Tick::from_secs(310)), 1);
        assert!(f.is_empty());
        assert_eq!(f.n_learned(), 0);
        assert_eq!(f.stats().expired, 1);
    }

    #[test]
    fn refresh_only_from_frames_from_the_mac() {
        let mut f = Fdb::new();
        f.learn(Tick::from_secs(0), 0, mac(1), p(1));
        // Lookups (frames *to* the MAC) do not refresh.
        for s in 1..300 {
            assert!(f.lookup(Tick::from_secs(s), 0, mac(1)).is_some());
        }
        assert_eq!(f.lookup(Tick::from_secs(300), 0, mac(1)), None);
        f.learn(Tick::from_secs(300), 0, mac(1), p(1));
        assert!(f.lookup(Tick::from_secs(599), 0, mac(1)).is_some());
    }

    #[test]
    fn vlan_is_part_of_the_key() {
        let mut f = Fdb::new();
        f.learn(Tick(0), 10, mac(1), p(1));
        f.learn(Tick(0), 20, mac(1), p(2));
        assert_eq!(f.lookup(Tick(0), 10, mac(1)), Some((p(1), false)));
        assert_eq!(f.lookup(Tick(0), 20, mac(1)), Some((p(2), false)));
        assert_eq!(f.stats().moves, 0);
    }

    #[test]
    fn move_rules() {
        let mut f = Fdb::new();
        let t = Tick(0);
        f.learn(t, 0, mac(1), p(1));
        assert_eq!(f.learn(t, 0, mac(1), p(2)), Learned::Moved { from: p(1) });
        assert_eq!(f.stats().moves, 1);
        // Static entries move (br_fdb_update only spares sticky ones) but never age.
        f.add_static(t, 0, mac(2), p(1), false).unwrap();
        assert_eq!(f.learn(t, 0, mac(2), p(3)), Learned::Moved { from: p(1) });
        assert_eq!(
            f.lookup(Tick::from_secs(100_000), 0, mac(2)),
            Some((p(3), false))
        );
        // Sticky entries never move.
        f.add_static(t, 0, mac(3), p(1), true).unwrap();
        assert_eq!(f.learn(t, 0, mac(3), p(3)), Learned::Sticky);
        assert_eq!(f.lookup(t, 0, mac(3)), Some((p(1), false)));
        // Local entries never move; frames from them are counted.
        f.add_local(t, 0, mac(4), p(1)).unwrap();
        assert_eq!(f.learn(t, 0, mac(4), p(2)), Learned::OwnAddress);
        assert_eq!(f.lookup(t, 0, mac(4)), Some((p(1), true)));
        assert_eq!(f.stats().own_source, 1);
        assert!(f.add_static(t, 0, mac(4), p(2), false).is_err());
        assert!(f.add_static(t, 0, Mac::BROADCAST, p(2), false).is_err());
    }

    #[test]
    fn cap_counts_only_learned_entries() {
        let mut f = Fdb::new();
        f.set_max_learned(2);
        let t = Tick(0);
        f.add_static(t, 0, mac(100), p(0), false).unwrap();
        f.add_local(t, 0, mac(101), p(0)).unwrap();
        assert_eq!(f.learn(t, 0, mac(1), p(1)), Learned::New);
        assert_eq!(f.learn(t, 0, mac(2), p(1)), Learned::New);
        assert_eq!(f.learn(t, 0, mac(3), p(1)), Learned::AtCap);
        assert_eq!(f.stats().at_cap, 1);
        // Existing entries still refresh and move at the cap.
        assert_eq!(f.learn(t, 0, mac(1), p(2)), Learned::Moved { from: p(1) });
        // Turning a learned entry static frees a place.
        f.add_static(t, 0, mac(2), p(1), false).unwrap();
        assert_eq!(f.n_learned(), 1);
        assert_eq!(f.learn(t, 0, mac(3), p(1)), Learned::New);
        f.flush_port(p(1));
        assert_eq!(f.n_learned(), 1);
        assert_eq!(f.lookup(t, 0, mac(2)), None);
    }

    #[test]
    fn ageing_zero_disables_learning() {
        let mut f = Fdb::new();
        f.set_ageing(Duration::ZERO);
        assert_eq!(f.learn(Tick(0), 0, mac(1), p(1)), Learned::Off);
        assert_eq!(f.lookup(Tick(0), 0, mac(1)), None);
    }

    #[test]
    fn time_wraps() {
        let mut f = Fdb::new();
        let near_wrap = Tick(u32::MAX - 50);
        f.learn(near_wrap, 0, mac(1), p(1));
        assert!(f.lookup(Tick(100), 0, mac(1)).is_some());
        assert!(f.lookup(Tick(30_000 - 51), 0, mac(1)).is_none());
    }
}
