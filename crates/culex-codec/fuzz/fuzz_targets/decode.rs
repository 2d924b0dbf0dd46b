//! Decoding arbitrary bytes never panics, in any protocol version, whatever
//! the size limit; every item of a decoded list can be read back, and a
//! PUBLISH's properties read in wire order agree with the decoded ones.
#![no_main]

use culex_codec::packet::Publish;
use culex_codec::properties::{iter_raw, publish_section, RawValue};
use culex_codec::{check_frame, decode, Packet, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit exercises the early size check.
    let _ = check_frame(data, 64);
    // Any bytes as a property section, or as a PUBLISH frame: no panic.
    iter_raw(data).for_each(drop);
    if let Ok(section) = publish_section(data) {
        iter_raw(section).for_each(drop);
    }
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        let mut rest = data;
        // Each round consumes at least two bytes, so this ends.
        while let Ok(Some((packet, used))) = decode(rest, protocol, u32::MAX) {
            touch(&packet);
            if let (Protocol::V5, Packet::Publish(p)) = (protocol, &packet) {
                raw_agrees(&rest[..used], p);
            }
            rest = &rest[used..];
        }
    }
});

/// Reads every list a packet holds as wire bytes.
fn touch(packet: &Packet<'_>) {
    let props = match packet {
        Packet::Connect(c) => {
            if let Some(w) = &c.will {
                w.properties.user_properties.iter().for_each(drop);
            }
            c.properties
        }
        Packet::ConnAck(c) => c.properties,
        Packet::Publish(p) => p.properties,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.properties
        }
        Packet::Subscribe(s) => {
            assert_eq!(s.filters.iter().count(), s.filters.len());
            s.properties
        }
        Packet::SubAck(s) => {
            assert_eq!(s.reasons.iter().count(), s.reasons.len());
            s.properties
        }
        Packet::Unsubscribe(u) => {
            assert_eq!(u.filters.iter().count(), u.filters.len());
            u.properties
        }
        Packet::UnsubAck(u) => {
            assert_eq!(u.reasons.iter().count(), u.reasons.len());
            u.properties
        }
        Packet::PingReq | Packet::PingResp => return,
        Packet::Disconnect(d) => d.properties,
        Packet::Auth(a) => a.properties,
    };
    let users = props.user_properties;
    assert_eq!(users.iter().count(), users.len());
    let ids = props.subscription_identifiers;
    assert_eq!(ids.iter().count(), ids.len());
}

/// The wire-order reading of a decoded 5.0 PUBLISH sees the same properties.
fn raw_agrees(frame: &[u8], publish: &Publish<'_>) {
    let section = publish_section(frame).expect("a decoded PUBLISH has a section");
    let (mut users, mut ids) = (0, 0);
    for item in iter_raw(section) {
        match item.expect("a decoded PUBLISH reads back") {
            (0x26, RawValue::Pair(..)) => users += 1,
            (0x0B, RawValue::VarInt(_)) => ids += 1,
            (0x23, RawValue::U16(v)) => assert_eq!(Some(v), publish.properties.topic_alias),
            _ => {}
        }
    }
    assert_eq!(users, publish.properties.user_properties.len());
    assert_eq!(ids, publish.properties.subscription_identifiers.len());
}
