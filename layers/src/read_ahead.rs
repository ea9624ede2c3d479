//! Reading a stream on a second thread, so decompression and digesting overlap with the
//! consumer's work (parsing, checking, writing files) instead of taking turns with it.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes handed over per message: large enough that channel traffic is noise, small enough
/// that the consumer starts early.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight; with [`CHUNK`] this bounds the read-ahead memory to 2 MiB.
const DEPTH: usize = 8;

enum Message {
    Data(Vec<u8>, usize),
    Failed(io::Error),
    /// Sent after the last chunk: a channel that closes without it means the reading thread
    /// died, which must not look like a clean end of stream.
    End,
}

/// Runs `consume` on a reader whose bytes come from `source`, read on a scoped thread.
///
/// The source's errors (including a digest check that fails at its end) reach `consume` as
/// read errors, after the bytes before them. If `consume` returns before the end, the
/// reading thread stops at its next chunk.
pub fn with_read_ahead<S, T>(source: S, consume: impl FnOnce(&mut ChunkReader) -> T) -> T
where
    S: Read + Send,
{
    let (data_tx, data_rx) = sync_channel::<Message>(DEPTH);
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(source, &data_tx, &spare_rx));
        let mut reader = ChunkReader {
            rx: data_rx,
            spare: spare_tx,
            current: Vec::new(),
            len: 0,
            pos: 0,
            done: false,
        };
        let out = consume(&mut reader);
        // Closing both channels ends a producer that is still going; a panic in it has
        // already reached `consume` as a read error, so joining here keeps it from
        // resurfacing as a panic of the scope.
        drop(reader);
        let _ = producer.join();
        out
    })
}

fn produce<S: Read>(mut source: S, tx: &SyncSender<Message>, spare: &Receiver<Vec<u8>>) {
    loop {
        let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let mut len = 0;
        // Fill the whole chunk so each message carries as much as it can.
        while len < buf.len() {
            match source.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if len > 0 && tx.send(Message::Data(buf, len)).is_err() {
                        return;
                    }
                    let _ = tx.send(Message::Failed(e));
                    return;
                }
            }
        }
        if len == 0 {
            let _ = tx.send(Message::End);
            return;
        }
        if tx.send(Message::Data(buf, len)).is_err() {
            return;
        }
    }
}

/// The consumer's side of [`with_read_ahead`].
pub struct ChunkReader {
    rx: Receiver<Message>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    /// Makes the next chunk current; false at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let used = std::mem::take(&mut self.current);
        if !used.is_empty() {
            // A full spare queue only means one more allocation later.
            let _ = self.spare.try_send(used);
        }
        match self.rx.recv() {
            Ok(Message::Data(buf, len)) => {
                self.current = buf;
                self.len = len;
                self.pos = 0;
                Ok(true)
            }
            Ok(Message::Failed(e)) => {
                self.done = true;
                Err(e)
            }
            Ok(Message::End) => {
                self.done = true;
                Ok(false)
            }
            Err(_) => {
                self.done = true;
                Err(io::Error::other(
                    "the reading thread stopped before the end",
                ))
            }
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.len && !self.next_chunk()? {
            return Ok(0);
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data` in reads of `step` bytes, then fails with `error` if given.
    struct Scripted {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        error: Option<io::ErrorKind>,
    }

    impl Read for Scripted {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return match self.error.take() {
                    Some(kind) => Err(io::Error::new(kind, "scripted failure")),
                    None => Ok(0),
                };
            }
            let n = out.len().min(self.step).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn bytes_arrive_unchanged_across_chunk_edges() {
        for (len, step) in [
            (0, 1),
            (1, 1),
            (CHUNK - 1, 4096),
            (CHUNK, CHUNK),
            (CHUNK + 1, 1000),
            (5 * CHUNK + 17, 65536),
            (DEPTH * CHUNK * 3, 300_000),
        ] {
            let data = pattern(len);
            let source = Scripted {
                data: data.clone(),
                pos: 0,
                step,
                error: None,
            };
            let got = with_read_ahead(source, |r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v).map(|_| v)
            })
            .unwrap();
            assert!(got == data, "len {len} step {step}");
        }
    }

    #[test]
    fn a_source_error_comes_after_the_bytes_before_it() {
        let data = pattern(CHUNK + 10);
        let source = Scripted {
            data: data.clone(),
            pos: 0,
            step: 4096,
            error: Some(io::ErrorKind::InvalidData),
        };
        let (got, err) = with_read_ahead(source, |r| {
            let mut v = vec![0u8; data.len()];
            r.read_exact(&mut v).unwrap();
            let mut rest = [0u8; 1];
            (v, r.read(&mut rest).unwrap_err())
        });
        assert!(got == data);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn stopping_early_ends_the_reading_thread() {
        // Far more than the read-ahead holds: the producer must notice the consumer left.
        let source = Scripted {
            data: pattern(DEPTH * CHUNK * 8),
            pos: 0,
            step: CHUNK,
            error: None,
        };
        let first = with_read_ahead(source, |r| {
            let mut b = [0u8; 3];
            r.read_exact(&mut b).map(|_| b)
        })
        .unwrap();
        assert_eq!(first, [0, 7, 14]);
    }
}
