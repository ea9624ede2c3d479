//! The vulnerability report as text and as SARIF 2.1.0 (for code-scanning dashboards).

use serde_json::json;

use super::{Severity, VulnReport};

/// Lines for a person.
pub fn to_text(r: &VulnReport) -> String {
    let mut out = format!(
        "vulnerability database {}: {} records, newest modified {}\n",
        r.database,
        r.records,
        r.newest_modified.as_deref().unwrap_or("unknown")
    );
    out.push_str(&format!("checked {}\n", r.checked.join(", ")));
    for f in &r.findings {
        let aliases = if f.aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.aliases.join(", "))
        };
        let fixed = f
            .fixed
            .as_deref()
            .map_or("no fixed version named".to_owned(), |v| {
                format!("fixed in {v}")
            });
        out.push_str(&format!(
            "{} {}{aliases}: {} {}, {fixed}, severity {}{}\n",
            f.severity.as_str().to_uppercase(),
            f.id,
            f.package,
            f.version,
            f.severity.as_str(),
            f.summary
                .as_deref()
                .map_or(String::new(), |s| format!(": {s}"))
        ));
    }
    for u in &r.unevaluated {
        out.push_str(&format!("NOT EVALUATED {u}\n"));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let gate = match r.fail_on {
        super::Gate::None => "none".to_owned(),
        super::Gate::At(s) => s.as_str().to_owned(),
    };
    let unevaluated = match r.unevaluated.len() {
        0 => String::new(),
        n => format!(", {n} not evaluated (they fail every gate but none)"),
    };
    out.push_str(&format!(
        "{} {}{unevaluated}; --fail-on {gate}: {}\n",
        r.findings.len(),
        if r.findings.len() == 1 {
            "vulnerability"
        } else {
            "vulnerabilities"
        },
        if r.failed { "FAILED" } else { "passed" }
    ));
    out
}

/// SARIF 2.1.0: one rule per record, one result per vulnerable package, located in the lock.
pub fn to_sarif(r: &VulnReport, lock_uri: &str) -> serde_json::Value {
    let mut rules: Vec<serde_json::Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in &r.findings {
        if seen.insert(f.id.clone()) {
            // GitHub code scanning reads `security-severity` (a CVSS-like score) and the tag.
            let score = match f.severity {
                Severity::Critical => "9.5",
                Severity::High => "8.0",
                Severity::Medium | Severity::Unknown => "5.5",
                Severity::Low => "2.0",
            };
            rules.push(json!({
                "id": f.id,
                "shortDescription": {"text": f.summary.clone().unwrap_or_else(|| f.id.clone())},
                "properties": {
                    "aliases": f.aliases,
                    "severity": f.severity.as_str(),
                    "security-severity": score,
                    "tags": ["security", "vulnerability"],
                },
            }));
        }
    }
    let results: Vec<serde_json::Value> = r
        .findings
        .iter()
        .map(|f| {
            let level = match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium | Severity::Unknown => "warning",
                Severity::Low => "note",
            };
            let fixed = f
                .fixed
                .as_deref()
                .map_or(String::new(), |v| format!("; fixed in {v}"));
            json!({
                "ruleId": f.id,
                "level": level,
                "message": {"text": format!("{} {} is affected by {}{fixed}", f.package, f.version, f.id)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": lock_uri}}}],
                "properties": {"package": f.package, "version": f.version, "platforms": f.platforms},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "envpack",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
