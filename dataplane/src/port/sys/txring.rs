//! A TPACKET_V2 transmit ring: l2sw writes frames into fixed-size slots of a memory area
//! shared with the kernel, marks them ready, and one `send` hands every ready slot to the
//! driver (`tpacket_snd` in net/packet/af_packet.c), instead of one `packet_snd` per frame.
//!
//! The ring lives on a socket of its own, bound to the interface with protocol 0 so that it
//! receives nothing; the port's receive socket keeps its TPACKET_V3 ring.
//!
//! Layout (linux/if_packet.h): slot `i` starts `i * frame_size` bytes into the mapping (blocks
//! hold a whole number of slots) with a `tpacket2_hdr` whose `tp_status` says who owns the
//! slot and `tp_len` how many bytes follow at offset 32 (`TPACKET2_HDRLEN - sizeof(struct
//! sockaddr_ll)`). With `PACKET_VNET_HDR` those bytes start with a `struct virtio_net_hdr`
//! whose `hdr_len` covers the whole frame: the kernel then copies the frame into the socket
//! buffer's linear area instead of attaching the ring's pages to it, which veth would copy
//! again (`skb_copy_ubufs`) before handing it to its peer.
//!
//! Slot states: l2sw writes into `TP_STATUS_AVAILABLE` slots and sets `TP_STATUS_SEND_REQUEST`;
//! the kernel sets `TP_STATUS_SENDING` while the frame is in flight and `TP_STATUS_AVAILABLE`
//! again when it is freed. `PACKET_LOSS` makes the kernel skip a slot it rejects (marking it
//! available) instead of leaving it `TP_STATUS_WRONG_FORMAT` with its ring stopped there.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::SysError;
use super::packet::PacketSocket;
use super::ring::{map_ring, set_packet_opt};
use crate::wire::Meta;

// The kernel's ABI (linux/if_packet.h) comes from `libc`: its constants, and the field offsets
// of its structures through `offset_of!`.
use libc::{
    PACKET_LOSS, PACKET_TX_RING, PACKET_VERSION, PACKET_VNET_HDR, TP_STATUS_AVAILABLE,
    TP_STATUS_SEND_REQUEST, TP_STATUS_SENDING, TP_STATUS_WRONG_FORMAT, tpacket_req, tpacket2_hdr,
};

const TPACKET_V2: i32 = libc::tpacket_versions::TPACKET_V2 as i32;
const BUSY: u32 = TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING;

/// Offset of `tp_len` in `struct tpacket2_hdr`.
const SLOT_LEN: usize = std::mem::offset_of!(tpacket2_hdr, tp_len);
/// Where the frame (or its virtio header) starts in a slot: `TPACKET2_HDRLEN - sizeof(struct
/// sockaddr_ll)`, the header aligned to `TPACKET_ALIGNMENT`.
const SLOT_DATA: usize = libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>();
/// `sizeof(struct virtio_net_hdr)`.
const VNET_HDR: usize = crate::wire::VNET_HDR_LEN;
/// Bytes per block: a multiple of every page size Linux uses (4, 16 and 64 KiB).
const BLOCK: usize = 1 << 16;

/// The shape of a transmit ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRingSize {
    /// Bytes per slot (a power of two, at least 64); frames longer than the slot holds after
    /// its header are not for the ring.
    pub frame_size: usize,
    /// Number of slots (rounded up to fill whole 64 KiB blocks).
    pub frame_nr: usize,
}

impl Default for TxRingSize {
    fn default() -> Self {
        // 512 KiB: 256 frames of up to 2006 bytes (a 1500-byte MTU with VLAN tags, and more).
        TxRingSize {
            frame_size: 2048,
            frame_nr: 256,
        }
    }
}

/// What a [`TxRing::send`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Frames handed to the driver.
    pub sent: usize,
    /// Frames taken back because the kernel refused them (a full device queue or socket send
    /// buffer, or a slot it rejected): they are dropped.
    pub returned: usize,
}

/// A mapped TPACKET_V2 transmit ring on a send-only AF_PACKET socket.
#[derive(Debug)]
pub struct TxRing {
    sock: PacketSocket,
    base: NonNull<u8>,
    len: usize,
    frame_size: usize,
    frame_nr: usize,
    vnet_hdr: bool,
    /// The next slot to write; also the slot the kernel reads next once every queued frame
    /// has been sent (both advance in ring order and frames are never left queued).
    head: usize,
    /// Frames written since the last send, from `head - queued`.
    queued: usize,
    /// Slots the kernel marked `TP_STATUS_WRONG_FORMAT` (none while `PACKET_LOSS` is on).
    rejected: u64,
}

// SAFETY: the mapping is owned by this value alone (no reference into it outlives a call),
// and the kernel's side is synchronised through each slot's `tp_status` with acquire/release
// ordering.
unsafe impl Send for TxRing {}

impl TxRing {
    /// Opens a send-only socket on `ifname`, with `PACKET_VNET_HDR` if `vnet_hdr`, and maps a
    /// transmit ring of `size` on it. Frames sent through it skip the interface's qdisc.
    pub fn open(ifname: &str, size: TxRingSize, vnet_hdr: bool) -> Result<TxRing, SysError> {
        let sock = PacketSocket::open_sender(ifname)?;
        sock.set_qdisc_bypass()?;
        let frame_size = size.frame_size.clamp(64, BLOCK).next_power_of_two();
        let per_block = BLOCK / frame_size;
        let block_nr = size.frame_nr.max(1).div_ceil(per_block);
        let frame_nr = block_nr * per_block;
        let len = BLOCK * block_nr;
        // Every frame in flight is charged to the send buffer: room for the whole ring.
        sock.set_sndbuf(len * 2)?;
        let set = |opt: i32, val: *const libc::c_void, len: usize, what: &'static str| {
            set_packet_opt(&sock, opt, val, len, what)
        };
        let one: i32 = 1;
        set(PACKET_LOSS, (&raw const one).cast(), 4, "PACKET_LOSS")?;
        if vnet_hdr {
            set(
                PACKET_VNET_HDR,
                (&raw const one).cast(),
                4,
                "PACKET_VNET_HDR",
            )?;
        }
        let version = TPACKET_V2;
        set(
            PACKET_VERSION,
            (&raw const version).cast(),
            4,
            "PACKET_VERSION",
        )?;
        let req = tpacket_req {
            tp_block_size: BLOCK as u32,
            tp_block_nr: block_nr as u32,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: frame_nr as u32,
        };
        set(
            PACKET_TX_RING,
            (&raw const req).cast(),
            std::mem::size_of::<tpacket_req>(),
            "PACKET_TX_RING",
        )?;
        let base = map_ring(&sock, len, "mmap(PACKET_TX_RING)")?;
        Ok(TxRing {
            sock,
            base,
            len,
            frame_size,
            frame_nr,
            vnet_hdr,
            head: 0,
            queued: 0,
            rejected: 0,
        })
    }

    /// The longest frame a slot holds.
    pub fn max_frame(&self) -> usize {
        self.frame_size - SLOT_DATA - if self.vnet_hdr { VNET_HDR } else { 0 }
    }

    /// Slots the kernel rejected (`TP_STATUS_WRONG_FORMAT`) and l2sw took back.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    fn slot(&self, i: usize) -> *mut u8 {
        // SAFETY: `i < frame_nr`, so the slot lies inside the mapping.
        unsafe { self.base.as_ptr().add(i * self.frame_size) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: `tp_status` is an aligned u32 at the start of slot `i` of the live mapping,
        // shared with the kernel, which is what atomics are for.
        unsafe { AtomicU32::from_ptr(self.slot(i).cast()) }
    }

    /// Whether a frame with `meta` can go through this ring: it fits a slot, it is no
    /// super-frame, and a checksum it leaves to complete can be said in the slot's header.
    ///
    /// Super-frames never go through the ring: the ring's socket skips the qdisc layer, and
    /// `__dev_direct_xmit` drops a super-frame the device would need segmented in software
    /// (veth, for one: the kernel marks super-frames from user space `SKB_GSO_DODGY`, and veth
    /// has no `NETIF_F_GSO_ROBUST`).
    pub fn takes(&self, frame: &[u8], meta: &Meta) -> bool {
        frame.len() <= self.max_frame() && meta.gso.is_none() && (self.vnet_hdr || meta.is_plain())
    }

    /// Writes the complete `frame` into the next slot, to go with the next
    /// [`TxRing::send`]. `false` when that slot is still the kernel's (the ring is full) or
    /// the frame is longer than [`TxRing::max_frame`].
    pub fn queue(&mut self, frame: &[u8]) -> bool {
        self.queue_with(frame, &Meta::NONE)
    }

    /// [`TxRing::queue`] for a frame with metadata, which the slot's `virtio_net_hdr`
    /// carries. `false` also when the ring cannot carry it ([`TxRing::takes`]).
    pub fn queue_with(&mut self, frame: &[u8], meta: &Meta) -> bool {
        if !self.takes(frame, meta) {
            return false;
        }
        let i = self.head;
        let status = self.status(i).load(Ordering::Acquire);
        if status & BUSY != 0 {
            return false;
        }
        let slot = self.slot(i);
        let vnet = if self.vnet_hdr { VNET_HDR } else { 0 };
        let len = (vnet + frame.len()) as u32;
        // SAFETY: the slot is l2sw's (neither requested nor in flight); `tp_len` is inside its
        // header and `SLOT_DATA + vnet + frame.len() <= frame_size` (checked above), so every
        // write stays inside the slot. `frame` cannot overlap the mapping, which only this
        // value refers to.
        unsafe {
            std::ptr::write_unaligned(slot.add(SLOT_LEN).cast::<u32>(), len);
            let data = slot.add(SLOT_DATA);
            if self.vnet_hdr {
                // For a frame that fits a slot, `hdr_len` is the whole frame: it goes into
                // the linear area.
                let hdr = meta.to_vnet(frame);
                std::ptr::copy_nonoverlapping(hdr.as_ptr(), data, VNET_HDR);
            }
            std::ptr::copy_nonoverlapping(frame.as_ptr(), data.add(vnet), frame.len());
        }
        self.status(i)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (i + 1) % self.frame_nr;
        self.queued += 1;
        true
    }

    /// Hands every queued frame to the driver with one system call. Frames the kernel
    /// refuses for now (full device queue, full send buffer) are taken back and counted in
    /// [`Sent::returned`]: nothing stays queued for a later call, which might never come.
    pub fn send(&mut self) -> io::Result<Sent> {
        if self.queued == 0 {
            return Ok(Sent::default());
        }
        let first = (self.head + self.frame_nr - self.queued) % self.frame_nr;
        let queued = std::mem::take(&mut self.queued);
        // SAFETY: a send without data: the kernel reads the ring mapped on this socket.
        let n = unsafe {
            libc::send(
                self.sock.as_fd().as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
            )
        };
        let err = (n < 0).then(io::Error::last_os_error);
        // The kernel sends slots in order and stops at the first it cannot, which it leaves
        // requested (or, rejected without `PACKET_LOSS`, marked wrong): find it and take back
        // every slot from there on. The kernel reads the ring only within `send`, and starts
        // the next one from that slot, where l2sw writes next.
        let mut done = queued;
        for k in 0..queued {
            let i = (first + k) % self.frame_nr;
            let status = self.status(i).load(Ordering::Acquire);
            if status & (TP_STATUS_SEND_REQUEST | TP_STATUS_WRONG_FORMAT) != 0 {
                if status & TP_STATUS_WRONG_FORMAT != 0 {
                    self.rejected += 1;
                }
                done = k;
                break;
            }
        }
        for k in done..queued {
            let i = (first + k) % self.frame_nr;
            self.status(i).store(TP_STATUS_AVAILABLE, Ordering::Release);
        }
        self.head = (first + done) % self.frame_nr;
        if let Some(e) = err
            && e.kind() != io::ErrorKind::WouldBlock
            && e.raw_os_error() != Some(libc::ENOBUFS)
        {
            return Err(e);
        }
        Ok(Sent {
            sent: done,
            returned: queued - done,
        })
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the area mapped in `open`; nothing refers into it any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot's length field and data are where the kernel puts them (`tpacket2_hdr`,
    /// `TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`).
    #[test]
    fn slot_offsets_are_the_kernels() {
        assert_eq!((SLOT_LEN, SLOT_DATA, TPACKET_V2), (4, 32, 1));
    }
}
