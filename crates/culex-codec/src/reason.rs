//! Reason codes: MQTT 5.0's, which 3.x return codes map onto.

/// An MQTT 5.0 reason code ([MQTT 5.0, 2.4]).
///
/// The codec speaks these for every version: encoding a 3.1.1 CONNACK maps
/// the reason onto the nearest 3.1.1 return code (see
/// [`ReasonCode::to_v3_connack`]), and decoding maps back, so callers handle
/// one set of codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum ReasonCode {
    /// Success, normal disconnection or granted QoS 0 (0x00).
    Success = 0x00,
    GrantedQoS1 = 0x01,
    GrantedQoS2 = 0x02,
    DisconnectWithWillMessage = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QoSNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// The code for a byte, if it is a defined reason code.
    pub const fn from_u8(byte: u8) -> Option<ReasonCode> {
        use ReasonCode as R;
        Some(match byte {
            0x00 => R::Success,
            0x01 => R::GrantedQoS1,
            0x02 => R::GrantedQoS2,
            0x04 => R::DisconnectWithWillMessage,
            0x10 => R::NoMatchingSubscribers,
            0x11 => R::NoSubscriptionExisted,
            0x18 => R::ContinueAuthentication,
            0x19 => R::ReAuthenticate,
            0x80 => R::UnspecifiedError,
            0x81 => R::MalformedPacket,
            0x82 => R::ProtocolError,
            0x83 => R::ImplementationSpecificError,
            0x84 => R::UnsupportedProtocolVersion,
            0x85 => R::ClientIdentifierNotValid,
            0x86 => R::BadUserNameOrPassword,
            0x87 => R::NotAuthorized,
            0x88 => R::ServerUnavailable,
            0x89 => R::ServerBusy,
            0x8A => R::Banned,
            0x8B => R::ServerShuttingDown,
            0x8C => R::BadAuthenticationMethod,
            0x8D => R::KeepAliveTimeout,
            0x8E => R::SessionTakenOver,
            0x8F => R::TopicFilterInvalid,
            0x90 => R::TopicNameInvalid,
            0x91 => R::PacketIdentifierInUse,
            0x92 => R::PacketIdentifierNotFound,
            0x93 => R::ReceiveMaximumExceeded,
            0x94 => R::TopicAliasInvalid,
            0x95 => R::PacketTooLarge,
            0x96 => R::MessageRateTooHigh,
            0x97 => R::QuotaExceeded,
            0x98 => R::AdministrativeAction,
            0x99 => R::PayloadFormatInvalid,
            0x9A => R::RetainNotSupported,
            0x9B => R::QoSNotSupported,
            0x9C => R::UseAnotherServer,
            0x9D => R::ServerMoved,
            0x9E => R::SharedSubscriptionsNotSupported,
            0x9F => R::ConnectionRateExceeded,
            0xA0 => R::MaximumConnectTime,
            0xA1 => R::SubscriptionIdentifiersNotSupported,
            0xA2 => R::WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }

    /// Whether this code reports a failure (0x80 and above).
    pub const fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The 3.1/3.1.1 CONNACK return code nearest to this reason:
    /// 0 accepted, 1 unacceptable protocol version, 2 identifier rejected,
    /// 3 server unavailable, 4 bad user name or password, 5 not authorized.
    ///
    /// Refusals about who the client is (`NotAuthorized`, `Banned`,
    /// `BadAuthenticationMethod`) become 5; every other refusal (busy,
    /// shutting down, use another server, quota, rate, malformed or protocol
    /// errors, ...) becomes 3, the only general-purpose code 3.x has. A code
    /// that is not a refusal at all (other than `Success`) also becomes 3.
    pub const fn to_v3_connack(self) -> u8 {
        use ReasonCode as R;
        match self {
            R::Success => 0,
            R::UnsupportedProtocolVersion => 1,
            R::ClientIdentifierNotValid => 2,
            R::BadUserNameOrPassword => 4,
            R::NotAuthorized | R::Banned | R::BadAuthenticationMethod => 5,
            _ => 3,
        }
    }

    /// The reason for a 3.1/3.1.1 CONNACK return code, if it is one of 0..=5.
    pub const fn from_v3_connack(code: u8) -> Option<ReasonCode> {
        use ReasonCode as R;
        Some(match code {
            0 => R::Success,
            1 => R::UnsupportedProtocolVersion,
            2 => R::ClientIdentifierNotValid,
            3 => R::ServerUnavailable,
            4 => R::BadUserNameOrPassword,
            5 => R::NotAuthorized,
            _ => return None,
        })
    }

    /// Whether a 5.0 CONNACK may carry this code ([MQTT 5.0, 3.2.2.2]).
    pub const fn valid_for_connack(self) -> bool {
        matches!(self as u8, 0x00 | 0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F)
    }

    /// Whether a 5.0 PUBACK or PUBREC may carry this code ([MQTT 5.0, 3.4.2.1]).
    pub const fn valid_for_puback(self) -> bool {
        matches!(
            self as u8,
            0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
        )
    }

    /// Whether a 5.0 PUBREL or PUBCOMP may carry this code ([MQTT 5.0, 3.6.2.1]).
    pub const fn valid_for_pubrel(self) -> bool {
        matches!(self as u8, 0x00 | 0x92)
    }

    /// Whether a 5.0 SUBACK may carry this code ([MQTT 5.0, 3.9.3]).
    pub const fn valid_for_suback(self) -> bool {
        matches!(
            self as u8,
            0x00..=0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
        )
    }

    /// Whether a 5.0 UNSUBACK may carry this code ([MQTT 5.0, 3.11.3]).
    pub const fn valid_for_unsuback(self) -> bool {
        matches!(self as u8, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91)
    }

    /// Whether a 5.0 DISCONNECT may carry this code ([MQTT 5.0, 3.14.2.1]).
    pub const fn valid_for_disconnect(self) -> bool {
        matches!(
            self as u8,
            0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2
        )
    }

    /// Whether an AUTH may carry this code ([MQTT 5.0, 3.15.2.1]).
    pub const fn valid_for_auth(self) -> bool {
        matches!(self as u8, 0x00 | 0x18 | 0x19)
    }
}

#[cfg(test)]
mod tests {
    use super::ReasonCode;

    #[test]
    fn from_u8_round_trips_every_defined_code() {
        let mut defined = 0;
        for byte in 0..=255u8 {
            if let Some(code) = ReasonCode::from_u8(byte) {
                assert_eq!(code as u8, byte);
                defined += 1;
            }
        }
        assert_eq!(defined, 43);
    }

    #[test]
    fn v3_connack_codes_round_trip() {
        for code in 0..=5u8 {
            let reason = ReasonCode::from_v3_connack(code).unwrap();
            assert_eq!(reason.to_v3_connack(), code);
        }
        assert_eq!(ReasonCode::from_v3_connack(6), None);
        assert_eq!(ReasonCode::Banned.to_v3_connack(), 5);
        assert_eq!(ReasonCode::ServerBusy.to_v3_connack(), 3);
        assert_eq!(ReasonCode::ServerShuttingDown.to_v3_connack(), 3);
        assert_eq!(ReasonCode::BadAuthenticationMethod.to_v3_connack(), 5);
    }
}
