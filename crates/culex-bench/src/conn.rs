//! One MQTT connection of the load generator: the handshake, and a lean loop
//! that drives a [`Role`] (publisher, subscriber or idle connection).
//!
//! The loop owns one read and one write buffer. Outgoing packets are encoded
//! straight into the write buffer and go out in one `write` per wake-up;
//! incoming bytes are read into the read buffer and decoded in place, every
//! complete frame of a read in one pass. Nothing is copied per message.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use culex_codec::packet::{Connect, Disconnect, PubResponse, Publish, Subscribe};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    check_frame, decode_packet, success_response, DecodeError, EncodeError, Packet, PacketId,
    PacketType, Properties, Protocol, QoS, ReasonCode, Seq, SubscriptionOptions,
};
use socket2::{Domain, Socket, Type};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::link::{Link, LinkKind};

/// Once the write buffer holds this much, stop producing until it drains.
pub(crate) const HIGH_WATER: usize = 64 * 1024;
/// Room made in the read buffer before a read: it starts small, so idle
/// connections stay cheap, and grows while reads fill it.
const READ_MIN: usize = 1024;
const READ_MAX: usize = 128 * 1024;
/// Largest packet accepted: the protocol's own limit.
const MAX_PACKET: u32 = 268_435_460;
/// Busy iterations between voluntary yields, so a flat-out connection does not
/// starve the others sharing its worker thread.
const YIELD_EVERY: u32 = 16;
/// Longest wait for the broker to close after DISCONNECT.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// A socket error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The broker did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The broker refused the connection or subscription.
    #[error("{0} refused: {1:?}")]
    Refused(&'static str, ReasonCode),
    /// The broker sent bytes that are not valid MQTT.
    #[error("bad packet from broker: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded (a bad option, such as an over-long topic).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The broker closed the connection.
    #[error("connection closed by broker")]
    Closed,
    /// The broker sent DISCONNECT (5.0).
    #[error("broker sent DISCONNECT: {0:?}")]
    Disconnected(ReasonCode),
    /// The output could not be flushed before the run's end.
    #[error("output still unsent at the end of the drain")]
    Stalled,
}

impl ConnError {
    /// A short description of the kind of error, for counting.
    pub fn kind(&self) -> String {
        match self {
            ConnError::Io(e) => format!("io: {}", e.kind()),
            other => other.to_string(),
        }
    }
}

/// Session expiry asked for by `--persistent` 5.0 clients, in seconds: long
/// enough to outlive a run, short enough that a broker forgets them soon.
const PERSISTENT_SESSION_EXPIRY: u32 = 300;

/// How to open one connection.
#[derive(Debug, Clone)]
pub struct ConnectParams<'a> {
    /// The broker.
    pub addr: SocketAddr,
    /// The local address to bind, if chosen.
    pub source: Option<IpAddr>,
    /// MQTT version.
    pub protocol: Protocol,
    /// Client identifier.
    pub client_id: &'a str,
    /// Keep alive, in seconds.
    pub keep_alive: u16,
    /// Ask the broker to keep the session (clean session 0).
    pub persistent: bool,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a str>,
    /// Deadline for the TCP connect and the CONNACK.
    pub deadline: Instant,
    /// Write CONNECT right after `connect`, without waiting for the runtime
    /// to report the handshake complete (see [`Conn::connect`]); plain TCP only.
    pub early: bool,
    /// TLS, WebSocket, both, or neither.
    pub link: &'a LinkKind,
}

/// An open MQTT connection after a successful CONNACK.
#[derive(Debug)]
pub struct Conn {
    link: Link,
    rbuf: BytesMut,
    wbuf: BytesMut,
    read_chunk: usize,
    protocol: Protocol,
    /// The broker's receive maximum: QoS 1/2 publications it takes unacknowledged.
    pub receive_maximum: u16,
}

impl Conn {
    /// Opens a TCP connection, sends CONNECT and waits for a successful CONNACK.
    ///
    /// By default CONNECT is written once the runtime has reported the socket
    /// writable, that is the TCP handshake complete, as event-driven clients
    /// (paho) learn it from their poller: one reactor round after `connect`.
    ///
    /// With [`ConnectParams::early`], CONNECT is written at once, before the
    /// socket joins the runtime. On loopback the kernel completes the
    /// handshake inside `connect`, so the send succeeds without a wake-up,
    /// and CONNECT is usually in the broker's socket before the broker has
    /// accepted it. Only when the handshake is still under way does it wait.
    pub async fn connect(p: &ConnectParams<'_>) -> Result<Conn, ConnError> {
        let socket = Socket::new(
            Domain::for_address(p.addr),
            Type::STREAM.nonblocking(),
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_nodelay(true)?;
        if let Some(source) = p.source {
            socket.bind(&SocketAddr::new(source, 0).into())?;
        }
        match socket.connect(&p.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        let mut wbuf = BytesMut::with_capacity(256);
        encode_connect(p, &mut wbuf)?;
        let plain = p.link.tls.is_none() && p.link.websocket.is_none();
        let sent_early = p.early
            && plain
            && match socket.send(&wbuf) {
                Ok(n) => {
                    wbuf.advance(n);
                    true
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                Err(e) => return Err(e.into()),
            };
        let stream = TcpStream::from_std(socket.into())?;
        if !sent_early {
            timeout_at(p.deadline, stream.writable())
                .await
                .map_err(|_| ConnError::Timeout("TCP connect"))??;
            if let Some(e) = stream.take_error()? {
                return Err(e.into());
            }
        }
        let link = if plain {
            Link::plain(stream)
        } else {
            Link::open(stream, p.link, p.deadline).await?
        };
        let mut conn = Conn {
            link,
            rbuf: BytesMut::with_capacity(512),
            wbuf,
            read_chunk: READ_MIN,
            protocol: p.protocol,
            receive_maximum: u16::MAX,
        };
        if !conn.wbuf.is_empty() {
            conn.flush(p.deadline, "CONNECT to be sent").await?;
        }
        conn.wbuf.clear();
        let receive_maximum = conn
            .expect(p.deadline, "CONNACK", |packet| match packet {
                Packet::ConnAck(ack) if ack.reason == ReasonCode::Success => {
                    Some(Ok(ack.properties.receive_maximum.unwrap_or(u16::MAX)))
                }
                Packet::ConnAck(ack) => Some(Err(ConnError::Refused("connection", ack.reason))),
                _ => None,
            })
            .await?;
        conn.receive_maximum = receive_maximum.max(1);
        Ok(conn)
    }

    /// Subscribes to `filter` and waits for a SUBACK that grants it.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        deadline: Instant,
    ) -> Result<(), ConnError> {
        let filter = TopicFilter::new(filter)
            .map_err(|_| ConnError::Encode(EncodeError::NotAllowed("topic filter")))?;
        let options = SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        };
        let entries = [(filter, options)];
        let packet_id = PacketId::new(1).ok_or(EncodeError::NotAllowed("packet id"))?;
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id,
            properties: Properties::default(),
            filters: Seq::Items(&entries),
        });
        subscribe.encode(self.protocol, &mut self.wbuf)?;
        self.flush(deadline, "SUBSCRIBE to be sent").await?;
        self.expect(deadline, "SUBACK", |packet| match packet {
            Packet::SubAck(ack) if ack.packet_id == packet_id => {
                let refused = ack.reasons.iter().find(|r| (*r as u8) >= 0x80);
                Some(match refused {
                    Some(reason) => Err(ConnError::Refused("subscription", reason)),
                    None => Ok(()),
                })
            }
            _ => None,
        })
        .await
    }

    /// Writes the whole write buffer.
    async fn flush(&mut self, deadline: Instant, what: &'static str) -> Result<(), ConnError> {
        self.link.write_all(&mut self.wbuf, deadline, what).await
    }

    /// Reads packets until `pick` returns a result for one; other packets are skipped.
    async fn expect<T>(
        &mut self,
        deadline: Instant,
        what: &'static str,
        mut pick: impl FnMut(Packet<'_>) -> Option<Result<T, ConnError>>,
    ) -> Result<T, ConnError> {
        loop {
            while let Some(len) = check_frame(&self.rbuf, MAX_PACKET)? {
                let frame = self.rbuf.get(..len).ok_or(ConnError::Closed)?;
                let packet = decode_packet(frame, self.protocol)?;
                if let Packet::Disconnect(d) = packet {
                    return Err(ConnError::Disconnected(d.reason));
                }
                let picked = pick(packet);
                self.rbuf.advance(len);
                if let Some(result) = picked {
                    return result;
                }
            }
            self.rbuf.reserve(512);
            let n = self.link.read_some(&mut self.rbuf, deadline, what).await?;
            if n == 0 {
                return Err(ConnError::Closed);
            }
        }
    }

    /// Drives `role` until it finishes, the connection fails, or the role's
    /// hard deadline passes with output still unsent.
    pub async fn drive<R: Role>(&mut self, role: &mut R) -> Result<(), ConnError> {
        let hard_deadline = role.hard_deadline();
        let mut busy: u32 = 0;
        // The handshake's last read may have brought more than its answer.
        if !self.rbuf.is_empty() {
            self.process(role)?;
        }
        loop {
            let now = Instant::now();
            let mut progress = false;
            let mut wake = hard_deadline;
            let mut finished = false;
            if self.wbuf.len() + self.link.pending() < HIGH_WATER {
                let before = self.wbuf.len();
                match role.fill(&mut self.wbuf, self.protocol, now)? {
                    Step::Wait(at) => wake = at.min(hard_deadline),
                    Step::Finish => finished = true,
                }
                progress |= self.wbuf.len() != before;
            }
            if !self.wbuf.is_empty() || self.link.pending() > 0 {
                progress |= self.link.try_write(&mut self.wbuf)?;
            }
            let unsent = !self.wbuf.is_empty() || self.link.pending() > 0;
            if finished && !unsent {
                self.await_close(hard_deadline.min(now + CLOSE_WAIT)).await;
                return Ok(());
            }
            if now >= hard_deadline {
                return Err(ConnError::Stalled);
            }
            let room = self.rbuf.capacity() - self.rbuf.len();
            if room < self.read_chunk / 2 {
                self.rbuf.reserve(self.read_chunk);
            }
            let room = self.rbuf.capacity() - self.rbuf.len();
            match self.link.try_read(&mut self.rbuf) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    if n == room {
                        self.read_chunk = (self.read_chunk * 2).min(READ_MAX);
                    }
                    progress = true;
                    self.process(role)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            if progress {
                busy += 1;
                if busy.is_multiple_of(YIELD_EVERY) {
                    tokio::task::yield_now().await;
                }
                continue;
            }
            busy = 0;
            let interest = if unsent {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            tokio::select! {
                ready = self.link.ready(interest) => { ready?; }
                () = sleep_until(wake) => {}
            }
        }
    }

    /// After DISCONNECT, waits (until `deadline` at most) for the broker to
    /// close first, so that the closed connection's TIME_WAIT is the broker's
    /// and does not hold one of our local ports: a second run right after a
    /// large one then finds free ports at once. What still arrives is dropped.
    async fn await_close(&mut self, deadline: Instant) {
        self.rbuf.clear();
        while let Ok(n) = self.link.read_some(&mut self.rbuf, deadline, "close").await {
            if n == 0 {
                return;
            }
            self.rbuf.clear();
        }
    }

    /// Decodes and hands to `role` every complete frame in the read buffer.
    fn process<R: Role>(&mut self, role: &mut R) -> Result<(), ConnError> {
        let mut consumed = 0;
        role.begin_batch();
        loop {
            let rest = self.rbuf.get(consumed..).unwrap_or_default();
            let Some(len) = check_frame(rest, MAX_PACKET)? else {
                break;
            };
            let frame = rest.get(..len).ok_or(ConnError::Closed)?;
            // Matched where it was decoded: a `Packet` is some 600 bytes,
            // and moving it out of its `Result` copied it for every message.
            let decoded = decode_packet(frame, self.protocol);
            let packet = match &decoded {
                Ok(Packet::Disconnect(d)) => return Err(ConnError::Disconnected(d.reason)),
                Ok(packet) => packet,
                Err(e) => return Err((*e).into()),
            };
            role.on_packet(packet, &mut self.wbuf, self.protocol)?;
            consumed += len;
        }
        self.rbuf.advance(consumed);
        role.end_batch();
        Ok(())
    }
}

/// What a role wants after producing output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ask again when a packet arrives, the socket drains, or at this time.
    Wait(Instant),
    /// Done: close once the output is flushed.
    Finish,
}

/// The behaviour of one connection, driven by [`Conn::drive`].
pub trait Role {
    /// After this, output still unsent is given up on.
    fn hard_deadline(&self) -> Instant;
    /// Appends outgoing packets to `out` (called while `out` is below the
    /// high-water mark).
    fn fill(
        &mut self,
        out: &mut BytesMut,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Step, ConnError>;
    /// Called before the frames of one read.
    fn begin_batch(&mut self) {}
    /// Handles one incoming packet; acknowledgements go to `out`.
    fn on_packet(
        &mut self,
        packet: &Packet<'_>,
        out: &mut BytesMut,
        protocol: Protocol,
    ) -> Result<(), ConnError>;
    /// Called after the frames of one read.
    fn end_batch(&mut self) {}
}

/// Encodes the CONNECT packet `p` asks for.
fn encode_connect(p: &ConnectParams<'_>, out: &mut BytesMut) -> Result<(), ConnError> {
    let mut properties = Properties::default();
    if p.protocol.is_v5() {
        // Let the broker send us as many QoS 1/2 messages as it likes.
        properties.receive_maximum = Some(u16::MAX);
        if p.persistent {
            properties.session_expiry_interval = Some(PERSISTENT_SESSION_EXPIRY);
        }
    }
    Packet::Connect(Connect {
        bridge: false,
        protocol: p.protocol,
        clean_start: !p.persistent,
        keep_alive: p.keep_alive,
        client_id: p.client_id,
        will: None,
        username: p.username,
        password: p.password.map(str::as_bytes),
        properties,
    })
    .encode(p.protocol, out)?;
    Ok(())
}

/// Appends a normal DISCONNECT.
pub fn put_disconnect(out: &mut BytesMut, protocol: Protocol) -> Result<(), ConnError> {
    Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    })
    .encode(protocol, out)?;
    Ok(())
}

/// An acknowledgement a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// PUBACK, for a QoS 1 PUBLISH.
    PubAck,
    /// PUBREC, for a QoS 2 PUBLISH.
    PubRec,
    /// PUBREL, for a PUBREC.
    PubRel,
    /// PUBCOMP, for a PUBREL.
    PubComp,
}

impl Response {
    fn packet(self, id: PacketId) -> Packet<'static> {
        let r = PubResponse {
            packet_id: id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        match self {
            Response::PubAck => Packet::PubAck(r),
            Response::PubRec => Packet::PubRec(r),
            Response::PubRel => Packet::PubRel(r),
            Response::PubComp => Packet::PubComp(r),
        }
    }

    fn packet_type(self) -> PacketType {
        match self {
            Response::PubAck => PacketType::PubAck,
            Response::PubRec => PacketType::PubRec,
            Response::PubRel => PacketType::PubRel,
            Response::PubComp => PacketType::PubComp,
        }
    }
}

/// Appends a success acknowledgement: the load generator writes millions a
/// second, so it takes the codec's four ready-made bytes
/// ([`success_response`]) instead of building and encoding a `Packet`.
pub fn put_response(
    out: &mut BytesMut,
    protocol: Protocol,
    packet_id: PacketId,
    kind: Response,
) -> Result<(), ConnError> {
    match success_response(kind.packet_type(), packet_id) {
        Some(bytes) => out.extend_from_slice(&bytes),
        None => {
            kind.packet(packet_id).encode(protocol, out)?;
        }
    }
    Ok(())
}

/// Appends a PUBLISH.
pub fn put_publish(
    out: &mut BytesMut,
    protocol: Protocol,
    topic: TopicName<'_>,
    qos: QoS,
    packet_id: Option<PacketId>,
    payload: &[u8],
) -> Result<(), ConnError> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id,
        properties: Properties::default(),
        payload,
    })
    .encode(protocol, out)?;
    Ok(())
}

/// A deadline `d` from now.
pub fn after(d: Duration) -> Instant {
    Instant::now() + d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ready-made acknowledgements are what encoding the packet writes,
    /// in every version, for every packet id.
    #[test]
    fn responses_match_the_codec() {
        for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
            for kind in [
                Response::PubAck,
                Response::PubRec,
                Response::PubRel,
                Response::PubComp,
            ] {
                for id in [1u16, 2, 255, 256, 4660, u16::MAX] {
                    let id = PacketId::new(id).unwrap();
                    let mut fast = BytesMut::new();
                    put_response(&mut fast, protocol, id, kind).unwrap();
                    let mut codec = BytesMut::new();
                    kind.packet(id).encode(protocol, &mut codec).unwrap();
                    assert_eq!(fast, codec, "{kind:?} {id:?} in {protocol:?}");
                }
            }
        }
    }

    /// A connection that ends sends DISCONNECT and closes once the broker has
    /// (a server should close on DISCONNECT, 3.1.1 section 3.14.4): the peer
    /// here reads the DISCONNECT, then sees no end of stream until it closes
    /// itself. Fails if the client closes first.
    #[test]
    fn the_broker_closes_first() {
        use std::io::{Read, Write};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let n = socket.read(&mut buf).unwrap();
            assert_eq!(buf.first(), Some(&0x10), "CONNECT first: {:?}", &buf[..n]);
            socket.write_all(&[0x20, 2, 0, 0]).unwrap();
            let n = socket.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[0xE0, 0], "then DISCONNECT");
            socket
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let still_open = socket.read(&mut buf).is_err();
            drop(socket);
            still_open
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let params = ConnectParams {
                addr,
                source: None,
                protocol: Protocol::V3_1_1,
                client_id: "closer",
                keep_alive: 60,
                persistent: false,
                username: None,
                password: None,
                deadline: after(Duration::from_secs(10)),
                early: false,
                link: &LinkKind::default(),
            };
            let mut conn = Conn::connect(&params).await.unwrap();
            let shared = Arc::new(crate::stats::Shared::new());
            let control = Arc::new(crate::roles::Control::default());
            let mut idle = crate::roles::Idle::new(shared, control, Instant::now());
            conn.drive(&mut idle).await.unwrap();
        });
        assert!(peer.join().unwrap(), "the client closed first");
    }
}
