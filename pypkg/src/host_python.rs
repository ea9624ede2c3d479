//! The CPython of the build host, unpacked once into the cache's scratch space: it builds sdists
//! and compiles bytecode for every platform of the lock (bytecode depends only on the version).

use std::path::PathBuf;

use envpack_net::Cache;

use crate::platform::{parse_python_version, Platform};
use crate::PypkgError;

/// An unpacked, runnable CPython of the locked version for this machine.
pub struct HostPython {
    /// Where the archive was unpacked (none for an interpreter already installed).
    _dir: Option<tempfile::TempDir>,
    /// The interpreter.
    pub exe: PathBuf,
    /// The host platform.
    pub platform: Platform,
    /// Minor version (e.g. 12 for 3.12).
    pub py_minor: u8,
    /// Full version, e.g. "3.12.7".
    pub version: String,
}

impl HostPython {
    /// Where this interpreter's processes keep their bytecode (`PYTHONPYCACHEPREFIX`) for as
    /// long as it is unpacked: shared by every build it runs, so the standard library (which
    /// the archives carry as sources only) and a build backend are compiled once, not in
    /// every process. `None` for an installed interpreter.
    pub fn pycache_prefix(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("pycache"))
    }

    /// Unpack a locked CPython archive (already hash-checked in the cache) and check it runs.
    pub fn from_archive(
        archive: &std::path::Path,
        platform: Platform,
        version: &str,
        cache: &Cache,
    ) -> Result<Self, PypkgError> {
        let (_, py_minor, _) = parse_python_version(version)?;
        let dir = cache.scratch_dir()?;
        crate::source_archive::extract_tar_gz(archive, dir.path())?;
        let exe = dir.path().join(platform.python_exe());
        if !exe.exists() {
            return Err(PypkgError::NoInterpreter {
                platform: platform.name.clone(),
                exe: platform.python_exe().to_string(),
            });
        }
        let got = run_version(&exe)?;
        if got != version {
            return Err(PypkgError::WrongPython {
                platform: platform.name.clone(),
                version: version.to_string(),
                got,
            });
        }
        Ok(HostPython {
            _dir: Some(dir),
            exe,
            platform,
            py_minor,
            version: version.to_string(),
        })
    }

    /// An interpreter already installed on this machine (tests use the machine's own CPython
    /// as pip's is the reference), checked to run.
    pub fn installed(exe: PathBuf, platform: Platform) -> Result<Self, PypkgError> {
        let version = run_version(&exe)?;
        let (_, py_minor, _) = parse_python_version(&version)?;
        Ok(HostPython {
            _dir: None,
            exe,
            platform,
            py_minor,
            version,
        })
    }
}

/// The `X.Y.Z` version `exe` reports.
fn run_version(exe: &std::path::Path) -> Result<String, PypkgError> {
    let out = std::process::Command::new(exe)
        .args([
            "-I",
            "-c",
            "import sys; print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .output()
        .map_err(|source| PypkgError::Run {
            exe: exe.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(PypkgError::DoesNotRun {
            exe: exe.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The build host's CPython, unpacked on first use: a build whose layers all come from the
/// layer cache never needs it.
pub struct LazyHost {
    archive: PathBuf,
    platform: Platform,
    version: String,
    cache: Cache,
    cell: std::sync::OnceLock<HostPython>,
}

impl LazyHost {
    /// Remember where the (hash-checked) archive is; nothing is unpacked yet.
    pub fn new(archive: PathBuf, platform: Platform, version: &str, cache: &Cache) -> Self {
        LazyHost {
            archive,
            platform,
            version: version.to_string(),
            cache: cache.clone(),
            cell: std::sync::OnceLock::new(),
        }
    }

    /// The unpacked interpreter (unpacked and checked on the first call).
    pub fn get(&self) -> Result<&HostPython, PypkgError> {
        if let Some(host) = self.cell.get() {
            return Ok(host);
        }
        let host = HostPython::from_archive(
            &self.archive,
            self.platform.clone(),
            &self.version,
            &self.cache,
        )?;
        Ok(self.cell.get_or_init(|| host))
    }
}
