//! The image on a real container runtime: a base image made here from this machine's glibc
//! (plus /bin/sh and the few tools the launchers use), pushed to a local `docker-registry`,
//! pinned by `envpack lock`, built on, pushed, and run with `podman` (runc, vfs storage).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envpack_e2e::podman::{podman, podman_storage, push_base};
use envpack_e2e::registry::Registry;
use envpack_e2e::*;
use serde_json::Value;

const TAG: &str = "3.11.7-conan2.21.0";
const GCC12: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";
/// Host tools the env's sh launchers and shims call.
const TOOLS: [&str; 6] = ["readlink", "dirname", "basename", "cat", "env", "uname"];

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs_err::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// The host libraries (outside `inside`) that `elfs` load, per `ldd`.
fn host_libraries(elfs: &[PathBuf], inside: &Path) -> BTreeSet<PathBuf> {
    let mut libs = BTreeSet::new();
    for e in elfs {
        let out = Command::new("ldd").arg(e).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim().split(' ').next().unwrap_or(""),
                None => line.trim().split(' ').next().unwrap_or(""),
            };
            let p = PathBuf::from(path);
            if p.is_absolute() && !p.starts_with(inside) && p.exists() {
                libs.insert(p);
            }
        }
    }
    libs
}

fn elfs_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs_err::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            elfs_under(&e.path(), out);
        } else if t.is_file() && is_elf(&e.path()) {
            out.push(e.path());
        }
    }
}

/// A minimal root: /bin/sh, the launcher tools, and every host library they and the env's
/// CPython load, at the paths the dynamic linker expects.
fn make_base_rootfs(env: &Path, rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs_err::create_dir_all(&bin).unwrap();
    for d in ["tmp", "root", "etc"] {
        fs_err::create_dir_all(rootfs.join(d)).unwrap();
    }
    let mut elfs = Vec::new();
    let sh = PathBuf::from("/bin/sh").canonicalize().unwrap();
    fs_err::copy(&sh, bin.join("sh")).unwrap();
    elfs.push(sh);
    for t in TOOLS {
        let p = PathBuf::from("/usr/bin").join(t);
        fs_err::copy(&p, bin.join(t)).unwrap();
        elfs.push(p);
    }
    elfs_under(env, &mut elfs);
    for lib in host_libraries(&elfs, env) {
        let dest = rootfs.join(lib.strip_prefix("/").unwrap());
        fs_err::create_dir_all(dest.parent().unwrap()).unwrap();
        fs_err::copy(lib.canonicalize().unwrap(), &dest).unwrap();
    }
    fs_err::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    run(Command::new("chmod").arg("1777").arg(rootfs.join("tmp")));
}

#[test]
fn podman_runs_conan_from_the_image_on_a_pinned_base() {
    let dir = tempfile::Builder::new()
        .prefix("envpack-podman-")
        .tempdir()
        .unwrap();
    let work = dir.path();
    let index = IndexServer::start(&index_dir(), &[]);
    let mirror = format!("file://{}", python_mirror().display());
    let cache = work.join("cache");
    let reg = Registry::start();

    // The env itself first (a tarball), to learn which host libraries its CPython needs.
    let spec = work.join("spec");
    fs_err::create_dir_all(spec.join("profiles")).unwrap();
    fs_err::write(spec.join("profiles/linux-gcc12"), GCC12).unwrap();
    let plain = fixture_spec(&["linux-x86_64"], &[FIXTURE_REMOTE], "");
    fs_err::write(spec.join("envpack.toml"), &plain).unwrap();
    let envpack = |args: &[&str]| run(envpack_cmd(&spec, &cache, &index.url, &mirror).args(args));
    envpack(&["lock"]);
    let built = json_of(&envpack(&["--json", "build", "--out", "dist"]));
    let root = work.join("probe-root");
    run(Command::new(envpack_bin())
        .arg("unpack")
        .arg(spec.join(built["artifacts"][0]["path"].as_str().unwrap()))
        .arg("--root")
        .arg(&root));
    let rootfs = work.join("base-rootfs");
    make_base_rootfs(&root.join("current").canonicalize().unwrap(), &rootfs);
    let base_ref = reg.reference("base/minimal", "1");
    let base_digest = push_base(work, &rootfs, &base_ref, "/bin");

    // Lock against the base: the tag resolves to the manifest digest.
    fs_err::write(
        spec.join("envpack.toml"),
        format!("{plain}\n[image]\nbase = \"{base_ref}\"\n"),
    )
    .unwrap();
    envpack(&["lock"]);
    let lock = fs_err::read_to_string(spec.join("envpack.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "[[image-base]]\nplatform = \"linux-x86_64\"\nname = \"{base_ref}\"\ndigest = \"{base_digest}\"\n"
        )),
        "{lock}"
    );

    // Build on it: the base layer comes first, byte for byte, and is annotated.
    let image = json_of(&envpack(&[
        "--json", "build", "--format", "oci", "--out", "img",
    ]))["image"]
        .clone();
    let layout = spec.join("img");
    let blob = |d: &str| -> Value {
        serde_json::from_slice(&fs_err::read(layout.join("blobs/sha256").join(&d[7..])).unwrap())
            .unwrap()
    };
    let manifest = blob(image["digest"].as_str().unwrap());
    let base_manifest: Value = serde_json::from_slice(
        &run(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{base_ref}")))
        .stdout,
    )
    .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 6);
    assert_eq!(layers[0]["digest"], base_manifest["layers"][0]["digest"]);
    let a = &manifest["annotations"];
    assert_eq!(a["org.opencontainers.image.base.name"], base_ref.as_str());
    assert_eq!(
        a["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 6);

    // Offline (a file:// index, so packages need no network either): the re-lock keeps the
    // previous lock's base pin without asking the registry, and the lock comes out the same.
    let file_index = format!("file://{}/simple/", index_dir().display());
    let offline = |args: &[&str]| {
        let mut cmd = envpack_cmd(&spec, &cache, &file_index, &mirror);
        cmd.arg("--offline").args(args).output().unwrap()
    };
    let out = offline(&["lock"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs_err::read_to_string(spec.join("envpack.lock")).unwrap(),
        lock
    );
    // The same with the base named at a registry nothing answers for (port 9): a request
    // would fail, so success shows none was made; the kept pin is said on stderr.
    let nowhere = "127.0.0.1:9/base/minimal:1";
    fs_err::write(
        spec.join("envpack.toml"),
        format!("{plain}\n[image]\nbase = \"{nowhere}\"\n"),
    )
    .unwrap();
    fs_err::write(spec.join("envpack.lock"), lock.replace(&base_ref, nowhere)).unwrap();
    let out = offline(&["lock"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kept the previous lock's base pin"),
        "{out:?}"
    );
    assert!(fs_err::read_to_string(spec.join("envpack.lock"))
        .unwrap()
        .contains(&format!(
            "name = \"{nowhere}\"\ndigest = \"{base_digest}\"\n"
        )));
    // A base pinned by digest whose manifest is in the cache needs no registry at all (nothing
    // listens on port 9): lock resolves it from the cache, an offline build takes every base
    // blob from there.
    let unreachable = format!("127.0.0.1:9/base/minimal@{base_digest}");
    fs_err::write(
        spec.join("envpack.toml"),
        format!("{plain}\n[image]\nbase = \"{unreachable}\"\n"),
    )
    .unwrap();
    envpack(&["lock"]);
    let by_digest = fs_err::read_to_string(spec.join("envpack.lock")).unwrap();
    assert!(
        by_digest.contains(&format!(
            "name = \"{unreachable}\"\ndigest = \"{base_digest}\"\n"
        )),
        "{by_digest}"
    );
    let out = offline(&["--json", "build", "--format", "oci", "--out", "img-offline"]);
    assert!(out.status.success(), "{out:?}");
    // With no pin to keep and a tag to resolve, an offline lock fails, says why, and leaves the
    // lock as it was.
    let tag_only = nowhere;
    fs_err::write(
        spec.join("envpack.toml"),
        format!("{plain}\n[image]\nbase = \"{tag_only}\"\n"),
    )
    .unwrap();
    let out = offline(&["lock"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("refused in offline mode") && stderr.contains("without --offline"),
        "{stderr}"
    );
    assert_eq!(
        fs_err::read_to_string(spec.join("envpack.lock")).unwrap(),
        by_digest
    );
    fs_err::write(
        spec.join("envpack.toml"),
        format!("{plain}\n[image]\nbase = \"{base_ref}\"\n"),
    )
    .unwrap();
    fs_err::write(spec.join("envpack.lock"), &lock).unwrap();

    // Push (the base layer is already in the registry) and run it.
    let reference = reg.reference("team/openssl-devenv", TAG);
    let pushed = json_of(&run(envpack_cmd(&spec, &cache, &index.url, &mirror).args(
        [
            "--json",
            "push",
            &reference,
            "--layout",
            "img",
            "--mount-from",
            "base/minimal",
        ],
    )));
    assert_eq!(pushed["blobs_mounted"], 1, "{pushed}");

    let storage = podman_storage(&work.join("podman"), &reg.host);
    let run_args = |cmd: &[&str]| -> String {
        let mut args = vec![
            "run",
            "--rm",
            "--runtime",
            "runc",
            "--network",
            "none",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
            "--tls-verify=false",
            &reference,
        ];
        args.extend_from_slice(cmd);
        String::from_utf8_lossy(&podman(&storage, &args).stdout).into_owned()
    };
    let version = run_args(&["conan", "--version"]);
    assert_eq!(version.trim(), "Conan version 2.21.0");
    let remotes = run_args(&["conan", "remote", "list"]);
    assert!(
        remotes.contains("openssl-conan: https://conan.example.org/api/conan/openssl"),
        "{remotes}"
    );

    // A bundle carries the base image as an OCI layout that skopeo reads; with the registry
    // and the index gone and an empty cache, a build from it makes the same image.
    let bundle = work.join("bundle");
    run(envpack_cmd(&spec, &cache, &index.url, &mirror)
        .args(["bundle", "--out"])
        .arg(&bundle));
    let inspected: Value = serde_json::from_slice(
        &run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:linux-x86_64", bundle.join("oci").display())))
        .stdout,
    )
    .unwrap();
    assert_eq!(inspected["Digest"], base_digest.as_str(), "{inspected}");
    drop(reg);
    drop(index);
    let dead = "http://127.0.0.1:9/";
    let again = json_of(&run(envpack_cmd(
        &spec,
        &work.join("cache-empty"),
        dead,
        dead,
    )
    .arg("--bundle")
    .arg(&bundle)
    .args(["--json", "build", "--format", "oci", "--out"])
    .arg(work.join("img-again"))
    .arg("--spec")
    .arg(bundle.join("spec/envpack.toml"))
    .arg("--lock")
    .arg(bundle.join("spec/envpack.lock"))));
    assert_eq!(again["image"]["digest"], image["digest"], "{again}");
}
