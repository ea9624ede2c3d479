//! A read-only summary of a root.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::current_link::read_current;
use crate::error::UnpackError;
use crate::root_record::RootRecord;
use crate::root_setup::open_root;

/// What a root holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootStatus {
    /// The root directory (absolute).
    pub root: PathBuf,
    /// The env `current` points at.
    pub current: Option<String>,
    /// The rollback target recorded in `root.json`.
    pub previous: Option<String>,
    /// Env ids present under `envs/`, sorted.
    pub envs: Vec<String>,
}

/// Reads the current and previous env and lists the envs present; changes nothing.
pub fn status(root: &Path) -> Result<RootStatus, UnpackError> {
    let layout = open_root(root)?;
    let current = read_current(&layout)?;
    let record = RootRecord::load(&layout.record_file())?;
    let mut envs = Vec::new();
    match fs_err::read_dir(layout.envs_dir()) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    envs.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    envs.sort();
    Ok(RootStatus {
        root: layout.root.clone(),
        current,
        previous: record.previous,
        envs,
    })
}
