//! Bad input to lock, build and unpack: a clear error, and nothing changed or left behind.

use super::*;

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

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_newcomers_mistakes_are_named_at_their_place_and_change_nothing() {
    let l = locked();
    let spec = spec_text(&PLATFORMS);
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            spec.replace("conan==2.21.0", "conan==9.9.9"),
            vec![
                "envpack.toml:",
                ": packages.requirements: conan==9.9.9: no version of conan on the index http://",
                "matches ==9.9.9; the ",
                "2.21.0",
            ],
        ),
        (
            spec.replace("conan==2.21.0", "conna>=1"),
            vec![": packages.requirements: conna>=1: conna is not on the index (http://"],
        ),
        (
            spec.replace("\"linux-x86_64\"", "\"linux-x86-64\""),
            vec!["envpack.toml:", ": env.platforms: unknown platform \"linux-x86-64\""],
        ),
        (
            spec.replace("profiles/linux-gcc12", "profiles/linux-gcc13"),
            vec![
                ": conan.profiles.default: no file profiles/linux-gcc13 (paths are relative to the spec's directory, ",
            ],
        ),
    ];
    for (i, (text, wants)) in cases.iter().enumerate() {
        let dir = l.dir.join(format!("mistake-{i}"));
        write_spec_dir(&dir, &PLATFORMS);
        fs_err::write(dir.join("envpack.toml"), text).unwrap();
        let before = listing(&dir);
        let out = envpack(&dir, &l.cache, &l.index.url, &l.mirror_url)
            .arg("lock")
            .output()
            .unwrap();
        assert!(!out.status.success(), "case {i}");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect::<Vec<_>>();
        assert_eq!(last.len(), 1, "case {i}: one error line in {err}");
        let line = last[0];
        assert!(line.starts_with("error: envpack.toml:"), "case {i}: {line}");
        for want in wants {
            assert!(line.contains(want), "case {i}: want {want:?} in {line}");
        }
        assert!(
            !err.contains("Because") && !err.contains("{") && !err.contains("Some("),
            "{err}"
        );
        assert_eq!(listing(&dir), before, "case {i} changed the spec directory");
    }

    // No spec where one is looked for: where, and how to name one.
    let empty = l.dir.join("mistake-no-spec");
    fs_err::create_dir_all(&empty).unwrap();
    let out = envpack(&empty, &l.cache, &l.index.url, &l.mirror_url)
        .arg("lock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "no spec file envpack.toml in {}; name the spec with --spec PATH",
            empty.display()
        )),
        "{err}"
    );
    assert!(
        listing(&empty) == vec![String::new()],
        "{:?}",
        listing(&empty)
    );

    // A mistyped artifact path is a missing file, not a lesson in image references, and no
    // root is made.
    let out = envpack(&empty, &l.cache, &l.index.url, &l.mirror_url)
        .args(["unpack", "./dist/nope.envpack.tar", "--root", "R"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("./dist/nope.envpack.tar: no such file or directory"),
        "{err}"
    );
    assert!(!err.contains("registry"), "{err}");
    assert!(
        listing(&empty) == vec![String::new()],
        "{:?}",
        listing(&empty)
    );
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
fn init_writes_a_spec_that_locks_as_it_is_and_is_never_replaced() {
    let l = locked();
    let out = envpack(&l.dir, &l.cache, &l.index.url, &l.mirror_url)
        .args(["init", "first-env"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("packages come from ENVPACK_INDEX_URL"),
        "{text}"
    );
    assert!(
        text.contains("envpack-unpack dist/first-env-linux-x86_64.envpack.tar"),
        "{text}"
    );
    let dir = l.dir.join("first-env");
    let spec = fs_err::read_to_string(dir.join("envpack.toml")).unwrap();
    // The fixture mirror's own release, found by looking into it.
    assert!(
        spec.contains("version = \"3.11.7\"\nbuild = \"envpack1\""),
        "{spec}"
    );
    run(envpack(&dir, &l.cache, &l.index.url, &l.mirror_url).args(["--json", "lock"]));
    assert!(dir.join("envpack.lock").is_file());

    let before = listing(&dir);
    let out = envpack(&l.dir, &l.cache, &l.index.url, &l.mirror_url)
        .args(["init", "first-env"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("envpack.toml already exists"), "{err}");
    assert_eq!(listing(&dir), before);
    assert_eq!(
        fs_err::read_to_string(dir.join("envpack.toml")).unwrap(),
        spec
    );
}
