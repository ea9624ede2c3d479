//! The CONAN_HOME template shipped in the env (`conan-home/`): remotes, profiles and a
//! global.conf that keeps the package storage inside whichever home is in use.
//!
//! No `version.txt`: Conan 2 treats a home that has one at its own version as fully set up
//! and skips creating its default `extensions/plugins/profile.py`, after which every
//! command that loads a profile fails. Without it, the first `conan` run in the writable
//! state copy performs Conan's own initialization.

use std::collections::BTreeMap;

use envpack_layers::shown_name;
use envpack_pypkg::check_member_path;
use envpack_pypkg::GeneratedFile;

/// One Conan remote as Conan stores it in `remotes.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConanRemote {
    /// Remote name.
    pub name: String,
    /// Remote URL.
    pub url: String,
    /// Whether TLS certificates are verified.
    pub verify_ssl: bool,
    /// `local-recipes-index` for a folder of recipes (its url then relative to the env's root,
    /// made absolute when the state is seeded); `None` for a Conan server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_type: Option<&'static str>,
}

/// Why the Conan home template could not be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConanHomeError {
    /// A profile or extra file path is not a safe relative path.
    #[error("conan home file \"{}\": {why}", shown_name(.path))]
    UnsafePath {
        /// The path as given.
        path: String,
        /// Why it is rejected.
        why: &'static str,
    },
    /// Two inputs produce the same file.
    #[error("conan home file \"{}\" is given twice (or clashes with a generated file)", shown_name(.0))]
    Duplicate(String),
    /// A remote is unusable.
    #[error("conan remote \"{}\": {why}", shown_name(.name))]
    Remote {
        /// Remote name.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The Conan version string is unusable.
    #[error("conan version \"{}\" is not a plain version string", shown_name(.0))]
    Version(String),
}

/// Root of the template inside the env.
const HOME: &str = "conan-home";

/// Conan renders global.conf with Jinja, so the storage path follows the home it is read
/// from: the template in the (read-only) env never receives packages, the state copy does.
const GLOBAL_CONF: &str =
    "# Written by envpack: package storage lives inside this (writable) CONAN_HOME.\n\
core.cache:storage_path={{conan_home_folder}}/p\n";

/// Where Conan finds the pinned sources, inside whichever home is in use (it writes lock and
/// metadata files beside them, so the read-only template can't serve them itself).
const DOWNLOAD_CACHE: &str = "core.sources:download_cache={{conan_home_folder}}/sources-cache\n";

/// Files of the Conan home template, paths relative to the env root, sorted; the Conan
/// version is recorded in global.conf's header comment. With `download_cache`, global.conf
/// points Conan's source download cache at `sources-cache/` of the home.
/// An extra `global.conf` is appended to the generated one, so its settings win.
pub fn conan_home_files(
    remotes: &[ConanRemote],
    profiles: &[(String, Vec<u8>)],
    conan_version: &str,
    extra: &[(String, Vec<u8>)],
    download_cache: bool,
) -> Result<Vec<GeneratedFile>, ConanHomeError> {
    if conan_version.is_empty()
        || !conan_version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
    {
        return Err(ConanHomeError::Version(conan_version.to_string()));
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert("remotes.json".into(), remotes_json(remotes)?.into_bytes());
    let mut global_conf =
        format!("# CONAN_HOME template for Conan {conan_version}.\n{GLOBAL_CONF}");
    if download_cache {
        global_conf.push_str(DOWNLOAD_CACHE);
    }
    files.insert("global.conf".into(), global_conf.into_bytes());
    for (name, data) in profiles {
        check_path(name)?;
        let path = format!("profiles/{name}");
        if files.insert(path.clone(), data.clone()).is_some() {
            return Err(ConanHomeError::Duplicate(path));
        }
    }
    let mut extra_global_conf = false;
    for (path, data) in extra {
        check_path(path)?;
        if path == "global.conf" && !extra_global_conf {
            extra_global_conf = true;
            let conf = files.entry(path.clone()).or_default();
            conf.extend_from_slice(data);
            continue;
        }
        if files.insert(path.clone(), data.clone()).is_some() {
            return Err(ConanHomeError::Duplicate(path.clone()));
        }
    }
    Ok(files
        .into_iter()
        .map(|(path, contents)| GeneratedFile {
            path: format!("{HOME}/{path}"),
            contents,
            executable: false,
        })
        .collect())
}

/// A relative, `/`-separated path without `.`/`..`, drive letters or a trailing slash.
fn check_path(path: &str) -> Result<(), ConanHomeError> {
    let unsafe_path = |why| ConanHomeError::UnsafePath {
        path: path.to_string(),
        why,
    };
    check_member_path(path).map_err(unsafe_path)?;
    if path.ends_with('/') {
        return Err(unsafe_path("names a directory"));
    }
    if path.chars().any(char::is_control) {
        return Err(unsafe_path("control character in name"));
    }
    Ok(())
}

/// `remotes.json` exactly as Conan 2 writes it: `json.dumps(..., indent=True)`, which is a
/// one-space indent, keys in Conan's order, no trailing newline.
fn remotes_json(remotes: &[ConanRemote]) -> Result<String, ConanHomeError> {
    let mut seen = std::collections::BTreeSet::new();
    for r in remotes {
        let bad = |why| ConanHomeError::Remote {
            name: r.name.clone(),
            why,
        };
        if r.name.trim().is_empty() || r.name.chars().any(char::is_control) {
            return Err(bad("name is empty or has control characters"));
        }
        if r.url.trim().is_empty() || r.url.chars().any(char::is_whitespace) {
            return Err(bad("url is empty or has whitespace"));
        }
        if !seen.insert(r.name.as_str()) {
            return Err(bad("defined twice"));
        }
    }
    #[derive(serde::Serialize)]
    struct Remotes<'a> {
        remotes: &'a [ConanRemote],
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&Remotes { remotes }, &mut ser).map_err(|_| {
        ConanHomeError::Remote {
            name: String::new(),
            why: "cannot be serialized",
        }
    })?;
    Ok(ascii_escape(&String::from_utf8_lossy(&out)))
}

/// Python's `json.dumps` escapes non-ASCII (`ensure_ascii=True`); match it byte for byte.
fn ascii_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(name: &str, url: &str, verify_ssl: bool) -> ConanRemote {
        ConanRemote {
            name: name.into(),
            url: url.into(),
            verify_ssl,
            remote_type: None,
        }
    }

    fn get<'a>(files: &'a [GeneratedFile], path: &str) -> &'a [u8] {
        &files.iter().find(|f| f.path == path).unwrap().contents
    }

    #[test]
    fn remotes_json_matches_conan_bytes() {
        // What Conan 2.21 itself wrote for `conan remote add` with these values.
        let want = "{\n \"remotes\": [\n  {\n   \"name\": \"center\",\n   \"url\": \"https://conan.example/v2\",\n   \"verify_ssl\": true\n  },\n  {\n   \"name\": \"caf\\u00e9\",\n   \"url\": \"http://127.0.0.1:9300\",\n   \"verify_ssl\": false\n  },\n  {\n   \"name\": \"envpack-recipes\",\n   \"url\": \"conan-recipes\",\n   \"verify_ssl\": true,\n   \"remote_type\": \"local-recipes-index\"\n  }\n ]\n}";
        let files = conan_home_files(
            &[
                remote("center", "https://conan.example/v2", true),
                remote("café", "http://127.0.0.1:9300", false),
                ConanRemote {
                    remote_type: Some("local-recipes-index"),
                    ..remote("envpack-recipes", "conan-recipes", true)
                },
            ],
            &[],
            "2.21.0",
            &[],
            false,
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(get(&files, "conan-home/remotes.json")).unwrap(),
            want
        );
        assert!(!files.iter().any(|f| f.path.ends_with("version.txt")));
        assert!(std::str::from_utf8(get(&files, "conan-home/global.conf"))
            .unwrap()
            .contains("core.cache:storage_path={{conan_home_folder}}/p\n"));
    }

    #[test]
    fn layout_and_merge() {
        let files = conan_home_files(
            &[],
            &[("default".into(), b"[settings]\nos=Linux\n".to_vec())],
            "2.21.0",
            &[
                ("settings_user.yml".into(), b"x: 1\n".to_vec()),
                (
                    "global.conf".into(),
                    b"core:non_interactive=True\n".to_vec(),
                ),
            ],
            false,
        )
        .unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "conan-home/global.conf",
                "conan-home/profiles/default",
                "conan-home/remotes.json",
                "conan-home/settings_user.yml",
            ]
        );
        let conf = std::str::from_utf8(get(&files, "conan-home/global.conf")).unwrap();
        assert!(conf.starts_with("# CONAN_HOME template for Conan 2.21.0.\n"));
        assert!(conf.ends_with("/p\ncore:non_interactive=True\n"));
        assert_eq!(
            get(&files, "conan-home/remotes.json"),
            b"{\n \"remotes\": []\n}"
        );
    }

    #[test]
    fn rejects_bad_input() {
        let p = |n: &str| vec![(n.to_string(), Vec::new())];
        for bad in ["../x", "/etc/x", "a\\b", "C:x", "a/", "", "a/../b", "a\nb"] {
            assert!(
                conan_home_files(&[], &[], "2.21.0", &p(bad), false).is_err(),
                "{bad:?}"
            );
            assert!(
                conan_home_files(&[], &p(bad), "2.21.0", &[], false).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            conan_home_files(&[], &[], "2.21.0", &p("remotes.json"), false),
            Err(ConanHomeError::Duplicate("remotes.json".into()))
        );
        assert!(conan_home_files(&[], &[], "2.21.0\n", &[], false).is_err());
        let dup = [remote("a", "http://x", true), remote("a", "http://y", true)];
        assert!(conan_home_files(&dup, &[], "2.21.0", &[], false).is_err());
        assert!(conan_home_files(&[remote("a", "", true)], &[], "2.21.0", &[], false).is_err());
    }

    /// With ENVPACK_TEST_CONAN pointing at a Conan 2.21 executable, a copy of the template
    /// must work as a fresh CONAN_HOME: storage under the home, remotes and profiles read.
    #[test]
    fn real_conan_accepts_template() {
        let Some(conan) = std::env::var_os("ENVPACK_TEST_CONAN") else {
            if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() {
                panic!("ENVPACK_REQUIRE_FIXTURES is set but ENVPACK_TEST_CONAN is not (scripts/test.sh sets both)");
            }
            eprintln!("skipping: set ENVPACK_TEST_CONAN to a conan 2.21 executable");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let files = conan_home_files(
            &[remote("local", "http://127.0.0.1:9", false)],
            &[(
                "default".into(),
                b"[settings]\nos=Linux\narch=x86_64\n".to_vec(),
            )],
            "2.21.0",
            &[],
            false,
        )
        .unwrap();
        for f in &files {
            let p = tmp.path().join(&f.path);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, &f.contents).unwrap();
        }
        let home = tmp.path().join("conan-home");
        let conan_out = |args: &[&str]| {
            let out = std::process::Command::new(&conan)
                .args(args)
                .env("CONAN_HOME", &home)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "conan {args:?}: {text}");
            text
        };
        let storage = conan_out(&["config", "show", "core.cache:storage_path"]);
        assert!(
            storage.contains(&format!("{}/p", home.display())),
            "{storage}"
        );
        let remotes = conan_out(&["remote", "list"]);
        assert!(
            remotes.contains("local: http://127.0.0.1:9 [Verify SSL: False"),
            "{remotes}"
        );
        let profile = conan_out(&["profile", "show", "-pr", "default"]);
        assert!(profile.contains("arch=x86_64"), "{profile}");
        // Conan never rewrites our remotes.json differently: same bytes after use.
        let ours = files
            .iter()
            .find(|f| f.path.ends_with("remotes.json"))
            .unwrap();
        assert_eq!(
            fs_err::read(home.join("remotes.json")).unwrap(),
            ours.contents
        );
    }

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let cases: Vec<(ConanHomeError, &str)> = vec![
            (
                ConanHomeError::UnsafePath {
                    path: "../global.conf".into(),
                    why: "leaves the directory",
                },
                "conan home file \"../global.conf\": leaves the directory",
            ),
            (
                ConanHomeError::Duplicate("profiles/default".into()),
                "conan home file \"profiles/default\" is given twice (or clashes with a \
                 generated file)",
            ),
            (
                ConanHomeError::Remote {
                    name: "conan\tcenter".into(),
                    why: "the URL is empty",
                },
                "conan remote \"conan\\tcenter\": the URL is empty",
            ),
            (
                ConanHomeError::Version("2.21 beta".into()),
                "conan version \"2.21 beta\" is not a plain version string",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
