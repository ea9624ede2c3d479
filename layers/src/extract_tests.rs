//! Tests of `extract.rs`, kept beside it so the module itself stays short.

use super::*;
use crate::compress::{decoder, Compression};
use crate::layer::write_layer;
use crate::tree::scan_tree;
use cap_std::ambient_authority;

/// A tar entry built from raw fields, bypassing every safety check of tar writers.
fn raw(name: &[u8], ty: tar::EntryType, mode: u32, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    raw(name.as_bytes(), tar::EntryType::Regular, 0o644, data, b"")
}
fn dir(name: &str) -> Vec<u8> {
    raw(
        format!("{name}/").as_bytes(),
        tar::EntryType::Directory,
        0o755,
        b"",
        b"",
    )
}
fn link(name: &str, target: &str) -> Vec<u8> {
    raw(
        name.as_bytes(),
        tar::EntryType::Symlink,
        0o777,
        b"",
        target.as_bytes(),
    )
}
fn tar_of(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut v = parts.concat();
    v.extend_from_slice(&[0u8; 1024]);
    v
}

fn open_dir(p: &std::path::Path) -> Dir {
    Dir::open_ambient_dir(p, ambient_authority()).unwrap()
}

#[test]
fn hostile_entries_are_rejected() {
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        ("dotdot", vec![file("../x", b"evil")], "'..'"),
        (
            "nested dotdot",
            vec![dir("a"), file("a/../../x", b"evil")],
            "'..'",
        ),
        ("absolute", vec![file("/tmp/x", b"evil")], "absolute"),
        ("backslash", vec![file("..\\x", b"evil")], "backslash"),
        ("drive", vec![file("C:/x", b"evil")], "drive letter"),
        ("unc", vec![file("//server/share/x", b"evil")], "absolute"),
        ("symlink escape", vec![link("l", "../x")], "escapes"),
        (
            "symlink absolute",
            vec![link("l", "/etc/passwd")],
            "absolute symlink",
        ),
        (
            "through symlink",
            vec![dir("d"), link("l", "d"), file("l/x", b"evil")],
            "through a symlink",
        ),
        (
            "dir through symlink",
            vec![dir("d"), link("l", "d"), dir("l/sub")],
            "through a symlink",
        ),
        (
            "hardlink",
            vec![
                file("a", b"x"),
                raw(b"b", tar::EntryType::Link, 0o644, b"", b"a"),
            ],
            "hardlink",
        ),
        (
            "char device",
            vec![raw(b"null", tar::EntryType::Char, 0o644, b"", b"")],
            "device",
        ),
        (
            "block device",
            vec![raw(b"sda", tar::EntryType::Block, 0o644, b"", b"")],
            "device",
        ),
        (
            "fifo",
            vec![raw(b"p", tar::EntryType::Fifo, 0o644, b"", b"")],
            "fifo",
        ),
        (
            "setuid",
            vec![raw(b"su", tar::EntryType::Regular, 0o4755, b"x", b"")],
            "setuid",
        ),
        (
            "sticky dir",
            vec![raw(b"t/", tar::EntryType::Directory, 0o1777, b"", b"")],
            "sticky",
        ),
        (
            "duplicate file",
            vec![file("a", b"1"), file("a", b"2")],
            "duplicate",
        ),
        (
            "file then dir",
            vec![file("a", b"1"), dir("a")],
            "duplicate",
        ),
        (
            "too big",
            vec![file("a", &[0u8; 600]), file("b", &[0u8; 600])],
            "size limit",
        ),
        ("control char", vec![file("a\u{7f}", b"")], "control"),
        (
            "non-utf8",
            vec![raw(b"a\xff", tar::EntryType::Regular, 0o644, b"", b"")],
            "non-UTF-8",
        ),
        (
            "global pax",
            vec![raw(b"g", tar::EntryType::XGlobalHeader, 0o644, b"", b"")],
            "unsupported",
        ),
        (
            // A record whose length prefix is wrong is skipped by the tar reader.
            "malformed pax record",
            vec![
                raw(b"P", tar::EntryType::XHeader, 0o644, b"99 path=evil\n", b""),
                file("innocent", b"x"),
            ],
            "malformed PAX record",
        ),
    ];
    for (label, parts, want) in cases {
        let root = tempfile::tempdir().unwrap();
        fs_err::create_dir(root.path().join("dest")).unwrap();
        let dest = open_dir(&root.path().join("dest"));
        let opts = ExtractOptions {
            manifest: None,
            max_total_bytes: 1000,
            ..Default::default()
        };
        let err = extract_layer(&tar_of(&parts)[..], &dest, &opts).unwrap_err();
        assert!(
            matches!(err, LayersError::Rejected { .. }) && err.to_string().contains(want),
            "{label}: {err}"
        );
        assert!(!root.path().join("x").exists(), "{label}: escaped");
        assert!(!root.path().join("dest/l/x").exists(), "{label}");
    }
}

#[test]
fn existing_symlink_on_disk_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("dest");
    fs_err::create_dir_all(root.path().join("outside")).unwrap();
    fs_err::create_dir(&d).unwrap();
    std::os::unix::fs::symlink("../outside", d.join("l")).unwrap();
    let err = extract_layer(
        &tar_of(&[file("l/x", b"evil")])[..],
        &open_dir(&d),
        &ExtractOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("through a symlink"), "{err}");
    assert!(!root.path().join("outside/x").exists());
}

fn make_src(root: &std::path::Path) -> Vec<TreeEntry> {
    fs_err::create_dir_all(root.join("python/bin")).unwrap();
    fs_err::create_dir_all(root.join("conan-home/profiles")).unwrap();
    fs_err::write(root.join("python/bin/python3.11"), b"binary").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(
        root.join("python/bin/python3.11"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("python3.11", root.join("python/bin/python3")).unwrap();
    fs_err::write(root.join("conan-home/profiles/default"), b"[settings]\n").unwrap();
    scan_tree(root).unwrap()
}

#[test]
fn round_trip_in_parallel_with_manifest() {
    let src = tempfile::tempdir().unwrap();
    let all = make_src(src.path());
    let manifest = Manifest::from_entries(all.clone());
    let out = tempfile::tempdir().unwrap();
    let (py, conan): (Vec<_>, Vec<_>) = all
        .iter()
        .cloned()
        .partition(|e| e.path.starts_with("python"));
    let mut layers = Vec::new();
    for (n, es) in [("py", py), ("conan", conan)] {
        layers.push(
            write_layer(n, src.path(), &es, 7, Compression::Zstd, out.path())
                .unwrap()
                .1,
        );
    }
    let dest_tmp = tempfile::tempdir().unwrap();
    let dest = open_dir(dest_tmp.path());
    let opts = ExtractOptions {
        manifest: Some(&manifest),
        max_total_bytes: 1 << 20,
        ..Default::default()
    };
    std::thread::scope(|s| {
        for p in &layers {
            let (dest, opts) = (&dest, &opts);
            s.spawn(move || {
                let r = decoder(Compression::Zstd, fs_err::File::open(p).unwrap()).unwrap();
                extract_layer(r, dest, opts).unwrap()
            });
        }
    });
    assert_eq!(scan_tree(dest_tmp.path()).unwrap(), all);
    let meta = fs_err::metadata(dest_tmp.path().join("python/bin/python3.11")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
}

#[test]
fn symlink_rules_come_before_the_manifest_lookup() {
    let root = tempfile::tempdir().unwrap();
    let dest = open_dir(root.path());
    let manifest = Manifest::from_entries(Vec::new());
    let opts = ExtractOptions {
        manifest: Some(&manifest),
        max_total_bytes: 1000,
        ..Default::default()
    };
    let err = extract_layer(&tar_of(&[link("up", "..")])[..], &dest, &opts).unwrap_err();
    assert!(err.to_string().contains("escapes the root"), "{err}");
}

#[test]
fn manifest_mismatches() {
    let src = tempfile::tempdir().unwrap();
    let all = make_src(src.path());
    let manifest = Manifest::from_entries(all);
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (vec![file("extra", b"")], "not listed"),
        (
            vec![
                dir("python"),
                dir("python/bin"),
                raw(
                    b"python/bin/python3.11",
                    tar::EntryType::Regular,
                    0o644,
                    b"binary",
                    b"",
                ),
            ],
            "mode 0644",
        ),
        (
            vec![
                dir("python"),
                dir("python/bin"),
                raw(
                    b"python/bin/python3.11",
                    tar::EntryType::Regular,
                    0o755,
                    b"binarx",
                    b"",
                ),
            ],
            "content",
        ),
        (
            vec![
                dir("python"),
                dir("python/bin"),
                raw(
                    b"python/bin/python3.11",
                    tar::EntryType::Regular,
                    0o755,
                    b"bin",
                    b"",
                ),
            ],
            "size 3",
        ),
        (
            vec![
                dir("python"),
                dir("python/bin"),
                link("python/bin/python3", "python3.12"),
            ],
            "link target",
        ),
        (vec![file("python", b"")], "the layer has a regular file"),
    ];
    for (parts, want) in cases {
        // Inline writes, and files queued to writer threads.
        for queued in [false, true] {
            let t = tempfile::tempdir().unwrap();
            let dest = open_dir(t.path());
            let run = |writers: Option<&FileWriters>| {
                let opts = ExtractOptions {
                    manifest: Some(&manifest),
                    max_total_bytes: 1 << 20,
                    writers,
                };
                extract_layer(&tar_of(&parts)[..], &dest, &opts)
            };
            let err = if queued {
                crate::file_writers::with_file_writers(&dest, 2, |w| run(Some(w)))
            } else {
                run(None)
            }
            .unwrap_err();
            assert!(
                matches!(err, LayersError::ManifestMismatch { .. })
                    && err.to_string().contains(want),
                "{want} (queued: {queued}): {err}"
            );
            // A file whose content does not match is never left behind.
            assert!(
                !t.path().join("python/bin/python3.11").is_file(),
                "{want} (queued: {queued})"
            );
        }
    }
}

#[test]
fn queued_and_inline_writes_give_the_same_tree() {
    let src = tempfile::tempdir().unwrap();
    make_src(src.path());
    // A file above the queueing threshold takes the streaming path next to queued ones.
    let big = vec![7u8; MAX_QUEUED_FILE as usize + 1];
    fs_err::write(src.path().join("python/big.bin"), &big).unwrap();
    let all = scan_tree(src.path()).unwrap();
    let manifest = Manifest::from_entries(all.clone());
    let out = tempfile::tempdir().unwrap();
    let (_, layer) =
        write_layer("all", src.path(), &all, 7, Compression::Zstd, out.path()).unwrap();
    let dest_tmp = tempfile::tempdir().unwrap();
    let dest = open_dir(dest_tmp.path());
    let entries = crate::file_writers::with_file_writers(&dest, 3, |w| {
        let opts = ExtractOptions {
            manifest: Some(&manifest),
            max_total_bytes: 1 << 30,
            writers: Some(w),
        };
        let r = decoder(Compression::Zstd, fs_err::File::open(&layer).unwrap()).unwrap();
        extract_layer(r, &dest, &opts)
    })
    .unwrap();
    assert_eq!(entries, all);
    assert_eq!(scan_tree(dest_tmp.path()).unwrap(), all);
}

#[test]
fn reads_to_eof_and_tolerates_gnu_and_pax_names() {
    // Long names written by the tar crate (GNU long-name entries) are accepted.
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("{}/f", "d".repeat(150));
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"hi"[..]).unwrap();
    let mut bytes = b.into_inner().unwrap();
    // Trailing bytes after the end marker must still be consumed (digest check at EOF).
    bytes.extend_from_slice(&[0u8; 4096]);
    let t = tempfile::tempdir().unwrap();
    let mut reader = &bytes[..];
    let got = extract_layer(&mut reader, &open_dir(t.path()), &ExtractOptions::default()).unwrap();
    assert!(reader.is_empty(), "{} bytes left unread", reader.len());
    assert_eq!(got[0].path, long);
    assert_eq!(fs_err::read(t.path().join(&long)).unwrap(), b"hi");
}
