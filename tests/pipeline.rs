//! End to end with real parts: a real relocatable CPython served as a python-build-standalone
//! mirror, the real Conan 2.21.0 closure served by a local PEP 503/691 index, the real
//! `envpack` and `envpack-unpack` binaries, and the real Conan running in the unpacked env.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use envpack_e2e::*;

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
        let dir = tempfile::Builder::new()
            .prefix("envpack-e2e-")
            .tempdir()
            .unwrap()
            .keep();
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
fn artifact_is_a_plain_tar_of_layers() {
    let (artifact, _) = built();
    let out = run(Command::new("tar").arg("-tf").arg(artifact));
    let names: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(names[0], "envpack-artifact.json");
    assert_eq!(names[1], "envpack.lock");
    assert_eq!(names.len(), 2 + 4, "{names:?}");
    assert!(
        names[2..].iter().all(|n| n.starts_with("blobs/sha256/")),
        "{names:?}"
    );
    let listing = run(Command::new("tar")
        .arg("-xOf")
        .arg(artifact)
        .arg("envpack-artifact.json"));
    let index: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let layers: Vec<&str> = index["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["cpython", "packages", "conan", "meta"]);
    // Every layer is a zstd tar GNU tar can list, with normalized owners and times.
    let work = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(artifact)
        .arg("-C")
        .arg(work.path()));
    for l in index["layers"].as_array().unwrap() {
        let digest = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let blob = work.path().join("blobs/sha256").join(digest);
        assert_eq!(sha256_file(&blob), digest);
        let out = run(Command::new("tar")
            .env("TZ", "UTC")
            .args(["--zstd", "--numeric-owner", "--full-time", "-tvf"])
            .arg(&blob));
        let text = stdout(&out);
        assert!(!text.is_empty());
        for line in text.lines() {
            assert!(line.contains(" 0/0 "), "owner not normalized: {line}");
            assert!(
                line.contains("2023-11-14 22:13:20"),
                "mtime not the epoch: {line}"
            );
        }
    }
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

/// Tests that make a lock or root go wrong must leave everything as it was.
static BAD_INPUT: Mutex<()> = Mutex::new(());

#[test]
fn stale_lock_is_refused_with_advice() {
    let _g = BAD_INPUT.lock().unwrap_or_else(|e| e.into_inner());
    let l = locked();
    let dir = l.dir.join("stale");
    write_spec_dir(&dir, &PLATFORMS);
    fs_err::write(dir.join("envpack.lock"), &l.lock_text).unwrap();
    fs_err::write(dir.join("profiles/linux-gcc12"), "[settings]\nos=Linux\n").unwrap();
    let out = envpack(&dir, &l.cache, &l.index.url, &l.mirror_url)
        .args(["build", "--out", "d"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stale") && err.contains("envpack lock"),
        "{err}"
    );
    assert!(!dir
        .join("d")
        .join("openssl-devenv-linux-x86_64.envpack.tar")
        .exists());
}

#[test]
fn bad_specs_fail_with_position_and_no_lock() {
    let l = locked();
    let cases: [(&str, &str); 3] = [
        (
            "[env]\nname = \"x\"\nplatforms = [\"linux-x86_64\"]\nsurprise = 1\n",
            ":4:",
        ),
        (&spec_text(&["linux-x86_64", "plan9-mips"]), "plan9-mips"),
        ("[env\n", ":1:"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let dir = l.dir.join(format!("bad-spec-{i}"));
        write_spec_dir(&dir, &PLATFORMS);
        fs_err::write(dir.join("envpack.toml"), text).unwrap();
        let out = envpack(&dir, &l.cache, &l.index.url, &l.mirror_url)
            .arg("lock")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "case {i}: want {want:?} in {err}");
        assert!(!dir.join("envpack.lock").exists(), "case {i} wrote a lock");
    }
}

#[test]
fn hash_mismatch_in_mirror_is_refused_and_not_cached() {
    let _g = BAD_INPUT.lock().unwrap_or_else(|e| e.into_inner());
    let l = locked();
    // A mirror whose archive no longer matches its SHA256SUMS.
    let src = python_mirror();
    let bad = l.dir.join("bad-mirror/envpack1");
    fs_err::create_dir_all(&bad).unwrap();
    for e in fs_err::read_dir(src.join("envpack1")).unwrap() {
        let e = e.unwrap();
        fs_err::copy(e.path(), bad.join(e.file_name())).unwrap();
    }
    let archive = fs_err::read_dir(&bad)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("x86_64-unknown-linux-gnu"))
        .unwrap();
    let mut bytes = fs_err::read(&archive).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs_err::write(&archive, bytes).unwrap();
    let dir = l.dir.join("mismatch");
    write_spec_dir(&dir, &["linux-x86_64"]);
    let cache = l.dir.join("mismatch-cache");
    let mirror = format!("file://{}", l.dir.join("bad-mirror").display());
    let out = envpack(&dir, &cache, &l.index.url, &mirror)
        .arg("lock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sha256") || err.contains("hash"), "{err}");
    assert!(!dir.join("envpack.lock").exists());
    let kept: Vec<PathBuf> = walk_files(&cache)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("blobs"))
        .collect();
    assert!(kept.is_empty(), "bad download kept in cache: {kept:?}");
}

#[test]
fn escaping_archive_entry_is_rejected_and_root_untouched() {
    let _g = BAD_INPUT.lock().unwrap_or_else(|e| e.into_inner());
    let l = locked();
    let (artifact, _) = built();
    let root = l.dir.join("root-hostile");
    run(Command::new(unpack_bin())
        .arg(artifact)
        .arg("--root")
        .arg(&root));
    let current = fs_err::read_link(root.join("current")).unwrap();
    // A tar whose first member climbs out of the root.
    let hostile = l.dir.join("hostile.envpack.tar");
    let work = tempfile::tempdir().unwrap();
    fs_err::write(work.path().join("x"), "pwned").unwrap();
    run(Command::new("tar")
        .arg("-cf")
        .arg(&hostile)
        .arg("-C")
        .arg(work.path())
        .args(["--transform", "s,^x$,../../escaped,", "-P", "x"]));
    let out = Command::new(unpack_bin())
        .arg(&hostile)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!l.dir.join("escaped").exists());
    assert_eq!(fs_err::read_link(root.join("current")).unwrap(), current);
    let leftovers: Vec<_> = fs_err::read_dir(root.join("envs")).unwrap().collect();
    assert_eq!(leftovers.len(), 1);
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

/// Just enough reading of our own lock format for assertions (the builder's parser is tested
/// in its crate; here we read the text the way a reviewer would).
mod toml_like {
    pub struct Doc {
        text: String,
    }
    impl Doc {
        pub fn parse(text: &str) -> Doc {
            Doc {
                text: text.to_string(),
            }
        }
        fn blocks(&self) -> Vec<(String, Vec<String>)> {
            let mut out: Vec<(String, Vec<String>)> = Vec::new();
            for line in self.text.lines() {
                if line.starts_with('[') {
                    out.push((line.to_string(), Vec::new()));
                } else if let Some(last) = out.last_mut() {
                    last.1.push(line.to_string());
                }
            }
            out
        }
        fn value(lines: &[String], key: &str) -> Option<String> {
            lines.iter().find_map(|l| {
                l.strip_prefix(&format!("{key} = "))
                    .map(|v| v.trim_matches('"').to_string())
            })
        }
        pub fn platform_names(&self) -> Vec<String> {
            self.blocks()
                .iter()
                .filter(|(h, _)| h == "[[platform]]")
                .filter_map(|(_, l)| Self::value(l, "name"))
                .collect()
        }
        /// (name, filename) of every package of a platform.
        pub fn packages(&self, platform: &str) -> Vec<(String, String)> {
            let mut current = String::new();
            let mut out = Vec::new();
            for (h, lines) in self.blocks() {
                if h == "[[platform]]" {
                    current = Self::value(&lines, "name").unwrap_or_default();
                } else if h == "[[platform.package]]" && current == platform {
                    out.push((
                        Self::value(&lines, "name").unwrap_or_default(),
                        Self::value(&lines, "filename").unwrap_or_default(),
                    ));
                }
            }
            out
        }
    }
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
/// layers, artifact format). A change here must be deliberate.
const GOLDEN_EXAMPLE_DIGEST: &str =
    "6a5bfd9c3e7bb6bfd1ee5a88362ee7c37c29bfd03284c4130a4044b88105d9e4";

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
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--cache-dir")
        .arg(&cache)
        .args(["build", "--out"])
        .arg(&out);
    run(&mut cmd);
    let artifact = out.join("openssl-devenv-linux-x86_64.envpack.tar");
    assert_eq!(sha256_file(&artifact), GOLDEN_EXAMPLE_DIGEST);
}

/// Every platform of the lock gets its own artifact with that platform's layout, wheels and
/// launchers (the foreign CPythons are fixture stand-ins: only their layout matters here).
#[test]
fn foreign_platforms_get_their_own_layout() {
    let l = locked();
    let out = l.dir.join("foreign");
    run(envpack(&l.dir, &l.cache, &l.index.url, &l.mirror_url)
        .args([
            "build",
            "--platform",
            "windows-x86_64",
            "--platform",
            "macos-arm64",
            "--out",
        ])
        .arg(&out));
    let list = |platform: &str| -> Vec<String> {
        let art = out.join(format!("openssl-devenv-{platform}.envpack.tar"));
        let root = l.dir.join(format!("foreign-root-{platform}"));
        run(Command::new(unpack_bin())
            .arg(&art)
            .arg("--root")
            .arg(&root));
        let env = root.join(fs_err::read_link(root.join("current")).unwrap());
        walk_files(&env)
            .into_iter()
            .map(|p| p.strip_prefix(&env).unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let win = list("windows-x86_64");
    for want in [
        "python/python.exe",
        "python/Lib/site-packages/yaml/__init__.py",
        "python/Lib/site-packages/yaml/__pycache__/__init__.cpython-311.pyc",
        "python/Scripts/conan.cmd",
        "bin/conan.cmd",
        "activate.bat",
        "activate.ps1",
        "conan-home/profiles/msvc",
    ] {
        assert!(win.iter().any(|p| p == want), "windows env lacks {want}");
    }
    assert!(win
        .iter()
        .any(|p| p == "python/Lib/site-packages/yaml/_yaml.cp311-win_amd64.pyd"));
    assert!(
        !win.iter().any(|p| p.contains("site-packages/distro")),
        "distro is Linux-only"
    );
    let mac = list("macos-arm64");
    assert!(mac
        .iter()
        .any(|p| p.contains("site-packages/yaml/_yaml.cpython-311-darwin.so")));
    assert!(mac.iter().any(|p| p == "bin/conan"));
    assert!(!mac.iter().any(|p| p.ends_with(".cmd")));
}

#[test]
fn file_missing_from_the_index_fails_the_build_cleanly() {
    let _g = BAD_INPUT.lock().unwrap_or_else(|e| e.into_inner());
    let l = locked();
    // An index made from the wheelhouse minus the linux-x86_64 PyYAML wheel the lock pins.
    let house = l.dir.join("thin-wheelhouse");
    fs_err::create_dir_all(&house).unwrap();
    let mut dropped = None;
    for e in fs_err::read_dir(wheelhouse()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("pyyaml-") && name.contains("manylinux2014_x86_64") {
            dropped = Some(name);
            continue;
        }
        if p.is_file() {
            fs_err::copy(&p, house.join(&name)).unwrap();
        }
    }
    let dropped = dropped.expect("the wheelhouse has a linux-x86_64 PyYAML wheel");
    let thin = l.dir.join("thin-index");
    run(Command::new("python3")
        .arg(repo_root().join("scripts/fixtures/index.py"))
        .arg("build")
        .arg(&house)
        .arg(&thin));
    let server = IndexServer::start(&thin, &[]);
    let dir = l.dir.join("missing-file");
    write_spec_dir(&dir, &PLATFORMS);
    fs_err::copy(l.dir.join("envpack.lock"), dir.join("envpack.lock")).unwrap();
    let cache = l.dir.join("missing-file-cache");
    let out = envpack(&dir, &cache, &server.url, &l.mirror_url)
        .args(["build", "--platform", "linux-x86_64", "--out", "dist"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&dropped) && err.contains("not on the index"),
        "{err}"
    );
    let left: Vec<_> = fs_err::read_dir(dir.join("dist"))
        .map(|d| d.collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(left.is_empty(), "build left files behind: {left:?}");
}

#[test]
fn unknown_platform_is_refused() {
    let l = locked();
    let out = envpack(&l.dir, &l.cache, &l.index.url, &l.mirror_url)
        .args(["build", "--platform", "plan9-mips", "--out", "never"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plan9-mips") && err.contains("linux-x86_64"),
        "{err}"
    );
    assert!(!l.dir.join("never").exists());
}

#[test]
fn gzip_and_zstd_artifacts_hold_the_same_env() {
    let l = locked();
    let (artifact, _) = built();
    let out = l.dir.join("gzip");
    run(envpack(&l.dir, &l.cache, &l.index.url, &l.mirror_url)
        .args([
            "build",
            "--platform",
            "linux-x86_64",
            "--compression",
            "gzip",
            "--out",
        ])
        .arg(&out));
    let gz = out.join("openssl-devenv-linux-x86_64.envpack.tar");
    assert_ne!(sha256_file(artifact), sha256_file(&gz));
    let root = l.dir.join("root-gzip");
    run(Command::new(unpack_bin())
        .arg(artifact)
        .arg("--root")
        .arg(&root));
    // Same tree, same env-id: unpacking the gzip artifact over the zstd one is a no-op.
    let again = run(Command::new(unpack_bin())
        .arg(&gz)
        .arg("--root")
        .arg(&root)
        .arg("--json"));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["already_current"], true, "{v}");
    let listing = run(Command::new("tar")
        .arg("-xOf")
        .arg(&gz)
        .arg("envpack-artifact.json"));
    let index: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    assert!(
        index["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["compression"] == "gzip"),
        "{index}"
    );
}
