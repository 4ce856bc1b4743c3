//! The pure forwarding core: no syscalls, no clock reads, no per-frame allocation.
//! [`Switch::process`] takes a [`Batch`] of frames and fills in a [`Decision`] for each and a TX
//! queue per egress port.

pub mod clock;
pub mod fdb;
pub mod filter;
pub mod mode;
pub mod ports;
pub mod storm;
pub mod switch;
pub mod verdict;
pub mod vlan;

pub use clock::Tick;
pub use fdb::{
    EntryKind, FLAP_MOVES, FLAP_RING, FLAP_WINDOW, Fdb, FdbEntry, FdbError, FdbStats, Flap,
    Learned, PortFdbStats,
};
pub use filter::{MacSet, RxFilter};
pub use mode::bridge::{BridgeConfig, BridgePort, StpState};
pub use mode::ipvlan::{IpvlanConfig, IpvlanFlag, IpvlanPort};
pub use mode::macvlan::{MacvlanMode, MacvlanPort};
pub use ports::{MAX_PORTS, PortId, PortSet};
pub use storm::{StormClass, StormControl};
pub use switch::{
    Batch, ConfigError, ModeConfig, PortConfig, PortEntry, Role, Switch, SwitchConfig, TxItem,
    UplinkPort,
};
pub use verdict::{Decision, DropReason, Flood, Verdict, Why};
pub use vlan::{EgressVlan, TagOp, Vid, VidSet, VlanMode};
