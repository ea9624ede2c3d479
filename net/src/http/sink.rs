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
