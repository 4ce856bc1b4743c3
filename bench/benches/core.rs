//! Criterion benchmarks of the forwarding core: `Switch::process` per mode on 64-byte frames in
//! batches of 32, and the FDB alone. Every figure is in frames (or lookups) per second.
//!
//! Everything is built outside the timed loops, lazily (a bench filtered out builds nothing, so
//! `cargo bench -p l2sw-bench -- macvlan` does not pay for the 1M-entry table), and checked once
//! before timing: each case asserts the rule that decides its frames, so a bench cannot silently
//! measure a drop or a flood instead of what its name says.
//!
//! Two kinds of `process/bridge` case:
//! - `4k`, `1m`, `broadcast`: one batch of 32 frames built once and processed again and again,
//!   as asked; it touches only 64 FDB entries, which stay in L1, so `1m` measures a large table
//!   with a hot working set.
//! - `4k-rotating`, `1m-rotating`: the same frames drawn in turn from a pool that touches every
//!   station (`n / 2` frames, each station once as source or destination), so the table's size
//!   and cache misses show. One `Batch<&[u8]>` is reused and refilled with 32 references per
//!   iteration (`clear` + 32 `push`es, as a driver refills it from its RX ring), which is timed
//!   too. The frames are as cold as the entries (the 1M pool is 32 MB).
//!
//! `fdb/*` walk every entry of the table in a fixed permuted order, 256 operations an iteration.
//!
//! `storm/*` price storm control on the 4K bridge: the broadcast batch (every frame a flood,
//! charged to its ingress port's bucket) with limits off, on but never reached, and exceeded
//! (every frame dropped before any flood is queued); and the known-unicast batch with limits
//! off and on (never charged: a bit test and a rule match).
//!
//! CI smoke test (each selected bench run once, no 1M table, well under a second once built):
//! `cargo bench -p l2sw-bench --bench core -- --test '4k|broadcast|macvlan|ipvlan|storm'`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use l2sw::fwd::{
    Batch, Decision, DropReason, Fdb, IpvlanConfig, Learned, MacvlanMode, PortConfig, PortId,
    StormControl, Switch, SwitchConfig, Verdict, Vid, Why,
};
use l2sw::trace::Tracer;
use l2sw::wire::{Mac, craft};
use l2sw_bench::{
    BATCH, Frame, NOW, bridge, bytes_per_entry, ethernet, external, fdb, known_unicast,
    learn_stations, permute, port_of, station, to_frame,
};

const K4: u32 = 4096;
const M1: u32 = 1 << 20;
/// FDB operations per iteration of the `fdb` benches.
const OPS: usize = 256;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .nresamples(20_000)
}

/// Asserts that every frame of the processed `batch` was decided by `why` and passes `ok`.
fn check<B: AsRef<[u8]>>(case: &str, batch: &Batch<B>, why: Why, ok: impl Fn(&Decision) -> bool) {
    assert_eq!(
        batch.decisions().len(),
        batch.len(),
        "{case}: undecided frames"
    );
    for (i, d) in batch.decisions().iter().enumerate() {
        assert!(
            d.why == why && ok(d),
            "{case}: frame {i} decided {d:?}, expected {why:?}"
        );
    }
}

/// A batch holding `frames` (owned, built once).
fn owned(frames: impl IntoIterator<Item = (PortId, Frame)>) -> Batch<Vec<u8>> {
    let mut batch = Batch::with_capacity(BATCH);
    for (p, f) in frames {
        batch.push(p, f.to_vec()).unwrap();
    }
    assert_eq!(batch.len(), BATCH);
    batch
}

/// Steady state: the same batch again and again (`process` resets its outputs itself).
fn run_fixed(b: &mut Bencher<'_>, sw: &mut Switch, batch: &mut Batch<Vec<u8>>) {
    b.iter(|| {
        sw.process(NOW, batch);
        black_box(&*batch);
    });
}

/// A pool of frames drawn 32 at a time, and where the next draw starts.
struct Rotating {
    pool: Vec<(PortId, Frame)>,
    at: usize,
}

/// One reused batch refilled with the next 32 frames of the pool per iteration.
fn run_rotating(b: &mut Bencher<'_>, sw: &mut Switch, rot: &mut Rotating) {
    let Rotating { pool, at } = rot;
    assert_eq!(pool.len() % BATCH, 0);
    // Criterion calls this once per sample: the batch is made here, and its queues grown by
    // one untimed round, so that nothing allocates inside the timed loop.
    let mut batch: Batch<&[u8]> = Batch::with_capacity(BATCH);
    for (p, f) in &pool[*at..*at + BATCH] {
        batch.push(*p, f.as_slice()).unwrap();
    }
    sw.process(NOW, &mut batch);
    b.iter(|| {
        batch.clear();
        for (p, f) in &pool[*at..*at + BATCH] {
            let _ = batch.push(*p, f.as_slice());
        }
        *at = (*at + BATCH) % pool.len();
        sw.process(NOW, &mut batch);
        black_box(&batch);
    });
}

/// A 4-port bridge that has learned stations `0..n`.
struct Learned4 {
    sw: Switch,
    ports: Vec<PortId>,
    n: u32,
}

impl Learned4 {
    fn new(n: u32) -> Learned4 {
        let (mut sw, ports) = bridge(4).unwrap();
        learn_stations(&mut sw, &ports, n);
        let fdb = sw.fdb().unwrap();
        assert_eq!((fdb.len(), fdb.n_learned()), (n as usize, n));
        eprintln!(
            "bridge with {n} learned stations: FDB {} bytes, {:.1} bytes/entry",
            fdb.memory_bytes(),
            bytes_per_entry(fdb)
        );
        Learned4 { sw, ports, n }
    }

    fn is_known_unicast(d: &Decision) -> bool {
        matches!(d.verdict, Verdict::Unicast(_)) && d.learned == Some(Learned::Refreshed)
    }

    /// Known unicast frames 0..32: every frame one refresh and one lookup, 64 distinct stations.
    fn fixed(&mut self, case: &str) -> Batch<Vec<u8>> {
        let mut batch = owned((0..BATCH as u32).map(|k| known_unicast(&self.ports, self.n, k)));
        self.sw.process(NOW, &mut batch);
        check(case, &batch, Why::BrKnownUnicast, Self::is_known_unicast);
        batch
    }

    /// Known unicast frames over every station (each once as source or destination).
    fn rotating(&mut self, case: &str) -> Rotating {
        let pool: Vec<(PortId, Frame)> = (0..self.n / 2)
            .map(|k| known_unicast(&self.ports, self.n, k))
            .collect();
        // Check the whole pool once, a batch at a time.
        let mut batch: Batch<&[u8]> = Batch::with_capacity(BATCH);
        for chunk in pool.chunks(BATCH) {
            batch.clear();
            for (p, f) in chunk {
                batch.push(*p, f.as_slice()).unwrap();
            }
            self.sw.process(NOW, &mut batch);
            check(case, &batch, Why::BrKnownUnicast, Self::is_known_unicast);
        }
        drop(batch);
        Rotating { pool, at: 0 }
    }

    /// Broadcasts from known stations, not yet processed.
    fn broadcast_batch(&self) -> Batch<Vec<u8>> {
        owned((0..BATCH as u32).map(|k| {
            let s = permute(k, self.n);
            (
                port_of(&self.ports, s),
                ethernet(Mac::BROADCAST, station(s), craft::ETHERTYPE_EXPERIMENTAL),
            )
        }))
    }

    /// Broadcasts from known stations: a refresh each, flooded to the 3 other ports + host.
    fn broadcast(&mut self, case: &str) -> Batch<Vec<u8>> {
        let mut batch = self.broadcast_batch();
        self.sw.process(NOW, &mut batch);
        check(case, &batch, Why::BrFloodBroadcast, |d| {
            d.verdict.ports().len() == 3
                && d.verdict.to_host()
                && d.learned == Some(Learned::Refreshed)
        });
        batch
    }

    /// Sets the same storm-control limits on every port.
    fn set_storm(&mut self, storm: StormControl) {
        for p in &self.ports {
            self.sw.set_storm(*p, storm).unwrap();
        }
    }
}

// Criterion calls a bench's closure once per sample; everything is built on the first call
// (`get_or_insert_with`) and only if the bench is selected.
fn process_bridge(c: &mut Criterion) {
    let mut g = c.benchmark_group("process/bridge");
    g.throughput(Throughput::Elements(BATCH as u64));

    let mut k4: Option<Learned4> = None;
    let (mut fixed, mut rot, mut bcast) = (None, None, None);
    g.bench_function("4k", |b| {
        let l = k4.get_or_insert_with(|| Learned4::new(K4));
        let batch = fixed.get_or_insert_with(|| l.fixed("bridge/4k"));
        run_fixed(b, &mut l.sw, batch);
    });
    g.bench_function("4k-rotating", |b| {
        let l = k4.get_or_insert_with(|| Learned4::new(K4));
        let r = rot.get_or_insert_with(|| l.rotating("bridge/4k-rotating"));
        run_rotating(b, &mut l.sw, r);
    });
    g.bench_function("broadcast", |b| {
        let l = k4.get_or_insert_with(|| Learned4::new(K4));
        let batch = bcast.get_or_insert_with(|| l.broadcast("bridge/broadcast"));
        run_fixed(b, &mut l.sw, batch);
    });
    drop((k4, fixed, rot, bcast));

    let mut m1: Option<Learned4> = None;
    let (mut fixed, mut rot) = (None, None);
    g.bench_function("1m", |b| {
        let l = m1.get_or_insert_with(|| Learned4::new(M1));
        let batch = fixed.get_or_insert_with(|| l.fixed("bridge/1m"));
        run_fixed(b, &mut l.sw, batch);
    });
    g.bench_function("1m-rotating", |b| {
        let l = m1.get_or_insert_with(|| Learned4::new(M1));
        let r = rot.get_or_insert_with(|| l.rotating("bridge/1m-rotating"));
        run_rotating(b, &mut l.sw, r);
    });
    g.finish();
}

/// What tracing costs: the 4K bridge batch with the engine's trace hook off (one test of an
/// empty `Option` per batch) and on (headers and decision kept per frame, words made later
/// when read; the queue full, so the oldest is dropped per new one: a reader slower than the
/// traffic).
fn trace(c: &mut Criterion) {
    let mut g = c.benchmark_group("trace");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut l = Learned4::new(K4);
    let mut batch = l.fixed("trace");
    for (name, on) in [("off", false), ("on", true)] {
        let mut tracer = on.then(|| Tracer::new(None, u64::MAX));
        g.bench_function(name, |b| {
            b.iter(|| {
                l.sw.process(NOW, &mut batch);
                if let Some(t) = black_box(tracer.as_mut()) {
                    t.record_batch(&batch);
                }
                black_box(&batch);
            });
        });
    }
    g.finish();
}

/// Every class limited to `rate` frames a second.
fn storm_limits(rate: u32) -> StormControl {
    StormControl {
        broadcast: rate,
        unknown_unicast: rate,
        multicast: rate,
    }
}

/// What storm control costs (see the module's notes). The clock is constant, so a bucket never
/// refills: `on` has room for 2^32 frames (never reached in a run), `over-limit` for one.
fn storm(c: &mut Criterion) {
    let mut g = c.benchmark_group("storm");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut k4: Option<Learned4> = None;
    for (name, storm) in [
        ("off", StormControl::OFF),
        ("on", storm_limits(u32::MAX)),
        ("over-limit", storm_limits(1)),
    ] {
        g.bench_function(format!("broadcast/{name}"), |b| {
            let l = k4.get_or_insert_with(|| Learned4::new(K4));
            l.set_storm(storm);
            let case = format!("storm/broadcast/{name}");
            let mut batch = if storm.broadcast == 1 {
                // The first frame takes the one-frame burst; from then on all are dropped.
                let mut batch = l.broadcast_batch();
                l.sw.process(NOW, &mut batch);
                l.sw.process(NOW, &mut batch);
                check(&case, &batch, Why::StormControl, |d| {
                    d.verdict == Verdict::Drop(DropReason::StormBroadcast)
                });
                batch
            } else {
                l.broadcast(&case)
            };
            run_fixed(b, &mut l.sw, &mut batch);
        });
    }
    for (name, storm) in [("off", StormControl::OFF), ("on", storm_limits(1))] {
        g.bench_function(format!("known-unicast/{name}"), |b| {
            let l = k4.get_or_insert_with(|| Learned4::new(K4));
            l.set_storm(storm);
            let mut batch = l.fixed(&format!("storm/known-unicast/{name}"));
            run_fixed(b, &mut l.sw, &mut batch);
        });
    }
    g.finish();
}

/// Sub-interface `i`'s MAC: 02:aa:00:00:00:ii.
fn sub_mac(i: usize) -> Mac {
    Mac([0x02, 0xaa, 0, 0, 0, i as u8])
}

const UPLINK_MAC: Mac = Mac([0x02, 0xbb, 0, 0, 0, 1]);
const SUBS: usize = 4;

/// An uplink and 4 sub-interfaces in `mode`.
fn macvlan(mode: MacvlanMode) -> (Switch, PortId, Vec<PortId>) {
    let mut sw = Switch::new(SwitchConfig::macvlan()).unwrap();
    let up = sw
        .add_port(PortConfig::uplink("up").with_mac(UPLINK_MAC))
        .unwrap();
    let subs = (0..SUBS)
        .map(|i| {
            sw.add_port(PortConfig::macvlan(format!("mv{i}"), sub_mac(i), mode))
                .unwrap()
        })
        .collect();
    (sw, up, subs)
}

/// A bench of `process` on one batch built (and checked) by `build` on the first call.
fn fixed_case(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    build: impl Fn() -> (Switch, Batch<Vec<u8>>),
) {
    let mut case = None;
    g.bench_function(name, |b| {
        let (sw, batch) = case.get_or_insert_with(&build);
        run_fixed(b, sw, batch);
    });
}

fn process_macvlan(c: &mut Criterion) {
    let mut g = c.benchmark_group("process/macvlan");
    g.throughput(Throughput::Elements(BATCH as u64));

    fixed_case(&mut g, "uplink-to-sub", || {
        let (mut sw, up, subs) = macvlan(MacvlanMode::Bridge);
        // Unicast from stations beyond the uplink to each sub-interface in turn.
        let mut batch = owned((0..BATCH).map(|k| {
            let f = ethernet(
                sub_mac(k % SUBS),
                external(k as u32),
                craft::ETHERTYPE_EXPERIMENTAL,
            );
            (up, f)
        }));
        sw.process(NOW, &mut batch);
        check(
            "macvlan/uplink-to-sub",
            &batch,
            Why::MvToSub,
            |d| matches!(d.verdict, Verdict::Unicast(p) if subs.contains(&p)),
        );
        (sw, batch)
    });

    fixed_case(&mut g, "bridge-local", || {
        let (mut sw, _, subs) = macvlan(MacvlanMode::Bridge);
        // Each bridge-mode sub-interface to the next: delivered locally, never on the wire.
        let mut batch = owned((0..BATCH).map(|k| {
            let (from, to) = (k % SUBS, (k + 1) % SUBS);
            (
                subs[from],
                ethernet(sub_mac(to), sub_mac(from), craft::ETHERTYPE_EXPERIMENTAL),
            )
        }));
        sw.process(NOW, &mut batch);
        check(
            "macvlan/bridge-local",
            &batch,
            Why::MvBridgeLocal,
            |d| matches!(d.verdict, Verdict::Unicast(p) if subs.contains(&p)),
        );
        (sw, batch)
    });

    fixed_case(&mut g, "vepa-to-uplink", || {
        let (mut sw, up, subs) = macvlan(MacvlanMode::Vepa);
        // VEPA sub-interfaces to stations beyond the uplink: everything leaves by the uplink.
        let mut batch = owned((0..BATCH).map(|k| {
            let from = k % SUBS;
            let f = ethernet(
                external(k as u32),
                sub_mac(from),
                craft::ETHERTYPE_EXPERIMENTAL,
            );
            (subs[from], f)
        }));
        sw.process(NOW, &mut batch);
        check("macvlan/vepa-to-uplink", &batch, Why::MvToUplink, |d| {
            d.verdict == Verdict::Unicast(up)
        });
        (sw, batch)
    });
    g.finish();
}

fn slave_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1 + i as u8)
}

fn process_ipvlan(c: &mut Criterion) {
    let mut g = c.benchmark_group("process/ipvlan");
    g.throughput(Throughput::Elements(BATCH as u64));

    fixed_case(&mut g, "uplink-to-slave", || {
        let mut sw = Switch::new(SwitchConfig::ipvlan(IpvlanConfig::default())).unwrap();
        let up = sw
            .add_port(PortConfig::uplink("up").with_mac(UPLINK_MAC))
            .unwrap();
        let slaves: Vec<PortId> = (0..SUBS)
            .map(|i| {
                let addrs = vec![IpAddr::V4(slave_ip(i))];
                sw.add_port(PortConfig::ipvlan(format!("ipvl{i}"), addrs))
                    .unwrap()
            })
            .collect();
        // IPv4/UDP to the shared MAC from stations beyond the uplink, demultiplexed by IP.
        let mut batch = owned((0..BATCH).map(|k| {
            let src_ip = Ipv4Addr::new(192, 0, 2, 1 + k as u8);
            let f = craft::ipv4_udp(
                UPLINK_MAC,
                external(k as u32),
                src_ip,
                slave_ip(k % SUBS),
                b"l2sw",
            );
            assert_eq!(f.len(), 60);
            (up, to_frame(&f))
        }));
        sw.process(NOW, &mut batch);
        check(
            "ipvlan/uplink-to-slave",
            &batch,
            Why::IpDemux,
            |d| matches!(d.verdict, Verdict::Unicast(p) if slaves.contains(&p)),
        );
        (sw, batch)
    });
    g.finish();
}

/// A table of `n` learned stations, every station's (MAC, port) in permuted order, and where
/// the next walk starts.
struct Table {
    fdb: Fdb,
    keys: Vec<(Mac, PortId)>,
    at: usize,
}

impl Table {
    fn new(n: u32) -> Table {
        let (mut fdb, ports) = fdb(n);
        assert_eq!(fdb.len(), n as usize);
        eprintln!(
            "fdb with {n} entries: {} bytes, {:.1} bytes/entry",
            fdb.memory_bytes(),
            bytes_per_entry(&fdb)
        );
        let keys: Vec<(Mac, PortId)> = (0..n)
            .map(|i| {
                let s = permute(i, n);
                (station(s), port_of(&ports, s))
            })
            .collect();
        for &(m, p) in &keys {
            assert_eq!(fdb.lookup(NOW, Vid::UNAWARE, m), Some((p, false)));
            assert_eq!(fdb.learn(NOW, Vid::UNAWARE, m, p), Learned::Refreshed);
        }
        Table { fdb, keys, at: 0 }
    }

    /// `OPS` hits per iteration, walking every entry in permuted order.
    fn bench_lookup(&mut self, b: &mut Bencher<'_>) {
        let Table { fdb, keys, at } = self;
        b.iter(|| {
            let mut sum = 0usize;
            for &(m, _) in &keys[*at..*at + OPS] {
                if let Some((p, _)) = fdb.lookup(NOW, Vid::UNAWARE, black_box(m)) {
                    sum += p.index();
                }
            }
            *at = (*at + OPS) % keys.len();
            sum
        });
    }

    /// `OPS` refreshes (existing entry, same port) per iteration, walking every entry.
    fn bench_refresh(&mut self, b: &mut Bencher<'_>) {
        let Table { fdb, keys, at } = self;
        b.iter(|| {
            let mut refreshed = 0u32;
            for &(m, p) in &keys[*at..*at + OPS] {
                refreshed +=
                    u32::from(fdb.learn(NOW, Vid::UNAWARE, black_box(m), p) == Learned::Refreshed);
            }
            *at = (*at + OPS) % keys.len();
            refreshed
        });
    }
}

fn fdb_alone(c: &mut Criterion) {
    let mut g = c.benchmark_group("fdb");
    g.throughput(Throughput::Elements(OPS as u64));
    for (name, n) in [("4k", K4), ("1m", M1)] {
        let mut t: Option<Table> = None;
        g.bench_function(format!("lookup/{name}"), |b| {
            t.get_or_insert_with(|| Table::new(n)).bench_lookup(b);
        });
        g.bench_function(format!("learn-refresh/{name}"), |b| {
            t.get_or_insert_with(|| Table::new(n)).bench_refresh(b);
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = process_bridge, process_macvlan, process_ipvlan, fdb_alone, trace, storm
}
criterion_main!(benches);
