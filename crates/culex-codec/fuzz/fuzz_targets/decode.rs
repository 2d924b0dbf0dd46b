//! Decoding arbitrary bytes never panics, in any protocol version, whatever
//! the size limit; every item of a decoded list can be read back.
#![no_main]

use culex_codec::{check_frame, decode, Packet, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit exercises the early size check.
    let _ = check_frame(data, 64);
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        let mut rest = data;
        // Each round consumes at least two bytes, so this ends.
        while let Ok(Some((packet, used))) = decode(rest, protocol, u32::MAX) {
            touch(&packet);
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
