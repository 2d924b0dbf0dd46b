//! Variable byte integers ([MQTT-1.5.5-1]): 1 to 4 bytes, up to 268,435,455.

use crate::DecodeError;

/// The largest value a variable byte integer can hold.
pub const MAX: u32 = 268_435_455;

/// Decodes a variable byte integer from the front of `bytes`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((value, length)))`
/// when complete, and an error for a fifth continuation byte or a non-minimal
/// encoding [MQTT-1.5.5-1].
pub fn decode(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of zero after at least one continuation byte adds
            // nothing: the value fits in fewer bytes.
            if i > 0 && byte == 0 {
                return Err(DecodeError::Malformed(
                    "[MQTT-1.5.5-1] variable byte integer not in its shortest form",
                ));
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(DecodeError::Malformed(
            "[MQTT-1.5.5-1] variable byte integer longer than 4 bytes",
        ));
    }
    Ok(None)
}

/// The number of bytes `value` takes, or `None` above [`MAX`].
pub const fn len(value: u32) -> Option<usize> {
    match value {
        0..=127 => Some(1),
        128..=16_383 => Some(2),
        16_384..=2_097_151 => Some(3),
        2_097_152..=MAX => Some(4),
        _ => None,
    }
}

/// Writes `value` into `out` and returns the number of bytes, or `None` when
/// it exceeds [`MAX`] or `out` is too short.
pub fn encode(value: u32, out: &mut [u8]) -> Option<usize> {
    let (buf, n) = to_bytes(value)?;
    out.get_mut(..n)?.copy_from_slice(buf.get(..n)?);
    Some(n)
}

/// The encoding of `value` in a fixed array, with its length.
pub(crate) fn to_bytes(value: u32) -> Option<([u8; 4], usize)> {
    let n = len(value)?;
    let mut buf = [0u8; 4];
    let mut rest = value;
    for slot in buf.iter_mut().take(n) {
        // Truncation is intended: the low seven bits go in each byte.
        let mut byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        *slot = byte;
    }
    Some((buf, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_round_trip() {
        for (value, bytes) in [
            (0u32, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (MAX, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            assert_eq!(decode(bytes), Ok(Some((value, bytes.len()))), "{value}");
            let mut out = [0u8; 4];
            assert_eq!(encode(value, &mut out), Some(bytes.len()));
            assert_eq!(&out[..bytes.len()], bytes);
            assert_eq!(len(value), Some(bytes.len()));
        }
    }

    #[test]
    fn incomplete_needs_more() {
        assert_eq!(decode(&[]), Ok(None));
        assert_eq!(decode(&[0x80]), Ok(None));
        assert_eq!(decode(&[0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn malformed_rejected() {
        // [MQTT-1.5.5-1]: at most four bytes, shortest form.
        assert!(decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).is_err());
        assert!(decode(&[0x80, 0x00]).is_err());
        assert!(decode(&[0xFF, 0x80, 0x00]).is_err());
    }

    #[test]
    fn too_large_refused() {
        assert_eq!(len(MAX + 1), None);
        assert_eq!(encode(MAX + 1, &mut [0u8; 8]), None);
        assert_eq!(encode(128, &mut [0u8; 1]), None);
    }
}
