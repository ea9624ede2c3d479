//! Link resolution against a whole tree, as the kernel would do it.
//!
//! A per-link lexical check (see [`crate::tree::validate_link_target`]) cannot see chains:
//! `p/q/r/s -> ../../..` and `p/q/r/t -> s/../../../x` each look inside on their own, yet `t`
//! leaves the tree once `s` is followed. Here every link is resolved component by component
//! against the tree's own entries, following each link met on the way (at most
//! [`MAX_LINK_HOPS`], like Linux), and a resolution that climbs above the tree root or never
//! ends is refused. The builder runs this before it writes a manifest and every reader runs it
//! when it parses one, so both sides apply the same rule.

use std::cell::Cell;
use std::collections::HashMap;

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
    /// Resolving the tree's links took more than [`MAX_RESOLVE_STEPS`] steps in all.
    TooComplex,
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
            LinkProblem::UnderLink { link } => write!(
                f,
                "its path goes through the link {}",
                crate::error::shown_name(link)
            ),
            LinkProblem::TooComplex => write!(
                f,
                "does not resolve: the tree's links take more than {MAX_RESOLVE_STEPS} steps \
                 to follow (a manifest built to be slow to check)"
            ),
            LinkProblem::UpFromUnlisted { name } => write!(
                f,
                "goes up (..) from {}, which the environment does not have as a directory (on \
                 a case-insensitive filesystem that name could be a link)",
                crate::error::shown_name(name)
            ),
        }
    }
}

/// Components walked by one resolver, over all its resolutions, before it gives up: far more
/// than any real tree needs (a few per link), few enough that a manifest built to be slow to
/// check (many links through long chains of long targets) is refused in about a second.
pub const MAX_RESOLVE_STEPS: usize = 1 << 22;

/// The tree root's node.
const ROOT: usize = 0;

/// A tree's entries as a tree of nodes, for resolving links against it. Each step of a
/// resolution looks one name up below one node, so its cost does not grow with the depth.
pub struct LinkResolver<'a> {
    /// A node's child by name.
    children: HashMap<(usize, &'a str), usize>,
    /// Each node's path and, when the tree lists it, its kind (unlisted nodes are parents
    /// of listed entries: directories that extraction creates).
    nodes: Vec<(&'a str, Option<&'a EntryKind>)>,
    /// Components walked so far, against [`MAX_RESOLVE_STEPS`].
    steps: Cell<usize>,
}

impl<'a> LinkResolver<'a> {
    /// Indexes `entries` (paths relative to the tree root, '/'-separated).
    pub fn new(entries: &'a [TreeEntry]) -> Self {
        let mut children = HashMap::new();
        let mut nodes: Vec<(&'a str, Option<&'a EntryKind>)> = vec![("", None)];
        for e in entries {
            let mut node = ROOT;
            let mut end = 0;
            for comp in e.path.split('/') {
                end += comp.len();
                let path = &e.path[..end];
                end += 1;
                node = *children.entry((node, comp)).or_insert_with(|| {
                    nodes.push((path, None));
                    nodes.len() - 1
                });
            }
            nodes[node].1 = Some(&e.kind);
        }
        LinkResolver {
            children,
            nodes,
            steps: Cell::new(0),
        }
    }

    /// Follows `path` from the tree root, the last component included, and says what it
    /// leads to.
    pub fn resolve(&self, path: &str) -> std::result::Result<Resolved, LinkProblem> {
        // Components still to walk, last first, so a link's target is pushed in front.
        let mut pending: Vec<&str> = path.rsplit('/').collect();
        // The nodes walked so far (`None` past a name the tree does not have) and their names.
        let mut at: Vec<Option<usize>> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        let mut hops = 0usize;
        let mut last = Resolved::Dir;
        while let Some(comp) = pending.pop() {
            self.steps.set(self.steps.get() + 1);
            if self.steps.get() > MAX_RESOLVE_STEPS {
                return Err(LinkProblem::TooComplex);
            }
            match comp {
                "" | "." => continue,
                ".." => {
                    // The kernel stops at a missing name or a file; a case-insensitive one
                    // may find a link under another spelling, so `..` from there is refused.
                    if last != Resolved::Dir {
                        return Err(LinkProblem::UpFromUnlisted {
                            name: names.join("/"),
                        });
                    }
                    if at.pop().is_none() {
                        return Err(LinkProblem::Escapes { chain });
                    }
                    names.pop();
                    continue;
                }
                _ => {}
            }
            let here = at.last().copied().unwrap_or(Some(ROOT));
            let node = here.and_then(|h| self.children.get(&(h, comp)).copied());
            match node.map(|n| (n, self.nodes[n].1)) {
                Some((n, Some(EntryKind::Symlink { target }))) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(LinkProblem::Loops);
                    }
                    chain.push(format!(
                        "{} -> {}",
                        crate::error::shown_name(self.nodes[n].0),
                        crate::error::shown_name(target)
                    ));
                    // The target starts in the link's own directory, where the walk is.
                    last = Resolved::Dir;
                    if target.starts_with('/') {
                        return Err(LinkProblem::Escapes { chain });
                    }
                    pending.extend(target.rsplit('/'));
                    continue;
                }
                Some((_, Some(EntryKind::File { executable, .. }))) => {
                    last = Resolved::File {
                        executable: *executable,
                    }
                }
                Some((_, Some(EntryKind::Dir) | None)) => last = Resolved::Dir,
                // Missing names (and files used as directories) are walked on lexically (the
                // kernel would stop there), but never climbed out of (see above).
                None => last = Resolved::Missing,
            }
            at.push(node);
            names.push(comp);
        }
        Ok(last)
    }

    /// The first link on `path`'s parents, if any (entries may not live below a link).
    fn link_above(&self, path: &str) -> Option<&'a str> {
        let mut node = ROOT;
        let mut comps = path.split('/').peekable();
        while let Some(comp) = comps.next() {
            if comps.peek().is_none() {
                break;
            }
            node = *self.children.get(&(node, comp))?;
            if let (stored, Some(EntryKind::Symlink { .. })) = self.nodes[node] {
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
        // A 39-link chain of long targets, entered by 20 links: 20 * 39 * 6,000 steps.
        let mut slow: Vec<TreeEntry> = (0..39)
            .map(|i| {
                link(
                    &format!("c{i}"),
                    &format!("{}c{}", "./".repeat(6_000), i + 1),
                )
            })
            .collect();
        slow.extend((0..20).map(|i| link(&format!("e{i}"), "c0")));
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
            // Each step costs one lookup, however deep the walk: 200,000 components once
            // took minutes (a path joined and hashed per component).
            (
                "a target of 200,000 components",
                vec![link("l", &"x/".repeat(200_000))],
                "",
            ),
            (
                "deep entry below a link",
                vec![
                    dir("a"),
                    link("a/l", "."),
                    file(&format!("a/l/{}f", "d/".repeat(100_000))),
                ],
                "through the link a/l",
            ),
            ("too slow to check", slow, "more than 4194304 steps"),
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
