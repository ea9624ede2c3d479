//! The stable launchers in `ROOT/bin/`: one per program in the current env's `bin/`, plus
//! `activate`. They resolve the root at run time, so they survive switches of `current`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

use crate::layout::RootLayout;

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

/// Lists the programs in `env_dir/bin` (files and links, sorted); none if there is no `bin/`.
pub fn env_programs(env_dir: &Path) -> std::io::Result<Vec<String>> {
    let bin = env_dir.join("bin");
    let entries = match fs_err::read_dir(&bin) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every shim `env_dir` needs in `ROOT/bin`: (file name, script), the activate shim last.
pub fn shim_scripts(layout: &RootLayout, env_dir: &Path) -> std::io::Result<Vec<(String, String)>> {
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

/// Writes every shim `env_dir` needs into `ROOT/bin` (each via a temp file and a rename);
/// returns the shim file names written.
pub fn write_shims(
    layout: &RootLayout,
    env_dir: &Path,
    scratch: &Path,
) -> std::io::Result<BTreeSet<String>> {
    write_shims_where(layout, env_dir, scratch, |_| true)
}

/// Like [`write_shims`], but only the shims whose file name `wanted` accepts; the others
/// are left as they are.
pub fn write_shims_where(
    layout: &RootLayout,
    env_dir: &Path,
    scratch: &Path,
    wanted: impl Fn(&str) -> bool,
) -> std::io::Result<BTreeSet<String>> {
    let bin = layout.bin_dir();
    fs_err::create_dir_all(&bin)?;
    let mut written = BTreeSet::new();
    for (name, script) in shim_scripts(layout, env_dir)? {
        if !wanted(&name) {
            continue;
        }
        let tmp = scratch.join(format!("shim-{name}"));
        {
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(script.as_bytes())?;
            set_executable(&tmp)?;
            f.sync_all()?;
        }
        fs_err::rename(&tmp, bin.join(&name))?;
        written.insert(name);
    }
    crate::durability::sync_dir(&bin)?;
    Ok(written)
}

/// Removes shims in `ROOT/bin` that are not in `keep` (left over from an earlier env).
pub fn remove_stale_shims(layout: &RootLayout, keep: &BTreeSet<String>) -> std::io::Result<()> {
    let bin = layout.bin_dir();
    let entries = match fs_err::read_dir(&bin) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if keep.contains(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        if is_shim(&entry.path())? {
            tracing::debug!(shim = %name, "removing stale shim");
            fs_err::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Whether the file at `path` is one of our shims (its head carries [`SHIM_MARKER`]).
pub fn is_shim(path: &Path) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(256);
    fs_err::File::open(path)?.take(256).read_to_end(&mut head)?;
    Ok(String::from_utf8_lossy(&head).contains(SHIM_MARKER))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> std::io::Result<()> {
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
        use std::process::Command;
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
