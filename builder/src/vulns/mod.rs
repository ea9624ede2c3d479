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

    fn from_cvss(scores: &[SeverityScore]) -> Option<Self> {
        scores.iter().find_map(|s| {
            if s.kind != "CVSS_V3" {
                return None;
            }
            let base = cvss::v3::Base::from_str(&s.score).ok()?;
            Some(match base.score().severity() {
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
                format!("--fail-on must be none, low, medium, high or critical, not {s:?}")
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
    /// Records about a locked package that could not be evaluated, with the reason.
    pub unevaluated: Vec<String>,
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
    for record in db.records.values().filter(|r| r.withdrawn.is_none()) {
        for affected in &record.affected {
            let Some(name) = subject_of(record, affected) else {
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
    findings.sort_by(|a, b| (b.severity, &a.package, &a.id).cmp(&(a.severity, &b.package, &b.id)));
    findings.dedup_by(|a, b| a.id == b.id && a.package == b.package && a.version == b.version);
    unevaluated.sort();
    unevaluated.dedup();
    let failed = findings.iter().any(|f| gate.fails(f.severity));
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
        fail_on: gate,
        failed,
    }
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
    let v = Version::from_str(version)
        .map_err(|_| format!("the locked version {version:?} is not a PEP 440 version"))?;
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
    let mut evaluable = !affected.versions.is_empty();
    for range in affected.ranges.iter().filter(|r| r.kind != "GIT") {
        evaluable = true;
        if let Verdict::Affected(fixed) = ranges::evaluate(&range.events, &v)? {
            return Ok(Some(fixed));
        }
    }
    if evaluable {
        Ok(None)
    } else {
        Err("only git commit ranges, which need the project's history; not evaluated".into())
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
