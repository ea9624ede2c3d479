//! The CPython of the build host, unpacked once into the cache's scratch space: it builds sdists
//! and compiles bytecode for every platform of the lock (bytecode depends only on the version).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

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
    /// The process compiling the standard library ahead of the builds, if one was started.
    warming: Mutex<Option<Child>>,
}

/// Standard-library modules that PEP 517 backends (setuptools above all) import, compiled
/// ahead of the first build: the archives carry sources only, and compiling these is about
/// half of a cold hook's start. A name missing from a version is skipped.
const BACKEND_STDLIB: &str = "__future__ array ast base64 binascii bisect bz2 calendar \
    collections collections.abc configparser contextlib copy copyreg csv dataclasses datetime \
    dis email email._encoded_words email._header_value_parser email._parseaddr \
    email._policybase email.base64mime email.charset email.encoders email.errors \
    email.feedparser email.generator email.header email.headerregistry email.iterators \
    email.message email.parser email.quoprimime email.utils encodings encodings.aliases enum \
    fcntl fnmatch functools getopt gettext glob hashlib heapq http http.client importlib \
    importlib.abc importlib.metadata importlib.readers importlib.resources inspect ipaddress \
    json keyword linecache locale logging lzma numbers opcode operator pathlib pkgutil \
    platform queue quopri random re shlex shutil signal socket ssl string struct subprocess \
    sysconfig tarfile tempfile textwrap threading token tokenize tomllib traceback types \
    typing unicodedata urllib urllib.error urllib.parse urllib.request urllib.response \
    warnings weakref zipfile";

/// Imports each module named in argv[1] (writing its bytecode under PYTHONPYCACHEPREFIX).
const WARM_DRIVER: &str = "import importlib, sys
for name in sys.argv[1].split():
    try:
        importlib.import_module(name)
    except Exception:
        pass
";

impl Drop for HostPython {
    fn drop(&mut self) {
        // The interpreter's files go with `_dir`: stop the compiling process first.
        let child = self.warming.get_mut().map(Option::take).unwrap_or(None);
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl HostPython {
    /// Where this interpreter's processes keep their bytecode (`PYTHONPYCACHEPREFIX`) for as
    /// long as it is unpacked: shared by every build it runs, so the standard library (which
    /// the archives carry as sources only) and a build backend are compiled once, not in
    /// every process. `None` for an installed interpreter.
    pub fn pycache_prefix(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("pycache"))
    }

    /// Starts compiling the standard library modules build backends import into
    /// [`HostPython::pycache_prefix`], in the background: hooks started meanwhile compile what
    /// they need themselves, so this only ever saves time. Nothing to do for an installed
    /// interpreter (its bytecode is there) or when already started.
    pub fn start_warming(&self) {
        let Some(prefix) = self.pycache_prefix() else {
            return;
        };
        let Ok(mut warming) = self.warming.lock() else {
            return;
        };
        if warming.is_some() {
            return;
        }
        // The hooks' own settings (hash seed, no user site), so the bytecode is what a hook
        // would have written.
        let started = Command::new(&self.exe)
            .args(["-c", WARM_DRIVER, BACKEND_STDLIB])
            .env_clear()
            .env("PYTHONPYCACHEPREFIX", prefix)
            .env("PYTHONHASHSEED", "0")
            .env("PYTHONNOUSERSITE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match started {
            Ok(child) => *warming = Some(child),
            Err(e) => tracing::debug!(error = %e, "compiling the standard library ahead failed"),
        }
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
            warming: Mutex::new(None),
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
            warming: Mutex::new(None),
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
    cell: std::sync::OnceLock<Result<HostPython, String>>,
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

    /// The platform the interpreter is for (known before it is unpacked).
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Its full version, e.g. "3.12.7" (known before it is unpacked).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The unpacked interpreter (unpacked and checked on the first call). A failure is
    /// remembered: every later call reports it without unpacking again.
    pub fn get(&self) -> Result<&HostPython, PypkgError> {
        let unusable = |reason: &String| PypkgError::HostUnusable {
            platform: self.platform.name.clone(),
            version: self.version.clone(),
            reason: reason.clone(),
        };
        // One unpack: a second caller blocks here until the first is done, then shares it.
        let done = self.cell.get_or_init(|| {
            HostPython::from_archive(
                &self.archive,
                self.platform.clone(),
                &self.version,
                &self.cache,
            )
            .map_err(|e| with_causes(&e))
        });
        done.as_ref().map_err(unusable)
    }
}

/// `e` and its causes, joined.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_cannot_be_used_is_reported_the_same_every_time() {
        let dir = tempfile::tempdir().unwrap();
        // An archive without an interpreter in it.
        let archive = dir.path().join("cpython.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            fs_err::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, "python/", std::io::empty())
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let cache = Cache::open(Some(&dir.path().join("cache"))).unwrap();
        let platform = crate::platform::by_name("linux-x86_64").unwrap();
        let host = LazyHost::new(archive, platform, "3.11.7", &cache);
        let first = host.get().err().map(|e| e.to_string()).unwrap();
        assert!(
            first.starts_with("the build host's CPython 3.11.7 for linux-x86_64 can't be used: ")
                && first.contains("has no"),
            "{first}"
        );
        // Remembered: every later use hears the same words.
        assert_eq!(host.get().err().map(|e| e.to_string()), Some(first));
    }
}
