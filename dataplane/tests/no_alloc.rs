//! The core allocates nothing per frame: once a batch's queues have grown, `Switch::process`
//! over known unicast, floods, drops and learning of known stations makes no heap allocation.
//! Checked with a counting global allocator (this test binary only).

#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use l2sw::fwd::{
    Batch, MacvlanMode, PortConfig, PortId, Role, Switch, SwitchConfig, Tick, VidSet, VlanMode,
};
use l2sw::wire::{Mac, craft};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn station(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn frames() -> Vec<(usize, Vec<u8>)> {
    let uc = |d: u8, s: u8| craft::ethernet(station(d), station(s), 0x88b5, b"x");
    let mut v = Vec::new();
    for i in 0..8u8 {
        v.push((usize::from(i % 4), uc((i + 1) % 8, i)));
        v.push((
            usize::from(i % 4),
            craft::ethernet(Mac::BROADCAST, station(i), 0x88b5, b"x"),
        ));
        v.push((3, craft::tagged(&uc(i, 9), 10)));
        v.push((1, vec![0u8; 7]));
    }
    v
}

fn run<'a>(sw: &mut Switch, frames: &'a [(usize, Vec<u8>)], batch: &mut Batch<&'a [u8]>) {
    for chunk in frames.chunks(32) {
        batch.clear();
        for (p, f) in chunk {
            batch.push(PortId::new(*p).unwrap(), f.as_slice()).unwrap();
        }
        sw.process(Tick::from_secs(1), batch);
    }
}

fn steady_state_allocs(mut sw: Switch) -> usize {
    let frames = frames();
    let mut batch: Batch<&[u8]> = Batch::new();
    // Warm up: stations learned, queues grown.
    run(&mut sw, &frames, &mut batch);
    run(&mut sw, &frames, &mut batch);
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..100 {
        run(&mut sw, &frames, &mut batch);
    }
    ALLOCS.load(Ordering::Relaxed) - before
}

#[test]
fn process_allocates_nothing_per_frame() {
    let mut br = Switch::new(SwitchConfig::bridge()).unwrap();
    for i in 0..3 {
        br.add_port(PortConfig::bridge(format!("p{i}"))).unwrap();
    }
    let trunk = VlanMode::Trunk {
        allowed: [10].into_iter().collect::<VidSet>(),
        native: Some(1),
    };
    br.add_port(PortConfig::bridge("t").with_vlan(trunk))
        .unwrap();
    assert_eq!(steady_state_allocs(br), 0, "bridge");

    let mut mv = Switch::new(SwitchConfig::macvlan()).unwrap();
    mv.add_port(PortConfig::uplink("up").with_mac(station(100)))
        .unwrap();
    for (i, m) in [MacvlanMode::Bridge, MacvlanMode::Vepa, MacvlanMode::Private]
        .into_iter()
        .enumerate()
    {
        mv.add_port(PortConfig::macvlan(
            format!("s{i}"),
            station(i as u8 + 1),
            m,
        ))
        .unwrap();
    }
    mv.add_port(PortConfig::new("h", Role::Host).with_mac(station(100)))
        .unwrap();
    assert_eq!(steady_state_allocs(mv), 0, "macvlan");
}
