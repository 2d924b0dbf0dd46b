//! Back-off after failed logins, per source address (`auth_backoff_max`).
//!
//! A source's first [`FREE_FAILURES`] failed logins in a row cost nothing.
//! After that its login attempts are checked one at a time, each in its
//! own turn: the turns are [`FIRST_DELAY`] apart after the next failure,
//! doubling with each further one up to the configured maximum. An attempt
//! that would have to wait longer than that maximum for its turn is
//! refused without its credentials being looked at, so a brute force gains
//! nothing from opening many connections at once. A successful login
//! clears the source's record. Other sources are never affected.
//!
//! Sans-IO: time comes in as `now`; the runtime waits for the turn.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failed logins in a row a source may have before its attempts take turns.
pub const FREE_FAILURES: u32 = 3;
/// The spacing of turns after the first failure past [`FREE_FAILURES`].
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// Sources remembered at most; past that, new sources are not tracked
/// (and so not slowed) until old records expire.
const MAX_SOURCES: usize = 100_000;

/// What a login attempt from a source may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Check the credentials at once.
    Now,
    /// Check them at this time (the turn is reserved).
    At(Instant),
    /// Refuse without checking: the source's turns are taken too far ahead.
    Refused,
}

/// The failed-login records of every source.
#[derive(Debug)]
pub struct AuthBackoff {
    max: Duration,
    sources: Mutex<HashMap<IpAddr, Source>>,
    /// How many sources have a record: while none has, a connect takes no
    /// lock here.
    tracked: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    /// Failed logins in a row.
    failures: u32,
    /// The next free turn.
    next_turn: Instant,
    /// The last attempt or result, for expiry.
    last: Instant,
}

impl AuthBackoff {
    /// Back-off up to `max` between turns; `Duration::ZERO` turns it off.
    pub fn new(max: Duration) -> AuthBackoff {
        AuthBackoff {
            max,
            sources: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
        }
    }

    /// When an attempt from `ip` may have its credentials checked.
    pub fn turn(&self, ip: IpAddr, now: Instant) -> Turn {
        if self.max.is_zero() || self.tracked.load(Ordering::Relaxed) == 0 {
            return Turn::Now;
        }
        let mut sources = self.sources.lock();
        let Some(source) = sources.get_mut(&ip) else {
            return Turn::Now;
        };
        source.last = now;
        if source.failures < FREE_FAILURES {
            return Turn::Now;
        }
        let at = source.next_turn.max(now);
        if at.saturating_duration_since(now) > self.max {
            return Turn::Refused;
        }
        source.next_turn = at + self.delay(source.failures);
        if at <= now {
            Turn::Now
        } else {
            Turn::At(at)
        }
    }

    /// Records the outcome of a checked attempt. Returns the spacing of the
    /// source's turns from now on when this failure started or lengthened
    /// its back-off (for the log).
    pub fn record(&self, ip: IpAddr, accepted: bool, now: Instant) -> Option<Duration> {
        if self.max.is_zero() || (accepted && self.tracked.load(Ordering::Relaxed) == 0) {
            return None;
        }
        let mut sources = self.sources.lock();
        if accepted {
            sources.remove(&ip);
            self.tracked.store(sources.len(), Ordering::Relaxed);
            return None;
        }
        if !sources.contains_key(&ip) && sources.len() >= MAX_SOURCES {
            let max = self.max;
            sources.retain(|_, s| now.saturating_duration_since(s.last) < expiry(max));
            if sources.len() >= MAX_SOURCES {
                return None;
            }
        }
        let delay_of = |failures| self.delay(failures);
        let source = sources.entry(ip).or_insert(Source {
            failures: 0,
            next_turn: now,
            last: now,
        });
        if now.saturating_duration_since(source.last) >= expiry(self.max) {
            source.failures = 0;
        }
        source.failures = source.failures.saturating_add(1);
        source.last = now;
        let failures = source.failures;
        let delay = delay_of(failures);
        if failures >= FREE_FAILURES {
            source.next_turn = source.next_turn.max(now + delay);
        }
        self.tracked.store(sources.len(), Ordering::Relaxed);
        (failures >= FREE_FAILURES).then_some(delay)
    }

    /// Turn spacing after `failures` failed logins in a row.
    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(FREE_FAILURES).min(16);
        FIRST_DELAY.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// A source's record is forgotten after this long without attempts.
fn expiry(max: Duration) -> Duration {
    (max * 4).max(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn first_failures_are_free_then_turns_double_up_to_the_maximum() {
        let b = AuthBackoff::new(Duration::from_secs(4));
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            assert_eq!(b.turn(ip(1), t0), Turn::Now);
            assert_eq!(b.record(ip(1), false, t0), None);
        }
        assert_eq!(b.turn(ip(1), t0), Turn::Now);
        assert_eq!(b.record(ip(1), false, t0), Some(Duration::from_millis(500)));
        // The next attempt waits its turn; the one after it the next.
        assert_eq!(b.turn(ip(1), t0), Turn::At(t0 + Duration::from_millis(500)));
        assert_eq!(
            b.turn(ip(1), t0),
            Turn::At(t0 + Duration::from_millis(1000))
        );
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.record(ip(1), false, t1), Some(Duration::from_secs(1)));
        let t2 = t0 + Duration::from_secs(1);
        assert_eq!(b.record(ip(1), false, t2), Some(Duration::from_secs(2)));
        let t3 = t0 + Duration::from_secs(3);
        assert_eq!(b.record(ip(1), false, t3), Some(Duration::from_secs(4)));
        assert_eq!(b.record(ip(1), false, t3), Some(Duration::from_secs(4)));
    }

    #[test]
    fn attempts_beyond_the_maximum_wait_are_refused_unchecked() {
        let b = AuthBackoff::new(Duration::from_secs(2));
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            b.record(ip(1), false, t0);
        }
        let turns: Vec<Turn> = (0..10).map(|_| b.turn(ip(1), t0)).collect();
        let waiting = turns.iter().filter(|t| matches!(t, Turn::At(_))).count();
        let refused = turns.iter().filter(|t| **t == Turn::Refused).count();
        assert_eq!((waiting, refused), (4, 6), "{turns:?}");
    }

    #[test]
    fn success_clears_and_other_sources_are_untouched() {
        let b = AuthBackoff::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..10 {
            b.record(ip(1), false, t0);
        }
        assert_eq!(b.turn(ip(2), t0), Turn::Now);
        assert!(matches!(b.turn(ip(1), t0), Turn::At(_)));
        b.record(ip(1), true, t0);
        assert_eq!(b.turn(ip(1), t0), Turn::Now);
    }

    #[test]
    fn zero_turns_it_off_and_old_records_expire() {
        let off = AuthBackoff::new(Duration::ZERO);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(off.record(ip(1), false, t0), None);
        }
        assert_eq!(off.turn(ip(1), t0), Turn::Now);

        let b = AuthBackoff::new(Duration::from_secs(1));
        for _ in 0..10 {
            b.record(ip(1), false, t0);
        }
        let later = t0 + Duration::from_secs(600);
        assert_eq!(
            b.record(ip(1), false, later),
            None,
            "counted from one again"
        );
    }
}
