//! The event loop task: one connection at a time, reconnecting as configured.

use std::collections::{HashMap, VecDeque};
use std::string::{String, ToString};
use std::vec::Vec;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::types::{BoxStream, ClientError, ConnAckInfo, Event, Message, Options, Transport};
use super::Request;
use crate::codec::packet::Will;
use crate::codec::topic::{TopicFilter, TopicName};
use crate::codec::{PacketId, Properties, ReasonCode, Seq, SubscriptionOptions};
use crate::core::{self, ConnectOptions, Connection, InflightKind, Millis};

/// In-flight capacity of the core: the most QoS 1/2 messages plus
/// SUBSCRIBE/UNSUBSCRIBE awaiting acknowledgement.
const OUT: usize = 160;
/// Incoming QoS 2 messages awaiting PUBREL (announced as Receive Maximum).
const IN: usize = 64;
/// Events held back while the application is busy; the socket is not read
/// beyond this.
const EVENT_BACKLOG: usize = 16;
/// Hard cap on held-back events. Beyond [`EVENT_BACKLOG`] the socket is
/// still read while the application's own requests wait for
/// acknowledgements (otherwise an application publishing from its handler
/// and the loop would wait on each other), up to this many events.
const EVENT_HARD_CAP: usize = 4096;

type Done<T> = oneshot::Sender<Result<T, ClientError>>;

struct PendingPublish {
    id: Option<PacketId>,
    message: Message,
    done: Option<Done<()>>,
}

enum PendingAck {
    Subscribe {
        filters: Vec<(String, SubscriptionOptions)>,
        properties: super::SubscribeProperties,
        done: Option<Done<Vec<ReasonCode>>>,
    },
    Unsubscribe {
        filters: Vec<String>,
        done: Option<Done<Vec<ReasonCode>>>,
    },
}

impl PendingAck {
    /// Answers the application's request (if it made one) with `error`.
    fn fail(self, error: ClientError) {
        let done = match self {
            PendingAck::Subscribe { done, .. } | PendingAck::Unsubscribe { done, .. } => done,
        };
        if let Some(done) = done {
            let _ = done.send(Err(error));
        }
    }
}

enum End {
    /// Stop the loop (disconnect requested, handles dropped).
    Stop,
    /// The connection was lost; reconnect if allowed.
    Lost(std::boxed::Box<Event>),
}

/// The acknowledgement owed for a delivered message.
#[derive(Debug, Clone, Copy)]
struct DeliveryAck {
    id: PacketId,
    qos: crate::QoS,
    generation: u64,
}

struct EventLoop {
    options: Options,
    origin: Instant,
    conn: Connection<OUT, IN>,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<Event>,
    /// Events not yet taken by the application, each with the acknowledgement
    /// to send once it is (incoming QoS 1/2 messages).
    backlog: VecDeque<(Event, Option<DeliveryAck>)>,
    /// Counts connections, so that a deferred acknowledgement is never sent
    /// on a later connection, where the id may mean another message.
    generation: u64,
    pending: VecDeque<PendingPublish>,
    acks: HashMap<u16, PendingAck>,
    /// Requests that could not be sent yet (no in-flight slot, or not connected).
    held: VecDeque<PendingAck>,
    subscriptions: Vec<(String, SubscriptionOptions, Option<u32>)>,
    wbuf: Vec<u8>,
    rbuf: BytesMut,
    connected_once: bool,
    stop: Option<Done<()>>,
    closing: Option<Closing>,
}

/// A disconnect in progress: in-flight work is finished first (until
/// `deadline`), then DISCONNECT is sent.
struct Closing {
    reason: ReasonCode,
    session_expiry_interval: Option<u32>,
    done: Option<Done<()>>,
    deadline: Instant,
}

pub(crate) async fn run(
    options: Options,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<Event>,
) {
    let mut conn = Connection::new();
    // Incoming QoS 1/2 messages are acknowledged when the application takes
    // them, so the server's in-flight window paces delivery.
    conn.set_manual_acks(true);
    let mut lp = EventLoop {
        options,
        origin: Instant::now(),
        conn,
        requests,
        events,
        backlog: VecDeque::new(),
        generation: 0,
        pending: VecDeque::new(),
        acks: HashMap::new(),
        held: VecDeque::new(),
        subscriptions: Vec::new(),
        wbuf: Vec::new(),
        rbuf: BytesMut::new(),
        connected_once: false,
        stop: None,
        closing: None,
    };
    lp.run().await;
}

impl EventLoop {
    fn now(&self) -> Millis {
        Millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    async fn run(&mut self) {
        let initial_delay = self
            .options
            .reconnect
            .map(|r| r.initial)
            .unwrap_or_default();
        let mut delay = initial_delay;
        loop {
            let end = match self.connect_once().await {
                Ok(stream) => {
                    delay = initial_delay;
                    self.serve(stream).await
                }
                Err(event) => End::Lost(std::boxed::Box::new(event)),
            };
            self.conn.connection_lost();
            match end {
                End::Stop => break,
                End::Lost(event) => self.backlog.push_back((*event, None)),
            }
            if let Some(closing) = self.closing.take() {
                self.stop = closing.done;
                break;
            }
            let Some(policy) = self.options.reconnect else {
                break;
            };
            if !self.wait_before_reconnect(delay).await {
                break;
            }
            delay = (delay * 2).min(policy.max);
        }
        self.fail_all(ClientError::ConnectionLost("event loop ended".to_string()));
        // `disconnect()` returns now: the caller may be the task that reads
        // the events below, so it must not wait for them.
        if let Some(done) = self.stop.take() {
            let _ = done.send(Ok(()));
        }
        // Hand over what is left for the application, then close the channel.
        while let Some((event, _)) = self.backlog.pop_front() {
            if self.events.send(event).await.is_err() {
                break;
            }
        }
    }

    /// Sleeps `delay` while still delivering events and taking a disconnect
    /// request. False when the loop should end.
    async fn wait_before_reconnect(&mut self, delay: std::time::Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let can_take = self.held.is_empty() && self.pending_unsent() == 0;
            let events = self.events.clone();
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                permit = events.reserve(), if !self.backlog.is_empty() => self.deliver(permit),
                request = self.requests.recv(), if can_take => {
                    match request {
                        None => return false,
                        Some(Request::Disconnect { done, .. }) => {
                            self.stop = Some(done);
                            return false;
                        }
                        Some(other) => self.accept_offline(other),
                    }
                }
            }
        }
    }

    fn pending_unsent(&self) -> usize {
        self.pending.iter().filter(|p| p.id.is_none()).count()
    }

    /// Queues a request until it can be sent: while disconnected, until the
    /// next connection (QoS 0 messages too, since the application asked for
    /// them).
    fn accept_offline(&mut self, request: Request) {
        match request {
            Request::Publish { message, done } => self.pending.push_back(PendingPublish {
                id: None,
                message,
                done: Some(done),
            }),
            Request::Subscribe {
                filters,
                properties,
                done,
            } => self.held.push_back(PendingAck::Subscribe {
                filters,
                properties,
                done: Some(done),
            }),
            Request::Unsubscribe { filters, done } => {
                self.held.push_back(PendingAck::Unsubscribe {
                    filters,
                    done: Some(done),
                })
            }
            Request::Disconnect { done, .. } => {
                let _ = done.send(Ok(()));
            }
        }
    }

    /// Opens the transport and completes the CONNECT/CONNACK handshake.
    async fn connect_once(&mut self) -> Result<BoxStream, Event> {
        let timeout = self.options.connect_timeout;
        match tokio::time::timeout(timeout, self.handshake()).await {
            Ok(result) => result,
            Err(_) => Err(lost(None, None, Some("connect timed out".to_string()))),
        }
    }

    async fn handshake(&mut self) -> Result<BoxStream, Event> {
        let io_err = |e: std::io::Error| lost(None, None, Some(e.to_string()));
        let mut stream = open(&self.options).await.map_err(io_err)?;
        self.rbuf.clear();
        self.wbuf.clear();
        // A 5.0 reconnect asks to resume (the session lives only as long as
        // its expiry interval allows). A 3.x one keeps the caller's choice:
        // a clean-session-0 session would never expire on the server.
        let clean_start = if self.connected_once && self.options.protocol.is_v5() {
            false
        } else {
            self.options.clean_start
        };
        let now = self.now();
        let o = &self.options;
        let will_props = o
            .will
            .as_ref()
            .map(|w| w.properties.clone())
            .unwrap_or_default();
        let users: Vec<(&str, &str)> = o
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let result = will_props.with_wire(|mut will_wire| {
            let will = match &o.will {
                Some(w) => {
                    will_wire.will_delay_interval = w.delay_interval;
                    Some(Will {
                        topic: TopicName::new(&w.topic).map_err(|_| core::Error::InvalidTopic)?,
                        payload: &w.payload,
                        qos: w.qos,
                        retain: w.retain,
                        properties: will_wire,
                    })
                }
                None => None,
            };
            let options = ConnectOptions {
                protocol: o.protocol,
                client_id: &o.client_id,
                keep_alive: o.keep_alive,
                clean_start,
                username: o.username.as_deref(),
                password: o.password.as_deref(),
                will,
                properties: Properties {
                    session_expiry_interval: o.session_expiry_interval,
                    maximum_packet_size: Some(o.max_packet_size),
                    user_properties: Seq::Items(&users),
                    ..Properties::default()
                },
            };
            self.conn.connect(now, &options, &mut self.wbuf)
        });
        result.map_err(|e| lost(None, None, Some(e.to_string())))?;
        stream.write_all(&self.wbuf).await.map_err(io_err)?;
        self.wbuf.clear();
        loop {
            if let Some(frame) = self
                .next_frame()
                .map_err(|e| lost(None, None, Some(e.to_string())))?
            {
                let packet = crate::codec::decode_packet(&frame, self.conn.protocol())
                    .map_err(|e| lost(None, None, Some(e.to_string())))?;
                let now = self.now();
                match self.conn.handle_packet(now, packet) {
                    Ok(core::Event::Connected(connack)) => {
                        let info =
                            ConnAckInfo::from_wire(connack.session_present, &connack.properties);
                        self.backlog.push_back((Event::Connected(info), None));
                        self.generation = self.generation.wrapping_add(1);
                        self.connected_once = true;
                        self.resume(connack.session_present);
                        return Ok(stream);
                    }
                    Ok(_) => {}
                    Err(core::Error::Refused(code)) => {
                        return Err(lost(
                            Some(code),
                            None,
                            Some("connection refused".to_string()),
                        ))
                    }
                    Err(e) => return Err(lost(None, None, Some(e.to_string()))),
                }
                continue;
            }
            self.rbuf.reserve(4096);
            let n = stream.read_buf(&mut self.rbuf).await.map_err(io_err)?;
            if n == 0 {
                return Err(lost(
                    None,
                    None,
                    Some("connection closed before CONNACK".to_string()),
                ));
            }
        }
    }

    /// After CONNACK: re-send what the session still needs, restore
    /// subscriptions when it was lost.
    fn resume(&mut self, session_present: bool) {
        // Lost subscriptions are restored first, one filter a SUBSCRIBE since
        // each keeps its own subscription identifier; then SUBSCRIBE and
        // UNSUBSCRIBE awaiting acknowledgement are sent again.
        let mut requeue: Vec<PendingAck> = Vec::new();
        if !session_present {
            requeue.extend(self.subscriptions.iter().map(|(filter, options, id)| {
                PendingAck::Subscribe {
                    filters: std::vec![(filter.clone(), *options)],
                    properties: super::SubscribeProperties {
                        subscription_identifier: *id,
                        user_properties: Vec::new(),
                    },
                    done: None,
                }
            }));
        }
        requeue.extend(self.acks.drain().map(|(_, a)| a));
        requeue.extend(self.held.drain(..));
        self.held.extend(requeue);
        let inflight: HashMap<u16, InflightKind> = self
            .conn
            .inflight()
            .map(|(id, kind)| (id.get(), kind))
            .collect();
        let now = self.now();
        for p in self.pending.iter_mut() {
            let Some(id) = p.id else { continue };
            match inflight.get(&id.get()) {
                Some(InflightKind::PubAck) | Some(InflightKind::PubRec) => {
                    // [MQTT-4.4.0-1]: re-send with DUP on a resumed session.
                    let r = with_core_message(&p.message, |msg| {
                        self.conn.republish(now, id, msg, &mut self.wbuf)
                    });
                    if r.is_err() {
                        p.id = None;
                    }
                }
                Some(_) => {}
                // The server has no session: publish again as new.
                None => p.id = None,
            }
        }
    }

    /// Serves one established connection until it ends.
    async fn serve(&mut self, stream: BoxStream) -> End {
        let (mut reader, mut writer) = tokio::io::split(stream);
        loop {
            self.pump();
            self.drain_transmit();
            if !self.wbuf.is_empty() {
                if let Err(e) = writer.write_all(&self.wbuf).await {
                    return End::Lost(gone(None, None, Some(e.to_string())));
                }
                self.wbuf.clear();
            }
            if let Some(closing) = &self.closing {
                let drained =
                    self.pending.is_empty() && self.held.is_empty() && self.acks.is_empty();
                if drained || Instant::now() >= closing.deadline {
                    let (reason, expiry) = (closing.reason, closing.session_expiry_interval);
                    self.encode_disconnect(reason, expiry);
                    let _ = writer.write_all(&self.wbuf).await;
                    self.wbuf.clear();
                    let _ = writer.shutdown().await;
                    // Read until the server closes, so that our close does not
                    // reset the connection while it still reads our last packets.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                        let mut sink = [0u8; 1024];
                        while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
                    })
                    .await;
                    self.stop = self.closing.take().and_then(|c| c.done);
                    return End::Stop;
                }
            }
            // Process whatever complete packets are already buffered.
            match self.process_buffered() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(end) => return end,
            }
            let can_take =
                self.held.is_empty() && self.pending_unsent() == 0 && self.conn.can_publish();
            // Beyond the backlog, keep reading while our own requests wait for
            // acknowledgements: the application may be waiting on them.
            let can_read = self.backlog.len() < EVENT_BACKLOG
                || (!can_take && self.backlog.len() < EVENT_HARD_CAP);
            let deadline = self
                .conn
                .poll_timeout()
                .map(|Millis(ms)| self.origin + std::time::Duration::from_millis(ms));
            self.rbuf.reserve(8192);
            let events = self.events.clone();
            let closing_deadline = self.closing.as_ref().map(|c| c.deadline);
            tokio::select! {
                read = reader.read_buf(&mut self.rbuf), if can_read => {
                    match read {
                        Ok(0) => return End::Lost(gone(None, None, Some("connection closed by server".to_string()))),
                        Ok(_) => {}
                        Err(e) => return End::Lost(gone(None, None, Some(e.to_string()))),
                    }
                }
                request = self.requests.recv(), if can_take && self.closing.is_none() => {
                    match request {
                        // Every handle is gone: finish in-flight work, then disconnect.
                        None => self.begin_closing(ReasonCode::Success, None, None),
                        Some(request) => self.accept(request),
                    }
                }
                _ = sleep_until_opt(closing_deadline), if closing_deadline.is_some() => {}
                permit = events.reserve(), if !self.backlog.is_empty() => self.deliver(permit),
                _ = sleep_until_opt(deadline), if deadline.is_some() => {
                    let now = self.now();
                    if let Err(e) = self.conn.handle_timeout(now) {
                        return End::Lost(gone(None, None, Some(e.to_string())));
                    }
                }
            }
        }
    }

    /// Handles every complete packet in the read buffer. `Ok(true)` when
    /// anything was handled.
    fn process_buffered(&mut self) -> Result<bool, End> {
        let mut any = false;
        while self.backlog.len() < EVENT_HARD_CAP {
            let frame = match self.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(End::Lost(gone(None, None, Some(e.to_string())))),
            };
            any = true;
            self.handle_frame(frame)?;
            // The core holds only a few acknowledgements: hand them over now.
            self.drain_transmit();
        }
        Ok(any)
    }

    fn next_frame(&mut self) -> Result<Option<Bytes>, crate::codec::DecodeError> {
        match crate::codec::check_frame(&self.rbuf, self.options.max_packet_size)? {
            Some(len) => Ok(Some(self.rbuf.split_to(len).freeze())),
            None => Ok(None),
        }
    }

    fn handle_frame(&mut self, frame: Bytes) -> Result<(), End> {
        let err = |e: &dyn std::fmt::Display| End::Lost(gone(None, None, Some(e.to_string())));
        let packet =
            crate::codec::decode_packet(&frame, self.conn.protocol()).map_err(|e| err(&e))?;
        let now = self.now();
        match self.conn.handle_packet(now, packet).map_err(|e| err(&e))? {
            core::Event::Message(p) => {
                let message = Message {
                    topic: p.topic.as_str().to_string(),
                    payload: frame.slice_ref(p.payload),
                    qos: p.qos,
                    retain: p.retain,
                    dup: p.dup,
                    properties: super::PublishProperties::from_wire(&p.properties),
                };
                let ack = p
                    .packet_id
                    .filter(|_| p.qos != crate::QoS::AtMostOnce)
                    .map(|id| DeliveryAck {
                        id,
                        qos: p.qos,
                        generation: self.generation,
                    });
                self.backlog.push_back((Event::Message(message), ack));
            }
            core::Event::Published { id, reason } => {
                if let Some(pos) = self.pending.iter().position(|p| p.id == Some(id)) {
                    if let Some(p) = self.pending.remove(pos) {
                        if let Some(done) = p.done {
                            let _ = done.send(if reason.is_error() {
                                Err(ClientError::Refused(reason))
                            } else {
                                Ok(())
                            });
                        }
                    }
                }
            }
            core::Event::Subscribed(suback) => {
                let reasons: Vec<ReasonCode> = suback.reasons.iter().collect();
                if let Some(PendingAck::Subscribe {
                    filters,
                    properties,
                    done,
                }) = self.acks.remove(&suback.packet_id.get())
                {
                    for ((filter, options), reason) in filters.iter().zip(reasons.iter()) {
                        if !reason.is_error() {
                            self.subscriptions.retain(|(f, _, _)| f != filter);
                            self.subscriptions.push((
                                filter.clone(),
                                *options,
                                properties.subscription_identifier,
                            ));
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(Ok(reasons));
                    }
                }
            }
            core::Event::Unsubscribed(unsuback) => {
                let reasons: Vec<ReasonCode> = unsuback.reasons.iter().collect();
                if let Some(PendingAck::Unsubscribe { filters, done }) =
                    self.acks.remove(&unsuback.packet_id.get())
                {
                    self.subscriptions.retain(|(f, _, _)| !filters.contains(f));
                    if let Some(done) = done {
                        let _ = done.send(Ok(reasons));
                    }
                }
            }
            core::Event::Disconnected(d) => {
                return Err(End::Lost(gone(
                    Some(d.reason),
                    d.properties.reason_string.map(String::from),
                    None,
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// Takes a request from the application while connected: a QoS 0
    /// publish goes out at once and a disconnect starts closing; the rest
    /// is queued as when offline.
    fn accept(&mut self, request: Request) {
        match request {
            Request::Publish { message, done } if message.qos == crate::QoS::AtMostOnce => {
                let result = self.encode_publish(&message).map(|_| ());
                let _ = done.send(result);
            }
            Request::Disconnect {
                reason,
                session_expiry_interval,
                done,
            } => {
                self.begin_closing(reason, session_expiry_interval, Some(done));
            }
            other => self.accept_offline(other),
        }
    }

    /// Hands the oldest held-back event to the application through `permit`
    /// and acknowledges it; when nobody listens any more, every held-back
    /// event is dropped (and acknowledged).
    fn deliver(&mut self, permit: Result<mpsc::Permit<'_, Event>, mpsc::error::SendError<()>>) {
        match (permit, self.backlog.pop_front()) {
            (Ok(permit), Some((event, ack))) => {
                permit.send(event);
                self.ack_delivered(ack);
            }
            (_, first) => self.drop_backlog(first),
        }
    }

    /// Sends the acknowledgement of a message the application has taken,
    /// if it belongs to the current connection.
    fn ack_delivered(&mut self, ack: Option<DeliveryAck>) {
        let Some(ack) = ack else { return };
        if ack.generation == self.generation && self.conn.state() == core::State::Connected {
            let _ = self.conn.ack(ack.id, ack.qos);
            self.drain_transmit();
        }
    }

    /// Drops every held-back event (the receiver is gone), acknowledging
    /// the messages so the server is not held up.
    fn drop_backlog(&mut self, first: Option<(Event, Option<DeliveryAck>)>) {
        if let Some((_, ack)) = first {
            self.ack_delivered(ack);
        }
        while let Some((_, ack)) = self.backlog.pop_front() {
            self.ack_delivered(ack);
        }
    }

    fn begin_closing(&mut self, reason: ReasonCode, expiry: Option<u32>, done: Option<Done<()>>) {
        self.closing = Some(Closing {
            reason,
            session_expiry_interval: expiry,
            done,
            deadline: Instant::now() + self.options.connect_timeout,
        });
    }

    /// Sends queued publishes and held requests while the window allows.
    fn pump(&mut self) {
        if self.conn.state() != core::State::Connected {
            return;
        }
        // QoS 0 messages queued while offline go out first, then the rest in order.
        let mut i = 0;
        while i < self.pending.len() {
            let Some(p) = self.pending.get(i) else { break };
            if p.id.is_some() {
                i += 1;
                continue;
            }
            if p.message.qos == crate::QoS::AtMostOnce {
                if let Some(p) = self.pending.remove(i) {
                    let result = self.encode_publish(&p.message).map(|_| ());
                    if let Some(done) = p.done {
                        let _ = done.send(result);
                    }
                }
                continue;
            }
            if !self.conn.can_publish()
                || self.inflight_publishes() >= usize::from(self.options.max_inflight)
            {
                break;
            }
            let message = p.message.clone();
            match self.encode_publish(&message) {
                Ok(id) => {
                    if let Some(p) = self.pending.get_mut(i) {
                        p.id = id;
                    }
                    i += 1;
                }
                Err(e) => {
                    if let Some(p) = self.pending.remove(i) {
                        if let Some(done) = p.done {
                            let _ = done.send(Err(e));
                        }
                    }
                }
            }
        }
        while let Some(ack) = self.held.pop_front() {
            match self.send_ack_request(ack) {
                Ok(()) => {}
                Err(ack) => {
                    self.held.push_front(ack);
                    break;
                }
            }
        }
    }

    fn inflight_publishes(&self) -> usize {
        self.pending.iter().filter(|p| p.id.is_some()).count()
    }

    /// Encodes SUBSCRIBE/UNSUBSCRIBE; gives the request back when no slot is free.
    fn send_ack_request(&mut self, ack: PendingAck) -> Result<(), PendingAck> {
        let now = self.now();
        let result = match &ack {
            PendingAck::Subscribe {
                filters,
                properties,
                ..
            } => {
                let parsed: Result<Vec<(TopicFilter<'_>, SubscriptionOptions)>, String> = filters
                    .iter()
                    .map(|(f, o)| TopicFilter::new(f).map(|t| (t, *o)).map_err(|_| f.clone()))
                    .collect();
                match parsed {
                    Err(bad) => Err(ClientError::InvalidTopic(bad)),
                    Ok(parsed) => {
                        let users: Vec<(&str, &str)> = properties
                            .user_properties
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        let ids: Vec<u32> =
                            properties.subscription_identifier.into_iter().collect();
                        let props = Properties {
                            subscription_identifiers: Seq::Items(&ids),
                            user_properties: Seq::Items(&users),
                            ..Properties::default()
                        };
                        self.conn
                            .subscribe(now, &parsed, props, &mut self.wbuf)
                            .map_err(map_core_error)
                    }
                }
            }
            PendingAck::Unsubscribe { filters, .. } => {
                let parsed: Result<Vec<TopicFilter<'_>>, String> = filters
                    .iter()
                    .map(|f| TopicFilter::new(f).map_err(|_| f.clone()))
                    .collect();
                match parsed {
                    Err(bad) => Err(ClientError::InvalidTopic(bad)),
                    Ok(parsed) => self
                        .conn
                        .unsubscribe(now, &parsed, Properties::default(), &mut self.wbuf)
                        .map_err(map_core_error),
                }
            }
        };
        match result {
            Ok(id) => {
                self.acks.insert(id.get(), ack);
                Ok(())
            }
            Err(ClientError::Full) => Err(ack),
            Err(e) => {
                ack.fail(e);
                Ok(())
            }
        }
    }

    /// Encodes a PUBLISH; for QoS 1/2 the packet id is returned.
    fn encode_publish(&mut self, m: &Message) -> Result<Option<PacketId>, ClientError> {
        let now = self.now();
        with_core_message(m, |msg| {
            self.conn
                .publish(now, msg, &mut self.wbuf)
                .map_err(map_core_error)
        })
    }

    fn encode_disconnect(&mut self, reason: ReasonCode, session_expiry_interval: Option<u32>) {
        let now = self.now();
        let props = Properties {
            session_expiry_interval,
            ..Properties::default()
        };
        let _ = self.conn.disconnect(now, reason, props, &mut self.wbuf);
    }

    /// Moves what the core owes the server into the write buffer.
    fn drain_transmit(&mut self) {
        let now = self.now();
        for _ in 0..(OUT + IN + 8) {
            match self.conn.poll_transmit(now, &mut self.wbuf) {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }

    /// Fails every request still waiting.
    fn fail_all(&mut self, error: ClientError) {
        for p in self.pending.drain(..) {
            if let Some(done) = p.done {
                let _ = done.send(Err(error.clone()));
            }
        }
        for ack in self.acks.drain().map(|(_, a)| a).chain(self.held.drain(..)) {
            ack.fail(error.clone());
        }
        while let Ok(request) = self.requests.try_recv() {
            match request {
                Request::Publish { done, .. } | Request::Disconnect { done, .. } => {
                    let _ = done.send(Err(error.clone()));
                }
                Request::Subscribe { done, .. } | Request::Unsubscribe { done, .. } => {
                    let _ = done.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Lends `m` to `f` in the core's borrowed form.
fn with_core_message<R>(m: &Message, f: impl FnOnce(&core::Message<'_>) -> R) -> R {
    m.properties.with_wire(|properties| {
        f(&core::Message {
            topic: &m.topic,
            payload: &m.payload,
            qos: m.qos,
            retain: m.retain,
            properties,
        })
    })
}

fn map_core_error(e: core::Error) -> ClientError {
    match e {
        core::Error::InflightFull | core::Error::NoPacketId => ClientError::Full,
        core::Error::InvalidTopic => ClientError::InvalidTopic(String::new()),
        core::Error::NotConnected => ClientError::ConnectionLost("not connected".to_string()),
        other => ClientError::Invalid(other.to_string()),
    }
}

fn lost(reason: Option<ReasonCode>, reason_string: Option<String>, error: Option<String>) -> Event {
    Event::Disconnected {
        reason,
        reason_string,
        error,
    }
}

fn gone(
    reason: Option<ReasonCode>,
    reason_string: Option<String>,
    error: Option<String>,
) -> std::boxed::Box<Event> {
    std::boxed::Box::new(lost(reason, reason_string, error))
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Opens the configured transport.
async fn open(options: &Options) -> std::io::Result<BoxStream> {
    match &options.transport {
        Transport::Tcp => {
            let tcp = tokio::net::TcpStream::connect((options.host.as_str(), options.port)).await?;
            tcp.set_nodelay(true)?;
            Ok(std::boxed::Box::new(tcp))
        }
        #[cfg(feature = "tls")]
        Transport::Tls {
            config,
            server_name,
        } => {
            let tcp = tokio::net::TcpStream::connect((options.host.as_str(), options.port)).await?;
            tcp.set_nodelay(true)?;
            let name = server_name.clone().unwrap_or_else(|| options.host.clone());
            let name = rustls::pki_types::ServerName::try_from(name)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = connector.connect(name, tcp).await?;
            Ok(std::boxed::Box::new(tls))
        }
        Transport::Custom(connect) => connect(&options.host, options.port).await,
    }
}
