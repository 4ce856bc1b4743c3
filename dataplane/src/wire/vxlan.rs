//! The VXLAN header (RFC 7348 §5) and the pieces of the outer headers an overlay port writes.
//! [`VxlanHeader::parse`] reads the eight bytes after the outer UDP header once and refuses,
//! each by name, what the kernel's `vxlan_rcv` refuses: too short, the I flag clear, a reserved
//! bit set. After it succeeds the inner frame starts at [`field::INNER`].
//!
//! ```text
//!  0               1               2               3
//! |R|R|R|R|I|R|R|R|            Reserved (24 bits)                 |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```

use std::net::Ipv4Addr;

/// Byte offsets of the VXLAN header (smoltcp's `mod field` style).
pub mod field {
    use std::ops::Range;
    /// The flags byte (only the I flag may be set).
    pub const FLAGS: usize = 0;
    /// The 24 reserved bits after the flags.
    pub const RESERVED1: Range<usize> = 1..4;
    /// The 24-bit VNI.
    pub const VNI: Range<usize> = 4..7;
    /// The last reserved byte.
    pub const RESERVED2: usize = 7;
    /// Length of the header: the inner frame starts here.
    pub const INNER: usize = 8;
}

/// The I flag: "the VNI is valid" (`VXLAN_HF_VNI`); the only bit a valid header sets.
pub const FLAG_I: u8 = 0x08;

/// IANA's VXLAN port (RFC 7348 §5); the kernel's own default is still 8472, so l2sw always
/// names it.
pub const IANA_PORT: u16 = 4789;

/// What the overlay adds to every frame on an IPv4 underlay: outer Ethernet 14, IPv4 20,
/// UDP 8, VXLAN 8. A workload's MTU is the underlay's minus this (1450 on 1500).
pub const OVERHEAD: usize = 50;

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = field::INNER;

/// Length of a UDP header (an overlay port that sends through a raw socket writes it).
pub const UDP_HEADER_LEN: usize = 8;

/// The source ports an overlay port picks from (`udp_flow_src_port` with the default
/// ephemeral range): high enough never to be a well-known service, wide for ECMP entropy.
pub const SRC_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// A VXLAN Network Identifier: 24 bits, 1..=16777215 for a network (0 is refused as a
/// network's VNI, as `vxlan_nl2conf` and Docker do).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI.
    pub const MAX: u32 = (1 << 24) - 1;

    /// `n` as a network's VNI, or an error naming it.
    pub fn new(n: u32) -> Result<Vni, VniError> {
        if n == 0 || n > Vni::MAX {
            return Err(VniError(u64::from(n)));
        }
        Ok(Vni(n))
    }

    /// Its value.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for Vni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A VNI outside 1..=16777215.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("VNI {0} is outside 1..=16777215")]
pub struct VniError(pub u64);

/// A remote VXLAN tunnel endpoint: the underlay address frames for a station behind it go to.
/// The forwarding core carries it as a destination (an FDB entry learned from the overlay
/// names the VTEP its MAC came from), never as something it sends to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vtep(pub Ipv4Addr);

impl std::fmt::Display for Vtep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why eight bytes are not a VXLAN header l2sw accepts. Each is a named, counted drop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum VxlanError {
    /// Shorter than the header plus an Ethernet header.
    #[error("VXLAN packet of {len} bytes, shorter than the 8-byte header and a 14-byte frame")]
    Short {
        /// The UDP payload's length.
        len: usize,
    },
    /// The I flag is clear: the VNI is not valid (`vxlan_rcv`).
    #[error("VXLAN flags {flags:#04x}: the I flag (0x08) is clear")]
    NoVni {
        /// The flags byte.
        flags: u8,
    },
    /// A flag or reserved bit the header may not set (`vxlan_rcv`: unknown flags dropped).
    #[error("VXLAN header sets reserved bits ({bits:#010x} in the flags and reserved fields)")]
    Reserved {
        /// The offending bits: flags other than I in the top byte, the reserved fields below.
        bits: u32,
    },
}

/// Why an overlay port refused a packet it received: a bad header, another network's VNI, a
/// sender that is no VTEP of the network. The port hands it to the switch as a faulty frame,
/// so each is a named drop counted on the port like every other.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OverlayFault {
    /// The VXLAN header is malformed.
    Header(VxlanError),
    /// A well-formed header with another VNI than the network's.
    Vni {
        /// The VNI received.
        vni: u32,
    },
    /// The sender is neither in the flood list nor a static remote, and the network does not
    /// learn remotes.
    UnknownSender(Vtep),
}

/// A parsed VXLAN header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VxlanHeader {
    /// The 24-bit VNI as received (0 is possible on the wire; a network never has it).
    pub vni: u32,
}

impl VxlanHeader {
    /// Reads the header at the start of a UDP payload `b`; the inner frame is
    /// `b[field::INNER..]` and at least an Ethernet header long.
    #[inline]
    pub fn parse(b: &[u8]) -> Result<VxlanHeader, VxlanError> {
        if b.len() < HEADER_LEN + 14 {
            return Err(VxlanError::Short { len: b.len() });
        }
        let flags = b[field::FLAGS];
        if flags & FLAG_I == 0 {
            return Err(VxlanError::NoVni { flags });
        }
        let r1 = u32::from_be_bytes([0, b[1], b[2], b[3]]);
        let bits = (u32::from(flags & !FLAG_I) << 24) | r1;
        if bits != 0 || b[field::RESERVED2] != 0 {
            return Err(VxlanError::Reserved {
                bits: bits | u32::from(b[field::RESERVED2]),
            });
        }
        let vni = u32::from_be_bytes([0, b[4], b[5], b[6]]);
        Ok(VxlanHeader { vni })
    }

    /// The eight header bytes for `vni`.
    #[inline]
    pub const fn build(vni: Vni) -> [u8; HEADER_LEN] {
        let v = vni.0.to_be_bytes();
        [FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
    }
}

/// The outer UDP source port for `frame` (`udp_flow_src_port`): a hash of the inner Ethernet
/// addresses and type and, for IPv4 and IPv6, the inner addresses and ports, mapped into
/// [`SRC_PORTS`]. One flow always takes one port (one ECMP path, no reordering); different
/// flows spread. Never indexes out of bounds: fields missing from a short frame hash as absent.
#[inline]
pub fn source_port(frame: &[u8]) -> u16 {
    // FNV-1a over the flow's fields: cheap, and good enough to spread flows over paths.
    let mut h: u32 = 0x811c_9dc5;
    let mut mix = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    };
    let get = |r: std::ops::Range<usize>| frame.get(r).unwrap_or(&[]);
    mix(get(0..14));
    let l3 = 14;
    match frame.get(12..14) {
        Some([0x08, 0x00]) => {
            let ihl = frame.get(l3).map_or(20, |b| usize::from(b & 0x0f) * 4);
            mix(get(l3 + 9..l3 + 10));
            mix(get(l3 + 12..l3 + 20));
            mix(get(l3 + ihl..l3 + ihl + 4));
        }
        Some([0x86, 0xdd]) => {
            mix(get(l3 + 6..l3 + 7));
            mix(get(l3 + 8..l3 + 40));
            mix(get(l3 + 40..l3 + 44));
        }
        _ => {}
    }
    let (lo, hi) = (u32::from(*SRC_PORTS.start()), u32::from(*SRC_PORTS.end()));
    // In range by construction: lo + (h mod width) <= hi.
    (lo + (h.rotate_left(16) ^ h) % (hi - lo + 1)) as u16
}

/// Writes the outer UDP header (checksum 0, as RFC 7348 §5 allows over IPv4) for a payload of
/// `payload` bytes into `out`.
#[inline]
pub fn udp_header(src: u16, dst: u16, payload: usize) -> [u8; UDP_HEADER_LEN] {
    let len = u16::try_from(payload + UDP_HEADER_LEN).unwrap_or(u16::MAX);
    let (s, d, l) = (src.to_be_bytes(), dst.to_be_bytes(), len.to_be_bytes());
    [s[0], s[1], d[0], d[1], l[0], l[1], 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(hdr: [u8; 8]) -> Vec<u8> {
        let mut p = hdr.to_vec();
        p.extend_from_slice(&[0xff; 6]);
        p.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
        p
    }

    #[test]
    fn a_built_header_parses_back() {
        for n in [1, 42, 0x00ab_cdef, Vni::MAX] {
            let vni = Vni::new(n).unwrap();
            let p = packet(VxlanHeader::build(vni));
            assert_eq!(VxlanHeader::parse(&p), Ok(VxlanHeader { vni: n }));
        }
        assert_eq!(
            VxlanHeader::build(Vni::new(0x0012_3456).unwrap()),
            [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]
        );
    }

    #[test]
    fn each_malformed_header_is_named() {
        assert_eq!(
            VxlanHeader::parse(&[0x08; 21]),
            Err(VxlanError::Short { len: 21 })
        );
        assert_eq!(
            VxlanHeader::parse(&packet([0, 0, 0, 0, 0, 0, 1, 0])),
            Err(VxlanError::NoVni { flags: 0 })
        );
        assert_eq!(
            VxlanHeader::parse(&packet([0x0c, 0, 0, 0, 0, 0, 1, 0])),
            Err(VxlanError::Reserved { bits: 0x0400_0000 })
        );
        assert_eq!(
            VxlanHeader::parse(&packet([0x08, 0, 1, 0, 0, 0, 1, 0])),
            Err(VxlanError::Reserved { bits: 0x100 })
        );
        assert_eq!(
            VxlanHeader::parse(&packet([0x08, 0, 0, 0, 0, 0, 1, 0x80])),
            Err(VxlanError::Reserved { bits: 0x80 })
        );
    }

    #[test]
    fn vnis_outside_the_range_are_refused_by_value() {
        assert_eq!(Vni::new(0), Err(VniError(0)));
        assert_eq!(Vni::new(1 << 24), Err(VniError(16_777_216)));
        assert_eq!(
            VniError(16_777_216).to_string(),
            "VNI 16777216 is outside 1..=16777215"
        );
    }

    #[test]
    fn source_ports_stay_in_range_and_follow_the_flow() {
        let mut f = vec![0u8; 60];
        f[12] = 0x08;
        f[14] = 0x45;
        let a = source_port(&f);
        assert_eq!(a, source_port(&f), "one flow, one port");
        assert!(SRC_PORTS.contains(&a));
        let mut seen = std::collections::BTreeSet::new();
        for p in 0..64u8 {
            f[14 + 20 + 1] = p;
            seen.insert(source_port(&f));
        }
        assert!(seen.len() > 32, "flows spread: {}", seen.len());
        for n in 0..20 {
            assert!(SRC_PORTS.contains(&source_port(&f[..n])));
        }
    }
}
