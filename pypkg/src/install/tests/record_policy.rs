//! The RECORD policy: which disagreements between RECORD and a wheel's files are installed
//! with a warning, and that the installed RECORD always describes the disk.

use super::*;

const SITE: &str = "python/lib/python3.11/site-packages";
const WHEEL: &str = "demo-1.0-py3-none-any.whl";

/// Every row of the installed RECORD (but its own) matches the file on disk, and the rows are
/// exactly `files` (the install's own list) under site-packages' view.
fn assert_record_true_to_disk(env: &Path, dist_info: &str) -> Vec<String> {
    let text = fs_err::read_to_string(env.join(dist_info).join("RECORD")).unwrap();
    let rows = record::parse_record(&text).unwrap();
    let mut paths = Vec::new();
    for r in &rows {
        paths.push(r.path.clone());
        if r.path.ends_with(".dist-info/RECORD") {
            continue;
        }
        let data = fs_err::read(env.join(SITE).join(&r.path)).unwrap();
        let hash = r.hash.as_deref().unwrap();
        assert_eq!(
            record::hash_matches(hash, &data).map_err(|e| e.to_string()),
            Ok(true),
            "{}",
            r.path
        );
        assert_eq!(r.size, Some(data.len() as u64), "{}", r.path);
    }
    paths
}

/// A change to a consistent RECORD's text.
type RecordEdit = Box<dyn Fn(String) -> String>;

#[test]
fn record_disagreements_install_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let good = make_wheel(tmp.path(), WHEEL, &demo_members(), |r| r);
    let clean_env = tmp.path().join("clean");
    let clean = install(&good, &clean_env, &linux()).unwrap();
    assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);

    let other_hash = record::record_hash(b"other bytes");
    let cases: Vec<(RecordEdit, &str, &str)> = vec![
        (
            Box::new(move |r: String| {
                let row = r
                    .lines()
                    .find(|l| l.starts_with("demo/__init__.py,"))
                    .unwrap();
                r.replace(row, &format!("demo/__init__.py,{other_hash},6"))
            }),
            "demo/__init__.py",
            "sha256 does not match RECORD",
        ),
        (
            Box::new(|r| r.replace("demo/__init__.py,sha256=", "demo/__init__.py,sha256=AAAA")),
            "demo/__init__.py",
            "bad hash",
        ),
        (
            Box::new(|r| r.replace("sha256=", "md5=")),
            "demo/show.py",
            "bad hash",
        ),
        (
            Box::new(|r| {
                let row = r.lines().find(|l| l.starts_with("demo/show.py,")).unwrap();
                let (keep, _) = row.rsplit_once(',').unwrap();
                r.replace(row, &format!("{keep},999"))
            }),
            "demo/show.py",
            "size does not match RECORD",
        ),
        (
            Box::new(|r| {
                r.lines()
                    .filter(|l| !l.starts_with("demo/show.py"))
                    .map(|l| format!("{l}\n"))
                    .collect()
            }),
            "demo/show.py",
            "not listed in RECORD",
        ),
        (
            Box::new(|r| format!("{r}demo/ghost.py,{},0\n", record::record_hash(b""))),
            "demo/ghost.py",
            "listed in RECORD but missing from the wheel",
        ),
        (
            Box::new(|r| format!("{r}../../../outside,,\n")),
            "../../../outside",
            "listed in RECORD but missing from the wheel",
        ),
        (
            Box::new(|r| {
                let row = r.lines().find(|l| l.starts_with("demo/show.py,")).unwrap();
                r.replace(row, "demo/show.py,,")
            }),
            "demo/show.py",
            "RECORD has no hash for it",
        ),
        (
            Box::new(|r| {
                let row = r
                    .lines()
                    .find(|l| l.starts_with("demo/tool.sh,"))
                    .unwrap()
                    .to_string();
                format!("{r}{row}\n")
            }),
            "demo/tool.sh",
            "listed twice in RECORD",
        ),
    ];
    for (i, (edit, file, problem)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        fs_err::create_dir_all(&dir).unwrap();
        let whl = make_wheel(&dir, WHEEL, &demo_members(), edit);
        let env = dir.join("env");
        let got = install(&whl, &env, &linux()).unwrap();
        assert!(
            got.warnings
                .iter()
                .any(|w| w.file == file && w.problem.contains(problem)),
            "case {i}: want {file}: {problem} in {:?}",
            got.warnings
        );
        for w in &got.warnings {
            assert_eq!(w.wheel, WHEEL, "warnings name the wheel's file name");
            assert!(w.to_string().contains("installed anyway"), "{w}");
        }
        // The tree is the one the consistent wheel gives: RECORD rows that name nothing are
        // dropped, and RECORD describes what was written.
        assert_eq!(snapshot(&env), snapshot(&clean_env), "case {i}");
        let rows = assert_record_true_to_disk(&env, &got.dist_info);
        assert!(!rows
            .iter()
            .any(|r| r.contains("ghost") || r.contains("outside")));
    }
}

#[test]
fn the_cached_file_is_named_in_errors_and_the_real_name_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut members = demo_members();
    members.push(("../evil.py", b"x", 0o644));
    let bad = make_wheel(tmp.path(), WHEEL, &members, |r| r);
    fs_err::create_dir_all(tmp.path().join("good")).unwrap();
    let good = make_wheel(&tmp.path().join("good"), WHEEL, &demo_members(), |r| r);
    let blobs = tmp.path().join("cache/blobs");
    fs_err::create_dir_all(&blobs).unwrap();
    let blob = blobs.join("5e1f");
    fs_err::copy(&bad, &blob).unwrap();
    let target = InstallTarget {
        env_root: &tmp.path().join("env"),
        platform: &linux(),
        py_minor: 11,
    };
    let err = install_wheel(&blob, WHEEL, &target)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&blob.display().to_string()), "{err}");
    assert!(err.contains("unsafe member path"), "{err}");

    fs_err::copy(&good, &blob).unwrap();
    let err = install_wheel(&blob, "other-1.0-py3-none-any.whl", &target)
        .unwrap_err()
        .to_string();
    assert!(err.contains("file name names \"other\""), "{err}");
    assert!(err.contains(&blob.display().to_string()), "{err}");
    assert!(!tmp.path().join("env").exists(), "nothing written");
    install_wheel(&blob, WHEEL, &target).unwrap();
}

#[test]
fn shipped_pycs_keep_record_true_to_disk_after_compiling() {
    let Some(host) = host_python311() else {
        eprintln!("skipping: no host CPython 3.11");
        return;
    };
    let host = crate::host_python::HostPython::installed(host, linux()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut members = demo_members();
    members.extend([
        (
            "demo/__pycache__/__init__.cpython-311.pyc",
            &b"stale 3.11 pyc"[..],
            0o644,
        ),
        (
            "demo/__pycache__/__init__.cpython-310.pyc",
            b"another version's",
            0o644,
        ),
        (
            "demo/__pycache__/__init__.cpython-311.opt-1.pyc",
            b"optimized",
            0o644,
        ),
        ("demo/__pycache__/gone.cpython-311.pyc", b"no source", 0o644),
        ("demo/legacy.pyc", b"sourceless", 0o644),
    ]);
    let whl = make_wheel(tmp.path(), WHEEL, &members, |r| r);
    let env = tmp.path().join("env");
    let got = install(&whl, &env, &linux()).unwrap();
    let fresh = format!("{SITE}/demo/__pycache__/__init__.cpython-311.pyc");
    assert!(!got.files.contains(&fresh), "compiling writes it anew");
    crate::bytecode::compile_tree(&host, &env, &Default::default()).unwrap();

    let rows = assert_record_true_to_disk(&env, &got.dist_info);
    for kept in [
        "demo/__pycache__/__init__.cpython-310.pyc",
        "demo/__pycache__/__init__.cpython-311.opt-1.pyc",
        "demo/__pycache__/gone.cpython-311.pyc",
        "demo/legacy.pyc",
    ] {
        assert!(rows.iter().any(|r| r == kept), "{kept} in RECORD");
    }
    assert!(!rows
        .iter()
        .any(|r| r == "demo/__pycache__/__init__.cpython-311.pyc"));
    // The compiled pyc is an unchecked-hash one (PEP 552 flags = 1), not the wheel's bytes.
    let pyc = fs_err::read(env.join(&fresh)).unwrap();
    assert_eq!(&pyc[4..8], &1u32.to_le_bytes());
}
