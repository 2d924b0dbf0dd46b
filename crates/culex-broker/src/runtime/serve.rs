//! The tokio driver of one client connection: reads the transport into the
//! protocol, wakes, writes every ready packet in one write per wake-up,
//! and parks the connection when it has nothing to do.
//!
//! How a connection lives: the listener hands the socket to a new task
//! ([`run`]), which reads the CONNECT directly when it is already there,
//! answers it, and serves. Once it has nothing to do (right after CONNACK
//! for a new one, after [`PARK_AFTER`] without activity for one that was
//! busy) it parks: the socket leaves tokio, a compact [`ParkedConn`] goes
//! to the parker, and the task ends. The parker spawns [`resume`] when the
//! socket is readable, the keep-alive deadline passes, or the connection's
//! waker is woken.
//!
//! On a listener with TLS, WebSocket or the PROXY protocol the task first
//! drives the connection's layers through their handshake
//! ([`Transport::open`]), then tells the protocol what they learnt
//! (the client's real address, a certificate's username); from there on
//! the loop is the same, the transport encoding and decoding below it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::park::{ConnSignal, FirstPass, ParkedConn};
use super::state::Runtime;
use super::transport::{log_new_connection, Socket, Transport};
use crate::core::wake::{ConnWaker, Waker};
use crate::protocol::{ClaimOutcome, Close, Connection, Handshake, Peer};

/// Above this many buffered output bytes the connection stops reading and
/// taking deliveries until the socket drains (back-pressure).
const HIGH_WATER: usize = 256 * 1024;
/// After a read of at least this many bytes the task yields, so that one
/// busy publisher cannot keep a worker thread (and the subscribers woken in
/// its LIFO slot, which other workers cannot steal) to itself: tokio's
/// readiness futures do not count against the cooperative budget.
const YIELD_AFTER_READ: usize = 8 * 1024;
/// The largest output buffer a worker thread keeps for reuse.
const MAX_SPARE_WBUF: usize = 512 * 1024;
/// Packets of this size or more are read into a buffer of their own.
const LARGE_FRAME: usize = 8 * 1024;
/// How long a new connection may take to send its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection that was active parks after this long without activity
/// (a new one parks as soon as it is idle).
pub(crate) const PARK_AFTER: Duration = Duration::from_secs(2);
/// When parking had to wait (something was pending), try again after this.
const PARK_RETRY: Duration = Duration::from_millis(100);
/// How long a closing connection keeps reading (and dropping) what its
/// client still sends, and how long shutdown writes out what is ready.
const LINGER: Duration = Duration::from_secs(1);
/// The most bytes a closing connection reads and drops.
const LINGER_BYTES: usize = 1 << 20;

thread_local! {
    /// An emptied output buffer, lent to the next connection this worker
    /// thread encodes for: busy connections do not allocate and grow a new
    /// buffer for every flush, and idle ones hold none.
    static SPARE_WBUF: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

/// How `serve` ended.
enum Served {
    Close(Close),
    /// Idle, with nothing pending: the connection parks.
    Park,
}

enum Event {
    Wake,
    Readable(std::io::Result<()>),
    Writable(std::io::Result<()>),
    Timeout,
}

/// One connection's driver: its transport, buffers and protocol state.
struct Conn {
    rt: Arc<Runtime>,
    /// Its socket is registered with tokio only once the connection waits
    /// for it.
    stream: Transport,
    rbuf: BytesMut,
    wbuf: BytesMut,
    signal: Arc<ConnSignal>,
    proto: Connection,
}

/// Serves one accepted connection until it ends.
pub(crate) async fn run(rt: Arc<Runtime>, socket: Socket, peer: Peer, listener: usize, port: u16) {
    let alive = rt.alive_token();
    let Some(mut conn) = accepted(rt, socket, peer, listener, port) else {
        return;
    };
    // The handshake is boxed: only the serving loop's state stays in an
    // idle connection's task.
    let handshake = Box::pin(conn.handshake(listener, port));
    let handshake = tokio::time::timeout(CONNECT_TIMEOUT, handshake).await;
    let accepted = match handshake {
        Ok(Ok(())) => true,
        Ok(Err(close)) => {
            conn.log_early_exit(&close);
            false
        }
        Err(_) => false,
    };
    conn.rt.end_handshake(listener);
    if !accepted {
        Box::pin(conn.final_flush()).await;
        return;
    }
    let stats = conn.rt.core.stats();
    let connected = stats.connected.fetch_add(1, Ordering::Relaxed) + 1;
    stats
        .clients_maximum
        .fetch_max(connected, Ordering::Relaxed);
    stats.connects.fetch_add(1, Ordering::Relaxed);
    super::sys::presence(
        &conn.rt.core,
        conn.proto.client_id(),
        Some((conn.proto.peer(), conn.proto.protocol())),
    );
    live(conn, alive, None).await;
}

/// A new connection's driver, before its handshake (not a part of `run`'s
/// future, which every idle connection holds).
fn accepted(
    rt: Arc<Runtime>,
    socket: Socket,
    peer: Peer,
    listener: usize,
    port: u16,
) -> Option<Box<Conn>> {
    let now = Instant::now();
    let stream = match rt.acceptor(listener).map(|a| a.start(now)) {
        None | Some(Ok(None)) => Transport::plain(socket),
        Some(Ok(Some(layers))) => Transport::layered(socket, layers),
        Some(Err(e)) => {
            tracing::error!("Error: unable to start TLS for {peer}: {e}");
            rt.end_handshake(listener);
            return None;
        }
    };
    // On a PROXY listener the line waits for the address the header names.
    if rt.core.config().log.connection_messages && !stream.awaits_proxy_header() {
        log_new_connection(&peer, port);
    }
    let signal = Arc::new(ConnSignal::new(rt.parker.clone()));
    let waker: ConnWaker = signal.clone();
    let proto = Connection::new(rt.core.clone(), listener, peer, waker, now);
    Some(Box::new(Conn {
        rt,
        stream,
        rbuf: BytesMut::new(),
        wbuf: BytesMut::new(),
        signal,
        proto,
    }))
}

/// Serves a parked connection again, from where it left off.
/// `first_pass` is released once the task has done what it was woken for.
pub(crate) async fn resume(rt: Arc<Runtime>, parked: ParkedConn, first_pass: FirstPass) {
    let ParkedConn {
        stream,
        layers,
        signal,
        alive,
        idle,
    } = parked;
    let mut stream = Transport::from_parked(stream, layers);
    // Read what woke it before the socket joins tokio (whose readiness
    // would take a turn of its reactor): a client that sent DISCONNECT or
    // closed is then done within this one poll.
    let (rbuf, closed) = read_ahead(&rt, &mut stream);
    let waker: ConnWaker = signal.clone();
    let proto = idle.resume(rt.core.clone(), waker, Instant::now());
    let conn = Box::new(Conn {
        rt,
        stream,
        rbuf,
        wbuf: BytesMut::new(),
        signal,
        proto,
    });
    live(conn, alive, Some(Resumed { closed, first_pass })).await;
}

/// How a task resumed from the parker starts.
struct Resumed {
    /// The client closed the socket (after what was read ahead).
    closed: bool,
    first_pass: FirstPass,
}

/// The life of a connected client's task: serve until it ends or parks.
/// `alive` keeps shutdown waiting, parked or not.
async fn live(mut conn: Box<Conn>, alive: Option<mpsc::Sender<()>>, resumed: Option<Resumed>) {
    match conn.serve(resumed).await {
        Served::Park => conn.park(alive),
        Served::Close(close) => {
            let linger = close.lingers();
            let still_current = Box::pin(conn.finish(close)).await;
            conn.rt
                .core
                .stats()
                .connected
                .fetch_sub(1, Ordering::Relaxed);
            if still_current {
                super::sys::presence(&conn.rt.core, conn.proto.client_id(), None);
            }
            Box::pin(conn.final_flush()).await;
            // The client may still be writing when the broker ended the
            // connection: it lingers once the client has left.
            if linger {
                Box::pin(conn.linger()).await;
            }
        }
    }
}

impl Conn {
    /// Establishes the transport's layers, if any, then reads the CONNECT
    /// and answers it.
    async fn handshake(&mut self, listener: usize, port: u16) -> Result<(), Close> {
        if !self.stream.is_established() {
            let (rt, rbuf, proto) = (&*self.rt, &mut self.rbuf, &mut self.proto);
            self.stream.open(rt, rbuf, proto, listener, port).await?;
        }
        loop {
            let now = Instant::now();
            self.ensure_wbuf();
            match self
                .proto
                .handle_connect(now, &mut self.rbuf, &mut self.wbuf)?
            {
                Handshake::Accepted => return Ok(()),
                Handshake::WaitUntil(at) => {
                    tokio::time::sleep_until(at.into()).await;
                    continue;
                }
                Handshake::Claim(claim) => {
                    let outcome = match &self.rt.cluster {
                        Some(cluster) => cluster.claim(claim).await,
                        None => ClaimOutcome::Ready,
                    };
                    self.proto.set_cluster_claim(outcome);
                    continue;
                }
                Handshake::Incomplete => {}
            }
            if self.stream.peer_closed() {
                return Err(Close::Closed);
            }
            // The CONNECT is usually there already: read it without
            // registering the socket.
            if self.stream.is_direct() && self.read_some()? > 0 {
                continue;
            }
            self.stream.readable().await.map_err(Close::Io)?;
            self.read_some()?;
        }
    }

    /// Serves the connection until it ends, or until it is idle and may
    /// park. `resumed`: it comes back from the parker, for a reason that
    /// the first pass of the loop finds.
    async fn serve(&mut self, resumed: Option<Resumed>) -> Served {
        let mut now = Instant::now();
        if resumed.is_some() && self.signal.is_kicked() {
            return Served::Close(Close::Kicked);
        }
        // Frames that arrived together with the CONNECT, or read on resuming.
        if let Err(close) = self.input(now) {
            return Served::Close(close);
        }
        let (resumed, mut first_pass) = match resumed {
            Some(r) if r.closed => return Served::Close(Close::Closed),
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
        let mut active = false;
        loop {
            // Shutdown wakes every attached connection through its signal.
            if self.rt.is_closing() {
                return Served::Close(Close::Shutdown);
            }
            // A flooding client must not keep its worker thread: other tasks
            // (the accept loop among them) get their turn once the budget is spent.
            tokio::task::coop::consume_budget().await;
            now = Instant::now();
            if std::mem::take(&mut active) {
                park_at = now + PARK_AFTER;
            }
            let more = match self.write_ready(now) {
                Ok(more) => more,
                Err(close) => return Served::Close(close),
            };
            if now >= park_at && self.may_park() && self.nothing_pending(now) {
                return Served::Park;
            }
            if more && self.out_len() < HIGH_WATER {
                // Deliveries are still waiting and the socket took the
                // buffer: no wake-up will come for them, so go on.
                continue;
            }
            // What the parker woke the task for is done: it may wake more.
            drop(first_pass.take());
            let event = match self.wait(&mut timer).await {
                Ok(event) => event,
                Err(close) => return Served::Close(close),
            };
            active = !matches!(event, Event::Timeout);
            let handled = match event {
                Event::Timeout => self.on_timeout(&mut timer, park_at),
                Event::Wake => self.on_wake(),
                Event::Writable(r) => r.map_err(Close::Io),
                Event::Readable(r) => match r.map_err(Close::Io) {
                    Ok(()) => self.on_readable().await,
                    Err(close) => Err(close),
                },
            };
            if let Err(close) = handled {
                return Served::Close(close);
            }
        }
    }

    /// Held acknowledgements that became durable, what the session has
    /// ready, and a write of the output buffer. `true` when deliveries may
    /// still be waiting.
    fn write_ready(&mut self, now: Instant) -> Result<bool, Close> {
        self.ensure_wbuf();
        self.proto.release_acks(&mut self.wbuf)?;
        let room = HIGH_WATER.saturating_sub(self.stream.pending_out());
        let more = self.proto.poll_transmit(now, &mut self.wbuf, room);
        self.try_flush()?;
        Ok(more)
    }

    /// Output bytes not yet written: the protocol's, and the transport's
    /// below it.
    fn out_len(&self) -> usize {
        self.wbuf.len() + self.stream.pending_out()
    }

    /// Waits for the next thing to do: a wake, the socket, the timer.
    async fn wait(
        &mut self,
        timer: &mut std::pin::Pin<Box<tokio::time::Sleep>>,
    ) -> Result<Event, Close> {
        let want_read = self.out_len() < HIGH_WATER && !self.proto.is_paused();
        let want_write = self.out_len() > 0;
        self.stream.register().map_err(Close::Io)?;
        if let Some(at) = self.proto.poll_timeout() {
            if timer.deadline() > at.into() {
                timer.as_mut().reset(at.into());
            }
        }
        let stream = self.stream.socket();
        let signal = &self.signal;
        Ok(tokio::select! {
            _ = signal.wake.notified() => Event::Wake,
            e = socket_ready(stream, want_read, want_write), if want_read || want_write => e,
            _ = timer.as_mut() => Event::Timeout,
        })
    }

    fn on_timeout(
        &mut self,
        timer: &mut std::pin::Pin<Box<tokio::time::Sleep>>,
        park_at: Instant,
    ) -> Result<(), Close> {
        let now = Instant::now();
        self.ensure_wbuf();
        self.proto
            .handle_timeout(now, &mut self.rbuf, &mut self.wbuf)?;
        let next = self.next_deadline(park_at.max(now + PARK_RETRY));
        timer.as_mut().reset(next.into());
        Ok(())
    }

    fn on_wake(&mut self) -> Result<(), Close> {
        self.ensure_wbuf();
        self.proto
            .handle_wake(Instant::now(), &mut self.rbuf, &mut self.wbuf)
    }

    async fn on_readable(&mut self) -> Result<(), Close> {
        let read = self.read_some()?;
        if read == 0 {
            return Ok(());
        }
        self.input(Instant::now())?;
        if self.stream.peer_closed() {
            return Err(Close::Closed);
        }
        // An idle connection keeps no read buffer.
        if self.rbuf.is_empty() && read < 2048 {
            self.rbuf = BytesMut::new();
        }
        if self.proto.take_yield_hint() || read >= YIELD_AFTER_READ {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Hands what was read to the protocol.
    fn input(&mut self, now: Instant) -> Result<(), Close> {
        if self.rbuf.is_empty() {
            return Ok(());
        }
        self.ensure_wbuf();
        self.proto.handle_input(now, &mut self.rbuf, &mut self.wbuf)
    }

    /// `park_at`, or the protocol's next deadline, whichever is first.
    fn next_deadline(&self, park_at: Instant) -> Instant {
        match self.proto.poll_timeout() {
            Some(at) => park_at.min(at),
            None => park_at,
        }
    }

    /// Whether the connection holds nothing that needs its task: no bytes
    /// to write or partly read, and nothing the protocol waits for. A
    /// parked connection keeps this invariant.
    fn may_park(&self) -> bool {
        self.wbuf.is_empty()
            && self.rbuf.is_empty()
            && self.stream.is_idle()
            && self.proto.may_park()
            && self.rt.parker.is_open()
    }

    /// Marks the signal as parking, then checks that no wake came before:
    /// a kick, shutdown, or deliveries made ready. A wake from here on is
    /// kept by the signal (see `park.rs`). `false`: stay, the wake is
    /// delivered to the task.
    fn nothing_pending(&mut self, now: Instant) -> bool {
        self.signal.wake.begin_park();
        self.ensure_wbuf();
        self.proto.poll_transmit(now, &mut self.wbuf, HIGH_WATER);
        let pending = !self.wbuf.is_empty() || self.signal.is_kicked() || self.rt.is_closing();
        if pending {
            self.signal.wake.cancel_park();
            // The loop writes what was drained and looks at the flags.
            self.signal.wake.notify_one();
        } else {
            self.release_wbuf();
        }
        !pending
    }

    /// Hands the idle connection to the parker; its task then ends.
    fn park(self: Box<Self>, alive: Option<mpsc::Sender<()>>) {
        let Conn {
            rt,
            stream,
            signal,
            proto,
            ..
        } = *self;
        let (stream, layers) = match stream.into_parked() {
            Ok(parked) => parked,
            Err(e) => {
                tracing::debug!("unable to park a connection: {e}");
                return lost(&rt, proto);
            }
        };
        let idle = match proto.park() {
            Ok(idle) => idle,
            Err(proto) => return lost(&rt, *proto),
        };
        let parked = ParkedConn {
            stream,
            layers,
            signal,
            alive,
            idle,
        };
        if let Err(parked) = rt.parker.park(parked) {
            // Woken while parking: carry on in a new task.
            let first_pass = rt.parker.first_pass();
            tokio::spawn(resume(rt, parked, first_pass));
        }
    }

    /// One non-blocking read into the read buffer; `Ok(0)` when nothing was ready.
    fn read_some(&mut self) -> Result<usize, Close> {
        self.reserve_read();
        match self.stream.read(&mut self.rbuf) {
            Ok(0) => Err(Close::Closed),
            Ok(n) => {
                self.rt
                    .core
                    .stats()
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
            Err(e) => Err(Close::Io(e)),
        }
    }

    /// Room in the read buffer: small first (most wake-ups of a quiet
    /// client carry one small packet), then 16 KiB reads; a large packet is
    /// read into a buffer of exactly its size, so that its payload, shared
    /// by subscribers and queues for as long as they hold it, keeps no
    /// other packet's bytes alive.
    fn reserve_read(&mut self) {
        let max = self
            .rt
            .core
            .config()
            .limits
            .max_packet_size
            .unwrap_or(u32::MAX);
        match culex_codec::frame_size(&self.rbuf, max) {
            Ok(Some(size)) if size >= LARGE_FRAME && size > self.rbuf.len() => {
                if self.rbuf.capacity() != size {
                    let mut exact = BytesMut::with_capacity(size);
                    exact.extend_from_slice(&self.rbuf);
                    self.rbuf = exact;
                }
            }
            _ if self.rbuf.capacity() == 0 => self.rbuf.reserve(512),
            _ => self.rbuf.reserve(16 * 1024),
        }
    }

    /// An output buffer to encode into: the worker thread's spare one
    /// when the connection holds none.
    fn ensure_wbuf(&mut self) {
        if self.wbuf.capacity() == 0 {
            if let Some(spare) = SPARE_WBUF.take() {
                self.wbuf = spare;
            }
        }
    }

    /// An idle connection holds no output buffer; the worker thread keeps
    /// one for the next connection it serves.
    fn release_wbuf(&mut self) {
        if self.wbuf.is_empty() && self.wbuf.capacity() > 0 {
            let spare = std::mem::take(&mut self.wbuf);
            if spare.capacity() <= MAX_SPARE_WBUF {
                SPARE_WBUF.set(Some(spare));
            }
        }
    }

    /// Writes as much of the output buffer as the socket takes now.
    fn try_flush(&mut self) -> Result<(), Close> {
        if self.out_len() > 0 {
            let written = self.stream.flush(&mut self.wbuf)?;
            self.rt
                .core
                .stats()
                .bytes_sent
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        self.release_wbuf();
        Ok(())
    }

    /// Writes what is left, with a time limit, and shuts the sending half
    /// (after a TLS close_notify or WebSocket close).
    async fn final_flush(&mut self) {
        if self.out_len() > 0 {
            let data = std::mem::take(&mut self.wbuf);
            let _ = tokio::time::timeout(Duration::from_secs(2), self.stream.write_all(data)).await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), self.stream.shutdown()).await;
    }

    /// After the broker ended the connection the client may still be
    /// writing: its bytes are read and dropped for a while, so that closing
    /// does not reset the connection before it has read our last packet (a
    /// DISCONNECT with the reason) [MQTT-4.13.1-1].
    async fn linger(&mut self) {
        let _ = tokio::time::timeout(LINGER, self.discard_input()).await;
    }

    /// Reads and drops what the client sends until it closes (bounded).
    async fn discard_input(&mut self) {
        let mut scratch = BytesMut::new();
        let mut total = 0usize;
        while total < LINGER_BYTES {
            scratch.clear();
            scratch.reserve(4096);
            match self.stream.discard_some(&mut scratch).await {
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
            self.ensure_wbuf();
            let more = self
                .proto
                .poll_transmit(Instant::now(), &mut self.wbuf, HIGH_WATER);
            if self.out_len() > 0 {
                let data = std::mem::take(&mut self.wbuf);
                let left = deadline.saturating_duration_since(Instant::now());
                let written = tokio::time::timeout(left, self.stream.write_all(data)).await;
                if !matches!(written, Ok(Ok(()))) {
                    return;
                }
            }
            if !more || Instant::now() >= deadline {
                return;
            }
        }
    }

    fn log_early_exit(&self, close: &Close) {
        if let Close::Violation(why) = close {
            tracing::debug!(
                "Connection from {} closed before CONNECT completed: {why}",
                self.proto.peer()
            );
        }
    }

    /// Ends the connection (its last packets are in the output buffer, to
    /// flush); `true` when it still held its session (not taken over).
    async fn finish(&mut self, close: Close) -> bool {
        log_close(&self.rt, self.proto.client_id(), &close);
        if matches!(close, Close::Shutdown) {
            self.drain_for_close().await;
        }
        self.ensure_wbuf();
        self.proto.close(&close, Instant::now(), &mut self.wbuf)
    }
}

/// mosquitto's notice line for a connection that ends.
fn log_close(rt: &Runtime, id: &str, close: &Close) {
    if !rt.core.config().log.connection_messages {
        if let Close::Io(e) = close {
            tracing::debug!("socket error on {id}: {e}");
        }
        return;
    }
    match close {
        Close::Disconnect { .. } => tracing::info!("Client {id} disconnected."),
        Close::Closed => tracing::info!("Client {id} closed its connection."),
        Close::Io(e) => {
            tracing::info!("Socket error on client {id}, disconnecting.");
            tracing::debug!("socket error on {id}: {e}");
        }
        Close::Timeout => tracing::info!("Client {id} has exceeded timeout, disconnecting."),
        Close::Violation(v) => {
            let what = if v.is_malformed() {
                "malformed packet"
            } else {
                "protocol error"
            };
            tracing::info!("Client {id} disconnected due to {what}.");
            tracing::debug!("{id}: {v}");
        }
        Close::StoreFailed => {
            tracing::info!("Client {id} disconnected due to protocol error.");
            tracing::debug!("{id}: persistence failed");
        }
        Close::Refused | Close::Kicked | Close::Shutdown => {}
    }
}

/// A connected client whose socket was lost while parking: it ends as a
/// socket error would.
fn lost(rt: &Runtime, mut proto: Connection) {
    let close = Close::Io(std::io::Error::other("socket lost while parking"));
    log_close(rt, proto.client_id(), &close);
    let mut out = BytesMut::new();
    let current = proto.close(&close, Instant::now(), &mut out);
    rt.core.stats().connected.fetch_sub(1, Ordering::Relaxed);
    if current {
        super::sys::presence(&rt.core, proto.client_id(), None);
    }
}

/// Reads what the client sent while parked, without waiting: the bytes,
/// and whether the client then closed the connection.
fn read_ahead(rt: &Runtime, stream: &mut Transport) -> (BytesMut, bool) {
    let mut rbuf = BytesMut::new();
    match stream.read_ahead(&mut rbuf) {
        Ok(0) => (rbuf, true),
        Ok(n) => {
            rt.core
                .stats()
                .bytes_received
                .fetch_add(n as u64, Ordering::Relaxed);
            let closed = stream.peer_closed();
            (rbuf, closed)
        }
        // Bytes the layers refused: the connection ends.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => (rbuf, true),
        // Nothing (the wake was for something else), or an error that the
        // registered socket reports again.
        Err(_) => (rbuf, false),
    }
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

#[cfg(test)]
mod tests {
    /// Every idle connection holds its task's future: keep it small (it was
    /// 1360 bytes before `Conn` and the cold phases were boxed and the wait
    /// trimmed; about 400 after).
    #[test]
    fn idle_connection_future_is_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let runtime = super::super::state::Runtime::for_tests();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            let socket = super::Socket::Tcp(stream.into_std().unwrap());
            let fut = super::run(runtime, socket, peer.into(), 0, addr.port());
            let size = std::mem::size_of_val(&fut);
            assert!(size <= 512, "connection future is {size} bytes");
        });
    }
}
