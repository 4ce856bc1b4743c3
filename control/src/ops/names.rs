//! Names, as Docker gives its containers: each workload namespace gets `/etc/netns/NAME/hosts`
//! listing itself and the workloads it shares a network with, and a `resolv.conf` taken from
//! the host's. `l2ctl exec` (like `ip netns exec`) mounts them over `/etc/hosts` and
//! `/etc/resolv.conf`, so `ping db` works from `web` on the same network and fails across
//! networks. The files follow the state: rewritten after every attach and detach, removed
//! with the workload. A workload sharing another's namespace (`container:`) is an alias there.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::*;

pub(super) use crate::nl::ETC_NETNS;
/// The first line of every file l2ctl writes there: only such files are replaced or removed.
const HEADER: &str = "# written by l2ctl: the workloads that share a network with this one";
const RESOLV_HEADER: &str = "# written by l2ctl from the host's resolv.conf";
/// Docker's lines for loopback and the IPv6 well-known names.
const LOOPBACK: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";
/// Docker's resolvers when the host's are all on loopback (unreachable from a namespace).
const FALLBACK_RESOLVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `workload`'s hosts file: loopback, then itself (with the workloads that share its
/// namespace as aliases) and every workload it shares a network with, each at its address
/// on the first network they share, sorted by name. `None` for a workload without a
/// namespace of its own with endpoints.
pub(super) fn hosts(state: &State, workload: &str) -> Option<String> {
    let w = state.workloads.get(workload)?;
    if w.sandbox != Sandbox::Own || w.endpoints.is_empty() {
        return None;
    }
    let mut out = format!("{HEADER}\n{LOOPBACK}");
    let names = |who: &Workload| {
        let mut n = vec![who.name.clone()];
        n.extend(state.joiners_of(&who.name).into_iter().map(str::to_owned));
        n.join(" ")
    };
    for other in state.workloads.values() {
        if other.sandbox != Sandbox::Own {
            continue;
        }
        let shared = w
            .endpoints
            .keys()
            .find(|net| other.endpoints.contains_key(*net));
        let Some(ep) = shared.and_then(|net| other.endpoints.get(net)) else {
            continue;
        };
        for ip in &ep.ips {
            let _ = writeln!(out, "{ip}\t{}", names(other));
        }
    }
    Some(out)
}

/// The host's `resolv.conf` as a namespace can use it: nameservers on loopback dropped (they
/// cannot be reached from the namespace), Docker's public resolvers if none is left.
pub(super) fn resolv(host: &str) -> String {
    let mut out = format!("{RESOLV_HEADER}\n");
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let loopback = words
                .next()
                .and_then(|a| a.split('%').next())
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_none_or(|ip| ip.is_loopback());
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for s in FALLBACK_RESOLVERS {
            let _ = writeln!(out, "nameserver {s}");
        }
    }
    out
}

impl Ctl {
    /// Brings every workload's hosts and resolv.conf files to the state. The operation that
    /// called it has succeeded whatever happens here, so a file that cannot be written is a
    /// warning on stderr, not a failure.
    pub(super) fn names_follow(&self) {
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for w in self.state.workloads.values() {
            if w.sandbox != Sandbox::Own {
                continue;
            }
            let dir = Path::new(ETC_NETNS).join(&w.name);
            let done = match hosts(&self.state, &w.name) {
                Some(h) => write_ours(&dir, "hosts", &h)
                    .and_then(|()| write_ours(&dir, "resolv.conf", &resolv(&host_resolv))),
                None => remove_names(&w.name),
            };
            if let Err(e) = done {
                eprintln!("warning: the names of {} in {}: {e}", w.name, dir.display());
            }
        }
    }
}

/// Writes `dir/file` unless a file l2ctl did not write is there (then it is the user's).
fn write_ours(dir: &Path, file: &str, text: &str) -> io::Result<()> {
    let path = dir.join(file);
    if !ours(&path)? {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{file}.l2ctl"));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, &path)
}

/// Whether `path` is missing or written by l2ctl.
fn ours(path: &Path) -> io::Result<bool> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(t.starts_with(HEADER) || t.starts_with(RESOLV_HEADER)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Removes the files l2ctl wrote for `workload`, and its directory if that leaves it empty.
pub(super) fn remove_names(workload: &str) -> io::Result<()> {
    if l2sw::port::sys::netns::is_path(workload) || !l2sw::port::sys::netns::valid(workload) {
        return Ok(());
    }
    let dir: PathBuf = Path::new(ETC_NETNS).join(workload);
    for file in ["hosts", "resolv.conf"] {
        let path = dir.join(file);
        if path.exists() && ours(&path)? {
            fs::remove_file(&path)?;
        }
    }
    match fs::remove_dir(&dir) {
        Err(e)
            if e.kind() != io::ErrorKind::NotFound && e.raw_os_error() != Some(libc::ENOTEMPTY) =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::{Driver, EndpointKind};

    fn ep(ip: &str) -> Endpoint {
        Endpoint {
            interface: "eth0".into(),
            peer: None,
            kind: EndpointKind::Veth,
            mac: Mac([2, 0, 0, 0, 0, 1]),
            ips: vec![ip.parse().unwrap()],
            source_macs: Vec::new(),
            ports: Vec::new(),
            origin: None,
        }
    }

    fn workload(name: &str, sandbox: Sandbox, eps: &[(&str, &str)]) -> Workload {
        Workload {
            name: name.into(),
            sandbox,
            made_netns: true,
            endpoints: eps.iter().map(|(n, ip)| ((*n).into(), ep(ip))).collect(),
            origin: None,
        }
    }

    fn state() -> State {
        let mut s = State::new(None);
        for n in ["front", "back"] {
            s.networks
                .insert(n.into(), Network::sample(n, Driver::Bridge, None, None));
        }
        for w in [
            workload(
                "web",
                Sandbox::Own,
                &[("front", "10.0.0.2"), ("back", "10.1.0.2")],
            ),
            workload("db", Sandbox::Own, &[("back", "10.1.0.3")]),
            workload("cache", Sandbox::Own, &[("front", "10.0.0.4")]),
            workload("side", Sandbox::Container("db".into()), &[]),
            workload("lone", Sandbox::None, &[]),
        ] {
            s.workloads.insert(w.name.clone(), w);
        }
        s
    }

    #[test]
    fn a_hosts_file_lists_who_shares_a_network_and_no_one_else() {
        let s = state();
        let web = hosts(&s, "web").unwrap();
        assert!(web.starts_with(HEADER));
        assert!(web.contains("127.0.0.1\tlocalhost\n"));
        // Itself at its first network's address (sorted: back), its peers on each network.
        assert!(web.contains("10.1.0.2\tweb\n"), "{web}");
        assert!(web.contains("10.1.0.3\tdb side\n"), "{web}");
        assert!(web.contains("10.0.0.4\tcache\n"), "{web}");
        let db = hosts(&s, "db").unwrap();
        assert!(db.contains("10.1.0.2\tweb\n"), "{db}");
        assert!(
            !db.contains("cache"),
            "cache shares no network with db: {db}"
        );
        let cache = hosts(&s, "cache").unwrap();
        assert!(!cache.contains("db"), "{cache}");
        assert!(hosts(&s, "side").is_none() && hosts(&s, "lone").is_none());
        assert!(hosts(&s, "nobody").is_none());
    }

    #[test]
    fn resolv_drops_loopback_resolvers_as_docker_does() {
        let host =
            "search lab.example\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions edns0\n";
        let r = resolv(host);
        assert!(r.contains("search lab.example\n") && r.contains("options edns0\n"));
        assert!(
            r.contains("nameserver 192.0.2.1\n") && !r.contains("127.0.0.53"),
            "{r}"
        );
        let only_loopback = resolv("nameserver 127.0.0.53\nnameserver ::1\n");
        assert!(only_loopback.contains("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"));
        assert!(!only_loopback.contains("::1"), "{only_loopback}");
    }
}
