//! A root whose own structure was redirected by planted links, and kills at every step
//! boundary of an unpack. Run with the real `envpack-unpack` binary, as the current user and
//! (when the tests run as root) as an unprivileged user on a root that user owns.
#![cfg(unix)]

mod common;

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::{Command, Output};

use common::{build_artifact, snapshot, EnvSpec};

/// Runs the unpacker with `args`, as `uid` (through setpriv) when given.
fn run(args: &[&std::ffi::OsStr], uid: Option<u32>, abort_at: Option<&str>) -> Output {
    let bin = env!("CARGO_BIN_EXE_envpack-unpack");
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args).env("NO_COLOR", "1");
    if let Some(point) = abort_at {
        cmd.env("ENVPACK_UNPACK_ABORT_AT", point);
    }
    cmd.output().unwrap()
}

fn unpack(artifact: &Path, root: &Path, uid: Option<u32>) -> Output {
    run(
        &[artifact.as_os_str(), "--root".as_ref(), root.as_os_str()],
        uid,
        None,
    )
}

fn verify(root: &Path) -> Output {
    run(
        &["--verify".as_ref(), "--root".as_ref(), root.as_os_str()],
        None,
        None,
    )
}

/// Where each planted link goes, relative to the root, and what must exist there before.
const PLANTED: &[&str] = &[
    ".envpack",
    ".envpack/tmp",
    ".envpack/artifacts",
    ".envpack/root.json",
    ".envpack/lock",
    "envs",
    "state",
    "state/{id}",
    "bin",
];

fn planted_links_are_refused(uid: Option<u32>) {
    let work = tempfile::tempdir().unwrap();
    let mut perm = fs_err::metadata(work.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    fs_err::set_permissions(work.path(), perm).unwrap();
    let a = build_artifact(&work.path().join("a"), &EnvSpec::new("env-a", "one"));
    let b = build_artifact(&work.path().join("b"), &EnvSpec::new("env-b", "two"));
    for rel in PLANTED {
        let case = work
            .path()
            .join(format!("case-{}", rel.replace(['/', '{', '}'], "_")));
        let jail = case.join("jail");
        let root = jail.join("root");
        let outside = case.join("outside");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::create_dir_all(outside.join("victim-dir")).unwrap();
        fs_err::write(outside.join("victim.txt"), "precious\n").unwrap();
        fs_err::write(outside.join("victim-dir/secret"), "secret\n").unwrap();
        if let Some(uid) = uid {
            for p in [&case, &jail, &root, &outside] {
                std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
            }
            // The artifacts must be readable by that user.
            for f in [&a.artifact, &b.artifact] {
                let mut perm = fs_err::metadata(f).unwrap().permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
                fs_err::set_permissions(f, perm).unwrap();
            }
        }
        let out = unpack(&a.artifact, &root, uid);
        assert!(out.status.success(), "{rel}: first unpack: {out:?}");
        let id = fs_err::read_link(root.join("current")).unwrap();
        let id = id.file_name().unwrap().to_str().unwrap().to_owned();
        let rel = rel.replace("{id}", &id);
        let at = root.join(&rel);
        // Move the real thing aside and plant a link to the outside in its place.
        if fs_err::symlink_metadata(&at).is_ok() {
            fs_err::rename(&at, case.join("moved-aside")).unwrap();
        }
        let target = if rel.ends_with(".json") || rel.ends_with("lock") {
            outside.join("victim.txt")
        } else {
            outside.clone()
        };
        symlink(&target, &at).unwrap();
        let outside_before = snapshot(&outside);
        let jail_before = snapshot(&jail);
        for attempt in [
            unpack(&b.artifact, &root, uid),
            run(
                &["--rollback".as_ref(), "--root".as_ref(), root.as_os_str()],
                uid,
                None,
            ),
        ] {
            let stderr = String::from_utf8_lossy(&attempt.stderr);
            assert_eq!(attempt.status.code(), Some(1), "{rel}: {attempt:?}");
            assert!(
                stderr.contains(&rel) && stderr.contains("is a link"),
                "{rel}: {stderr}"
            );
            assert_eq!(snapshot(&outside), outside_before, "{rel}: outside changed");
            assert_eq!(snapshot(&jail), jail_before, "{rel}: root changed");
        }
        let v = verify(&root);
        assert_eq!(v.status.code(), Some(1), "{rel}: verify {v:?}");
        if let Some(uid) = uid {
            assert_eq!(fs_err::metadata(&root).unwrap().uid(), uid);
        }
    }
}

#[test]
fn planted_links_in_a_root_are_refused() {
    planted_links_are_refused(None);
}

#[test]
fn planted_links_are_refused_as_an_unprivileged_user() {
    if !rustix_is_root() {
        // Running unprivileged already: the test above covers this user.
        return;
    }
    planted_links_are_refused(Some(65534));
}

fn rustix_is_root() -> bool {
    fs_err::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) == 0
}

/// The unpacker's named crash points, in the order an unpack passes them.
const POINTS: &[&str] = &[
    "extracted",
    "env-in-place",
    "state-seeded",
    "shims-written",
    "switch-announced",
    "switched",
    "stale-shims-removed",
    "recorded",
];

#[test]
fn a_kill_at_every_step_leaves_a_verifiable_root() {
    let work = tempfile::tempdir().unwrap();
    let a = build_artifact(&work.path().join("a"), &EnvSpec::new("env-a", "one"));
    let b = build_artifact(&work.path().join("b"), &EnvSpec::new("env-b", "two"));
    for point in POINTS {
        let root = work.path().join(format!("root-{point}"));
        assert!(unpack(&a.artifact, &root, None).status.success());
        let killed = run(
            &[b.artifact.as_os_str(), "--root".as_ref(), root.as_os_str()],
            None,
            Some(point),
        );
        assert!(!killed.status.success(), "{point}: did not abort");
        let v = verify(&root);
        assert!(
            v.status.success(),
            "{point}: verify after the kill: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        // A re-run finishes the job and leaves a clean, verified root with b current.
        let again = unpack(&b.artifact, &root, None);
        assert!(again.status.success(), "{point}: re-run {again:?}");
        assert!(
            verify(&root).status.success(),
            "{point}: verify after re-run"
        );
        let current = fs_err::read_link(root.join("current")).unwrap();
        let record = fs_err::read_to_string(root.join(".envpack/root.json")).unwrap();
        let id = current.file_name().unwrap().to_str().unwrap();
        assert!(
            record.contains(&format!("\"current\": \"{id}\"")),
            "{point}: {record}"
        );
        assert!(!record.contains("switching_to"), "{point}: {record}");
        // The rollback target is the env that was current before the interrupted run.
        let back = run(
            &["--rollback".as_ref(), "--root".as_ref(), root.as_os_str()],
            None,
            None,
        );
        assert!(back.status.success(), "{point}: rollback {back:?}");
        assert!(
            verify(&root).status.success(),
            "{point}: verify after rollback"
        );
        assert_ne!(
            fs_err::read_link(root.join("current")).unwrap(),
            current,
            "{point}"
        );
    }
}

/// A concurrent writer swaps each of the root's directories for a link to the outside right
/// after the unpack checked them (the hook runs at a named step): the unpacker works through
/// the handles it opened, so nothing lands outside.
#[test]
fn links_swapped_in_during_an_unpack_redirect_nothing() {
    let work = tempfile::tempdir().unwrap();
    let a = build_artifact(&work.path().join("a"), &EnvSpec::new("env-a", "one"));
    let b = build_artifact(&work.path().join("b"), &EnvSpec::new("env-b", "two"));
    for (point, rel) in [
        ("extracted", "envs"),
        ("extracted", ".envpack/tmp"),
        ("extracted", ".envpack"),
        ("env-in-place", "state"),
        ("state-seeded", "bin"),
        ("shims-written", ".envpack"),
    ] {
        let case = work
            .path()
            .join(format!("race-{point}-{}", rel.replace('/', "_")));
        let root = case.join("root");
        let outside = case.join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        assert!(unpack(&a.artifact, &root, None).status.success());
        let hook = format!(
            "mv '{r}/{rel}' '{c}/moved' && ln -s '{o}' '{r}/{rel}'",
            r = root.display(),
            c = case.display(),
            o = outside.display()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_envpack-unpack"))
            .arg(&b.artifact)
            .arg("--root")
            .arg(&root)
            .env("ENVPACK_UNPACK_HOOK_AT", point)
            .env("ENVPACK_UNPACK_HOOK", &hook)
            .output()
            .unwrap();
        assert!(
            fs_err::read_link(root.join(rel)).is_ok(),
            "{point} {rel}: the hook did not run: {out:?}"
        );
        let listing: Vec<_> = fs_err::read_dir(&outside).unwrap().collect();
        assert!(
            listing.is_empty(),
            "{point} {rel}: wrote outside: {listing:?} {out:?}"
        );
        // The next command sees the planted link and refuses.
        let v = verify(&root);
        assert_eq!(v.status.code(), Some(1), "{point} {rel}: {v:?}");
    }
}

/// `ROOT/.envpack/doctor` (doctor's default log dir) and `ROOT/.envpack/quarantine` (where
/// repair moves what it replaces) are created only by doctor and repair, so a link planted
/// there before either ran would take their writes (logs, a scratch HOME, env files moved
/// aside) outside the root.
#[test]
fn planted_doctor_and_quarantine_dirs_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let a = build_artifact(&work.path().join("a"), &EnvSpec::new("env-a", "one"));
    for rel in [".envpack/doctor", ".envpack/quarantine"] {
        let case = work.path().join(format!("case-{}", rel.replace('/', "_")));
        let root = case.join("root");
        let outside = case.join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(outside.join("victim.txt"), "precious\n").unwrap();
        assert!(unpack(&a.artifact, &root, None).status.success());
        let current = root.join(fs_err::read_link(root.join("current")).unwrap());
        // Something repair would move into the quarantine.
        fs_err::write(current.join("lib/extra.txt"), "planted\n").unwrap();
        symlink(&outside, root.join(rel)).unwrap();
        let before = snapshot(&outside);
        for mode in ["--doctor", "--repair"] {
            let out = run(
                &[mode.as_ref(), "--root".as_ref(), root.as_os_str()],
                None,
                None,
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(snapshot(&outside), before, "{rel} {mode}: outside changed");
            assert_eq!(out.status.code(), Some(2), "{rel} {mode}: {out:?}");
            assert!(
                stderr.contains(rel) && stderr.contains("is a link"),
                "{rel} {mode}: {stderr}"
            );
            assert!(current.join("lib/extra.txt").is_file(), "{rel} {mode}");
        }
    }
}

/// Links planted inside the current env (a directory, a file, a program) are damage that
/// `--verify --root` and `--doctor` report and `--repair` undoes from the kept artifact,
/// without reading or writing through them.
#[test]
fn planted_links_inside_the_env_are_repaired_without_following() {
    let work = tempfile::tempdir().unwrap();
    let a = build_artifact(&work.path().join("a"), &EnvSpec::new("env-a", "one"));
    for rel in ["lib", "lib/data.txt", "bin/hello", "lib/emptydir"] {
        let case = work.path().join(format!("case-{}", rel.replace('/', "_")));
        let root = case.join("root");
        let outside = case.join("outside");
        assert!(unpack(&a.artifact, &root, None).status.success());
        let env = root.join(fs_err::read_link(root.join("current")).unwrap());
        let at = env.join(rel);
        // The outside copy holds what was there, with a wrong mode on every file.
        fs_err::rename(&at, &outside).unwrap();
        for (path, _) in snapshot(&outside) {
            let p = outside.join(&path);
            if p.is_file() {
                let mut perm = fs_err::metadata(&p).unwrap().permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
                fs_err::set_permissions(&p, perm).unwrap();
            }
        }
        if outside.is_file() {
            let mut perm = fs_err::metadata(&outside).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
            fs_err::set_permissions(&outside, perm).unwrap();
        }
        symlink(&outside, &at).unwrap();
        let before = fs_err::metadata(&outside).map(|m| m.mode()).unwrap();
        let before_tree = snapshot(&case.join("outside"));
        assert_eq!(verify(&root).status.code(), Some(1), "{rel}: verify");
        let doctor = run(
            &["--doctor".as_ref(), "--root".as_ref(), root.as_os_str()],
            None,
            None,
        );
        assert_ne!(doctor.status.code(), Some(0), "{rel}: doctor {doctor:?}");
        let repair = run(
            &["--repair".as_ref(), "--root".as_ref(), root.as_os_str()],
            None,
            None,
        );
        assert_eq!(
            fs_err::metadata(&outside).map(|m| m.mode()).unwrap(),
            before,
            "{rel}: outside mode changed"
        );
        assert_eq!(snapshot(&outside), before_tree, "{rel}: outside changed");
        assert!(
            !fs_err::symlink_metadata(&at)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{rel}: still a link after repair {repair:?}"
        );
        let v = verify(&root);
        assert!(
            v.status.success(),
            "{rel}: verify after repair {v:?} {repair:?}"
        );
    }
}

/// `ROOT/current` replaced by a link to an env tree outside the root that merely ends in
/// `envs/<id>`: every command must see that it no longer points at `ROOT/envs/<id>`.
#[test]
fn current_pointing_outside_is_not_trusted() {
    let work = tempfile::tempdir().unwrap();
    let a = build_artifact(&work.path().join("a"), &EnvSpec::new("env-a", "one"));
    let root = work.path().join("root");
    assert!(unpack(&a.artifact, &root, None).status.success());
    let target = fs_err::read_link(root.join("current")).unwrap();
    let id = target.file_name().unwrap().to_owned();
    let evil = work.path().join("evil/envs");
    fs_err::create_dir_all(&evil).unwrap();
    // A copy of the env with one program changed, outside the root.
    let copy = Command::new("cp")
        .arg("-a")
        .arg(root.join(&target))
        .arg(evil.join(&id))
        .status()
        .unwrap();
    assert!(copy.success());
    fs_err::write(evil.join(&id).join("bin/hello"), "#!/bin/sh\necho evil\n").unwrap();
    let abs = evil.join(&id);
    let rel = Path::new("envs/../../evil/envs").join(&id);
    for planted in [abs.as_path(), rel.as_path()] {
        fs_err::remove_file(root.join("current")).unwrap();
        symlink(planted, root.join("current")).unwrap();
        let v = verify(&root);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        assert_eq!(
            v.status.code(),
            Some(1),
            "{}: verify {text}",
            planted.display()
        );
        assert!(text.contains("current"), "{}: {text}", planted.display());
        let d = run(
            &["--doctor".as_ref(), "--root".as_ref(), root.as_os_str()],
            None,
            None,
        );
        assert_ne!(
            d.status.code(),
            Some(0),
            "{}: doctor {d:?}",
            planted.display()
        );
    }
}
