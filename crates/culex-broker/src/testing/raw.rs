//! A raw test client built on the codec: it sends exactly the packets a
//! test asks for and hands back every packet it receives, over any
//! [`Wire`]: real TCP ([`Tcp`]), or the protocol layer's simulation (its
//! unit tests), so that one test reads the same over both.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use culex_codec::packet::{Connect, PubResponse, Publish, Subscribe, Will};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    check_frame, decode_packet, Packet, PacketId, Properties, Protocol, QoS, ReasonCode, Seq,
    SubscriptionOptions,
};

/// What a wire read brought.
#[derive(Debug)]
pub enum Read {
    /// Bytes from the broker.
    Bytes(Vec<u8>),
    /// Nothing within the whole wait.
    Nothing,
    /// The broker closed the connection (or it failed).
    Closed,
}

/// How a [`Raw`] client reaches the broker.
pub trait Wire: Sized {
    /// A new connection to the broker known as `port`.
    fn open(port: u16) -> Self;
    /// Sends bytes; `false` when the connection is gone.
    fn write(&mut self, bytes: &[u8]) -> bool;
    /// What the broker sent within `wait`; [`Read::Nothing`] once all of
    /// `wait` has passed with nothing.
    fn read(&mut self, wait: Duration) -> Read;
}

/// A TCP connection to 127.0.0.1.
#[derive(Debug)]
pub struct Tcp(pub TcpStream);

impl Wire for Tcp {
    fn open(port: u16) -> Tcp {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).unwrap();
        Tcp(stream)
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        self.0.write_all(bytes).is_ok()
    }

    fn read(&mut self, wait: Duration) -> Read {
        if wait.is_zero() {
            return Read::Nothing;
        }
        self.0.set_read_timeout(Some(wait)).unwrap();
        let mut tmp = [0u8; 4096];
        match self.0.read(&mut tmp) {
            Ok(0) => Read::Closed,
            Ok(n) => Read::Bytes(tmp[..n].to_vec()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Read::Nothing
            }
            Err(_) => Read::Closed,
        }
    }
}

/// A test client over a [`Wire`].
pub struct Raw<W: Wire> {
    pub wire: W,
    buf: Vec<u8>,
    pub protocol: Protocol,
}

/// A received packet, kept as its frame and decoded on demand.
pub struct Frame(pub Vec<u8>, pub Protocol);

impl Frame {
    pub fn packet(&self) -> Packet<'_> {
        decode_packet(&self.0, self.1).expect("broker sent a valid packet")
    }

    pub fn publish(&self) -> Got {
        match self.packet() {
            Packet::Publish(p) => Got {
                topic: p.topic.as_str().to_owned(),
                payload: p.payload.to_vec(),
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                id: p.packet_id.map(|i| i.get()),
            },
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

/// A received PUBLISH, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
    pub id: Option<u16>,
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub struct ConnectOpts<'a> {
    pub client_id: &'a str,
    pub clean: bool,
    pub keep_alive: u16,
    pub will: Option<(&'a str, &'a [u8], QoS, bool)>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    pub protocol: Protocol,
    pub properties: Properties<'a>,
}

impl Default for ConnectOpts<'_> {
    fn default() -> Self {
        ConnectOpts {
            client_id: "",
            clean: true,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
            protocol: Protocol::V3_1_1,
            properties: Properties::default(),
        }
    }
}

impl Raw<Tcp> {
    /// A client on a socket the test connected itself.
    pub fn from_stream(stream: TcpStream, protocol: Protocol) -> Raw<Tcp> {
        stream.set_nodelay(true).unwrap();
        Raw {
            wire: Tcp(stream),
            buf: Vec::new(),
            protocol,
        }
    }
}

impl<W: Wire> Raw<W> {
    pub fn open(port: u16, protocol: Protocol) -> Raw<W> {
        Raw::over(W::open(port), protocol)
    }

    /// A client on a wire the test opened itself (TLS, WebSocket, …).
    pub fn over(wire: W, protocol: Protocol) -> Raw<W> {
        Raw {
            wire,
            buf: Vec::new(),
            protocol,
        }
    }

    /// Connects and returns the CONNACK's (session present, reason byte as on the wire).
    pub fn connect_with(port: u16, opts: ConnectOpts<'_>) -> (Raw<W>, bool, ReasonCode) {
        let mut c = Raw::open(port, opts.protocol);
        let (present, reason) = c.handshake(opts);
        (c, present, reason)
    }

    /// Sends CONNECT and returns the CONNACK's (session present, reason).
    pub fn handshake(&mut self, opts: ConnectOpts<'_>) -> (bool, ReasonCode) {
        let c = self;
        let will = opts.will.map(|(t, p, qos, retain)| Will {
            topic: TopicName::new(t).unwrap(),
            payload: p,
            qos,
            retain,
            properties: Properties::default(),
        });
        c.send(&Packet::Connect(Connect {
            bridge: false,
            protocol: opts.protocol,
            clean_start: opts.clean,
            keep_alive: opts.keep_alive,
            client_id: opts.client_id,
            will,
            username: opts.username,
            password: opts.password,
            properties: opts.properties,
        }));
        let f = c.recv();
        match f.packet() {
            Packet::ConnAck(a) => (a.session_present, a.reason),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects a 3.1.1 client that must be accepted.
    pub fn connect(port: u16, client_id: &str, clean: bool) -> (Raw<W>, bool) {
        let (c, present, reason) = Raw::connect_with(
            port,
            ConnectOpts {
                client_id,
                clean,
                ..ConnectOpts::default()
            },
        );
        assert_eq!(reason, ReasonCode::Success);
        (c, present)
    }

    /// A client subscribed at QoS 0 to every will of these tests (`will/#`).
    pub fn will_watcher(port: u16) -> Raw<W> {
        let (mut watcher, _) = Raw::connect(port, "watcher", true);
        watcher.subscribe(&[("will/#", QoS::AtMostOnce)]);
        watcher
    }

    /// Connects `client_id` with a QoS 0 will of `payload` on `will/CLIENT_ID`.
    pub fn connect_with_will(
        port: u16,
        client_id: &str,
        keep_alive: u16,
        payload: &[u8],
    ) -> Raw<W> {
        let topic = format!("will/{client_id}");
        let (c, _, reason) = Raw::connect_with(
            port,
            ConnectOpts {
                client_id,
                keep_alive,
                will: Some((&topic, payload, QoS::AtMostOnce, false)),
                ..ConnectOpts::default()
            },
        );
        assert_eq!(reason, ReasonCode::Success);
        c
    }

    pub fn send(&mut self, p: &Packet<'_>) {
        let mut out = Vec::new();
        p.encode(self.protocol, &mut out).expect("encode");
        assert!(self.wire.write(&out), "write");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        assert!(self.wire.write(bytes), "write");
    }

    /// Sends bytes; `false` when the connection is gone.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.wire.write(bytes)
    }

    /// The next packet; panics after 5 s.
    pub fn recv(&mut self) -> Frame {
        self.try_recv(Duration::from_secs(5))
            .expect("a packet within 5 s")
    }

    /// The next packet within `wait`, or None (timeout or closed).
    pub fn try_recv(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(len) = check_frame(&self.buf, u32::MAX).expect("valid frame") {
                let frame: Vec<u8> = self.buf.drain(..len).collect();
                return Some(Frame(frame, self.protocol));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.wire.read(left) {
                Read::Bytes(b) => self.buf.extend_from_slice(&b),
                Read::Nothing | Read::Closed => return None,
            }
        }
    }

    /// Whether the broker closed the connection within `wait` (what it
    /// sent meanwhile is dropped).
    pub fn is_closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.wire.read(left) {
                Read::Closed => return true,
                Read::Bytes(_) => {}
                Read::Nothing => return false,
            }
        }
    }

    pub fn subscribe(&mut self, filters: &[(&str, QoS)]) -> Vec<u8> {
        let list: Vec<(TopicFilter<'_>, SubscriptionOptions)> = filters
            .iter()
            .map(|(f, q)| {
                (
                    TopicFilter::new(f).unwrap(),
                    SubscriptionOptions {
                        qos: *q,
                        ..Default::default()
                    },
                )
            })
            .collect();
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: Properties::default(),
            filters: Seq::Items(&list),
        }));
        let f = self.recv();
        match f.packet() {
            Packet::SubAck(a) => a.reasons.iter().map(|r| r as u8).collect(),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool, id: u16) {
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: TopicName::new(topic).unwrap(),
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(id)),
            properties: Properties::default(),
            payload,
        }));
    }

    /// Publishes and waits for the whole acknowledgement flow.
    pub fn publish_acked(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool, id: u16) {
        self.publish(topic, payload, qos, retain, id);
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => assert!(
                matches!(self.recv().packet(), Packet::PubAck(a) if a.packet_id.get() == id)
            ),
            QoS::ExactlyOnce => {
                assert!(
                    matches!(self.recv().packet(), Packet::PubRec(a) if a.packet_id.get() == id)
                );
                self.ack(Packet::PubRel, id);
                assert!(
                    matches!(self.recv().packet(), Packet::PubComp(a) if a.packet_id.get() == id)
                );
            }
        }
    }

    pub fn ack(&mut self, kind: fn(PubResponse<'static>) -> Packet<'static>, id: u16) {
        self.send(&kind(PubResponse {
            packet_id: pid(id),
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }));
    }

    /// A PINGREQ round trip: every packet sent before it has been handled.
    pub fn sync(&mut self) {
        self.send(&Packet::PingReq);
        assert!(matches!(self.recv().packet(), Packet::PingResp));
    }

    /// DISCONNECT, then waits until the broker has closed the connection
    /// (it has left the session by then).
    pub fn disconnect(mut self) {
        self.send(&Packet::Disconnect(culex_codec::packet::Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }));
        assert!(self.is_closed_within(Duration::from_secs(5)));
    }
}
