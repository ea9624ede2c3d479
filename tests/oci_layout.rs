//! OCI output end to end: `envpack build --format oci|oci-archive` from the real fixtures, checked
//! with the real `skopeo` and `umoci`, and the real Conan run from the unpacked image rootfs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use envpack_e2e::*;
use serde_json::Value;

const EPOCH: &str = FIXTURE_EPOCH;
const NAME: &str = "openssl-devenv";
const TAG: &str = "3.11.7-conan2.21.0";
const PLATFORMS: [&str; 2] = ["linux-x86_64", "linux-aarch64"];
const GCC12: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";

/// A locked spec directory plus the servers and cache every build here shares.
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
        let mirror = python_mirror();
        let index = IndexServer::start(&index_dir(), &[]);
        let dir = envpack_e2e::process_dir("envpack-oci-");
        let spec = dir.join("spec");
        write_spec_dir(&spec, GCC12);
        let l = Locked {
            cache: dir.join("cache"),
            dir,
            index,
            mirror_url: format!("file://{}", mirror.display()),
        };
        run(envpack(&l, &spec).arg("lock"));
        l
    })
}

/// What `build --json` reported about the image.
fn build_image(l: &Locked, spec: &Path, extra: &[&str]) -> Value {
    let out = run(envpack(l, spec).args(["--json", "build"]).args(extra).env(
        "ENVPACK_IMAGE_SOURCE",
        "https://git.example.org/openssl-devenv",
    ));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["image"].clone()
}

/// The two-platform layout, built once.
fn layout() -> &'static (PathBuf, Value) {
    static BUILT: OnceLock<(PathBuf, Value)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let l = locked();
        let out = l.dir.join("layout");
        let mut args = vec!["--format", "oci", "--out"];
        let out_s = out.to_str().unwrap().to_string();
        args.push(&out_s);
        for p in PLATFORMS {
            args.extend(["--platform", p]);
        }
        let image = build_image(l, &l.dir.join("spec"), &args);
        (out, image)
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The manifest of `arch` in a layout (index.json points at an image index, or straight at
/// the manifest when the layout has one platform).
fn manifest_for(layout: &Path, arch: &str) -> Value {
    let top = read_json(&layout.join("index.json"));
    let target = read_json(&blob(
        layout,
        top["manifests"][0]["digest"].as_str().unwrap(),
    ));
    if top["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json" {
        return target;
    }
    let m = target["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} in {target}"));
    read_json(&blob(layout, m["digest"].as_str().unwrap()))
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn skopeo_sees_an_index_over_both_platforms() {
    let (dir, image) = layout();
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:{TAG}", dir.display())));
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<(String, Option<String>)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["platform"]["variant"].as_str().map(str::to_string),
            )
        })
        .collect();
    // Sorted by platform name: linux-aarch64, then linux-x86_64.
    assert_eq!(
        platforms,
        [
            ("arm64".to_string(), Some("v8".to_string())),
            ("amd64".to_string(), None)
        ]
    );
    let a = &index["annotations"];
    assert_eq!(
        a["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(a["org.opencontainers.image.title"], NAME);
    assert_eq!(a["org.opencontainers.image.version"], TAG);
    assert_eq!(
        a["org.opencontainers.image.source"],
        "https://git.example.org/openssl-devenv"
    );
    assert!(a.get("org.opencontainers.image.base.name").is_none());
    // The bytes are canonical JSON: what we hash is what skopeo reads.
    let digest = image["digest"].as_str().unwrap();
    assert_eq!(
        format!("sha256:{}", sha256_bytes(&raw.stdout)),
        digest,
        "index digest"
    );
    assert_eq!(
        fs_err::read_to_string(dir.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );

    // One platform (the host's) through skopeo's parsed view.
    let out = run(Command::new("skopeo")
        .args([
            "--override-arch",
            "amd64",
            "--override-os",
            "linux",
            "inspect",
        ])
        .arg(format!("oci:{}:{TAG}", dir.display())));
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(one["Architecture"], "amd64");
    assert_eq!(one["Os"], "linux");
    assert_eq!(one["Layers"].as_array().unwrap().len(), 5);
    assert_eq!(one["Created"], "2023-11-14T22:13:20Z");
    let env: Vec<&str> = one["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env[0].starts_with(&format!("PATH=/opt/envpack/{NAME}/bin:/usr/local/sbin:")),
        "{env:?}"
    );
    assert!(env.iter().any(|e| e.starts_with("ENVPACK_ENV=")), "{env:?}");
    // gzip layers by default.
    let m = manifest_for(dir, "amd64");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    let cfg = read_json(&blob(dir, m["config"]["digest"].as_str().unwrap()));
    let history: Vec<&str> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "envpack: cpython",
            "envpack: packages",
            "envpack: conan",
            "envpack: meta",
            "envpack: root"
        ]
    );
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 5);
    assert!(cfg["config"].get("Entrypoint").is_none() && cfg["config"].get("Cmd").is_none());
}

fn sha256_bytes(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

fn config_env(dir: &Path) -> BTreeMap<String, String> {
    let m = manifest_for(dir, "amd64");
    let cfg = read_json(&blob(dir, m["config"]["digest"].as_str().unwrap()));
    cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A one-platform layout (linux-x86_64) of the same spec with the default profile changed to
/// gcc 13, built once: (spec dir, layout dir).
fn single() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let l = locked();
        let spec = l.dir.join("spec-gcc13");
        write_spec_dir(
            &spec,
            &GCC12.replace("compiler.version=12", "compiler.version=13"),
        );
        run(envpack(l, &spec).arg("lock"));
        let out = spec.join("img");
        build_image(
            l,
            &spec,
            &[
                "--format",
                "oci",
                "--out",
                out.to_str().unwrap(),
                "--platform",
                "linux-x86_64",
            ],
        );
        (spec, out)
    })
}

#[test]
fn umoci_unpacks_and_conan_runs_from_the_rootfs() {
    let l = locked();
    let (_, dir) = single();
    let bundle = l.dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{TAG}", dir.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let root = rootfs.join("opt/envpack").join(NAME);
    let env = config_env(dir);
    let env_id = &env["ENVPACK_ENV"];
    assert_eq!(
        fs_err::read_link(root.join("current")).unwrap(),
        Path::new("envs").join(env_id)
    );
    assert!(root.join("current/envpack.json").is_file());
    let info = read_json(&root.join("current/envpack.json"));
    assert_eq!(&info["env_id"], env_id.as_str());
    // The config's CONAN_HOME is the seeded state dir, seen from inside the rootfs.
    let conan_home = rootfs.join(env["CONAN_HOME"].trim_start_matches('/'));
    assert!(
        conan_home.join("profiles/default").is_file(),
        "{}",
        conan_home.display()
    );
    let conan = |args: &[&str], home: Option<&Path>| {
        let mut cmd = Command::new(root.join("bin/conan"));
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", l.dir.join("home"));
        if let Some(h) = home {
            cmd.env("CONAN_HOME", h);
        }
        String::from_utf8_lossy(&run(&mut cmd).stdout).into_owned()
    };
    assert_eq!(
        conan(&["--version"], Some(&conan_home)).trim(),
        "Conan version 2.21.0"
    );
    let profile = conan(&["profile", "show"], Some(&conan_home));
    assert!(profile.contains("compiler.version=13"), "{profile}");
    // Without CONAN_HOME the env's launcher finds the same state dir by itself.
    let remotes = conan(&["remote", "list"], None);
    assert!(
        remotes.contains("openssl-conan: https://conan.example.org/api/conan/openssl"),
        "{remotes}"
    );
}

#[test]
fn rebuild_under_other_conditions_gives_the_same_index_digest() {
    let l = locked();
    let (_, first) = layout();
    let other = l.dir.join("elsewhere");
    write_spec_dir(&other, GCC12);
    fs_err::copy(l.dir.join("spec/envpack.lock"), other.join("envpack.lock")).unwrap();
    let tmp = l.dir.join("other-tmp");
    fs_err::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new("sh");
    cmd.current_dir(&other)
        .env("TZ", "Pacific/Kiritimati")
        .env("LC_ALL", "C")
        .env("TMPDIR", &tmp)
        .env("ENVPACK_INDEX_URL", &l.index.url)
        .env("ENVPACK_PYTHON_MIRROR", &l.mirror_url)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env(
            "ENVPACK_IMAGE_SOURCE",
            "https://git.example.org/openssl-devenv",
        )
        .args(["-c", "umask 077 && exec \"$@\"", "sh"])
        .arg(envpack_bin())
        .arg("--cache-dir")
        .arg(l.dir.join("fresh-cache"))
        .args(["--json", "build", "--format", "oci", "--out", "img"])
        .args(["--platform", "linux-aarch64", "--platform", "linux-x86_64"]);
    let out = run(&mut cmd);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["image"]["digest"], first["digest"]);
    assert_eq!(
        fs_err::read(other.join("img/index.json")).unwrap(),
        fs_err::read(layout().0.join("index.json")).unwrap()
    );
}

#[test]
fn oci_archive_holds_the_same_blobs_and_skopeo_reads_it() {
    let l = locked();
    let (dir, image) = layout();
    let file = l.dir.join("image.oci.tar");
    let mut args = vec!["--format", "oci-archive", "--out"];
    let file_s = file.to_str().unwrap().to_string();
    args.push(&file_s);
    for p in PLATFORMS {
        args.extend(["--platform", p]);
    }
    let archived = build_image(l, &l.dir.join("spec"), &args);
    assert_eq!(archived["digest"], image["digest"]);
    assert_eq!(
        archived["archive_sha256"].as_str().unwrap(),
        format!("sha256:{}", sha256_file(&file))
    );
    let listing = run(Command::new("tar").arg("-tf").arg(&file));
    let names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|n| !n.ends_with('/'))
        .map(str::to_string)
        .collect();
    let mut want: Vec<String> = fs_err::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("blobs/sha256/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    want.push("index.json".into());
    want.push("oci-layout".into());
    want.sort();
    assert_eq!(names, want);
    let x = l.dir.join("archive-x");
    fs_err::create_dir_all(&x).unwrap();
    run(Command::new("tar").arg("-xf").arg(&file).arg("-C").arg(&x));
    for n in &names {
        assert_eq!(sha256_file(&x.join(n)), sha256_file(&dir.join(n)), "{n}");
    }
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}:{TAG}", file.display())));
    assert_eq!(
        format!("sha256:{}", sha256_bytes(&raw.stdout)),
        image["digest"].as_str().unwrap()
    );
}

#[test]
fn changing_a_profile_changes_only_the_conan_meta_and_root_layers() {
    let (dir, _) = layout();
    let (_, out) = single();
    let before = layer_digests(&manifest_for(dir, "amd64"));
    // One platform: index.json points straight at the manifest.
    let top = read_json(&out.join("index.json"));
    assert_eq!(
        top["manifests"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let after = layer_digests(&read_json(&blob(
        out,
        top["manifests"][0]["digest"].as_str().unwrap(),
    )));
    assert_eq!(after.len(), 5);
    assert_eq!(before[0], after[0], "cpython layer changed");
    assert_eq!(before[1], after[1], "packages layer changed");
    assert_ne!(before[2], after[2], "conan layer unchanged");
    assert_ne!(before[4], after[4], "root layer (state seed) unchanged");
}

#[test]
fn non_linux_platforms_are_refused_for_images() {
    let l = locked();
    let out = Command::new(envpack_bin())
        .current_dir(l.dir.join("spec"))
        .args([
            "build",
            "--format",
            "oci",
            "--platform",
            "macos-arm64",
            "--out",
        ])
        .arg(l.dir.join("refused"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("macos-arm64"), "{err}");
    assert!(!l.dir.join("refused").exists());
}

#[test]
fn image_env_is_the_tarball_env() {
    let l = locked();
    let (dir, _) = layout();
    let out = run(envpack(l, &l.dir.join("spec"))
        .args(["--json", "build", "--platform", "linux-x86_64", "--out"])
        .arg(l.dir.join("tarball")));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let env = config_env(dir);
    assert_eq!(
        v["artifacts"][0]["env_id"].as_str().unwrap(),
        env["ENVPACK_ENV"]
    );
}
