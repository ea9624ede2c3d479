//! SBOMs end to end: built from the real fixtures, checked with the real CycloneDX strict
//! validator and `pyspdxtools`, compared with the lock entry by entry, and found byte-identical
//! in the env tree, next to the artifact, from `envpack sbom` and as OCI referrers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use envpack_e2e::*;
use serde_json::Value;

const NAME: &str = "openssl-devenv";
const PLATFORM: &str = "linux-x86_64";
const GCC12: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";

struct Built {
    dir: PathBuf,
    cache: PathBuf,
    index: IndexServer,
    mirror_url: String,
    artifact: PathBuf,
    layout: PathBuf,
    root: PathBuf,
}

impl Built {
    fn envpack(&self) -> Command {
        envpack_cmd(&self.dir, &self.cache, &self.index.url, &self.mirror_url)
    }
}

/// One linux-x86_64 lock, built as a tarball and as an OCI layout, and unpacked.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mirror = python_mirror();
        let index = IndexServer::start(&index_dir(), &[]);
        let dir = envpack_e2e::process_dir("envpack-sbom-");
        write_fixture_spec_dir(&dir, &[PLATFORM], GCC12);
        let mut b = Built {
            cache: dir.join("cache"),
            index,
            mirror_url: format!("file://{}", mirror.display()),
            artifact: dir
                .join("dist")
                .join(format!("{NAME}-{PLATFORM}.envpack.tar")),
            layout: dir.join("layout"),
            root: dir.join("root"),
            dir,
        };
        run(b.envpack().arg("lock"));
        run(b.envpack().args(["build", "--out", "dist"]));
        run(b
            .envpack()
            .args(["build", "--format", "oci", "--out", "layout"]));
        run(Command::new(unpack_bin())
            .arg(&b.artifact)
            .arg("--root")
            .arg(&b.root));
        b.root = b.root.clone();
        b
    })
}

fn beside(artifact: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", artifact.display()))
}

fn env_dir(root: &Path) -> PathBuf {
    root.join(fs_err::read_link(root.join("current")).unwrap())
}

/// The validators, or `None` (skip) when neither they nor ENVPACK_REQUIRE_FIXTURES are set.
fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(p).unwrap()).unwrap()
}

fn lock() -> toml::Value {
    toml::from_str(&fs_err::read_to_string(built().dir.join("envpack.lock")).unwrap()).unwrap()
}

/// The layout's SBOM referrers: (format annotation, artifact manifest, SBOM bytes).
fn referrers(layout: &Path) -> Vec<(String, Value, Vec<u8>)> {
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["dev.envpack.sbom.format"].is_string())
        .map(|e| {
            let m = read_json(&blob(e["digest"].as_str().unwrap()));
            let bytes = fs_err::read(blob(m["layers"][0]["digest"].as_str().unwrap())).unwrap();
            (
                e["annotations"]["dev.envpack.sbom.format"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m,
                bytes,
            )
        })
        .collect()
}

#[test]
fn every_sbom_passes_the_official_validators() {
    let b = built();
    let Some(tools) = sbom_tools() else {
        eprintln!("skipped: ENVPACK_SBOM_TOOLS is not set");
        return;
    };
    let out = b.dir.join("cli-sboms");
    fs_err::create_dir_all(&out).unwrap();
    run(b
        .envpack()
        .args(["sbom", "--format", "cyclonedx", "--out"])
        .arg(out.join("c.json")));
    run(b
        .envpack()
        .args(["sbom", "--format", "spdx", "--out"])
        .arg(out.join("s.json")));
    let mut cdx = vec![
        beside(&b.artifact, ".cdx.json"),
        env_dir(&b.root).join("sbom.cdx.json"),
        out.join("c.json"),
    ];
    let mut spdx = vec![
        beside(&b.artifact, ".spdx.json"),
        env_dir(&b.root).join("sbom.spdx.json"),
        out.join("s.json"),
    ];
    for (i, (format, _, bytes)) in referrers(&b.layout).into_iter().enumerate() {
        let p = out.join(format!("referrer-{i}.json"));
        fs_err::write(&p, bytes).unwrap();
        if format == "cyclonedx" {
            cdx.push(p);
        } else {
            spdx.push(p);
        }
    }
    // A lock pinning a base image lists it as pkg:oci/…@sha256:….
    let lock_text = fs_err::read_to_string(b.dir.join("envpack.lock")).unwrap();
    let based = out.join("based");
    fs_err::create_dir_all(&based).unwrap();
    fs_err::write(
        based.join("envpack.lock"),
        format!(
            "{lock_text}\n[[image-base]]\nplatform = \"{PLATFORM}\"\nname = \"registry.example:5000/library/debian:bookworm\"\ndigest = \"sha256:{}\"\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    for (format, list, file) in [
        ("cyclonedx", &mut cdx, "b.cdx.json"),
        ("spdx", &mut spdx, "b.spdx.json"),
    ] {
        let path = based.join(file);
        run(b
            .envpack()
            .current_dir(&based)
            .args(["sbom", "--format", format, "--out"])
            .arg(&path));
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("pkg:oci/debian@sha256%3A{}", "ab".repeat(32))),
            "{text}"
        );
        list.push(path);
    }
    assert_eq!((cdx.len(), spdx.len()), (5, 5));
    for f in &cdx {
        validate_cyclonedx(&tools, f);
    }
    for f in &spdx {
        validate_spdx(&tools, f);
    }
}

#[test]
fn sbom_lists_exactly_the_lock_of_the_platform() {
    let b = built();
    let lock = lock();
    let platform = &lock["platform"].as_array().unwrap()[0];
    let want_pkgs: BTreeSet<(String, String, String)> = platform["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want_built: BTreeSet<String> = platform["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("built-wheel"))
        .map(|w| w["sha256"].as_str().unwrap().to_string())
        .collect();
    let want_files: BTreeSet<(String, String)> = platform["profile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                format!("conan-home/profiles/{}", p["name"].as_str().unwrap()),
                p["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let python_sha = platform["python"]["sha256"].as_str().unwrap().to_string();
    assert!(
        !want_built.is_empty(),
        "conan is an sdist: a built wheel is pinned"
    );

    // CycloneDX
    let cdx = read_json(&beside(&b.artifact, ".cdx.json"));
    let comps = cdx["components"].as_array().unwrap();
    let of_type = |t: &'static str| comps.iter().filter(move |c| c["type"] == t);
    let got_pkgs: BTreeSet<(String, String, String)> = of_type("library")
        .map(|c| {
            assert_eq!(
                c["purl"].as_str().unwrap().split('?').next().unwrap(),
                format!(
                    "pkg:pypi/{}@{}",
                    c["name"].as_str().unwrap(),
                    c["version"].as_str().unwrap()
                )
            );
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
                c["hashes"][0]["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got_pkgs, want_pkgs);
    let got_built: BTreeSet<String> = of_type("library")
        .flat_map(|c| c["properties"].as_array().unwrap().iter())
        .filter(|p| p["name"] == "envpack:built-wheel:sha256")
        .map(|p| p["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got_built, want_built);
    let got_files: BTreeSet<(String, String)> = of_type("file")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["hashes"][0]["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got_files, want_files);
    let py: Vec<&Value> = of_type("application").collect();
    assert_eq!(py.len(), 1);
    assert_eq!(py[0]["hashes"][0]["content"], python_sha.as_str());
    assert!(py[0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "envpack:python:build" && p["value"] == "envpack1"));
    assert_eq!(comps.len(), want_pkgs.len() + want_files.len() + 1);
    // Dependencies come from the resolution: conan depends on pyyaml.
    let deps = cdx["dependencies"].as_array().unwrap();
    let conan = deps
        .iter()
        .find(|d| d["ref"].as_str().unwrap().starts_with("pkg:pypi/conan@"))
        .unwrap();
    assert!(conan["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d.as_str().unwrap().starts_with("pkg:pypi/pyyaml@")));
    assert_eq!(cdx["metadata"]["tools"]["components"][0]["name"], "envpack");
    // Licenses come from the wheels' metadata where they declare one.
    let licensed = of_type("library")
        .filter(|c| c["licenses"].is_array())
        .count();
    assert!(licensed > 0, "no license recorded from any METADATA");

    // SPDX
    let spdx = read_json(&beside(&b.artifact, ".spdx.json"));
    let pkgs = spdx["packages"].as_array().unwrap();
    let sha = |p: &Value| {
        p["checksums"][0]["checksumValue"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let got: BTreeSet<(String, String, String)> = pkgs
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-pypi-"))
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
                sha(p),
            )
        })
        .collect();
    assert_eq!(got, want_pkgs);
    let built: BTreeSet<String> = pkgs
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-built-"))
        .map(sha)
        .collect();
    assert_eq!(built, want_built);
    let files: BTreeSet<(String, String)> = pkgs
        .iter()
        .filter(|p| p["primaryPackagePurpose"] == "FILE")
        .map(|p| (p["name"].as_str().unwrap().to_string(), sha(p)))
        .collect();
    assert_eq!(files, want_files);
    assert_eq!(
        pkgs.len(),
        2 + want_pkgs.len() + want_built.len() + want_files.len()
    );
    let ns = spdx["documentNamespace"].as_str().unwrap();
    assert!(ns.starts_with("https://envpack.invalid/spdx/"), "{ns}");
}

#[test]
fn same_lock_gives_the_same_sbom_bytes_everywhere() {
    let b = built();
    for (format, suffix, file) in [
        ("cyclonedx", ".cdx.json", "sbom.cdx.json"),
        ("spdx", ".spdx.json", "sbom.spdx.json"),
    ] {
        let first = run(b.envpack().args(["sbom", "--format", format])).stdout;
        let second = run(b
            .envpack()
            .args(["sbom", "--platform", PLATFORM, "--format", format]))
        .stdout;
        assert_eq!(first, second);
        let next_to = fs_err::read(beside(&b.artifact, suffix)).unwrap();
        assert_eq!(
            first, next_to,
            "{format}: envpack sbom differs from the artifact's"
        );
        assert_eq!(
            fs_err::read(env_dir(&b.root).join(file)).unwrap(),
            next_to,
            "{format}: the unpacked tree's SBOM differs"
        );
        // Listed in the manifest like every other file.
        let manifest = fs_err::read_to_string(env_dir(&b.root).join("manifest")).unwrap();
        assert!(
            manifest
                .lines()
                .any(|l| l.contains(&format!("\t{file}\t")) || l.ends_with(&format!("\t{file}"))),
            "{file} not in the manifest"
        );
    }
    // The timestamp is the lock's epoch, not the build time.
    let cdx = read_json(&beside(&b.artifact, ".cdx.json"));
    assert_eq!(cdx["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
}

#[test]
fn image_layout_carries_each_sbom_as_a_referrer_of_its_manifest() {
    let b = built();
    let index = read_json(&b.layout.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "tagged image + two referrers: {index}");
    let image_digest = entries[0]["digest"].as_str().unwrap();
    assert!(entries[0]["annotations"]["org.opencontainers.image.ref.name"].is_string());
    let refs = referrers(&b.layout);
    let formats: Vec<&str> = refs.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(formats, ["cyclonedx", "spdx"]);
    for ((format, m, bytes), entry) in refs.iter().zip(&entries[1..]) {
        assert_eq!(m["subject"]["digest"], image_digest, "{format}");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(m["artifactType"], entry["artifactType"]);
        assert_eq!(m["layers"][0]["mediaType"], entry["artifactType"]);
        let suffix = if format == "cyclonedx" {
            ".cdx.json"
        } else {
            ".spdx.json"
        };
        assert_eq!(
            bytes,
            &fs_err::read(beside(&b.artifact, suffix)).unwrap(),
            "{format}: the referrer is not the env's SBOM"
        );
    }
}

#[test]
fn several_platforms_need_a_platform_or_an_out_dir() {
    let b = built();
    let dir = b.dir.join("two");
    fs_err::create_dir_all(&dir).unwrap();
    let text = fs_err::read_to_string(b.dir.join("envpack.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(lock["platform"].as_array().unwrap().len(), 1);
    // A second platform entry made from the first (the SBOM needs only the pins).
    let start = text.find("[[platform]]").unwrap();
    let copy = text[start..].replace("name = \"linux-x86_64\"", "name = \"linux-aarch64\"");
    fs_err::write(dir.join("envpack.lock"), format!("{text}\n{copy}")).unwrap();
    let out = b
        .envpack()
        .current_dir(&dir)
        .args(["sbom", "--format", "spdx"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--platform"));
    fs_err::create_dir_all(dir.join("out")).unwrap();
    run(b
        .envpack()
        .current_dir(&dir)
        .args(["sbom", "--format", "spdx", "--out", "out"]));
    for p in ["linux-x86_64", "linux-aarch64"] {
        let f = dir.join(format!("out/{NAME}-{p}.envpack.tar.spdx.json"));
        assert!(read_json(&f)["name"].as_str().unwrap().ends_with(p));
    }
}
