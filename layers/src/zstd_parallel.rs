//! Decompressing a multi-frame zstd stream on several threads, handing out its bytes in order.
//!
//! Frames are found by walking their headers (see `zstd_frames`), each is decompressed on its
//! own thread (one per core for all streams of the process together), and the consumer reads them in stream order.
//! The result is what the serial decoder gives: the same bytes and the same verdict. A frame
//! that fails hands out the bytes it decoded before failing, then the error (how many bytes
//! libzstd hands out before an error depends on the reader's buffer sizes, for the serial
//! decoder too). Whatever the walk does not recognise as a frame it splits (a truncated or
//! malformed header, an unknown magic, a frame over the size caps, a legacy format) goes, with
//! everything after it, to libzstd's serial decoder, which reports it as it always did. Memory
//! stays bounded by the caps below times the frames in flight, whatever the input claims.

use std::collections::VecDeque;
use std::io::{self, BufReader, Cursor, Read};

use crate::zstd_frames::{give_slot, lost_worker, spawn, take_slot, Pending, FRAME_SIZE};

/// A frame whose compressed bytes exceed this is decoded serially, with the rest of the stream.
const COMPRESSED_CAP: usize = 2 * FRAME_SIZE;
/// A frame that decompresses to more than this is decoded again serially, as it streams.
const DECODED_CAP: usize = 2 * FRAME_SIZE;

const FRAME_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// What the header walk found next in the stream.
#[derive(Debug, PartialEq)]
enum Scan {
    /// One whole zstd frame.
    Frame(Vec<u8>),
    /// A skippable frame (no output).
    Skippable,
    /// The stream ended at a frame boundary.
    End,
    /// Bytes that do not begin a frame the walk splits; they and the rest go to libzstd.
    Other(Vec<u8>),
}

/// Appends up to `n` bytes of `r` to `buf`; false if the stream ended first.
fn take_exact(r: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<bool> {
    let got = r.by_ref().take(n as u64).read_to_end(buf)?;
    Ok(got == n)
}

/// Reads the next frame of `r` (RFC 8878 §3.1.1: frame header, blocks, optional checksum).
fn scan(r: &mut impl Read) -> io::Result<Scan> {
    let mut buf = Vec::new();
    if !take_exact(r, &mut buf, 4)? {
        return Ok(if buf.is_empty() {
            Scan::End
        } else {
            Scan::Other(buf)
        });
    }
    let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
        if !take_exact(r, &mut buf, 4)? {
            return Ok(Scan::Other(buf));
        }
        let size = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if size > COMPRESSED_CAP || !take_exact(r, &mut buf, size)? {
            return Ok(Scan::Other(buf));
        }
        return Ok(Scan::Skippable);
    }
    if magic != FRAME_MAGIC || !take_exact(r, &mut buf, 1)? {
        return Ok(Scan::Other(buf));
    }
    let descriptor = buf[4];
    let single_segment = descriptor & 0x20 != 0;
    let has_checksum = descriptor & 0x04 != 0;
    let dictionary_id = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content_size = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let window = usize::from(!single_segment);
    if !take_exact(r, &mut buf, window + dictionary_id + content_size)? {
        return Ok(Scan::Other(buf));
    }
    loop {
        if !take_exact(r, &mut buf, 3)? {
            return Ok(Scan::Other(buf));
        }
        let n = buf.len();
        let header = u32::from_le_bytes([buf[n - 3], buf[n - 2], buf[n - 1], 0]);
        let last = header & 1 != 0;
        let stored = match (header >> 1) & 3 {
            0 | 2 => (header >> 3) as usize,
            1 => 1,
            _ => return Ok(Scan::Other(buf)),
        };
        if buf.len() + stored > COMPRESSED_CAP || !take_exact(r, &mut buf, stored)? {
            return Ok(Scan::Other(buf));
        }
        if last {
            break;
        }
    }
    if has_checksum && !take_exact(r, &mut buf, 4)? {
        return Ok(Scan::Other(buf));
    }
    Ok(Scan::Frame(buf))
}

/// What a worker made of one frame.
enum Decoded {
    Bytes(Vec<u8>),
    /// Over [`DECODED_CAP`]: the frame itself, to be streamed serially.
    TooLarge(Vec<u8>),
    /// The bytes decoded before the error, then the error.
    Failed(Vec<u8>, io::Error),
}

fn decode(frame: Vec<u8>) -> Decoded {
    let mut out = Vec::with_capacity(FRAME_SIZE);
    let result = zstd::stream::read::Decoder::with_buffer(&frame[..]).and_then(|d| {
        d.single_frame()
            .take(DECODED_CAP as u64 + 1)
            .read_to_end(&mut out)
    });
    match result {
        Ok(_) if out.len() > DECODED_CAP => Decoded::TooLarge(frame),
        Ok(_) => Decoded::Bytes(out),
        Err(e) => Decoded::Failed(out, e),
    }
}

/// A serial decoder of `r`, the way layers were always read.
pub(crate) fn serial<'a, R: Read + Send + 'a>(r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(Box::new(zstd::stream::read::Decoder::new(r)?))
}

/// A zstd decoder that decompresses frames in parallel (see the module doc).
pub struct ParallelDecoder<'a, R: Read + Send + 'a> {
    /// `None` once the rest of the stream went to the serial decoder.
    source: Option<BufReader<R>>,
    pending: VecDeque<Pending<Decoded>>,
    /// Bytes the walk could not split; the serial decoder starts with them.
    unsplit: Option<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// Decodes one over-large frame, or (`serial_rest`) the rest of the stream.
    serial: Option<Box<dyn Read + Send + 'a>>,
    serial_rest: bool,
    /// The walk has looked at the stream at least once.
    scanned: bool,
    /// An error to report once `current` is handed out.
    error: Option<io::Error>,
    /// A read error of the source, reported after the frames before it.
    source_error: Option<io::Error>,
    failed: bool,
}

impl<'a, R: Read + Send + 'a> ParallelDecoder<'a, R> {
    /// A decoder of the zstd stream `r`.
    pub fn new(r: R) -> Self {
        ParallelDecoder {
            source: Some(BufReader::with_capacity(256 * 1024, r)),
            pending: VecDeque::new(),
            unsplit: None,
            current: Vec::new(),
            pos: 0,
            serial: None,
            serial_rest: false,
            scanned: false,
            error: None,
            source_error: None,
            failed: false,
        }
    }

    /// Starts frames until enough are in flight or the walk stops.
    fn start_frames(&mut self) {
        while self.unsplit.is_none() && self.source.is_some() {
            if !take_slot(self.pending.is_empty()) {
                return;
            }
            let Some(source) = self.source.as_mut() else {
                give_slot();
                return;
            };
            let next = match scan(source) {
                Ok(next) => next,
                Err(e) => {
                    self.source = None;
                    self.source_error = Some(e);
                    give_slot();
                    return;
                }
            };
            let first = !self.scanned;
            self.scanned = true;
            match next {
                Scan::Frame(frame) => {
                    self.pending.push_back(spawn(move || decode(frame)));
                    continue;
                }
                Scan::Skippable => {}
                // libzstd calls a stream without a single frame incomplete; let it say so.
                Scan::End if first => self.unsplit = Some(Vec::new()),
                Scan::End => self.source = None,
                Scan::Other(bytes) => self.unsplit = Some(bytes),
            }
            // No frame started: the slot goes back.
            give_slot();
        }
    }

    /// Moves to the next source of bytes; false at the end of the stream.
    fn advance(&mut self) -> io::Result<bool> {
        self.start_frames();
        if let Some(p) = self.pending.pop_front() {
            let decoded = p.wait();
            give_slot();
            match decoded.ok_or_else(lost_worker)? {
                Decoded::Bytes(b) => self.current = b,
                Decoded::TooLarge(frame) => {
                    self.serial = Some(serial(Cursor::new(frame))?);
                    self.serial_rest = false;
                }
                Decoded::Failed(b, e) => {
                    self.current = b;
                    self.error = Some(e);
                }
            }
            self.pos = 0;
            return Ok(true);
        }
        if let Some(bytes) = self.unsplit.take() {
            let rest: Box<dyn Read + Send + 'a> = match self.source.take() {
                Some(source) => Box::new(Cursor::new(bytes).chain(source)),
                None => Box::new(Cursor::new(bytes)),
            };
            self.serial = Some(serial(rest)?);
            self.serial_rest = true;
            return Ok(true);
        }
        match self.source_error.take() {
            Some(e) => Err(e),
            None => Ok(false),
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(e) = self.error.take() {
                return Err(e);
            }
            if let Some(s) = self.serial.as_mut() {
                let n = s.read(buf)?;
                if n > 0 || self.serial_rest || buf.is_empty() {
                    return Ok(n);
                }
                self.serial = None;
                continue;
            }
            if buf.is_empty() || !self.advance()? {
                return Ok(0);
            }
        }
    }
}

impl<'a, R: Read + Send + 'a> Drop for ParallelDecoder<'a, R> {
    fn drop(&mut self) {
        // A reader dropped early (the consumer stopped at an error) waits for its workers
        // (one frame each, bounded work) so the process-wide bound holds, then gives back
        // their slots.
        for p in self.pending.drain(..) {
            let _ = p.wait();
            give_slot();
        }
    }
}

impl<'a, R: Read + Send + 'a> Read for ParallelDecoder<'a, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the zstd stream failed earlier"));
        }
        let result = self.read_inner(buf);
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

#[cfg(test)]
#[path = "zstd_parallel_tests.rs"]
mod tests;
