//! envpack's side of the differential test, through the CLI as a user runs it: an index of the
//! set's downloaded files on loopback, `envpack lock` of the set's requirements, `envpack build
//! --json`, and the artifact's packages layer extracted with GNU tar (not envpack's extractor,
//! so the comparison does not trust the code under test to read its own output).

use std::path::{Path, PathBuf};
use std::process::Command;

use envpack_e2e::{build_index, envpack_cmd, python_mirror, run, IndexServer};

/// A wheel defect the build warned about: (wheel file, member, problem).
pub type Warning = (String, String, String);

/// What `lock` and `build` made of one install set.
pub struct Built {
    /// Holds everything below; removed on drop.
    _tmp: tempfile::TempDir,
    /// The packages layer, extracted: paths as in the env (`python/...`).
    pub env: PathBuf,
    /// The wheels the lock pinned, in the set's dir, sorted.
    pub wheels: Vec<PathBuf>,
    /// The build's `--json` warnings for this platform.
    pub warnings: Vec<Warning>,
}

/// `[platforms.<name>]` target that admits what pip was told to install: glibc from the newest
/// `manylinux_X_Y` tag, macOS from the `macosx_X_Y` tag (none for Windows).
fn target_table(platform: &str, tags: &[String]) -> String {
    let version = |prefix: &str| {
        tags.iter().find_map(|t| {
            let rest = t.strip_prefix(prefix)?;
            let mut parts = rest.splitn(3, '_');
            Some(format!("{}.{}", parts.next()?, parts.next()?))
        })
    };
    if let Some(glibc) = version("manylinux_") {
        format!("\n[platforms.{platform}]\nglibc = \"{glibc}\"\n")
    } else if let Some(macos) = version("macosx_") {
        format!("\n[platforms.{platform}]\nmacos = \"{macos}\"\n")
    } else {
        String::new()
    }
}

/// Locks `requirements` for `platform` against an index of `set_dir`'s files, builds the
/// tarball, and extracts its packages layer.
pub fn lock_and_build(
    platform: &str,
    set_dir: &Path,
    requirements: &[String],
    tags: &[String],
    cache: &Path,
) -> Built {
    let tmp = tempfile::Builder::new()
        .prefix("envpack-differential-")
        .tempdir()
        .unwrap();
    let index_dir = tmp.path().join("index");
    build_index(set_dir, &index_dir);
    let index = IndexServer::start(&index_dir, &[]);
    let spec_dir = tmp.path().join("spec");
    fs_err::create_dir_all(&spec_dir).unwrap();
    let reqs: Vec<String> = requirements.iter().map(|r| format!("{r:?}")).collect();
    fs_err::write(
        spec_dir.join("envpack.toml"),
        format!(
            "[env]\nname = \"differential\"\nplatforms = [\"{platform}\"]\n\n\
             [python]\nversion = \"3.11.7\"\nbuild = \"envpack1\"\n\n\
             [packages]\nrequirements = [{}]\n{}",
            reqs.join(", "),
            target_table(platform, tags)
        ),
    )
    .unwrap();
    let mirror = format!("file://{}", python_mirror().display());
    let envpack = || envpack_cmd(&spec_dir, cache, &index.url, &mirror);
    run(envpack().arg("lock"));
    let out = run(envpack().args(["build", "--json", "--out", "dist"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("build --json printed no JSON ({e}): {out:?}"));

    let artifact = &report["artifacts"][0];
    assert_eq!(artifact["platform"], platform, "{report}");
    let artifact_path = spec_dir.join(artifact["path"].as_str().unwrap());
    let packages = artifact["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "packages")
        .unwrap_or_else(|| panic!("no packages layer in {artifact}"));
    let digest = packages["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let outer = tmp.path().join("artifact");
    let env = tmp.path().join("env");
    fs_err::create_dir_all(&outer).unwrap();
    fs_err::create_dir_all(&env).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&artifact_path)
        .arg("-C")
        .arg(&outer)
        .arg(format!("blobs/sha256/{hex}")));
    // GNU tar detects the layer's zstd/gzip from its bytes.
    run(Command::new("tar")
        .args(["--no-same-owner", "-p", "-xf"])
        .arg(outer.join("blobs/sha256").join(hex))
        .arg("-C")
        .arg(&env));

    let warnings = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["platform"] == platform)
        .map(|w| {
            let s = |k: &str| w[k].as_str().unwrap().to_string();
            (s("wheel"), s("file"), s("problem"))
        })
        .collect();
    let lock: toml::Value =
        toml::from_str(&fs_err::read_to_string(spec_dir.join("envpack.lock")).unwrap()).unwrap();
    let mut wheels: Vec<PathBuf> = lock["platform"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str() == Some(platform))
        .flat_map(|p| p["package"].as_array().unwrap().iter())
        .map(|pkg| {
            let file = pkg["filename"].as_str().unwrap();
            let path = set_dir.join(file);
            assert!(
                path.is_file(),
                "{file} is locked but not in {}",
                set_dir.display()
            );
            path
        })
        .collect();
    wheels.sort();
    Built {
        _tmp: tmp,
        env,
        wheels,
        warnings,
    }
}

#[test]
fn targets_from_pip_tags() {
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        target_table(
            "linux-x86_64",
            &tags(&["manylinux_2_28_x86_64", "manylinux_2_17_x86_64"])
        ),
        "\n[platforms.linux-x86_64]\nglibc = \"2.28\"\n"
    );
    assert_eq!(
        target_table("macos-arm64", &tags(&["macosx_12_0_arm64"])),
        "\n[platforms.macos-arm64]\nmacos = \"12.0\"\n"
    );
    assert_eq!(target_table("windows-x86_64", &tags(&["win_amd64"])), "");
}
