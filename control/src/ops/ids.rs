//! Identities l2ctl hands out: random ids and link names, random and Docker-style MACs.

use super::*;

/// `n` random bytes as hex, for link names and ids.
pub(super) fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        // Never reached on Linux; the clock still gives distinct names.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = (t >> (8 * (i % 16))) as u8 ^ (std::process::id() >> (i % 4)) as u8;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random locally administered unicast MAC.
pub(super) fn random_mac() -> Mac {
    let hex = random_hex(6);
    let mut m = Mac::ZERO;
    for (i, byte) in m.0.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    m.0[0] = (m.0[0] & 0xfc) | 0x02;
    m
}

/// Docker's classic MAC for an IPv4 address: 02:42 and the address's four bytes.
pub(super) fn mac_for(ip: Option<IpAddr>) -> Mac {
    match ip {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            Mac([0x02, 0x42, o[0], o[1], o[2], o[3]])
        }
        _ => random_mac(),
    }
}
