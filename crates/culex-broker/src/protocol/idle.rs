//! A connection with nothing to do, kept compactly.
//!
//! An idle connection keeps only what outlives an idle spell: its session,
//! its keep-alive, and what its CONNECT settled. Everything else is empty
//! when it parks ([`Connection::may_park`]) and made anew when it resumes.

use ::core::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::Protocol;

use super::connection::{Aliases, Connection};
use crate::core::wake::ConnWaker;
use crate::core::{Core, Moment, SessionRef};

/// An idle connection (see the module docs).
#[derive(Debug)]
pub(crate) struct Idle {
    session: SessionRef,
    last_seen: Moment,
    /// 1.5 × keep alive in milliseconds; 0: none.
    keepalive_ms: u32,
    listener: u16,
    protocol: Protocol,
    problem_info: bool,
    /// Boxed: most connections have none of it.
    rare: Option<Box<Rare>>,
}

/// The parts of an idle connection most connections do not have.
#[derive(Debug, Default)]
struct Rare {
    bridge: bool,
    out_alias_max: u16,
    aliases: Option<Box<Aliases>>,
    username: Option<Arc<str>>,
    client_max_packet_size: Option<u32>,
    connect_expiry: u32,
}

impl Connection {
    /// The idle form of a connected client (see [`Connection::may_park`]);
    /// the connection back when it holds no session.
    pub(crate) fn park(mut self) -> Result<Idle, Box<Connection>> {
        self.count_packets();
        let (Some(session), Ok(listener)) = (self.session.clone(), u16::try_from(self.listener))
        else {
            return Err(Box::new(self));
        };
        let Connection {
            last_seen,
            keepalive,
            out_alias_max,
            protocol,
            problem_info,
            bridge,
            aliases,
            username,
            client_max_packet_size,
            connect_expiry,
            ..
        } = self;
        let rare = Rare {
            bridge,
            out_alias_max,
            aliases,
            username,
            client_max_packet_size,
            connect_expiry,
        };
        let rare = (rare.bridge
            || rare.out_alias_max != 0
            || rare.aliases.is_some()
            || rare.username.is_some()
            || rare.client_max_packet_size.is_some()
            || rare.connect_expiry != 0)
            .then(|| Box::new(rare));
        // Keep alive is at most 65535 × 1.5 s: it fits.
        let keepalive_ms =
            keepalive.map_or(0, |k| u32::try_from(k.as_millis()).unwrap_or(u32::MAX));
        Ok(Idle {
            session,
            last_seen: Moment::at(last_seen),
            keepalive_ms,
            listener,
            protocol,
            problem_info,
            rare,
        })
    }
}

impl Idle {
    /// The connection again, woken through `signal` at `now`.
    pub fn resume(self, core: Arc<Core>, signal: ConnWaker, now: Instant) -> Connection {
        let Idle {
            session,
            last_seen,
            keepalive_ms,
            listener,
            protocol,
            problem_info,
            rare,
        } = self;
        let Rare {
            bridge,
            out_alias_max,
            aliases,
            username,
            client_max_packet_size,
            connect_expiry,
        } = rare.map(|r| *r).unwrap_or_default();
        // Only the handshake's log lines and its back-off use the address.
        let peer = SocketAddr::from(([0, 0, 0, 0], 0));
        let last_seen = last_seen.get().unwrap_or(now);
        let mut conn = Connection::new(core, usize::from(listener), peer, signal, last_seen);
        conn.protocol = protocol;
        conn.client_id = session.client_id().clone();
        conn.username = username;
        conn.keepalive = (keepalive_ms > 0).then(|| Duration::from_millis(u64::from(keepalive_ms)));
        conn.out_alias_max = out_alias_max;
        conn.aliases = aliases;
        conn.client_max_packet_size = client_max_packet_size;
        conn.problem_info = problem_info;
        conn.bridge = bridge;
        conn.connect_expiry = connect_expiry;
        conn.session = Some(session);
        conn.connected = true;
        conn
    }

    /// The keep-alive deadline: 1.5 × keep alive after the last packet [MQTT-3.1.2-24].
    pub fn deadline(&self) -> Option<Instant> {
        (self.keepalive_ms > 0)
            .then(|| self.last_seen.get())
            .flatten()
            .map(|seen| seen + Duration::from_millis(u64::from(self.keepalive_ms)))
    }
}

#[cfg(test)]
mod tests {
    /// A parked connection's slot holds its idle state: every byte here is
    /// paid by each idle client (the parker's slot is 72 bytes with it).
    #[test]
    fn idle_state_stays_compact() {
        let size = std::mem::size_of::<super::Idle>();
        assert!(size <= 40, "Idle is {size} bytes");
    }
}
