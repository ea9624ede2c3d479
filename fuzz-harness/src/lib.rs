//! The fuzz targets' bodies. Each takes untrusted bytes, may reject them, and panics only when
//! an invariant breaks (a panic is the bug the fuzzer reports). The cargo-fuzz targets in
//! `fuzz/fuzz_targets/` call these; `tests/fuzz_smoke.rs` replays the seed corpus through them.

use envpack_layers::artifact::{ArtifactIndex, ArtifactReader};
use envpack_layers::extract::{extract_layer, ExtractOptions};
use envpack_layers::file_writers::{with_file_writers, FileWriters};
use envpack_layers::tree::scan_tree;
use std::io::Read;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for runners that take a name.
pub const TARGETS: [(&str, Target); 6] = [
    ("layer_extract", layer_extract),
    ("zstd_frames", zstd_frames),
    ("artifact_reader", artifact_reader),
    ("lock_parse", lock_parse),
    ("wheel_metadata", wheel_metadata),
    ("oci_json", oci_json),
];

/// A decompressed layer tar: extraction may reject it, never write outside the destination,
/// and files queued to writer threads give the same verdict and tree as inline writes.
pub fn layer_extract(data: &[u8]) {
    let inline = extract_into(data, false);
    let queued = extract_into(data, true);
    if let (Some(inline), Some(queued)) = (inline, queued) {
        assert_eq!(
            inline.is_ok(),
            queued.is_ok(),
            "inline and queued extraction disagree: {inline:?} vs {queued:?}"
        );
        if let (Ok(a), Ok(b)) = (inline, queued) {
            assert_eq!(a, b, "inline and queued extraction made different trees");
        }
    }
}

/// Extracts `data` into a fresh directory; the tree it made, or the error's text. None when
/// the scratch space itself could not be made.
fn extract_into(
    data: &[u8],
    queued: bool,
) -> Option<Result<Vec<envpack_layers::tree::TreeEntry>, String>> {
    let outer = tempfile::tempdir().ok()?;
    let dest_path = outer.path().join("dest");
    std::fs::create_dir(&dest_path).ok()?;
    let dest = cap_std::fs::Dir::open_ambient_dir(&dest_path, cap_std::ambient_authority()).ok()?;
    let run = |writers: Option<&FileWriters>| {
        let opts = ExtractOptions {
            manifest: None,
            max_total_bytes: 1 << 20,
            writers,
        };
        extract_layer(data, &dest, &opts)
    };
    let result = if queued {
        with_file_writers(&dest, 2, |w| run(Some(w)))
    } else {
        run(None)
    };
    let siblings: Vec<_> = std::fs::read_dir(outer.path())
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(
        siblings,
        vec![std::ffi::OsString::from("dest")],
        "extraction wrote outside its destination"
    );
    let tree = result
        .map_err(|e| e.to_string())
        .and_then(|_| scan_tree(&dest_path).map_err(|e| e.to_string()));
    if let Ok(entries) = &tree {
        links_stay_inside(&dest_path, entries);
    }
    Some(tree)
}

/// The unpacker's link rule (checked on every manifest) against the kernel: when the rule
/// accepts the tree, every link the kernel can resolve lands inside the tree.
fn links_stay_inside(dest: &std::path::Path, entries: &[envpack_layers::tree::TreeEntry]) {
    if envpack_layers::links::check_links(entries).is_err() {
        return;
    }
    let Ok(root) = std::fs::canonicalize(dest) else {
        return;
    };
    for e in entries {
        if !matches!(e.kind, envpack_layers::tree::EntryKind::Symlink { .. }) {
            continue;
        }
        if let Ok(resolved) = std::fs::canonicalize(dest.join(&e.path)) {
            assert!(
                resolved.starts_with(&root),
                "link {} passed the link rule but resolves to {}",
                e.path,
                resolved.display()
            );
        }
    }
}

/// A zstd layer stream: the parallel frame decoder every layer read goes through gives the
/// serial decoder's verdict, and the same bytes (on failure, both a prefix of the same bytes:
/// how far libzstd gets before an error depends on the reader's buffer sizes).
pub fn zstd_frames(data: &[u8]) {
    use envpack_layers::compress::{decoder, serial_decoder, Compression};
    let drain = |r: Result<Box<dyn Read + Send + '_>, _>| -> (Vec<u8>, bool) {
        let Ok(mut r) = r else {
            return (Vec::new(), false);
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4093];
        // Bombs stop at 64 MiB on both sides alike.
        while out.len() < 64 << 20 {
            match r.read(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => return (out, false),
            }
        }
        (out, true)
    };
    let (want, want_ok) = drain(serial_decoder(Compression::Zstd, data));
    let (got, got_ok) = drain(decoder(Compression::Zstd, data));
    assert_eq!(got_ok, want_ok, "parallel and serial zstd verdicts differ");
    let n = got.len().min(want.len());
    if got_ok {
        assert!(got == want, "parallel and serial zstd bytes differ");
    } else {
        assert!(
            got[..n] == want[..n],
            "parallel and serial zstd bytes differ before the error"
        );
    }
}

/// A whole portable artifact (or its index JSON): open, check every blob, read every layer.
pub fn artifact_reader(data: &[u8]) {
    let _ = ArtifactIndex::from_json(data);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("a.envpack.tar");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(reader) = ArtifactReader::open(&path) else {
        return;
    };
    let _ = reader.verify_layers();
    let _ = reader.verify_uncompressed();
}

/// A lock or spec: a parsed lock re-serializes to text that parses to the same lock.
pub fn lock_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = envpack::spec::parse(text, "fuzz.toml");
    if let Ok(lock) = envpack::lock::Lock::parse(text, "fuzz.lock") {
        let again = lock.to_toml();
        match envpack::lock::Lock::parse(&again, "fuzz.lock") {
            Ok(back) => assert_eq!(back.to_toml(), again, "lock serialization is not stable"),
            Err(e) => panic!("a serialized lock does not parse: {e}\n{again}"),
        }
    }
}

/// A wheel's METADATA and RECORD.
pub fn wheel_metadata(data: &[u8]) {
    let _ = envpack_pypkg::parse_core_metadata(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = envpack_pypkg::parse_record(text);
    }
}

/// OCI JSON read from layouts and registries, and the env manifest.
pub fn oci_json(data: &[u8]) {
    let _ = envpack_layers::manifest::Manifest::parse(data);
    for media_type in ["", "application/vnd.oci.image.index.v1+json"] {
        if let Ok(doc) = envpack_oci::Document::parse(media_type, data, "fuzz") {
            let _ = doc.children();
        }
    }
    let _ = envpack_oci::ConfigLayers::parse(data, "fuzz");
    let _ = envpack_oci::media_type_of("", data);
}
