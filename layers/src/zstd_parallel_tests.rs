//! The parallel decoder against libzstd's serial one: same bytes, same verdict, on framed
//! layers and on every damage done to them.

use std::io::{Read, Write};

use super::*;
use crate::compress::FinishWrite;
use crate::zstd_frames::{compress_frame, FramedEncoder};

/// Deterministic bytes that compress somewhat, like a tar of text and binaries.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = format!("file-{} {:x}\n", x % 977, x % 65_536);
        out.extend_from_slice(word.as_bytes());
    }
    out.truncate(len);
    out
}

fn framed(input: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc = Box::new(FramedEncoder::new(Vec::new()));
    for piece in input.chunks(chunk.max(1)) {
        enc.write_all(piece).unwrap();
    }
    enc.finish().unwrap()
}

/// Everything a reader hands out before it ends or fails, read in odd-sized pieces.
fn drain(mut r: impl Read) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 7_001];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Same verdict as the serial decoder; the same bytes on success. On failure both hand out a
/// prefix of the same bytes: how far libzstd gets before it reports an error depends on the
/// reader's buffer sizes (a checksum error can come with the frame's last bytes held back),
/// so the serial decoder itself gives different lengths to different readers.
fn assert_same_as_serial(stream: &[u8], what: &str) -> (Vec<u8>, bool) {
    let want = drain(serial(stream).unwrap());
    let got = drain(ParallelDecoder::new(stream));
    assert_eq!(
        got.1, want.1,
        "{what}: verdict (ok?) differs from the serial decoder"
    );
    let n = got.0.len().min(want.0.len());
    let agree = if got.1 {
        got.0 == want.0
    } else {
        got.0[..n] == want.0[..n]
    };
    assert!(
        agree,
        "{what}: {} bytes out, serial {}",
        got.0.len(),
        want.0.len()
    );
    got
}

fn frames_of(mut stream: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match scan(&mut stream).unwrap() {
            Scan::Frame(_) => n += 1,
            Scan::End => return n,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn cuts_at_fixed_offsets_whatever_the_writes() {
    let input = data(3 * FRAME_SIZE + 123, 7);
    let a = framed(&input, input.len());
    for chunk in [1_000, 65_536, FRAME_SIZE - 1] {
        assert!(framed(&input, chunk) == a, "writes of {chunk} bytes");
    }
    assert_eq!(frames_of(&a), 4);
    let (out, ok) = assert_same_as_serial(&a, "framed");
    assert!(ok && out == input);
}

#[test]
fn short_streams_are_the_single_frame_they_always_were() {
    for len in [0, 1, 1000, FRAME_SIZE - 1, FRAME_SIZE] {
        let input = data(len, 3);
        let stream = framed(&input, 4096);
        assert!(stream == compress_frame(&input).unwrap(), "{len} bytes");
        assert_eq!(frames_of(&stream), 1, "{len} bytes");
        let (out, ok) = assert_same_as_serial(&stream, "short");
        assert!(ok && out == input);
    }
    assert_eq!(frames_of(&framed(&data(FRAME_SIZE + 1, 3), 4096)), 2);
}

#[test]
fn damage_gets_the_serial_verdict_and_bytes() {
    let input = data(2 * FRAME_SIZE + 5_000, 11);
    let stream = framed(&input, input.len());
    let first = match scan(&mut &stream[..]).unwrap() {
        Scan::Frame(f) => f.len(),
        other => panic!("{other:?}"),
    };
    // Truncations around the frame boundary, in headers and in blocks.
    for cut in [
        0,
        3,
        4,
        5,
        9,
        200,
        first - 5,
        first - 1,
        first,
        first + 1,
        first + 4,
        first + 7,
    ] {
        assert_same_as_serial(&stream[..cut], &format!("cut at {cut}"));
    }
    // Flipped bytes in headers, block bodies and checksums of both frames.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut positions = vec![
        0,
        4,
        5,
        6,
        7,
        first - 2,
        first,
        first + 4,
        first + 6,
        stream.len() - 1,
    ];
    for _ in 0..24 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        positions.push((x % stream.len() as u64) as usize);
    }
    for pos in positions {
        let mut bad = stream.clone();
        bad[pos] ^= 0x41;
        assert_same_as_serial(&bad, &format!("flip at {pos}"));
    }
    // Trailing garbage, a partial magic, and an unknown magic between frames.
    for tail in [&b"x"[..], &[0x28, 0xb5], &[0, 0, 0, 0, 0, 0]] {
        let mut bad = stream.clone();
        bad.extend_from_slice(tail);
        let (_, ok) = assert_same_as_serial(&bad, &format!("tail {tail:?}"));
        assert!(!ok);
    }
    let mut spliced = stream[..first].to_vec();
    spliced.extend_from_slice(b"not zstd");
    spliced.extend_from_slice(&stream[first..]);
    assert_same_as_serial(&spliced, "unknown magic between frames");
}

#[test]
fn skippable_frames_are_skipped_as_libzstd_does() {
    let input = data(FRAME_SIZE + 10, 5);
    let stream = framed(&input, 8192);
    let first = match scan(&mut &stream[..]).unwrap() {
        Scan::Frame(f) => f.len(),
        other => panic!("{other:?}"),
    };
    let skippable = [0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
    let mut with = skippable.to_vec();
    with.extend_from_slice(&stream[..first]);
    with.extend_from_slice(&skippable);
    with.extend_from_slice(&stream[first..]);
    with.extend_from_slice(&skippable);
    let (out, ok) = assert_same_as_serial(&with, "skippable frames");
    assert!(ok && out == input);
    // A skippable frame that claims more bytes than the stream has.
    let mut short = stream.clone();
    short.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 200, 0, 0, 0, 1]);
    assert!(!assert_same_as_serial(&short, "short skippable").1);
}

#[test]
fn frames_over_the_caps_stream_serially() {
    // Another tool's layer: one frame of 9 MiB (over DECODED_CAP), then one of ours.
    let big = data(DECODED_CAP + FRAME_SIZE / 2, 9);
    let mut stream = compress_frame(&big).unwrap();
    let small = data(1000, 1);
    stream.extend_from_slice(&compress_frame(&small).unwrap());
    let (out, ok) = assert_same_as_serial(&stream, "oversized frame");
    assert!(ok && out.len() == big.len() + small.len());
    // Incompressible bytes: a frame whose compressed size is over COMPRESSED_CAP.
    let mut x: u64 = 12345;
    let noise: Vec<u8> = (0..COMPRESSED_CAP + 1000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let stream = zstd::stream::encode_all(&noise[..], 1).unwrap();
    assert!(stream.len() > COMPRESSED_CAP);
    let (out, ok) = assert_same_as_serial(&stream, "incompressible frame");
    assert!(ok && out == noise);
}

#[test]
fn a_failing_source_fails_after_the_frames_before_it() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let input = data(2 * FRAME_SIZE + 1, 2);
    let stream = framed(&input, input.len());
    let first = match scan(&mut &stream[..]).unwrap() {
        Scan::Frame(f) => f.len(),
        other => panic!("{other:?}"),
    };
    let (out, ok) = drain(ParallelDecoder::new(Failing(&stream[..first + 10])));
    assert!(!ok);
    assert!(
        out == input[..FRAME_SIZE],
        "the first frame's bytes come first"
    );
}
