//! The transport-generic blocking client.

use culex_codec::packet::Will;
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    EncodeError, Packet, PacketId, Properties, Protocol, QoS, ReasonCode, SliceOutput,
    SubscriptionOptions,
};

use crate::core::{ConnectOptions, Connection, Event, InflightKind, Message, Millis, State};

/// A byte stream to the broker.
pub trait Transport {
    /// The transport's error.
    type Error: ::core::fmt::Debug;

    /// Opens (or re-opens) the stream. A transport handed over already
    /// connected (typical on bare metal) does nothing.
    fn open(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Closes the stream; later reads and writes fail until `open`.
    fn close(&mut self) {}

    /// Closes the stream after a DISCONNECT: a transport that can should
    /// signal the end of its output and wait (briefly) for the server to
    /// close, so that the server reads the DISCONNECT before the connection
    /// goes away. Defaults to [`Transport::close`].
    fn finish(&mut self) {
        self.close();
    }

    /// Reads into `buf`. `wait` bounds the wait in milliseconds: `None`
    /// blocks until bytes arrive, `Some(0)` returns at once. Returns
    /// `Ok(None)` when nothing arrived in time and `Ok(Some(0))` when the
    /// peer closed the stream.
    fn read(&mut self, buf: &mut [u8], wait: Option<u64>) -> Result<Option<usize>, Self::Error>;

    /// Writes all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error>;
}

/// A monotonic clock in milliseconds.
pub trait Clock {
    /// Now.
    fn now(&mut self) -> Millis;
}

impl<F: FnMut() -> Millis> Clock for F {
    fn now(&mut self) -> Millis {
        self()
    }
}

/// Storage for the receive or transmit buffer: a fixed slice or array, or
/// (feature `alloc`) a `Vec` that grows on demand.
pub trait Buffer {
    /// The whole buffer.
    fn bytes(&mut self) -> &mut [u8];
    /// Grows to at least `len` bytes; false when the buffer is fixed.
    fn grow_to(&mut self, len: usize) -> bool {
        let _ = len;
        false
    }
    /// The largest packet the buffer can ever hold, or `None` when it grows.
    /// A 5.0 client announces this as its Maximum Packet Size.
    fn limit(&mut self) -> Option<usize> {
        Some(self.bytes().len())
    }
}

impl Buffer for &mut [u8] {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }
}

impl<const N: usize> Buffer for [u8; N] {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }
}

#[cfg(feature = "alloc")]
impl Buffer for alloc::vec::Vec<u8> {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }
    fn grow_to(&mut self, len: usize) -> bool {
        if len > self.len() {
            self.resize(len, 0);
        }
        true
    }
    fn limit(&mut self) -> Option<usize> {
        None
    }
}

/// The message callback: called with the topic and payload of each message.
#[cfg(feature = "alloc")]
pub type Callback<'a> = alloc::boxed::Box<dyn FnMut(&str, &[u8]) + Send + 'a>;
/// The message callback: called with the topic and payload of each message.
/// Without an allocator it is lent by the caller.
#[cfg(not(feature = "alloc"))]
pub type Callback<'a> = &'a mut dyn FnMut(&str, &[u8]);

/// Errors of the blocking client.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed.
    Io(E),
    /// The peer closed the stream.
    Closed,
    /// The protocol core refused (see [`crate::core::Error`]).
    Mqtt(crate::core::Error),
    /// The server refused the connection (CONNACK reason).
    Refused(ReasonCode),
    /// The server refused the subscription (SUBACK failure code).
    SubscribeRefused(ReasonCode),
    /// The server refused the publish (5.0 PUBACK/PUBREC reason).
    PublishRefused(ReasonCode),
    /// A packet does not fit the fixed buffer.
    BufferTooSmall,
    /// No answer from the server within the configured response timeout.
    Timeout,
}

impl<E> From<crate::core::Error> for Error<E> {
    fn from(e: crate::core::Error) -> Self {
        match e {
            crate::core::Error::Refused(code) => Error::Refused(code),
            other => Error::Mqtt(other),
        }
    }
}

impl<E: ::core::fmt::Debug> ::core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e:?}"),
            Error::Closed => f.write_str("connection closed by the server"),
            Error::Mqtt(e) => write!(f, "{e}"),
            Error::Refused(code) => write!(f, "connection refused: {code:?}"),
            Error::SubscribeRefused(code) => write!(f, "subscription refused: {code:?}"),
            Error::PublishRefused(code) => write!(f, "publish refused: {code:?}"),
            Error::BufferTooSmall => f.write_str("packet does not fit the buffer"),
            Error::Timeout => f.write_str("no answer from the server in time"),
        }
    }
}

#[cfg(feature = "std")]
impl<E: ::core::fmt::Debug> std::error::Error for Error<E> {}

/// Outgoing packets awaiting acknowledgement: each call waits for its own,
/// so a few slots suffice (resumed QoS 2 PUBRELs may add some).
const OUT: usize = 4;
/// Incoming QoS 2 messages awaiting PUBREL: mosquitto sends up to 20 at
/// once by default (`max_inflight_messages`); 5.0 servers are told this
/// number as our Receive Maximum.
const IN: usize = 32;

/// What one processed packet was, for the waiting loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Nothing,
    ConnAck { session_present: bool },
    Published { id: PacketId, reason: ReasonCode },
    Subscribed { id: PacketId, code: ReasonCode },
    Unsubscribed { id: PacketId },
    PingResp,
}

/// The last will, as given to [`Client::set_last_will`].
#[derive(Debug, Clone, Copy)]
struct LastWill<'a> {
    topic: &'a str,
    msg: &'a [u8],
    retain: bool,
    qos: QoS,
}

/// An umqtt.simple-shaped MQTT client over any [`Transport`].
///
/// Strings and the will are borrowed for `'a`; `B` is the buffer type of the
/// receive and transmit buffers. At most a handful of packets are in flight
/// at once, since each call waits for its acknowledgement as umqtt does.
pub struct Client<'a, T: Transport, C: Clock, B: Buffer> {
    transport: T,
    clock: C,
    conn: Connection<OUT, IN>,
    rx: B,
    rx_len: usize,
    tx: B,
    client_id: &'a str,
    user: Option<&'a str>,
    password: Option<&'a [u8]>,
    keepalive: u16,
    protocol: Protocol,
    will: Option<LastWill<'a>>,
    auto_ping: bool,
    response_timeout_ms: u64,
    callback: Option<Callback<'a>>,
}

impl<T: Transport, C: Clock, B: Buffer> ::core::fmt::Debug for Client<'_, T, C, B> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("state", &self.conn.state())
            .finish_non_exhaustive()
    }
}

impl<'a, T: Transport, C: Clock, B: Buffer> Client<'a, T, C, B> {
    /// A client over `transport`, reading the time from `clock`, with the
    /// given receive and transmit buffers. Nothing is sent until
    /// [`Client::connect`].
    pub fn with_transport(client_id: &'a str, transport: T, clock: C, rx: B, tx: B) -> Self {
        Client {
            transport,
            clock,
            conn: Connection::new(),
            rx,
            rx_len: 0,
            tx,
            client_id,
            user: None,
            password: None,
            keepalive: 0,
            protocol: Protocol::V3_1_1,
            will: None,
            auto_ping: false,
            response_timeout_ms: 10_000,
            callback: None,
        }
    }

    /// The user name sent in CONNECT.
    pub fn user(mut self, user: &'a str) -> Self {
        self.user = Some(user);
        self
    }

    /// The password sent in CONNECT.
    pub fn password(mut self, password: &'a [u8]) -> Self {
        self.password = Some(password);
        self
    }

    /// Keepalive in seconds (0, the default as in umqtt, turns it off).
    pub fn keepalive(mut self, seconds: u16) -> Self {
        self.keepalive = seconds;
        self
    }

    /// Protocol version (3.1.1 by default, as umqtt; 5.0 works too).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sends PINGREQ automatically when the keepalive period passes without
    /// another packet, from inside `wait_msg`, `check_msg` and the waits for
    /// acknowledgements. Off by default (umqtt's behaviour).
    pub fn auto_ping(mut self, on: bool) -> Self {
        self.auto_ping = on;
        self
    }

    /// How long `connect`, `publish`, `subscribe`, ... wait for the server's
    /// answer before failing with [`Error::Timeout`] (10 s by default).
    /// Only transports that can bound a read honour it.
    pub fn response_timeout_ms(mut self, ms: u64) -> Self {
        self.response_timeout_ms = ms;
        self
    }

    /// Sets the function called with `(topic, msg)` for every message.
    #[cfg(feature = "alloc")]
    pub fn set_callback(&mut self, callback: impl FnMut(&str, &[u8]) + Send + 'a) {
        self.callback = Some(alloc::boxed::Box::new(callback));
    }

    /// Sets the function called with `(topic, msg)` for every message.
    #[cfg(not(feature = "alloc"))]
    pub fn set_callback(&mut self, callback: &'a mut dyn FnMut(&str, &[u8])) {
        self.callback = Some(callback);
    }

    /// Sets the will sent with the next CONNECT.
    pub fn set_last_will(&mut self, topic: &'a str, msg: &'a [u8], retain: bool, qos: QoS) {
        self.will = Some(LastWill {
            topic,
            msg,
            retain,
            qos,
        });
    }

    /// The transport, for inspection.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The protocol core, for inspection (state, in-flight ids).
    pub fn core(&self) -> &Connection<OUT, IN> {
        &self.conn
    }

    /// Whether the last CONNACK was accepted and the connection not lost since.
    pub fn is_connected(&self) -> bool {
        self.conn.state() == State::Connected
    }

    /// Opens the transport, sends CONNECT and waits for CONNACK. Returns
    /// Session Present.
    pub fn connect(&mut self, clean_session: bool) -> Result<bool, Error<T::Error>> {
        let result = self.try_connect(clean_session);
        if result.is_err() {
            // Refused or failed: leave nothing half-open.
            self.abort();
        }
        result
    }

    fn try_connect(&mut self, clean_session: bool) -> Result<bool, Error<T::Error>> {
        self.transport.close();
        self.rx_len = 0;
        self.transport.open().map_err(Error::Io)?;
        let will = match self.will {
            Some(w) => Some(Will {
                topic: TopicName::new(w.topic)
                    .map_err(|_| Error::Mqtt(crate::core::Error::InvalidTopic))?,
                payload: w.msg,
                qos: w.qos,
                retain: w.retain,
                properties: Properties::default(),
            }),
            None => None,
        };
        let mut options = ConnectOptions::new(self.client_id);
        options.protocol = self.protocol;
        options.keep_alive = self.keepalive;
        options.clean_start = clean_session;
        options.username = self.user;
        options.password = self.password;
        options.will = will;
        if let Some(limit) = self.rx.limit() {
            // 5.0 [MQTT-3.1.2-24]: the server must not send a larger packet.
            options.properties.maximum_packet_size =
                Some(u32::try_from(limit).unwrap_or(u32::MAX).max(1));
        }
        let now = self.clock.now();
        let conn = &mut self.conn;
        send(&mut self.transport, &mut self.tx, |out| {
            conn.connect(now, &options, out)
        })?;
        let got = self.wait_for(|g| matches!(g, Got::ConnAck { .. }))?;
        // A message this client was publishing when the link dropped is
        // retried by the caller as a new message; PUBREL is resumed by the core.
        let stale: heapless_ids::Ids = self
            .conn
            .inflight()
            .filter(|(_, k)| matches!(k, InflightKind::PubAck | InflightKind::PubRec))
            .map(|(id, _)| id)
            .collect();
        for id in stale.iter() {
            self.conn.abandon(id);
        }
        self.flush_owed()?;
        match got {
            Got::ConnAck { session_present } => Ok(session_present),
            _ => Err(Error::Timeout),
        }
    }

    /// Closes the link without DISCONNECT, as a network failure would (the
    /// broker then publishes the will). The session state is kept.
    pub fn abort(&mut self) {
        self.conn.connection_lost();
        self.transport.close();
        self.rx_len = 0;
    }

    /// Sends DISCONNECT and closes the transport.
    pub fn disconnect(&mut self) -> Result<(), Error<T::Error>> {
        let now = self.clock.now();
        let conn = &mut self.conn;
        let result = send(&mut self.transport, &mut self.tx, |out| {
            conn.disconnect(now, ReasonCode::Success, Properties::default(), out)
        });
        self.conn.connection_lost();
        self.transport.finish();
        self.rx_len = 0;
        result.map(|_| ())
    }

    /// Sends PINGREQ. The PINGRESP is consumed by `wait_msg`/`check_msg`.
    pub fn ping(&mut self) -> Result<(), Error<T::Error>> {
        let now = self.clock.now();
        let conn = &mut self.conn;
        send(&mut self.transport, &mut self.tx, |out| conn.ping(now, out)).map(|_| ())
    }

    /// Publishes `msg` (bytes or a string, as umqtt accepts both) to
    /// `topic`. For QoS 1 it waits for PUBACK, for QoS 2 for PUBCOMP;
    /// messages arriving meanwhile go to the callback.
    pub fn publish(
        &mut self,
        topic: &str,
        msg: impl AsRef<[u8]>,
        retain: bool,
        qos: QoS,
    ) -> Result<(), Error<T::Error>> {
        self.publish_with(&Message::new(topic, msg.as_ref(), qos, retain))
    }

    /// Publishes a message with 5.0 properties (ignored in 3.1.1).
    pub fn publish_with(&mut self, message: &Message<'_>) -> Result<(), Error<T::Error>> {
        let now = self.clock.now();
        let conn = &mut self.conn;
        let mut id = None;
        send(&mut self.transport, &mut self.tx, |out| {
            id = conn.publish(now, message, out)?;
            Ok(0)
        })?;
        let Some(id) = id else { return Ok(()) };
        let got = self.wait_for(|g| matches!(g, Got::Published { id: i, .. } if *i == id))?;
        match got {
            Got::Published { reason, .. } if reason.is_error() => {
                Err(Error::PublishRefused(reason))
            }
            _ => Ok(()),
        }
    }

    /// Subscribes to `topic` (a filter) and waits for SUBACK; returns the
    /// granted QoS.
    pub fn subscribe(&mut self, topic: &str, qos: QoS) -> Result<QoS, Error<T::Error>> {
        let filter =
            TopicFilter::new(topic).map_err(|_| Error::Mqtt(crate::core::Error::InvalidTopic))?;
        let options = SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        };
        let now = self.clock.now();
        let conn = &mut self.conn;
        let mut id = None;
        send(&mut self.transport, &mut self.tx, |out| {
            id = Some(conn.subscribe(now, &[(filter, options)], Properties::default(), out)?);
            Ok(0)
        })?;
        let Some(id) = id else {
            return Err(Error::Timeout);
        };
        match self.wait_for(|g| matches!(g, Got::Subscribed { id: i, .. } if *i == id))? {
            Got::Subscribed { code, .. } => match code {
                ReasonCode::Success => Ok(QoS::AtMostOnce),
                ReasonCode::GrantedQoS1 => Ok(QoS::AtLeastOnce),
                ReasonCode::GrantedQoS2 => Ok(QoS::ExactlyOnce),
                other => Err(Error::SubscribeRefused(other)),
            },
            _ => Err(Error::Timeout),
        }
    }

    /// Unsubscribes from `topic` and waits for UNSUBACK.
    pub fn unsubscribe(&mut self, topic: &str) -> Result<(), Error<T::Error>> {
        let filter =
            TopicFilter::new(topic).map_err(|_| Error::Mqtt(crate::core::Error::InvalidTopic))?;
        let now = self.clock.now();
        let conn = &mut self.conn;
        let mut id = None;
        send(&mut self.transport, &mut self.tx, |out| {
            id = Some(conn.unsubscribe(now, &[filter], Properties::default(), out)?);
            Ok(0)
        })?;
        let Some(id) = id else {
            return Err(Error::Timeout);
        };
        self.wait_for(|g| matches!(g, Got::Unsubscribed { id: i } if *i == id))
            .map(|_| ())
    }

    /// Blocks until one packet from the server has been handled (a message
    /// goes to the callback). With [`Client::auto_ping`], pings are sent
    /// while waiting.
    pub fn wait_msg(&mut self) -> Result<(), Error<T::Error>> {
        loop {
            let wait = self.next_wait(None);
            if self.step(wait)?.is_some() {
                return Ok(());
            }
        }
    }

    /// Handles every packet already available without waiting, and returns
    /// at once when nothing is pending. A packet only partly arrived stays
    /// buffered for the next call. Returns the number of packets handled.
    pub fn check_msg(&mut self) -> Result<usize, Error<T::Error>> {
        let mut handled = 0;
        // Bounded: each round either handles a buffered packet or reads once.
        for _ in 0..64 {
            match self.step(Some(0))? {
                Some(_) => handled += 1,
                None => break,
            }
        }
        Ok(handled)
    }

    /// Waits for a packet for which `want` holds, handling everything else.
    fn wait_for(&mut self, want: impl Fn(&Got) -> bool) -> Result<Got, Error<T::Error>> {
        let start = self.clock.now();
        loop {
            let elapsed = self.clock.now().since(start);
            if elapsed >= self.response_timeout_ms {
                return Err(Error::Timeout);
            }
            let wait = self.next_wait(Some(self.response_timeout_ms - elapsed));
            if let Some(got) = self.step(wait)? {
                if want(&got) {
                    return Ok(got);
                }
            }
        }
    }

    /// How long the next read may wait: until `limit`, and with automatic
    /// pings until the keepalive deadline.
    fn next_wait(&mut self, limit: Option<u64>) -> Option<u64> {
        if !self.auto_ping {
            return limit;
        }
        match self.conn.poll_timeout() {
            Some(deadline) => {
                let until = deadline.since(self.clock.now());
                Some(limit.map_or(until, |l| l.min(until)))
            }
            None => limit,
        }
    }

    /// Handles one buffered packet, or reads once (waiting at most `wait`)
    /// and then handles one if it is complete. `Ok(None)`: nothing handled.
    fn step(&mut self, wait: Option<u64>) -> Result<Option<Got>, Error<T::Error>> {
        if self.auto_ping {
            let now = self.clock.now();
            if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                self.conn.handle_timeout(now)?;
            }
            self.flush_owed()?;
        }
        if let Some(got) = self.handle_buffered()? {
            return Ok(Some(got));
        }
        let rx_len = self.rx_len;
        if rx_len >= self.rx.bytes().len() && !self.rx.grow_to(rx_len.saturating_mul(2).max(256)) {
            // The stream cannot be read past this packet: give the link up.
            self.abort();
            return Err(Error::BufferTooSmall);
        }
        let free = self.rx.bytes().get_mut(rx_len..).unwrap_or_default();
        let read = match self.transport.read(free, wait) {
            Ok(read) => read,
            Err(e) => {
                self.abort();
                return Err(Error::Io(e));
            }
        };
        match read {
            None => Ok(None),
            Some(0) => {
                self.conn.connection_lost();
                self.transport.close();
                Err(Error::Closed)
            }
            Some(n) => {
                self.rx_len = rx_len.saturating_add(n);
                self.handle_buffered()
            }
        }
    }

    /// Handles the first packet of the receive buffer if it is complete.
    fn handle_buffered(&mut self) -> Result<Option<Got>, Error<T::Error>> {
        let now = self.clock.now();
        let buffered = self.rx.bytes().get(..self.rx_len).unwrap_or_default();
        let frame_len = match culex_codec::check_frame(buffered, u32::MAX) {
            Ok(Some(len)) => len,
            Ok(None) => {
                // A buffer with a limit makes room for the announced length
                // now, or the link fails at once. One without a limit grows
                // in `step` as bytes arrive, not to the length announced:
                // five bytes must not cost 256 MiB.
                if let (Ok(Some(len)), Some(limit)) = (peek_len(buffered), self.rx.limit()) {
                    if len > limit && !self.rx.grow_to(len) {
                        // The stream cannot be read past this packet: give the link up.
                        self.abort();
                        return Err(Error::BufferTooSmall);
                    }
                }
                return Ok(None);
            }
            Err(e) => return Err(Error::Mqtt(e.into())),
        };
        let Client {
            rx, conn, callback, ..
        } = self;
        let frame = rx.bytes().get(..frame_len).unwrap_or_default();
        let got = {
            let packet: Packet<'_> = culex_codec::decode_packet(frame, conn.protocol())
                .map_err(|e| Error::Mqtt(e.into()))?;
            match conn.handle_packet(now, packet)? {
                Event::Message(publish) => {
                    if let Some(cb) = callback.as_mut() {
                        cb(publish.topic.as_str(), publish.payload);
                    }
                    Got::Nothing
                }
                Event::Connected(connack) => Got::ConnAck {
                    session_present: connack.session_present,
                },
                Event::Published { id, reason } => Got::Published { id, reason },
                Event::Subscribed(suback) => Got::Subscribed {
                    id: suback.packet_id,
                    code: suback
                        .reasons
                        .iter()
                        .next()
                        .unwrap_or(ReasonCode::UnspecifiedError),
                },
                Event::Unsubscribed(unsuback) => Got::Unsubscribed {
                    id: unsuback.packet_id,
                },
                Event::PingResp => Got::PingResp,
                Event::Disconnected(d) => {
                    self.transport.close();
                    self.rx_len = 0;
                    return Err(Error::Mqtt(crate::core::Error::ServerDisconnect(d.reason)));
                }
                _ => Got::Nothing,
            }
        };
        let total = self.rx_len;
        self.rx.bytes().copy_within(frame_len..total, 0);
        self.rx_len = total - frame_len;
        self.flush_owed()?;
        Ok(Some(got))
    }

    /// Writes every acknowledgement the core owes the server.
    fn flush_owed(&mut self) -> Result<(), Error<T::Error>> {
        for _ in 0..16 {
            let now = self.clock.now();
            let conn = &mut self.conn;
            let mut wrote = false;
            send(&mut self.transport, &mut self.tx, |out| {
                let n = conn.poll_transmit(now, out)?;
                wrote = n.is_some();
                Ok(n.unwrap_or(0))
            })?;
            if !wrote {
                break;
            }
        }
        Ok(())
    }
}

/// Encodes with `encode` into the transmit buffer (growing it when it can)
/// and writes the bytes.
fn send<T: Transport, B: Buffer>(
    transport: &mut T,
    tx: &mut B,
    mut encode: impl FnMut(&mut SliceOutput<'_>) -> Result<usize, crate::core::Error>,
) -> Result<(), Error<T::Error>> {
    for _ in 0..2 {
        let mut out = SliceOutput::new(tx.bytes());
        match encode(&mut out) {
            Ok(_) => {
                if !out.is_empty() {
                    transport.write_all(out.written()).map_err(Error::Io)?;
                }
                return Ok(());
            }
            Err(crate::core::Error::Encode(EncodeError::BufferTooSmall { needed })) => {
                if !tx.grow_to(needed) {
                    return Err(Error::BufferTooSmall);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::BufferTooSmall)
}

/// The total length of the packet whose fixed header starts `buf`, when
/// the remaining length is readable.
fn peek_len(buf: &[u8]) -> Result<Option<usize>, culex_codec::DecodeError> {
    let Some(rest) = buf.get(1..) else {
        return Ok(None);
    };
    Ok(culex_codec::varint::decode(rest)?
        .map(|(value, len)| (value as usize).saturating_add(len).saturating_add(1)))
}

/// A tiny fixed collection of packet ids, so `connect` needs no allocator.
mod heapless_ids {
    use culex_codec::PacketId;

    #[derive(Default)]
    pub(super) struct Ids {
        ids: [Option<PacketId>; 4],
    }

    impl Ids {
        pub(super) fn iter(&self) -> impl Iterator<Item = PacketId> + '_ {
            self.ids.iter().flatten().copied()
        }
    }

    impl FromIterator<PacketId> for Ids {
        fn from_iter<I: IntoIterator<Item = PacketId>>(iter: I) -> Self {
            let mut ids = Ids::default();
            for (slot, id) in ids.ids.iter_mut().zip(iter) {
                *slot = Some(id);
            }
            ids
        }
    }
}
