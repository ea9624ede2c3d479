//! The hostile-archive corpus: every case is built here as raw bytes, wrapped as an artifact
//! (with correct digests where the attack is inside a layer, so the check reaches extraction)
//! and fed to the real `envpack-unpack` binary on a root whose good env is current.
//! Each must fail with a message naming the entry and the rule, write nothing outside the
//! temp root, change nothing visible in the root, and leave nothing behind after the next run.
#![cfg(unix)]

mod common;
#[path = "hostile/outer.rs"]
mod outer;

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
    ]
    .into_iter()
    .chain(outer::cases())
    .collect()
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
