//! The overlay port: one L2 segment across hosts over VXLAN (RFC 7348), interoperable with the
//! kernel's vxlan devices (`drivers/net/vxlan/vxlan_core.c`). One port per network carries the
//! frames of every remote VTEP: the switch sees it as one bridge port, so "never back out of
//! the ingress port" is the overlay's split horizon, as with a kernel vxlan device on a bridge.
//!
//! Invariants: a received packet becomes exactly one frame of the batch, a faulty one (bad
//! header, another VNI, a sender that is no remote) marked so that the switch drops and counts
//! it by name; no frame from an unknown sender ever reaches the switch unless the network
//! learns remotes. A frame to send goes to the VTEP its metadata names, else to every VTEP of
//! the flood list (head-end replication, the all-zeros entries of the kernel's vxlan FDB).

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::sys::udp::{self, MMSG, Outgoing, Received};
use super::sys::{SysError, netns};
use super::{Port, TxFrame};
use crate::wire::vxlan::{self, HEADER_LEN, UDP_HEADER_LEN, VxlanHeader};
use crate::wire::{Fault, Mac, Meta, OverlayFault, Vni, Vtep};

/// How an overlay port is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanConfig {
    /// The network's VNI.
    pub vni: Vni,
    /// The local VTEP address (the socket binds it; packets leave from it).
    pub local: Ipv4Addr,
    /// The UDP port, here and at every remote (default [`vxlan::IANA_PORT`]).
    pub port: u16,
    /// The flood list: every remote VTEP broadcasts, multicasts and unknown unicasts go to.
    pub remotes: Vec<Ipv4Addr>,
    /// Accept frames from any sender (as the kernel does), learning it as a remote; off by
    /// default: only the flood list's VTEPs get frames in.
    pub learn_remotes: bool,
    /// Learn which VTEP each remote MAC is behind (`vxlan_snoop`, default on); off, frames to
    /// remote MACs go to the whole flood list unless a static entry names their VTEP.
    pub learning: bool,
    /// Static entries made with the port: each MAC behind its remote VTEP (`bridge fdb add
    /// MAC dev vx dst IP`), added to the FDB when the network starts.
    pub statics: Vec<(Mac, Ipv4Addr)>,
}

/// Why an overlay port's settings or a change to them were refused.
#[derive(Debug, thiserror::Error)]
pub enum VxlanConfigError {
    /// A remote equal to the local address.
    #[error("remote {0} is the local VTEP address itself")]
    RemoteIsLocal(Ipv4Addr),
    /// A remote that cannot be a VTEP (unspecified, multicast, broadcast).
    #[error("remote {0} cannot be a VTEP: give a unicast address")]
    BadRemote(Ipv4Addr),
    /// The local address is not a unicast address.
    #[error("local {0} cannot be a VTEP: give a unicast address of this host")]
    BadLocal(Ipv4Addr),
    /// UDP port 0.
    #[error("UDP port 0: give the VXLAN port (4789 by default)")]
    Port,
    /// A remote given twice, or added while already in the flood list.
    #[error("remote {0} is already in the flood list")]
    Duplicate(Ipv4Addr),
    /// A remote to remove that is not in the flood list.
    #[error("remote {0} is not in the flood list")]
    NoSuchRemote(Ipv4Addr),
    /// A static entry for a MAC that is no station's (multicast, all-zero).
    #[error("static entry {0}: multicast and all-zero addresses are never stations")]
    BadStatic(Mac),
    /// Two static entries for one MAC.
    #[error("static entry {0} is given twice")]
    DuplicateStatic(Mac),
}

impl VxlanConfig {
    /// Checks every value, naming the one that is wrong.
    pub fn check(&self) -> Result<(), VxlanConfigError> {
        if self.port == 0 {
            return Err(VxlanConfigError::Port);
        }
        if !unicast(self.local) {
            return Err(VxlanConfigError::BadLocal(self.local));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.remotes {
            self.check_remote(*r)?;
            if !seen.insert(*r) {
                return Err(VxlanConfigError::Duplicate(*r));
            }
        }
        let mut macs = std::collections::BTreeSet::new();
        for (mac, vtep) in &self.statics {
            self.check_remote(*vtep)?;
            if !mac.is_valid_source() {
                return Err(VxlanConfigError::BadStatic(*mac));
            }
            if !macs.insert(*mac) {
                return Err(VxlanConfigError::DuplicateStatic(*mac));
            }
        }
        Ok(())
    }

    /// Checks one remote against the local address.
    pub fn check_remote(&self, r: Ipv4Addr) -> Result<(), VxlanConfigError> {
        if r == self.local {
            return Err(VxlanConfigError::RemoteIsLocal(r));
        }
        if !unicast(r) {
            return Err(VxlanConfigError::BadRemote(r));
        }
        Ok(())
    }
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_multicast() || a.is_broadcast())
}

/// Counters of one remote VTEP (one per event).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteCounters {
    /// Frames received from it and handed to the switch.
    pub rx: u64,
    /// Frames sent to it (a flood counts once per remote).
    pub tx: u64,
    /// Frames for it the kernel did not take (a full socket buffer).
    pub tx_dropped: u64,
}

/// One remote VTEP as the port knows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteInfo {
    /// Its address.
    pub vtep: Ipv4Addr,
    /// In the flood list (given), or else named by a static entry or learned from a packet
    /// (`learn_remotes`).
    pub flood: bool,
    /// Its counters.
    pub counters: RemoteCounters,
}

/// Counters of the overlay port itself.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverlayCounters {
    /// Packets from senders that are no remote (each also a `VxlanUnknownSender` drop).
    pub unknown_sender: u64,
    /// The last such sender, to say who knocked.
    pub last_unknown: Option<Ipv4Addr>,
    /// Super-frames (TSO/GSO) not sent: the overlay carries frames of the workloads' MTU, and
    /// l2sw never segments in software (workloads of an overlay network have segmentation off).
    pub super_frames: u64,
}

/// What an overlay port looks like from the control socket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverlayState {
    /// The VNI.
    pub vni: u32,
    /// The local VTEP.
    pub local: Ipv4Addr,
    /// The UDP port.
    pub port: u16,
    /// Whether unknown senders are accepted and learned.
    pub learn_remotes: bool,
    /// Whether remote MACs are learned behind their VTEP.
    pub learning: bool,
    /// Every remote, flood list first, by address.
    pub remotes: Vec<RemoteInfo>,
    /// The port's own counters.
    pub counters: OverlayCounters,
}

/// The overlay port.
pub struct VxlanPort {
    name: String,
    cfg: VxlanConfig,
    header: [u8; HEADER_LEN],
    rx: UdpSocket,
    tx: OwnedFd,
    /// Every known remote: the flood list's and (with `learn_remotes`) learned ones.
    remotes: BTreeMap<Ipv4Addr, RemoteInfo>,
    /// The flood list, in order (built at configuration time, not per frame).
    flood: Vec<Ipv4Addr>,
    counters: OverlayCounters,
    bufs: Vec<Vec<u8>>,
    got: [Received; MMSG],
    pending: usize,
    next: usize,
    buf_len: usize,
    heads: Vec<[u8; UDP_HEADER_LEN + HEADER_LEN]>,
    scratch: Vec<Vec<u8>>,
    /// The copies of one batch: (frame index in the batch, VTEP), kept between batches so
    /// that sending allocates nothing once it has seen its largest batch.
    copies: Vec<(usize, Ipv4Addr)>,
}

impl std::fmt::Debug for VxlanPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VxlanPort")
            .field("name", &self.name)
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl VxlanPort {
    /// Opens the port's sockets in the daemon's namespace, or in `netns`; frames up to
    /// `max_frame` bytes are carried.
    pub fn open(
        name: &str,
        cfg: VxlanConfig,
        netns: Option<&str>,
        max_frame: usize,
    ) -> Result<VxlanPort, SysError> {
        cfg.check().map_err(|e| {
            SysError::new(
                "configure VXLAN",
                name,
                io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
            )
        })?;
        let open = || -> Result<(UdpSocket, OwnedFd), SysError> {
            let on = format!("{name} ({}:{})", cfg.local, cfg.port);
            let rx = udp::open_rx(SocketAddrV4::new(cfg.local, cfg.port), &on)?;
            let tx = udp::open_tx(cfg.local, &on)?;
            Ok((rx, tx))
        };
        let (rx, tx) = match netns {
            Some(ns) => netns::run_in(ns, open)??,
            None => open()?,
        };
        let buf_len = max_frame + HEADER_LEN;
        let mut port = VxlanPort {
            name: name.to_owned(),
            header: VxlanHeader::build(cfg.vni),
            rx,
            tx,
            remotes: BTreeMap::new(),
            flood: Vec::new(),
            counters: OverlayCounters::default(),
            bufs: (0..MMSG).map(|_| Vec::with_capacity(buf_len)).collect(),
            got: [Received {
                len: 0,
                from: Ipv4Addr::UNSPECIFIED,
                truncated: false,
            }; MMSG],
            pending: 0,
            next: 0,
            buf_len,
            heads: vec![[0; UDP_HEADER_LEN + HEADER_LEN]; MMSG],
            scratch: (0..MMSG).map(|_| Vec::new()).collect(),
            copies: Vec::with_capacity(MMSG),
            cfg,
        };
        for r in port.cfg.remotes.clone() {
            port.remotes.insert(r, remote(r, true));
        }
        port.rebuild_flood();
        Ok(port)
    }

    fn rebuild_flood(&mut self) {
        self.flood = self
            .remotes
            .values()
            .filter(|r| r.flood)
            .map(|r| r.vtep)
            .collect();
        self.cfg.remotes = self.flood.clone();
    }

    /// The port's settings (its flood list as it is now).
    pub fn config(&self) -> &VxlanConfig {
        &self.cfg
    }

    /// Adds `vtep` to the flood list (a remote that joined the overlay).
    pub fn add_remote(&mut self, vtep: Ipv4Addr) -> Result<(), VxlanConfigError> {
        self.cfg.check_remote(vtep)?;
        match self.remotes.get_mut(&vtep) {
            Some(r) if r.flood => return Err(VxlanConfigError::Duplicate(vtep)),
            Some(r) => r.flood = true,
            None => {
                self.remotes.insert(vtep, remote(vtep, true));
            }
        }
        self.rebuild_flood();
        Ok(())
    }

    /// Knows `vtep` as a remote a static entry names (`bridge fdb add MAC dev vx dst IP`):
    /// its packets are accepted as a flood list remote's are, though nothing is flooded to
    /// it. A remote already known stays as it is.
    pub fn know_remote(&mut self, vtep: Ipv4Addr) -> Result<(), VxlanConfigError> {
        self.cfg.check_remote(vtep)?;
        self.remotes
            .entry(vtep)
            .or_insert_with(|| remote(vtep, false));
        Ok(())
    }

    /// Forgets `vtep` if no flood list holds it (the last static entry naming it went): its
    /// packets are unknown senders' again. Returns whether it was forgotten.
    pub fn forget_remote(&mut self, vtep: Ipv4Addr) -> bool {
        if self.remotes.get(&vtep).is_some_and(|r| !r.flood) {
            self.remotes.remove(&vtep);
            return true;
        }
        false
    }

    /// Removes `vtep` from the port (a remote that left): it is flooded to no more and, unless
    /// the network learns remotes, its packets are dropped as from an unknown sender.
    pub fn remove_remote(&mut self, vtep: Ipv4Addr) -> Result<(), VxlanConfigError> {
        if self.remotes.remove(&vtep).is_none() {
            return Err(VxlanConfigError::NoSuchRemote(vtep));
        }
        self.rebuild_flood();
        Ok(())
    }

    /// The port as the control socket shows it.
    pub fn state(&self) -> OverlayState {
        let mut remotes: Vec<RemoteInfo> = self.remotes.values().copied().collect();
        remotes.sort_by_key(|r| (!r.flood, r.vtep));
        OverlayState {
            vni: self.cfg.vni.get(),
            local: self.cfg.local,
            port: self.cfg.port,
            learn_remotes: self.cfg.learn_remotes,
            learning: self.cfg.learning,
            remotes,
            counters: self.counters,
        }
    }

    /// Checks one received packet; the sender's address if it may come in.
    fn admit(&mut self, from: Ipv4Addr, payload: &[u8]) -> Result<Vtep, OverlayFault> {
        let h = VxlanHeader::parse(payload).map_err(OverlayFault::Header)?;
        if h.vni != self.cfg.vni.get() {
            return Err(OverlayFault::Vni { vni: h.vni });
        }
        match self.remotes.get_mut(&from) {
            Some(r) => r.counters.rx += 1,
            None if self.cfg.learn_remotes && unicast(from) && from != self.cfg.local => {
                let mut r = remote(from, false);
                r.counters.rx = 1;
                self.remotes.insert(from, r);
            }
            None => {
                self.counters.unknown_sender += 1;
                self.counters.last_unknown = Some(from);
                return Err(OverlayFault::UnknownSender(Vtep(from)));
            }
        }
        Ok(Vtep(from))
    }
}

fn remote(vtep: Ipv4Addr, flood: bool) -> RemoteInfo {
    RemoteInfo {
        vtep,
        flood,
        counters: RemoteCounters::default(),
    }
}

/// Completes a checksum the sender left to the device (`CHECKSUM_PARTIAL`): the field holds
/// the pseudo-header's sum; the sum from `start` to the end goes there. False when the offsets
/// lie outside the frame.
fn complete_checksum(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let at = start + offset;
    if start > frame.len() || at + 2 > frame.len() {
        return false;
    }
    let mut sum: u32 = 0;
    let mut chunks = frame[start..].chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut csum = !(sum as u16);
    if csum == 0 {
        csum = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&csum.to_be_bytes());
    true
}

impl Port for VxlanPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Meta>> {
        if self.next >= self.pending {
            for b in &mut self.bufs {
                b.clear();
                b.reserve(self.buf_len);
            }
            self.pending = udp::recv_batch(&self.rx, &mut self.bufs, &mut self.got)?;
            self.next = 0;
            if self.pending == 0 {
                return Ok(None);
            }
        }
        let i = self.next;
        self.next += 1;
        let got = self.got[i];
        let payload = std::mem::take(&mut self.bufs[i]);
        buf.clear();
        buf.extend_from_slice(payload.get(HEADER_LEN..).unwrap_or(&[]));
        let admitted = self.admit(got.from, &payload);
        self.bufs[i] = payload;
        let meta = match admitted {
            Err(f) => Meta::faulty(Fault::Overlay(f)),
            Ok(_) if got.truncated => Meta::faulty(Fault::Truncated {
                len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            }),
            Ok(vtep) => Meta {
                vtep: Some(vtep),
                snoop: self.cfg.learning,
                ..Meta::NONE
            },
        };
        Ok(Some(meta))
    }

    fn send_one(&mut self, tx: TxFrame<'_>) -> io::Result<bool> {
        Ok(self.send_batch(&[tx])? == 1)
    }

    /// Sends each frame to the VTEP its metadata names, or to every VTEP of the flood list;
    /// a frame counts as taken when every copy was.
    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> io::Result<usize> {
        let mut taken = 0;
        for chunk in frames.chunks(MMSG) {
            // Complete any checksum the sender left (the frame leaves as UDP payload, which no
            // device will complete), and set super-frames aside.
            let mut ok = [false; MMSG];
            for (i, tx) in chunk.iter().enumerate() {
                if tx.meta.gso.is_some() {
                    self.counters.super_frames += 1;
                    continue;
                }
                ok[i] = true;
                let s = &mut self.scratch[i];
                s.clear();
                if let Some(c) = tx.meta.csum {
                    s.extend_from_slice(tx.frame);
                    ok[i] = complete_checksum(s, usize::from(c.start), usize::from(c.offset));
                }
                let len = HEADER_LEN + tx.frame.len();
                let udp = vxlan::udp_header(vxlan::source_port(tx.frame), self.cfg.port, len);
                self.heads[i][..UDP_HEADER_LEN].copy_from_slice(&udp);
                self.heads[i][UDP_HEADER_LEN..].copy_from_slice(&self.header);
            }
            // Every copy to send: one to the VTEP a frame's entry names, else one to each VTEP
            // of the flood list.
            let mut copies = std::mem::take(&mut self.copies);
            copies.clear();
            for (i, tx) in chunk.iter().enumerate().filter(|(i, _)| ok[*i]) {
                match tx.meta.vtep {
                    Some(v) => copies.push((i, v.0)),
                    None => copies.extend(self.flood.iter().map(|to| (i, *to))),
                }
            }
            let mut sent_total = 0;
            while sent_total < copies.len() {
                let mut batch = [Outgoing {
                    to: Ipv4Addr::UNSPECIFIED,
                    head: &[],
                    frame: &[],
                }; MMSG];
                let window = &copies[sent_total..copies.len().min(sent_total + MMSG)];
                for (slot, &(i, to)) in batch.iter_mut().zip(window) {
                    let frame = if chunk[i].meta.csum.is_some() {
                        self.scratch[i].as_slice()
                    } else {
                        chunk[i].frame
                    };
                    *slot = Outgoing {
                        to,
                        head: &self.heads[i][..],
                        frame,
                    };
                }
                let sent = match udp::send_batch(&self.tx, &batch[..window.len()]) {
                    Ok(n) => n,
                    Err(e) => {
                        self.copies = copies;
                        return Err(e);
                    }
                };
                sent_total += sent;
                if sent == 0 {
                    break;
                }
            }
            let mut all = [true; MMSG];
            for (k, &(i, to)) in copies.iter().enumerate() {
                let r = self.remotes.get_mut(&to);
                if k < sent_total {
                    if let Some(r) = r {
                        r.counters.tx += 1;
                    }
                } else {
                    all[i] = false;
                    if let Some(r) = r {
                        r.counters.tx_dropped += 1;
                    }
                }
            }
            self.copies = copies;
            taken += (0..chunk.len()).filter(|i| ok[*i] && all[*i]).count();
        }
        Ok(taken)
    }

    /// The receive socket. Packets already read into the port's buffers are never stranded:
    /// the engine services a port until a receive finds nothing, which here means the
    /// buffers are empty and the socket too.
    fn readiness(&self) -> Option<BorrowedFd<'_>> {
        Some(self.rx.as_fd())
    }

    fn as_vxlan(&self) -> Option<&VxlanPort> {
        Some(self)
    }

    fn as_vxlan_mut(&mut self) -> Option<&mut VxlanPort> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VxlanConfig {
        VxlanConfig {
            vni: Vni::new(42).unwrap(),
            local: Ipv4Addr::new(192, 0, 2, 1),
            port: vxlan::IANA_PORT,
            remotes: vec![Ipv4Addr::new(192, 0, 2, 2)],
            learn_remotes: false,
            learning: true,
            statics: Vec::new(),
        }
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(cfg().check().is_ok());
        let mut c = cfg();
        c.remotes.push(c.local);
        assert_eq!(
            c.check().unwrap_err().to_string(),
            "remote 192.0.2.1 is the local VTEP address itself"
        );
        let mut c = cfg();
        c.remotes.push(c.remotes[0]);
        assert!(matches!(c.check(), Err(VxlanConfigError::Duplicate(_))));
        let mut c = cfg();
        c.remotes = vec![Ipv4Addr::new(239, 1, 1, 1)];
        assert!(matches!(c.check(), Err(VxlanConfigError::BadRemote(_))));
        let mut c = cfg();
        c.port = 0;
        assert!(matches!(c.check(), Err(VxlanConfigError::Port)));
    }

    #[test]
    fn a_completed_checksum_verifies() {
        // Any bytes: after completion, the one's-complement sum over the range is 0xffff.
        let mut f: Vec<u8> = (0..61u8).map(|i| i.wrapping_mul(37)).collect();
        f[20] = 0;
        f[21] = 0;
        assert!(complete_checksum(&mut f, 4, 16));
        let mut sum: u32 = 0;
        for c in f[4..].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        assert!(!complete_checksum(&mut f, 60, 16));
    }
}
