//! `control`: arbitrary bytes, read as lossy UTF-8 and split into lines, through the control
//! socket's `l2sw::api::handle`, against no running network (`&[Handle]`) and against a set that
//! plans every network it is asked to add (configuration checks, switch and ports built, no
//! I/O). It must never panic, and every answer must be one line of JSON with `v` and `ok`, an
//! `error` and its `kind` exactly when not `ok`, that decodes back to itself.

#![no_main]

use std::cell::RefCell;

use l2sw::api::{self, ApiError, ErrorKind, NetworkSet, Request, Response};
use l2sw::config::{Config, NetworkSpec};
use l2sw::daemon::Handle;
use l2sw::engine::EngineStats;
use l2sw::fwd::Switch;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let planner = Planner::default();
    for line in text.lines() {
        well_formed(line, &api::handle(line, &[][..]));
        well_formed(line, &api::handle(line, &planner));
    }
});

/// A network set that runs nothing: `add` checks the network as the daemon would (its plan,
/// then the switch with every port) and remembers its name; `remove` forgets it.
#[derive(Default)]
struct Planner {
    names: RefCell<Vec<String>>,
}

impl NetworkSet for Planner {
    fn handles(&self) -> Vec<Handle> {
        Vec::new()
    }

    fn add(&self, spec: &NetworkSpec) -> Result<(), ApiError> {
        let invalid = |e: String| ApiError::invalid("network", e);
        let config = Config {
            networks: vec![spec.clone()],
        };
        let plan = config
            .plan()
            .map_err(|e| invalid(e.to_string()))?
            .remove(0);
        let mut sw = Switch::new(plan.switch).map_err(|e| invalid(e.to_string()))?;
        for (port, _) in plan.ports {
            sw.add_port(port).map_err(|e| invalid(e.to_string()))?;
        }
        let mut names = self.names.borrow_mut();
        if names.contains(&plan.name) {
            return Err(ApiError::new(
                ErrorKind::Exists {
                    name: plan.name.clone(),
                },
                format!("network {:?} already exists", plan.name),
            ));
        }
        names.push(plan.name);
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<EngineStats, ApiError> {
        let mut names = self.names.borrow_mut();
        let i = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| ApiError::no_network(name))?;
        names.remove(i);
        Ok(EngineStats::default())
    }
}

/// One line of JSON: `v` 1, `ok`, an `error` and a `kind` exactly when not ok; and, when the
/// request decoded, the line decodes back to the same answer.
fn well_formed(request: &str, r: &Response) {
    let line = r.to_line();
    assert!(
        line.ends_with('\n') && line.matches('\n').count() == 1,
        "{line:?}"
    );
    let v: Value = serde_json::from_str(&line).expect("a response is JSON");
    assert_eq!(v["v"], Value::from(api::VERSION), "{line}");
    assert_eq!(v["ok"], Value::from(r.is_ok()), "{line}");
    assert_eq!(v.get("error").is_some(), !r.is_ok(), "{line}");
    assert_eq!(v.get("kind").is_some(), !r.is_ok(), "{line}");
    if let Ok(req) = Request::from_line(request) {
        let back = Response::from_line(&line, &req).expect("an answer decodes");
        assert_eq!(&back, r, "{line}");
    }
}
