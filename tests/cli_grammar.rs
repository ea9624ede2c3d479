//! `envpack` and `envpack-unpack` speak one grammar on a real root: the same subcommands
//! (`unpack`, `verify`, `status`, `rollback`, `doctor`, `repair`) with the same flags give the
//! same results from either binary, ENVPACK_ROOT stands in for `--root`, and the earlier flag
//! grammar of `envpack-unpack` (and `envpack unpack --rollback`) still works.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envpack_e2e::unpacked::{built, case_root, done};
use envpack_e2e::*;
use serde_json::Value;

/// Runs `bin args` with ENVPACK_ROOT unset unless given.
fn cli(bin: &Path, args: &[&dyn AsRef<std::ffi::OsStr>], env_root: Option<&Path>) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args.iter().map(|a| a.as_ref()))
        .env_remove("ENVPACK_ROOT");
    if let Some(root) = env_root {
        cmd.env("ENVPACK_ROOT", root);
    }
    cmd.output().unwrap()
}

/// Its stdout as JSON, after checking the exit code.
fn json(out: &Output, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn both() -> [PathBuf; 2] {
    [envpack_bin(), unpack_bin()]
}

/// A second artifact of the fixture env, differing from the first in its default profile only.
fn second_artifact() -> PathBuf {
    let b = built();
    let work = b.work.join("second");
    let _ = fs_err::remove_dir_all(&work);
    fs_err::create_dir_all(work.join("profiles")).unwrap();
    fs_err::copy(b.work.join("envpack.toml"), work.join("envpack.toml")).unwrap();
    fs_err::write(
        work.join("profiles/linux-gcc12"),
        "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Debug\n",
    )
    .unwrap();
    let index = IndexServer::start(&index_dir(), &[]);
    let mirror = format!("file://{}", python_mirror().display());
    let cache = b.work.join("cache");
    run(envpack_cmd(&work, &cache, &index.url, &mirror).arg("lock"));
    run(envpack_cmd(&work, &cache, &index.url, &mirror)
        .args(["build", "--platform", "linux-x86_64", "--out"])
        .arg(work.join("dist")));
    work.join("dist/openssl-devenv-linux-x86_64.envpack.tar")
}

#[test]
fn read_only_commands_agree_across_binaries_and_grammars() {
    let b = built();
    let root = case_root("grammar-read");
    let mut statuses = Vec::new();
    for bin in both() {
        let status = json(
            &cli(&bin, &[&"status", &"--root", &root, &"--json"], None),
            0,
        );
        assert_eq!(status["current"], b.env_id.as_str(), "{}", bin.display());
        // ENVPACK_ROOT stands in for --root; --json may come first.
        let from_env = json(&cli(&bin, &[&"--json", &"status"], Some(&root)), 0);
        assert_eq!(from_env, status);
        statuses.push(status);

        let verified = json(
            &cli(&bin, &[&"verify", &"--root", &root, &"--json"], None),
            0,
        );
        assert_eq!(verified["env_id"], b.env_id.as_str());
        assert_eq!(verified["differences"], serde_json::json!([]));
        let artifact = json(&cli(&bin, &[&"verify", &b.artifact, &"--json"], None), 0);
        assert_eq!(artifact["env_id"], b.env_id.as_str());

        let log = b.work.join(format!(
            "doctor-{}",
            bin.file_name().unwrap().to_string_lossy()
        ));
        let doctor = json(
            &cli(
                &bin,
                &[
                    &"doctor",
                    &"--root",
                    &root,
                    &"--log-dir",
                    &log,
                    &"--timeout",
                    &"60",
                    &"--json",
                ],
                None,
            ),
            0,
        );
        assert_eq!(doctor["healthy"], true, "{doctor}");
        assert!(log.join("report.json").is_file());
    }
    assert_eq!(statuses[0], statuses[1], "the two binaries' status differ");

    // The earlier grammar of envpack-unpack gives the same answers.
    let unpack = unpack_bin();
    let old_status = json(
        &cli(&unpack, &[&"--status", &"--root", &root, &"--json"], None),
        0,
    );
    assert_eq!(old_status, statuses[0]);
    let old_verify = json(
        &cli(&unpack, &[&"--verify", &"--root", &root, &"--json"], None),
        0,
    );
    assert_eq!(old_verify["differences"], serde_json::json!([]));
    done(root);
}

#[test]
fn unpack_and_rollback_through_either_binary() {
    let b = built();
    let second = second_artifact();
    for (i, bin) in both().iter().enumerate() {
        let root = b.work.join(format!("grammar-unpack-{i}"));
        let _ = fs_err::remove_dir_all(&root);
        let first = json(
            &cli(
                bin,
                &[
                    &"unpack",
                    &b.artifact,
                    &"--root",
                    &root,
                    &"--no-keep-artifact",
                    &"--json",
                ],
                None,
            ),
            0,
        );
        assert_eq!(first["env_id"], b.env_id.as_str());
        let kept = root.join(".envpack/artifacts");
        let kept_files = fs_err::read_dir(&kept).map(|d| d.count()).unwrap_or(0);
        assert_eq!(
            kept_files,
            0,
            "--no-keep-artifact kept a copy in {}",
            kept.display()
        );

        let next = json(&cli(bin, &[&"unpack", &second, &"--json"], Some(&root)), 0);
        let second_id = next["env_id"].as_str().unwrap().to_string();
        assert_ne!(second_id, b.env_id);
        assert_eq!(next["previous"], b.env_id.as_str());

        let back = json(
            &cli(bin, &[&"rollback", &"--root", &root, &"--json"], None),
            0,
        );
        assert_eq!(back["env_id"], b.env_id.as_str(), "{back}");
        let status = json(
            &cli(bin, &[&"status", &"--root", &root, &"--json"], None),
            0,
        );
        assert_eq!(status["current"], b.env_id.as_str());
        assert_eq!(status["previous"], second_id.as_str());
        done(root);
    }
    // The earlier spellings: `envpack-unpack --rollback` and `envpack unpack --rollback`.
    let root = b.work.join("grammar-unpack-old");
    let _ = fs_err::remove_dir_all(&root);
    run(Command::new(unpack_bin())
        .arg(&b.artifact)
        .arg("--root")
        .arg(&root));
    run(Command::new(unpack_bin())
        .arg(&second)
        .arg("--root")
        .arg(&root));
    let status = json(
        &cli(
            &unpack_bin(),
            &[&"status", &"--root", &root, &"--json"],
            None,
        ),
        0,
    );
    let second_id = status["current"].as_str().unwrap().to_string();
    assert_ne!(second_id, b.env_id);
    let back = json(
        &cli(
            &unpack_bin(),
            &[&"--rollback", &"--root", &root, &"--json"],
            None,
        ),
        0,
    );
    assert_eq!(back["env_id"], b.env_id.as_str());
    let forth = json(
        &cli(
            &envpack_bin(),
            &[&"unpack", &"--rollback", &"--root", &root, &"--json"],
            None,
        ),
        0,
    );
    assert_eq!(forth["env_id"], second_id.as_str(), "{forth}");
    done(root);
}

#[test]
fn mixed_or_incomplete_command_lines_change_nothing() {
    let b = built();
    let root = b.work.join("grammar-refused");
    let _ = fs_err::remove_dir_all(&root);
    let unpack = unpack_bin();
    for args in [
        vec![
            &"--doctor" as &dyn AsRef<std::ffi::OsStr>,
            &"doctor",
            &"--root",
            &root,
        ],
        vec![&"--verify", &"unpack", &b.artifact, &"--root", &root],
        vec![&"unpack", &b.artifact],
        vec![&"verify"],
    ] {
        let out = cli(&unpack, &args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            !stderr.contains("Some(") && !stderr.contains("{ "),
            "{stderr}"
        );
        assert!(
            !root.exists(),
            "a refused command line made {}",
            root.display()
        );
    }
    let out = cli(&unpack, &[&"--doctor", &"doctor", &"--root", &root], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("go without a subcommand"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn both_binaries_report_errors_alike() {
    let b = built();
    let missing = b.work.join("no-such.envpack.tar");
    for bin in both() {
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        // Nothing to verify: a usage error, exit 2, the same words from both.
        let out = cli(&bin, &[&"verify"], None);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("error: give an ARTIFACT or --root DIR to verify"),
            "{name}: {out:?}"
        );
        // With --json every failure is one JSON object on stdout: clap's usage errors
        // (exit 2), a command line that asks for nothing (exit 2), and a failed run (exit 1).
        for (case, args, code) in [
            (
                "status without --root",
                vec![&"status" as &dyn AsRef<std::ffi::OsStr>, &"--json"],
                2,
            ),
            ("verify of nothing", vec![&"verify", &"--json"], 2),
            (
                "verify of a missing file",
                vec![&"verify", &missing, &"--json"],
                1,
            ),
        ] {
            let out = cli(&bin, &args, None);
            assert_eq!(out.status.code(), Some(code), "{name}, {case}: {out:?}");
            let err: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {out:?}"));
            assert_eq!(err["ok"], false, "{err}");
            assert!(
                err["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{err}"
            );
        }
    }
}
