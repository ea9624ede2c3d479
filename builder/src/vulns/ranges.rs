//! Whether a version falls in an OSV range, by the schema's evaluation rule: walk the events
//! in version order; `introduced` at or below the version starts an affected span, `fixed` at
//! or below it ends one, `last_affected` below it ends one.

use std::str::FromStr;

use pep440_rs::Version;

use super::osv::Event;

/// A range's verdict for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not affected.
    Clear,
    /// Affected; the first fixed version above it, if the range names one.
    Affected(Option<String>),
}

/// The verdict of `events` (an ECOSYSTEM or SEMVER range, compared as PEP 440 versions) for
/// `version`; an event whose version does not parse is an error naming it.
pub fn evaluate(events: &[Event], version: &Version) -> Result<Verdict, String> {
    // A local version (`2.1.0+cpu`) is its public version's build: it has its advisories.
    let version = &version.clone().without_local();
    let parse = |v: &str| {
        if v == "0" {
            return Ok(None);
        }
        Version::from_str(v).map(Some).map_err(|_| {
            format!(
                "version \"{}\" in a range is not a PEP 440 version",
                envpack_layers::shown_name(v)
            )
        })
    };
    enum Kind {
        Introduced,
        Fixed,
        LastAffected,
    }
    let mut points: Vec<(Option<Version>, Kind, &str)> = Vec::new();
    for e in events {
        if let Some(v) = &e.introduced {
            points.push((parse(v)?, Kind::Introduced, v));
        }
        if let Some(v) = &e.fixed {
            points.push((parse(v)?, Kind::Fixed, v));
        }
        if let Some(v) = &e.last_affected {
            points.push((parse(v)?, Kind::LastAffected, v));
        }
    }
    // None ("0") sorts first; at one version an end comes before a start, so the order of
    // the record's events doesn't change the verdict, and a re-introduction wins.
    let rank = |k: &Kind| match k {
        Kind::Fixed | Kind::LastAffected => 0,
        Kind::Introduced => 1,
    };
    points.sort_by(|a, b| a.0.cmp(&b.0).then(rank(&a.1).cmp(&rank(&b.1))));
    let mut affected = false;
    for (at, kind, _) in &points {
        let at_or_below = at.as_ref().is_none_or(|at| at <= version);
        match kind {
            Kind::Introduced if at_or_below => affected = true,
            Kind::Fixed if at_or_below => affected = false,
            Kind::LastAffected if at.as_ref().is_some_and(|at| at < version) => affected = false,
            _ => {}
        }
    }
    if !affected {
        return Ok(Verdict::Clear);
    }
    let fixed = points
        .iter()
        .filter(|(at, kind, _)| {
            matches!(kind, Kind::Fixed) && at.as_ref().is_some_and(|at| at > version)
        })
        .map(|(_, _, raw)| (*raw).to_owned())
        .next();
    Ok(Verdict::Affected(fixed))
}

/// Whether `version` is one of the listed `versions` (compared as PEP 440 versions, and as
/// text so `v3.11.7`-style tags match too).
pub fn listed(versions: &[String], version: &Version, raw: &str) -> bool {
    let version = &version.clone().without_local();
    versions.iter().any(|v| {
        let v = v.strip_prefix('v').unwrap_or(v);
        v == raw || Version::from_str(v).is_ok_and(|v| v == *version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, v: &str) -> Event {
        let mut e = Event::default();
        let s = Some(v.to_owned());
        match kind {
            "i" => e.introduced = s,
            "f" => e.fixed = s,
            "l" => e.last_affected = s,
            _ => e.limit = s,
        }
        e
    }

    #[test]
    fn versions_are_placed_in_ranges_as_the_schema_says() {
        let fixed = |v: &str| Verdict::Affected(Some(v.to_owned()));
        // (events, version, verdict)
        let table: Vec<(Vec<Event>, &str, Verdict)> = vec![
            (
                vec![ev("i", "0"), ev("f", "2.32.0")],
                "2.31.0",
                fixed("2.32.0"),
            ),
            (
                vec![ev("i", "0"), ev("f", "2.32.0")],
                "2.32.0",
                Verdict::Clear,
            ),
            (
                vec![ev("i", "0"), ev("f", "2.32.0")],
                "2.32.0rc1",
                fixed("2.32.0"),
            ),
            // Unordered events, two spans (urllib3's CVE-2024-37891 shape).
            (
                vec![
                    ev("f", "2.2.2"),
                    ev("i", "2.0.0"),
                    ev("f", "1.26.19"),
                    ev("i", "0"),
                ],
                "1.26.18",
                fixed("1.26.19"),
            ),
            (
                vec![
                    ev("i", "0"),
                    ev("f", "1.26.19"),
                    ev("i", "2.0.0"),
                    ev("f", "2.2.2"),
                ],
                "1.26.20",
                Verdict::Clear,
            ),
            (
                vec![
                    ev("i", "0"),
                    ev("f", "1.26.19"),
                    ev("i", "2.0.0"),
                    ev("f", "2.2.2"),
                ],
                "2.2.1",
                fixed("2.2.2"),
            ),
            (
                vec![ev("i", "3.0.0"), ev("f", "3.1.5")],
                "2.11.3",
                Verdict::Clear,
            ),
            (
                vec![ev("i", "1.0"), ev("l", "1.4")],
                "1.4",
                Verdict::Affected(None),
            ),
            (
                vec![ev("i", "1.0"), ev("l", "1.4")],
                "1.4.1",
                Verdict::Clear,
            ),
            (vec![ev("i", "0")], "99", Verdict::Affected(None)),
            (
                vec![ev("i", "0"), ev("x", "5")],
                "6",
                Verdict::Affected(None),
            ),
            (vec![], "1.0", Verdict::Clear),
            // Equal versions: the same verdict whatever the events' order.
            (
                vec![ev("i", "0"), ev("f", "2.0"), ev("i", "2.0"), ev("f", "2.1")],
                "2.0",
                fixed("2.1"),
            ),
            (
                vec![ev("i", "2.0"), ev("f", "2.1"), ev("f", "2.0"), ev("i", "0")],
                "2.0",
                fixed("2.1"),
            ),
            // A local version is its public version.
            (
                vec![ev("i", "1.0"), ev("l", "2.1.0")],
                "2.1.0+cpu",
                Verdict::Affected(None),
            ),
            // PEP 440 order, not text order.
            (vec![ev("i", "0"), ev("f", "3.10")], "3.9", fixed("3.10")),
            (vec![ev("i", "0"), ev("f", "3.7")], "3.6", fixed("3.7")),
        ];
        for (events, v, want) in table {
            let got = evaluate(&events, &Version::from_str(v).unwrap()).unwrap();
            assert_eq!(got, want, "{v} in {events:?}");
        }
        let err = evaluate(
            &[ev("f", "not-a-version")],
            &Version::from_str("1").unwrap(),
        );
        assert!(err.unwrap_err().contains("not-a-version"));
    }

    #[test]
    fn listed_versions_match_as_versions_and_tags() {
        let v = Version::from_str("3.11.7").unwrap();
        assert!(listed(&["3.11.6".into(), "v3.11.7".into()], &v, "3.11.7"));
        assert!(listed(&["3.11.07".into()], &v, "3.11.7"));
        assert!(!listed(&["3.11.70".into()], &v, "3.11.7"));
        let local = Version::from_str("2.1.0+cpu").unwrap();
        assert!(listed(&["2.1.0".into()], &local, "2.1.0+cpu"));
    }
}
