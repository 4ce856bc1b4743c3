//! The daemon: builds every network of a configuration, opens its ports, and runs one engine
//! per network on a thread of its own until asked to stop.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{
    Config, ConfigFileError, NetworkMode, NetworkPlan, NetworkSpec, PortKind, PortPlace,
};
use crate::engine::{Engine, EngineStats, Job, Polling, WAKER};
use crate::fwd::{ConfigError, Switch, Vid};
use crate::port::Port;
use crate::port::af_packet::{AfPacketPort, Options};
use crate::port::sys::SysError;
use crate::port::tap::TapPort;
use crate::port::vxlan::VxlanPort;

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
    /// An overlay port's static entry was refused.
    #[error("network {network:?}: port {port:?}: static entry {mac}: {message}")]
    Static {
        /// The network.
        network: String,
        /// The overlay port.
        port: String,
        /// The entry's MAC.
        mac: crate::wire::Mac,
        /// Why.
        message: String,
    },
}

/// Why the daemon's set of networks refused a change.
#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    /// A network of that name is running.
    #[error("network {0:?} already exists")]
    Exists(String),
    /// No network of that name is running.
    #[error("no network {0:?}")]
    NoSuchNetwork(String),
    /// The network's description was refused.
    #[error(transparent)]
    Plan(#[from] ConfigFileError),
    /// The network could not be started.
    #[error(transparent)]
    Start(#[from] DaemonError),
    /// The network's engine failed while it stopped.
    #[error("network {name:?}: stopping: {source}")]
    Stop {
        /// The network.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// How to reach a running network's engine from another thread.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The network's name.
    pub name: String,
    /// Its mode.
    pub mode: NetworkMode,
    /// The largest frame its ports carry.
    pub max_frame: usize,
    jobs: crossbeam_channel::Sender<Job>,
    waker: Arc<mio::Waker>,
}

/// Why a request to an engine got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The engine has stopped.
    #[error("network {0:?} is not running")]
    Stopped(String),
    /// The engine did not answer in time.
    #[error("network {0:?} did not answer within {1:?}")]
    Timeout(String, Duration),
}

impl Handle {
    /// Runs `f` on the engine's thread between two batches and returns its result.
    pub fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, CallError> {
        const WAIT: Duration = Duration::from_secs(2);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job: Job = Box::new(move |e: &mut Engine| {
            let _ = tx.send(f(e));
        });
        self.jobs
            .send(job)
            .map_err(|_| CallError::Stopped(self.name.clone()))?;
        self.waker
            .wake()
            .map_err(|_| CallError::Stopped(self.name.clone()))?;
        rx.recv_timeout(WAIT).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => {
                CallError::Timeout(self.name.clone(), WAIT)
            }
            crossbeam_channel::RecvTimeoutError::Disconnected => {
                CallError::Stopped(self.name.clone())
            }
        })
    }
}

/// A network whose engine is running.
#[derive(Debug)]
pub struct Running {
    /// The network's name.
    pub name: String,
    /// The way to its engine.
    pub handle: Handle,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<Engine>>,
}

impl Running {
    /// Stops the engine (its ports close, TAP devices vanish) and returns its counters.
    pub fn stop_and_join(self) -> io::Result<EngineStats> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the engine to stop (after `stop` is set) and returns its counters.
    pub fn join(self) -> io::Result<EngineStats> {
        match self.thread.join() {
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

/// Opens the I/O of a port: an AF_PACKET socket on an existing interface or a new TAP
/// device, in the port's namespace; frames longer than `max_frame` are cut.
pub fn open_port(place: &PortPlace, max_frame: usize) -> Result<Box<dyn Port + Send>, SysError> {
    let PortPlace {
        kind,
        interface,
        netns,
        handover,
        vxlan,
    } = place;
    let opts = Options::with_handover(*handover, max_frame);
    match (kind, netns) {
        (PortKind::AfPacket, Some(ns)) => {
            AfPacketPort::open_in_with(ns, interface, max_frame, &opts).map(box_port)
        }
        (PortKind::AfPacket, None) => {
            AfPacketPort::open_with(interface, max_frame, &opts).map(box_port)
        }
        (PortKind::Tap, Some(ns)) => TapPort::create_in(ns, interface, max_frame).map(box_port),
        (PortKind::Tap, None) => TapPort::create(interface, max_frame).map(box_port),
        (PortKind::Vxlan, ns) => {
            let cfg = vxlan.clone().ok_or_else(|| {
                SysError::new(
                    "configure VXLAN",
                    interface,
                    io::Error::new(io::ErrorKind::InvalidInput, "no vxlan settings"),
                )
            })?;
            VxlanPort::open(interface, cfg, ns.as_deref(), max_frame).map(box_port)
        }
    }
}

/// Builds `plan`'s switch and ports and starts its engine; it runs until `stop` is set.
pub fn start(plan: NetworkPlan, stop: Arc<AtomicBool>) -> Result<Running, DaemonError> {
    start_with(plan, stop, Polling::default())
}

/// [`start`], waiting for frames as `polling` says.
pub fn start_with(
    plan: NetworkPlan,
    stop: Arc<AtomicBool>,
    polling: Polling,
) -> Result<Running, DaemonError> {
    let network = plan.name.clone();
    let mut engine = build(plan)?;
    engine.set_polling(polling);
    let mode = NetworkMode::from(&engine.switch().config().mode);
    let max = engine.switch().config().max_frame();
    let thread_err = |source| DaemonError::Thread {
        network: network.clone(),
        source,
    };
    let poll = mio::Poll::new().map_err(thread_err)?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).map_err(thread_err)?);
    let (jobs, rx) = crossbeam_channel::unbounded();
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(format!("l2sw-{network}"))
        .spawn(move || engine.run_with(&flag, poll, Some(rx)).map(|()| engine))
        .map_err(thread_err)?;
    tracing::info!(network = %network, "forwarding");
    Ok(Running {
        name: network.clone(),
        handle: Handle {
            name: network,
            mode,
            max_frame: max,
            jobs,
            waker,
        },
        stop,
        thread,
    })
}

/// Builds `plan`'s switch, opens its ports and programs their filters: an engine ready to
/// run, not yet running (frames arriving meanwhile wait in the ports' queues). The
/// benchmarks run it on a thread of their own.
pub fn build(plan: NetworkPlan) -> Result<Engine, DaemonError> {
    let network = plan.name.clone();
    let config_err = |source| DaemonError::Config {
        network: network.clone(),
        source,
    };
    let mut sw = Switch::new(plan.switch).map_err(config_err)?;
    let max = sw.config().max_frame();
    let mut opened = Vec::new();
    let mut statics = Vec::new();
    for (cfg, place) in plan.ports {
        let port = open_port(&place, max).map_err(|source| DaemonError::Port {
            network: network.clone(),
            source,
        })?;
        if let Some(v) = &place.vxlan {
            statics.extend(
                v.statics
                    .iter()
                    .map(|&(mac, vtep)| (cfg.name.clone(), mac, vtep)),
            );
        }
        let id = sw.add_port(cfg).map_err(config_err)?;
        tracing::info!(network = %network, port = %id, interface = %place.interface, kind = ?place.kind, netns = ?place.netns, "port attached");
        opened.push((id, port));
    }
    let mut engine = Engine::new(sw);
    for (id, port) in opened {
        // Not running yet: attaching only stores the port.
        engine
            .attach(id, port)
            .map_err(|source| DaemonError::Thread {
                network: network.clone(),
                source,
            })?;
    }
    // An overlay port's static entries, once the port is in (they name it and its VTEPs).
    for (port, mac, vtep) in statics {
        engine
            .add_static_remote(Vid::UNAWARE, mac, &port, vtep)
            .map_err(|e| DaemonError::Static {
                network: network.clone(),
                port,
                mac,
                message: e.to_string(),
            })?;
    }
    engine.program_filters();
    Ok(engine)
}

/// The networks of a daemon, which the control socket may add to and remove from.
#[derive(Debug, Default)]
pub struct Networks {
    list: Mutex<Vec<Running>>,
    polling: Polling,
}

impl Networks {
    /// No networks.
    pub fn new() -> Networks {
        Networks::default()
    }

    /// No networks; those started later wait for frames as `polling` says.
    pub fn with_polling(polling: Polling) -> Networks {
        Networks {
            polling,
            ..Networks::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds and starts `plan`'s network; refuses a name already running.
    pub fn start(&self, plan: NetworkPlan) -> Result<(), NetworksError> {
        if self.lock().iter().any(|r| r.name == plan.name) {
            return Err(NetworksError::Exists(plan.name));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let running = start_with(plan, stop, self.polling)?;
        self.lock().push(running);
        Ok(())
    }

    /// Checks `spec` as a configuration file's network and starts it.
    pub fn add(&self, spec: &NetworkSpec) -> Result<(), NetworksError> {
        let plans = Config {
            networks: vec![spec.clone()],
        }
        .plan()?;
        for plan in plans {
            self.start(plan)?;
        }
        Ok(())
    }

    /// The ways to every running engine.
    pub fn handles(&self) -> Vec<Handle> {
        self.lock().iter().map(|r| r.handle.clone()).collect()
    }

    /// Stops network `name` and returns its counters.
    pub fn remove(&self, name: &str) -> Result<EngineStats, NetworksError> {
        let running = {
            let mut list = self.lock();
            let at = list
                .iter()
                .position(|r| r.name == name)
                .ok_or_else(|| NetworksError::NoSuchNetwork(name.to_owned()))?;
            list.remove(at)
        };
        running
            .stop_and_join()
            .map_err(|source| NetworksError::Stop {
                name: name.to_owned(),
                source,
            })
    }

    /// Stops every network, returning each one's name and counters.
    pub fn stop_all(&self) -> Vec<(String, io::Result<EngineStats>)> {
        let all: Vec<Running> = self.lock().drain(..).collect();
        for r in &all {
            r.stop.store(true, Ordering::Relaxed);
        }
        all.into_iter()
            .map(|r| (r.name.clone(), r.join()))
            .collect()
    }
}
