//! Whatever decodes also encodes, and decoding that encoding gives the same
//! packet and the same bytes again: decode -> encode -> decode is stable.
#![no_main]

use culex_codec::{decode, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        let Ok(Some((packet, _))) = decode(data, protocol, u32::MAX) else {
            continue;
        };
        let len = packet.encoded_len(protocol).expect("a decoded packet has a length");
        let mut first = Vec::new();
        let written = packet
            .encode(protocol, &mut first)
            .expect("a decoded packet encodes");
        assert_eq!(written, len);
        assert_eq!(first.len(), len);
        let (again, used) = decode(&first, protocol, u32::MAX)
            .expect("our encoding decodes")
            .expect("our encoding is a whole packet");
        assert_eq!(used, first.len());
        assert_eq!(again, packet);
        let mut second = Vec::new();
        again.encode(protocol, &mut second).expect("encodes again");
        assert_eq!(second, first);
    }
});
