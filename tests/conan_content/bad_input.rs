//! Bad Conan content, each refused with its message and nothing written: a wrong source
//! sha256, a missing `python_requires`, a link in a recipe folder, refs, a recipe edited after
//! `lock`, a hand-edited lock.

use std::path::Path;

use envpack_e2e::*;

use super::{envpack, failed, spec_dir, TOOLS};

/// Locks `dir` and expects it to fail without writing a lock; returns the message.
fn lock_fails(dir: &Path) -> String {
    let index = IndexServer::start(&index_dir(), &[]);
    let out = envpack(dir, &index).arg("lock").output().unwrap();
    assert!(!dir.join("envpack.lock").exists(), "a lock was written");
    failed(&out)
}

#[test]
fn bad_conan_content_is_refused_and_writes_nothing() {
    let local = |dir: &Path, sha: &str| {
        format!(
            "recipes = [{{ ref = \"openssl-tools/1.2.4\", path = \"recipes/openssl-tools\" }}, {{ ref = \"hello/1.0\", path = \"recipes/hello\" }}]\n\
             sources = [{{ url = \"file://{}/upstream/hello-1.0.tar.gz\", sha256 = \"{sha}\" }}]",
            dir.display()
        )
    };
    let write_spec = |dir: &Path, lines: &str| {
        let spec = fixture_spec(&["linux-x86_64"], &[FIXTURE_REMOTE], "").replace(
            "\n[conan.profiles]",
            &format!("{lines}\n\n[conan.profiles]"),
        );
        fs_err::write(dir.join("envpack.toml"), spec).unwrap();
    };

    // A source whose sha256 differs from the spec's.
    let (dir, sha) = spec_dir("badsha", FIXTURE_REMOTE, "");
    let wrong = format!(
        "{}{}",
        &sha[..63],
        if sha.ends_with('0') { '1' } else { '0' }
    );
    write_spec(&dir, &local(&dir, &wrong));
    let e = lock_fails(&dir);
    assert!(e.contains("conan.sources") && e.contains(&wrong), "{e}");

    // The python_requires is not in the env.
    let (dir, sha) = spec_dir("nopyreq", FIXTURE_REMOTE, "");
    write_spec(&dir, &format!(
        "recipes = [{{ ref = \"hello/1.0\", path = \"recipes/hello\" }}]\nsources = [{{ url = \"file://{}/upstream/hello-1.0.tar.gz\", sha256 = \"{sha}\" }}]",
        dir.display()
    ));
    let e = lock_fails(&dir);
    assert!(
        e.contains("recipe hello/1.0")
            && e.contains("Cannot resolve python_requires 'openssl-tools/1.2.4'"),
        "{e}"
    );

    // A recipe folder with a file that leads outside it.
    let (dir, sha) = spec_dir("link", FIXTURE_REMOTE, "");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("recipes/hello/leak.txt")).unwrap();
    write_spec(&dir, &local(&dir, &sha));
    let e = lock_fails(&dir);
    assert!(e.contains("\"recipes/hello/leak.txt\" is a link"), "{e}");

    // A ref with a revision, or naming a remote the spec lacks: the spec's place is named.
    let (dir, _) = spec_dir("ref", FIXTURE_REMOTE, "");
    write_spec(
        &dir,
        "recipes = [{ ref = \"zlib/1.3.1#abc\", remote = \"openssl-conan\" }]",
    );
    let e = lock_fails(&dir);
    assert!(
        e.contains("envpack.toml:") && e.contains("has a revision (#…)"),
        "{e}"
    );
    write_spec(
        &dir,
        "recipes = [{ ref = \"zlib/1.3.1\", remote = \"nowhere\" }]",
    );
    let e = lock_fails(&dir);
    assert!(
        e.contains("names remote \"nowhere\", which is not in conan.remotes"),
        "{e}"
    );

    // A recipe edited after the lock: build refuses the stale lock and writes no output.
    let (dir, sha) = spec_dir("stale", FIXTURE_REMOTE, "");
    write_spec(&dir, &local(&dir, &sha));
    let index = IndexServer::start(&index_dir(), &[]);
    run(envpack(&dir, &index).arg("lock"));
    fs_err::write(
        dir.join("recipes/openssl-tools/conanfile.py"),
        TOOLS.replace("1.2.4\"\n", "1.2.4\"\n    # edited\n"),
    )
    .unwrap();
    let out = envpack(&dir, &index)
        .args(["build", "--out"])
        .arg(dir.join("dist"))
        .output()
        .unwrap();
    let e = failed(&out);
    assert!(
        e.contains(
            "is stale: recipe openssl-tools/1.2.4 changed in recipes/openssl-tools (conanfile.py)"
        ),
        "{e}"
    );
    assert!(!dir.join("dist").exists());

    // A hand-edited lock: another recipe in a pinned folder, or one the spec doesn't list.
    fs_err::write(dir.join("recipes/openssl-tools/conanfile.py"), TOOLS).unwrap();
    let lock = fs_err::read_to_string(dir.join("envpack.lock")).unwrap();
    let evil = "from conan import ConanFile\n";
    let planted = |reference: &str| {
        format!(
            "{lock}\n[[conan-recipe]]\nref = \"{reference}\"\nrevision = \"{}\"\npath = \"recipes/x\"\n\n\
             [[conan-recipe.file]]\npath = \"conanfile.py\"\nsha256 = \"{}\"\ncontent = \"from conan import ConanFile\\n\"\n",
            "8".repeat(32),
            sha256_hex(evil.as_bytes())
        )
    };
    for (reference, want) in [
        (
            "openssl-tools/1.2.4@evil/x",
            "openssl-tools/1.2.4 is pinned twice",
        ),
        ("zzz/1.0", "it pins other Conan recipes than the spec lists"),
    ] {
        fs_err::write(dir.join("envpack.lock"), planted(reference)).unwrap();
        let out = envpack(&dir, &index)
            .args(["build", "--out"])
            .arg(dir.join("dist"))
            .output()
            .unwrap();
        let e = failed(&out);
        assert!(e.contains(want), "{reference}: {e}");
        assert!(!dir.join("dist").exists());
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
