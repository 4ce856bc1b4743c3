//! The daemon: builds every network of a configuration, opens its ports, and runs one engine
//! per network on a thread of its own until asked to stop.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use crate::config::{NetworkPlan, PortKind, PortPlace};
use crate::engine::{Engine, EngineStats};
use crate::fwd::{ConfigError, Switch};
use crate::port::Port;
use crate::port::af_packet::AfPacketPort;
use crate::port::sys::SysError;
use crate::port::tap::TapPort;

/// Why the daemon could not start a network.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The switch refused the configuration.
    #[error("network {network:?}: {source}")]
    Config {
        /// The network.
        network: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// A port's interface could not be opened.
    #[error("network {network:?}: {source}")]
    Port {
        /// The network.
        network: String,
        /// Why.
        #[source]
        source: SysError,
    },
    /// A thread could not be started.
    #[error("network {network:?}: starting its thread: {source}")]
    Thread {
        /// The network.
        network: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A network whose engine is running.
#[derive(Debug)]
pub struct Running {
    /// The network's name.
    pub name: String,
    handle: JoinHandle<io::Result<Engine>>,
}

impl Running {
    /// Waits for the engine to stop (after `stop` is set) and returns its counters.
    pub fn join(self) -> io::Result<EngineStats> {
        match self.handle.join() {
            Ok(r) => r.map(|e| e.stats()),
            Err(_) => Err(io::Error::other(format!(
                "network {}: engine panicked",
                self.name
            ))),
        }
    }
}

fn box_port(p: impl Port + Send + 'static) -> Box<dyn Port + Send> {
    Box::new(p)
}

/// Builds `plan`'s switch and ports and starts its engine; it runs until `stop` is set.
pub fn start(plan: NetworkPlan, stop: Arc<AtomicBool>) -> Result<Running, DaemonError> {
    let network = plan.name.clone();
    let config_err = |source| DaemonError::Config {
        network: network.clone(),
        source,
    };
    let mut sw = Switch::new(plan.switch).map_err(config_err)?;
    let max = sw.config().max_frame();
    let mut opened = Vec::new();
    for (cfg, place) in plan.ports {
        let PortPlace {
            kind,
            interface,
            netns,
        } = &place;
        let port: Box<dyn Port + Send> = match (kind, netns) {
            (PortKind::AfPacket, Some(ns)) => {
                AfPacketPort::open_in(ns, interface, max).map(box_port)
            }
            (PortKind::AfPacket, None) => AfPacketPort::open(interface, max).map(box_port),
            (PortKind::Tap, Some(ns)) => TapPort::create_in(ns, interface, max).map(box_port),
            (PortKind::Tap, None) => TapPort::create(interface, max).map(box_port),
        }
        .map_err(|source| DaemonError::Port {
            network: network.clone(),
            source,
        })?;
        let id = sw.add_port(cfg).map_err(config_err)?;
        tracing::info!(network = %network, port = %id, interface = %interface, kind = ?kind, netns = ?netns, "port attached");
        opened.push((id, port));
    }
    let mut engine = Engine::new(sw);
    for (id, port) in opened {
        engine.attach(id, port);
    }
    let handle = std::thread::Builder::new()
        .name(format!("l2sw-{network}"))
        .spawn(move || engine.run(&stop).map(|()| engine))
        .map_err(|source| DaemonError::Thread {
            network: network.clone(),
            source,
        })?;
    tracing::info!(network = %network, "forwarding");
    Ok(Running {
        name: network,
        handle,
    })
}
