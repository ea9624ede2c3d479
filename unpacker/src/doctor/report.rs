//! The doctor report: its stable JSON shape (see `unpacker/schema/doctor-report.schema.json`)
//! and its human-readable rendering.

use serde::Serialize;

use crate::doctor::finding::Finding;

/// Value of the report's `kind` field.
pub const REPORT_KIND: &str = "envpack-doctor-report";
/// Version of the report's JSON shape; bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Everything the check looks at is as expected.
    Pass,
    /// The check found problems (see its findings).
    Fail,
    /// The check could not run here (tool absent, prerequisite failed); evidence says why.
    Skip,
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable dotted id, e.g. `env.tree` or `activation.bash`.
    pub id: String,
    /// Outcome.
    pub status: CheckStatus,
    /// What was looked at or run and what came out, in one or a few lines.
    pub evidence: String,
    /// Problems found; empty unless `status` is `fail`.
    pub findings: Vec<Finding>,
}

impl Check {
    /// A passed check.
    pub fn pass(id: &str, evidence: impl Into<String>) -> Self {
        Check::new(id, CheckStatus::Pass, evidence, Vec::new())
    }

    /// A skipped check.
    pub fn skip(id: &str, evidence: impl Into<String>) -> Self {
        Check::new(id, CheckStatus::Skip, evidence, Vec::new())
    }

    /// Pass when `findings` is empty, else fail.
    pub fn from_findings(id: &str, evidence: impl Into<String>, findings: Vec<Finding>) -> Self {
        let status = if findings.is_empty() {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        };
        Check::new(id, status, evidence, findings)
    }

    fn new(
        id: &str,
        status: CheckStatus,
        evidence: impl Into<String>,
        findings: Vec<Finding>,
    ) -> Self {
        Check {
            id: id.to_owned(),
            status,
            evidence: evidence.into(),
            findings,
        }
    }
}

/// Counts of checks per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Checks that passed.
    pub pass: usize,
    /// Checks that failed.
    pub fail: usize,
    /// Checks that were skipped.
    pub skip: usize,
}

/// Everything `doctor` found about a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// Always [`REPORT_KIND`].
    pub kind: &'static str,
    /// Always [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the envpack unpacker that wrote the report.
    pub envpack_version: &'static str,
    /// The root (absolute).
    pub root: String,
    /// The env that was checked (the root record's current, else the link's), if any.
    pub env_id: Option<String>,
    /// True when no check failed.
    pub healthy: bool,
    /// Counts of checks per status.
    pub summary: Summary,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// Where the report, each command's output and the `SUCCESS` marker were written.
    pub log_dir: String,
}

impl DoctorReport {
    /// Builds a report from its checks, computing `healthy` and `summary`.
    pub fn new(root: String, env_id: Option<String>, checks: Vec<Check>, log_dir: String) -> Self {
        let summary = summarize(&checks);
        DoctorReport {
            kind: REPORT_KIND,
            schema_version: REPORT_SCHEMA_VERSION,
            envpack_version: env!("CARGO_PKG_VERSION"),
            root,
            env_id,
            healthy: summary.fail == 0,
            summary,
            checks,
            log_dir,
        }
    }

    /// Every finding of every failed check, with its check id.
    pub fn findings(&self) -> impl Iterator<Item = (&str, &Finding)> {
        self.checks
            .iter()
            .flat_map(|c| c.findings.iter().map(move |f| (c.id.as_str(), f)))
    }

    /// The report as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Plain strings, numbers and enums: serializing cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// A readable report: one line per check, findings indented below failed ones.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "envpack doctor: {} ({})\n",
            self.root,
            self.env_id.as_deref().unwrap_or("no current env")
        );
        for c in &self.checks {
            let tag = match c.status {
                CheckStatus::Pass => "PASS",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Skip => "SKIP",
            };
            out.push_str(&format!("{tag} {:<20} {}\n", c.id, first_line(&c.evidence)));
            for f in &c.findings {
                out.push_str(&format!(
                    "     - {} {}: {}\n",
                    f.class.as_str(),
                    f.path.as_deref().unwrap_or("-"),
                    f.detail
                ));
            }
        }
        out.push_str(&format!(
            "{}: {} passed, {} failed, {} skipped; logs in {}\n",
            if self.healthy {
                "healthy"
            } else {
                "NOT healthy"
            },
            self.summary.pass,
            self.summary.fail,
            self.summary.skip,
            self.log_dir
        ));
        out
    }
}

/// Counts the checks per status.
pub fn summarize(checks: &[Check]) -> Summary {
    let mut s = Summary::default();
    for c in checks {
        match c.status {
            CheckStatus::Pass => s.pass += 1,
            CheckStatus::Fail => s.fail += 1,
            CheckStatus::Skip => s.skip += 1,
        }
    }
    s
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::finding::FindingClass;

    #[test]
    fn healthy_only_without_failures() {
        let ok = DoctorReport::new(
            "/r".into(),
            Some("e".into()),
            vec![Check::pass("a", "fine"), Check::skip("b", "no pwsh")],
            "/r/log".into(),
        );
        assert!(ok.healthy);
        assert_eq!(
            ok.summary,
            Summary {
                pass: 1,
                fail: 0,
                skip: 1
            }
        );
        let bad = DoctorReport::new(
            "/r".into(),
            None,
            vec![Check::from_findings(
                "env.tree",
                "1 difference",
                vec![Finding::at(
                    FindingClass::MissingFile,
                    "envs/e/x",
                    "missing: x",
                )],
            )],
            "/r/log".into(),
        );
        assert!(!bad.healthy);
        assert_eq!(bad.findings().count(), 1);
        let text = bad.to_text();
        assert!(text.contains("FAIL env.tree"), "{text}");
        assert!(text.contains("missing_file envs/e/x: missing: x"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&bad.to_json()).unwrap();
        assert_eq!(json["kind"], REPORT_KIND);
        assert_eq!(json["checks"][0]["status"], "fail");
        assert_eq!(json["checks"][0]["findings"][0]["class"], "missing_file");
    }
}
