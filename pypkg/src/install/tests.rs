//! The installer's tests: synthetic wheels for every rule, real wheels run by a real CPython.

mod record_policy;

use super::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn relative_paths() {
    let site = "python/lib/python3.11/site-packages";
    for (path, want) in [
        ("python/lib/python3.11/site-packages/a/b.py", "a/b.py"),
        ("python/bin/conan", "../../../bin/conan"),
        (
            "python/include/site/python3.11/X/h.h",
            "../../../include/site/python3.11/X/h.h",
        ),
    ] {
        assert_eq!(relative_to(site, path), want);
    }
    assert_eq!(
        relative_to("python/Lib/site-packages", "python/Scripts/x.cmd"),
        "../../Scripts/x.cmd"
    );
}

/// One member of a synthetic wheel: name, bytes, unix mode.
type Member<'a> = (&'a str, &'a [u8], u32);

/// What an `edit_record` returns to leave RECORD out of the wheel.
const NO_RECORD: &str = "\0no RECORD";

/// Writes a wheel named `file` whose RECORD is computed from `members`, then passed
/// through `edit_record` so tests can corrupt it.
fn make_wheel(
    dir: &Path,
    file: &str,
    members: &[Member],
    edit_record: impl Fn(String) -> String,
) -> PathBuf {
    let path = dir.join(file);
    let dist_info = members
        .iter()
        .find_map(|(n, _, _)| n.split_once(".dist-info/").map(|(d, _)| d))
        .unwrap();
    let mut rows: Vec<RecordEntry> = members
        .iter()
        .map(|(n, d, _)| RecordEntry {
            path: n.to_string(),
            hash: Some(record_hash(d)),
            size: Some(d.len() as u64),
        })
        .collect();
    let record_name = format!("{dist_info}.dist-info/RECORD");
    rows.push(RecordEntry {
        path: record_name.clone(),
        hash: None,
        size: None,
    });
    let record = edit_record(write_record(&rows));
    let record_member =
        (record != NO_RECORD).then_some((record_name.as_str(), record.as_bytes(), 0o644));
    let mut z = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
    for (n, d, mode) in members.iter().copied().chain(record_member) {
        let o = zip::write::SimpleFileOptions::default().unix_permissions(mode & 0o777);
        if mode & 0o170000 == 0o120000 {
            z.add_symlink(n, std::str::from_utf8(d).unwrap(), o)
                .unwrap();
            continue;
        }
        z.start_file(n, o).unwrap();
        z.write_all(d).unwrap();
    }
    z.finish().unwrap();
    path
}

const WHEEL_META: &[u8] =
    b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

fn demo_members() -> Vec<Member<'static>> {
    vec![
        ("demo/__init__.py", b"X = 1\n", 0o644),
        ("demo/tool.sh", b"#!/bin/sh\necho hi\n", 0o755),
        ("demo/show.py", b"import os, sys\ndef main():\n    print('CONAN_HOME=' + os.environ.get('CONAN_HOME', '<unset>'))\n    print('ARGS=' + ' '.join(sys.argv[1:]))\n    return 3\n", 0o644),
        ("demo-1.0.data/platlib/demo_native.py", b"N = 2\n", 0o644),
        ("demo-1.0.data/scripts/demo-py", b"#!python\nimport sys\nprint('script', sys.argv[1:])\n", 0o644),
        ("demo-1.0.data/scripts/demo-sh", b"#!/bin/sh\necho sh\n", 0o644),
        ("demo-1.0.data/headers/demo.h", b"int x;\n", 0o644),
        ("demo-1.0.data/data/share/demo.txt", b"data\n", 0o644),
        ("demo-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: Demo\nVersion: 1.0\n\nbody: x\n", 0o644),
        ("demo-1.0.dist-info/WHEEL", WHEEL_META, 0o644),
        ("demo-1.0.dist-info/entry_points.txt", b"[console_scripts]\ndemo-show = demo.show:main\n[gui_scripts]\ndemo-gui = demo.show:main\n", 0o644),
    ]
}

fn linux() -> Platform {
    crate::platform::by_name("linux-x86_64").unwrap()
}

fn install(wheel: &Path, env: &Path, platform: &Platform) -> Result<InstalledDist, PypkgError> {
    let filename = wheel.file_name().unwrap().to_str().unwrap();
    install_wheel(
        wheel,
        filename,
        &InstallTarget {
            env_root: env,
            platform,
            py_minor: 11,
        },
    )
}

/// Every file under `root` with its mode and bytes, for determinism checks.
fn snapshot(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            out.push((rel, mode, fs_err::read(e.path()).unwrap()));
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    fs_err::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn installs_synthetic_wheel_into_scheme_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let whl = make_wheel(
        tmp.path(),
        "Demo-1.0-py3-none-any.whl",
        &demo_members(),
        |r| r,
    );
    let env = tmp.path().join("env");
    let got = install(&whl, &env, &linux()).unwrap();
    let site = "python/lib/python3.11/site-packages";
    assert_eq!((got.name.as_str(), got.version.as_str()), ("Demo", "1.0"));
    assert_eq!(got.dist_info, format!("{site}/demo-1.0.dist-info"));
    assert_eq!(
        got.console_scripts.len(),
        1,
        "gui scripts are not console scripts"
    );
    for f in [
        format!("{site}/demo/__init__.py"),
        format!("{site}/demo_native.py"),
        "python/bin/demo-py".into(),
        "python/bin/demo-sh".into(),
        "python/bin/demo-show".into(),
        "python/bin/demo-gui".into(),
        "python/include/site/python3.11/Demo/demo.h".into(),
        "python/share/demo.txt".into(),
    ] {
        assert!(got.files.contains(&f), "{f} in {:?}", got.files);
        assert!(env.join(&f).is_file(), "{f}");
    }
    assert_eq!(mode(&env.join(site).join("demo/tool.sh")), 0o755);
    assert_eq!(mode(&env.join(site).join("demo/__init__.py")), 0o644);
    assert_eq!(mode(&env.join("python/bin/demo-sh")), 0o755);
    let py_script = fs_err::read_to_string(env.join("python/bin/demo-py")).unwrap();
    assert!(py_script.starts_with("#!/bin/sh\n''':'\n"));
    assert!(py_script.ends_with("'''\nimport sys\nprint('script', sys.argv[1:])\n"));
    assert_eq!(
        fs_err::read(env.join("python/bin/demo-sh")).unwrap(),
        b"#!/bin/sh\necho sh\n"
    );
    let info = env.join(&got.dist_info);
    assert_eq!(fs_err::read(info.join("INSTALLER")).unwrap(), b"envpack\n");

    // RECORD lists exactly the installed files, each with a hash that matches the disk.
    let text = fs_err::read_to_string(info.join("RECORD")).unwrap();
    let rows = record::parse_record(&text).unwrap();
    let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "RECORD is sorted");
    assert_eq!(rows.len(), got.files.len());
    assert!(paths.contains(&"../../../bin/demo-show"));
    for r in &rows {
        if r.path == "demo-1.0.dist-info/RECORD" {
            assert_eq!((r.hash.as_deref(), r.size), (None, None));
            continue;
        }
        let data = fs_err::read(env.join(site).join(&r.path)).unwrap();
        let ok = record::hash_matches(r.hash.as_deref().unwrap(), &data);
        assert_eq!(ok.map_err(|e| e.to_string()), Ok(true), "{}", r.path);
        assert_eq!(r.size, Some(data.len() as u64));
    }

    // Byte-for-byte deterministic, modes included.
    let env2 = tmp.path().join("env2");
    install(&whl, &env2, &linux()).unwrap();
    assert_eq!(snapshot(&env), snapshot(&env2));

    // A second install into the same tree must not overwrite anything.
    assert!(matches!(
        install(&whl, &env, &linux()),
        Err(PypkgError::Io(_))
    ));
}

#[test]
fn windows_layout_uses_cmd_launchers() {
    let tmp = tempfile::tempdir().unwrap();
    let whl = make_wheel(
        tmp.path(),
        "demo-1.0-py3-none-any.whl",
        &demo_members(),
        |r| r,
    );
    let env = tmp.path().join("env");
    let win = crate::platform::by_name("windows-x86_64").unwrap();
    let got = install(&whl, &env, &win).unwrap();
    assert!(got
        .files
        .contains(&"python/Lib/site-packages/demo/__init__.py".to_string()));
    let cmd = fs_err::read_to_string(env.join("python/Scripts/demo-show.cmd")).unwrap();
    assert!(cmd.contains(r#""%~dp0..\python.exe" -c"#));
    assert!(env.join("python/Scripts/demo-py.cmd").is_file());
    let record = fs_err::read_to_string(env.join(&got.dist_info).join("RECORD")).unwrap();
    assert!(record.contains("../../Scripts/demo-show.cmd,sha256="));
}

fn expect_err(members: &[Member], edit: impl Fn(String) -> String, want: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let whl = make_wheel(tmp.path(), "demo-1.0-py3-none-any.whl", members, edit);
    let err = install(&whl, &tmp.path().join("env"), &linux())
        .unwrap_err()
        .to_string();
    assert!(err.contains(want), "{err:?} should contain {want:?}");
    assert!(
        err.contains("demo-1.0-py3-none-any.whl"),
        "{err:?} names the wheel"
    );
    assert!(
        !tmp.path().join("env").exists(),
        "nothing written for a bad wheel"
    );
}

fn replace_member(
    members: &[Member<'static>],
    name: &str,
    data: &'static [u8],
) -> Vec<Member<'static>> {
    members
        .iter()
        .map(|&(n, d, m)| if n == name { (n, data, m) } else { (n, d, m) })
        .collect()
}

#[test]
fn rejects_unverifiable_wheels() {
    let base = demo_members();
    let with = |extra: Member<'static>| {
        let mut m = base.clone();
        m.push(extra);
        m
    };
    let same = |r: String| r;
    expect_err(
        &base,
        |_| NO_RECORD.into(),
        "missing demo-1.0.dist-info/RECORD",
    );
    expect_err(&base, |r| format!("{r}a,b\n"), "expected 3 columns");
    expect_err(&base, |r| format!("{r}\"open,,\n"), "unterminated");
    for bad in ["../evil.py", "/abs.py", "a\\b.py", "C:/x.py", "a/./b.py"] {
        expect_err(&with((bad, b"x", 0o644)), same, "unsafe member path");
    }
    expect_err(&with(("demo/link", b"target", 0o120777)), same, "symlink");
    expect_err(
        &with(("DEMO/__init__.py", b"y", 0o644)),
        same,
        "only by case",
    );
    expect_err(
        &with(("demo-1.0.data/weird/x", b"y", 0o644)),
        same,
        "unknown .data scheme",
    );
    expect_err(
        &replace_member(
            &base,
            "demo-1.0.dist-info/WHEEL",
            b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n",
        ),
        same,
        "Wheel-Version",
    );
    expect_err(
        &with(("demo-1.0.data/purelib/demo/__init__.py", b"X = 1\n", 0o644)),
        same,
        "written twice",
    );
    expect_err(
        &replace_member(
            &base,
            "demo-1.0.dist-info/METADATA",
            b"Name: other\nVersion: 1.0\n",
        ),
        same,
        "METADATA names",
    );
    expect_err(
        &replace_member(
            &base,
            "demo-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\n../x = a:b\n",
        ),
        same,
        "unsafe script name",
    );
}

#[test]
fn rejects_duplicate_zip_members() {
    let tmp = tempfile::tempdir().unwrap();
    let mut members = demo_members();
    members.push(("demo/dupA.py", b"a", 0o644));
    members.push(("demo/dupB.py", b"a", 0o644));
    let whl = make_wheel(tmp.path(), "demo-1.0-py3-none-any.whl", &members, |r| r);
    // Same-length rename in the raw bytes: local and central headers now both say dupA
    // (RECORD, compressed, keeps listing dupB).
    let mut bytes = fs_err::read(&whl).unwrap();
    let needle = b"demo/dupB.py";
    let mut hits = 0;
    for i in 0..bytes.len() - needle.len() {
        if &bytes[i..i + needle.len()] == needle {
            bytes[i + 8] = b'A';
            hits += 1;
        }
    }
    assert_eq!(hits, 2, "one local and one central header");
    fs_err::write(&whl, bytes).unwrap();
    let err = install(&whl, &tmp.path().join("env"), &linux()).unwrap_err();
    assert!(matches!(err, PypkgError::WheelDuplicate { .. }), "{err}");
}

// ---- real wheels and a real interpreter ----

/// The cached real wheels, or `None` (skip) unless ENVPACK_REQUIRE_FIXTURES is set.
fn fixture_wheels() -> Option<Vec<PathBuf>> {
    let fixtures = std::env::var_os("ENVPACK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.fixtures"));
    let dir = fixtures.join("wheels-c");
    let wheels: Vec<PathBuf> = [
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "jinja2-3.1.6-py3-none-any.whl",
        "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "colorama-0.4.6-py2.py3-none-any.whl",
        "wheel-0.45.1-py3-none-any.whl",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    if wheels.iter().all(|w| w.is_file()) {
        return Some(wheels);
    }
    let msg = format!(
        "real-wheel fixtures missing in {0}: run `pip download --no-deps --only-binary=:all: \
         -d {0} PyYAML==6.0.2 Jinja2==3.1.6 MarkupSafe==3.0.2 colorama==0.4.6 wheel==0.45.1` on linux-x86_64",
        dir.display()
    );
    if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// The host's CPython 3.11 executable, if there is one.
fn host_python311() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.executable if sys.version_info[:2] == (3, 11) else '')",
        ])
        .output()
        .ok()?;
    let exe = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!exe.is_empty()).then(|| PathBuf::from(exe))
}

/// A stand-in `python/bin/python3.11`: the host interpreter without its own site dir,
/// seeing only this env's site-packages (found relative to itself, so moves work).
fn fake_interpreter(env: &Path, host: &Path) {
    let bin = env.join("python/bin");
    fs_err::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\nhere=$(cd -P \"$(dirname \"$0\")\" && pwd -P)\n\
         PYTHONPATH=\"$here/../lib/python3.11/site-packages\" exec '{}' -S \"$@\"\n",
        host.display()
    );
    fs_err::write(bin.join("python3.11"), script).unwrap();
    let exec = std::fs::Permissions::from_mode(0o755);
    fs_err::set_permissions(bin.join("python3.11"), exec).unwrap();
    std::os::unix::fs::symlink("python3.11", bin.join("python3")).unwrap();
}

fn run(cmd: &Path, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(cmd);
    c.args(args)
        .env_remove("CONAN_HOME")
        .env_remove("PYTHONPATH");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn real_wheels_install_and_run_after_move_and_through_symlinks() {
    let Some(wheels) = fixture_wheels() else {
        return;
    };
    let Some(host) = host_python311() else {
        eprintln!("skipping: no host CPython 3.11");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let env = root.join("envs/e1");
    let mut scripts = Vec::new();
    for w in &wheels {
        let got = install(w, &env, &linux()).unwrap();
        let record = fs_err::read_to_string(env.join(&got.dist_info).join("RECORD")).unwrap();
        assert_eq!(record.lines().count(), got.files.len(), "{}", got.name);
        assert!(
            !got.files.iter().any(|f| f.ends_with(".pyc")),
            "no bytecode"
        );
        scripts.extend(got.console_scripts);
    }
    let whl = make_wheel(
        tmp.path(),
        "demo-1.0-py3-none-any.whl",
        &demo_members(),
        |r| r,
    );
    scripts.extend(install(&whl, &env, &linux()).unwrap().console_scripts);
    let names: Vec<&str> = scripts.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["wheel", "demo-show"]);
    fake_interpreter(&env, &host);
    for f in crate::launcher::env_bin_launchers(&linux(), 11, &scripts) {
        let p = env.join(&f.path);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(&p, &f.contents).unwrap();
        let exec = std::fs::Permissions::from_mode(0o755);
        fs_err::set_permissions(&p, exec).unwrap();
    }

    // The packages import from the env, not from the host.
    let code = "import yaml, jinja2, markupsafe, colorama, wheel; print(yaml.__file__); print(markupsafe._speedups.__file__); \
                print(jinja2.Template('{{ 6 * 7 }}').render())";
    let (status, out) = run(&env.join("bin/python3"), &["-c", code], &[]);
    assert_eq!(status, 0, "{out}");
    let yaml = env.join("python/lib/python3.11/site-packages/yaml/__init__.py");
    assert!(out.contains(&yaml.display().to_string()), "{out}");
    assert!(out.contains("42"), "{out}");

    let (status, out) = run(&env.join("python/bin/wheel"), &["version"], &[]);
    assert_eq!((status, out.trim()), (0, "wheel 0.45.1"));

    // Moved tree, invoked through a symlink in another directory and via ROOT/current.
    let moved_root = tmp.path().join("moved root");
    fs_err::rename(&root, &moved_root).unwrap();
    let env = moved_root.join("envs/e1");
    let links = tmp.path().join("links");
    fs_err::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(env.join("python/bin/wheel"), links.join("w")).unwrap();
    let (status, out) = run(&links.join("w"), &["version"], &[]);
    assert_eq!((status, out.trim()), (0, "wheel 0.45.1"));
    std::os::unix::fs::symlink("envs/e1", moved_root.join("current")).unwrap();
    let (status, out) = run(&moved_root.join("current/bin/wheel"), &["version"], &[]);
    assert_eq!((status, out.trim()), (0, "wheel 0.45.1"));

    // bin/ console scripts default CONAN_HOME to ROOT/state/<env-id>/conan-home when
    // that exists, and pass arguments and exit status through.
    let show = moved_root.join("current/bin/demo-show");
    let (status, out) = run(&show, &["a b", "c"], &[]);
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("CONAN_HOME=<unset>\nARGS=a b c"), "{out}");
    let state = moved_root.join("state/e1/conan-home");
    fs_err::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink(&show, links.join("show")).unwrap();
    let (_, out) = run(&links.join("show"), &[], &[]);
    let want = format!("CONAN_HOME={}\n", state.canonicalize().unwrap().display());
    assert!(out.contains(&want), "{out}");
    let (_, out) = run(&show, &[], &[("CONAN_HOME", "/elsewhere")]);
    assert!(
        out.contains("CONAN_HOME=/elsewhere\n"),
        "explicit CONAN_HOME wins: {out}"
    );
    // The wheel's own #!python script was made relocatable too.
    let (status, out) = run(&env.join("python/bin/demo-py"), &["x"], &[]);
    assert_eq!((status, out.trim()), (0, "script ['x']"));
}
