//! The offline vulnerability gate on real locks: a lock resolved from the local index with the
//! real wheels of versions that have published advisories (requests 2.31.0, idna 3.6, jinja2
//! 3.1.4, urllib3 2.2.1) against OSV records of those advisories (tests/vulns/), as a directory
//! and as an all.zip; the clean fixture lock passes; CPython's own records; SARIF; bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envpack_e2e::*;
use serde_json::Value;

fn records() -> PathBuf {
    repo_root().join("tests/vulns")
}

fn audit(dir: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(envpack_bin());
    cmd.current_dir(dir).arg("audit");
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A lock of the four vulnerable versions, resolved for real from an index of their wheels
/// plus the fixture wheelhouse (their dependencies).
fn vulnerable_lock(work: &Path) -> PathBuf {
    let wheels = work.join("wheels");
    fs_err::create_dir_all(&wheels).unwrap();
    let vuln = fixtures_dir().join("vuln-wheels");
    assert!(
        vuln.join(".stamp").is_file(),
        "{} is missing: run scripts/test.sh once",
        vuln.display()
    );
    for dir in [wheelhouse(), vuln] {
        for e in fs_err::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "whl") {
                fs_err::copy(&p, wheels.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let index_dir = work.join("index");
    build_index(&wheels, &index_dir);
    let index = IndexServer::start(&index_dir, &[]);
    let spec_dir = work.join("spec");
    fs_err::create_dir_all(spec_dir.join("profiles")).unwrap();
    fs_err::write(
        spec_dir.join("envpack.toml"),
        "[env]\nname = \"vulnerable\"\nplatforms = [\"linux-x86_64\"]\n\n\
         [python]\nversion = \"3.11.7\"\nbuild = \"envpack1\"\n\n\
         [packages]\nrequirements = [\"requests==2.31.0\", \"idna==3.6\", \"jinja2==3.1.4\", \"urllib3==2.2.1\"]\n\n\
         [conan.profiles]\ndefault = \"profiles/default\"\n",
    )
    .unwrap();
    fs_err::write(
        spec_dir.join("profiles/default"),
        "[settings]\nos=Linux\narch=x86_64\n",
    )
    .unwrap();
    let mirror = format!("file://{}", python_mirror().display());
    run(envpack_cmd(&spec_dir, &work.join("cache"), &index.url, &mirror).arg("lock"));
    spec_dir.join("envpack.lock")
}

/// The clean fixture lock: Conan 2.21.0 with today's requests, idna, jinja2, urllib3.
fn clean_lock(work: &Path) -> PathBuf {
    let index = IndexServer::start(&index_dir(), &[]);
    let dir = work.join("clean");
    write_fixture_spec_dir(
        &dir,
        &["linux-x86_64"],
        "[settings]\nos=Linux\narch=x86_64\n",
    );
    let mirror = format!("file://{}", python_mirror().display());
    run(envpack_cmd(&dir, &work.join("cache"), &index.url, &mirror).arg("lock"));
    dir.join("envpack.lock")
}

fn zip_of(dirs: &[PathBuf], out: &Path) {
    let file = fs_err::File::create(out).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for d in dirs {
        for e in fs_err::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                zip.start_file(
                    p.file_name().unwrap().to_string_lossy(),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
                std::io::Write::write_all(&mut zip, &fs_err::read(&p).unwrap()).unwrap();
            }
        }
    }
    zip.finish().unwrap();
}

fn ids(report: &Value) -> Vec<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    f["package"].as_str().unwrap(),
                    f["version"].as_str().unwrap()
                ),
                f["fixed"].as_str().unwrap_or("-").to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_lock_of_vulnerable_versions_fails_the_gate_and_a_clean_one_passes() {
    let work = process_dir("envpack-vulns-");
    fs_err::create_dir_all(&work).unwrap();
    let lock = vulnerable_lock(&work);
    let all_zip = work.join("all.zip");
    zip_of(
        &[records().join("pypi"), records().join("cpython")],
        &all_zip,
    );

    for db in [records().join("pypi"), all_zip.clone()] {
        let out = audit(&work, &[&"--vulns", &db, &"--lock", &lock, &"--json"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json_of(&out);
        let mut found = ids(&report);
        found.retain(|(_, p, _, _)| !p.starts_with("cpython"));
        let mut want = vec![
            ("GHSA-9wx4-h78v-vm56", "requests 2.31.0", "2.32.0", "medium"),
            ("GHSA-jjg7-2v4v-x38h", "idna 3.6", "3.7", "medium"),
            ("GHSA-gmj6-6f8f-6699", "jinja2 3.1.4", "3.1.5", "medium"),
            ("GHSA-q2x7-8rv6-6q7h", "jinja2 3.1.4", "3.1.5", "medium"),
            ("GHSA-34jh-p97f-mpxf", "urllib3 2.2.1", "2.2.2", "medium"),
        ];
        want.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        found.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        let found: Vec<(&str, &str, &str, &str)> = found
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
            .collect();
        // PYSEC-2023-74 (fixed in 2.31.0) and the withdrawn record are not findings;
        // PYSEC-2024-60 is GHSA-jjg7-2v4v-x38h's alias and merges into it.
        assert_eq!(found, want, "{report:#}");
        assert_eq!(report["failed"], true);
        let idna = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["package"] == "idna")
            .unwrap();
        assert_eq!(
            idna["aliases"],
            serde_json::json!(["CVE-2024-3651", "PYSEC-2024-60"]),
            "{idna:#}"
        );
        // How fresh the snapshot is: its newest record's modified time.
        assert_eq!(report["newest_modified"], "2025-01-08T16:05:00Z");
    }

    // The same as text, and the gate: medium findings pass --fail-on high.
    let out = audit(
        &work,
        &[&"--vulns", &records().join("pypi"), &"--lock", &lock],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MEDIUM GHSA-9wx4-h78v-vm56 (CVE-2024-35195): requests 2.31.0, fixed in 2.32.0, severity medium"),
        "{text}"
    );
    assert!(
        text.contains("newest modified 2025-01-08T16:05:00Z"),
        "{text}"
    );
    assert!(
        text.contains("5 vulnerabilities; --fail-on low: FAILED"),
        "{text}"
    );
    let out = audit(
        &work,
        &[
            &"--vulns",
            &records().join("pypi"),
            &"--lock",
            &lock,
            &"--fail-on",
            &"high",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // SARIF for code scanning: one result per finding, in the lock.
    let sarif = work.join("vulns.sarif");
    let out = audit(
        &work,
        &[
            &"--vulns",
            &records().join("pypi"),
            &"--lock",
            &lock,
            &"--sarif",
            &sarif,
            &"--fail-on",
            &"none",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_str(&fs_err::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for r in results {
        assert_eq!(r["level"], "warning");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            format!("file://{}", fs_err::canonicalize(&lock).unwrap().display())
        );
        let rule = r["ruleId"].as_str().unwrap();
        assert!(doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == rule));
    }

    // The clean fixture lock passes the package advisories.
    let clean = clean_lock(&work);
    let out = audit(
        &work,
        &[
            &"--vulns",
            &records().join("pypi"),
            &"--lock",
            &clean,
            &"--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    assert_eq!(report["findings"], serde_json::json!([]));
    let checked: Vec<&str> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for pkg in [
        "requests 2.34.2",
        "idna 3.20",
        "jinja2 3.1.6",
        "urllib3 2.8.0",
        "cpython 3.11.7",
    ] {
        assert!(checked.contains(&pkg), "{pkg} not in {checked:?}");
    }
    let _ = fs_err::remove_dir_all(&work);
}

#[test]
fn cpython_is_checked_against_its_own_records() {
    let work = process_dir("envpack-vulns-py-");
    fs_err::create_dir_all(&work).unwrap();
    let lock = clean_lock(&work);
    let out = audit(
        &work,
        &[
            &"--vulns",
            &records().join("cpython"),
            &"--lock",
            &lock,
            &"--json",
            &"--fail-on",
            &"critical",
        ],
    );
    // No severity in CPython's records: unknown fails every gate but none.
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out);
    assert_eq!(
        ids(&report),
        vec![(
            "PSF-0000-CVE-2024-0450".to_owned(),
            "cpython 3.11.7".to_owned(),
            "-".to_owned(),
            "unknown".to_owned()
        )]
    );
    let unevaluated = report["unevaluated"].as_array().unwrap();
    assert_eq!(unevaluated.len(), 1, "{report:#}");
    assert!(unevaluated[0]
        .as_str()
        .unwrap()
        .starts_with("PSF-0000-CVE-2024-6232 (cpython 3.11.7): only git commit ranges"));
    let out = audit(
        &work,
        &[
            &"--vulns",
            &records().join("cpython"),
            &"--lock",
            &lock,
            &"--fail-on",
            &"none",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let _ = fs_err::remove_dir_all(&work);
}

#[test]
fn a_broken_database_or_gate_is_a_clear_error() {
    let work = process_dir("envpack-vulns-bad-");
    fs_err::create_dir_all(work.join("db")).unwrap();
    let lock = repo_root().join("lockfiles/local-devenv/envpack.lock");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--vulns".into(), work.join("nowhere").display().to_string()],
            "OSV directory or all.zip",
        ),
        (
            vec!["--vulns".into(), work.join("db").display().to_string()],
            "no OSV records (.json) found",
        ),
        (
            vec!["--vulns".into(), lock.display().to_string()],
            "is not a zip (an OSV all.zip) or a directory",
        ),
    ];
    for (args, want) in &cases {
        let mut cmd = Command::new(envpack_bin());
        cmd.current_dir(&work)
            .arg("audit")
            .args(args)
            .arg("--lock")
            .arg(&lock);
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
    // A gate that can't be parsed is a command line that can't run (exit 2), as is a flag
    // --vulns doesn't use.
    for extra in [
        &["--fail-on", "severe"][..],
        &["--platform", "linux-x86_64"][..],
    ] {
        let out = Command::new(envpack_bin())
            .current_dir(&work)
            .arg("audit")
            .arg("--vulns")
            .arg(records())
            .args(extra)
            .arg("--lock")
            .arg(&lock)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs_err::write(work.join("db/bad.json"), "{\"id\": 5}").unwrap();
    let out = audit(&work, &[&"--vulns", &work.join("db"), &"--lock", &lock]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json: not an OSV record"), "{err}");
    let _ = fs_err::remove_dir_all(&work);
}
