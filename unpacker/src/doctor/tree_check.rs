//! Check `env.tree`: every entry of the env dir against its manifest.

use envpack_layers::manifest::Manifest;
use envpack_layers::verify::{verify_tree, Difference};

use crate::doctor::finding::{env_path, finding_for_difference, Finding, FindingClass};
use crate::doctor::report::Check;
use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::staging::{manifest_path, MANIFEST_FILE};

/// Id of the tree check.
pub const TREE_CHECK: &str = "env.tree";
/// Id of the check that the tools left the tree as it was.
pub const UNCHANGED_CHECK: &str = "env.unchanged";

/// What the tree check learned, for the checks that follow.
#[derive(Debug)]
pub struct TreeResult {
    /// The check itself.
    pub check: Check,
    /// The manifest the tree was compared with, when one could be read.
    pub manifest: Option<Manifest>,
    /// The differences found (empty when the tree could not be compared).
    pub differences: Vec<Difference>,
}

/// Compares `envs/<env_id>` with its manifest. When the kept artifact's manifest is known it
/// is the reference (and the on-disk copy is checked against it); else the on-disk one is.
pub fn check_tree(
    layout: &RootLayout,
    env_id: &str,
    artifact_manifest: Option<&[u8]>,
) -> Result<TreeResult, UnpackError> {
    let env_dir = layout.env_dir(env_id);
    let fail = |finding: Finding, evidence: String| TreeResult {
        check: Check::from_findings(TREE_CHECK, evidence, vec![finding]),
        manifest: None,
        differences: Vec::new(),
    };
    if !env_dir.is_dir() {
        return Ok(fail(
            Finding::at(
                FindingClass::MissingEnv,
                format!("envs/{env_id}"),
                "the env directory is missing",
            ),
            format!("{} is not a directory", env_dir.display()),
        ));
    }
    let manifest_rel = env_path(env_id, MANIFEST_FILE);
    let on_disk = match fs_err::read(manifest_path(&env_dir)) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mut findings = Vec::new();
    let reference: Vec<u8> = match (artifact_manifest, &on_disk) {
        (Some(kept), disk) => {
            match disk {
                None => findings.push(Finding::at(
                    FindingClass::MissingFile,
                    &manifest_rel,
                    format!("missing: {MANIFEST_FILE}"),
                )),
                Some(d) if d.as_slice() != kept => findings.push(Finding::at(
                    FindingClass::CorruptedFile,
                    &manifest_rel,
                    "differs from the manifest in the kept artifact",
                )),
                Some(_) => {}
            }
            kept.to_vec()
        }
        (None, Some(d)) => d.clone(),
        (None, None) => {
            return Ok(fail(
                Finding::at(FindingClass::MissingFile, manifest_rel, "missing: manifest"),
                "the env has no manifest and no kept artifact to take one from".into(),
            ))
        }
    };
    let manifest = match Manifest::parse(&reference) {
        Ok(m) => m,
        Err(e) => {
            return Ok(fail(
                Finding::at(FindingClass::CorruptedFile, manifest_rel, e.to_string()),
                "the manifest cannot be parsed; the tree was not compared".into(),
            ))
        }
    };
    let differences = verify_tree(&env_dir, &manifest, &[MANIFEST_FILE])?;
    findings.extend(
        differences
            .iter()
            .map(|d| finding_for_difference(env_id, d)),
    );
    let source = if artifact_manifest.is_some() {
        "the kept artifact's manifest"
    } else {
        "the env's manifest"
    };
    let evidence = format!(
        "{} entries of {} compared with {source}: {} differences",
        manifest.entries.len(),
        env_dir.display(),
        findings.len()
    );
    Ok(TreeResult {
        check: Check::from_findings(TREE_CHECK, evidence, findings),
        manifest: Some(manifest),
        differences,
    })
}

/// Check `env.unchanged`: differences that appeared while the env's tools ran.
pub fn check_unchanged(
    layout: &RootLayout,
    env_id: &str,
    manifest: &Manifest,
    before: &[Difference],
) -> Result<Check, UnpackError> {
    let after = verify_tree(&layout.env_dir(env_id), manifest, &[MANIFEST_FILE])?;
    let findings: Vec<Finding> = after
        .iter()
        .filter(|d| !before.contains(d))
        .map(|d| {
            let mut f = finding_for_difference(env_id, d);
            f.class = FindingClass::EnvChangedByUse;
            f
        })
        .collect();
    Ok(Check::from_findings(
        UNCHANGED_CHECK,
        format!(
            "re-compared the tree after running its tools: {} new differences",
            findings.len()
        ),
        findings,
    ))
}
