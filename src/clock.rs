//! The time as ipamd's behaviour sees it: every expiry, window and stamp reads it from the app's [`Clock`], so a
//! test can move time forward instead of sleeping on the wall clock.
//!
//! Two readings: [`Clock::now`], unix seconds, for what is stored or compared with stored values (creation and
//! last-use stamps, token expiries, rate-limit windows shared through Redis, backup names); and
//! [`Clock::instant`], a monotonic instant, for the windows kept in memory (the verification cache, known callers,
//! lockouts, the Redis back-off).
//!
//! [`Clock::System`] reads the system's clocks, as cheaply as calling them directly: no lock, no allocation.
//! [`Clock::Manual`] stands still until its [`ManualClock`] is advanced, so a test sees a boundary from both sides
//! without racing the wall clock. Log timestamps, request durations and network timeouts (header and body timeouts,
//! the drain at shutdown) stay on the system clock and tokio's timers: they are not behaviour a test should fake.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the time comes from. Cheap to clone: every table that keeps time holds one.
#[derive(Clone)]
pub enum Clock {
    /// The system's clocks.
    System,
    /// A clock that moves only when advanced (tests).
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => unix_seconds(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()),
            Clock::Manual(manual) => unix_seconds(manual.unix + manual.elapsed()),
        }
    }

    /// Unix milliseconds now: for stored times finer than a second (a webhook delivery's next attempt).
    pub fn now_millis(&self) -> i64 {
        let since_epoch = match self {
            Clock::System => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(),
            Clock::Manual(manual) => manual.unix + manual.elapsed(),
        };
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }

    /// A monotonic instant now.
    pub fn instant(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(manual) => manual.start + manual.elapsed(),
        }
    }
}

fn unix_seconds(since_epoch: Duration) -> i64 {
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// The time of a [`Clock::Manual`]: the system's time when it was made, moved on only by [`ManualClock::advance`].
pub struct ManualClock {
    /// The instant it was made, which [`Clock::instant`] reads plus what it was advanced by.
    start: Instant,
    /// The unix time it was made at, in whole seconds: so [`Clock::now`] turns exactly when it is advanced by
    /// whole seconds.
    unix: Duration,
    /// How far it was advanced, in nanoseconds (enough for five centuries).
    advanced: AtomicU64,
}

impl ManualClock {
    /// A clock standing at the system's time now; [`ManualClock::clock`] gives the [`Clock`] that reads it.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            start: Instant::now(),
            unix: Duration::from_secs(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            ),
            advanced: AtomicU64::new(0),
        })
    }

    /// The [`Clock`] that reads this one, for an `App` or a table.
    pub fn clock(self: &Arc<Self>) -> Clock {
        Clock::Manual(self.clone())
    }

    /// Moves the time on by `by`, for every reader at once.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.advanced.fetch_add(nanos, Ordering::SeqCst);
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.advanced.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let (now, instant) = (Clock::System.now(), Clock::System.instant());
        assert!(now >= before && now <= before + 1, "{now} vs {before}");
        assert!(Clock::System.instant() >= instant);
    }

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let (now, instant) = (clock.now(), clock.instant());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            (clock.now(), clock.instant()),
            (now, instant),
            "it does not follow the wall clock"
        );
        manual.advance(Duration::from_millis(999));
        assert_eq!(clock.now(), now, "the second turns at whole seconds");
        manual.advance(Duration::from_millis(501));
        assert_eq!(clock.instant(), instant + Duration::from_millis(1500));
        assert_eq!(clock.now(), now + 1);
        manual.advance(Duration::from_secs(3600));
        assert_eq!(clock.instant(), instant + Duration::from_millis(3_601_500));
        let copy = clock.clone();
        manual.advance(Duration::from_secs(1));
        assert_eq!(copy.instant(), clock.instant(), "every copy reads the same time");
    }
}
