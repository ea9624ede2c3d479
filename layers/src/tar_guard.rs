//! A pass-through reader that follows a tar stream's block structure ahead of the parser.
//!
//! The `tar` crate reads every PAX extended header and GNU long name/link whole into memory,
//! so a 1 GiB PAX header (a few kB once compressed) costs a gigabyte of RAM before any rule
//! sees it. This reader sees each 512-byte header as it streams past and fails the read that
//! carries an extension header larger than [`MAX_EXTENSION`], before the parser allocates. It
//! also tells a stream cut short (inside an entry, or before the end-of-archive block) from
//! a complete one, so a truncated layer is called truncated rather than "missing entries".
//! It only stops following the stream (and passes it through) where the parser is about to
//! refuse it anyway: GNU sparse or unknown entry types.

use std::io::{self, Read};

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
            // Sparse and unknown types are refused by the extractor; their layout may differ.
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
            "the start of the layer".into()
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
                format!("the layer's tar stream is truncated: it ends {where_}"),
            ));
        }
        self.scan(&buf[..n])?;
        Ok(n)
    }
}

/// The value of a tar size field: octal digits (space/NUL padded) or GNU base-256.
fn size_field(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(f[0] & 0x7f);
        for b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(f).ok()?;
    let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// The `size` record of PAX extended header records (`"<len> size=<n>\n"`), if any.
fn pax_size(records: &[u8]) -> Option<u64> {
    let mut rest = records;
    let mut found = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return found;
        }
        let record = &rest[space + 1..len];
        if let Some(v) = record.strip_prefix(b"size=") {
            let v = v.strip_suffix(b"\n").unwrap_or(v);
            found = std::str::from_utf8(v).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    found
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
        assert_eq!(size_field(b"           \0"), Some(0));
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 1;
        b256[10] = 2;
        assert_eq!(size_field(&b256), Some(513));
        assert_eq!(size_field(b"zz\0\0\0\0\0\0\0\0\0\0"), None);
        assert_eq!(pax_size(b"12 size=700\n9 path=a\n"), Some(700));
        assert_eq!(pax_size(b"9 path=a\n"), None);
    }
}
