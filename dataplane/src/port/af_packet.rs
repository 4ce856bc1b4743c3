//! A port on an existing interface (a veth end, a NIC) through an AF_PACKET socket: every
//! frame arriving on the interface is read, frames are written out of it whole. The interface
//! is made promiscuous for as long as the port lives. Frames are received through a
//! TPACKET_V3 ring (no system call per frame), or one `recvmsg` a frame where the kernel
//! refuses the ring. They are sent through a TPACKET_V2 transmit ring on a second, send-only
//! socket (one system call per batch, frames copied once into linear socket buffers), or in
//! batches with `sendmmsg` where the kernel refuses the ring.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::sys::SysError;
use super::sys::netns;
use super::sys::packet::{Membership, PacketSocket, too_long};
use super::sys::ring::{Handover, RingSize, RxRing, Slot};
use super::sys::txring::{TxRing, TxRingSize};
use super::{Port, TxFrame};
use crate::fwd::RxFilter;
use crate::wire::{Fault, Meta, SUPER_FRAME_MAX};

/// Receive buffer of each port: room for a few milliseconds of 64-byte frames at line rate
/// while the loop serves other ports.
const RCVBUF: usize = 4 << 20;

/// Send buffer of the receive socket, which sends super-frames: a few dozen in flight.
const SNDBUF: usize = 4 << 20;

/// How an AF_PACKET port reads and writes frames.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The shape of the receive ring.
    pub rx_ring: RingSize,
    /// How frames are sent.
    pub tx: Tx,
}

/// How an AF_PACKET port sends frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    /// `sendmmsg`: one `packet_snd` in the kernel per frame.
    Sendmmsg,
    /// A transmit ring of this shape, each frame preceded by a `virtio_net_hdr` if
    /// `vnet_hdr` (so that the kernel copies it whole into a linear socket buffer).
    Ring {
        /// The ring's shape.
        size: TxRingSize,
        /// Whether slots start with a `virtio_net_hdr`.
        vnet_hdr: bool,
    },
}

impl Options {
    /// The default options with a receive ring that hands frames over as `handover` says.
    pub fn with_handover(handover: Handover, max_frame: usize) -> Options {
        let rx_ring = match handover {
            Handover::Blocks => RingSize::default(),
            // As many bytes as the default V3 ring: 2048 slots of 2 KiB at MTU 1500.
            Handover::Frames => RingSize::frames(RingSize::default().bytes(), max_frame + 1),
        };
        Options {
            rx_ring,
            tx: Tx::default(),
        }
    }
}

impl Default for Options {
    /// A receive ring that hands each frame over at once, for a 1500-byte MTU, and a transmit
    /// ring with virtio headers.
    fn default() -> Self {
        Options::with_handover(Handover::Frames, crate::fwd::switch::DEFAULT_MTU + 18)
    }
}

impl Default for Tx {
    fn default() -> Self {
        Tx::Ring {
            size: TxRingSize::default(),
            vnet_hdr: true,
        }
    }
}

/// An AF_PACKET port.
#[derive(Debug)]
pub struct AfPacketPort {
    sock: PacketSocket,
    ring: Option<RxRing>,
    tx_ring: Option<TxRing>,
    max_frame: usize,
    /// The memberships programmed into the interface.
    held: HashSet<Membership>,
}

impl AfPacketPort {
    /// Opens a port on `ifname` in this process's namespace; frames longer than `max_frame`
    /// are cut (and then dropped by the switch as oversize).
    pub fn open(ifname: &str, max_frame: usize) -> Result<AfPacketPort, SysError> {
        AfPacketPort::open_with(ifname, max_frame, &Options::default())
    }

    /// [`AfPacketPort::open`] with rings shaped by `opts` (benchmarks compare them).
    pub fn open_with(
        ifname: &str,
        max_frame: usize,
        opts: &Options,
    ) -> Result<AfPacketPort, SysError> {
        let sock = PacketSocket::open(ifname)?;
        // Offloads pass through: each frame comes and goes with a `virtio_net_hdr`, so a
        // workload's checksum offload and TSO/GSO super-frames cross l2sw as they cross a
        // kernel bridge. Set before the ring.
        sock.set_vnet_hdr()?;
        sock.set_promiscuous()?;
        let held = [Membership::Promiscuous].into_iter().collect();
        sock.set_rcvbuf(RCVBUF)?;
        // This socket sends what the transmit ring cannot take, super-frames among them: it
        // keeps the interface's qdisc layer, where `validate_xmit_skb` segments a super-frame
        // the device cannot take whole (the bypass would drop it), and room for a few of them.
        sock.set_sndbuf(SNDBUF)?;
        let ring = match RxRing::open(&sock, opts.rx_ring, true) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(interface = ifname, error = %e, "no receive ring: one system call per frame");
                None
            }
        };
        let tx_ring = match opts.tx {
            Tx::Sendmmsg => None,
            Tx::Ring { size, vnet_hdr } => match TxRing::open(ifname, size, vnet_hdr) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(interface = ifname, error = %e, "no transmit ring: one sendmmsg per batch");
                    None
                }
            },
        };
        Ok(AfPacketPort {
            sock,
            ring,
            tx_ring,
            max_frame: max_frame + 1,
            held,
        })
    }

    /// Whether frames arrive through a receive ring (rather than one system call each).
    pub fn has_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// Whether frames leave through a transmit ring (rather than `sendmmsg`).
    pub fn has_tx_ring(&self) -> bool {
        self.tx_ring.is_some()
    }

    /// Opens a port on `ifname` inside the named network namespace `ns`.
    pub fn open_in(ns: &str, ifname: &str, max_frame: usize) -> Result<AfPacketPort, SysError> {
        AfPacketPort::open_in_with(ns, ifname, max_frame, &Options::default())
    }

    /// [`AfPacketPort::open_with`] inside the named network namespace `ns`.
    pub fn open_in_with(
        ns: &str,
        ifname: &str,
        max_frame: usize,
        opts: &Options,
    ) -> Result<AfPacketPort, SysError> {
        netns::run_in(ns, || AfPacketPort::open_with(ifname, max_frame, opts))?
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        self.sock.ifname()
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>> {
        let Some(ring) = &mut self.ring else {
            return self
                .sock
                .recv_vnet_into(buf, SUPER_FRAME_MAX.max(self.max_frame));
        };
        match ring.next_slot_into(buf, self.max_frame) {
            None => Ok(None),
            Some(Slot::Frame(meta)) => Ok(Some(meta)),
            // A super-frame (or any frame longer than a slot): the kernel queued it whole on
            // the socket, in ring order. Were it missing, the slot's cut copy is dropped.
            Some(Slot::Copied) => Ok(Some(
                self.sock
                    .recv_vnet_into(buf, SUPER_FRAME_MAX.max(self.max_frame))?
                    .unwrap_or(Meta::faulty(Fault::Truncated { len: 0 })),
            )),
        }
    }

    fn send_one(&mut self, tx: TxFrame<'_>) -> io::Result<bool> {
        // A full queue loses the frame (counted by the caller); the loop goes on.
        Ok(self.send_batch(&[tx])? == 1)
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> io::Result<usize> {
        let Some(ring) = &mut self.tx_ring else {
            return self.sock.send_many_vnet(frames);
        };
        // Frames go out in order: one the ring cannot take (a super-frame, longer than a
        // slot) is sent on its own through the receive socket, which carries a
        // `virtio_net_hdr` too, after the frames queued before it. Frames the kernel takes
        // back are lost like the ones a full ring refuses (all counted by the caller):
        // `sent` counts what left.
        let mut sent = 0;
        let mut lost = 0;
        for (i, tx) in frames.iter().enumerate() {
            if ring.takes(tx.frame, &tx.meta) {
                if ring.queue_with(tx.frame, &tx.meta) {
                    continue;
                }
                // The ring is full: the rest of the batch is lost.
                lost += frames.len() - i;
                break;
            }
            let s = ring.send()?;
            (sent, lost) = (sent + s.sent, lost + s.returned);
            match self.sock.send_vnet(tx) {
                Ok(true) => sent += 1,
                // Full queue, or longer than the interface's MTU allows.
                Ok(false) => lost += 1,
                Err(e) if too_long(&e) => lost += 1,
                Err(e) => return Err(e),
            }
        }
        let s = ring.send()?;
        sent += s.sent;
        debug_assert_eq!(sent + lost + s.returned, frames.len());
        Ok(sent)
    }

    fn program_filter(&mut self, filter: Option<&RxFilter>) -> io::Result<()> {
        let want: HashSet<Membership> = match filter {
            None | Some(RxFilter::Promiscuous) => [Membership::Promiscuous].into_iter().collect(),
            Some(RxFilter::Unicast {
                own,
                groups,
                allmulti,
            }) => own
                .iter()
                .map(|m| Membership::Unicast(m.0))
                .chain(groups.iter().map(|g| Membership::Multicast(g.0)))
                .chain(allmulti.then_some(Membership::AllMulticast))
                .collect(),
        };
        // Add first, then drop: the interface never accepts less than both filters share.
        for m in want.difference(&self.held) {
            self.sock.membership(true, *m).map_err(|e| e.source)?;
        }
        for m in self.held.difference(&want) {
            self.sock.membership(false, *m).map_err(|e| e.source)?;
        }
        self.held = want;
        Ok(())
    }

    fn waiting(&self) -> Option<bool> {
        self.ring.as_ref().map(RxRing::pending)
    }

    fn readiness(&self) -> Option<BorrowedFd<'_>> {
        Some(self.sock.as_fd())
    }
}
