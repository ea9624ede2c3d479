//! The `RECORD` file of an installed distribution (PEP 376 / PEP 627): CSV rows of
//! `path,hash,size`, with hashes written as `<algo>=<urlsafe-base64-nopad digest>`.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::wheel::WheelMember;
use crate::PypkgError;

/// One row of a RECORD file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    /// Path relative to site-packages, `/`-separated.
    pub path: String,
    /// `algo=digest`, empty for RECORD itself.
    pub hash: Option<String>,
    /// Size in bytes, empty for RECORD itself.
    pub size: Option<u64>,
}

/// Parses RECORD text into rows; blank lines are skipped.
///
/// The `csv` crate reads as Python's `csv` module (which writes RECORD) does: RFC 4180 quoting,
/// `\n` or `\r\n` line ends, a quote inside an unquoted field kept as text.
pub fn parse_record(text: &str) -> Result<Vec<RecordEntry>, PypkgError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PypkgError::RecordCsv {
            line: e.position().map_or(0, |p| p.line() as usize),
            detail: e.to_string(),
        })?;
    let line_of = |row: &csv::StringRecord| row.position().map_or(0, |p| p.line() as usize);
    // Checked first: a cut-off file's last row can fail any other check.
    if let Some(last) = rows.last() {
        let start = last.position().map_or(0, |p| p.byte() as usize);
        if text.get(start..).is_some_and(ends_in_open_quote) {
            return Err(PypkgError::RecordUnterminated {
                line: line_of(last),
            });
        }
    }
    let mut out = Vec::new();
    for row in rows {
        let line = line_of(&row);
        if row.len() == 1 && row[0].is_empty() {
            continue;
        }
        let [path, hash, size]: [&str; 3] =
            row.iter()
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|f: Vec<&str>| PypkgError::RecordColumns {
                    line,
                    found: f.len(),
                })?;
        let size = if size.is_empty() {
            None
        } else {
            Some(size.parse::<u64>().map_err(|_| PypkgError::RecordSize {
                line,
                value: size.to_string(),
            })?)
        };
        out.push(RecordEntry {
            path: path.to_string(),
            hash: (!hash.is_empty()).then(|| hash.to_string()),
            size,
        });
    }
    Ok(out)
}

/// Whether `raw`, the text of a file's last row, ends inside a quoted field. The csv crate, like
/// Python's csv, reads such a field to the end of the file; no tool writes one, so it means a
/// cut-off RECORD, refused even when the swallowed text happens to fill the columns.
fn ends_in_open_quote(raw: &str) -> bool {
    let mut quoted = false;
    let mut field_start = true;
    let mut bytes = raw.bytes().peekable();
    while let Some(b) = bytes.next() {
        if quoted {
            if b == b'"' && bytes.next_if_eq(&b'"').is_none() {
                quoted = false;
            }
        } else if b == b'"' && field_start {
            quoted = true;
        }
        field_start = !quoted && matches!(b, b',' | b'\n' | b'\r');
    }
    quoted
}

/// Quotes a CSV field the way Python's `csv` module does (only when needed).
fn quote_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Writes rows as RECORD text, `\n` line ends, in the order given.
pub fn write_record(entries: &[RecordEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&quote_field(&e.path));
        out.push(',');
        out.push_str(&quote_field(e.hash.as_deref().unwrap_or("")));
        out.push(',');
        if let Some(size) = e.size {
            out.push_str(&size.to_string());
        }
        out.push('\n');
    }
    out
}

/// The RECORD hash of `data`: `sha256=<urlsafe-base64-nopad>`.
pub fn record_hash(data: &[u8]) -> String {
    format!("sha256={}", b64_urlsafe_nopad(&Sha256::digest(data)))
}

/// Checks `data` against a RECORD hash; `Ok(false)` on mismatch, `Err` if the hash is unusable.
pub fn hash_matches(hash: &str, data: &[u8]) -> Result<bool, PypkgError> {
    let bad = || PypkgError::RecordHash(hash.to_string());
    let (algo, digest) = hash.split_once('=').ok_or_else(bad)?;
    let expected = b64_urlsafe_decode(digest.trim_end_matches('=')).ok_or_else(bad)?;
    let actual: Vec<u8> = match algo {
        "sha256" => Sha256::digest(data).to_vec(),
        "sha384" => Sha384::digest(data).to_vec(),
        "sha512" => Sha512::digest(data).to_vec(),
        _ => return Err(bad()),
    };
    if expected.len() != actual.len() {
        return Err(bad());
    }
    Ok(expected == actual)
}

/// URL-safe base64 without padding (RFC 4648 §5), as RECORD requires.
pub fn b64_urlsafe_nopad(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes unpadded URL-safe base64; `None` on any invalid character, length or trailing bits.
fn b64_urlsafe_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// One way a wheel's RECORD disagrees with the files in the wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// The member (or RECORD row) concerned.
    pub member: String,
    /// What disagrees, e.g. "sha256 does not match RECORD".
    pub problem: String,
}

/// Compares RECORD with the wheel's files. Each disagreement is returned rather than refused:
/// the lock pins the sha256 of the whole wheel file and the zip's CRCs catch corruption, so
/// RECORD adds no integrity of its own, and the installer writes a new RECORD from the files it
/// installs (as pip does, pip not checking the hashes at all). RECORD, its signatures and rows
/// naming no member are never used to decide what gets written.
pub fn verify_record(
    dist_info: &str,
    rows: &[RecordEntry],
    files: &BTreeMap<String, WheelMember>,
) -> Vec<RecordProblem> {
    let mut problems = Vec::new();
    let mut note = |member: &str, problem: String| {
        problems.push(RecordProblem {
            member: member.to_string(),
            problem,
        })
    };
    let unhashed: BTreeSet<String> = ["RECORD", "RECORD.jws", "RECORD.p7s"]
        .iter()
        .map(|f| format!("{dist_info}/{f}"))
        .collect();
    let mut listed = BTreeSet::new();
    for row in rows {
        if !listed.insert(row.path.as_str()) {
            note(&row.path, "listed twice in RECORD".into());
            continue;
        }
        if unhashed.contains(&row.path) {
            continue;
        }
        let Some(member) = files.get(&row.path) else {
            note(
                &row.path,
                "listed in RECORD but missing from the wheel".into(),
            );
            continue;
        };
        let Some(hash) = row.hash.as_deref() else {
            note(&row.path, "RECORD has no hash for it".into());
            continue;
        };
        match hash_matches(hash, &member.data) {
            Ok(true) => {}
            Ok(false) => {
                let algo = hash.split_once('=').map_or(hash, |(a, _)| a);
                note(&row.path, format!("{algo} does not match RECORD"));
            }
            Err(e) => note(&row.path, e.to_string()),
        }
        if row.size.is_some_and(|s| s != member.data.len() as u64) {
            note(&row.path, "size does not match RECORD".into());
        }
    }
    for name in files.keys() {
        if !listed.contains(name.as_str()) && !unhashed.contains(name) {
            note(name, "not listed in RECORD".into());
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_table() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (&[0xfb, 0xff][..], "-_8"),
        ] {
            assert_eq!(b64_urlsafe_nopad(input), want);
            assert_eq!(b64_urlsafe_decode(want).as_deref(), Some(input));
        }
        assert_eq!(b64_urlsafe_decode("Z"), None);
        assert_eq!(b64_urlsafe_decode("Zh"), None, "non-zero trailing bits");
        assert_eq!(
            b64_urlsafe_decode("Zm+v"),
            None,
            "standard alphabet rejected"
        );
    }

    #[test]
    fn known_sha256_of_empty() {
        assert_eq!(
            record_hash(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(
            hash_matches(&record_hash(b"abc"), b"abc").map_err(|e| e.to_string()),
            Ok(true)
        );
        assert_eq!(
            hash_matches(&record_hash(b"abc"), b"abd").map_err(|e| e.to_string()),
            Ok(false)
        );
        assert!(hash_matches("md5=abc", b"").is_err());
        assert!(hash_matches("sha256=AAAA", b"").is_err());
        assert!(hash_matches("nohash", b"").is_err());
    }

    #[test]
    fn parse_table() {
        let text = "a/b.py,sha256=xyz,12\r\n\"odd,name.py\",sha256=q,3\n\"q\"\"x\",,\nx.dist-info/RECORD,,\n";
        let rows = parse_record(text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].path, "a/b.py");
        assert_eq!(rows[0].size, Some(12));
        assert_eq!(rows[1].path, "odd,name.py");
        assert_eq!(rows[2].path, "q\"x");
        assert_eq!(rows[3].hash, None);
        assert_eq!(rows[3].size, None);
        assert!(matches!(
            parse_record("a,b\n"),
            Err(PypkgError::RecordColumns { line: 1, found: 2 })
        ));
        assert!(matches!(
            parse_record("a,b,zz\n"),
            Err(PypkgError::RecordSize { line: 1, .. })
        ));
        assert!(matches!(
            parse_record("\"a,b,1\n"),
            Err(PypkgError::RecordUnterminated { .. })
        ));
        for open in [
            "x,,\n\"a,b,1\nc,d,2\n",
            "a,h,\"",
            "a,\"h\"\",1\n",
            "\"a\"\"\n,h,1",
        ] {
            assert!(
                matches!(
                    parse_record(open),
                    Err(PypkgError::RecordUnterminated { .. })
                ),
                "{open:?}"
            );
        }
        for closed in ["a,h,\"\"", "a,\"h\"\"\",1\n", "a\"b,h,1", "\"a\"x\",h,1\n"] {
            assert!(parse_record(closed).is_ok(), "{closed:?}");
        }
        assert_eq!(parse_record("").unwrap(), vec![]);
        assert_eq!(parse_record("a,,").unwrap().len(), 1, "no trailing newline");
    }

    #[test]
    fn csv_quoting_table() {
        let path_of = |text: &str| {
            parse_record(text)
                .map(|rows| rows[0].path.clone())
                .map_err(|e| e.to_string())
        };
        for (text, want) in [
            ("\"multi\nline.py\",sha256=a,1\n", "multi\nline.py"),
            ("\"crlf\r\nin.py\",,\r\n", "crlf\r\nin.py"),
            ("a\"b.py,sha256=a,1\n", "a\"b.py"),
            ("\"\"\"q\"\"\",,\n", "\"q\""),
            ("\n\r\n\nlate.py,,\n", "late.py"),
            ("\"\",,\n", ""),
        ] {
            assert_eq!(path_of(text).as_deref(), Ok(want), "{text:?}");
        }
        let rows = parse_record("a,,\n\n\r\nb,,\n\n").unwrap();
        assert_eq!(rows.len(), 2, "blank lines between and after rows");
        assert!(matches!(
            parse_record("\"a\nb\",h,1\nc,d\n"),
            Err(PypkgError::RecordColumns { line: 3, found: 2 })
        ));
        let e = parse_record("a,h,1x\n").unwrap_err().to_string();
        assert_eq!(e, "RECORD line 1: size `1x` is not a number");
    }

    #[test]
    fn writer_bytes_are_pinned() {
        let row = |path: &str, hash: Option<&str>, size: Option<u64>| RecordEntry {
            path: path.into(),
            hash: hash.map(str::to_string),
            size,
        };
        let rows = vec![
            row("pkg/__init__.py", Some("sha256=AAAA"), Some(0)),
            row("odd,name.py", Some("sha256=BB"), Some(12)),
            row("new\nline", None, Some(3)),
            row("cr\rq\"", Some("x"), None),
            row("pkg-1.dist-info/RECORD", None, None),
        ];
        let text = write_record(&rows);
        assert_eq!(
            text,
            "pkg/__init__.py,sha256=AAAA,0\n\"odd,name.py\",sha256=BB,12\n\"new\nline\",,3\n\"cr\rq\"\"\",x,\npkg-1.dist-info/RECORD,,\n"
        );
        assert_eq!(parse_record(&text).unwrap(), rows);
    }

    #[test]
    fn write_round_trips() {
        let rows = vec![
            RecordEntry {
                path: "we,ird\"name".into(),
                hash: Some(record_hash(b"x")),
                size: Some(1),
            },
            RecordEntry {
                path: "pkg-1.dist-info/RECORD".into(),
                hash: None,
                size: None,
            },
        ];
        let text = write_record(&rows);
        assert!(text.starts_with("\"we,ird\"\"name\",sha256="));
        assert!(text.ends_with("pkg-1.dist-info/RECORD,,\n"));
        assert_eq!(parse_record(&text).unwrap(), rows);
    }
}
