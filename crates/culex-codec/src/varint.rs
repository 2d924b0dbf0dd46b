//! Variable byte integers ([MQTT-1.5.5-1]): 1 to 4 bytes, up to 268,435,455.

/// The largest value a variable byte integer can hold.
pub const MAX: u32 = 268_435_455;

/// Decodes a variable byte integer from the front of `bytes`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((value, length)))`
/// when complete, and an error for a fifth continuation byte or a non-minimal
/// encoding [MQTT-1.5.5-1].
pub fn decode(bytes: &[u8]) -> Result<Option<(u32, usize)>, crate::DecodeError> {
    crate::reason::todo_codec()
}

/// The number of bytes `value` takes, or `None` above [`MAX`].
pub const fn len(value: u32) -> Option<usize> {
    crate::reason::todo_codec()
}

/// Writes `value` into `out` and returns the number of bytes, or `None` when
/// it exceeds [`MAX`] or `out` is too short.
pub fn encode(value: u32, out: &mut [u8]) -> Option<usize> {
    crate::reason::todo_codec()
}
