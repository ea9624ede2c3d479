//! `audit --trust`: the signature and provenance checked with the trusted keys, the
//! provenance held against the auditor's lock (its lock, spec and every input), and with
//! `--rebuild` the rebuilt artifact must be the file the signed provenance is about.

use super::*;

fn audit(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(envpack_bin());
    cmd.arg("--cache-dir")
        .arg(built().work.join("cache"))
        .arg("--offline")
        .arg("audit");
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

#[test]
fn audit_trust_holds_the_signed_provenance_against_the_lock_and_the_rebuild() {
    let f = fixture();
    let b = built();
    let lock = b.work.join("envpack.lock");
    let k1 = pubkey(&f.keys.k1);

    let out = audit(&[&f.a, &"--trust", &k1, &"--lock", &lock]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));

    // Another key; another env's lock (another profile); B's provenance beside A.
    let out = audit(&[&f.a, &"--trust", &pubkey(&f.keys.k2), &"--lock", &lock]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("which is not trusted"));
    let other = f.work.join("b-spec/envpack.lock");
    let out = audit(&[&f.a, &"--trust", &k1, &"--lock", &other]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("names lock sha256"), "{said}");
    assert!(
        said.contains("input conan/profiles/default: sha256 "),
        "the changed profile is named: {said}"
    );
    let swapped = with_signature(&f.work.join("audit-swapped"), &f.a, Some(&sig_text(&f.a)));
    fs_err::copy(
        envpack_trust::intoto::provenance_path(&f.b),
        envpack_trust::intoto::provenance_path(&swapped),
    )
    .unwrap();
    let out = audit(&[&swapped, &"--trust", &k1, &"--lock", &lock]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the provenance of another artifact"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The rebuild is the file the provenance is about; a signed artifact of another build in
    // --against is named.
    let spec = b.work.join("envpack.toml");
    let rebuild_against = |dir: &Path| {
        audit(&[
            &"--rebuild",
            &"--against",
            &dir,
            &"--trust",
            &k1,
            &"--lock",
            &lock,
            &"--spec",
            &spec,
        ])
    };
    let against = f.a.parent().unwrap();
    let out = rebuild_against(against);
    assert!(
        out.status.success(),
        "{}{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    let wrong = f.work.join("audit-wrong");
    fs_err::create_dir_all(&wrong).unwrap();
    let planted = wrong.join(f.a.file_name().unwrap());
    for (from, to) in [
        (f.b.clone(), planted.clone()),
        (
            envpack_trust::signature_path(&f.b),
            envpack_trust::signature_path(&planted),
        ),
        (
            envpack_trust::intoto::provenance_path(&f.b),
            envpack_trust::intoto::provenance_path(&planted),
        ),
    ] {
        fs_err::copy(from, to).unwrap();
    }
    let out = rebuild_against(&wrong);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("the signed provenance is about"), "{said}");

    // --trust is about artifacts: a root, or no target, is a usage error naming what it needs.
    let out = audit(&[&"--trust", &k1, &"--lock", &lock]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--trust checks a signed ARTIFACT"),
        "{}",
        stderr(&out)
    );
}
