//! The Conan content of `super` in an OCI image, run by podman with no network.

use envpack_e2e::conan_server::server_bin;
use envpack_e2e::podman::{podman, podman_storage, push_base};
use envpack_e2e::registry::Registry;
use envpack_e2e::*;

use super::{envpack, printed, team_server, team_spec};

/// The same content in an OCI image on a base with a C toolchain (Debian, debootstrapped by
/// scripts/fixtures/compiler-rootfs.sh): under podman with no network, `conan create` resolves
/// the python_requires and the remote's recipe from the image and builds from the pinned source.
#[test]
fn the_image_builds_the_recipe_offline_under_podman() {
    let Some(bin) = server_bin() else {
        eprintln!("skipping: set ENVPACK_TEST_CONAN_SERVER");
        return;
    };
    let rootfs = fixtures_dir().join("compiler-rootfs/rootfs");
    assert!(
        rootfs.join("usr/bin/gcc").exists(),
        "run scripts/fixtures/compiler-rootfs.sh"
    );
    let work = process_dir("envpack-conan-image-");
    let (mut server, _) = team_server(&bin, &work);
    let reg = Registry::start();
    let base_ref = reg.reference("base/compiler", "12");
    push_base(&work, &rootfs, &base_ref, "/usr/local/bin:/usr/bin:/bin");

    let (dir, _) = team_spec(
        "image",
        &server.url,
        &format!("\n[image]\nbase = \"{base_ref}\"\n"),
    );
    let index = IndexServer::start(&index_dir(), &[]);
    run(envpack(&dir, &index).arg("lock"));
    run(envpack(&dir, &index).args(["build", "--format", "oci", "--out", "img"]));
    let reference = reg.reference("team/openssl-devenv", "conan");
    run(envpack(&dir, &index).args(["push", &reference, "--layout", "img"]));
    server.stop();
    fs_err::remove_dir_all(dir.join("upstream")).unwrap();

    let storage = podman_storage(&work.join("podman"), &reg.host);
    let root = "/opt/envpack/openssl-devenv";
    let out = podman(
        &storage,
        &[
            "run",
            "--rm",
            "--runtime",
            "runc",
            "--network",
            "none",
            "--tls-verify=false",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
            "--env",
            "HOME=/root",
            &reference,
            &format!("{root}/bin/conan"),
            "create",
            &format!("{root}/current/conan-recipes/recipes/hello/1.0"),
            "--version",
            "1.0",
            "-r",
            "envpack-recipes",
            "--build=missing",
        ],
    );
    let said = printed(&out);
    assert!(
        said.contains("Configure options: no-shared enable-fips"),
        "{said}"
    );
    assert!(said.contains("hello from the pinned source: 42"), "{said}");
    assert!(
        said.contains("retrieved from local download cache"),
        "{said}"
    );
    let _ = fs_err::remove_dir_all(&work);
}
