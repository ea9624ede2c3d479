//! The stable launchers in `ROOT/bin/`: one per program in the current env's `bin/`, plus
//! `activate`. They resolve the root at run time, so they survive switches of `current`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

use envpack_layers::links::{LinkResolver, Resolved};
use envpack_layers::tree::{EntryKind, TreeEntry};

use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::root_dirs::RootDirs;
use crate::scratch::Scratch;

/// Text every shim carries; lets stale shims be told apart from anything else in `ROOT/bin`.
pub const SHIM_MARKER: &str = "envpack shim";

/// Which kind of shim script to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimStyle {
    /// `#!/bin/sh` scripts (Linux, macOS).
    Posix,
    /// `.cmd` batch files (Windows).
    WindowsCmd,
}

impl ShimStyle {
    /// The style for the platform this binary runs on.
    pub fn native() -> Self {
        if cfg!(windows) {
            ShimStyle::WindowsCmd
        } else {
            ShimStyle::Posix
        }
    }
}

/// One shim to write: `ROOT/bin/<file_name>` runs `ROOT/current/bin/<target>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimPlan {
    /// Name of the shim file in `ROOT/bin`.
    pub file_name: String,
    /// Name of the program in the env's `bin/` it runs.
    pub target: String,
}

/// Windows extensions a shim is made for, most preferred first.
const WINDOWS_RUNNABLE: &[&str] = &["exe", "com", "cmd", "bat"];

/// Decides which shims the env's `bin/` programs (file names, sorted) need.
pub fn plan_shims(programs: &[String], style: ShimStyle) -> Vec<ShimPlan> {
    match style {
        ShimStyle::Posix => programs
            .iter()
            .filter(|p| p.as_str() != "activate")
            .map(|p| ShimPlan {
                file_name: p.clone(),
                target: p.clone(),
            })
            .collect(),
        ShimStyle::WindowsCmd => {
            // One `<stem>.cmd` per stem; when a stem exists as .exe and .cmd, the .exe wins.
            let mut best: std::collections::BTreeMap<String, (usize, String)> = Default::default();
            for p in programs {
                let Some((stem, ext)) = p.rsplit_once('.') else {
                    continue;
                };
                let ext = ext.to_ascii_lowercase();
                let Some(rank) = WINDOWS_RUNNABLE.iter().position(|e| *e == ext) else {
                    continue;
                };
                if stem.is_empty() || stem.eq_ignore_ascii_case("activate") {
                    continue;
                }
                let key = stem.to_ascii_lowercase();
                match best.get(&key) {
                    Some((r, _)) if *r <= rank => {}
                    _ => {
                        best.insert(key, (rank, p.clone()));
                    }
                }
            }
            best.into_values()
                .map(|(_, target)| {
                    let stem = target.rsplit_once('.').map_or(&*target, |(s, _)| s);
                    ShimPlan {
                        file_name: format!("{stem}.cmd"),
                        target: target.clone(),
                    }
                })
                .collect()
        }
    }
}

/// Quotes `s` for a POSIX shell as one word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script of a program shim.
pub fn program_shim(target: &str, style: ShimStyle) -> String {
    match style {
        ShimStyle::Posix => format!(
            r#"#!/bin/sh
# {SHIM_MARKER}: runs {name} from the root's current environment
self=$0
# Follow links to this shim so the root is found even when the shim is linked elsewhere.
while [ -L "$self" ]; do
  link=$(readlink "$self") || exit 127
  case $link in /*) self=$link ;; *) self=${{self%/*}}/$link ;; esac
done
case $self in */*) dir=${{self%/*}} ;; *) dir=. ;; esac
root=$(cd "$dir/.." && pwd -P) || exit 127
exec "$root/current/bin/"{name} "$@"
"#,
            name = sh_quote(target)
        ),
        // The target is chained to, not `call`ed: its exit code is then the shim's own, where
        // `call` + `exit /b %ERRORLEVEL%` depends on cmd keeping ERRORLEVEL across `call`
        // (Wine's cmd resets it to 1).
        ShimStyle::WindowsCmd => format!(
            "@echo off\r\nrem {SHIM_MARKER}: runs {target} from the root's current environment\r\n\
             \"%~dp0..\\current\\bin\\{target}\" %*\r\n"
        ),
    }
}

/// The `activate` shim, to be sourced; `root` is the fallback for shells that can't tell a
/// sourced file its own path.
pub fn activate_shim(root: &Path, style: ShimStyle) -> String {
    match style {
        ShimStyle::Posix => format!(
            r#"# {SHIM_MARKER}: activates the root's current environment; use: . ROOT/bin/activate
if [ -n "${{BASH_SOURCE:-}}" ]; then
  _envpack_shim=${{BASH_SOURCE}}
elif [ -n "${{ZSH_VERSION:-}}" ]; then
  _envpack_shim=$0
else
  _envpack_shim={fallback}/bin/activate
fi
_envpack_root=$(cd "$(dirname -- "$_envpack_shim")/.." 2>/dev/null && pwd -P) || _envpack_root={fallback}
. "$_envpack_root/current/activate"
unset _envpack_shim _envpack_root
"#,
            fallback = sh_quote(&root.to_string_lossy())
        ),
        ShimStyle::WindowsCmd => format!(
            "@rem {SHIM_MARKER}: activates the root's current environment\r\n\
             @call \"%~dp0..\\current\\activate.bat\" %*\r\n"
        ),
    }
}

/// File name of the activate shim for `style`.
pub fn activate_file_name(style: ShimStyle) -> &'static str {
    match style {
        ShimStyle::Posix => "activate",
        ShimStyle::WindowsCmd => "activate.cmd",
    }
}

/// The programs of an env's `bin/`, from its manifest entries: direct children of a real
/// `bin` directory that are regular files, or links resolving to one inside the env
/// (executable ones only for POSIX shims). Sorted. Nothing on disk is consulted, so a planted
/// or redirected `bin/` cannot add names.
pub fn manifest_programs(entries: &[TreeEntry], style: ShimStyle) -> Vec<String> {
    let resolver = LinkResolver::new(entries);
    if resolver.resolve("bin") != Ok(Resolved::Dir)
        || !entries
            .iter()
            .any(|e| e.path == "bin" && matches!(e.kind, EntryKind::Dir))
    {
        return Vec::new();
    }
    let mut names: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let name = e.path.strip_prefix("bin/")?;
            if name.contains('/') {
                return None;
            }
            match resolver.resolve(&e.path) {
                Ok(Resolved::File { executable }) if executable || style != ShimStyle::Posix => {
                    Some(name.to_owned())
                }
                _ => None,
            }
        })
        .collect();
    names.sort();
    names
}

/// Lists the programs of the env at `env_dir` per its manifest (see [`manifest_programs`]).
pub fn env_programs(env_dir: &Path) -> Result<Vec<String>, UnpackError> {
    let manifest = crate::staging::env_manifest(env_dir)?;
    Ok(manifest_programs(&manifest.entries, ShimStyle::native()))
}

/// Every shim `env_dir` needs in `ROOT/bin`: (file name, script), the activate shim last.
pub fn shim_scripts(
    layout: &RootLayout,
    env_dir: &Path,
) -> Result<Vec<(String, String)>, UnpackError> {
    let style = ShimStyle::native();
    let mut scripts: Vec<(String, String)> = plan_shims(&env_programs(env_dir)?, style)
        .into_iter()
        .map(|p| (p.file_name, program_shim(&p.target, style)))
        .collect();
    scripts.push((
        activate_file_name(style).to_owned(),
        activate_shim(&layout.root, style),
    ));
    Ok(scripts)
}

/// Writes every shim `env_dir` needs into `ROOT/bin` (each made in scratch and renamed in
/// through the root's handles); returns the shim file names written.
pub fn write_shims(
    dirs: &RootDirs,
    env_dir: &Path,
    scratch: &Scratch,
) -> Result<BTreeSet<String>, UnpackError> {
    write_shims_where(dirs, env_dir, scratch, |_| true)
}

/// Like [`write_shims`], but only the shims whose file name `wanted` accepts; the others
/// are left as they are.
pub fn write_shims_where(
    dirs: &RootDirs,
    env_dir: &Path,
    scratch: &Scratch,
    wanted: impl Fn(&str) -> bool,
) -> Result<BTreeSet<String>, UnpackError> {
    let layout = &dirs.layout;
    let mut written = BTreeSet::new();
    for (name, script) in shim_scripts(layout, env_dir)? {
        if !wanted(&name) {
            continue;
        }
        let tmp = format!("shim-{name}");
        let shown = scratch.path().join(&tmp);
        let io = |e: std::io::Error| UnpackError::at(e, &shown);
        {
            let mut f = scratch.dir().create(&tmp).map_err(io)?;
            f.write_all(script.as_bytes()).map_err(io)?;
            set_executable(&f).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        scratch
            .dir()
            .rename(&tmp, &dirs.bin, &name)
            .map_err(|e| UnpackError::at(e, &layout.bin_dir().join(&name)))?;
        written.insert(name);
    }
    crate::root_dirs::sync_dir(&dirs.bin)?;
    Ok(written)
}

/// Removes shims in `ROOT/bin` that are not in `keep` (left over from an earlier env).
pub fn remove_stale_shims(dirs: &RootDirs, keep: &BTreeSet<String>) -> Result<(), UnpackError> {
    let bin = dirs.layout.bin_dir();
    for entry in dirs.bin.entries().map_err(|e| UnpackError::at(e, &bin))? {
        let entry = entry.map_err(|e| UnpackError::at(e, &bin))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let shown = bin.join(&name);
        let is_file = entry
            .file_type()
            .map_err(|e| UnpackError::at(e, &shown))?
            .is_file();
        if keep.contains(&name) || !is_file {
            continue;
        }
        let file = crate::root_dirs::open_file_no_follow(&dirs.bin, &name)
            .map_err(|e| UnpackError::at(e, &shown))?;
        if head_is_shim(file).map_err(|e| UnpackError::at(e, &shown))? {
            tracing::debug!(shim = %name, "removing stale shim");
            dirs.bin
                .remove_file(&name)
                .map_err(|e| UnpackError::at(e, &shown))?;
        }
    }
    Ok(())
}

fn head_is_shim(file: impl Read) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(256);
    file.take(256).read_to_end(&mut head)?;
    Ok(String::from_utf8_lossy(&head).contains(SHIM_MARKER))
}

/// Whether the file at `path` is one of our shims (its head carries [`SHIM_MARKER`]).
pub fn is_shim(path: &Path) -> std::io::Result<bool> {
    let file = crate::root_guard::no_follow(fs_err::OpenOptions::new().read(true)).open(path)?;
    head_is_shim(file)
}

#[cfg(unix)]
fn set_executable(f: &cap_std::fs::File) -> std::io::Result<()> {
    use cap_std::fs::PermissionsExt;
    f.set_permissions(cap_std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_executable(_f: &cap_std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plan_table() {
        let posix = plan_shims(&names(&["activate", "conan", "python3"]), ShimStyle::Posix);
        assert_eq!(
            posix,
            vec![
                ShimPlan {
                    file_name: "conan".into(),
                    target: "conan".into()
                },
                ShimPlan {
                    file_name: "python3".into(),
                    target: "python3".into()
                },
            ]
        );
        let win = plan_shims(
            &names(&[
                "README",
                "conan.cmd",
                "conan.exe",
                "python.exe",
                "tool.bat",
                "activate.bat",
                "x.dll",
            ]),
            ShimStyle::WindowsCmd,
        );
        assert_eq!(
            win,
            vec![
                ShimPlan {
                    file_name: "conan.cmd".into(),
                    target: "conan.exe".into()
                },
                ShimPlan {
                    file_name: "python.cmd".into(),
                    target: "python.exe".into()
                },
                ShimPlan {
                    file_name: "tool.cmd".into(),
                    target: "tool.bat".into()
                },
            ]
        );
    }

    #[test]
    fn posix_shim_quotes_name() {
        let s = program_shim("it's", ShimStyle::Posix);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(SHIM_MARKER));
        assert!(
            s.contains(r#"exec "$root/current/bin/"'it'\''s' "$@""#),
            "{s}"
        );
    }

    #[test]
    fn windows_shims_use_crlf_and_relative_paths() {
        let s = program_shim("conan.exe", ShimStyle::WindowsCmd);
        assert!(s.contains("\r\n\"%~dp0..\\current\\bin\\conan.exe\" %*\r\n"));
        // `lines()` would hide the '\r'; every line must end in CRLF for cmd.exe.
        assert!(s.ends_with("\r\n"));
        assert!(
            s.split_inclusive('\n').all(|l| l.ends_with("\r\n")),
            "{s:?}"
        );
        let a = activate_shim(Path::new("C:\\r"), ShimStyle::WindowsCmd);
        assert!(a.contains("current\\activate.bat"));
        assert!(!a.contains("C:\\r"));
    }

    #[test]
    fn activate_shim_has_quoted_fallback() {
        let a = activate_shim(Path::new("/opt/my root"), ShimStyle::Posix);
        assert!(
            a.contains("_envpack_shim='/opt/my root'/bin/activate"),
            "{a}"
        );
        assert!(a.contains(r#". "$_envpack_root/current/activate""#));
    }

    #[cfg(unix)]
    #[test]
    fn posix_shim_runs_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        use std::process::Command;
        let set_executable =
            |p: &Path| fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("envs/e1/bin")).unwrap();
        fs_err::write(root.join("envs/e1/bin/hi"), "#!/bin/sh\necho \"hi $*\"\n").unwrap();
        set_executable(&root.join("envs/e1/bin/hi")).unwrap();
        std::os::unix::fs::symlink("envs/e1", root.join("current")).unwrap();
        fs_err::create_dir_all(root.join("bin")).unwrap();
        fs_err::write(root.join("bin/hi"), program_shim("hi", ShimStyle::Posix)).unwrap();
        set_executable(&root.join("bin/hi")).unwrap();
        std::os::unix::fs::symlink(root.join("bin/hi"), root.join("elsewhere")).unwrap();
        for cmd in [root.join("bin/hi"), root.join("elsewhere")] {
            let out = Command::new(&cmd).args(["a b", "c"]).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hi a b c\n");
        }
    }
}
