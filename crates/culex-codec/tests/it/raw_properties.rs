//! `properties::iter_raw` and `properties::publish_section`: properties in
//! the order they came, for callers that show that order.

use culex_codec::properties::{iter_raw, publish_section, RawValue};
use culex_codec::{decode, DecodeError, Packet, Protocol};

/// A 5.0 QoS 1 PUBLISH to "a" (id 5) whose properties are in an order the
/// encoder would not choose: user property, content type, user property,
/// subscription identifier 300, payload format 1, message expiry 9.
const PUBLISH: &[u8] = &[
    0x32, 0x24, 0x00, 0x01, b'a', 0x00, 0x05, // header, topic, packet id
    0x1C, // property length 28
    0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
    0x03, 0x00, 0x02, b't', b'/', // content type "t/"
    0x26, 0x00, 0x01, b'x', 0x00, 0x00, // user property x=""
    0x0B, 0xAC, 0x02, // subscription identifier 300
    0x01, 0x01, // payload format indicator 1
    0x02, 0x00, 0x00, 0x00, 0x09, // message expiry interval 9
    b'h', b'i',
];

#[test]
fn yields_a_publishs_properties_in_wire_order() {
    let section = publish_section(PUBLISH).expect("a PUBLISH");
    let raw: Vec<_> = iter_raw(section).collect();
    assert_eq!(
        raw,
        [
            Ok((0x26, RawValue::Pair("k", "v"))),
            Ok((0x03, RawValue::Str("t/"))),
            Ok((0x26, RawValue::Pair("x", ""))),
            Ok((0x0B, RawValue::VarInt(300))),
            Ok((0x01, RawValue::Byte(1))),
            Ok((0x02, RawValue::U32(9))),
        ]
    );
    // The same frame decodes, so the section is exactly the property block.
    let (Packet::Publish(p), _) = decode(PUBLISH, Protocol::V5, u32::MAX)
        .expect("valid")
        .expect("whole")
    else {
        panic!("not a PUBLISH");
    };
    assert_eq!(p.payload, b"hi");
}

#[test]
fn qos_0_publish_has_no_packet_id_before_its_properties() {
    let frame = [0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x02];
    let raw: Vec<_> = iter_raw(publish_section(&frame).expect("a PUBLISH")).collect();
    assert_eq!(raw, [Ok((0x23, RawValue::U16(2)))]);
}

#[test]
fn empty_section_yields_nothing() {
    assert_eq!(iter_raw(&[0x00]).count(), 0);
}

#[test]
fn malformed_sections_yield_one_error_then_end() {
    let cases: &[&[u8]] = &[
        // [MQTT 5.0, 2.2.2.2] identifier 0x04 is not defined.
        &[0x02, 0x04, 0x00],
        // The property length runs past the bytes given.
        &[0x05, 0x01, 0x01],
        // A string value runs past the section.
        &[0x03, 0x03, 0x00, 0x05],
        // [MQTT-1.5.3-1] a string that is not UTF-8.
        &[0x04, 0x03, 0x00, 0x01, 0xFF],
        // No property length at all.
        &[],
    ];
    for section in cases {
        let raw: Vec<_> = iter_raw(section).collect();
        assert_eq!(raw.len(), 1, "{section:02X?}: {raw:?}");
        assert!(
            matches!(raw[0], Err(DecodeError::Malformed(_))),
            "{section:02X?}: {raw:?}"
        );
    }
    // Good properties before the fault are still yielded, in order.
    let raw: Vec<_> = iter_raw(&[0x04, 0x01, 0x00, 0x04, 0x00]).collect();
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0], Ok((0x01, RawValue::Byte(0))));
    assert!(raw[1].is_err());
}

#[test]
fn publish_section_refuses_other_packets_and_short_frames() {
    assert!(publish_section(&[0xC0, 0x00]).is_err());
    assert!(publish_section(&[0x30, 0x05, 0x00, 0x01]).is_err());
    assert!(publish_section(&[0x32, 0x03, 0x00, 0x01, b'a']).is_err());
}
