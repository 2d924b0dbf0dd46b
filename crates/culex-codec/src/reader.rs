//! A cursor over untrusted bytes: every read is bounds-checked and fails with
//! a `DecodeError` instead of panicking.

use crate::DecodeError;

/// Error for a field that runs past the end of its packet.
const SHORT: DecodeError =
    DecodeError::Malformed("[MQTT-2.1.4] field runs past the end of the remaining length");

/// Reads fields off the front of a byte slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// The bytes not yet read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(SHORT);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&first, tail) = self.buf.split_first().ok_or(SHORT)?;
        self.buf = tail;
        Ok(first)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(b.iter().fold(0u16, |acc, &x| (acc << 8) | u16::from(x)))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
    }

    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        match crate::varint::decode(self.buf)? {
            Some((value, n)) => {
                self.bytes(n)?;
                Ok(value)
            }
            None => Err(SHORT),
        }
    }

    /// Binary data: a two-byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }

    /// A UTF-8 encoded string: well-formed, without U+0000 [MQTT-1.5.3-1],
    /// [MQTT-1.5.3-2].
    pub(crate) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.binary()?;
        let s = core::str::from_utf8(bytes).map_err(|_| {
            DecodeError::Malformed("[MQTT-1.5.3-1] string is not well-formed UTF-8")
        })?;
        if bytes.contains(&0) {
            return Err(DecodeError::Malformed(
                "[MQTT-1.5.3-2] string contains U+0000",
            ));
        }
        Ok(s)
    }
}
