//! Differential test of the wheel installer against pip, the reference installer: 50+ popular
//! real wheels per platform (scripts/fixtures/differential.sh downloads them) are installed by
//! envpack's installer (then bytecode-compiled as a build does) and by
//! `pip install --no-deps --target DIR --platform …`, and the two trees are compared file by
//! file: same files, same bytes, same modes, `.data` files where pip puts them. The differences
//! the README documents are each checked for what they must be; everything else must be equal.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "pip_differential/tree.rs"]
mod tree;

use envpack::host_python::HostPython;
use envpack::install::record::{hash_matches, parse_record};
use envpack::install::{install_wheel, InstallTarget, InstallWarning, InstalledDist};
use envpack::platform::{self, LauncherKind, Platform};
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
    let root = std::env::var_os("ENVPACK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.fixtures"));
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

/// The machine's CPython 3.11 (pip's interpreter and the bytecode compiler of both sides).
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

/// The sha256-pinned wheels of one install set, sorted by file name.
fn wheels_of(set_dir: &Path) -> Vec<PathBuf> {
    let mut wheels: Vec<PathBuf> = fs_err::read_dir(set_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    wheels.sort();
    wheels
}

/// Compares one install set; pushes every difference it finds onto `problems`.
fn compare_set(
    python: &Path,
    platform: &Platform,
    tags: &[String],
    set_dir: &Path,
    problems: &mut Vec<String>,
    warnings: &mut Vec<InstallWarning>,
) {
    let wheels = wheels_of(set_dir);
    assert!(!wheels.is_empty(), "no wheels in {}", set_dir.display());
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("envpack");
    let target = InstallTarget {
        env_root: &env,
        platform,
        py_minor: 11,
    };
    let mut dists: Vec<(InstalledDist, WheelFacts)> = Vec::new();
    let mut launchers = BTreeSet::new();
    for w in &wheels {
        let filename = w.file_name().unwrap().to_str().unwrap();
        let dist = install_wheel(w, filename, &target)
            .unwrap_or_else(|e| panic!("envpack install of {filename}: {e}"));
        let info = dist.dist_info.rsplit('/').next().unwrap().to_string();
        warnings.extend(dist.warnings.iter().cloned());
        launchers.extend(dist.launchers.iter().cloned());
        let facts = wheel_facts(w, &info);
        dists.push((dist, facts));
    }
    let host = HostPython::installed(
        python.to_path_buf(),
        platform::by_name("linux-x86_64").unwrap(),
    )
    .unwrap();
    // As a build does: everything but the launchers.
    envpack::bytecode::compile_tree(&host, &env, &launchers).unwrap();
    let pip_dir = tmp.path().join("pip");
    pip_install(python, tags, &wheels, &pip_dir);

    let ours: Tree = walk(&env)
        .into_iter()
        .map(|(p, f)| (to_pip_namespace(platform, &p), f))
        .collect();
    let mut theirs = walk(&pip_dir);
    let mut ours = ours;
    let set = set_dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut problem = |what: String| problems.push(format!("{}/{set}: {what}", platform.name));

    for (dist, facts) in &dists {
        check_dist(
            platform,
            &env,
            dist,
            facts,
            &mut ours,
            &mut theirs,
            &mut problem,
        );
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
}

/// Checks (and removes from both trees) one distribution's metadata that is documented to
/// differ: INSTALLER, REQUESTED, direct_url.json, RECORD, entry-point launchers and `#!python`
/// scripts.
fn check_dist(
    platform: &Platform,
    env: &Path,
    dist: &InstalledDist,
    facts: &WheelFacts,
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
                let text = String::from_utf8_lossy(&o);
                if !text.contains(module.as_str()) || !text.contains(attr.as_str()) {
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

    check_records(platform, env, dist, info, ours, theirs, problem);
}

/// Our RECORD lists exactly this dist's installed files with hashes true to the disk; pip's
/// lists the same paths (plus its pycs, REQUESTED, direct_url.json); where pip's hash is not
/// true to its disk, envpack warned about that file.
fn check_records(
    platform: &Platform,
    env: &Path,
    dist: &InstalledDist,
    info: &str,
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
            if ok != Some(Ok(true)) || row.size != Some(data.len() as u64) {
                problem(format!(
                    "{record}: row {} is not true to the disk",
                    row.path
                ));
            }
        }
        our_paths.insert(ns);
    }
    let files: BTreeSet<String> = dist
        .files
        .iter()
        .map(|f| to_pip_namespace(platform, f))
        .collect();
    if files != our_paths {
        problem(format!("{record}: rows are not the installed files"));
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
            if hash_matches(h, &f.data) != Ok(true)
                && !dist
                    .warnings
                    .iter()
                    .any(|w| to_pip_namespace(platform, &format!("{site}/{}", w.file)) == ns)
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
    let platform = platform::by_name(platform_name).unwrap();
    let tags: Vec<String> = fs_err::read_to_string(dir.join("pip-platforms"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
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
        count += wheels_of(set).len();
        compare_set(&python, &platform, &tags, set, &mut problems, &mut warnings);
    }
    assert!(count >= 40, "only {count} wheels for {platform_name}");
    let got: BTreeSet<(String, String, String)> = warnings
        .iter()
        .map(|w| (w.wheel.clone(), w.file.clone(), w.problem.clone()))
        .collect();
    let want: BTreeSet<(String, String, String)> = EXPECTED_WARNINGS
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
