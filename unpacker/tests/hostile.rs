//! The hostile-archive corpus: every case is built here as raw bytes, wrapped as an artifact
//! (with correct digests where the attack is inside a layer, so the check reaches extraction)
//! and fed to the real `envpack-unpack` binary on a root whose good env is current.
//! Each must fail with a message naming the entry and the rule, write nothing outside the
//! temp root, change nothing visible in the root, and leave nothing behind after the next run.
#![cfg(unix)]

mod common;

use std::process::Command;

use common::corpus::{case, env, fixture, in_layer, run_corpus, unpack_cmd, Case, OUTSIDE};
use common::raw::{self, ArtifactParts, EnvLayers};
use envpack_layers::digest::Sha256Digest;

/// A good env whose parts (index, lock, blobs) are tampered by `f` before the outer tar.
fn parts(f: impl Fn(&mut ArtifactParts)) -> impl Fn(&str) -> Vec<u8> {
    move |id| {
        let mut p = EnvLayers::small(id).into_parts();
        f(&mut p);
        raw::outer_tar(&p.members())
    }
}

/// A good env whose outer members are rearranged by `f`.
fn members(f: impl Fn(&mut Vec<(String, Vec<u8>)>)) -> impl Fn(&str) -> Vec<u8> {
    move |id| {
        let mut m = EnvLayers::small(id).into_parts().members();
        f(&mut m);
        raw::outer_tar(&m)
    }
}

/// A good env whose final outer bytes are changed by `f`.
fn bytes(f: impl Fn(&mut Vec<u8>)) -> impl Fn(&str) -> Vec<u8> {
    move |id| {
        let mut b = raw::outer_tar(&EnvLayers::small(id).into_parts().members());
        f(&mut b);
        b
    }
}

/// Replaces the index member with `json` as given (digests of the rest stay right).
fn index_json(f: impl Fn(&mut serde_json::Value)) -> impl Fn(&str) -> Vec<u8> {
    members(move |m| {
        let mut v: serde_json::Value = serde_json::from_slice(&m[0].1).unwrap();
        f(&mut v);
        m[0].1 = serde_json::to_vec(&v).unwrap();
    })
}

/// A symlink listed in the manifest (so only the path rules can stop it), then `after`.
fn listed_link(
    path: &'static str,
    target: &'static str,
    after: Vec<u8>,
) -> impl Fn(&str) -> Vec<u8> {
    env(move |e| {
        e.layer_mut("python").extend(raw::symlink(path, target));
        e.layer_mut("python").extend_from_slice(&after);
        e.manifest.push(envpack_layers::tree::TreeEntry {
            path: path.into(),
            kind: envpack_layers::tree::EntryKind::Symlink {
                target: target.into(),
            },
        });
    })
}

fn corpus() -> Vec<Case> {
    use raw::*;
    let file_at = |name: &[u8]| entry(name, REGULAR, 0o644, b"pwned\n", b"");
    vec![
        // Path traversal and odd names.
        case(
            "dotdot-file",
            "`..` path",
            &["../escape.txt", "'..' path component"],
            in_layer("python", file("../escape.txt", b"x")),
        ),
        case(
            "dotdot-deep",
            "`..` path",
            &["lib/../../../escape.txt", "'..' path component"],
            in_layer("python", file("lib/../../../escape.txt", b"x")),
        ),
        case(
            "dotdot-inside",
            "`..` path",
            &["lib/../lib/ok2.txt", "'..' path component"],
            in_layer("python", file("lib/../lib/ok2.txt", b"x")),
        ),
        case(
            "dotdot-dir",
            "`..` path",
            &["../escdir/", "'..' path component"],
            in_layer("python", dir("../escdir")),
        ),
        case(
            "dotdot-meta",
            "`..` path",
            &["../../../../escape.txt", "'..' path component"],
            in_layer("meta", file("../../../../escape.txt", b"x")),
        ),
        case(
            "dot-component",
            "`..` path",
            &["./lib/x", "'.' path component"],
            in_layer("python", file("./lib/x", b"x")),
        ),
        case(
            "empty-component",
            "`..` path",
            &["lib//x", "empty path component"],
            in_layer("python", file("lib//x", b"x")),
        ),
        case(
            "absolute",
            "absolute path",
            &["/tmp/envpack-hostile-escape", "absolute path"],
            in_layer("python", file_at(OUTSIDE.as_bytes())),
        ),
        case(
            "absolute-meta",
            "absolute path",
            &["/tmp/envpack-hostile-escape", "absolute path"],
            in_layer("meta", file_at(OUTSIDE.as_bytes())),
        ),
        case(
            "unc-slashes",
            "drive/UNC path",
            &["//server/share/x", "absolute path"],
            in_layer("python", file("//server/share/x", b"x")),
        ),
        case(
            "drive-abs",
            "drive/UNC path",
            &["C:/Windows/x", "drive letter"],
            in_layer("python", file("C:/Windows/x", b"x")),
        ),
        case(
            "drive-rel",
            "drive/UNC path",
            &["C:x", "drive letter"],
            in_layer("python", file("C:x", b"x")),
        ),
        case(
            "unc-backslash",
            "backslash",
            &["server", "backslash in path"],
            in_layer("python", file("\\\\server\\share\\x", b"x")),
        ),
        case(
            "backslash-dotdot",
            "backslash",
            &["lib", "backslash in path"],
            in_layer("python", file("lib\\..\\..\\escape", b"x")),
        ),
        case(
            "control-char",
            "NUL/control in name",
            &["lib/a\\nb", "control character in path"],
            in_layer("python", file("lib/a\nb", b"x")),
        ),
        case(
            "nul-in-pax-path",
            "NUL/control in name",
            &["lib/a\\u{0}b", "control character in path"],
            in_layer(
                "python",
                [
                    pax(&pax_record("path", b"lib/a\0b")),
                    file("lib/short", b"x"),
                ]
                .concat(),
            ),
        ),
        case(
            "non-utf8",
            "NUL/control in name",
            &["lib/\\u{fffd}", "non-UTF-8 name"],
            in_layer("python", file_at(b"lib/\xff\xfe")),
        ),
        // Symlinks.
        case(
            "symlink-escape",
            "symlink out of root",
            &["lib/up", "symlink target escapes the root"],
            in_layer("python", symlink("lib/up", "../../..")),
        ),
        case(
            "symlink-absolute",
            "symlink out of root",
            &["lib/etc", "absolute symlink target"],
            in_layer("python", symlink("lib/etc", "/etc")),
        ),
        case(
            "symlink-drive",
            "symlink out of root",
            &["lib/win", "drive letter in symlink target"],
            in_layer("python", symlink("lib/win", "C:/Windows")),
        ),
        case(
            "symlink-backslash",
            "symlink out of root",
            &["lib/bs", "backslash in symlink target"],
            in_layer("python", symlink("lib/bs", "..\\..\\x")),
        ),
        case(
            "symlink-empty",
            "symlink out of root",
            &["lib/nothing", "symlink without target"],
            in_layer("python", symlink("lib/nothing", "")),
        ),
        case(
            "symlink-escape-meta",
            "symlink out of root",
            &["up", "symlink target escapes the root"],
            in_layer("meta", symlink("up", "..")),
        ),
        case(
            "symlink-then-file",
            "symlink-then-file",
            &["d/evil.txt", "path goes through a symlink"],
            listed_link("d", "lib", file("d/evil.txt", b"x")),
        ),
        case(
            "symlink-then-dir",
            "symlink-then-file",
            &["d/sub/", "path goes through a symlink"],
            listed_link("d", "lib", dir("d/sub")),
        ),
        case(
            "symlink-then-file-meta",
            "symlink-then-file",
            &["d/evil.txt", "path goes through a symlink"],
            in_layer(
                "meta",
                [symlink("d", "envpack.json"), file("d/evil.txt", b"x")].concat(),
            ),
        ),
        case(
            "symlink-swap-same-layer",
            "symlink swap",
            &["lib", "duplicate entry"],
            in_layer("python", symlink("lib", "bin")),
        ),
        case(
            "symlink-planted-by-earlier-layer",
            "symlink swap",
            &["conan-home/global.conf", "goes through the link conan-home"],
            env(|e| {
                // The meta layer (extracted first) plants `conan-home` as a link; the conan
                // layer's files must not be written through it.
                e.layer_mut("meta").extend(symlink("conan-home", "lib"));
                *e.layer_mut("conan") =
                    file("conan-home/global.conf", b"core:non_interactive=True\n");
                let m = e
                    .manifest
                    .iter_mut()
                    .find(|m| m.path == "conan-home")
                    .unwrap();
                m.kind = envpack_layers::tree::EntryKind::Symlink {
                    target: "lib".into(),
                };
            }),
        ),
        case(
            "gnu-longlink-escape",
            "symlink out of root",
            &["lib/long", "symlink target escapes the root"],
            in_layer(
                "python",
                [
                    gnu_long(b'K', format!("{}/x", "../".repeat(60)).as_bytes()),
                    symlink("lib/long", "x"),
                ]
                .concat(),
            ),
        ),
        // Hardlinks.
        case(
            "hardlink-outside",
            "hardlink",
            &["lib/passwd", "hardlinks are not allowed"],
            in_layer(
                "python",
                entry(b"lib/passwd", HARDLINK, 0o644, b"", b"/etc/passwd"),
            ),
        ),
        case(
            "hardlink-unseen",
            "hardlink",
            &["lib/early", "hardlinks are not allowed"],
            in_layer(
                "python",
                [
                    entry(b"lib/early", HARDLINK, 0o644, b"", b"lib/later"),
                    file("lib/later", b"x"),
                ]
                .concat(),
            ),
        ),
        case(
            "hardlink-seen",
            "hardlink",
            &["lib/again", "hardlinks are not allowed"],
            in_layer(
                "python",
                entry(b"lib/again", HARDLINK, 0o644, b"", b"lib/ok.txt"),
            ),
        ),
        // Special files and modes.
        case(
            "char-device",
            "device node",
            &["lib/null", "device nodes are not allowed"],
            in_layer("python", entry(b"lib/null", CHAR_DEV, 0o666, b"", b"")),
        ),
        case(
            "block-device",
            "device node",
            &["lib/sda", "device nodes are not allowed"],
            in_layer("python", entry(b"lib/sda", BLOCK_DEV, 0o660, b"", b"")),
        ),
        case(
            "fifo",
            "fifo",
            &["lib/pipe", "fifos are not allowed"],
            in_layer("python", entry(b"lib/pipe", FIFO, 0o644, b"", b"")),
        ),
        case(
            "pax-global-header",
            "PAX/GNU abuse",
            &["unsupported entry type"],
            in_layer(
                "python",
                entry(
                    b"pax_global_header",
                    b'g',
                    0o644,
                    &pax_record("path", b"../x"),
                    b"",
                ),
            ),
        ),
        case(
            "unknown-type",
            "PAX/GNU abuse",
            &["lib/odd", "unsupported entry type"],
            in_layer("python", entry(b"lib/odd", b'Z', 0o644, b"", b"")),
        ),
        case(
            "setuid",
            "setuid/setgid",
            &["lib/su", "setuid/setgid/sticky bits are not allowed"],
            in_layer("python", entry(b"lib/su", REGULAR, 0o4755, b"x", b"")),
        ),
        case(
            "setgid-dir",
            "setuid/setgid",
            &["lib/sg/", "setuid/setgid/sticky bits are not allowed"],
            in_layer("python", entry(b"lib/sg/", DIRECTORY, 0o2755, b"", b"")),
        ),
        case(
            "sticky-dir",
            "setuid/setgid",
            &["lib/tmp/", "setuid/setgid/sticky bits are not allowed"],
            in_layer("python", entry(b"lib/tmp/", DIRECTORY, 0o1777, b"", b"")),
        ),
        // Duplicates and collisions.
        case(
            "duplicate-file",
            "duplicate",
            &["lib/ok.txt", "duplicate entry"],
            in_layer("python", file("lib/ok.txt", b"ok\n")),
        ),
        case(
            "file-then-dir",
            "duplicate",
            &["lib/ok.txt/", "duplicate entry"],
            in_layer("python", dir("lib/ok.txt")),
        ),
        case(
            "duplicate-across-layers",
            "duplicate",
            &["lib/ok.txt", "already exists at this path"],
            in_layer("conan", raw::good_file("lib/ok.txt", b"ok\n", false).0),
        ),
        case(
            "case-collision-macos",
            "case collision",
            &[
                "lib/OK.txt",
                "lib/ok.txt",
                "case-insensitive",
                "macos-arm64",
            ],
            env(|e| {
                e.platform = "macos-arm64".into();
                e.add_file("python", "lib/OK.txt", b"other\n");
            }),
        ),
        case(
            "case-collision-windows",
            "case collision",
            &["Lib", "lib", "case-insensitive", "windows-x86_64"],
            env(|e| {
                e.platform = "windows-x86_64".into();
                let (b, m) = raw::good_dir("Lib");
                e.layer_mut("conan").extend(b);
                e.manifest.push(m);
            }),
        ),
        // Header abuse.
        case(
            "huge-size-octal",
            "PAX/GNU abuse",
            &["lib/huge", "layer exceeds the size limit"],
            in_layer(
                "python",
                [
                    header(b"lib/huge", REGULAR, 0o644, 0o77777777776, b""),
                    vec![0; 512],
                ]
                .concat(),
            ),
        ),
        case(
            "huge-size-base256",
            "PAX/GNU abuse",
            &["lib/huge", "layer exceeds the size limit"],
            in_layer(
                "python",
                [
                    header(b"lib/huge", REGULAR, 0o644, 1 << 62, b""),
                    vec![0; 512],
                ]
                .concat(),
            ),
        ),
        case(
            "pax-size-override",
            "PAX/GNU abuse",
            &["lib/big", "layer exceeds the size limit"],
            in_layer(
                "python",
                [
                    pax(&pax_record("size", b"99999999999")),
                    file("lib/big", b"x"),
                ]
                .concat(),
            ),
        ),
        case(
            "bad-checksum",
            "PAX/GNU abuse",
            &["\"python\"", "checksum"],
            in_layer("python", {
                let mut h = file("lib/bad", b"x");
                h[0] = b'L';
                h
            }),
        ),
        case(
            "truncated-data",
            "PAX/GNU abuse",
            &["truncated"],
            env(|e| {
                e.end_blocks = false;
                let mut f = header(b"lib/cut", REGULAR, 0o644, 4096, b"");
                f.extend_from_slice(&[b'x'; 1000]);
                e.layer_mut("python").extend(f);
                e.manifest
                    .push(raw::good_file("lib/cut", &[b'x'; 4096], false).1);
            }),
        ),
        case(
            "truncated-header",
            "PAX/GNU abuse",
            &["truncated"],
            env(|e| {
                e.end_blocks = false;
                e.layer_mut("python")
                    .extend_from_slice(&file("lib/half", b"x")[..200]);
            }),
        ),
        case(
            "bogus-pax-length",
            "PAX/GNU abuse",
            &["lib/ok2.txt", "malformed PAX record"],
            in_layer(
                "python",
                [pax(b"999 path=lib/evil\n"), file("lib/ok2.txt", b"x")].concat(),
            ),
        ),
        case(
            "pax-path-dotdot",
            "PAX/GNU abuse",
            &["../../pax-escape", "'..' path component"],
            in_layer(
                "python",
                [
                    pax(&pax_record("path", b"../../pax-escape")),
                    file("lib/innocent", b"x"),
                ]
                .concat(),
            ),
        ),
        case(
            "gnu-longname-dotdot",
            "PAX/GNU abuse",
            &["'..' path component"],
            in_layer(
                "python",
                [
                    gnu_long(b'L', format!("lib/{}escape", "../".repeat(50)).as_bytes()),
                    file("lib/innocent", b"x"),
                ]
                .concat(),
            ),
        ),
        case(
            "pax-huge-truncated",
            "PAX/GNU abuse",
            &["truncated"],
            env(|e| {
                e.end_blocks = false;
                let mut h = header(b"PaxHeader", b'x', 0o644, 1 << 30, b"");
                h.extend_from_slice(&pax_record("path", b"lib/x"));
                e.layer_mut("python").extend(h);
            }),
        ),
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

#[test]
fn hostile_corpus_is_rejected_without_trace() {
    let f = fixture();
    let cases = corpus();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    run_corpus(&f, &cases);
    let verify = Command::new(env!("CARGO_BIN_EXE_envpack-unpack"))
        .args(["--verify", "--root"])
        .arg(&f.root)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

/// The same env with no hostile bytes must unpack, or the corpus proves nothing.
#[test]
fn the_unmodified_raw_env_unpacks() {
    let f = fixture();
    for platform in ["linux-x86_64", "macos-arm64", "windows-x86_64"] {
        let id = format!("plain-{platform}");
        let build = env(|e| e.platform = platform.into());
        let artifact = raw::write_to(&f.cases, &id, &build(&id));
        let out = unpack_cmd(&artifact, &f.root);
        assert!(out.status.success(), "{platform}: {out:?}");
        assert_eq!(
            fs_err::read_to_string(f.root.join("current/lib/ok.txt")).unwrap(),
            "ok\n"
        );
    }
    // A linux target tolerates names that differ only in case.
    let build = env(|e| e.add_file("python", "lib/OK.txt", b"other\n"));
    let artifact = raw::write_to(&f.cases, "case-linux", &build("case-linux"));
    let out = unpack_cmd(&artifact, &f.root);
    assert!(out.status.success(), "{out:?}");
}
