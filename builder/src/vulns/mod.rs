//! The offline vulnerability gate: a lock's packages and CPython against an OSV snapshot
//! (`envpack audit --vulns DB`).

mod osv;
mod ranges;
mod report;

use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::Version;
use serde::Serialize;

use crate::lock::Lock;
pub use osv::Database;
use osv::{Affected, Record, SeverityScore};
use ranges::Verdict;
pub use report::to_sarif;

/// How bad a vulnerability is, as its record says (CVSS bands; GHSA's "moderate" is medium).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The record gives none.
    Unknown,
    /// Low.
    Low,
    /// Medium (moderate).
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    fn from_word(w: &str) -> Option<Self> {
        Some(match w.to_ascii_lowercase().as_str() {
            "low" => Severity::Low,
            "moderate" | "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The band of a CVSS v3 or v4 base vector; a v3 vector missing any base metric is not
    /// scored (it would score too low).
    fn from_cvss(scores: &[SeverityScore]) -> Option<Self> {
        scores.iter().find_map(|s| {
            let band = match s.kind.as_str() {
                "CVSS_V3" => {
                    let complete = ["AV:", "AC:", "PR:", "UI:", "S:", "C:", "I:", "A:"]
                        .iter()
                        .all(|m| s.score.split('/').any(|part| part.starts_with(m)));
                    if !complete {
                        return None;
                    }
                    cvss::v3::Base::from_str(&s.score).ok()?.score().severity()
                }
                "CVSS_V4" => cvss::v4::Vector::from_str(&s.score)
                    .ok()?
                    .score()
                    .severity(),
                _ => return None,
            };
            Some(match band {
                cvss::Severity::None => return None,
                cvss::Severity::Low => Severity::Low,
                cvss::Severity::Medium => Severity::Medium,
                cvss::Severity::High => Severity::High,
                cvss::Severity::Critical => Severity::Critical,
            })
        })
    }

    /// The name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// `--fail-on`: the lowest severity that fails the audit; a vulnerability of unknown severity
/// fails every gate but `none` (a gate should not pass on what it cannot rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Report, never fail.
    None,
    /// Fail at this severity or above.
    At(Severity),
}

impl FromStr for Gate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Gate::None),
            _ => Severity::from_word(s).map(Gate::At).ok_or_else(|| {
                format!(
                    "--fail-on must be none, low, medium, high or critical, not \"{}\"",
                    envpack_layers::shown_name(s)
                )
            }),
        }
    }
}

impl Gate {
    fn fails(self, s: Severity) -> bool {
        match self {
            Gate::None => false,
            Gate::At(level) => s == Severity::Unknown || s >= level,
        }
    }
}

/// One vulnerability of one locked package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VulnFinding {
    /// The record id.
    pub id: String,
    /// Its aliases (CVE ids).
    pub aliases: Vec<String>,
    /// The package (`cpython` for the interpreter).
    pub package: String,
    /// The locked version.
    pub version: String,
    /// The first version with the fix, when the record names one.
    pub fixed: Option<String>,
    /// The severity.
    pub severity: Severity,
    /// The record's summary.
    pub summary: Option<String>,
    /// The lock's platforms that carry this version.
    pub platforms: Vec<String>,
}

/// What `audit --vulns` found.
#[derive(Debug, Clone, Serialize)]
pub struct VulnReport {
    /// The database read.
    pub database: String,
    /// How many records it holds.
    pub records: usize,
    /// Its newest `modified` time: a stale snapshot shows here.
    pub newest_modified: Option<String>,
    /// Every package version checked, `name version`.
    pub checked: Vec<String>,
    /// The vulnerabilities, most severe first.
    pub findings: Vec<VulnFinding>,
    /// Records about a locked package that could not be evaluated, with the reason; they fail
    /// every gate but none, as an unknown severity does.
    pub unevaluated: Vec<String>,
    /// What the database does not cover (no records for PyPI, or none for CPython).
    pub notes: Vec<String>,
    /// The gate.
    pub fail_on: Gate,
    /// Whether the gate fails.
    pub failed: bool,
}

/// The name a package is looked up by: PEP 503 normalized.
fn key(name: &str) -> String {
    name.parse::<envpack_pypkg::PackageName>()
        .map_or_else(|_| name.to_ascii_lowercase(), |n| n.to_string())
}

const CPYTHON: &str = "cpython";

/// Checks every package of every platform of `lock`, and CPython, against `db`.
pub fn check_lock(lock: &Lock, db: &Database, gate: Gate) -> VulnReport {
    // (normalized name, version) -> (shown name, platforms)
    let mut subjects: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    for p in &lock.platforms {
        for pkg in &p.packages {
            subjects
                .entry((key(&pkg.name), pkg.version.clone()))
                .or_insert_with(|| (pkg.name.clone(), Vec::new()))
                .1
                .push(p.name.clone());
        }
    }
    let all: Vec<String> = lock.platforms.iter().map(|p| p.name.clone()).collect();
    subjects.insert(
        (CPYTHON.to_owned(), lock.python.version.clone()),
        (CPYTHON.to_owned(), all),
    );
    let mut findings = Vec::new();
    let mut unevaluated = Vec::new();
    let (mut pypi_records, mut cpython_records) = (0usize, 0usize);
    for record in db.records.values().filter(|r| r.withdrawn.is_none()) {
        let names: Vec<Option<String>> = record
            .affected
            .iter()
            .map(|a| subject_of(record, a))
            .collect();
        if names.iter().flatten().any(|n| n == CPYTHON) {
            cpython_records += 1;
        } else if names.iter().any(Option::is_some) {
            pypi_records += 1;
        }
        for (affected, name) in record.affected.iter().zip(names) {
            let Some(name) = name else {
                continue;
            };
            for ((n, version), (shown, platforms)) in
                subjects.range((name.clone(), String::new())..)
            {
                if *n != name {
                    break;
                }
                match affects(affected, version) {
                    Ok(Some(fixed)) => findings.push(VulnFinding {
                        id: record.id.clone(),
                        aliases: record.aliases.clone(),
                        package: shown.clone(),
                        version: version.clone(),
                        fixed,
                        severity: severity_of(record, affected),
                        summary: record.summary.clone(),
                        platforms: platforms.clone(),
                    }),
                    Ok(None) => {}
                    Err(why) => {
                        unevaluated.push(format!("{} ({shown} {version}): {why}", record.id))
                    }
                }
            }
        }
    }
    let mut findings = merge_aliases(findings);
    findings.sort_by(|a, b| (b.severity, &a.package, &a.id).cmp(&(a.severity, &b.package, &b.id)));
    unevaluated.sort();
    unevaluated.dedup();
    let mut notes = Vec::new();
    if pypi_records == 0 {
        notes.push("the database has no PyPI records: the packages were not checked".to_owned());
    }
    if cpython_records == 0 {
        notes.push("the database has no CPython records: CPython was not checked".to_owned());
    }
    let failed = findings.iter().any(|f| gate.fails(f.severity))
        || (gate != Gate::None && !unevaluated.is_empty());
    VulnReport {
        database: db.source.display().to_string(),
        records: db.records.len(),
        newest_modified: db.newest_modified().map(str::to_owned),
        checked: subjects
            .iter()
            .map(|((_, v), (shown, _))| format!("{shown} {v}"))
            .collect(),
        findings,
        unevaluated,
        notes,
        fail_on: gate,
        failed,
    }
}

/// One finding per vulnerability of a package version: records that name each other (a GHSA
/// and the PYSEC with it as alias) are one, with the highest severity any of them gives and
/// every id, so an unrated copy neither doubles the count nor fails a gate the rated one
/// passes. (The same record can also come once per `affected` entry.)
fn merge_aliases(findings: Vec<VulnFinding>) -> Vec<VulnFinding> {
    let ids = |x: &VulnFinding| -> Vec<String> {
        std::iter::once(x.id.clone())
            .chain(x.aliases.iter().cloned())
            .collect()
    };
    let mut merged: Vec<VulnFinding> = Vec::new();
    for f in findings {
        let mine = ids(&f);
        let same = merged.iter_mut().find(|m| {
            m.package == f.package
                && m.version == f.version
                && ids(m).iter().any(|i| mine.contains(i))
        });
        let Some(m) = same else {
            merged.push(f);
            continue;
        };
        let known = |s: Severity| (s != Severity::Unknown).then_some(s);
        m.severity = match (known(m.severity), known(f.severity)) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(Severity::Unknown),
        };
        for i in mine {
            if i != m.id && !m.aliases.contains(&i) {
                m.aliases.push(i);
            }
        }
        m.fixed = m.fixed.take().or(f.fixed);
        m.summary = m.summary.take().or(f.summary);
        for p in f.platforms {
            if !m.platforms.contains(&p) {
                m.platforms.push(p);
            }
        }
    }
    for m in &mut merged {
        m.aliases.sort();
    }
    merged
}

/// Which locked name an `affected` entry is about: a PyPI package, or CPython (records with
/// no package are CPython's own, from the PSF database).
fn subject_of(record: &Record, affected: &Affected) -> Option<String> {
    match &affected.package {
        Some(p) if p.name.eq_ignore_ascii_case(CPYTHON) => Some(CPYTHON.to_owned()),
        Some(p) if p.ecosystem.eq_ignore_ascii_case("PyPI") => Some(key(&p.name)),
        Some(_) => None,
        None if record.id.starts_with("PSF-") => Some(CPYTHON.to_owned()),
        None => None,
    }
}

/// Whether `version` is affected (with its fix, if named); Err when nothing in the entry can
/// be evaluated for it.
fn affects(affected: &Affected, version: &str) -> Result<Option<Option<String>>, String> {
    let v = Version::from_str(version).map_err(|_| {
        format!(
            "the locked version \"{}\" is not a PEP 440 version",
            envpack_layers::shown_name(version)
        )
    })?;
    if ranges::listed(&affected.versions, &v, version) {
        let fixed =
            affected.ranges.iter().filter(|r| r.kind != "GIT").find_map(
                |r| match ranges::evaluate(&r.events, &v) {
                    Ok(Verdict::Affected(f)) => f,
                    _ => None,
                },
            );
        return Ok(Some(fixed));
    }
    // Every range counts (affected by any is affected): one range that can't be read does not
    // hide another that says affected.
    let mut evaluated = !affected.versions.is_empty();
    let mut error = None;
    for range in affected.ranges.iter().filter(|r| r.kind != "GIT") {
        match ranges::evaluate(&range.events, &v) {
            Ok(Verdict::Affected(fixed)) => return Ok(Some(fixed)),
            Ok(Verdict::Clear) => evaluated = true,
            Err(e) => error = Some(e),
        }
    }
    match error {
        Some(e) => Err(e),
        None if evaluated => Ok(None),
        None => {
            Err("only git commit ranges, which need the project's history; not evaluated".into())
        }
    }
}

fn severity_of(record: &Record, affected: &Affected) -> Severity {
    let word = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|d| d.get("severity"))
            .and_then(|s| s.as_str())
            .and_then(Severity::from_word)
    };
    word(&affected.database_specific)
        .or_else(|| word(&record.database_specific))
        .or_else(|| Severity::from_cvss(&affected.severity))
        .or_else(|| Severity::from_cvss(&record.severity))
        .unwrap_or(Severity::Unknown)
}

impl VulnReport {
    /// The report as lines of text.
    pub fn to_text(&self) -> String {
        report::to_text(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, aliases: &[&str], severity: Severity) -> VulnFinding {
        VulnFinding {
            id: id.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            package: "idna".into(),
            version: "3.6".into(),
            fixed: None,
            severity,
            summary: None,
            platforms: vec!["linux-x86_64".into()],
        }
    }

    #[test]
    fn records_that_name_each_other_are_one_finding_with_the_known_severity() {
        let merged = merge_aliases(vec![
            finding("GHSA-1", &["CVE-1"], Severity::Medium),
            finding("PYSEC-1", &["CVE-1", "GHSA-1"], Severity::Unknown),
            finding("GHSA-2", &[], Severity::Low),
            finding("GHSA-1", &["CVE-1"], Severity::Medium),
        ]);
        assert_eq!(merged.len(), 2, "{merged:?}");
        assert_eq!(merged[0].severity, Severity::Medium);
        assert_eq!(merged[0].aliases, ["CVE-1", "PYSEC-1"]);
        assert!(!Gate::At(Severity::High).fails(merged[0].severity));
    }

    #[test]
    fn severities_come_from_words_and_complete_cvss_vectors() {
        let v = |kind: &str, score: &str| SeverityScore {
            kind: kind.into(),
            score: score.into(),
        };
        let table = [
            (
                v("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
                Some(Severity::Critical),
            ),
            (
                v("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"),
                Some(Severity::Medium),
            ),
            // Missing base metrics would score too low: not scored.
            (v("CVSS_V3", "CVSS:3.1/C:H/I:H/A:H"), None),
            (
                v(
                    "CVSS_V4",
                    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                ),
                Some(Severity::Critical),
            ),
            (v("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"), None),
        ];
        for (score, want) in table {
            assert_eq!(
                Severity::from_cvss(std::slice::from_ref(&score)),
                want,
                "{score:?}"
            );
        }
        assert_eq!(Severity::from_word("MODERATE"), Some(Severity::Medium));
        assert_eq!("none".parse::<Gate>(), Ok(Gate::None));
        assert!(Gate::At(Severity::Critical).fails(Severity::Unknown));
        assert!(!Gate::None.fails(Severity::Critical));
    }
}
