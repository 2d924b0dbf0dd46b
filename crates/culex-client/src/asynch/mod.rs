//! The async client on tokio (feature `tokio`), MQTT 3.1.1 and 5.0.
//!
//! [`connect`] spawns an event loop task and returns a cloneable [`Client`]
//! handle and an [`Events`] receiver:
//!
//! ```no_run
//! # async fn demo() -> Result<(), culex_client::asynch::ClientError> {
//! use culex_client::asynch::{connect, Event, Options};
//! use culex_client::QoS;
//!
//! let (client, mut events) = connect(Options::new("svc-1", "127.0.0.1", 1883));
//! client.subscribe("a/#", QoS::AtLeastOnce).await?.await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(msg) = event {
//!         // Publishing from the handler never deadlocks the event loop.
//!         client.publish("echo", msg.payload.clone(), QoS::AtLeastOnce, false).await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Guarantees:
//! - **No deadlock.** The event loop never waits on the application: while an
//!   event waits for room in the events channel it keeps serving requests
//!   and stops reading the socket, so TCP pushes back on the broker — unless
//!   the application's own requests wait for acknowledgements, in which case
//!   it keeps reading (up to 4096 held-back events) so that a handler that
//!   publishes cannot stall the loop.
//! - **Acknowledged when taken.** An incoming QoS 1/2 message is
//!   acknowledged (PUBACK/PUBREC) once it is in the events channel, so the
//!   server's in-flight window (our Receive Maximum in 5.0) paces a slow
//!   application instead of our memory absorbing the difference.
//! - **Bounded memory, visible back-pressure.** Requests go through a bounded
//!   channel: [`Client::publish`] waits for room, [`Client::try_publish`]
//!   fails with [`ClientError::Full`]. QoS 1/2 messages in flight are limited
//!   by [`Options::max_inflight`] and the server's Receive Maximum; when the
//!   window is full the loop stops taking requests.
//! - **Reconnect.** With [`Options::reconnect`] set (the default) a lost
//!   connection is re-established with back-off; subscriptions are restored
//!   when the server did not keep the session, and unacknowledged QoS 1/2
//!   messages are re-sent (with DUP on a resumed session, as new messages
//!   otherwise).
//! - Each request returns a [`Token`], a future that resolves when the
//!   server acknowledged it (PUBACK/PUBCOMP, SUBACK, UNSUBACK; a QoS 0
//!   publish when it was written). Awaiting it is optional.

mod event_loop;
mod types;

use std::string::String;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::vec::Vec;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{ReasonCode, SubscriptionOptions};
use crate::QoS;

pub use types::{
    AsyncStream, BoxStream, ClientError, ConnAckInfo, ConnectFuture, Connector, Event, LastWill,
    Message, Options, PublishProperties, Reconnect, SubscribeProperties, Token, Transport,
};

pub(crate) enum Request {
    Publish {
        message: Message,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe {
        filters: Vec<(String, SubscriptionOptions)>,
        properties: SubscribeProperties,
        done: oneshot::Sender<Result<Vec<ReasonCode>, ClientError>>,
    },
    Unsubscribe {
        filters: Vec<String>,
        done: oneshot::Sender<Result<Vec<ReasonCode>, ClientError>>,
    },
    Disconnect {
        reason: ReasonCode,
        session_expiry_interval: Option<u32>,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// Starts the event loop on the current tokio runtime and returns the handle
/// and the event receiver. The first connection attempt runs in the
/// background: the first event is [`Event::Connected`] or
/// [`Event::Disconnected`] with the error.
///
/// The loop ends after [`Client::disconnect`], when every [`Client`] is
/// dropped, or (without reconnect) when the connection is lost.
///
/// # Panics
/// Outside a tokio runtime, as `tokio::spawn` does.
pub fn connect(options: Options) -> (Client, Events) {
    let (req_tx, req_rx) = mpsc::channel(options.request_capacity.max(1));
    let (ev_tx, ev_rx) = mpsc::channel(options.event_capacity.max(1));
    tokio::spawn(event_loop::run(options, req_rx, ev_tx));
    (Client { requests: req_tx }, Events { rx: ev_rx })
}

/// The receiver of incoming messages and connection events.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event, or `None` once the event loop has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// A cloneable handle to the event loop; usable from any task, including
/// while handling an event.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
}

impl Client {
    /// Publishes a message without properties; waits for room in the request
    /// queue (back-pressure), not for the acknowledgement: await the returned
    /// [`Token`] for that.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Token<()>, ClientError> {
        self.publish_message(Message::new(topic, payload, qos, retain))
            .await
    }

    /// Publishes a message with its 5.0 properties.
    pub async fn publish_message(&self, message: Message) -> Result<Token<()>, ClientError> {
        let (done, token) = Token::pair();
        self.send(Request::Publish { message, done }).await?;
        Ok(token)
    }

    /// Like [`Client::publish_message`] but fails at once with
    /// [`ClientError::Full`] when the request queue is full.
    pub fn try_publish(&self, message: Message) -> Result<Token<()>, ClientError> {
        let (done, token) = Token::pair();
        match self.requests.try_send(Request::Publish { message, done }) {
            Ok(()) => Ok(token),
            Err(mpsc::error::TrySendError::Full(_)) => Err(ClientError::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ClientError::Closed),
        }
    }

    /// Subscribes to one filter; the token yields the SUBACK reason codes.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
        qos: QoS,
    ) -> Result<Token<Vec<ReasonCode>>, ClientError> {
        let options = SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        };
        self.subscribe_with(
            std::vec![(filter.into(), options)],
            SubscribeProperties::default(),
        )
        .await
    }

    /// Subscribes to several filters with 5.0 options and properties. The
    /// subscriptions are remembered and restored after a reconnect that lost
    /// the session.
    pub async fn subscribe_with(
        &self,
        filters: Vec<(String, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Result<Token<Vec<ReasonCode>>, ClientError> {
        let (done, token) = Token::pair();
        self.send(Request::Subscribe {
            filters,
            properties,
            done,
        })
        .await?;
        Ok(token)
    }

    /// Unsubscribes from filters; the token yields the UNSUBACK reason codes
    /// (empty in 3.1.1).
    pub async fn unsubscribe(
        &self,
        filters: Vec<String>,
    ) -> Result<Token<Vec<ReasonCode>>, ClientError> {
        let (done, token) = Token::pair();
        self.send(Request::Unsubscribe { filters, done }).await?;
        Ok(token)
    }

    /// Finishes the requests already queued and the QoS 1/2 messages in
    /// flight (waiting at most [`Options::connect_timeout`] for their
    /// acknowledgements), then sends DISCONNECT (normal disconnection),
    /// closes the connection and ends the event loop; returns once that is
    /// done. Dropping every handle does the same.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::Success, None).await
    }

    /// DISCONNECT with a 5.0 reason and optional new Session Expiry Interval.
    pub async fn disconnect_with(
        &self,
        reason: ReasonCode,
        session_expiry_interval: Option<u32>,
    ) -> Result<(), ClientError> {
        let (done, token) = Token::pair();
        self.send(Request::Disconnect {
            reason,
            session_expiry_interval,
            done,
        })
        .await?;
        token.await
    }

    /// Requests the event loop can still take without waiting.
    pub fn capacity(&self) -> usize {
        self.requests.capacity()
    }

    async fn send(&self, request: Request) -> Result<(), ClientError> {
        self.requests
            .send(request)
            .await
            .map_err(|_| ClientError::Closed)
    }
}

/// Shared ownership of a rustls client configuration, for [`Transport::Tls`].
#[cfg(feature = "tls")]
pub type TlsConfig = Arc<rustls::ClientConfig>;

// The handle is cloned into other tasks and threads: keep it Send + Sync.
const _: () = {
    const fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Client>();
};
