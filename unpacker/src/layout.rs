//! Where everything lives inside a root directory.

use std::path::{Path, PathBuf};

/// The paths that make up a root (see DESIGN.md, "The symlinked root").
#[derive(Debug, Clone)]
pub struct RootLayout {
    /// The root directory itself.
    pub root: PathBuf,
}

impl RootLayout {
    /// Describes the root at `root` (nothing is touched on disk).
    pub fn new(root: &Path) -> Self {
        RootLayout {
            root: root.to_path_buf(),
        }
    }
    /// `ROOT/envs`: one immutable tree per env id.
    pub fn envs_dir(&self) -> PathBuf {
        self.root.join("envs")
    }
    /// `ROOT/envs/<env-id>`.
    pub fn env_dir(&self, env_id: &str) -> PathBuf {
        self.envs_dir().join(env_id)
    }
    /// `ROOT/current`: link to the active env.
    pub fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }
    /// `ROOT/bin`: stable shims into `current`.
    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }
    /// `ROOT/state`: writable per-env state.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
    /// `ROOT/state/<env-id>/conan-home`: the env's writable CONAN_HOME.
    pub fn conan_home(&self, env_id: &str) -> PathBuf {
        self.state_dir().join(env_id).join("conan-home")
    }
    /// `ROOT/.envpack`: the unpacker's own bookkeeping.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join(".envpack")
    }
    /// `ROOT/.envpack/root.json`: the root record.
    pub fn record_file(&self) -> PathBuf {
        self.meta_dir().join("root.json")
    }
    /// `ROOT/.envpack/lock`: serializes concurrent unpacks.
    pub fn lock_file(&self) -> PathBuf {
        self.meta_dir().join("lock")
    }
    /// `ROOT/.envpack/tmp`: scratch space, same filesystem as `envs/` so renames are atomic.
    pub fn tmp_dir(&self) -> PathBuf {
        self.meta_dir().join("tmp")
    }
}
