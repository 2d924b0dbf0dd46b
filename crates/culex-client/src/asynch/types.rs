//! Owned types of the async client.

use std::future::Future;
use std::pin::Pin;
use std::string::String;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use std::vec::Vec;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use crate::codec::{Properties, Protocol, ReasonCode};
use crate::QoS;

/// Errors of the async client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The event loop has ended (disconnect, every handle dropped, or the
    /// connection lost without reconnect).
    #[error("client closed")]
    Closed,
    /// The request queue is full (`try_*` calls).
    #[error("request queue full")]
    Full,
    /// The topic name or filter is invalid.
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// The server refused the publish or subscription with this reason.
    #[error("refused by the server: {0:?}")]
    Refused(ReasonCode),
    /// The connection was lost and the request cannot be completed.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The request cannot be encoded (too large, not allowed in this version).
    #[error("cannot send: {0}")]
    Invalid(String),
}

/// A request's completion: a future resolving when the server acknowledged
/// it. Dropping it does not cancel the request.
#[derive(Debug)]
pub struct Token<T> {
    rx: oneshot::Receiver<Result<T, ClientError>>,
}

impl<T> Token<T> {
    pub(crate) fn pair() -> (oneshot::Sender<Result<T, ClientError>>, Token<T>) {
        let (tx, rx) = oneshot::channel();
        (tx, Token { rx })
    }
}

impl<T> Future for Token<T> {
    type Output = Result<T, ClientError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(_)) => Poll::Ready(Err(ClientError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The 5.0 properties of a PUBLISH (or will), owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// 0 unspecified bytes, 1 UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// Seconds until the message expires.
    pub message_expiry_interval: Option<u32>,
    /// MIME type or other description of the payload.
    pub content_type: Option<String>,
    /// Where a response should go (request/response).
    pub response_topic: Option<String>,
    /// Correlates a response with its request.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
    /// Incoming only: the identifiers of the subscriptions that matched.
    pub subscription_identifiers: Vec<u32>,
}

impl PublishProperties {
    pub(crate) fn from_wire(p: &Properties<'_>) -> PublishProperties {
        PublishProperties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.map(String::from),
            response_topic: p.response_topic.map(String::from),
            correlation_data: p.correlation_data.map(Bytes::copy_from_slice),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (String::from(k), String::from(v)))
                .collect(),
            subscription_identifiers: p.subscription_identifiers.iter().collect(),
        }
    }

    /// Lends these properties as codec [`Properties`] to `f`.
    pub(crate) fn with_wire<R>(&self, f: impl FnOnce(Properties<'_>) -> R) -> R {
        let users: Vec<(&str, &str)> = self
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let props = Properties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry_interval,
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            user_properties: crate::codec::Seq::Items(&users),
            ..Properties::default()
        };
        f(props)
    }
}

/// An application message, incoming or outgoing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic name.
    pub topic: String,
    /// The payload (incoming: sliced from the received frame, not copied).
    pub payload: Bytes,
    /// QoS (incoming: as delivered).
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// Incoming only: the DUP flag.
    pub dup: bool,
    /// 5.0 properties (ignored when sending with 3.1.1).
    pub properties: PublishProperties,
}

impl Message {
    /// A message without properties.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            dup: false,
            properties: PublishProperties::default(),
        }
    }

    /// Sets the properties.
    pub fn with_properties(mut self, properties: PublishProperties) -> Message {
        self.properties = properties;
        self
    }
}

/// 5.0 SUBSCRIBE properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// Subscription identifier, echoed in matching messages (1..=268,435,455).
    pub subscription_identifier: Option<u32>,
    /// User properties.
    pub user_properties: Vec<(String, String)>,
}

/// The CONNACK, owned: what the server granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckInfo {
    /// Session Present.
    pub session_present: bool,
    /// 5.0 Session Expiry Interval granted.
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum of the server.
    pub receive_maximum: Option<u16>,
    /// Maximum QoS of the server.
    pub maximum_qos: Option<u8>,
    /// Retain Available.
    pub retain_available: Option<u8>,
    /// Maximum Packet Size of the server.
    pub maximum_packet_size: Option<u32>,
    /// The client id the server assigned (when ours was empty).
    pub assigned_client_identifier: Option<String>,
    /// Topic Alias Maximum of the server.
    pub topic_alias_maximum: Option<u16>,
    /// Reason String.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: Vec<(String, String)>,
    /// Wildcard Subscription Available.
    pub wildcard_subscription_available: Option<u8>,
    /// Subscription Identifiers Available.
    pub subscription_identifiers_available: Option<u8>,
    /// Shared Subscription Available.
    pub shared_subscription_available: Option<u8>,
    /// Server Keep Alive (overrides ours).
    pub server_keep_alive: Option<u16>,
    /// Response Information.
    pub response_information: Option<String>,
    /// Server Reference.
    pub server_reference: Option<String>,
}

impl ConnAckInfo {
    pub(crate) fn from_wire(session_present: bool, p: &Properties<'_>) -> ConnAckInfo {
        ConnAckInfo {
            session_present,
            session_expiry_interval: p.session_expiry_interval,
            receive_maximum: p.receive_maximum,
            maximum_qos: p.maximum_qos,
            retain_available: p.retain_available,
            maximum_packet_size: p.maximum_packet_size,
            assigned_client_identifier: p.assigned_client_identifier.map(String::from),
            topic_alias_maximum: p.topic_alias_maximum,
            reason_string: p.reason_string.map(String::from),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (String::from(k), String::from(v)))
                .collect(),
            wildcard_subscription_available: p.wildcard_subscription_available,
            subscription_identifiers_available: p.subscription_identifiers_available,
            shared_subscription_available: p.shared_subscription_available,
            server_keep_alive: p.server_keep_alive,
            response_information: p.response_information.map(String::from),
            server_reference: p.server_reference.map(String::from),
        }
    }
}

/// What the event loop reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server accepted a connection (first or after a reconnect).
    Connected(ConnAckInfo),
    /// An incoming application message.
    Message(Message),
    /// The connection ended or a connection attempt failed.
    Disconnected {
        /// The reason of a server's 5.0 DISCONNECT, or the refusal code of
        /// CONNACK, when there was one.
        reason: Option<ReasonCode>,
        /// The server's Reason String, when there was one.
        reason_string: Option<String>,
        /// What went wrong locally (I/O error, timeout), when anything did.
        error: Option<String>,
    },
}

/// The last will, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// The will topic.
    pub topic: String,
    /// The will payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// 5.0 will properties.
    pub properties: PublishProperties,
    /// 5.0 Will Delay Interval.
    pub delay_interval: Option<u32>,
}

/// A byte stream the client can run over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A boxed stream.
pub type BoxStream = std::boxed::Box<dyn AsyncStream>;
/// The future a custom connector returns.
pub type ConnectFuture =
    Pin<std::boxed::Box<dyn Future<Output = std::io::Result<BoxStream>> + Send>>;

/// A custom connector: called with host and port for each attempt.
pub type Connector = Arc<dyn Fn(&str, u16) -> ConnectFuture + Send + Sync>;

/// How to reach the server.
#[derive(Clone)]
#[non_exhaustive]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP with this rustls configuration (feature `tls`). The
    /// server name checked is `server_name`, or the host when `None`.
    #[cfg(feature = "tls")]
    Tls {
        /// The rustls client configuration (roots, client certificate,
        /// verifier).
        config: Arc<rustls::ClientConfig>,
        /// Overrides the name checked against the certificate.
        server_name: Option<String>,
    },
    /// Any stream: called with host and port for each connection attempt.
    Custom(Connector),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tcp => f.write_str("Tcp"),
            #[cfg(feature = "tls")]
            Transport::Tls { server_name, .. } => f
                .debug_struct("Tls")
                .field("server_name", server_name)
                .finish_non_exhaustive(),
            Transport::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Reconnect back-off: `initial`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

/// Connection options of the async client.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// How to reach it.
    pub transport: Transport,
    /// The client id (empty: the server assigns one; needs clean start).
    pub client_id: String,
    /// Protocol version (default 3.1.1).
    pub protocol: Protocol,
    /// Keepalive in seconds (default 60; 0 off).
    pub keep_alive: u16,
    /// Clean Session (3.x) / Clean Start (5.0) on the first connection
    /// (default true). 3.x reconnects use the same value; 5.0 reconnects use
    /// `false`, so a session with a Session Expiry Interval can resume.
    pub clean_start: bool,
    /// 5.0 Session Expiry Interval.
    pub session_expiry_interval: Option<u32>,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// The will.
    pub will: Option<LastWill>,
    /// 5.0 CONNECT user properties.
    pub user_properties: Vec<(String, String)>,
    /// Largest packet accepted from the server (announced in 5.0).
    pub max_packet_size: u32,
    /// Capacity of the request queue (back-pressure on `publish`).
    pub request_capacity: usize,
    /// Capacity of the events channel.
    pub event_capacity: usize,
    /// Most QoS 1/2 messages awaiting acknowledgement (at most 128).
    pub max_inflight: u16,
    /// Reconnect policy; `None` ends the event loop on a lost connection.
    pub reconnect: Option<Reconnect>,
    /// Time allowed for TCP/TLS connect plus CONNACK.
    pub connect_timeout: Duration,
}

impl Options {
    /// Options for `client_id` at `host:port` with the defaults above.
    pub fn new(client_id: impl Into<String>, host: impl Into<String>, port: u16) -> Options {
        Options {
            host: host.into(),
            port,
            transport: Transport::Tcp,
            client_id: client_id.into(),
            protocol: Protocol::V3_1_1,
            keep_alive: 60,
            clean_start: true,
            session_expiry_interval: None,
            username: None,
            password: None,
            will: None,
            user_properties: Vec::new(),
            max_packet_size: 16 * 1024 * 1024,
            request_capacity: 64,
            event_capacity: 64,
            max_inflight: 64,
            reconnect: Some(Reconnect::default()),
            connect_timeout: Duration::from_secs(10),
        }
    }
}
