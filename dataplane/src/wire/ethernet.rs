//! Ethernet II frames with up to two VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`).
//!
//! Written by hand rather than with `pnet`: this runs once per frame on the hot path, reads the
//! header with fixed offsets and fills a small `Copy` summary ([`FrameInfo`]). After
//! [`FrameInfo::parse`] succeeds every offset it reports lies inside the frame, so no accessor can
//! panic; a frame too short for what its header announces is a [`WireError`], never a panic.

use super::Mac;

/// Byte offsets of the Ethernet II header (smoltcp's `mod field` style).
pub mod field {
    use std::ops::Range;
    /// Destination MAC.
    pub const DST: Range<usize> = 0..6;
    /// Source MAC.
    pub const SRC: Range<usize> = 6..12;
    /// EtherType (or TPID when a tag follows).
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag (TPID + TCI).
    pub const TAG_LEN: usize = 4;
}

/// An EtherType. Open: every value is kept, the ones l2sw looks at have names (the idea of
/// smoltcp's `enum_with_unknown!`, as a newtype so that parsing is a plain load).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    /// 0x0800
    pub const IPV4: EtherType = EtherType(0x0800);
    /// 0x0806
    pub const ARP: EtherType = EtherType(0x0806);
    /// 0x8100, IEEE 802.1Q C-tag
    pub const VLAN: EtherType = EtherType(0x8100);
    /// 0x88a8, IEEE 802.1ad S-tag
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// 0x86dd
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// 0x8808, MAC control (PAUSE)
    pub const MAC_CONTROL: EtherType = EtherType(0x8808);

    /// The name of a known value.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            EtherType::IPV4 => Some("IPv4"),
            EtherType::ARP => Some("ARP"),
            EtherType::VLAN => Some("802.1Q"),
            EtherType::QINQ => Some("802.1ad"),
            EtherType::IPV6 => Some("IPv6"),
            EtherType::MAC_CONTROL => Some("MAC control"),
            _ => None,
        }
    }
}

impl std::fmt::Debug for EtherType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

/// TPID of an IEEE 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an IEEE 802.1ad service tag.
pub const TPID_8021AD: u16 = 0x88a8;

/// One VLAN tag as it appears on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Priority (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

impl Tag {
    /// The 12-bit VLAN identifier; 0 means a priority tag.
    #[inline]
    pub const fn vid(self) -> u16 {
        self.tci & 0x0fff
    }
    /// The 3-bit priority code point.
    #[inline]
    pub const fn pcp(self) -> u8 {
        (self.tci >> 13) as u8
    }
}

/// Why bytes are not a frame l2sw can forward. Each becomes a named drop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than an Ethernet header (14 bytes).
    #[error("runt frame: {len} bytes, shorter than the 14-byte Ethernet header")]
    Runt {
        /// Frame length.
        len: usize,
    },
    /// Longer than the switch's largest frame.
    #[error("oversize frame: {len} bytes, the limit is {max}")]
    Oversize {
        /// Frame length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A VLAN TPID with fewer than four bytes of tag behind it.
    #[error("truncated VLAN tag: {len}-byte frame ends inside a tag")]
    TruncatedTag {
        /// Frame length.
        len: usize,
    },
}

/// What the switch needs from a frame's Ethernet header, parsed once. The MACs are kept as
/// 48-bit numbers (two 8-byte loads at parse time, register compares after): this summary is
/// built and read once per frame on the hot path.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    dst: u64,
    src: u64,
    /// The outer tag, if the frame carries one (802.1Q or 802.1ad).
    pub outer: Option<Tag>,
    /// The inner tag of a double-tagged frame.
    pub inner: Option<Tag>,
    /// The EtherType after all recognised tags.
    pub ethertype: EtherType,
    /// Offset of the payload after all recognised tags (the L3 header).
    pub l3_offset: u16,
    /// Total length in bytes.
    pub len: u32,
}

impl FrameInfo {
    /// Parses the Ethernet header of `b`; frames longer than `max_len` are refused.
    #[inline(always)]
    pub fn parse(b: &[u8], max_len: usize) -> Result<FrameInfo, WireError> {
        let len = b.len();
        if len < field::HEADER_LEN {
            return Err(WireError::Runt { len });
        }
        if len > max_len || len > u32::MAX as usize {
            return Err(WireError::Oversize { len, max: max_len });
        }
        let be16 = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        // Two 8-byte loads instead of twelve byte loads (the length is checked above).
        let be64 = |at: usize| {
            b.get(at..at + 8)
                .and_then(|w| w.try_into().ok())
                .map_or(0, u64::from_be_bytes)
        };
        let dst = be64(0) >> 16;
        let src = be64(4) & 0xffff_ffff_ffff;
        let mut at = field::ETHERTYPE.start;
        let mut tags = [None, None];
        let is_tpid = |v: u16| v == TPID_8021Q || v == TPID_8021AD;
        // Most frames are untagged: one compare and on.
        if is_tpid(be16(at)) {
            for slot in &mut tags {
                let tpid = be16(at);
                if !is_tpid(tpid) {
                    break;
                }
                if len < at + field::TAG_LEN + 2 {
                    return Err(WireError::TruncatedTag { len });
                }
                *slot = Some(Tag {
                    tpid,
                    tci: be16(at + 2),
                });
                at += field::TAG_LEN;
            }
        }
        Ok(FrameInfo {
            dst,
            src,
            outer: tags[0],
            inner: tags[1],
            ethertype: EtherType(be16(at)),
            // `at + 2 <= 22`: at most two tags.
            l3_offset: (at + 2) as u16,
            // `len <= u32::MAX`, checked above.
            len: len as u32,
        })
    }

    /// Destination MAC.
    #[inline(always)]
    pub const fn dst(&self) -> Mac {
        Mac::from_key(self.dst)
    }

    /// Source MAC.
    #[inline(always)]
    pub const fn src(&self) -> Mac {
        Mac::from_key(self.src)
    }

    /// The 802.1Q tag a port with TPID 0x8100 classifies by: the outer tag if it is a C-tag.
    /// An outer 802.1ad tag is payload to such a port, as to the kernel's 802.1Q code.
    #[inline]
    pub fn ctag(&self) -> Option<Tag> {
        self.outer.filter(|t| t.tpid == TPID_8021Q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6], rest: &[u8]) -> Vec<u8> {
        let mut v = dst.to_vec();
        v.extend_from_slice(&src);
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn untagged() {
        let f = frame([0xff; 6], [2, 0, 0, 0, 0, 1], &[0x08, 0x06, 0, 1]);
        let i = FrameInfo::parse(&f, 1518).unwrap();
        assert!(i.dst().is_broadcast());
        assert_eq!(i.ethertype, EtherType::ARP);
        assert_eq!(i.outer, None);
        assert_eq!(i.l3_offset, 14);
    }

    #[test]
    fn single_and_double_tags() {
        let f = frame([2; 6], [4; 6], &[0x81, 0x00, 0x20, 0x0a, 0x86, 0xdd, 0]);
        let i = FrameInfo::parse(&f, 1518).unwrap();
        assert_eq!(i.ctag().map(Tag::vid), Some(10));
        assert_eq!(i.ctag().map(Tag::pcp), Some(1));
        assert_eq!(i.ethertype, EtherType::IPV6);
        assert_eq!(i.l3_offset, 18);

        let qinq = frame(
            [2; 6],
            [4; 6],
            &[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00],
        );
        let i = FrameInfo::parse(&qinq, 1518).unwrap();
        assert_eq!(i.outer.map(|t| (t.tpid, t.vid())), Some((0x88a8, 100)));
        assert_eq!(i.inner.map(Tag::vid), Some(10));
        assert_eq!(i.ctag(), None, "an S-tag is payload to an 802.1Q port");
        assert_eq!(i.ethertype, EtherType::IPV4);
        assert_eq!(i.l3_offset, 22);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            FrameInfo::parse(&[0; 13], 1518),
            Err(WireError::Runt { len: 13 })
        );
        let cut = frame([2; 6], [4; 6], &[0x81, 0x00, 0x00]);
        assert_eq!(
            FrameInfo::parse(&cut, 1518),
            Err(WireError::TruncatedTag { len: 15 })
        );
        assert!(matches!(
            FrameInfo::parse(&[0; 1519], 1518),
            Err(WireError::Oversize { len: 1519, .. })
        ));
    }
}
