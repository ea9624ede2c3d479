//! Saying why a resolution failed in the user's words when the cause is a top-level
//! requirement that nothing on the index meets (a typo'd version, a project that isn't there):
//! which requirement, which index, and the versions it does have nearest to the one asked for.
//! Deeper conflicts keep pubgrub's derivation report.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::VersionOrUrl;
use pubgrub::Ranges;

use super::provider::Provider;
use super::ranges::specifiers_to_ranges;
use crate::filename::{parse_dist_filename, DistFilename, PackageName};
use crate::{IndexFile, PypkgError};

/// Versions listed on each side of the one asked for.
const NEAREST: usize = 3;

/// A top-level requirement no version on the index meets, explained.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmet {
    /// Its position among the requirements resolved.
    pub index: usize,
    /// The requirement.
    pub requirement: String,
    /// Why it can't be met.
    pub detail: String,
}

/// Every active top-level requirement of `provider` that no usable file meets.
pub(super) fn unmet_requirements(provider: &Provider) -> Result<Vec<Unmet>, PypkgError> {
    let mut out = Vec::new();
    let index = provider.resolver.index.base();
    for (i, req) in provider.requirements.iter().enumerate() {
        if !req.marker.evaluate(&provider.env, &[]) {
            continue;
        }
        let name = PackageName::from(&req.name);
        let (range, spec) = match &req.version_or_url {
            None => (Ranges::full(), None),
            Some(VersionOrUrl::VersionSpecifier(s)) => (specifiers_to_ranges(s), Some(s)),
            Some(VersionOrUrl::Url(_)) => continue,
        };
        let cands = provider.candidates_unreported(&name)?;
        if provider.newest_fit(&name, &cands.usable, &range).is_some()
            || cands.newest_raisable(&range, None, true).is_some()
        {
            continue;
        }
        let files = match provider.resolver.index.project_files(&name) {
            Ok(f) => f,
            Err(PypkgError::NotFound { .. }) => Default::default(),
            Err(e) => return Err(e),
        };
        let blocked = why_not(&name, &range, &files, &provider.python);
        // Versions a requirement could name instead: those with a file that isn't yanked.
        let usable: Vec<&Version> = cands
            .usable
            .iter()
            .filter(|(_, fs)| fs.iter().any(|f| f.file.yanked.is_none()))
            .map(|(v, _)| v)
            .collect();
        let wanted = match spec {
            Some(s) => format!("matches {s}"),
            None => "can be used".to_string(),
        };
        let asked = spec.and_then(|s| s.iter().next()).map(|s| s.version());
        let detail = match (blocked.is_empty(), usable.is_empty()) {
            (true, true) => provider.why_none(&name).unwrap_or_else(|| {
                format!("nothing of {name} on the index {index} can be used here")
            }),
            (true, false) => format!(
                "no version of {name} on the index {index} {wanted}; {}",
                nearest(&usable, asked)
            ),
            (false, _) => {
                let mut d = format!(
                    "no usable version of {name} on the index {index} {wanted}: {}",
                    blocked.join("; ")
                );
                if !usable.is_empty() {
                    d.push_str("; ");
                    d.push_str(&nearest(&usable, asked));
                }
                d
            }
        };
        out.push(Unmet {
            index: i,
            requirement: req.to_string(),
            detail,
        });
    }
    Ok(out)
}

/// Why the versions in `range` that the index has can't be used, newest first (at most 3):
/// yanked, a Requires-Python this interpreter doesn't meet, or only wheels whose tags don't fit.
fn why_not(
    name: &PackageName,
    range: &Ranges<Version>,
    files: &[IndexFile],
    python: &Version,
) -> Vec<String> {
    #[derive(Default)]
    struct Seen {
        yanked: Option<String>,
        python: Option<String>,
        tags: BTreeSet<String>,
        other: bool,
    }
    let mut by_version: BTreeMap<Version, Seen> = BTreeMap::new();
    for f in files {
        let Some(parsed) = parse_dist_filename(&f.filename) else {
            continue;
        };
        if parsed.name() != name || !range.contains(parsed.version()) {
            continue;
        }
        let seen = by_version.entry(parsed.version().clone()).or_default();
        let needs = f
            .requires_python
            .as_ref()
            .filter(|rp| VersionSpecifiers::from_str(rp).is_ok_and(|s| !s.contains(python)));
        if let Some(rp) = needs {
            seen.python = Some(rp.clone());
        } else if let Some(reason) = &f.yanked {
            seen.yanked = Some(reason.clone());
        } else if let DistFilename::Wheel(w) = &parsed {
            // The whole tag: the interpreter or ABI can be what doesn't fit, not the platform.
            seen.tags.extend(w.tags.iter().map(ToString::to_string));
        } else {
            seen.other = true;
        }
    }
    by_version
        .iter()
        .rev()
        .take(3)
        .map(|(v, seen)| match seen {
            Seen {
                yanked: Some(r), ..
            } if r.is_empty() => format!("{v} is yanked"),
            Seen {
                yanked: Some(r), ..
            } => format!("{v} is yanked ({r})"),
            Seen {
                python: Some(rp), ..
            } => format!("{v} needs Python {rp} (this is {python})"),
            Seen {
                tags, other: false, ..
            } if !tags.is_empty() => {
                let list: Vec<&str> = tags.iter().map(String::as_str).take(6).collect();
                format!(
                    "{v} has only wheels tagged {} (none fits here)",
                    list.join(", ")
                )
            }
            _ => format!("{v} has no file usable here"),
        })
        .collect()
}

/// "the nearest there are A, B, C (N versions in all)": up to [`NEAREST`] on each side of
/// `asked` (the newest when nothing was asked for), oldest first.
fn nearest(versions: &[&Version], asked: Option<&Version>) -> String {
    if let [only] = versions {
        return format!("the only version there is {only}");
    }
    let split = asked.map_or(versions.len(), |a| versions.partition_point(|v| *v < a));
    let lo = split.saturating_sub(NEAREST);
    let hi = (split + NEAREST).min(versions.len());
    let shown: Vec<String> = versions[lo..hi].iter().map(ToString::to_string).collect();
    format!(
        "the nearest there are {} ({} versions in all)",
        shown.join(", "),
        versions.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, yanked: Option<&str>, requires_python: Option<&str>) -> IndexFile {
        IndexFile {
            filename: name.into(),
            url: url::Url::parse(&format!("http://index.invalid/{name}")).unwrap(),
            sha256: None,
            size: None,
            requires_python: requires_python.map(Into::into),
            yanked: yanked.map(Into::into),
            metadata_sha256: None,
        }
    }

    #[test]
    fn says_why_each_matching_version_is_unusable() {
        let files = [
            file("foo-2.0.tar.gz", Some("broken build"), None),
            file("foo-2.1-py3-none-any.whl", None, Some(">=3.13")),
            file("foo-2.2-cp311-cp311-macosx_11_0_arm64.whl", None, None),
            file("foo-2.2-cp311-cp311-win_amd64.whl", None, None),
            file("foo-2.3.tar.gz", Some(""), None),
            file("foo-1.0.tar.gz", None, None),
            file("bar-2.5.tar.gz", None, None),
        ];
        let name = PackageName::from_str("foo").unwrap();
        let range = Ranges::higher_than(Version::from_str("2").unwrap());
        let python = Version::from_str("3.11.7").unwrap();
        assert_eq!(
            why_not(&name, &range, &files, &python),
            [
                "2.3 is yanked",
                "2.2 has only wheels tagged cp311-cp311-macosx_11_0_arm64, cp311-cp311-win_amd64 (none fits here)",
                "2.1 needs Python >=3.13 (this is 3.11.7)",
            ]
        );
        let only_old = Ranges::strictly_lower_than(Version::from_str("2").unwrap());
        assert_eq!(
            why_not(&name, &only_old, &files, &python),
            ["1.0 has no file usable here"]
        );
    }

    #[test]
    fn nearest_versions_surround_the_one_asked_for() {
        let owned: Vec<Version> = ["1.0", "2.0.0", "2.20.0", "2.20.1", "2.21.0", "3.0"]
            .iter()
            .map(|v| Version::from_str(v).unwrap())
            .collect();
        let vs: Vec<&Version> = owned.iter().collect();
        let v = |s: &str| Version::from_str(s).unwrap();
        let cases = [
            (Some(v("9.9.9")), "2.20.1, 2.21.0, 3.0 (6 versions in all)"),
            (Some(v("0.1")), "1.0, 2.0.0, 2.20.0 (6 versions in all)"),
            (
                Some(v("2.20.5")),
                "2.0.0, 2.20.0, 2.20.1, 2.21.0, 3.0 (6 versions in all)",
            ),
            (None, "2.20.1, 2.21.0, 3.0 (6 versions in all)"),
        ];
        for (asked, want) in cases {
            assert_eq!(
                nearest(&vs, asked.as_ref()),
                format!("the nearest there are {want}"),
                "{asked:?}"
            );
        }
        assert_eq!(
            nearest(&vs[..1], Some(&v("2"))),
            "the only version there is 1.0"
        );
    }
}
