//! Tests of the `envpack-unpack` binary.

mod common;

use std::process::Command;

use common::{build_artifact, EnvSpec};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_envpack-unpack"))
}

#[test]
fn unpack_verify_status_rollback_via_cli() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let two = build_artifact(work.path(), &EnvSpec::new("env-two", "two"));
    let root = work.path().join("root");
    let root_s = root.to_str().unwrap();

    let out = bin()
        .arg(&one.artifact)
        .args(["--root", root_s, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["env_id"], "env-one");
    assert_eq!(v["already_current"], false);

    let out = bin()
        .arg(&two.artifact)
        .args(["--root", root_s])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("extracting layer python"), "{stderr}");
    let out = bin()
        .arg(&two.artifact)
        .args(["--root", root_s, "--quiet"])
        .output()
        .unwrap();
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("already current"));

    let out = bin().args(["--verify", "--root", root_s]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = bin()
        .arg("--verify")
        .arg(&one.artifact)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["differences"].as_array().unwrap().len(), 0);

    let out = bin()
        .args(["--rollback", "--root", root_s])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = bin()
        .args(["--status", "--root", root_s, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["current"], "env-one");
    assert_eq!(v["previous"], "env-two");

    fs_err::write(root.join("envs/env-one/lib/data.txt"), "changed").unwrap();
    let out = bin().args(["--verify", "--root", root_s]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lib/data.txt"),
        "{out:?}"
    );
}

#[test]
fn errors_are_friendly_lines_and_exit_1() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("missing.tar");
    let root = work.path().join("root");
    let out = bin()
        .arg(&missing)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: unpacking"), "{stderr}");
    assert!(stderr.contains("missing.tar"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = bin()
        .args(["--rollback", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["causes"].as_array().unwrap().len() >= 2, "{v}");
}
