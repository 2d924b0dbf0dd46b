//! Incremental, zero-copy decoding.

use crate::{DecodeError, Packet, Protocol};

/// Reads the fixed header at the front of `buf` and returns the total length
/// of the first packet once all of it is in `buf`.
///
/// `Ok(None)` means more bytes are needed. The size limit is checked as soon
/// as the remaining length is readable, before the body is buffered, so a
/// peer cannot make the caller buffer more than `max_packet_size` bytes.
pub fn check_frame(buf: &[u8], max_packet_size: u32) -> Result<Option<usize>, DecodeError> {
    crate::reason::todo_codec()
}

/// Decodes exactly one complete packet (`frame` as delimited by
/// [`check_frame`]). `protocol` is the connection's version; a CONNECT is read
/// whatever it says, since it carries its own.
pub fn decode_packet(frame: &[u8], protocol: Protocol) -> Result<Packet<'_>, DecodeError> {
    crate::reason::todo_codec()
}

/// Decodes the first packet in `buf`: [`check_frame`] then [`decode_packet`].
///
/// Returns the packet and the number of bytes it took, or `Ok(None)` when
/// `buf` does not yet hold a whole packet.
pub fn decode(
    buf: &[u8],
    protocol: Protocol,
    max_packet_size: u32,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    match check_frame(buf, max_packet_size)? {
        None => Ok(None),
        Some(len) => {
            let frame = buf.get(..len).ok_or(DecodeError::Malformed("frame length"))?;
            Ok(Some((decode_packet(frame, protocol)?, len)))
        }
    }
}
