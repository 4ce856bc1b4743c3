//! The operations behind l2ctl's commands. Each one changes the saved state first (so a crash
//! never loses an address it handed out), then brings the kernel and the daemon to that state
//! with steps that can run again without harm; a step that fails undoes the operation.
//!
//! Where things live: the switch's end of every link, a bridge network's host port and a
//! macvlan network's host access sit in the host namespace (`--host-netns`, default l2ctl's
//! own), as docker0 and its veths do; each workload has a named namespace of its own.
//!
//! One concern per module, each of the pure ones testable without root: `validate` (what
//! people type), `ids` (ids and MACs), `specs` (the daemon's port tables), `render`
//! (reports) and `recover` (what a restarted daemon lacks, which workloads are gone) are
//! pure; `networks` and `endpoints` change the state and its address pools (`engines`: the
//! endpoints container engines ask for, in namespaces they own); `apply` brings
//! the daemon and the kernel to the state, with the netlink steps of `link`;
//! `undo` takes an operation's traces away again; `published` checks `--publish` and keeps
//! the NAT table (`crate::nat`) with the state.

mod apply;
mod endpoints;
mod engines;
mod ids;
mod link;
mod names;
mod networks;
mod published;
mod recover;
mod render;
mod specs;
mod undo;
mod validate;

pub use apply::{daemon_lacks, gone_note};
use ids::{mac_for, random_hex, random_mac};
use link::{again, configure, gone};
use networks::predefined;
pub use recover::{Step, gone_workloads, plan};
use render::describe;
pub use render::{
    EndpointState, InspectEndpoint, InspectIpam, InspectOptions, InspectPool, NetworkInspect,
};
use specs::sub_port;
use validate::{check_mode, parent_free, parse_parent, valid_name};

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use l2sw::config::{Named, NetworkSpec, PortKind, PortRole, PortSpec, VlanSpec};
use l2sw::fwd::MacvlanMode;
use l2sw::wire::Mac;

use crate::args::{AttachArgs, NetworkArgs};
use crate::client::{Client, ClientError};
use crate::ipam::{self, InUse, IpamError, Pool, PoolRequest};
use crate::nl::{self, Links, NlError};
use crate::state::{
    Driver, Endpoint, EndpointKind, HOST_ACCESS_AUX, HostAccess, Network, OVERLAY_PORT, Overlay,
    Parent, Sandbox, State, StateError, Store, Workload,
};
use l2sw::api::ErrorKind;
use l2sw::port::vxlan::VxlanConfig;
use l2sw::wire::Vni;

/// The predefined bridge network's host port, as docker0 is Docker's.
pub const DEFAULT_BRIDGE_PORT: &str = "l2sw0";

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The request breaks a rule; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The sandbox an engine gave (its namespace or interface name) cannot be used; nothing
    /// was changed.
    #[error("{what} {message}")]
    Sandbox {
        /// Which of the two.
        what: SandboxPart,
        /// Why, after the value.
        message: String,
    },
    /// An address could not be handed out or a pool made.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// The saved state.
    #[error(transparent)]
    State(#[from] StateError),
    /// The daemon.
    #[error(transparent)]
    Daemon(#[from] ClientError),
    /// A link, address, route or namespace.
    #[error(transparent)]
    Netlink(#[from] NlError),
    /// The NAT and published ports' table.
    #[error(transparent)]
    Nat(#[from] crate::nat::NatError),
}

/// The part of an engine's sandbox a [`CtlError::Sandbox`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxPart {
    /// The namespace (CNI_NETNS, Docker's sandbox key).
    Namespace,
    /// The interface name in it (CNI_IFNAME).
    Interface,
}

impl std::fmt::Display for SandboxPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SandboxPart::Namespace => "namespace",
            SandboxPart::Interface => "interface name",
        })
    }
}

/// l2ctl's view of the world: the locked state, the daemon, the host namespace.
#[derive(Debug)]
pub struct Ctl {
    store: Store,
    /// The desired state.
    pub state: State,
    client: Client,
    host: Links,
}

impl Ctl {
    /// Opens and locks the state directory (making the predefined networks the first time)
    /// and prepares a client of the daemon on `socket`.
    pub fn open(dir: &Path, socket: &Path, host_netns: Option<&str>) -> Result<Ctl, CtlError> {
        let store = Store::open(dir)?;
        let host = Links::new(host_netns);
        let state = match store.load()? {
            Some(s) => {
                if host_netns.is_some() && s.host_netns.as_deref() != host_netns {
                    return refused(format!(
                        "the state in {} belongs to host namespace {:?}, not {:?}: use another --state-dir",
                        dir.display(),
                        s.host_netns.as_deref().unwrap_or("(l2ctl's own)"),
                        host_netns.unwrap_or_default(),
                    ));
                }
                s
            }
            None => {
                let s = predefined(host_netns, &host)?;
                store.save(&s)?;
                s
            }
        };
        let host = Links::new(state.host_netns.as_deref());
        Ok(Ctl {
            store,
            state,
            client: Client::new(socket),
            host,
        })
    }

    /// The daemon's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The host namespace's links.
    pub fn host(&self) -> &Links {
        &self.host
    }

    pub(super) fn save(&self) -> Result<(), CtlError> {
        Ok(self.store.save(&self.state)?)
    }

    pub(super) fn network(&self, name: &str) -> Result<&Network, CtlError> {
        self.state.networks.get(name).ok_or_else(|| {
            CtlError::Refused(format!(
                "network {name:?} not found (see `l2ctl network ls`)"
            ))
        })
    }

    pub(super) fn workload(&self, name: &str) -> Result<&Workload, CtlError> {
        self.state
            .workloads
            .get(name)
            .ok_or_else(|| CtlError::Refused(format!("no workload named {name} (see `l2ctl ps`)")))
    }
}

pub(super) fn refused<T>(what: impl Into<String>) -> Result<T, CtlError> {
    Err(CtlError::Refused(what.into()))
}
