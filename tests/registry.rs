//! Registry push and pull end to end against a real Debian `docker-registry` on 127.0.0.1:
//! `envpack push` of the fixture image, checked with `skopeo` and `umoci`, a no-op re-push,
//! cross-repository mounts, and `envpack unpack REF|DIR|FILE` giving the tarball's tree.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use envpack_e2e::registry::Registry;
use envpack_e2e::*;
use serde_json::Value;

#[path = "registry/audit.rs"]
mod audit;
#[path = "registry/credentials.rs"]
mod credentials;

const NAME: &str = "openssl-devenv";
const TAG: &str = "3.11.7-conan2.21.0";
const PLATFORMS: [&str; 2] = ["linux-x86_64", "linux-aarch64"];
const GCC12: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";

/// A locked spec and the servers and cache every build here shares.
struct Locked {
    dir: PathBuf,
    cache: PathBuf,
    index: IndexServer,
    mirror_url: String,
}

fn write_spec_dir(dir: &Path, profile: &str) {
    write_fixture_spec_dir(dir, &PLATFORMS, profile);
}

fn envpack(l: &Locked, dir: &Path) -> Command {
    envpack_cmd(dir, &l.cache, &l.index.url, &l.mirror_url)
}

fn locked() -> &'static Locked {
    static LOCKED: OnceLock<Locked> = OnceLock::new();
    LOCKED.get_or_init(|| {
        let index = IndexServer::start(&index_dir(), &[]);
        let dir = envpack_e2e::process_dir("envpack-registry-test-");
        write_spec_dir(&dir.join("spec"), GCC12);
        let l = Locked {
            cache: dir.join("cache"),
            dir,
            index,
            mirror_url: format!("file://{}", python_mirror().display()),
        };
        run(envpack(&l, &l.dir.join("spec")).arg("lock"));
        l
    })
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Builds `spec`'s image in `format` at `out`; returns `build --json`'s image object.
fn build(l: &Locked, spec: &Path, format: &str, out: &Path, platforms: &[&str]) -> Value {
    let mut cmd = envpack(l, spec);
    cmd.args(["--json", "build", "--format", format, "--out"])
        .arg(out)
        .env(
            "ENVPACK_IMAGE_SOURCE",
            "https://git.example.org/openssl-devenv",
        );
    for p in platforms {
        cmd.args(["--platform", p]);
    }
    json_of(&run(&mut cmd))["image"].clone()
}

/// The two-platform layout, built once.
fn layout() -> &'static (PathBuf, Value) {
    static BUILT: OnceLock<(PathBuf, Value)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let l = locked();
        let out = l.dir.join("layout");
        let image = build(l, &l.dir.join("spec"), "oci", &out, &PLATFORMS);
        (out, image)
    })
}

/// `envpack --json push REF ARGS…`, parsed.
fn push(l: &Locked, reference: &str, args: &[&str]) -> Value {
    json_of(&run(envpack(l, &l.dir)
        .args(["--json", "push", reference])
        .args(args)))
}

fn unpack(l: &Locked, source: &str, root: &Path) -> Value {
    json_of(&run(envpack(l, &l.dir)
        .args(["--json", "unpack", source, "--root"])
        .arg(root)))
}

fn verify_root(root: &Path) {
    run(Command::new(envpack_bin())
        .arg("verify")
        .arg("--root")
        .arg(root));
}

fn skopeo_raw(image: &str) -> Vec<u8> {
    run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(image))
    .stdout
}

fn sha256_bytes(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap()
}

/// Every file and link under `dir`, with contents, for tree comparisons.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let out = run(Command::new("sh").current_dir(dir).args([
        "-c",
        "find . \\( -type f -exec sha256sum {} + \\) -o \\( -type l -printf '%l  %p\\n' \\) -o \\( -type d -printf 'dir  %p\\n' \\) | LC_ALL=C sort -k2",
    ]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (a, b) = l.split_once("  ").unwrap();
            (b.to_string(), a.to_string())
        })
        .collect()
}

#[test]
fn push_inspect_repush_and_unpack_from_the_registry() {
    let l = locked();
    let (dir, image) = layout();
    let reg = Registry::start();
    let reference = reg.reference("team/openssl-devenv", TAG);
    let digest = image["digest"].as_str().unwrap();

    let first = push(l, &reference, &["--layout", dir.to_str().unwrap()]);
    assert_eq!(first["digest"], digest);
    assert_eq!(first["tag"], TAG);
    assert!(first["blobs_uploaded"].as_u64().unwrap() >= 11, "{first}");
    assert_eq!(first["blobs_skipped"], 0);
    let blob_bytes: u64 = fs_err::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        first["bytes_uploaded"].as_u64().unwrap() > blob_bytes / 2,
        "{first}"
    );

    // The registry serves exactly the layout's bytes.
    let raw = skopeo_raw(&format!("docker://{reference}"));
    assert_eq!(sha256_bytes(&raw), digest);
    let index: Value = serde_json::from_slice(&raw).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["arm64", "amd64"]);
    assert_eq!(index["annotations"]["org.opencontainers.image.title"], NAME);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let local = fs_err::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
        let remote = skopeo_raw(&format!("docker://{}/team/openssl-devenv@{d}", reg.host));
        assert_eq!(remote, local, "manifest {d}");
    }
    let one = json_of(&run(Command::new("skopeo")
        .args(["--override-arch", "amd64", "--override-os", "linux"])
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))));
    assert_eq!(one["Layers"].as_array().unwrap().len(), 5);
    assert_eq!(one["Labels"], Value::Null);
    assert_eq!(
        one["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.as_str().unwrap().starts_with("ENVPACK_ENV="))
            .count(),
        1
    );

    // Every other index.json entry (SBOM referrers) went along by digest, and each subject
    // got a tag-schema fallback index since distribution 2.8 has no referrers API.
    let entries = read_json(&dir.join("index.json"));
    for e in entries["manifests"].as_array().unwrap().iter().skip(1) {
        let d = e["digest"].as_str().unwrap();
        let m = read_json(&dir.join("blobs/sha256").join(&d[7..]));
        let Some(subject) = m["subject"]["digest"].as_str() else {
            continue;
        };
        let fallback = format!(
            "docker://{}/team/openssl-devenv:{}",
            reg.host,
            subject.replacen(':', "-", 1)
        );
        let listed: Value = serde_json::from_slice(&skopeo_raw(&fallback)).unwrap();
        assert!(
            listed["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["digest"] == d),
            "{listed}"
        );
        assert!(first["referrer_tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap() == subject.replacen(':', "-", 1)));
    }

    // umoci accepts what skopeo copies back out of the registry.
    let copy = l.dir.join("copied");
    run(Command::new("skopeo")
        .args(["--override-arch", "amd64", "--override-os", "linux"])
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:{TAG}", copy.display())));
    let bundle = l.dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{TAG}", copy.display()))
        .arg(&bundle));
    assert!(bundle
        .join("rootfs/opt/envpack")
        .join(NAME)
        .join("current/envpack.json")
        .is_file());

    // Pushing again uploads nothing and rewrites nothing.
    let started = std::time::Instant::now();
    let again = push(l, &reference, &["--layout", dir.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!(again["blobs_uploaded"], 0, "{again}");
    assert_eq!(again["bytes_uploaded"], 0);
    assert_eq!(again["manifests_pushed"], 0, "{again}");
    assert_eq!(again["blobs_skipped"], first["blobs_uploaded"]);
    assert_eq!(again["digest"], digest);
    assert!(took.as_secs_f64() < 5.0, "no-op push took {took:?}");

    // Another repository on the same registry: every blob is mounted, none uploaded.
    let other = reg.reference("other/openssl-devenv", "mounted");
    let mounted = push(
        l,
        &other,
        &[
            "--layout",
            dir.to_str().unwrap(),
            "--mount-from",
            "team/openssl-devenv",
        ],
    );
    assert_eq!(mounted["blobs_uploaded"], 0, "{mounted}");
    assert_eq!(
        mounted["blobs_mounted"], first["blobs_uploaded"],
        "{mounted}"
    );
    assert_eq!(
        sha256_bytes(&skopeo_raw(&format!("docker://{other}"))),
        digest
    );

    // Pull + unpack from the registry gives the tarball's env, byte for byte.
    let from_registry = l.dir.join("root-registry");
    let out = unpack(l, &reference, &from_registry);
    verify_root(&from_registry);
    let tarballs = l.dir.join("tarballs");
    let built = json_of(&run(envpack(l, &l.dir.join("spec"))
        .args(["--json", "build", "--platform", "linux-x86_64", "--out"])
        .arg(&tarballs)));
    let artifact = built["artifacts"][0]["path"].as_str().unwrap();
    let from_tarball = l.dir.join("root-tarball");
    let out_t = unpack(l, artifact, &from_tarball);
    assert_eq!(out["env_id"], out_t["env_id"]);
    let env_id = out["env_id"].as_str().unwrap();
    assert_eq!(
        tree(&from_registry.join("envs").join(env_id)),
        tree(&from_tarball.join("envs").join(env_id))
    );

    // The same from the layout directory and from an oci-archive.
    let from_layout = l.dir.join("root-layout");
    assert_eq!(
        unpack(l, dir.to_str().unwrap(), &from_layout)["env_id"],
        env_id
    );
    verify_root(&from_layout);
    let archive = l.dir.join("image.oci.tar");
    build(l, &l.dir.join("spec"), "oci-archive", &archive, &PLATFORMS);
    let from_archive = l.dir.join("root-archive");
    assert_eq!(
        unpack(l, archive.to_str().unwrap(), &from_archive)["env_id"],
        env_id
    );
    verify_root(&from_archive);
    // An oci-archive pushes the same digests as the layout.
    let pushed_archive = push(
        l,
        &reg.reference("team/openssl-devenv", "from-archive"),
        &["--archive", archive.to_str().unwrap()],
    );
    assert_eq!(pushed_archive["digest"], digest);
    assert_eq!(pushed_archive["blobs_uploaded"], 0, "{pushed_archive}");
}

#[test]
fn a_profile_change_uploads_only_the_layers_it_changes() {
    let l = locked();
    let reg = Registry::start();
    let reference = reg.reference("team/env", "v1");
    let one = l.dir.join("one-gcc12");
    let base = build(l, &l.dir.join("spec"), "oci", &one, &["linux-x86_64"]);
    push(l, &reference, &["--layout", one.to_str().unwrap()]);

    let spec = l.dir.join("spec-gcc13");
    write_spec_dir(
        &spec,
        &GCC12.replace("compiler.version=12", "compiler.version=13"),
    );
    run(envpack(l, &spec).arg("lock"));
    let changed_dir = l.dir.join("one-gcc13");
    let changed = build(l, &spec, "oci", &changed_dir, &["linux-x86_64"]);
    let before = &base["platforms"][0]["layers"];
    let after = &changed["platforms"][0]["layers"];
    let report = push(
        l,
        &reg.reference("team/env", "v2"),
        &["--layout", changed_dir.to_str().unwrap()],
    );
    let uploaded: Vec<&str> = report["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["action"] == "uploaded")
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    // cpython and packages keep their digests and stay in the registry.
    for i in 0..2 {
        assert_eq!(before[i]["digest"], after[i]["digest"]);
        assert!(!uploaded.contains(&after[i]["digest"].as_str().unwrap()));
    }
    // conan, meta and root change (the env id is in the latter two), plus the config.
    for i in 2..5 {
        assert!(
            uploaded.contains(&after[i]["digest"].as_str().unwrap()),
            "{report}"
        );
    }
    let small: u64 = (2..5).map(|i| after[i]["size"].as_u64().unwrap()).sum();
    let big: u64 = (0..2).map(|i| after[i]["size"].as_u64().unwrap()).sum();
    let bytes = report["bytes_uploaded"].as_u64().unwrap();
    assert!(
        bytes >= small && bytes < small + 64 * 1024,
        "{bytes} vs {small}"
    );
    assert!(
        bytes * 10 < big,
        "uploaded {bytes} bytes of a {big}-byte stable part"
    );
}

#[test]
fn bad_inputs_fail_cleanly() {
    let l = locked();
    let (dir, _) = layout();
    let reg = Registry::start();
    let fails = |cmd: &mut Command| -> String {
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{cmd:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // A layer damaged in the layout: the push refuses (the registry checks the digest) and
    // the tag never appears.
    let damaged = l.dir.join("damaged");
    run(Command::new("cp").arg("-a").arg(dir).arg(&damaged));
    let manifest = {
        let top = read_json(&damaged.join("index.json"));
        let idx = read_json(
            &damaged
                .join("blobs/sha256")
                .join(&top["manifests"][0]["digest"].as_str().unwrap()[7..]),
        );
        let m = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == "amd64")
            .unwrap()
            .clone();
        read_json(
            &damaged
                .join("blobs/sha256")
                .join(&m["digest"].as_str().unwrap()[7..]),
        )
    };
    let layer = damaged
        .join("blobs/sha256")
        .join(&manifest["layers"][2]["digest"].as_str().unwrap()[7..]);
    let mut bytes = fs_err::read(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs_err::write(&layer, &bytes).unwrap();
    let reference = reg.reference("team/damaged", TAG);
    let err = fails(
        envpack(l, &l.dir)
            .args(["push", &reference, "--layout"])
            .arg(&damaged),
    );
    assert!(err.contains("400") || err.contains("digest"), "{err}");
    let tags = http_get(&reg.base, "/v2/team/damaged/tags/list", None);
    assert!(
        tags.status == 404 || !String::from_utf8_lossy(&tags.body).contains(TAG),
        "tag left behind: {}",
        String::from_utf8_lossy(&tags.body)
    );

    // Unpacking the damaged layout fails on the digest and leaves no root behind.
    let root = l.dir.join("root-damaged");
    let err = fails(
        envpack(l, &l.dir)
            .args(["unpack", damaged.to_str().unwrap(), "--root"])
            .arg(&root),
    );
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(!root.join("current").exists());

    // Unknown tag, unreachable registry, non-loopback plain HTTP.
    let err = fails(
        envpack(l, &l.dir)
            .args(["unpack", &reg.reference("team/none", "x"), "--root"])
            .arg(&root),
    );
    assert!(err.contains("404"), "{err}");
    let err = fails(
        envpack(l, &l.dir)
            .args(["push", "127.0.0.1:9/team/x:y", "--layout"])
            .arg(dir),
    );
    assert!(err.contains("127.0.0.1:9"), "{err}");
    let err = fails(
        envpack(l, &l.dir)
            .args(["push", "team/x:y", "--layout"])
            .arg(dir),
    );
    assert!(err.contains("registry host"), "{err}");
}

#[test]
fn transient_registry_failures_are_retried_and_permanent_ones_leave_no_tag() {
    use envpack_e2e::registry::{FlakyProxy, ProxyFault};
    let l = locked();
    let (dir, image) = layout();
    let reg = Registry::start();
    let faults = vec![
        ProxyFault::Unavailable,
        ProxyFault::Drop,
        ProxyFault::Unavailable,
    ];
    let flaky = FlakyProxy::start(&reg.host, faults, false);
    let out = run(envpack(l, &l.dir)
        .args([
            "--json",
            "push",
            &format!("{}/team/flaky:{TAG}", flaky.host),
            "--layout",
        ])
        .arg(dir));
    assert_eq!(json_of(&out)["digest"], image["digest"]);
    assert_eq!(flaky.faults_served(), 3);
    let raw = skopeo_raw(&format!("docker://{}/team/flaky:{TAG}", reg.host));
    assert_eq!(sha256_bytes(&raw), image["digest"].as_str().unwrap());

    // Pulling through faults: the same env arrives and verifies.
    let faults = vec![
        ProxyFault::Drop,
        ProxyFault::Unavailable,
        ProxyFault::Drop,
        ProxyFault::Unavailable,
    ];
    let flaky_pull = FlakyProxy::start(&reg.host, faults, false);
    let root = tempfile::tempdir().unwrap();
    unpack(
        l,
        &format!("{}/team/flaky:{TAG}", flaky_pull.host),
        &root.path().join("root"),
    );
    verify_root(&root.path().join("root"));
    assert_eq!(flaky_pull.faults_served(), 4);

    // A registry that keeps failing: a clear error after bounded retries, and no tag.
    let down = FlakyProxy::start(&reg.host, vec![ProxyFault::Unavailable], true);
    let started = std::time::Instant::now();
    let out = envpack(l, &l.dir)
        .args([
            "push",
            &format!("{}/team/down:{TAG}", down.host),
            "--layout",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("503"), "{err}");
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert!(
        down.faults_served() >= 5,
        "{} attempts",
        down.faults_served()
    );
    let tags = http_get(&reg.base, "/v2/team/down/tags/list", None);
    assert_eq!(tags.status, 404, "{}", String::from_utf8_lossy(&tags.body));
}
