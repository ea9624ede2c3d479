//! The Windows unpacker (`envpack-unpack.exe`, built for x86_64-pc-windows-gnu) run under Wine
//! on real windows-x86_64 artifacts made by `envpack build` from the fixture index and mirror.
//!
//! Wine can't create directory junctions (FSCTL_SET_REPARSE_POINT is "not supported" and
//! `mklink /J` makes nothing), so the one operation this can't run is the switch of `current`.
//! Everything before it runs under Wine and must fail there with a clear error that leaves the
//! root as it was; everything after it runs under Wine on roots whose `current` the Linux
//! unpacker made (a Unix symlink, which Wine follows and reports as a reparse point).
//!
//! `scripts/wine.sh` prepares the exe, Wine's missing `bcryptprimitives.dll` and a stand-in
//! `python.exe` (it prints its arguments and exits with `ENVPACK_STANDIN_EXIT`, so the shims'
//! argument and exit-code passing can be seen) and prints the directory for ENVPACK_WINE_DIR.
//! Without it these tests skip, unless ENVPACK_REQUIRE_WINE is set (as in CI), when they fail.

#![cfg(unix)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use envpack_e2e::*;
use envpack_unpack::shims::{activate_shim, program_shim, ShimStyle};
use serde_json::Value;

const WINE: &str = "/usr/lib/wine/wine64";
const ARTIFACT: &str = "openssl-devenv-windows-x86_64.envpack.tar";
const JUNCTION_ERROR: &str = "could not create a directory junction";

/// Two windows-x86_64 artifacts of different envs, and the Wine setup that runs the exe.
struct Setup {
    wine_dir: PathBuf,
    work: PathBuf,
    artifacts: [PathBuf; 2],
    env_ids: [String; 2],
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let Some(wine_dir) = std::env::var_os("ENVPACK_WINE_DIR").filter(|d| !d.is_empty())
            else {
                assert!(
                    std::env::var_os("ENVPACK_REQUIRE_WINE").is_none(),
                    "ENVPACK_REQUIRE_WINE is set but ENVPACK_WINE_DIR is not (run scripts/wine.sh)"
                );
                eprintln!("skipped: ENVPACK_WINE_DIR is not set (scripts/wine.sh prints it)");
                return None;
            };
            Some(make_setup(PathBuf::from(wine_dir)))
        })
        .as_ref()
}

fn make_setup(wine_dir: PathBuf) -> Setup {
    let work = envpack_e2e::process_dir("envpack-wine-");
    let mirror = windows_mirror(&work, &wine_dir.join("python.exe"));
    let mirror_url = format!("file://{}", mirror.display());
    let index = IndexServer::start(&index_dir(), &[]);
    let cache = work.join("cache");
    let build = |name: &str, profile: &str| -> PathBuf {
        let dir = work.join(name);
        // The build host's platform is in the list because Conan's sdists are built on it.
        write_fixture_spec_dir(&dir, &["linux-x86_64", "windows-x86_64"], profile);
        run(envpack_cmd(&dir, &cache, &index.url, &mirror_url).arg("lock"));
        let out = dir.join("dist");
        run(envpack_cmd(&dir, &cache, &index.url, &mirror_url)
            .args(["build", "--platform", "windows-x86_64", "--out"])
            .arg(&out));
        out.join(ARTIFACT)
    };
    let artifacts = [
        build("a", "[settings]\nos=Windows\narch=x86_64\n"),
        build(
            "b",
            "[settings]\nos=Windows\narch=x86_64\nbuild_type=Release\n",
        ),
    ];
    let env_ids = artifacts.clone().map(|a| {
        let out = run(Command::new(unpack_bin())
            .arg("--verify")
            .arg(&a)
            .arg("--json"));
        json(&out)["env_id"].as_str().unwrap().to_string()
    });
    assert_ne!(env_ids[0], env_ids[1]);
    Setup {
        wine_dir,
        work,
        artifacts,
        env_ids,
    }
}

/// A copy of the fixture mirror whose Windows CPython has the stand-in `python.exe` (the
/// fixture's stand-ins hold Linux binaries, which Wine can't run).
fn windows_mirror(work: &Path, python_exe: &Path) -> PathBuf {
    let from = python_mirror().join("envpack1");
    let to = work.join("mirror/envpack1");
    fs_err::create_dir_all(&to).unwrap();
    let script = r#"
import gzip, hashlib, io, os, sys, tarfile
src, dst, exe = sys.argv[1:4]
sums = []
for name in sorted(os.listdir(src)):
    if not name.endswith(".tar.gz"):
        continue
    data = open(os.path.join(src, name), "rb").read()
    if "-pc-windows-" in name:
        out = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tin, \
             gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz, \
             tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tout:
            for m in tin.getmembers():
                if m.name == "python/python.exe":
                    body = open(exe, "rb").read()
                    m.size = len(body)
                    tout.addfile(m, io.BytesIO(body))
                else:
                    tout.addfile(m, tin.extractfile(m) if m.isfile() else None)
        data = out.getvalue()
    open(os.path.join(dst, name), "wb").write(data)
    sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
open(os.path.join(dst, "SHA256SUMS"), "w").write("".join(sums))
"#;
    run(Command::new("python3")
        .args(["-c", script])
        .arg(&from)
        .arg(&to)
        .arg(python_exe));
    to.parent().unwrap().to_path_buf()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `Z:\…`: how Wine names a path of the Unix filesystem.
fn win(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// A Wine command running `program` (a Windows path or a name on Wine's PATH).
fn wine(s: &Setup, program: &str) -> Command {
    let mut cmd = Command::new(WINE);
    cmd.arg(program)
        .env("WINEPREFIX", s.wine_dir.join("prefix"))
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .stdin(Stdio::null());
    cmd
}

/// `envpack-unpack.exe ARGS` under Wine; path arguments are given as Windows paths.
fn unpack_exe(s: &Setup, args: &[&dyn AsRef<OsStr>]) -> Output {
    let mut cmd = wine(s, &win(&s.wine_dir.join("envpack-unpack.exe")));
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Every path under `root` with its bytes (links as their target), for "nothing changed".
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for e in fs_err::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs_err::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                let t = fs_err::read_link(&p).unwrap();
                out.push((rel, t.to_string_lossy().as_bytes().to_vec()));
            } else if meta.is_dir() {
                if rel != ".envpack/lock" {
                    out.push((rel, Vec::new()));
                }
                pending.push(p);
            } else if rel != ".envpack/lock" {
                out.push((rel, fs_err::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn verify_and_unpack_into_a_fresh_root_stop_cleanly_at_the_junction() {
    let Some(s) = setup() else { return };
    let out = unpack_exe(s, &[&"--verify", &win(&s.artifacts[0]), &"--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let report = json(&out);
    assert_eq!(report["env_id"], s.env_ids[0].as_str());
    assert_eq!(report["differences"], Value::Array(vec![]));

    // One flipped byte in the middle of the artifact (inside a layer blob).
    let bad = s.work.join("bad.envpack.tar");
    let mut bytes = fs_err::read(&s.artifacts[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs_err::write(&bad, bytes).unwrap();
    let out = unpack_exe(s, &[&"--verify", &win(&bad)]);
    assert!(!out.status.success(), "{}", show(&out));

    // Extraction, Windows paths, durability (the flush of every file), state and shims all
    // run; the junction can't be made, and the root is left without the half-made env.
    let root = s.work.join("fresh root");
    let out = unpack_exe(s, &[&win(&s.artifacts[0]), &"--root", &win(&root)]);
    let said = text(&out.stderr);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(said.contains(JUNCTION_ERROR), "{}", show(&out));
    assert!(said.contains("current was not changed"), "{}", show(&out));
    assert!(!said.contains("os error 5"), "{}", show(&out));
    assert!(fs_err::symlink_metadata(root.join("current")).is_err());
    for dir in ["envs", "state", "bin"] {
        let left: Vec<_> = match fs_err::read_dir(root.join(dir)) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name()).collect(),
            Err(_) => Vec::new(),
        };
        assert!(
            left.is_empty(),
            "{dir}/ keeps {left:?} after the failed unpack"
        );
    }
}

#[test]
fn shims_and_activation_run_under_wine_and_link_readers_refuse_clearly() {
    let Some(s) = setup() else { return };
    let root = s.work.join("root");
    let [a, b] = &s.env_ids;
    for artifact in &s.artifacts {
        run(Command::new(unpack_bin())
            .arg(artifact)
            .arg("--root")
            .arg(&root)
            .arg("--quiet"));
    }
    let r = win(&root);
    // The root-level shims as the Windows unpacker writes them (the Linux one wrote POSIX
    // shims); `current` is the Linux unpacker's symlink, which Wine follows like a junction.
    let bin = root.join("bin");
    fs_err::write(
        bin.join("python.cmd"),
        program_shim("python.cmd", ShimStyle::WindowsCmd),
    )
    .unwrap();
    fs_err::write(
        bin.join("activate.cmd"),
        activate_shim(&root, ShimStyle::WindowsCmd),
    )
    .unwrap();

    // A shim passes its arguments as they were given and returns the program's exit code,
    // through the env's own launcher.
    let out = wine(s, "cmd")
        .args(["/c", &format!(r"{r}\bin\python.cmd"), "a b", "c"])
        .env("ENVPACK_STANDIN_EXIT", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    let said = text(&out.stdout);
    assert!(
        said.contains("arg1=[a b]\r\narg2=[c]\r\n") && !said.contains("arg3"),
        "{said}"
    );

    // `call activate` puts the env's bin first on PATH and CONAN_HOME in the state dir. The
    // state dir is found by reading the junction (`dir /AL`), which Wine can't show, so through
    // `current` only PATH is checked and CONAN_HOME with the env's own activate.bat.
    let probe = |activate: &str, name: &str| -> (String, String) {
        let bat = s.work.join(name);
        fs_err::write(
            &bat,
            format!(
                "@call \"{activate}\"\r\n@echo CONAN_HOME=%CONAN_HOME%\r\n\
                 @python probe\r\n@exit /b %ERRORLEVEL%\r\n"
            ),
        )
        .unwrap();
        let out = wine(s, "cmd").args(["/c", &win(&bat)]).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let said = text(&out.stdout);
        assert!(said.contains("arg1=[probe]"), "{}", show(&out));
        let home = said
            .lines()
            .find_map(|l| l.strip_prefix("CONAN_HOME="))
            .unwrap_or_default()
            .to_ascii_lowercase();
        (home, show(&out))
    };
    probe(&format!(r"{r}\bin\activate.cmd"), "probe-root.bat");
    let (home, said) = probe(&format!(r"{r}\envs\{b}\activate.bat"), "probe-env.bat");
    assert!(
        home.ends_with(&format!(r"\root\state\{b}\conan-home")),
        "{said}"
    );

    // Wine shows a Unix symlink as a plain directory and has no junctions, so everything
    // that reads `current` refuses the root with a clear error, and changes nothing.
    let before = snapshot(&root);
    let artifact = win(&s.artifacts[0]);
    let refusals: [&[&dyn AsRef<OsStr>]; 5] = [
        &[&"--status", &"--root", &r],
        &[&"--verify", &"--root", &r],
        &[
            &"--doctor",
            &"--root",
            &r,
            &"--log-dir",
            &win(&s.work.join("doctor-log")),
        ],
        &[&"--rollback", &"--root", &r],
        &[&artifact, &"--root", &r],
    ];
    for args in refusals {
        let out = unpack_exe(s, args);
        assert!(!out.status.success(), "{}", show(&out));
        let said = text(&out.stderr) + &text(&out.stdout);
        assert!(said.contains(r"\current: is not a link"), "{}", show(&out));
        assert_eq!(snapshot(&root), before, "{}", show(&out));
    }
    assert_eq!(
        fs_err::read_link(root.join("current")).unwrap(),
        Path::new("envs").join(b)
    );
    assert!(root.join("envs").join(a).is_dir());
}
