//! A small lab around one `Switch`: ports by name, frames in, receivers out (by name, plus
//! "host"), read from the per-port TX queues `process` builds, and checked against the verdict.

use std::collections::BTreeMap;

use l2sw::fwd::{
    Batch, Decision, DropReason, PortConfig, PortId, Switch, SwitchConfig, TagOp, Tick, Verdict,
    Why,
};
use l2sw::wire::{Mac, craft};

/// An IPv4 multicast group MAC: 01:00:5e:00:00:nn.
pub fn group(n: u8) -> Mac {
    Mac([1, 0, 0x5e, 0, 0, n])
}

/// A plain unicast frame (ethertype craft::ETHERTYPE_EXPERIMENTAL, local experimental).
pub fn uc(dst: Mac, src: Mac) -> Vec<u8> {
    craft::ethernet(dst, src, craft::ETHERTYPE_EXPERIMENTAL, b"l2sw")
}

/// A broadcast frame.
pub fn bc(src: Mac) -> Vec<u8> {
    uc(Mac::BROADCAST, src)
}

/// What one frame did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    /// Receivers by port name, and "host" for the host side without a host port.
    pub to: Vec<String>,
    /// The drop reason, if nothing received it.
    pub drop: Option<DropReason>,
    /// The rule.
    pub why: Why,
    /// The whole decision.
    pub decision: Decision,
    /// Tag edits per receiving port.
    pub tags: BTreeMap<String, TagOp>,
    /// The frame as each receiving port sends it.
    pub bytes: BTreeMap<String, Vec<u8>>,
}

impl Got {
    /// Receivers as `&str`s.
    pub fn to(&self) -> Vec<&str> {
        self.to.iter().map(String::as_str).collect()
    }
}

/// A switch with named ports and a clock.
#[derive(Debug)]
pub struct Lab {
    /// The switch.
    pub sw: Switch,
    /// Its ports by name.
    pub ids: BTreeMap<String, PortId>,
    /// The clock, at which [`Lab::send`] sends.
    pub now: Tick,
    batch: Batch<Vec<u8>>,
}

impl Lab {
    pub fn new(cfg: SwitchConfig) -> Lab {
        Lab {
            sw: Switch::new(cfg).expect("switch config"),
            ids: BTreeMap::new(),
            now: Tick::from_secs(1),
            batch: Batch::new(),
        }
    }

    pub fn bridge() -> Lab {
        Lab::new(SwitchConfig::bridge())
    }

    pub fn macvlan() -> Lab {
        Lab::new(SwitchConfig::macvlan())
    }

    /// Adds a port; panics with the error if refused (tests of refusals call `sw` directly).
    pub fn add(&mut self, cfg: PortConfig) -> PortId {
        let name = cfg.name.clone();
        let id = self.sw.add_port(cfg).expect("add port");
        self.ids.insert(name, id);
        id
    }

    pub fn id(&self, name: &str) -> PortId {
        self.ids[name]
    }

    fn name(&self, p: PortId) -> String {
        self.ids
            .iter()
            .find(|(_, id)| **id == p)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("{p}"))
    }

    /// Sends one frame in on `port` at the lab's clock.
    pub fn send(&mut self, port: &str, frame: &[u8]) -> Got {
        self.send_many(&[(port, frame.to_vec())]).remove(0)
    }

    /// Sends several frames in one batch.
    pub fn send_many(&mut self, frames: &[(&str, Vec<u8>)]) -> Vec<Got> {
        self.batch.clear();
        for (p, f) in frames {
            let id = self.id(p);
            self.batch.push(id, f.clone()).expect("batch room");
        }
        self.sw.process(self.now, &mut self.batch);
        let mut gots: Vec<Got> = self
            .batch
            .decisions()
            .iter()
            .map(|d| Got {
                to: Vec::new(),
                drop: match d.verdict {
                    Verdict::Drop(r) => Some(r),
                    _ => None,
                },
                why: d.why,
                decision: *d,
                tags: BTreeMap::new(),
                bytes: BTreeMap::new(),
            })
            .collect();
        for (p, items) in self.batch.egress() {
            let name = self.name(p);
            for it in items {
                let g = &mut gots[usize::from(it.frame)];
                g.to.push(name.clone());
                g.tags.insert(name.clone(), it.tag);
                let mut out = Vec::new();
                let (_, bytes) = self.batch.frame(usize::from(it.frame)).unwrap();
                it.tag.apply(bytes, &mut out);
                g.bytes.insert(name.clone(), out);
            }
        }
        for it in self.batch.to_host() {
            gots[usize::from(it.frame)].to.push("host".into());
        }
        for g in &mut gots {
            g.to.sort();
            // The queues must say exactly what the verdict says.
            let mut expect: Vec<String> = g
                .decision
                .verdict
                .ports()
                .iter()
                .map(|p| self.name(p))
                .collect();
            if g.decision.verdict.to_host() {
                match self.sw.host_port() {
                    Some(h) => expect.push(self.name(h)),
                    None => expect.push("host".into()),
                }
            }
            expect.sort();
            expect.dedup();
            assert_eq!(
                g.to, expect,
                "TX queues disagree with the verdict {:?}",
                g.decision
            );
        }
        gots
    }

    /// Advances the clock.
    pub fn advance(&mut self, secs: u32) {
        self.now = Tick(self.now.0 + secs * 100);
    }
}
