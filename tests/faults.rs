//! Network faults, injected for real: the fixture index and CPython mirror are served through
//! a fault proxy on loopback (tests/support/fault_proxy.rs) that answers 5xx, resets
//! connections mid-body, cuts bodies short, stalls, drips and corrupts. Locking and building
//! through it must give the same lock and the same artifact as a clean network, and nothing
//! that failed its hash may stay in the cache.

// Linux CPython, Linux fixtures and Unix symlinks: these run on Linux only.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use envpack_e2e::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestInfo, Upstream};
use envpack_e2e::*;

const ARTIFACT: &str = "openssl-devenv-linux-x86_64.envpack.tar";

/// A copy of the example spec + lock in a temp dir (the lock is what the faulty run must
/// reproduce byte for byte).
fn example_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("example");
    copy_example(&dir);
    dir
}

fn faulty_envpack(dir: &Path, cache: &Path, index: &str, mirror: &str) -> Command {
    let mut cmd = envpack_cmd(dir, cache, index, mirror);
    cmd.env("ENVPACK_HTTP_STALL_TIMEOUT", "1")
        .env("ENVPACK_HTTP_RETRIES", "4");
    cmd
}

/// Every blob in the cache hashes to its own name, and none is `bad`'s content.
fn assert_cache_clean(cache: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![cache.join("blobs")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                assert_eq!(
                    sha256_file(&p),
                    name,
                    "cache blob {} is not what its name says",
                    p.display()
                );
                n += 1;
            }
        }
    }
    n
}

/// A fixed rotation over the fault kinds, by how many times the path was asked before, so
/// every file meets several faults before it gets through.
fn rotation(info: &RequestInfo) -> Option<Fault> {
    let is_file = info.path.contains("/files/") || info.path.contains("cpython-");
    let is_page = info.path.contains("/simple/") || info.path.ends_with("SHA256SUMS");
    let h = info
        .path
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    if info.path.contains("cpython-") {
        // The big download: cut twice, so it must be continued twice.
        return [
            Some(Fault::ResetMidBody),
            Some(Fault::Truncate),
            Some(Fault::Drip),
        ]
        .get(info.seen_before)
        .copied()
        .flatten();
    }
    match (is_file, is_page, info.seen_before) {
        (true, _, 0) => Some(match h % 4 {
            0 => Fault::ResetMidBody,
            1 => Fault::Truncate,
            2 => Fault::Status(503),
            _ => Fault::Stall(Duration::from_millis(2500)),
        }),
        // The resumed (or restarted) request fails once more for half the files.
        (true, _, 1) if h % 2 == 0 => Some(Fault::Truncate),
        (true, _, 2) => Some(Fault::Drip),
        (_, true, 0) => Some(if h % 2 == 0 {
            Fault::Status(502)
        } else {
            Fault::ResetMidBody
        }),
        _ => None,
    }
}

#[test]
fn lock_and_build_survive_injected_faults_and_match_a_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = example_copy(tmp.path());
    let index = IndexServer::start(&index_dir(), &[]);
    let index_proxy = FaultProxy::start(Upstream::Http(index.base.clone()), Box::new(rotation));
    let mirror_proxy = FaultProxy::start(Upstream::Dir(python_mirror()), Box::new(rotation));
    let index_url = format!("{}/simple/", index_proxy.base);
    let mirror_url = format!("{}/", mirror_proxy.base);

    // Relock through the faults: byte-identical to the committed lock.
    let cache = tmp.path().join("cache");
    let relocked = dir.join("relocked.lock");
    run(faulty_envpack(&dir, &cache, &index_url, &mirror_url)
        .args(["lock", "--out"])
        .arg(&relocked));
    assert_eq!(
        fs_err::read_to_string(&relocked).unwrap(),
        fs_err::read_to_string(dir.join("envpack.lock")).unwrap(),
        "a lock made through faults differs from the clean one"
    );

    // Build through the faults with the same (cold for wheels and CPython) cache.
    let out = tmp.path().join("out");
    run(faulty_envpack(&dir, &cache, &index_url, &mirror_url)
        .args(["build", "--out"])
        .arg(&out));
    let faulty_digest = sha256_file(&out.join(ARTIFACT));

    // The same build on a clean network with a fresh cache.
    let clean_cache = tmp.path().join("clean-cache");
    let clean_out = tmp.path().join("clean-out");
    let mirror_file_url = url_of_dir(&python_mirror());
    run(
        faulty_envpack(&dir, &clean_cache, &index.url, &mirror_file_url)
            .args(["build", "--out"])
            .arg(&clean_out),
    );
    assert_eq!(faulty_digest, sha256_file(&clean_out.join(ARTIFACT)));

    let blobs = assert_cache_clean(&cache);
    let (i, m) = (index_proxy.stats(), mirror_proxy.stats());
    eprintln!("index proxy: {i:?}\nmirror proxy: {m:?}\ncache blobs: {blobs}");
    let mut total = std::collections::BTreeMap::new();
    for s in [&i, &m] {
        for (k, v) in &s.faults {
            *total.entry(*k).or_insert(0usize) += v;
        }
    }
    for kind in [
        "5xx status",
        "reset mid-body",
        "truncated body",
        "stalled response",
        "slow body",
    ] {
        assert!(
            total.get(kind).copied().unwrap_or(0) >= 1,
            "no {kind} was injected: {total:?}"
        );
    }
    let survived: usize = total.values().sum();
    assert!(survived >= 20, "only {survived} faults injected: {total:?}");
    // The CPython archive (tens of MB) was cut and continued with a range request.
    assert!(
        m.ranged_answers >= 2,
        "the CPython download was not resumed twice: {m:?}"
    );
    println!(
        "FAULTS-SURVIVED {survived} {total:?} resumed={}",
        i.ranged_answers + m.ranged_answers
    );
}

#[test]
fn corrupted_bytes_are_refused_and_never_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = example_copy(tmp.path());
    let index = IndexServer::start(&index_dir(), &[]);
    let corrupt: FaultPlan =
        Box::new(|info: &RequestInfo| info.path.contains("cpython-").then_some(Fault::Corrupt));
    let mirror_proxy = FaultProxy::start(Upstream::Dir(python_mirror()), corrupt);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    let o = faulty_envpack(&dir, &cache, &index.url, &format!("{}/", mirror_proxy.base))
        .args(["build", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success(), "a corrupted CPython was accepted");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cpython-3.11.7+envpack1"),
        "error does not name the file: {err}"
    );
    assert!(
        err.contains("sha256"),
        "error does not say the hash differs: {err}"
    );
    assert!(!out.join(ARTIFACT).exists(), "an artifact was written");
    assert_cache_clean(&cache);
    let tmp_left: Vec<_> = fs_err::read_dir(cache.join("tmp"))
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(
        tmp_left.is_empty(),
        "temp files left in the cache: {tmp_left:?}"
    );
    assert!(
        mirror_proxy
            .stats()
            .faults
            .get("corrupted body")
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn a_mirror_that_keeps_failing_gives_up_with_the_url_and_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = example_copy(tmp.path());
    let index = IndexServer::start(&index_dir(), &[]);
    let always: FaultPlan =
        Box::new(|info: &RequestInfo| info.path.contains("cpython-").then_some(Fault::Status(503)));
    let mirror_proxy = FaultProxy::start(Upstream::Dir(python_mirror()), always);
    let cache = tmp.path().join("cache");
    let o = faulty_envpack(&dir, &cache, &index.url, &format!("{}/", mirror_proxy.base))
        .env("ENVPACK_HTTP_RETRIES", "2")
        .args(["build", "--out"])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("503") && err.contains(&mirror_proxy.base),
        "{err}"
    );
    // One first try and two retries, no more.
    assert_eq!(
        mirror_proxy.stats().faults.get("5xx status").copied(),
        Some(3)
    );
    assert_cache_clean(&cache);
}

fn url_of_dir(p: &Path) -> String {
    format!("file://{}/", p.display())
}
