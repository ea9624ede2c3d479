//! Scratch directories shared by the tests of one test binary (a locked spec, a built cache)
//! and removed when that binary exits. Statics are never dropped, so a `TempDir` kept in a
//! `OnceLock` would leave hundreds of MB behind per binary; over a whole run that filled a CI
//! machine's disk. The test harness leaves through `exit`, which runs `atexit` handlers on
//! success and failure alike.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

/// A new directory under the system temp dir, named `prefix…`, removed when the process exits.
pub fn process_dir(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("creating a scratch dir")
        .keep();
    REGISTER.call_once(|| {
        // SAFETY: `remove_all` is a plain `extern "C" fn()` that neither unwinds nor expects
        // any state beyond the mutex it locks.
        unsafe {
            libc::atexit(remove_all);
        }
    });
    if let Ok(mut dirs) = DIRS.lock() {
        dirs.push(dir.clone());
    }
    dir
}

extern "C" fn remove_all() {
    let dirs = match DIRS.lock() {
        Ok(mut dirs) => std::mem::take(&mut *dirs),
        Err(_) => return,
    };
    for dir in dirs {
        // Nothing may unwind out of an atexit handler.
        let _ = std::panic::catch_unwind(|| remove(&dir));
    }
}

/// Removes `dir`; where a test left read-only directories behind, makes them writable first.
fn remove(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    #[cfg(unix)]
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_dir() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove scratch dir {}: {e}", dir.display());
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn read_only_dirs_are_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap().keep();
        let inner = dir.join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("f"), "x").unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o555)).unwrap();
        std::fs::set_permissions(dir.join("a"), std::fs::Permissions::from_mode(0o555)).unwrap();
        remove(&dir);
        assert!(!dir.exists());
    }
}
