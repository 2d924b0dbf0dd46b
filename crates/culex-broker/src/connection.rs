//! The tokio driver of one client connection: reads frames, runs the
//! protocol against the session core, routes publishes, and writes every
//! ready packet in one write per wake-up. It is also the only place that
//! logs per-connection events (mosquitto's notice and debug lines).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use culex_codec::packet::{
    ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use culex_codec::topic::TopicName;
use culex_codec::{
    check_frame, decode_packet, DecodeError, Packet, PacketId, Properties, Protocol, QoS,
    ReasonCode, RetainHandling, Seq,
};

use crate::broker::{
    deliver_outbox, end_session, flush_changes, max_qos, protocol_tag, remove_subscriptions,
    resume_all, ConnSignal, Origin, SessionHandle, SessionKey, Shared, WillOwner,
};
use crate::message::{slice_or_copy, Message, MessageProps};
use crate::session::{Delivery, Outgoing, SubscriptionEntry};
use crate::socket::Socket;
use crate::subscriptions::Match;

/// Above this many buffered output bytes the connection stops reading and
/// taking deliveries until the socket drains (back-pressure).
const HIGH_WATER: usize = 256 * 1024;
/// After a read of at least this many bytes the task yields, so that one
/// busy publisher cannot keep a worker thread (and the subscribers woken in
/// its LIFO slot, which other workers cannot steal) to itself: tokio's
/// readiness futures do not count against the cooperative budget.
const YIELD_AFTER_READ: usize = 8 * 1024;
/// How long a publisher stays paused for a subscriber that does not drain
/// (see `session::STALL_AFTER`); then it reads again and the overflow is dropped.
const PAUSE_MAX: Duration = crate::session::STALL_AFTER;
/// A batch of frames publishing this much (payload bytes, plus half of it
/// per message: two messages, or one of 8 KiB or more) may be paused for a
/// full subscriber.
const FLOOD_LOAD: u32 = 16 * 1024;
/// Packets of this size or more are read into a buffer of their own.
const LARGE_FRAME: usize = 8 * 1024;
/// The largest output buffer a worker thread keeps for reuse.
const MAX_SPARE_WBUF: usize = 512 * 1024;

thread_local! {
    /// An emptied output buffer, lent to the next connection this worker
    /// thread encodes for: busy connections do not allocate and grow a new
    /// buffer for every flush, and idle ones hold none.
    static SPARE_WBUF: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

/// How long a new connection may take to send its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Topic aliases a 5.0 client may use towards us.
const TOPIC_ALIAS_MAXIMUM: u16 = 10;
/// A connection that was active parks after this long without activity
/// (a new one parks as soon as it is idle).
const PARK_AFTER: Duration = Duration::from_secs(2);
/// When parking had to wait (something was pending), try again after this.
const PARK_RETRY: Duration = Duration::from_millis(100);
/// How long a packet may take to arrive once its first byte has: without
/// it, a client without keep-alive could hold a buffer by sending a byte
/// now and then.
const PARTIAL_PACKET_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a closing connection keeps reading (and dropping) what its
/// client still sends, and how long shutdown writes out what is ready.
const LINGER: Duration = Duration::from_secs(1);
/// The most bytes a closing connection reads and drops.
const LINGER_BYTES: usize = 1 << 20;
/// MQTT's own maximum packet size.
const MQTT_MAX_PACKET: u32 = 268_435_460;

/// Why a connection ended.
#[derive(Debug)]
enum Exit {
    /// The client sent DISCONNECT; `will` for 5.0's 0x04.
    Disconnect { will: bool },
    /// The client closed the socket.
    Closed,
    /// A socket error.
    Io(std::io::Error),
    /// No packet within 1.5 × keep alive [MQTT-3.1.2-24].
    Timeout,
    /// A malformed packet or protocol error; the reason is sent in 5.0.
    Violation(ReasonCode, String),
    /// Another connection took the session over [MQTT-3.1.4-2].
    Kicked,
    /// The broker is shutting down.
    Shutdown,
}

/// How `serve` ended.
enum Served {
    Exit(Exit),
    /// Idle, with nothing pending: the connection parks.
    Park,
}

enum Event {
    Wake,
    Readable(std::io::Result<()>),
    Writable(std::io::Result<()>),
    Resume,
    Timeout,
}

struct Conn {
    shared: Arc<Shared>,
    /// Registered with tokio only once the connection waits for it.
    stream: Socket,
    peer: SocketAddr,
    listener: usize,
    rbuf: BytesMut,
    wbuf: BytesMut,
    protocol: Protocol,
    client_id: Arc<str>,
    username: Option<Arc<str>>,
    keepalive: Option<Duration>,
    last_seen: Instant,
    /// Since when the read buffer holds part of a packet.
    partial_since: Option<Instant>,
    /// Set when a publish overflowed a subscriber's queue.
    backoff: bool,
    /// The listener's `mount_point`, prefixed to every topic of this client.
    mount: Option<Arc<str>>,
    out_alias_max: u16,
    /// Topic aliases both ways, allocated on first use (5.0 only).
    aliases: Option<Box<Aliases>>,
    max_packet_size: u32,
    client_max_packet_size: Option<u32>,
    /// The 5.0 client did not set Request Problem Information to 0.
    problem_info: bool,
    /// A mosquitto bridge (the bridge bit of its CONNECT): its messages are
    /// not sent back to it and keep their RETAIN flag, as mosquitto does.
    bridge: bool,
    handle: Option<Arc<SessionHandle>>,
    signal: Arc<ConnSignal>,
    generation: u64,
    connect_expiry: u32,
    matches: Vec<Match<SessionKey>>,
    /// What the current batch of frames published: payload bytes, plus
    /// `FLOOD_LOAD / 2` per message (see `Conn::floods`).
    batch_load: u32,
    /// Back-pressure: set while a subscriber this connection published to
    /// is full; frames stay unread until it drains or this time passes.
    paused_until: Option<Instant>,
    /// PUBACK/PUBREC/SUBACK/UNSUBACK held until the store says what their
    /// packet changed is durable, in order; `acks` counts how many of the
    /// oldest may go.
    held_acks: VecDeque<Held>,
    acks: Arc<DurableAcks>,
    /// The store's `durable_mark` when the PUBLISH (or SUBSCRIBE,
    /// UNSUBSCRIBE) being handled arrived.
    durable_mark: u64,
    outgoing: Vec<Outgoing>,
    /// PUBACKs read in this batch of frames, applied to the session under
    /// one lock at the end of the batch.
    acked: Vec<PacketId>,
    /// Subscribers' connections this batch of frames made ready, woken at
    /// the end of the batch.
    wakes: Vec<Arc<ConnSignal>>,
}

/// 5.0 topic aliases of one connection.
#[derive(Debug, Default)]
struct Aliases {
    /// Aliases the client set, towards us.
    inbound: HashMap<u16, Arc<str>>,
    /// Aliases we assigned, towards the client.
    outbound: HashMap<Arc<str>, u16>,
}

/// Serves one accepted connection until it ends.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    listener: usize,
    port: u16,
) {
    let alive = shared.alive_token();
    let connection_messages = shared.config.log.connection_messages;
    if connection_messages {
        tracing::info!(
            "New connection from {}:{} on port {}.",
            peer.ip(),
            peer.port(),
            port
        );
    }
    let signal = Arc::new(ConnSignal::new(shared.parker.clone()));
    let mut conn = Conn::new(shared, Socket::Plain(stream), peer, listener, signal);
    // Handshake and finish are boxed: only the serving loop's state stays in
    // an idle connection's task.
    let accepted = match tokio::time::timeout(CONNECT_TIMEOUT, Box::pin(conn.handshake())).await {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(exit)) => {
            conn.log_early_exit(&exit);
            false
        }
        Err(_) => false,
    };
    if !accepted {
        Box::pin(conn.final_flush()).await;
        return;
    }
    let connected = conn.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
    conn.shared
        .stats
        .clients_maximum
        .fetch_max(connected, Ordering::Relaxed);
    conn.shared.stats.connects.fetch_add(1, Ordering::Relaxed);
    crate::sys::presence(
        &conn.shared,
        &conn.client_id,
        Some((conn.peer, conn.protocol)),
    );
    live(conn, alive, None).await;
}

/// Serves a parked connection again (see `park.rs`), from where it left off.
/// `first_pass` is released once the task has done what it was woken for.
pub(crate) async fn resume(shared: Arc<Shared>, mut parked: ParkedConn, first_pass: FirstPass) {
    // Read what woke it before the socket joins tokio (whose readiness
    // would take a turn of its reactor): a client that sent DISCONNECT or
    // closed is then done within this one poll.
    let (rbuf, closed) = parked.read_ahead(&shared);
    let (conn, alive) = parked.into_conn(shared, rbuf);
    let resumed = Resumed { closed, first_pass };
    live(conn, alive, Some(resumed)).await;
}

/// How a task resumed from the parker starts.
struct Resumed {
    /// The client closed the socket (after what was read ahead).
    closed: bool,
    first_pass: FirstPass,
}

pub(crate) use crate::park::FirstPass;

/// The life of a connected client's task: serve until it ends or parks.
/// `alive` keeps `shutdown()` waiting, parked or not.
async fn live(
    mut conn: Box<Conn>,
    alive: Option<tokio::sync::mpsc::Sender<()>>,
    resumed: Option<Resumed>,
) {
    match conn.serve(resumed).await {
        Served::Park => conn.park(alive),
        Served::Exit(exit) => {
            // The client may still be writing when the broker ends the
            // connection: it lingers once the client has left.
            let linger = matches!(exit, Exit::Violation(..) | Exit::Kicked | Exit::Shutdown);
            let still_current = Box::pin(conn.finish(exit)).await;
            conn.shared.connections.fetch_sub(1, Ordering::Relaxed);
            if still_current {
                crate::sys::presence(&conn.shared, &conn.client_id, None);
            }
            if linger {
                Box::pin(conn.linger()).await;
            }
        }
    }
}

impl Conn {
    /// A connection before its CONNECT: no client, no session yet.
    /// Boxed: the task then holds a pointer, and its allocation class stays small.
    fn new(
        shared: Arc<Shared>,
        stream: Socket,
        peer: SocketAddr,
        listener: usize,
        signal: Arc<ConnSignal>,
    ) -> Box<Conn> {
        let max_packet_size = shared
            .config
            .limits
            .max_packet_size
            .unwrap_or(MQTT_MAX_PACKET);
        let mount = shared
            .config
            .listeners
            .get(listener)
            .and_then(|l| l.mount_point.as_deref())
            .map(Arc::from);
        Box::new(Conn {
            shared,
            stream,
            peer,
            listener,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            protocol: Protocol::V3_1_1,
            client_id: Arc::from("<unknown>"),
            username: None,
            keepalive: None,
            last_seen: Instant::now(),
            partial_since: None,
            backoff: false,
            mount,
            out_alias_max: 0,
            aliases: None,
            max_packet_size,
            client_max_packet_size: None,
            problem_info: true,
            bridge: false,
            handle: None,
            signal,
            generation: 0,
            connect_expiry: 0,
            matches: Vec::new(),
            held_acks: VecDeque::new(),
            acks: Arc::new(DurableAcks::default()),
            durable_mark: 0,
            outgoing: Vec::new(),
            acked: Vec::new(),
            wakes: Vec::new(),
            paused_until: None,
            batch_load: 0,
        })
    }

    /// Reads the CONNECT and answers it. `Ok(true)`: the client is connected.
    async fn handshake(&mut self) -> Result<bool, Exit> {
        loop {
            match check_frame(&self.rbuf, self.max_packet_size) {
                Ok(Some(len)) => {
                    let frame = self.rbuf.split_to(len).freeze();
                    return match decode_packet(&frame, Protocol::V3_1_1) {
                        Ok(Packet::Connect(c)) => {
                            if !self.wait_auth_turn(&c).await {
                                return Ok(false);
                            }
                            self.on_connect(&c, &frame)
                        }
                        // The first packet must be CONNECT [MQTT-3.1.0-1].
                        Ok(_) => Err(Exit::Violation(
                            ReasonCode::ProtocolError,
                            "first packet not CONNECT".into(),
                        )),
                        Err(DecodeError::UnsupportedProtocol { .. }) => {
                            // CONNACK 1 then close [MQTT-3.1.2-2].
                            self.send_connack(
                                false,
                                ReasonCode::UnsupportedProtocolVersion,
                                Properties::default(),
                            );
                            Ok(false)
                        }
                        Err(e) => Err(Exit::Violation(e.reason_code(), e.to_string())),
                    };
                }
                Ok(None) => {}
                Err(e) => return Err(Exit::Violation(e.reason_code(), e.to_string())),
            }
            // The CONNECT is usually there already: read it without
            // registering the socket.
            if self.stream.is_plain() && self.read_some()? > 0 {
                continue;
            }
            self.stream.readable().await.map_err(Exit::Io)?;
            self.read_some()?;
        }
    }

    /// Waits for this source's turn to log in when it failed too often
    /// (`auth::backoff`); `false` when it was refused (CONNACK sent).
    async fn wait_auth_turn(&mut self, c: &Connect<'_>) -> bool {
        use crate::auth::backoff::Turn;
        match self
            .shared
            .auth_backoff
            .turn(self.peer.ip(), Instant::now())
        {
            Turn::Now => true,
            Turn::At(at) => {
                tokio::time::sleep_until(at.into()).await;
                true
            }
            Turn::Refused => {
                self.protocol = c.protocol;
                self.problem_info = c.properties.request_problem_information != Some(0);
                tracing::info!(
                    "Client {} from {} refused: too many failed logins from this address.",
                    c.client_id,
                    self.peer.ip()
                );
                self.send_connack(
                    false,
                    ReasonCode::ConnectionRateExceeded,
                    Properties::default(),
                );
                false
            }
        }
    }

    fn on_connect(&mut self, c: &Connect<'_>, frame: &Bytes) -> Result<bool, Exit> {
        let now = Instant::now();
        self.protocol = c.protocol;
        self.bridge = c.bridge;
        let v5 = c.protocol.is_v5();
        self.problem_info = c.properties.request_problem_information != Some(0);
        self.client_max_packet_size = c.properties.maximum_packet_size;
        let security = self.security();
        let mut props = Properties::default();
        if v5 && c.properties.authentication_method.is_some() {
            // No enhanced authentication methods are supported [MQTT-4.12.0-1].
            self.send_connack(false, ReasonCode::BadAuthenticationMethod, props);
            return Ok(false);
        }
        let mut assigned = None;
        let client_id: Arc<str> = if c.client_id.is_empty() {
            // A zero-length id needs clean session in 3.1.1 [MQTT-3.1.3-8];
            // 5.0 allows either and returns the id [MQTT-3.1.3-7].
            if !security.allow_zero_length_clientid
                || (!v5 && !c.clean_start)
                || c.protocol == Protocol::V3_1
            {
                self.send_connack(false, ReasonCode::ClientIdentifierNotValid, props);
                return Ok(false);
            }
            let id = format!(
                "{}{}",
                security.auto_id_prefix,
                uuid::Uuid::new_v4().hyphenated()
            )
            .to_uppercase()
            .replacen(
                &security.auto_id_prefix.to_uppercase(),
                &security.auto_id_prefix,
                1,
            );
            let id: Arc<str> = Arc::from(id);
            assigned = Some(id.clone());
            id
        } else {
            Arc::from(c.client_id)
        };
        self.client_id = client_id.clone();
        self.username = c.username.map(Arc::from);

        // 5.0 clients are told to use `max_keepalive` through Server Keep
        // Alive when they ask for more, or for none (65535 by default, as
        // mosquitto 2.0 does) [MQTT-3.2.2-21]; 3.x clients keep their own
        // value, as with mosquitto 2.0.
        let max_keepalive = self.shared.config.limits.max_keepalive;
        let mut keep_alive = c.keep_alive;
        if v5 && (keep_alive > max_keepalive || keep_alive == 0) {
            keep_alive = max_keepalive;
            props.server_keep_alive = Some(max_keepalive);
        }
        if keep_alive > 0 {
            self.keepalive = Some(Duration::from_millis(u64::from(keep_alive) * 1500));
        }

        let policy = self.shared.policy(self.listener);
        let login = policy.login(c.username, c.password);
        let accepted = login == crate::auth::Login::Accepted;
        if let Some(delay) = self
            .shared
            .auth_backoff
            .record(self.peer.ip(), accepted, now)
        {
            tracing::info!(
                "Repeated failed logins from {}: its next attempts are checked one at a time, {} ms apart.",
                self.peer.ip(),
                delay.as_millis()
            );
        }
        if !accepted {
            // Bad credentials: 5 in 3.x, 0x87 in 5.0, as mosquitto does.
            self.send_connack(false, ReasonCode::NotAuthorized, Properties::default());
            if self.shared.config.log.connection_messages {
                tracing::info!("Client {} disconnected, not authorised.", self.client_id);
            }
            return Ok(false);
        }

        let mut will = None;
        let mut will_delay = 0;
        if let Some(w) = &c.will {
            let limits = &self.shared.config.limits;
            if too_deep(w.topic.as_str(), limits.max_topic_levels) {
                if !v5 {
                    // 3.x has no CONNACK code for it: closed as mosquitto
                    // closes on a topic past its level limit.
                    return Err(Exit::Violation(
                        ReasonCode::TopicNameInvalid,
                        "will topic has too many levels".into(),
                    ));
                }
                self.send_connack(false, ReasonCode::TopicNameInvalid, Properties::default());
                return Ok(false);
            }
            if v5 && w.qos > limits.max_qos {
                self.send_connack(false, ReasonCode::QoSNotSupported, Properties::default());
                return Ok(false);
            }
            if v5 && w.retain && !limits.retain_available {
                self.send_connack(false, ReasonCode::RetainNotSupported, Properties::default());
                return Ok(false);
            }
            // A will outside the client's ACL is accepted and dropped when it
            // fires (`Shared::fire_will`), as mosquitto does.
            will_delay = w.properties.will_delay_interval.unwrap_or(0);
            will = Some(Box::new(Message {
                topic: match &self.mount {
                    Some(mount) => Arc::from(format!("{mount}{}", w.topic.as_str())),
                    None => Arc::from(w.topic.as_str()),
                },
                payload: slice_or_copy(frame, w.payload),
                qos: w.qos.min(limits.max_qos),
                retain: w.retain && limits.retain_available,
                props: MessageProps::from_properties(&w.properties, frame),
                received: now,
                origin: Some(client_id.clone()),
            }));
        }

        // Session lifetime after disconnect: `None` is forever.
        let expiry = if v5 {
            let secs = c.properties.session_expiry_interval.unwrap_or(0);
            self.connect_expiry = secs;
            (secs != u32::MAX).then_some(secs)
        } else if c.clean_start {
            Some(0)
        } else {
            self.shared
                .config
                .persistent_client_expiration
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        };
        let receive_maximum = c.properties.receive_maximum.unwrap_or(u16::MAX);
        self.out_alias_max = c.properties.topic_alias_maximum.unwrap_or(0);
        // A reconnect within the will delay cancels the delayed will [MQTT-3.1.3-9].
        if self
            .shared
            .delayed_wills
            .lock()
            .remove(&client_id)
            .is_some()
        {
            self.shared.store.delayed_will(&client_id, None);
        }
        self.client_max_packet_size = c.properties.maximum_packet_size;

        // Take the session, kicking any connection that holds it [MQTT-3.1.4-2].
        // Claimed under the session map's lock, so that the old connection
        // of a clean session (its client reconnected at once) cannot end it
        // after we found it: see `Sessions::claim`.
        let will_log = will
            .as_ref()
            .map(|w| (w.payload.len(), w.retain, w.qos, w.topic.clone()));
        let (handle, existed) = self.shared.sessions.claim(&client_id, self.shared.limits);
        let (session_present, old_filters, old_will) = {
            let mut inner = handle.inner.lock();
            let mut old_will = None;
            if let Some(old) = inner.conn.take() {
                tracing::info!(
                    "Client {} already connected, closing old connection.",
                    client_id
                );
                old.kicked.store(true, Ordering::Release);
                old.wake.notify_one();
                // The old connection's will goes out only when one of the
                // two sessions is clean, as in mosquitto: a device that
                // reconnects at once to its persistent session (the broker
                // had not noticed it drop) must not look offline.
                let old_clean = inner.expiry == Some(0);
                if let Some(w) = inner.will.take() {
                    if old_clean || c.clean_start {
                        old_will = Some((w, inner.username.clone(), inner.listener));
                    }
                }
            }
            let mut old_filters = Vec::new();
            // A session with expiry 0 (clean session, or 5.0 Session Expiry
            // 0) ends with its connection, even one still being torn down
            // or taken over here: it is never present, as in mosquitto 2.0
            // (which resumes only a session with a non-zero expiry).
            let present = existed && !c.clean_start && !inner.ended && inner.expiry != Some(0);
            if !present {
                // Clean start discards any previous session [MQTT-3.1.2-6].
                old_filters = inner.session.subscriptions.keys().cloned().collect();
                inner.session.clear();
            }
            inner.generation = inner.generation.wrapping_add(1);
            self.generation = inner.generation;
            inner.conn = Some(self.signal.clone());
            inner.will = will;
            inner.will_delay = will_delay;
            inner.username = self.username.clone();
            inner.listener = self.listener;
            inner.expiry = expiry;
            inner.disconnected_at = None;
            inner.session.detach();
            let durable = self.shared.store.is_durable() && expiry != Some(0);
            inner.session.set_journaling(durable);
            inner.session.attach(receive_maximum, now);
            flush_changes(&*self.shared.store, &client_id, &mut inner.session);
            (present, old_filters, old_will)
        };
        if let Some((w, username, listener)) = old_will {
            let owner = WillOwner {
                client_id: &client_id,
                username: username.as_deref(),
                listener,
            };
            self.shared.fire_will(owner, *w, &mut Vec::new(), now);
        }
        remove_subscriptions(&self.shared, &handle, &old_filters);
        if expiry != Some(0) {
            self.shared.store.session_put(&client_id, expiry);
        }
        self.handle = Some(handle);

        if self.shared.config.log.connection_messages {
            let user = match c.username {
                Some(u) => format!(", u'{u}'"),
                None => String::new(),
            };
            tracing::info!(
                "New client connected from {}:{} as {} ({}, c{}, k{}{}).",
                self.peer.ip(),
                self.peer.port(),
                client_id,
                protocol_tag(c.protocol),
                u8::from(c.clean_start),
                c.keep_alive,
                user
            );
        }
        match will_log {
            Some((len, retain, qos, topic)) => {
                tracing::debug!(
                    "Will message specified ({len} bytes) (r{}, q{}).",
                    u8::from(retain),
                    qos as u8
                );
                tracing::debug!("\t{topic}");
            }
            None => tracing::debug!("No will message specified."),
        }
        if v5 {
            let limits = &self.shared.config.limits;
            props.assigned_client_identifier = assigned.as_deref();
            props.topic_alias_maximum = Some(TOPIC_ALIAS_MAXIMUM);
            if self.receive_maximum() < u16::MAX {
                props.receive_maximum = Some(self.receive_maximum());
            }
            if limits.max_qos != QoS::ExactlyOnce {
                props.maximum_qos = Some(limits.max_qos as u8);
            }
            if !limits.retain_available {
                props.retain_available = Some(0);
            }
            if self.max_packet_size < MQTT_MAX_PACKET {
                props.maximum_packet_size = Some(self.max_packet_size);
            }
        }
        self.send_connack(session_present, ReasonCode::Success, props);
        Ok(true)
    }

    /// Serves the connection until it ends, or until it is idle and may
    /// park. `resumed`: it comes back from the parker, for a reason that
    /// the first pass of the loop finds (deliveries written at once, a kick,
    /// shutdown, a keep-alive deadline, bytes to read).
    async fn serve(&mut self, resumed: Option<Resumed>) -> Served {
        let signal = self.signal.clone();
        let mut now = Instant::now();
        if resumed.is_none() {
            self.last_seen = now;
        } else if signal.kicked.load(Ordering::Acquire) {
            return Served::Exit(Exit::Kicked);
        }
        // Frames that arrived together with the CONNECT, or read on resuming.
        if let Err(exit) = self.process_frames() {
            return Served::Exit(exit);
        }
        let (resumed, mut first_pass) = match resumed {
            Some(r) if r.closed => return Served::Exit(Exit::Closed),
            Some(r) => (true, Some(r.first_pass)),
            None => (false, None),
        };
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        // A new connection parks as soon as it has nothing to do; one that
        // was busy (or just woke) only after `PARK_AFTER` without activity,
        // so that a steady client does not go back and forth.
        let mut park_at = if resumed { now + PARK_AFTER } else { now };
        // One timer for keep-alive and parking: when it fires early (packets
        // arrived since it was set) it is pushed to the new deadline, so busy
        // connections do not touch the timer wheel per packet.
        let mut timer = Box::pin(tokio::time::sleep_until(self.next_deadline(park_at).into()));
        // Allocated for the first pause only: most connections never pause.
        let mut pause_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut active = false;
        loop {
            // Shutdown wakes every attached connection through its signal
            // (`RunningBroker::shutdown`): a `watch` future in the select below
            // would cost every idle connection 144 bytes.
            if self.shared.closing.load(Ordering::Acquire) {
                return Served::Exit(Exit::Shutdown);
            }
            // A flooding client must not keep its worker thread: other tasks
            // (the accept loop among them) get their turn once the budget is spent.
            tokio::task::coop::consume_budget().await;
            now = Instant::now();
            if std::mem::take(&mut active) {
                park_at = now + PARK_AFTER;
            }
            if let Err(exit) = self.release_acks() {
                return Served::Exit(exit);
            }
            let more = self.drain_session(now);
            if let Err(exit) = self.try_flush() {
                return Served::Exit(exit);
            }
            if now >= park_at && self.may_park() && self.nothing_pending(now) {
                return Served::Park;
            }
            if more && self.wbuf.len() < HIGH_WATER {
                // Deliveries are still waiting and the socket took the
                // buffer: no wake-up will come for them (the session only
                // wakes a connection that had nothing ready), so go on.
                continue;
            }
            let paused = self.paused_until.is_some();
            if let Some(until) = self.paused_until {
                match pause_timer.as_mut() {
                    Some(t) if t.deadline() == until.into() => {}
                    Some(t) => t.as_mut().reset(until.into()),
                    None => pause_timer = Some(Box::pin(tokio::time::sleep_until(until.into()))),
                }
            }
            let want_read = self.wbuf.len() < HIGH_WATER && !paused;
            let want_write = !self.wbuf.is_empty();
            // What the parker woke the task for is done: it may wake more.
            drop(first_pass.take());
            if let Err(e) = self.stream.register() {
                return Served::Exit(Exit::Io(e));
            }
            let event = {
                let stream = &self.stream;
                let pause_over = async {
                    match pause_timer.as_mut() {
                        Some(t) if paused => t.as_mut().await,
                        _ => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = signal.wake.notified() => Event::Wake,
                    e = socket_ready(stream, want_read, want_write), if want_read || want_write => e,
                    _ = timer.as_mut() => Event::Timeout,
                    _ = pause_over => Event::Resume,
                }
            };
            active = !matches!(event, Event::Timeout);
            match event {
                Event::Timeout => {
                    let now = Instant::now();
                    if self.partial_expired(now) {
                        return Served::Exit(Exit::Timeout);
                    }
                    match self.keepalive {
                        Some(k) if now >= self.last_seen + k => {
                            if self.paused_until.is_none() {
                                return Served::Exit(Exit::Timeout);
                            }
                            // A paused connection is not silent: its frames wait unread.
                            timer.as_mut().reset((now + k).into());
                        }
                        _ => {
                            let next = self.next_deadline(park_at.max(now + PARK_RETRY));
                            timer.as_mut().reset(next.into());
                        }
                    }
                }
                Event::Resume => {
                    // The subscriber stalled: read on; what does not fit is dropped.
                    self.paused_until = None;
                    if let Err(exit) = self.process_frames() {
                        return Served::Exit(exit);
                    }
                }
                Event::Wake => {
                    if signal.kicked.load(Ordering::Acquire) {
                        return Served::Exit(Exit::Kicked);
                    }
                    if signal.resume.swap(false, Ordering::AcqRel) && paused {
                        // A subscriber we were paused for drained.
                        self.paused_until = None;
                        if let Err(exit) = self.process_frames() {
                            return Served::Exit(exit);
                        }
                    }
                }
                Event::Writable(r) => {
                    if let Err(e) = r {
                        return Served::Exit(Exit::Io(e));
                    }
                }
                Event::Readable(r) => {
                    if let Err(e) = r {
                        return Served::Exit(Exit::Io(e));
                    }
                    let read = match self.read_some() {
                        Ok(n) => n,
                        Err(exit) => return Served::Exit(exit),
                    };
                    if read > 0 {
                        if let Err(exit) = self.process_frames() {
                            return Served::Exit(exit);
                        }
                        // An idle connection keeps no read buffer.
                        if self.rbuf.is_empty() && read < 2048 {
                            self.rbuf = BytesMut::new();
                        }
                        if std::mem::take(&mut self.backoff) || read >= YIELD_AFTER_READ {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
        }
    }

    /// The keep-alive deadline, a partly received packet's deadline, or
    /// `park_at`, whichever is first.
    fn next_deadline(&self, park_at: Instant) -> Instant {
        let at = match self.keepalive {
            Some(k) => park_at.min(self.last_seen + k),
            None => park_at,
        };
        match self.partial_since {
            Some(since) => at.min(since + PARTIAL_PACKET_TIMEOUT),
            None => at,
        }
    }

    /// Whether a packet has been arriving for longer than it may: without
    /// keep-alive, [`PARTIAL_PACKET_TIMEOUT`] (with it, the keep-alive
    /// deadline comes first).
    fn partial_expired(&self, now: Instant) -> bool {
        self.partial_since
            .is_some_and(|since| now >= since + PARTIAL_PACKET_TIMEOUT)
    }

    /// Whether the connection holds nothing that needs its task: no bytes
    /// to write or partly read, no acknowledgement waiting for the store,
    /// no paused publishing. A parked connection keeps this invariant.
    fn may_park(&self) -> bool {
        self.wbuf.is_empty()
            && self.rbuf.is_empty()
            && self.held_acks.is_empty()
            && self.paused_until.is_none()
            && self.outgoing.is_empty()
            && self.shared.parker.is_open()
    }

    /// Marks the signal as parking, then checks that no wake came before:
    /// a kick, shutdown, or deliveries made ready. A wake from here on is
    /// kept by the signal (see `park.rs`). `false`: stay, the wake is
    /// delivered to the task.
    fn nothing_pending(&mut self, now: Instant) -> bool {
        self.signal.wake.begin_park();
        self.drain_session(now);
        let pending = !self.wbuf.is_empty()
            || self.signal.kicked.load(Ordering::SeqCst)
            || self.shared.closing.load(Ordering::SeqCst);
        if pending {
            self.signal.wake.cancel_park();
            // The loop writes what was drained and looks at the flags.
            self.signal.wake.notify_one();
        }
        !pending
    }

    /// Hands the idle connection to the parker; its task then ends.
    fn park(self: Box<Self>, alive: Option<tokio::sync::mpsc::Sender<()>>) {
        let shared = self.shared.clone();
        match ParkedConn::from_conn(*self, alive) {
            Ok(parked) => {
                if let Err(parked) = shared.parker.park(parked) {
                    // Woken while parking: carry on in a new task.
                    let first_pass = shared.parker.first_pass();
                    tokio::spawn(resume(shared, parked, first_pass));
                }
            }
            Err(lost) => lost.lost(),
        }
    }

    /// One non-blocking read into the read buffer; `Ok(0)` when nothing was ready.
    fn read_some(&mut self) -> Result<usize, Exit> {
        // Small first: most wake-ups of a quiet client carry one small packet;
        // a busy connection's buffer grows to 16 KiB reads.
        let additional = if self.rbuf.capacity() == 0 {
            512
        } else {
            16 * 1024
        };
        match culex_codec::frame_size(&self.rbuf, self.max_packet_size) {
            // A large packet is read into a buffer of exactly its size: its
            // payload, shared by subscribers and queues for as long as they
            // hold it, then keeps no other packet's bytes alive.
            Ok(Some(size)) if size >= LARGE_FRAME && size > self.rbuf.len() => {
                if self.rbuf.capacity() != size {
                    let mut exact = BytesMut::with_capacity(size);
                    exact.extend_from_slice(&self.rbuf);
                    self.rbuf = exact;
                }
            }
            _ => self.rbuf.reserve(additional),
        }
        let result = self.stream.try_read_buf_drained(&mut self.rbuf);
        match result {
            Ok(0) => Err(Exit::Closed),
            Ok(n) => {
                self.shared
                    .stats
                    .bytes_received
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // A spurious wake-up must not leave an idle connection holding
                // the buffer just reserved (512 bytes each).
                if self.rbuf.is_empty() {
                    self.rbuf = BytesMut::new();
                }
                Ok(0)
            }
            Err(e) => Err(Exit::Io(e)),
        }
    }

    fn process_frames(&mut self) -> Result<(), Exit> {
        self.batch_load = 0;
        let result = self.process_batch();
        self.deliver_held();
        self.apply_pubacks();
        for conn in self.wakes.drain(..) {
            conn.wake.notify_one();
        }
        result
    }

    /// Delivers what the batch's publishes routed to the thread's outbox (see
    /// `broker::Origin::defer`), and pauses this publisher if a subscriber asks.
    fn deliver_held(&mut self) {
        let mut origin = Origin {
            signal: &self.signal,
            wakes: &mut self.wakes,
            defer: false,
        };
        let (overflow, pause) = deliver_outbox(&self.shared, self.last_seen, &mut origin);
        if pause && self.floods() {
            self.paused_until = Some(Instant::now() + PAUSE_MAX);
        }
        self.backoff |= overflow;
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
        self.session(|s| {
            for &id in &acked {
                // An unknown id is ignored, as mosquitto does.
                let _ = s.puback(id, now);
            }
        });
        self.acked = acked;
        self.acked.clear();
    }

    fn process_batch(&mut self) -> Result<(), Exit> {
        // One clock read per batch of frames, not per frame.
        let now = if self.rbuf.is_empty() {
            self.last_seen
        } else {
            Instant::now()
        };
        loop {
            if self.paused_until.is_some() {
                return Ok(());
            }
            let len = match check_frame(&self.rbuf, self.max_packet_size) {
                Ok(Some(len)) => len,
                Ok(None) => {
                    // Only whole packets count as activity [MQTT-3.1.2-24]: a
                    // packet that trickles in does not keep the connection
                    // alive, and has a deadline of its own without keep-alive.
                    self.partial_since = match self.partial_since {
                        _ if self.rbuf.is_empty() => None,
                        None => Some(now),
                        since => since,
                    };
                    return Ok(());
                }
                Err(e) => return Err(Exit::Violation(e.reason_code(), e.to_string())),
            };
            self.last_seen = now;
            self.partial_since = None;
            self.shared
                .stats
                .packets_received
                .fetch_add(1, Ordering::Relaxed);
            // A subscriber's stream of PUBACKs: read without a `Packet`.
            if let Some((culex_codec::PacketType::PubAck, id)) = self
                .rbuf
                .get(..len)
                .and_then(culex_codec::decode_success_response)
            {
                self.rbuf.advance(len);
                self.on_puback(id, ReasonCode::Success);
                continue;
            }
            let frame = self.rbuf.split_to(len).freeze();
            let packet = decode_packet(&frame, self.protocol)
                .map_err(|e| Exit::Violation(e.reason_code(), e.to_string()))?;
            self.on_packet(packet, &frame)?;
        }
    }

    fn on_packet(&mut self, packet: Packet<'_>, frame: &Bytes) -> Result<(), Exit> {
        if !matches!(packet, Packet::PubAck(_)) {
            // Acknowledgements keep their place among the other packets
            // (a durable UNSUBACK must not overtake an earlier PUBACK).
            self.apply_pubacks();
        }
        let now = self.last_seen;
        let id = &self.client_id;
        match packet {
            Packet::Publish(p) => self.on_publish(&p, frame, now),
            Packet::PubAck(r) => {
                self.on_puback(r.packet_id, r.reason);
                Ok(())
            }
            Packet::PubRec(r) => {
                tracing::debug!("Received PUBREC from {} (Mid: {})", id, r.packet_id.get());
                let known = self
                    .session(|s| s.pubrec(r.packet_id))
                    .is_some_and(|r| r.is_ok());
                if !known || r.reason.is_error() {
                    // Unknown id, or the client refused the message: complete
                    // the flow so the id is freed.
                    let reason = if known {
                        ReasonCode::Success
                    } else {
                        ReasonCode::PacketIdentifierNotFound
                    };
                    if r.reason.is_error() {
                        self.session(|s| s.abandon(r.packet_id, now));
                    } else {
                        self.send_ack(Packet::PubRel, r.packet_id, reason);
                    }
                }
                Ok(())
            }
            Packet::PubRel(r) => {
                tracing::debug!("Received PUBREL from {} (Mid: {})", id, r.packet_id.get());
                let known = self
                    .session(|s| s.release_qos2(r.packet_id))
                    .unwrap_or(false);
                let reason = if known {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                tracing::debug!("Sending PUBCOMP to {} (m{})", id, r.packet_id.get());
                self.send_ack(Packet::PubComp, r.packet_id, reason);
                Ok(())
            }
            Packet::PubComp(r) => {
                tracing::debug!(
                    "Received PUBCOMP from {} (Mid: {}, RC:{})",
                    id,
                    r.packet_id.get(),
                    r.reason as u8
                );
                let _ = self.session(|s| s.pubcomp(r.packet_id, now));
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(&s, now),
            Packet::Unsubscribe(u) => self.on_unsubscribe(&u),
            Packet::PingReq => {
                tracing::debug!("Received PINGREQ from {}", id);
                tracing::debug!("Sending PINGRESP to {}", id);
                self.encode(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => self.on_disconnect(&d),
            Packet::Connect(_) => {
                // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
                Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    "second CONNECT".into(),
                ))
            }
            Packet::Auth(_) => Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "AUTH without a method".into(),
            )),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    "server-to-client packet from a client".into(),
                ))
            }
        }
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

    /// Whether this batch of frames published enough to be paused for a
    /// full subscriber: more than one message, or a large one. A client
    /// that publishes now and then (a sensor, a latency probe) is never
    /// held back because a slow subscriber also matches its topic; what it
    /// sends queues there like anything else.
    fn floods(&self) -> bool {
        self.batch_load >= FLOOD_LOAD
    }

    fn on_publish(&mut self, p: &Publish<'_>, frame: &Bytes, now: Instant) -> Result<(), Exit> {
        self.batch_load = self
            .batch_load
            .saturating_add(FLOOD_LOAD / 2)
            .saturating_add(u32::try_from(p.payload.len()).unwrap_or(u32::MAX));
        self.durable_mark = self.shared.store.durable_mark();
        self.shared
            .stats
            .publish_received
            .fetch_add(1, Ordering::Relaxed);
        let v5 = self.protocol.is_v5();
        let limits = &self.shared.config.limits;
        // Topic aliases (5.0): never 0 [MQTT-3.3.2-8], up to our maximum [MQTT-3.3.2-12].
        let topic: Arc<str> = match p.properties.topic_alias {
            Some(alias) if alias == 0 || alias > TOPIC_ALIAS_MAXIMUM || !v5 => {
                return Err(Exit::Violation(
                    ReasonCode::TopicAliasInvalid,
                    "invalid topic alias".into(),
                ));
            }
            Some(alias) if p.topic.as_str().is_empty() => {
                match self.aliases.as_ref().and_then(|a| a.inbound.get(&alias)) {
                    Some(t) => t.clone(),
                    None => {
                        return Err(Exit::Violation(
                            ReasonCode::ProtocolError,
                            "unknown topic alias".into(),
                        ))
                    }
                }
            }
            Some(alias) => {
                let t: Arc<str> = Arc::from(p.topic.as_str());
                self.aliases
                    .get_or_insert_with(Box::default)
                    .inbound
                    .insert(alias, t.clone());
                t
            }
            None if p.topic.as_str().is_empty() => {
                return Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    "empty topic without alias".into(),
                ));
            }
            None => Arc::from(p.topic.as_str()),
        };
        let topic = match &self.mount {
            Some(mount) => Arc::from(format!("{mount}{topic}")),
            None => topic,
        };
        if too_deep(&topic, limits.max_topic_levels) {
            return Err(Exit::Violation(
                ReasonCode::TopicNameInvalid,
                format!(
                    "topic name has more than {} levels (max_topic_levels)",
                    limits.max_topic_levels
                ),
            ));
        }
        tracing::debug!(
            "Received PUBLISH from {} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            self.client_id,
            u8::from(p.dup),
            p.qos as u8,
            u8::from(p.retain),
            p.packet_id.map_or(0, PacketId::get),
            topic,
            p.payload.len()
        );
        if p.qos > limits.max_qos {
            return Err(Exit::Violation(
                ReasonCode::QoSNotSupported,
                "QoS above maximum".into(),
            ));
        }
        if p.retain && !limits.retain_available {
            return Err(Exit::Violation(
                ReasonCode::RetainNotSupported,
                "retain not available".into(),
            ));
        }
        let mut reason = ReasonCode::Success;
        if limits
            .message_size_limit
            .is_some_and(|max| p.payload.len() > max as usize)
        {
            reason = ReasonCode::PacketTooLarge;
        } else if v5
            && p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(p.payload).is_err()
        {
            reason = ReasonCode::PayloadFormatInvalid;
        } else if topic.starts_with("$SYS/") {
            // The broker owns the `$SYS` tree; clients may not write to it.
            reason = ReasonCode::NotAuthorized;
        } else if self.shared.acl_active.load(Ordering::Relaxed) {
            let policy = self.shared.policy(self.listener);
            if !policy.can_write(&self.client_id, self.username.as_deref(), &topic) {
                reason = ReasonCode::NotAuthorized;
            }
        }
        let route = match (p.qos, p.packet_id) {
            (QoS::ExactlyOnce, Some(pid)) => {
                // A re-send of a pending id does not count again.
                let pending = self
                    .session(|s| {
                        if s.is_pending_qos2(pid) {
                            0
                        } else {
                            s.incoming_qos2_len()
                        }
                    })
                    .unwrap_or(0);
                // More unacknowledged QoS 2 messages than our Receive Maximum
                // is a protocol error (0x93) [MQTT-3.3.4-7].
                if v5 && pending >= usize::from(self.receive_maximum()) {
                    return Err(Exit::Violation(
                        ReasonCode::ReceiveMaximumExceeded,
                        "receive maximum exceeded".into(),
                    ));
                }
                if reason.is_error() {
                    false
                } else {
                    // Exactly once: a re-send before PUBREL is not routed again.
                    self.session(|s| s.receive_qos2(pid)).unwrap_or(false)
                }
            }
            _ => !reason.is_error(),
        };
        if route {
            let msg = Message::from_publish(p, topic, frame, Some(self.client_id.clone()), now);
            let mut matches = std::mem::take(&mut self.matches);
            let mut origin = Origin {
                signal: &self.signal,
                wakes: &mut self.wakes,
                defer: !self.shared.store.is_durable(),
            };
            let routed =
                self.shared
                    .publish_from(Arc::new(msg), &mut matches, now, Some(&mut origin));
            self.matches = matches;
            if routed.pause && self.floods() {
                // A subscriber's backlog is full but draining: read nothing
                // more from this publisher until it drains (back-pressure).
                self.paused_until = Some(Instant::now() + PAUSE_MAX);
            }
            // A subscriber that cannot keep up: give it the CPU before reading
            // more from this publisher (back-pressure instead of busy dropping).
            self.backoff |= routed.overflow;
            if routed.matched == 0 {
                // 5.0 tells the publisher nobody was listening [MQTT 5.0, 3.4.2.1].
                reason = ReasonCode::NoMatchingSubscribers;
            }
        }
        // 3.x has no negative acknowledgements: a refused message is acked and dropped.
        let ack_reason = if v5 { reason } else { ReasonCode::Success };
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => {
                tracing::debug!(
                    "Sending PUBACK to {} (m{}, rc{})",
                    self.client_id,
                    pid.get(),
                    ack_reason as u8
                );
                self.ack(Packet::PubAck, pid, ack_reason);
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                tracing::debug!(
                    "Sending PUBREC to {} (m{}, rc{})",
                    self.client_id,
                    pid.get(),
                    ack_reason as u8
                );
                self.ack(Packet::PubRec, pid, ack_reason);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_subscribe(&mut self, s: &Subscribe<'_>, now: Instant) -> Result<(), Exit> {
        self.durable_mark = self.shared.store.durable_mark();
        let v5 = self.protocol.is_v5();
        tracing::debug!("Received SUBSCRIBE from {}", self.client_id);
        let Some(handle) = self.handle.clone() else {
            return Ok(());
        };
        let sub_id = s.properties.subscription_identifiers.iter().next();
        let policy = self.shared.policy(self.listener);
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        for (filter, options) in s.filters.iter() {
            tracing::debug!("\t{} (QoS {})", filter.as_str(), options.qos as u8);
            // With a listener mount point, filters live under it.
            let full = self.mounted_filter(filter.as_str());
            let matched = crate::subscriptions::split_shared(&full).1;
            let shared_sub = filter.share_group().is_some();
            if shared_sub && v5 && options.no_local {
                // No-local on a shared subscription is a protocol error [MQTT-3.8.3-4].
                return Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    "no-local on a shared subscription".into(),
                ));
            }
            let refused = if too_deep(matched, self.shared.config.limits.max_topic_levels) {
                Some(if v5 {
                    ReasonCode::TopicFilterInvalid
                } else {
                    ReasonCode::UnspecifiedError
                })
            } else if !policy.can_subscribe(&self.client_id, self.username.as_deref(), matched) {
                Some(if v5 {
                    ReasonCode::NotAuthorized
                } else {
                    ReasonCode::UnspecifiedError
                })
            } else {
                None
            };
            if let Some(code) = refused {
                tracing::debug!("{} {} {}", self.client_id, code as u8, filter.as_str());
                codes.push(code);
                continue;
            }
            let mut granted = options;
            granted.qos = options.qos.min(max_qos(&self.shared));
            if self.bridge {
                granted.no_local = true;
                granted.retain_as_published = true;
            }
            let is_new = self.shared.subscriptions.write().subscribe(
                &full,
                SessionKey(handle.clone()),
                granted,
                sub_id,
            );
            handle.inner.lock().session.subscriptions.insert(
                full.clone(),
                SubscriptionEntry {
                    options: granted,
                    id: sub_id,
                },
            );
            self.shared
                .store
                .subscription_put(&self.client_id, &full, granted, sub_id);
            tracing::debug!(
                "{} {} {}",
                self.client_id,
                granted.qos as u8,
                filter.as_str()
            );
            codes.push(match granted.qos {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
            });
            // Retained messages go out on subscribe with RETAIN set [MQTT-3.3.1-6],
            // [MQTT-3.3.1-8], as retain handling says [MQTT-3.3.1-9..11].
            // No retained messages on a shared subscribe [MQTT 5.0, 4.8.2].
            let send = !shared_sub
                && match granted.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => is_new,
                    RetainHandling::DoNotSend => false,
                };
            if send {
                for m in self.shared.retained_matching(matched, now) {
                    retained.push((m, granted.qos));
                }
            }
        }
        // The retained messages follow the SUBACK, held or not.
        let changed = self.changed_durable_session(&handle);
        let suback = Held::Sub(Box::new(HeldSubAck {
            packet_id: s.packet_id,
            codes,
            retained,
            sub_id,
        }));
        self.acknowledge(suback, changed);
        Ok(())
    }

    /// Sends a SUBACK and then the retained messages its subscribe matched.
    fn send_suback(&mut self, suback: HeldSubAck) {
        self.encode(&Packet::SubAck(SubAck {
            packet_id: suback.packet_id,
            properties: Properties::default(),
            reasons: Seq::Items(&suback.codes),
        }));
        tracing::debug!("Sending SUBACK to {}", self.client_id);
        let Some(handle) = self.handle.clone() else {
            return;
        };
        let sub_id = suback.sub_id;
        let deliveries = suback.retained.into_iter().map(|(msg, qos)| Delivery {
            qos: msg.qos.min(qos),
            msg,
            retain: true,
            subscription_ids: sub_id.into_iter().collect(),
            share: None,
        });
        handle.deliver_retained(&self.shared, deliveries, Instant::now());
    }

    /// Whether the SUBSCRIBE/UNSUBSCRIBE being handled changed durable
    /// state: the subscriptions of a session that outlives its connection
    /// (those of an expiry-0 session are gone with it anyway).
    fn changed_durable_session(&self, handle: &SessionHandle) -> bool {
        self.shared.store.durable_mark() != self.durable_mark
            && handle.inner.lock().expiry != Some(0)
    }

    fn on_unsubscribe(&mut self, u: &Unsubscribe<'_>) -> Result<(), Exit> {
        self.durable_mark = self.shared.store.durable_mark();
        tracing::debug!("Received UNSUBSCRIBE from {}", self.client_id);
        let Some(handle) = self.handle.clone() else {
            return Ok(());
        };
        let mut codes = Vec::with_capacity(u.filters.len());
        for filter in u.filters.iter() {
            tracing::debug!("\t{}", filter.as_str());
            let full = self.mounted_filter(filter.as_str());
            let existed = handle
                .inner
                .lock()
                .session
                .subscriptions
                .remove(full.as_str())
                .is_some();
            if existed {
                self.shared
                    .subscriptions
                    .write()
                    .unsubscribe(&full, &SessionKey(handle.clone()));
                self.shared
                    .store
                    .subscription_delete(&self.client_id, &full);
            }
            tracing::debug!("{} {}", self.client_id, filter.as_str());
            codes.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        let changed = self.changed_durable_session(&handle);
        self.acknowledge(Held::Unsub(u.packet_id, codes), changed);
        Ok(())
    }

    fn send_unsuback(&mut self, packet_id: PacketId, codes: &[ReasonCode]) {
        let reasons = if self.protocol.is_v5() {
            Seq::Items(codes)
        } else {
            Seq::Items(&[][..])
        };
        self.encode(&Packet::UnsubAck(UnsubAck {
            packet_id,
            properties: Properties::default(),
            reasons,
        }));
        tracing::debug!("Sending UNSUBACK to {}", self.client_id);
    }

    fn on_disconnect(&mut self, d: &Disconnect<'_>) -> Result<(), Exit> {
        tracing::debug!("Received DISCONNECT from {}", self.client_id);
        if let Some(secs) = d.properties.session_expiry_interval {
            // A session that was to end at disconnect cannot be revived: a protocol
            // error by 5.0 §3.14.2.2.2 (a sentence without a rule number).
            if self.connect_expiry == 0 && secs != 0 {
                return Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    "session expiry set on DISCONNECT".into(),
                ));
            }
            if let Some(handle) = &self.handle {
                let expiry = (secs != u32::MAX).then_some(secs);
                handle.inner.lock().expiry = expiry;
                self.shared.store.session_put(&self.client_id, expiry);
            }
        }
        Err(Exit::Disconnect {
            will: d.reason == ReasonCode::DisconnectWithWillMessage,
        })
    }

    /// Moves ready deliveries from the session into the output buffer.
    /// Returns `true` when it stopped at [`HIGH_WATER`] with deliveries
    /// possibly still waiting.
    fn drain_session(&mut self, now: Instant) -> bool {
        let Some(handle) = self.handle.clone() else {
            return false;
        };
        let mut items = std::mem::take(&mut self.outgoing);
        let mut more = true;
        while self.wbuf.len() < HIGH_WATER {
            {
                let mut inner = handle.inner.lock();
                if inner.generation != self.generation {
                    // Taken over: this connection is on its way out.
                    more = false;
                    break;
                }
                let budget = HIGH_WATER.saturating_sub(self.wbuf.len());
                inner.session.take_ready(&mut items, 256, budget, now);
                let resumable = inner.take_resumable();
                drop(inner);
                resume_all(resumable);
            }
            if items.is_empty() {
                more = false;
                break;
            }
            for item in items.drain(..) {
                self.encode_outgoing(item, &handle, now);
            }
        }
        self.outgoing = items;
        more
    }

    fn encode_outgoing(&mut self, item: Outgoing, handle: &Arc<SessionHandle>, now: Instant) {
        match item {
            Outgoing::PubRel(id) => {
                tracing::debug!("Sending PUBREL to {} (m{})", self.client_id, id.get());
                self.send_ack(Packet::PubRel, id, ReasonCode::Success);
            }
            Outgoing::Publish {
                packet_id,
                dup,
                delivery,
            } => {
                let msg = &delivery.msg;
                // Clients behind a mount point see topics without it.
                let shown = match &self.mount {
                    Some(mount) => msg.topic.strip_prefix(&**mount),
                    None => Some(&*msg.topic),
                };
                let Some(Ok(mut topic)) = shown.map(TopicName::new) else {
                    if let Some(id) = packet_id {
                        let mut inner = handle.inner.lock();
                        inner.session.abandon(id, now);
                        flush_changes(&*self.shared.store, &self.client_id, &mut inner.session);
                    }
                    return;
                };
                let mut user: Vec<(&str, &str)> = Vec::new();
                // 3.x has no properties: the codec writes its PUBLISH without
                // building a `Packet` (the common case, per subscriber per
                // message); 5.0 builds one with the message's properties.
                let packet = if self.protocol.is_v5() {
                    let mut properties = Properties::default();
                    if let Some(mp) = &msg.props {
                        properties.payload_format_indicator = mp.payload_format_indicator;
                        properties.content_type = mp.content_type.as_deref();
                        properties.response_topic = mp.response_topic.as_deref();
                        properties.correlation_data = mp.correlation_data.as_deref();
                        user.extend(mp.user_properties.iter().map(|(k, v)| (&**k, &**v)));
                    }
                    properties.message_expiry_interval = msg.remaining_expiry(now);
                    // Topic aliases towards the client, within its maximum
                    // [MQTT-3.3.2-11]: the first message on a topic carries the
                    // topic and a new alias, later ones only the alias.
                    if self.out_alias_max > 0 {
                        let aliases = &mut self.aliases.get_or_insert_with(Box::default).outbound;
                        if let Some(&alias) = aliases.get(&msg.topic) {
                            properties.topic_alias = Some(alias);
                            topic = TopicName::EMPTY;
                        } else if aliases.len() < usize::from(self.out_alias_max) {
                            let alias = u16::try_from(aliases.len() + 1).unwrap_or(u16::MAX);
                            aliases.insert(msg.topic.clone(), alias);
                            properties.topic_alias = Some(alias);
                        }
                    }
                    properties.subscription_identifiers = Seq::Items(&delivery.subscription_ids);
                    properties.user_properties = Seq::Items(&user);
                    let packet = Packet::Publish(Publish {
                        dup,
                        qos: delivery.qos,
                        retain: delivery.retain,
                        topic,
                        packet_id,
                        properties,
                        payload: &msg.payload,
                    });
                    // Never send a client more than its Maximum Packet Size [MQTT-3.1.2-24].
                    let too_big = self.client_max_packet_size.is_some_and(|max| {
                        packet
                            .encoded_len(self.protocol)
                            .map_or(true, |len| len > max as usize)
                    });
                    if too_big {
                        if let Some(id) = packet_id {
                            let mut inner = handle.inner.lock();
                            inner.session.abandon(id, now);
                            flush_changes(&*self.shared.store, &self.client_id, &mut inner.session);
                        }
                        return;
                    }
                    Some(packet)
                } else {
                    None
                };
                tracing::debug!(
                    "Sending PUBLISH to {} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
                    self.client_id,
                    u8::from(dup),
                    delivery.qos as u8,
                    u8::from(delivery.retain),
                    packet_id.map_or(0, PacketId::get),
                    msg.topic,
                    msg.payload.len()
                );
                match &packet {
                    Some(packet) => self.encode(packet),
                    None => self.encode_with(culex_codec::PacketType::Publish, |protocol, out| {
                        culex_codec::encode_plain_publish(
                            protocol,
                            dup,
                            delivery.qos,
                            delivery.retain,
                            topic,
                            packet_id,
                            &msg.payload,
                            out,
                        )
                    }),
                }
                self.shared
                    .stats
                    .publish_sent
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends PUBACK/PUBREC at once, or -- with a durable store -- once
    /// everything this PUBLISH changed is on disk (issue 10).
    fn ack(&mut self, kind: AckKind, id: PacketId, reason: ReasonCode) {
        let changed = self.shared.store.durable_mark() != self.durable_mark;
        self.acknowledge(Held::Pub(kind, id, reason), changed);
    }

    /// Sends an acknowledgement at once, or -- with a durable store, when
    /// its packet `changed` durable state -- once that is on disk (issue
    /// 10). One that changed nothing durable still waits behind an earlier
    /// held one: acknowledgements keep their order [MQTT-4.6.0-2].
    fn acknowledge(&mut self, held: Held, changed: bool) {
        let at_once = !self.shared.store.is_durable() || (self.held_acks.is_empty() && !changed);
        if at_once {
            self.send_held(held);
            return;
        }
        self.held_acks.push_back(held);
        let acks = self.acks.clone();
        let signal = self.signal.clone();
        self.shared.store.after_durable(Box::new(move |durable| {
            if !durable {
                acks.failed.store(true, Ordering::Release);
            }
            acks.ready.fetch_add(1, Ordering::AcqRel);
            signal.wake.notify_one();
        }));
    }

    /// Sends the held acknowledgements that became durable, oldest first. A
    /// failed commit closes the connection unacknowledged: the client sends
    /// again.
    fn release_acks(&mut self) -> Result<(), Exit> {
        if self.acks.failed.load(Ordering::Acquire) {
            return Err(Exit::Violation(
                ReasonCode::UnspecifiedError,
                "persistence failed".into(),
            ));
        }
        let ready = self.acks.ready.swap(0, Ordering::AcqRel);
        for _ in 0..ready {
            if let Some(held) = self.held_acks.pop_front() {
                self.send_held(held);
            }
        }
        Ok(())
    }

    fn send_held(&mut self, held: Held) {
        match held {
            Held::Pub(kind, id, reason) => self.send_ack(kind, id, reason),
            Held::Sub(suback) => self.send_suback(*suback),
            Held::Unsub(id, codes) => self.send_unsuback(id, &codes),
        }
    }

    fn send_ack(&mut self, kind: AckKind, id: PacketId, reason: ReasonCode) {
        let packet = kind(PubResponse {
            packet_id: id,
            reason,
            properties: Properties::default(),
        });
        self.encode(&packet);
    }

    fn send_connack(
        &mut self,
        session_present: bool,
        reason: ReasonCode,
        properties: Properties<'_>,
    ) {
        // Session present is 0 on refusal [MQTT-3.2.2-4].
        let session_present = session_present && reason == ReasonCode::Success;
        let mut properties = if self.protocol.is_v5() {
            properties
        } else {
            Properties::default()
        };
        if reason != ReasonCode::Success && properties.reason_string.is_none() {
            let text = refusal_text(reason);
            if self.reason_string_allowed(text) {
                properties.reason_string = Some(text);
            }
        }
        self.encode(&Packet::ConnAck(ConnAck {
            session_present,
            reason,
            properties,
        }));
        let code = if self.protocol.is_v5() {
            reason as u8
        } else {
            reason.to_v3_connack()
        };
        tracing::debug!(
            "Sending CONNACK to {} ({}, {})",
            self.client_id,
            u8::from(session_present),
            code
        );
    }

    fn encode(&mut self, packet: &Packet<'_>) {
        self.encode_with(packet.packet_type(), |protocol, out| {
            packet.encode(protocol, out)
        });
    }

    /// Appends a packet of type `kind` that `write` encodes.
    fn encode_with(
        &mut self,
        kind: culex_codec::PacketType,
        write: impl FnOnce(Protocol, &mut BytesMut) -> Result<usize, culex_codec::EncodeError>,
    ) {
        if self.wbuf.capacity() == 0 {
            if let Some(spare) = SPARE_WBUF.take() {
                self.wbuf = spare;
            }
        }
        self.shared
            .stats
            .packets_sent
            .fetch_add(1, Ordering::Relaxed);
        if let Err(e) = write(self.protocol, &mut self.wbuf) {
            tracing::warn!(
                "Warning: unable to encode {:?} for {}: {e}",
                kind,
                self.client_id
            );
        }
    }

    /// Writes as much of the output buffer as the socket takes now.
    fn try_flush(&mut self) -> Result<(), Exit> {
        while !self.wbuf.is_empty() {
            match self.stream.try_write(&self.wbuf) {
                Ok(0) => return Err(Exit::Closed),
                Ok(n) => {
                    self.shared
                        .stats
                        .bytes_sent
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if n == self.wbuf.len() {
                        // Keeps the buffer's whole capacity for reuse.
                        self.wbuf.clear();
                    } else {
                        self.wbuf.advance(n);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Exit::Io(e)),
            }
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 0 {
            // An idle connection holds no output buffer; the worker thread
            // keeps one for the next connection it serves.
            let spare = std::mem::take(&mut self.wbuf);
            if spare.capacity() <= MAX_SPARE_WBUF {
                SPARE_WBUF.set(Some(spare));
            }
        }
        Ok(())
    }

    /// Writes what is left, with a time limit, and shuts the sending half.
    async fn final_flush(&mut self) {
        if !self.wbuf.is_empty() {
            let data = std::mem::take(&mut self.wbuf);
            let _ =
                tokio::time::timeout(Duration::from_secs(2), self.stream.write_all(&data)).await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), self.stream.shutdown()).await;
    }

    /// After the broker ended the connection (the client broke a rule, was
    /// taken over, or the broker stops), the client may still be writing:
    /// its bytes are read and dropped for a while, so that closing does not
    /// reset the connection before it has read our last packet (a
    /// DISCONNECT with the reason) [MQTT-4.13.1-1].
    async fn linger(&mut self) {
        let _ = tokio::time::timeout(LINGER, self.discard_input()).await;
    }

    /// Reads and drops what the client sends until it closes (bounded).
    async fn discard_input(&mut self) {
        let mut scratch = BytesMut::new();
        let mut total = 0usize;
        while total < LINGER_BYTES {
            if self.stream.readable().await.is_err() {
                return;
            }
            scratch.clear();
            scratch.reserve(4096);
            match self.stream.try_read_buf(&mut scratch) {
                Ok(0) => return,
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }

    /// At shutdown: writes everything the session has ready (wills of other
    /// clients among it) before the connection closes, within `LINGER`.
    async fn drain_for_close(&mut self) {
        let deadline = Instant::now() + LINGER;
        loop {
            let more = self.drain_session(Instant::now());
            if !self.wbuf.is_empty() {
                let data = std::mem::take(&mut self.wbuf);
                let left = deadline.saturating_duration_since(Instant::now());
                if tokio::time::timeout(left, self.stream.write_all(&data))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    return;
                }
            }
            if !more || Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Our Receive Maximum: `max_inflight_messages`, as mosquitto announces
    /// it (0, unlimited, is the protocol's 65535).
    fn receive_maximum(&self) -> u16 {
        match self.shared.config.limits.max_inflight_messages {
            Some(n) if n > 0 => n,
            _ => u16::MAX,
        }
    }

    /// `filter` under the listener's mount point (`$share/G/` kept in front).
    fn mounted_filter(&self, filter: &str) -> String {
        let Some(mount) = &self.mount else {
            return filter.to_owned();
        };
        match crate::subscriptions::split_shared(filter) {
            (Some(group), f) => format!("$share/{group}/{mount}{f}"),
            (None, f) => format!("{mount}{f}"),
        }
    }

    fn security(&self) -> crate::config::Security {
        let config = &self.shared.config;
        match config
            .listeners
            .get(self.listener)
            .and_then(|l| l.security.clone())
        {
            Some(sec) if config.per_listener_settings => sec,
            _ => config.security.clone(),
        }
    }

    fn session<R>(&self, f: impl FnOnce(&mut crate::session::Session) -> R) -> Option<R> {
        let handle = self.handle.as_ref()?;
        let mut inner = handle.inner.lock();
        let result = f(&mut inner.session);
        flush_changes(&*self.shared.store, &self.client_id, &mut inner.session);
        // An acknowledgement may have moved queued messages into the window.
        let resumable = inner.take_resumable();
        drop(inner);
        resume_all(resumable);
        Some(result)
    }

    /// Whether a Reason String `text` may go to this client: 5.0 only, not
    /// when it set Request Problem Information to 0 (the spec would allow one
    /// on CONNACK and DISCONNECT even then [MQTT-3.1.2-29]; culex honours
    /// the request), and never past its Maximum Packet Size [MQTT-3.1.2-24].
    fn reason_string_allowed(&self, text: &str) -> bool {
        // Fixed header, reason code, property length and the property's own
        // header: well under 16 bytes besides the text.
        self.protocol.is_v5()
            && self.problem_info
            && !text.is_empty()
            && self
                .client_max_packet_size
                .is_none_or(|max| text.len().saturating_add(16) <= max as usize)
    }

    fn log_early_exit(&self, exit: &Exit) {
        if let Exit::Violation(_, why) = exit {
            tracing::debug!(
                "Connection from {} closed before CONNECT completed: {why}",
                self.peer
            );
        }
    }

    /// Ends the connection; `true` when it still held its session (not taken over).
    async fn finish(&mut self, exit: Exit) -> bool {
        let id = self.client_id.clone();
        let messages = self.shared.config.log.connection_messages;
        let (send_will, disconnect_reason) = match &exit {
            Exit::Disconnect { will } => {
                if messages {
                    tracing::info!("Client {id} disconnected.");
                }
                (*will, None)
            }
            Exit::Closed => {
                if messages {
                    tracing::info!("Client {id} closed its connection.");
                }
                (true, None)
            }
            Exit::Io(e) => {
                if messages {
                    tracing::info!("Socket error on client {id}, disconnecting.");
                }
                tracing::debug!("socket error on {id}: {e}");
                (true, None)
            }
            Exit::Timeout => {
                if messages {
                    tracing::info!("Client {id} has exceeded timeout, disconnecting.");
                }
                (true, Some(ReasonCode::KeepAliveTimeout))
            }
            Exit::Violation(reason, why) => {
                if messages {
                    let what = if *reason == ReasonCode::MalformedPacket {
                        "malformed packet"
                    } else {
                        "protocol error"
                    };
                    tracing::info!("Client {id} disconnected due to {what}.");
                }
                tracing::debug!("{id}: {why}");
                (true, Some(*reason))
            }
            Exit::Kicked => (true, Some(ReasonCode::SessionTakenOver)),
            // mosquitto 2.0 publishes the will of every client still
            // connected when it shuts down (src/mosquitto.c, after the main
            // loop: context__send_will for each client).
            Exit::Shutdown => (true, Some(ReasonCode::ServerShuttingDown)),
        };
        if matches!(exit, Exit::Shutdown) {
            self.drain_for_close().await;
        }
        if self.protocol.is_v5() {
            if let Some(reason) = disconnect_reason {
                // The server tells a 5.0 client why before closing [MQTT-4.13.1-1],
                // with what was wrong for a protocol error or malformed packet.
                let mut properties = Properties::default();
                if let Exit::Violation(_, why) = &exit {
                    if self.reason_string_allowed(why) {
                        properties.reason_string = Some(why);
                    }
                }
                self.encode(&Packet::Disconnect(Disconnect { reason, properties }));
            }
        }
        self.final_flush().await;
        let mut matches = std::mem::take(&mut self.matches);
        leave(
            &self.shared,
            self.handle.as_ref(),
            self.generation,
            &self.client_id,
            send_will,
            matches!(exit, Exit::Shutdown),
            &mut matches,
        )
    }
}

/// Leaves the session, unless a newer connection already holds it, and
/// publishes or delays the will the session holds for this connection.
/// `true` when the session was still this connection's (not taken over).
fn leave(
    shared: &Shared,
    handle: Option<&Arc<SessionHandle>>,
    generation: u64,
    client_id: &Arc<str>,
    send_will: bool,
    shutting_down: bool,
    matches: &mut Vec<Match<SessionKey>>,
) -> bool {
    let now = Instant::now();
    let mut end = false;
    let mut current = false;
    let mut will = None;
    if let Some(handle) = handle {
        let mut inner = handle.inner.lock();
        if inner.generation == generation {
            current = true;
            inner.conn = None;
            inner.session.detach();
            // Nobody waits for a session without a connection.
            resume_all(inner.paused.take_all());
            inner.disconnected_at = Some(now);
            end = inner.expiry == Some(0);
            will = inner
                .will
                .take()
                .map(|w| (w, inner.will_delay, inner.username.clone(), inner.listener));
        }
    }
    if let (true, Some((will, will_delay, username, listener))) = (send_will, will) {
        let owner = WillOwner {
            client_id,
            username: username.as_deref(),
            listener,
        };
        // Published on abnormal disconnection [MQTT-3.1.2-8], never after a
        // normal DISCONNECT [MQTT-3.1.2-10]. A 5.0 Will Delay Interval holds
        // it back until the delay passes or the session ends, whichever is
        // first; a new connection cancels it [MQTT-3.1.3-9].
        // At shutdown a delayed will goes out at once, as mosquitto's
        // will_delay__send_all does.
        if will_delay > 0 && !end && !shutting_down {
            if shared.will_allowed(&owner, &will.topic) {
                let due = now + Duration::from_secs(u64::from(will_delay));
                shared.store.delayed_will(client_id, Some(&will));
                shared
                    .delayed_wills
                    .lock()
                    .insert(client_id.clone(), (due, *will));
            }
        } else {
            shared.fire_will(owner, *will, matches, now);
        }
    }
    if end {
        if let Some(handle) = handle {
            end_session(shared, handle, Some(generation));
        }
    }
    current
}

/// What a parked connection keeps (see `park.rs`): its socket, out of
/// tokio, and the state that outlives an idle spell. Everything else is
/// empty when a connection parks (`Conn::may_park`) and made anew when it
/// resumes.
pub(crate) struct ParkedConn {
    stream: mio::net::TcpStream,
    handle: Arc<SessionHandle>,
    signal: Arc<ConnSignal>,
    alive: Option<tokio::sync::mpsc::Sender<()>>,
    last_seen: Instant,
    generation: u64,
    /// 1.5 × keep alive in milliseconds; 0: none.
    keepalive_ms: u32,
    listener: u32,
    out_alias_max: u16,
    protocol: Protocol,
    problem_info: bool,
    /// Boxed: most connections have none of it.
    rare: Option<Box<Rare>>,
}

/// The parts of a parked connection most connections do not have.
#[derive(Default)]
struct Rare {
    bridge: bool,
    aliases: Option<Box<Aliases>>,
    username: Option<Arc<str>>,
    client_max_packet_size: Option<u32>,
    connect_expiry: u32,
}

/// A connected client whose socket was lost while parking or resuming.
pub(crate) struct Lost {
    shared: Arc<Shared>,
    handle: Option<Arc<SessionHandle>>,
    generation: u64,
    client_id: Arc<str>,
}

impl std::fmt::Debug for ParkedConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedConn")
            .field("client_id", &self.handle.client_id)
            .finish_non_exhaustive()
    }
}

impl ParkedConn {
    fn from_conn(conn: Conn, alive: Option<tokio::sync::mpsc::Sender<()>>) -> Result<Self, Lost> {
        let Conn {
            shared,
            stream,
            listener,
            protocol,
            client_id,
            username,
            keepalive,
            last_seen,
            out_alias_max,
            aliases,
            client_max_packet_size,
            problem_info,
            bridge,
            handle,
            signal,
            generation,
            connect_expiry,
            ..
        } = conn;
        let lost = |handle| Lost {
            shared,
            handle,
            generation,
            client_id,
        };
        let (Some(handle), Ok(listener)) = (handle.clone(), u32::try_from(listener)) else {
            return Err(lost(handle));
        };
        let stream = match stream.into_std() {
            Ok(std) => mio::net::TcpStream::from_std(std),
            Err(e) => {
                tracing::debug!("unable to park a connection: {e}");
                return Err(lost(Some(handle)));
            }
        };
        let rare = Rare {
            bridge,
            aliases,
            username,
            client_max_packet_size,
            connect_expiry,
        };
        let rare = (rare.bridge
            || rare.aliases.is_some()
            || rare.username.is_some()
            || rare.client_max_packet_size.is_some()
            || rare.connect_expiry != 0)
            .then(|| Box::new(rare));
        // Keep alive is at most 65535 × 1.5 s: it fits.
        let keepalive_ms =
            keepalive.map_or(0, |k| u32::try_from(k.as_millis()).unwrap_or(u32::MAX));
        Ok(ParkedConn {
            stream,
            handle,
            signal,
            alive,
            last_seen,
            generation,
            keepalive_ms,
            listener,
            out_alias_max,
            protocol,
            problem_info,
            rare,
        })
    }

    /// The connection again, its socket registered with the current runtime.
    fn into_conn(
        self,
        shared: Arc<Shared>,
        rbuf: BytesMut,
    ) -> (Box<Conn>, Option<tokio::sync::mpsc::Sender<()>>) {
        let ParkedConn {
            stream,
            handle,
            signal,
            alive,
            last_seen,
            generation,
            keepalive_ms,
            listener,
            out_alias_max,
            protocol,
            problem_info,
            rare,
        } = self;
        let Rare {
            bridge,
            aliases,
            username,
            client_max_packet_size,
            connect_expiry,
        } = rare.map(|r| *r).unwrap_or_default();
        // Registered with tokio when the task first waits on it; only the
        // handshake's log lines show the peer.
        let mut conn = Conn::new(
            shared,
            Socket::Plain(stream.into()),
            SocketAddr::from(([0, 0, 0, 0], 0)),
            listener as usize,
            signal,
        );
        conn.rbuf = rbuf;
        conn.protocol = protocol;
        conn.client_id = handle.client_id.clone();
        conn.username = username;
        conn.keepalive = (keepalive_ms > 0).then(|| Duration::from_millis(u64::from(keepalive_ms)));
        conn.last_seen = last_seen;
        conn.out_alias_max = out_alias_max;
        conn.aliases = aliases;
        conn.client_max_packet_size = client_max_packet_size;
        conn.problem_info = problem_info;
        conn.bridge = bridge;
        conn.handle = Some(handle);
        conn.generation = generation;
        conn.connect_expiry = connect_expiry;
        (conn, alive)
    }

    /// Reads what the client sent while parked, without waiting: the bytes,
    /// and whether the client then closed the socket.
    fn read_ahead(&mut self, shared: &Shared) -> (BytesMut, bool) {
        use std::io::Read;
        let mut buf = [0u8; 2048];
        match (&self.stream).read(&mut buf) {
            Ok(0) => (BytesMut::new(), true),
            Ok(n) => {
                shared
                    .stats
                    .bytes_received
                    .fetch_add(n as u64, Ordering::Relaxed);
                let data = buf.get(..n).unwrap_or_default();
                (BytesMut::from(data), false)
            }
            // Nothing (the wake was for something else), or an error that
            // the registered socket reports again.
            Err(_) => (BytesMut::new(), false),
        }
    }

    pub(crate) fn wake(&self) -> &crate::park::Wake {
        &self.signal.wake
    }

    pub(crate) fn stream_mut(&mut self) -> &mut mio::net::TcpStream {
        &mut self.stream
    }

    /// The keep-alive deadline: 1.5 × keep alive after the last packet [MQTT-3.1.2-24].
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (self.keepalive_ms > 0)
            .then(|| self.last_seen + Duration::from_millis(u64::from(self.keepalive_ms)))
    }
}

impl Lost {
    /// Ends the connection as a socket error would.
    fn lost(self) {
        if self.shared.config.log.connection_messages {
            tracing::info!("Socket error on client {}, disconnecting.", self.client_id);
        }
        let current = leave(
            &self.shared,
            self.handle.as_ref(),
            self.generation,
            &self.client_id,
            true,
            false,
            &mut Vec::new(),
        );
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        if current {
            crate::sys::presence(&self.shared, &self.client_id, None);
        }
    }
}

/// Builds a PUBACK or PUBREC.
type AckKind = fn(PubResponse<'static>) -> Packet<'static>;

/// An acknowledgement that may wait for the store (issue 10).
enum Held {
    /// PUBACK or PUBREC.
    Pub(AckKind, PacketId, ReasonCode),
    /// Boxed: it is the rare one, and the largest.
    Sub(Box<HeldSubAck>),
    /// UNSUBACK with its reason codes (sent in 5.0 only).
    Unsub(PacketId, Vec<ReasonCode>),
}

/// A SUBACK and the retained messages to send after it.
struct HeldSubAck {
    packet_id: PacketId,
    codes: Vec<ReasonCode>,
    retained: Vec<(Arc<Message>, QoS)>,
    sub_id: Option<u32>,
}

/// Acknowledgements made durable by the store's writer thread.
#[derive(Debug, Default)]
struct DurableAcks {
    ready: AtomicUsize,
    failed: AtomicBool,
}

/// Waits until the socket is readable or writable (as asked), through the
/// poll functions: unlike `readable()`/`writable()` futures, these keep no
/// waiter state in the connection's future, which every idle connection holds.
fn socket_ready(
    stream: &Socket,
    want_read: bool,
    want_write: bool,
) -> impl std::future::Future<Output = Event> + '_ {
    std::future::poll_fn(move |cx| {
        use std::task::Poll;
        if want_read {
            if let Poll::Ready(r) = stream.poll_read_ready(cx) {
                return Poll::Ready(Event::Readable(r));
            }
        }
        if want_write {
            if let Poll::Ready(r) = stream.poll_write_ready(cx) {
                return Poll::Ready(Event::Writable(r));
            }
        }
        Poll::Pending
    })
}

/// Whether `topic` has more than `max_levels` levels (`max_topic_levels`).
/// A topic shorter than the limit cannot have that many separators.
fn too_deep(topic: &str, max_levels: usize) -> bool {
    topic.len() >= max_levels && topic.bytes().filter(|&b| b == b'/').count() >= max_levels
}

/// The Reason String of a CONNACK refusal (5.0).
fn refusal_text(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::BadAuthenticationMethod => "authentication method not supported",
        ReasonCode::ClientIdentifierNotValid => "client identifier not valid",
        ReasonCode::NotAuthorized => "not authorised",
        ReasonCode::QoSNotSupported => "will QoS above the server's maximum QoS",
        ReasonCode::RetainNotSupported => "retained will, but retain is not available",
        ReasonCode::UnsupportedProtocolVersion => "unsupported protocol version",
        ReasonCode::TopicNameInvalid => "will topic has too many levels",
        ReasonCode::ConnectionRateExceeded => "too many failed logins from this address",
        _ => "",
    }
}
