//! Checking a root's current env against its manifest, plus its link and shims.

use std::path::Path;

use envpack_layers::verify::verify_tree;
use serde::Serialize;

use crate::current_link::read_current;
use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::root_record::RootRecord;
use crate::root_setup::open_root;
use crate::shims::{activate_file_name, env_programs, is_shim, plan_shims, ShimStyle};
use crate::staging::{env_manifest, MANIFEST_FILE};

/// The result of a verification: empty `differences` means all is well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The env that was checked.
    pub env_id: String,
    /// How many manifest entries (or archive entries) were checked.
    pub files_checked: usize,
    /// One readable line per finding.
    pub differences: Vec<String>,
    /// The signature check's result, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Re-hashes the current env against its manifest and checks `current`, `root.json` and the
/// shims in `ROOT/bin`.
pub fn verify_root(root: &Path) -> Result<VerifyReport, UnpackError> {
    let layout = open_root(root)?;
    let env_id = read_current(&layout)?.ok_or_else(|| UnpackError::NoCurrent {
        root: layout.root.clone(),
    })?;
    let env_dir = layout.env_dir(&env_id);
    let mut differences = Vec::new();
    if !env_dir.is_dir() {
        differences.push(format!("current points at envs/{env_id}, which is missing"));
        return Ok(VerifyReport {
            env_id,
            files_checked: 0,
            differences,
            signature: None,
        });
    }
    let manifest = env_manifest(&env_dir)?;
    let found = verify_tree(&env_dir, &manifest, &[MANIFEST_FILE])?;
    differences.extend(found.iter().map(|d| d.to_string()));
    differences.extend(check_shims(&layout, &env_dir)?);
    let record = RootRecord::load(&layout.record_file())?;
    if !record.agrees_with(Some(env_id.as_str())) {
        differences.push(match &record.current {
            Some(r) => format!(
                "current points at envs/{env_id} but root.json records envs/{r} as current \
                 (changed outside envpack?); run repair to point current back at envs/{r}, or \
                 unpack the artifact you want current"
            ),
            None => format!(
                "current points at envs/{env_id} but root.json records no current env; \
                 unpack that env's artifact again to record it"
            ),
        });
    }
    Ok(VerifyReport {
        env_id,
        files_checked: manifest.entries.len(),
        differences,
        signature: None,
    })
}

/// Findings about `ROOT/bin`: every program of the env and `activate` need a shim.
fn check_shims(layout: &RootLayout, env_dir: &Path) -> Result<Vec<String>, UnpackError> {
    let style = ShimStyle::native();
    let mut names: Vec<String> = plan_shims(&env_programs(env_dir)?, style)
        .into_iter()
        .map(|p| p.file_name)
        .collect();
    names.push(activate_file_name(style).to_owned());
    let mut findings = Vec::new();
    for name in names {
        let path = layout.bin_dir().join(&name);
        if !path.is_file() {
            findings.push(format!("shim bin/{name} is missing"));
        } else if !is_shim(&path)? {
            findings.push(format!("bin/{name} is not an envpack shim"));
        }
    }
    Ok(findings)
}
