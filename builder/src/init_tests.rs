use super::*;
use envpack_pypkg::platform_by_name;

fn mirror_with(files: &[&str]) -> (tempfile::TempDir, Url) {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let p = dir.path().join(f);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, b"").unwrap();
    }
    let url = Url::from_directory_path(dir.path()).unwrap();
    (dir, url)
}

fn request<'a>(dir: &'a Path, mirror: &'a Url, platform: &'a Platform) -> InitRequest<'a> {
    InitRequest {
        dir,
        name: None,
        python: None,
        mirror,
        platform,
        compiler_version: Some("13".into()),
    }
}

#[test]
fn picks_the_newest_cpython_of_a_local_mirror_for_the_platform() {
    let linux = platform_by_name("linux-x86_64").unwrap();
    let (_m, url) = mirror_with(&[
        "envpack1/cpython-3.11.7+envpack1-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
        "20241016/cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
        "20241016/cpython-3.13.0+20241016-aarch64-unknown-linux-gnu-install_only_stripped.tar.gz",
        "20241016/cpython-3.12.10+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz",
        "20241016/SHA256SUMS",
        // Never chosen: a release candidate, a short version, a tag not its directory's.
        "20250101/cpython-3.14.0rc1+20250101-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
        "20250101/cpython-3.13+20250101-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
        "envpack1/cpython-3.13.1+other-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
        "bad tag/cpython-3.15.0+bad tag-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
    ]);
    let (v, b, from) = choose_python(&url, &linux).unwrap();
    assert_eq!((v.as_str(), b.as_str()), ("3.12.7", "20241016"));
    assert!(from.starts_with("the mirror file://"), "{from}");

    let (_m, empty) = mirror_with(&["x/readme"]);
    let e = choose_python(&empty, &linux).unwrap_err().to_string();
    assert!(e.contains("has no CPython for linux-x86_64"), "{e}");
    assert!(e.contains("--python VERSION --python-build TAG"), "{e}");

    let remote = Url::parse("https://mirror.example/pbs/").unwrap();
    let (v, b, from) = choose_python(&remote, &linux).unwrap();
    assert_eq!((v.as_str(), b.as_str()), DEFAULT_PYTHON);
    assert!(from.contains("was not asked"), "{from}");
}

#[test]
fn profiles_follow_the_platform() {
    let cases = [
        (
            "linux-x86_64",
            Some("13"),
            "linux-gcc13",
            "os=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=13\n",
        ),
        (
            "linux-aarch64",
            None,
            "linux-gcc12",
            "arch=armv8\ncompiler=gcc\ncompiler.version=12\n",
        ),
        (
            "macos-arm64",
            Some("15"),
            "macos-apple-clang15",
            "os=Macos\narch=armv8\ncompiler=apple-clang\n",
        ),
        (
            "windows-x86_64",
            None,
            "windows-msvc194",
            "os=Windows\narch=x86_64\ncompiler=msvc\ncompiler.version=194\n",
        ),
    ];
    for (platform, version, want_name, want_text) in cases {
        let p = platform_by_name(platform).unwrap();
        let (name, text) = profile_for(&p, version);
        assert_eq!(name, want_name);
        assert!(text.contains(want_text), "{platform}: {text}");
        assert!(text.ends_with("build_type=Release\n"), "{text}");
    }
}

#[test]
fn writes_a_spec_that_loads_and_refuses_to_overwrite() {
    let linux = platform_by_name("linux-x86_64").unwrap();
    let (_m, url) = mirror_with(&[
        "envpack1/cpython-3.11.7+envpack1-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my team env");
    let done = init(&request(&dir, &url, &linux)).unwrap();
    assert_eq!(done.name, "my-team-env");
    assert_eq!(done.profile, dir.join("profiles/linux-gcc13"));
    let loaded = crate::spec::load(&done.spec).unwrap();
    assert_eq!(loaded.spec.env.platforms, ["linux-x86_64"]);
    assert_eq!(
        (
            loaded.spec.python.version.as_str(),
            loaded.spec.python.build.as_str()
        ),
        ("3.11.7", "envpack1")
    );
    let text = fs_err::read_to_string(&done.spec).unwrap();
    assert!(
        text.contains("windows-x86_64"),
        "the others are named: {text}"
    );
    let next = done.next_steps(false);
    assert!(
        next.contains(&format!("  cd '{}'\n  envpack lock\n", dir.display())),
        "{next}"
    );
    assert!(next.contains("set ENVPACK_INDEX_URL"), "{next}");
    assert!(
        next.ends_with(
            "envpack-unpack dist/my-team-env-linux-x86_64.envpack.tar --root ~/envs/my-team-env\n"
        ),
        "{next}"
    );

    // Again: refused, and nothing changes.
    let before = fs_err::read_to_string(&done.spec).unwrap();
    let e = init(&request(&dir, &url, &linux)).unwrap_err().to_string();
    assert!(e.contains("envpack.toml already exists"), "{e}");
    assert_eq!(fs_err::read_to_string(&done.spec).unwrap(), before);

    // A bad name or version is refused before anything is written.
    let fresh = tmp.path().join("fresh");
    let bad = InitRequest {
        name: Some("../x"),
        ..request(&fresh, &url, &linux)
    };
    assert!(init(&bad).unwrap_err().to_string().contains("env.name"));
    let bad = InitRequest {
        python: Some(("3", "b")),
        ..request(&fresh, &url, &linux)
    };
    assert!(init(&bad).is_err());
    // Quotes and newlines can't add keys to the spec: they are refused as what they are.
    for (name, python) in [
        (Some("x\" # "), None),
        (
            None,
            Some(("3.12.7", "20241016\"\n[image]\nbase = \"evil.example/x:1")),
        ),
    ] {
        let bad = InitRequest {
            name,
            python,
            ..request(&fresh, &url, &linux)
        };
        let e = init(&bad).unwrap_err().to_string();
        assert!(
            e.ends_with("(given to init or found in the mirror; nothing was written)"),
            "{e}"
        );
        assert!(e.contains("env.name") || e.contains("python.build"), "{e}");
    }
    assert!(!fresh.exists(), "a refused init made its directory");
    // A `profiles` that is a link is not followed out of the directory.
    #[cfg(unix)]
    {
        let linked = tmp.path().join("linked");
        fs_err::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(tmp.path(), linked.join("profiles")).unwrap();
        let e = init(&request(&linked, &url, &linux))
            .unwrap_err()
            .to_string();
        assert!(e.contains("profiles is not a directory"), "{e}");
        assert!(!linked.join("envpack.toml").exists());
    }
}

#[test]
fn default_names_come_from_the_directory() {
    for (dir, want) in [
        ("/srv/openssl-devenv", "openssl-devenv"),
        ("/srv/.hidden", "hidden"),
        ("/", "devenv"),
        ("/srv/ü", "devenv"),
        ("/srv/ü-2", "--2"),
    ] {
        assert_eq!(default_name(Path::new(dir)), want, "{dir}");
    }
}

#[test]
fn next_step_words_are_quoted_for_their_shell() {
    let cases = [
        ("plain/dir-1.0", false, "plain/dir-1.0"),
        ("my dir", false, "'my dir'"),
        ("it's", false, "'it'\\''s'"),
        ("-P", false, "./-P"),
        ("$(rm -rf ~)", false, "'$(rm -rf ~)'"),
        ("a\\b", false, "'a\\b'"),
        (r"C:\work\proj", true, r"C:\work\proj"),
        (r"C:\my work\it's", true, r"'C:\my work\it''s'"),
    ];
    for (word, windows, want) in cases {
        assert_eq!(shell_word(word, windows), want, "{word}");
    }
    let done = Initialized {
        spec: PathBuf::from(r"C:\work\team\envpack.toml"),
        profile: PathBuf::from(r"C:\work\team\profiles\windows-msvc194"),
        platform: "windows-x86_64".into(),
        name: "team".into(),
        python_version: "3.12.7".into(),
        python_build: "20241016".into(),
        python_from: "x".into(),
    };
    let next = done.next_steps(true);
    assert!(
        next.contains("--root $env:USERPROFILE\\envs\\team\n"),
        "{next}"
    );
}
