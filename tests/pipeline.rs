//! End to end with real parts: a real relocatable CPython served as a python-build-standalone
//! mirror, the real Conan 2.21.0 closure served by a local PEP 503/691 index, the real
//! `envpack` and `envpack-unpack` binaries, and the real Conan running in the unpacked env.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use envpack_e2e::*;

#[path = "pipeline/bad_input.rs"]
mod bad_input;
#[path = "pipeline/formats.rs"]
mod formats;
#[path = "pipeline/progress.rs"]
mod progress;
#[path = "pipeline/toml_like.rs"]
mod toml_like;

const EPOCH: &str = FIXTURE_EPOCH;
const PLATFORMS: [&str; 5] = [
    "linux-x86_64",
    "linux-aarch64",
    "macos-x86_64",
    "macos-arm64",
    "windows-x86_64",
];

/// A spec (plus profiles) in a fresh directory, locked once for all tests of this file.
struct Locked {
    dir: PathBuf,
    cache: PathBuf,
    index: IndexServer,
    mirror_url: String,
    lock_text: String,
}

fn spec_text(platforms: &[&str]) -> String {
    let msvc = if platforms.contains(&"windows-x86_64") {
        "msvc = { windows-x86_64 = \"profiles/windows-msvc\" }\n"
    } else {
        ""
    };
    fixture_spec(
        platforms,
        &[
            r#"{ name = "openssl-conan", url = "https://conan.example.org/api/conan/openssl", verify-ssl = true }"#,
            r#"{ name = "mirror", url = "https://conan-mirror.example.org/api/conan/main", verify-ssl = false }"#,
        ],
        msvc,
    )
}

fn write_spec_dir(dir: &Path, platforms: &[&str]) {
    fs_err::create_dir_all(dir.join("profiles")).unwrap();
    fs_err::write(dir.join("envpack.toml"), spec_text(platforms)).unwrap();
    fs_err::write(
        dir.join("profiles/linux-gcc12"),
        "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n",
    )
    .unwrap();
    fs_err::write(
        dir.join("profiles/windows-msvc"),
        "[settings]\nos=Windows\narch=x86_64\ncompiler=msvc\ncompiler.version=194\ncompiler.runtime=dynamic\nbuild_type=Release\n",
    )
    .unwrap();
}

fn envpack(dir: &Path, cache: &Path, index: &str, mirror: &str) -> Command {
    envpack_cmd(dir, cache, index, mirror)
}

fn locked() -> &'static Locked {
    static LOCKED: OnceLock<Locked> = OnceLock::new();
    LOCKED.get_or_init(|| {
        let mirror = python_mirror();
        let index = IndexServer::start(&index_dir(), &[]);
        let dir = envpack_e2e::process_dir("envpack-e2e-");
        write_spec_dir(&dir, &PLATFORMS);
        let cache = dir.join("cache");
        let mirror_url = format!("file://{}", mirror.display());
        run(envpack(&dir, &cache, &index.url, &mirror_url).arg("lock"));
        let lock_text = fs_err::read_to_string(dir.join("envpack.lock")).unwrap();
        Locked {
            dir,
            cache,
            index,
            mirror_url,
            lock_text,
        }
    })
}

/// Builds of linux-x86_64 are shared by several tests: (artifact path, root).
fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let l = locked();
        let out = l.dir.join("dist");
        run(envpack(&l.dir, &l.cache, &l.index.url, &l.mirror_url)
            .args(["build", "--platform", "linux-x86_64", "--out"])
            .arg(&out));
        let artifact = out.join("openssl-devenv-linux-x86_64.envpack.tar");
        assert!(artifact.is_file(), "no artifact at {}", artifact.display());
        let root = l.dir.join("root");
        run(Command::new(unpack_bin())
            .arg(&artifact)
            .arg("--root")
            .arg(&root));
        (artifact, root)
    })
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn lock_value() -> toml_like::Doc {
    toml_like::Doc::parse(&locked().lock_text)
}

#[test]
fn lock_pins_every_platform_with_real_files() {
    let l = locked();
    let doc = lock_value();
    assert!(l.lock_text.contains("spec-hash = \"sha256:"));
    assert!(l.lock_text.contains(&format!("epoch = {EPOCH}")));
    assert!(
        !l.lock_text.contains("127.0.0.1"),
        "the lock names a URL:\n{}",
        l.lock_text
    );
    let platforms = doc.platform_names();
    let mut want: Vec<&str> = PLATFORMS.to_vec();
    want.sort();
    assert_eq!(platforms, want);
    for p in PLATFORMS {
        let pkgs = doc.packages(p);
        let names: Vec<&str> = pkgs.iter().map(|(n, _)| n.as_str()).collect();
        for must in [
            "conan",
            "pyyaml",
            "jinja2",
            "markupsafe",
            "requests",
            "urllib3",
            "patch-ng",
            "colorama",
            "python-dateutil",
            "fasteners",
        ] {
            assert!(names.contains(&must), "{p} lacks {must}: {names:?}");
        }
        // distro is required only where platform_system == 'Linux'.
        assert_eq!(
            names.contains(&"distro"),
            p.starts_with("linux"),
            "{p}: {names:?}"
        );
        let pyyaml = &pkgs.iter().find(|(n, _)| n == "pyyaml").unwrap().1;
        let want_tag = match p {
            "linux-x86_64" => "x86_64",
            "linux-aarch64" => "aarch64",
            "macos-x86_64" => "macosx_",
            "macos-arm64" => "arm64",
            _ => "win_amd64",
        };
        assert!(
            pyyaml.contains(want_tag) && pyyaml.contains("cp311"),
            "{p}: pyyaml file {pyyaml}"
        );
        let conan = &pkgs.iter().find(|(n, _)| n == "conan").unwrap().1;
        assert_eq!(conan, "conan-2.21.0.tar.gz");
    }
    // The sdist is built once and the pure wheel reused for every platform.
    let built: Vec<&str> = l
        .lock_text
        .lines()
        .filter(|line| {
            line.starts_with("built-wheel = ") && line.contains("conan-2.21.0-py3-none-any.whl")
        })
        .collect();
    assert_eq!(built.len(), 5, "{built:?}");
    assert!(built.windows(2).all(|w| w[0] == w[1]));
    assert!(
        l.lock_text
            .contains("[[build-package]]\nname = \"setuptools\""),
        "{}",
        l.lock_text
    );
    // Profiles are pinned per platform; the msvc one only on Windows.
    assert_eq!(l.lock_text.matches("name = \"msvc\"").count(), 1);
    assert_eq!(l.lock_text.matches("name = \"default\"").count(), 5);
}

#[test]
fn relock_is_byte_identical_and_lock_is_stable_across_formatting() {
    let l = locked();
    let dir = l.dir.join("relock");
    write_spec_dir(&dir, &PLATFORMS);
    // Comments and CRLF line endings don't change the canonical spec hash.
    let spec = fs_err::read_to_string(dir.join("envpack.toml")).unwrap();
    fs_err::write(
        dir.join("envpack.toml"),
        format!("# another comment\r\n{}", spec.replace('\n', "\r\n")),
    )
    .unwrap();
    run(envpack(&dir, &l.cache, &l.index.url, &l.mirror_url).arg("lock"));
    assert_eq!(
        fs_err::read_to_string(dir.join("envpack.lock")).unwrap(),
        l.lock_text
    );
}

#[test]
fn unpacked_env_runs_real_conan_and_python_offline() {
    let (_, root) = built();
    let conan = root.join("bin/conan");
    // Nothing of the host's Python leaks in: clean environment, no network configured.
    let clean = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", root.join("home-for-test"));
    };
    let mut c = Command::new(&conan);
    clean(&mut c);
    let out = run(c.arg("--version"));
    assert_eq!(stdout(&out).trim(), "Conan version 2.21.0");

    let mut c = Command::new(&conan);
    clean(&mut c);
    let remotes = stdout(&run(c.args(["remote", "list"])));
    assert!(
        remotes.contains("openssl-conan: https://conan.example.org/api/conan/openssl"),
        "{remotes}"
    );
    assert!(
        remotes.contains("mirror: https://conan-mirror.example.org/api/conan/main"),
        "{remotes}"
    );
    let first = remotes
        .lines()
        .position(|l| l.starts_with("openssl-conan"))
        .unwrap();
    let second = remotes
        .lines()
        .position(|l| l.starts_with("mirror"))
        .unwrap();
    assert!(first < second, "remote order lost: {remotes}");

    let mut c = Command::new(&conan);
    clean(&mut c);
    let profile = stdout(&run(c.args(["profile", "show"])));
    assert!(profile.contains("compiler.version=12"), "{profile}");
    assert!(profile.contains("os=Linux"), "{profile}");

    let mut c = Command::new(root.join("bin/python3"));
    clean(&mut c);
    let out = run(c.args(["-c", "import ssl, yaml, jinja2, sys; print(sys.version.split()[0], yaml.__version__, sys.prefix)"]));
    let text = stdout(&out);
    assert!(text.starts_with("3.11.7 "), "{text}");
    assert!(
        text.contains(&root.join("envs").display().to_string()),
        "prefix not inside the root: {text}"
    );

    // CONAN_HOME is the writable state dir, not the immutable env.
    let state = fs_err::read_dir(root.join("state")).unwrap().count();
    assert_eq!(state, 1);
    // Using the env changed nothing in it.
    let verify = Command::new(envpack_bin())
        .args(["verify", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify after use failed:\n{}\n{}",
        stdout(&verify),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn build_is_reproducible_under_different_conditions() {
    let l = locked();
    let (artifact, _) = built();
    let other = l.dir.join("elsewhere");
    write_spec_dir(&other, &PLATFORMS);
    fs_err::copy(l.dir.join("envpack.lock"), other.join("envpack.lock")).unwrap();
    let tmp = l.dir.join("other-tmp");
    fs_err::create_dir_all(&tmp).unwrap();
    let fresh_cache = l.dir.join("fresh-cache");
    // Different cache (so the sdist is rebuilt and must match the locked wheel hash), TZ,
    // locale, umask, TMPDIR and working directory.
    let mut cmd = Command::new("sh");
    cmd.current_dir(&other)
        .env("TZ", "Pacific/Kiritimati")
        .env("LC_ALL", "C")
        .env("LANG", "de_DE.UTF-8")
        .env("TMPDIR", &tmp)
        .env("ENVPACK_INDEX_URL", &l.index.url)
        .env("ENVPACK_PYTHON_MIRROR", &l.mirror_url)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .args(["-c", "umask 077 && exec \"$@\"", "sh"])
        .arg(envpack_bin())
        .arg("--cache-dir")
        .arg(&fresh_cache)
        .args(["build", "--platform", "linux-x86_64", "--out", "out2"]);
    run(&mut cmd);
    let second = other.join("out2/openssl-devenv-linux-x86_64.envpack.tar");
    assert_eq!(
        sha256_file(artifact),
        sha256_file(&second),
        "artifacts differ"
    );
}

#[test]
fn unpack_is_idempotent_and_rollback_works() {
    let l = locked();
    let (artifact, _) = built();
    let root = l.dir.join("root-rollback");
    run(Command::new(unpack_bin())
        .arg(artifact)
        .arg("--root")
        .arg(&root));
    let current = fs_err::read_link(root.join("current")).unwrap();
    let env = root.join(&current);
    let before = fs_err::metadata(env.join("envpack.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = run(Command::new(envpack_bin())
        .args(["--json", "unpack"])
        .arg(artifact)
        .arg("--root")
        .arg(&root));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["already_current"], true);
    assert_eq!(
        fs_err::metadata(env.join("envpack.json"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );

    // A different env (another profile) switches; rollback returns to the first.
    let other = l.dir.join("other-env");
    write_spec_dir(&other, &["linux-x86_64"]);
    fs_err::write(
        other.join("profiles/linux-gcc12"),
        "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=13\nbuild_type=Debug\n",
    )
    .unwrap();
    run(envpack(&other, &l.cache, &l.index.url, &l.mirror_url).arg("lock"));
    run(envpack(&other, &l.cache, &l.index.url, &l.mirror_url).args(["build", "--out", "dist"]));
    let second = other.join("dist/openssl-devenv-linux-x86_64.envpack.tar");
    run(Command::new(envpack_bin())
        .arg("unpack")
        .arg(&second)
        .arg("--root")
        .arg(&root));
    let switched = fs_err::read_link(root.join("current")).unwrap();
    assert_ne!(switched, current);
    let profile = stdout(&run(
        Command::new(root.join("bin/conan")).args(["profile", "show"])
    ));
    assert!(profile.contains("compiler.version=13"), "{profile}");
    run(Command::new(envpack_bin())
        .args(["unpack", "--rollback", "--root"])
        .arg(&root));
    assert_eq!(fs_err::read_link(root.join("current")).unwrap(), current);
    let profile = stdout(&run(
        Command::new(root.join("bin/conan")).args(["profile", "show"])
    ));
    assert!(profile.contains("compiler.version=12"), "{profile}");
}

#[test]
fn verify_names_every_changed_file() {
    let l = locked();
    let (artifact, _) = built();
    let root = l.dir.join("root-tamper");
    run(Command::new(unpack_bin())
        .arg(artifact)
        .arg("--root")
        .arg(&root));
    let env = root.join(fs_err::read_link(root.join("current")).unwrap());
    let yaml_init = fs_err::read_dir(env.join("python/lib/python3.11/site-packages/yaml"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() == "__init__.py")
        .unwrap();
    let mut bytes = fs_err::read(&yaml_init).unwrap();
    bytes[0] ^= 1;
    fs_err::write(&yaml_init, bytes).unwrap();
    fs_err::remove_file(env.join("conan-home/remotes.json")).unwrap();
    fs_err::write(env.join("python/extra.txt"), "x").unwrap();
    let out = Command::new(envpack_bin())
        .args(["verify", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("site-packages/yaml/__init__.py"), "{text}");
    assert!(text.contains("conan-home/remotes.json"), "{text}");
    assert!(text.contains("python/extra.txt"), "{text}");
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs_err::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn warm_cache_build_needs_no_network() {
    let l = locked();
    let (artifact, _) = built();
    let dir = l.dir.join("offline");
    write_spec_dir(&dir, &PLATFORMS);
    fs_err::copy(l.dir.join("envpack.lock"), dir.join("envpack.lock")).unwrap();
    // Nothing listens on port 9 and --offline forbids trying: every byte must come from the cache.
    let mut cmd = envpack(
        &dir,
        &l.cache,
        "http://127.0.0.1:9/simple/",
        "http://127.0.0.1:9/pbs/",
    );
    run(cmd.args([
        "--offline",
        "build",
        "--platform",
        "linux-x86_64",
        "--out",
        "dist",
    ]));
    let again = dir.join("dist/openssl-devenv-linux-x86_64.envpack.tar");
    assert_eq!(sha256_file(artifact), sha256_file(&again));
}

/// The example lock in lockfiles/ builds to the same bytes on every machine of this kind:
/// this digest pins the whole chain (fixture CPython, pinned wheels, sdist build, assembly,
/// layers, artifact format). A change here must be deliberate. Last changed when the example
/// gained the team's Conan recipes and the OpenSSL source (issue 15).
const GOLDEN_EXAMPLE_DIGEST: &str =
    "ba0f08cdd2c9f9bda9ed3e5f2e2e65cbdc3a66a4f6643eec2294345e844f6725";

#[test]
fn example_lock_builds_to_its_golden_digest() {
    let l = locked();
    let example = repo_root().join("lockfiles/local-devenv");
    let out = l.dir.join("golden");
    let cache = l.dir.join("golden-cache");
    let mut cmd = Command::new(envpack_bin());
    cmd.current_dir(&example)
        .env("ENVPACK_INDEX_URL", &l.index.url)
        .env("ENVPACK_PYTHON_MIRROR", &l.mirror_url)
        .env("ENVPACK_SOURCE_MIRROR", source_mirror_url())
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--cache-dir")
        .arg(&cache)
        .args(["build", "--out"])
        .arg(&out);
    run(&mut cmd);
    let artifact = out.join("openssl-devenv-linux-x86_64.envpack.tar");
    assert_eq!(sha256_file(&artifact), GOLDEN_EXAMPLE_DIGEST);
}
