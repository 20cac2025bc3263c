//! Time as a parameter: [`Clock`] with the real [`SystemClock`] and a [`SimulatedClock`] for
//! tests. Logic that sessions, TOTP, schedules or retention depend on takes a `&dyn Clock`
//! instead of calling `Utc::now()`.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time in UTC.
    fn now(&self) -> DateTime<Utc>;
    /// Time elapsed since this clock was created, monotonic.
    fn elapsed(&self) -> std::time::Duration;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    started: Instant,
}

impl SystemClock {
    /// A system clock whose [`Clock::elapsed`] counts from now.
    pub fn new() -> Self {
        Self { started: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug)]
pub struct SimulatedClock {
    start: DateTime<Utc>,
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    /// A simulated clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { start, now: Mutex::new(start) }
    }

    /// Move the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Jump to an absolute time.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn elapsed(&self) -> std::time::Duration {
        (self.now() - self.start).to_std().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_moves_only_when_told() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let clock = SimulatedClock::new(t0);
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::seconds(90));
        assert_eq!(clock.now(), t0 + Duration::seconds(90));
        assert_eq!(clock.elapsed(), std::time::Duration::from_secs(90));
        clock.set(t0);
        assert_eq!(clock.elapsed(), std::time::Duration::ZERO);
    }

    #[test]
    fn system_clock_is_monotonic_enough() {
        let c = SystemClock::new();
        let a = c.elapsed();
        let b = c.elapsed();
        assert!(b >= a);
        assert!((Utc::now() - c.now()).num_seconds().abs() < 5);
    }
}
