//! Port identities and port sets. A `PortSet` is a fixed 256-bit bitmap: flood lists are
//! precomputed as sets at configuration time and narrowed per frame with a few word operations,
//! never built by iterating ports.

use std::fmt;

/// The most ports one switch holds.
pub const MAX_PORTS: usize = 256;
const WORDS: usize = MAX_PORTS / 64;

/// A port's index in its switch (dense, reused after removal). A `u8`, so that every index
/// derived from it is provably inside a [`PortSet`] or a per-port array: no bounds checks on
/// the hot path.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(u8);

impl PortId {
    /// The port with index `i`, if `i < MAX_PORTS`.
    #[inline]
    pub const fn new(i: usize) -> Option<PortId> {
        if i < MAX_PORTS {
            Some(PortId(i as u8))
        } else {
            None
        }
    }

    /// The index, always `< MAX_PORTS`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A set of ports.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct PortSet([u64; WORDS]);

impl PortSet {
    /// No ports.
    pub const EMPTY: PortSet = PortSet([0; WORDS]);

    /// The set holding `p` alone.
    #[inline]
    pub fn only(p: PortId) -> PortSet {
        let mut s = PortSet::EMPTY;
        s.insert(p);
        s
    }

    #[inline(always)]
    fn word_bit(p: PortId) -> (usize, u64) {
        (usize::from(p.0 >> 6), 1 << (p.0 & 63))
    }

    /// Adds `p`.
    #[inline]
    pub fn insert(&mut self, p: PortId) {
        let (w, b) = PortSet::word_bit(p);
        self.0[w] |= b;
    }

    /// Removes `p`.
    #[inline]
    pub fn remove(&mut self, p: PortId) {
        let (w, b) = PortSet::word_bit(p);
        self.0[w] &= !b;
    }

    /// Whether `p` is in the set.
    #[inline]
    pub fn contains(&self, p: PortId) -> bool {
        let (w, b) = PortSet::word_bit(p);
        self.0[w] & b != 0
    }

    /// `self ∩ other`.
    #[inline]
    #[must_use]
    pub fn and(self, other: PortSet) -> PortSet {
        let mut w = self.0;
        for (a, b) in w.iter_mut().zip(other.0) {
            *a &= b;
        }
        PortSet(w)
    }

    /// `self ∪ other`.
    #[inline]
    #[must_use]
    pub fn or(self, other: PortSet) -> PortSet {
        let mut w = self.0;
        for (a, b) in w.iter_mut().zip(other.0) {
            *a |= b;
        }
        PortSet(w)
    }

    /// `self \ other`.
    #[inline]
    #[must_use]
    pub fn minus(self, other: PortSet) -> PortSet {
        let mut w = self.0;
        for (a, b) in w.iter_mut().zip(other.0) {
            *a &= !b;
        }
        PortSet(w)
    }

    /// `self` without `p`.
    #[inline]
    #[must_use]
    pub fn without(mut self, p: PortId) -> PortSet {
        self.remove(p);
        self
    }

    /// No ports in the set.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The port, if the set holds exactly one (no popcount: cheap on any x86-64).
    #[inline]
    pub fn single(&self) -> Option<PortId> {
        let mut found = None;
        for (i, &w) in self.0.iter().enumerate() {
            if w != 0 {
                if found.is_some() || w & (w - 1) != 0 {
                    return None;
                }
                found = PortId::new(i * 64 + w.trailing_zeros() as usize);
            }
        }
        found
    }

    /// Number of ports in the set.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The ports in ascending order.
    #[inline]
    pub fn iter(&self) -> PortSetIter {
        PortSetIter {
            words: self.0,
            word: 0,
        }
    }
}

impl FromIterator<PortId> for PortSet {
    fn from_iter<I: IntoIterator<Item = PortId>>(iter: I) -> PortSet {
        let mut s = PortSet::EMPTY;
        for p in iter {
            s.insert(p);
        }
        s
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Iterator over a [`PortSet`], lowest index first.
#[derive(Debug, Clone)]
pub struct PortSetIter {
    words: [u64; WORDS],
    word: usize,
}

impl Iterator for PortSetIter {
    type Item = PortId;

    #[inline]
    fn next(&mut self) -> Option<PortId> {
        while self.word < WORDS {
            let w = self.words[self.word];
            if w != 0 {
                self.words[self.word] = w & (w - 1);
                return PortId::new(self.word * 64 + w.trailing_zeros() as usize);
            }
            self.word += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(i: usize) -> PortId {
        PortId::new(i).unwrap()
    }

    #[test]
    fn set_ops() {
        let a: PortSet = [p(0), p(5), p(64), p(255)].into_iter().collect();
        let b: PortSet = [p(5), p(64), p(100)].into_iter().collect();
        assert_eq!(a.and(b).iter().collect::<Vec<_>>(), vec![p(5), p(64)]);
        assert_eq!(a.minus(b).iter().collect::<Vec<_>>(), vec![p(0), p(255)]);
        assert_eq!(a.or(b).len(), 5);
        assert!(
            a.without(p(0))
                .without(p(5))
                .without(p(64))
                .without(p(255))
                .is_empty()
        );
        assert!(PortId::new(MAX_PORTS).is_none());
    }
}
