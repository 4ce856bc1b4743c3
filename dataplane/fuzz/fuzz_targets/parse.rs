//! `parse`: arbitrary bytes through l2sw's wire parsing, which must never panic and must agree
//! with the bytes it read: `FrameInfo::parse` (at several size limits), the L3 address
//! extraction ipvlan demultiplexes on, VLAN classification and every egress tag edit, the
//! one-line `Summary`, the VXLAN header (its parse agrees with the bytes, a header built for
//! the VNI read parses back, the outer source port stays in range), and (for UTF-8 input) MAC
//! address text with its round trip.

#![no_main]

use l2sw::fwd::{TagOp, Vid, VlanMode};
use l2sw::wire::vxlan::{FLAG_I, SRC_PORTS, source_port};
use l2sw::wire::{
    FrameInfo, Mac, Side, Summary, TPID_8021AD, TPID_8021Q, Vni, VxlanError, VxlanHeader, l3_addr,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for max in [usize::from(u16::MAX), 1518, 64] {
        if let Ok(info) = FrameInfo::parse(data, max) {
            agrees_with_bytes(data, &info);
            for side in [Side::Source, Side::Destination] {
                let _ = l3_addr(data, &info, side);
            }
            edits_round_trip(data, &info);
        }
    }
    vxlan_agrees_with_bytes(data);
    let line = Summary::new(data).to_string();
    assert!(!line.contains('\n'), "a summary is one line: {line:?}");
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(mac) = text.parse::<Mac>()
    {
        assert_eq!(mac.to_string().parse::<Mac>(), Ok(mac), "{text:?}");
        assert_eq!(Mac::from_key(mac.key()), mac);
    }
});

/// What `FrameInfo` reports is what the bytes say.
fn agrees_with_bytes(data: &[u8], info: &FrameInfo) {
    let be16 = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
    assert_eq!(usize::try_from(info.len).ok(), Some(data.len()));
    assert_eq!(Mac::from_slice(data), Some(info.dst()));
    assert_eq!(Mac::from_slice(&data[6..]), Some(info.src()));
    let tags = [info.outer, info.inner].into_iter().flatten().count();
    assert!(
        info.inner.is_none() || info.outer.is_some(),
        "inner tag without outer"
    );
    assert_eq!(usize::from(info.l3_offset), 14 + 4 * tags);
    assert!(usize::from(info.l3_offset) <= data.len());
    assert_eq!(info.ethertype.0, be16(usize::from(info.l3_offset) - 2));
    for (i, t) in [info.outer, info.inner].into_iter().flatten().enumerate() {
        assert!(t.tpid == TPID_8021Q || t.tpid == TPID_8021AD);
        assert_eq!((t.tpid, t.tci), (be16(12 + 4 * i), be16(14 + 4 * i)));
    }
    assert_eq!(info.ctag(), info.outer.filter(|t| t.tpid == TPID_8021Q));
}

/// Every tag edit yields a frame that parses, and a port that pushed a VID classifies the
/// result into it.
fn edits_round_trip(data: &[u8], info: &FrameInfo) {
    let vid = Vid::new(info.ctag().map_or(10, |t| t.vid().max(1)));
    let trunk = VlanMode::Trunk {
        allowed: [vid].into_iter().collect(),
        native: None,
    };
    let mut out = Vec::new();
    for op in [
        TagOp::Keep,
        TagOp::Pop,
        TagOp::Push(vid),
        TagOp::SetVid(vid),
    ] {
        op.apply(data, &mut out);
        let Ok(seen) = FrameInfo::parse(&out, usize::from(u16::MAX)) else {
            // Popping a tag can leave a runt or cut an inner tag short, pushing one can pass the
            // largest frame there is; nothing else may fail.
            let too_long = out.len() > usize::from(u16::MAX);
            assert!(
                matches!(op, TagOp::Pop) || too_long,
                "{op:?} broke the frame"
            );
            continue;
        };
        let expect = match op {
            TagOp::Push(_) => Some(vid),
            TagOp::SetVid(_) if info.ctag().is_some() => Some(vid),
            _ => continue,
        };
        assert_eq!(trunk.classify(&seen), expect, "{op:?}");
    }
}

/// The VXLAN header parse accepts exactly the headers RFC 7348 allows, reads the VNI the bytes
/// hold, and a header built for that VNI is the bytes' own.
fn vxlan_agrees_with_bytes(data: &[u8]) {
    assert!(SRC_PORTS.contains(&source_port(data)));
    match VxlanHeader::parse(data) {
        Ok(h) => {
            assert!(data.len() >= 22);
            assert_eq!(data[0], FLAG_I);
            assert_eq!(&data[1..4], &[0, 0, 0]);
            assert_eq!(data[7], 0);
            assert_eq!(h.vni, u32::from_be_bytes([0, data[4], data[5], data[6]]));
            if let Ok(vni) = Vni::new(h.vni) {
                assert_eq!(&VxlanHeader::build(vni)[..], &data[..8]);
            }
        }
        Err(VxlanError::Short { len }) => assert!(len < 22 && len == data.len()),
        Err(VxlanError::NoVni { flags }) => assert_eq!(flags & FLAG_I, 0),
        Err(VxlanError::Reserved { bits }) => assert_ne!(bits, 0),
    }
}
