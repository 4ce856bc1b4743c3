//! Offload metadata through the engine on in-memory ports: a super-frame is judged by its
//! segments, floods and tag edits carry its metadata (checksum offsets moving with a pushed or
//! popped tag), and frames a port could not deliver whole are dropped by name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use l2sw::engine::Engine;
use l2sw::fwd::{DropReason, PortConfig, PortId, Switch, SwitchConfig, Vid, VidSet, VlanMode};
use l2sw::port::mem::MemPort;
use l2sw::port::{Port, TxFrame};
use l2sw::wire::{Csum, Fault, Gso, GsoKind, Meta, MetaError};

use l2sw::wire::Mac;
use l2sw::wire::craft::station;

/// An IPv4 TCP frame from station `src` to `dst` with `payload` bytes after a 20-byte IP
/// header and a 20-byte TCP header, tagged with `vid` if given.
fn tcp4(dst: Mac, src: Mac, vid: Option<u16>, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(v) = vid {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = u16::try_from(20 + 20 + payload).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let mut tcp = [0u8; 20];
    tcp[12] = 5 << 4;
    f.extend_from_slice(&tcp);
    f.resize(f.len() + payload, 0xab);
    f
}

/// TSO metadata for a frame whose TCP header starts at `start`.
fn tso(start: u16, size: u16) -> Meta {
    Meta {
        csum: Some(Csum { start, offset: 16 }),
        gso: Some(Gso {
            kind: GsoKind::Tcp4,
            size,
            ecn: false,
        }),
        hdr_len: start + 20,
        ..Meta::NONE
    }
}

struct Lab {
    engine: Engine,
    hosts: Vec<MemPort>,
    ids: Vec<PortId>,
}

impl Lab {
    /// A bridge of `vlans.len()` ports on mem ports, port `i` in VLAN mode `vlans[i]`.
    fn new(vlans: &[VlanMode]) -> Lab {
        let mut sw = Switch::new(SwitchConfig::bridge()).unwrap();
        let mut sides = Vec::new();
        let mut hosts = Vec::new();
        let mut ids = Vec::new();
        for (n, vlan) in vlans.iter().enumerate() {
            let (s, h) = MemPort::pair(&format!("sw{n}"), &format!("h{n}"));
            let id = sw
                .add_port(PortConfig::bridge(s.name()).with_vlan(vlan.clone()))
                .unwrap();
            sides.push((id, s));
            hosts.push(h);
            ids.push(id);
        }
        let mut engine = Engine::new(sw);
        for (id, s) in sides {
            engine.attach(id, Box::new(s)).unwrap();
        }
        Lab { engine, hosts, ids }
    }

    /// A VLAN-transparent bridge of `n` ports.
    fn transparent(n: usize) -> Lab {
        Lab::new(&vec![VlanMode::Transparent; n])
    }

    /// Host `from` sends `frame` with `meta`; the engine serves every port once.
    fn send(&mut self, from: usize, frame: &[u8], meta: Meta) {
        assert!(self.hosts[from].send_one(TxFrame { frame, meta }).unwrap());
        for id in self.ids.clone() {
            self.engine.service(id);
        }
    }

    fn drops(&self, port: usize, reason: DropReason) -> u64 {
        self.engine.port_counters(self.ids[port]).drops[reason as usize]
    }
}

#[test]
fn a_super_frame_within_the_mtu_floods_with_its_metadata() {
    let mut lab = Lab::transparent(3);
    // 40 segments of 1448 bytes: 58 KB, far over the 1518-byte largest frame.
    let frame = tcp4(station(9), station(1), None, 1448 * 40);
    let meta = tso(34, 1448);
    lab.send(0, &frame, meta);
    for h in [1, 2] {
        let got = lab.hosts[h].drain_with_meta();
        assert_eq!(got, vec![(frame.clone(), meta)], "host {h}: the flood copy");
    }
}

#[test]
fn a_super_frame_whose_segments_exceed_the_mtu_is_dropped_by_name() {
    let mut lab = Lab::transparent(2);
    let frame = tcp4(station(2), station(1), None, 9000 * 4);
    lab.send(0, &frame, tso(34, 9000));
    assert!(lab.hosts[1].drain().is_empty());
    assert_eq!(lab.drops(0, DropReason::SegmentOversize), 1);
    assert_eq!(lab.drops(0, DropReason::Oversize), 0);
}

#[test]
fn a_plain_frame_over_the_mtu_is_still_oversize() {
    let mut lab = Lab::transparent(2);
    let frame = tcp4(station(2), station(1), None, 3000);
    lab.send(0, &frame, Meta::NONE);
    // The same bytes with a checksum to complete but no segmentation: still a plain frame.
    let csum_only = Meta {
        csum: Some(Csum {
            start: 34,
            offset: 16,
        }),
        ..Meta::NONE
    };
    lab.send(0, &frame, csum_only);
    assert!(lab.hosts[1].drain().is_empty());
    assert_eq!(lab.drops(0, DropReason::Oversize), 2);
}

#[test]
fn a_pushed_or_popped_tag_moves_the_checksum_offsets() {
    let access = VlanMode::Access { vid: Vid::new(10) };
    let trunk = VlanMode::Trunk {
        allowed: VidSet::from_iter([Vid::new(10)]),
        native: None,
    };
    let mut lab = Lab::new(&[access, trunk]);
    // Access to trunk: a tag is pushed, the TCP header moves 4 bytes on.
    let untagged = tcp4(station(2), station(1), None, 1448 * 8);
    lab.send(0, &untagged, tso(34, 1448));
    let got = lab.hosts[1].drain_with_meta();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, tcp4(station(2), station(1), Some(10), 1448 * 8));
    assert_eq!(got[0].1, tso(38, 1448));
    // Trunk to access: the tag is popped, the offsets move back.
    let tagged = tcp4(station(1), station(2), Some(10), 1448 * 8);
    lab.send(1, &tagged, tso(38, 1448));
    let got = lab.hosts[0].drain_with_meta();
    assert_eq!(got, vec![(untagged_from(2, 1), tso(34, 1448))]);
}

fn untagged_from(src: u8, dst: u8) -> Vec<u8> {
    tcp4(station(dst), station(src), None, 1448 * 8)
}

#[test]
fn frames_a_port_could_not_deliver_whole_are_dropped_by_name() {
    let mut lab = Lab::transparent(2);
    let frame = tcp4(station(2), station(1), None, 100);
    lab.send(0, &frame, Meta::faulty(Fault::Truncated { len: 70_000 }));
    lab.send(
        0,
        &frame,
        Meta::faulty(Fault::BadHeader(MetaError::GsoType(9))),
    );
    assert!(lab.hosts[1].drain().is_empty());
    assert_eq!(lab.drops(0, DropReason::Truncated), 1);
    assert_eq!(lab.drops(0, DropReason::BadOffload), 1);
    let c = lab.engine.port_counters(lab.ids[0]);
    assert_eq!(c.rx, c.forwarded + c.drops.iter().sum::<u64>());
}
