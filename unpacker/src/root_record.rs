//! The root record `ROOT/.envpack/root.json`: which env is current, which was before, and a
//! short history of switches.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::UnpackError;

/// Record format version written into `root.json`.
const RECORD_SCHEMA: u32 = 1;
/// Older history entries are dropped so the record stays small on long-lived roots.
const MAX_HISTORY: usize = 100;

/// Why `current` was switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchAction {
    /// An artifact was unpacked (or an existing env re-selected by unpacking it).
    Unpack,
    /// `current` went back to the previous env.
    Rollback,
}

/// One switch of `current`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// The env that became current.
    pub env_id: String,
    /// What caused the switch.
    pub action: SwitchAction,
    /// Seconds since the Unix epoch when it happened.
    pub at: u64,
}

/// Contents of `root.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootRecord {
    /// Format version.
    pub schema: u32,
    /// The env `current` points at.
    pub current: Option<String>,
    /// The env that was current before, the rollback target.
    pub previous: Option<String>,
    /// Switches, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The env `current` is about to be switched to: written before the switch, cleared with
    /// the record of it, so a run killed between the two leaves a record that still agrees
    /// with the link (see [`RootRecord::agrees_with`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switching_to: Option<String>,
}

impl Default for RootRecord {
    fn default() -> Self {
        RootRecord {
            schema: RECORD_SCHEMA,
            current: None,
            previous: None,
            history: Vec::new(),
            switching_to: None,
        }
    }
}

impl RootRecord {
    /// Parses the record's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let record: RootRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if record.schema != RECORD_SCHEMA {
            return Err(format!(
                "schema {} is not supported (expected {RECORD_SCHEMA})",
                record.schema
            ));
        }
        Ok(record)
    }

    /// Serializes the record as pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Whether the record agrees with the env `current` points at (`link`): it records that
    /// env as current, or it announced the switch to it and the run ended before recording it.
    pub fn agrees_with(&self, link: Option<&str>) -> bool {
        self.current.as_deref() == link || (link.is_some() && self.switching_to.as_deref() == link)
    }

    /// Records that `env_id` became current; the old current becomes previous.
    pub fn switched_to(&mut self, env_id: &str, action: SwitchAction, at: u64) {
        self.switching_to = None;
        if self.current.as_deref() != Some(env_id) {
            self.previous = self.current.take();
            self.current = Some(env_id.to_owned());
        }
        self.history.push(HistoryEntry {
            env_id: env_id.to_owned(),
            action,
            at,
        });
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }

    /// Reads the record at `path`; a missing file is an empty record.
    pub fn load(path: &Path) -> Result<Self, UnpackError> {
        match fs_err::read(path) {
            Ok(bytes) => RootRecord::parse(&bytes).map_err(|detail| UnpackError::RootRecord {
                path: path.to_path_buf(),
                detail,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RootRecord::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the root's record atomically (temp file, fsync, rename) through the
    /// `ROOT/.envpack` handle.
    pub fn store_in(&self, dirs: &crate::root_dirs::RootDirs) -> Result<(), UnpackError> {
        crate::root_dirs::replace_file(
            &dirs.meta,
            "root.json",
            &self.to_bytes(),
            &dirs.layout.meta_dir(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_keep_previous() {
        let mut r = RootRecord::default();
        r.switched_to("a", SwitchAction::Unpack, 1);
        assert_eq!(
            (r.current.as_deref(), r.previous.as_deref()),
            (Some("a"), None)
        );
        r.switched_to("b", SwitchAction::Unpack, 2);
        assert_eq!(
            (r.current.as_deref(), r.previous.as_deref()),
            (Some("b"), Some("a"))
        );
        // Re-selecting the current env must not lose the rollback target.
        r.switched_to("b", SwitchAction::Unpack, 3);
        assert_eq!(r.previous.as_deref(), Some("a"));
        r.switched_to("a", SwitchAction::Rollback, 4);
        assert_eq!(
            (r.current.as_deref(), r.previous.as_deref()),
            (Some("a"), Some("b"))
        );
        assert_eq!(r.history.len(), 4);
        assert_eq!(r.history[3].action, SwitchAction::Rollback);
    }

    #[test]
    fn history_is_capped() {
        let mut r = RootRecord::default();
        for i in 0..(MAX_HISTORY as u64 + 5) {
            r.switched_to(&format!("e{i}"), SwitchAction::Unpack, i);
        }
        assert_eq!(r.history.len(), MAX_HISTORY);
        assert_eq!(r.history[0].env_id, "e5");
    }

    #[test]
    fn round_trip_and_strict_parse() {
        let mut r = RootRecord::default();
        r.switched_to("a", SwitchAction::Unpack, 7);
        assert_eq!(RootRecord::parse(&r.to_bytes()).unwrap(), r);
        let table: &[&str] = &[
            "",
            "{}",
            r#"{"schema":2,"current":null,"previous":null,"history":[]}"#,
            r#"{"schema":1,"current":null,"previous":null,"history":[],"x":1}"#,
            r#"{"schema":1,"current":null,"previous":null,"history":[{"env_id":"a","action":"jump","at":1}]}"#,
        ];
        for bad in table {
            assert!(RootRecord::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn load_missing_is_default_and_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.json");
        assert_eq!(RootRecord::load(&path).unwrap(), RootRecord::default());
        let mut r = RootRecord::default();
        r.switched_to("x", SwitchAction::Unpack, 9);
        fs_err::create_dir_all(dir.path().join("root")).unwrap();
        let dirs = crate::root_dirs::RootDirs::open(&crate::layout::RootLayout::new(
            &dir.path().join("root"),
        ))
        .unwrap();
        let path = dirs.layout.record_file();
        r.store_in(&dirs).unwrap();
        assert_eq!(RootRecord::load(&path).unwrap(), r);
        assert!(!path.with_extension("json.tmp").exists());
        fs_err::write(&path, b"garbage").unwrap();
        let err = RootRecord::load(&path).unwrap_err().to_string();
        assert!(err.contains("root.json"), "{err}");
    }
}
