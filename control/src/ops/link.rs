//! Netlink steps that run again without harm: ignoring "already exists" and "not found",
//! configuring an interface, the host-access link.

use super::*;

impl Ctl {
    pub(super) fn ensure_host_access_link(
        &self,
        net: &Network,
        ha: &HostAccess,
    ) -> Result<(), CtlError> {
        if !self.host.exists(&ha.interface)? {
            again(self.host.create_veth(&ha.interface, &ha.port))?;
        }
        let prefix = if ha.ip.is_ipv4() { 32 } else { 128 };
        configure(&self.host, &ha.interface, ha.mac, &[(ha.ip, prefix)])?;
        self.host.set_up(&ha.port)?;
        if let Some(pool) = net
            .pools
            .iter()
            .find(|p| p.subnet().addr().is_ipv4() == ha.ip.is_ipv4())
        {
            let dest = pool.ip_range().unwrap_or(pool.subnet());
            again(self.host.add_route(dest, &ha.interface))?;
        }
        Ok(())
    }
}

/// Ignores "already exists", so that a step can run again.
pub(super) fn again(r: Result<(), NlError>) -> Result<(), NlError> {
    match r {
        Err(e) if e.is_exists() => Ok(()),
        other => other,
    }
}

/// Ignores "not found", so that an undo can run again.
pub(super) fn gone(r: Result<(), NlError>) -> Result<(), NlError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Sets a link's MAC (if it differs) and its addresses, and brings it up. Its offloads stay as
/// the kernel made them, as Docker leaves them: l2sw carries checksums left to complete and
/// super-frames through with their `virtio_net_hdr`.
pub(super) fn configure(
    links: &Links,
    name: &str,
    mac: Mac,
    addrs: &[(IpAddr, u8)],
) -> Result<(), CtlError> {
    if links.mac(name)? != mac {
        links.set_mac(name, mac)?;
    }
    if addrs.iter().any(|(ip, _)| ip.is_ipv6()) {
        // Addresses l2ctl hands out are unique by construction; skipping duplicate address
        // detection makes them usable at once, as Docker does (IFA_F_NODAD).
        links.set_ipv6_conf(name, "disable_ipv6", "0")?;
        links.set_ipv6_conf(name, "accept_dad", "0")?;
    }
    for (ip, len) in addrs {
        again(links.add_address(name, *ip, *len))?;
    }
    links.set_up(name)?;
    Ok(())
}
