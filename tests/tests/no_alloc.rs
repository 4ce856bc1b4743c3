//! The core allocates nothing per frame: once a batch's queues have grown, `Switch::process`
//! over known unicast, floods, drops and learning of known stations makes no heap allocation;
//! nor do storm control (buckets charged and emptied), port security (new sources refused) and
//! MAC moves (flaps detected and kept in the FDB's ring). Checked with a counting global
//! allocator (this test binary only).

#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use l2sw::fwd::{
    Batch, BridgePort, DropReason, FLAP_RING, MacvlanMode, PortConfig, PortId, Role, StormControl,
    Switch, SwitchConfig, Tick, Verdict, Vid, VidSet, VlanMode,
};
use l2sw::wire::{Mac, craft};

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness's own threads (printing another
    /// test's result, say) allocate whenever they like, and must not count.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

use l2sw::wire::craft::station;

fn frames() -> Vec<(usize, Vec<u8>)> {
    let uc =
        |d: u8, s: u8| craft::ethernet(station(d), station(s), craft::ETHERTYPE_EXPERIMENTAL, b"x");
    let mut v = Vec::new();
    for i in 0..8u8 {
        v.push((usize::from(i % 4), uc((i + 1) % 8, i)));
        v.push((
            usize::from(i % 4),
            craft::ethernet(
                Mac::BROADCAST,
                station(i),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            ),
        ));
        v.push((3, craft::tagged(&uc(i, 9), 10)));
        v.push((1, vec![0u8; 7]));
    }
    v
}

/// Runs `frames` through `sw` in batches of 32, one tick per batch from `now` on; returns the
/// drops by reason.
fn run<'a>(
    sw: &mut Switch,
    frames: &'a [(usize, Vec<u8>)],
    batch: &mut Batch<&'a [u8]>,
    now: &mut Tick,
) -> [u64; DropReason::COUNT] {
    let mut drops = [0; DropReason::COUNT];
    for chunk in frames.chunks(32) {
        batch.clear();
        for (p, f) in chunk {
            batch.push(PortId::new(*p).unwrap(), f.as_slice()).unwrap();
        }
        sw.process(*now, batch);
        *now = Tick(now.0 + 1);
        for d in batch.decisions() {
            if let Verdict::Drop(r) = d.verdict {
                drops[r as usize] += 1;
            }
        }
    }
    drops
}

/// Allocations over 100 rounds of `frames` after two rounds of warm-up, and the drops by
/// reason seen in those rounds.
fn steady_state(sw: &mut Switch, frames: &[(usize, Vec<u8>)]) -> (usize, [u64; DropReason::COUNT]) {
    let mut batch: Batch<&[u8]> = Batch::new();
    let mut now = Tick::from_secs(1);
    // Warm up: stations learned, queues grown.
    run(sw, frames, &mut batch, &mut now);
    run(sw, frames, &mut batch, &mut now);
    let before = allocs();
    let mut drops = [0; DropReason::COUNT];
    for _ in 0..100 {
        let d = run(sw, frames, &mut batch, &mut now);
        drops.iter_mut().zip(d).for_each(|(t, n)| *t += n);
    }
    (allocs() - before, drops)
}

fn steady_state_allocs(mut sw: Switch) -> usize {
    steady_state(&mut sw, &frames()).0
}

#[test]
fn process_allocates_nothing_per_frame() {
    let mut br = Switch::new(SwitchConfig::bridge()).unwrap();
    for i in 0..3 {
        br.add_port(PortConfig::bridge(format!("p{i}"))).unwrap();
    }
    let trunk = VlanMode::Trunk {
        allowed: [Vid::new(10)].into_iter().collect::<VidSet>(),
        native: Some(Vid::new(1)),
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

#[test]
fn storm_control_port_security_and_flaps_allocate_nothing_per_frame() {
    let storm = StormControl {
        broadcast: 50,
        unknown_unicast: 50,
        multicast: 50,
    };
    let mut br = Switch::new(SwitchConfig::bridge()).unwrap();
    for i in 0..4 {
        // Port security on port 0 only: the flapping stations below move freely.
        let port = BridgePort {
            max_learned: if i == 0 { 4 } else { 0 },
            ..BridgePort::default()
        };
        br.add_port(PortConfig::new(format!("p{i}"), Role::Bridge(port)).with_storm(storm))
            .unwrap();
    }
    let mut br_frames = frames();
    for i in 0..64u8 {
        // Sources 20.. on port 0, over its cap of 4: refused every time.
        br_frames.push((
            0,
            craft::ethernet(
                station(1),
                station(20 + i),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            ),
        ));
        // Stations 90..98 on ports 1 and 2 in turn: moves, flaps.
        br_frames.push((
            1 + usize::from(i / 8 % 2),
            craft::ethernet(
                Mac::BROADCAST,
                station(90 + i % 8),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            ),
        ));
        // Unknown unicast and multicast floods, charged to their buckets.
        br_frames.push((
            3,
            craft::ethernet(
                station(200),
                station(3),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            ),
        ));
        br_frames.push((
            3,
            craft::ethernet(
                Mac([1, 0, 0x5e, 0, 0, 1]),
                station(3),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            ),
        ));
    }
    let (allocs, drops) = steady_state(&mut br, &br_frames);
    assert_eq!(allocs, 0, "bridge with storm control and port security");
    for r in [
        DropReason::PortSecurity,
        DropReason::StormBroadcast,
        DropReason::StormUnknownUnicast,
        DropReason::StormMulticast,
    ] {
        assert!(drops[r as usize] > 0, "{r:?} never exercised");
    }
    // Enough flaps to wrap the ring of recent ones.
    assert!(br.fdb().unwrap().stats().flaps > FLAP_RING as u64);

    let mut mv = Switch::new(SwitchConfig::macvlan()).unwrap();
    mv.add_port(
        PortConfig::uplink("up")
            .with_mac(station(100))
            .with_storm(storm),
    )
    .unwrap();
    for i in 0..3u8 {
        let sub = PortConfig::macvlan(format!("s{i}"), station(i + 1), MacvlanMode::Bridge);
        mv.add_port(sub.with_storm(storm)).unwrap();
    }
    let mut mv_frames = frames();
    mv_frames.extend((0..64).map(|_| {
        (
            1,
            craft::ethernet(
                Mac::BROADCAST,
                station(2),
                craft::ETHERTYPE_EXPERIMENTAL,
                b"x",
            ),
        )
    }));
    let (allocs, drops) = steady_state(&mut mv, &mv_frames);
    assert_eq!(allocs, 0, "macvlan with storm control");
    assert!(drops[DropReason::StormBroadcast as usize] > 0);
}
