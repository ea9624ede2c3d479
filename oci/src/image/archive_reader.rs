//! Reading an oci-archive: unpacks the layout members (and nothing else) into a directory.

use std::path::Path;

use crate::error::{OciError, Result};

/// Where a member of an oci-archive may go, or `None` for a name no layout contains.
fn member_path(name: &str) -> Option<String> {
    let name = name.trim_start_matches("./").trim_end_matches('/');
    let ok = match name {
        "" | "blobs" | "blobs/sha256" | "oci-layout" | "index.json" => true,
        _ => name.strip_prefix("blobs/sha256/").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }),
    };
    ok.then(|| name.to_string())
}

/// Unpacks the oci-archive at `archive` into the (empty) directory `dest`. Only directories
/// and regular files at layout paths are accepted, so no member can land outside `dest`.
pub fn extract_layout_archive(archive: &Path, dest: &Path) -> Result<()> {
    let file = fs_err::File::open(archive)?;
    let mut tar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
    let bad = |detail: String| OciError::BadLayout {
        what: archive.display().to_string(),
        detail,
    };
    fs_err::create_dir_all(dest.join("blobs").join("sha256"))?;
    for entry in tar.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let rel = member_path(&name).ok_or_else(|| {
            bad(format!(
                "member \"{}\" is not part of an OCI image layout",
                envpack_layers::shown_name(&name)
            ))
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() || rel.is_empty() || rel == "blobs" || rel == "blobs/sha256" {
            return Err(bad(format!(
                "member \"{}\" must be a regular file",
                envpack_layers::shown_name(&name)
            )));
        }
        let out = dest.join(&rel);
        let mut f = fs_err::File::create(&out)?;
        std::io::copy(&mut entry, &mut f)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", out.display())))?;
    }
    if !dest.join("index.json").is_file() || !dest.join("oci-layout").is_file() {
        return Err(bad("no index.json or oci-layout member".into()));
    }
    Ok(())
}

/// Whether the file at `path` looks like an oci-archive (a tar whose members include
/// `oci-layout` or `index.json` before any envpack artifact index).
pub fn is_layout_archive(path: &Path) -> Result<bool> {
    let file = fs_err::File::open(path)?;
    let mut tar = tar::Archive::new(file);
    let Ok(entries) = tar.entries() else {
        return Ok(false);
    };
    for entry in entries.take(4) {
        let Ok(entry) = entry else { return Ok(false) };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name.trim_start_matches("./");
        if name == envpack_layers::artifact::INDEX_NAME {
            return Ok(false);
        }
        if member_path(name).is_some() && !name.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        let hex = "ab".repeat(32);
        for (name, ok) in [
            ("oci-layout", true),
            ("./index.json", true),
            ("blobs/", true),
            ("blobs/sha256/", true),
            (&*format!("blobs/sha256/{hex}"), true),
            ("blobs/sha256/abc", false),
            ("../etc/passwd", false),
            (&*format!("blobs/sha256/../{hex}"), false),
            ("other", false),
        ] {
            assert_eq!(member_path(name).is_some(), ok, "{name}");
        }
    }

    #[test]
    fn round_trips_our_archive_and_rejects_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        let hex = "cd".repeat(32);
        fs_err::create_dir_all(layout.join("blobs/sha256")).unwrap();
        fs_err::write(layout.join("blobs/sha256").join(&hex), b"blob").unwrap();
        fs_err::write(layout.join("oci-layout"), b"{}").unwrap();
        fs_err::write(layout.join("index.json"), b"[]").unwrap();
        let a = dir.path().join("a.tar");
        super::super::archive::write_layout_archive(&layout, &a, 0).unwrap();
        assert!(is_layout_archive(&a).unwrap());
        let out = dir.path().join("out");
        extract_layout_archive(&a, &out).unwrap();
        assert_eq!(
            fs_err::read(out.join("blobs/sha256").join(&hex)).unwrap(),
            b"blob"
        );
        assert_eq!(fs_err::read(out.join("index.json")).unwrap(), b"[]");

        let evil_src = dir.path().join("evil");
        fs_err::create_dir_all(&evil_src).unwrap();
        fs_err::write(evil_src.join("x"), b"x").unwrap();
        let evil = dir.path().join("evil.tar");
        let mut b = tar::Builder::new(fs_err::File::create(&evil).unwrap());
        b.append_path_with_name(evil_src.join("x"), "oci-layout")
            .unwrap();
        b.append_path_with_name(evil_src.join("x"), "etc/passwd")
            .unwrap();
        b.finish().unwrap();
        drop(b);
        let err = extract_layout_archive(&evil, &dir.path().join("o2")).unwrap_err();
        assert!(err.to_string().contains("etc/passwd"), "{err}");
    }
}
