//! Links that each look inside but lead outside, loops, links where the unpacker's own
//! post-processing would follow them, and huge extension headers: every case is consistent
//! down to its digests and manifest, so only the link rules stand in the way. Run through
//! the shared corpus runner (refused before the switch, root and canary tree untouched).
#![cfg(unix)]

mod common;

use common::corpus::{case, env, fixture, run_corpus, Case};
use common::raw::{self, EnvLayers};
use envpack_layers::tree::{EntryKind, TreeEntry};

fn link(e: &mut EnvLayers, layer: &str, path: &str, target: &str) {
    e.layer_mut(layer).extend(raw::symlink(path, target));
    e.manifest.push(TreeEntry {
        path: path.into(),
        kind: EntryKind::Symlink {
            target: target.into(),
        },
    });
}

fn dir(e: &mut EnvLayers, layer: &str, path: &str) {
    let (bytes, entry) = raw::good_dir(path);
    e.layer_mut(layer).extend(bytes);
    e.manifest.push(entry);
}

/// Removes `path` (a top-level entry of the python layer) and everything below it, then
/// rebuilds that layer from what is left.
fn drop_python(e: &mut EnvLayers, path: &str) {
    let prefix = format!("{path}/");
    let keep: Vec<TreeEntry> = e
        .manifest
        .iter()
        .filter(|m| m.path == "lib" || m.path.starts_with("lib/") || m.path.starts_with("bin"))
        .filter(|m| m.path != path && !m.path.starts_with(&prefix))
        .cloned()
        .collect();
    e.manifest
        .retain(|m| !(m.path == "lib" || m.path.starts_with("lib/") || m.path.starts_with("bin")));
    let layer = e.layer_mut("python");
    layer.clear();
    for m in &keep {
        match &m.kind {
            EntryKind::Dir => layer.extend(raw::good_dir(&m.path).0),
            EntryKind::File { executable, .. } => {
                let data: &[u8] = if m.path == "bin/tool" {
                    b"#!/bin/sh\necho tool\n"
                } else {
                    b"ok\n"
                };
                layer.extend(raw::good_file(&m.path, data, *executable).0)
            }
            EntryKind::Symlink { target } => layer.extend(raw::symlink(&m.path, target)),
        }
    }
    e.manifest.extend(keep);
}

/// `lib/up -> ..`: a link to the env root that every chain below climbs out of.
fn with_up(e: &mut EnvLayers) {
    link(e, "python", "lib/up", "..");
}

fn chain(e: &mut EnvLayers, prefix: &str, n: usize, last: &str) {
    for i in 0..n {
        let next = if i + 1 == n {
            last.to_owned()
        } else {
            format!("{prefix}{}", i + 1)
        };
        link(e, "python", &format!("{prefix}{i}"), &next);
    }
}

fn corpus() -> Vec<Case> {
    vec![
        case(
            "issue-chain",
            "link chain escapes",
            &["p/q/r/t", "resolves outside"],
            env(|e| {
                for d in ["p", "p/q", "p/q/r"] {
                    dir(e, "python", d);
                }
                link(e, "python", "p/q/r/s", "../../..");
                link(e, "python", "p/q/r/t", "s/../../../outside");
            }),
        ),
        case(
            "conan-conf-to-passwd",
            "link chain escapes",
            &["conan-home/remotes.json", "resolves outside"],
            env(|e| {
                dir(e, "conan", "conan-home/a");
                dir(e, "conan", "conan-home/a/b");
                link(e, "conan", "conan-home/a/b/s", "../../..");
                link(e, "conan", "conan-home/remotes.json", "a/b/s/../etc/passwd");
            }),
        ),
        case(
            "two-link-chain",
            "link chain escapes",
            &["lib2", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "python", "lib2", "lib/up/..");
            }),
        ),
        case(
            "ten-link-chain",
            "link chain escapes",
            &["c0", "resolves outside"],
            env(|e| {
                with_up(e);
                chain(e, "c", 10, "lib/up/../x");
            }),
        ),
        case(
            "forty-link-chain",
            "link chain escapes",
            &["c0", "resolves outside"],
            env(|e| {
                with_up(e);
                chain(e, "c", 39, "lib/up/..");
            }),
        ),
        case(
            "forty-one-links-inside",
            "link loop",
            &["c0", "more than 40 links"],
            env(|e| chain(e, "c", 41, "lib/ok.txt")),
        ),
        case(
            "self-loop",
            "link loop",
            &["lib/me", "loop"],
            env(|e| link(e, "python", "lib/me", "me")),
        ),
        case(
            "two-link-loop",
            "link loop",
            &["lib/a", "loop"],
            env(|e| {
                link(e, "python", "lib/a", "b");
                link(e, "python", "lib/b", "a");
            }),
        ),
        case(
            "ring-of-twelve",
            "link loop",
            &["r0", "loop"],
            env(|e| chain(e, "r", 12, "r0")),
        ),
        case(
            "loop-through-dir",
            "link loop",
            &["lib/l", "loop"],
            env(|e| link(e, "python", "lib/l", "../lib/l")),
        ),
        case(
            "across-layers",
            "link chain escapes",
            &["conan-home/esc", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "conan", "conan-home/esc", "../lib/up/..");
            }),
        ),
        case(
            "dotdot-of-a-root-link",
            "link chain escapes",
            &["t", "resolves outside"],
            env(|e| {
                dir(e, "python", "lib/sub");
                link(e, "python", "lib/sub/s", "../..");
                link(e, "python", "t", "lib/sub/s/..");
            }),
        ),
        case(
            "link-replaces-dir-listed-later",
            "entry below a link",
            &["goes through the link lib2"],
            env(|e| {
                link(e, "python", "lib2", "lib");
                e.add_file("conan", "lib2/x.txt", b"x");
            }),
        ),
        case(
            "named-like-root-entry",
            "link chain escapes",
            &[".envpack", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "python", ".envpack", "lib/up/..");
            }),
        ),
        case(
            "envs-inside-env",
            "link chain escapes",
            &["envs", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "python", "envs", "lib/up/../..");
            }),
        ),
        case(
            "bin-as-link",
            "structural link",
            &["bin", "must be a directory"],
            env(|e| {
                drop_python(e, "bin");
                link(e, "python", "bin", "lib");
            }),
        ),
        case(
            "bin-as-chain",
            "structural link",
            &["bin", "must be a directory"],
            env(|e| {
                drop_python(e, "bin");
                with_up(e);
                link(e, "python", "bin", "lib/up/lib");
            }),
        ),
        case(
            "bin-program-escapes",
            "link chain escapes",
            &["bin/passwd", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "python", "bin/passwd", "../lib/up/../etc/passwd");
            }),
        ),
        case(
            "conan-home-as-link",
            "structural link",
            &["conan-home", "must be a directory"],
            env(|e| {
                e.manifest.retain(|m| !m.path.starts_with("conan-home"));
                e.layer_mut("conan").clear();
                dir(e, "conan", "cfg");
                link(e, "conan", "conan-home", "cfg");
            }),
        ),
        case(
            "template-link-to-env",
            "state seeding",
            &["conan-home/py", "template"],
            env(|e| link(e, "conan", "conan-home/py", "../lib")),
        ),
        case(
            "template-link-deep",
            "state seeding",
            &["conan-home/a/b/out", "template"],
            env(|e| {
                dir(e, "conan", "conan-home/a");
                dir(e, "conan", "conan-home/a/b");
                link(e, "conan", "conan-home/a/b/out", "../../../lib/ok.txt");
            }),
        ),
        case(
            "manifest-as-link",
            "meta file as link",
            &["manifest", "links are refused"],
            env(|e| e.manifest_link = Some("lib/ok.txt".into())),
        ),
        case(
            "activate-as-link",
            "meta file as link",
            &["activate", "must be a regular file"],
            env(|e| link(e, "meta", "activate", "lib/ok.txt")),
        ),
        case(
            "absolute-in-chain",
            "link chain escapes",
            &["lib/b", "absolute symlink target"],
            env(|e| {
                link(e, "python", "lib/a", "b");
                link(e, "python", "lib/b", "/etc");
            }),
        ),
        case(
            // Harmless where names are case-sensitive (`lib/s` does not exist), but on macOS
            // and Windows `lib/s` is the link `lib/S` to the env root, and `..` leaves it.
            "up-from-another-spelling",
            "link chain escapes",
            &["t", "goes up (..) from lib/s"],
            env(|e| {
                link(e, "python", "lib/S", "..");
                link(e, "python", "t", "lib/s/../outside");
            }),
        ),
        case(
            // The issue's seeding case: `conan-home` a link into nested dirs whose own links
            // stay inside, so only the structure rule stands in the way of a re-based copy.
            "conan-home-as-deep-link",
            "structural link",
            &["conan-home", "must be a directory"],
            env(|e| {
                e.manifest.retain(|m| !m.path.starts_with("conan-home"));
                e.layer_mut("conan").clear();
                for d in ["cfg", "cfg/a", "cfg/a/b", "cfg/a/b/c"] {
                    dir(e, "conan", d);
                }
                link(e, "conan", "cfg/a/b/c/out", "../../../../lib");
                link(e, "conan", "conan-home", "cfg/a/b/c");
            }),
        ),
        case(
            "parent-of-the-root",
            "link chain escapes",
            &["uptop", "escapes the root"],
            env(|e| link(e, "python", "uptop", "..")),
        ),
        case(
            "dot-components-then-up",
            "link chain escapes",
            &["lib/dots", "escapes the root"],
            env(|e| link(e, "python", "lib/dots", "./././../..")),
        ),
        case(
            "trailing-slash-up",
            "link chain escapes",
            &["lib/slash", "escapes the root"],
            env(|e| link(e, "python", "lib/slash", "../../")),
        ),
        case(
            // `d/l` resolves to the env root (inside); `..` of it leaves.
            "dotdot-of-a-link-to-the-root",
            "link chain escapes",
            &["esc2", "resolves outside", "d/l -> ../lib/up"],
            env(|e| {
                with_up(e);
                dir(e, "python", "d");
                link(e, "python", "d/l", "../lib/up");
                link(e, "python", "esc2", "d/l/..");
            }),
        ),
        case(
            "named-current",
            "link chain escapes",
            &["current", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "python", "current", "lib/up/..");
            }),
        ),
        case(
            "named-state",
            "link chain escapes",
            &["state", "resolves outside"],
            env(|e| {
                with_up(e);
                link(e, "python", "state", "lib/up/../..");
            }),
        ),
        case(
            // The kernel stops at a file used as a directory; another spelling could be a link.
            "up-from-a-file-through-a-link",
            "link chain escapes",
            &["ufile", "goes up (..)"],
            env(|e| {
                link(e, "python", "lib/f", "ok.txt");
                link(e, "python", "ufile", "lib/f/../..");
            }),
        ),
        case(
            "huge-pax-header",
            "bounded memory",
            &["PAX extended header of 268435456 bytes", "larger than"],
            env(|e| {
                let mut h = raw::header(b"././@PaxHeader", b'x', 0o644, 256 << 20, b"");
                h.extend(vec![b'#'; 256 << 20]);
                e.layer_mut("python").extend(h);
            }),
        ),
        case(
            "huge-long-name",
            "bounded memory",
            &["GNU long name", "larger than"],
            env(|e| {
                let mut h = raw::header(b"././@LongLink", b'L', 0o644, 64 << 20, b"");
                h.extend(vec![b'a'; 64 << 20]);
                e.layer_mut("python").extend(h);
            }),
        ),
    ]
}

/// An empty `lib/pad.txt` (listed in the manifest) whose header's size field is `field`
/// and which is preceded by `pax` records when given, then a 256 MiB PAX header: the tar
/// parser reads the empty file and then the huge header into memory, so the guard must find
/// that header exactly where the parser does.
fn pad_then_huge_pax(field: [u8; 12], pax: Option<Vec<u8>>) -> impl Fn(&str) -> Vec<u8> {
    env(move |e| {
        let layer = e.layer_mut("python");
        if let Some(records) = &pax {
            layer.extend(raw::pax(records));
        }
        let mut h = raw::header(b"lib/pad.txt", raw::REGULAR, 0o644, 0, b"");
        h[124..136].copy_from_slice(&field);
        raw::fix_checksum(&mut h);
        layer.extend(h);
        let mut big = raw::header(b"././@PaxHeader", b'x', 0o644, 256 << 20, b"");
        big.extend(vec![b'#'; 256 << 20]);
        layer.extend(big);
        e.manifest
            .push(TreeEntry::file_from_bytes("lib/pad.txt", b"", false));
    })
}

/// A GNU sparse entry whose extension blocks hold `blocks * 21` empty data chunks: the tar
/// parser keeps one record per chunk before the extractor sees the entry's type.
fn sparse_bomb(blocks: usize) -> impl Fn(&str) -> Vec<u8> {
    move |id| {
        let mut e = EnvLayers::small(id);
        // Offset and length fields, both "0": not empty, so the parser keeps a record.
        let chunk = [&b"00000000000\0"[..], b"00000000000\0"].concat();
        let mut h = raw::header(b"lib/sparse", b'S', 0o644, 0, b"");
        h[257..265].copy_from_slice(b"ustar  \0");
        for i in 0..4 {
            h[386 + 24 * i..410 + 24 * i].copy_from_slice(&chunk);
        }
        h[482] = 1;
        h[483..495].copy_from_slice(b"00000000000\0");
        raw::fix_checksum(&mut h);
        let mut ext = vec![0u8; 512];
        for i in 0..21 {
            ext[24 * i..24 * (i + 1)].copy_from_slice(&chunk);
        }
        ext[504] = 1;
        let layer = e.layer_mut("python");
        layer.extend(h);
        for _ in 1..blocks {
            layer.extend_from_slice(&ext);
        }
        ext[504] = 0;
        layer.extend(ext);
        raw::outer_tar(&e.into_parts().members())
    }
}

/// Headers where the extension-header guard and the tar parser could disagree about where
/// the next header starts (so a huge one slips past the guard), or where the parser holds
/// memory per block of a header the guard stops following.
fn guard_corpus() -> Vec<Case> {
    let mut base256_high = [0u8; 12];
    base256_high[0] = 0x80;
    base256_high[1] = 1;
    vec![
        case(
            "size-field-text-after-nul",
            "bounded memory",
            &["PAX extended header of 268435456 bytes", "larger than"],
            pad_then_huge_pax(*b"0000000\0zzz\0", None),
        ),
        case(
            "size-field-base256-high-bytes",
            "bounded memory",
            &["PAX extended header of 268435456 bytes", "larger than"],
            pad_then_huge_pax(base256_high, None),
        ),
        case(
            "pax-two-size-records",
            "bounded memory",
            &["PAX extended header of 268435456 bytes", "larger than"],
            pad_then_huge_pax(
                *b"00000000000\0",
                Some(
                    [
                        raw::pax_record("size", b"0"),
                        raw::pax_record("size", b"4294967296"),
                    ]
                    .concat(),
                ),
            ),
        ),
        case(
            "outer-huge-pax-header",
            "bounded memory",
            &["PAX extended header of 268435456 bytes", "larger than"],
            |id: &str| {
                let mut out = raw::header(b"././@PaxHeader", b'x', 0o644, 256 << 20, b"");
                out.extend(vec![b'#'; 256 << 20]);
                out.extend(raw::outer_tar(&EnvLayers::small(id).into_parts().members()));
                out
            },
        ),
        case(
            "gnu-sparse-chunk-bomb",
            "bounded memory",
            &["lib/sparse", "sparse"],
            sparse_bomb(1 << 19),
        ),
    ]
}

/// The corpus tests run one at a time: each builds 256 MiB cases in this process. (Peak RSS
/// is measured per unpack run, see `common::corpus::unpack_cmd`.)
static ONE_CORPUS_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn guard_and_parser_agree_on_headers() {
    let _one = ONE_CORPUS_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let f = fixture();
    let cases = guard_corpus();
    let table = run_corpus(&f, &cases);
    assert_eq!(table.values().sum::<usize>(), cases.len());
    let peak_mb = common::corpus::peak_rss_mb();
    println!("peak RSS of any guard case: {peak_mb} MB");
    assert!(peak_mb < 150, "peak RSS {peak_mb} MB");
}

#[test]
fn link_corpus_is_rejected_without_trace() {
    let _one = ONE_CORPUS_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let f = fixture();
    let cases = corpus();
    assert!(cases.len() >= 35, "only {} cases", cases.len());
    let table = run_corpus(&f, &cases);
    assert_eq!(table.values().sum::<usize>(), cases.len());
    // Peak memory of the largest unpacker run, the 256 MiB PAX header included.
    let peak_mb = common::corpus::peak_rss_mb();
    println!("peak RSS of any hostile unpack: {peak_mb} MB");
    assert!(peak_mb < 150, "peak RSS {peak_mb} MB");
}
