//! MQTT 5.0 properties ([MQTT 5.0, 2.2.2]).

use crate::encode::{put_bin, put_str, put_varint, Counter, Sink};
use crate::reader::Reader;
use crate::seq::{Seq, Wire};
use crate::topic::TopicName;
use crate::{DecodeError, EncodeError};

/// All 5.0 properties a packet may carry, each `None` (or empty) when absent.
///
/// One struct serves every packet. The decoder rejects a property that the
/// packet does not allow as a malformed packet, and one repeated where the
/// spec forbids it, or with a value out of range, as a protocol error
/// ([MQTT 5.0, 2.2.2.2] and each property's section). The encoder writes the
/// properties that are set and refuses (with [`crate::EncodeError`]) one the
/// packet does not allow or one with a value a receiver would reject.
///
/// Decoded user properties and subscription identifiers stay as validated
/// wire bytes ([`Seq::Wire`]); iterating them reads them again.
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
        // Field by field rather than `== default()`: this runs for every
        // packet encoded, and most carry no properties.
        let Properties {
            payload_format_indicator,
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data,
            subscription_identifiers,
            session_expiry_interval,
            assigned_client_identifier,
            server_keep_alive,
            authentication_method,
            authentication_data,
            request_problem_information,
            will_delay_interval,
            request_response_information,
            response_information,
            server_reference,
            reason_string,
            receive_maximum,
            topic_alias_maximum,
            topic_alias,
            maximum_qos,
            retain_available,
            user_properties,
            maximum_packet_size,
            wildcard_subscription_available,
            subscription_identifiers_available,
            shared_subscription_available,
        } = self;
        subscription_identifiers.is_empty()
            && user_properties.is_empty()
            && payload_format_indicator.is_none()
            && message_expiry_interval.is_none()
            && content_type.is_none()
            && response_topic.is_none()
            && correlation_data.is_none()
            && session_expiry_interval.is_none()
            && assigned_client_identifier.is_none()
            && server_keep_alive.is_none()
            && authentication_method.is_none()
            && authentication_data.is_none()
            && request_problem_information.is_none()
            && will_delay_interval.is_none()
            && request_response_information.is_none()
            && response_information.is_none()
            && server_reference.is_none()
            && reason_string.is_none()
            && receive_maximum.is_none()
            && topic_alias_maximum.is_none()
            && topic_alias.is_none()
            && maximum_qos.is_none()
            && retain_available.is_none()
            && maximum_packet_size.is_none()
            && wildcard_subscription_available.is_none()
            && subscription_identifiers_available.is_none()
            && shared_subscription_available.is_none()
    }
}

/// One property's value as it stands on the wire, typed by the kind the
/// specification gives its identifier ([MQTT 5.0, 2.2.2.2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// A one-byte integer.
    Byte(u8),
    /// A two-byte integer.
    U16(u16),
    /// A four-byte integer.
    U32(u32),
    /// A variable byte integer.
    VarInt(u32),
    /// A UTF-8 encoded string.
    Str(&'a str),
    /// Binary data.
    Bin(&'a [u8]),
    /// A UTF-8 string pair (user property).
    Pair(&'a str, &'a str),
}

/// Iterates the properties of a property section in wire order, as
/// `(identifier, value)`.
///
/// [`Properties`] keeps each value but not the order the properties came in;
/// this is for callers that must show that order (a tool printing a message
/// as mosquitto does). `section` starts at the property length, as in any 5.0
/// packet ([`publish_section`] finds it in a PUBLISH). Only the shape is
/// checked here: an unknown identifier, a value running past the section or
/// a malformed string yields one `Err` and ends the iteration. Whether a
/// property is allowed in its packet, or repeated, is [`crate::decode`]'s
/// business.
///
/// ```
/// use culex_codec::properties::{iter_raw, RawValue};
///
/// // Property length 11: content type "a", then user property k=v.
/// let section = [0x0B, 0x03, 0x00, 0x01, b'a', 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'];
/// let read: Vec<_> = iter_raw(&section).collect::<Result<_, _>>()?;
/// assert_eq!(read, [(0x03, RawValue::Str("a")), (0x26, RawValue::Pair("k", "v"))]);
/// # Ok::<(), culex_codec::DecodeError>(())
/// ```
pub fn iter_raw(section: &[u8]) -> RawProperties<'_> {
    let mut r = Reader::new(section);
    let block = r
        .varint()
        .and_then(|len| r.bytes(usize::try_from(len).unwrap_or(usize::MAX)));
    match block {
        Ok(block) => RawProperties {
            r: Reader::new(block),
            error: None,
        },
        Err(e) => RawProperties {
            r: Reader::new(&[]),
            error: Some(e),
        },
    }
}

/// The property section (from the property length on) of a 5.0 PUBLISH
/// frame, fixed header included; for [`iter_raw`].
pub fn publish_section(frame: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(frame);
    let first = r.u8()?;
    if first >> 4 != 3 {
        return Err(DecodeError::Malformed("not a PUBLISH"));
    }
    let remaining = r.varint()?;
    let mut body = Reader::new(r.bytes(usize::try_from(remaining).unwrap_or(usize::MAX))?);
    body.binary()?;
    if (first >> 1) & 0x03 != 0 {
        body.u16()?;
    }
    Ok(body.rest())
}

/// The iterator of [`iter_raw`].
#[derive(Debug, Clone)]
pub struct RawProperties<'a> {
    r: Reader<'a>,
    /// An error to yield before ending, from reading the property length.
    error: Option<DecodeError>,
}

impl<'a> RawProperties<'a> {
    fn read(&mut self) -> Result<(u8, RawValue<'a>), DecodeError> {
        const UNKNOWN: DecodeError =
            DecodeError::Malformed("[MQTT 5.0, 2.2.2.2] unknown property identifier");
        let id = self.r.varint()?;
        let (kind, _) = spec(id).ok_or(UNKNOWN)?;
        let r = &mut self.r;
        let value = match kind {
            Kind::Byte => RawValue::Byte(r.u8()?),
            Kind::U16 => RawValue::U16(r.u16()?),
            Kind::U32 => RawValue::U32(r.u32()?),
            Kind::VarInt => RawValue::VarInt(r.varint()?),
            Kind::Str => RawValue::Str(r.string()?),
            Kind::Bin => RawValue::Bin(r.binary()?),
            Kind::Pair => RawValue::Pair(r.string()?, r.string()?),
        };
        Ok((u8::try_from(id).map_err(|_| UNKNOWN)?, value))
    }
}

impl<'a> Iterator for RawProperties<'a> {
    type Item = Result<(u8, RawValue<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        if self.r.is_empty() {
            return None;
        }
        let item = self.read();
        if item.is_err() {
            self.r = Reader::new(&[]);
        }
        Some(item)
    }
}

/// The packets (and the will) that carry properties: each property is allowed
/// in a set of these ([MQTT 5.0, 2.2.2.2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Connect = 0,
    ConnAck = 1,
    Publish = 2,
    Will = 3,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP allow the same properties.
    PubResponse = 4,
    Subscribe = 5,
    SubAck = 6,
    Unsubscribe = 7,
    UnsubAck = 8,
    Disconnect = 9,
    Auth = 10,
}

impl Context {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// How a property's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Byte,
    U16,
    U32,
    VarInt,
    Str,
    Bin,
    Pair,
}

const CONNECT: u16 = Context::Connect.bit();
const CONNACK: u16 = Context::ConnAck.bit();
const PUBLISH: u16 = Context::Publish.bit();
const WILL: u16 = Context::Will.bit();
const PUBRESP: u16 = Context::PubResponse.bit();
const SUBSCRIBE: u16 = Context::Subscribe.bit();
const SUBACK: u16 = Context::SubAck.bit();
const UNSUBSCRIBE: u16 = Context::Unsubscribe.bit();
const UNSUBACK: u16 = Context::UnsubAck.bit();
const DISCONNECT: u16 = Context::Disconnect.bit();
const AUTH: u16 = Context::Auth.bit();

pub(crate) const USER_PROPERTY: u32 = 0x26;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u32 = 0x0B;

/// The value kind of property `id` and the packets that allow it, or `None`
/// for an identifier the specification does not define.
pub(crate) const fn spec(id: u32) -> Option<(Kind, u16)> {
    use Kind::*;
    Some(match id {
        0x01 => (Byte, PUBLISH | WILL),
        0x02 => (U32, PUBLISH | WILL),
        0x03 => (Str, PUBLISH | WILL),
        0x08 => (Str, PUBLISH | WILL),
        0x09 => (Bin, PUBLISH | WILL),
        0x0B => (VarInt, PUBLISH | SUBSCRIBE),
        0x11 => (U32, CONNECT | CONNACK | DISCONNECT),
        0x12 => (Str, CONNACK),
        0x13 => (U16, CONNACK),
        0x15 => (Str, CONNECT | CONNACK | AUTH),
        0x16 => (Bin, CONNECT | CONNACK | AUTH),
        0x17 => (Byte, CONNECT),
        0x18 => (U32, WILL),
        0x19 => (Byte, CONNECT),
        0x1A => (Str, CONNACK),
        0x1C => (Str, CONNACK | DISCONNECT),
        0x1F => (
            Str,
            CONNACK | PUBRESP | SUBACK | UNSUBACK | DISCONNECT | AUTH,
        ),
        0x21 => (U16, CONNECT | CONNACK),
        0x22 => (U16, CONNECT | CONNACK),
        0x23 => (U16, PUBLISH),
        0x24 => (Byte, CONNACK),
        0x25 => (Byte, CONNACK),
        0x26 => (
            Pair,
            CONNECT
                | CONNACK
                | PUBLISH
                | WILL
                | PUBRESP
                | SUBSCRIBE
                | SUBACK
                | UNSUBSCRIBE
                | UNSUBACK
                | DISCONNECT
                | AUTH,
        ),
        0x27 => (U32, CONNECT | CONNACK),
        0x28 => (Byte, CONNACK),
        0x29 => (Byte, CONNACK),
        0x2A => (Byte, CONNACK),
        _ => return None,
    })
}

/// Skips one property value of `kind`; used to re-read validated wire bytes.
pub(crate) fn skip_value(kind: Kind, r: &mut Reader<'_>) -> Option<()> {
    match kind {
        Kind::Byte => r.bytes(1).ok().map(drop),
        Kind::U16 => r.bytes(2).ok().map(drop),
        Kind::U32 => r.bytes(4).ok().map(drop),
        Kind::VarInt => r.varint().ok().map(drop),
        Kind::Str | Kind::Bin => r.binary().ok().map(drop),
        Kind::Pair => {
            r.binary().ok()?;
            r.binary().ok().map(drop)
        }
    }
}

/// Advances validated property bytes to just past the identifier of the next
/// property `wanted`, skipping others; `None` at the end.
pub(crate) fn seek(r: &mut Reader<'_>, wanted: u32) -> Option<()> {
    while !r.is_empty() {
        let id = r.varint().ok()?;
        if id == wanted {
            return Some(());
        }
        let (kind, _) = spec(id)?;
        skip_value(kind, r)?;
    }
    None
}

/// The span and count of a repeatable property inside a property block.
#[derive(Default)]
struct Span {
    start: usize,
    end: usize,
    count: usize,
}

impl Span {
    fn add(&mut self, start: usize, end: usize) {
        if self.count == 0 {
            self.start = start;
        }
        self.end = end;
        self.count += 1;
    }

    fn wire<'a, T>(&self, block: &'a [u8]) -> Seq<'a, T> {
        if self.count == 0 {
            return Seq::Items(&[]);
        }
        Seq::Wire(Wire {
            bytes: block.get(self.start..self.end).unwrap_or_default(),
            count: self.count,
        })
    }
}

fn protocol_error(rule: &'static str) -> DecodeError {
    DecodeError::Protocol(rule)
}

fn flag(r: &mut Reader<'_>, rule: &'static str) -> Result<u8, DecodeError> {
    let v = r.u8()?;
    if v > 1 {
        return Err(protocol_error(rule));
    }
    Ok(v)
}

fn non_zero_u16(r: &mut Reader<'_>, rule: &'static str) -> Result<u16, DecodeError> {
    let v = r.u16()?;
    if v == 0 {
        return Err(protocol_error(rule));
    }
    Ok(v)
}

/// Reads a property length and the properties after it, checking each is
/// allowed in `ctx`, not repeated unless the spec allows, and in range.
pub(crate) fn decode<'a>(r: &mut Reader<'a>, ctx: Context) -> Result<Properties<'a>, DecodeError> {
    let mut props = Properties::default();
    decode_into(r, ctx, &mut props)?;
    Ok(props)
}

/// As [`decode`], filling `props` (all absent on entry) in place; the hot
/// PUBLISH path uses it to avoid moving the large struct around.
pub(crate) fn decode_into<'a>(
    r: &mut Reader<'a>,
    ctx: Context,
    props: &mut Properties<'a>,
) -> Result<(), DecodeError> {
    let len = r.varint()?;
    let block = r.bytes(usize::try_from(len).unwrap_or(usize::MAX))?;
    if block.is_empty() {
        return Ok(());
    }
    let mut pr = Reader::new(block);
    let mut seen: u64 = 0;
    let mut users = Span::default();
    let mut sub_ids = Span::default();
    while !pr.is_empty() {
        let start = block.len() - pr.len();
        let id = pr.varint()?;
        let (_, allowed) = spec(id).ok_or(DecodeError::Malformed(
            "[MQTT 5.0, 2.2.2.2] unknown property identifier",
        ))?;
        if allowed & ctx.bit() == 0 {
            return Err(DecodeError::Malformed(
                "[MQTT 5.0, 2.2.2.2] property not allowed in this packet",
            ));
        }
        let repeatable =
            id == USER_PROPERTY || (id == SUBSCRIPTION_IDENTIFIER && ctx == Context::Publish);
        if !repeatable {
            let bit = 1u64 << id;
            if seen & bit != 0 {
                return Err(protocol_error(
                    "[MQTT 5.0, 2.2.2.2] property included more than once",
                ));
            }
            seen |= bit;
        }
        match id {
            0x01 => {
                props.payload_format_indicator = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.3.2.3.2] payload format indicator must be 0 or 1",
                )?)
            }
            0x02 => props.message_expiry_interval = Some(pr.u32()?),
            0x03 => props.content_type = Some(pr.string()?),
            0x08 => {
                let topic = pr.string()?;
                TopicName::new(topic).map_err(|_| {
                    protocol_error(
                        "[MQTT-3.3.2-14] response topic must be a topic name without wildcards",
                    )
                })?;
                props.response_topic = Some(topic);
            }
            0x09 => props.correlation_data = Some(pr.binary()?),
            0x0B => {
                if pr.varint()? == 0 {
                    return Err(protocol_error(
                        "[MQTT 5.0, 3.3.2.3.8] subscription identifier 0",
                    ));
                }
                sub_ids.add(start, block.len() - pr.len());
            }
            0x11 => props.session_expiry_interval = Some(pr.u32()?),
            0x12 => props.assigned_client_identifier = Some(pr.string()?),
            0x13 => props.server_keep_alive = Some(pr.u16()?),
            0x15 => props.authentication_method = Some(pr.string()?),
            0x16 => props.authentication_data = Some(pr.binary()?),
            0x17 => {
                props.request_problem_information = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.1.2.11.7] request problem information must be 0 or 1",
                )?)
            }
            0x18 => props.will_delay_interval = Some(pr.u32()?),
            0x19 => {
                props.request_response_information = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.1.2.11.6] request response information must be 0 or 1",
                )?)
            }
            0x1A => props.response_information = Some(pr.string()?),
            0x1C => props.server_reference = Some(pr.string()?),
            0x1F => props.reason_string = Some(pr.string()?),
            0x21 => {
                props.receive_maximum = Some(non_zero_u16(
                    &mut pr,
                    "[MQTT 5.0, 3.1.2.11.3] receive maximum 0",
                )?)
            }
            0x22 => props.topic_alias_maximum = Some(pr.u16()?),
            0x23 => {
                props.topic_alias = Some(non_zero_u16(&mut pr, "[MQTT-3.3.2-8] topic alias 0")?)
            }
            0x24 => {
                props.maximum_qos = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.2.2.3.4] maximum QoS must be 0 or 1",
                )?)
            }
            0x25 => {
                props.retain_available = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.2.2.3.5] retain available must be 0 or 1",
                )?)
            }
            0x26 => {
                pr.string()?;
                pr.string()?;
                users.add(start, block.len() - pr.len());
            }
            0x27 => {
                let v = pr.u32()?;
                if v == 0 {
                    return Err(protocol_error(
                        "[MQTT 5.0, 3.1.2.11.4] maximum packet size 0",
                    ));
                }
                props.maximum_packet_size = Some(v);
            }
            0x28 => {
                props.wildcard_subscription_available = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.2.2.3.11] wildcard subscription available must be 0 or 1",
                )?)
            }
            0x29 => {
                props.subscription_identifiers_available = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.2.2.3.12] subscription identifiers available must be 0 or 1",
                )?)
            }
            _ => {
                props.shared_subscription_available = Some(flag(
                    &mut pr,
                    "[MQTT 5.0, 3.2.2.3.13] shared subscription available must be 0 or 1",
                )?)
            }
        }
    }
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return Err(protocol_error(
            "[MQTT 5.0, 3.1.2.11.10] authentication data without authentication method",
        ));
    }
    props.user_properties = users.wire(block);
    props.subscription_identifiers = sub_ids.wire(block);
    Ok(())
}

/// Checks that a property may be written in `ctx`.
fn allow(id: u32, ctx: Context, what: &'static str) -> Result<(), EncodeError> {
    match spec(id) {
        Some((_, allowed)) if allowed & ctx.bit() != 0 => Ok(()),
        _ => Err(EncodeError::NotAllowed(what)),
    }
}

fn check_flag(v: u8, what: &'static str) -> Result<u8, EncodeError> {
    if v > 1 {
        return Err(EncodeError::NotAllowed(what));
    }
    Ok(v)
}

fn check_non_zero<T: Default + PartialEq + Copy>(
    v: T,
    what: &'static str,
) -> Result<T, EncodeError> {
    if v == T::default() {
        return Err(EncodeError::NotAllowed(what));
    }
    Ok(v)
}

/// Writes the property length and the properties set in `props`, refusing
/// any that `ctx` does not allow or whose value a receiver would reject.
pub(crate) fn encode<S: Sink>(
    props: &Properties<'_>,
    ctx: Context,
    s: &mut S,
) -> Result<(), EncodeError> {
    if props.is_empty() {
        s.put(&[0]);
        return Ok(());
    }
    let mut counter = Counter::default();
    encode_body(props, ctx, &mut counter)?;
    let len = u32::try_from(counter.0).map_err(|_| EncodeError::TooLarge)?;
    put_varint(s, len)?;
    encode_body(props, ctx, s)
}

/// Every property, in the order of their identifiers: the order they are
/// written in, but for CONNACK.
const WIRE_ORDER: [u8; 27] = [
    0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C,
    0x1F, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
];

/// CONNACK's properties in the order mosquitto 2.0 writes them, so that
/// byte-exact captures made against mosquitto match; the rest follow.
const CONNACK_ORDER: [u8; 27] = [
    0x22, 0x13, 0x12, 0x15, 0x16, 0x25, 0x27, 0x21, 0x24, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11,
    0x17, 0x18, 0x19, 0x1A, 0x1C, 0x1F, 0x23, 0x26, 0x28, 0x29, 0x2A,
];

fn encode_body<S: Sink>(p: &Properties<'_>, ctx: Context, s: &mut S) -> Result<(), EncodeError> {
    let order = if ctx == Context::ConnAck {
        &CONNACK_ORDER
    } else {
        &WIRE_ORDER
    };
    for &id in order {
        match id {
            0x01 => {
                if let Some(v) = p.payload_format_indicator {
                    allow(0x01, ctx, "payload format indicator in this packet")?;
                    s.put(&[
                        0x01,
                        check_flag(v, "payload format indicator other than 0 or 1")?,
                    ]);
                }
            }
            0x02 => {
                if let Some(v) = p.message_expiry_interval {
                    allow(0x02, ctx, "message expiry interval in this packet")?;
                    s.put(&[0x02]);
                    s.put(&v.to_be_bytes());
                }
            }
            0x03 => {
                if let Some(v) = p.content_type {
                    allow(0x03, ctx, "content type in this packet")?;
                    s.put(&[0x03]);
                    put_str(s, v)?;
                }
            }
            0x08 => {
                if let Some(v) = p.response_topic {
                    allow(0x08, ctx, "response topic in this packet")?;
                    TopicName::new(v).map_err(|_| {
                        EncodeError::NotAllowed("response topic that is not a topic name")
                    })?;
                    s.put(&[0x08]);
                    put_str(s, v)?;
                }
            }
            0x09 => {
                if let Some(v) = p.correlation_data {
                    allow(0x09, ctx, "correlation data in this packet")?;
                    s.put(&[0x09]);
                    put_bin(s, v)?;
                }
            }
            0x0B if !p.subscription_identifiers.is_empty() => {
                allow(0x0B, ctx, "subscription identifier in this packet")?;
                if ctx == Context::Subscribe && p.subscription_identifiers.len() > 1 {
                    return Err(EncodeError::NotAllowed(
                        "more than one subscription identifier in SUBSCRIBE",
                    ));
                }
                for id in p.subscription_identifiers.iter() {
                    if id == 0 {
                        return Err(EncodeError::NotAllowed("subscription identifier 0"));
                    }
                    s.put(&[0x0B]);
                    put_varint(s, id)?;
                }
            }
            0x11 => {
                if let Some(v) = p.session_expiry_interval {
                    allow(0x11, ctx, "session expiry interval in this packet")?;
                    s.put(&[0x11]);
                    s.put(&v.to_be_bytes());
                }
            }
            0x12 => {
                if let Some(v) = p.assigned_client_identifier {
                    allow(0x12, ctx, "assigned client identifier in this packet")?;
                    s.put(&[0x12]);
                    put_str(s, v)?;
                }
            }
            0x13 => {
                if let Some(v) = p.server_keep_alive {
                    allow(0x13, ctx, "server keep alive in this packet")?;
                    s.put(&[0x13]);
                    s.put(&v.to_be_bytes());
                }
            }
            0x15 => {
                if let Some(v) = p.authentication_method {
                    allow(0x15, ctx, "authentication method in this packet")?;
                    s.put(&[0x15]);
                    put_str(s, v)?;
                }
            }
            0x16 => {
                if let Some(v) = p.authentication_data {
                    allow(0x16, ctx, "authentication data in this packet")?;
                    if p.authentication_method.is_none() {
                        return Err(EncodeError::NotAllowed(
                            "authentication data without authentication method",
                        ));
                    }
                    s.put(&[0x16]);
                    put_bin(s, v)?;
                }
            }
            0x17 => {
                if let Some(v) = p.request_problem_information {
                    allow(0x17, ctx, "request problem information in this packet")?;
                    s.put(&[
                        0x17,
                        check_flag(v, "request problem information other than 0 or 1")?,
                    ]);
                }
            }
            0x18 => {
                if let Some(v) = p.will_delay_interval {
                    allow(0x18, ctx, "will delay interval in this packet")?;
                    s.put(&[0x18]);
                    s.put(&v.to_be_bytes());
                }
            }
            0x19 => {
                if let Some(v) = p.request_response_information {
                    allow(0x19, ctx, "request response information in this packet")?;
                    s.put(&[
                        0x19,
                        check_flag(v, "request response information other than 0 or 1")?,
                    ]);
                }
            }
            0x1A => {
                if let Some(v) = p.response_information {
                    allow(0x1A, ctx, "response information in this packet")?;
                    s.put(&[0x1A]);
                    put_str(s, v)?;
                }
            }
            0x1C => {
                if let Some(v) = p.server_reference {
                    allow(0x1C, ctx, "server reference in this packet")?;
                    s.put(&[0x1C]);
                    put_str(s, v)?;
                }
            }
            0x1F => {
                if let Some(v) = p.reason_string {
                    allow(0x1F, ctx, "reason string in this packet")?;
                    s.put(&[0x1F]);
                    put_str(s, v)?;
                }
            }
            0x21 => {
                if let Some(v) = p.receive_maximum {
                    allow(0x21, ctx, "receive maximum in this packet")?;
                    s.put(&[0x21]);
                    s.put(&check_non_zero(v, "receive maximum 0")?.to_be_bytes());
                }
            }
            0x22 => {
                if let Some(v) = p.topic_alias_maximum {
                    allow(0x22, ctx, "topic alias maximum in this packet")?;
                    s.put(&[0x22]);
                    s.put(&v.to_be_bytes());
                }
            }
            0x23 => {
                if let Some(v) = p.topic_alias {
                    allow(0x23, ctx, "topic alias in this packet")?;
                    s.put(&[0x23]);
                    s.put(&check_non_zero(v, "topic alias 0")?.to_be_bytes());
                }
            }
            0x24 => {
                if let Some(v) = p.maximum_qos {
                    allow(0x24, ctx, "maximum QoS in this packet")?;
                    s.put(&[0x24, check_flag(v, "maximum QoS other than 0 or 1")?]);
                }
            }
            0x25 => {
                if let Some(v) = p.retain_available {
                    allow(0x25, ctx, "retain available in this packet")?;
                    s.put(&[0x25, check_flag(v, "retain available other than 0 or 1")?]);
                }
            }
            0x26 => {
                for (key, value) in p.user_properties.iter() {
                    allow(0x26, ctx, "user property in this packet")?;
                    s.put(&[0x26]);
                    put_str(s, key)?;
                    put_str(s, value)?;
                }
            }
            0x27 => {
                if let Some(v) = p.maximum_packet_size {
                    allow(0x27, ctx, "maximum packet size in this packet")?;
                    s.put(&[0x27]);
                    s.put(&check_non_zero(v, "maximum packet size 0")?.to_be_bytes());
                }
            }
            0x28 => {
                if let Some(v) = p.wildcard_subscription_available {
                    allow(0x28, ctx, "wildcard subscription available in this packet")?;
                    s.put(&[
                        0x28,
                        check_flag(v, "wildcard subscription available other than 0 or 1")?,
                    ]);
                }
            }
            0x29 => {
                if let Some(v) = p.subscription_identifiers_available {
                    allow(
                        0x29,
                        ctx,
                        "subscription identifiers available in this packet",
                    )?;
                    s.put(&[
                        0x29,
                        check_flag(v, "subscription identifiers available other than 0 or 1")?,
                    ]);
                }
            }
            0x2A => {
                if let Some(v) = p.shared_subscription_available {
                    allow(0x2A, ctx, "shared subscription available in this packet")?;
                    s.put(&[
                        0x2A,
                        check_flag(v, "shared subscription available other than 0 or 1")?,
                    ]);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
