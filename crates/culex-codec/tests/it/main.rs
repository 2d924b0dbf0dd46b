//! Integration tests of the codec: golden bytes worked out by hand from the
//! specifications' field layouts, round-trip properties, topic tables, and one
//! test per error rule.

mod errors;
mod golden_v3;
mod golden_v5;
mod raw_properties;
mod roundtrip;
mod topics;

use culex_codec::{check_frame, decode, DecodeError, Packet, Protocol};

/// Checks one golden vector both ways: `bytes` decode to `packet`, and
/// `packet` encodes to exactly `bytes` (with `encoded_len` agreeing). Every
/// proper prefix of `bytes` must ask for more input.
pub fn golden(protocol: Protocol, bytes: &[u8], packet: Packet<'_>) {
    decodes_to(protocol, bytes, packet);
    encodes_to(protocol, packet, bytes);
}

/// `bytes` decode to `packet` (used alone for inputs the encoder writes in a
/// shorter form).
pub fn decodes_to(protocol: Protocol, bytes: &[u8], packet: Packet<'_>) {
    for end in 0..bytes.len() {
        assert_eq!(
            check_frame(&bytes[..end], u32::MAX),
            Ok(None),
            "prefix of {end} bytes must need more input"
        );
    }
    let (decoded, used) = decode(bytes, protocol, u32::MAX)
        .unwrap_or_else(|e| panic!("{protocol:?} decode of {bytes:02X?} failed: {e}"))
        .expect("a whole packet");
    assert_eq!(used, bytes.len());
    assert_eq!(decoded, packet, "{protocol:?} decode of {bytes:02X?}");
}

/// `packet` encodes to exactly `bytes`.
pub fn encodes_to(protocol: Protocol, packet: Packet<'_>, bytes: &[u8]) {
    assert_eq!(packet.encoded_len(protocol), Ok(bytes.len()), "{packet:?}");
    let mut out = Vec::new();
    assert_eq!(packet.encode(protocol, &mut out), Ok(bytes.len()));
    assert_eq!(out, bytes, "{protocol:?} encoding of {packet:?}");
}

/// Decoding `bytes` fails with `expected`.
pub fn rejects(protocol: Protocol, bytes: &[u8], expected: DecodeError) {
    assert_eq!(
        decode(bytes, protocol, u32::MAX).map(|p| p.map(|(p, _)| p)),
        Err(expected),
        "{protocol:?} decode of {bytes:02X?}"
    );
}
