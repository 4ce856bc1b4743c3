//! `process`: an arbitrary switch (bridge, macvlan or ipvlan, with fuzzer-chosen ports) and an
//! arbitrary run of steps — batches of frames through `Switch::process`, time passing, FDB
//! ageing, ports leaving, filters and static entries changing — checking after every batch the
//! isolation and consistency invariants of `l2sw_fuzz::invariants` (nothing back out its
//! ingress without hairpin, no cross-VLAN delivery, private and isolated ports kept apart,
//! verdicts and TX queues agreeing) and the FDB's after every step.

#![no_main]

use std::time::Duration;

use l2sw::fwd::{Batch, PortId, Switch, Tick};
use l2sw_fuzz::invariants::{check_batch, check_switch, refusal_changes_nothing};
use l2sw_fuzz::scenario::{MAX_BATCH, MAX_STEPS, Scenario, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: Scenario| {
    let mut sw = s.build();
    let mut now = Tick(s.start);
    let mut batch = Batch::new();
    for step in s.steps.iter().take(MAX_STEPS) {
        match step {
            Step::Frames(frames) => {
                batch.clear();
                for f in frames.iter().take(MAX_BATCH) {
                    batch.push(f.port(&sw), f.bytes()).expect("a small batch");
                }
                sw.process(now, &mut batch);
                check_batch(&sw, &batch);
            }
            Step::Advance(t) => now = Tick(now.0.wrapping_add(u32::from(*t))),
            Step::AdvanceSecs(s) => now = Tick(now.0.wrapping_add(u32::from(*s) * 100)),
            Step::Age => {
                sw.age(now);
            }
            Step::RemovePort(n) => {
                if let Some(id) = nth_port(&sw, *n) {
                    sw.remove_port(id).expect("the port exists");
                }
            }
            Step::SetFilter(n, f) => {
                if let (Some(id), Some(f)) = (nth_port(&sw, *n), f.filter()) {
                    refusal_changes_nothing(&mut sw, |sw| sw.set_filter(id, f));
                }
            }
            Step::AddStatic {
                vid,
                mac,
                port,
                sticky,
            } => {
                // As the control socket does: only on a port the switch has.
                if let Some(id) = nth_port(&sw, *port)
                    && let Some(fdb) = sw.fdb_mut()
                {
                    let _ = fdb.add_static(now, vid.vid(), mac.mac(), id, *sticky);
                }
            }
            Step::SetAgeing(secs) => {
                if let Some(fdb) = sw.fdb_mut() {
                    fdb.set_ageing(Duration::from_secs(u64::from(*secs)));
                }
            }
        }
        check_switch(&sw, now);
    }
});

/// The switch's `n`-th port (modulo how many it has).
fn nth_port(sw: &Switch, n: u8) -> Option<PortId> {
    let count = sw.ports().count();
    (count > 0).then(|| sw.ports().nth(usize::from(n) % count).map(|(id, _)| id))?
}
