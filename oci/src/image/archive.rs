//! `oci-archive`: an image layout as one uncompressed tar with our header rules (sorted,
//! epoch mtimes, uid/gid 0), so the archive is as reproducible as the layout.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use envpack_layers::digest::{HashingWriter, Sha256Digest};
use envpack_layers::layer::normalize_entries;
use envpack_layers::tarfmt::{entry_header, padding, END_OF_ARCHIVE};
use envpack_layers::tree::{scan_tree, EntryKind};

use crate::error::Result;

/// Writes the layout at `layout_dir` as a tar at `out` (via a temp file and a rename);
/// returns the archive's sha256 and size.
pub fn write_layout_archive(
    layout_dir: &Path,
    out: &Path,
    epoch: u64,
) -> Result<(Sha256Digest, u64)> {
    let entries = normalize_entries(&scan_tree(layout_dir)?)?;
    let tmp = out.with_file_name(format!(
        ".{}.{}.tmp",
        out.file_name()
            .map_or_else(|| "oci-archive".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let file = fs_err::File::create(&tmp)?;
    let result = (|| -> Result<(Sha256Digest, u64)> {
        let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let mut buf = vec![0u8; 1 << 16];
        for e in &entries {
            w.write_all(&entry_header(e, epoch)?)?;
            if let EntryKind::File { size, .. } = &e.kind {
                let mut path = layout_dir.to_path_buf();
                path.extend(e.path.split('/'));
                let mut f = fs_err::File::open(&path)?.take(*size);
                let mut done = 0u64;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    w.write_all(&buf[..n])?;
                    done += n as u64;
                }
                if done != *size {
                    return Err(std::io::Error::other(format!(
                        "{} shrank while archiving ({done} of {size} bytes)",
                        path.display()
                    ))
                    .into());
                }
                w.write_all(&END_OF_ARCHIVE[..padding(*size)])?;
            }
        }
        w.write_all(&END_OF_ARCHIVE)?;
        let (digest, size, buffered) = w.into_parts();
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((digest, size))
    })();
    match result {
        Ok(done) => {
            fs_err::rename(&tmp, out)?;
            Ok(done)
        }
        Err(e) => {
            let _ = fs_err::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_is_sorted_normalized_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        fs_err::create_dir_all(layout.join("blobs/sha256")).unwrap();
        fs_err::write(layout.join("blobs/sha256/ab"), b"blob").unwrap();
        fs_err::write(layout.join("oci-layout"), b"{}").unwrap();
        fs_err::write(layout.join("index.json"), b"[]").unwrap();
        let a = dir.path().join("a.tar");
        let (d1, n1) = write_layout_archive(&layout, &a, 1_700_000_000).unwrap();
        assert_eq!(Sha256Digest::of_file(&a).unwrap(), (d1, n1));
        let out = std::process::Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&a)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let names: Vec<&str> = text
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "blobs/",
                "blobs/sha256/",
                "blobs/sha256/ab",
                "index.json",
                "oci-layout"
            ]
        );
        assert!(
            text.lines()
                .all(|l| l.contains(" 0/0 ") && l.contains("2023-11-14")),
            "{text}"
        );
        // Touching mtimes doesn't change the archive.
        fs_err::write(layout.join("index.json"), b"[]").unwrap();
        let b = dir.path().join("b.tar");
        let (d2, _) = write_layout_archive(&layout, &b, 1_700_000_000).unwrap();
        assert_eq!(d1, d2);
        assert_eq!(
            fs_err::read_dir(dir.path()).unwrap().count(),
            3,
            "temp file left"
        );
    }
}
