//! Reading a wheel archive (PEP 427/491) into memory, with every member path, size and
//! hash checked before anything is written to disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};
use std::path::Path;

use super::record::{parse_record, verify_record, RecordProblem};
use crate::PypkgError;

/// Largest wheel file we accept.
pub const MAX_WHEEL_BYTES: u64 = 1 << 30;
/// Largest total uncompressed size of all members.
pub const MAX_UNPACKED_BYTES: u64 = 2 << 30;
/// Most members one wheel may have.
pub const MAX_MEMBERS: usize = 200_000;

/// One regular file from a wheel.
#[derive(Debug, Clone)]
pub struct WheelMember {
    /// Path inside the wheel.
    pub name: String,
    /// Contents.
    pub data: Vec<u8>,
    /// Whether any exec bit was set in the zip's unix mode.
    pub executable: bool,
}

/// A fully read and verified wheel.
#[derive(Debug, Clone)]
pub struct WheelContents {
    /// Project name from METADATA.
    pub name: String,
    /// Version from METADATA.
    pub version: String,
    /// `<name>-<version>.dist-info`, as spelled in the wheel.
    pub dist_info: String,
    /// `<name>-<version>.data`, as the wheel would spell it.
    pub data_dir: String,
    /// Every regular file except RECORD signatures, sorted by name.
    pub members: Vec<WheelMember>,
    /// Where the wheel's RECORD disagrees with its files (installed anyway, see
    /// [`super::record::verify_record`]).
    pub record_problems: Vec<RecordProblem>,
}

/// Checks one zip member name: relative, `/`-separated, no `.`/`..`, no drive letters or
/// characters that are unsafe on Windows. Directory names may end with `/`.
pub fn check_member_path(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains('\\') {
        return Err("backslash in name");
    }
    if name.contains('\0') {
        return Err("NUL in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("drive letter");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for part in trimmed.split('/') {
        match part {
            "" => return Err("empty path component"),
            "." | ".." => return Err("`.` or `..` component"),
            _ if part.contains(':') => return Err("`:` in name"),
            _ => {}
        }
    }
    Ok(())
}

/// Number of entries the zip's end-of-central-directory record declares (zip64 aware).
/// The zip crate keys entries by name, so comparing this with its count reveals duplicates.
pub fn declared_entry_count(bytes: &[u8]) -> Option<u64> {
    const EOCD_SIG: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const LOC64_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    const EOCD64_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    let min = bytes.len().saturating_sub(22 + 0xffff);
    let eocd = (min..=bytes.len().checked_sub(22)?)
        .rev()
        .find(|&i| bytes[i..i + 4] == EOCD_SIG)?;
    let count = u16_at(eocd + 10)?;
    if count != 0xffff {
        return Some(u64::from(count));
    }
    let loc = eocd.checked_sub(20)?;
    if bytes.get(loc..loc + 4)? != LOC64_SIG {
        return None;
    }
    let rec = usize::try_from(u64_at(loc + 8)?).ok()?;
    if bytes.get(rec..rec + 4)? != EOCD64_SIG {
        return None;
    }
    u64_at(rec + 32)
}

/// The Unix mode (external attributes >> 16) of the central directory header at `offset`, if
/// it is there and non-zero.
pub fn central_unix_mode(bytes: &[u8], offset: u64) -> Option<u32> {
    const CENTRAL_SIG: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    let start = usize::try_from(offset).ok()?;
    let header = bytes.get(start..start.checked_add(42)?)?;
    if header[..4] != CENTRAL_SIG {
        return None;
    }
    let attrs = u32::from_le_bytes(header[38..42].try_into().ok()?);
    Some(attrs >> 16).filter(|&m| m != 0)
}

/// Key/value headers of an email-style metadata file (`WHEEL`, `METADATA`), up to the body.
pub fn parse_headers(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.entry(k.trim().to_ascii_lowercase())
                .or_insert_with(|| v.trim().to_string());
        }
    }
    out
}

/// PEP 503 normalization, used to match names across the file name and dist-info.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.extend(c.to_lowercase());
            last_sep = false;
        }
    }
    out
}

/// Reads and verifies `wheel` completely. `filename` is the wheel's real file name (a cached
/// file is named by its hash), checked against the metadata; errors name `wheel`.
pub fn read_wheel(wheel: &Path, filename: &str) -> Result<WheelContents, PypkgError> {
    let w = || wheel.to_path_buf();
    let size = fs_err::metadata(wheel)?.len();
    if size > MAX_WHEEL_BYTES {
        return Err(PypkgError::WheelTooLarge {
            wheel: w(),
            what: format!("file size {size}"),
            limit: MAX_WHEEL_BYTES,
        });
    }
    let bytes = fs_err::read(wheel)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.as_slice()))
        .map_err(|source| PypkgError::WheelZip { wheel: w(), source })?;
    if archive.len() > MAX_MEMBERS {
        return Err(PypkgError::WheelTooLarge {
            wheel: w(),
            what: format!("member count {}", archive.len()),
            limit: MAX_MEMBERS as u64,
        });
    }
    if declared_entry_count(&bytes) != Some(archive.len() as u64) {
        return Err(PypkgError::WheelDuplicate { wheel: w() });
    }

    let mut files: BTreeMap<String, WheelMember> = BTreeMap::new();
    let mut lowercase_names = BTreeSet::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|source| PypkgError::WheelZip { wheel: w(), source })?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| PypkgError::WheelUnsafePath {
                wheel: w(),
                member: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                why: "name is not UTF-8",
            })?
            .to_string();
        check_member_path(&name).map_err(|why| PypkgError::WheelUnsafePath {
            wheel: w(),
            member: name.clone(),
            why,
        })?;
        // The Unix mode in the high half of the external attributes, whichever system the
        // zip says made it: wheels built on Windows carry real modes there too (and pip reads
        // them the same way).
        let mode = central_unix_mode(&bytes, entry.central_header_start()).or(entry.unix_mode());
        if entry.is_symlink() || mode.is_some_and(|m| m & 0o170000 == 0o120000) {
            return Err(PypkgError::WheelSymlink {
                wheel: w(),
                member: name,
            });
        }
        if entry.is_dir() {
            continue;
        }
        // The tree must also unpack on case-insensitive file systems (macOS, Windows).
        if !lowercase_names.insert(name.to_lowercase()) {
            return Err(PypkgError::WheelUnsafePath {
                wheel: w(),
                member: name,
                why: "differs from another member only by case",
            });
        }
        let declared = entry.size();
        total = total.saturating_add(declared);
        if total > MAX_UNPACKED_BYTES {
            return Err(PypkgError::WheelTooLarge {
                wheel: w(),
                what: "total unpacked size".into(),
                limit: MAX_UNPACKED_BYTES,
            });
        }
        let mut data = Vec::with_capacity(usize::try_from(declared.min(1 << 24)).unwrap_or(0));
        (&mut entry)
            .take(declared.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| PypkgError::WheelVerify {
                wheel: w(),
                member: name.clone(),
                why: format!("cannot decompress: {e}"),
            })?;
        if data.len() as u64 != declared {
            return Err(PypkgError::WheelVerify {
                wheel: w(),
                member: name,
                why: format!(
                    "size {} differs from the zip header's {declared}",
                    data.len()
                ),
            });
        }
        let executable = mode.is_some_and(|m| m & 0o170000 == 0o100000 && m & 0o111 != 0);
        files.insert(
            name.clone(),
            WheelMember {
                name,
                data,
                executable,
            },
        );
    }

    let dist_info = find_dist_info(wheel, &files)?;
    let meta_text = |file: &str| -> Result<String, PypkgError> {
        let key = format!("{dist_info}/{file}");
        let m = files.get(&key).ok_or_else(|| PypkgError::WheelLayout {
            wheel: w(),
            why: format!("missing {key}"),
        })?;
        String::from_utf8(m.data.clone()).map_err(|_| PypkgError::WheelLayout {
            wheel: w(),
            why: format!("{key} is not UTF-8"),
        })
    };
    let wheel_meta = parse_headers(&meta_text("WHEEL")?);
    check_wheel_version(wheel, &wheel_meta)?;
    let purelib = wheel_meta
        .get("root-is-purelib")
        .map(|v| v.to_ascii_lowercase());
    // Checked, not kept: purelib and platlib are one dir here.
    match purelib.as_deref() {
        Some("true") | Some("false") => {}
        other => {
            let got = match other {
                Some(v) => format!("got \"{}\"", envpack_layers::shown_name(v)),
                None => "it is missing".to_string(),
            };
            return Err(PypkgError::WheelLayout {
                wheel: w(),
                why: format!("WHEEL Root-Is-Purelib must be true or false, {got}"),
            });
        }
    }
    let metadata = parse_headers(&meta_text("METADATA")?);
    let (name, version) = match (metadata.get("name"), metadata.get("version")) {
        (Some(n), Some(v)) => (n.clone(), v.clone()),
        _ => {
            return Err(PypkgError::WheelLayout {
                wheel: w(),
                why: "METADATA lacks Name or Version".into(),
            })
        }
    };
    check_names_agree(wheel, filename, &dist_info, &name)?;
    let rows = parse_record(&meta_text("RECORD")?).map_err(|source| PypkgError::WheelRecord {
        wheel: w(),
        source: Box::new(source),
    })?;
    let record_problems = verify_record(&dist_info, &rows, &files);

    let signatures = [
        format!("{dist_info}/RECORD.jws"),
        format!("{dist_info}/RECORD.p7s"),
    ];
    let data_dir = format!(
        "{}.data",
        &dist_info[..dist_info.len() - ".dist-info".len()]
    );
    Ok(WheelContents {
        name,
        version,
        dist_info,
        data_dir,
        members: files
            .into_values()
            .filter(|m| !signatures.contains(&m.name))
            .collect(),
        record_problems,
    })
}

/// The single top-level `*.dist-info` directory.
fn find_dist_info(
    wheel: &Path,
    files: &BTreeMap<String, WheelMember>,
) -> Result<String, PypkgError> {
    let dirs: BTreeSet<&str> = files
        .keys()
        .filter_map(|n| n.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    match dirs.len() {
        1 => Ok(dirs.into_iter().next().unwrap_or_default().to_string()),
        n => Err(PypkgError::WheelLayout {
            wheel: wheel.to_path_buf(),
            why: format!("expected exactly one .dist-info directory, found {n}"),
        }),
    }
}

/// Only major version 1 of the wheel format is understood.
fn check_wheel_version(wheel: &Path, meta: &BTreeMap<String, String>) -> Result<(), PypkgError> {
    let version = meta.get("wheel-version").map(String::as_str).unwrap_or("");
    let major = version.split('.').next().unwrap_or("");
    if major != "1" || !version.split('.').all(|p| p.parse::<u32>().is_ok()) {
        return Err(PypkgError::WheelLayout {
            wheel: wheel.to_path_buf(),
            why: format!(
                "unsupported Wheel-Version \"{}\" (need 1.x)",
                envpack_layers::shown_name(version)
            ),
        });
    }
    if version != "1.0" {
        tracing::warn!(wheel = %wheel.display(), version, "newer Wheel-Version 1.x than 1.0; installing anyway");
    }
    Ok(())
}

/// The dist-info directory and the wheel's file name must name the project in METADATA.
fn check_names_agree(
    wheel: &Path,
    filename: &str,
    dist_info: &str,
    name: &str,
) -> Result<(), PypkgError> {
    let want = normalize_name(name);
    let stem = &dist_info[..dist_info.len() - ".dist-info".len()];
    let info_name = stem.rsplit_once('-').map(|(n, _)| n).unwrap_or(stem);
    let file_name = filename.split('-').next().unwrap_or("");
    for (what, got) in [("dist-info directory", info_name), ("file name", file_name)] {
        if normalize_name(got) != want {
            return Err(PypkgError::WheelLayout {
                wheel: wheel.to_path_buf(),
                why: format!(
                    "{what} names \"{}\" but METADATA names \"{}\"",
                    envpack_layers::shown_name(got),
                    envpack_layers::shown_name(name)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths() {
        for (name, ok) in [
            ("pkg/__init__.py", true),
            ("pkg/", true),
            ("a-1.0.data/scripts/x", true),
            ("/etc/passwd", false),
            ("../x", false),
            ("a/../../x", false),
            ("a/./x", false),
            ("a\\b", false),
            ("C:/x", false),
            ("c:x", false),
            ("a//b", false),
            ("a/b:c", false),
            ("", false),
        ] {
            assert_eq!(check_member_path(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize_name("Jinja2"), "jinja2");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("A__b-.C"), "a-b-c");
    }

    #[test]
    fn headers_stop_at_body() {
        let h = parse_headers(
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: a\nTag: b\n\nName: body\n",
        );
        assert_eq!(h["wheel-version"], "1.0");
        assert_eq!(h["tag"], "a");
        assert!(!h.contains_key("name"));
    }

    #[test]
    fn central_modes() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            for (n, mode) in [("exe", 0o755), ("plain", 0o644)] {
                let o = zip::write::SimpleFileOptions::default().unix_permissions(mode);
                z.start_file(n, o).unwrap();
            }
            z.finish().unwrap();
        }
        let bytes = buf.into_inner();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes.as_slice())).unwrap();
        for (i, want) in [0o100755, 0o100644].into_iter().enumerate() {
            let offset = archive.by_index(i).unwrap().central_header_start();
            assert_eq!(central_unix_mode(&bytes, offset), Some(want));
        }
        assert_eq!(
            central_unix_mode(&bytes, 0),
            None,
            "a local header is not central"
        );
        assert_eq!(central_unix_mode(&bytes, u64::MAX), None);
        assert_eq!(central_unix_mode(b"PK\x01\x02", 0), None, "truncated");
    }

    #[test]
    fn eocd_count() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let o = zip::write::SimpleFileOptions::default();
            for n in ["a", "b", "c"] {
                z.start_file(n, o).unwrap();
            }
            z.finish().unwrap();
        }
        assert_eq!(declared_entry_count(buf.get_ref()), Some(3));
        assert_eq!(declared_entry_count(b"not a zip"), None);
    }
}
