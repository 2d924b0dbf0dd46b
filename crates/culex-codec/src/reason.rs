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
        todo_codec()
    }

    /// Whether this code reports a failure (0x80 and above).
    pub const fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The 3.1/3.1.1 CONNACK return code nearest to this reason:
    /// 0 accepted, 1 unacceptable protocol version, 2 identifier rejected,
    /// 3 server unavailable, 4 bad user name or password, 5 not authorized.
    pub const fn to_v3_connack(self) -> u8 {
        todo_codec()
    }

    /// The reason for a 3.1/3.1.1 CONNACK return code, if it is one of 0..=5.
    pub const fn from_v3_connack(code: u8) -> Option<ReasonCode> {
        todo_codec()
    }
}

// Placeholder until the codec is implemented; removed with it.
#[allow(clippy::panic)]
pub(crate) const fn todo_codec<T: Copy>() -> T {
    panic!("culex-codec: not implemented yet")
}
