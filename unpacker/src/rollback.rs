//! Switching `current` back to the previous env.

use std::path::Path;

use crate::current_link::read_current;
use crate::error::UnpackError;
use crate::root_dirs::RootDirs;
use crate::root_lock::RootLock;
use crate::root_record::{RootRecord, SwitchAction};
use crate::root_setup::open_root;
use crate::scratch::{clean_leftovers, Scratch};
use crate::unpack::{activate_env, record_switch, UnpackOutcome};

/// Makes the previous env current again; the env being left becomes the new previous, so a
/// second rollback undoes the first.
pub fn rollback(root: &Path) -> Result<UnpackOutcome, UnpackError> {
    let layout = open_root(root)?;
    let _lock = RootLock::acquire(&layout)?;
    let dirs = RootDirs::open(&layout)?;
    clean_leftovers(&dirs)?;
    let record = RootRecord::load(&layout.record_file())?;
    let current = read_current(&layout)?;
    let target = match record.previous {
        Some(p) if Some(&p) != current.as_ref() => p,
        _ => {
            return Err(UnpackError::NoPrevious {
                root: layout.root.clone(),
            })
        }
    };
    let env_dir = layout.env_dir(&target);
    if !env_dir.is_dir() {
        return Err(UnpackError::BadRoot {
            path: env_dir,
            reason: format!("previous env {target} is missing; unpack its artifact again"),
        });
    }
    let scratch = Scratch::new(&dirs)?;
    activate_env(&dirs, &target, &scratch, &|_| {})?;
    record_switch(&dirs, current.as_deref(), &target, SwitchAction::Rollback)?;
    Ok(UnpackOutcome {
        env_id: target,
        previous: current,
        already_current: false,
    })
}
