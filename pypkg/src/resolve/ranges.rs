//! PEP 440 version specifiers as pubgrub version ranges.

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use pubgrub::Ranges;

/// The set of versions matched by all `specifiers` (pre-release policy is applied separately).
pub fn specifiers_to_ranges(specifiers: &VersionSpecifiers) -> Ranges<Version> {
    specifiers.iter().fold(Ranges::full(), |acc, s| {
        acc.intersection(&specifier_to_ranges(s))
    })
}

/// The lowest version of the release `prefix` (below its dev and pre-releases).
fn prefix_floor(epoch: u64, prefix: &[u64]) -> Version {
    Version::new(prefix.iter().copied())
        .with_epoch(epoch)
        .with_min(Some(0))
}

/// The floor of the release after `prefix` (last segment bumped).
fn prefix_ceiling(epoch: u64, prefix: &[u64]) -> Version {
    let mut next = prefix.to_vec();
    if let Some(last) = next.last_mut() {
        *last += 1;
    }
    prefix_floor(epoch, &next)
}

/// All versions starting with release `prefix` (what `==prefix.*` matches).
fn prefix_range(epoch: u64, prefix: &[u64]) -> Ranges<Version> {
    Ranges::between(prefix_floor(epoch, prefix), prefix_ceiling(epoch, prefix))
}

/// One specifier as a range.
pub fn specifier_to_ranges(spec: &VersionSpecifier) -> Ranges<Version> {
    let v = spec.version().clone();
    match spec.operator() {
        Operator::Equal | Operator::ExactEqual => Ranges::singleton(v),
        Operator::NotEqual => Ranges::singleton(v).complement(),
        Operator::EqualStar => prefix_range(v.epoch(), v.release()),
        Operator::NotEqualStar => prefix_range(v.epoch(), v.release()).complement(),
        Operator::TildeEqual => {
            let release = v.release();
            // The parser guarantees ~= has at least two release segments.
            let prefix = &release[..release.len().saturating_sub(1).max(1)];
            Ranges::higher_than(v.clone()).intersection(&Ranges::strictly_lower_than(
                prefix_ceiling(v.epoch(), prefix),
            ))
        }
        Operator::LessThan => {
            if v.any_prerelease() {
                Ranges::strictly_lower_than(v)
            } else {
                // `<V` must not admit pre-releases of V itself.
                Ranges::strictly_lower_than(v.with_min(Some(0)))
            }
        }
        Operator::LessThanEqual => Ranges::lower_than(v),
        Operator::GreaterThan => {
            if v.is_post() || v.is_dev() {
                Ranges::strictly_higher_than(v)
            } else {
                // `>V` must not admit post-releases or local versions of V.
                Ranges::strictly_higher_than(v.with_max(Some(0)))
            }
        }
        Operator::GreaterThanEqual => Ranges::higher_than(v),
    }
}

/// Whether the specifiers name a pre-release, which opts the requirement into pre-releases.
pub fn names_prerelease(specifiers: &VersionSpecifiers) -> bool {
    specifiers.iter().any(|s| s.version().any_prerelease())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn r(spec: &str) -> Ranges<Version> {
        specifiers_to_ranges(&VersionSpecifiers::from_str(spec).unwrap())
    }

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    #[test]
    fn membership_table() {
        let table: &[(&str, &str, bool)] = &[
            ("==1.2", "1.2", true),
            ("==1.2", "1.2.0", true),
            ("==1.2", "1.2.1", false),
            ("===1.2", "1.2", true),
            ("!=1.2", "1.2", false),
            ("!=1.2", "1.3", true),
            ("==1.2.*", "1.2", true),
            ("==1.2.*", "1.2.9.post1", true),
            ("==1.2.*", "1.2a1", true),
            ("==1.2.*", "1.2.dev0", true),
            ("==1.2.*", "1.3.dev0", false),
            ("==1.2.*", "1.1.9", false),
            ("!=1.2.*", "1.2.5", false),
            ("!=1.2.*", "1.3", true),
            ("~=2.2", "2.2", true),
            ("~=2.2", "2.9.1", true),
            ("~=2.2", "3.0", false),
            ("~=2.2", "3.0a1", false),
            ("~=2.2", "2.1", false),
            ("~=1.4.5", "1.4.9", true),
            ("~=1.4.5", "1.5.0", false),
            ("~=1.4.5", "1.4.4", false),
            ("<2", "1.9", true),
            ("<2", "2.0a1", false),
            ("<2", "2.0", false),
            ("<2.0b1", "2.0a1", true),
            ("<=2", "2.0", true),
            ("<=2", "2.0.1", false),
            (">1.0", "1.0.post1", false),
            (">1.0", "1.0", false),
            (">1.0", "1.0.1", true),
            (">1.0.post1", "1.0.post2", true),
            (">=1.0", "1.0", true),
            (">=1.0", "0.9", false),
            (">=1.0,<2", "1.5", true),
            (">=1.0,<2", "2.1", false),
            ("<3,>=2.1", "2.1", true),
            ("", "0.0.1", true),
            ("==1!1.0.*", "1!1.0.5", true),
            ("==1!1.0.*", "1.0.5", false),
        ];
        for (spec, version, want) in table {
            assert_eq!(
                r(spec).contains(&v(version)),
                *want,
                "{version} in {spec:?}"
            );
            // Agree with pep440_rs's own matcher for every row.
            let specs = VersionSpecifiers::from_str(spec).unwrap();
            if !v(version).any_prerelease() {
                assert_eq!(
                    specs.contains(&v(version)),
                    *want,
                    "pep440_rs: {version} in {spec:?}"
                );
            }
        }
    }

    #[test]
    fn prerelease_naming() {
        for (spec, want) in [
            (">=1.0", false),
            (">=1.0rc1", true),
            ("==2.0.dev3", true),
            ("<3,!=2.0b2", true),
            ("", false),
        ] {
            assert_eq!(
                names_prerelease(&VersionSpecifiers::from_str(spec).unwrap()),
                want,
                "{spec}"
            );
        }
    }
}
