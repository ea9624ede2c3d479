//! Where a download's bytes go, and how a retry starts over or continues.

use std::io::{self, Write};

/// A download destination that knows how much it holds and can be emptied for a fresh start.
pub trait DownloadSink: Write {
    /// Bytes accepted so far (the offset a resumed request continues from).
    fn written(&self) -> u64;
    /// Drops everything written, for a retry from byte 0.
    fn reset(&mut self) -> io::Result<()>;
}

impl DownloadSink for Vec<u8> {
    fn written(&self) -> u64 {
        self.len() as u64
    }
    fn reset(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

/// A sink that counts what reaches it on a [`crate::Meter`].
pub(super) struct Metered<'a> {
    pub inner: &'a mut dyn DownloadSink,
    pub meter: &'a crate::Meter,
}

impl Write for Metered<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.meter.received(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DownloadSink for Metered<'_> {
    fn written(&self) -> u64 {
        self.inner.written()
    }
    fn reset(&mut self) -> io::Result<()> {
        self.meter.taken_back(self.inner.written());
        self.inner.reset()
    }
}
