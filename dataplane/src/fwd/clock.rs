//! Time as a parameter. The core never reads a clock: callers pass a [`Tick`], centiseconds since
//! an epoch of their choosing (the kernel's `USER_HZ` unit for bridge ageing). A `u32` of
//! centiseconds wraps after 497 days; every comparison uses wrapping differences, which stay
//! correct while ageing runs more often than every 248 days.

use std::time::Duration;

/// A point in time, in centiseconds since the caller's epoch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tick(pub u32);

/// Ticks per second.
pub const TICKS_PER_SEC: u32 = 100;

impl Tick {
    /// The tick `d` after the epoch (wrapping).
    pub fn from_duration(d: Duration) -> Tick {
        Tick((d.as_millis() / 10) as u32)
    }

    /// The tick `secs` seconds after the epoch (wrapping).
    pub const fn from_secs(secs: u32) -> Tick {
        Tick(secs.wrapping_mul(TICKS_PER_SEC))
    }

    /// Centiseconds from `earlier` to `self`.
    #[inline]
    pub const fn since(self, earlier: Tick) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
}

/// A duration in ticks (rounded down to the centisecond, saturating).
pub fn ticks(d: Duration) -> u32 {
    u32::try_from(d.as_millis() / 10).unwrap_or(u32::MAX)
}
