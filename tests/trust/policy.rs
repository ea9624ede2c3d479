//! A root that requires signatures; replays; repair with a stand-in artifact; doctor.

use std::path::Path;
use std::process::Command;

use envpack_e2e::*;

use super::*;

#[test]
fn a_root_that_requires_signatures_refuses_unsigned_and_older_envs() {
    let f = fixture();
    let k1 = pubkey(&f.keys.k1);
    let k2 = pubkey(&f.keys.k2);
    let root = f.work.join("root-policy");
    // The first signed unpack makes the root remember k1.
    let out = unpack(&[
        &f.a,
        &"--root",
        &root,
        &"--trust",
        &k1,
        &"--require-signature",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // An unsigned artifact without --trust: refused by the root itself.
    let unsigned = with_signature(&f.work.join("policy-unsigned"), &f.b, None);
    let before = snapshot(&root);
    let out = unpack(&[&unsigned, &"--root", &root]);
    let err = stderr(&out);
    assert!(
        err.contains("is not signed: the root (it requires signatures by its keys)"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    // Signed by k2 and "trusted" on the command line: the root still wants k1.
    let by_k2 = with_signature(&f.work.join("policy-k2"), &f.b, None);
    run(Command::new(envpack_bin())
        .arg("sign")
        .arg(&by_k2)
        .arg("--key")
        .arg(&f.keys.k2));
    let out = unpack(&[&by_k2, &"--root", &root, &"--trust", &k2]);
    let err = stderr(&out);
    assert!(
        err.contains("requires signatures by its trusted keys: signed by key"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);

    // B (signed later) goes in without --trust: the root checks it.
    let out = unpack(&[&f.b, &"--root", &root]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A again (a validly signed, older env): a replay, refused...
    let before = snapshot(&root);
    let out = unpack(&[&f.a, &"--root", &root]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "was signed at {A_TIME}, before the newest env this root accepted (signed at {B_TIME})"
        )) && err.contains("--allow-downgrade"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    // ...unless asked for.
    let out = unpack(&[&f.a, &"--root", &root, &"--allow-downgrade"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Replaying current itself with an older signature must not lower the mark either.
    let old_b = with_signature(&f.work.join("policy-old-b"), &f.b, None);
    run(Command::new(envpack_bin())
        .env("ENVPACK_SIGN_TIME", "1600000000")
        .arg("sign")
        .arg(&old_b)
        .arg("--key")
        .arg(&f.keys.k1));
    let out = unpack(&[&old_b, &"--root", &root]);
    assert!(
        stderr(&out).contains("was signed at 1600000000, before the newest"),
        "{}",
        stderr(&out)
    );

    // repair takes no artifact for an env but the one verified at unpack: the same env
    // built with other compression (same env id, another index) is refused.
    let gz_dir = f.work.join("gz");
    let base = built();
    let index = IndexServer::start(&index_dir(), &[]);
    let mirror = format!("file://{}", python_mirror().display());
    run(
        envpack_cmd(&base.work, &base.work.join("cache"), &index.url, &mirror)
            .args([
                "build",
                "--platform",
                "linux-x86_64",
                "--compression",
                "gzip",
                "--out",
            ])
            .arg(&gz_dir),
    );
    let gz = gz_dir.join("openssl-devenv-linux-x86_64.envpack.tar");
    let env_of = |art: &Path| -> String {
        let out = run(Command::new(unpack_bin())
            .arg("verify")
            .arg(art)
            .arg("--json"));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["env_id"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        env_of(&gz),
        env_of(&f.a),
        "the gzip build must be the same env"
    );
    // Damage that repair must restore from an artifact.
    let activate = fs_err::canonicalize(root.join("current"))
        .unwrap()
        .join("activate");
    fs_err::remove_file(&activate).unwrap();
    let before = snapshot(&root);
    let out = Command::new(unpack_bin())
        .args(["repair", "--root"])
        .arg(&root)
        .arg("--artifact")
        .arg(&gz)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        said.contains("cannot stand in for the env: its index is sha256:"),
        "{said}"
    );
    let after = snapshot(&root);
    let changed: Vec<_> = after
        .iter()
        // Doctor's own logs, and what running Conan writes into its state dir, are expected.
        .filter(|(k, v)| {
            before.get(*k) != Some(v)
                && !k.starts_with(".envpack/doctor")
                && !k.starts_with("state/")
        })
        .collect();
    assert!(changed.is_empty(), "repair changed {changed:?}");
    // The artifact that was verified does repair it.
    run(Command::new(unpack_bin())
        .args(["repair", "--root"])
        .arg(&root)
        .arg("--artifact")
        .arg(&f.a));
    assert!(activate.is_file());

    // doctor says what the root requires and who signed current.
    let out = Command::new(unpack_bin())
        .args(["doctor", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "root.trust")
        .unwrap();
    assert_eq!(check["status"], "pass", "{check:#}");
    let key_id = envpack_trust::Signature::parse(&sig_text(&f.a), "a")
        .unwrap()
        .key_id
        .to_string();
    assert_eq!(
        check["evidence"],
        format!(
            "requires signatures by key {key_id}; current env signed by key {key_id} at {A_TIME}"
        )
    );

    // verify --trust in both binaries: the whole file, by the trusted key.
    for bin in [envpack_bin(), unpack_bin()] {
        let out = run(Command::new(&bin)
            .arg("verify")
            .arg(&f.b)
            .arg("--trust")
            .arg(&k1));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains(&format!(
                "signature: good (artifact and index), by trusted key {key_id}, signed at {B_TIME}"
            )),
            "{said}"
        );
        let out = Command::new(&bin)
            .arg("verify")
            .arg(&f.b)
            .arg("--trust")
            .arg(&k2)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("not trusted"), "{}", stderr(&out));
    }
}
