//! `repair`: fixes exactly what doctor found, from a verified artifact, then runs doctor
//! again. Healthy files are never rewritten; whatever is replaced is moved into
//! `ROOT/.envpack/quarantine/<run-id>/`, never deleted.

pub mod fixes;
pub mod plan;
pub mod restore_entries;

use std::path::{Path, PathBuf};

use envpack_layers::manifest::Manifest;
use serde::Serialize;

use crate::current_link::switch_current;
use crate::doctor::finding::{Finding, FindingClass};
use crate::doctor::tree_check::{check_tree, TREE_CHECK};
use crate::doctor::{doctor, DoctorOptions, DoctorReport};
use crate::error::UnpackError;
use crate::kept_artifact::{
    artifact_manifest_bytes, kept_artifact_path, open_verified, replace_kept,
};
use crate::layout::RootLayout;
use crate::root_dirs::RootDirs;
use crate::root_lock::RootLock;
use crate::root_record::RootRecord;
use crate::root_setup::open_root;
use crate::scratch::{clean_leftovers, Scratch};

pub use plan::{plan_repair, RepairPlan};

/// Value of the repair report's `kind` field.
pub const REPAIR_REPORT_KIND: &str = "envpack-repair-report";

/// How repair runs.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// The artifact to restore from instead of the copy kept in the root.
    pub artifact: Option<PathBuf>,
    /// How the doctor runs before and after are done (their log dirs are always fresh).
    pub doctor: DoctorOptions,
}

/// One thing repair changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairAction {
    /// The kind of damage fixed.
    pub class: FindingClass,
    /// Root-relative path changed, when about one path.
    pub path: Option<String>,
    /// What was done.
    pub action: String,
}

/// What repair did and the doctor reports before and after.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    /// Always [`REPAIR_REPORT_KIND`].
    pub kind: &'static str,
    /// Version of this JSON shape.
    pub schema_version: u32,
    /// The root (absolute).
    pub root: String,
    /// The env repaired.
    pub env_id: Option<String>,
    /// The artifact content came from, if one was needed.
    pub artifact: Option<String>,
    /// Every change made, in order.
    pub actions: Vec<RepairAction>,
    /// Why repair stopped without changing anything, if it did.
    pub refused: Option<String>,
    /// True when doctor passes after the repair.
    pub repaired: bool,
    /// Findings left after the repair (or all of them when refused).
    pub unrepaired: Vec<Finding>,
    /// Doctor before.
    pub before: DoctorReport,
    /// Doctor after (absent when nothing was changed).
    pub after: Option<DoctorReport>,
}

impl RepairReport {
    /// A readable summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(why) = &self.refused {
            out.push_str(&format!("repair refused, nothing changed: {why}\n"));
        }
        for a in &self.actions {
            out.push_str(&format!(
                "fixed {} {}: {}\n",
                a.class.as_str(),
                a.path.as_deref().unwrap_or("-"),
                a.action
            ));
        }
        for f in &self.unrepaired {
            out.push_str(&format!(
                "NOT fixed {} {}: {}\n",
                f.class.as_str(),
                f.path.as_deref().unwrap_or("-"),
                f.detail
            ));
        }
        if let Some(after) = &self.after {
            out.push_str(&after.to_text());
        }
        out.push_str(if self.repaired {
            "repair: healthy\n"
        } else {
            "repair: NOT healthy\n"
        });
        out
    }
}

/// Runs doctor, repairs what it found from the verified artifact and runs doctor again.
/// Without a usable artifact, when one is needed, nothing is changed.
pub fn repair(root: &Path, opts: &RepairOptions) -> Result<RepairReport, UnpackError> {
    let layout = open_root(root)?;
    let before_opts = DoctorOptions {
        log_dir: None,
        ..opts.doctor.clone()
    };
    let lock = RootLock::acquire(&layout)?;
    let dirs = RootDirs::open(&layout)?;
    clean_leftovers(&dirs)?;
    let before = doctor(root, &before_opts)?;
    let env_id = before.env_id.clone().unwrap_or_default();
    let mut report = RepairReport {
        kind: REPAIR_REPORT_KIND,
        schema_version: 1,
        root: layout.root.display().to_string(),
        env_id: before.env_id.clone(),
        artifact: None,
        actions: Vec::new(),
        refused: None,
        repaired: before.healthy,
        unrepaired: Vec::new(),
        before: before.clone(),
        after: None,
    };
    if before.healthy {
        return Ok(report);
    }
    let all: Vec<Finding> = before.findings().map(|(_, f)| f.clone()).collect();
    let mut plan = plan_repair(&env_id, &all);
    let source = choose_artifact(&layout, &env_id, opts, &plan);
    let (reader, artifact_path) = match source {
        Ok(s) => s,
        Err(why) => {
            report.refused = Some(why);
            report.unrepaired = all;
            return Ok(report);
        }
    };
    let scratch = Scratch::new(&dirs)?;
    let run_id = crate::doctor::log_dir::run_id();
    let quarantine = layout.meta_dir().join("quarantine").join(&run_id);
    let mut actions = Vec::new();
    if let Some(reader) = &reader {
        report.artifact = Some(artifact_path.display().to_string());
        let bytes = artifact_manifest_bytes(reader)?;
        let manifest = Manifest::parse(&bytes)?;
        // The tree is re-compared with the artifact's manifest: it, not the env's own copy,
        // is what restored files are verified against.
        if !plan.restore_env {
            let tree = check_tree(&layout, &env_id, Some(&bytes))?;
            let tree_plan = plan_repair(&env_id, &tree.check.findings);
            let others = before
                .findings()
                .filter(|(id, _)| *id != TREE_CHECK)
                .map(|(_, f)| f);
            plan = plan_repair(&env_id, others.chain(tree.check.findings.iter()));
            plan.restore_env |= tree_plan.restore_env;
        }
        if plan.keep_artifact && opts.artifact.is_some() {
            let kept = kept_artifact_path(&layout, &env_id);
            replace_kept(&dirs, &env_id, &artifact_path, &scratch)?;
            actions.push(action(
                FindingClass::MissingArtifact,
                Some(rel_to(&layout, &kept)),
                format!("kept a verified copy of {}", artifact_path.display()),
            ));
        }
        let env = EnvRepair {
            layout: &layout,
            dirs: &dirs,
            env_id: &env_id,
            scratch: &scratch,
            quarantine: &quarantine,
        };
        env.repair_tree(reader, &manifest, &bytes, &plan, &mut actions)?;
    }
    let env = EnvRepair {
        layout: &layout,
        dirs: &dirs,
        env_id: &env_id,
        scratch: &scratch,
        quarantine: &quarantine,
    };
    env.repair_root(&plan, &run_id, &mut actions)?;
    drop(scratch);
    drop(dirs);
    drop(lock);
    let after = doctor(root, &before_opts)?;
    report.actions = actions;
    report.repaired = after.healthy;
    report.unrepaired = after.findings().map(|(_, f)| f.clone()).collect();
    report.after = Some(after);
    Ok(report)
}

/// The verified artifact to restore from: `--artifact`, else the kept copy. `None` when the
/// plan needs no file content. The error says what to pass.
fn choose_artifact(
    layout: &RootLayout,
    env_id: &str,
    opts: &RepairOptions,
    plan: &RepairPlan,
) -> Result<(Option<envpack_layers::artifact::ArtifactReader>, PathBuf), String> {
    let kept = kept_artifact_path(layout, env_id);
    if let Some(given) = &opts.artifact {
        return open_verified(given, env_id, &layout.root)
            .map(|r| (Some(r), given.clone()))
            .map_err(|e| format!("--artifact {} cannot be used: {e}", given.display()));
    }
    match open_verified(&kept, env_id, &layout.root) {
        Ok(r) => Ok((Some(r), kept)),
        Err(e) if plan.needs_artifact() => Err(format!(
            "the copy of the artifact kept in the root is unusable ({e}); pass --artifact FILE \
             with the {env_id} artifact (the .envpack.tar it was unpacked from)"
        )),
        Err(_) => Ok((None, kept)),
    }
}

fn action(class: FindingClass, path: Option<String>, what: impl Into<String>) -> RepairAction {
    RepairAction {
        class,
        path,
        action: what.into(),
    }
}

fn rel_to(layout: &RootLayout, p: &Path) -> String {
    p.strip_prefix(&layout.root)
        .map(|r| r.to_string_lossy().replace('\\', "/"))
        .unwrap_or_else(|_| p.display().to_string())
}

/// The places one repair run writes to.
struct EnvRepair<'a> {
    layout: &'a RootLayout,
    dirs: &'a RootDirs,
    env_id: &'a str,
    scratch: &'a Scratch,
    quarantine: &'a Path,
}

impl EnvRepair<'_> {
    fn env_rel(&self, rel: &str) -> Option<String> {
        Some(crate::doctor::finding::env_path(self.env_id, rel))
    }

    /// Steps inside `envs/<env-id>`: a full re-extract, or single entries, modes, extras.
    fn repair_tree(
        &self,
        reader: &envpack_layers::artifact::ArtifactReader,
        manifest: &Manifest,
        manifest_bytes: &[u8],
        plan: &RepairPlan,
        actions: &mut Vec<RepairAction>,
    ) -> Result<(), UnpackError> {
        let env_dir = self.layout.env_dir(self.env_id);
        if plan.restore_env {
            let staged = self.scratch.path().join("env");
            crate::staging::extract_artifact(
                reader,
                reader.path(),
                self.scratch.dir(),
                "env",
                &staged,
                &|_| {},
            )?;
            crate::durability::sync_tree(&staged)?;
            self.scratch
                .dir()
                .rename("env", &self.dirs.envs, self.env_id)
                .map_err(|e| {
                    UnpackError::Io(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", env_dir.display()),
                    ))
                })?;
            actions.push(action(
                FindingClass::MissingEnv,
                Some(format!("envs/{}", self.env_id)),
                "extracted the env again from the artifact",
            ));
            return Ok(());
        }
        let target = restore_entries::RestoreTarget {
            env_dir: &env_dir,
            scratch: self.scratch.path(),
            quarantine: &self.quarantine.join("envs").join(self.env_id),
        };
        for rel in &plan.quarantine {
            restore_entries::move_aside(&target, rel)?;
            actions.push(action(
                FindingClass::ExtraFile,
                self.env_rel(rel),
                "moved into quarantine (not in the manifest)",
            ));
        }
        let restored = restore_entries::restore_entries(
            reader,
            manifest,
            manifest_bytes,
            &target,
            &plan.restore,
        )?;
        for rel in restored {
            let class = plan.restore_class.get(&rel).copied();
            actions.push(action(
                class.unwrap_or(FindingClass::CorruptedFile),
                self.env_rel(&rel),
                "restored from the artifact (verified against the manifest)",
            ));
        }
        for rel in &plan.set_mode {
            if let Some(e) = manifest.get(rel) {
                restore_entries::set_mode(&restore_entries::native(&env_dir, rel), e.mode())?;
                actions.push(action(
                    FindingClass::WrongMode,
                    self.env_rel(rel),
                    format!("mode set to {:04o}", e.mode()),
                ));
            }
        }
        Ok(())
    }

    /// Steps outside the env: `current`, the state dir, the shims.
    fn repair_root(
        &self,
        plan: &RepairPlan,
        run_id: &str,
        actions: &mut Vec<RepairAction>,
    ) -> Result<(), UnpackError> {
        let layout = self.layout;
        if plan.repoint_current {
            let record = RootRecord::load(&layout.record_file())?;
            if record.current.as_deref() == Some(self.env_id) {
                switch_current(self.dirs, self.env_id, self.scratch)?;
                actions.push(action(
                    FindingClass::SwitchedCurrent,
                    Some("current".into()),
                    format!(
                        "current points at envs/{} again, as root.json records",
                        self.env_id
                    ),
                ));
            }
        }
        if plan.seed_state || plan.reseed_state {
            let old = fixes::reseed_state(self.dirs, self.env_id, run_id, self.scratch)?;
            let (class, what) = match old {
                Some(p) => (
                    FindingClass::StaleState,
                    format!(
                        "seeded again from the template; the old one is at {}",
                        rel_to(layout, &p)
                    ),
                ),
                None => (
                    FindingClass::MissingState,
                    "seeded from the template".to_owned(),
                ),
            };
            actions.push(action(
                class,
                Some(format!("state/{}/conan-home", self.env_id)),
                what,
            ));
        }
        if !plan.shims.is_empty() {
            let env_dir = layout.env_dir(self.env_id);
            for path in fixes::write_named_shims(self.dirs, &env_dir, &plan.shims, self.scratch)? {
                actions.push(action(
                    FindingClass::MissingShim,
                    Some(path),
                    "shim written",
                ));
            }
        }
        Ok(())
    }
}
