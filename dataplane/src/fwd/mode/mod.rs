//! Switching modes, one file each. A mode sees a frame that has already been parsed, classified
//! into a VLAN and passed its ingress filter, and decides where it goes, citing the kernel rule.
//! Modes keep their own tables, rebuilt from the port list whenever configuration changes, so
//! that the per-frame work is lookups and set operations only.

pub mod bridge;
pub mod ipvlan;
pub mod macvlan;

use super::clock::Tick;
use super::fdb::Learned;
use super::ports::{PortId, PortSet};
use super::switch::{ConfigError, PortEntry};
use super::verdict::{Decision, Verdict, Why};
use super::vlan::Vid;
use crate::wire::FrameInfo;

/// A frame as a mode sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ingress<'a> {
    pub(crate) port: PortId,
    pub(crate) frame: &'a [u8],
    pub(crate) info: &'a FrameInfo,
    pub(crate) vid: Vid,
    /// From an overlay port that learns remotes: the VTEP the frame came from.
    pub(crate) vtep: Option<crate::wire::Vtep>,
}

/// The switch-wide facts a mode reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// VLAN membership: `members[vid]` is the set of ports in that VLAN.
    pub(crate) members: &'a [PortSet; 4096],
    /// The host port, if the switch has one.
    pub(crate) host: Option<PortId>,
}

impl Ctx<'_> {
    /// The ports of VLAN `vid` (12 bits, so the index is always in bounds).
    #[inline(always)]
    pub(crate) fn members_of(&self, vid: Vid) -> &PortSet {
        &self.members[vid.index()]
    }
}

/// What a mode's helpers return for one frame.
pub(crate) type Outcome = (Verdict, Why, Option<Learned>);

/// The rules of one mode.
pub(crate) trait Rules {
    /// Rebuilds the mode's tables from the ports, refusing configurations the kernel refuses.
    fn rebuild(&mut self, now: Tick, ports: &[Option<PortEntry>]) -> Result<(), ConfigError>;
    /// Decides one frame, writing verdict, why and learning into `d` (in place: a decision
    /// goes straight to the batch's output slot instead of through temporaries).
    fn decide(&mut self, cx: &Ctx<'_>, now: Tick, rx: &Ingress<'_>, d: &mut Decision);
}

impl Decision {
    /// Records `verdict` decided by `why`.
    #[inline(always)]
    pub(crate) fn set(&mut self, verdict: Verdict, why: Why) {
        self.verdict = verdict;
        self.why = why;
    }

    /// Records a whole outcome.
    #[inline(always)]
    pub(crate) fn set_outcome(&mut self, (verdict, why, learned): Outcome) {
        self.verdict = verdict;
        self.why = why;
        self.learned = learned;
    }
}
