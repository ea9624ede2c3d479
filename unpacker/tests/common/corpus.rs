//! The hostile-corpus runner shared by the corpus test files: every case is built as raw
//! bytes, wrapped as an artifact and fed to the real `envpack-unpack` binary on a root whose
//! good env is current. Each must fail with a message naming the entry and the rule, write
//! nothing outside the temp root (a canary tree beside it is hashed before and after), change
//! nothing visible in the root, and leave nothing behind after the next run.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::raw::{self, EnvLayers};
use super::{build_artifact, listing, snapshot, EnvSpec};

/// Runs `python3 WRAPPER RSS_FILE PROGRAM ARGS...`: python forks and execs the program,
/// waits for it alone, writes its peak RSS (KiB) to RSS_FILE and exits as it did.
const PEAK_WRAPPER: &str = r#"
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"#;

thread_local! {
    /// The largest peak RSS (KiB) of the `envpack-unpack` runs this thread (one test) made.
    static PEAK_KIB: Cell<u64> = const { Cell::new(0) };
}

/// The largest peak RSS of the unpack runs the calling test made so far, in MB (1024 KiB).
pub fn peak_rss_mb() -> u64 {
    PEAK_KIB.with(Cell::get) / 1024
}

/// Runs the real `envpack-unpack` on `artifact` into `root` and records its peak RSS. The
/// binary is started from a small python3 process, not from this one: a child forked from
/// the test process counts the pages it shares with it at the fork (the test's own buffers
/// and allocator caches, over 100 MB once layers are compressed on several threads) as its
/// own peak, even after exec (Linux folds the old address space's high-water mark in).
pub fn unpack_cmd(artifact: &Path, root: &Path) -> Output {
    let rss_file = artifact.with_extension("rss");
    let out = Command::new("python3")
        .arg("-c")
        .arg(PEAK_WRAPPER)
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_envpack-unpack"))
        .arg(artifact)
        .arg("--root")
        .arg(root)
        .arg("--quiet")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let kib: u64 = fs_err::read_to_string(&rss_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    fs_err::remove_file(&rss_file).unwrap();
    PEAK_KIB.with(|p| p.set(p.get().max(kib)));
    out
}

/// Makes the outer artifact bytes of one case.
pub type Build = Box<dyn Fn(&str) -> Vec<u8>>;

pub struct Case {
    pub id: &'static str,
    pub category: &'static str,
    /// Substrings the error output must contain: the entry (where there is one) and the rule.
    pub expect: Vec<&'static str>,
    pub build: Build,
}

pub fn case(
    id: &'static str,
    category: &'static str,
    expect: &[&'static str],
    build: impl Fn(&str) -> Vec<u8> + 'static,
) -> Case {
    Case {
        id,
        category,
        expect: expect.to_vec(),
        build: Box::new(build),
    }
}

/// An env whose layers are changed by `f`, wrapped with correct digests.
pub fn env(f: impl Fn(&mut EnvLayers)) -> impl Fn(&str) -> Vec<u8> {
    move |id| {
        let mut e = EnvLayers::small(id);
        f(&mut e);
        raw::outer_tar(&e.into_parts().members())
    }
}

/// Hostile bytes appended to one layer of an otherwise good env.
pub fn in_layer(layer: &'static str, bytes: Vec<u8>) -> impl Fn(&str) -> Vec<u8> {
    env(move |e| e.layer_mut(layer).extend_from_slice(&bytes))
}

/// Where escapes would land if a rule were missing.
pub const OUTSIDE: &str = "/tmp/envpack-hostile-escape";

pub struct Fixture {
    _work: tempfile::TempDir,
    /// Parent of the root; nothing outside the root may change.
    pub jail: PathBuf,
    pub root: PathBuf,
    pub cases: PathBuf,
    pub good: PathBuf,
}

pub fn fixture() -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let jail = work.path().join("jail");
    let root = jail.join("root");
    fs_err::create_dir_all(&jail).unwrap();
    fs_err::write(jail.join("sentinel"), "untouched\n").unwrap();
    let good = build_artifact(
        &work.path().join("build"),
        &EnvSpec::new("env-good", "good"),
    );
    let out = unpack_cmd(&good.artifact, &root);
    assert!(out.status.success(), "{out:?}");
    Fixture {
        jail,
        root,
        cases: work.path().join("cases"),
        good: good.artifact,
        _work: work,
    }
}

/// Runs every case against `f`'s root and panics with every failure; returns the count of
/// cases per category.
pub fn run_corpus(f: &Fixture, cases: &[Case]) -> BTreeMap<&'static str, usize> {
    let before = snapshot(&f.jail);
    assert!(before.contains_key("root/current") && before.contains_key("root/bin/hello"));
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "case ids must be distinct");
    let mut table: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in cases {
        let env_id = format!("hostile-{}", c.id);
        let artifact = raw::write_to(&f.cases, c.id, &(c.build)(&env_id));
        let out = unpack_cmd(&artifact, &f.root);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push("accepted".to_string());
        } else if out.status.code() != Some(1) {
            problems.push(format!("exit {:?} (crash?)", out.status));
        }
        for want in &c.expect {
            if !stderr.contains(want) {
                problems.push(format!("message lacks {want:?}"));
            }
        }
        let after = snapshot(&f.jail);
        if after != before {
            let changed: Vec<_> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
                .collect();
            problems.push(format!("jail changed: {changed:?}"));
        }
        if Path::new(OUTSIDE).exists() || f.jail.parent().unwrap().join("escape.txt").exists() {
            problems.push("something escaped the root".into());
        }
        // The next run finds nothing to clean and changes nothing.
        let next = unpack_cmd(&f.good, &f.root);
        if !next.status.success() || !listing(&f.root.join(".envpack/tmp")).is_empty() {
            problems.push(format!("next run: {next:?}"));
        }
        if snapshot(&f.jail) != before {
            problems.push("jail changed after the next run".into());
        }
        if problems.is_empty() {
            let last = stderr.lines().last().unwrap_or("").trim();
            println!(
                "{:<34} {}",
                c.id,
                last.chars().take(200).collect::<String>()
            );
            *table.entry(c.category).or_default() += 1;
        } else {
            failures.push(format!("{} ({}): {problems:?}\n{stderr}", c.id, c.category));
        }
    }
    println!(
        "hostile corpus: {} cases rejected cleanly",
        cases.len() - failures.len()
    );
    for (category, n) in &table {
        println!("  {category}: {n}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    table
}
