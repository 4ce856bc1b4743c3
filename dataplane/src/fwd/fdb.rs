//! The forwarding database (`net/bridge/br_fdb.c`): `(VLAN, MAC) -> port`, learned from sources,
//! aged by the `now` callers pass in, with static, sticky and local entries, a cap on learned
//! entries, a per-port cap (port security, l2sw only) and MAC-move flap detection (l2sw only).
//! Invariants: local entries never move; sticky entries never move; static and local entries
//! never expire and never count toward either cap; a lookup never returns an expired entry; the
//! per-port learned counts always sum to [`Fdb::n_learned`].
//!
//! The table is a `hashbrown` map from a packed `u64` key (VID in bits 48..60, MAC below) to an
//! 8-byte entry, hashed with foldhash: one multiply-fold per lookup, where SipHash costs about
//! three times as much on 8-byte keys. Each table gets its own random seed, so an attacker who
//! floods source MACs cannot precompute colliding keys.

use std::time::Duration;

use hashbrown::HashMap;

use super::clock::{TICKS_PER_SEC, Tick, ticks};
use super::ports::{MAX_PORTS, PortId};
use super::vlan::Vid;
use crate::wire::{Mac, Vtep};

/// Default ageing time (`BR_DEFAULT_AGEING_TIME`, 300 s).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);

/// A MAC that moves this many times within one [`FLAP_WINDOW`] is flapping: two ports both
/// claim it, which with a station that does not roam that fast means a loop between them (or a
/// duplicated MAC). 10 moves in a second is far above any real roaming (a Wi-Fi handover, a VM
/// migration: one move) and reached within milliseconds by a looped broadcast. Windows are
/// fixed, not sliding: a burst split across a window boundary needs up to twice as many moves.
pub const FLAP_MOVES: u8 = 10;

/// The window [`FLAP_MOVES`] are counted in: one second, in ticks.
pub const FLAP_WINDOW: u32 = TICKS_PER_SEC;

/// How many recent flaps [`Fdb::recent_flaps`] keeps (older ones are counted, not kept).
pub const FLAP_RING: usize = 32;

const STATIC: u8 = 1;
const STICKY: u8 = 2;
const LOCAL: u8 = 4;
/// The entry names a remote VTEP (kept in [`Fdb`]'s side table, so that entries stay 8 bytes
/// and a network without an overlay never looks there).
const REMOTE: u8 = 8;
/// The kind bits of `Entry::flags`; the bits above count the entry's moves in its window.
const KIND: u8 = STATIC | STICKY | LOCAL;
/// The bits a move keeps.
const KEEP: u8 = KIND | REMOTE;
const MOVES_SHIFT: u32 = 4;
const MOVES_MAX: u8 = u8::MAX >> MOVES_SHIFT;
const _: () = assert!(FLAP_MOVES <= MOVES_MAX && KEEP < 1 << MOVES_SHIFT);

/// 8 bytes: the move counter lives in the spare bits of `flags` and the padding, so flap
/// detection costs the table no memory.
#[derive(Copy, Clone, Debug)]
struct Entry {
    port: PortId,
    /// Kind bits, and the moves counted in `window` above them.
    flags: u8,
    /// The [`FLAP_WINDOW`] (since the epoch, wrapping) the move count belongs to.
    window: u16,
    updated: Tick,
}

impl Entry {
    fn new(port: PortId, kind: u8, now: Tick) -> Entry {
        Entry {
            port,
            flags: kind,
            window: 0,
            updated: now,
        }
    }

    #[inline]
    fn counts_as_learned(&self) -> bool {
        self.flags & (STATIC | LOCAL) == 0
    }

    /// Counts a move at `now`; true for the [`FLAP_MOVES`]th of its window, so that a
    /// flapping MAC is reported once a window.
    #[inline]
    fn count_move(&mut self, now: Tick) -> bool {
        let window = (now.0 / FLAP_WINDOW) as u16;
        let moves = if self.window == window {
            (self.flags >> MOVES_SHIFT).saturating_add(1).min(MOVES_MAX)
        } else {
            self.window = window;
            1
        };
        self.flags = (self.flags & KEEP) | (moves << MOVES_SHIFT);
        moves == FLAP_MOVES
    }
}

#[inline]
fn key(vid: Vid, mac: Mac) -> u64 {
    ((vid.index() as u64) << 48) | mac.key()
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
    /// Behind an overlay port: the remote VTEP the MAC is behind (`None`: unknown, frames to
    /// it go to every VTEP of the flood list).
    pub vtep: Option<Vtep>,
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
    /// The port is at its own cap of learned MACs (port security, l2sw only): no entry made
    /// or moved here; the bridge drops the frame.
    PortCap,
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
    /// No operator entry for the MAC (none at all, or a learned or local one).
    #[error("{mac} on VLAN {vid} has no static entry to remove")]
    NoStatic {
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
    /// New sources (or MACs moving in) refused because their port was at its own cap.
    pub port_cap: u64,
    /// MACs that moved [`FLAP_MOVES`] times within a [`FLAP_WINDOW`] (counted once a window).
    pub flaps: u64,
    /// Dynamic entries removed by ageing.
    pub expired: u64,
    /// Frames whose source was one of the switch's own (local) MACs.
    pub own_source: u64,
}

/// One port's share of the table.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PortFdbStats {
    /// Dynamic entries pointing at the port.
    pub learned: u32,
    /// The port's cap on them (0 = none).
    pub max_learned: u32,
    /// New sources (or MACs moving in) refused at the cap.
    pub refused: u64,
    /// Flaps this port took part in (as either end of the move).
    pub flaps: u64,
}

/// A MAC seen flapping: its [`FLAP_MOVES`]th move within a window, from one port to another.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Flap {
    /// VLAN.
    pub vid: Vid,
    /// The MAC.
    pub mac: Mac,
    /// Where it was.
    pub from: PortId,
    /// Where it moved.
    pub to: PortId,
    /// When.
    pub at: Tick,
}

/// Learned-entry accounting, table-wide and per port, kept apart from the map so that
/// `retain` closures can update it while the map is borrowed.
#[derive(Debug, Clone)]
struct Accounting {
    n_learned: u32,
    ports: Box<[PortFdbStats; MAX_PORTS]>,
}

impl Accounting {
    #[inline]
    fn add(&mut self, port: PortId) {
        self.n_learned += 1;
        self.ports[port.index()].learned += 1;
    }

    /// Whether `port` is at its own cap (port security): a new entry there is refused, and
    /// the refusal counted.
    #[inline]
    fn refuse(&mut self, port: PortId, stats: &mut FdbStats) -> bool {
        let p = &mut self.ports[port.index()];
        let full = p.max_learned != 0 && p.learned >= p.max_learned;
        if full {
            p.refused += 1;
            stats.port_cap += 1;
        }
        full
    }

    /// Forgets `e` if it was a learned entry; returns whether it was.
    #[inline]
    fn remove(&mut self, e: &Entry) -> bool {
        let learned = e.counts_as_learned();
        if learned {
            self.n_learned -= 1;
            self.ports[e.port.index()].learned -= 1;
        }
        learned
    }
}

/// The forwarding database of one switch.
#[derive(Debug, Clone)]
pub struct Fdb {
    map: HashMap<u64, Entry, foldhash::fast::RandomState>,
    ageing: u32,
    max_learned: u32,
    acct: Accounting,
    stats: FdbStats,
    flaps: [Option<Flap>; FLAP_RING],
    /// The VTEP of each entry flagged [`REMOTE`] (the kernel vxlan FDB's `MAC -> remote IP`),
    /// and of no other entry.
    vteps: HashMap<u64, Vtep, foldhash::fast::RandomState>,
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
            acct: Accounting {
                n_learned: 0,
                ports: Box::new([PortFdbStats::default(); MAX_PORTS]),
            },
            stats: FdbStats::default(),
            flaps: [None; FLAP_RING],
            vteps: HashMap::with_hasher(foldhash::fast::RandomState::default()),
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

    /// Caps the dynamic entries `port` may hold (port security; 0 = no cap, the default). At
    /// the cap a new source on the port is not learned and a MAC cannot move onto it
    /// ([`Learned::PortCap`]). Entries over a lowered cap stay until they age out.
    pub fn set_port_max_learned(&mut self, port: PortId, max: u32) {
        self.acct.ports[port.index()].max_learned = max;
    }

    /// `port`'s learned entries, cap, refusals and flaps.
    pub fn port_stats(&self, port: PortId) -> PortFdbStats {
        self.acct.ports[port.index()]
    }

    /// The most recent flaps (at most [`FLAP_RING`]), oldest first; [`FdbStats::flaps`]
    /// counts them all.
    pub fn recent_flaps(&self) -> impl Iterator<Item = Flap> + '_ {
        let total = self.stats.flaps as usize;
        let first = total.saturating_sub(FLAP_RING);
        (first..total).filter_map(move |i| self.flaps[i % FLAP_RING])
    }

    fn record_flap(&mut self, flap: Flap) {
        self.flaps[self.stats.flaps as usize % FLAP_RING] = Some(flap);
        self.stats.flaps += 1;
        for p in [flap.from, flap.to] {
            self.acct.ports[p.index()].flaps += 1;
        }
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
        self.acct.n_learned
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
            // A move (rare but in loops): the port cap and flap detection, l2sw only.
            if e.counts_as_learned() {
                if self.acct.refuse(port, &mut self.stats) {
                    return Learned::PortCap;
                }
                self.acct.remove(e);
                self.acct.add(port);
            }
            let from = e.port;
            e.port = port;
            let flapped = e.count_move(now);
            self.stats.moves += 1;
            if flapped {
                let flap = Flap {
                    vid,
                    mac,
                    from,
                    to: port,
                    at: now,
                };
                self.record_flap(flap);
            }
            return Learned::Moved { from };
        }
        if self.acct.refuse(port, &mut self.stats) {
            return Learned::PortCap;
        }
        if self.max_learned != 0 && self.acct.n_learned >= self.max_learned {
            self.stats.at_cap += 1;
            return Learned::AtCap;
        }
        self.map.insert(key(vid, mac), Entry::new(port, 0, now));
        self.acct.add(port);
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

    /// [`Fdb::lookup`], with the remote VTEP the entry names (`vxlan_find_mac`).
    #[inline(always)]
    pub fn lookup_via(
        &self,
        now: Tick,
        vid: Vid,
        mac: Mac,
    ) -> Option<(PortId, bool, Option<Vtep>)> {
        let k = key(vid, mac);
        let e = self.map.get(&k)?;
        if self.expired(e, now) {
            return None;
        }
        let vtep = if e.flags & REMOTE != 0 {
            self.vteps.get(&k).copied()
        } else {
            None
        };
        Some((e.port, e.flags & LOCAL != 0, vtep))
    }

    /// [`Fdb::learn`] for a frame that came from remote VTEP `vtep` over an overlay port
    /// (`vxlan_snoop`): the entry names the VTEP. `None` (a local port, or an overlay that does
    /// not learn remotes) leaves a refreshed entry's VTEP as it was; a MAC that moved forgets
    /// the VTEP it had. A static entry's VTEP is never overwritten by learning.
    #[inline(always)]
    pub fn learn_via(
        &mut self,
        now: Tick,
        vid: Vid,
        mac: Mac,
        port: PortId,
        vtep: Option<Vtep>,
    ) -> Learned {
        let learned = self.learn(now, vid, mac, port);
        if vtep.is_some() || !self.vteps.is_empty() {
            let k = key(vid, mac);
            let set = match learned {
                Learned::New => vtep.map(Some),
                Learned::Refreshed => vtep
                    .filter(|_| self.map.get(&k).is_some_and(|e| e.flags & STATIC == 0))
                    .map(Some),
                Learned::Moved { .. } => Some(vtep),
                _ => None,
            };
            if let Some(v) = set {
                self.set_vtep(k, v);
            }
        }
        learned
    }

    fn set_vtep(&mut self, k: u64, vtep: Option<Vtep>) {
        let Some(e) = self.map.get_mut(&k) else {
            return;
        };
        match vtep {
            Some(v) => {
                e.flags |= REMOTE;
                self.vteps.insert(k, v);
            }
            None => {
                e.flags &= !REMOTE;
                self.vteps.remove(&k);
            }
        }
    }

    /// Drops side-table VTEPs whose entries are gone (after a bulk removal).
    fn prune_vteps(&mut self) {
        if !self.vteps.is_empty() {
            let map = &self.map;
            self.vteps
                .retain(|k, _| map.get(k).is_some_and(|e| e.flags & REMOTE != 0));
        }
    }

    /// Removes every entry naming `vtep` (a remote that left the overlay); returns how many.
    pub fn flush_vtep(&mut self, vtep: Vtep) -> usize {
        let gone: Vec<u64> = self
            .vteps
            .iter()
            .filter(|(_, v)| **v == vtep)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            if let Some(e) = self.map.remove(k) {
                self.acct.remove(&e);
            }
            self.vteps.remove(k);
        }
        gone.len()
    }

    /// [`Fdb::add_static`] behind remote VTEP `vtep` (a static remote entry, as
    /// `bridge fdb add MAC dev vx dst IP` makes on a kernel VTEP).
    pub fn add_static_via(
        &mut self,
        now: Tick,
        vid: Vid,
        mac: Mac,
        port: PortId,
        sticky: bool,
        vtep: Option<Vtep>,
    ) -> Result<(), FdbError> {
        self.add_static(now, vid, mac, port, sticky)?;
        self.set_vtep(key(vid, mac), vtep);
        Ok(())
    }

    /// Removes expired dynamic entries (`br_fdb_cleanup`); returns how many.
    pub fn age(&mut self, now: Tick) -> usize {
        let before = self.map.len();
        let ageing = self.ageing;
        let acct = &mut self.acct;
        // `remove` forgets learned entries only: static and local ones never expire.
        self.map
            .retain(|_, e| !(now.since(e.updated) >= ageing && acct.remove(e)));
        let removed = before - self.map.len();
        self.stats.expired += removed as u64;
        if removed != 0 {
            self.prune_vteps();
        }
        removed
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
        match self.map.insert(key(vid, mac), Entry::new(port, flags, now)) {
            Some(old) if old.flags & LOCAL != 0 && flags & LOCAL == 0 => {
                self.map.insert(key(vid, mac), old);
                Err(FdbError::Local { mac, vid })
            }
            Some(old) => {
                self.acct.remove(&old);
                self.vteps.remove(&key(vid, mac));
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Removes the entry for `mac` on `vid`; returns whether there was one.
    pub fn remove(&mut self, vid: Vid, mac: Mac) -> bool {
        match self.map.remove(&key(vid, mac)) {
            Some(e) => {
                self.acct.remove(&e);
                self.vteps.remove(&key(vid, mac));
                true
            }
            None => false,
        }
    }

    /// Removes the operator entry for `mac` on `vid` (`bridge fdb del`); returns the remote
    /// VTEP it named, if any. Learned and local entries are not the operator's to remove.
    pub fn remove_static(&mut self, vid: Vid, mac: Mac) -> Result<Option<Vtep>, FdbError> {
        let k = key(vid, mac);
        if self.map.get(&k).is_none_or(|e| e.flags & STATIC == 0) {
            return Err(FdbError::NoStatic { mac, vid });
        }
        let vtep = self.vteps.get(&k).copied();
        self.remove(vid, mac);
        Ok(vtep)
    }

    /// Whether a static entry still names remote VTEP `vtep`.
    pub fn names_vtep(&self, vtep: Vtep) -> bool {
        self.vteps
            .iter()
            .any(|(k, v)| *v == vtep && self.map.get(k).is_some_and(|e| e.flags & STATIC != 0))
    }

    /// Removes every entry pointing at `port` (`br_fdb_delete_by_port`), e.g. when it leaves.
    pub fn flush_port(&mut self, port: PortId) {
        let acct = &mut self.acct;
        self.map.retain(|_, e| {
            let keep = e.port != port;
            if !keep {
                acct.remove(e);
            }
            keep
        });
        self.prune_vteps();
    }

    /// Removes every dynamic entry.
    pub fn flush_dynamic(&mut self) {
        self.map.retain(|_, e| !e.counts_as_learned());
        self.acct.n_learned = 0;
        for p in self.acct.ports.iter_mut() {
            p.learned = 0;
        }
        self.prune_vteps();
    }

    /// Every live entry at `now`, in no particular order.
    pub fn entries(&self, now: Tick) -> impl Iterator<Item = FdbEntry> + '_ {
        self.map
            .iter()
            .filter(move |(_, e)| !self.expired(e, now))
            .map(move |(k, e)| FdbEntry {
                vid: Vid::new((k >> 48) as u16),
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
                vtep: if e.flags & REMOTE != 0 {
                    self.vteps.get(k).copied()
                } else {
                    None
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::craft::station;

    #[test]
    fn only_operator_entries_are_removed_and_their_vteps_go_with_the_last() {
        let mut f = Fdb::new();
        let t = Tick::default();
        let v = Vid::UNAWARE;
        let vtep = Vtep(std::net::Ipv4Addr::new(192, 0, 2, 7));
        let (a, b, c) = (station(1), station(2), station(3));
        f.add_static_via(t, v, a, p(1), false, Some(vtep)).unwrap();
        f.add_static_via(t, v, b, p(1), false, Some(vtep)).unwrap();
        f.learn(t, v, c, p(2));
        assert!(f.names_vtep(vtep));
        assert!(matches!(
            f.remove_static(v, c),
            Err(FdbError::NoStatic { .. })
        ));
        assert!(matches!(
            f.remove_static(v, station(9)),
            Err(FdbError::NoStatic { .. })
        ));
        assert_eq!(f.remove_static(v, a).unwrap(), Some(vtep));
        assert!(f.names_vtep(vtep), "b still names it");
        assert_eq!(f.remove_static(v, b).unwrap(), Some(vtep));
        assert!(!f.names_vtep(vtep));
        assert_eq!(f.len(), 1, "the learned entry stays");
    }

    fn p(i: usize) -> PortId {
        PortId::new(i).unwrap()
    }

    #[test]
    fn learn_lookup_and_expire_at_exactly_ageing() {
        let mut f = Fdb::new();
        assert_eq!(
            f.learn(Tick::from_secs(10), Vid::new(0), station(1), p(1)),
            Learned::New
        );
        assert_eq!(
            f.lookup(Tick::from_secs(309), Vid::new(0), station(1)),
            Some((p(1), false))
        );
        // `updated + ageing <= now` is expired (br_fdb_cleanup / has_expired).
        assert_eq!(
            f.lookup(Tick::from_secs(310), Vid::new(0), station(1)),
            None
        );
        assert_eq!(f.age(Tick::from_secs(310)), 1);
        assert!(f.is_empty());
        assert_eq!(f.n_learned(), 0);
        assert_eq!(f.stats().expired, 1);
    }

    #[test]
    fn refresh_only_from_frames_from_the_mac() {
        let mut f = Fdb::new();
        f.learn(Tick::from_secs(0), Vid::new(0), station(1), p(1));
        // Lookups (frames *to* the MAC) do not refresh.
        for s in 1..300 {
            assert!(
                f.lookup(Tick::from_secs(s), Vid::new(0), station(1))
                    .is_some()
            );
        }
        assert_eq!(
            f.lookup(Tick::from_secs(300), Vid::new(0), station(1)),
            None
        );
        f.learn(Tick::from_secs(300), Vid::new(0), station(1), p(1));
        assert!(
            f.lookup(Tick::from_secs(599), Vid::new(0), station(1))
                .is_some()
        );
    }

    #[test]
    fn vlan_is_part_of_the_key() {
        let mut f = Fdb::new();
        f.learn(Tick(0), Vid::new(10), station(1), p(1));
        f.learn(Tick(0), Vid::new(20), station(1), p(2));
        assert_eq!(
            f.lookup(Tick(0), Vid::new(10), station(1)),
            Some((p(1), false))
        );
        assert_eq!(
            f.lookup(Tick(0), Vid::new(20), station(1)),
            Some((p(2), false))
        );
        assert_eq!(f.stats().moves, 0);
    }

    #[test]
    fn move_rules() {
        let mut f = Fdb::new();
        let t = Tick(0);
        f.learn(t, Vid::new(0), station(1), p(1));
        assert_eq!(
            f.learn(t, Vid::new(0), station(1), p(2)),
            Learned::Moved { from: p(1) }
        );
        assert_eq!(f.stats().moves, 1);
        // Static entries move (br_fdb_update only spares sticky ones) but never age.
        f.add_static(t, Vid::new(0), station(2), p(1), false)
            .unwrap();
        assert_eq!(
            f.learn(t, Vid::new(0), station(2), p(3)),
            Learned::Moved { from: p(1) }
        );
        assert_eq!(
            f.lookup(Tick::from_secs(100_000), Vid::new(0), station(2)),
            Some((p(3), false))
        );
        // Sticky entries never move.
        f.add_static(t, Vid::new(0), station(3), p(1), true)
            .unwrap();
        assert_eq!(f.learn(t, Vid::new(0), station(3), p(3)), Learned::Sticky);
        assert_eq!(f.lookup(t, Vid::new(0), station(3)), Some((p(1), false)));
        // Local entries never move; frames from them are counted.
        f.add_local(t, Vid::new(0), station(4), p(1)).unwrap();
        assert_eq!(
            f.learn(t, Vid::new(0), station(4), p(2)),
            Learned::OwnAddress
        );
        assert_eq!(f.lookup(t, Vid::new(0), station(4)), Some((p(1), true)));
        assert_eq!(f.stats().own_source, 1);
        assert!(
            f.add_static(t, Vid::new(0), station(4), p(2), false)
                .is_err()
        );
        assert!(
            f.add_static(t, Vid::new(0), Mac::BROADCAST, p(2), false)
                .is_err()
        );
    }

    #[test]
    fn cap_counts_only_learned_entries() {
        let mut f = Fdb::new();
        f.set_max_learned(2);
        let t = Tick(0);
        f.add_static(t, Vid::new(0), station(100), p(0), false)
            .unwrap();
        f.add_local(t, Vid::new(0), station(101), p(0)).unwrap();
        assert_eq!(f.learn(t, Vid::new(0), station(1), p(1)), Learned::New);
        assert_eq!(f.learn(t, Vid::new(0), station(2), p(1)), Learned::New);
        assert_eq!(f.learn(t, Vid::new(0), station(3), p(1)), Learned::AtCap);
        assert_eq!(f.stats().at_cap, 1);
        // Existing entries still refresh and move at the cap.
        assert_eq!(
            f.learn(t, Vid::new(0), station(1), p(2)),
            Learned::Moved { from: p(1) }
        );
        // Turning a learned entry static frees a place.
        f.add_static(t, Vid::new(0), station(2), p(1), false)
            .unwrap();
        assert_eq!(f.n_learned(), 1);
        assert_eq!(f.learn(t, Vid::new(0), station(3), p(1)), Learned::New);
        f.flush_port(p(1));
        assert_eq!(f.n_learned(), 1);
        assert_eq!(f.lookup(t, Vid::new(0), station(2)), None);
    }

    /// The per-port counts always add up to the table's.
    fn assert_accounted(f: &Fdb) {
        let per_port: u32 = (0..MAX_PORTS)
            .filter_map(PortId::new)
            .map(|p| f.port_stats(p).learned)
            .sum();
        assert_eq!(per_port, f.n_learned());
        let dynamic = f.map.values().filter(|e| e.counts_as_learned()).count();
        assert_eq!(dynamic as u32, f.n_learned());
    }

    #[test]
    fn entries_stay_eight_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 8);
    }

    #[test]
    fn port_cap_refuses_new_sources_and_moves_in_only_on_that_port() {
        let mut f = Fdb::new();
        let t = Tick(0);
        f.set_port_max_learned(p(1), 2);
        f.add_static(t, Vid::new(0), station(100), p(1), false)
            .unwrap();
        assert_eq!(f.learn(t, Vid::new(0), station(1), p(1)), Learned::New);
        assert_eq!(f.learn(t, Vid::new(0), station(2), p(1)), Learned::New);
        assert_eq!(f.learn(t, Vid::new(0), station(3), p(1)), Learned::PortCap);
        assert_eq!(f.lookup(t, Vid::new(0), station(3)), None);
        // Known stations on the full port still refresh; other ports learn freely.
        assert_eq!(
            f.learn(t, Vid::new(0), station(1), p(1)),
            Learned::Refreshed
        );
        assert_eq!(f.learn(t, Vid::new(0), station(3), p(2)), Learned::New);
        // A MAC cannot move onto the full port: it stays where it is.
        assert_eq!(f.learn(t, Vid::new(0), station(3), p(1)), Learned::PortCap);
        assert_eq!(f.lookup(t, Vid::new(0), station(3)), Some((p(2), false)));
        let s = f.port_stats(p(1));
        assert_eq!((s.learned, s.max_learned, s.refused), (2, 2, 2));
        assert_eq!(f.stats().port_cap, 2);
        // A move out frees a place; a static entry moving in does not count.
        assert_eq!(
            f.learn(t, Vid::new(0), station(1), p(2)),
            Learned::Moved { from: p(1) }
        );
        assert_eq!(
            f.learn(t, Vid::new(0), station(3), p(1)),
            Learned::Moved { from: p(2) }
        );
        f.add_static(t, Vid::new(0), station(101), p(2), false)
            .unwrap();
        assert!(matches!(
            f.learn(t, Vid::new(0), station(101), p(1)),
            Learned::Moved { .. }
        ));
        assert_eq!(f.port_stats(p(1)).learned, 2);
        assert_accounted(&f);
        // Ageing, removal and flushing give the places back.
        f.learn(Tick::from_secs(200), Vid::new(0), station(2), p(1));
        assert_eq!(f.age(Tick::from_secs(300)), 2);
        assert_eq!(f.port_stats(p(1)).learned, 1);
        assert_eq!(f.port_stats(p(2)).learned, 0);
        assert_accounted(&f);
        assert!(f.remove(Vid::new(0), station(2)));
        assert_eq!(f.port_stats(p(1)).learned, 0);
        f.learn(t, Vid::new(0), station(4), p(1));
        f.learn(t, Vid::new(0), station(5), p(3));
        f.flush_port(p(1));
        assert_eq!(f.port_stats(p(1)).learned, 0);
        assert_accounted(&f);
        f.flush_dynamic();
        assert_eq!(f.port_stats(p(3)).learned, 0);
        assert_accounted(&f);
    }

    #[test]
    fn a_mac_moving_ten_times_in_a_second_is_a_flap_reported_once_a_window() {
        let mut f = Fdb::new();
        f.learn(Tick(0), Vid::new(7), station(1), p(1));
        let mut port = p(1);
        for i in 1..=FLAP_MOVES {
            port = if port == p(1) { p(2) } else { p(1) };
            f.learn(Tick(u32::from(i)), Vid::new(7), station(1), port);
            let expect = u64::from(i == FLAP_MOVES);
            assert_eq!(f.stats().flaps, expect, "move {i}");
        }
        let flap = f.recent_flaps().next().unwrap();
        assert_eq!(
            (flap.vid, flap.mac, flap.from, flap.to, flap.at),
            (Vid::new(7), station(1), p(2), p(1), Tick(10))
        );
        assert_eq!((f.port_stats(p(1)).flaps, f.port_stats(p(2)).flaps), (1, 1));
        // The rest of the window: counted as moves, not reported again.
        for t in 11..99 {
            port = if port == p(1) { p(2) } else { p(1) };
            f.learn(Tick(t), Vid::new(7), station(1), port);
        }
        assert_eq!(f.stats().flaps, 1);
        // Slow moves (one a second) never flap.
        let mut g = Fdb::new();
        for s in 0..100 {
            g.learn(
                Tick::from_secs(s),
                Vid::new(0),
                station(1),
                p(1 + (s as usize % 2)),
            );
        }
        assert_eq!((g.stats().moves, g.stats().flaps), (99, 0));
    }

    #[test]
    fn the_flap_ring_keeps_the_most_recent() {
        let mut f = Fdb::new();
        let n = FLAP_RING as u8 + 8;
        for m in 0..n {
            for i in 0..=FLAP_MOVES {
                f.learn(Tick(0), Vid::new(0), station(m), p(1 + usize::from(i % 2)));
            }
        }
        assert_eq!(f.stats().flaps, u64::from(n));
        let macs: Vec<Mac> = f.recent_flaps().map(|fl| fl.mac).collect();
        let expect: Vec<Mac> = (8..n).map(station).collect();
        assert_eq!(macs, expect);
    }

    #[test]
    fn ageing_zero_disables_learning() {
        let mut f = Fdb::new();
        f.set_ageing(Duration::ZERO);
        assert_eq!(
            f.learn(Tick(0), Vid::new(0), station(1), p(1)),
            Learned::Off
        );
        assert_eq!(f.lookup(Tick(0), Vid::new(0), station(1)), None);
    }

    #[test]
    fn time_wraps() {
        let mut f = Fdb::new();
        let near_wrap = Tick(u32::MAX - 50);
        f.learn(near_wrap, Vid::new(0), station(1), p(1));
        assert!(f.lookup(Tick(100), Vid::new(0), station(1)).is_some());
        assert!(
            f.lookup(Tick(30_000 - 51), Vid::new(0), station(1))
                .is_none()
        );
    }
}
