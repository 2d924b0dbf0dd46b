//! Errors of decoding and encoding.

use crate::ReasonCode;

/// Why bytes from a peer are not a valid packet. The `Display` text names
/// the rule broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet is larger than the receiver's maximum packet size.
    PacketTooLarge {
        /// Size of the whole packet, fixed header included.
        size: u64,
        /// The limit.
        max: u32,
    },
    /// The packet breaks a rule of the specification; the string cites it,
    /// e.g. `"[MQTT-3.3.2-2] topic name contains a wildcard"`.
    Malformed(&'static str),
    /// A well-formed packet that breaks a protocol rule (5.0's "Protocol Error").
    Protocol(&'static str),
    /// CONNECT with an unknown protocol name or level [MQTT-3.1.2-2].
    UnsupportedProtocol {
        /// The level byte found (0 when the name was not recognised).
        level: u8,
    },
}

impl DecodeError {
    /// The 5.0 reason code to send back for this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            DecodeError::Malformed(_) => ReasonCode::MalformedPacket,
            DecodeError::Protocol(_) => ReasonCode::ProtocolError,
            DecodeError::UnsupportedProtocol { .. } => ReasonCode::UnsupportedProtocolVersion,
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::PacketTooLarge { size, max } => {
                write!(
                    f,
                    "packet of {size} bytes exceeds the maximum packet size {max}"
                )
            }
            DecodeError::Malformed(rule) => write!(f, "malformed packet: {rule}"),
            DecodeError::Protocol(rule) => write!(f, "protocol error: {rule}"),
            DecodeError::UnsupportedProtocol { level } => {
                write!(
                    f,
                    "unsupported protocol name or level {level} [MQTT-3.1.2-2]"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Why a packet cannot be encoded. These are caller mistakes, not peer faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output has no room for the packet.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
    },
    /// The packet would exceed the 268,435,455-byte remaining-length limit.
    TooLarge,
    /// A string or binary field exceeds 65535 bytes.
    FieldTooLong,
    /// The packet cannot be expressed in this protocol version (for example
    /// AUTH in 3.1.1, or a property the packet does not allow); names which.
    NotAllowed(&'static str),
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            EncodeError::TooLarge => f.write_str("packet exceeds 268435455 bytes"),
            EncodeError::FieldTooLong => f.write_str("string or binary field exceeds 65535 bytes"),
            EncodeError::NotAllowed(what) => write!(f, "cannot encode: {what}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
