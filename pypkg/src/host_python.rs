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
        let mut prefix_option = std::ffi::OsString::from("pycache_prefix=");
        prefix_option.push(prefix);
        let started = Command::new(&self.exe)
            .arg("-I")
            .arg("-X")
            .arg(prefix_option)
            .args(["-c", WARM_DRIVER, BACKEND_STDLIB])
            .env_clear()
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
    cell: std::sync::OnceLock<HostPython>,
    /// One unpack at a time: a second caller waits for the first and takes its interpreter.
    unpacking: Mutex<()>,
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
            unpacking: Mutex::new(()),
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

    /// The unpacked interpreter (unpacked and checked on the first call; a failure is met
    /// again by the next call).
    pub fn get(&self) -> Result<&HostPython, PypkgError> {
        if let Some(host) = self.cell.get() {
            return Ok(host);
        }
        let _one = self.unpacking.lock().map_err(|_| {
            PypkgError::Internal("the host interpreter's unpacking panicked".into())
        })?;
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
