//! A blocking connection for the tools: a socket (TCP, Unix or TLS) driven
//! around culex-client's sans-IO core, which owns every protocol rule
//! (packet ids, QoS 1/2 handshakes, keepalive, CONNACK checks). This file
//! only moves bytes and turns the core's borrowed events into owned ones.

use crate::args::{Config, PropertyArg, PropertyTarget, PropertyValue, Protocol as ArgProtocol};
use crate::format::{MessageProperties, MessageProperty};
use crate::tls;
use culex_client::core::{ConnectOptions, Connection, Event, Message, Millis};
use culex_codec::packet::Will;
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{Properties, Protocol, QoS, ReasonCode, Seq, SubscriptionOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Outgoing QoS 1/2 messages (and SUBSCRIBE/UNSUBSCRIBE) in flight at once.
const OUT: usize = 64;
/// Incoming QoS 2 messages awaiting PUBREL; announced as Receive Maximum.
const IN: usize = 64;

/// A received PUBLISH, owned.
#[derive(Debug, Clone)]
pub struct OwnedMessage {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS of the delivery.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
    /// Packet id, 0 for QoS 0.
    pub mid: u16,
    /// MQTT 5 properties.
    pub properties: MessageProperties,
}

/// What came from the broker.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An application message.
    Message(OwnedMessage),
    /// A QoS 1/2 publish completed (or was refused, in 5.0).
    Published {
        /// Its packet id.
        id: u16,
        /// The broker's reason.
        reason: ReasonCode,
    },
    /// SUBACK.
    Subscribed {
        /// The SUBSCRIBE's packet id.
        id: u16,
        /// One code per filter.
        reasons: Vec<ReasonCode>,
    },
    /// UNSUBACK.
    Unsubscribed {
        /// The UNSUBSCRIBE's packet id.
        id: u16,
    },
    /// The broker sent DISCONNECT (5.0); the connection is over.
    Disconnected,
}

/// Why the link failed.
#[derive(Debug)]
pub enum LinkError {
    /// The socket could not be opened or the TLS set-up failed: the text is
    /// what mosquitto prints after `Error: `.
    Connect(String),
    /// The host name did not resolve.
    Lookup,
    /// The broker refused the connection.
    Refused(ReasonCode),
    /// The connection was lost or broken after it was up.
    Lost(String),
}

/// A host name that did not resolve (libmosquitto's "Lookup error").
#[derive(Debug)]
struct LookupFailed(String);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LookupFailed {}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn set_timeout(&self, wait: Option<Duration>) -> std::io::Result<()> {
        let wait = wait.map(|w| w.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => s.set_read_timeout(wait),
            Stream::Unix(s) => s.set_read_timeout(wait),
            Stream::Tls(s) => s.get_ref().set_read_timeout(wait),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf),
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tls(s) => s.get_ref().shutdown(std::net::Shutdown::Both),
        };
    }
}

/// One connection to the broker.
pub struct Link {
    stream: Stream,
    conn: Connection<OUT, IN>,
    origin: Instant,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// The id the broker assigned (5.0), or the one we sent.
    pub client_id: String,
    /// `-d`: describe every packet sent and received in `log`.
    debug: bool,
    /// libmosquitto's debug lines, for the caller to print.
    pub log: Vec<String>,
    /// The last message id used: libmosquitto numbers QoS 0 messages too,
    /// and `-d` shows that number.
    last_mid: u16,
    /// CONNACK accepted.
    connected: bool,
    /// What arrived and was not yet returned by [`Link::poll`].
    queue: Vec<Incoming>,
}

/// The text of an OS error as C's `strerror` gives it (without Rust's
/// " (os error N)" suffix), which is what mosquitto prints.
pub fn strerror(error: &std::io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => error.to_string(),
    };
    let text = match text.find(" (os error ") {
        Some(at) => text.get(..at).unwrap_or(&text).to_string(),
        None => text,
    };
    text.strip_prefix("failed to lookup address information: ")
        .map(str::to_string)
        .unwrap_or(text)
}

fn open_tcp(config: &Config) -> std::io::Result<TcpStream> {
    let port = config.effective_port();
    let mut last = std::io::Error::new(ErrorKind::NotFound, "Name or service not known");
    let addrs = (config.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| {
            std::io::Error::new(ErrorKind::AddrNotAvailable, LookupFailed(e.to_string()))
        })?;
    for addr in addrs {
        let attempt = match &config.bind_address {
            None => TcpStream::connect(addr),
            Some(bind) => {
                let domain = socket2::Domain::for_address(addr);
                let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
                let local = (bind.as_str(), 0)
                    .to_socket_addrs()?
                    .find(|a| a.is_ipv4() == addr.is_ipv4())
                    .ok_or_else(|| std::io::Error::from_raw_os_error(99))?;
                socket.bind(&local.into())?;
                socket.connect(&addr.into()).map(|()| socket.into())
            }
        };
        match attempt {
            Ok(stream) => {
                if config.nodelay {
                    stream.set_nodelay(true)?;
                }
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Link {
    /// Opens the socket, sends CONNECT and waits for CONNACK.
    pub fn connect(config: &Config, client_id: &str) -> Result<Link, LinkError> {
        let stream = if config.unix {
            UnixStream::connect(&config.host).map(Stream::Unix)
        } else {
            open_tcp(config).and_then(|tcp| {
                if config.tls.enabled() {
                    tls::wrap(config, tcp).map(|s| Stream::Tls(Box::new(s)))
                } else {
                    Ok(Stream::Tcp(tcp))
                }
            })
        }
        .map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<LookupFailed>()) {
                LinkError::Lookup
            } else {
                LinkError::Connect(strerror(&e))
            }
        })?;
        let mut link = Link {
            stream,
            conn: Connection::new(),
            origin: Instant::now(),
            rx: Vec::with_capacity(4096),
            tx: Vec::with_capacity(4096),
            client_id: client_id.to_string(),
            debug: config.debug,
            log: Vec::new(),
            last_mid: 0,
            connected: false,
            queue: Vec::new(),
        };
        let protocol = protocol(config);
        let connect_users = user_properties(&config.properties, PropertyTarget::Connect);
        let will_users = user_properties(&config.properties, PropertyTarget::Will);
        let mut options = ConnectOptions::new(client_id);
        options.protocol = protocol;
        options.keep_alive = config.keepalive;
        options.clean_start = config.clean_session;
        options.username = config.username.as_deref();
        options.password = config.password.as_deref();
        options.properties =
            properties(&config.properties, PropertyTarget::Connect, &connect_users);
        if protocol.is_v5() {
            if let Some(expiry) = config.session_expiry {
                options.properties.session_expiry_interval = Some(expiry);
            }
            // As mosquitto's tools do: with -C below 20, the broker may not
            // send (and we do not acknowledge) more than we will print.
            if options.properties.receive_maximum.is_none() {
                options.properties.receive_maximum = config
                    .msg_count
                    .filter(|c| *c < 20)
                    .and_then(|c| u16::try_from(c).ok());
            }
        }
        if let Some(will) = &config.will {
            let topic = TopicName::new(&will.topic)
                .map_err(|_| LinkError::Connect("Problem setting will.".into()))?;
            options.will = Some(Will {
                topic,
                payload: &will.payload,
                qos: qos(will.qos),
                retain: will.retain,
                properties: properties(&config.properties, PropertyTarget::Will, &will_users),
            });
        }
        let now = link.now();
        link.tx.clear();
        link.conn
            .connect(now, &options, &mut link.tx)
            .map_err(|e| LinkError::Connect(e.to_string()))?;
        link.flush()?;
        let deadline = Instant::now() + Duration::from_secs(u64::from(config.keepalive).max(10));
        while !link.connected {
            if Instant::now() >= deadline {
                return Err(LinkError::Lost("no CONNACK from the broker".into()));
            }
            link.read_packets(Some(deadline - Instant::now()))?;
        }
        Ok(link)
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Writes what the core queued (acknowledgements, PUBREL, PINGREQ) and
    /// everything already in `tx`.
    fn flush(&mut self) -> Result<(), LinkError> {
        loop {
            let now = self.now();
            match self.conn.poll_transmit(now, &mut self.tx) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(LinkError::Lost(e.to_string())),
            }
        }
        if !self.tx.is_empty() {
            if self.debug {
                self.describe_sent();
            }
            let result = self.stream.write_all(&self.tx);
            self.tx.clear();
            result.map_err(|e| LinkError::Lost(strerror(&e)))?;
        }
        Ok(())
    }

    /// Reads once (waiting at most `wait`, and never past the keepalive
    /// deadline) and feeds every whole packet to the core; what the packets
    /// meant is queued for [`Link::poll`].
    fn read_packets(&mut self, wait: Option<Duration>) -> Result<(), LinkError> {
        let now = self.now();
        let keepalive_wait = self
            .conn
            .poll_timeout()
            .map(|at| Duration::from_millis(at.since(now)));
        let wait = match (wait, keepalive_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.stream
            .set_timeout(wait)
            .map_err(|e| LinkError::Lost(strerror(&e)))?;
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => return Err(LinkError::Lost("The connection was lost.".into())),
            Ok(n) => self
                .rx
                .extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(LinkError::Lost(strerror(&e))),
        }
        self.drain_packets()?;
        let now = self.now();
        self.conn
            .handle_timeout(now)
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        self.flush()
    }

    /// Handles every whole packet in `rx`, then drops them from it in one
    /// go (draining per packet moved the rest of the buffer each time).
    fn drain_packets(&mut self) -> Result<(), LinkError> {
        let mut start = 0;
        let result = self.handle_packets(&mut start);
        self.rx.drain(..start.min(self.rx.len()));
        result
    }

    /// Handles the whole packets in `rx` from `start` on, advancing `start`
    /// past each.
    fn handle_packets(&mut self, start: &mut usize) -> Result<(), LinkError> {
        loop {
            let now = self.now();
            let rest = self.rx.get(*start..).unwrap_or_default();
            let used = match self.conn.decode(rest) {
                Ok(None) => break,
                Err(e) => return Err(LinkError::Lost(e.to_string())),
                Ok(Some((packet, used))) => {
                    if self.debug {
                        for line in describe(&packet, false, self.conn.protocol(), 0) {
                            self.log.push(format!("Client {} {line}", self.name()));
                        }
                    }
                    match self.conn.handle_packet(now, packet) {
                        Ok(Event::Connected(connack)) => {
                            if let Some(id) = connack.properties.assigned_client_identifier {
                                self.client_id = id.to_string();
                            }
                            self.connected = true;
                        }
                        // Messages can come in the same read as CONNACK
                        // (a resumed session): they are kept for poll.
                        Ok(event) => {
                            let frame = rest.get(..used).unwrap_or_default();
                            self.queue.extend(own(event, frame));
                        }
                        Err(culex_client::core::Error::Refused(code)) => {
                            return Err(LinkError::Refused(code))
                        }
                        Err(e) => return Err(LinkError::Lost(e.to_string())),
                    }
                    used
                }
            };
            *start += used;
            self.flush()?;
        }
        Ok(())
    }

    /// Waits up to `wait` for packets and returns what they meant; returns
    /// at once with what is already queued.
    pub fn poll(&mut self, wait: Option<Duration>) -> Result<Vec<Incoming>, LinkError> {
        if self.queue.is_empty() {
            self.read_packets(wait)?;
        }
        Ok(std::mem::take(&mut self.queue))
    }

    /// Whether another QoS 1/2 publish fits in flight now.
    pub fn can_publish(&self) -> bool {
        self.conn.can_publish()
    }

    /// Sends a PUBLISH; returns its packet id for QoS 1/2.
    pub fn publish(&mut self, message: &Message<'_>) -> Result<Option<u16>, LinkError> {
        let now = self.now();
        let id = self
            .conn
            .publish(now, message, &mut self.tx)
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        self.last_mid = match id {
            Some(id) => id.get(),
            None => self.last_mid.checked_add(1).unwrap_or(1),
        };
        self.flush()?;
        Ok(id.map(|id| id.get()))
    }

    /// Sends one SUBSCRIBE for all `filters`; returns its packet id.
    pub fn subscribe(
        &mut self,
        filters: &[(TopicFilter<'_>, SubscriptionOptions)],
        properties: Properties<'_>,
    ) -> Result<u16, LinkError> {
        let now = self.now();
        let id = self
            .conn
            .subscribe(now, filters, properties, &mut self.tx)
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        self.last_mid = id.get();
        self.flush()?;
        Ok(id.get())
    }

    /// Sends one UNSUBSCRIBE for all `filters`; returns its packet id.
    pub fn unsubscribe(
        &mut self,
        filters: &[TopicFilter<'_>],
        properties: Properties<'_>,
    ) -> Result<u16, LinkError> {
        let now = self.now();
        let id = self
            .conn
            .unsubscribe(now, filters, properties, &mut self.tx)
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        self.last_mid = id.get();
        self.flush()?;
        Ok(id.get())
    }

    /// Sends DISCONNECT and closes the socket; returns the last debug lines.
    pub fn disconnect(mut self, properties: Properties<'_>) -> Vec<String> {
        let now = self.now();
        if self
            .conn
            .disconnect(now, ReasonCode::Success, properties, &mut self.tx)
            .is_ok()
        {
            if self.debug {
                self.describe_sent();
            }
            let _ = self.stream.write_all(&self.tx);
        }
        self.stream.shutdown();
        self.log
    }

    fn name(&self) -> &str {
        if self.client_id.is_empty() {
            "(null)"
        } else {
            &self.client_id
        }
    }

    /// Adds a debug line for each packet in `tx`, as libmosquitto logs them.
    fn describe_sent(&mut self) {
        let protocol = self.conn.protocol();
        let mut offset = 0;
        let mut lines = Vec::new();
        while let Some(rest) = self.tx.get(offset..) {
            match culex_codec::decode(rest, protocol, u32::MAX) {
                Ok(Some((packet, used))) if used > 0 => {
                    for line in describe(&packet, true, protocol, self.last_mid) {
                        lines.push(format!("Client {} {line}", self.name()));
                    }
                    offset += used;
                }
                _ => break,
            }
        }
        self.log.extend(lines);
    }
}

/// libmosquitto's debug description of a packet (each line follows "Client ID ").
/// `qos0_mid` is the number libmosquitto gives a QoS 0 PUBLISH.
fn describe(
    packet: &culex_codec::Packet<'_>,
    sending: bool,
    protocol: Protocol,
    qos0_mid: u16,
) -> Vec<String> {
    use culex_codec::Packet as P;
    let dir = if sending { "sending" } else { "received" };
    let line = match packet {
        P::Connect(_) => "sending CONNECT".to_string(),
        P::ConnAck(c) => {
            let code = if protocol.is_v5() {
                c.reason as u8
            } else {
                c.reason.to_v3_connack()
            };
            format!("received CONNACK ({code})")
        }
        P::Publish(p) => format!(
            "{dir} PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            u8::from(p.dup),
            p.qos as u8,
            u8::from(p.retain),
            p.packet_id.map(|id| id.get()).unwrap_or(qos0_mid),
            p.topic.as_str(),
            p.payload.len()
        ),
        P::PubAck(r) if sending => format!(
            "sending PUBACK (m{}, rc{})",
            r.packet_id.get(),
            r.reason as u8
        ),
        P::PubAck(r) => format!(
            "received PUBACK (Mid: {}, RC:{})",
            r.packet_id.get(),
            r.reason as u8
        ),
        P::PubRec(r) if sending => format!(
            "sending PUBREC (m{}, rc{})",
            r.packet_id.get(),
            r.reason as u8
        ),
        P::PubRec(r) => format!("received PUBREC (Mid: {})", r.packet_id.get()),
        P::PubRel(r) if sending => format!("sending PUBREL (m{})", r.packet_id.get()),
        P::PubRel(r) => format!("received PUBREL (Mid: {})", r.packet_id.get()),
        P::PubComp(r) if sending => format!("sending PUBCOMP (m{})", r.packet_id.get()),
        P::PubComp(r) => format!(
            "received PUBCOMP (Mid: {}, RC:{})",
            r.packet_id.get(),
            r.reason as u8
        ),
        P::Subscribe(s) => {
            return s
                .filters
                .iter()
                .map(|(filter, options)| {
                    format!(
                        "sending SUBSCRIBE (Mid: {}, Topic: {}, QoS: {}, Options: 0x{:02x})",
                        s.packet_id.get(),
                        filter.as_str(),
                        options.qos as u8,
                        options.to_byte() & 0xfc
                    )
                })
                .collect()
        }
        P::SubAck(_) => "received SUBACK".to_string(),
        P::Unsubscribe(u) => {
            return u
                .filters
                .iter()
                .map(|filter| {
                    format!(
                        "sending UNSUBSCRIBE (Mid: {}, Topic: {})",
                        u.packet_id.get(),
                        filter.as_str()
                    )
                })
                .collect()
        }
        P::UnsubAck(_) => "received UNSUBACK".to_string(),
        P::PingReq => "sending PINGREQ".to_string(),
        P::PingResp => "received PINGRESP".to_string(),
        P::Disconnect(_) => format!("{dir} DISCONNECT"),
        P::Auth(_) => format!("{dir} AUTH"),
    };
    vec![line]
}

/// The owned form of an event; `frame` is the packet's bytes, read for the
/// order of a PUBLISH's properties.
fn own(event: Event<'_>, frame: &[u8]) -> Option<Incoming> {
    Some(match event {
        Event::Message(publish) => Incoming::Message(OwnedMessage {
            topic: publish.topic.as_str().to_string(),
            payload: publish.payload.to_vec(),
            qos: publish.qos as u8,
            retain: publish.retain,
            mid: publish.packet_id.map(|id| id.get()).unwrap_or(0),
            properties: message_properties(frame),
        }),
        Event::Published { id, reason } => Incoming::Published {
            id: id.get(),
            reason,
        },
        Event::Subscribed(suback) => Incoming::Subscribed {
            id: suback.packet_id.get(),
            reasons: suback.reasons.iter().collect(),
        },
        Event::Unsubscribed(unsuback) => Incoming::Unsubscribed {
            id: unsuback.packet_id.get(),
        },
        Event::Disconnected(_) => Incoming::Disconnected,
        _ => return None,
    })
}

/// The properties of a received PUBLISH in wire order, which `%j` prints
/// them in (the codec's [`Properties`] keeps values, not order). `frame` was
/// already decoded whole, so reading it again cannot fail.
fn message_properties(frame: &[u8]) -> MessageProperties {
    use culex_codec::properties::{iter_raw, publish_section, RawValue as V};
    let list = publish_section(frame)
        .into_iter()
        .flat_map(iter_raw)
        .map_while(Result::ok)
        .filter_map(|(id, value)| {
            Some(match (id, value) {
                (0x01, V::Byte(v)) => MessageProperty::PayloadFormat(v),
                (0x02, V::U32(v)) => MessageProperty::MessageExpiry(v),
                (0x03, V::Str(v)) => MessageProperty::ContentType(v.to_string()),
                (0x08, V::Str(v)) => MessageProperty::ResponseTopic(v.to_string()),
                (0x09, V::Bin(v)) => MessageProperty::CorrelationData(v.to_vec()),
                (0x0B, V::VarInt(v)) => MessageProperty::SubscriptionId(v),
                (0x23, V::U16(v)) => MessageProperty::TopicAlias(v),
                (0x26, V::Pair(k, v)) => MessageProperty::User(k.to_string(), v.to_string()),
                _ => return None,
            })
        })
        .collect();
    MessageProperties { list }
}

/// The codec's protocol for `-V`.
pub fn protocol(config: &Config) -> Protocol {
    match config.protocol {
        ArgProtocol::V31 => Protocol::V3_1,
        ArgProtocol::V311 => Protocol::V3_1_1,
        ArgProtocol::V5 => Protocol::V5,
    }
}

/// A QoS from its number (already checked to be 0..=2).
pub fn qos(n: u8) -> QoS {
    QoS::from_u8(n).unwrap_or(QoS::AtMostOnce)
}

/// The user properties given with `-D` for `target`, in order.
pub fn user_properties(args: &[PropertyArg], target: PropertyTarget) -> Vec<(&str, &str)> {
    args.iter()
        .filter(|p| p.target == target)
        .filter_map(|p| match &p.value {
            PropertyValue::Pair(k, v) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
        .collect()
}

/// The `-D` properties for `target` as the codec's [`Properties`];
/// `users` comes from [`user_properties`].
pub fn properties<'a>(
    args: &'a [PropertyArg],
    target: PropertyTarget,
    users: &'a [(&'a str, &'a str)],
) -> Properties<'a> {
    let mut p = Properties {
        user_properties: Seq::Items(users),
        ..Properties::default()
    };
    for arg in args.iter().filter(|a| a.target == target) {
        match (arg.id, &arg.value) {
            (0x01, PropertyValue::Byte(v)) => p.payload_format_indicator = Some(*v),
            (0x02, PropertyValue::U32(v)) => p.message_expiry_interval = Some(*v),
            (0x03, PropertyValue::Str(v)) => p.content_type = Some(v),
            (0x08, PropertyValue::Str(v)) => p.response_topic = Some(v),
            (0x09, PropertyValue::Binary(v)) => p.correlation_data = Some(v),
            (0x11, PropertyValue::U32(v)) => p.session_expiry_interval = Some(*v),
            (0x15, PropertyValue::Str(v)) => p.authentication_method = Some(v),
            (0x16, PropertyValue::Binary(v)) => p.authentication_data = Some(v),
            (0x17, PropertyValue::Byte(v)) => p.request_problem_information = Some(*v),
            (0x18, PropertyValue::U32(v)) => p.will_delay_interval = Some(*v),
            (0x19, PropertyValue::Byte(v)) => p.request_response_information = Some(*v),
            (0x1C, PropertyValue::Str(v)) => p.server_reference = Some(v),
            (0x1F, PropertyValue::Str(v)) => p.reason_string = Some(v),
            (0x21, PropertyValue::U16(v)) => p.receive_maximum = Some(*v),
            (0x22, PropertyValue::U16(v)) => p.topic_alias_maximum = Some(*v),
            (0x23, PropertyValue::U16(v)) => p.topic_alias = Some(*v),
            (0x27, PropertyValue::U32(v)) => p.maximum_packet_size = Some(*v),
            _ => {}
        }
    }
    p
}
