//! Compact forms of an instant and an address, for fields every session
//! carries.
//!
//! `Option<Instant>` takes sixteen bytes and `SocketAddr` thirty-two; an
//! idle client's session holds two instants and an address, and a few
//! bytes decide its allocation class.

use ::core::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An optional [`Instant`]: nanoseconds from a process-wide origin (the
/// first instant ever stored: the core reads no clock), negative before
/// it, `i64::MIN` for none. Exact for any instant within 292 years of the
/// origin (all a process ever sees).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Moment(i64);

const NONE: i64 = i64::MIN;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

impl Moment {
    /// No instant.
    pub const NONE: Moment = Moment(NONE);

    /// The instant `t`.
    pub fn at(t: Instant) -> Moment {
        let origin = *ORIGIN.get_or_init(|| t);
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Moment(match t.checked_duration_since(origin) {
            Some(after) => nanos(after),
            // Never `NONE`: -i64::MAX at most.
            None => -nanos(origin.duration_since(t)),
        })
    }

    /// The instant, if there is one.
    pub fn get(self) -> Option<Instant> {
        if self.0 == NONE {
            return None;
        }
        // Set by the `at` that made this moment.
        let origin = *ORIGIN.get()?;
        let d = Duration::from_nanos(self.0.unsigned_abs());
        Some(if self.0 >= 0 {
            origin.checked_add(d).unwrap_or(origin)
        } else {
            origin.checked_sub(d).unwrap_or(origin)
        })
    }
}

impl From<Option<Instant>> for Moment {
    fn from(t: Option<Instant>) -> Moment {
        t.map_or(Moment::NONE, Moment::at)
    }
}

impl fmt::Debug for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// A peer's address in eighteen bytes: IPv4 as IPv4-mapped IPv6, no IPv6
/// flow or scope (an address to show, not to connect to).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr {
    ip: [u8; 16],
    port: u16,
}

impl PeerAddr {
    /// The address as a socket address.
    pub fn get(self) -> SocketAddr {
        SocketAddr::new(Ipv6Addr::from(self.ip).to_canonical(), self.port)
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        PeerAddr {
            ip: ip.octets(),
            port: addr.port(),
        }
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_back_as_they_are_shown() {
        for addr in [
            "127.0.0.1:1883",
            "0.0.0.0:0",
            "[::1]:8883",
            "[2001:db8::7]:65535",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(PeerAddr::from(addr).get(), addr);
        }
        assert_eq!(std::mem::size_of::<PeerAddr>(), 18);
    }

    #[test]
    fn instants_before_and_after_the_origin_come_back_exactly() {
        let now = Instant::now();
        let _ = Moment::at(now);
        for t in [
            now,
            now + Duration::from_nanos(1),
            now + Duration::from_secs(86_400 * 365),
            now.checked_sub(Duration::from_millis(1_500)).unwrap_or(now),
            Instant::now(),
        ] {
            assert_eq!(Moment::at(t).get(), Some(t));
        }
        assert_eq!(Moment::NONE.get(), None);
        assert_eq!(Moment::from(None).get(), None);
        assert_eq!(std::mem::size_of::<Moment>(), 8);
    }
}
