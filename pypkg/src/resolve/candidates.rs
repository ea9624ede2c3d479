//! Which files of a project a target can use, per version, and which versions a raised target
//! (newer glibc or macOS) would admit, so `lock` can say what the target costs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use super::DistKind;
use crate::filename::{parse_dist_filename, DistFilename, PackageName};
use crate::index::IndexFile;
use crate::tags::{TagRanks, WheelTarget};

/// One acceptable file for a version, with how good it is (lower is better).
#[derive(Debug, Clone)]
pub struct FileChoice {
    /// The file.
    pub file: IndexFile,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// Sort key: wheels by tag rank, sdists after all wheels.
    pub rank: (usize, Reverse<Option<u64>>, String),
}

/// Usable files per version, best first.
pub type VersionFiles = BTreeMap<Version, Vec<FileChoice>>;

/// A version with a wheel the target can't use but a raised target would admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raisable {
    /// The lowest target version (of the target's own setting) admitting one of its wheels.
    pub needed: (u32, u32),
    /// That wheel.
    pub filename: String,
}

/// A project's files as one target sees them.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// Usable files per version, best first.
    pub usable: VersionFiles,
    /// Versions with a wheel only a raised target would admit (their sdist may be usable).
    pub raisable: BTreeMap<Version, Raisable>,
    /// The platform tags of the project's wheels that matched neither (for the hint when
    /// nothing fits at all).
    pub foreign_platforms: BTreeSet<String>,
}

impl Candidates {
    /// The newest raisable version in `range` above `floor` (pre-releases only if allowed).
    pub fn newest_raisable(
        &self,
        range: &pubgrub::Ranges<Version>,
        floor: Option<&Version>,
        allow_pre: bool,
    ) -> Option<(&Version, &Raisable)> {
        self.raisable.iter().rev().find(|(v, _)| {
            range.contains(v) && floor.is_none_or(|f| *v > f) && (allow_pre || !v.any_prerelease())
        })
    }
}

/// A newer version than the one locked that only a raised target admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetNote {
    /// The newer version.
    pub version: Version,
    /// The setting to raise (`glibc`, `macos`).
    pub key: &'static str,
    /// What it must be raised to.
    pub needed: (u32, u32),
    /// What it is.
    pub current: (u32, u32),
    /// The file the raise would admit.
    pub filename: String,
}

impl fmt::Display for TargetNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} needs {} {}.{} (the target is {}.{}): {}",
            self.version,
            self.key,
            self.needed.0,
            self.needed.1,
            self.current.0,
            self.current.1,
            self.filename
        )
    }
}

/// The spec line that raises `key` of `platform` to `v`.
pub fn raise_advice(platform: &str, key: &str, v: (u32, u32)) -> String {
    format!(
        "set `[platforms.{platform}] {key} = \"{}.{}\"` in the spec to admit it",
        v.0, v.1
    )
}

/// Groups a project's files by version, keeping only files usable on the target, best first;
/// wheels that only a raised `target` would load are remembered per version.
pub fn candidate_files(
    name: &PackageName,
    files: &[IndexFile],
    ranks: &TagRanks,
    target: &WheelTarget,
    python: &Version,
) -> Candidates {
    let mut out = Candidates::default();
    for f in files {
        let Some(parsed) = parse_dist_filename(&f.filename) else {
            continue;
        };
        if parsed.name() != name {
            continue;
        }
        if let Some(rp) = &f.requires_python {
            match VersionSpecifiers::from_str(rp) {
                Ok(spec) if !spec.contains(python) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(file = %f.filename, requires_python = %rp, error = %e, "ignoring unparsable Requires-Python")
                }
            }
        }
        let (kind, rank) = match &parsed {
            DistFilename::Wheel(w) => {
                let Some(r) = ranks.priority(&w.tags) else {
                    note_rejected(&mut out, parsed.version(), f, &w.tags, ranks, target);
                    continue;
                };
                let build = w.build.as_deref().and_then(|b| {
                    b.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .ok()
                });
                (DistKind::Wheel, (r, Reverse(build), f.filename.clone()))
            }
            // .tar.gz sorts before .zip, so the choice is stable.
            DistFilename::Sdist(_) => (
                DistKind::Sdist,
                (
                    usize::MAX,
                    Reverse(None),
                    format!("{}{}", u8::from(f.filename.ends_with(".zip")), f.filename),
                ),
            ),
        };
        out.usable
            .entry(parsed.version().clone())
            .or_default()
            .push(FileChoice {
                file: f.clone(),
                kind,
                rank,
            });
    }
    for v in out.usable.values_mut() {
        v.sort_by(|a, b| a.rank.cmp(&b.rank));
    }
    out
}

/// Records what a rejected wheel would need: the lowest raise of the target that admits it.
fn note_rejected(
    out: &mut Candidates,
    version: &Version,
    f: &IndexFile,
    tags: &[crate::tags::WheelTag],
    ranks: &TagRanks,
    target: &WheelTarget,
) {
    let needed = tags
        .iter()
        .filter_map(|t| target.raise_needed(t))
        .filter(|(_, at_target)| ranks.priority(std::slice::from_ref(at_target)).is_some())
        .map(|(v, _)| v)
        .min();
    let Some(needed) = needed else {
        for t in tags {
            out.foreign_platforms.insert(t.platform.clone());
        }
        return;
    };
    if f.yanked.is_some() {
        return;
    }
    let better = match out.raisable.get(version) {
        Some(r) => (needed, &f.filename) < (r.needed, &r.filename),
        None => true,
    };
    if better {
        out.raisable.insert(
            version.clone(),
            Raisable {
                needed,
                filename: f.filename.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::compatible_tags;
    use url::Url;

    fn file(name: &str, yanked: bool, requires_python: Option<&str>) -> IndexFile {
        IndexFile {
            filename: name.to_string(),
            url: Url::parse(&format!("http://h/f/{name}")).unwrap(),
            sha256: None,
            size: None,
            requires_python: requires_python.map(str::to_string),
            yanked: yanked.then(String::new),
            metadata_sha256: None,
        }
    }

    fn linux() -> WheelTarget {
        WheelTarget::Manylinux {
            arch: "x86_64".into(),
            glibc: (2, 17),
            musllinux: None,
        }
    }

    #[test]
    fn candidate_selection_table() {
        let target = linux();
        let ranks = TagRanks::new(&compatible_tags(&target, 3, 11));
        let py = Version::from_str("3.11.7").unwrap();
        let files = vec![
            file("demo-2.0.tar.gz", false, None),
            file("demo-2.0.zip", false, None),
            file("demo-2.0-py3-none-any.whl", false, None),
            file("demo-2.0-cp311-cp311-manylinux2014_x86_64.whl", false, None),
            file("demo-2.0-cp311-cp311-win_amd64.whl", false, None),
            file("demo-3.0-py3-none-any.whl", false, Some(">=3.12")),
            file(
                "demo-1.5-cp311-cp311-manylinux_2_28_x86_64.whl",
                false,
                None,
            ),
            file("demo-1.5.zip", false, None),
            file("demo-1.5.tar.gz", false, None),
            file("demo-1.0-py3-none-any.whl", true, Some("&&bad")),
            file("other-9.0-py3-none-any.whl", false, None),
            file("demo-9.0.exe", false, None),
        ];
        let name = PackageName::from_str("demo").unwrap();
        let c = candidate_files(&name, &files, &ranks, &target, &py).usable;
        let versions: Vec<String> = c.keys().map(|v| v.to_string()).collect();
        assert_eq!(versions, ["1.0", "1.5", "2.0"]);
        let names = |v: &str| -> Vec<&str> {
            c[&Version::from_str(v).unwrap()]
                .iter()
                .map(|f| f.file.filename.as_str())
                .collect()
        };
        assert_eq!(
            names("2.0"),
            [
                "demo-2.0-cp311-cp311-manylinux2014_x86_64.whl",
                "demo-2.0-py3-none-any.whl",
                "demo-2.0.tar.gz",
                "demo-2.0.zip"
            ]
        );
        assert_eq!(names("1.5"), ["demo-1.5.tar.gz", "demo-1.5.zip"]);
        assert_eq!(
            c[&Version::from_str("1.5").unwrap()][0].kind,
            DistKind::Sdist
        );
        assert!(c[&Version::from_str("1.0").unwrap()][0]
            .file
            .yanked
            .is_some());
    }

    #[test]
    fn raisable_versions_name_the_lowest_raise() {
        let target = linux();
        let ranks = TagRanks::new(&compatible_tags(&target, 3, 11));
        let py = Version::from_str("3.11.7").unwrap();
        let files = vec![
            file(
                "lief-0.12.3-cp311-cp311-manylinux2014_x86_64.whl",
                false,
                None,
            ),
            file(
                "lief-1.0.0-cp311-cp311-manylinux_2_34_x86_64.whl",
                false,
                None,
            ),
            file(
                "lief-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                false,
                None,
            ),
            file("lief-1.0.0-cp311-cp311-win_amd64.whl", false, None),
            // Another interpreter: raising glibc would not help.
            file(
                "lief-1.1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                false,
                None,
            ),
            file(
                "lief-1.2.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                true,
                None,
            ),
            // 2.0's sdist is usable (it may build a wheel for the host only): still raisable.
            file(
                "lief-2.0.0-cp311-cp311-manylinux_2_34_x86_64.whl",
                false,
                None,
            ),
            file("lief-2.0.0.tar.gz", false, None),
        ];
        let name = PackageName::from_str("lief").unwrap();
        let c = candidate_files(&name, &files, &ranks, &target, &py);
        let raisable: Vec<(String, (u32, u32), &str)> = c
            .raisable
            .iter()
            .map(|(v, r)| (v.to_string(), r.needed, r.filename.as_str()))
            .collect();
        assert_eq!(
            raisable,
            [
                (
                    "1.0.0".to_string(),
                    (2, 28),
                    "lief-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"
                ),
                (
                    "2.0.0".to_string(),
                    (2, 34),
                    "lief-2.0.0-cp311-cp311-manylinux_2_34_x86_64.whl"
                )
            ]
        );
        assert!(c.usable.contains_key(&Version::from_str("2.0.0").unwrap()));
        assert!(c.foreign_platforms.contains("win_amd64"));
        let all = pubgrub::Ranges::full();
        let low = Version::from_str("0.12.3").unwrap();
        assert_eq!(
            c.newest_raisable(&all, Some(&low), false)
                .map(|(v, _)| v.to_string()),
            Some("2.0.0".to_string())
        );
        let to_1 = pubgrub::Ranges::strictly_lower_than(Version::from_str("2").unwrap());
        assert_eq!(
            c.newest_raisable(&to_1, Some(&low), false)
                .map(|(v, _)| v.to_string()),
            Some("1.0.0".to_string())
        );
        assert!(c
            .newest_raisable(&to_1, Some(&Version::from_str("1.0.0").unwrap()), false)
            .is_none());
        let note = TargetNote {
            version: Version::from_str("1.0.0").unwrap(),
            key: "glibc",
            needed: (2, 28),
            current: (2, 17),
            filename: "f.whl".into(),
        };
        assert_eq!(
            note.to_string(),
            "1.0.0 needs glibc 2.28 (the target is 2.17): f.whl"
        );
        assert_eq!(
            raise_advice("linux-x86_64", "glibc", (2, 28)),
            "set `[platforms.linux-x86_64] glibc = \"2.28\"` in the spec to admit it"
        );
    }
}
