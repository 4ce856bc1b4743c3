//! `l2ctl trace` and `l2ctl capture`: ask the daemon to record, then take what it recorded
//! every tenth of a second until the count is reached or the user stops (Ctrl-C). The daemon
//! keeps at most a bounded queue; what a slow reader lost is reported, never hidden.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use l2sw::trace::{Captured, Direction, TraceRecord};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

use crate::client::{Client, ClientError};

/// How often the daemon is asked for what it recorded.
const POLL: Duration = Duration::from_millis(100);

/// Why a trace or capture stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The daemon refused or is gone.
    #[error(transparent)]
    Daemon(#[from] ClientError),
    /// Writing the output or the file.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The pcapng writer.
    #[error("writing {path}: {what}")]
    Pcap {
        /// The file.
        path: String,
        /// What failed.
        what: String,
    },
    /// The daemon sent something that is not a record.
    #[error("the daemon sent a malformed record: {0}")]
    Malformed(String),
}

/// A trace record told as a short story for people.
pub trait Narrate {
    /// The record: the frame, what was learned, the rule, where it went (times from
    /// `start_us`).
    fn render(&self, start_us: u64) -> String;
}

impl Narrate for TraceRecord {
    fn render(&self, start_us: u64) -> String {
        let t = self.time_us.saturating_sub(start_us) as f64 / 1e6;
        let vlan = if self.vid == l2sw::fwd::Vid::UNAWARE {
            String::new()
        } else {
            format!("  vlan {}", self.vid)
        };
        let offload = self
            .offload
            .as_deref()
            .map_or_else(String::new, |o| format!(" ({o})"));
        let from = self
            .from_vtep
            .as_deref()
            .map_or_else(String::new, |v| format!(" from VTEP {v}"));
        let mut s = format!(
            "#{:<4} {t:>8.3}s  in {}{from}  {} bytes{offload}{vlan}\n      {}\n",
            self.seq, self.ingress, self.len, self.summary
        );
        if let Some(l) = &self.learned {
            s += &format!("      learn: source {l}\n");
        }
        s += &format!("      rule:  {}: {}\n", self.kernel_fn, self.rule);
        let mut to: Vec<&str> = self.egress.iter().map(String::as_str).collect();
        if self.host {
            to.push("(host)");
        }
        match (&self.drop, to.is_empty()) {
            (Some(r), true) => {
                let why = self.drop_why.as_deref().unwrap_or_default();
                s += &format!("      ✗ dropped: {r} ({why})\n");
            }
            _ => {
                let vtep = self
                    .to_vtep
                    .as_deref()
                    .map_or_else(String::new, |v| format!(" (to VTEP {v})"));
                s += &format!("      → {}{vtep}\n", to.join(", "));
            }
        }
        s
    }
}

/// What a recording hands over at each take: its items, how many the daemon lost, and whether
/// it goes on.
struct Take<T> {
    items: Vec<T>,
    lost: u64,
    active: bool,
}

/// Takes what the daemon recorded (`take`) until it says it is done (or `stop` is set),
/// handing each batch's items to `each`; stops the recording (`stop_op`) on the way out.
/// Returns how many items arrived and how many the daemon lost.
fn poll<T>(
    stop: &AtomicBool,
    mut take: impl FnMut() -> Result<Take<T>, ClientError>,
    stop_op: impl FnOnce() -> Result<(), ClientError>,
    mut each: impl FnMut(Vec<T>) -> Result<(), WatchError>,
) -> Result<(u64, u64), WatchError> {
    let (mut got, mut lost) = (0, 0);
    let result = loop {
        let answer = match take() {
            Ok(a) => a,
            Err(e) => break Err(e.into()),
        };
        lost += answer.lost;
        got += answer.items.len() as u64;
        if let Err(e) = each(answer.items) {
            break Err(e);
        }
        if !answer.active || stop.load(Ordering::Relaxed) {
            break Ok((got, lost));
        }
        std::thread::sleep(POLL);
    };
    // Best effort: the recording ends by itself when its count runs out.
    let _ = stop_op();
    result
}

/// `l2ctl trace`: prints each traced frame (or its JSON, one per line) as it comes.
pub fn trace(
    client: &Client,
    network: &str,
    port: Option<&str>,
    count: u64,
    json_out: bool,
    out: &mut impl Write,
    stop: &AtomicBool,
) -> Result<(u64, u64), WatchError> {
    client.trace(network, port, count)?;
    let mut start = None;
    let take = || {
        client.trace_take(network).map(|t| Take {
            items: t.records,
            lost: t.lost,
            active: t.active,
        })
    };
    poll(
        stop,
        take,
        || client.trace_stop(network),
        |items| {
            for r in items {
                if json_out {
                    let line = serde_json::to_string(&r)
                        .map_err(|e| WatchError::Malformed(e.to_string()))?;
                    writeln!(out, "{line}")?;
                    continue;
                }
                let t0 = *start.get_or_insert(r.time_us);
                write!(out, "{}", r.render(t0))?;
            }
            out.flush()?;
            Ok(())
        },
    )
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// pcapng `epb_flags` direction bits: inbound 1, outbound 2.
fn direction_flag(dir: Direction) -> u32 {
    match dir {
        Direction::In => 1,
        Direction::Out => 2,
    }
}

/// `l2ctl capture`: writes the frames into a pcapng file, one interface per port (named
/// after it), each frame marked inbound or outbound.
pub fn capture(
    client: &Client,
    network: &str,
    port: Option<&str>,
    count: u64,
    path: &Path,
    stop: &AtomicBool,
) -> Result<(u64, u64), WatchError> {
    let pcap_err = |e: pcap_file::PcapError| WatchError::Pcap {
        path: path.display().to_string(),
        what: e.to_string(),
    };
    let file = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))?;
    let mut writer = PcapNgWriter::new(BufWriter::new(file)).map_err(pcap_err)?;
    client.capture(network, port, count)?;
    let mut interfaces: Vec<String> = Vec::new();
    let take = || {
        client.capture_take(network).map(|c| Take {
            items: c.frames,
            lost: c.lost,
            active: c.active,
        })
    };
    let counts = poll(
        stop,
        take,
        || client.capture_stop(network),
        |items| {
            for f in items {
                let f: Captured = f;
                let data = unhex(&f.hex).ok_or_else(|| WatchError::Malformed(f.hex.clone()))?;
                let id = match interfaces.iter().position(|p| *p == f.port) {
                    Some(i) => i,
                    None => {
                        writer
                            .write_pcapng_block(InterfaceDescriptionBlock {
                                linktype: DataLink::ETHERNET,
                                snaplen: 0,
                                options: vec![InterfaceDescriptionOption::IfName(Cow::Owned(
                                    f.port.clone(),
                                ))],
                            })
                            .map_err(pcap_err)?;
                        interfaces.push(f.port.clone());
                        interfaces.len() - 1
                    }
                };
                writer
                    .write_pcapng_block(EnhancedPacketBlock {
                        interface_id: u32::try_from(id).unwrap_or(u32::MAX),
                        timestamp: Duration::from_micros(f.time_us),
                        original_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                        data: Cow::Owned(data),
                        options: vec![EnhancedPacketOption::Flags(direction_flag(f.dir))],
                    })
                    .map_err(pcap_err)?;
            }
            Ok(())
        },
    )?;
    writer.get_mut().flush()?;
    Ok(counts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_like_a_story() {
        let r = TraceRecord {
            seq: 3,
            time_us: 1_500_000,
            ingress: "web".into(),
            len: 60,
            offload: None,
            summary: "02:42:0a:14:00:02 > ff:ff:ff:ff:ff:ff, ARP who-has 10.20.0.3".into(),
            from_vtep: None,
            to_vtep: None,
            vid: l2sw::fwd::Vid::UNAWARE,
            learned: Some("new entry".into()),
            kernel_fn: "br_flood".into(),
            rule: "unknown unicast flooded".into(),
            egress: vec!["db".into(), "cache".into()],
            host: true,
            drop: None,
            drop_why: None,
        };
        let text = r.render(1_000_000);
        assert!(
            text.starts_with("#3       0.500s  in web  60 bytes"),
            "{text}"
        );
        assert!(text.contains("learn: source new entry"));
        assert!(text.contains("rule:  br_flood: unknown unicast flooded"));
        assert!(text.contains("→ db, cache, (host)"));
        let overlay = TraceRecord {
            ingress: "vxlan".into(),
            from_vtep: Some("192.0.2.2".into()),
            to_vtep: Some("192.0.2.3".into()),
            egress: vec!["vxlan".into()],
            host: false,
            ..r.clone()
        };
        let text = overlay.render(1_000_000);
        assert!(text.contains("in vxlan from VTEP 192.0.2.2"), "{text}");
        assert!(text.contains("→ vxlan (to VTEP 192.0.2.3)"), "{text}");
        let superframe = TraceRecord {
            len: 65226,
            offload: Some("tcp4 seg 1448, csum@34+16".into()),
            ..r.clone()
        };
        assert!(
            superframe
                .render(1_000_000)
                .contains("65226 bytes (tcp4 seg 1448, csum@34+16)"),
            "a super-frame shows its length and segment size"
        );
        let dropped = TraceRecord {
            egress: vec![],
            host: false,
            drop: Some("FilterMiss".into()),
            drop_why: Some("not in the port's filter".into()),
            ..r
        };
        assert!(
            dropped
                .render(0)
                .contains("✗ dropped: FilterMiss (not in the port's filter)")
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
