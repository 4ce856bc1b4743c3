//! `control`: arbitrary bytes, read as lossy UTF-8 and split into lines, through the control
//! socket's `l2sw::api::handle`, against no running network (`&[Handle]`) and against a set that
//! plans every network it is asked to add (configuration checks, switch and ports built, no
//! I/O). It must never panic, and every answer must be one line of JSON with `v` and `ok`, an
//! `error` exactly when not `ok`.

#![no_main]

use std::cell::RefCell;

use l2sw::api::{self, NetworkSet, Response};
use l2sw::config::{Config, NetworkSpec};
use l2sw::daemon::Handle;
use l2sw::fwd::Switch;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let planner = Planner::default();
    for line in text.lines() {
        well_formed(&api::handle(line, &[][..]));
        well_formed(&api::handle(line, &planner));
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

    fn add(&self, spec: &NetworkSpec) -> Result<(), String> {
        let config = Config {
            networks: vec![spec.clone()],
        };
        let plan = config.plan().map_err(|e| e.to_string())?.remove(0);
        let mut sw = Switch::new(plan.switch).map_err(|e| e.to_string())?;
        for (port, _) in plan.ports {
            sw.add_port(port).map_err(|e| e.to_string())?;
        }
        let mut names = self.names.borrow_mut();
        if names.contains(&plan.name) {
            return Err(format!("network {:?} already exists", plan.name));
        }
        names.push(plan.name);
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<Value, String> {
        let mut names = self.names.borrow_mut();
        let i = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("no network {name:?}"))?;
        names.remove(i);
        Ok(Value::Null)
    }
}

/// One line of JSON: `v` 1, `ok`, and an `error` exactly when not ok.
fn well_formed(r: &Response) {
    assert_eq!(r.ok, r.error.is_none(), "{r:?}");
    let line = r.to_line();
    assert!(
        line.ends_with('\n') && line.matches('\n').count() == 1,
        "{line:?}"
    );
    let v: Value = serde_json::from_str(&line).expect("a response is JSON");
    assert_eq!(v["v"], Value::from(api::VERSION), "{line}");
    assert_eq!(v["ok"], Value::from(r.ok), "{line}");
    assert_eq!(v.get("error").is_some(), !r.ok, "{line}");
}
