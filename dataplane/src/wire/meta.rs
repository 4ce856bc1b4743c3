//! What travels beside a frame's bytes: the offload state a `virtio_net_hdr` carries (a
//! checksum left to complete, a TCP or UDP super-frame to segment), and whether the port got
//! the frame whole. Ports fill it on receive and honour it on send; the core reads the
//! segment size (for the MTU check) and moves the offsets when a tag edit moves the headers.
//!
//! The header's layout (`include/uapi/linux/virtio_net.h`), little-endian as AF_PACKET and TAP
//! use it on every host l2sw runs on (`vio_le()`, `tun_is_little_endian`):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | `flags`: `NEEDS_CSUM` 1, `DATA_VALID` 2 |
//! | 1 | `gso_type`: none 0, TCPv4 1, UDP (UFO) 3, TCPv6 4, UDP L4 (USO) 5; ECN bit 0x80 |
//! | 2..4 | `hdr_len`: bytes of headers (a hint: how much to put in the linear area) |
//! | 4..6 | `gso_size`: payload bytes per segment |
//! | 6..8 | `csum_start`: where checksumming starts, from the frame's first byte |
//! | 8..10 | `csum_offset`: where the checksum goes, from `csum_start` |

use super::vxlan::{OverlayFault, Vtep};

/// `sizeof(struct virtio_net_hdr)`.
pub const VNET_HDR_LEN: usize = 10;

/// The largest frame a super-frame can be: a 65535-byte IP packet behind an Ethernet header and
/// two VLAN tags. Ports size their receive buffers for it.
pub const SUPER_FRAME_MAX: usize = 65535 + 14 + 8;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_UDP: u8 = 3;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

/// A checksum the sender left to complete (`CHECKSUM_PARTIAL`): sum the bytes from `start` to
/// the end and store the result at `start + offset`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Csum {
    /// Offset of the first byte summed (the transport header), from the frame's start.
    pub start: u16,
    /// Offset of the checksum field, from `start`.
    pub offset: u16,
}

/// How a super-frame is cut into segments.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GsoKind {
    /// TCP over IPv4 (TSO4).
    Tcp4,
    /// TCP over IPv6 (TSO6).
    Tcp6,
    /// UDP fragmentation offload (IP fragments; legacy).
    Ufo,
    /// UDP segmentation offload (one datagram per segment, USO).
    Udp,
}

impl GsoKind {
    /// Its name in traces.
    pub const fn name(self) -> &'static str {
        match self {
            GsoKind::Tcp4 => "tcp4",
            GsoKind::Tcp6 => "tcp6",
            GsoKind::Ufo => "ufo",
            GsoKind::Udp => "udp",
        }
    }
}

/// A super-frame: how to segment it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gso {
    /// The protocol.
    pub kind: GsoKind,
    /// Payload bytes per segment (the sender's MSS).
    pub size: u16,
    /// TCP: the sender set ECN's CWR on the first segment only (`SKB_GSO_TCP_ECN`).
    pub ecn: bool,
}

/// The metadata beside one frame. `Meta::NONE` (the default) is a plain, complete frame with a
/// finished checksum: what every port without offloads delivers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Meta {
    /// A checksum left to complete.
    pub csum: Option<Csum>,
    /// A super-frame to segment.
    pub gso: Option<Gso>,
    /// The sender's `hdr_len` hint (0 when it gave none).
    pub hdr_len: u16,
    /// The checksum was already verified (`DATA_VALID`).
    pub csum_valid: bool,
    /// Something went wrong on the way in: the core drops such a frame, by name.
    pub fault: Option<Fault>,
    /// Overlay ports: on receive, the remote VTEP the frame came from; on send, the VTEP it
    /// goes to (`None`: every VTEP of the flood list, head-end replication).
    pub vtep: Option<Vtep>,
    /// On receive from an overlay: whether the switch may learn the source MAC behind
    /// [`Meta::vtep`] (`vxlan_snoop`); off on a network whose remote entries are static.
    pub snoop: bool,
}

/// Why a port could not deliver a frame whole and as announced.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The port received only part of the frame (a ring slot too small for it and no room to
    /// queue it whole): its length on the wire.
    Truncated {
        /// The frame's length on the wire.
        len: u32,
    },
    /// The frame's `virtio_net_hdr` announces something l2sw cannot honour.
    BadHeader(MetaError),
    /// An overlay port refused the packet that carried it.
    Overlay(OverlayFault),
}

/// A `virtio_net_hdr` l2sw cannot honour. The frame is dropped, counted by the port.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MetaError {
    /// Shorter than the 10-byte header.
    #[error("virtio_net_hdr of {0} bytes, shorter than 10")]
    Short(usize),
    /// A `gso_type` l2sw does not know.
    #[error("unknown virtio_net_hdr gso_type {0:#04x}")]
    GsoType(u8),
    /// A super-frame with a segment size of 0.
    #[error("virtio_net_hdr announces segmentation with gso_size 0")]
    GsoSize,
}

impl Meta {
    /// A complete frame with nothing left to do.
    pub const NONE: Meta = Meta {
        csum: None,
        gso: None,
        hdr_len: 0,
        csum_valid: false,
        fault: None,
        vtep: None,
        snoop: false,
    };

    /// Metadata for a frame that did not arrive as it should have.
    pub const fn faulty(fault: Fault) -> Meta {
        Meta {
            fault: Some(fault),
            ..Meta::NONE
        }
    }

    /// Reads a `virtio_net_hdr`, turning one l2sw cannot honour into a [`Fault`] (the core
    /// then drops the frame by name).
    pub fn from_vnet_or_fault(b: &[u8]) -> Meta {
        Meta::from_vnet(b).unwrap_or_else(|e| Meta::faulty(Fault::BadHeader(e)))
    }

    /// Whether there is nothing left to do (no checksum, no segmentation, nothing missing).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.csum.is_none() && self.gso.is_none() && self.fault.is_none()
    }

    /// Reads a `virtio_net_hdr` (the first [`VNET_HDR_LEN`] bytes of `b`).
    pub fn from_vnet(b: &[u8]) -> Result<Meta, MetaError> {
        let Some(h) = b.get(..VNET_HDR_LEN) else {
            return Err(MetaError::Short(b.len()));
        };
        let le16 = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
        let (flags, gso_type) = (h[0], h[1]);
        let kind = match gso_type & !GSO_ECN {
            GSO_NONE => None,
            GSO_TCPV4 => Some(GsoKind::Tcp4),
            GSO_TCPV6 => Some(GsoKind::Tcp6),
            GSO_UDP => Some(GsoKind::Ufo),
            GSO_UDP_L4 => Some(GsoKind::Udp),
            _ => return Err(MetaError::GsoType(gso_type)),
        };
        let gso = match kind {
            None => None,
            Some(kind) => {
                let size = le16(4);
                if size == 0 {
                    return Err(MetaError::GsoSize);
                }
                Some(Gso {
                    kind,
                    size,
                    ecn: gso_type & GSO_ECN != 0,
                })
            }
        };
        Ok(Meta {
            csum: (flags & F_NEEDS_CSUM != 0).then(|| Csum {
                start: le16(6),
                offset: le16(8),
            }),
            gso,
            hdr_len: le16(2),
            csum_valid: flags & F_DATA_VALID != 0,
            ..Meta::NONE
        })
    }

    /// The `virtio_net_hdr` for sending `frame` with this metadata. `hdr_len` is the sender's
    /// hint, or the headers' end for a super-frame; for a plain frame, the whole frame, so that
    /// the kernel copies it into one linear buffer (`packet_snd`, `tpacket_snd`).
    pub fn to_vnet(&self, frame: &[u8]) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        let len16 = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        let hdr_len = match self.gso {
            Some(_) => self.headers_len(frame).unwrap_or(usize::from(self.hdr_len)),
            None => frame.len(),
        };
        let mut flags = 0;
        if let Some(c) = self.csum {
            flags |= F_NEEDS_CSUM;
            h[6..8].copy_from_slice(&c.start.to_le_bytes());
            h[8..10].copy_from_slice(&c.offset.to_le_bytes());
        }
        if self.csum_valid {
            flags |= F_DATA_VALID;
        }
        h[0] = flags;
        if let Some(g) = self.gso {
            h[1] = match g.kind {
                GsoKind::Tcp4 => GSO_TCPV4,
                GsoKind::Tcp6 => GSO_TCPV6,
                GsoKind::Ufo => GSO_UDP,
                GsoKind::Udp => GSO_UDP_L4,
            } | if g.ecn { GSO_ECN } else { 0 };
            h[4..6].copy_from_slice(&g.size.to_le_bytes());
        }
        h[2..4].copy_from_slice(&len16(hdr_len.min(frame.len())).to_le_bytes());
        h
    }

    /// Where a super-frame's headers end (Ethernet, IP and transport): the transport header
    /// starts at the checksum's start, a TCP header is as long as its data offset says, a UDP
    /// header 8 bytes. `None` when the frame does not hold what the metadata announces.
    pub fn headers_len(&self, frame: &[u8]) -> Option<usize> {
        let g = self.gso?;
        let start = usize::from(self.csum?.start);
        let l4 = match g.kind {
            GsoKind::Tcp4 | GsoKind::Tcp6 => usize::from(frame.get(start + 12)? >> 4) * 4,
            GsoKind::Udp | GsoKind::Ufo => 8,
        };
        let end = start + l4;
        (l4 >= 8 && end <= frame.len()).then_some(end)
    }

    /// The length on the wire of the longest frame this one stands for: the frame itself, or
    /// for a super-frame its headers plus one segment of payload (what the kernel checks
    /// against the MTU in `skb_gso_validate_network_len`). A super-frame whose headers cannot
    /// be found counts at its full length, so it is judged like a plain frame.
    #[inline]
    pub fn wire_len(&self, frame: &[u8]) -> usize {
        match self.gso {
            None => frame.len(),
            Some(g) => match self.headers_len(frame) {
                Some(h) => frame.len().min(h + usize::from(g.size)),
                None => frame.len(),
            },
        }
    }

    /// The same metadata for the frame with `delta` bytes inserted (positive) or removed
    /// (negative) before its network header: a VLAN tag pushed or popped.
    #[must_use]
    pub fn shifted(self, delta: i16) -> Meta {
        let mv = |v: u16| v.saturating_add_signed(delta);
        Meta {
            csum: self.csum.map(|c| Csum {
                start: mv(c.start),
                offset: c.offset,
            }),
            hdr_len: if self.hdr_len == 0 {
                0
            } else {
                mv(self.hdr_len)
            },
            ..self
        }
    }
}

impl std::fmt::Display for Meta {
    /// `tso4 seg 1448, csum@34+16`: what a trace shows beside a frame's length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sep = "";
        if let Some(g) = self.gso {
            write!(f, "{} seg {}", g.kind.name(), g.size)?;
            sep = ", ";
        }
        if let Some(c) = self.csum {
            write!(f, "{sep}csum@{}+{}", c.start, c.offset)?;
            sep = ", ";
        }
        match self.fault {
            Some(Fault::Truncated { len }) => write!(f, "{sep}truncated from {len}")?,
            Some(Fault::BadHeader(e)) => write!(f, "{sep}{e}")?,
            Some(Fault::Overlay(OverlayFault::Header(e))) => write!(f, "{sep}{e}")?,
            Some(Fault::Overlay(OverlayFault::Vni { vni })) => write!(f, "{sep}VNI {vni}")?,
            Some(Fault::Overlay(OverlayFault::UnknownSender(v))) => {
                write!(f, "{sep}from unknown VTEP {v}")?;
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCPv4 super-frame: Ethernet, a 20-byte IP header, a 32-byte TCP header, `payload`
    /// bytes.
    fn tcp4(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 32 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 20 + 12] = 8 << 4;
        f
    }

    fn tso(size: u16) -> Meta {
        Meta {
            csum: Some(Csum {
                start: 34,
                offset: 16,
            }),
            gso: Some(Gso {
                kind: GsoKind::Tcp4,
                size,
                ecn: false,
            }),
            hdr_len: 66,
            ..Meta::NONE
        }
    }

    #[test]
    fn vnet_round_trip() {
        let f = tcp4(1448 * 40);
        let m = tso(1448);
        let h = m.to_vnet(&f);
        assert_eq!(h, [1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0]);
        assert_eq!(Meta::from_vnet(&h), Ok(m));
    }

    #[test]
    fn plain_frames_ask_for_one_linear_copy() {
        let f = vec![0u8; 60];
        let h = Meta::NONE.to_vnet(&f);
        assert_eq!(h, [0, 0, 60, 0, 0, 0, 0, 0, 0, 0]);
        let back = Meta::from_vnet(&h).unwrap();
        assert!(back.is_plain());
    }

    #[test]
    fn bad_headers_are_named() {
        assert_eq!(Meta::from_vnet(&[0; 4]), Err(MetaError::Short(4)));
        assert_eq!(
            Meta::from_vnet(&[0, 7, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(MetaError::GsoType(7))
        );
        assert_eq!(
            Meta::from_vnet(&[1, 1, 0, 0, 0, 0, 34, 0, 16, 0]),
            Err(MetaError::GsoSize)
        );
    }

    #[test]
    fn a_super_frame_is_judged_by_its_segments() {
        let f = tcp4(1448 * 40);
        assert_eq!(tso(1448).headers_len(&f), Some(66));
        assert_eq!(tso(1448).wire_len(&f), 66 + 1448);
        // A last short super-frame counts at its real length.
        let short = tcp4(100);
        assert_eq!(tso(1448).wire_len(&short), short.len());
        // Headers beyond the frame: judged whole.
        let mut lying = tso(1448);
        lying.csum = Some(Csum {
            start: 60_000,
            offset: 16,
        });
        assert_eq!(lying.wire_len(&f), f.len());
        assert_eq!(Meta::NONE.wire_len(&f), f.len());
    }

    #[test]
    fn tag_edits_move_the_offsets() {
        let m = tso(1448);
        let pushed = m.shifted(4);
        assert_eq!(pushed.csum.map(|c| c.start), Some(38));
        assert_eq!(pushed.hdr_len, 70);
        assert_eq!(pushed.shifted(-4), m);
        assert_eq!(Meta::NONE.shifted(4), Meta::NONE);
    }

    #[test]
    fn display_for_traces() {
        assert_eq!(tso(1448).to_string(), "tcp4 seg 1448, csum@34+16");
        assert_eq!(Meta::NONE.to_string(), "");
    }
}
