//! The second half of the hostile corpus: layer contents against the manifest, decompression
//! bombs, and the outer artifact and its index.

use super::*;

pub fn cases() -> Vec<Case> {
    use raw::*;
    vec![
        // Content against the manifest.
        case(
            "unlisted-entry",
            "manifest",
            &["lib/smuggled.txt", "not listed in the manifest"],
            in_layer("python", file("lib/smuggled.txt", b"x")),
        ),
        case(
            "content-differs",
            "manifest",
            &["lib/ok.txt", "does not match the manifest"],
            env(|e| {
                // Same size, other bytes: only the content digest can tell.
                let m = e
                    .manifest
                    .iter_mut()
                    .find(|m| m.path == "lib/ok.txt")
                    .unwrap();
                m.kind = raw::good_file("lib/ok.txt", b"no\n", false).1.kind;
            }),
        ),
        case(
            "missing-entry",
            "manifest",
            &["missing from the artifact's layers", "lib/gone"],
            env(|e| e.manifest.push(raw::good_file("lib/gone", b"x", false).1)),
        ),
        // Decompression bomb: the layer expands beyond what the index declares.
        case(
            "bomb-file-size",
            "decompression bomb",
            &["lib/zeros", "exceeds the size limit"],
            move |id| {
                let mut e = EnvLayers::small(id);
                e.layer_mut("python")
                    .extend(file("lib/zeros", &vec![0u8; 4 << 20]));
                let mut p = e.into_parts();
                p.index.layers[0].uncompressed_size = 64 << 10;
                raw::outer_tar(&p.members())
            },
        ),
        case(
            "bomb-headers",
            "decompression bomb",
            &["\"python\"", "decompresses to more than"],
            move |id| {
                // Repeated directory entries are legal one by one, and carry no file bytes
                // for the size limit to count; only the declared tar length stops them.
                let mut e = EnvLayers::small(id);
                e.layer_mut("python").extend(dir("lib").repeat(8192));
                let mut p = e.into_parts();
                p.index.layers[0].uncompressed_size = 64 << 10;
                raw::outer_tar(&p.members())
            },
        ),
        // The outer artifact and its index.
        case(
            "lock-tampered",
            "index/lock tampering",
            &["envpack.lock", "sha256 mismatch"],
            parts(|p| p.lock.extend_from_slice(b"evil = true\n")),
        ),
        case(
            "index-lock-digest",
            "index/lock tampering",
            &["envpack.lock", "sha256 mismatch"],
            parts(|p| p.index.lock_sha256 = Sha256Digest::of_bytes(b"other")),
        ),
        case(
            "index-env-id-traversal",
            "index/lock tampering",
            &["../evil", "invalid env id"],
            parts(|p| p.index.env_id = "../evil".into()),
        ),
        case(
            "index-env-id-altered",
            "index/lock tampering",
            &[
                "env_id",
                "hostile-index-env-id-altered",
                "the index was altered",
            ],
            parts(|p| p.index.env_id = "looks-legit".into()),
        ),
        case(
            "index-platform-altered",
            "index/lock tampering",
            &["platform", "linux-x86_64", "the index was altered"],
            parts(|p| p.index.platform = "linux-aarch64".into()),
        ),
        case(
            "index-layer-renamed",
            "index/lock tampering",
            &["layers (names and diff_ids)", "the index was altered"],
            parts(|p| p.index.layers[1].name = "conam".into()),
        ),
        case(
            "index-diff-id",
            "index/lock tampering",
            &["diff_id", "the index was altered"],
            parts(|p| p.index.layers[0].diff_id = Sha256Digest::of_bytes(b"x")),
        ),
        case(
            "index-uncompressed-size",
            "index/lock tampering",
            // A data layer's length is checked at its end (its content file by file).
            &[
                "\"conan\"",
                "decompresses to 2560 bytes, the index declares 3072",
            ],
            parts(|p| p.index.layers[1].uncompressed_size += 512),
        ),
        case(
            "index-blob-size",
            "index/lock tampering",
            &["blobs/sha256/", "the index says"],
            index_json(|v| {
                let s = v["layers"][0]["size"].as_u64().unwrap();
                v["layers"][0]["size"] = (s + 1).into();
            }),
        ),
        case(
            "index-digest",
            "index/lock tampering",
            &["blobs/sha256/", "was expected"],
            index_json(|v| v["layers"][1]["digest"] = format!("sha256:{}", "ab".repeat(32)).into()),
        ),
        case(
            "index-schema",
            "index/lock tampering",
            &["schema 2 is not supported"],
            index_json(|v| v["schema"] = 2.into()),
        ),
        case(
            "index-unknown-field",
            "index/lock tampering",
            &["envpack-artifact.json", "unknown field"],
            index_json(|v| v["layers"][0]["mode"] = "0777".into()),
        ),
        case(
            "index-not-json",
            "index/lock tampering",
            &["envpack-artifact.json"],
            members(|m| m[0].1 = b"{\"schema\":1,".to_vec()),
        ),
        case(
            "blob-content-flipped",
            "index/lock tampering",
            &["\"conan\"", "sha256 mismatch"],
            parts(|p| {
                let n = p.blobs[1].len() / 2;
                p.blobs[1][n] ^= 0x20;
            }),
        ),
        case(
            "layer-count-more",
            "wrong layer count",
            &["2 blobs, the index lists 3"],
            members(|m| {
                m.remove(2);
            }),
        ),
        case(
            "layer-count-extra-blob",
            "wrong layer count",
            &["4 blobs, the index lists 3"],
            members(|m| m.push((format!("blobs/sha256/{}", "cd".repeat(32)), b"x".to_vec()))),
        ),
        case(
            "layer-dropped-from-index",
            "wrong layer count",
            &["3 blobs, the index lists 2"],
            index_json(|v| {
                v["layers"].as_array_mut().unwrap().remove(0);
            }),
        ),
        case(
            "meta-not-last",
            "layer order",
            &["last layer must be named \"meta\""],
            parts(|p| {
                p.index.layers.swap(1, 2);
                p.blobs.swap(1, 2);
            }),
        ),
        case(
            "blobs-out-of-order",
            "layer order",
            &["blobs/sha256/", "was expected"],
            members(|m| m.swap(2, 3)),
        ),
        case(
            "lock-before-index",
            "layer order",
            &["member 1 is \"envpack.lock\""],
            members(|m| m.swap(0, 1)),
        ),
        case(
            "outer-member-symlink",
            "outer tar abuse",
            &["envpack.lock", "not a regular file"],
            bytes(|b| {
                // The lock's header follows the index's header and padded data.
                let size = b[124..135]
                    .iter()
                    .fold(0usize, |a, c| a * 8 + (c - b'0') as usize);
                let at = 512 + size.next_multiple_of(512);
                b[at + 156] = SYMLINK;
                raw::fix_checksum(&mut b[at..at + 512]);
            }),
        ),
        case(
            "outer-index-huge",
            "outer tar abuse",
            &["envpack-artifact.json", "more than the"],
            members(|m| m[0].1 = vec![b' '; (1 << 20) + 1]),
        ),
        case(
            "outer-bad-checksum",
            "outer tar abuse",
            &["checksum"],
            bytes(|b| b[10] ^= 1),
        ),
        case(
            "outer-truncated",
            "outer tar abuse",
            &["outer-truncated.tar", "invalid artifact"],
            bytes(|b| {
                let n = b.len() * 2 / 3;
                b.truncate(n);
            }),
        ),
        case(
            "outer-empty",
            "outer tar abuse",
            &["not an envpack artifact"],
            |_| raw::end(),
        ),
        case(
            "outer-not-tar",
            "outer tar abuse",
            &["outer-not-tar.tar", "not an envpack artifact"],
            |_| b"PK\x03\x04 this is a zip, not a tar".repeat(20),
        ),
    ]
}
