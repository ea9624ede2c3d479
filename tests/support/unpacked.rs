//! The fixture env (real CPython, real Conan) built once per test process and unpacked into a
//! pristine root, with private copies of that root for each test case.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::*;

/// The fixture env built once and unpacked into a pristine root: (artifact, root, env id).
pub struct Built {
    /// The artifact.
    pub artifact: PathBuf,
    /// A root it was unpacked into; copy it with [`case_root`] before changing anything.
    pub root: PathBuf,
    /// The env id `current` names.
    pub env_id: String,
    /// The work dir holding all of it.
    pub work: PathBuf,
}

/// Builds and unpacks the fixture env once per test process.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mirror = python_mirror();
        let index = IndexServer::start(&index_dir(), &[]);
        let work = crate::process_dir("envpack-unpacked-");
        fs_err::create_dir_all(work.join("profiles")).unwrap();
        let spec = fixture_spec(
            &["linux-x86_64"],
            &[
                r#"{ name = "openssl-conan", url = "https://conan.example.org/api/conan/openssl", verify-ssl = true }"#,
                r#"{ name = "mirror", url = "https://conan-mirror.example.org/api/conan/main", verify-ssl = false }"#,
            ],
            "",
        );
        fs_err::write(work.join("envpack.toml"), spec).unwrap();
        fs_err::write(
            work.join("profiles/linux-gcc12"),
            "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n",
        )
        .unwrap();
        let cache = work.join("cache");
        let mirror_url = format!("file://{}", mirror.display());
        run(envpack_cmd(&work, &cache, &index.url, &mirror_url).arg("lock"));
        run(envpack_cmd(&work, &cache, &index.url, &mirror_url)
            .args(["build", "--platform", "linux-x86_64", "--out"])
            .arg(work.join("dist")));
        let artifact = work.join("dist/openssl-devenv-linux-x86_64.envpack.tar");
        let root = work.join("pristine");
        run(Command::new(unpack_bin()).arg(&artifact).arg("--root").arg(&root));
        let link = fs_err::read_link(root.join("current")).unwrap();
        let env_id = link.file_name().unwrap().to_string_lossy().into_owned();
        Built {
            artifact,
            root,
            env_id,
            work,
        }
    })
}

/// A private copy of the pristine root for one test case.
pub fn case_root(name: &str) -> PathBuf {
    let b = built();
    let dest = b.work.join(format!("case-{name}"));
    let _ = fs_err::remove_dir_all(&dest);
    run(Command::new("cp").arg("-a").arg(&b.root).arg(&dest));
    dest
}

/// Removes a case's root once its test passed (failed ones stay for inspection).
pub fn done(root: PathBuf) {
    let _ = fs_err::remove_dir_all(root);
}
