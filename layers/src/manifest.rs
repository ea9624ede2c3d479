//! The `manifest` file at an environment's root: one line per entry, strictly parsed.

use crate::digest::Sha256Digest;
use crate::error::{LayersError, Result};
use crate::tree::{link_target_problem, rel_path_problem, EntryKind, TreeEntry};

/// First line of every manifest; bump the version on any format change.
pub const MANIFEST_HEADER: &str = "envpack-manifest v1";

/// Every entry of an environment tree, sorted by path bytes (the `manifest` file excluded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Entries sorted by the byte order of their paths, no duplicates.
    pub entries: Vec<TreeEntry>,
}

impl Manifest {
    /// Builds a manifest, sorting the entries and dropping exact duplicates.
    pub fn from_entries(mut entries: Vec<TreeEntry>) -> Self {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        entries.dedup();
        Manifest { entries }
    }

    /// Builds a manifest for writing, refusing links that resolve outside the tree or loop.
    pub fn checked(entries: Vec<TreeEntry>) -> Result<Self> {
        crate::links::check_links(&entries)?;
        Ok(Self::from_entries(entries))
    }

    /// Deterministic text: header line, then one tab-separated line per entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.entries.len() * 120);
        out.push_str(MANIFEST_HEADER);
        out.push('\n');
        let mut sorted: Vec<&TreeEntry> = self.entries.iter().collect();
        sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        for e in sorted {
            out.push_str(&entry_line(e));
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Parses manifest bytes; errors name the line. Rejects unsorted or duplicate
    /// entries, bad paths, modes that are not normalized, and malformed fields.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| LayersError::format("manifest", format!("not UTF-8: {e}")))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(LayersError::format(
                "manifest",
                "does not end with a newline (truncated?)",
            ));
        };
        let mut lines = body.split('\n');
        if lines.next() != Some(MANIFEST_HEADER) {
            return Err(LayersError::format(
                "manifest",
                format!("line 1: expected \"{MANIFEST_HEADER}\""),
            ));
        }
        let mut entries: Vec<TreeEntry> = Vec::new();
        for (i, line) in lines.enumerate() {
            let lineno = i + 2;
            let err = |detail: String| {
                LayersError::format("manifest", format!("line {lineno}: {detail}"))
            };
            let entry = parse_line(line).map_err(err)?;
            if let Some(prev) = entries.last() {
                if prev.path.as_bytes() >= entry.path.as_bytes() {
                    return Err(err(format!(
                        "\"{}\" is a duplicate or out of order (after \"{}\")",
                        crate::shown_name(&entry.path),
                        crate::shown_name(&prev.path)
                    )));
                }
            }
            entries.push(entry);
        }
        // Every reader parses through here, so unpack, verify and repair share one link rule.
        crate::links::check_links(&entries)?;
        Ok(Manifest { entries })
    }

    /// Looks an entry up by path.
    pub fn get(&self, path: &str) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }
}

fn entry_line(e: &TreeEntry) -> String {
    let mode = e.mode();
    match &e.kind {
        EntryKind::Dir => format!("d\t{mode:04o}\t-\t-\t{}\t-", e.path),
        EntryKind::File { size, sha256, .. } => {
            format!("f\t{mode:04o}\t{size}\t{}\t{}\t-", sha256.to_hex(), e.path)
        }
        EntryKind::Symlink { target } => format!("l\t{mode:04o}\t-\t-\t{}\t{target}", e.path),
    }
}

fn parse_line(line: &str) -> std::result::Result<TreeEntry, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [ty, mode, size, sha, path, target] = fields[..] else {
        return Err(format!(
            "expected 6 tab-separated fields, found {}",
            fields.len()
        ));
    };
    if let Some(reason) = rel_path_problem(path) {
        return Err(format!("path \"{}\": {reason}", crate::shown_name(path)));
    }
    let path = path.to_string();
    let need_dash = |name: &str, v: &str| {
        if v == "-" {
            Ok(())
        } else {
            Err(format!(
                "{name} must be '-' for type {ty}, found \"{}\"",
                crate::shown_name(v)
            ))
        }
    };
    let kind = match ty {
        "d" => {
            need_dash("size", size)?;
            need_dash("sha256", sha)?;
            need_dash("link target", target)?;
            if mode != "0755" {
                return Err(format!(
                    "directory mode must be 0755, found \"{}\"",
                    crate::shown_name(mode)
                ));
            }
            EntryKind::Dir
        }
        "f" => {
            need_dash("link target", target)?;
            let executable = match mode {
                "0755" => true,
                "0644" => false,
                _ => {
                    return Err(format!(
                        "file mode must be 0755 or 0644, found \"{}\"",
                        crate::shown_name(mode)
                    ))
                }
            };
            if size.is_empty()
                || !size.bytes().all(|b| b.is_ascii_digit())
                || (size.len() > 1 && size.starts_with('0'))
            {
                return Err(format!("bad size \"{}\"", crate::shown_name(size)));
            }
            let size: u64 = size
                .parse()
                .map_err(|e| format!("bad size \"{}\": {e}", crate::shown_name(size)))?;
            let sha256 = Sha256Digest::from_hex(sha).map_err(|e| e.to_string())?;
            EntryKind::File {
                size,
                sha256,
                executable,
            }
        }
        "l" => {
            need_dash("size", size)?;
            need_dash("sha256", sha)?;
            if mode != "0777" {
                return Err(format!(
                    "symlink mode must be 0777, found \"{}\"",
                    crate::shown_name(mode)
                ));
            }
            if let Some(reason) = link_target_problem(&path, target) {
                return Err(format!(
                    "symlink \"{}\" -> \"{}\": {reason}",
                    crate::shown_name(&path),
                    crate::shown_name(target)
                ));
            }
            EntryKind::Symlink {
                target: target.to_string(),
            }
        }
        _ => {
            return Err(format!(
                "unknown entry type \"{}\" (expected d, f or l)",
                crate::shown_name(ty)
            ))
        }
    };
    Ok(TreeEntry { path, kind })
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_and_parse_refuse_chains_that_leave() {
        let entries = vec![
            TreeEntry {
                path: "a".into(),
                kind: EntryKind::Dir,
            },
            TreeEntry {
                path: "a/up".into(),
                kind: EntryKind::Symlink {
                    target: "..".into(),
                },
            },
            TreeEntry {
                path: "b".into(),
                kind: EntryKind::Symlink {
                    target: "a/up/../x".into(),
                },
            },
        ];
        let err = Manifest::checked(entries.clone()).unwrap_err().to_string();
        assert!(err.contains("link b") && err.contains("outside"), "{err}");
        let bytes = Manifest::from_entries(entries).to_bytes();
        let err = Manifest::parse(&bytes).unwrap_err().to_string();
        assert!(err.contains("link b") && err.contains("outside"), "{err}");
    }

    use super::*;

    fn sample() -> Manifest {
        Manifest::from_entries(vec![
            TreeEntry {
                path: "python/bin/python3".into(),
                kind: EntryKind::Symlink {
                    target: "python3.11".into(),
                },
            },
            TreeEntry {
                path: "python".into(),
                kind: EntryKind::Dir,
            },
            TreeEntry {
                path: "python/bin".into(),
                kind: EntryKind::Dir,
            },
            TreeEntry {
                path: "python/bin/python3.11".into(),
                kind: EntryKind::File {
                    size: 3,
                    sha256: Sha256Digest::of_bytes(b"elf"),
                    executable: true,
                },
            },
            TreeEntry {
                path: "envpack.json".into(),
                kind: EntryKind::File {
                    size: 0,
                    sha256: Sha256Digest::of_bytes(b""),
                    executable: false,
                },
            },
        ])
    }

    #[test]
    fn exact_text_and_round_trip() {
        let m = sample();
        let text = String::from_utf8(m.to_bytes()).unwrap();
        let expected = format!(
            "envpack-manifest v1\n\
             f\t0644\t0\t{e}\tenvpack.json\t-\n\
             d\t0755\t-\t-\tpython\t-\n\
             d\t0755\t-\t-\tpython/bin\t-\n\
             l\t0777\t-\t-\tpython/bin/python3\tpython3.11\n\
             f\t0755\t3\t{x}\tpython/bin/python3.11\t-\n",
            e = Sha256Digest::of_bytes(b"").to_hex(),
            x = Sha256Digest::of_bytes(b"elf").to_hex()
        );
        assert_eq!(text, expected);
        let back = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(back.get("python/bin").is_some_and(|e| e.is_dir()));
        assert!(back.get("python/bi").is_none());
        assert_eq!(back.get("python/bin/python3.11").unwrap().mode(), 0o755);
    }

    #[test]
    fn strict_parse_errors_name_the_line() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let hex = Sha256Digest::of_bytes(b"").to_hex();
        let bad_line = |n: usize, repl: &str| {
            let mut l = lines.clone();
            l[n - 1] = repl;
            l.join("\n") + "\n"
        };
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "newline"),
            (good.trim_end().to_string(), "newline"),
            (good.replacen("v1", "v2", 1), "line 1"),
            (bad_line(2, "f\t0644\t0\tzz\tenvpack.json\t-"), "line 2"),
            (bad_line(3, "d\t0700\t-\t-\tpython\t-"), "line 3"),
            (bad_line(3, "x\t0755\t-\t-\tpython\t-"), "line 3"),
            (bad_line(3, "d\t0755\t-\t-\tpython"), "line 3"),
            (bad_line(3, "d\t0755\t-\t-\t../python\t-"), "line 3"),
            (bad_line(3, "d\t0755\t-\t-\tenvpack.json\t-"), "line 3"),
            (bad_line(4, "d\t0755\t-\t-\tpython\t-"), "line 4"),
            (
                bad_line(5, "l\t0777\t-\t-\tpython/bin/python3\t/usr/bin/python3"),
                "line 5",
            ),
            (
                bad_line(5, "l\t0777\t-\t-\tpython/bin/python3\t../../../x"),
                "line 5",
            ),
            (
                bad_line(2, &format!("f\t0644\t01\t{hex}\tenvpack.json\t-")),
                "line 2",
            ),
            (
                bad_line(2, &format!("f\t0600\t0\t{hex}\tenvpack.json\t-")),
                "line 2",
            ),
            (
                bad_line(2, &format!("f\t0644\t-\t{hex}\tenvpack.json\t-")),
                "line 2",
            ),
            (
                bad_line(2, &format!("f\t0644\t0\t{hex}\tenvpack.json\tx")),
                "line 2",
            ),
            (good.replace("\n", "\r\n"), "line 1"),
            (format!("{good}\n"), "line 7"),
        ];
        for (text, want) in cases {
            let err = Manifest::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn empty_manifest() {
        let m = Manifest::default();
        assert_eq!(m.to_bytes(), b"envpack-manifest v1\n");
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    }
}
