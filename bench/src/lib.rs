//! Fixtures shared by the l2sw benchmarks: station addresses, a fixed permutation that spreads
//! traffic over the forwarding table, 64-byte frames, and learning bridges brought to steady
//! state (every station already learned) before anything is timed; and [`e2e`], the
//! end-to-end harness behind `l2bench`.

pub mod e2e;

use l2sw::fwd::{Batch, ConfigError, Fdb, PortConfig, PortId, Switch, SwitchConfig, Tick, Vid};
use l2sw::wire::Mac;
use l2sw::wire::craft::{self, ETH_ZLEN};

/// The clock of every benchmark: constant, so no entry ever expires and a refresh never writes.
pub const NOW: Tick = Tick::from_secs(1);

/// Frames per [`Switch::process`] call.
pub const BATCH: usize = 32;

/// A 60-byte frame: 64 bytes on the wire with the FCS.
pub type Frame = [u8; ETH_ZLEN];

/// Station `i`: 02:00:ii:ii:ii:ii (locally administered unicast, never zero).
pub fn station(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

/// Station `i` beyond an uplink: 02:ee:ii:ii:ii:ii.
pub fn external(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0xee, b[0], b[1], b[2], b[3]])
}

/// An odd multiplier (the 32-bit golden ratio): `i * STRIDE mod 2^k` permutes `0..2^k`.
const STRIDE: u32 = 0x9e37_79b1;

/// The `i`-th element of a fixed permutation of `0..n`, `n` a power of two: consecutive `i` land
/// far apart. Two consecutive elements differ by `STRIDE` (odd) modulo `n`, so for `n >= 4` they
/// are never equal modulo 4, i.e. never on the same port of a 4-port bridge where station `s`
/// sits on port `s % 4`.
pub fn permute(i: u32, n: u32) -> u32 {
    debug_assert!(n.is_power_of_two());
    i.wrapping_mul(STRIDE) & (n - 1)
}

/// A 60-byte frame from `src` to `dst` with `ethertype`, padded as a NIC sends it.
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16) -> Frame {
    to_frame(&craft::ethernet(dst, src, ethertype, b"l2sw"))
}

/// The first 60 bytes of `v` (zero-padded).
pub fn to_frame(v: &[u8]) -> Frame {
    let mut f = [0u8; ETH_ZLEN];
    let n = v.len().min(ETH_ZLEN);
    f[..n].copy_from_slice(&v[..n]);
    f
}

/// A learning bridge with `n` ports named `p0`, `p1`, ...
pub fn bridge(n: usize) -> Result<(Switch, Vec<PortId>), ConfigError> {
    let mut sw = Switch::new(SwitchConfig::bridge())?;
    let ports = (0..n)
        .map(|i| sw.add_port(PortConfig::bridge(format!("p{i}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((sw, ports))
}

/// The port station `s` sits on.
pub fn port_of(ports: &[PortId], s: u32) -> PortId {
    ports[s as usize % ports.len()]
}

/// Makes the bridge learn stations `0..n`, station `s` on `port_of(ports, s)`, the way a real
/// one does: each station sends one broadcast from its port (processed in large batches).
pub fn learn_stations(sw: &mut Switch, ports: &[PortId], n: u32) {
    if let Some(fdb) = sw.fdb_mut() {
        fdb.reserve(n as usize);
    }
    const CHUNK: u32 = 1024;
    let mut batch: Batch<Frame> = Batch::with_capacity(CHUNK as usize);
    for first in (0..n).step_by(CHUNK as usize) {
        batch.clear();
        for s in first..n.min(first + CHUNK) {
            // Never full: the batch holds up to `Batch::MAX` frames.
            let _ = batch.push(
                port_of(ports, s),
                ethernet(Mac::BROADCAST, station(s), craft::ETHERTYPE_EXPERIMENTAL),
            );
        }
        sw.process(NOW, &mut batch);
    }
}

/// Known unicast `k` over `n` learned stations (`n` a power of two, at least 4): from
/// `permute(2k)` to `permute(2k + 1)`, which are always on different ports of a 4-port bridge.
/// Returns the ingress port and the frame.
pub fn known_unicast(ports: &[PortId], n: u32, k: u32) -> (PortId, Frame) {
    let s = permute(2 * k, n);
    let d = permute(2 * k + 1, n);
    (
        port_of(ports, s),
        ethernet(station(d), station(s), craft::ETHERTYPE_EXPERIMENTAL),
    )
}

/// A table with stations `0..n` learned on ports `s % 4`, built with [`Fdb::learn`].
pub fn fdb(n: u32) -> (Fdb, Vec<PortId>) {
    let ports: Vec<PortId> = (0..4).filter_map(PortId::new).collect();
    let mut fdb = Fdb::new();
    fdb.reserve(n as usize);
    for s in 0..n {
        fdb.learn(NOW, Vid::UNAWARE, station(s), port_of(&ports, s));
    }
    (fdb, ports)
}

/// Bytes of table per entry.
pub fn bytes_per_entry(fdb: &Fdb) -> f64 {
    fdb.memory_bytes() as f64 / fdb.len().max(1) as f64
}
