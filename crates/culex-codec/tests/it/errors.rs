//! Every decode and encode error, each reached by bytes or a packet that
//! breaks the rule it cites.

use culex_codec::packet::{
    Auth, ConnAck, Connect, PubResponse, Publish, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    check_frame, decode, decode_packet, DecodeError, EncodeError, Packet, PacketId, Properties,
    Protocol, QoS, ReasonCode, Seq, SliceOutput, SubscriptionOptions,
};

use super::rejects;

const V311: Protocol = Protocol::V3_1_1;
const V5: Protocol = Protocol::V5;

/// Decoding fails as malformed, citing `rule`.
fn malformed(protocol: Protocol, bytes: &[u8], rule: &str) {
    match decode(bytes, protocol, u32::MAX) {
        Err(DecodeError::Malformed(m)) if m.contains(rule) => {}
        other => panic!("{protocol:?} {bytes:02X?}: expected malformed {rule}, got {other:?}"),
    }
}

/// Decoding fails as a protocol error, citing `rule`.
fn protocol_error(protocol: Protocol, bytes: &[u8], rule: &str) {
    match decode(bytes, protocol, u32::MAX) {
        Err(DecodeError::Protocol(m)) if m.contains(rule) => {}
        other => panic!("{protocol:?} {bytes:02X?}: expected protocol error {rule}, got {other:?}"),
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

// ---- fixed header and framing ----

#[test]
fn packet_too_large_is_refused_before_the_body_arrives() {
    // PUBLISH announcing 1000 bytes; only the fixed header is buffered.
    let header = [0x30, 0xE8, 0x07];
    assert_eq!(
        check_frame(&header, 100),
        Err(DecodeError::PacketTooLarge {
            size: 1003,
            max: 100
        })
    );
    assert_eq!(check_frame(&header, 1003), Ok(None));
    let err = check_frame(&header, 100).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
}

#[test]
fn variable_byte_integer_rules() {
    // [MQTT-1.5.5-1]: at most four bytes, in the shortest form.
    malformed(
        V311,
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        "[MQTT-1.5.5-1]",
    );
    malformed(V311, &[0xC0, 0x80, 0x00], "[MQTT-1.5.5-1]");
    assert_eq!(check_frame(&[0x30, 0xFF, 0xFF, 0xFF], u32::MAX), Ok(None));
}

#[test]
fn reserved_packet_types() {
    malformed(
        V311,
        &[0x00, 0x00],
        "[MQTT 3.1.1, 2.2.1] [MQTT 5.0, 2.1.2] packet type 0 is reserved",
    );
    // AUTH does not exist before 5.0.
    malformed(
        V311,
        &[0xF0, 0x00],
        "[MQTT 3.1.1, 2.2.1] packet type 15 is reserved before MQTT 5.0",
    );
    malformed(
        Protocol::V3_1,
        &[0xF0, 0x00],
        "[MQTT 3.1.1, 2.2.1] packet type 15 is reserved before MQTT 5.0",
    );
}

#[test]
fn bytes_after_the_fields_are_malformed() {
    malformed(
        V311,
        &[0xC0, 0x01, 0x00],
        "[MQTT 3.1.1, 2.2.3] bytes left over after the packet's fields",
    );
    // A 3.x DISCONNECT has remaining length 0.
    malformed(
        V311,
        &[0xE0, 0x01, 0x00],
        "[MQTT 3.1.1, 2.2.3] bytes left over after the packet's fields",
    );
    // A 3.x PUBACK has remaining length 2.
    malformed(
        V311,
        &[0x40, 0x03, 0x00, 0x01, 0x00],
        "[MQTT 3.1.1, 2.2.3] bytes left over after the packet's fields",
    );
    malformed(
        V311,
        &[0xB0, 0x03, 0x00, 0x01, 0x00],
        "[MQTT 3.1.1, 2.2.3] bytes left over after the packet's fields",
    );
}

#[test]
fn fields_past_the_end_are_malformed() {
    malformed(
        V311,
        &[0x40, 0x01, 0x00],
        "[MQTT-2.1.4] field runs past the end of the remaining length",
    );
    // Property length larger than what is left.
    malformed(
        V5,
        &[0x30, 0x05, 0x00, 0x01, b't', 0x09, 0x01],
        "[MQTT-2.1.4] field runs past the end of the remaining length",
    );
}

#[test]
fn decode_packet_needs_an_exact_frame() {
    assert!(matches!(
        decode_packet(&[0xC0, 0x00, 0x00], V311),
        Err(DecodeError::Malformed(m)) if m.contains("frame length")
    ));
}

#[test]
fn reserved_fixed_header_flags() {
    malformed(V311, &[0x60, 0x02, 0x00, 0x01], "[MQTT-3.6.1-1]");
    malformed(
        V311,
        &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
        "[MQTT-3.8.1-1]",
    );
    malformed(
        V311,
        &[0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'],
        "[MQTT-3.10.1-1]",
    );
    malformed(V311, &[0xC1, 0x00], "[MQTT-2.2.2-1]");
    malformed(V5, &[0x42, 0x02, 0x00, 0x01], "[MQTT-2.2.2-1]");
    malformed(V5, &[0x11, 0x00], "[MQTT-2.2.2-1]");
}

// ---- CONNECT ----

/// A 3.1.1 CONNECT with `flags` and client id "a", followed by `extra`.
fn connect(level: u8, flags: u8, extra: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', level, flags, 0x00, 0x3C];
    if level == 5 {
        body.push(0x00);
    }
    body.extend_from_slice(&[0x00, 0x01, b'a']);
    body.extend_from_slice(extra);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

#[test]
fn unsupported_protocol() {
    // [MQTT-3.1.2-2]
    rejects(
        V311,
        &connect(6, 0x02, &[]),
        DecodeError::UnsupportedProtocol { level: 6 },
    );
    let mqisdp4 = [
        0x10, 0x0F, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x04, 0x02, 0x00, 0x3C, 0x00,
        0x01, b'a',
    ];
    rejects(
        V311,
        &mqisdp4,
        DecodeError::UnsupportedProtocol { level: 4 },
    );
    let http = [
        0x10, 0x0D, 0x00, 0x04, b'H', b'T', b'T', b'P', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'a',
    ];
    let err = decode(&http, V311, 1024).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedProtocol { level: 0 });
    assert_eq!(err.reason_code(), ReasonCode::UnsupportedProtocolVersion);
    assert!(err.to_string().contains("[MQTT-3.1.2-2]"));
}

#[test]
fn connect_flag_rules() {
    malformed(V311, &connect(4, 0x03, &[]), "[MQTT-3.1.2-3]");
    // Will flag with QoS 3 (will topic and payload follow).
    let will = [0x00, 0x01, b'w', 0x00, 0x00];
    malformed(V311, &connect(4, 0x1E, &will), "[MQTT-3.1.2-14]");
    malformed(V311, &connect(4, 0x0A, &[]), "[MQTT-3.1.2-13]");
    malformed(V311, &connect(4, 0x22, &[]), "[MQTT-3.1.2-15]");
    malformed(
        V311,
        &connect(4, 0x42, &[0x00, 0x01, b'p']),
        "[MQTT-3.1.2-22]",
    );
    // 5.0 allows a password without a user name.
    assert!(decode(&connect(5, 0x42, &[0x00, 0x01, b'p']), V5, 1024).is_ok());
}

#[test]
fn strings_must_be_well_formed_utf8_without_nul() {
    let mut bad_utf8 = connect(4, 0x02, &[]);
    *bad_utf8.last_mut().unwrap() = 0xFF;
    malformed(V311, &bad_utf8, "[MQTT-1.5.3-1]");
    // A UTF-16 surrogate encoded in UTF-8 (ED A0 80) is ill-formed too.
    let surrogate = [0x30, 0x06, 0x00, 0x03, 0xED, 0xA0, 0x80, b'x'];
    malformed(V311, &surrogate, "[MQTT-1.5.3-1]");
    let mut nul = connect(4, 0x02, &[]);
    *nul.last_mut().unwrap() = 0x00;
    malformed(V311, &nul, "[MQTT-1.5.3-2]");
}

#[test]
fn will_topic_must_be_a_topic_name() {
    let will = [0x00, 0x01, b'#', 0x00, 0x00];
    malformed(V311, &connect(4, 0x06, &will), "[MQTT-3.3.2-2]");
    let empty = [0x00, 0x00, 0x00, 0x00];
    malformed(V311, &connect(4, 0x06, &empty), "[MQTT-4.7.3-1]");
}

// ---- CONNACK ----

#[test]
fn connack_rules() {
    malformed(
        V311,
        &[0x20, 0x02, 0x02, 0x00],
        "[MQTT 3.1.1, 3.2.2.1] [MQTT 5.0, 3.2.2.1] reserved CONNACK flags must be 0",
    );
    malformed(
        V311,
        &[0x20, 0x02, 0x00, 0x06],
        "[MQTT 3.1.1, 3.2.2.3] [MQTT 5.0, 3.2.2.2] invalid CONNACK return code",
    );
    malformed(
        V5,
        &[0x20, 0x03, 0x00, 0x04, 0x00],
        "[MQTT 3.1.1, 3.2.2.3] [MQTT 5.0, 3.2.2.2] invalid CONNACK return code",
    );
    protocol_error(V311, &[0x20, 0x02, 0x01, 0x05], "[MQTT-3.2.2-4]");
    protocol_error(V5, &[0x20, 0x03, 0x01, 0x87, 0x00], "[MQTT-3.2.2-6]");
}

// ---- PUBLISH ----

#[test]
fn publish_rules() {
    malformed(
        V311,
        &[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01],
        "[MQTT-3.3.1-4]",
    );
    malformed(V311, &[0x38, 0x03, 0x00, 0x01, b't'], "[MQTT-3.3.1-2]");
    malformed(
        V311,
        &[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'],
        "[MQTT-3.3.2-2]",
    );
    malformed(V5, &[0x30, 0x04, 0x00, 0x01, b'#', 0x00], "[MQTT-3.3.2-2]");
    malformed(
        V311,
        &[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00],
        "[MQTT-2.3.1-1]",
    );
    // A QoS 1 PUBLISH without room for its packet id.
    malformed(
        V311,
        &[0x32, 0x03, 0x00, 0x01, b't'],
        "[MQTT-2.1.4] field runs past the end of the remaining length",
    );
    malformed(V311, &[0x30, 0x03, 0x00, 0x00, b'x'], "[MQTT-4.7.3-1]");
    protocol_error(
        V5,
        &[0x30, 0x04, 0x00, 0x00, 0x00, b'x'],
        "[MQTT 5.0, 3.3.2.1] empty topic name without a topic alias",
    );
    protocol_error(
        V5,
        &[0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x00, b'x'],
        "[MQTT-3.3.2-8]",
    );
}

// ---- acknowledgements ----

#[test]
fn reason_codes_are_checked_per_packet() {
    malformed(
        V5,
        &[0x40, 0x03, 0x00, 0x01, 0x92],
        "reason code not allowed",
    );
    malformed(
        V5,
        &[0x50, 0x03, 0x00, 0x01, 0x04],
        "reason code not allowed",
    );
    malformed(
        V5,
        &[0x62, 0x03, 0x00, 0x01, 0x10],
        "reason code not allowed",
    );
    malformed(
        V5,
        &[0x70, 0x03, 0x00, 0x01, 0x80],
        "reason code not allowed",
    );
    malformed(V5, &[0xE0, 0x01, 0x91], "reason code not allowed");
    malformed(V5, &[0xE0, 0x01, 0x03], "reason code not allowed");
    malformed(V5, &[0xF0, 0x02, 0x01, 0x00], "reason code not allowed");
    malformed(
        V5,
        &[0x90, 0x04, 0x00, 0x01, 0x00, 0x11],
        "reason code not allowed",
    );
    malformed(
        V5,
        &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x02],
        "reason code not allowed",
    );
    malformed(V311, &[0x90, 0x03, 0x00, 0x01, 0x03], "[MQTT-3.9.3-2]");
    malformed(V311, &[0x90, 0x03, 0x00, 0x01, 0x87], "[MQTT-3.9.3-2]");
}

#[test]
fn auth_carries_both_reason_and_properties_or_neither() {
    malformed(
        V5,
        &[0xF0, 0x01, 0x18],
        "[MQTT-2.1.4] field runs past the end of the remaining length",
    );
}

// ---- SUBSCRIBE and UNSUBSCRIBE ----

#[test]
fn subscribe_rules() {
    protocol_error(V311, &[0x82, 0x02, 0x00, 0x01], "[MQTT-3.8.3-3]");
    protocol_error(V5, &[0x82, 0x03, 0x00, 0x01, 0x00], "[MQTT-3.8.3-3]");
    // 3.1.1: the upper six bits of the requested QoS byte are reserved.
    malformed(
        V311,
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x04],
        "[MQTT-3-8.3-4]",
    );
    malformed(
        V311,
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03],
        "[MQTT-3-8.3-4]",
    );
    // 5.0: bits 6 and 7 are reserved; QoS 3 and retain handling 3 are errors.
    malformed(
        V5,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x40],
        "[MQTT-3.8.3-5]",
    );
    protocol_error(
        V5,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x03],
        "QoS 3",
    );
    protocol_error(
        V5,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x30],
        "[MQTT 5.0, 3.8.3.1] retain handling 3",
    );
    #[rustfmt::skip]
    let no_local_shared = [
        0x82, 0x10, 0x00, 0x01, 0x00,
        0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x', 0x04,
    ];
    protocol_error(V5, &no_local_shared, "[MQTT-3.8.3-4]");
    malformed(
        V311,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'#', 0x00],
        "[MQTT-4.7.1-2]",
    );
    malformed(
        V311,
        &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00],
        "[MQTT-2.3.1-1]",
    );
}

#[test]
fn unsubscribe_rules() {
    protocol_error(V311, &[0xA2, 0x02, 0x00, 0x01], "[MQTT-3.10.3-2]");
    malformed(
        V311,
        &[0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'+', b'a'],
        "[MQTT-4.7.1-3]",
    );
    malformed(
        V5,
        &[0xA2, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00],
        "[MQTT-4.7.3-1]",
    );
    #[rustfmt::skip]
    let bad_share = [0xA2, 0x0B, 0x00, 0x01, 0x00, 0x07, b'$', b's', b'h', b'a', b'r', b'e', b'/'];
    malformed(V311, &bad_share, "[MQTT-4.8.2-1]");
}

// ---- properties ----

/// A 5.0 PUBLISH to "t" carrying `props`.
fn publish_with(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, b't', props.len() as u8];
    body.extend_from_slice(props);
    let mut packet = vec![0x30, body.len() as u8];
    packet.extend(body);
    packet
}

/// A 5.0 CONNECT with client id "a" carrying `props`.
fn connect_with(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C];
    body.push(props.len() as u8);
    body.extend_from_slice(props);
    body.extend_from_slice(&[0x00, 0x01, b'a']);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

#[test]
fn properties_must_be_known_and_allowed_in_the_packet() {
    malformed(
        V5,
        &publish_with(&[0x05, 0x00]),
        "[MQTT 5.0, 2.2.2.2] unknown property identifier",
    );
    // Session expiry belongs to CONNECT, CONNACK and DISCONNECT.
    malformed(
        V5,
        &publish_with(&[0x11, 0x00, 0x00, 0x00, 0x01]),
        "[MQTT 5.0, 2.2.2.2] property not allowed in this packet",
    );
    // Will delay belongs to the will properties only.
    malformed(
        V5,
        &connect_with(&[0x18, 0x00, 0x00, 0x00, 0x01]),
        "[MQTT 5.0, 2.2.2.2] property not allowed in this packet",
    );
    // Reason string is not a PUBLISH property.
    malformed(
        V5,
        &publish_with(&[0x1F, 0x00, 0x00]),
        "[MQTT 5.0, 2.2.2.2] property not allowed in this packet",
    );
    // Topic alias is not a will property.
    #[rustfmt::skip]
    let will_with_alias = [
        0x10, 0x17, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x06, 0x00, 0x3C, 0x00,
        0x00, 0x01, b'a',
        0x03, 0x23, 0x00, 0x01,
        0x00, 0x01, b'w', 0x00, 0x00,
    ];
    malformed(
        V5,
        &will_with_alias,
        "[MQTT 5.0, 2.2.2.2] property not allowed in this packet",
    );
    // A multi-byte property identifier names no property.
    malformed(
        V5,
        &publish_with(&[0x81, 0x01, 0x00]),
        "[MQTT 5.0, 2.2.2.2] unknown property identifier",
    );
}

#[test]
fn properties_may_not_repeat_except_user_property_and_publish_subscription_id() {
    let twice = [0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
    protocol_error(
        V5,
        &publish_with(&twice),
        "[MQTT 5.0, 2.2.2.2] property included more than once",
    );
    protocol_error(
        V5,
        &connect_with(&[0x21, 0x00, 0x01, 0x21, 0x00, 0x02]),
        "[MQTT 5.0, 2.2.2.2] property included more than once",
    );
    // Subscription identifier: many in PUBLISH, one in SUBSCRIBE.
    assert!(decode(&publish_with(&[0x0B, 0x01, 0x0B, 0x02]), V5, 1024).is_ok());
    let subscribe = [
        0x82, 0x0A, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'a', 0x00,
    ];
    protocol_error(
        V5,
        &subscribe[..],
        "[MQTT 5.0, 2.2.2.2] property included more than once",
    );
}

#[test]
fn property_values_are_range_checked() {
    protocol_error(
        V5,
        &connect_with(&[0x21, 0x00, 0x00]),
        "[MQTT 5.0, 3.1.2.11.3] receive maximum 0",
    );
    protocol_error(
        V5,
        &connect_with(&[0x27, 0, 0, 0, 0]),
        "[MQTT 5.0, 3.1.2.11.4] maximum packet size 0",
    );
    protocol_error(
        V5,
        &connect_with(&[0x17, 0x02]),
        "[MQTT 5.0, 3.1.2.11.7] request problem information must be 0 or 1",
    );
    protocol_error(
        V5,
        &connect_with(&[0x19, 0x02]),
        "[MQTT 5.0, 3.1.2.11.6] request response information must be 0 or 1",
    );
    protocol_error(
        V5,
        &publish_with(&[0x0B, 0x00]),
        "[MQTT 5.0, 3.3.2.3.8] subscription identifier 0",
    );
    protocol_error(
        V5,
        &publish_with(&[0x01, 0x02]),
        "[MQTT 5.0, 3.3.2.3.2] payload format indicator must be 0 or 1",
    );
    protocol_error(
        V5,
        &publish_with(&[0x08, 0x00, 0x01, b'+']),
        "[MQTT-3.3.2-14]",
    );
    protocol_error(
        V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02],
        "[MQTT 5.0, 3.2.2.3.4] maximum QoS must be 0 or 1",
    );
    protocol_error(
        V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02],
        "[MQTT 5.0, 3.2.2.3.5] retain available must be 0 or 1",
    );
    protocol_error(
        V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x28, 0x02],
        "[MQTT 5.0, 3.2.2.3.11] wildcard subscription available must be 0 or 1",
    );
    protocol_error(
        V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x29, 0x02],
        "[MQTT 5.0, 3.2.2.3.12] subscription identifiers available must be 0 or 1",
    );
    protocol_error(
        V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x2A, 0x02],
        "[MQTT 5.0, 3.2.2.3.13] shared subscription available must be 0 or 1",
    );
    protocol_error(
        V5,
        &connect_with(&[0x16, 0x00, 0x00]),
        "[MQTT 5.0, 3.1.2.11.10] authentication data without authentication method",
    );
    // User property strings follow the string rules.
    malformed(
        V5,
        &publish_with(&[0x26, 0x00, 0x01, 0x00, 0x00, 0x00]),
        "[MQTT-1.5.3-2]",
    );
}

#[test]
fn error_kinds_map_to_reason_codes_and_display_their_rule() {
    let malformed = DecodeError::Malformed("[MQTT-3.3.2-2] topic name contains a wildcard");
    assert_eq!(malformed.reason_code(), ReasonCode::MalformedPacket);
    assert!(malformed.to_string().contains("[MQTT-3.3.2-2]"));
    let protocol = DecodeError::Protocol("[MQTT-3.3.2-8] topic alias 0");
    assert_eq!(protocol.reason_code(), ReasonCode::ProtocolError);
    assert!(protocol.to_string().contains("[MQTT-3.3.2-8]"));
}

// ---- encoding ----

fn publish<'a>(topic: &'a str, qos: QoS, packet_id: Option<u16>, payload: &'a [u8]) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: if topic.is_empty() {
            TopicName::EMPTY
        } else {
            TopicName::new(topic).unwrap()
        },
        packet_id: packet_id.map(id),
        properties: Properties::default(),
        payload,
    })
}

fn not_allowed(packet: Packet<'_>, protocol: Protocol, what: &str) {
    match packet.encode(protocol, &mut Vec::new()) {
        Err(EncodeError::NotAllowed(m)) if m.contains(what) => {}
        other => panic!("{packet:?} in {protocol:?}: expected NotAllowed({what}), got {other:?}"),
    }
    assert!(matches!(
        packet.encoded_len(protocol),
        Err(EncodeError::NotAllowed(_))
    ));
}

#[test]
fn encode_into_a_small_slice_fails_without_writing() {
    let packet = publish("a/b", QoS::AtMostOnce, None, b"hi");
    let mut buf = [0u8; 4];
    let mut out = SliceOutput::new(&mut buf);
    assert_eq!(
        packet.encode(V311, &mut out),
        Err(EncodeError::BufferTooSmall { needed: 9 })
    );
    assert!(out.is_empty());
    let mut buf = [0u8; 9];
    let mut out = SliceOutput::new(&mut buf);
    assert_eq!(packet.encode(V311, &mut out), Ok(9));
    assert_eq!(
        out.written(),
        &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i']
    );
}

#[test]
fn encode_refuses_oversized_packets_and_fields() {
    // Lazily zeroed by the allocator: never touched, since the size check
    // comes first.
    let huge = vec![0u8; 268_435_455];
    let packet = publish("t", QoS::AtMostOnce, None, &huge);
    assert_eq!(packet.encoded_len(V311), Err(EncodeError::TooLarge));
    assert_eq!(
        packet.encode(V311, &mut Vec::new()),
        Err(EncodeError::TooLarge)
    );
    let long = "c".repeat(65_536);
    let connect = Packet::Connect(Connect {
        bridge: false,
        protocol: V311,
        clean_start: true,
        keep_alive: 0,
        client_id: &long,
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    });
    assert_eq!(
        connect.encode(V311, &mut Vec::new()),
        Err(EncodeError::FieldTooLong)
    );
}

#[test]
fn encode_refuses_what_the_version_cannot_express() {
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    });
    not_allowed(auth, V311, "AUTH");
    let mut p = publish("t", QoS::AtMostOnce, None, b"");
    if let Packet::Publish(publish) = &mut p {
        publish.properties.message_expiry_interval = Some(1);
    }
    not_allowed(p, V311, "properties in MQTT 3.x");
    not_allowed(publish("", QoS::AtMostOnce, None, b""), V311, "empty topic");
    not_allowed(publish("", QoS::AtMostOnce, None, b""), V5, "empty topic");
    let puback = Packet::PubAck(PubResponse {
        packet_id: id(1),
        reason: ReasonCode::NoMatchingSubscribers,
        properties: Properties::default(),
    });
    not_allowed(puback, V311, "reason code");
    let unsuback_reasons = [ReasonCode::Success];
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: id(1),
        properties: Properties::default(),
        reasons: Seq::Items(&unsuback_reasons),
    });
    not_allowed(unsuback, V311, "UNSUBACK reason codes");
    let filters = [(
        TopicFilter::new("a").unwrap(),
        SubscriptionOptions {
            no_local: true,
            ..Default::default()
        },
    )];
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        properties: Properties::default(),
        filters: Seq::Items(&filters),
    });
    not_allowed(subscribe, V311, "5.0 subscription options");
    let suback_reasons = [ReasonCode::NoMatchingSubscribers];
    let suback = Packet::SubAck(SubAck {
        packet_id: id(1),
        properties: Properties::default(),
        reasons: Seq::Items(&suback_reasons),
    });
    not_allowed(suback, V311, "SUBACK return code");
    let connect = Packet::Connect(Connect {
        bridge: false,
        protocol: V311,
        clean_start: true,
        keep_alive: 0,
        client_id: "a",
        will: None,
        username: None,
        password: Some(b"p"),
        properties: Properties::default(),
    });
    not_allowed(connect, V311, "[MQTT-3.1.2-22]");
}

#[test]
fn encode_refuses_packets_a_receiver_would_reject() {
    not_allowed(
        publish("t", QoS::AtMostOnce, Some(1), b""),
        V311,
        "[MQTT-2.3.1-5]",
    );
    not_allowed(
        publish("t", QoS::AtLeastOnce, None, b""),
        V5,
        "[MQTT-2.3.1-5]",
    );
    let mut dup = publish("t", QoS::AtMostOnce, None, b"");
    if let Packet::Publish(p) = &mut dup {
        p.dup = true;
    }
    not_allowed(dup, V311, "[MQTT-3.3.1-2]");
    let mut alias0 = publish("t", QoS::AtMostOnce, None, b"");
    if let Packet::Publish(p) = &mut alias0 {
        p.properties.topic_alias = Some(0);
    }
    not_allowed(alias0, V5, "topic alias 0");
    let mut in_wrong_packet = publish("t", QoS::AtMostOnce, None, b"");
    if let Packet::Publish(p) = &mut in_wrong_packet {
        p.properties.session_expiry_interval = Some(5);
    }
    not_allowed(in_wrong_packet, V5, "session expiry interval");
    let zero_id = [0u32];
    let mut sub_id0 = publish("t", QoS::AtMostOnce, None, b"");
    if let Packet::Publish(p) = &mut sub_id0 {
        p.properties.subscription_identifiers = Seq::Items(&zero_id);
    }
    not_allowed(sub_id0, V5, "subscription identifier 0");
    let connect = Packet::Connect(Connect {
        bridge: false,
        protocol: V5,
        clean_start: true,
        keep_alive: 0,
        client_id: "a\0",
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    });
    not_allowed(connect, V5, "U+0000");
    let connack = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::default(),
    });
    not_allowed(connack, V5, "[MQTT-3.2.2-4]");
    let pubrel = Packet::PubRel(PubResponse {
        packet_id: id(1),
        reason: ReasonCode::NoMatchingSubscribers,
        properties: Properties::default(),
    });
    not_allowed(pubrel, V5, "reason code not allowed");
    let no_filters = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(1),
        properties: Properties::default(),
        filters: Seq::Items(&[]),
    });
    not_allowed(no_filters, V5, "[MQTT-3.10.3-2]");
    let no_filters = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        properties: Properties::default(),
        filters: Seq::Items(&[]),
    });
    not_allowed(no_filters, V5, "[MQTT-3.8.3-3]");
}
