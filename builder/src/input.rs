//! Reading hand-written or outside text inputs (specs, locks, profiles) with a size limit, so a
//! wrong path (a disk image, /dev/zero) fails fast with a clear message instead of eating memory.

use std::io::Read;
use std::path::Path;

/// Largest spec we read.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
/// Largest lock we read (five platforms with a few hundred packages each fit many times over).
pub const MAX_LOCK_BYTES: u64 = 16 << 20;
/// Largest profile or extra CONAN_HOME file we pin.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Bigger than the limit for its kind.
    #[error("{path}: larger than the {limit} bytes allowed for a {what}; is this the right file?")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit.
        limit: u64,
        /// What it was read as.
        what: &'static str,
    },
    /// Not UTF-8; the position of the first bad byte.
    #[error("{path}:{line}:{column}: not UTF-8 text (a {what} must be UTF-8)")]
    NotUtf8 {
        /// The file.
        path: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in bytes) of the first invalid byte.
        column: usize,
        /// What it was read as.
        what: &'static str,
    },
}

/// Reads `path` as UTF-8 text of at most `limit` bytes; `what` names the kind in errors.
pub fn read_text(path: &Path, limit: u64, what: &'static str) -> Result<String, InputError> {
    let file = fs_err::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: path.display().to_string(),
            limit,
            what,
        });
    }
    text_of(bytes, &path.display().to_string(), what)
}

/// `bytes` as a String, or the line and column of the first byte that is not UTF-8.
pub fn text_of(bytes: Vec<u8>, origin: &str, what: &'static str) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        InputError::NotUtf8 {
            path: origin.to_string(),
            line,
            column,
            what,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (bytes, expected (line, column) of the first bad byte)
    type Utf8Case<'a> = (&'a [u8], Option<(usize, usize)>);

    #[test]
    fn utf8_errors_have_positions() {
        let cases: &[Utf8Case] = &[
            (b"ok\n", None),
            (b"\xff", Some((1, 1))),
            (b"ab\xff", Some((1, 3))),
            (b"a\nbc\n\xc3(", Some((3, 1))),
            (b"a\nbc\xe2\x82", Some((2, 3))),
        ];
        for (bytes, want) in cases {
            let got = match text_of(bytes.to_vec(), "f", "spec") {
                Ok(_) => None,
                Err(InputError::NotUtf8 { line, column, .. }) => Some((line, column)),
                Err(e) => panic!("{e}"),
            };
            assert_eq!(got, *want, "{bytes:?}");
        }
    }

    #[test]
    fn limits_are_enforced_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("envpack.lock");
        std::fs::write(&p, vec![b'a'; 11]).unwrap();
        assert_eq!(read_text(&p, 11, "lock").unwrap().len(), 11);
        let e = read_text(&p, 10, "lock").unwrap_err().to_string();
        assert!(
            e.contains("envpack.lock") && e.contains("10 bytes") && e.contains("lock"),
            "{e}"
        );
        let e = read_text(&dir.path().join("nope"), 10, "lock")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
