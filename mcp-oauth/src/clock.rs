//! The clock every time-based decision reads.
//!
//! Expiry, `nbf`, cache lifetimes, key-set TTLs and refresh cooldowns all ask a [`Clock`],
//! so tests move time forward instead of sleeping.
//!
//! ```
//! use mcp_oauth::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new(1_700_000_000);
//! clock.advance(Duration::from_secs(90));
//! assert_eq!(clock.now().as_secs(), 1_700_000_090);
//! ```

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time, as the duration since the Unix epoch.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock set before 1970 is a misconfigured host; treat it as the epoch, which makes
        // every token look expired: failing closed.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share the same time.
///
/// ```
/// use mcp_oauth::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(100);
/// let shared = clock.clone();
/// shared.set(Duration::from_secs(200));
/// assert_eq!(clock.now(), Duration::from_secs(200));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `unix_seconds`.
    pub fn new(unix_seconds: u64) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(unix_seconds.saturating_mul(1_000_000_000))),
        }
    }

    /// A clock standing at the current system time.
    pub fn starting_now() -> Self {
        let clock = Self::new(0);
        clock.set(SystemClock.now());
        clock
    }

    /// Moves the clock forward by `by`, stopping at the latest time it can show (about the
    /// year 2554) rather than wrapping around.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // `fetch_add` would wrap; the closure never refuses, so the update always happens.
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |nanos| {
                Some(nanos.saturating_add(by))
            });
    }

    /// Sets the clock to `since_epoch`.
    pub fn set(&self, since_epoch: Duration) {
        let nanos = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stops_at_its_end_instead_of_wrapping() {
        let clock = ManualClock::new(100);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }
}
