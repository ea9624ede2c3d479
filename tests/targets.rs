//! Platform targets and foreign-only envs, with real wheels: `[platforms.<name>] glibc/macos`
//! admit `manylinux_2_28` / `macosx_10_15` wheels, `lock` says which target would admit a newer
//! version or excluded the only file, and an env whose platforms don't include the build host
//! (Windows-only, macOS-only) locks on this Linux machine and builds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use envpack_e2e::*;

/// The Conan closure plus the target wheels (orjson, lief, pyyaml 6.0.4 for macOS x86_64).
fn targets_index() -> &'static IndexServer {
    static SERVER: OnceLock<IndexServer> = OnceLock::new();
    SERVER.get_or_init(|| IndexServer::start(&targets_index_dir("targets-index", &[]), &[]))
}

/// The same without pyyaml 6.0.3, so the only pyyaml for macOS x86_64 needs 10.15.
fn pyyaml_604_index() -> &'static IndexServer {
    static SERVER: OnceLock<IndexServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        IndexServer::start(
            &targets_index_dir("targets-index-pyyaml-604", &["pyyaml-6.0.3"]),
            &[],
        )
    })
}

/// The plain fixture index (the Conan closure), as the example locks were made against.
fn conan_index() -> &'static IndexServer {
    static SERVER: OnceLock<IndexServer> = OnceLock::new();
    SERVER.get_or_init(|| IndexServer::start(&index_dir(), &[]))
}

fn mirror_url() -> String {
    format!("file://{}", python_mirror().display())
}

/// One cache for the whole file (content-addressed, shared safely).
fn cache() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| envpack_e2e::process_dir("envpack-targets-cache-"))
        .clone()
}

/// A fresh dir holding a spec for `platforms` with `requirements` and `extra` TOML appended.
fn spec_dir(platforms: &[&str], requirements: &[&str], extra: &str) -> PathBuf {
    let dir = envpack_e2e::process_dir("envpack-targets-");
    let q = |items: &[&str]| {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let spec = format!(
        "[env]\nname = \"targets\"\nplatforms = [{}]\n\n[python]\nversion = \"3.11.7\"\nbuild = \"envpack1\"\n\n\
         [packages]\nrequirements = [{}]\n{extra}",
        q(platforms),
        q(requirements)
    );
    fs_err::write(dir.join("envpack.toml"), spec).unwrap();
    dir
}

fn envpack(dir: &Path, index: &IndexServer) -> Command {
    envpack_cmd(dir, &cache(), &index.url, &mirror_url())
}

/// `envpack lock` (with `args` before the command) without failing the test on failure.
fn lock(dir: &Path, index: &IndexServer, args: &[&str]) -> Output {
    envpack(dir, index).args(args).arg("lock").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `[[platform.package]]` block of `name` in a lock: (version, filename).
fn locked_package(lock: &str, name: &str) -> (String, String) {
    let block = lock
        .split("[[platform.package]]\n")
        .find(|b| b.starts_with(&format!("name = \"{name}\"\n")))
        .unwrap_or_else(|| panic!("{name} is not in the lock:\n{lock}"));
    let value = |key: &str| {
        block
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {key} in {block}"))
            .to_string()
    };
    (value("version"), value("filename"))
}

fn read_lock(dir: &Path) -> String {
    fs_err::read_to_string(dir.join("envpack.lock")).unwrap()
}

/// The files of every layer of a portable artifact (zstd tar layers), and `envpack.json`.
fn artifact_files(artifact: &Path) -> (Vec<String>, serde_json::Value) {
    let x = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("xf")
        .arg(artifact)
        .arg("-C")
        .arg(x.path()));
    let mut names = Vec::new();
    let mut info = None;
    for blob in fs_err::read_dir(x.path().join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap().path();
        let list = run(Command::new("sh")
            .arg("-c")
            .arg("zstd -dc \"$0\" | tar t")
            .arg(&blob));
        let list = text(&list.stdout);
        if list.lines().any(|l| l == "envpack.json") {
            let out = run(Command::new("sh")
                .arg("-c")
                .arg("zstd -dc \"$0\" | tar xO envpack.json")
                .arg(&blob));
            info = Some(serde_json::from_slice(&out.stdout).unwrap());
        }
        names.extend(list.lines().map(str::to_string));
    }
    (names, info.expect("a layer holds envpack.json"))
}

#[test]
fn windows_example_lock_is_fresh_and_builds_on_linux() {
    let src = repo_root().join("lockfiles/windows-devenv");
    let dir = envpack_e2e::process_dir("envpack-windows-example-");
    fs_err::create_dir_all(dir.join("profiles")).unwrap();
    for f in ["envpack.toml", "profiles/windows-msvc194"] {
        fs_err::copy(src.join(f), dir.join(f)).unwrap();
    }
    // Locked again here against the same fixtures, the committed lock comes out byte for byte.
    let out = lock(&dir, conan_index(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let committed = fs_err::read_to_string(src.join("envpack.lock")).unwrap();
    assert_eq!(
        read_lock(&dir),
        committed,
        "lockfiles/windows-devenv/envpack.lock is stale: re-lock it against the local fixtures"
    );
    assert!(committed.starts_with(
        "# envpack.lock: generated by `envpack lock`. Do not edit by hand.\n\
         # Pins names, files and hashes only; index and mirror URLs come from configuration.\n\
         version = 2\n"
    ));
    assert!(committed.contains("\n[build-python]\nplatform = \"linux-x86_64\"\n"));
    assert!(
        !committed.contains("name = \"linux-x86_64\""),
        "{committed}"
    );
    let (conan, built) = locked_package(&committed, "conan");
    assert_eq!(
        (conan.as_str(), built.as_str()),
        ("2.21.0", "conan-2.21.0.tar.gz")
    );
    assert!(committed.contains("built-wheel = { filename = \"conan-2.21.0-py3-none-any.whl\""));

    // The committed lock builds on this Linux host: the sdists are rebuilt with the pinned
    // build-host CPython and it compiles the Windows env's bytecode.
    let cache = dir.join("cache");
    run(envpack_cmd(&dir, &cache, &conan_index().url, &mirror_url())
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["build", "--lock"])
        .arg(src.join("envpack.lock"))
        .args(["--out", "dist"]));
    let artifact = dir.join("dist/windows-devenv-windows-x86_64.envpack.tar");
    run(Command::new(envpack_bin()).arg("verify").arg(&artifact));
    let (files, info) = artifact_files(&artifact);
    for want in [
        "python/python.exe",
        "python/Lib/site-packages/conan/__init__.py",
        "python/Lib/site-packages/conan/__pycache__/__init__.cpython-311.pyc",
        "python/Lib/site-packages/yaml/__pycache__/__init__.cpython-311.pyc",
        "bin/conan.cmd",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} not in the artifact"
        );
    }
    assert_eq!(info["platform"], "windows-x86_64");
    assert_eq!(info["conan_version"], "2.21.0");
    assert!(info.get("target").is_none(), "{info}");
}

#[test]
fn macos_only_conan_env_needs_macos_10_15_with_only_pyyaml_6_0_4() {
    let index = pyyaml_604_index();
    let dir = spec_dir(&["macos-x86_64"], &["conan==2.21.0"], "");
    let out = lock(&dir, index, &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "locked without a usable pyyaml");
    assert!(
        err.contains("pyyaml 6.0.4 has no file usable on macos-x86_64 (macos 10.13)")
            && err.contains("pyyaml-6.0.4-cp311-cp311-macosx_10_15_x86_64.whl needs macos 10.15")
            && err.contains("`[platforms.macos-x86_64] macos = \"10.15\"`"),
        "{err}"
    );
    assert!(!dir.join("envpack.lock").exists());

    // Raised as told, the macOS-only env locks on this Linux host: the sdists are built with the
    // build host's CPython, pinned as [build-python].
    let dir = spec_dir(
        &["macos-x86_64"],
        &["conan==2.21.0"],
        "\n[platforms.macos-x86_64]\nmacos = \"10.15\"\n",
    );
    let out = lock(&dir, index, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let l = read_lock(&dir);
    assert!(l.contains("\nversion = 2\n"), "{l}");
    assert!(
        l.contains("[build-python]\nplatform = \"linux-x86_64\"\n"),
        "{l}"
    );
    assert!(
        l.contains("name = \"macos-x86_64\"\nmacos = \"10.15\"\n"),
        "{l}"
    );
    assert_eq!(
        locked_package(&l, "pyyaml"),
        (
            "6.0.4".to_string(),
            "pyyaml-6.0.4-cp311-cp311-macosx_10_15_x86_64.whl".to_string()
        )
    );
    assert_eq!(locked_package(&l, "conan").0, "2.21.0");
}

#[test]
fn orjson_newer_version_needs_macos_10_15() {
    let index = targets_index();
    let dir = spec_dir(&["macos-x86_64"], &["orjson"], "");
    let out = lock(&dir, index, &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(locked_package(&read_lock(&dir), "orjson").0, "3.8.10");
    assert!(
        err.contains("warning: macos-x86_64: locked orjson 3.8.10, but orjson 3.13.0 needs macos 10.15 (the target is 10.13)")
            && err.contains("`[platforms.macos-x86_64] macos = \"10.15\"`"),
        "{err}"
    );
    // --json carries the same warning.
    let out = lock(&dir, index, &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &report["warnings"][0];
    assert_eq!(
        (
            &w["platform"],
            &w["package"],
            &w["locked"],
            &w["newer"],
            &w["setting"],
            &w["needs"],
            &w["target"]
        ),
        (
            &"macos-x86_64".into(),
            &"orjson".into(),
            &"3.8.10".into(),
            &"3.13.0".into(),
            &"macos".into(),
            &"10.15".into(),
            &"10.13".into()
        ),
        "{report}"
    );
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(1));

    // Raised to 10.15, 3.13.0 (a macosx_10_15 wheel) is locked, with nothing to warn about,
    // and the built env records its target.
    let dir = spec_dir(
        &["macos-x86_64"],
        &["orjson"],
        "\n[platforms.macos-x86_64]\nmacos = \"10.15\"\n",
    );
    let out = lock(&dir, index, &["--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"], serde_json::json!([]));
    let (version, file) = locked_package(&read_lock(&dir), "orjson");
    assert_eq!(version, "3.13.0");
    assert!(file.contains("macosx_10_15_x86_64"), "{file}");
    run(envpack(&dir, index).args(["build", "--out", "dist"]));
    let (files, info) = artifact_files(&dir.join("dist/targets-macos-x86_64.envpack.tar"));
    assert_eq!(info["target"], serde_json::json!({"macos": "10.15"}));
    // audit checks envpack.json's target against the lock's.
    run(envpack(&dir, index).args(["audit", "dist/targets-macos-x86_64.envpack.tar"]));
    assert!(files
        .iter()
        .any(|f| f.starts_with("python/lib/python3.11/site-packages/orjson-3.13.0.dist-info/")));
}

#[test]
fn lief_needs_glibc_2_28_on_linux_and_macos_10_14() {
    let index = targets_index();
    let dir = spec_dir(&["linux-x86_64"], &["lief"], "");
    let out = lock(&dir, index, &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(locked_package(&read_lock(&dir), "lief").0, "0.12.3");
    assert!(
        err.contains("locked lief 0.12.3, but lief 1.0.0 needs glibc 2.28 (the target is 2.17)")
            && err.contains("`[platforms.linux-x86_64] glibc = \"2.28\"`"),
        "{err}"
    );

    let dir = spec_dir(
        &["linux-x86_64"],
        &["lief"],
        "\n[platforms.linux-x86_64]\nglibc = \"2.28\"\n",
    );
    let out = lock(&dir, index, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let l = read_lock(&dir);
    assert_eq!(
        locked_package(&l, "lief"),
        (
            "1.0.0".to_string(),
            "lief-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl".to_string()
        )
    );
    assert!(
        l.contains("name = \"linux-x86_64\"\nglibc = \"2.28\"\n"),
        "{l}"
    );
    assert!(
        !l.contains("[build-python]"),
        "the host platform is locked itself"
    );

    // lief's only macOS x86_64 wheel needs 10.14: the error names it and that target, not
    // some Linux file.
    let dir = spec_dir(&["macos-x86_64"], &["lief"], "");
    let out = lock(&dir, index, &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("lief 0.13.2 has no file usable on macos-x86_64 (macos 10.13): its wheel lief-0.13.2-cp311-cp311-macosx_10_14_x86_64.whl needs macos 10.14")
            && err.contains("`[platforms.macos-x86_64] macos = \"10.14\"`")
            && !err.contains("manylinux"),
        "{err}"
    );
}

#[test]
fn bad_targets_are_refused_and_nothing_is_written() {
    for (extra, want) in [
        (
            "\n[platforms.linux-x86_64]\nglibc = \"2.12\"\n",
            "platforms.linux-x86_64.glibc: \"2.12\" is below 2.17",
        ),
        (
            "\n[platforms.linux-x86_64]\nmacos = \"10.15\"\n",
            "its target setting is `glibc`",
        ),
        (
            "\n[platforms.macos-x86_64]\nmacos = \"10.15\"\n",
            "platforms.macos-x86_64: \"macos-x86_64\" is not in env.platforms",
        ),
        (
            "\n[platforms.linux-x86_64]\nlibc = \"2.28\"\n",
            "unknown field `libc`",
        ),
    ] {
        let dir = spec_dir(&["linux-x86_64"], &["lief"], extra);
        let out = lock(&dir, targets_index(), &[]);
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{extra}: {err}"
        );
        assert!(!dir.join("envpack.lock").exists());
    }
}
