//! Why a connection ends: what the client did against the protocol
//! ([`Violation`], each naming the rule), and every other way ([`Close`]).

use culex_codec::{DecodeError, ReasonCode};

/// A client broke a rule of the protocol. `Display` cites the rule; the
/// reason code goes to a 5.0 client in DISCONNECT (or CONNACK).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A packet the codec refused (its message names the rule).
    #[error("{0}")]
    Decode(DecodeError),
    /// The first packet was not CONNECT.
    #[error("[MQTT-3.1.0-1] the first packet must be CONNECT")]
    FirstPacketNotConnect,
    /// A second CONNECT on the connection.
    #[error("[MQTT-3.1.0-2] a second CONNECT is a protocol violation")]
    SecondConnect,
    /// AUTH without an authentication method in CONNECT.
    #[error("[MQTT-4.12.0-6] AUTH without an authentication method in CONNECT")]
    AuthWithoutMethod,
    /// A packet only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP).
    #[error("[MQTT 5.0, 2.1.2] a server-to-client packet from a client")]
    ServerPacket,
    /// Topic Alias 0, or above our Topic Alias Maximum, or in 3.x.
    #[error("[MQTT-3.3.2-8] [MQTT-3.3.2-12] topic alias 0 or above the maximum")]
    TopicAliasInvalid,
    /// An empty topic with an alias not set before.
    #[error("[MQTT 5.0, 3.3.2.3.4] topic alias never set on this connection")]
    UnknownTopicAlias,
    /// An empty topic without a topic alias.
    #[error("[MQTT-3.3.2-1] an empty topic name without a topic alias")]
    EmptyTopic,
    /// A topic name with more levels than `max_topic_levels`.
    #[error("topic name has more than {0} levels (max_topic_levels)")]
    TopicTooDeep(usize),
    /// A will topic with more levels than `max_topic_levels`.
    #[error("will topic has more than {0} levels (max_topic_levels)")]
    WillTopicTooDeep(usize),
    /// A PUBLISH above the Maximum QoS we announced.
    #[error("[MQTT-3.2.2-11] QoS above the server's maximum QoS")]
    QoSNotSupported,
    /// A retained PUBLISH when we announced Retain Available 0.
    #[error("[MQTT-3.2.2-14] retain is not available")]
    RetainNotSupported,
    /// More unacknowledged QoS 2 PUBLISHes than our Receive Maximum.
    #[error("[MQTT-3.3.4-7] receive maximum exceeded")]
    ReceiveMaximumExceeded,
    /// No Local on a shared subscription.
    #[error("[MQTT-3.8.3-4] no local on a shared subscription")]
    NoLocalOnShared,
    /// A non-zero Session Expiry on DISCONNECT after 0 on CONNECT.
    #[error("[MQTT-3.14.2-2] session expiry set on DISCONNECT after 0 on CONNECT")]
    SessionExpiryOnDisconnect,
}

impl Violation {
    /// The reason code a 5.0 client is told.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Violation::Decode(e) => e.reason_code(),
            Violation::TopicAliasInvalid => ReasonCode::TopicAliasInvalid,
            Violation::TopicTooDeep(_) | Violation::WillTopicTooDeep(_) => {
                ReasonCode::TopicNameInvalid
            }
            Violation::QoSNotSupported => ReasonCode::QoSNotSupported,
            Violation::RetainNotSupported => ReasonCode::RetainNotSupported,
            Violation::ReceiveMaximumExceeded => ReasonCode::ReceiveMaximumExceeded,
            _ => ReasonCode::ProtocolError,
        }
    }

    /// Whether mosquitto would call it a malformed packet (for its log line).
    pub fn is_malformed(&self) -> bool {
        self.reason_code() == ReasonCode::MalformedPacket
    }
}

impl From<DecodeError> for Violation {
    fn from(e: DecodeError) -> Violation {
        Violation::Decode(e)
    }
}

/// Why a connection ends.
#[derive(Debug)]
pub enum Close {
    /// The client sent DISCONNECT; `will` for 5.0's 0x04.
    Disconnect {
        /// Whether the will is still published.
        will: bool,
    },
    /// The client closed the connection.
    Closed,
    /// The transport failed.
    Io(std::io::Error),
    /// No packet within 1.5 × keep alive [MQTT-3.1.2-24], or a packet that
    /// took too long to arrive.
    Timeout,
    /// A malformed packet or protocol error.
    Violation(Violation),
    /// The CONNECT was refused; the CONNACK says why.
    Refused,
    /// Another connection took the session over [MQTT-3.1.4-2].
    Kicked,
    /// The broker is shutting down.
    Shutdown,
    /// The store could not make an acknowledged change durable: the client
    /// is disconnected unacknowledged and sends again.
    StoreFailed,
}

impl Close {
    /// Whether the client's will is published (abnormal disconnection
    /// [MQTT-3.1.2-8]; never after a normal DISCONNECT [MQTT-3.1.2-10]).
    pub fn sends_will(&self) -> bool {
        match self {
            Close::Disconnect { will } => *will,
            _ => true,
        }
    }

    /// The reason a 5.0 client is told in DISCONNECT, if any.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            Close::Timeout => Some(ReasonCode::KeepAliveTimeout),
            Close::Violation(v) => Some(v.reason_code()),
            Close::Kicked => Some(ReasonCode::SessionTakenOver),
            // mosquitto 2.0 publishes the will of every client still
            // connected when it shuts down.
            Close::Shutdown => Some(ReasonCode::ServerShuttingDown),
            Close::StoreFailed => Some(ReasonCode::UnspecifiedError),
            _ => None,
        }
    }

    /// Why the connection ended, in a few words (the live log's
    /// disconnect lines).
    pub fn describe(&self) -> &'static str {
        match self {
            Close::Disconnect { .. } => "disconnected",
            Close::Closed => "closed its connection",
            Close::Io(_) => "socket error",
            Close::Timeout => "exceeded timeout",
            Close::Violation(v) if v.is_malformed() => "malformed packet",
            Close::Violation(_) => "protocol error",
            Close::Refused => "refused",
            Close::Kicked => "taken over",
            Close::Shutdown => "broker shutting down",
            Close::StoreFailed => "persistence failed",
        }
    }

    /// Whether the client may still be writing when the broker ends the
    /// connection: the runtime then reads and drops what it sends for a
    /// while, so that it reads our DISCONNECT rather than a reset.
    pub fn lingers(&self) -> bool {
        matches!(
            self,
            Close::Violation(_) | Close::Kicked | Close::Shutdown | Close::StoreFailed
        )
    }
}

impl From<Violation> for Close {
    fn from(v: Violation) -> Close {
        Close::Violation(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every violation names the rule it enforces, or the limit it hits.
    #[test]
    fn violations_cite_their_rule() {
        let all = [
            Violation::FirstPacketNotConnect,
            Violation::SecondConnect,
            Violation::AuthWithoutMethod,
            Violation::ServerPacket,
            Violation::TopicAliasInvalid,
            Violation::UnknownTopicAlias,
            Violation::EmptyTopic,
            Violation::QoSNotSupported,
            Violation::RetainNotSupported,
            Violation::ReceiveMaximumExceeded,
            Violation::NoLocalOnShared,
            Violation::SessionExpiryOnDisconnect,
        ];
        for v in all {
            let text = v.to_string();
            assert!(text.starts_with("[MQTT"), "{text}");
        }
        assert!(Violation::TopicTooDeep(200)
            .to_string()
            .contains("max_topic_levels"));
    }
}
