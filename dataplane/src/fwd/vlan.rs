//! 802.1Q on ports (`net/8021q/vlan_core.c`, bridge VLAN filtering): each port classifies an
//! arriving frame into exactly one VLAN or refuses it, and each egress port decides whether that
//! VLAN leaves tagged or untagged. VLAN 0 is the VLAN-unaware domain of transparent ports; no
//! access or trunk port is ever a member of it, so no frame can cross between VLANs.

use crate::wire::{FrameInfo, Tag};

/// A VLAN identifier, as 802.1Q's 12-bit field carries it. [`Vid::UNAWARE`] is the domain of
/// transparent ports; ports use 1..=[`Vid::MAX`], which [`VlanMode::validate`] checks (a `Vid`
/// itself holds any `u16`, so that a bad value from a configuration can be named in the error).
/// Serialised as its number.
#[derive(
    Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Vid(u16);

impl Vid {
    /// The domain of VLAN-transparent ports (a bridge with VLAN filtering off keys its FDB on
    /// VID 0). Also what a priority tag (VID 0) carries.
    pub const UNAWARE: Vid = Vid(0);
    /// Highest usable VID (4095 is reserved).
    pub const MAX: Vid = Vid(4094);

    /// The VID `raw`, unchecked (see [`VlanMode::validate`]).
    #[inline]
    pub const fn new(raw: u16) -> Vid {
        Vid(raw)
    }

    /// The number.
    #[inline]
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The 12 bits a tag carries: an index into per-VID tables of 4096 entries.
    #[inline]
    pub const fn index(self) -> usize {
        (self.0 & 0xfff) as usize
    }

    /// Whether ports may use it: 1..=[`Vid::MAX`].
    #[inline]
    pub const fn is_usable(self) -> bool {
        self.0 >= 1 && self.0 <= Vid::MAX.0
    }
}

impl From<u16> for Vid {
    fn from(raw: u16) -> Vid {
        Vid(raw)
    }
}

impl From<Vid> for u16 {
    fn from(v: Vid) -> u16 {
        v.0
    }
}

impl std::fmt::Debug for Vid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Display for Vid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A set of VIDs (4096 bits).
#[derive(Clone, PartialEq, Eq)]
pub struct VidSet(Box<[u64; 64]>);

impl VidSet {
    /// No VIDs.
    pub fn new() -> VidSet {
        VidSet(Box::new([0; 64]))
    }
    /// Adds `vid` (masked to 12 bits).
    pub fn insert(&mut self, vid: Vid) {
        let v = vid.index();
        self.0[v / 64] |= 1 << (v % 64);
    }
    /// Whether `vid` is in the set.
    #[inline]
    pub fn contains(&self, vid: Vid) -> bool {
        let v = vid.index();
        self.0[v / 64] & (1 << (v % 64)) != 0
    }
    /// The VIDs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Vid> + '_ {
        (0..4096u16).map(Vid).filter(|v| self.contains(*v))
    }
}

impl Default for VidSet {
    fn default() -> Self {
        VidSet::new()
    }
}

impl FromIterator<Vid> for VidSet {
    fn from_iter<I: IntoIterator<Item = Vid>>(iter: I) -> VidSet {
        let mut s = VidSet::new();
        for v in iter {
            s.insert(v);
        }
        s
    }
}

impl std::fmt::Debug for VidSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// How a port treats 802.1Q tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum VlanMode {
    /// VLAN-unaware (the kernel bridge without VLAN filtering, plain macvlan): every frame,
    /// tagged or not, is in [`Vid::UNAWARE`] and leaves exactly as it came.
    #[default]
    Transparent,
    /// One VLAN, untagged on the wire. A frame tagged with that same VID (or priority-tagged)
    /// is accepted too, as the kernel accepts it on a PVID-untagged bridge port.
    Access {
        /// The port's VLAN, 1..=4094.
        vid: Vid,
    },
    /// Several VLANs, tagged on the wire; untagged frames belong to `native` if set.
    Trunk {
        /// VIDs accepted and sent tagged.
        allowed: VidSet,
        /// VLAN of untagged and priority-tagged frames, sent untagged.
        native: Option<Vid>,
    },
}

/// Why a VLAN configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VlanError {
    /// VID outside 1..=4094.
    #[error("vlan id must be between 1 and 4094, got {0}")]
    BadVid(Vid),
}

impl VlanMode {
    /// Checks VIDs are in 1..=4094.
    pub fn validate(&self) -> Result<(), VlanError> {
        let ok = |v: Vid| v.is_usable();
        match self {
            VlanMode::Transparent => Ok(()),
            VlanMode::Access { vid } if !ok(*vid) => Err(VlanError::BadVid(*vid)),
            VlanMode::Access { .. } => Ok(()),
            VlanMode::Trunk { allowed, native } => {
                if let Some(bad) = allowed.iter().chain(*native).find(|v| !ok(*v)) {
                    return Err(VlanError::BadVid(bad));
                }
                Ok(())
            }
        }
    }

    /// The VIDs this port is a member of (receives and sends).
    pub fn members(&self) -> VidSet {
        match self {
            VlanMode::Transparent => [Vid::UNAWARE].into_iter().collect(),
            VlanMode::Access { vid } => [*vid].into_iter().collect(),
            VlanMode::Trunk { allowed, native } => {
                let mut s = allowed.clone();
                if let Some(n) = native {
                    s.insert(*n);
                }
                s
            }
        }
    }

    /// The VLAN a frame arriving on this port belongs to, or `None` if the port refuses it.
    #[inline]
    pub fn classify(&self, f: &FrameInfo) -> Option<Vid> {
        let tag = f.ctag().map(|t| Vid(t.vid()));
        match self {
            VlanMode::Transparent => Some(Vid::UNAWARE),
            VlanMode::Access { vid } => match tag {
                None | Some(Vid::UNAWARE) => Some(*vid),
                Some(t) if t == *vid => Some(t),
                Some(_) => None,
            },
            VlanMode::Trunk { allowed, native } => match tag {
                None | Some(Vid::UNAWARE) => *native,
                Some(t) => allowed.contains(t).then_some(t),
            },
        }
    }

    /// What the port needs on egress, in four bytes.
    pub fn egress(&self) -> EgressVlan {
        match self {
            VlanMode::Transparent => EgressVlan::Transparent,
            VlanMode::Access { .. } => EgressVlan::Untagged,
            VlanMode::Trunk { native, .. } => EgressVlan::Tagged { native: *native },
        }
    }
}

/// The egress side of a [`VlanMode`], small enough to read per frame.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum EgressVlan {
    /// Frames leave exactly as they came.
    #[default]
    Transparent,
    /// Every frame leaves untagged (access port).
    Untagged,
    /// Frames leave tagged, except those of the native VLAN (trunk port).
    Tagged {
        /// The VLAN sent untagged.
        native: Option<Vid>,
    },
}

/// The tag edit a frame needs on its way out of one port.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TagOp {
    /// Send the bytes as received.
    Keep,
    /// Remove the outer 802.1Q tag (4 bytes at offset 12).
    Pop,
    /// Insert an 802.1Q tag with this VID (priority 0) at offset 12.
    Push(Vid),
    /// Rewrite the VID of the outer 802.1Q tag, keeping its priority (a priority-tagged frame
    /// leaving tagged).
    SetVid(Vid),
}

impl TagOp {
    /// The edit for a frame of `vid` whose outer C-tag is `ctag`, leaving through `egress`.
    #[inline]
    pub fn for_egress(egress: EgressVlan, vid: Vid, ctag: Option<Tag>) -> TagOp {
        let untagged = match egress {
            EgressVlan::Transparent => return TagOp::Keep,
            EgressVlan::Untagged => true,
            EgressVlan::Tagged { native } => native == Some(vid),
        };
        match (untagged, ctag) {
            (true, None) => TagOp::Keep,
            (true, Some(_)) => TagOp::Pop,
            (false, None) => TagOp::Push(vid),
            (false, Some(t)) if t.vid() == vid.0 => TagOp::Keep,
            (false, Some(_)) => TagOp::SetVid(vid),
        }
    }

    /// How many bytes the edit adds before the network header (a pushed tag 4, a popped one
    /// -4): checksum and header offsets move by as much.
    #[inline]
    pub const fn len_delta(self) -> i16 {
        match self {
            TagOp::Keep | TagOp::SetVid(_) => 0,
            TagOp::Pop => -4,
            TagOp::Push(_) => 4,
        }
    }

    /// Writes `frame` with this edit applied into `out` (cleared first). Ports use this when
    /// copying into a TX slot; the core itself never copies frames.
    pub fn apply(self, frame: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let (head, rest) = frame.split_at(frame.len().min(12));
        match self {
            TagOp::Keep => out.extend_from_slice(frame),
            TagOp::Pop => {
                out.extend_from_slice(head);
                out.extend_from_slice(rest.get(4..).unwrap_or_default());
            }
            TagOp::Push(vid) => {
                out.extend_from_slice(head);
                out.extend_from_slice(&0x8100u16.to_be_bytes());
                out.extend_from_slice(&(vid.0 & 0xfff).to_be_bytes());
                out.extend_from_slice(rest);
            }
            TagOp::SetVid(vid) => {
                out.extend_from_slice(frame);
                if let Some(tci) = out.get_mut(14..16) {
                    let old = u16::from_be_bytes([tci[0], tci[1]]);
                    let new = (old & 0xf000) | (vid.0 & 0xfff);
                    tci.copy_from_slice(&new.to_be_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameInfo;

    const fn v(n: u16) -> Vid {
        Vid::new(n)
    }

    fn tagged(vid: Option<u16>) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if let Some(v) = vid {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&(0x6000 | v).to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45]);
        f
    }

    fn classify(m: &VlanMode, vid: Option<u16>) -> Option<Vid> {
        m.classify(&FrameInfo::parse(&tagged(vid), 1518).unwrap())
    }

    /// The configuration and the control protocol carry a VID as a plain number.
    #[test]
    fn a_vid_is_its_number_on_the_wire_and_on_screen() {
        assert_eq!(serde_json::to_string(&v(10)).unwrap(), "10");
        assert_eq!(serde_json::from_str::<Vid>("4094").unwrap(), Vid::MAX);
        assert_eq!(format!("{} {:?}", v(7), v(7)), "7 7");
        assert_eq!(u16::from(v(4095)), 4095);
        assert_eq!(v(0x1_00a).index(), 10, "12 bits index the per-VID tables");
        assert!(!Vid::UNAWARE.is_usable() && Vid::MAX.is_usable() && !v(4095).is_usable());
    }

    #[test]
    fn access_port() {
        let m = VlanMode::Access { vid: v(10) };
        assert_eq!(classify(&m, None), Some(v(10)));
        assert_eq!(classify(&m, Some(0)), Some(v(10)), "priority tag");
        assert_eq!(classify(&m, Some(10)), Some(v(10)));
        assert_eq!(classify(&m, Some(20)), None);
    }

    #[test]
    fn trunk_port() {
        let m = VlanMode::Trunk {
            allowed: [v(10), v(20)].into_iter().collect(),
            native: None,
        };
        assert_eq!(classify(&m, None), None, "untagged without native");
        assert_eq!(classify(&m, Some(20)), Some(v(20)));
        assert_eq!(classify(&m, Some(30)), None);
        let n = VlanMode::Trunk {
            allowed: [v(10)].into_iter().collect(),
            native: Some(v(99)),
        };
        assert_eq!(classify(&n, None), Some(v(99)));
        assert_eq!(classify(&n, Some(0)), Some(v(99)));
    }

    #[test]
    fn transparent_port_keeps_tags() {
        assert_eq!(
            classify(&VlanMode::Transparent, Some(10)),
            Some(Vid::UNAWARE)
        );
        let t = Tag {
            tpid: 0x8100,
            tci: 10,
        };
        assert_eq!(
            TagOp::for_egress(VlanMode::Transparent.egress(), v(0), Some(t)),
            TagOp::Keep
        );
    }

    #[test]
    fn validation() {
        assert!(VlanMode::Access { vid: v(0) }.validate().is_err());
        assert!(VlanMode::Access { vid: v(4095) }.validate().is_err());
        let t = VlanMode::Trunk {
            allowed: [v(1), v(4094)].into_iter().collect(),
            native: Some(v(0)),
        };
        assert_eq!(t.validate(), Err(VlanError::BadVid(v(0))));
    }

    #[test]
    fn tag_edits() {
        let trunk = VlanMode::Trunk {
            allowed: [v(10)].into_iter().collect(),
            native: None,
        };
        let access = VlanMode::Access { vid: v(10) };
        let t10 = Tag {
            tpid: 0x8100,
            tci: 0x600a,
        };
        let t0 = Tag {
            tpid: 0x8100,
            tci: 0x6000,
        };
        assert_eq!(
            TagOp::for_egress(trunk.egress(), v(10), None),
            TagOp::Push(v(10))
        );
        assert_eq!(
            TagOp::for_egress(trunk.egress(), v(10), Some(t10)),
            TagOp::Keep
        );
        assert_eq!(
            TagOp::for_egress(trunk.egress(), v(10), Some(t0)),
            TagOp::SetVid(v(10))
        );
        assert_eq!(
            TagOp::for_egress(access.egress(), v(10), Some(t10)),
            TagOp::Pop
        );
        assert_eq!(TagOp::for_egress(access.egress(), v(10), None), TagOp::Keep);

        let mut out = Vec::new();
        TagOp::Push(v(10)).apply(&tagged(None), &mut out);
        let i = FrameInfo::parse(&out, 1518).unwrap();
        assert_eq!(i.ctag().map(Tag::vid), Some(10));
        let pushed = out.clone();
        TagOp::Pop.apply(&pushed, &mut out);
        assert_eq!(out, tagged(None));
        TagOp::SetVid(v(20)).apply(&tagged(Some(0)), &mut out);
        let i = FrameInfo::parse(&out, 1518).unwrap();
        assert_eq!(i.ctag().map(|t| (t.vid(), t.pcp())), Some((20, 3)));
    }
}
