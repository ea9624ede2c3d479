//! What a failed check found: a class a program can act on, a path and a readable detail.

use envpack_layers::verify::Difference;
use serde::Serialize;

/// The kind of damage a finding describes; `repair` decides what to do from this alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingClass {
    /// A file's content (or size) differs from the manifest.
    CorruptedFile,
    /// A manifest entry is absent.
    MissingFile,
    /// A file's execute bit differs from the manifest.
    WrongMode,
    /// An entry is of another kind (file, directory, symlink) than the manifest says.
    WrongType,
    /// A symlink points elsewhere than the manifest says.
    WrongLink,
    /// An entry in the env tree that the manifest does not list.
    ExtraFile,
    /// The env directory the root record names is gone.
    MissingEnv,
    /// `current` does not point where `root.json` says.
    SwitchedCurrent,
    /// A shim in `ROOT/bin` is absent.
    MissingShim,
    /// A shim exists but its text is not what the unpacker writes.
    CorruptedShim,
    /// A file with a shim's name that is not an envpack shim (left alone by repair).
    ForeignShim,
    /// The env's writable state dir (`ROOT/state/<id>/conan-home`) is absent.
    MissingState,
    /// The state dir exists but lost or changed what the template seeded.
    StaleState,
    /// The state dir cannot be written.
    StateNotWritable,
    /// The copy of the artifact kept in the root is absent or damaged.
    MissingArtifact,
    /// A tool started but reported something other than what is pinned, or did not start.
    ToolMismatch,
    /// An activation script did not set PATH/CONAN_HOME as expected.
    ActivationBroken,
    /// Running the env's tools changed the env tree.
    EnvChangedByUse,
    /// The root requires signatures but its current env has no verified one (it was made
    /// current some other way, or the trust record was damaged).
    UnsignedCurrent,
}

impl FindingClass {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingClass::CorruptedFile => "corrupted_file",
            FindingClass::MissingFile => "missing_file",
            FindingClass::WrongMode => "wrong_mode",
            FindingClass::WrongType => "wrong_type",
            FindingClass::WrongLink => "wrong_link",
            FindingClass::ExtraFile => "extra_file",
            FindingClass::MissingEnv => "missing_env",
            FindingClass::SwitchedCurrent => "switched_current",
            FindingClass::MissingShim => "missing_shim",
            FindingClass::CorruptedShim => "corrupted_shim",
            FindingClass::ForeignShim => "foreign_shim",
            FindingClass::MissingState => "missing_state",
            FindingClass::StaleState => "stale_state",
            FindingClass::StateNotWritable => "state_not_writable",
            FindingClass::MissingArtifact => "missing_artifact",
            FindingClass::ToolMismatch => "tool_mismatch",
            FindingClass::ActivationBroken => "activation_broken",
            FindingClass::EnvChangedByUse => "env_changed_by_use",
            FindingClass::UnsignedCurrent => "unsigned_current",
        }
    }
}

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of damage this is.
    pub class: FindingClass,
    /// The affected path relative to the root, '/'-separated (`envs/<id>/…`, `bin/conan`,
    /// `current`, …), when the finding is about one path.
    pub path: Option<String>,
    /// What was expected and what was found.
    pub detail: String,
}

impl Finding {
    /// A finding about `path` (root-relative).
    pub fn at(class: FindingClass, path: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            class,
            path: Some(path.into()),
            detail: detail.into(),
        }
    }

    /// A finding that is not about a single path.
    pub fn general(class: FindingClass, detail: impl Into<String>) -> Self {
        Finding {
            class,
            path: None,
            detail: detail.into(),
        }
    }
}

/// Maps a manifest difference in `envs/<env_id>` to a finding with a root-relative path.
pub fn finding_for_difference(env_id: &str, d: &Difference) -> Finding {
    let class = match d {
        Difference::Missing { .. } => FindingClass::MissingFile,
        Difference::Extra { .. } => FindingClass::ExtraFile,
        Difference::Modified { .. } => FindingClass::CorruptedFile,
        Difference::TypeChanged { .. } => FindingClass::WrongType,
        Difference::ModeChanged { .. } => FindingClass::WrongMode,
        Difference::LinkChanged { .. } => FindingClass::WrongLink,
    };
    Finding::at(class, env_path(env_id, d.path()), d.to_string())
}

/// `envs/<env_id>/<rel>` ('/'-separated).
pub fn env_path(env_id: &str, rel: &str) -> String {
    format!("envs/{env_id}/{rel}")
}

/// The env-relative part of a root-relative path inside `envs/<env_id>/`.
pub fn env_relative<'a>(env_id: &str, root_rel: &'a str) -> Option<&'a str> {
    root_rel
        .strip_prefix("envs/")?
        .strip_prefix(env_id)?
        .strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_map_to_classes_and_root_paths() {
        let table = [
            (
                Difference::Missing { path: "a".into() },
                FindingClass::MissingFile,
            ),
            (
                Difference::Extra { path: "a".into() },
                FindingClass::ExtraFile,
            ),
            (
                Difference::Modified { path: "a".into() },
                FindingClass::CorruptedFile,
            ),
            (
                Difference::TypeChanged { path: "a".into() },
                FindingClass::WrongType,
            ),
            (
                Difference::ModeChanged {
                    path: "a".into(),
                    expected: 0o755,
                    actual: 0o644,
                },
                FindingClass::WrongMode,
            ),
            (
                Difference::LinkChanged {
                    path: "a".into(),
                    expected: "x".into(),
                    actual: "y".into(),
                },
                FindingClass::WrongLink,
            ),
        ];
        for (d, class) in table {
            let f = finding_for_difference("e1", &d);
            assert_eq!(f.class, class, "{d}");
            assert_eq!(f.path.as_deref(), Some("envs/e1/a"));
            assert_eq!(f.detail, d.to_string());
        }
    }

    #[test]
    fn class_names_match_serde() {
        for c in [
            FindingClass::CorruptedFile,
            FindingClass::SwitchedCurrent,
            FindingClass::EnvChangedByUse,
            FindingClass::StateNotWritable,
        ] {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }

    #[test]
    fn env_relative_table() {
        assert_eq!(env_relative("e1", "envs/e1/python/x"), Some("python/x"));
        assert_eq!(env_relative("e1", "envs/e10/python/x"), None);
        assert_eq!(env_relative("e1", "bin/conan"), None);
    }
}
