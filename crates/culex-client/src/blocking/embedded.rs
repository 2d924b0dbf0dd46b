//! The blocking client over an `embedded-io` stream (feature `embedded`).

use super::Transport;

/// Adapts an `embedded-io` `Read + Write + ReadReady` stream, already
/// connected by the firmware, to [`Transport`].
///
/// A bounded wait cannot be expressed in `embedded-io`, so `read` with
/// `Some(_)` returns at once when [`embedded_io::ReadReady::read_ready`] says
/// nothing is there (the client then polls), and `None` blocks in `read`.
#[derive(Debug)]
pub struct EmbeddedIo<T>(pub T);

impl<T> Transport for EmbeddedIo<T>
where
    T: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
{
    type Error = T::Error;

    fn read(&mut self, buf: &mut [u8], wait: Option<u64>) -> Result<Option<usize>, T::Error> {
        if wait.is_some() && !self.0.read_ready()? {
            return Ok(None);
        }
        self.0.read(buf).map(Some)
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), T::Error> {
        self.0.write_all(buf)?;
        self.0.flush()
    }
}
