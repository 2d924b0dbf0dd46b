//! The byte layouts this crate stores in NATS: a version byte, then fields
//! in a fixed order, integers big-endian, strings and byte strings behind a
//! length. Reading checks every length first and never panics.

use bytes::{BufMut, Bytes, BytesMut};

/// The layout version every record starts with.
pub(crate) const VERSION: u8 = 1;

/// Why bytes from NATS could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The record ends before its last field.
    #[error("record truncated")]
    Truncated,
    /// The record was written by a layout this version does not know.
    #[error("unknown record version {0}")]
    Version(u8),
    /// A string field is not UTF-8.
    #[error("string field is not utf-8")]
    Utf8,
    /// A field holds a value outside its range.
    #[error("invalid field value")]
    Value,
}

/// Appends fields to a buffer.
pub(crate) struct Writer(BytesMut);

impl Writer {
    pub(crate) fn new(capacity: usize) -> Writer {
        let mut buf = BytesMut::with_capacity(capacity + 1);
        buf.put_u8(VERSION);
        Writer(buf)
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.0.put_u8(value);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.0.put_u32(value);
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.0.put_u64(value);
        self
    }

    /// A byte string behind a 32-bit length; longer input is refused by the
    /// callers' size checks long before it gets here, and truncated otherwise.
    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.put_u32(len);
        self.0.put_slice(value.get(..len as usize).unwrap_or(value));
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// The rest of the record, without a length.
    pub(crate) fn tail(&mut self, value: &[u8]) -> &mut Self {
        self.0.put_slice(value);
        self
    }

    pub(crate) fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.0).freeze()
    }
}

/// Reads fields from a record, sharing its buffer.
pub(crate) struct Reader(Bytes);

impl Reader {
    /// Checks the version byte.
    pub(crate) fn new(mut record: Bytes) -> Result<Reader, WireError> {
        let version = *record.first().ok_or(WireError::Truncated)?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let _ = record.split_to(1);
        Ok(Reader(record))
    }

    fn take(&mut self, len: usize) -> Result<Bytes, WireError> {
        if self.0.len() < len {
            return Err(WireError::Truncated);
        }
        Ok(self.0.split_to(len))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let taken = self.take(N)?;
        <[u8; N]>::try_from(taken.as_ref()).map_err(|_| WireError::Truncated)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes, WireError> {
        let len = self.u32()?;
        self.take(usize::try_from(len).map_err(|_| WireError::Truncated)?)
    }

    pub(crate) fn str(&mut self) -> Result<String, WireError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Utf8)
    }

    /// Whatever is left.
    pub(crate) fn tail(&mut self) -> Bytes {
        std::mem::take(&mut self.0)
    }

    /// Fails unless every byte was read.
    pub(crate) fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_truncation_is_an_error() {
        let record = Writer::new(32)
            .u8(7)
            .u32(70_000)
            .u64(u64::MAX)
            .str("é/x")
            .bytes(b"")
            .tail(b"rest")
            .finish();
        let mut reader = Reader::new(record.clone()).expect("version");
        assert_eq!(reader.u8(), Ok(7));
        assert_eq!(reader.u32(), Ok(70_000));
        assert_eq!(reader.u64(), Ok(u64::MAX));
        assert_eq!(reader.str().as_deref(), Ok("é/x"));
        assert_eq!(reader.bytes(), Ok(Bytes::new()));
        assert_eq!(reader.tail(), Bytes::from_static(b"rest"));
        for cut in 0..record.len() - 4 {
            let Ok(mut reader) = Reader::new(record.slice(..cut)) else {
                continue;
            };
            let all = (|| {
                reader.u8()?;
                reader.u32()?;
                reader.u64()?;
                reader.str()?;
                reader.bytes()
            })();
            assert_eq!(all, Err(WireError::Truncated), "cut at {cut}");
        }
        assert_eq!(
            Reader::new(Bytes::from_static(&[9])).err(),
            Some(WireError::Version(9))
        );
    }
}
