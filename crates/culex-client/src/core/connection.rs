//! The connection state machine.

use culex_codec::packet::{
    Auth, ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Will,
};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    Output, Packet, PacketId, Properties, Protocol, QoS, ReasonCode, Seq, SubscriptionOptions,
};

use super::inflight::{InTable, InflightKind, OutSlot, OutTable, PacketIds};
use super::{Error, Millis};

/// The largest packet MQTT can express: 268,435,455 bytes of remaining length
/// plus a 5-byte fixed header.
const MAX_PACKET: u32 = 268_435_460;

/// Everything CONNECT carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions<'a> {
    /// 3.1.1 or 5.0 (3.1 works too).
    pub protocol: Protocol,
    /// The client identifier; empty asks the server to assign one.
    pub client_id: &'a str,
    /// Keepalive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// Clean Session (3.x) or Clean Start (5.0).
    pub clean_start: bool,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
    /// The last will.
    pub will: Option<Will<'a>>,
    /// 5.0 CONNECT properties (session expiry, receive maximum, ...). When
    /// Receive Maximum is unset the core announces its `IN` capacity.
    pub properties: Properties<'a>,
}

impl<'a> ConnectOptions<'a> {
    /// 3.1.1, keepalive 60 s, clean session, no credentials, no will.
    pub fn new(client_id: &'a str) -> ConnectOptions<'a> {
        ConnectOptions {
            protocol: Protocol::V3_1_1,
            client_id,
            keep_alive: 60,
            clean_start: true,
            username: None,
            password: None,
            will: None,
            properties: Properties::default(),
        }
    }
}

/// An application message to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The topic name (validated when encoded).
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// 5.0 PUBLISH properties; ignored for 3.x.
    pub properties: Properties<'a>,
}

impl<'a> Message<'a> {
    /// A message without properties.
    pub fn new(topic: &'a str, payload: &'a [u8], qos: QoS, retain: bool) -> Message<'a> {
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: Properties::default(),
        }
    }
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No transport, or the transport was lost. Session state (in-flight ids)
    /// is kept for a resume.
    Disconnected,
    /// CONNECT sent, CONNACK not yet received.
    Connecting,
    /// CONNACK accepted.
    Connected,
}

/// What a packet from the server meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Nothing for the application (an acknowledgement step, a duplicate
    /// QoS 2 message that was already delivered).
    None,
    /// CONNACK accepted the connection.
    Connected(ConnAck<'a>),
    /// An application message to deliver, exactly once for QoS 2.
    Message(Publish<'a>),
    /// A QoS 1/2 publish finished (PUBACK, PUBCOMP, or a 5.0 PUBREC with an
    /// error reason); its id is free again.
    Published {
        /// The id of the PUBLISH.
        id: PacketId,
        /// Success, or the server's 5.0 refusal.
        reason: ReasonCode,
    },
    /// SUBACK for a SUBSCRIBE.
    Subscribed(SubAck<'a>),
    /// UNSUBACK for an UNSUBSCRIBE.
    Unsubscribed(UnsubAck<'a>),
    /// PINGRESP.
    PingResp,
    /// The server sent DISCONNECT (5.0); the connection is over.
    Disconnected(Disconnect<'a>),
    /// AUTH (5.0 enhanced authentication).
    Auth(Auth<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
enum Ack {
    PubAck(PacketId),
    PubRec(PacketId),
    PubComp(PacketId),
}

const ACK_QUEUE: usize = 4;

/// The client side of one MQTT session, across reconnects.
///
/// `OUT` is the number of outgoing QoS 1/2 PUBLISH, SUBSCRIBE and
/// UNSUBSCRIBE packets that can await acknowledgement at once; `IN` the
/// number of incoming QoS 2 messages awaiting PUBREL (announced as Receive
/// Maximum in 5.0). See the [module docs](super) for the call order.
#[derive(Debug, Clone)]
pub struct Connection<const OUT: usize = 16, const IN: usize = 16> {
    protocol: Protocol,
    state: State,
    keep_alive_ms: u64,
    last_sent: Millis,
    ping_sent: Option<Millis>,
    ping_due: bool,
    ids: PacketIds,
    out: OutTable<OUT>,
    incoming: InTable<IN>,
    acks: [Option<Ack>; ACK_QUEUE],
    server_receive_maximum: u16,
    server_maximum_qos: QoS,
    server_maximum_packet_size: u32,
    max_packet_size: u32,
    session_present: bool,
    manual_acks: bool,
}

impl<const OUT: usize, const IN: usize> Default for Connection<OUT, IN> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const OUT: usize, const IN: usize> Connection<OUT, IN> {
    /// A disconnected connection with an empty session.
    pub const fn new() -> Self {
        Connection {
            protocol: Protocol::V3_1_1,
            state: State::Disconnected,
            keep_alive_ms: 0,
            last_sent: Millis(0),
            ping_sent: None,
            ping_due: false,
            ids: PacketIds::new(),
            out: OutTable::new(),
            incoming: InTable::new(),
            acks: [None; ACK_QUEUE],
            server_receive_maximum: u16::MAX,
            server_maximum_qos: QoS::ExactlyOnce,
            server_maximum_packet_size: MAX_PACKET,
            max_packet_size: MAX_PACKET,
            session_present: false,
            manual_acks: false,
        }
    }

    /// Starts packet ids after `last` (tests of wrapping; restoring a session).
    pub fn with_packet_ids(mut self, ids: PacketIds) -> Self {
        self.ids = ids;
        self
    }

    /// With manual acknowledgements the core does not answer an incoming
    /// QoS 1 PUBLISH (PUBACK) or a new QoS 2 PUBLISH (PUBREC) by itself: the
    /// front-end calls [`Connection::ack`] once the application has taken the
    /// message. The server's in-flight window then paces it by the
    /// application's speed.
    pub fn set_manual_acks(&mut self, on: bool) {
        self.manual_acks = on;
    }

    /// Acknowledges an incoming message delivered with manual
    /// acknowledgements on (PUBACK for QoS 1, PUBREC for QoS 2; nothing for
    /// QoS 0). Only for messages of the current connection: after a
    /// reconnect the server re-sends what was not acknowledged.
    pub fn ack(&mut self, id: PacketId, qos: QoS) -> Result<(), Error> {
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.queue_ack(Ack::PubAck(id)),
            QoS::ExactlyOnce => self.queue_ack(Ack::PubRec(id)),
        }
    }

    /// The protocol of the current (or last) connection.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Session Present of the last CONNACK.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// Keepalive in effect, in milliseconds (the server's 5.0 Server Keep
    /// Alive overrides ours); 0 when off.
    pub fn keep_alive_ms(&self) -> u64 {
        self.keep_alive_ms
    }

    /// Outgoing packet ids in flight and what each awaits, in no particular
    /// order. After a reconnect with Session Present, the front-end re-sends
    /// the PUBLISH of each `PubAck`/`PubRec` entry with
    /// [`Connection::republish`]; the core re-sends PUBREL itself.
    pub fn inflight(&self) -> impl Iterator<Item = (PacketId, InflightKind)> + '_ {
        self.out.iter().map(|s| (s.id, s.kind))
    }

    /// Whether a QoS 1/2 publish would be accepted now (a free slot and room
    /// under the server's Receive Maximum).
    pub fn can_publish(&self) -> bool {
        !self.out.is_full() && self.out.publishes() < usize::from(self.server_receive_maximum)
    }

    /// Splits the first packet off `buf`, decoded for this connection's
    /// protocol: `Ok(None)` until the whole packet is there.
    pub fn decode<'b>(&self, buf: &'b [u8]) -> Result<Option<(Packet<'b>, usize)>, Error> {
        Ok(culex_codec::decode(
            buf,
            self.protocol,
            self.max_packet_size,
        )?)
    }

    /// Starts a connection: encodes CONNECT into `out` and returns its length.
    ///
    /// With `clean_start` the session state (in-flight ids) is discarded.
    pub fn connect(
        &mut self,
        now: Millis,
        options: &ConnectOptions<'_>,
        out: &mut impl Output,
    ) -> Result<usize, Error> {
        let mut properties = options.properties;
        if options.protocol.is_v5() && properties.receive_maximum.is_none() {
            properties.receive_maximum = u16::try_from(IN).ok().filter(|&n| n > 0);
        }
        let connect = Packet::Connect(Connect {
            bridge: false,
            protocol: options.protocol,
            clean_start: options.clean_start,
            keep_alive: options.keep_alive,
            client_id: options.client_id,
            will: options.will,
            username: options.username,
            password: options.password,
            properties: if options.protocol.is_v5() {
                properties
            } else {
                Properties::default()
            },
        });
        let len = connect.encode(options.protocol, out)?;
        self.protocol = options.protocol;
        self.state = State::Connecting;
        self.keep_alive_ms = u64::from(options.keep_alive) * 1000;
        self.last_sent = now;
        self.ping_sent = None;
        self.ping_due = false;
        self.acks = [None; ACK_QUEUE];
        self.server_receive_maximum = u16::MAX;
        self.server_maximum_qos = QoS::ExactlyOnce;
        self.server_maximum_packet_size = MAX_PACKET;
        self.max_packet_size = match properties.maximum_packet_size {
            Some(max) if options.protocol.is_v5() => max,
            _ => MAX_PACKET,
        };
        if options.clean_start {
            self.out.retain(|_| false);
            self.incoming.clear();
        }
        Ok(len)
    }

    /// Encodes a PUBLISH into `out`. QoS 1/2 messages take a packet id and
    /// an in-flight slot until acknowledged; the id is returned.
    pub fn publish(
        &mut self,
        now: Millis,
        message: &Message<'_>,
        out: &mut impl Output,
    ) -> Result<Option<PacketId>, Error> {
        self.require_session()?;
        if message.qos > self.server_maximum_qos {
            return Err(Error::QoSNotSupported);
        }
        let topic = TopicName::new(message.topic).map_err(|_| Error::InvalidTopic)?;
        let kind = match message.qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(InflightKind::PubAck),
            QoS::ExactlyOnce => Some(InflightKind::PubRec),
        };
        let id = match kind {
            None => None,
            Some(_) => {
                if !self.can_publish() {
                    return Err(Error::InflightFull);
                }
                Some(self.next_id()?)
            }
        };
        self.encode_publish(now, message, topic, id, false, out)?;
        if let (Some(id), Some(kind)) = (id, kind) {
            self.out.insert(OutSlot {
                id,
                kind,
                rel_pending: false,
            });
        }
        Ok(id)
    }

    /// Re-sends an unacknowledged QoS 1/2 PUBLISH with the DUP flag, after a
    /// reconnect that kept the session. `id` must be in flight awaiting
    /// PUBACK or PUBREC; `message` is the one first published with it.
    pub fn republish(
        &mut self,
        now: Millis,
        id: PacketId,
        message: &Message<'_>,
        out: &mut impl Output,
    ) -> Result<usize, Error> {
        self.require_session()?;
        match self.out.get(id).map(|s| s.kind) {
            Some(InflightKind::PubAck) | Some(InflightKind::PubRec) => {}
            _ => {
                return Err(Error::Protocol(
                    "republish of an id not awaiting PUBACK or PUBREC",
                ))
            }
        }
        let topic = TopicName::new(message.topic).map_err(|_| Error::InvalidTopic)?;
        self.encode_publish(now, message, topic, Some(id), true, out)
    }

    fn encode_publish(
        &mut self,
        now: Millis,
        message: &Message<'_>,
        topic: TopicName<'_>,
        packet_id: Option<PacketId>,
        dup: bool,
        out: &mut impl Output,
    ) -> Result<usize, Error> {
        let packet = Packet::Publish(Publish {
            dup,
            qos: message.qos,
            retain: message.retain,
            topic,
            packet_id,
            properties: self.v5_only(message.properties),
            payload: message.payload,
        });
        self.encode(now, &packet, out)
    }

    /// Encodes a SUBSCRIBE for `filters` and returns its packet id; the
    /// SUBACK comes back as [`Event::Subscribed`].
    pub fn subscribe(
        &mut self,
        now: Millis,
        filters: &[(TopicFilter<'_>, SubscriptionOptions)],
        properties: Properties<'_>,
        out: &mut impl Output,
    ) -> Result<PacketId, Error> {
        let properties = self.v5_only(properties);
        self.send_awaiting(now, InflightKind::SubAck, out, |packet_id| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters: Seq::Items(filters),
            })
        })
    }

    /// Encodes an UNSUBSCRIBE and returns its packet id; the UNSUBACK comes
    /// back as [`Event::Unsubscribed`].
    pub fn unsubscribe(
        &mut self,
        now: Millis,
        filters: &[TopicFilter<'_>],
        properties: Properties<'_>,
        out: &mut impl Output,
    ) -> Result<PacketId, Error> {
        let properties = self.v5_only(properties);
        self.send_awaiting(now, InflightKind::UnsubAck, out, |packet_id| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters: Seq::Items(filters),
            })
        })
    }

    /// Takes a packet id and an in-flight slot awaiting `kind`, and encodes
    /// the packet `make` builds with that id.
    fn send_awaiting<'p>(
        &mut self,
        now: Millis,
        kind: InflightKind,
        out: &mut impl Output,
        make: impl FnOnce(PacketId) -> Packet<'p>,
    ) -> Result<PacketId, Error> {
        self.require_session()?;
        if self.out.is_full() {
            return Err(Error::InflightFull);
        }
        let id = self.next_id()?;
        self.encode(now, &make(id), out)?;
        self.out.insert(OutSlot {
            id,
            kind,
            rel_pending: false,
        });
        Ok(id)
    }

    /// Encodes a PINGREQ; the answer is [`Event::PingResp`].
    pub fn ping(&mut self, now: Millis, out: &mut impl Output) -> Result<usize, Error> {
        self.require_session()?;
        let len = self.encode(now, &Packet::PingReq, out)?;
        if self.ping_sent.is_none() {
            self.ping_sent = Some(now);
        }
        self.ping_due = false;
        Ok(len)
    }

    /// Encodes a DISCONNECT (`reason` and `properties` are sent in 5.0 only)
    /// and ends the connection. The session state is kept for a later resume.
    pub fn disconnect(
        &mut self,
        now: Millis,
        reason: ReasonCode,
        properties: Properties<'_>,
        out: &mut impl Output,
    ) -> Result<usize, Error> {
        let packet = Packet::Disconnect(Disconnect {
            reason,
            properties: self.v5_only(properties),
        });
        let len = self.encode(now, &packet, out)?;
        self.connection_lost();
        Ok(len)
    }

    /// Forgets an outgoing id in flight: the front-end gave up on it (for
    /// example it will publish the message again as a new one). Returns
    /// whether the id was in flight.
    pub fn abandon(&mut self, id: PacketId) -> bool {
        self.out.remove(id).is_some()
    }

    /// The transport is gone: back to [`State::Disconnected`], keeping the
    /// in-flight ids for a resume.
    pub fn connection_lost(&mut self) {
        self.state = State::Disconnected;
        self.ping_sent = None;
        self.ping_due = false;
        self.acks = [None; ACK_QUEUE];
    }

    /// Handles one packet from the server. Drain [`Connection::poll_transmit`]
    /// afterwards.
    pub fn handle_packet<'p>(
        &mut self,
        now: Millis,
        packet: Packet<'p>,
    ) -> Result<Event<'p>, Error> {
        let _ = now;
        // Any packet shows the server is alive.
        self.ping_sent = None;
        match packet {
            Packet::ConnAck(connack) => self.handle_connack(connack),
            Packet::Publish(publish) => self.handle_publish(publish),
            Packet::PubAck(ack) => Ok(self.finish(ack.packet_id, InflightKind::PubAck, ack.reason)),
            Packet::PubRec(rec) => self.handle_pubrec(rec),
            Packet::PubRel(rel) => {
                self.require_connected()?;
                self.incoming.remove(rel.packet_id);
                self.queue_ack(Ack::PubComp(rel.packet_id))?;
                Ok(Event::None)
            }
            Packet::PubComp(comp) => {
                Ok(self.finish(comp.packet_id, InflightKind::PubComp, comp.reason))
            }
            Packet::SubAck(suback) => {
                if self.take(suback.packet_id, InflightKind::SubAck) {
                    Ok(Event::Subscribed(suback))
                } else {
                    Ok(Event::None)
                }
            }
            Packet::UnsubAck(unsuback) => {
                if self.take(unsuback.packet_id, InflightKind::UnsubAck) {
                    Ok(Event::Unsubscribed(unsuback))
                } else {
                    Ok(Event::None)
                }
            }
            Packet::PingResp => Ok(Event::PingResp),
            Packet::Disconnect(disconnect) => {
                self.connection_lost();
                Ok(Event::Disconnected(disconnect))
            }
            Packet::Auth(auth) => Ok(Event::Auth(auth)),
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq => Err(Error::Protocol(
                "server sent a client-only packet (5.0 section 4.13)",
            )),
        }
    }

    fn handle_connack<'p>(&mut self, connack: ConnAck<'p>) -> Result<Event<'p>, Error> {
        if self.state != State::Connecting {
            return Err(Error::Protocol(
                "[MQTT-3.2.0-1] CONNACK outside the connect handshake",
            ));
        }
        if connack.reason.is_error() {
            self.connection_lost();
            return Err(Error::Refused(connack.reason));
        }
        let p = connack.properties;
        if let Some(keep_alive) = p.server_keep_alive {
            self.keep_alive_ms = u64::from(keep_alive) * 1000;
        }
        self.server_receive_maximum = p.receive_maximum.unwrap_or(u16::MAX).max(1);
        self.server_maximum_qos = match p.maximum_qos {
            Some(0) => QoS::AtMostOnce,
            Some(1) => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        self.server_maximum_packet_size = p.maximum_packet_size.unwrap_or(MAX_PACKET);
        self.session_present = connack.session_present;
        self.state = State::Connected;
        if connack.session_present {
            // [MQTT-4.4.0-1]: re-send PUBREL for every QoS 2 message already
            // received by the server; SUBSCRIBE/UNSUBSCRIBE are not resumed.
            self.out
                .retain(|s| !matches!(s.kind, InflightKind::SubAck | InflightKind::UnsubAck));
            for slot in self.out.iter_mut() {
                slot.rel_pending = slot.kind == InflightKind::PubComp;
            }
        } else {
            // No session on the server: nothing in flight can be resumed.
            self.out.retain(|_| false);
            self.incoming.clear();
        }
        Ok(Event::Connected(connack))
    }

    fn handle_publish<'p>(&mut self, publish: Publish<'p>) -> Result<Event<'p>, Error> {
        self.require_connected()?;
        if publish.topic.as_str().is_empty() {
            // We announce no Topic Alias Maximum, so an alias is not allowed.
            return Err(Error::Protocol("[MQTT-3.3.2-11] topic alias not allowed"));
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => Ok(Event::Message(publish)),
            (QoS::AtLeastOnce, Some(id)) => {
                if !self.manual_acks {
                    self.queue_ack(Ack::PubAck(id))?;
                }
                Ok(Event::Message(publish))
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if self.incoming.contains(id) {
                    // Already delivered; the server re-sent it before our
                    // PUBREC reached it [MQTT-4.3.3-9].
                    self.queue_ack(Ack::PubRec(id))?;
                    return Ok(Event::None);
                }
                if !self.incoming.insert(id) && self.protocol.is_v5() {
                    return Err(Error::Protocol("[MQTT-3.3.4-9] receive maximum exceeded"));
                }
                if !self.manual_acks {
                    self.queue_ack(Ack::PubRec(id))?;
                }
                Ok(Event::Message(publish))
            }
            (_, None) => Err(Error::Protocol(
                "[MQTT-2.3.1-5] QoS > 0 PUBLISH without packet id",
            )),
        }
    }

    fn handle_pubrec<'p>(&mut self, rec: PubResponse<'p>) -> Result<Event<'p>, Error> {
        match self.out.get_mut(rec.packet_id) {
            Some(slot) if slot.kind == InflightKind::PubRec && rec.reason.is_error() => {
                self.out.remove(rec.packet_id);
                Ok(Event::Published {
                    id: rec.packet_id,
                    reason: rec.reason,
                })
            }
            Some(slot) if matches!(slot.kind, InflightKind::PubRec | InflightKind::PubComp) => {
                slot.kind = InflightKind::PubComp;
                slot.rel_pending = true;
                Ok(Event::None)
            }
            _ => Ok(Event::None),
        }
    }

    /// Completes the outgoing id if it awaits `kind`.
    fn finish<'p>(&mut self, id: PacketId, kind: InflightKind, reason: ReasonCode) -> Event<'p> {
        if self.take(id, kind) {
            Event::Published { id, reason }
        } else {
            Event::None
        }
    }

    fn take(&mut self, id: PacketId, kind: InflightKind) -> bool {
        if self.out.get(id).is_some_and(|s| s.kind == kind) {
            self.out.remove(id);
            true
        } else {
            false
        }
    }

    /// Writes the next packet the core owes the server (PUBACK, PUBREC,
    /// PUBCOMP, PUBREL, an automatic PINGREQ) into `out` and returns its
    /// length, or `None` when nothing is owed.
    pub fn poll_transmit(
        &mut self,
        now: Millis,
        out: &mut impl Output,
    ) -> Result<Option<usize>, Error> {
        if self.state == State::Disconnected {
            return Ok(None);
        }
        if let Some(ack) = self.acks.first().copied().flatten() {
            let (packet_id, make): (PacketId, fn(PubResponse<'static>) -> Packet<'static>) =
                match ack {
                    Ack::PubAck(id) => (id, Packet::PubAck),
                    Ack::PubRec(id) => (id, Packet::PubRec),
                    Ack::PubComp(id) => (id, Packet::PubComp),
                };
            let packet = make(PubResponse {
                packet_id,
                reason: ReasonCode::Success,
                properties: Properties::default(),
            });
            let len = self.encode(now, &packet, out)?;
            self.acks.rotate_left(1);
            if let Some(last) = self.acks.last_mut() {
                *last = None;
            }
            return Ok(Some(len));
        }
        if self.state != State::Connected {
            return Ok(None);
        }
        let rel = self.out.iter().find(|s| s.rel_pending).map(|s| s.id);
        if let Some(id) = rel {
            let packet = Packet::PubRel(PubResponse {
                packet_id: id,
                reason: ReasonCode::Success,
                properties: Properties::default(),
            });
            let len = self.encode(now, &packet, out)?;
            if let Some(slot) = self.out.get_mut(id) {
                slot.rel_pending = false;
            }
            return Ok(Some(len));
        }
        if self.ping_due {
            return self.ping(now, out).map(Some);
        }
        Ok(None)
    }

    /// When [`Connection::handle_timeout`] must next be called, or `None`
    /// when no timer runs (keepalive off, or not connected).
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.state != State::Connected || self.keep_alive_ms == 0 {
            return None;
        }
        match self.ping_sent {
            // A client that gets no PINGRESP "within a reasonable amount of
            // time" should close the connection (3.1.2.10 / 5.0 3.1.2.10);
            // we allow one keepalive period.
            Some(sent) => Some(sent.plus(self.keep_alive_ms)),
            None if self.ping_due => Some(self.last_sent),
            // [MQTT-3.1.2-23]: a packet at least once per keepalive period.
            None => Some(self.last_sent.plus(self.keep_alive_ms)),
        }
    }

    /// Acts on the deadline of [`Connection::poll_timeout`]: makes a PINGREQ
    /// due (drain [`Connection::poll_transmit`]), or fails with
    /// [`Error::KeepAliveTimeout`] when the last one went unanswered.
    pub fn handle_timeout(&mut self, now: Millis) -> Result<(), Error> {
        if self.state != State::Connected || self.keep_alive_ms == 0 {
            return Ok(());
        }
        if let Some(sent) = self.ping_sent {
            if now >= sent.plus(self.keep_alive_ms) {
                self.connection_lost();
                return Err(Error::KeepAliveTimeout);
            }
            return Ok(());
        }
        if now >= self.last_sent.plus(self.keep_alive_ms) {
            self.ping_due = true;
        }
        Ok(())
    }

    fn require_session(&self) -> Result<(), Error> {
        match self.state {
            State::Disconnected => Err(Error::NotConnected),
            _ => Ok(()),
        }
    }

    fn require_connected(&self) -> Result<(), Error> {
        match self.state {
            State::Connected => Ok(()),
            _ => Err(Error::Protocol("[MQTT-3.2.0-1] packet before CONNACK")),
        }
    }

    fn next_id(&mut self) -> Result<PacketId, Error> {
        let out = &self.out;
        self.ids
            .next(|id| out.contains(id))
            .ok_or(Error::NoPacketId)
    }

    fn queue_ack(&mut self, ack: Ack) -> Result<(), Error> {
        match self.acks.iter_mut().find(|a| a.is_none()) {
            Some(free) => {
                *free = Some(ack);
                Ok(())
            }
            None => Err(Error::TransmitQueueFull),
        }
    }

    fn v5_only<'p>(&self, properties: Properties<'p>) -> Properties<'p> {
        if self.protocol.is_v5() {
            properties
        } else {
            Properties::default()
        }
    }

    fn encode(
        &mut self,
        now: Millis,
        packet: &Packet<'_>,
        out: &mut impl Output,
    ) -> Result<usize, Error> {
        let len = packet.encode(self.protocol, out)?;
        self.last_sent = now;
        Ok(len)
    }

    /// The largest packet the server accepts (5.0 Maximum Packet Size).
    pub fn server_maximum_packet_size(&self) -> u32 {
        self.server_maximum_packet_size
    }

    /// The server's Receive Maximum (5.0 CONNACK; 65535 when not given).
    pub fn server_receive_maximum(&self) -> u16 {
        self.server_receive_maximum
    }

    /// The highest QoS the server accepts (5.0 CONNACK Maximum QoS).
    pub fn server_maximum_qos(&self) -> QoS {
        self.server_maximum_qos
    }
}
