//! The driver: one Docker call in, the l2ctl operations it maps to, one answer out. Each call
//! opens (and so locks) the state for its own length only, so plain `l2ctl` commands run
//! between Docker's calls, and a restarted driver answers for everything made before: all
//! it knows is in l2ctl's state file.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::api::{
    ActivateResponse, CapabilitiesResponse, CreateEndpointRequest, CreateEndpointResponse,
    CreateNetworkRequest, EndpointInfoResponse, EndpointRequest, ErrorResponse, JoinRequest,
    NetworkRequest,
};
use super::mapping::{
    attach_args, endpoint_answer, join_answer, network_args, network_name, origin, workload_name,
};
use crate::client::ClientError;
use crate::ipam::IpamError;
use crate::ops::{Ctl, CtlError};
use crate::state::{Engine, EngineSandbox};

/// An answer: the HTTP status and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// 200, or 400/404/500 with `{"Err": …}`.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

impl Answer {
    fn ok(v: &impl Serialize) -> Answer {
        match serde_json::to_string(v) {
            Ok(body) => Answer { status: 200, body },
            Err(e) => Answer::err(500, format!("encoding the answer: {e}")),
        }
    }

    fn err(status: u16, why: String) -> Answer {
        let body = serde_json::to_string(&ErrorResponse { err: why })
            .unwrap_or_else(|_| r#"{"Err":"(unprintable error)"}"#.to_owned());
        Answer { status, body }
    }
}

/// Where the driver finds l2ctl's state and the daemon: l2ctl's global options.
#[derive(Debug, Clone)]
pub struct DockerDriver {
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `--socket`: the daemon's control socket.
    pub socket: PathBuf,
    /// `--host-netns`.
    pub host_netns: Option<String>,
}

/// Why a call failed: a request Docker should not have sent this way (400), or an operation
/// l2ctl refused or could not finish (500), its message l2ctl's.
enum Failure {
    BadRequest(String),
    Ctl(CtlError),
}

impl From<CtlError> for Failure {
    fn from(e: CtlError) -> Failure {
        Failure::Ctl(e)
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(method: &str, body: &'a [u8]) -> Result<T, Failure> {
    // Docker sends no body at all for some calls.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        Failure::BadRequest(format!(
            "{method}: the request is not valid JSON for it: {e}"
        ))
    })
}

/// The calls Docker makes that need no answer beyond success.
const NOTHING_TO_DO: &[&str] = &[
    "NetworkDriver.DiscoverNew",
    "NetworkDriver.DiscoverDelete",
    "NetworkDriver.ProgramExternalConnectivity",
    "NetworkDriver.RevokeExternalConnectivity",
    "NetworkDriver.Leave",
];

impl DockerDriver {
    /// Answers the call at `path` (`/Plugin.Activate`, `/NetworkDriver.CreateNetwork`, …)
    /// with request body `body`. Never panics on what Docker (or anyone) sends.
    pub fn handle(&self, path: &str, body: &[u8]) -> Answer {
        let method = path.trim_start_matches('/');
        let result = match method {
            "Plugin.Activate" => Ok(Answer::ok(&ActivateResponse {
                implements: vec!["NetworkDriver".into()],
            })),
            "NetworkDriver.GetCapabilities" => Ok(Answer::ok(&CapabilitiesResponse {
                scope: "local".into(),
                connectivity_scope: "local".into(),
            })),
            "NetworkDriver.CreateNetwork" => {
                parse(method, body).and_then(|r| self.create_network(&r))
            }
            "NetworkDriver.DeleteNetwork" => {
                parse(method, body).and_then(|r| self.delete_network(&r))
            }
            "NetworkDriver.CreateEndpoint" => {
                parse(method, body).and_then(|r| self.create_endpoint(&r))
            }
            "NetworkDriver.DeleteEndpoint" => {
                parse(method, body).and_then(|r| self.delete_endpoint(&r))
            }
            "NetworkDriver.EndpointOperInfo" => {
                parse(method, body).and_then(|r| self.endpoint_info(&r))
            }
            "NetworkDriver.Join" => parse(method, body).and_then(|r| self.join(&r)),
            m if NOTHING_TO_DO.contains(&m) => {
                parse::<Value>(method, body).map(|_| Answer::ok(&serde_json::json!({})))
            }
            _ => {
                return Answer::err(
                    404,
                    format!(
                        "{path}: l2sw's Docker plugin has no such call (it is a NetworkDriver)"
                    ),
                );
            }
        };
        match result {
            Ok(a) => a,
            Err(Failure::BadRequest(why)) => Answer::err(400, why),
            Err(Failure::Ctl(e)) => Answer::err(500, e.to_string()),
        }
    }

    fn open(&self) -> Result<Ctl, CtlError> {
        Ctl::open(&self.state_dir, &self.socket, self.host_netns.as_deref())
    }

    /// Opens the state and gives a restarted daemon back what it lacks, as l2ctl's commands do
    /// before they change anything.
    fn open_synced(&self) -> Result<Ctl, CtlError> {
        let mut ctl = self.open()?;
        match ctl.sync() {
            Ok(r) if !r.is_empty() => {
                eprintln!("l2ctl plugin: restored to the daemon: {}", r.join(", "))
            }
            Ok(_) | Err(CtlError::Daemon(ClientError::NoDaemon { .. })) => {}
            Err(e) => eprintln!("l2ctl plugin: warning: could not restore the saved state: {e}"),
        }
        Ok(ctl)
    }

    fn create_network(&self, req: &CreateNetworkRequest) -> Result<Answer, Failure> {
        let args = network_args(req)?;
        let mut ctl = self.open_synced()?;
        match ctl.create_network(&args, Some(&origin(&req.network_id))) {
            Ok(_) => Ok(Answer::ok(&serde_json::json!({}))),
            // Docker's default pools start where l2ctl's do (172.17.0.0/16, its `bridge`):
            // say how to pick another.
            Err(e @ CtlError::Ipam(IpamError::Overlap { .. })) => Err(CtlError::Refused(format!(
                "{e}: give `docker network create` a --subnet that no l2ctl network uses (see `l2ctl network ls`)"
            ))
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    fn delete_network(&self, req: &NetworkRequest) -> Result<Answer, Failure> {
        let name = network_name(&req.network_id)?;
        let mut ctl = self.open_synced()?;
        match ctl.state.networks.get(&name) {
            // Gone already (removed by hand, or an earlier call that Docker did not hear
            // answered): what Docker wants is true.
            None => {}
            Some(n) if n.origin.as_deref() != Some(origin(&req.network_id).as_str()) => {
                return Err(CtlError::Refused(format!(
                    "network {name} was not made by Docker network {} (its origin is {}): l2sw leaves it",
                    req.network_id,
                    n.origin.as_deref().unwrap_or("l2ctl")
                ))
                .into());
            }
            Some(_) => ctl.remove_network(&name)?,
        }
        Ok(Answer::ok(&serde_json::json!({})))
    }

    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Answer, Failure> {
        let network = network_name(&req.network_id)?;
        let workload = workload_name(&req.endpoint_id)?;
        let args = attach_args(&network, &req.interface, &req.options)?;
        let mut ctl = self.open_synced()?;
        let sandbox = EngineSandbox {
            engine: Engine::Docker,
            container: req.endpoint_id.clone(),
            netns: None,
        };
        let ep = ctl.attach_engine(
            &workload,
            &args,
            sandbox,
            "",
            Some(&origin(&req.endpoint_id)),
        )?;
        let net = ctl
            .state
            .networks
            .get(&network)
            .ok_or_else(|| CtlError::Refused(format!("network {network} vanished")))?;
        Ok(Answer::ok(&CreateEndpointResponse {
            interface: endpoint_answer(&req.interface, &ep, net),
        }))
    }

    fn delete_endpoint(&self, req: &EndpointRequest) -> Result<Answer, Failure> {
        let workload = workload_name(&req.endpoint_id)?;
        let mut ctl = self.open_synced()?;
        let networks: Vec<String> = match ctl.state.workloads.get(&workload) {
            // Gone already: nothing to do.
            None => Vec::new(),
            Some(w) => w.endpoints.keys().cloned().collect(),
        };
        for n in networks {
            ctl.detach(&workload, &n)?;
        }
        Ok(Answer::ok(&serde_json::json!({})))
    }

    fn endpoint_info(&self, req: &EndpointRequest) -> Result<Answer, Failure> {
        let workload = workload_name(&req.endpoint_id)?;
        let ctl = self.open()?;
        let mut value = std::collections::BTreeMap::new();
        if let Some(w) = ctl.state.workloads.get(&workload) {
            value.insert("l2sw.workload".to_owned(), workload.clone());
            for (net, ep) in &w.endpoints {
                value.insert("l2sw.network".to_owned(), net.clone());
                value.insert("l2sw.mac".to_owned(), ep.mac.to_string());
                if let Some(p) = &ep.peer {
                    value.insert("l2sw.port".to_owned(), p.clone());
                }
            }
        }
        Ok(Answer::ok(&EndpointInfoResponse { value }))
    }

    fn join(&self, req: &JoinRequest) -> Result<Answer, Failure> {
        let network = network_name(&req.network_id)?;
        let workload = workload_name(&req.endpoint_id)?;
        let mut ctl = self.open()?;
        let ep = ctl
            .state
            .workloads
            .get(&workload)
            .and_then(|w| w.endpoints.get(&network))
            .cloned()
            .ok_or_else(|| {
                CtlError::Refused(format!(
                    "endpoint {} ({workload}) is not on network {network} (see `l2ctl ps`)",
                    req.endpoint_id
                ))
            })?;
        if !req.sandbox_key.is_empty() {
            ctl.engine_joined(&workload, &req.sandbox_key)?;
        }
        let net = ctl
            .state
            .networks
            .get(&network)
            .ok_or_else(|| CtlError::Refused(format!("network {network} not found")))?;
        Ok(Answer::ok(&join_answer(&ep, net)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A driver whose state directory cannot be opened: every call that got as far as the
    /// state would say so.
    fn driver() -> DockerDriver {
        DockerDriver {
            state_dir: PathBuf::from("/proc/l2sw-no-such-dir"),
            socket: PathBuf::from("/proc/l2sw-no-such-socket"),
            host_netns: None,
        }
    }

    fn json(a: &Answer) -> Value {
        serde_json::from_str(&a.body).unwrap()
    }

    #[test]
    fn activation_and_capabilities_need_no_state() {
        let d = driver();
        let a = d.handle("/Plugin.Activate", b"");
        assert_eq!(a.status, 200);
        assert_eq!(
            json(&a),
            serde_json::json!({"Implements": ["NetworkDriver"]})
        );
        let a = d.handle("/NetworkDriver.GetCapabilities", b"{}");
        assert_eq!(
            json(&a),
            serde_json::json!({"Scope": "local", "ConnectivityScope": "local"})
        );
        for call in [
            "DiscoverNew",
            "DiscoverDelete",
            "ProgramExternalConnectivity",
            "RevokeExternalConnectivity",
            "Leave",
        ] {
            let a = d.handle(
                &format!("/NetworkDriver.{call}"),
                br#"{"NetworkID":"x","DiscoveryType":1}"#,
            );
            assert_eq!((a.status, json(&a)), (200, serde_json::json!({})), "{call}");
        }
    }

    #[test]
    fn unknown_calls_and_bad_bodies_are_errors_not_panics() {
        let d = driver();
        let a = d.handle("/IpamDriver.RequestPool", b"{}");
        assert_eq!(a.status, 404);
        assert!(
            json(&a)["Err"]
                .as_str()
                .unwrap()
                .contains("IpamDriver.RequestPool")
        );
        for body in [&b"{"[..], b"[1,2]", b"\xff\xfe", br#"{"NetworkID": 5}"#] {
            let a = d.handle("/NetworkDriver.CreateNetwork", body);
            assert_eq!(a.status, 400, "{}", a.body);
            assert!(json(&a)["Err"].as_str().unwrap().contains("not valid JSON"));
        }
        // Refused before the state is opened: the option is named.
        let a = d.handle(
            "/NetworkDriver.CreateNetwork",
            br#"{"NetworkID":"0123456789abcdef","Options":{"com.docker.network.generic":{"mtu":"9000"}}}"#,
        );
        assert_eq!(a.status, 500);
        assert!(
            json(&a)["Err"].as_str().unwrap().contains("-o mtu"),
            "{}",
            a.body
        );
        let a = d.handle(
            "/NetworkDriver.Join",
            br#"{"NetworkID":"zz","EndpointID":"e"}"#,
        );
        assert!(
            json(&a)["Err"].as_str().unwrap().contains("\"zz\""),
            "{}",
            a.body
        );
        // Past the checks, the state's error reaches Docker.
        let a = d.handle(
            "/NetworkDriver.DeleteNetwork",
            br#"{"NetworkID":"0123456789abcdef"}"#,
        );
        assert_eq!(a.status, 500);
        assert!(
            json(&a)["Err"]
                .as_str()
                .unwrap()
                .contains("l2sw-no-such-dir"),
            "{}",
            a.body
        );
    }

    #[test]
    fn what_is_gone_already_is_success_and_unknown_endpoints_are_named() {
        let dir = tempfile::tempdir().unwrap();
        // No daemon listens: these calls need none.
        let d = DockerDriver {
            state_dir: dir.path().join("state"),
            socket: dir.path().join("no-daemon.sock"),
            host_netns: None,
        };
        let ids = br#"{"NetworkID":"0123456789abcdef","EndpointID":"fedcba9876543210"}"#;
        for call in ["DeleteNetwork", "DeleteEndpoint", "Leave"] {
            let a = d.handle(&format!("/NetworkDriver.{call}"), ids);
            assert_eq!((a.status, a.body.as_str()), (200, "{}"), "{call}");
        }
        let a = d.handle("/NetworkDriver.EndpointOperInfo", ids);
        assert_eq!(json(&a), serde_json::json!({"Value": {}}));
        let a = d.handle(
            "/NetworkDriver.Join",
            br#"{"NetworkID":"0123456789abcdef","EndpointID":"fedcba9876543210","SandboxKey":"/x"}"#,
        );
        assert_eq!(a.status, 500);
        let why = json(&a)["Err"].as_str().unwrap().to_owned();
        assert!(
            why.contains("fedcba9876543210") && why.contains("docker-0123456789ab"),
            "{why}"
        );
        // The state was made (the predefined networks) and nothing of Docker's is in it.
        let ctl = d.open().unwrap();
        assert!(ctl.state.networks.keys().all(|n| !n.starts_with("docker-")));
        assert!(ctl.state.workloads.is_empty());
    }
}
