//! An l2sw daemon inside this process, on a socket of its own: what `l2ctl demo` and the tests
//! run, so that they need no daemon running beside them. It is the daemon's own code (the
//! `l2sw` library's networks and control server), not a stand-in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use l2sw::daemon::Networks;

/// A running daemon; stops (its TAP devices vanish) when dropped.
#[derive(Debug)]
pub struct EmbeddedDaemon {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    networks: Arc<Networks>,
    server: Option<JoinHandle<()>>,
}

impl EmbeddedDaemon {
    /// Starts serving the control protocol on `socket`.
    pub fn start(socket: &Path) -> Result<EmbeddedDaemon, l2sw::control::ControlError> {
        let stop = Arc::new(AtomicBool::new(false));
        let networks = Arc::new(Networks::new());
        let server = l2sw::control::serve(socket, Arc::clone(&networks), Arc::clone(&stop))?;
        Ok(EmbeddedDaemon {
            socket: socket.to_owned(),
            stop,
            networks,
            server: Some(server),
        })
    }

    /// Its control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
        self.networks.stop_all();
    }

    /// Stops every network and the control server.
    pub fn stop(mut self) {
        self.halt();
    }
}

impl Drop for EmbeddedDaemon {
    fn drop(&mut self) {
        self.halt();
    }
}
