//! A receive ring: the kernel writes arriving frames into a memory area shared with l2sw, so
//! reading a frame costs no system call. Two ways of handing frames over:
//!
//! - TPACKET_V3 ([`Handover::Blocks`]): frames of any size packed into blocks; the kernel hands
//!   over a block when it is full or `retire_ms` after its first frame, and gets it back once
//!   every frame in it has been read. Fewest wake-ups, but at a light load a frame waits for
//!   its block's timeout: up to a millisecond.
//! - TPACKET_V2 ([`Handover::Frames`]): one fixed-size slot per frame, handed over as soon as
//!   it is written and given back as soon as it is read: microseconds at any load.
//!
//! V3 layout (linux/if_packet.h): each block starts with a `tpacket_block_desc` whose
//! `block_status` says who owns it, `num_pkts` how many frames it holds and
//! `offset_to_first_pkt` where the first `tpacket3_hdr` is; each frame header gives the offset
//! of the next (`tp_next_offset`), the frame's offset (`tp_mac`) and length (`tp_snaplen`),
//! and the VLAN tag the interface took out of the frame, if any.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::SysError;
use super::packet::PacketSocket;
use crate::wire::{Fault, Meta, VNET_HDR_LEN};

// The kernel's ABI (linux/if_packet.h) comes from `libc`: its constants, and the field offsets
// of its structures through `offset_of!`.
use libc::{
    PACKET_COPY_THRESH, PACKET_RX_RING, PACKET_VERSION, PACKET_VNET_HDR, TP_STATUS_COPY,
    TP_STATUS_KERNEL, TP_STATUS_USER, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID,
    tpacket_block_desc, tpacket_hdr_v1, tpacket_req, tpacket_req3, tpacket2_hdr, tpacket3_hdr,
};
use std::mem::offset_of;

const TPACKET_V2: i32 = libc::tpacket_versions::TPACKET_V2 as i32;
const TPACKET_V3: i32 = libc::tpacket_versions::TPACKET_V3 as i32;

// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then tpacket_hdr_v1).
const BLOCK_HDR: usize = offset_of!(tpacket_block_desc, hdr);
const BLOCK_STATUS: usize = BLOCK_HDR + offset_of!(tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize = BLOCK_HDR + offset_of!(tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = BLOCK_HDR + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
// Offsets in `struct tpacket3_hdr`.
const PKT_NEXT: usize = offset_of!(tpacket3_hdr, tp_next_offset);
const PKT_SEC: usize = offset_of!(tpacket3_hdr, tp_sec);
const PKT_NSEC: usize = offset_of!(tpacket3_hdr, tp_nsec);
const PKT_SNAPLEN: usize = offset_of!(tpacket3_hdr, tp_snaplen);
const PKT_LEN: usize = offset_of!(tpacket3_hdr, tp_len);
const PKT_STATUS: usize = offset_of!(tpacket3_hdr, tp_status);
const PKT_MAC: usize = offset_of!(tpacket3_hdr, tp_mac);
const PKT_VLAN_TCI: usize = offset_of!(tpacket3_hdr, hv1.tp_vlan_tci);
const PKT_VLAN_TPID: usize = offset_of!(tpacket3_hdr, hv1.tp_vlan_tpid);

// Offsets in `struct tpacket2_hdr`.
const V2_STATUS: usize = offset_of!(tpacket2_hdr, tp_status);
const V2_LEN: usize = offset_of!(tpacket2_hdr, tp_len);
const V2_SNAPLEN: usize = offset_of!(tpacket2_hdr, tp_snaplen);
const V2_MAC: usize = offset_of!(tpacket2_hdr, tp_mac);
const V2_SEC: usize = offset_of!(tpacket2_hdr, tp_sec);
const V2_NSEC: usize = offset_of!(tpacket2_hdr, tp_nsec);
const V2_VLAN_TCI: usize = offset_of!(tpacket2_hdr, tp_vlan_tci);
const V2_VLAN_TPID: usize = offset_of!(tpacket2_hdr, tp_vlan_tpid);

/// How the kernel hands frames over (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// TPACKET_V3: whole blocks.
    Blocks,
    /// TPACKET_V2: each frame as soon as it is written.
    Frames,
}

/// The shape of a ring.
#[derive(Debug, Clone, Copy)]
pub struct RingSize {
    /// Bytes per block (a multiple of the page size).
    pub block_size: usize,
    /// Number of blocks.
    pub block_nr: usize,
    /// V3: milliseconds after which the kernel hands over a block that is not full.
    pub retire_ms: u32,
    /// V3 or V2.
    pub handover: Handover,
    /// V2: bytes per frame slot (header included; a power of two dividing the block size).
    pub frame_size: usize,
}

impl Default for RingSize {
    fn default() -> Self {
        // 4 MiB: a few milliseconds of 64-byte frames at line rate, handed over within 1 ms
        // when traffic is light.
        RingSize {
            block_size: 1 << 18,
            block_nr: 16,
            retire_ms: 1,
            handover: Handover::Blocks,
            frame_size: 2048,
        }
    }
}

impl RingSize {
    /// Bytes the ring maps.
    pub fn bytes(&self) -> usize {
        self.block_size * self.block_nr
    }

    /// A V2 ring of `bytes` in all, with slots large enough for frames of `max_frame` bytes
    /// and the kernel's header in front of them.
    pub fn frames(bytes: usize, max_frame: usize) -> RingSize {
        let frame_size = (max_frame + 128).next_power_of_two().max(2048);
        let block_size = frame_size.max(1 << 16);
        RingSize {
            block_size,
            block_nr: (bytes / block_size).max(1),
            retire_ms: 0,
            handover: Handover::Frames,
            frame_size,
        }
    }
}

/// Sets the `SOL_PACKET` option `opt` of `sock` to the `len` bytes at `val`.
pub(super) fn set_packet_opt(
    sock: &PacketSocket,
    opt: i32,
    val: *const libc::c_void,
    len: usize,
    what: &'static str,
) -> Result<(), SysError> {
    let fd = sock.as_fd().as_raw_fd();
    // SAFETY: callers pass `val` pointing at `len` readable bytes for the duration of the call.
    let rc = unsafe { libc::setsockopt(fd, libc::SOL_PACKET, opt, val, len as libc::socklen_t) };
    if rc != 0 {
        return Err(SysError::last(what, sock.ifname()));
    }
    Ok(())
}

/// Maps the `len` bytes of the ring (or rings) the kernel has just allocated for `sock`.
pub(super) fn map_ring(
    sock: &PacketSocket,
    len: usize,
    what: &'static str,
) -> Result<NonNull<u8>, SysError> {
    let on = sock.ifname();
    // SAFETY: maps the ring the kernel allocated for the socket; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            sock.as_fd().as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(SysError::last(what, on));
    }
    NonNull::new(p.cast::<u8>())
        .ok_or_else(|| SysError::new(what, on, io::Error::other("null mapping")))
}

/// A mapped TPACKET_V3 receive ring of one AF_PACKET socket.
#[derive(Debug)]
pub struct RxRing {
    base: NonNull<u8>,
    size: RingSize,
    /// Each frame is preceded by a `virtio_net_hdr`.
    vnet: bool,
    /// The block being read, if one is held.
    block: usize,
    held: bool,
    /// Offset of the next frame header within the held block, and frames left in it.
    next: usize,
    left: u32,
}

// SAFETY: the mapping is owned by this value alone (no other reference into it is kept), and
// the kernel's side is synchronised through `block_status` with acquire/release ordering.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Maps a receive ring of `size` on `sock` (TPACKET_V3 or V2 as `size` says), without
    /// offload metadata: frames arrive as the wire had them, super-frames and all.
    pub fn new(sock: &PacketSocket, size: RingSize) -> Result<RxRing, SysError> {
        RxRing::open(sock, size, false)
    }

    /// Maps a receive ring of `size` on `sock`; with `vnet`, each frame comes with a
    /// `virtio_net_hdr` (`PACKET_VNET_HDR`): a checksum left to complete, a super-frame's
    /// segment size. On a V2 ring a frame too long for its slot is also queued whole on the
    /// socket (`PACKET_COPY_THRESH`), where [`Slot::Copied`] says to read it.
    pub fn open(sock: &PacketSocket, size: RingSize, vnet: bool) -> Result<RxRing, SysError> {
        let set = |opt: i32, val: *const libc::c_void, len: usize, what: &'static str| {
            set_packet_opt(sock, opt, val, len, what)
        };
        let one: i32 = 1;
        if vnet {
            set(
                PACKET_VNET_HDR,
                (&raw const one).cast(),
                4,
                "PACKET_VNET_HDR",
            )?;
            if size.handover == Handover::Frames {
                set(
                    PACKET_COPY_THRESH,
                    (&raw const one).cast(),
                    4,
                    "PACKET_COPY_THRESH",
                )?;
            }
        }
        let version = match size.handover {
            Handover::Blocks => TPACKET_V3,
            Handover::Frames => TPACKET_V2,
        };
        set(
            PACKET_VERSION,
            (&raw const version).cast(),
            4,
            "PACKET_VERSION",
        )?;
        let frame_size = size.frame_size as u32;
        let total = size.block_size * size.block_nr;
        let req = tpacket_req3 {
            tp_block_size: size.block_size as u32,
            tp_block_nr: size.block_nr as u32,
            tp_frame_size: frame_size,
            tp_frame_nr: (total / frame_size as usize) as u32,
            tp_retire_blk_tov: size.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        // V2 takes `struct tpacket_req`: the first four fields, which `tpacket_req3` begins with.
        let len = match size.handover {
            Handover::Blocks => std::mem::size_of::<tpacket_req3>(),
            Handover::Frames => std::mem::size_of::<tpacket_req>(),
        };
        set(
            PACKET_RX_RING,
            (&raw const req).cast(),
            len,
            "PACKET_RX_RING",
        )?;
        let base = map_ring(sock, total, "mmap(PACKET_RX_RING)")?;
        Ok(RxRing {
            base,
            size,
            vnet,
            block: 0,
            held: false,
            next: 0,
            left: 0,
        })
    }

    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: `i < block_nr`, so the offset stays inside the mapping.
        unsafe { self.base.as_ptr().add(i * self.size.block_size) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: `block_status` is an aligned u32 inside block `i` of the live mapping, shared
        // with the kernel, which is what atomics are for.
        unsafe { AtomicU32::from_ptr(self.block_ptr(i).add(BLOCK_STATUS).cast()) }
    }

    fn read_u32(&self, at: *const u8) -> u32 {
        // SAFETY: callers pass pointers inside a block the kernel has handed over.
        unsafe { std::ptr::read_unaligned(at.cast::<u32>()) }
    }

    fn read_u16(&self, at: *const u8) -> u16 {
        // SAFETY: as above.
        unsafe { std::ptr::read_unaligned(at.cast::<u16>()) }
    }

    /// Whether the kernel has handed over a frame not yet read: one load of a status word,
    /// no system call. What [`RxRing::next_frame`] would find next is read, not taken.
    pub fn pending(&self) -> bool {
        let user = |st: &AtomicU32| st.load(Ordering::Acquire) & TP_STATUS_USER != 0;
        match self.size.handover {
            Handover::Frames => {
                let slots = self.size.block_size / self.size.frame_size * self.size.block_nr;
                let next = if self.held {
                    (self.block + 1) % slots
                } else {
                    self.block
                };
                // SAFETY: `next < slots`: `tp_status` is an aligned u32 at the start of a
                // slot inside the mapping, shared with the kernel.
                user(unsafe {
                    AtomicU32::from_ptr(
                        self.base
                            .as_ptr()
                            .add(next * self.size.frame_size + V2_STATUS)
                            .cast(),
                    )
                })
            }
            Handover::Blocks if self.held && self.left > 0 => true,
            Handover::Blocks => {
                let next = if self.held {
                    (self.block + 1) % self.size.block_nr
                } else {
                    self.block
                };
                user(self.status(next))
            }
        }
    }

    /// The next frame the kernel has handed over, read in place, or `None` when there is
    /// none. The block holding it stays l2sw's until the next call, which gives it back once
    /// every frame in it has been read.
    pub fn next_frame(&mut self) -> Option<RxFrame<'_>> {
        if self.size.handover == Handover::Frames {
            return self.next_slot();
        }
        loop {
            if !self.held {
                if self.status(self.block).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                    return None;
                }
                let b = self.block_ptr(self.block);
                // SAFETY: the block is ours (TP_STATUS_USER); its header fields are in bounds.
                self.left = self.read_u32(unsafe { b.add(BLOCK_NUM_PKTS) });
                self.next = self.read_u32(unsafe { b.add(BLOCK_FIRST_PKT) }) as usize;
                self.held = true;
            }
            if self.left == 0 || self.next >= self.size.block_size {
                // Every frame read (or a malformed block): give it back rather than read on.
                self.status(self.block)
                    .store(TP_STATUS_KERNEL, Ordering::Release);
                self.held = false;
                self.block = (self.block + 1) % self.size.block_nr;
                continue;
            }
            let block = self.block_ptr(self.block);
            // SAFETY: `next < block_size`: the frame header lies inside the held block.
            let hdr = unsafe { block.add(self.next) };
            // SAFETY: fields of the frame header, inside the held block.
            let (next, sec, nsec, snaplen, wire_len, status, mac) = unsafe {
                (
                    self.read_u32(hdr.add(PKT_NEXT)) as usize,
                    self.read_u32(hdr.add(PKT_SEC)),
                    self.read_u32(hdr.add(PKT_NSEC)),
                    self.read_u32(hdr.add(PKT_SNAPLEN)) as usize,
                    self.read_u32(hdr.add(PKT_LEN)),
                    self.read_u32(hdr.add(PKT_STATUS)),
                    usize::from(self.read_u16(hdr.add(PKT_MAC))),
                )
            };
            let start = (self.next + mac).min(self.size.block_size);
            let len = snaplen.min(self.size.block_size - start);
            let vnet = self.vnet_hdr(block, start);
            let vlan = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
                // SAFETY: header fields, as above.
                let (tci, tpid) = unsafe {
                    (
                        self.read_u32(hdr.add(PKT_VLAN_TCI)) as u16,
                        self.read_u16(hdr.add(PKT_VLAN_TPID)),
                    )
                };
                vlan_tag(status, tci, tpid)
            });
            self.left -= 1;
            self.next = if next == 0 {
                self.size.block_size
            } else {
                self.next + next
            };
            // SAFETY: `start + len <= block_size`: the frame lies inside the held block, which
            // stays l2sw's for as long as the returned borrow of `self` lives.
            let data = unsafe { std::slice::from_raw_parts(block.add(start), len) };
            return Some(RxFrame {
                data,
                vlan,
                stamp_ns: u64::from(sec) * 1_000_000_000 + u64::from(nsec),
                wire_len,
                vnet,
                copied: status & TP_STATUS_COPY != 0,
            });
        }
    }

    /// [`RxRing::next_frame`] on a V2 ring: `block` is the slot, `held` whether it is l2sw's.
    fn next_slot(&mut self) -> Option<RxFrame<'_>> {
        let slots = self.size.block_size / self.size.frame_size * self.size.block_nr;
        let slot_ptr = |i: usize| -> *mut u8 {
            // SAFETY: `i < slots`: the slot lies inside the mapping (slots tile each block).
            unsafe { self.base.as_ptr().add(i * self.size.frame_size) }
        };
        let status = |i: usize| -> &AtomicU32 {
            // SAFETY: `tp_status` is an aligned u32 at the start of slot `i`, shared with the
            // kernel.
            unsafe { AtomicU32::from_ptr(slot_ptr(i).add(V2_STATUS).cast()) }
        };
        if self.held {
            status(self.block).store(TP_STATUS_KERNEL, Ordering::Release);
            self.held = false;
            self.block = (self.block + 1) % slots;
        }
        let st = status(self.block).load(Ordering::Acquire);
        if st & TP_STATUS_USER == 0 {
            return None;
        }
        self.held = true;
        let hdr = slot_ptr(self.block);
        // SAFETY: fields of the slot's header, which the kernel handed over.
        let (snaplen, wire_len, mac, sec, nsec) = unsafe {
            (
                self.read_u32(hdr.add(V2_SNAPLEN)) as usize,
                self.read_u32(hdr.add(V2_LEN)),
                usize::from(self.read_u16(hdr.add(V2_MAC))),
                self.read_u32(hdr.add(V2_SEC)),
                self.read_u32(hdr.add(V2_NSEC)),
            )
        };
        let start = mac.min(self.size.frame_size);
        let len = snaplen.min(self.size.frame_size - start);
        let vnet = self.vnet_hdr(hdr, start);
        let vlan = (st & TP_STATUS_VLAN_VALID != 0).then(|| {
            // SAFETY: header fields, as above.
            let (tci, tpid) = unsafe {
                (
                    self.read_u16(hdr.add(V2_VLAN_TCI)),
                    self.read_u16(hdr.add(V2_VLAN_TPID)),
                )
            };
            vlan_tag(st, tci, tpid)
        });
        // SAFETY: `start + len <= frame_size`: the frame lies inside the slot, which stays
        // l2sw's until the next call.
        let data = unsafe { std::slice::from_raw_parts(hdr.add(start), len) };
        Some(RxFrame {
            data,
            vlan,
            stamp_ns: u64::from(sec) * 1_000_000_000 + u64::from(nsec),
            wire_len,
            vnet,
            copied: st & TP_STATUS_COPY != 0,
        })
    }

    /// The `virtio_net_hdr` just before the frame at `mac` bytes into the area at `area` (a
    /// held block or slot), if the ring carries them and it lies inside.
    fn vnet_hdr(&self, area: *const u8, mac: usize) -> Option<[u8; VNET_HDR_LEN]> {
        if !self.vnet || mac < VNET_HDR_LEN {
            return None;
        }
        // SAFETY: callers pass `mac` no further than the end of the held area they point at,
        // and the header's ten bytes end at `mac`: they lie inside it.
        Some(unsafe { std::ptr::read_unaligned(area.add(mac - VNET_HDR_LEN).cast()) })
    }

    /// Copies the next frame into `buf` (cut to `max` bytes, VLAN tag put back), returning
    /// `false` when the kernel has handed over nothing new.
    pub fn next_into(&mut self, buf: &mut Vec<u8>, max: usize) -> bool {
        self.next_slot_into(buf, max).is_some()
    }

    /// Copies the next frame into `buf` (a plain one cut to `max` bytes; VLAN tag put back,
    /// offsets moved with it) and says what came with it; `None` when the kernel has handed over nothing
    /// new.
    pub fn next_slot_into(&mut self, buf: &mut Vec<u8>, max: usize) -> Option<Slot> {
        let frame = self.next_frame()?;
        if frame.copied {
            // The whole frame waits on the socket; the slot holds only its start.
            return Some(Slot::Copied);
        }
        let mut meta = match frame.vnet {
            Some(h) => Meta::from_vnet_or_fault(&h),
            None => Meta::NONE,
        };
        if frame.data.len() < frame.wire_len as usize {
            meta = Meta::faulty(Fault::Truncated {
                len: frame.wire_len,
            });
        }
        // A plain frame is cut at `max` (the core drops it as oversize anyway); a super-frame
        // is judged by its segments, and copied whole.
        let cut = match meta.gso {
            None => frame.data.len().min(max),
            Some(_) => frame.data.len(),
        };
        buf.clear();
        buf.extend_from_slice(&frame.data[..cut]);
        if let Some(tag) = frame.vlan
            && buf.len() >= 12
        {
            let n = buf.len();
            buf.extend_from_slice(&[0; 4]);
            buf.copy_within(12..n, 16);
            buf[12..16].copy_from_slice(&tag);
            meta = meta.shifted(4);
        }
        Some(Slot::Frame(meta))
    }
}

/// The 4 bytes of the tag the interface took out of a frame, as they were on the wire.
fn vlan_tag(status: u32, tci: u16, tpid: u16) -> [u8; 4] {
    let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
        tpid
    } else {
        0x8100
    };
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    tag
}

/// What the next slot of a ring held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A frame, now in the caller's buffer, with its metadata.
    Frame(Meta),
    /// A frame too long for its slot, queued whole on the socket (`TP_STATUS_COPY`): the
    /// caller reads it from there.
    Copied,
}

/// A frame read in place from a receive ring.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame<'a> {
    /// The frame as the interface handed it over (without the VLAN tag it took out, if any).
    pub data: &'a [u8],
    /// The tag the interface took out of the frame (TPID and TCI, as on the wire).
    pub vlan: Option<[u8; 4]>,
    /// When the kernel received it (`CLOCK_REALTIME`, nanoseconds).
    pub stamp_ns: u64,
    /// Its length on the wire (more than `data` holds when the slot cut it).
    pub wire_len: u32,
    /// The `virtio_net_hdr` in front of it, on a ring that carries them.
    pub vnet: Option<[u8; VNET_HDR_LEN]>,
    /// Cut to the slot, and queued whole on the socket (`TP_STATUS_COPY`).
    pub copied: bool,
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the area mapped in `new`; nothing refers into it any more.
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.size.block_size * self.size.block_nr,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets taken from `libc` are the kernel's (linux/if_packet.h on x86-64 and
    /// aarch64, the layouts the ring tests ran against when they were written by hand).
    #[test]
    fn ring_offsets_are_the_kernels() {
        assert_eq!((BLOCK_STATUS, BLOCK_NUM_PKTS, BLOCK_FIRST_PKT), (8, 12, 16));
        assert_eq!(
            [
                PKT_NEXT,
                PKT_SEC,
                PKT_NSEC,
                PKT_SNAPLEN,
                PKT_LEN,
                PKT_STATUS,
                PKT_MAC,
                PKT_VLAN_TCI,
                PKT_VLAN_TPID
            ],
            [0, 4, 8, 12, 16, 20, 24, 32, 36]
        );
        assert_eq!(
            [
                V2_STATUS,
                V2_LEN,
                V2_SNAPLEN,
                V2_MAC,
                V2_SEC,
                V2_NSEC,
                V2_VLAN_TCI,
                V2_VLAN_TPID
            ],
            [0, 4, 8, 12, 16, 20, 24, 26]
        );
        assert_eq!(
            (
                std::mem::size_of::<tpacket_req>(),
                std::mem::size_of::<tpacket_req3>()
            ),
            (16, 28)
        );
        assert_eq!((TPACKET_V2, TPACKET_V3), (1, 2));
    }
}
