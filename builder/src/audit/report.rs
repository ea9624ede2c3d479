//! What an audit found: findings that name the exact item, plus notes on what was (not) checked.

use std::fmt;

use serde::Serialize;

/// One disagreement, naming the exact item it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The item: `package pyyaml (PyYAML-….whl) in the cache`, `layer packages: python/…`,
    /// `lock entry linux-x86_64 package conan`, ….
    pub item: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.item, self.problem)
    }
}

/// The result of an audit: no findings means everything agreed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// What was audited (lock, artifact, root or layout path).
    pub subject: String,
    /// How many items were checked.
    pub checked: usize,
    /// Disagreements.
    pub findings: Vec<Finding>,
    /// What was skipped or could not be checked, and why.
    pub notes: Vec<String>,
}

impl AuditReport {
    /// An empty report about `subject`.
    pub fn new(subject: impl Into<String>) -> Self {
        AuditReport {
            subject: subject.into(),
            ..AuditReport::default()
        }
    }

    /// Records a finding.
    pub fn find(&mut self, item: impl Into<String>, problem: impl Into<String>) {
        self.findings.push(Finding {
            item: item.into(),
            problem: problem.into(),
        });
    }

    /// Records a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Adds another report's counts, findings and notes.
    pub fn merge(&mut self, other: AuditReport) {
        self.checked += other.checked;
        self.findings.extend(other.findings);
        self.notes.extend(other.notes);
    }

    /// Whether nothing disagreed.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The readable report: one line per finding, then the notes, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!("FINDING {f}\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        if self.findings.is_empty() {
            out.push_str(&format!(
                "ok: {} ({} items checked, all agree)\n",
                self.subject, self.checked
            ));
        } else {
            out.push_str(&format!(
                "{}: {} finding(s) in {} items checked\n",
                self.subject,
                self.findings.len(),
                self.checked
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lists_findings_then_notes_then_summary() {
        let mut r = AuditReport::new("envpack.lock");
        r.checked = 3;
        assert!(r.is_clean());
        assert_eq!(
            r.to_text(),
            "ok: envpack.lock (3 items checked, all agree)\n"
        );
        r.find("package pyyaml", "sha256 differs");
        r.note("index check skipped (--offline)");
        assert_eq!(
            r.to_text(),
            "FINDING package pyyaml: sha256 differs\nnote: index check skipped (--offline)\nenvpack.lock: 1 finding(s) in 3 items checked\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["findings"][0]["item"], "package pyyaml");
    }
}
