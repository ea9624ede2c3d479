//! Fixtures shared by the end-to-end tests: a real relocatable CPython mirror, the real Conan
//! wheelhouse and a local PEP 503/691 index served on 127.0.0.1, plus helpers to run binaries.
//!
//! Fixtures are built by the scripts in `scripts/fixtures/` into `$ENVPACK_FIXTURES` (default
//! `<repo>/.fixtures`); the scripts are idempotent, so after `scripts/test.sh` built them once the
//! calls here only check stamps.

pub mod conan_server;
pub mod fault_proxy;
pub mod podman;
pub mod registry;
mod scratch;
pub use scratch::process_dir;
pub mod unpacked;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The workspace root (the parent of the `tests/` crate).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("tests crate lives inside the workspace")
        .to_path_buf()
}

/// Where fixtures are cached: `$ENVPACK_FIXTURES` or `<repo>/.fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("ENVPACK_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".fixtures"),
    }
}

/// The CPython mirror (a dir holding `envpack1/SHA256SUMS` and the archives of all five triples).
pub fn python_mirror() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = fixtures_dir().join("python-mirror");
        with_fixture_lock("python-mirror", || {
            run_script(
                Command::new("bash")
                    .arg(script("python-mirror.sh"))
                    .arg("--foreign")
                    .arg(&out),
            )
        });
        out
    })
    .clone()
}

/// The flat wheelhouse: the Conan 2.21.0 sdists, their build requirements and the cp311 wheels
/// of the closure for all five platforms.
pub fn wheelhouse() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = fixtures_dir().join("wheelhouse");
        with_fixture_lock("wheelhouse", || {
            run_script(Command::new("bash").arg(script("wheelhouse.sh")).arg(&out))
        });
        out
    })
    .clone()
}

/// The PEP 503/658/691 index tree built from [`wheelhouse`] (serve it with [`IndexServer`]).
pub fn index_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let wheels = wheelhouse();
        let out = fixtures_dir().join("index");
        with_fixture_lock("index", || build_index(&wheels, &out));
        out
    })
    .clone()
}

/// Real wheels whose newest files need a newer glibc or macOS than the CPython build's minimum
/// (orjson, lief, pyyaml 6.0.4 for macOS x86_64; see `targets-wheelhouse.sh`).
pub fn targets_wheelhouse() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = fixtures_dir().join("targets-wheelhouse");
        with_fixture_lock("targets-wheelhouse", || {
            run_script(
                Command::new("bash")
                    .arg(script("targets-wheelhouse.sh"))
                    .arg(&out),
            )
        });
        out
    })
    .clone()
}

/// An index tree `fixtures/<name>` of the Conan wheelhouse plus [`targets_wheelhouse`], without
/// the files whose names start with one of `exclude` (serve it with [`IndexServer`]).
pub fn targets_index_dir(name: &str, exclude: &[&str]) -> PathBuf {
    let sources = [wheelhouse(), targets_wheelhouse()];
    let out = fixtures_dir().join(name);
    let wheels = fixtures_dir().join(format!("{name}-wheels"));
    with_fixture_lock(name, || {
        let _ = fs_err::remove_dir_all(&wheels);
        fs_err::create_dir_all(&wheels).unwrap();
        for dir in &sources {
            for entry in fs_err::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let file = entry.file_name().to_string_lossy().into_owned();
                let dist = file.ends_with(".whl") || file.ends_with(".tar.gz");
                if dist && !exclude.iter().any(|x| file.starts_with(x)) {
                    let to = wheels.join(&file);
                    fs_err::hard_link(entry.path(), &to)
                        .or_else(|_| fs_err::copy(entry.path(), &to).map(|_| ()))
                        .unwrap();
                }
            }
        }
        build_index(&wheels, &out)
    });
    out
}

/// Writes the PEP 503/658/691 index tree of the distributions in `wheels` to `out` (serve it with
/// [`IndexServer`]).
pub fn build_index(wheels: &Path, out: &Path) {
    run_script(
        Command::new(python3())
            .arg(script("index.py"))
            .arg("build")
            .arg(wheels)
            .arg(out),
    )
}

/// A running `index.py serve` on 127.0.0.1; dropping it stops the server.
pub struct IndexServer {
    /// The index's simple URL: `http://127.0.0.1:PORT/simple/`.
    pub url: String,
    /// The server's base URL without a path: `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
}

impl IndexServer {
    /// Starts serving `index_dir` on a free port; `extra_args` go to `index.py serve`
    /// (`--html-only`, `--no-metadata`).
    pub fn start(index_dir: &Path, extra_args: &[&str]) -> IndexServer {
        let stderr = if std::env::var_os("ENVPACK_FIXTURES_VERBOSE").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(python3())
            .arg(script("index.py"))
            .arg("serve")
            .arg(index_dir)
            .args(["--port", "0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start index.py serve: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut first_line = String::new();
        let read = BufReader::new(stdout).read_line(&mut first_line);
        let port = match (read, first_line.trim().strip_prefix("PORT=")) {
            (Ok(_), Some(port)) => port.to_string(),
            (read, _) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "index.py serve {} did not report its port (read {read:?}, line {first_line:?}, exit {status:?})",
                    index_dir.display()
                );
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        IndexServer {
            url: format!("{base}/simple/"),
            base,
            child,
        }
    }
}

impl Drop for IndexServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/debug/envpack`, built by `cargo build --workspace` before the tests run.
pub fn envpack_bin() -> PathBuf {
    workspace_bin("envpack")
}

/// `target/debug/envpack-unpack`, built by `cargo build --workspace` before the tests run.
pub fn unpack_bin() -> PathBuf {
    workspace_bin("envpack-unpack")
}

/// Runs `cmd` to completion; panics with its stdout and stderr if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// The sha256 of a file's bytes, as lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let bytes = fs_err::read(path).unwrap_or_else(|e| panic!("{e}"));
    hex::encode(Sha256::digest(&bytes))
}

fn workspace_bin(name: &str) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join("target"),
    };
    let path = target
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        panic!(
            "{} is missing: run `cargo build --workspace` (or scripts/test.sh) before the tests",
            path.display()
        );
    }
    path
}

fn python3() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join("fixtures").join(name)
}

fn run_script(cmd: &mut Command) {
    run(cmd.env("PYTHON", python3()));
}

/// Serializes fixture builds across test processes with a lock directory (mkdir is atomic);
/// a lock older than `STALE` is taken to be left by a killed run.
fn with_fixture_lock(name: &str, build: impl FnOnce()) {
    const STALE: Duration = Duration::from_secs(30 * 60);
    let dir = fixtures_dir();
    fs_err::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let lock = dir.join(format!(".lock-{name}"));
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|age| age > STALE) {
                    let _ = std::fs::remove_dir(&lock);
                    continue;
                }
                if started.elapsed() > STALE {
                    panic!("timed out waiting for fixture lock {}", lock.display());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create fixture lock {}: {e}", lock.display()),
        }
    }
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unlock = Unlock(lock);
    build();
}

/// A response of [`http_get`].
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header lines as (lowercased name, value).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET to a 127.0.0.1 test server (`base` like `http://127.0.0.1:PORT`),
/// with an optional `Accept` header; no redirects followed.
pub fn http_get(base: &str, path: &str, accept: Option<&str>) -> HttpResponse {
    use std::io::{Read, Write};
    let host = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// base: {base}"));
    let mut stream = std::net::TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("cannot connect to {host}: {e}"));
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("cannot send to {host}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("cannot read from {host}: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in response to {path}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `SOURCE_DATE_EPOCH` of every fixture lock and build.
pub const FIXTURE_EPOCH: &str = "1700000000";

/// The fixture spec: the OpenSSL/Conan env on `platforms` with CPython 3.11.7 from the fixture
/// mirror, Conan 2.21.0, the given remotes (TOML inline tables, one per line) and
/// `default = "profiles/linux-gcc12"` plus `extra_profiles` (TOML lines) under `[conan.profiles]`.
pub fn fixture_spec(platforms: &[&str], remotes: &[&str], extra_profiles: &str) -> String {
    let list: Vec<String> = platforms.iter().map(|p| format!("{p:?}")).collect();
    let remotes: String = remotes.iter().map(|r| format!("  {r},\n")).collect();
    format!(
        "# fixture spec\n[env]\nname = \"openssl-devenv\"\nplatforms = [{}]\n\n\
         [python]\nversion = \"3.11.7\"\nbuild = \"envpack1\"\n\n\
         [packages]\nrequirements = [\"conan==2.21.0\"]\n\n\
         [conan]\nremotes = [\n{remotes}]\n\n\
         [conan.profiles]\ndefault = \"profiles/linux-gcc12\"\n{extra_profiles}",
        list.join(", ")
    )
}

/// The pinned Conan remote most fixture specs use (a TOML inline table).
pub const FIXTURE_REMOTE: &str = r#"{ name = "openssl-conan", url = "https://conan.example.org/api/conan/openssl", verify-ssl = true }"#;

/// Writes `dir/envpack.toml` (the fixture spec on `platforms` with [`FIXTURE_REMOTE`]) and its
/// default profile `dir/profiles/linux-gcc12` with `profile` as content.
pub fn write_fixture_spec_dir(dir: &Path, platforms: &[&str], profile: &str) {
    fs_err::create_dir_all(dir.join("profiles")).unwrap();
    fs_err::write(
        dir.join("envpack.toml"),
        fixture_spec(platforms, &[FIXTURE_REMOTE], ""),
    )
    .unwrap();
    fs_err::write(dir.join("profiles/linux-gcc12"), profile).unwrap();
}

/// The upstream sources from Debian's source archive (scripts/fixtures/debian-source.sh) as
/// the `ENVPACK_SOURCE_MIRROR` of the example's OpenSSL recipe.
pub fn source_mirror_url() -> String {
    format!("file://{}/", fixtures_dir().join("sources").display())
}

/// A copy of `lockfiles/local-devenv` (spec, lock, profiles, recipes) at `dest`: files, not
/// links, since a spec's files must be inside its directory.
pub fn copy_example(dest: &Path) {
    fs_err::create_dir_all(dest).unwrap();
    let src = repo_root().join("lockfiles/local-devenv");
    run(Command::new("cp")
        .arg("-rL")
        .arg(format!("{}/.", src.display()))
        .arg(dest));
}

/// `envpack --cache-dir CACHE` run in `dir` against the fixture index and mirror (and the
/// fixture source mirror), with the fixture epoch and no other index or image configuration
/// leaking in from the environment.
pub fn envpack_cmd(dir: &Path, cache: &Path, index_url: &str, mirror_url: &str) -> Command {
    let mut cmd = Command::new(envpack_bin());
    cmd.current_dir(dir)
        .env("ENVPACK_INDEX_URL", index_url)
        .env("ENVPACK_PYTHON_MIRROR", mirror_url)
        .env("ENVPACK_SOURCE_MIRROR", source_mirror_url())
        .env("SOURCE_DATE_EPOCH", FIXTURE_EPOCH)
        .env_remove("PIP_INDEX_URL")
        .env_remove("UV_INDEX_URL")
        .env_remove("ENVPACK_IMAGE_SOURCE")
        .env_remove("ENVPACK_IMAGE_REVISION")
        .arg("--cache-dir")
        .arg(cache);
    cmd
}

/// The SBOM validators' venv (`$ENVPACK_SBOM_TOOLS`), `None` to skip (an error when the
/// fixtures are required).
pub fn sbom_tools() -> Option<PathBuf> {
    match std::env::var_os("ENVPACK_SBOM_TOOLS") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() => {
            panic!("ENVPACK_REQUIRE_FIXTURES is set but ENVPACK_SBOM_TOOLS is not (scripts/test.sh sets both)")
        }
        _ => None,
    }
}

const CDX_CHECK: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if errors is not None:
    print(repr(errors))
    sys.exit(1)
"#;

/// Validates a CycloneDX 1.6 JSON file with the official library (strict schema).
pub fn validate_cyclonedx(tools: &Path, file: &Path) {
    run(Command::new(tools.join("bin/python"))
        .args(["-c", CDX_CHECK])
        .arg(file));
}

/// Validates an SPDX 2.3 JSON file with the official spdx-tools.
pub fn validate_spdx(tools: &Path, file: &Path) {
    run(Command::new(tools.join("bin/pyspdxtools"))
        .arg("-i")
        .arg(file));
}
