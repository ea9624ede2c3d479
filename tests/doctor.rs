//! `doctor` and `repair` on a real unpacked env (real CPython, real Conan, real bash/zsh/fish):
//! a damage matrix where each kind of damage is made, found by doctor with its exact class and
//! path, fixed by repair without rewriting healthy files, and doctor passes again.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use envpack_e2e::unpacked::{built, case_root, done};
use envpack_e2e::*;
use serde_json::Value;

/// Runs `envpack-unpack` with `args`; returns (exit code, stdout as JSON).
fn unpack_json(args: &[&str], root: &Path) -> (i32, Value) {
    let out = Command::new(unpack_bin())
        .args(args)
        .arg("--root")
        .arg(root)
        .arg("--json")
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: exit {code}, stdout is not JSON ({e}):\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, json)
}

fn doctor(root: &Path) -> (i32, Value) {
    unpack_json(&["--doctor"], root)
}

/// (check id, class, path) of every finding in a doctor report.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for c in report["checks"].as_array().unwrap() {
        for f in c["findings"].as_array().unwrap() {
            out.push((
                c["id"].as_str().unwrap().to_owned(),
                f["class"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap_or("-").to_owned(),
            ));
        }
    }
    out
}

fn status_of<'a>(report: &'a Value, id: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))["status"]
        .as_str()
        .unwrap()
}

/// (inode, mtime ns) of every entry below the given root-relative dirs.
fn snapshot(root: &Path, dirs: &[&str]) -> BTreeMap<String, (u64, i64)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, i64)>) {
        let Ok(entries) = fs_err::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let m = fs_err::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            // Conan and the writability probe add files to state dirs: their mtimes move.
            if !(m.is_dir() && rel.starts_with("state")) {
                out.insert(rel, (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec()));
            }
            if m.is_dir() {
                walk(base, &e.path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    for d in dirs {
        walk(root, &root.join(d), &mut out);
    }
    out
}

/// Asserts every entry in `before` that is not under one of `touched` kept inode and mtime.
fn assert_untouched(
    before: &BTreeMap<String, (u64, i64)>,
    after: &BTreeMap<String, (u64, i64)>,
    touched: &[String],
) {
    let mut checked = 0;
    for (path, stamp) in before {
        let is_touched = touched.iter().any(|t| {
            path == t || path.starts_with(&format!("{t}/")) || t.starts_with(&format!("{path}/"))
        });
        if is_touched {
            continue;
        }
        assert_eq!(
            after.get(path),
            Some(stamp),
            "healthy entry {path} was rewritten"
        );
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} healthy entries compared");
}

/// One damage case: make it, expect these findings, repair, check again.
fn damage_case(
    name: &str,
    damage: impl FnOnce(&Path, &str),
    expected: &[(&str, &str, String)],
    touched: &[String],
) -> PathBuf {
    let root = case_root(name);
    let id = built().env_id.clone();
    damage(&root, &id);
    let dirs = ["envs", "bin", "state"];
    let before = snapshot(&root, &dirs);
    let (code, report) = doctor(&root);
    assert_eq!(code, 1, "{name}: doctor must report findings:\n{report:#}");
    let found = findings(&report);
    for (check, class, path) in expected {
        let want = (check.to_string(), class.to_string(), path.clone());
        assert!(found.contains(&want), "{name}: {want:?} not in {found:#?}");
    }
    let (code, repair) = unpack_json(&["--repair"], &root);
    assert_eq!(code, 0, "{name}: repair failed:\n{repair:#}");
    assert_eq!(repair["repaired"], true);
    assert!(
        !repair["actions"].as_array().unwrap().is_empty(),
        "{repair:#}"
    );
    let (code, again) = doctor(&root);
    assert_eq!(code, 0, "{name}: doctor after repair:\n{again:#}");
    assert!(Path::new(again["log_dir"].as_str().unwrap())
        .join("SUCCESS")
        .is_file());
    run(Command::new(unpack_bin())
        .arg("--verify")
        .arg("--root")
        .arg(&root));
    let after = snapshot(&root, &dirs);
    assert_untouched(&before, &after, touched);
    root
}

fn env(id: &str, rel: &str) -> String {
    format!("envs/{id}/{rel}")
}

#[test]
fn pristine_root_is_healthy_with_real_shells_and_logs() {
    let root = case_root("pristine");
    let id = &built().env_id;
    let logs = root.join("my-logs");
    let out = Command::new(unpack_bin())
        .args(["--doctor", "--json", "--root"])
        .arg(&root)
        .arg("--log-dir")
        .arg(&logs)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["env_id"], id.as_str());
    for check in [
        "root.current",
        "env.tree",
        "artifact.kept",
        "root.shims",
        "state.conan_home",
        "state.writable",
        "python.version",
        "conan.version",
        "conan.remotes",
        "conan.profile",
        "activation.bash",
        "activation.zsh",
        "activation.fish",
        "env.unchanged",
    ] {
        assert_eq!(status_of(&report, check), "pass", "{check}: {report:#}");
    }
    assert_eq!(status_of(&report, "activation.cmd"), "skip");
    assert!(logs.join("SUCCESS").is_file());
    let logged: Value =
        serde_json::from_str(&fs_err::read_to_string(logs.join("report.json")).unwrap()).unwrap();
    assert_eq!(logged, report);
    let remotes = fs_err::read_to_string(logs.join("conan.remotes.stdout")).unwrap();
    assert!(remotes.contains("openssl-conan"), "{remotes}");
    assert_eq!(
        fs_err::read_to_string(logs.join("python.version.stdout")).unwrap(),
        "3.11.7\n"
    );
    // Doctor ran Python and Conan in the env; the env is still exactly its manifest.
    run(Command::new(unpack_bin())
        .arg("--verify")
        .arg("--root")
        .arg(&root));
    // The `envpack` CLI has the same command.
    let out = Command::new(envpack_bin())
        .args(["doctor", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS activation.fish"), "{text}");
    assert!(text.contains("healthy: "), "{text}");
    done(root);
}

#[test]
fn corrupted_file_and_broken_activation() {
    let id = built().env_id.clone();
    done(damage_case(
        "corrupted",
        |root, id| {
            let os = root.join(env(id, "python/lib/python3.11/os.py"));
            let mut text = fs_err::read(&os).unwrap();
            text.extend_from_slice(b"\n# damaged\n");
            fs_err::write(&os, text).unwrap();
            // Same size, different bytes: found only by hashing.
            let act = root.join(env(id, "activate"));
            let len = fs_err::metadata(&act).unwrap().len() as usize;
            let mut broken = b"return 0\n".to_vec();
            broken.resize(len, b'#');
            fs_err::write(&act, broken).unwrap();
        },
        &[
            (
                "env.tree",
                "corrupted_file",
                env(&id, "python/lib/python3.11/os.py"),
            ),
            ("env.tree", "corrupted_file", env(&id, "activate")),
            ("activation.bash", "activation_broken", "-".into()),
            ("activation.zsh", "activation_broken", "-".into()),
        ],
        &[
            env(&id, "python/lib/python3.11/os.py"),
            env(&id, "activate"),
        ],
    ));
}

#[test]
fn missing_file_wrong_mode_wrong_type_and_extra_file() {
    let id = built().env_id.clone();
    let root = damage_case(
        "tree",
        |root, id| {
            fs_err::remove_file(root.join(env(id, "bin/idna"))).unwrap();
            let py = root.join(env(id, "bin/python3"));
            fs_err::set_permissions(&py, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            let json = root.join(env(id, "python/lib/python3.11/json/tool.py"));
            fs_err::remove_file(&json).unwrap();
            fs_err::create_dir(&json).unwrap();
            fs_err::write(json.join("inside"), "x").unwrap();
            fs_err::write(root.join(env(id, "stray.txt")), "x").unwrap();
        },
        &[
            ("env.tree", "missing_file", env(&id, "bin/idna")),
            ("env.tree", "wrong_mode", env(&id, "bin/python3")),
            (
                "env.tree",
                "wrong_type",
                env(&id, "python/lib/python3.11/json/tool.py"),
            ),
            ("env.tree", "extra_file", env(&id, "stray.txt")),
            ("python.version", "tool_mismatch", "-".into()),
        ],
        &[
            env(&id, "bin/idna"),
            env(&id, "bin/python3"),
            env(&id, "python/lib/python3.11/json/tool.py"),
            env(&id, "stray.txt"),
        ],
    );
    // Nothing replaced is deleted: the stray file and the odd directory are in quarantine.
    let q = fs_err::read_dir(root.join(".envpack/quarantine"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(q.join(env(&id, "stray.txt")).is_file());
    assert!(q
        .join(env(&id, "python/lib/python3.11/json/tool.py/inside"))
        .is_file());
    done(root);
}

#[test]
fn wrong_link_target() {
    let id = built().env_id.clone();
    done(damage_case(
        "link",
        |root, id| {
            let link = root.join(env(id, "python/bin/python3"));
            fs_err::remove_file(&link).unwrap();
            std::os::unix::fs::symlink("python3.11-gone", &link).unwrap();
        },
        &[("env.tree", "wrong_link", env(&id, "python/bin/python3"))],
        &[env(&id, "python/bin/python3")],
    ));
}

#[test]
fn stale_and_missing_state_dir() {
    let id = built().env_id.clone();
    let root = damage_case(
        "stale-state",
        |root, id| {
            let home = root.join(format!("state/{id}/conan-home"));
            fs_err::remove_file(home.join("profiles/default")).unwrap();
            fs_err::write(home.join("remotes.json"), r#"{"remotes": []}"#).unwrap();
        },
        &[
            (
                "state.conan_home",
                "stale_state",
                format!("state/{id}/conan-home/profiles/default"),
            ),
            (
                "state.conan_home",
                "stale_state",
                format!("state/{id}/conan-home/remotes.json"),
            ),
            (
                "conan.remotes",
                "stale_state",
                format!("state/{id}/conan-home/remotes.json"),
            ),
            (
                "conan.profile",
                "stale_state",
                format!("state/{id}/conan-home/profiles/default"),
            ),
        ],
        &[format!("state/{id}")],
    );
    // The user's old state is kept aside, not deleted.
    let aside: Vec<_> = fs_err::read_dir(root.join(format!("state/{id}")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("conan-home.stale-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    done(root);
    done(damage_case(
        "missing-state",
        |root, id| fs_err::remove_dir_all(root.join(format!("state/{id}"))).unwrap(),
        &[(
            "state.conan_home",
            "missing_state",
            format!("state/{id}/conan-home"),
        )],
        &[format!("state/{id}")],
    ));
}

#[test]
fn switched_current_and_missing_shim() {
    done(damage_case(
        "current",
        |root, _| {
            fs_err::remove_file(root.join("current")).unwrap();
            std::os::unix::fs::symlink(
                "envs/openssl-devenv-linux-x86_64-000000000000",
                root.join("current"),
            )
            .unwrap();
        },
        &[("root.current", "switched_current", "current".into())],
        &[],
    ));
    done(damage_case(
        "shim",
        |root, _| {
            fs_err::remove_file(root.join("bin/conan")).unwrap();
            fs_err::write(
                root.join("bin/python3"),
                "#!/bin/sh\n# envpack shim: tampered\n",
            )
            .unwrap();
        },
        &[
            ("root.shims", "missing_shim", "bin/conan".into()),
            ("root.shims", "corrupted_shim", "bin/python3".into()),
        ],
        &["bin/conan".into(), "bin/python3".into()],
    ));
}

#[test]
fn missing_artifact_needs_artifact_flag_and_changes_nothing_without_it() {
    let b = built();
    let id = &b.env_id;
    let root = case_root("artifact");
    let kept = format!(".envpack/artifacts/{id}.envpack.tar");
    fs_err::remove_file(root.join(&kept)).unwrap();
    let os = root.join(env(id, "python/lib/python3.11/os.py"));
    fs_err::write(&os, "damaged").unwrap();
    let (code, report) = doctor(&root);
    assert_eq!(code, 1);
    let found = findings(&report);
    assert!(
        found.contains(&(
            "artifact.kept".into(),
            "missing_artifact".into(),
            kept.clone()
        )),
        "{found:?}"
    );
    let before = snapshot(&root, &["envs", "bin", "state", "current"]);
    let (code, repair) = unpack_json(&["--repair"], &root);
    assert_eq!(code, 1, "{repair:#}");
    assert_eq!(repair["repaired"], false);
    assert!(
        repair["refused"].as_str().unwrap().contains("--artifact"),
        "{repair:#}"
    );
    assert!(repair["actions"].as_array().unwrap().is_empty());
    assert_eq!(
        snapshot(&root, &["envs", "bin", "state", "current"]),
        before,
        "refused repair changed the root"
    );
    assert_eq!(fs_err::read_to_string(&os).unwrap(), "damaged");
    // With the artifact given, repair restores the file and keeps a verified copy again.
    let (code, repair) = unpack_json(&["--repair", b.artifact.to_str().unwrap()], &root);
    assert_eq!(code, 0, "{repair:#}");
    assert!(root.join(&kept).is_file());
    let (code, _) = doctor(&root);
    assert_eq!(code, 0);
    // The `envpack` CLI: a healthy root repairs to exit 0, a bad --artifact is refused.
    let out = Command::new(envpack_bin())
        .args(["repair", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    done(root);
}

#[test]
fn reports_validate_against_the_schema() {
    let Some(tools) = std::env::var_os("ENVPACK_SBOM_TOOLS") else {
        if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() {
            panic!("ENVPACK_SBOM_TOOLS is not set");
        }
        eprintln!("skipping: ENVPACK_SBOM_TOOLS is not set");
        return;
    };
    let schema = repo_root().join("unpacker/schema/doctor-report.schema.json");
    let root = case_root("schema");
    let (_, healthy) = doctor(&root);
    fs_err::remove_file(root.join("bin/conan")).unwrap();
    fs_err::write(root.join(env(&built().env_id, "extra")), "x").unwrap();
    let (code, failing) = doctor(&root);
    assert_eq!(code, 1);
    let dir = root.join("schema-check");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("healthy.json"), healthy.to_string()).unwrap();
    fs_err::write(dir.join("failing.json"), failing.to_string()).unwrap();
    // A report that breaks the schema must be rejected, or the check proves nothing.
    let mut broken = failing.clone();
    broken["checks"][0]["status"] = Value::String("ok".into());
    fs_err::write(dir.join("broken.json"), broken.to_string()).unwrap();
    let check = "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 jsonschema.Draft202012Validator.check_schema(schema)\n\
                 v = jsonschema.Draft202012Validator(schema)\n\
                 for f in sys.argv[2:]:\n\
                 \x20   errors = list(v.iter_errors(json.load(open(f))))\n\
                 \x20   print(f, 'invalid' if errors else 'valid', [e.message for e in errors][:3])\n";
    let out = run(Command::new(PathBuf::from(tools).join("bin/python"))
        .arg("-c")
        .arg(check)
        .arg(&schema)
        .arg(dir.join("healthy.json"))
        .arg(dir.join("failing.json"))
        .arg(dir.join("broken.json")));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("healthy.json valid"), "{text}");
    assert!(lines[1].contains("failing.json valid"), "{text}");
    assert!(lines[2].contains("broken.json invalid"), "{text}");
    done(root);
}

#[test]
fn missing_env_dir_is_extracted_again() {
    let id = built().env_id.clone();
    let root = case_root("env-gone");
    fs_err::remove_dir_all(root.join(format!("envs/{id}"))).unwrap();
    let (code, report) = doctor(&root);
    assert_eq!(code, 1);
    let found = findings(&report);
    assert!(
        found.contains(&(
            "env.tree".into(),
            "missing_env".into(),
            format!("envs/{id}")
        )),
        "{found:?}"
    );
    assert_eq!(status_of(&report, "python.version"), "skip");
    let before = snapshot(&root, &["bin", "state"]);
    let (code, repair) = unpack_json(&["--repair"], &root);
    assert_eq!(code, 0, "{repair:#}");
    let (code, again) = doctor(&root);
    assert_eq!(code, 0, "{again:#}");
    let after = snapshot(&root, &["bin", "state"]);
    for (path, stamp) in &before {
        assert_eq!(after.get(path), Some(stamp), "{path} was rewritten");
    }
    done(root);
}
