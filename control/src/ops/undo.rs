//! Undoing what an operation put on the host and in the daemon; each undo runs again without
//! harm.

use super::*;

impl Ctl {
    /// Removes what the network put on the host besides its daemon network (host access).
    pub(super) fn undo_network(&self, name: &str) {
        if let Some(ha) = self
            .state
            .networks
            .get(name)
            .and_then(|n| n.host_access.as_ref())
        {
            let _ = gone(self.host.delete(&ha.interface));
        }
    }

    /// Removes an endpoint's port and link; runs again without harm.
    pub(super) fn undo_endpoint(&self, workload: &str, network: &str) -> Result<(), CtlError> {
        let Some(ep) = self
            .state
            .workloads
            .get(workload)
            .and_then(|w| w.endpoints.get(network))
        else {
            return Ok(());
        };
        match self.client.remove_port(network, workload) {
            Err(e)
                if matches!(
                    e.kind(),
                    Some(ErrorKind::NoSuchNetwork { .. } | ErrorKind::NoSuchPort { .. })
                ) => {}
            other => other?,
        }
        if let Some(peer) = &ep.peer {
            gone(self.host.delete(peer))?;
        }
        Ok(())
    }
}
