//! Encoding: exact size first, then one pass into the caller's output.

use crate::{EncodeError, Output, Packet, Protocol};

impl Packet<'_> {
    /// The exact number of bytes [`Packet::encode`] writes for `protocol`.
    pub fn encoded_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        crate::reason::todo_codec()
    }

    /// Appends the packet to `out` as `protocol` and returns its length.
    /// Nothing is written when it fails.
    pub fn encode(&self, protocol: Protocol, out: &mut impl Output) -> Result<usize, EncodeError> {
        crate::reason::todo_codec()
    }
}
