//! The bridge's end on this broker: a protocol [`Connection`] like any
//! client's, fed and drained in-process instead of over a socket. Its
//! session holds what waits for the remote (bounded, with the same drop
//! accounting as any session), and keeps its QoS state across remote
//! reconnects; with `local_cleansession false` and persistence on, across
//! restarts too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use culex_codec::packet::{Connect, Subscribe};
use culex_codec::topic::TopicFilter;
use culex_codec::{
    check_frame, decode_packet, Packet, PacketId, Properties, Seq, SubscriptionOptions,
};
use tokio::sync::Notify;

use crate::config::bridge::Bridge;
use crate::core::wake::{ConnWaker, Waker};
use crate::core::Core;
use crate::protocol::{ClaimOutcome, Close, Connection, Handshake};

/// The most output the local side collects before the relay forwards it.
pub(super) const HIGH_WATER: usize = 256 * 1024;

/// Why the local side could not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum LocalError {
    /// The broker refused the bridge's CONNECT or SUBSCRIBE.
    #[error("the local broker refused the bridge: {0}")]
    Refused(String),
}

/// The local side's waker: a notification the relay task waits on.
#[derive(Debug, Default)]
pub(super) struct LocalWaker {
    pub notify: Notify,
    kicked: AtomicBool,
    resume: AtomicBool,
}

impl Waker for LocalWaker {
    fn wake(&self) {
        self.notify.notify_one();
    }
    fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        self.notify.notify_one();
    }
    fn resume(&self) {
        self.resume.store(true, Ordering::Release);
        self.notify.notify_one();
    }
    fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }
    fn take_resume(&self) -> bool {
        self.resume.swap(false, Ordering::AcqRel)
    }
}

/// The bridge's connection to this broker.
pub(super) struct Local {
    pub conn: Connection,
    pub waker: Arc<LocalWaker>,
    /// Client → broker bytes not yet handled.
    pub input: BytesMut,
    /// Broker → client bytes not yet forwarded.
    pub output: BytesMut,
    /// The broker ended the connection (a takeover of the local client
    /// id, or a protocol error): the bridge connects it again.
    closed: bool,
}

impl Local {
    /// Connects to `core` as the bridge's local client and subscribes to
    /// what goes out.
    pub fn connect(core: &Arc<Core>, bridge: &Bridge, now: Instant) -> Result<Local, LocalError> {
        let waker = Arc::new(LocalWaker::default());
        let signal: ConnWaker = waker.clone();
        // The bridge has no address; its lines in the log say so.
        let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let conn = Connection::new(core.clone(), 0, peer, signal, now);
        let mut local = Local {
            conn,
            waker,
            input: BytesMut::new(),
            output: BytesMut::new(),
            closed: false,
        };
        local.handshake(bridge, now)?;
        local.subscribe(bridge, now)?;
        Ok(local)
    }

    fn handshake(&mut self, bridge: &Bridge, now: Instant) -> Result<(), LocalError> {
        let connect = Packet::Connect(Connect {
            bridge: true,
            protocol: bridge.protocol,
            clean_start: bridge.local_clean_session,
            keep_alive: 0,
            client_id: &bridge.local_client_id,
            will: None,
            username: bridge.local_username.as_deref(),
            password: bridge.local_password.as_deref().map(str::as_bytes),
            properties: Properties {
                // A 5.0 session that outlives the link (cleansession false).
                session_expiry_interval: (!bridge.local_clean_session && bridge.protocol.is_v5())
                    .then_some(u32::MAX),
                ..Properties::default()
            },
        });
        encode(&connect, bridge, &mut self.input);
        let mut handshake = self
            .conn
            .handle_connect(now, &mut self.input, &mut self.output);
        // The bridge's own session is this node's alone.
        if let Ok(Handshake::Claim(_)) = handshake {
            self.conn.set_cluster_claim(ClaimOutcome::Ready);
            handshake = self
                .conn
                .handle_connect(now, &mut self.input, &mut self.output);
        }
        match handshake {
            Ok(Handshake::Accepted) => {}
            Ok(_) => return Err(LocalError::Refused("CONNECT not accepted".into())),
            Err(close) => return Err(LocalError::Refused(format!("{close:?}"))),
        }
        match self
            .next_frame()
            .as_ref()
            .map(|f| decode_packet(f, bridge.protocol))
        {
            Some(Ok(Packet::ConnAck(a))) if !a.reason.is_error() => Ok(()),
            other => Err(LocalError::Refused(format!("{other:?}"))),
        }
    }

    fn subscribe(&mut self, bridge: &Bridge, now: Instant) -> Result<(), LocalError> {
        let filters = bridge.subscriptions(true);
        if filters.is_empty() {
            return Ok(());
        }
        let list: Vec<(TopicFilter<'_>, SubscriptionOptions)> = filters
            .iter()
            .filter_map(|(f, o)| TopicFilter::new(f).ok().map(|f| (f, *o)))
            .collect();
        let Some(id) = PacketId::new(1) else {
            return Ok(());
        };
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: Seq::Items(&list),
        });
        encode(&subscribe, bridge, &mut self.input);
        // The SUBACK may wait for the store (persistence on); the relay
        // passes over it when it comes.
        self.handle_input(now)
            .map_err(|close| LocalError::Refused(format!("{close:?}")))
    }

    /// Hands what was put in `input` to the connection.
    pub fn handle_input(&mut self, now: Instant) -> Result<(), Close> {
        if self.input.is_empty() || self.closed {
            return Ok(());
        }
        self.conn
            .handle_input(now, &mut self.input, &mut self.output)
    }

    /// Sends the broker one packet of the bridge's (an acknowledgement the
    /// relay gives itself) and handles it.
    pub fn answer(&mut self, packet: &Packet<'_>, bridge: &Bridge, now: Instant) {
        encode(packet, bridge, &mut self.input);
        if let Err(close) = self.handle_input(now) {
            self.lost(close);
        }
    }

    /// Time passed (the end of a back-pressure pause).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Close> {
        if self.closed {
            return Ok(());
        }
        self.conn
            .handle_timeout(now, &mut self.input, &mut self.output)
    }

    /// Whether the broker ended the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The broker sent DISCONNECT.
    pub fn mark_closed(&mut self) {
        self.closed = true;
    }

    /// The connection ended with `close`: it leaves its session.
    pub fn lost(&mut self, close: Close) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut out = BytesMut::new();
        self.conn.close(&close, Instant::now(), &mut out);
    }

    /// After a wake: takeover, resume, and what became ready.
    pub fn handle_wake(&mut self, now: Instant) -> Result<(), Close> {
        if self.closed {
            return Ok(());
        }
        self.conn
            .handle_wake(now, &mut self.input, &mut self.output)?;
        self.conn.release_acks(&mut self.output)
    }

    /// Moves what the session has ready into `output` (bounded).
    pub fn poll_transmit(&mut self, now: Instant) -> bool {
        if self.closed {
            return false;
        }
        self.conn.poll_transmit(now, &mut self.output, HIGH_WATER)
    }

    /// The next complete frame the broker wrote, if any.
    pub fn next_frame(&mut self) -> Option<bytes::Bytes> {
        let len = check_frame(&self.output, u32::MAX).ok().flatten()?;
        Some(self.output.split_to(len).freeze())
    }

    /// Leaves the session (the bridge stops, or the link to the remote
    /// ends for good).
    pub fn close(mut self, now: Instant) {
        if self.closed {
            return;
        }
        let mut out = BytesMut::new();
        self.conn
            .close(&Close::Disconnect { will: false }, now, &mut out);
    }
}

/// Encodes a packet the bridge sends to this broker.
fn encode(packet: &Packet<'_>, bridge: &Bridge, into: &mut BytesMut) {
    let mut out = Vec::new();
    if packet.encode(bridge.protocol, &mut out).is_ok() {
        into.extend_from_slice(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::bridge::BridgeDraft;

    #[test]
    fn connects_and_subscribes_locally() {
        let rt = crate::runtime::state::Runtime::for_tests();
        let mut draft = BridgeDraft::new("t", "host");
        draft.option("address", "127.0.0.1:1").unwrap();
        draft.option("topic", "# both 1 local/ remote/").unwrap();
        let bridge = draft.finish().unwrap();
        let local = Local::connect(&rt.core, &bridge, Instant::now());
        assert!(local.is_ok(), "{:?}", local.err());
        let info = rt.core.client(&bridge.local_client_id).unwrap();
        let subscriptions: Vec<(&str, culex_codec::QoS)> = info
            .subscriptions
            .iter()
            .map(|s| (s.filter.as_str(), s.options.qos))
            .collect();
        assert_eq!(subscriptions, [("local/#", culex_codec::QoS::AtLeastOnce)]);
    }
}
