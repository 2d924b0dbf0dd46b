//! MQTT 5.0 properties ([MQTT 5.0, 2.2.2]).

use crate::seq::Seq;

/// All 5.0 properties a packet may carry, each `None` (or empty) when absent.
///
/// One struct serves every packet; the decoder rejects a property that the
/// packet does not allow, or one repeated where the spec forbids it, as a
/// malformed packet [MQTT-2.2.2-1]. The encoder writes the properties that are
/// set and refuses (with [`crate::EncodeError`]) one the packet does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Properties<'a> {
    /// 0x01, PUBLISH and will: 0 unspecified bytes, 1 UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// 0x02, PUBLISH and will: seconds until the message expires.
    pub message_expiry_interval: Option<u32>,
    /// 0x03, PUBLISH and will.
    pub content_type: Option<&'a str>,
    /// 0x08, PUBLISH and will: a topic name.
    pub response_topic: Option<&'a str>,
    /// 0x09, PUBLISH and will.
    pub correlation_data: Option<&'a [u8]>,
    /// 0x0B: one in SUBSCRIBE, any number in PUBLISH (server to client);
    /// 1..=268,435,455.
    pub subscription_identifiers: Seq<'a, u32>,
    /// 0x11, CONNECT, CONNACK, DISCONNECT.
    pub session_expiry_interval: Option<u32>,
    /// 0x12, CONNACK.
    pub assigned_client_identifier: Option<&'a str>,
    /// 0x13, CONNACK.
    pub server_keep_alive: Option<u16>,
    /// 0x15, CONNECT, CONNACK, AUTH.
    pub authentication_method: Option<&'a str>,
    /// 0x16, CONNECT, CONNACK, AUTH.
    pub authentication_data: Option<&'a [u8]>,
    /// 0x17, CONNECT: 0 or 1.
    pub request_problem_information: Option<u8>,
    /// 0x18, will: seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19, CONNECT: 0 or 1.
    pub request_response_information: Option<u8>,
    /// 0x1A, CONNACK.
    pub response_information: Option<&'a str>,
    /// 0x1C, CONNACK, DISCONNECT.
    pub server_reference: Option<&'a str>,
    /// 0x1F, every acknowledgement, DISCONNECT and AUTH.
    pub reason_string: Option<&'a str>,
    /// 0x21, CONNECT, CONNACK: non-zero.
    pub receive_maximum: Option<u16>,
    /// 0x22, CONNECT, CONNACK.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23, PUBLISH: non-zero.
    pub topic_alias: Option<u16>,
    /// 0x24, CONNACK: 0 or 1.
    pub maximum_qos: Option<u8>,
    /// 0x25, CONNACK: 0 or 1.
    pub retain_available: Option<u8>,
    /// 0x26, every packet with properties; order is kept, repeats allowed.
    pub user_properties: Seq<'a, (&'a str, &'a str)>,
    /// 0x27, CONNECT, CONNACK: non-zero.
    pub maximum_packet_size: Option<u32>,
    /// 0x28, CONNACK: 0 or 1.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29, CONNACK: 0 or 1.
    pub subscription_identifiers_available: Option<u8>,
    /// 0x2A, CONNACK: 0 or 1.
    pub shared_subscription_available: Option<u8>,
}

impl Properties<'_> {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}
