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

/// RFC 3339 in UTC with milliseconds, from a duration since the Unix epoch.
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    match rfc3339_bytes(since_epoch) {
        Some(bytes) => bytes.iter().map(|&b| char::from(b)).collect(),
        None => rfc3339_formatted(since_epoch),
    }
}

/// [`rfc3339`] as its 24 ASCII bytes, written digit by digit (no formatting machinery: the
/// audit line writes it for every request); `None` past the year 9999.
pub(crate) fn rfc3339_bytes(since_epoch: Duration) -> Option<[u8; 24]> {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(i64::try_from(secs / 86_400).ok()?);
    let year = u32::try_from(year).ok().filter(|year| *year <= 9999)?;
    let rem = (secs % 86_400) as u32;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3600);
    put(14, 2, (rem / 60) % 60);
    put(17, 2, rem % 60);
    put(20, 3, since_epoch.subsec_millis());
    Some(out)
}

fn rfc3339_formatted(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A span of seconds in words, largest unit first, zero units left out: `1 h 2 min 5 s`
/// (`0 s` for none). What a person reads in a diagnosis (`expired 2 min 5 s ago`).
///
/// ```
/// use mcp_oauth::clock::span_in_words;
/// assert_eq!(span_in_words(3725), "1 h 2 min 5 s");
/// assert_eq!(span_in_words(86_400), "1 d");
/// assert_eq!(span_in_words(0), "0 s");
/// ```
pub fn span_in_words(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "min"), (s, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if parts.is_empty() {
        "0 s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_bytes_agree_with_the_formatted_text() {
        let mut secs: u64 = 0;
        while secs < 253_402_300_800 {
            let at = Duration::new(secs, (secs % 1000) as u32 * 1_000_123);
            let bytes = rfc3339_bytes(at).expect("before 10000");
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), rfc3339_formatted(at));
            secs = secs * 3 / 2 + 86_399;
        }
        assert_eq!(rfc3339_bytes(Duration::from_secs(253_402_300_800)), None);
        assert_eq!(
            rfc3339(Duration::from_secs(253_402_300_800)),
            "10000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_manual_clock_stops_at_its_end_instead_of_wrapping() {
        let clock = ManualClock::new(100);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }
}
