//! A pass-through reader that follows a tar stream's block structure ahead of the parser.
//!
//! The `tar` crate reads every PAX extended header and GNU long name/link whole into memory,
//! so a 1 GiB PAX header (a few kB once compressed) costs a gigabyte of RAM before any rule
//! sees it. This reader sees each 512-byte header as it streams past and fails the read that
//! carries an extension header larger than [`MAX_EXTENSION`], before the parser allocates. It
//! also tells a stream cut short (inside an entry, or before the end-of-archive block) from
//! a complete one, so a truncated layer is called truncated rather than "missing entries".
//! It only stops following the stream (and passes it through) where the parser is about to
//! refuse it anyway: unknown entry types. Size fields and PAX `size` records are read exactly
//! as the `tar` crate reads them (a guard that disagreed about where the next header starts
//! would let a huge one pass), and GNU sparse entries are refused outright: the parser keeps
//! a record for every chunk their extension blocks list before any rule sees the entry.

use std::io::{self, Read, Seek, SeekFrom};

/// Largest PAX extended header or GNU long name/link accepted, in bytes.
pub const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: usize = 512;

/// Wraps a tar stream; see the module docs.
pub struct TarGuard<R> {
    inner: R,
    header: [u8; BLOCK],
    filled: usize,
    /// Data and padding bytes of the current entry still to pass before the next header.
    skip: u64,
    /// Data bytes (without padding) of the current entry still to pass.
    data_left: u64,
    /// The current entry is a PAX extended header whose records are being collected.
    pax: Option<Vec<u8>>,
    /// A `size` record of the last PAX header, which overrides the next entry's size field.
    pax_size: Option<u64>,
    /// Name of the last regular header seen, for messages.
    last_name: String,
    /// Stopped following: the end-of-archive block was seen, or the stream went where the
    /// parser will refuse it anyway.
    done: bool,
}

impl<R: Read> TarGuard<R> {
    /// Follows `inner` from its first header.
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            header: [0; BLOCK],
            filled: 0,
            skip: 0,
            data_left: 0,
            pax: None,
            pax_size: None,
            last_name: String::new(),
            done: false,
        }
    }

    fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() && !self.done {
            if self.skip > 0 {
                let n = (self.skip.min(bytes.len() as u64)) as usize;
                let data = (self.data_left.min(n as u64)) as usize;
                if let Some(buf) = &mut self.pax {
                    buf.extend_from_slice(&bytes[..data]);
                }
                self.data_left -= data as u64;
                self.skip -= n as u64;
                bytes = &bytes[n..];
                if self.data_left == 0 {
                    if let Some(records) = self.pax.take() {
                        self.pax_size = pax_size(&records);
                    }
                }
                continue;
            }
            let n = (BLOCK - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == BLOCK {
                self.filled = 0;
                self.header_done()?;
            }
        }
        Ok(())
    }

    fn header_done(&mut self) -> io::Result<()> {
        let h = &self.header;
        if h.iter().all(|b| *b == 0) {
            self.done = true;
            return Ok(());
        }
        let Some(field) = size_field(&h[124..136]) else {
            // The parser reports the malformed header itself.
            self.done = true;
            return Ok(());
        };
        let ty = h[156];
        let extension = matches!(ty, b'x' | b'g' | b'L' | b'K');
        let size = if extension {
            field
        } else {
            self.pax_size.take().unwrap_or(field)
        };
        match ty {
            b'x' | b'g' | b'L' | b'K' if size > MAX_EXTENSION => {
                let what = match ty {
                    b'x' | b'g' => "PAX extended header",
                    b'L' => "GNU long name",
                    _ => "GNU long link name",
                };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a {what} of {size} bytes (after {}) is larger than the \
                         {MAX_EXTENSION}-byte limit",
                        self.shown_last()
                    ),
                ));
            }
            b'x' => self.pax = Some(Vec::with_capacity(size as usize)),
            b'g' | b'L' | b'K' | b'0' | b'\0' | b'1' | b'2' | b'5' | b'3' | b'4' | b'6' => {}
            b'S' => {
                let end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "entry {} is a GNU sparse file, which layers never hold",
                        crate::error::shown_name(&String::from_utf8_lossy(&h[..end]))
                    ),
                ));
            }
            // Unknown types are refused by the extractor; their layout may differ.
            _ => {
                self.done = true;
                return Ok(());
            }
        }
        if !extension {
            let end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
            self.last_name = String::from_utf8_lossy(&h[..end]).into_owned();
        }
        self.data_left = size;
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        Ok(())
    }

    fn shown_last(&self) -> String {
        if self.last_name.is_empty() {
            "the start of the tar stream".into()
        } else {
            format!("entry {}", crate::error::shown_name(&self.last_name))
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.done {
            let where_ = if self.skip > 0 {
                format!("inside {}", self.shown_last())
            } else if self.filled > 0 {
                format!("inside the header after {}", self.shown_last())
            } else {
                format!(
                    "after {}, before its end-of-archive block",
                    self.shown_last()
                )
            };
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the tar stream is truncated: it ends {where_}"),
            ));
        }
        self.scan(&buf[..n])?;
        Ok(n)
    }
}

/// For `tar::Archive::entries_with_seek` (the artifact's outer tar): the parser seeks only
/// forward over entry data, to the next header, which the guard follows like a read. Any
/// other seek is refused while the guard is following, since it would lose its place.
impl<R: Read + Seek> Seek for TarGuard<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        if !self.done {
            let over_data = match pos {
                SeekFrom::Current(n) => u64::try_from(n)
                    .ok()
                    .filter(|n| *n <= self.skip && self.filled == 0 && self.pax.is_none()),
                _ => None,
            };
            let Some(n) = over_data else {
                return Err(io::Error::other(
                    "the tar reader seeked somewhere other than over an entry's data",
                ));
            };
            self.skip -= n;
            self.data_left = self.data_left.saturating_sub(n);
        }
        self.inner.seek(pos)
    }
}

/// The value of a tar size field, read as the `tar` crate reads it: octal text up to the
/// first NUL with surrounding whitespace trimmed, or GNU base-256 of which only the last 8
/// bytes count. `None` where the crate fails too.
fn size_field(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        let low = &f[f.len().saturating_sub(8)..];
        return Some(low.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)));
    }
    let end = f.iter().position(|b| *b == 0).unwrap_or(f.len());
    let text = std::str::from_utf8(&f[..end]).ok()?;
    u64::from_str_radix(text.trim(), 8).ok()
}

/// The `size` record of PAX extended header records (`"<len> size=<n>\n"`), read as the `tar`
/// crate reads it: records split at newlines, the first `size` record wins, and a malformed
/// record before it means none.
fn pax_size(records: &[u8]) -> Option<u64> {
    for line in records.split(|b| *b == b'\n') {
        let space = line.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
        if line.len() + 1 != len {
            return None;
        }
        let record = &line[space + 1..];
        let eq = record.iter().position(|b| *b == b'=')?;
        if &record[..eq] == b"size" {
            return std::str::from_utf8(&record[eq + 1..]).ok()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, ty: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_cksum();
        h.as_bytes().to_vec()
    }
    fn entry(name: &str, ty: u8, data: &[u8]) -> Vec<u8> {
        let mut v = header(name, ty, data.len() as u64);
        v.extend_from_slice(data);
        v.resize(v.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }
    fn read_all(bytes: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        TarGuard::new(Chunks(bytes, chunk)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn streams_table() {
        let end = vec![0u8; 1024];
        let ok = [
            entry("a", b'0', b"hello"),
            entry("d", b'5', b""),
            end.clone(),
        ]
        .concat();
        let pax_size = [
            entry("pax", b'x', b"12 size=700\n"),
            header("big", b'0', 0),
            vec![7u8; 1024],
            end.clone(),
        ]
        .concat();
        let huge_pax = [header("pax", b'x', 1 << 30), vec![0u8; 512]].concat();
        let huge_name = [header("././@LongLink", b'L', MAX_EXTENSION + 1)].concat();
        let cut_data = entry("a", b'0', &[1u8; 600])[..700].to_vec();
        let no_end = entry("a", b'0', b"x");
        let cut_header = [entry("a", b'0', b"x"), vec![b'b'; 100]].concat();
        // The parser takes the first size record (0), so the huge header comes next.
        let two_sizes = [
            entry("pax", b'x', b"10 size=0\n19 size=4294967296\n"),
            header("a", b'0', 0),
            header("pax", b'x', 1 << 30),
        ]
        .concat();
        let sparse = [header("s", b'S', 0), vec![0u8; 512]].concat();
        // (label, bytes, error substring or "" when the stream must pass unchanged)
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("plain", ok, ""),
            ("pax size record honoured", pax_size, ""),
            (
                "huge pax",
                huge_pax,
                "PAX extended header of 1073741824 bytes",
            ),
            ("huge long name", huge_name, "GNU long name"),
            (
                "cut inside data",
                cut_data,
                "truncated: it ends inside entry a",
            ),
            ("no end block", no_end, "before its end-of-archive block"),
            (
                "first pax size record",
                two_sizes,
                "PAX extended header of 1073741824 bytes",
            ),
            ("gnu sparse", sparse, "entry s is a GNU sparse file"),
            (
                "cut inside a header",
                cut_header,
                "inside the header after entry a",
            ),
        ];
        for (label, bytes, want) in cases {
            for chunk in [1, 7, 512, 4096] {
                match (read_all(&bytes, chunk), want) {
                    (Ok(out), "") => assert_eq!(out, bytes, "{label}"),
                    (Err(e), "") => panic!("{label} ({chunk}): {e}"),
                    (Ok(_), w) => panic!("{label} ({chunk}): passed, wanted {w}"),
                    (Err(e), w) => assert!(e.to_string().contains(w), "{label} ({chunk}): {e}"),
                }
            }
        }
    }

    #[test]
    fn size_fields() {
        assert_eq!(size_field(b"00000000017\0"), Some(15));
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 1;
        b256[10] = 2;
        assert_eq!(size_field(&b256), Some(513));
        // Only the last 8 bytes of a base-256 field count.
        b256[1] = 1;
        assert_eq!(size_field(&b256), Some(513));
        assert_eq!(size_field(b"zz\0\0\0\0\0\0\0\0\0\0"), None);
        // Text after the first NUL is ignored; whitespace is trimmed; blank is an error.
        assert_eq!(size_field(b"0000017\0zzz\0"), Some(15));
        assert_eq!(size_field(b"\t17 \0\0\0\0\0\0\0\0"), Some(15));
        assert_eq!(size_field(b"           \0"), None);
        assert_eq!(pax_size(b"12 size=700\n9 path=a\n"), Some(700));
        assert_eq!(pax_size(b"9 path=a\n"), None);
        // The first size record wins; a malformed record before it hides it.
        assert_eq!(pax_size(b"10 size=0\n19 size=4294967296\n"), Some(0));
        assert_eq!(pax_size(b"9 path=a\n99 x=y\n12 size=700\n"), None);
        assert_eq!(pax_size(b"15 comment=a\nb\n12 size=700\n"), None);
    }
}
