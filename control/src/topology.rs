//! `l2ctl up` / `l2ctl down`: a declarative topology. `up` creates what the file names and is
//! missing, and marks each thing it made with the topology's name; `down` removes exactly the
//! things so marked, so networks and workloads that existed before `up` survive `down`.

use std::path::Path;

use crate::args::Topology;
use crate::ops::{Ctl, CtlError};
use crate::state::Sandbox;

/// Reads a topology file; its name is its `name` or the file's stem.
pub fn load(file: &Path) -> Result<(String, Topology), CtlError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CtlError::Refused(format!("reading {}: {e}", file.display())))?;
    let topo: Topology =
        toml::from_str(&text).map_err(|e| CtlError::Refused(format!("{}: {e}", file.display())))?;
    let name = topo
        .name
        .clone()
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "topology".into());
    Ok((name, topo))
}

/// Creates the topology's networks and attachments that do not exist yet.
pub fn up(ctl: &mut Ctl, file: &Path) -> Result<Vec<String>, CtlError> {
    let (name, topo) = load(file)?;
    let origin = Some(name.as_str());
    let mut done = Vec::new();
    for n in &topo.networks {
        if ctl.state.networks.contains_key(&n.name) {
            done.push(format!("network {}: exists", n.name));
            continue;
        }
        ctl.create_network(n, origin)?;
        done.push(format!("network {}: created", n.name));
    }
    for w in &topo.workloads {
        for a in &w.attach {
            let attached = ctl.state.workloads.get(&w.name).is_some_and(|x| {
                match (&x.sandbox, a.network.as_str()) {
                    (Sandbox::None, "none") | (Sandbox::Host, "host") => true,
                    (Sandbox::Container(o), n) => n.strip_prefix("container:") == Some(o),
                    (_, n) => x.endpoints.contains_key(n),
                }
            });
            if attached {
                done.push(format!("{} on {}: exists", w.name, a.network));
                continue;
            }
            ctl.attach(&w.name, a, origin)?;
            done.push(format!("{} on {}: attached", w.name, a.network));
        }
    }
    Ok(done)
}

/// Removes the topology's attachments and networks that `up` made, in reverse order.
pub fn down(ctl: &mut Ctl, file: &Path) -> Result<Vec<String>, CtlError> {
    let (name, topo) = load(file)?;
    let ours = |o: &Option<String>| o.as_deref() == Some(name.as_str());
    let mut done = Vec::new();
    for w in topo.workloads.iter().rev() {
        for a in w.attach.iter().rev() {
            let Some(x) = ctl.state.workloads.get(&w.name) else {
                continue;
            };
            let made = match x.endpoints.get(&a.network) {
                Some(ep) => ours(&ep.origin),
                None => x.endpoints.is_empty() && ours(&x.origin),
            };
            if made {
                ctl.detach(&w.name, &a.network)?;
                done.push(format!("{} on {}: detached", w.name, a.network));
            }
        }
    }
    for n in topo.networks.iter().rev() {
        if ctl
            .state
            .networks
            .get(&n.name)
            .is_some_and(|x| ours(&x.origin))
        {
            ctl.remove_network(&n.name)?;
            done.push(format!("network {}: removed", n.name));
        }
    }
    Ok(done)
}
