//! `envpack bundle` end to end on the real fixture env: the bundle checks with `sha256sum -c`,
//! pip downloads the lock's files from its index with their hashes required, `lock` from it
//! gives the same lock, and a build from it with an empty cache and no reachable index or
//! mirror (the sdists rebuilt from the bundle's own copies) gives the same artifact digest.
//! Bad input: nothing written, an earlier bundle kept.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envpack_e2e::unpacked::built;
use envpack_e2e::*;

/// Nothing answers here: a request to it fails, so success shows none was made.
const DEAD_INDEX: &str = "http://127.0.0.1:9/simple/";

/// `envpack` with no index or mirror that works: only the cache and a bundle can serve.
fn cut_off(cache: &Path) -> Command {
    let mut cmd = Command::new(envpack_bin());
    cmd.env("ENVPACK_INDEX_URL", DEAD_INDEX)
        .env("ENVPACK_PYTHON_MIRROR", "http://127.0.0.1:9/python/")
        .env("SOURCE_DATE_EPOCH", FIXTURE_EPOCH)
        .env_remove("ENVPACK_BUNDLE")
        .env_remove("PIP_INDEX_URL")
        .env_remove("UV_INDEX_URL")
        .arg("--cache-dir")
        .arg(cache);
    cmd
}

/// Bundles the fixture env (its spec, lock and warm cache, offline) into `out`.
fn bundle_into(out: &Path) -> Output {
    let b = built();
    cut_off(&b.work.join("cache"))
        .args(["--offline", "bundle", "--spec"])
        .arg(b.work.join("envpack.toml"))
        .arg("--lock")
        .arg(b.work.join("envpack.lock"))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{out:?}");
    out
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn work(name: &str) -> PathBuf {
    let dir = process_dir(&format!("envpack-bundle-{name}-"));
    fs_err::create_dir_all(&dir).unwrap();
    dir
}

/// Every entry of `dir`, relative, sorted (what "nothing changed" compares).
fn listing(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.path().strip_prefix(dir).unwrap().display().to_string()
        })
        .collect();
    all.sort();
    all
}

#[test]
fn a_bundle_rebuilds_the_same_artifact_with_no_network() {
    let w = work("rebuild");
    let bundle = w.join("bundle");
    let said = String::from_utf8_lossy(&ok(bundle_into(&bundle)).stdout).into_owned();
    assert!(said.contains("envpack --bundle"), "{said}");

    // The auditor's own tool checks every file.
    let check = ok(Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&bundle)
        .output()
        .unwrap());
    let checked = String::from_utf8_lossy(&check.stdout);
    let lock: toml::Value =
        toml::from_str(&fs_err::read_to_string(bundle.join("spec/envpack.lock")).unwrap()).unwrap();
    let packages = lock["platform"][0]["package"].as_array().unwrap();
    for p in packages {
        let file = format!("files/{}: OK", p["filename"].as_str().unwrap());
        assert!(checked.contains(&file), "{file} not checked:\n{checked}");
    }
    for b in lock["build-package"].as_array().unwrap() {
        let file = format!("files/{}: OK", b["filename"].as_str().unwrap());
        assert!(checked.contains(&file), "{file} not checked:\n{checked}");
    }
    let python = lock["platform"][0]["python"]["filename"].as_str().unwrap();
    assert!(
        checked.contains(&format!("python/envpack1/{python}: OK")),
        "{checked}"
    );
    assert!(
        checked.contains("spec/profiles/linux-gcc12: OK"),
        "{checked}"
    );

    // pip, the reference installer, reads the index and checks each file's hash.
    let pure: Vec<String> = packages
        .iter()
        .filter(|p| p["filename"].as_str().unwrap().ends_with("-none-any.whl"))
        .map(|p| {
            format!(
                "{}=={} --hash=sha256:{}\n",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["sha256"].as_str().unwrap()
            )
        })
        .collect();
    assert!(pure.len() >= 5, "{pure:?}");
    fs_err::write(w.join("req.txt"), pure.concat()).unwrap();
    let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    ok(Command::new(python3)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args([
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--no-cache-dir",
        ])
        .arg("--index-url")
        .arg(format!("file://{}/simple/", bundle.display()))
        .arg("-r")
        .arg(w.join("req.txt"))
        .arg("-d")
        .arg(w.join("pip"))
        .output()
        .unwrap());
    assert_eq!(fs_err::read_dir(w.join("pip")).unwrap().count(), pure.len());

    // As a plain mirror and index (the environment variables, --offline): the same lock.
    let spec_copy = w.join("spec-copy");
    run(Command::new("cp")
        .arg("-r")
        .arg(bundle.join("spec"))
        .arg(&spec_copy));
    ok(cut_off(&w.join("cache-lock"))
        .env(
            "ENVPACK_INDEX_URL",
            format!("file://{}/simple/", bundle.display()),
        )
        .env(
            "ENVPACK_PYTHON_MIRROR",
            format!("file://{}/python/", bundle.display()),
        )
        .args(["--offline", "lock", "--spec"])
        .arg(spec_copy.join("envpack.toml"))
        .arg("--out")
        .arg(spec_copy.join("again.lock"))
        .output()
        .unwrap());
    assert_eq!(
        fs_err::read_to_string(spec_copy.join("again.lock")).unwrap(),
        fs_err::read_to_string(bundle.join("spec/envpack.lock")).unwrap()
    );

    // With --bundle, an empty cache and nothing else reachable: the same artifact, with the
    // sdists rebuilt from the bundle's copies.
    let out = ok(cut_off(&w.join("cache-empty"))
        .arg("--bundle")
        .arg(&bundle)
        .args(["build", "--spec"])
        .arg(bundle.join("spec/envpack.toml"))
        .arg("--lock")
        .arg(bundle.join("spec/envpack.lock"))
        .arg("--out")
        .arg(w.join("dist"))
        .output()
        .unwrap());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("rebuilding conan-2.21.0.tar.gz from its sdist"),
        "{log}"
    );
    let rebuilt = w.join("dist/openssl-devenv-linux-x86_64.envpack.tar");
    assert_eq!(sha256_file(&rebuilt), sha256_file(&built().artifact));
    let _ = fs_err::remove_dir_all(&w);
}

#[test]
fn a_bundle_tar_is_byte_stable_and_holds_the_directory() {
    let w = work("tar");
    let dir = w.join("bundle");
    ok(bundle_into(&dir));
    let (one, two) = (
        w.join("a/envpack-bundle.tar"),
        w.join("b/envpack-bundle.tar"),
    );
    ok(bundle_into(&one));
    ok(bundle_into(&two));
    assert_eq!(sha256_file(&one), sha256_file(&two));
    // Replacing it in place gives the same bytes again.
    ok(bundle_into(&one));
    assert_eq!(sha256_file(&one), sha256_file(&two));
    let x = w.join("x");
    fs_err::create_dir_all(&x).unwrap();
    run(Command::new("tar").arg("-xf").arg(&one).arg("-C").arg(&x));
    let inner = x.join("envpack-bundle");
    assert_eq!(listing(&inner), listing(&dir));
    assert_eq!(
        fs_err::read(inner.join("SHA256SUMS")).unwrap(),
        fs_err::read(dir.join("SHA256SUMS")).unwrap()
    );
    ok(Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&inner)
        .output()
        .unwrap());
    let _ = fs_err::remove_dir_all(&w);
}

#[test]
fn bad_input_leaves_nothing_and_keeps_an_earlier_bundle() {
    let w = work("bad");
    let b = built();

    // Not a bundle: refused, untouched.
    let other = w.join("other");
    fs_err::create_dir_all(&other).unwrap();
    fs_err::write(other.join("notes.txt"), "mine").unwrap();
    let err = failed(&bundle_into(&other));
    assert!(err.contains("is not an earlier bundle"), "{err}");
    assert_eq!(listing(&other), ["", "notes.txt"]);

    // An earlier bundle survives a failed run over it.
    let earlier = w.join("earlier");
    ok(bundle_into(&earlier));
    let before = listing(&earlier);
    let sums = fs_err::read(earlier.join("SHA256SUMS")).unwrap();
    let lock_text = fs_err::read_to_string(b.work.join("envpack.lock")).unwrap();
    fs_err::copy(b.work.join("envpack.toml"), w.join("envpack.toml")).unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(b.work.join("profiles"))
        .arg(w.join("profiles")));

    // A pinned file that is in no cache and on no reachable index.
    let first_sha = lock_text
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .unwrap();
    let moved = lock_text.replacen(&first_sha, &"0".repeat(64), 1);
    // A file name that climbs out of the bundle.
    let climbing = lock_text.replacen("filename = \"certifi-", "filename = \"../../certifi-", 1);
    for (name, text, want) in [
        ("moved", &moved, "offline"),
        ("climbing", &climbing, "is not a plain file name"),
    ] {
        let lock = w.join(format!("{name}.lock"));
        fs_err::write(&lock, text).unwrap();
        for out in [
            earlier.clone(),
            w.join(format!("{name}-new")),
            w.join(format!("{name}.tar")),
        ] {
            let got = cut_off(&b.work.join("cache"))
                .args(["--offline", "bundle", "--spec"])
                .arg(w.join("envpack.toml"))
                .arg("--lock")
                .arg(&lock)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            let err = failed(&got);
            assert!(err.contains(want), "{name}: {err}");
            if out == earlier {
                assert_eq!(listing(&earlier), before, "{name}");
                assert_eq!(fs_err::read(earlier.join("SHA256SUMS")).unwrap(), sums);
            } else {
                assert!(!out.exists(), "{name}: {} was left", out.display());
            }
        }
    }
    assert!(
        !listing(&w).iter().any(|e| e.contains(".envpack-bundle-")),
        "a work dir was left: {:?}",
        listing(&w)
    );
    // The climbing name pointed two levels above files/ of a bundle in `w`: nothing there.
    for dir in [&w, w.parent().unwrap()] {
        let climbed: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|e| e.starts_with("certifi-"))
            .collect();
        assert!(climbed.is_empty(), "{}: {climbed:?}", dir.display());
    }

    // A tar path holding something else is refused and left as it was.
    let notes = w.join("notes.tar");
    fs_err::write(&notes, "mine").unwrap();
    let err = failed(&bundle_into(&notes));
    assert!(
        err.contains("is not an earlier bundle of that name"),
        "{err}"
    );
    assert_eq!(fs_err::read_to_string(&notes).unwrap(), "mine");

    // An endless file planted in a bundle is cut off at its pinned size: nothing is built.
    let planted = w.join("planted");
    run(Command::new("cp").arg("-a").arg(&earlier).arg(&planted));
    let wheel = fs_err::read_dir(planted.join("files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("certifi-"))
        .unwrap();
    fs_err::remove_file(&wheel).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &wheel).unwrap();
    let err = failed(
        &cut_off(&w.join("cache-planted"))
            .arg("--bundle")
            .arg(&planted)
            .args(["build", "--spec"])
            .arg(planted.join("spec/envpack.toml"))
            .arg("--lock")
            .arg(planted.join("spec/envpack.lock"))
            .arg("--out")
            .arg(w.join("planted-dist"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("longer than the"), "{err}");
    assert!(!w.join("planted-dist").exists());

    // --bundle names a bundle or fails; it is the only index.
    let err = failed(
        &cut_off(&w.join("c"))
            .arg("--bundle")
            .arg(&other)
            .args(["build", "--spec"])
            .arg(earlier.join("spec/envpack.toml"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("is not a bundle written by `envpack bundle`"),
        "{err}"
    );
    let err = failed(
        &cut_off(&w.join("c"))
            .arg("--bundle")
            .arg(&earlier)
            .args(["build", "--index-url", "http://127.0.0.1:9/", "--spec"])
            .arg(earlier.join("spec/envpack.toml"))
            .arg("--lock")
            .arg(earlier.join("spec/envpack.lock"))
            .arg("--out")
            .arg(w.join("never"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("--index-url and a bundle"), "{err}");
    assert!(!w.join("never").exists());
    let _ = fs_err::remove_dir_all(&w);
}
