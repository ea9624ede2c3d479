//! `doctor`: proves a live root is right without changing its env. Each check reports
//! pass/fail/skip with evidence and classified findings; the report goes to a log dir with
//! every command's output and a `SUCCESS` marker when all passed.

pub mod activation_checks;
pub mod finding;
pub mod log_dir;
pub mod report;
pub mod root_checks;
pub mod run_command;
pub mod tool_checks;
pub mod tree_check;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::UnpackError;
use crate::root_setup::open_root;

pub use finding::{Finding, FindingClass};
pub use report::{Check, CheckStatus, DoctorReport, REPORT_KIND, REPORT_SCHEMA_VERSION};

/// How doctor runs.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Log dir to use instead of `ROOT/.envpack/doctor/<run-id>`.
    pub log_dir: Option<PathBuf>,
    /// Limit for each command doctor runs.
    pub timeout: Duration,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            log_dir: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Runs every check on `root`'s current env and writes the log dir. Only the state dir (a
/// probe file, Conan's own files in its CONAN_HOME) and the log dir are written to.
pub fn doctor(root: &Path, opts: &DoctorOptions) -> Result<DoctorReport, UnpackError> {
    let layout = open_root(root)?;
    let log = log_dir::LogDir::create(&layout, opts.log_dir.as_deref())?;
    let (current, env_id) = root_checks::check_current(&layout)?;
    tracing::info!(env_id, log = %log.path().display(), "doctor");
    let (artifact, artifact_manifest) = root_checks::check_artifact(&layout, &env_id);
    let tree = tree_check::check_tree(&layout, &env_id, artifact_manifest.as_deref())?;
    let mut checks = vec![current, tree.check, artifact];
    checks.push(root_checks::check_trust(&layout, &env_id));
    checks.push(root_checks::check_shims(
        &layout,
        &env_id,
        tree.manifest.as_ref(),
    )?);
    checks.push(root_checks::check_state(&layout, &env_id)?);
    checks.push(root_checks::check_state_writable(&layout, &env_id));
    let env_present = layout.env_dir(&env_id).is_dir();
    let tools = tool_checks::ToolChecks {
        layout: &layout,
        env_id: &env_id,
        log: &log,
        timeout: opts.timeout,
    };
    if env_present {
        checks.extend(tools.run_all());
    } else {
        // Every report lists the same check ids, so consumers can look them up.
        for id in tool_checks::TOOL_CHECKS {
            checks.push(Check::skip(
                id,
                "the env directory is missing (see env.tree)",
            ));
        }
    }
    for shell in activation_checks::SHELLS {
        let check = if env_present {
            activation_checks::check_activation(shell, &layout, &env_id, &log, opts.timeout, None)
        } else {
            Check::skip(
                &format!("activation.{}", shell.name()),
                "the env directory is missing (see env.tree)",
            )
        };
        checks.push(check);
    }
    checks.push(match &tree.manifest {
        Some(manifest) => {
            tree_check::check_unchanged(&layout, &env_id, manifest, &tree.differences)?
        }
        None => Check::skip(
            tree_check::UNCHANGED_CHECK,
            "the tree could not be compared (see env.tree)",
        ),
    });
    let report = DoctorReport::new(
        layout.root.display().to_string(),
        Some(env_id),
        checks,
        log.path().display().to_string(),
    );
    log.finish(&report.to_json(), report.healthy)?;
    Ok(report)
}
