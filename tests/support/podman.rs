//! Container images for the tests: a root filesystem made into a base image (umoci, skopeo)
//! in a local registry, and podman run the way the tests run it (runc, vfs storage).

use std::path::Path;
use std::process::{Command, Output};

use crate::run;

/// Turns `rootfs` into a one-layer image with umoci (its PATH `path_env`) and pushes it as
/// `reference`; returns the manifest digest.
pub fn push_base(work: &Path, rootfs: &Path, reference: &str, path_env: &str) -> String {
    let layout = work.join("base-layout");
    let image = format!("{}:base", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(rootfs)
        .arg("/"));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.env",
        &format!("PATH={path_env}"),
    ]));
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{reference}")));
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}")))
    .stdout;
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(&raw)))
}

/// `podman ARGS` with storage under `storage` (vfs, cgroupfs, file events: no daemon, no
/// systemd) and `storage/registries.conf` as its registry configuration.
pub fn podman(storage: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(storage.join("storage"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .args(args)
        .env(
            "CONTAINERS_REGISTRIES_CONF",
            storage.join("registries.conf"),
        );
    run(&mut cmd)
}

/// Makes `dir` podman's storage, trusting the plain-HTTP registry at `host`; returns `dir`.
pub fn podman_storage(dir: &Path, host: &str) -> std::path::PathBuf {
    fs_err::create_dir_all(dir).unwrap();
    fs_err::write(
        dir.join("registries.conf"),
        format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
    )
    .unwrap();
    dir.to_path_buf()
}
