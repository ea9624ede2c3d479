//! Our own wheel installer: unpacks verified wheels into the env tree's CPython, writes
//! relocatable launchers, `INSTALLER` and a fresh `RECORD`. Bytecode is compiled later, for
//! the whole tree at once.

pub mod entry_points;
pub mod record;
pub mod wheel;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::launcher::{crlf, posix_console_script, sh_locate_self, windows_console_script};
use crate::platform::{LauncherKind, Layout, Platform};
use entry_points::{parse_entry_points, EntryPoint, EntryPointsError};
use record::{record_hash, write_record, RecordEntry};
use wheel::{read_wheel, WheelContents, WheelError};

/// Where a wheel gets installed.
pub struct InstallTarget<'a> {
    /// The env tree root, which holds `python/`.
    pub env_root: &'a Path,
    /// Target platform (decides the CPython layout and launcher kind).
    pub platform: &'a Platform,
    /// CPython minor version (3.<minor>).
    pub py_minor: u8,
}

/// What one wheel installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledDist {
    /// Project name as in METADATA.
    pub name: String,
    /// Version as in METADATA.
    pub version: String,
    /// The `.dist-info` directory, relative to the env root.
    pub dist_info: String,
    /// Every installed file, relative to the env root, sorted.
    pub files: Vec<String>,
    /// The console scripts the wheel declares.
    pub console_scripts: Vec<EntryPoint>,
}

/// Why installing a wheel failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The wheel itself is invalid or does not verify.
    #[error(transparent)]
    Wheel(#[from] WheelError),
    /// Writing into the env tree failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `entry_points.txt` is invalid.
    #[error("{wheel}: {source}")]
    EntryPoints {
        /// The wheel.
        wheel: PathBuf,
        /// The parse error.
        source: EntryPointsError,
    },
    /// The wheel's layout cannot be mapped onto the env.
    #[error("{wheel}: {why}")]
    Layout {
        /// The wheel.
        wheel: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Two sources would write the same env file.
    #[error("{wheel}: {path} would be written twice (by {first} and {second})")]
    Conflict {
        /// The wheel.
        wheel: PathBuf,
        /// The env-relative destination.
        path: String,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },
}

/// A file to be written, keyed by its env-relative path.
struct Planned {
    source: String,
    data: Vec<u8>,
    executable: bool,
}

/// Installs `wheel` into `target`, returning what it installed.
pub fn install_wheel(wheel: &Path, target: &InstallTarget) -> Result<InstalledDist, InstallError> {
    let mut contents = read_wheel(wheel)?;
    tracing::debug!(wheel = %wheel.display(), name = %contents.name, "installing wheel");
    let site = target.platform.site_packages(target.py_minor);
    let dirs = SchemeDirs::new(target);
    let mut plan: BTreeMap<String, Planned> = BTreeMap::new();

    let scripts = script_entry_points(wheel, &contents)?;
    let record_path = format!("{}/RECORD", contents.dist_info);
    let members = std::mem::take(&mut contents.members);
    for m in members {
        if m.name == record_path {
            continue;
        }
        let (dest, is_script) = dirs.destination(wheel, &contents, &m.name)?;
        if is_script {
            for (dest, data) in relocate_script(target, &dest, &m.data) {
                add(
                    &mut plan,
                    wheel,
                    dest,
                    Planned {
                        source: m.name.clone(),
                        data,
                        executable: true,
                    },
                )?;
            }
        } else {
            add(
                &mut plan,
                wheel,
                dest,
                Planned {
                    source: m.name,
                    data: m.data,
                    executable: m.executable,
                },
            )?;
        }
    }

    for (ep, _gui) in &scripts {
        let (dest, text) = match target.platform.launcher {
            LauncherKind::Posix => (
                format!("{}/{}", dirs.scripts, ep.name),
                posix_console_script(&format!("python3.{}", target.py_minor), ep),
            ),
            LauncherKind::Windows => (
                format!("{}/{}.cmd", dirs.scripts, ep.name),
                windows_console_script(ep),
            ),
        };
        add(
            &mut plan,
            wheel,
            dest,
            Planned {
                source: format!("entry point {}", ep.name),
                data: text.into_bytes(),
                executable: true,
            },
        )?;
    }

    let dist_info = format!("{site}/{}", contents.dist_info);
    add(
        &mut plan,
        wheel,
        format!("{dist_info}/INSTALLER"),
        Planned {
            source: "INSTALLER".into(),
            data: b"envpack\n".to_vec(),
            executable: false,
        },
    )?;
    let record_dest = format!("{dist_info}/RECORD");
    let mut rows: Vec<RecordEntry> = plan
        .iter()
        .map(|(dest, p)| RecordEntry {
            path: relative_to(&site, dest),
            hash: Some(record_hash(&p.data)),
            size: Some(p.data.len() as u64),
        })
        .collect();
    rows.push(RecordEntry {
        path: relative_to(&site, &record_dest),
        hash: None,
        size: None,
    });
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    add(
        &mut plan,
        wheel,
        record_dest,
        Planned {
            source: "RECORD".into(),
            data: write_record(&rows).into_bytes(),
            executable: false,
        },
    )?;

    for (dest, p) in &plan {
        write_new_file(&target.env_root.join(dest), &p.data, p.executable)?;
    }
    Ok(InstalledDist {
        name: contents.name,
        version: contents.version,
        dist_info,
        files: plan.into_keys().collect(),
        console_scripts: scripts
            .into_iter()
            .filter(|(_, gui)| !gui)
            .map(|(ep, _)| ep)
            .collect(),
    })
}

/// The env-relative install dirs of the wheel scheme keys.
struct SchemeDirs {
    site: String,
    scripts: String,
    headers: String,
    data: String,
}

impl SchemeDirs {
    fn new(target: &InstallTarget) -> Self {
        let p = target.platform;
        let headers = match p.layout {
            Layout::Unix => format!("python/include/site/python3.{}", target.py_minor),
            Layout::Windows => "python/Include/site".to_string(),
        };
        SchemeDirs {
            site: p.site_packages(target.py_minor),
            scripts: p.scripts_dir().to_string(),
            headers,
            data: "python".to_string(),
        }
    }

    /// Maps a wheel member to its env-relative destination, and whether it is a script.
    fn destination(
        &self,
        wheel: &Path,
        contents: &WheelContents,
        member: &str,
    ) -> Result<(String, bool), InstallError> {
        let Some(rest) = member
            .strip_prefix(contents.data_dir.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Ok((format!("{}/{member}", self.site), false));
        };
        let bad = |why: String| InstallError::Layout {
            wheel: wheel.to_path_buf(),
            why,
        };
        let (key, path) = rest
            .split_once('/')
            .ok_or_else(|| bad(format!("{member}: file directly under .data")))?;
        Ok(match key {
            "purelib" | "platlib" => (format!("{}/{path}", self.site), false),
            "scripts" => (format!("{}/{path}", self.scripts), true),
            "headers" => (format!("{}/{}/{path}", self.headers, contents.name), false),
            "data" => (format!("{}/{path}", self.data), false),
            other => return Err(bad(format!("{member}: unknown .data scheme {other:?}"))),
        })
    }
}

/// Console and GUI entry points (the bool marks GUI ones), sorted by name.
fn script_entry_points(
    wheel: &Path,
    contents: &WheelContents,
) -> Result<Vec<(EntryPoint, bool)>, InstallError> {
    let name = format!("{}/entry_points.txt", contents.dist_info);
    let Some(m) = contents.members.iter().find(|m| m.name == name) else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(m.data.clone()).map_err(|_| InstallError::Layout {
        wheel: wheel.to_path_buf(),
        why: format!("{name} is not UTF-8"),
    })?;
    let parsed = parse_entry_points(&text).map_err(|source| InstallError::EntryPoints {
        wheel: wheel.to_path_buf(),
        source,
    })?;
    let mut all: Vec<(EntryPoint, bool)> = parsed
        .console
        .into_iter()
        .map(|e| (e, false))
        .chain(parsed.gui.into_iter().map(|e| (e, true)))
        .collect();
    all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(all)
}

/// A `#!python`/`#!pythonw` script from `.data/scripts` made relocatable; other scripts are
/// kept as they are. On Windows a `.cmd` wrapper is added next to the script.
fn relocate_script(target: &InstallTarget, dest: &str, data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let first_line_end = data.iter().position(|&b| b == b'\n');
    let first = &data[..first_line_end.unwrap_or(data.len())];
    let is_python = first.starts_with(b"#!python");
    let body = first_line_end.map_or(&[][..], |i| &data[i + 1..]);
    match (is_python, &target.platform.launcher) {
        (false, _) => vec![(dest.to_string(), data.to_vec())],
        (true, LauncherKind::Posix) => {
            let head = format!(
                "#!/bin/sh\n''':'\n{}exec \"$here/python3.{}\" \"$self\" \"$@\"\n'''\n",
                sh_locate_self(),
                target.py_minor
            );
            let mut out = head.into_bytes();
            out.extend_from_slice(body);
            vec![(dest.to_string(), out)]
        }
        (true, LauncherKind::Windows) => {
            let file = dest.rsplit('/').next().unwrap_or(dest);
            let cmd = crlf(&[
                "@echo off",
                &format!("\"%~dp0..\\python.exe\" \"%~dp0{file}\" %*"),
                "exit /b %ERRORLEVEL%",
            ]);
            vec![
                (dest.to_string(), data.to_vec()),
                (format!("{dest}.cmd"), cmd.into_bytes()),
            ]
        }
    }
}

/// Adds a planned file, refusing a second writer for the same destination.
fn add(
    plan: &mut BTreeMap<String, Planned>,
    wheel: &Path,
    dest: String,
    p: Planned,
) -> Result<(), InstallError> {
    if let Some(old) = plan.get(&dest) {
        return Err(InstallError::Conflict {
            wheel: wheel.to_path_buf(),
            path: dest,
            first: old.source.clone(),
            second: p.source,
        });
    }
    plan.insert(dest, p);
    Ok(())
}

/// `path` relative to directory `base` (both env-relative, `/`-separated).
pub fn relative_to(base: &str, path: &str) -> String {
    let base: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let common = base.iter().zip(&path).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; base.len() - common];
    parts.extend(&path[common..]);
    parts.join("/")
}

/// Writes a file that must not exist yet (a second wheel may not overwrite the first's files).
fn write_new_file(path: &Path, data: &[u8], executable: bool) -> Result<(), std::io::Error> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn relative_paths() {
        let site = "python/lib/python3.11/site-packages";
        for (path, want) in [
            ("python/lib/python3.11/site-packages/a/b.py", "a/b.py"),
            ("python/bin/conan", "../../../bin/conan"),
            (
                "python/include/site/python3.11/X/h.h",
                "../../../include/site/python3.11/X/h.h",
            ),
        ] {
            assert_eq!(relative_to(site, path), want);
        }
        assert_eq!(
            relative_to("python/Lib/site-packages", "python/Scripts/x.cmd"),
            "../../Scripts/x.cmd"
        );
    }

    /// One member of a synthetic wheel: name, bytes, unix mode.
    type Member<'a> = (&'a str, &'a [u8], u32);

    /// Writes a wheel named `file` whose RECORD is computed from `members`, then passed
    /// through `edit_record` so tests can corrupt it.
    fn make_wheel(
        dir: &Path,
        file: &str,
        members: &[Member],
        edit_record: impl Fn(String) -> String,
    ) -> PathBuf {
        let path = dir.join(file);
        let dist_info = members
            .iter()
            .find_map(|(n, _, _)| n.split_once(".dist-info/").map(|(d, _)| d))
            .unwrap();
        let mut rows: Vec<RecordEntry> = members
            .iter()
            .map(|(n, d, _)| RecordEntry {
                path: n.to_string(),
                hash: Some(record_hash(d)),
                size: Some(d.len() as u64),
            })
            .collect();
        let record_name = format!("{dist_info}.dist-info/RECORD");
        rows.push(RecordEntry {
            path: record_name.clone(),
            hash: None,
            size: None,
        });
        let record = edit_record(write_record(&rows));
        let mut z = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (n, d, mode) in
            members
                .iter()
                .copied()
                .chain([(record_name.as_str(), record.as_bytes(), 0o644)])
        {
            let o = zip::write::SimpleFileOptions::default().unix_permissions(mode & 0o777);
            if mode & 0o170000 == 0o120000 {
                z.add_symlink(n, std::str::from_utf8(d).unwrap(), o)
                    .unwrap();
                continue;
            }
            z.start_file(n, o).unwrap();
            z.write_all(d).unwrap();
        }
        z.finish().unwrap();
        path
    }

    const WHEEL_META: &[u8] =
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

    fn demo_members() -> Vec<Member<'static>> {
        vec![
            ("demo/__init__.py", b"X = 1\n", 0o644),
            ("demo/tool.sh", b"#!/bin/sh\necho hi\n", 0o755),
            ("demo/show.py", b"import os, sys\ndef main():\n    print('CONAN_HOME=' + os.environ.get('CONAN_HOME', '<unset>'))\n    print('ARGS=' + ' '.join(sys.argv[1:]))\n    return 3\n", 0o644),
            ("demo-1.0.data/platlib/demo_native.py", b"N = 2\n", 0o644),
            ("demo-1.0.data/scripts/demo-py", b"#!python\nimport sys\nprint('script', sys.argv[1:])\n", 0o644),
            ("demo-1.0.data/scripts/demo-sh", b"#!/bin/sh\necho sh\n", 0o644),
            ("demo-1.0.data/headers/demo.h", b"int x;\n", 0o644),
            ("demo-1.0.data/data/share/demo.txt", b"data\n", 0o644),
            ("demo-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: Demo\nVersion: 1.0\n\nbody: x\n", 0o644),
            ("demo-1.0.dist-info/WHEEL", WHEEL_META, 0o644),
            ("demo-1.0.dist-info/entry_points.txt", b"[console_scripts]\ndemo-show = demo.show:main\n[gui_scripts]\ndemo-gui = demo.show:main\n", 0o644),
        ]
    }

    fn linux() -> Platform {
        crate::platform::by_name("linux-x86_64").unwrap()
    }

    fn install(
        wheel: &Path,
        env: &Path,
        platform: &Platform,
    ) -> Result<InstalledDist, InstallError> {
        install_wheel(
            wheel,
            &InstallTarget {
                env_root: env,
                platform,
                py_minor: 11,
            },
        )
    }

    /// Every file under `root` with its mode and bytes, for determinism checks.
    fn snapshot(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(root).sort_by_file_name() {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                out.push((rel, mode, fs_err::read(e.path()).unwrap()));
            }
        }
        out
    }

    fn mode(p: &Path) -> u32 {
        fs_err::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn installs_synthetic_wheel_into_scheme_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = make_wheel(
            tmp.path(),
            "Demo-1.0-py3-none-any.whl",
            &demo_members(),
            |r| r,
        );
        let env = tmp.path().join("env");
        let got = install(&whl, &env, &linux()).unwrap();
        let site = "python/lib/python3.11/site-packages";
        assert_eq!((got.name.as_str(), got.version.as_str()), ("Demo", "1.0"));
        assert_eq!(got.dist_info, format!("{site}/demo-1.0.dist-info"));
        assert_eq!(
            got.console_scripts.len(),
            1,
            "gui scripts are not console scripts"
        );
        for f in [
            format!("{site}/demo/__init__.py"),
            format!("{site}/demo_native.py"),
            "python/bin/demo-py".into(),
            "python/bin/demo-sh".into(),
            "python/bin/demo-show".into(),
            "python/bin/demo-gui".into(),
            "python/include/site/python3.11/Demo/demo.h".into(),
            "python/share/demo.txt".into(),
        ] {
            assert!(got.files.contains(&f), "{f} in {:?}", got.files);
            assert!(env.join(&f).is_file(), "{f}");
        }
        assert_eq!(mode(&env.join(site).join("demo/tool.sh")), 0o755);
        assert_eq!(mode(&env.join(site).join("demo/__init__.py")), 0o644);
        assert_eq!(mode(&env.join("python/bin/demo-sh")), 0o755);
        let py_script = fs_err::read_to_string(env.join("python/bin/demo-py")).unwrap();
        assert!(py_script.starts_with("#!/bin/sh\n''':'\n"));
        assert!(py_script.ends_with("'''\nimport sys\nprint('script', sys.argv[1:])\n"));
        assert_eq!(
            fs_err::read(env.join("python/bin/demo-sh")).unwrap(),
            b"#!/bin/sh\necho sh\n"
        );
        let info = env.join(&got.dist_info);
        assert_eq!(fs_err::read(info.join("INSTALLER")).unwrap(), b"envpack\n");

        // RECORD lists exactly the installed files, each with a hash that matches the disk.
        let text = fs_err::read_to_string(info.join("RECORD")).unwrap();
        let rows = record::parse_record(&text).unwrap();
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "RECORD is sorted");
        assert_eq!(rows.len(), got.files.len());
        assert!(paths.contains(&"../../../bin/demo-show"));
        for r in &rows {
            if r.path == "demo-1.0.dist-info/RECORD" {
                assert_eq!((r.hash.as_deref(), r.size), (None, None));
                continue;
            }
            let data = fs_err::read(env.join(site).join(&r.path)).unwrap();
            let ok = record::hash_matches(r.hash.as_deref().unwrap(), &data);
            assert_eq!(ok, Ok(true), "{}", r.path);
            assert_eq!(r.size, Some(data.len() as u64));
        }

        // Byte-for-byte deterministic, modes included.
        let env2 = tmp.path().join("env2");
        install(&whl, &env2, &linux()).unwrap();
        assert_eq!(snapshot(&env), snapshot(&env2));

        // A second install into the same tree must not overwrite anything.
        assert!(matches!(
            install(&whl, &env, &linux()),
            Err(InstallError::Io(_))
        ));
    }

    #[test]
    fn windows_layout_uses_cmd_launchers() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = make_wheel(
            tmp.path(),
            "demo-1.0-py3-none-any.whl",
            &demo_members(),
            |r| r,
        );
        let env = tmp.path().join("env");
        let win = crate::platform::by_name("windows-x86_64").unwrap();
        let got = install(&whl, &env, &win).unwrap();
        assert!(got
            .files
            .contains(&"python/Lib/site-packages/demo/__init__.py".to_string()));
        let cmd = fs_err::read_to_string(env.join("python/Scripts/demo-show.cmd")).unwrap();
        assert!(cmd.contains(r#""%~dp0..\python.exe" -c"#));
        assert!(env.join("python/Scripts/demo-py.cmd").is_file());
        let record = fs_err::read_to_string(env.join(&got.dist_info).join("RECORD")).unwrap();
        assert!(record.contains("../../Scripts/demo-show.cmd,sha256="));
    }

    fn expect_err(members: &[Member], edit: impl Fn(String) -> String, want: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let whl = make_wheel(tmp.path(), "demo-1.0-py3-none-any.whl", members, edit);
        let err = install(&whl, &tmp.path().join("env"), &linux())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
        assert!(
            err.contains("demo-1.0-py3-none-any.whl"),
            "{err:?} names the wheel"
        );
        assert!(
            !tmp.path().join("env").exists(),
            "nothing written for a bad wheel"
        );
    }

    fn replace_member(
        members: &[Member<'static>],
        name: &str,
        data: &'static [u8],
    ) -> Vec<Member<'static>> {
        members
            .iter()
            .map(|&(n, d, m)| if n == name { (n, data, m) } else { (n, d, m) })
            .collect()
    }

    #[test]
    fn rejects_unverifiable_wheels() {
        let base = demo_members();
        let with = |extra: Member<'static>| {
            let mut m = base.clone();
            m.push(extra);
            m
        };
        let same = |r: String| r;
        expect_err(
            &base,
            |r| r.replace("demo/__init__.py,sha256=", "demo/__init__.py,sha256=AAAA"),
            "demo/__init__.py",
        );
        expect_err(&base, |r| r.replace(",6\n", ",7\n"), "size does not match");
        expect_err(
            &base,
            |r| {
                r.lines()
                    .filter(|l| !l.starts_with("demo/show.py"))
                    .map(|l| format!("{l}\n"))
                    .collect()
            },
            "demo/show.py: not listed in RECORD",
        );
        expect_err(
            &base,
            |r| format!("{r}demo/ghost.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"),
            "missing from the wheel",
        );
        expect_err(&base, |r| r.replace("sha256=", "md5="), "bad hash");
        for bad in ["../evil.py", "/abs.py", "a\\b.py", "C:/x.py", "a/./b.py"] {
            expect_err(&with((bad, b"x", 0o644)), same, "unsafe member path");
        }
        expect_err(&with(("demo/link", b"target", 0o120777)), same, "symlink");
        expect_err(
            &with(("DEMO/__init__.py", b"y", 0o644)),
            same,
            "only by case",
        );
        expect_err(
            &with(("demo-1.0.data/weird/x", b"y", 0o644)),
            same,
            "unknown .data scheme",
        );
        expect_err(
            &replace_member(
                &base,
                "demo-1.0.dist-info/WHEEL",
                b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n",
            ),
            same,
            "Wheel-Version",
        );
        expect_err(
            &with(("demo-1.0.data/purelib/demo/__init__.py", b"X = 1\n", 0o644)),
            same,
            "written twice",
        );
        expect_err(
            &replace_member(
                &base,
                "demo-1.0.dist-info/METADATA",
                b"Name: other\nVersion: 1.0\n",
            ),
            same,
            "METADATA names",
        );
        expect_err(
            &replace_member(
                &base,
                "demo-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\n../x = a:b\n",
            ),
            same,
            "unsafe script name",
        );
    }

    #[test]
    fn rejects_duplicate_zip_members() {
        let tmp = tempfile::tempdir().unwrap();
        let mut members = demo_members();
        members.push(("demo/dupA.py", b"a", 0o644));
        members.push(("demo/dupB.py", b"a", 0o644));
        let whl = make_wheel(tmp.path(), "demo-1.0-py3-none-any.whl", &members, |r| r);
        // Same-length rename in the raw bytes: local and central headers now both say dupA
        // (RECORD, compressed, keeps listing dupB).
        let mut bytes = fs_err::read(&whl).unwrap();
        let needle = b"demo/dupB.py";
        let mut hits = 0;
        for i in 0..bytes.len() - needle.len() {
            if &bytes[i..i + needle.len()] == needle {
                bytes[i + 8] = b'A';
                hits += 1;
            }
        }
        assert_eq!(hits, 2, "one local and one central header");
        fs_err::write(&whl, bytes).unwrap();
        let err = install(&whl, &tmp.path().join("env"), &linux()).unwrap_err();
        assert!(
            matches!(err, InstallError::Wheel(WheelError::Duplicate { .. })),
            "{err}"
        );
    }

    // ---- real wheels and a real interpreter ----

    /// The cached real wheels, or `None` (skip) unless ENVPACK_REQUIRE_FIXTURES is set.
    fn fixture_wheels() -> Option<Vec<PathBuf>> {
        let fixtures = std::env::var_os("ENVPACK_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.fixtures"));
        let dir = fixtures.join("wheels-c");
        let wheels: Vec<PathBuf> = [
            "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "jinja2-3.1.6-py3-none-any.whl",
            "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "colorama-0.4.6-py2.py3-none-any.whl",
            "wheel-0.45.1-py3-none-any.whl",
        ]
        .iter()
        .map(|f| dir.join(f))
        .collect();
        if wheels.iter().all(|w| w.is_file()) {
            return Some(wheels);
        }
        let msg = format!(
            "real-wheel fixtures missing in {0}: run `pip download --no-deps --only-binary=:all: \
             -d {0} PyYAML==6.0.2 Jinja2==3.1.6 MarkupSafe==3.0.2 colorama==0.4.6 wheel==0.45.1` on linux-x86_64",
            dir.display()
        );
        if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
        None
    }

    /// The host's CPython 3.11 executable, if there is one.
    fn host_python311() -> Option<PathBuf> {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys; print(sys.executable if sys.version_info[:2] == (3, 11) else '')",
            ])
            .output()
            .ok()?;
        let exe = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!exe.is_empty()).then(|| PathBuf::from(exe))
    }

    /// A stand-in `python/bin/python3.11`: the host interpreter without its own site dir,
    /// seeing only this env's site-packages (found relative to itself, so moves work).
    fn fake_interpreter(env: &Path, host: &Path) {
        let bin = env.join("python/bin");
        fs_err::create_dir_all(&bin).unwrap();
        let script = format!(
            "#!/bin/sh\nhere=$(cd -P \"$(dirname \"$0\")\" && pwd -P)\n\
             PYTHONPATH=\"$here/../lib/python3.11/site-packages\" exec '{}' -S \"$@\"\n",
            host.display()
        );
        fs_err::write(bin.join("python3.11"), script).unwrap();
        let exec = std::fs::Permissions::from_mode(0o755);
        fs_err::set_permissions(bin.join("python3.11"), exec).unwrap();
        std::os::unix::fs::symlink("python3.11", bin.join("python3")).unwrap();
    }

    fn run(cmd: &Path, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
        let mut c = Command::new(cmd);
        c.args(args)
            .env_remove("CONAN_HOME")
            .env_remove("PYTHONPATH");
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    #[test]
    fn real_wheels_install_and_run_after_move_and_through_symlinks() {
        let Some(wheels) = fixture_wheels() else {
            return;
        };
        let Some(host) = host_python311() else {
            eprintln!("skipping: no host CPython 3.11");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let env = root.join("envs/e1");
        let mut scripts = Vec::new();
        for w in &wheels {
            let got = install(w, &env, &linux()).unwrap();
            let record = fs_err::read_to_string(env.join(&got.dist_info).join("RECORD")).unwrap();
            assert_eq!(record.lines().count(), got.files.len(), "{}", got.name);
            assert!(
                !got.files.iter().any(|f| f.ends_with(".pyc")),
                "no bytecode"
            );
            scripts.extend(got.console_scripts);
        }
        let whl = make_wheel(
            tmp.path(),
            "demo-1.0-py3-none-any.whl",
            &demo_members(),
            |r| r,
        );
        scripts.extend(install(&whl, &env, &linux()).unwrap().console_scripts);
        let names: Vec<&str> = scripts.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["wheel", "demo-show"]);
        fake_interpreter(&env, &host);
        for f in crate::launcher::env_bin_launchers(&linux(), 11, &scripts) {
            let p = env.join(&f.path);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, &f.contents).unwrap();
            let exec = std::fs::Permissions::from_mode(0o755);
            fs_err::set_permissions(&p, exec).unwrap();
        }

        // The packages import from the env, not from the host.
        let code = "import yaml, jinja2, markupsafe, colorama, wheel; print(yaml.__file__); print(markupsafe._speedups.__file__); \
                    print(jinja2.Template('{{ 6 * 7 }}').render())";
        let (status, out) = run(&env.join("bin/python3"), &["-c", code], &[]);
        assert_eq!(status, 0, "{out}");
        let yaml = env.join("python/lib/python3.11/site-packages/yaml/__init__.py");
        assert!(out.contains(&yaml.display().to_string()), "{out}");
        assert!(out.contains("42"), "{out}");

        let (status, out) = run(&env.join("python/bin/wheel"), &["version"], &[]);
        assert_eq!((status, out.trim()), (0, "wheel 0.45.1"));

        // Moved tree, invoked through a symlink in another directory and via ROOT/current.
        let moved_root = tmp.path().join("moved root");
        fs_err::rename(&root, &moved_root).unwrap();
        let env = moved_root.join("envs/e1");
        let links = tmp.path().join("links");
        fs_err::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(env.join("python/bin/wheel"), links.join("w")).unwrap();
        let (status, out) = run(&links.join("w"), &["version"], &[]);
        assert_eq!((status, out.trim()), (0, "wheel 0.45.1"));
        std::os::unix::fs::symlink("envs/e1", moved_root.join("current")).unwrap();
        let (status, out) = run(&moved_root.join("current/bin/wheel"), &["version"], &[]);
        assert_eq!((status, out.trim()), (0, "wheel 0.45.1"));

        // bin/ console scripts default CONAN_HOME to ROOT/state/<env-id>/conan-home when
        // that exists, and pass arguments and exit status through.
        let show = moved_root.join("current/bin/demo-show");
        let (status, out) = run(&show, &["a b", "c"], &[]);
        assert_eq!(status, 3, "{out}");
        assert!(out.contains("CONAN_HOME=<unset>\nARGS=a b c"), "{out}");
        let state = moved_root.join("state/e1/conan-home");
        fs_err::create_dir_all(&state).unwrap();
        std::os::unix::fs::symlink(&show, links.join("show")).unwrap();
        let (_, out) = run(&links.join("show"), &[], &[]);
        let want = format!("CONAN_HOME={}\n", state.canonicalize().unwrap().display());
        assert!(out.contains(&want), "{out}");
        let (_, out) = run(&show, &[], &[("CONAN_HOME", "/elsewhere")]);
        assert!(
            out.contains("CONAN_HOME=/elsewhere\n"),
            "explicit CONAN_HOME wins: {out}"
        );
        // The wheel's own #!python script was made relocatable too.
        let (status, out) = run(&env.join("python/bin/demo-py"), &["x"], &[]);
        assert_eq!((status, out.trim()), (0, "script ['x']"));
    }
}
