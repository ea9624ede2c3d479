//! Turning doctor findings into repair steps (a pure function of the findings).

use std::collections::{BTreeMap, BTreeSet};

use crate::doctor::finding::{env_relative, Finding, FindingClass};

/// What repair will do; every set is sorted so parents come before children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepairPlan {
    /// Env-relative paths to restore from the artifact (content, type or link target).
    pub restore: BTreeSet<String>,
    /// The class of damage behind each path in `restore`.
    pub restore_class: BTreeMap<String, FindingClass>,
    /// Env-relative paths whose content is right but whose mode is not.
    pub set_mode: BTreeSet<String>,
    /// Env-relative paths the manifest does not list, to move into quarantine.
    pub quarantine: BTreeSet<String>,
    /// The whole env dir is gone: extract it again.
    pub restore_env: bool,
    /// Point `current` back where the root record says.
    pub repoint_current: bool,
    /// Shim file names in `ROOT/bin` to write.
    pub shims: BTreeSet<String>,
    /// Seed the missing state dir from the template.
    pub seed_state: bool,
    /// Move the stale state dir aside and seed a fresh one.
    pub reseed_state: bool,
    /// Put a verified copy of the artifact back into the root.
    pub keep_artifact: bool,
    /// Findings no step addresses directly: they must clear once the rest is fixed, else
    /// they are reported as unrepaired.
    pub follow_up: Vec<Finding>,
    /// Findings repair will not touch (a user's file, a permissions problem).
    pub unrepairable: Vec<Finding>,
}

impl RepairPlan {
    /// Whether any step needs file content from the artifact.
    pub fn needs_artifact(&self) -> bool {
        !self.restore.is_empty() || self.restore_env || self.keep_artifact
    }

    /// Whether there is any step to take.
    pub fn has_steps(&self) -> bool {
        self.needs_artifact()
            || !self.set_mode.is_empty()
            || !self.quarantine.is_empty()
            || self.repoint_current
            || !self.shims.is_empty()
            || self.seed_state
            || self.reseed_state
    }
}

/// Classifies each finding about env `env_id` into a repair step.
pub fn plan_repair<'a>(
    env_id: &str,
    findings: impl IntoIterator<Item = &'a Finding>,
) -> RepairPlan {
    let mut plan = RepairPlan::default();
    for f in findings {
        let in_env = f.path.as_deref().and_then(|p| env_relative(env_id, p));
        let shim = f.path.as_deref().and_then(|p| p.strip_prefix("bin/"));
        match (f.class, in_env, shim) {
            (
                FindingClass::CorruptedFile
                | FindingClass::MissingFile
                | FindingClass::WrongType
                | FindingClass::WrongLink,
                Some(rel),
                _,
            ) => {
                plan.restore.insert(rel.to_owned());
                plan.restore_class.insert(rel.to_owned(), f.class);
            }
            (FindingClass::WrongMode, Some(rel), _) => {
                plan.set_mode.insert(rel.to_owned());
            }
            (FindingClass::ExtraFile, Some(rel), _) => {
                plan.quarantine.insert(rel.to_owned());
            }
            (FindingClass::MissingEnv, _, _) => plan.restore_env = true,
            (FindingClass::SwitchedCurrent, _, _) => plan.repoint_current = true,
            (FindingClass::MissingShim | FindingClass::CorruptedShim, _, Some(name)) => {
                plan.shims.insert(name.to_owned());
            }
            (FindingClass::MissingState, _, _) => plan.seed_state = true,
            (FindingClass::StaleState, _, _) => plan.reseed_state = true,
            (FindingClass::MissingArtifact, _, _) => plan.keep_artifact = true,
            (
                FindingClass::ToolMismatch
                | FindingClass::ActivationBroken
                | FindingClass::EnvChangedByUse,
                _,
                _,
            ) => plan.follow_up.push(f.clone()),
            _ => plan.unrepairable.push(f.clone()),
        }
    }
    // A restored file gets its mode with its content; an extracted env needs nothing else.
    plan.set_mode = &plan.set_mode - &plan.restore;
    // Entries below a replaced or quarantined path go with it.
    let covered =
        |p: &String, by: &BTreeSet<String>| by.iter().any(|a| p.starts_with(&format!("{a}/")));
    let quarantine = plan.quarantine.clone();
    plan.quarantine
        .retain(|p| !covered(p, &plan.restore) && !covered(p, &quarantine));
    let restore = plan.restore.clone();
    plan.set_mode.retain(|p| !covered(p, &restore));
    if plan.seed_state {
        plan.reseed_state = false;
    }
    if plan.restore_env {
        plan.restore.clear();
        plan.restore_class.clear();
        plan.set_mode.clear();
        plan.quarantine.clear();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(class: FindingClass, path: &str) -> Finding {
        Finding::at(class, path, "x")
    }

    #[test]
    fn each_class_maps_to_its_step() {
        use FindingClass::*;
        let findings = vec![
            f(CorruptedFile, "envs/e/python/a.py"),
            f(MissingFile, "envs/e/bin/conan"),
            f(WrongType, "envs/e/lib"),
            f(WrongLink, "envs/e/python/bin/python3"),
            f(WrongMode, "envs/e/bin/python3"),
            f(WrongMode, "envs/e/python/a.py"),
            f(ExtraFile, "envs/e/junk"),
            f(SwitchedCurrent, "current"),
            f(MissingShim, "bin/conan"),
            f(CorruptedShim, "bin/python3"),
            f(ForeignShim, "bin/idna"),
            f(StaleState, "state/e/conan-home/remotes.json"),
            f(MissingArtifact, ".envpack/artifacts/e.envpack.tar"),
            f(StateNotWritable, "state/e/conan-home"),
            Finding::general(ToolMismatch, "conan did not run"),
            f(CorruptedFile, "envs/other/x"),
        ];
        let p = plan_repair("e", &findings);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            p.restore,
            set(&["bin/conan", "lib", "python/a.py", "python/bin/python3"])
        );
        assert_eq!(p.set_mode, set(&["bin/python3"]));
        assert_eq!(p.restore_class.get("lib"), Some(&WrongType));
        assert_eq!(p.quarantine, set(&["junk"]));
        assert_eq!(p.shims, set(&["conan", "python3"]));
        assert!(p.repoint_current && p.reseed_state && p.keep_artifact);
        assert!(!p.seed_state && !p.restore_env);
        assert_eq!(p.follow_up.len(), 1);
        let unrepairable: Vec<_> = p.unrepairable.iter().map(|f| f.class).collect();
        assert_eq!(unrepairable, [ForeignShim, StateNotWritable, CorruptedFile]);
        assert!(p.needs_artifact() && p.has_steps());
    }

    #[test]
    fn missing_env_and_missing_state_dominate() {
        use FindingClass::*;
        let p = plan_repair(
            "e",
            &[
                f(MissingEnv, "envs/e"),
                f(MissingFile, "envs/e/x"),
                f(MissingState, "state/e/conan-home"),
                f(StaleState, "state/e/conan-home/remotes.json"),
            ],
        );
        assert!(p.restore_env && p.restore.is_empty());
        assert!(p.seed_state && !p.reseed_state);
        let nested = plan_repair(
            "e",
            &[
                f(WrongType, "envs/e/lib/a.py"),
                f(ExtraFile, "envs/e/lib/a.py/inside"),
                f(ExtraFile, "envs/e/junk"),
                f(ExtraFile, "envs/e/junk/deeper"),
            ],
        );
        assert_eq!(nested.quarantine.len(), 1, "{nested:?}");
        assert!(nested.quarantine.contains("junk"));
        assert!(nested.restore.contains("lib/a.py"));
        let none = plan_repair("e", &[Finding::general(ActivationBroken, "x")]);
        assert!(!none.has_steps() && !none.needs_artifact());
    }
}
