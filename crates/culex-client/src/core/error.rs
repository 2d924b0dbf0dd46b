//! Errors of the client core.

use culex_codec::{DecodeError, EncodeError, ReasonCode};

/// Why the core refused a call or gave up on the connection.
///
/// Peer faults ([`Error::Decode`], [`Error::Protocol`],
/// [`Error::KeepAliveTimeout`], [`Error::Refused`], [`Error::ServerDisconnect`])
/// end the connection; the others are answers to the caller's request and
/// leave the connection as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server sent bytes that are not a valid packet.
    Decode(DecodeError),
    /// A packet could not be encoded (usually: the lent buffer is too small).
    Encode(EncodeError),
    /// The server broke a protocol rule; the text cites it.
    Protocol(&'static str),
    /// No PINGRESP (or any packet) came back within the keepalive period.
    KeepAliveTimeout,
    /// The server refused the connection with this CONNACK reason.
    Refused(ReasonCode),
    /// The server closed the session with a 5.0 DISCONNECT of this reason.
    ServerDisconnect(ReasonCode),
    /// The call needs a connected session (CONNACK received).
    NotConnected,
    /// Every outgoing in-flight slot is taken, or the server's Receive
    /// Maximum is reached: wait for acknowledgements, then retry.
    InflightFull,
    /// Every packet id is in flight.
    NoPacketId,
    /// The acknowledgement queue is full: drain `poll_transmit` after each
    /// `handle_*` call.
    TransmitQueueFull,
    /// The topic name or filter is invalid.
    InvalidTopic,
    /// The server does not allow this QoS (5.0 CONNACK Maximum QoS).
    QoSNotSupported,
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::Decode(e)
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        Error::Encode(e)
    }
}

impl ::core::fmt::Display for Error {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        match self {
            Error::Decode(e) => write!(f, "{e}"),
            Error::Encode(e) => write!(f, "{e}"),
            Error::Protocol(rule) => write!(f, "protocol error from server: {rule}"),
            Error::KeepAliveTimeout => f.write_str("server did not answer within the keepalive"),
            Error::Refused(code) => write!(f, "connection refused: {code:?}"),
            Error::ServerDisconnect(code) => write!(f, "server disconnected: {code:?}"),
            Error::NotConnected => f.write_str("not connected"),
            Error::InflightFull => f.write_str("too many messages in flight"),
            Error::NoPacketId => f.write_str("no free packet id"),
            Error::TransmitQueueFull => f.write_str("transmit queue full"),
            Error::InvalidTopic => f.write_str("invalid topic"),
            Error::QoSNotSupported => f.write_str("QoS not supported by the server"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
