//! Saying why a resolution failed in the user's words when the cause is a top-level
//! requirement that nothing on the index meets (a typo'd version, a project that isn't there):
//! which requirement, which index, and the versions it does have nearest to the one asked for.
//! Deeper conflicts keep pubgrub's derivation report.

use pep440_rs::Version;
use pep508_rs::VersionOrUrl;

use super::provider::Provider;
use super::ranges::specifiers_to_ranges;
use crate::filename::PackageName;
use crate::PypkgError;

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
        let Some(VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url else {
            continue;
        };
        let range = specifiers_to_ranges(spec);
        let cands = provider.candidates_unreported(&name)?;
        if provider.newest_fit(&name, &cands.usable, &range).is_some()
            || cands.newest_raisable(&range, None, true).is_some()
        {
            continue;
        }
        let versions: Vec<&Version> = cands.usable.keys().collect();
        let detail = if versions.is_empty() {
            provider.why_none(&name).unwrap_or_else(|| {
                format!("nothing of {name} on the index {index} can be installed here")
            })
        } else {
            let asked = spec.iter().next().map(|s| s.version().clone());
            format!(
                "no version of {name} on the index {index} matches {spec}; {}",
                nearest(&versions, asked.as_ref())
            )
        };
        out.push(Unmet {
            index: i,
            requirement: req.to_string(),
            detail,
        });
    }
    Ok(out)
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
    use std::str::FromStr;

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
