//! Smoke tests of the real fixtures: the local index, the CPython mirror, relocation.

use envpack_e2e::{
    fixtures_dir, http_get, index_dir, python_mirror, run, sha256_file, wheelhouse, IndexServer,
};
use std::process::Command;

const JSON: &str = "application/vnd.pypi.simple.v1+json";
/// What pip sends: JSON preferred, HTML accepted.
const PIP_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
const SDISTS: [(&str, &str); 2] = [
    ("conan", "conan-2.21.0.tar.gz"),
    ("patch-ng", "patch-ng-1.18.1.tar.gz"),
];

fn json_file<'a>(doc: &'a serde_json::Value, filename: &str) -> &'a serde_json::Value {
    doc["files"]
        .as_array()
        .expect("files array")
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap_or_else(|| panic!("{filename} not in {doc}"))
}

#[test]
fn index_serves_json_and_html_with_the_sdist_hashes() {
    let server = IndexServer::start(&index_dir(), &[]);
    assert!(server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/simple/"));
    for (project, filename) in SDISTS {
        let want = sha256_file(&wheelhouse().join(filename));
        let path = format!("/simple/{project}/");

        let json = http_get(&server.base, &path, Some(PIP_ACCEPT));
        assert_eq!(json.status, 200);
        assert_eq!(json.header("content-type"), Some(JSON));
        let doc: serde_json::Value = serde_json::from_slice(&json.body).expect("valid JSON");
        assert_eq!(doc["meta"]["api-version"], "1.1");
        assert_eq!(doc["name"], project);
        let file = json_file(&doc, filename);
        assert_eq!(file["hashes"]["sha256"], want.as_str());
        assert_eq!(file["yanked"], false);
        assert_eq!(
            file["core-metadata"], false,
            "sdists carry no PEP 658 metadata"
        );

        let html = http_get(&server.base, &path, None);
        assert_eq!(html.status, 200);
        assert!(html
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/html"));
        let body = String::from_utf8(html.body).expect("utf-8 HTML");
        let anchor = format!("href=\"../../files/{filename}#sha256={want}\"");
        assert!(body.contains(&anchor), "{anchor} missing in {body}");
        assert!(body.contains("data-requires-python=\"&gt;="), "{body}");

        let download = http_get(&server.base, &format!("/files/{filename}"), None);
        assert_eq!(download.status, 200);
        assert_eq!(
            download.header("content-length"),
            Some(download.body.len().to_string().as_str())
        );
        assert_eq!(
            download.body,
            fs_err::read(wheelhouse().join(filename)).unwrap()
        );
    }
}

#[test]
fn index_serves_pep658_metadata_and_honours_fault_options() {
    let server = IndexServer::start(&index_dir(), &[]);
    let doc: serde_json::Value =
        serde_json::from_slice(&http_get(&server.base, "/simple/jinja2/", Some(JSON)).body)
            .expect("valid JSON");
    let wheel = &doc["files"][0];
    let filename = wheel["filename"].as_str().expect("filename");
    assert!(filename.ends_with(".whl"));
    let meta_hash = wheel["core-metadata"]["sha256"]
        .as_str()
        .expect("metadata hash");
    let meta = http_get(&server.base, &format!("/files/{filename}.metadata"), None);
    assert_eq!(meta.status, 200);
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&meta.body)), meta_hash);
    assert!(String::from_utf8_lossy(&meta.body).contains("Name: Jinja2"));

    let plain = IndexServer::start(&index_dir(), &["--html-only", "--no-metadata"]);
    let html = http_get(&plain.base, "/simple/jinja2/", Some(JSON));
    assert!(html.header("content-type").unwrap_or("").contains("html"));
    let body = String::from_utf8(html.body).expect("utf-8");
    assert!(
        body.contains(filename) && !body.contains("core-metadata"),
        "{body}"
    );
    let gone = http_get(&plain.base, &format!("/files/{filename}.metadata"), None);
    assert_eq!(gone.status, 404);
}

#[test]
fn mirror_sha256sums_match_the_archives() {
    let build = python_mirror().join("envpack1");
    let sums = fs_err::read_to_string(build.join("SHA256SUMS")).unwrap();
    let lines: Vec<_> = sums.lines().collect();
    assert_eq!(lines.len(), 5, "{sums}");
    let mut hashes = std::collections::BTreeSet::new();
    for line in lines {
        let (hash, name) = line.split_once("  ").expect("sha256sum format");
        assert!(
            name.starts_with("cpython-3.11.7+envpack1-")
                && name.ends_with("-install_only_stripped.tar.gz")
        );
        assert_eq!(sha256_file(&build.join(name)), hash, "{name}");
        hashes.insert(hash.to_string());
    }
    assert_eq!(hashes.len(), 5, "every stand-in differs from the others");
}

#[test]
fn relocated_python_runs_without_the_host_prefix() {
    let archive = python_mirror()
        .join("envpack1")
        .join("cpython-3.11.7+envpack1-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz");
    let scratch = tempfile::tempdir_in(fixtures_dir()).unwrap();
    let first = scratch.path().join("first");
    fs_err::create_dir_all(&first).unwrap();
    run(Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&first));
    // Moving after extraction proves nothing points back at where it was unpacked either.
    let moved = scratch.path().join("moved elsewhere");
    fs_err::rename(&first, &moved).unwrap();
    let python = moved.join("python/bin/python3");
    let out = run(Command::new(&python).env_clear().args([
        "-c",
        "import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, _decimal, sys; \
         print(ssl.OPENSSL_VERSION); print(sys.prefix); print(sys.version.split()[0])",
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().collect();
    assert!(lines[0].starts_with("OpenSSL "), "{stdout}");
    assert_eq!(lines[1], moved.join("python").to_str().unwrap());
    assert_eq!(lines[2], "3.11.7");
}

#[test]
fn pip_installs_conan_offline_from_the_local_index() {
    let server = IndexServer::start(&index_dir(), &[]);
    let scratch = tempfile::tempdir_in(fixtures_dir()).unwrap();
    let venv = scratch.path().join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    // Only the local index may answer: no configured find-links, config files or cache.
    run(Command::new(venv.join("bin/pip"))
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_NO_CACHE_DIR", "1")
        .args([
            "install",
            "--quiet",
            "--index-url",
            &server.url,
            "conan==2.21.0",
        ]));
    let out = run(Command::new(venv.join("bin/conan")).arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Conan version 2.21.0"
    );
}
