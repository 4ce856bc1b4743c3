//! Network namespaces, links, addresses and routes over rtnetlink, behind a synchronous API.
//!
//! Named namespaces are made exactly as `ip netns add` makes them: `/run/netns/NAME` is a bind
//! mount of the namespace's `ns/net` file, and `/run/netns` is a shared mount point so that the
//! mounts propagate. Every call that acts in a namespace runs on a thread of its own inside it,
//! with a current-thread tokio runtime built there, so the netlink socket belongs to that
//! namespace and the caller's threads never change namespace.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use futures::TryStreamExt;
use ipnet::IpNet;
use l2sw::fwd::MacvlanMode;
use l2sw::port::sys::{SysError, link, netns};
use l2sw::wire::Mac;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::statfs::{NSFS_MAGIC, statfs};
use nix::sys::statvfs::{FsFlags, statvfs};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoBridgePort, InfoMacVlan, InfoPortData, InfoPortKind, LinkAttribute, LinkMessage,
    MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, LinkBridge, LinkMacVlan, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// The directory of named network namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Where a named namespace's own `/etc` files live (`ip netns exec` mounts them).
pub const ETC_NETNS: &str = "/etc/netns";

/// `IFLA_MACVLAN_MACADDR_MODE`: replace the source-mode allow-list (linux/if_link.h).
const MACVLAN_MACADDR_SET: u32 = 3;

/// Why a netlink or namespace operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {object}: {source}")]
pub struct NlError {
    op: &'static str,
    object: String,
    #[source]
    source: io::Error,
}

impl NlError {
    fn new(op: &'static str, object: impl fmt::Display, source: io::Error) -> NlError {
        NlError {
            op,
            object: object.to_string(),
            source,
        }
    }

    /// The OS error number (`errno`) the kernel answered, if it was one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// Whether the object already exists (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.raw_os_error() == Some(libc::EEXIST)
    }

    /// Whether the object, or what it refers to, does not exist (`ENODEV`, `ENOENT`, `ESRCH`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.raw_os_error(),
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH)
        )
    }
}

/// The result of the functions of this module.
pub type Result<T> = std::result::Result<T, NlError>;

/// An error before its context is known; `?` converts every error source into it.
struct Cause(io::Error);

impl From<io::Error> for Cause {
    fn from(e: io::Error) -> Cause {
        Cause(e)
    }
}

impl From<Errno> for Cause {
    fn from(e: Errno) -> Cause {
        Cause(e.into())
    }
}

impl From<SysError> for Cause {
    fn from(e: SysError) -> Cause {
        Cause(e.source)
    }
}

impl From<rtnetlink::Error> for Cause {
    fn from(e: rtnetlink::Error) -> Cause {
        match e {
            rtnetlink::Error::NetlinkError(message) => Cause(message.to_io()),
            other => Cause(io::Error::other(other)),
        }
    }
}

fn invalid(what: &str) -> Cause {
    Cause(io::Error::new(io::ErrorKind::InvalidInput, what))
}

/// Checks a namespace name the way `ip netns` does; an absolute path (a namespace file a
/// container engine made) passes as well.
fn check_name(name: &str) -> std::result::Result<(), Cause> {
    if name.len() > 255 && !netns::is_path(name) || !netns::valid(name) {
        return Err(invalid(
            "not a namespace name (1 to 255 bytes, no '/' or NUL, not \".\" or \"..\") nor an absolute path to a namespace file",
        ));
    }
    Ok(())
}

/// Checks a name of a namespace l2ctl makes or deletes itself: a name, never a path.
fn check_own_name(name: &str) -> std::result::Result<(), Cause> {
    if netns::is_path(name) {
        return Err(invalid(
            "a namespace file given by path is its maker's: l2ctl only makes and deletes named namespaces",
        ));
    }
    check_name(name)
}

/// `/run/netns/NAME` (or the absolute path itself), once the name is checked.
fn netns_path(name: &str) -> std::result::Result<PathBuf, Cause> {
    check_name(name)?;
    Ok(netns::path(name))
}

/// Displays as `namespace "NAME"`, for error messages.
struct Namespace<'a>(&'a str);

impl fmt::Display for Namespace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "namespace {:?}", self.0)
    }
}

/// Gives an error its context: `op object: cause`.
fn context<E: Into<Cause>>(
    op: &'static str,
    object: impl fmt::Display,
) -> impl FnOnce(E) -> NlError {
    move |e| NlError::new(op, object, e.into().0)
}

/// Whether the namespace exists: `/run/netns/NAME` (or the absolute path given) is a
/// namespace file.
pub fn netns_exists(name: &str) -> bool {
    netns_path(name)
        .ok()
        .and_then(|path| statfs(&path).ok())
        .is_some_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// Creates the named network namespace `name` with its `lo` up, as `ip netns add` does.
///
/// Fails with [`NlError::is_exists`] if `/run/netns/NAME` is already there.
pub fn netns_create(name: &str) -> Result<()> {
    check_own_name(name).map_err(context("create", Namespace(name)))?;
    let path = netns_path(name).map_err(context("create", Namespace(name)))?;
    share_netns_dir()?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
        .map_err(context("create", Namespace(name)))?;
    // A thread of its own enters the new namespace, so that no other thread changes.
    let created = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(context("unshare", Namespace(name)))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(context("bind-mount", Namespace(name)))
        })
        .join()
        .unwrap_or_else(|_| {
            let panicked = io::Error::other("the thread panicked");
            Err(context("create", Namespace(name))(panicked))
        })
    })
    .and_then(|()| Links::new(Some(name)).set_up("lo"));
    if created.is_err() {
        // Best effort: the first error is the one to report.
        let _ = umount2(&path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&path);
    }
    created
}

/// Makes `/run/netns` exist and be a shared mount point, as iproute2 does.
fn share_netns_dir() -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(NETNS_DIR)
        .map_err(context("create directory", NETNS_DIR))?;
    let share = || {
        mount(
            Some(""),
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        // EINVAL: not a mount point yet; make it one (bind it onto itself), then share it.
        Err(Errno::EINVAL) => {
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(context("bind-mount onto itself", NETNS_DIR))?;
            share().map_err(context("make a shared mount point of", NETNS_DIR))
        }
        other => other.map_err(context("make a shared mount point of", NETNS_DIR)),
    }
}

/// Deletes the named namespace `name` as `ip netns del` does: unmounts (lazily) and removes
/// `/run/netns/NAME`. The namespace itself lives on while processes or links use it.
///
/// Fails with [`NlError::is_not_found`] if there is no such namespace.
pub fn netns_delete(name: &str) -> Result<()> {
    check_own_name(name).map_err(context("delete", Namespace(name)))?;
    let path = netns_path(name).map_err(context("delete", Namespace(name)))?;
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: a left-over file that is not mounted; ENOENT: reported by the removal.
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
        Err(e) => return Err(context("unmount", Namespace(name))(e)),
    }
    std::fs::remove_file(&path).map_err(context("delete", Namespace(name)))
}

/// The names of the named namespaces (the entries of `/run/netns`), sorted; none if the
/// directory does not exist.
pub fn netns_list() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries.map_err(context("list namespaces in", NETNS_DIR))?,
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(context("list namespaces in", NETNS_DIR))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Moves the calling thread into namespace `ns` the way `ip netns exec` does, ready for
/// `exec()`: joins its network namespace, unshares the mount namespace, makes `/` a recursive
/// slave mount (so nothing propagates back) and mounts over `/sys` a sysfs of the new network
/// namespace (read-only if the old `/sys` could not be unmounted and was read-only).
///
/// Call it in a single-threaded process, or on the thread that execs: only the calling thread
/// changes namespaces, and it stays there. The files of `/etc/netns/NAME` are mounted over
/// their namesakes in `/etc`, as `ip netns exec` does.
pub fn enter(ns: &str) -> Result<()> {
    let path = netns_path(ns).map_err(context("enter", Namespace(ns)))?;
    let handle = File::open(&path).map_err(context("open", Namespace(ns)))?;
    setns(&handle, CloneFlags::CLONE_NEWNET).map_err(context("enter", Namespace(ns)))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(context(
        "unshare the mount namespace to enter",
        Namespace(ns),
    ))?;
    mount(
        Some(""),
        "/",
        Some("none"),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(context("make / a slave mount to enter", Namespace(ns)))?;
    let mut flags = MsFlags::empty();
    if umount2("/sys", MntFlags::MNT_DETACH).is_err()
        && statvfs("/sys").is_ok_and(|fs| fs.flags().contains(FsFlags::ST_RDONLY))
    {
        // A read-only sysfs that stays underneath can only be covered by a read-only one.
        flags = MsFlags::MS_RDONLY;
    }
    mount(Some(ns), "/sys", Some("sysfs"), flags, None::<&str>)
        .map_err(context("mount /sys of", Namespace(ns)))?;
    bind_etc(ns);
    Ok(())
}

/// Mounts each file of `/etc/netns/NAME` over its namesake in `/etc` (a workload's `hosts`
/// and `resolv.conf`), as `ip netns exec` does; like it, a file that cannot be mounted is a
/// warning, not a failure.
fn bind_etc(ns: &str) {
    if netns::is_path(ns) {
        return;
    }
    let dir = Path::new(ETC_NETNS).join(ns);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let target = Path::new("/etc").join(&name);
        if let Err(e) = mount(
            Some(&entry.path()),
            &target,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            eprintln!(
                "warning: bind {} -> {}: {e}",
                entry.path().display(),
                target.display()
            );
        }
    }
}

/// Named namespaces made for one run and removed on drop (so on every exit path), each with
/// IPv6 off (no router solicitation, DAD or MLD frame among the run's own, and none teaching
/// a bridge a station early) and its loopback up. `verify` and `l2bench` build in them.
#[derive(Debug)]
pub struct Scratch {
    prefix: String,
    made: Vec<String>,
}

impl Scratch {
    /// No namespaces yet; they will be named `PREFIX-short`.
    pub fn new(prefix: impl Into<String>) -> Scratch {
        Scratch {
            prefix: prefix.into(),
            made: Vec::new(),
        }
    }

    /// Creates namespace `PREFIX-short` and returns its name.
    pub fn create(&mut self, short: &str) -> Result<String> {
        let name = format!("{}-{short}", self.prefix);
        netns_create(&name)?;
        self.made.push(name.clone());
        let links = Links::new(Some(&name));
        for scope in ["all", "default"] {
            links.set_ipv6_conf(scope, "disable_ipv6", "1")?;
        }
        links.set_up("lo")?;
        Ok(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            // Best effort: a namespace that cannot go is left for `ip netns del`.
            let _ = netns_delete(ns);
        }
    }
}

/// A veth pair, both ends up, each given as (namespace, name, MAC). The pair is made in `a`'s
/// namespace with a passing name for `b`'s end, which gets its MAC, moves to its namespace
/// and takes its name there (so both ends may have the same name, `eth0` say, in two
/// namespaces).
pub fn veth_pair(a: (&str, &str, Mac), b: (&str, &str, Mac)) -> Result<()> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Unique among this host's processes and calls, and within IFNAMSIZ (15 bytes).
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let passing = format!("l2v{}.{}", std::process::id() % 100_000, n % 10_000);
    let (links_a, links_b) = (Links::new(Some(a.0)), Links::new(Some(b.0)));
    links_a.create_veth(a.1, &passing)?;
    links_a.set_mac(&passing, b.2)?;
    links_a.move_to(&passing, b.0)?;
    links_b.rename(&passing, b.1)?;
    links_a.set_mac(a.1, a.2)?;
    links_a.set_up(a.1)?;
    links_b.set_up(b.1)
}

/// Links, addresses and routes in one namespace (`None`: the caller's own).
///
/// With `None` the work runs on the calling thread, which must not be running an async
/// runtime (a current-thread tokio runtime is built and blocked on there).
#[derive(Debug, Clone)]
pub struct Links {
    ns: Option<String>,
}

impl Links {
    /// Acts in the named namespace `ns`, or in the caller's own with `None`.
    pub fn new(ns: Option<&str>) -> Links {
        Links {
            ns: ns.map(str::to_owned),
        }
    }

    /// Whether the link `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        match self.index(name) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The MAC address of the link `name`.
    pub fn mac(&self, name: &str) -> Result<Mac> {
        self.run("read the MAC address of", self.link(name), async |h| {
            let message = get_link(&h, name).await?;
            message
                .attributes
                .into_iter()
                .find_map(|a| match a {
                    LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes).ok().map(Mac),
                    _ => None,
                })
                .ok_or_else(|| {
                    let kind = io::ErrorKind::InvalidData;
                    Cause(io::Error::new(kind, "no 6-byte hardware address"))
                })
        })
    }

    /// The MTU of the link `name`.
    pub fn mtu(&self, name: &str) -> Result<u32> {
        self.run("read the MTU of", self.link(name), async |h| {
            let message = get_link(&h, name).await?;
            message
                .attributes
                .into_iter()
                .find_map(|a| match a {
                    LinkAttribute::Mtu(m) => Some(m),
                    _ => None,
                })
                .ok_or_else(|| Cause(io::Error::new(io::ErrorKind::InvalidData, "no MTU")))
        })
    }

    /// The interface index of the link `name`.
    pub fn index(&self, name: &str) -> Result<u32> {
        self.run("look up", self.link(name), async |h| index(&h, name).await)
    }

    /// The names of every link in the namespace, in index order.
    pub fn names(&self) -> Result<Vec<String>> {
        self.run("list the links of", self.place(), async |h| {
            let links: Vec<LinkMessage> = h.link().get().execute().try_collect().await?;
            Ok(links
                .into_iter()
                .flat_map(|m| m.attributes)
                .filter_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name),
                    _ => None,
                })
                .collect())
        })
    }

    /// Creates the veth pair `name` and `peer`, both ends in this namespace, down.
    pub fn create_veth(&self, name: &str, peer: &str) -> Result<()> {
        let object = format!("{name} <-> {peer}{}", self.suffix());
        self.run("create veth", object, async |h| {
            Ok(h.link()
                .add(LinkVeth::new(name, peer).build())
                .execute()
                .await?)
        })
    }

    /// Creates the bridge `name` with MAC `mac` (STP off, the kernel's default), up.
    pub fn create_bridge(&self, name: &str, mac: Mac) -> Result<()> {
        self.run("create bridge", self.link(name), async |h| {
            let message = LinkBridge::new(name).address(mac.0.to_vec()).build();
            Ok(h.link().add(message).execute().await?)
        })
    }

    /// Makes the link `port` a port of the bridge `bridge`, as `ip link set PORT master
    /// BRIDGE` does.
    pub fn enslave(&self, port: &str, bridge: &str) -> Result<()> {
        let object = format!("{} to bridge {bridge}", self.link(port));
        self.run("enslave", object, async |h| {
            let master = index(&h, bridge).await?;
            set_link(&h, port, |m| m.controller(master)).await
        })
    }

    /// Sets hairpin (reflective relay) and isolation of the bridge port `port`, as `ip link
    /// set PORT type bridge_slave hairpin on|off isolated on|off` does.
    pub fn set_bridge_port(&self, port: &str, hairpin: bool, isolated: bool) -> Result<()> {
        let object = format!(
            "{} to hairpin {hairpin}, isolated {isolated}",
            self.link(port)
        );
        self.run("set the bridge port flags of", object, async |h| {
            let flags = vec![
                InfoBridgePort::HairpinMode(hairpin),
                InfoBridgePort::Isolated(isolated),
            ];
            let message = LinkUnspec::new_with_index(index(&h, port).await?)
                .set_port_kind(InfoPortKind::Bridge)
                .set_port_data(InfoPortData::BridgePort(flags))
                .build();
            // RTM_SETLINK ignores port settings: they go in an RTM_NEWLINK.
            Ok(h.link().set_port(message).execute().await?)
        })
    }

    /// Creates the macvlan sub-interface `name` of the link `parent` in `mode` with MAC `mac`,
    /// down. A source-mode one receives copies of the frames sent from the MACs of `source`
    /// (its allow-list; other modes take none). A passthru one takes the parent's MAC,
    /// whatever `mac` is.
    pub fn create_macvlan(
        &self,
        name: &str,
        parent: &str,
        mode: MacvlanMode,
        mac: Mac,
        source: &[Mac],
    ) -> Result<()> {
        let object = format!("{} ({} on {parent})", self.link(name), mode.name());
        self.run("create macvlan", object, async |h| {
            let parent = index(&h, parent).await?;
            let mut builder =
                LinkMacVlan::new(name, parent, macvlan_mode(mode)).address(mac.0.to_vec());
            if !source.is_empty() {
                let list = source.iter().map(|m| InfoMacVlan::MacAddr(m.0)).collect();
                builder = builder
                    .append_info_data(InfoMacVlan::MacAddrMode(MACVLAN_MACADDR_SET))
                    .append_info_data(InfoMacVlan::MacAddrData(list));
            }
            Ok(h.link().add(builder.build()).execute().await?)
        })
    }

    /// Moves the link `name` into the named namespace `ns`.
    pub fn move_to(&self, name: &str, ns: &str) -> Result<()> {
        let object = format!("{} to {}", self.link(name), Namespace(ns));
        self.run("move", object, async |h| {
            let target = File::open(netns_path(ns)?)?;
            let index = index(&h, name).await?;
            let message = LinkUnspec::new_with_index(index)
                .setns_by_fd(target.as_raw_fd())
                .build();
            Ok(h.link().set(message).execute().await?)
        })
    }

    /// Renames the link `name` to `new`; the link must be down.
    pub fn rename(&self, name: &str, new: &str) -> Result<()> {
        let object = format!("{} to {new}", self.link(name));
        self.run("rename", object, async |h| {
            set_link(&h, name, |m| m.name(new.to_owned())).await
        })
    }

    /// Sets the MAC address of the link `name`.
    pub fn set_mac(&self, name: &str, mac: Mac) -> Result<()> {
        let object = format!("{} to {mac}", self.link(name));
        self.run("set the MAC address of", object, async |h| {
            set_link(&h, name, |m| m.address(mac.0.to_vec())).await
        })
    }

    /// Sets the MTU of the link `name`.
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let object = format!("{} to {mtu}", self.link(name));
        self.run("set the MTU of", object, async |h| {
            set_link(&h, name, |m| m.mtu(mtu)).await
        })
    }

    /// Brings the link `name` up.
    pub fn set_up(&self, name: &str) -> Result<()> {
        self.run("bring up", self.link(name), async |h| {
            set_link(&h, name, |m| m.up()).await
        })
    }

    /// Deletes the link `name` (deleting one end of a veth pair deletes both).
    pub fn delete(&self, name: &str) -> Result<()> {
        self.run("delete", self.link(name), async |h| {
            let index = index(&h, name).await?;
            Ok(h.link().del(index).execute().await?)
        })
    }

    /// Adds the address `ip/prefix_len` to the link `name`.
    pub fn add_address(&self, name: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
        let object = format!("{ip}/{prefix_len} to {}", self.link(name));
        self.run("add address", object, async |h| {
            // Checked here: rtnetlink's IPv4 broadcast computation overflows past /32.
            let net = IpNet::new(ip, prefix_len).map_err(|_| invalid("prefix length too long"))?;
            let index = index(&h, name).await?;
            Ok(h.address()
                .add(index, ip, net.prefix_len())
                .execute()
                .await?)
        })
    }

    /// The addresses of the link `name`, as address/prefix length (IPv6 link-local included).
    pub fn addresses(&self, name: &str) -> Result<Vec<IpNet>> {
        self.run("list the addresses of", self.link(name), async |h| {
            let index = index(&h, name).await?;
            let messages: Vec<_> = h
                .address()
                .get()
                .set_link_index_filter(index)
                .execute()
                .try_collect()
                .await?;
            let mut nets = Vec::new();
            for m in messages {
                // IFA_LOCAL is the address itself; IFA_ADDRESS the peer of a point-to-point
                // link, or the address itself when there is no IFA_LOCAL (IPv6), as `ip` shows.
                let (mut local, mut address) = (None, None);
                for attribute in m.attributes {
                    match attribute {
                        AddressAttribute::Local(ip) => local = Some(ip),
                        AddressAttribute::Address(ip) => address = Some(ip),
                        _ => {}
                    }
                }
                if let Some(ip) = local.or(address) {
                    let net = IpNet::new(ip, m.header.prefix_len)
                        .map_err(|e| Cause(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                    nets.push(net);
                }
            }
            Ok(nets)
        })
    }

    /// Adds the default route via `gateway` on the link `dev`, IPv4 or IPv6 by the gateway.
    pub fn add_default_route(&self, gateway: IpAddr, dev: &str) -> Result<()> {
        let object = format!("via {gateway} on {}", self.link(dev));
        self.run("add default route", object, async |h| {
            let index = index(&h, dev).await?;
            let message = match gateway {
                IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gw)
                    .output_interface(index)
                    .build(),
                IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new()
                    .gateway(gw)
                    .output_interface(index)
                    .build(),
            };
            Ok(h.route().add(message).execute().await?)
        })
    }

    /// Adds a link-scope route to `dest` (host bits ignored) on the link `dev`, no gateway.
    pub fn add_route(&self, dest: IpNet, dev: &str) -> Result<()> {
        let object = format!("{} on {}", dest.trunc(), self.link(dev));
        self.run("add route", object, async |h| {
            let mut message = route(&h, dest, dev).await?;
            message.header.scope = RouteScope::Link;
            Ok(h.route().add(message).execute().await?)
        })
    }

    /// Deletes the main-table route to `dest` (host bits ignored) on the link `dev`, whatever
    /// its scope and protocol.
    pub fn del_route(&self, dest: IpNet, dev: &str) -> Result<()> {
        let object = format!("{} on {}", dest.trunc(), self.link(dev));
        self.run("delete route", object, async |h| {
            let mut message = route(&h, dest, dev).await?;
            // The kernel's wildcards, as `ip route del` sends them.
            message.header.scope = RouteScope::NoWhere;
            message.header.protocol = RouteProtocol::Unspec;
            Ok(h.route().del(message).execute().await?)
        })
    }

    /// The destinations of the main-table routes, IPv4 and IPv6, sorted and deduplicated,
    /// without default routes, multicast, loopback and IPv6 link-local (`fe80::/64`) ones.
    pub fn routes(&self) -> Result<Vec<IpNet>> {
        self.run("list the routes of", self.place(), async |h| {
            // An AF_UNSPEC dump: every family; the header's other fields are not filters.
            let dump = RouteMessageBuilder::<IpAddr>::new().build();
            let messages: Vec<RouteMessage> = h.route().get(dump).execute().try_collect().await?;
            let link_local = IpNet::new(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 64)
                .map_err(|_| invalid("fe80::/64"))?;
            let mut nets: Vec<IpNet> = messages
                .iter()
                .filter(|m| table(m) == u32::from(RouteHeader::RT_TABLE_MAIN))
                .filter(|m| m.header.kind != RouteType::Multicast)
                .filter_map(destination)
                .filter(|net| {
                    net.prefix_len() > 0
                        && !net.addr().is_multicast()
                        && !net.addr().is_loopback()
                        && *net != link_local
                })
                .collect();
            nets.sort();
            nets.dedup();
            Ok(nets)
        })
    }

    /// Turns off TX checksum offload, scatter-gather, TSO and GSO on the link `name`.
    pub fn disable_tx_offloads(&self, name: &str) -> Result<()> {
        self.run_sync("disable TX offloads on", self.link(name), || {
            Ok(link::disable_tx_offloads(name)?)
        })
    }

    /// Sets the IPv6 setting `key` (`accept_dad`, `disable_ipv6`, …) of the link `name`, as
    /// `sysctl net.ipv6.conf.NAME.KEY=VALUE` in this namespace would.
    pub fn set_ipv6_conf(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let bad = |s: &str| s.is_empty() || s.contains('/') || s.starts_with('.');
        let object = format!("net.ipv6.conf.{name}.{key} of {}", self.link(name));
        self.run_sync("set", object, || {
            if bad(name) || bad(key) {
                return Err(Cause(io::Error::from_raw_os_error(libc::EINVAL)));
            }
            let path = format!("/proc/sys/net/ipv6/conf/{name}/{key}");
            Ok(std::fs::write(path, value)?)
        })
    }

    /// ` in namespace "NS"`, or nothing for the caller's own.
    fn suffix(&self) -> String {
        self.ns
            .as_deref()
            .map(|ns| format!(" in {}", Namespace(ns)))
            .unwrap_or_default()
    }

    /// `link NAME in namespace "NS"`.
    fn link(&self, name: &str) -> String {
        format!("link {name}{}", self.suffix())
    }

    /// `namespace "NS"` or `the current namespace`.
    fn place(&self) -> String {
        self.ns.as_deref().map_or_else(
            || "the current namespace".to_owned(),
            |ns| Namespace(ns).to_string(),
        )
    }

    /// Runs `work` with a netlink handle in this namespace; failures become `op object: cause`.
    fn run<T: Send>(
        &self,
        op: &'static str,
        object: String,
        work: impl AsyncFnOnce(Handle) -> std::result::Result<T, Cause> + Send,
    ) -> Result<T> {
        self.run_sync(op, object, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            runtime.block_on(async {
                let (connection, handle, _) = rtnetlink::new_connection()?;
                tokio::spawn(connection);
                work(handle).await
            })
        })
    }

    /// Runs `work` on a thread in this namespace; failures become `op object: cause`.
    fn run_sync<T: Send>(
        &self,
        op: &'static str,
        object: String,
        work: impl FnOnce() -> std::result::Result<T, Cause> + Send,
    ) -> Result<T> {
        let result = match &self.ns {
            None => work(),
            Some(ns) => check_name(ns).and_then(|()| netns::run_in(ns, work)?),
        };
        result.map_err(context(op, object))
    }
}

/// The link named `name`; `ENODEV` if there is none.
async fn get_link(h: &Handle, name: &str) -> std::result::Result<LinkMessage, Cause> {
    let links: Vec<LinkMessage> = h
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_collect()
        .await?;
    links
        .into_iter()
        .next()
        .ok_or(Cause(io::Error::from_raw_os_error(libc::ENODEV)))
}

/// rtnetlink's name for a macvlan mode.
fn macvlan_mode(mode: MacvlanMode) -> MacVlanMode {
    match mode {
        MacvlanMode::Private => MacVlanMode::Private,
        MacvlanMode::Vepa => MacVlanMode::Vepa,
        MacvlanMode::Bridge => MacVlanMode::Bridge,
        MacvlanMode::Passthru => MacVlanMode::Passthrough,
        MacvlanMode::Source => MacVlanMode::Source,
    }
}

/// The index of the link named `name`.
async fn index(h: &Handle, name: &str) -> std::result::Result<u32, Cause> {
    Ok(get_link(h, name).await?.header.index)
}

/// Changes the link named `name` as `change` says.
async fn set_link(
    h: &Handle,
    name: &str,
    change: impl FnOnce(
        rtnetlink::LinkMessageBuilder<LinkUnspec>,
    ) -> rtnetlink::LinkMessageBuilder<LinkUnspec>,
) -> std::result::Result<(), Cause> {
    let index = index(h, name).await?;
    let message = change(LinkUnspec::new_with_index(index)).build();
    Ok(h.link().set(message).execute().await?)
}

/// A main-table route to `dest` on the link `dev`, without gateway.
async fn route(h: &Handle, dest: IpNet, dev: &str) -> std::result::Result<RouteMessage, Cause> {
    let index = index(h, dev).await?;
    let builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dest.network(), dest.prefix_len())
        .map_err(|e| Cause(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    Ok(builder.output_interface(index).build())
}

/// The routing table of a route: the `RTA_TABLE` attribute, or the header's 8-bit one.
fn table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

/// The destination of an IPv4 or IPv6 route (`0.0.0.0/0` or `::/0` without `RTA_DST`).
fn destination(m: &RouteMessage) -> Option<IpNet> {
    let dst = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    });
    let ip = match (m.header.address_family, dst) {
        (AddressFamily::Inet | AddressFamily::Inet6, Some(ip)) => ip,
        (AddressFamily::Inet, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (AddressFamily::Inet6, None) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    IpNet::new(ip, m.header.destination_prefix_length).ok()
}
