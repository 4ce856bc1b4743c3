//! Frame views over bytes. Parsing validates lengths once; afterwards nothing indexes out of
//! bounds. Malformed input is a [`WireError`] (a named drop), never a panic.

pub mod craft;
mod ethernet;
mod l3;
mod mac;
mod meta;
mod summary;
pub mod vxlan;

pub use ethernet::{EtherType, FrameInfo, TPID_8021AD, TPID_8021Q, Tag, WireError, field};
pub use l3::{Side, l3_addr};
pub use mac::{Mac, ParseMacError};
pub use meta::{Csum, Fault, Gso, GsoKind, Meta, MetaError, SUPER_FRAME_MAX, VNET_HDR_LEN};
pub use summary::Summary;
pub use vxlan::{OverlayFault, Vni, VniError, Vtep, VxlanError, VxlanHeader};
