//! Lock model, writer and reader tests.

use super::*;

fn sample() -> Lock {
    let d = |b: u8| Sha256Digest([b; 32]);
    Lock {
        version: 1,
        spec_hash: d(1),
        epoch: 1_700_000_000,
        name: "dev".into(),
        python: LockedPythonRelease {
            version: "3.11.7".into(),
            build: "20241016".into(),
            variant: "install_only_stripped".into(),
        },
        conan_remotes: vec![LockedRemote {
            name: "r".into(),
            url: "https://conan.example.org/r".into(),
            verify_ssl: false,
        }],
        build_python: None,
        conan_recipes: Vec::new(),
        conan_sources: Vec::new(),
        build_packages: vec![LockedFile {
            name: "setuptools".into(),
            version: "75.1.0".into(),
            filename: "setuptools-75.1.0-py3-none-any.whl".into(),
            sha256: d(2),
            size: 10,
        }],
        image_bases: Vec::new(),
        platforms: vec![LockedPlatform {
            name: "linux-x86_64".into(),
            glibc: None,
            macos: None,
            python: LockedPython {
                filename: "cpython.tar.gz".into(),
                url: None,
                sha256: d(3),
                size: 99,
            },
            packages: vec![LockedPackage {
                name: "conan".into(),
                version: "2.21.0".into(),
                filename: "conan-2.21.0.tar.gz".into(),
                sha256: d(4),
                size: 5,
                kind: PackageKind::Sdist,
                built_wheel: Some(BuiltWheelPin {
                    filename: "conan-2.21.0-py3-none-any.whl".into(),
                    sha256: d(5),
                    size: 6,
                }),
                build_requires: vec!["setuptools==75.1.0".into()],
                dependencies: vec!["pyyaml".into()],
            }],
            profiles: vec![LockedConanFile {
                name: "default".into(),
                source: "profiles/linux".into(),
                sha256: d(6),
                content: "[settings]\nos=Linux\n\"quoted\" \\ back\n".into(),
            }],
            home_files: vec![],
        }],
    }
}

#[test]
fn round_trips_byte_for_byte() {
    let lock = sample();
    let text = lock.to_toml();
    let back = Lock::parse(&text, "envpack.lock").unwrap();
    assert_eq!(back, lock);
    assert_eq!(back.to_toml(), text);
}

#[test]
fn schema_2_only_when_needed() {
    let v1 = sample();
    assert_eq!(v1.required_version(), 1);
    let mut v2 = sample();
    v2.version = 2;
    v2.build_python = Some(LockedBuildPython {
        platform: "linux-x86_64".into(),
        filename: "cpython-host.tar.gz".into(),
        sha256: Sha256Digest([7; 32]),
        size: 42,
    });
    v2.platforms[0].glibc = Some("2.28".into());
    assert_eq!(v2.required_version(), 2);
    let text = v2.to_toml();
    assert!(
        text.contains("\n[build-python]\nplatform = \"linux-x86_64\"\n"),
        "{text}"
    );
    assert!(
        text.contains("name = \"linux-x86_64\"\nglibc = \"2.28\"\n"),
        "{text}"
    );
    let back = Lock::parse(&text, "l").unwrap();
    assert_eq!(back, v2);
    assert_eq!(back.to_toml(), text);
    // A version-1 lock can't carry them, and a newer schema is refused with advice.
    let e = Lock::parse(&text.replace("version = 2\n", "version = 1\n"), "l")
        .unwrap_err()
        .to_string();
    assert!(e.contains("need version 2") && e.contains("re-run"), "{e}");
    let e = Lock::parse(&text.replace("version = 2\n", "version = 4\n"), "l")
        .unwrap_err()
        .to_string();
    assert!(e.contains("reads 1 to 3"), "{e}");
    let e = Lock::parse(&text.replace("\"2.28\"", "\"2.5\""), "l")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("platforms.linux-x86_64.glibc") && e.contains("below"),
        "{e}"
    );
    let mut macos_only = sample();
    macos_only.platforms[0].macos = Some("10.15".into());
    assert_eq!(macos_only.required_version(), 2);
}

#[test]
fn conan_content_round_trips_in_schema_3() {
    let mut v3 = sample();
    let content = "from conan import ConanFile\n\"\"\"doc\"\"\" \\ x\n";
    v3.conan_recipes = vec![LockedRecipe {
        reference: "openssl-tools/1.2.4".into(),
        revision: "0378521c55c8c25e6acda795b7d70c7c".into(),
        path: Some("recipes/openssl-tools".into()),
        remote: None,
        files: vec![LockedRecipeFile {
            path: "conanfile.py".into(),
            sha256: Sha256Digest::of_bytes(content.as_bytes()),
            executable: false,
            content: content.into(),
        }],
    }];
    v3.conan_sources = vec![LockedSource {
        url: "https://upstream.example/x-1.0.tar.gz".into(),
        sha256: Sha256Digest([9; 32]),
        size: 3,
    }];
    v3.version = v3.required_version();
    assert_eq!(v3.version, 3);
    let text = v3.to_toml();
    let back = Lock::parse(&text, "l").unwrap();
    assert_eq!(back, v3);
    assert_eq!(back.to_toml(), text);
    let e = Lock::parse(&text.replace("version = 3\n", "version = 2\n"), "l")
        .unwrap_err()
        .to_string();
    assert!(e.contains("need version 3"), "{e}");
    let bad = [
        (
            text.replace("0378521c55c8c25e6acda795b7d70c7c", "abc"),
            "revision \"abc\" is not 32 hex digits",
        ),
        (
            text.replace("\\ x", "\\ y"),
            "the content of conanfile.py does not have its pinned sha256",
        ),
        (
            text.replace(
                "path = \"recipes/openssl-tools\"",
                "remote = \"r\"\npath = \"x\"",
            ),
            "either a path or a remote",
        ),
        (
            text.replace("path = \"conanfile.py\"", "path = \"../conanfile.py\""),
            "file \"../conanfile.py\"",
        ),
    ];
    for (t, want) in bad {
        let e = Lock::parse(&t, "l").unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn rejects_unknown_keys_with_position() {
    let text = sample()
        .to_toml()
        .replace("epoch = ", "surprise = 1\nepoch = ");
    let err = Lock::parse(&text, "envpack.lock").unwrap_err().to_string();
    assert!(
        err.contains("envpack.lock:") && err.contains("surprise"),
        "{err}"
    );
}

#[test]
fn rejects_other_schema_versions() {
    let text = sample().to_toml().replace("version = 1\n", "version = 7\n");
    let err = Lock::parse(&text, "l").unwrap_err().to_string();
    assert!(err.contains("re-run `envpack lock`"), "{err}");
}

#[test]
fn base_pins_round_trip_after_the_lock() {
    let d = format!("sha256:{}", "ab".repeat(32));
    let bases = vec![
        LockedBase {
            platform: "linux-x86_64".into(),
            name: "127.0.0.1:5000/base:1".into(),
            digest: d.clone(),
        },
        LockedBase {
            platform: "linux-aarch64".into(),
            name: "registry.example/base:1".into(),
            digest: d.clone(),
        },
    ];
    let mut with_bases = sample();
    with_bases.image_bases = bases;
    let text = with_bases.to_toml();
    assert_eq!(
        text,
        sample().to_toml() + &write::bases_to_toml(&with_bases.image_bases)
    );
    let back = Lock::parse(&text, "l").unwrap();
    assert_eq!(
        back.image_bases[0].platform, "linux-aarch64",
        "sorted by platform"
    );
    assert_eq!(back.image_bases.len(), 2);
    assert_eq!(back.to_toml(), text);
    assert!(Lock::parse(&sample().to_toml(), "l")
        .unwrap()
        .image_bases
        .is_empty());

    let bad = text.replace(&d, "sha256:00");
    let err = Lock::parse(&bad, "l").unwrap_err().to_string();
    assert!(err.contains("image-base"), "{err}");
    let unknown = text.replacen("digest = ", "surprise = 1\ndigest = ", 1);
    let err = Lock::parse(&unknown, "envpack.lock")
        .unwrap_err()
        .to_string();
    let line = sample().to_toml().lines().count() + 5;
    assert!(err.contains(&format!("envpack.lock:{line}:")), "{err}");
    let twice = text.replace("linux-aarch64", "linux-x86_64");
    assert!(Lock::parse(&twice, "l")
        .unwrap_err()
        .to_string()
        .contains("twice"));
}

#[test]
fn table_headers_inside_file_contents_are_just_text() {
    // A profile may hold any text, including a line that looks like a lock table.
    let mut lock = sample();
    let content = "[settings]\nos=Linux\n[[image-base]]\n[[platform]]\n";
    if let Some(p) = lock.platforms[0].profiles.first_mut() {
        p.content = content.to_string();
        p.sha256 = Sha256Digest::of_bytes(content.as_bytes());
    } else {
        panic!("the sample lock has a profile");
    }
    let back = Lock::parse(&lock.to_toml(), "l").unwrap();
    assert_eq!(back, lock);
    assert!(back.image_bases.is_empty());
}

#[test]
fn read_names_a_missing_lock_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("envpack.lock");
    let e = read(&p).unwrap_err().to_string();
    assert!(
        e.contains("envpack.lock") && e.contains("run `envpack lock`"),
        "{e}"
    );
    std::fs::write(&p, sample().to_toml()).unwrap();
    let (lock, text) = read(&p).unwrap();
    assert_eq!((lock, text), (sample(), sample().to_toml()));
}

#[test]
fn rejects_bad_hashes() {
    let text = sample().to_toml().replace(&"03".repeat(32), "zz");
    assert!(Lock::parse(&text, "l").is_err());
}
