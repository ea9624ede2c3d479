//! Our own wheel installer: unpacks verified wheels into the env tree's CPython, writes
//! relocatable launchers, `INSTALLER` and a fresh `RECORD`. Bytecode is compiled later, for
//! the whole tree at once.
//!
//! RECORD policy: a wheel whose RECORD disagrees with its files (a wrong hash or size, a file
//! missing from RECORD or a row for a file not in the wheel) is installed with a warning, as
//! pip and uv install it: the lock pins the whole wheel's sha256, so RECORD guards nothing the
//! lock does not. What is refused: a missing or unparsable RECORD, member paths that could
//! leave the install dirs, links, duplicate or case-colliding members, corrupt zip data.

mod record;
mod wheel;

pub use record::{hash_matches, parse_record, RecordEntry};
pub use wheel::check_member_path;

use envpack_layers::digest::Sha256Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::entry_points::{parse_entry_points, EntryPoint};
use crate::launcher::{crlf, posix_console_script, sh_locate_self, windows_console_script};
use crate::platform::{LauncherKind, Layout, Platform};
use crate::PypkgError;
use record::{record_hash, write_record};
use wheel::{read_wheel, WheelContents};

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
/// A wheel to install: a hash-checked file and the name it was published under.
pub struct WheelInput {
    /// Its file name (the installer checks it against the metadata).
    pub filename: String,
    /// The hash-checked file.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: Sha256Digest,
}

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
    /// The entry-point launchers among `files` (not the wheel's own files: bytecode
    /// compilation leaves them alone, as pip's does, even when one is named `*.py`).
    pub launchers: Vec<String>,
    /// The console scripts the wheel declares.
    pub console_scripts: Vec<EntryPoint>,
    /// What was wrong with the wheel but did not stop the install.
    pub warnings: Vec<InstallWarning>,
}

/// A defect of a wheel that did not stop its install (see the module's RECORD policy).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallWarning {
    /// The wheel's file name.
    pub wheel: String,
    /// The file of the wheel concerned.
    pub file: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for InstallWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}; installed anyway (the lock pins the wheel's sha256) with a RECORD that \
             matches the installed files",
            self.wheel, self.file, self.problem
        )
    }
}

impl InstallWarning {
    /// Logs the warning on stderr.
    pub fn log(&self) {
        tracing::warn!("{self}");
    }
}

/// A file to be written, keyed by its env-relative path.
struct Planned {
    source: String,
    data: Vec<u8>,
    executable: bool,
}

/// Installs the wheel file `wheel`, whose real file name is `filename` (a cached file is named
/// by its hash), into `target`, returning what it installed. Errors name `wheel`; warnings
/// (logged too) name `filename`.
pub fn install_wheel(
    wheel: &Path,
    filename: &str,
    target: &InstallTarget,
) -> Result<InstalledDist, PypkgError> {
    let mut contents = read_wheel(wheel, filename)?;
    tracing::debug!(wheel = %wheel.display(), name = %contents.name, "installing wheel");
    let warnings: Vec<InstallWarning> = std::mem::take(&mut contents.record_problems)
        .into_iter()
        .map(|p| InstallWarning {
            wheel: filename.to_string(),
            file: p.member,
            problem: p.problem,
        })
        .collect();
    let site = target.platform.site_packages(target.py_minor);
    let dirs = SchemeDirs::new(target);
    let mut plan: BTreeMap<String, Planned> = BTreeMap::new();

    let scripts = script_entry_points(wheel, &contents)?;
    let record_path = format!("{}/RECORD", contents.dist_info);
    let members = std::mem::take(&mut contents.members);
    let mut mapped = Vec::with_capacity(members.len());
    for m in members {
        if m.name != record_path {
            let (dest, is_script) = dirs.destination(wheel, &contents, &m.name)?;
            mapped.push((m, dest, is_script));
        }
    }
    let sources: BTreeSet<&str> = mapped
        .iter()
        .map(|(_, dest, _)| dest.as_str())
        .filter(|d| d.ends_with(".py"))
        .collect();
    let pyc_tag = format!(".cpython-3{}.pyc", target.py_minor);
    let regenerated: BTreeSet<String> = mapped
        .iter()
        .filter(|(_, dest, _)| {
            compiled_from(dest, &pyc_tag).is_some_and(|s| sources.contains(s.as_str()))
        })
        .map(|(_, dest, _)| dest.clone())
        .collect();
    for (m, dest, is_script) in mapped {
        if regenerated.contains(&dest) {
            // Bytecode compilation writes this file anew (as pip's does), so installing the
            // wheel's copy would leave RECORD describing bytes that are no longer there.
            tracing::debug!(wheel = %wheel.display(), file = %m.name, "dropping shipped pyc");
            continue;
        }
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

    let mut launchers = Vec::new();
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
        launchers.push(dest.clone());
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
    for w in &warnings {
        w.log();
    }
    Ok(InstalledDist {
        name: contents.name,
        version: contents.version,
        dist_info,
        files: plan.into_keys().collect(),
        launchers,
        console_scripts: scripts
            .into_iter()
            .filter(|(_, gui)| !gui)
            .map(|(ep, _)| ep)
            .collect(),
        warnings,
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
    ) -> Result<(String, bool), PypkgError> {
        let Some(rest) = member
            .strip_prefix(contents.data_dir.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Ok((format!("{}/{member}", self.site), false));
        };
        let bad = |why: String| PypkgError::WheelLayout {
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
            other => {
                return Err(bad(format!(
                    "{member}: unknown .data scheme \"{}\"",
                    envpack_layers::shown_name(other)
                )))
            }
        })
    }
}

/// The source a `D/__pycache__/S<tag>` pyc is compiled from (`D/S.py`), if `dest` is one.
fn compiled_from(dest: &str, tag: &str) -> Option<String> {
    let (dir, file) = dest.rsplit_once("/__pycache__/")?;
    let stem = file.strip_suffix(tag)?;
    (!stem.is_empty() && !stem.contains(['.', '/'])).then(|| format!("{dir}/{stem}.py"))
}

/// Console and GUI entry points (the bool marks GUI ones), sorted by name.
fn script_entry_points(
    wheel: &Path,
    contents: &WheelContents,
) -> Result<Vec<(EntryPoint, bool)>, PypkgError> {
    let name = format!("{}/entry_points.txt", contents.dist_info);
    let Some(m) = contents.members.iter().find(|m| m.name == name) else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(m.data.clone()).map_err(|_| PypkgError::WheelLayout {
        wheel: wheel.to_path_buf(),
        why: format!("{name} is not UTF-8"),
    })?;
    let parsed = parse_entry_points(&text).map_err(|source| PypkgError::WheelEntryPoints {
        wheel: wheel.to_path_buf(),
        source: Box::new(source),
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
) -> Result<(), PypkgError> {
    if let Some(old) = plan.get(&dest) {
        return Err(PypkgError::InstallConflict {
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
mod tests;
