//! [`Connection`]: the state of one client connection, and its frame loop.

use ::core::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use culex_codec::packet::{Disconnect, PubResponse};
use culex_codec::{check_frame, decode_packet, Packet, PacketId, Properties, Protocol, ReasonCode};

use crate::core::message::Message;
use crate::core::session::{Outgoing, Session};
use crate::core::stats::Tally;
use crate::core::wake::ConnWaker;
use crate::core::{Core, Leave, Origin, SessionRef};

use super::error::{Close, Violation};
use super::held::{AckKind, Acks};

/// Topic aliases a 5.0 client may use towards us.
pub(super) const TOPIC_ALIAS_MAXIMUM: u16 = 10;
/// MQTT's own maximum packet size.
pub(super) const MQTT_MAX_PACKET: u32 = 268_435_460;
/// How long a packet may take to arrive once its first byte has: without
/// it, a client without keep-alive could hold a buffer by sending a byte
/// now and then.
pub(super) const PARTIAL_PACKET_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a publisher stays paused for a subscriber that does not drain
/// (see `session::STALL_AFTER`); then it reads again and the overflow is dropped.
pub(super) const PAUSE_MAX: Duration = crate::core::session::STALL_AFTER;
/// A batch of frames publishing this much (payload bytes, plus half of it
/// per message: two messages, or one of 8 KiB or more) may be paused for a
/// full subscriber.
pub(super) const FLOOD_LOAD: u32 = 16 * 1024;

/// Where the handshake stands after [`Connection::handle_connect`].
#[derive(Debug, Clone)]
pub enum Handshake {
    /// The CONNECT has not fully arrived.
    Incomplete,
    /// The client's address is in its login back-off: call again at this
    /// time (the CONNECT stays in the input).
    WaitUntil(Instant),
    /// The client is connected; CONNACK is in the output.
    Accepted,
    /// A node of a cluster: the cluster must make the session this
    /// node's first, then [`Connection::set_cluster_claim`] and call again
    /// (the CONNECT stays in the input).
    Claim(ClusterClaim),
}

/// A session a cluster must make this node's before CONNACK: owned here
/// from now on, and taken over (subscriptions, messages) from the node
/// that held it.
#[derive(Debug, Clone)]
pub struct ClusterClaim {
    /// The client id (assigned already when the client sent none).
    pub client_id: Arc<str>,
    /// Clean Session / Clean Start: nothing is taken over.
    pub clean_start: bool,
    /// Seconds the session outlives the connection; `None`: forever.
    pub expiry: Option<u32>,
    /// The will, with its delay: other nodes publish it if this one dies.
    pub will: Option<(Message, u32)>,
}

/// How a cluster answered a [`ClusterClaim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The session is this node's: go on.
    Ready,
    /// The cluster cannot be reached to own a persistent session: refused
    /// with Server unavailable rather than risk losing its messages.
    Unavailable,
}

/// Where a client connects from, as its log lines show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// An IP address and port: the socket's peer, or the client a proxy
    /// relays (PROXY protocol).
    Ip(SocketAddr),
    /// A local (unix) socket, by its path, as mosquitto names such clients.
    Local(Arc<str>),
}

impl Peer {
    /// The address as the core's views show it; a local client's is
    /// unspecified.
    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            Peer::Ip(addr) => *addr,
            Peer::Local(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        }
    }

    /// The address the login back-off is kept for: local clients all
    /// share the unspecified address.
    pub fn ip(&self) -> IpAddr {
        match self {
            Peer::Ip(addr) => addr.ip(),
            Peer::Local(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// The address without the port, for log lines that show it alone.
    pub fn host(&self) -> String {
        match self {
            Peer::Ip(addr) => addr.ip().to_string(),
            Peer::Local(path) => path.to_string(),
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        Peer::Ip(addr)
    }
}

impl std::fmt::Display for Peer {
    /// `ADDRESS:PORT` as mosquitto prints it (no brackets around IPv6);
    /// `PATH:0` for a local socket.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Ip(addr) => write!(f, "{}:{}", addr.ip(), addr.port()),
            Peer::Local(path) => write!(f, "{path}:0"),
        }
    }
}

/// Who the transport says the client is: with `use_identity_as_username`
/// or `use_subject_as_username`, a field of the client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Vouched {
    /// The CONNECT's username and password count.
    No,
    /// This is the username; no password is checked.
    User(Arc<str>),
    /// The certificate has no such field: the client is not authorised.
    Missing,
}

/// One client connection. See the module docs for the call order.
pub struct Connection {
    pub(super) core: Arc<Core>,
    pub(super) listener: usize,
    pub(super) peer: Peer,
    pub(super) vouched: Vouched,
    pub(super) protocol: Protocol,
    pub(super) client_id: Arc<str>,
    pub(super) username: Option<Arc<str>>,
    pub(super) keepalive: Option<Duration>,
    pub(super) last_seen: Instant,
    /// Since when the input holds part of a packet.
    pub(super) partial_since: Option<Instant>,
    /// The listener's `mount_point`, prefixed to every topic of this client.
    pub(super) mount: Option<Arc<str>>,
    pub(super) out_alias_max: u16,
    /// Topic aliases both ways, allocated on first use (5.0 only).
    pub(super) aliases: Option<Box<Aliases>>,
    pub(super) max_packet_size: u32,
    pub(super) client_max_packet_size: Option<u32>,
    /// The 5.0 client did not set Request Problem Information to 0.
    pub(super) problem_info: bool,
    /// A mosquitto bridge (the bridge bit of its CONNECT): its messages are
    /// not sent back to it and keep their RETAIN flag, as mosquitto does.
    pub(super) bridge: bool,
    pub(super) session: Option<SessionRef>,
    /// This connection as a publisher: its waker, the subscribers to wake,
    /// the outbox of its batch.
    pub(super) origin: Origin,
    pub(super) connect_expiry: u32,
    /// Back-pressure: set while a subscriber this connection published to
    /// is full; frames stay unread until it drains or this time passes.
    pub(super) paused_until: Option<Instant>,
    /// Acknowledgements held until the store has made their changes durable.
    pub(super) acks: Acks,
    /// Packets taken from the session and not yet encoded (kept between
    /// calls only for the capacity).
    pub(super) outgoing: Vec<Outgoing>,
    /// PUBACKs read in this batch of frames, applied to the session under
    /// one lock at the end of the batch.
    pub(super) acked: Vec<PacketId>,
    /// What the current batch of frames published (see `Connection::floods`).
    pub(super) batch_load: u32,
    /// A subscriber could not keep up with a publish: the runtime lets
    /// others run before reading more.
    pub(super) yield_hint: bool,
    /// PUBLISH packets read in this batch of frames, for the counters.
    pub(super) received: Tally,
    /// PUBLISH packets written in this call of `poll_transmit`.
    pub(super) sent: Tally,
    /// Control packets read and written since the counters were last
    /// updated (see [`Connection::count_packets`]): a shared counter
    /// touched per packet by every thread costs more than the packet.
    pub(super) packets_in: u32,
    pub(super) packets_out: Cell<u32>,
    /// The login turn of this CONNECT was taken (auth back-off).
    pub(super) turn_taken: bool,
    /// A CONNECT waiting for its login turn, or for its cluster claim.
    pub(super) pending_connect: Option<Bytes>,
    /// What was settled about a CONNECT waiting for its cluster claim.
    pub(super) claim_pending: Option<Box<super::connect::Accepted>>,
    /// The cluster's answer to that claim.
    pub(super) claim_outcome: Option<ClaimOutcome>,
    pub(super) connected: bool,
}

/// 5.0 topic aliases of one connection.
#[derive(Debug, Default)]
pub(super) struct Aliases {
    /// Aliases the client set, towards us.
    pub(super) inbound: HashMap<u16, Arc<str>>,
    /// Aliases we assigned, towards the client.
    pub(super) outbound: HashMap<Arc<str>, u16>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection before its CONNECT, from `peer` on listener `listener`.
    pub fn new(
        core: Arc<Core>,
        listener: usize,
        peer: impl Into<Peer>,
        signal: ConnWaker,
        now: Instant,
    ) -> Connection {
        let max_packet_size = core
            .config()
            .limits
            .max_packet_size
            .unwrap_or(MQTT_MAX_PACKET);
        let mount = core
            .config()
            .listeners
            .get(listener)
            .and_then(|l| l.mount_point.as_deref())
            .map(Arc::from);
        Connection {
            core,
            listener,
            peer: peer.into(),
            vouched: Vouched::No,
            protocol: Protocol::V3_1_1,
            client_id: Arc::from("<unknown>"),
            username: None,
            keepalive: None,
            last_seen: now,
            partial_since: None,
            mount,
            out_alias_max: 0,
            aliases: None,
            max_packet_size,
            client_max_packet_size: None,
            problem_info: true,
            bridge: false,
            session: None,
            origin: Origin::new(signal),
            connect_expiry: 0,
            paused_until: None,
            acks: Acks::default(),
            outgoing: Vec::new(),
            acked: Vec::new(),
            batch_load: 0,
            yield_hint: false,
            received: Tally::default(),
            sent: Tally::default(),
            packets_in: 0,
            packets_out: Cell::new(0),
            turn_taken: false,
            pending_connect: None,
            claim_pending: None,
            claim_outcome: None,
            connected: false,
        }
    }

    /// The client id (`<unknown>` before CONNECT).
    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// The protocol version the client connected with.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The client's address.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The client's real address, before CONNECT, when the transport
    /// learnt it (a PROXY protocol header): it is what log lines show and
    /// what the login back-off counts.
    pub fn set_peer(&mut self, peer: impl Into<Peer>) {
        self.peer = peer.into();
    }

    /// Before CONNECT, for a listener that takes the username from the
    /// client certificate (`use_identity_as_username`,
    /// `use_subject_as_username`): `Some(name)` replaces the CONNECT's
    /// username and no password is checked, as in mosquitto; `None` (the
    /// certificate has no such field) refuses the client as not authorised.
    pub fn set_certificate_username(&mut self, username: Option<&str>) {
        self.vouched = match username {
            Some(name) => Vouched::User(Arc::from(name)),
            None => Vouched::Missing,
        };
    }

    /// The connection's waker.
    pub fn waker(&self) -> &ConnWaker {
        &self.origin.signal
    }

    /// Frames from a connected client: every complete frame in `input` is
    /// handled (consumed), its answers written to `out`. Stops early while
    /// paused (back-pressure); the rest waits in `input`.
    pub fn handle_input(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        self.batch_load = 0;
        let result = self.process_batch(now, input, out);
        self.deliver_held(now);
        self.apply_pubacks();
        self.origin.wake_all();
        let stats = self.core.stats();
        self.received
            .flush(&stats.publish_received, &stats.publish_received_bytes);
        self.count_packets();
        result
    }

    /// Adds the packets read and written since the last call to the
    /// broker's counters. Called at the end of each entry point that reads
    /// or writes packets, and before the connection parks.
    pub(super) fn count_packets(&mut self) {
        let stats = self.core.stats();
        if self.packets_in > 0 {
            let n = std::mem::take(&mut self.packets_in);
            stats
                .packets_received
                .fetch_add(u64::from(n), Ordering::Relaxed);
        }
        let out = self.packets_out.take();
        if out > 0 {
            stats
                .packets_sent
                .fetch_add(u64::from(out), Ordering::Relaxed);
        }
    }

    fn process_batch(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        loop {
            if self.paused_until.is_some() {
                return Ok(());
            }
            let len = match check_frame(input, self.max_packet_size) {
                Ok(Some(len)) => len,
                Ok(None) => {
                    // Only whole packets count as activity [MQTT-3.1.2-24]: a
                    // packet that trickles in does not keep the connection
                    // alive, and has a deadline of its own without keep-alive.
                    self.partial_since = match self.partial_since {
                        _ if input.is_empty() => None,
                        None => Some(now),
                        since => since,
                    };
                    return Ok(());
                }
                Err(e) => return Err(Violation::from(e).into()),
            };
            self.last_seen = now;
            self.partial_since = None;
            self.packets_in += 1;
            // A subscriber's stream of PUBACKs: read without a `Packet`.
            if let Some((culex_codec::PacketType::PubAck, id)) = input
                .get(..len)
                .and_then(culex_codec::decode_success_response)
            {
                input.advance(len);
                self.on_puback(id, ReasonCode::Success);
                continue;
            }
            let frame = input.split_to(len).freeze();
            let packet = decode_packet(&frame, self.protocol).map_err(Violation::from)?;
            self.on_packet(packet, &frame, now, out)?;
        }
    }

    fn on_packet(
        &mut self,
        packet: Packet<'_>,
        frame: &Bytes,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        if !matches!(packet, Packet::PubAck(_)) {
            // Acknowledgements keep their place among the other packets
            // (a durable UNSUBACK must not overtake an earlier PUBACK).
            self.apply_pubacks();
        }
        match packet {
            Packet::Publish(p) => self.on_publish(&p, frame, now, out),
            Packet::PubAck(r) => {
                self.on_puback(r.packet_id, r.reason);
                Ok(())
            }
            Packet::PubRec(r) => {
                self.on_pubrec(r.packet_id, r.reason, now, out);
                Ok(())
            }
            Packet::PubRel(r) => {
                self.on_pubrel(r.packet_id, out);
                Ok(())
            }
            Packet::PubComp(r) => {
                tracing::debug!(
                    "Received PUBCOMP from {} (Mid: {}, RC:{})",
                    self.client_id,
                    r.packet_id.get(),
                    r.reason as u8
                );
                let _ = self.session_op(|s| s.pubcomp(r.packet_id, now));
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(&s, now, out),
            Packet::Unsubscribe(u) => {
                self.on_unsubscribe(&u, out);
                Ok(())
            }
            Packet::PingReq => {
                tracing::debug!("Received PINGREQ from {}", self.client_id);
                tracing::debug!("Sending PINGRESP to {}", self.client_id);
                self.encode(&Packet::PingResp, out);
                Ok(())
            }
            Packet::Disconnect(d) => self.on_disconnect(&d),
            Packet::Connect(_) => Err(Violation::SecondConnect.into()),
            Packet::Auth(_) => Err(Violation::AuthWithoutMethod.into()),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(Violation::ServerPacket.into())
            }
        }
    }

    fn on_pubrec(&mut self, id: PacketId, reason: ReasonCode, now: Instant, out: &mut BytesMut) {
        tracing::debug!(
            "Received PUBREC from {} (Mid: {})",
            self.client_id,
            id.get()
        );
        let known = self.session_op(|s| s.pubrec(id)).is_some_and(|r| r.is_ok());
        if known && !reason.is_error() {
            return;
        }
        // Unknown id, or the client refused the message: complete the flow
        // so the id is freed.
        if reason.is_error() {
            self.session_op(|s| s.abandon(id, None, now));
        } else {
            self.send_ack(
                Packet::PubRel,
                id,
                ReasonCode::PacketIdentifierNotFound,
                out,
            );
        }
    }

    fn on_pubrel(&mut self, id: PacketId, out: &mut BytesMut) {
        tracing::debug!(
            "Received PUBREL from {} (Mid: {})",
            self.client_id,
            id.get()
        );
        let known = self.session_op(|s| s.release_qos2(id)).unwrap_or(false);
        let reason = if known {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        tracing::debug!("Sending PUBCOMP to {} (m{})", self.client_id, id.get());
        self.send_ack(Packet::PubComp, id, reason, out);
    }

    /// A PUBACK: applied with the others of this read (`apply_pubacks`).
    fn on_puback(&mut self, id: PacketId, reason: ReasonCode) {
        tracing::debug!(
            "Received PUBACK from {} (Mid: {}, RC:{})",
            self.client_id,
            id.get(),
            reason as u8
        );
        self.acked.push(id);
    }

    /// The PUBACKs read since the last other packet, under one session
    /// lock: a subscriber acknowledging a window of messages takes the lock
    /// once, not once per message.
    fn apply_pubacks(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let now = self.last_seen;
        let acked = std::mem::take(&mut self.acked);
        self.session_op(|s| {
            for &id in &acked {
                // An unknown id is ignored, as mosquitto does.
                let _ = s.puback(id, now);
            }
        });
        self.acked = acked;
        self.acked.clear();
    }

    /// Hands each session its share of the batch's outbox, and pauses this
    /// publisher if a subscriber asks.
    fn deliver_held(&mut self, now: Instant) {
        let (overflow, pause) = self.core.deliver_outbox(&mut self.origin, self.last_seen);
        if pause && self.floods() {
            self.paused_until = Some(now + PAUSE_MAX);
        }
        self.yield_hint |= overflow;
    }

    /// Whether this batch of frames published enough to be paused for a
    /// full subscriber: more than one message, or a large one. A client
    /// that publishes now and then (a sensor, a latency probe) is never
    /// held back because a slow subscriber also matches its topic; what it
    /// sends queues there like anything else.
    pub(super) fn floods(&self) -> bool {
        self.batch_load >= FLOOD_LOAD
    }

    fn on_disconnect(&mut self, d: &Disconnect<'_>) -> Result<(), Close> {
        tracing::debug!("Received DISCONNECT from {}", self.client_id);
        if let Some(secs) = d.properties.session_expiry_interval {
            // A session that was to end at disconnect cannot be revived.
            if self.connect_expiry == 0 && secs != 0 {
                return Err(Violation::SessionExpiryOnDisconnect.into());
            }
            if let Some(s) = &self.session {
                self.core.set_expiry(s, (secs != u32::MAX).then_some(secs));
            }
        }
        Err(Close::Disconnect {
            will: d.reason == ReasonCode::DisconnectWithWillMessage,
        })
    }

    /// The connection's waker was woken: taken over, a paused publisher
    /// may read again, or deliveries are ready (for [`Connection::poll_transmit`]).
    pub fn handle_wake(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        if self.origin.signal.is_kicked() {
            return Err(Close::Kicked);
        }
        if self.origin.signal.take_resume() && self.paused_until.is_some() {
            // A subscriber we were paused for drained.
            self.paused_until = None;
            self.handle_input(now, input, out)?;
        }
        Ok(())
    }

    /// When [`Connection::handle_timeout`] is next due: the keep-alive
    /// deadline, a partly received packet's deadline, or the end of a pause.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let keepalive = self.keepalive.map(|k| self.last_seen + k);
        let partial = self.partial_since.map(|t| t + PARTIAL_PACKET_TIMEOUT);
        [keepalive, partial, self.paused_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: keep-alive [MQTT-3.1.2-24], a packet that took too long
    /// to arrive, or the end of a pause for a subscriber that stalled.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        if self
            .partial_since
            .is_some_and(|since| now >= since + PARTIAL_PACKET_TIMEOUT)
        {
            return Err(Close::Timeout);
        }
        if self.paused_until.is_some_and(|until| now >= until) {
            // The subscriber stalled: read on; what does not fit is dropped.
            self.paused_until = None;
            self.handle_input(now, input, out)?;
        }
        if let Some(k) = self.keepalive {
            if now >= self.last_seen + k {
                if self.paused_until.is_none() {
                    return Err(Close::Timeout);
                }
                // A paused connection is not silent: its frames wait unread.
                self.last_seen = now;
            }
        }
        Ok(())
    }

    /// Whether the connection holds nothing that needs it to run: no
    /// acknowledgement waiting for the store, no paused publishing, no
    /// packet taken from the session and not yet written. The runtime
    /// checks its own buffers too.
    pub fn may_park(&self) -> bool {
        self.acks.is_empty()
            && self.paused_until.is_none()
            && self.outgoing.is_empty()
            && self.partial_since.is_none()
    }

    /// Whether the runtime should let other connections run before reading
    /// more (a subscriber of this publisher could not keep up); clears it.
    pub fn take_yield_hint(&mut self) -> bool {
        std::mem::take(&mut self.yield_hint)
    }

    /// Whether reading is paused (back-pressure).
    pub fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// Ends the connection: writes the 5.0 DISCONNECT the reason calls for
    /// (with what was wrong, for a protocol error [MQTT-4.13.1-1]), then
    /// leaves the session, publishing or delaying the will as the reason
    /// says. The runtime flushes `out` first when it matters (shutdown
    /// writes what the session has ready before this). `true` when the
    /// connection still held its session (not taken over).
    pub fn close(&mut self, close: &Close, now: Instant, out: &mut BytesMut) -> bool {
        // A kick that left this connection holding its session came from
        // an administrator, not from a takeover.
        let by_admin = matches!(close, Close::Kicked)
            && self
                .session
                .as_ref()
                .is_some_and(|s| self.core.kicked_by_admin(s));
        let reason = match by_admin {
            true => Some(ReasonCode::AdministrativeAction),
            false => close.reason_code(),
        };
        if by_admin && self.core.config().log.connection_messages {
            // mosquitto's wording.
            tracing::info!(
                "Client {} been disconnected by administrative action.",
                self.client_id
            );
        }
        if let (true, Some(reason)) = (self.protocol.is_v5(), reason) {
            let why = match close {
                Close::Violation(v) => Some(v.to_string()),
                _ => None,
            };
            let mut properties = Properties::default();
            if let Some(why) = &why {
                if self.reason_string_allowed(why) {
                    properties.reason_string = Some(why);
                }
            }
            self.encode(&Packet::Disconnect(Disconnect { reason, properties }), out);
        }
        self.count_packets();
        if !self.connected {
            return false;
        }
        self.connected = false;
        let how = Leave {
            send_will: close.sends_will(),
            shutting_down: matches!(close, Close::Shutdown),
            listener: self.listener,
            protocol: self.protocol,
            why: match by_admin {
                true => "administrative action",
                false => close.describe(),
            },
        };
        match self.session.take() {
            Some(s) => self.core.leave(&s, how, now),
            None => false,
        }
    }

    /// Runs a QoS step on the session (see [`Core::with_session`]).
    pub(super) fn session_op<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let s = self.session.as_ref()?;
        Some(self.core.with_session(s, f).0)
    }

    pub(super) fn send_ack(
        &mut self,
        kind: AckKind,
        id: PacketId,
        reason: ReasonCode,
        out: &mut BytesMut,
    ) {
        let packet = kind(PubResponse {
            packet_id: id,
            reason,
            properties: Properties::default(),
        });
        self.encode(&packet, out);
    }

    pub(super) fn encode(&self, packet: &Packet<'_>, out: &mut BytesMut) {
        self.encode_with(packet.packet_type(), out, |protocol, out| {
            packet.encode(protocol, out)
        });
    }

    /// Appends a packet of type `kind` that `write` encodes.
    pub(super) fn encode_with(
        &self,
        kind: culex_codec::PacketType,
        out: &mut BytesMut,
        write: impl FnOnce(Protocol, &mut BytesMut) -> Result<usize, culex_codec::EncodeError>,
    ) {
        self.packets_out.set(self.packets_out.get().wrapping_add(1));
        if let Err(e) = write(self.protocol, out) {
            tracing::warn!(
                "Warning: unable to encode {:?} for {}: {e}",
                kind,
                self.client_id
            );
        }
    }

    /// Our Receive Maximum: `max_inflight_messages`, as mosquitto announces
    /// it (0, unlimited, is the protocol's 65535).
    pub(super) fn receive_maximum(&self) -> u16 {
        match self.core.config().limits.max_inflight_messages {
            Some(n) if n > 0 => n,
            _ => u16::MAX,
        }
    }

    /// Whether a Reason String `text` may go to this client: 5.0 only, not
    /// when it set Request Problem Information to 0 (the spec would allow one
    /// on CONNACK and DISCONNECT even then [MQTT-3.1.2-29]; culex honours
    /// the request), and never past its Maximum Packet Size [MQTT-3.1.2-24].
    pub(super) fn reason_string_allowed(&self, text: &str) -> bool {
        // Fixed header, reason code, property length and the property's own
        // header: well under 16 bytes besides the text.
        self.protocol.is_v5()
            && self.problem_info
            && !text.is_empty()
            && self
                .client_max_packet_size
                .is_none_or(|max| text.len().saturating_add(16) <= max as usize)
    }
}

/// Whether `topic` has more than `max_levels` levels (`max_topic_levels`).
/// A topic shorter than the limit cannot have that many separators.
pub(super) fn too_deep(topic: &str, max_levels: usize) -> bool {
    topic.len() >= max_levels && topic.bytes().filter(|&b| b == b'/').count() >= max_levels
}

/// `p1`/`p2`/`p5` for log lines.
pub fn protocol_tag(p: Protocol) -> &'static str {
    match p {
        Protocol::V3_1 => "p1",
        Protocol::V3_1_1 => "p2",
        Protocol::V5 => "p5",
    }
}
