//! Differential test against pip, the reference installer, through the CLI: per platform,
//! each install set's requirements (50+ popular real wheels with their dependencies,
//! scripts/fixtures/differential.sh) are `envpack lock`ed against a loopback index of exactly
//! the downloaded files and `envpack build` into an artifact, and its packages layer is
//! compared with `pip install --no-deps --target DIR --platform …` of the files the lock
//! pinned: same files, same bytes, same modes, `.data` files where pip puts them. The
//! differences the README documents are each checked for what they must be; everything else
//! must be equal.

#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "pip_differential/cli.rs"]
mod cli;
#[path = "pip_differential/tree.rs"]
mod tree;

use cli::{lock_and_build, Warning};
use envpack_pypkg::{hash_matches, parse_record};
use envpack_pypkg::{platform_by_name, LauncherKind, Platform};
use tree::{normalize, to_pip_namespace, walk, wheel_facts, Tree, WheelFacts};

/// RECORD warts of the pinned wheels that envpack installs with a warning (and pip without a
/// word): (platform, wheel file, member, problem).
const EXPECTED_WARNINGS: &[(&str, &str, &str, &str)] = &[
    // Re-tagged after it was built: RECORD still has the old WHEEL file's hash and size.
    (
        "macos-x86_64",
        CMAKE_MACOS,
        "cmake-3.31.6.dist-info/WHEEL",
        "sha256 does not match RECORD",
    ),
    (
        "macos-x86_64",
        CMAKE_MACOS,
        "cmake-3.31.6.dist-info/WHEEL",
        "size does not match RECORD",
    ),
    (
        "macos-arm64",
        CMAKE_MACOS,
        "cmake-3.31.6.dist-info/WHEEL",
        "sha256 does not match RECORD",
    ),
    (
        "macos-arm64",
        CMAKE_MACOS,
        "cmake-3.31.6.dist-info/WHEEL",
        "size does not match RECORD",
    ),
];
const CMAKE_MACOS: &str = "cmake-3.31.6-py3-none-macosx_10_10_universal2.whl";

/// The fixture dir of one platform, or `None` (skip) unless fixtures are required.
fn fixture(platform: &str) -> Option<PathBuf> {
    let root = envpack_e2e::fixtures_dir();
    let dir = root.join("differential").join(platform);
    if dir.join("pip-platforms").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "differential fixture missing in {}: run scripts/fixtures/differential.sh {}",
        dir.display(),
        root.join("differential").display()
    );
    if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// The machine's CPython 3.11 with pip, the reference installer.
fn python311() -> PathBuf {
    let exe = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let out = Command::new(&exe)
        .args([
            "-c",
            "import sys, pip; print(sys.executable, sys.version_info[:2] == (3, 11))",
        ])
        .output()
        .expect("running python3");
    let text = String::from_utf8(out.stdout).unwrap();
    let (path, ok) = text.trim().rsplit_once(' ').unwrap_or(("", ""));
    assert_eq!(
        ok, "True",
        "the differential test needs CPython 3.11 with pip: {text}"
    );
    PathBuf::from(path)
}

/// Installs `wheels` with pip into `target`, as the tests' reference.
fn pip_install(python: &Path, tags: &[String], wheels: &[PathBuf], target: &Path) {
    let mut cmd = Command::new("sh");
    // pip's modes follow the umask; envpack's are fixed 0644/0755.
    cmd.args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .args(["--no-deps", "--no-index", "--only-binary=:all:", "--target"])
    .arg(target)
    .args([
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]);
    for t in tags {
        cmd.args(["--platform", t]);
    }
    cmd.args(wheels).env("PYTHONDONTWRITEBYTECODE", "1");
    let out = cmd.output().expect("running pip");
    assert!(
        out.status.success(),
        "pip install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the RECORDs of our tree claim: every file by the `.dist-info` that lists it.
type Owners = BTreeMap<String, String>;

/// Compares one install set; pushes every difference it finds onto `problems` and returns the
/// build's warnings and the number of wheels the lock pinned.
fn compare_set(
    python: &Path,
    platform: &Platform,
    tags: &[String],
    set_dir: &Path,
    cache: &Path,
    problems: &mut Vec<String>,
) -> (Vec<Warning>, usize) {
    let set = set_dir.file_name().unwrap().to_string_lossy().into_owned();
    let requirements: Vec<String> =
        fs_err::read_to_string(set_dir.with_file_name(format!("{set}.requirements")))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
    let built = lock_and_build(&platform.name, set_dir, &requirements, tags, cache);
    assert!(!built.wheels.is_empty(), "nothing locked for {set}");
    let tmp = tempfile::tempdir().unwrap();
    let pip_dir = tmp.path().join("pip");
    pip_install(python, tags, &built.wheels, &pip_dir);

    let mut ours: Tree = walk(&built.env)
        .into_iter()
        .map(|(p, f)| (to_pip_namespace(platform, &p), f))
        .collect();
    let every_file: BTreeSet<String> = ours.keys().cloned().collect();
    let mut theirs = walk(&pip_dir);
    let mut problem = |what: String| problems.push(format!("{}/{set}: {what}", platform.name));

    let mut owners = Owners::new();
    for wheel in &built.wheels {
        let facts = wheel_facts(wheel);
        let name = wheel.file_name().unwrap().to_string_lossy();
        let warned: Vec<&Warning> = built.warnings.iter().filter(|w| w.0 == name).collect();
        check_dist(
            platform,
            &built.env,
            &facts,
            &warned,
            &mut owners,
            &mut ours,
            &mut theirs,
            &mut problem,
        );
    }
    // Every file of the packages layer is some wheel's (RECORD) or the bytecode of one.
    for path in &every_file {
        let source = pyc_source(path);
        if !owners.contains_key(path) && !source.is_some_and(|s| owners.contains_key(&s)) {
            problem(format!("{path}: in the env, in no RECORD"));
        }
    }
    check_pycs(&mut ours, &mut theirs, &mut problem);
    for (path, ours_f) in &ours {
        match theirs.get(path) {
            None => problem(format!("{path}: envpack installs it, pip does not")),
            Some(t) if t.data != ours_f.data => problem(format!("{path}: bytes differ")),
            // Scripts are always executable in envpack's trees; pip copies the zip's bit
            // (pywin32 builds its wheel on Windows, where its scripts have none).
            Some(t) if path.starts_with("bin/") && (ours_f.mode, t.mode) == (0o755, 0o644) => {}
            Some(t) if t.mode != ours_f.mode => {
                problem(format!("{path}: mode {:o}, pip {:o}", ours_f.mode, t.mode))
            }
            Some(_) => {}
        }
    }
    for path in theirs.keys().filter(|p| !ours.contains_key(*p)) {
        problem(format!("{path}: pip installs it, envpack does not"));
    }
    (built.warnings, built.wheels.len())
}

/// Checks (and removes from both trees) one distribution's metadata that is documented to
/// differ: INSTALLER, REQUESTED, direct_url.json, RECORD, entry-point launchers and `#!python`
/// scripts.
#[allow(clippy::too_many_arguments)]
fn check_dist(
    platform: &Platform,
    env: &Path,
    facts: &WheelFacts,
    warned: &[&Warning],
    owners: &mut Owners,
    ours: &mut Tree,
    theirs: &mut Tree,
    problem: &mut dyn FnMut(String),
) {
    let info = &facts.dist_info;
    let take = |tree: &mut Tree, path: &str| tree.remove(path).map(|f| f.data);

    match (
        take(ours, &format!("{info}/INSTALLER")),
        take(theirs, &format!("{info}/INSTALLER")),
    ) {
        (Some(o), Some(t)) if o == b"envpack\n" && t == b"pip\n" => {}
        other => problem(format!("{info}/INSTALLER: {other:?}")),
    }
    if take(ours, &format!("{info}/REQUESTED")).is_some() {
        problem(format!("{info}/REQUESTED: envpack writes it"));
    }
    if take(theirs, &format!("{info}/REQUESTED")) != Some(Vec::new()) {
        problem(format!(
            "{info}/REQUESTED: pip did not mark the wheel requested"
        ));
    }
    if take(ours, &format!("{info}/direct_url.json")).is_some() {
        problem(format!("{info}/direct_url.json: envpack writes it"));
    }
    match take(theirs, &format!("{info}/direct_url.json")) {
        Some(d) if String::from_utf8_lossy(&d).contains("\"url\": \"file://") => {}
        other => problem(format!("{info}/direct_url.json from pip: {other:?}")),
    }

    // Launchers: pip's have the build machine's interpreter in their shebang, ours find the
    // env's CPython relative to themselves.
    for (name, module, attr) in &facts.entry_points {
        let ours_name = match platform.launcher {
            LauncherKind::Posix => format!("bin/{name}"),
            LauncherKind::Windows => format!("bin/{name}.cmd"),
        };
        match take(ours, &ours_name) {
            Some(o) => {
                // `a.b:C.run` is called as `from a.b import C as _x` ... `_x.run()`.
                let text = String::from_utf8_lossy(&o);
                let (first, rest) = match attr.split_once('.') {
                    Some((first, rest)) => (first, format!(".{rest}")),
                    None => (attr.as_str(), String::new()),
                };
                let imports = text.contains(&format!("from {module} import {first} as "));
                let calls = ["_envpack_entry", "_e"]
                    .iter()
                    .any(|alias| text.contains(&format!("{alias}{rest}()")));
                if !imports || !calls {
                    problem(format!(
                        "{ours_name}: launcher does not call {module}:{attr}"
                    ));
                }
            }
            None => problem(format!("{ours_name}: no envpack launcher")),
        }
        match take(theirs, &format!("bin/{name}")) {
            Some(t) if String::from_utf8_lossy(&t).contains(&format!("from {module} import")) => {}
            other => problem(format!(
                "bin/{name}: pip launcher {:?}",
                other.map(|t| t.len())
            )),
        }
    }
    // `#!python` scripts: the same body below a relocatable first line (POSIX), or kept as
    // the wheel has it with a `.cmd` that runs it (Windows); pip writes its own shebang.
    for (name, wheel_bytes) in &facts.python_scripts {
        let path = format!("bin/{name}");
        let body = |d: &[u8]| {
            d.splitn(2, |&b| b == b'\n')
                .nth(1)
                .unwrap_or_default()
                .to_vec()
        };
        let (o, t) = (take(ours, &path), take(theirs, &path));
        let (Some(o), Some(t)) = (o, t) else {
            problem(format!("{path}: missing on one side"));
            continue;
        };
        if !t.starts_with(b"#!/") || body(&t) != body(wheel_bytes) {
            problem(format!("{path}: pip's copy is not the wheel's body"));
        }
        match platform.launcher {
            LauncherKind::Posix => {
                if !o.starts_with(b"#!/bin/sh\n") || !o.ends_with(&body(wheel_bytes)) {
                    problem(format!(
                        "{path}: not the wheel's body behind a sh trampoline"
                    ));
                }
            }
            LauncherKind::Windows => {
                let cmd = take(ours, &format!("{path}.cmd")).unwrap_or_default();
                if o != *wheel_bytes
                    || !String::from_utf8_lossy(&cmd).contains(&format!("%~dp0{name}"))
                {
                    problem(format!(
                        "{path}: not kept as in the wheel with a .cmd runner"
                    ));
                }
            }
        }
    }

    check_records(platform, env, warned, info, owners, ours, theirs, problem);
}

/// Our RECORD's hashes and sizes are true to the disk and it claims no file another RECORD
/// claims (`owners`); pip's lists the same paths (plus its pycs, REQUESTED, direct_url.json);
/// where pip's hash is not true to its disk, envpack warned about that file.
#[allow(clippy::too_many_arguments)]
fn check_records(
    platform: &Platform,
    env: &Path,
    warned: &[&Warning],
    info: &str,
    owners: &mut Owners,
    ours: &mut Tree,
    theirs: &mut Tree,
    problem: &mut dyn FnMut(String),
) {
    let site = platform.site_packages(11);
    let record = format!("{info}/RECORD");
    let (Some(o), Some(t)) = (ours.remove(&record), theirs.remove(&record)) else {
        problem(format!("{record}: missing on one side"));
        return;
    };
    let mut our_paths = BTreeSet::new();
    for row in parse_record(std::str::from_utf8(&o.data).unwrap()).unwrap() {
        let env_path = normalize(&format!("{site}/{}", row.path));
        let ns = to_pip_namespace(platform, &env_path);
        if ns != record {
            let data = fs_err::read(env.join(&env_path)).unwrap_or_default();
            let ok = row.hash.as_deref().map(|h| hash_matches(h, &data));
            if !matches!(ok, Some(Ok(true))) || row.size != Some(data.len() as u64) {
                problem(format!(
                    "{record}: row {} is not true to the disk",
                    row.path
                ));
            }
        }
        if let Some(other) = owners.insert(ns.clone(), info.to_string()) {
            problem(format!("{ns}: in the RECORDs of {other} and {info}"));
        }
        our_paths.insert(ns);
    }
    let mut their_paths = BTreeSet::new();
    for row in parse_record(std::str::from_utf8(&t.data).unwrap()).unwrap() {
        // Rows are relative to pip's lib dir, `lib/python` of the home scheme it installs
        // into before moving that dir's contents to the top.
        let in_home = normalize(&format!("lib/python/{}", row.path));
        let ns = in_home
            .strip_prefix("lib/python/")
            .unwrap_or(&in_home)
            .to_string();
        let pyc = is_pyc(&ns);
        let extra = ns == format!("{info}/REQUESTED") || ns == format!("{info}/direct_url.json");
        if pyc || extra {
            continue;
        }
        if let (Some(h), Some(f)) = (row.hash.as_deref(), theirs.get(&ns)) {
            if !matches!(hash_matches(h, &f.data), Ok(true))
                && !warned
                    .iter()
                    .any(|w| to_pip_namespace(platform, &format!("{site}/{}", w.1)) == ns)
            {
                problem(format!(
                    "{record}: pip's row for {ns} is wrong and envpack did not warn"
                ));
            }
        }
        their_paths.insert(ns);
    }
    // Windows launchers are `.cmd` files next to pip's POSIX scripts.
    let ours_like_pip: BTreeSet<String> = our_paths
        .iter()
        .filter(|p| !(p.ends_with(".cmd") && our_paths.contains(p.trim_end_matches(".cmd"))))
        .map(|p| match platform.launcher {
            LauncherKind::Windows if p.starts_with("bin/") => {
                p.trim_end_matches(".cmd").to_string()
            }
            _ => p.clone(),
        })
        .collect();
    if ours_like_pip != their_paths {
        let only_ours: Vec<_> = ours_like_pip.difference(&their_paths).collect();
        let only_pip: Vec<_> = their_paths.difference(&ours_like_pip).collect();
        problem(format!(
            "{record}: paths differ: only ours {only_ours:?}, only pip's {only_pip:?}"
        ));
    }
}

/// A pyc the bytecode compiler writes (as opposed to one a wheel ships for another version).
fn is_pyc(path: &str) -> bool {
    path.ends_with(".cpython-311.pyc") && path.contains("__pycache__/")
}

/// The `.py` a compiled pyc was made from: `a/__pycache__/m.cpython-311.pyc` -> `a/m.py`.
fn pyc_source(path: &str) -> Option<String> {
    let (dir, file) = match path.rsplit_once("/__pycache__/") {
        Some((dir, file)) => (format!("{dir}/"), file),
        None => (String::new(), path.strip_prefix("__pycache__/")?),
    };
    let module = file.strip_suffix(".cpython-311.pyc")?;
    Some(format!("{dir}{module}.py"))
}

#[test]
fn pyc_sources() {
    assert_eq!(
        pyc_source("a/b/__pycache__/m.cpython-311.pyc").as_deref(),
        Some("a/b/m.py")
    );
    assert_eq!(
        pyc_source("__pycache__/six.cpython-311.pyc").as_deref(),
        Some("six.py")
    );
    assert_eq!(pyc_source("a/__pycache__/m.cpython-312.pyc"), None);
    assert_eq!(pyc_source("a/m.py"), None);
}

/// Both sides compile every installed `.py`: the same pyc files, ours unchecked-hash ones
/// (PEP 552 flags 1, so the normalized mtimes never make them stale), pip's timestamped.
fn check_pycs(ours: &mut Tree, theirs: &mut Tree, problem: &mut dyn FnMut(String)) {
    let split = |tree: &mut Tree| -> Tree {
        let pycs: Vec<String> = tree.keys().filter(|p| is_pyc(p)).cloned().collect();
        pycs.into_iter()
            .filter_map(|p| tree.remove_entry(&p))
            .collect()
    };
    let our_pycs = split(ours);
    let their_pycs = split(theirs);
    for (path, o) in &our_pycs {
        match their_pycs.get(path) {
            None => problem(format!("{path}: envpack compiled it, pip did not")),
            Some(t) => {
                if o.data.get(..4) != t.data.get(..4) || o.data.get(4..8) != Some(&[1, 0, 0, 0][..])
                {
                    problem(format!(
                        "{path}: not an unchecked-hash pyc of the same magic"
                    ));
                }
            }
        }
    }
    for path in their_pycs.keys().filter(|p| !our_pycs.contains_key(*p)) {
        problem(format!("{path}: pip compiled it, envpack did not"));
    }
}

/// The whole comparison for one platform: every install set, then the warnings.
fn differential(platform_name: &str) {
    let Some(dir) = fixture(platform_name) else {
        return;
    };
    let python = python311();
    let platform = platform_by_name(platform_name).unwrap();
    let tags: Vec<String> = fs_err::read_to_string(dir.join("pip-platforms"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut sets: Vec<PathBuf> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    let mut count = 0;
    for set in &sets {
        let (warned, locked) =
            compare_set(&python, &platform, &tags, set, cache.path(), &mut problems);
        warnings.extend(warned);
        count += locked;
    }
    assert!(
        count >= 40,
        "only {count} wheels locked for {platform_name}"
    );
    let got: BTreeSet<Warning> = warnings.into_iter().collect();
    let want: BTreeSet<Warning> = EXPECTED_WARNINGS
        .iter()
        .filter(|w| w.0 == platform_name)
        .map(|w| (w.1.to_string(), w.2.to_string(), w.3.to_string()))
        .collect();
    if got != want {
        problems.push(format!(
            "{platform_name}: warnings {got:?}, expected {want:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} differences from pip:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn linux_x86_64_matches_pip() {
    differential("linux-x86_64");
}

#[test]
fn linux_aarch64_matches_pip() {
    differential("linux-aarch64");
}

#[test]
fn macos_x86_64_matches_pip() {
    differential("macos-x86_64");
}

#[test]
fn macos_arm64_matches_pip() {
    differential("macos-arm64");
}

#[test]
fn windows_x86_64_matches_pip() {
    differential("windows-x86_64");
}
