//! End-to-end tests of the unpacker library on small real artifacts.

mod common;

#[cfg(unix)]
use std::cell::RefCell;
#[cfg(unix)]
use std::path::Path;
#[cfg(unix)]
use std::process::Command;

#[cfg(unix)]
use common::corrupt_a_layer;
use common::{build_artifact, listing, no_progress, EnvSpec};
use envpack_unpack::{rollback, unpack, verify_artifact, verify_root, UnpackError};
#[cfg(unix)]
use envpack_unpack::{status, ProgressEvent};

#[cfg(unix)]
fn run(cmd: &Path, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(unix)]
fn inode(p: &Path) -> (u64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs_err::metadata(p).unwrap();
    (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000)
}

#[cfg(unix)]
#[test]
fn unpack_makes_env_link_shims_and_state() {
    let work = tempfile::tempdir().unwrap();
    let built = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let root = work.path().join("root");
    let events = RefCell::new(Vec::new());
    let outcome = unpack(&built.artifact, &root, &|e| events.borrow_mut().push(e)).unwrap();
    assert_eq!(outcome.env_id, "env-one");
    assert_eq!(outcome.previous, None);
    assert!(!outcome.already_current);

    let events = events.into_inner();
    assert_eq!(
        events.first(),
        Some(&ProgressEvent::VerifyingLayers { count: 3 })
    );
    assert_eq!(
        events[1],
        ProgressEvent::Extracting {
            layer: "meta".into()
        }
    );
    assert_eq!(
        events.last(),
        Some(&ProgressEvent::Switching {
            env_id: "env-one".into()
        })
    );

    assert_eq!(
        fs_err::read_to_string(root.join("envs/env-one/lib/data.txt")).unwrap(),
        "data one\n"
    );
    assert!(root.join("envs/env-one/lib/emptydir").is_dir());
    assert_eq!(
        fs_err::read_link(root.join("current")).unwrap(),
        Path::new("envs/env-one")
    );
    assert_eq!(
        fs_err::read_link(root.join("envs/env-one/bin/hi")).unwrap(),
        Path::new("hello")
    );

    // Shims run the env's programs, also via the env's own symlink.
    assert_eq!(
        run(&root.join("bin/hello"), &["x", "y z"]),
        "hello one x y z\n"
    );
    assert_eq!(run(&root.join("bin/hi"), &[]), "hello one \n");
    let sourced = run(
        Path::new("/bin/sh"),
        &[
            "-c",
            &format!(
                ". '{}'; echo \"$ENVPACK_TEST_ACTIVE\"",
                root.join("bin/activate").display()
            ),
        ],
    );
    assert_eq!(sourced, "one\n");
    if Path::new("/bin/bash").exists() {
        // bash finds the shim's own location instead of the recorded root path, so a moved
        // root still activates.
        let moved = work.path().join("moved-root");
        fs_err::rename(&root, &moved).unwrap();
        let script = format!(
            ". '{}'; echo \"$ENVPACK_TEST_ACTIVE\"",
            moved.join("bin/activate").display()
        );
        assert_eq!(run(Path::new("/bin/bash"), &["-c", &script]), "one\n");
        assert_eq!(run(&moved.join("bin/hello"), &[]), "hello one \n");
        fs_err::rename(&moved, &root).unwrap();
    }

    let seeded = root.join("state/env-one/conan-home/profiles/default");
    assert_eq!(
        fs_err::read_to_string(&seeded).unwrap(),
        "[settings]\n# one\n"
    );
    assert!(listing(&root.join(".envpack/tmp")).is_empty());
    let st = status(&root).unwrap();
    assert_eq!(
        (st.current.as_deref(), st.previous.as_deref()),
        (Some("env-one"), None)
    );
    assert_eq!(st.envs, vec!["env-one".to_string()]);
}

#[cfg(unix)]
#[test]
fn second_unpack_of_same_artifact_is_a_no_op() {
    let work = tempfile::tempdir().unwrap();
    let built = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let root = work.path().join("root");
    unpack(&built.artifact, &root, &no_progress).unwrap();
    let seeded = root.join("state/env-one/conan-home/global.conf");
    fs_err::write(&seeded, "user change\n").unwrap();
    let before = (
        inode(&root.join("envs/env-one")),
        inode(&root.join("envs/env-one/lib/data.txt")),
    );
    let record_before = fs_err::read(root.join(".envpack/root.json")).unwrap();

    let again = unpack(&built.artifact, &root, &no_progress).unwrap();
    assert!(again.already_current);
    assert_eq!(again.env_id, "env-one");
    let after = (
        inode(&root.join("envs/env-one")),
        inode(&root.join("envs/env-one/lib/data.txt")),
    );
    assert_eq!(before, after);
    assert_eq!(
        fs_err::read(root.join(".envpack/root.json")).unwrap(),
        record_before
    );
    assert_eq!(fs_err::read_to_string(&seeded).unwrap(), "user change\n");
}

#[cfg(unix)]
#[test]
fn switch_keeps_previous_and_rollback_toggles() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let two = build_artifact(work.path(), &EnvSpec::new("env-two", "two"));
    let root = work.path().join("root");
    unpack(&one.artifact, &root, &no_progress).unwrap();
    let outcome = unpack(&two.artifact, &root, &no_progress).unwrap();
    assert_eq!(outcome.previous.as_deref(), Some("env-one"));
    assert_eq!(run(&root.join("bin/hello"), &[]), "hello two \n");
    assert!(
        root.join("envs/env-one/lib/data.txt").is_file(),
        "previous env kept"
    );
    assert!(root.join("state/env-two/conan-home").is_dir());

    let back = rollback(&root).unwrap();
    assert_eq!(
        (back.env_id.as_str(), back.previous.as_deref()),
        ("env-one", Some("env-two"))
    );
    assert_eq!(run(&root.join("bin/hello"), &[]), "hello one \n");
    let st = status(&root).unwrap();
    assert_eq!(
        (st.current.as_deref(), st.previous.as_deref()),
        (Some("env-one"), Some("env-two"))
    );
    assert_eq!(st.envs, vec!["env-one".to_string(), "env-two".to_string()]);

    let forth = rollback(&root).unwrap();
    assert_eq!(forth.env_id, "env-two");
    assert_eq!(run(&root.join("bin/hello"), &[]), "hello two \n");

    // Unpacking an env that is present but not current just switches to it.
    let inode_before = inode(&root.join("envs/env-one/lib/data.txt"));
    let re = unpack(&one.artifact, &root, &no_progress).unwrap();
    assert!(!re.already_current);
    assert_eq!(re.previous.as_deref(), Some("env-two"));
    assert_eq!(inode(&root.join("envs/env-one/lib/data.txt")), inode_before);
    assert_eq!(run(&root.join("bin/hello"), &[]), "hello one \n");
}

#[test]
fn rollback_without_previous_is_an_error() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let root = work.path().join("root");
    unpack(&one.artifact, &root, &no_progress).unwrap();
    assert!(matches!(
        rollback(&root),
        Err(UnpackError::NoPrevious { .. })
    ));
    assert!(rollback(&work.path().join("nowhere")).is_err());
}

#[cfg(unix)]
#[test]
fn existing_env_with_other_manifest_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let two = build_artifact(work.path(), &EnvSpec::new("env-two", "two"));
    let root = work.path().join("root");
    unpack(&one.artifact, &root, &no_progress).unwrap();
    unpack(&two.artifact, &root, &no_progress).unwrap();
    let manifest = root.join("envs/env-one/manifest");
    let mut bytes = fs_err::read(&manifest).unwrap();
    bytes.extend_from_slice(b"tampered\n");
    fs_err::write(&manifest, bytes).unwrap();
    let err = unpack(&one.artifact, &root, &no_progress).unwrap_err();
    assert!(matches!(err, UnpackError::EnvMismatch { .. }), "{err}");
    assert_eq!(status(&root).unwrap().current.as_deref(), Some("env-two"));
}

#[cfg(unix)]
#[test]
fn corrupted_artifact_leaves_root_untouched() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let two = build_artifact(work.path(), &EnvSpec::new("env-two", "two"));
    let root = work.path().join("root");
    unpack(&one.artifact, &root, &no_progress).unwrap();
    let before = listing(&root);
    let record = fs_err::read(root.join(".envpack/root.json")).unwrap();

    corrupt_a_layer(&two.artifact, &two.layer_files[0]);
    let err = unpack(&two.artifact, &root, &no_progress).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("python"), "error names the layer: {text}");

    assert_eq!(listing(&root), before);
    assert_eq!(
        fs_err::read(root.join(".envpack/root.json")).unwrap(),
        record
    );
    assert_eq!(
        fs_err::read_link(root.join("current")).unwrap(),
        Path::new("envs/env-one")
    );
    assert_eq!(run(&root.join("bin/hello"), &[]), "hello one \n");

    let report = verify_artifact(&two.artifact).unwrap();
    assert!(!report.differences.is_empty());
    assert!(
        report.differences.iter().any(|d| d.contains("python")),
        "{:?}",
        report.differences
    );
    assert!(
        !report.differences.iter().any(|d| d.contains("in no layer")),
        "entries of an unreadable layer are not reported as missing: {:?}",
        report.differences
    );
}

#[test]
fn layer_entry_missing_from_manifest_is_rejected() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = EnvSpec::new("env-bad", "bad");
    spec.unlisted_extra = true;
    let bad = build_artifact(work.path(), &spec);
    let root = work.path().join("root");
    let err = unpack(&bad.artifact, &root, &no_progress).unwrap_err();
    assert!(err.to_string().contains("lib/smuggled.txt"), "{err}");
    assert!(!root.join("current").exists());
    assert!(listing(&root.join("envs")).is_empty());
    assert!(listing(&root.join(".envpack/tmp")).is_empty());

    let report = verify_artifact(&bad.artifact).unwrap();
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.contains("lib/smuggled.txt") && d.contains("not listed")),
        "{:?}",
        report.differences
    );
}

#[test]
fn manifest_entry_in_no_layer_is_rejected() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = EnvSpec::new("env-short", "short");
    spec.drop_from_layers = Some("lib/empty.txt");
    let short = build_artifact(work.path(), &spec);
    let root = work.path().join("root");
    let err = unpack(&short.artifact, &root, &no_progress).unwrap_err();
    assert!(
        matches!(err, UnpackError::MissingEntries { count: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lib/empty.txt"));
    assert!(!root.join("current").exists());
    assert!(listing(&root.join("envs")).is_empty());
    let report = verify_artifact(&short.artifact).unwrap();
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    assert!(report.differences[0].contains("lib/empty.txt"));
}

#[test]
fn verify_artifact_passes_on_a_good_artifact() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let report = verify_artifact(&one.artifact).unwrap();
    assert_eq!(report.env_id, "env-one");
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(report.files_checked >= 10, "{}", report.files_checked);
}

#[cfg(unix)]
#[test]
fn verify_root_reports_modified_removed_and_extra_files() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let root = work.path().join("root");
    unpack(&one.artifact, &root, &no_progress).unwrap();
    let clean = verify_root(&root).unwrap();
    assert!(clean.differences.is_empty(), "{:?}", clean.differences);
    assert!(clean.files_checked >= 10);

    let env = root.join("envs/env-one");
    fs_err::write(env.join("lib/data.txt"), "changed\n").unwrap();
    fs_err::remove_file(env.join("lib/empty.txt")).unwrap();
    fs_err::write(env.join("lib/extra.txt"), "new\n").unwrap();
    fs_err::remove_file(root.join("bin/hello")).unwrap();
    let report = verify_root(&root).unwrap();
    let has = |needle: &str| report.differences.iter().any(|d| d.contains(needle));
    assert!(has("lib/data.txt"), "{:?}", report.differences);
    assert!(has("lib/empty.txt"), "{:?}", report.differences);
    assert!(has("lib/extra.txt"), "{:?}", report.differences);
    assert!(has("bin/hello is missing"), "{:?}", report.differences);
    assert_eq!(report.differences.len(), 4, "{:?}", report.differences);
}

#[test]
fn concurrent_unpacks_serialize() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let root = work.path().join("root");
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| unpack(&one.artifact, &root, &no_progress)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|o| !o.already_current).count(), 1);
    assert!(verify_root(&root).unwrap().differences.is_empty());
}

#[test]
fn root_that_is_a_file_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let file = work.path().join("file");
    fs_err::write(&file, "x").unwrap();
    let err = unpack(&one.artifact, &file, &no_progress).unwrap_err();
    assert!(matches!(err, UnpackError::BadRoot { .. }), "{err}");
}

#[test]
fn leftovers_of_an_interrupted_unpack_are_cleaned() {
    let work = tempfile::tempdir().unwrap();
    let one = build_artifact(work.path(), &EnvSpec::new("env-one", "one"));
    let root = work.path().join("root");
    let stale = root.join(".envpack/tmp/12345-1-0/env/lib");
    fs_err::create_dir_all(&stale).unwrap();
    fs_err::write(stale.join("half.txt"), "half").unwrap();
    unpack(&one.artifact, &root, &no_progress).unwrap();
    assert!(listing(&root.join(".envpack/tmp")).is_empty());
    assert_eq!(
        listing(&root.join("envs"))
            .iter()
            .filter(|p| !p.contains('/'))
            .count(),
        1
    );
}
