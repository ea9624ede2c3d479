//! What the artifact is made of: plain tar of layers, per-platform layouts, gzip vs zstd.

use super::*;

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
