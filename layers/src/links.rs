//! Link resolution against a whole tree, as the kernel would do it.
//!
//! A per-link lexical check (see [`crate::tree::validate_link_target`]) cannot see chains:
//! `p/q/r/s -> ../../..` and `p/q/r/t -> s/../../../x` each look inside on their own, yet `t`
//! leaves the tree once `s` is followed. Here every link is resolved component by component
//! against the tree's own entries, following each link met on the way (at most
//! [`MAX_LINK_HOPS`], like Linux), and a resolution that climbs above the tree root or never
//! ends is refused. The builder runs this before it writes a manifest and every reader runs it
//! when it parses one, so both sides apply the same rule.

use std::collections::{HashMap, HashSet};

use crate::error::{LayersError, Result};
use crate::tree::{EntryKind, TreeEntry};

/// Links followed in one resolution before it counts as a loop (Linux's `MAXSYMLINKS`).
pub const MAX_LINK_HOPS: usize = 40;

/// What a path leads to once every link on it is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// A directory of the tree.
    Dir,
    /// A regular file of the tree.
    File {
        /// Whether it has an execute bit.
        executable: bool,
    },
    /// Nothing the tree lists (the resolution stayed inside the tree).
    Missing,
}

/// Why a link cannot stay in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkProblem {
    /// Following it climbs above the tree root.
    Escapes {
        /// The links followed, in order, as `path -> target`.
        chain: Vec<String>,
    },
    /// Following it takes more than [`MAX_LINK_HOPS`] links (a loop, or a chain too long).
    Loops,
    /// An entry sits below a link, so writing it would go through the link.
    UnderLink {
        /// The link on the entry's path.
        link: String,
    },
    /// It goes up (`..`) from a name the tree does not have as a directory. Where names are
    /// case- or normalization-insensitive (macOS, Windows) that name can be another entry,
    /// a link among them, so where `..` then leads cannot be known from the tree.
    UpFromUnlisted {
        /// The path the `..` climbs out of.
        name: String,
    },
}

impl std::fmt::Display for LinkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkProblem::Escapes { chain } if chain.len() > 1 => write!(
                f,
                "resolves outside the environment through the chain {}",
                chain.join(", then ")
            ),
            LinkProblem::Escapes { .. } => f.write_str("resolves outside the environment"),
            LinkProblem::Loops => write!(
                f,
                "does not resolve: following it takes more than {MAX_LINK_HOPS} links (a loop)"
            ),
            LinkProblem::UnderLink { link } => write!(f, "its path goes through the link {link}"),
            LinkProblem::UpFromUnlisted { name } => write!(
                f,
                "goes up (..) from {}, which the environment does not have as a directory (on \
                 a case-insensitive filesystem that name could be a link)",
                crate::error::shown_name(name)
            ),
        }
    }
}

/// A tree's entries indexed by path, for resolving links against it.
pub struct LinkResolver<'a> {
    kinds: HashMap<&'a str, &'a EntryKind>,
    /// Parents of listed entries: directories even when not listed themselves (extraction
    /// creates them).
    parents: HashSet<&'a str>,
}

impl<'a> LinkResolver<'a> {
    /// Indexes `entries` (paths relative to the tree root, '/'-separated).
    pub fn new(entries: &'a [TreeEntry]) -> Self {
        let parents = entries
            .iter()
            .flat_map(|e| e.path.match_indices('/').map(|(i, _)| &e.path[..i]))
            .collect();
        LinkResolver {
            kinds: entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect(),
            parents,
        }
    }

    /// Follows `path` from the tree root, the last component included, and says what it
    /// leads to.
    pub fn resolve(&self, path: &str) -> std::result::Result<Resolved, LinkProblem> {
        // Components still to walk, last first, so a link's target is pushed in front.
        let mut pending: Vec<String> = path.rsplit('/').map(str::to_owned).collect();
        let mut at: Vec<String> = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        let mut hops = 0usize;
        let mut last = Resolved::Dir;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "" | "." => continue,
                ".." => {
                    // The kernel stops at a missing name or a file; a case-insensitive one
                    // may find a link under another spelling, so `..` from there is refused.
                    if last != Resolved::Dir {
                        return Err(LinkProblem::UpFromUnlisted { name: at.join("/") });
                    }
                    if at.pop().is_none() {
                        return Err(LinkProblem::Escapes { chain });
                    }
                    last = Resolved::Dir;
                    continue;
                }
                _ => {}
            }
            at.push(comp);
            let joined = at.join("/");
            match self.kinds.get(joined.as_str()) {
                Some(EntryKind::Symlink { target }) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(LinkProblem::Loops);
                    }
                    chain.push(format!("{joined} -> {target}"));
                    at.pop();
                    // The link's own directory, where its target starts.
                    last = Resolved::Dir;
                    if target.starts_with('/') {
                        return Err(LinkProblem::Escapes { chain });
                    }
                    pending.extend(target.rsplit('/').map(str::to_owned));
                }
                Some(EntryKind::Dir) => last = Resolved::Dir,
                Some(EntryKind::File { executable, .. }) => {
                    last = Resolved::File {
                        executable: *executable,
                    }
                }
                None if self.parents.contains(joined.as_str()) => last = Resolved::Dir,
                // Missing names (and files used as directories) are walked on lexically (the
                // kernel would stop there), but never climbed out of (see above).
                None => last = Resolved::Missing,
            }
        }
        Ok(last)
    }

    /// The first link on `path`'s parents, if any (entries may not live below a link).
    fn link_above(&self, path: &str) -> Option<&str> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            end += i + 1;
            if let Some((stored, EntryKind::Symlink { .. })) = self.kinds.get_key_value(parent) {
                return Some(stored);
            }
        }
        None
    }
}

/// Checks every link of `entries`: each must resolve inside the tree, in at most
/// [`MAX_LINK_HOPS`] links, and no entry may sit below a link.
pub fn check_links(entries: &[TreeEntry]) -> Result<()> {
    let resolver = LinkResolver::new(entries);
    for e in entries {
        let problem = match (&e.kind, resolver.link_above(&e.path)) {
            (_, Some(link)) => Some(LinkProblem::UnderLink {
                link: link.to_owned(),
            }),
            (EntryKind::Symlink { .. }, None) => resolver.resolve(&e.path).err(),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(LayersError::BadLink {
                path: e.path.clone(),
                detail: problem.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &str) -> TreeEntry {
        TreeEntry {
            path: p.into(),
            kind: EntryKind::Dir,
        }
    }
    fn file(p: &str) -> TreeEntry {
        TreeEntry::file_from_bytes(p, b"x", false)
    }
    fn link(p: &str, t: &str) -> TreeEntry {
        TreeEntry {
            path: p.into(),
            kind: EntryKind::Symlink { target: t.into() },
        }
    }
    fn pqr() -> Vec<TreeEntry> {
        vec![dir("p"), dir("p/q"), dir("p/q/r")]
    }
    fn with(mut base: Vec<TreeEntry>, more: Vec<TreeEntry>) -> Vec<TreeEntry> {
        base.extend(more);
        base
    }

    #[test]
    fn check_links_table() {
        // (label, entries, the error must contain this; "" when accepted)
        let chain40: Vec<TreeEntry> = (0..40)
            .map(|i| link(&format!("l{i}"), &format!("l{}", i + 1)))
            .chain([file("l40")])
            .collect();
        let chain41: Vec<TreeEntry> = (0..41)
            .map(|i| link(&format!("l{i}"), &format!("l{}", i + 1)))
            .chain([file("l41")])
            .collect();
        let cases: Vec<(&str, Vec<TreeEntry>, &str)> = vec![
            ("plain inside", vec![file("a"), link("b", "a")], ""),
            (
                "sibling dir",
                vec![dir("d"), file("d/f"), link("l", "d/f")],
                "",
            ),
            ("dangling inside", vec![link("l", "nowhere")], ""),
            (
                "up and back",
                with(pqr(), vec![link("p/q/r/s", "../../..")]),
                "",
            ),
            (
                "issue chain",
                with(
                    pqr(),
                    vec![
                        link("p/q/r/s", "../../.."),
                        link("p/q/r/t", "s/../../../outside"),
                    ],
                ),
                "p/q/r/t",
            ),
            (
                "chain through a link's dotdot",
                vec![
                    dir("a"),
                    dir("a/b"),
                    link("a/b/up", ".."),
                    link("x", "a/b/up/../.."),
                ],
                "outside",
            ),
            ("self loop", vec![link("a", "a")], "loop"),
            (
                "two-link loop",
                vec![link("a", "b"), link("b", "a")],
                "loop",
            ),
            (
                "loop through a dir",
                vec![dir("d"), link("d/l", "../d/l")],
                "loop",
            ),
            ("forty links", chain40, ""),
            ("forty-one links", chain41, "loop"),
            (
                "entry under a link",
                vec![dir("d"), link("l", "d"), file("l/x")],
                "through the link l",
            ),
            (
                "escape via a link to the root",
                vec![dir("a"), link("a/root", ".."), link("b", "a/root/..")],
                "outside",
            ),
            (
                "dir link then file",
                vec![
                    dir("a"),
                    dir("a/b"),
                    link("c", "a/b"),
                    link("d", "c/../../x"),
                ],
                "",
            ),
            (
                "dir link then too far",
                vec![
                    dir("a"),
                    dir("a/b"),
                    link("c", "a/b"),
                    link("d", "c/../../../x"),
                ],
                "outside",
            ),
            (
                "up from a missing name",
                vec![link("l", "nope/../../x")],
                "goes up (..) from nope",
            ),
            (
                // `p/s` is not listed, but where case is ignored it is the link `p/S`, which
                // leads to the root, so `..` from there leaves the tree.
                "up from another spelling of a link",
                vec![dir("p"), link("p/S", ".."), link("t", "p/s/../../x")],
                "goes up (..) from p/s",
            ),
            (
                "up from a file",
                vec![file("f"), link("l", "f/../x")],
                "goes up (..) from f",
            ),
            (
                "up from an unlisted parent",
                vec![file("d/e/f"), link("l", "d/e/../e/f")],
                "",
            ),
            (
                "up after a link to a dir's sibling",
                vec![
                    dir("a"),
                    dir("a/b"),
                    link("a/l", "."),
                    link("x", "a/l/../a/b"),
                ],
                "",
            ),
            ("absolute", vec![link("l", "/etc/passwd")], "outside"),
        ];
        for (label, entries, want) in cases {
            let got = check_links(&entries);
            match (want, got) {
                ("", Ok(())) => {}
                ("", Err(e)) => panic!("{label}: unexpected {e}"),
                (_, Ok(())) => panic!("{label}: accepted"),
                (w, Err(e)) => assert!(e.to_string().contains(w), "{label}: {e}"),
            }
        }
    }

    #[test]
    fn resolve_says_what_a_path_leads_to() {
        let entries = vec![
            dir("bin"),
            TreeEntry::file_from_bytes("python/bin/python3.11", b"elf", true),
            dir("python"),
            dir("python/bin"),
            link("bin/python3", "../python/bin/python3"),
            link("python/bin/python3", "python3.11"),
            link("bin/lib", "../python"),
        ];
        let r = LinkResolver::new(&entries);
        assert_eq!(
            r.resolve("bin/python3"),
            Ok(Resolved::File { executable: true })
        );
        assert_eq!(r.resolve("bin/lib"), Ok(Resolved::Dir));
        assert_eq!(r.resolve("bin/none"), Ok(Resolved::Missing));
        assert_eq!(
            r.resolve("bin/lib/../.."),
            Err(LinkProblem::Escapes {
                chain: vec!["bin/lib -> ../python".into()]
            })
        );
    }
}
