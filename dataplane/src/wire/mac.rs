//! MAC addresses. A `Mac` is six bytes in wire order; `key()` packs it into the low 48 bits of a
//! `u64` (big-endian), which is how the forwarding database hashes and compares it.

use std::fmt;
use std::str::FromStr;

/// An IEEE 802 MAC address, in wire order.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// 00:00:00:00:00:00, never a valid source.
    pub const ZERO: Mac = Mac([0; 6]);

    /// Reads a MAC from the first six bytes of `b`; `None` if `b` is shorter.
    #[inline]
    pub fn from_slice(b: &[u8]) -> Option<Mac> {
        let six: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(Mac(six))
    }

    /// The address as a 48-bit number in the low bits of a `u64`.
    #[inline]
    pub const fn key(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address from the low 48 bits of `k` (inverse of [`Mac::key`]).
    #[inline]
    pub const fn from_key(k: u64) -> Mac {
        let b = k.to_be_bytes();
        Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Group bit set: multicast or broadcast (`is_multicast_ether_addr`).
    #[inline]
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }

    /// ff:ff:ff:ff:ff:ff (`is_broadcast_ether_addr`).
    #[inline]
    pub const fn is_broadcast(self) -> bool {
        self.key() == 0xffff_ffff_ffff
    }

    /// All zero (`is_zero_ether_addr`).
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.key() == 0
    }

    /// Neither multicast nor all-zero (`is_valid_ether_addr`): the only sources a bridge accepts.
    #[inline]
    pub const fn is_valid_source(self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// 01:80:C2:00:00:0X, the IEEE 802.1D reserved group addresses (`is_link_local_ether_addr`).
    #[inline]
    pub const fn is_link_local(self) -> bool {
        self.key() & !0xf == 0x0180_c200_0000
    }

    /// The locally administered bit (set on generated addresses).
    #[inline]
    pub const fn is_local_admin(self) -> bool {
        self.0[0] & 2 != 0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: expected six hex bytes like 02:42:ac:11:00:02")]
pub struct ParseMacError {
    input: String,
}

impl FromStr for Mac {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Mac, ParseMacError> {
        let err = || ParseMacError {
            input: s.to_owned(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(out))
    }
}

/// Written as text ("02:42:ac:11:00:02"), as people read it in configuration and state files.
impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multicast());
        assert!(!Mac::ZERO.is_valid_source());
        let stp: Mac = "01:80:c2:00:00:00".parse().unwrap();
        let lldp: Mac = "01:80:c2:00:00:0e".parse().unwrap();
        let not_ll: Mac = "01:80:c2:00:00:10".parse().unwrap();
        assert!(stp.is_link_local() && lldp.is_link_local() && !not_ll.is_link_local());
        let m: Mac = "02:42:ac:11:00:02".parse().unwrap();
        assert!(m.is_valid_source() && m.is_local_admin());
        assert_eq!(Mac::from_key(m.key()), m);
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "1:2:3:4:5",
            "01:02:03:04:05:06:07",
            "zz:00:00:00:00:00",
            "001:0:0:0:0:0",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert_eq!(
            "1-2-3-4-5-6".parse::<Mac>().unwrap(),
            Mac([1, 2, 3, 4, 5, 6])
        );
    }
}
