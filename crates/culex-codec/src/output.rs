//! Where encoded bytes go: a caller-owned slice, a `Vec` or a `BytesMut`.

use crate::EncodeError;

/// A sink the encoder appends to. The encoder computes the exact size first
/// and calls [`Output::reserve`] once, so a growable output allocates at most
/// once per packet and a fixed one fails before any byte is written.
pub trait Output {
    /// Makes room for `additional` more bytes, or fails without writing.
    fn reserve(&mut self, additional: usize) -> Result<(), EncodeError>;
    /// Appends bytes; only called within a successful reservation.
    fn put(&mut self, bytes: &[u8]);
}

/// An [`Output`] over a caller's fixed buffer.
#[derive(Debug)]
pub struct SliceOutput<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceOutput<'a> {
    /// Writes from the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> SliceOutput<'a> {
        SliceOutput { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Output for SliceOutput<'_> {
    fn reserve(&mut self, additional: usize) -> Result<(), EncodeError> {
        if self.buf.len().saturating_sub(self.len) < additional {
            return Err(EncodeError::BufferTooSmall {
                needed: self.len.saturating_add(additional),
            });
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }
}

#[cfg(feature = "alloc")]
impl Output for alloc::vec::Vec<u8> {
    fn reserve(&mut self, additional: usize) -> Result<(), EncodeError> {
        alloc::vec::Vec::reserve(self, additional);
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(feature = "bytes")]
impl Output for bytes::BytesMut {
    fn reserve(&mut self, additional: usize) -> Result<(), EncodeError> {
        bytes::BytesMut::reserve(self, additional);
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_output_refuses_what_does_not_fit_and_keeps_what_was_written() {
        let mut buf = [0u8; 4];
        let mut out = SliceOutput::new(&mut buf);
        assert!(out.is_empty());
        assert_eq!(out.reserve(3), Ok(()));
        out.put(&[1, 2, 3]);
        assert_eq!(
            out.reserve(2),
            Err(EncodeError::BufferTooSmall { needed: 5 })
        );
        assert_eq!(out.written(), &[1, 2, 3]);
        assert_eq!(out.len(), 3);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn vec_output_grows() {
        let mut out = alloc::vec::Vec::new();
        assert_eq!(Output::reserve(&mut out, 2), Ok(()));
        Output::put(&mut out, &[7, 8]);
        assert_eq!(out, [7, 8]);
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn bytes_mut_output_grows() {
        let mut out = bytes::BytesMut::new();
        assert_eq!(Output::reserve(&mut out, 2), Ok(()));
        Output::put(&mut out, &[7, 8]);
        assert_eq!(&out[..], &[7, 8]);
    }
}
