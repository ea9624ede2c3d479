//! Core metadata (`METADATA` / `PKG-INFO`): RFC 822 style headers with continuation lines,
//! split by mailparse.

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{Requirement, VerbatimUrl};

use crate::filename::{parse_wheel_filename, PackageName};
use crate::PypkgError;

/// Largest METADATA file we accept; real ones are far smaller.
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// The fields of core metadata the resolver and SBOM need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    /// Normalized project name.
    pub name: PackageName,
    /// Project version.
    pub version: Version,
    /// `Requires-Dist` entries.
    pub requires_dist: Vec<Requirement<VerbatimUrl>>,
    /// `Requires-Python`.
    pub requires_python: Option<VersionSpecifiers>,
    /// `Provides-Extra` entries.
    pub provides_extra: Vec<String>,
    /// `License-Expression`, else `License`.
    pub license: Option<String>,
    /// `Summary`.
    pub summary: Option<String>,
}

/// Splits the header block into (lowercased name, value) pairs; the body after the first blank
/// line (the long description) is not read.
///
/// mailparse finds the headers and their continuation lines. Values are taken raw, not through
/// its RFC 2047 decoding, and a folded value keeps one line per physical line (trimmed), as
/// Python's `email` reading of METADATA does. Lines mailparse would accept leniently (no colon,
/// a leading tab) are refused, as the core metadata spec requires a `Name: value` header.
fn headers(text: &str) -> Result<Vec<(String, String)>, PypkgError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() && !bytes[at..].starts_with(b"\n") && !bytes[at..].starts_with(b"\r\n") {
        let rest = &bytes[at..];
        let syntax = || {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
            PypkgError::MetadataSyntax {
                line: bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1,
                text: String::from_utf8_lossy(line).trim_end().to_string(),
            }
        };
        if rest.starts_with(b" ") || rest.starts_with(b"\t") {
            return Err(syntax());
        }
        let (header, len) = mailparse::parse_header(rest).map_err(|_| syntax())?;
        if rest.get(header.get_key_raw().len()) != Some(&b':') {
            return Err(syntax());
        }
        // Both slices lie in `text` between ASCII bytes, so they are UTF-8 too.
        let key = String::from_utf8_lossy(header.get_key_raw());
        let value = String::from_utf8_lossy(header.get_value_raw());
        let value: Vec<&str> = value.split('\n').map(str::trim).collect();
        out.push((key.trim().to_ascii_lowercase(), value.join("\n")));
        at += len.max(1);
    }
    Ok(out)
}

/// Parses METADATA / PKG-INFO bytes.
pub fn parse_core_metadata(bytes: &[u8]) -> Result<CoreMetadata, PypkgError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PypkgError::MetadataNotUtf8)?;
    let mut name = None;
    let mut version = None;
    let mut requires_dist = Vec::new();
    let mut requires_python = None;
    let mut provides_extra = Vec::new();
    let mut license = None;
    let mut license_expression = None;
    let mut summary = None;
    for (key, value) in headers(text)? {
        let invalid = |header: &'static str, detail: String| PypkgError::MetadataInvalid {
            header,
            value: value.clone(),
            detail,
        };
        match key.as_str() {
            "name" => {
                name = Some(
                    PackageName::from_str(&value).map_err(|e| invalid("Name", e.to_string()))?,
                )
            }
            "version" => {
                version =
                    Some(Version::from_str(&value).map_err(|e| invalid("Version", e.to_string()))?)
            }
            "requires-dist" => requires_dist.push(
                crate::requirement::parse_requirement(&value)
                    .map_err(|e| invalid("Requires-Dist", e))?,
            ),
            "requires-python" if !value.is_empty() => {
                requires_python = Some(
                    VersionSpecifiers::from_str(&value)
                        .map_err(|e| invalid("Requires-Python", e.to_string()))?,
                )
            }
            "provides-extra" => provides_extra.push(value),
            "license" if !value.is_empty() && value != "UNKNOWN" => license = Some(value),
            "license-expression" if !value.is_empty() => license_expression = Some(value),
            "summary" if !value.is_empty() && value != "UNKNOWN" => summary = Some(value),
            _ => {}
        }
    }
    Ok(CoreMetadata {
        name: name.ok_or(PypkgError::MetadataMissing("Name"))?,
        version: version.ok_or(PypkgError::MetadataMissing("Version"))?,
        requires_dist,
        requires_python,
        provides_extra,
        license: license_expression.or(license),
        summary,
    })
}

/// Reads `<name>-<version>.dist-info/METADATA` from a wheel.
pub fn read_wheel_metadata(wheel: &Path) -> Result<CoreMetadata, PypkgError> {
    let wheel_err = |detail: String| PypkgError::MetadataWheel {
        path: wheel.to_path_buf(),
        detail,
    };
    let file = fs_err::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| wheel_err(e.to_string()))?;
    let candidates: Vec<String> = zip
        .file_names()
        .filter(|n| {
            n.strip_suffix("/METADATA")
                .is_some_and(|dir| dir.ends_with(".dist-info") && !dir.contains('/'))
        })
        .map(str::to_string)
        .collect();
    let expected = wheel
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(parse_wheel_filename);
    let entry = match candidates.as_slice() {
        [only] => only.clone(),
        [] => return Err(wheel_err("no *.dist-info/METADATA".into())),
        many => {
            let Some(w) = expected else {
                return Err(wheel_err(format!(
                    "several METADATA files: {}",
                    shown_list(many)
                )));
            };
            many.iter()
                .find(|c| {
                    let dir = c.trim_end_matches(".dist-info/METADATA");
                    dir.rsplit_once('-').is_some_and(|(n, v)| {
                        PackageName::from_str(n).ok().as_ref() == Some(&w.name)
                            && Version::from_str(v).ok().as_ref() == Some(&w.version)
                    })
                })
                .cloned()
                .ok_or_else(|| {
                    wheel_err(format!(
                        "no METADATA for {}-{} among {}",
                        w.name,
                        w.version,
                        shown_list(many)
                    ))
                })?
        }
    };
    let mut f = zip
        .by_name(&entry)
        .map_err(|e| wheel_err(format!("{entry}: {e}")))?;
    if f.size() > MAX_METADATA_BYTES {
        return Err(wheel_err(format!(
            "{entry} is {} bytes, too large",
            f.size()
        )));
    }
    let mut bytes = Vec::new();
    f.by_ref()
        .take(MAX_METADATA_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| wheel_err(format!("{entry}: {e}")))?;
    parse_core_metadata(&bytes).map_err(|e| wheel_err(format!("{entry}: {e}")))
}

/// Member names for a message: each quoted and escaped, joined with commas.
fn shown_list(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("\"{}\"", envpack_layers::shown_name(n)))
        .collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SAMPLE: &str = "Metadata-Version: 2.1\r\nName: Jinja2\nVersion: 3.1.6\nSummary: A very fast template engine.\nLicense: BSD\n  continued line\nRequires-Python: >=3.7\nRequires-Dist: MarkupSafe>=2.0\nRequires-Dist: Babel>=2.7; extra == \"i18n\"\nProvides-Extra: i18n\n\nRequires-Dist: not-a-header-body\n";

    #[test]
    fn parses_headers_and_continuations() {
        let m = parse_core_metadata(SAMPLE.as_bytes()).unwrap();
        assert_eq!(m.name.as_str(), "jinja2");
        assert_eq!(m.version.to_string(), "3.1.6");
        assert_eq!(m.requires_dist.len(), 2);
        assert_eq!(m.requires_dist[0].name.as_ref(), "markupsafe");
        assert_eq!(
            m.requires_python.map(|r| r.to_string()).as_deref(),
            Some(">=3.7")
        );
        assert_eq!(m.provides_extra, vec!["i18n"]);
        assert_eq!(m.license.as_deref(), Some("BSD\ncontinued line"));
        assert_eq!(m.summary.as_deref(), Some("A very fast template engine."));
    }

    #[test]
    fn license_expression_wins_and_errors_are_specific() {
        let m = parse_core_metadata(
            b"Name: a\nVersion: 1\nLicense: long text\nLicense-Expression: MIT\n",
        )
        .unwrap();
        assert_eq!(m.license.as_deref(), Some("MIT"));
        for (bad, want) in [
            (&b"Version: 1\n"[..], "Name"),
            (b"Name: a\n", "Version"),
            (b"Name: a\nVersion: x y\n", "Version"),
            (
                b"Name: a\nVersion: 1\nRequires-Dist: ???\n",
                "Requires-Dist",
            ),
            (b" lead\n", "line 1"),
            (b"Name: a\nnocolon\n", "line 2"),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let e = parse_core_metadata(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn header_splitting_table() {
        let parsed = |text: &str| headers(text).unwrap();
        let one = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        for (text, want) in [
            ("License: a\n\tb\n   c \n", one("license", "a\nb\nc")),
            ("License: a\r\n  b\r\n", one("license", "a\nb")),
            ("License: a\n  \nName: x\n", {
                let mut v = one("license", "a\n");
                v.extend(one("name", "x"));
                v
            }),
            ("Summary:\n", one("summary", "")),
            ("Summary :  spaced  \n", one("summary", "spaced")),
            (
                "Summary: no newline at the end",
                one("summary", "no newline at the end"),
            ),
            ("Summary: a: b\n", one("summary", "a: b")),
            (
                "Summary: =?utf-8?q?kept_raw?=\n",
                one("summary", "=?utf-8?q?kept_raw?="),
            ),
            ("Summary: caf\u{e9}\n", one("summary", "caf\u{e9}")),
            ("Name: a\r\n\r\nSummary: body\n", one("name", "a")),
            (
                "Name: a\n\n  indented body\nnot a header\n",
                one("name", "a"),
            ),
            ("", vec![]),
            ("\nName: body\n", vec![]),
        ] {
            assert_eq!(parsed(text), want, "{text:?}");
        }
        for (text, line) in [
            ("\tlead\n", 1),
            ("Name: a\nVersion: 1\nno colon\n", 3),
            ("Name: a\nno colon", 2),
        ] {
            let e = headers(text).unwrap_err().to_string();
            assert!(e.contains(&format!("line {line}:")), "{e}");
            assert!(!e.contains('"'), "no Debug quoting: {e}");
        }
    }

    #[test]
    fn reads_metadata_from_wheel_zip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo_pkg-1.0-py3-none-any.whl");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("demo_pkg/__init__.py", opts).unwrap();
        z.start_file("vendored-2.0.dist-info/METADATA", opts)
            .unwrap();
        z.write_all(b"Name: vendored\nVersion: 2.0\n").unwrap();
        z.start_file("demo_pkg-1.0.dist-info/METADATA", opts)
            .unwrap();
        z.write_all(b"Name: demo-pkg\nVersion: 1.0\nRequires-Dist: six\n")
            .unwrap();
        z.finish().unwrap();
        let m = read_wheel_metadata(&path).unwrap();
        assert_eq!((m.name.as_str(), m.requires_dist.len()), ("demo-pkg", 1));

        let empty = dir.path().join("e-1.0-py3-none-any.whl");
        zip::ZipWriter::new(std::fs::File::create(&empty).unwrap())
            .finish()
            .unwrap();
        let e = read_wheel_metadata(&empty).unwrap_err().to_string();
        assert!(
            e.contains("e-1.0-py3-none-any.whl") && e.contains("METADATA"),
            "{e}"
        );
    }
}
