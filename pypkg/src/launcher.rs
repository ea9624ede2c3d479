//! Relocatable launchers: console-script wrappers in the Python scripts dir and the env's
//! top-level `bin/` shims. Pure text generators; nothing here bakes in an absolute path.

use crate::entry_points::EntryPoint;
use crate::platform::{LauncherKind, Platform};

/// A file generated into the env tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the env root, `/`-separated.
    pub path: String,
    /// Exact bytes to write.
    pub contents: Vec<u8>,
    /// Whether the file gets mode 0755 (else 0644).
    pub executable: bool,
}

/// POSIX sh that sets `$self` to the script's own path with every symlink followed and
/// `$here` to its physical directory. Avoids `'` and `\` so it can live inside a Python
/// triple-quoted string (see [`posix_console_script`]).
pub(crate) fn sh_locate_self() -> &'static str {
    r#"self="$0"
while [ -h "$self" ]; do
    link=$(readlink "$self") || exit 1
    case "$link" in
        /*) self="$link" ;;
        *) self="$(dirname "$self")/$link" ;;
    esac
done
here=$(cd -P "$(dirname "$self")" && pwd -P) || exit 1
"#
}

/// The Python statements that import and call an entry point, exiting with its result.
fn python_call(ep: &EntryPoint) -> String {
    let (first, rest) = match ep.attr.split_once('.') {
        Some((first, rest)) => (first, format!(".{rest}")),
        None => (ep.attr.as_str(), String::new()),
    };
    format!(
        "import sys\nfrom {module} import {first} as _envpack_entry\n\
         if __name__ == \"__main__\":\n    sys.exit(_envpack_entry{rest}())\n",
        module = ep.module
    )
}

/// A console script for a POSIX scripts dir: an sh/Python polyglot that runs
/// `py_exe_name` from its own physical directory, so it survives moves and symlinks.
pub fn posix_console_script(py_exe_name: &str, ep: &EntryPoint) -> String {
    // sh runs the `''':'` line as the no-op `:` and execs before reaching the closing
    // quotes; Python sees the whole sh block as one string literal and skips it.
    format!(
        "#!/bin/sh\n''':'\n{locate}exec \"$here/{py_exe_name}\" \"$self\" \"$@\"\n'''\n{call}",
        locate = sh_locate_self(),
        call = python_call(ep)
    )
}

/// The `-c` program a `.cmd` wrapper passes to Python for an entry point.
fn cmd_python_program(ep: &EntryPoint) -> String {
    let (first, rest) = match ep.attr.split_once('.') {
        Some((first, rest)) => (first, format!(".{rest}")),
        None => (ep.attr.as_str(), String::new()),
    };
    format!(
        "import sys; sys.argv[0] = '{name}'; from {module} import {first} as _e; sys.exit(_e{rest}())",
        name = ep.name,
        module = ep.module
    )
}

/// Joins lines with CRLF, which cmd.exe needs for reliable label and block parsing.
pub fn crlf(lines: &[&str]) -> String {
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// A `.cmd` console script for `python\Scripts\`, running `..\python.exe` relative to itself.
pub fn windows_console_script(ep: &EntryPoint) -> String {
    windows_entry_cmd(ep, r"%~dp0..\python.exe", "")
}

/// A `.cmd` that runs an entry point with the Python at `python_rel` (cmd syntax).
fn windows_entry_cmd(ep: &EntryPoint, python_rel: &str, prelude: &str) -> String {
    let run = format!("\"{python_rel}\" -c \"{}\" %*", cmd_python_program(ep));
    let mut lines = vec!["@echo off", "setlocal"];
    lines.extend(prelude.lines());
    lines.extend([run.as_str(), "exit /b %ERRORLEVEL%"]);
    crlf(&lines)
}

/// POSIX sh that exports `CONAN_HOME=ROOT/state/<env-id>/conan-home` when `CONAN_HOME` is
/// unset or empty, the env is `ROOT/envs/<env-id>` (`$env`, physical) and that dir exists.
pub(crate) fn sh_default_conan_home() -> &'static str {
    r#"if [ -z "${CONAN_HOME:-}" ]; then
    envs_dir=$(dirname "$env")
    if [ "$(basename "$envs_dir")" = envs ]; then
        state_home="$(dirname "$envs_dir")/state/$(basename "$env")/conan-home"
        if [ -d "$state_home" ]; then
            CONAN_HOME="$state_home"
            export CONAN_HOME
        fi
    fi
fi
"#
}

/// cmd.exe lines that set `_EP_ENV` to the env dir (`%~dp0..` for `bin\`, `%~dp0` for the
/// root), following a `ROOT\current` junction, and `_EP_HOME` to its state conan home.
pub fn cmd_locate_env(env_dir_expr: &str) -> String {
    // cmd cannot resolve links itself; `dir /AL` of the parent prints a junction's (or
    // directory symlink's, possibly relative) target in brackets, which names the real
    // `envs\<env-id>` directory.
    format!(
        r#"for %%I in ("{env_dir_expr}") do set "_EP_ENV=%%~fI"
for %%I in ("%_EP_ENV%") do set "_EP_NAME=%%~nxI"
for %%I in ("%_EP_ENV%\..") do set "_EP_PARENT=%%~fI"
set "_EP_TARGET="
for /f "tokens=2 delims=[]" %%T in ('dir /AL "%_EP_PARENT%" 2^>nul ^| findstr /L /C:" %_EP_NAME% ["') do set "_EP_TARGET=%%T"
if defined _EP_TARGET pushd "%_EP_PARENT%"
if defined _EP_TARGET for %%I in ("%_EP_TARGET%") do set "_EP_ENV=%%~fI"
if defined _EP_TARGET popd
for %%I in ("%_EP_ENV%") do set "_EP_ID=%%~nxI"
for %%I in ("%_EP_ENV%\..") do set "_EP_ENVS=%%~nxI"
for %%I in ("%_EP_ENV%\..\..") do set "_EP_ROOT=%%~fI"
set "_EP_HOME="
if /I "%_EP_ENVS%"=="envs" if exist "%_EP_ROOT%\state\%_EP_ID%\conan-home\" set "_EP_HOME=%_EP_ROOT%\state\%_EP_ID%\conan-home""#
    )
}

/// Top-level `bin/` launchers of an env: `python3`, `python` and one per console script,
/// each forwarding into `python/`. Console scripts also default `CONAN_HOME` to the
/// env's writable state dir (see [`sh_default_conan_home`]).
pub fn env_bin_launchers(
    platform: &Platform,
    py_minor: u8,
    console_scripts: &[EntryPoint],
) -> Vec<GeneratedFile> {
    let _ = py_minor;
    let mut out = Vec::new();
    match platform.launcher {
        LauncherKind::Posix => {
            let head = format!(
                "#!/bin/sh\n# envpack launcher: locates its env from its own physical path.\n{}env=$(dirname \"$here\")\n",
                sh_locate_self()
            );
            for name in ["python", "python3"] {
                out.push(GeneratedFile {
                    path: format!("bin/{name}"),
                    contents: format!("{head}exec \"$env/{}\" \"$@\"\n", platform.python_exe())
                        .into_bytes(),
                    executable: true,
                });
            }
            for ep in console_scripts {
                out.push(GeneratedFile {
                    path: format!("bin/{}", ep.name),
                    contents: format!(
                        "{head}{}exec \"$env/{}/{}\" \"$@\"\n",
                        sh_default_conan_home(),
                        platform.scripts_dir(),
                        ep.name
                    )
                    .into_bytes(),
                    executable: true,
                });
            }
        }
        LauncherKind::Windows => {
            let python_rel = format!(r"%~dp0..\{}", platform.python_exe().replace('/', "\\"));
            for name in ["python", "python3"] {
                out.push(GeneratedFile {
                    path: format!("bin/{name}.cmd"),
                    contents: crlf(&[
                        "@echo off",
                        &format!("\"{python_rel}\" %*"),
                        "exit /b %ERRORLEVEL%",
                    ])
                    .into_bytes(),
                    executable: true,
                });
            }
            let prelude = format!(
                "{}\nif not defined CONAN_HOME if defined _EP_HOME set \"CONAN_HOME=%_EP_HOME%\"",
                cmd_locate_env("%~dp0..")
            );
            for ep in console_scripts {
                out.push(GeneratedFile {
                    path: format!("bin/{}.cmd", ep.name),
                    contents: windows_entry_cmd(ep, &python_rel, &prelude).into_bytes(),
                    executable: true,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, module: &str, attr: &str) -> EntryPoint {
        EntryPoint::new(name, module, attr)
    }

    #[test]
    fn polyglot_has_no_python_breaking_text() {
        let s = posix_console_script("python3.11", &ep("conan", "conans.conan", "run"));
        assert!(s.starts_with("#!/bin/sh\n''':'\n"));
        // The sh block sits inside a Python string: it must not close it early or hold
        // escapes Python would warn about.
        let sh_block = &s["#!/bin/sh\n'''".len()..s.rfind("\n'''\n").unwrap()];
        assert!(!sh_block.contains("'''"));
        assert!(!sh_block.contains('\\'));
        assert!(s.contains("exec \"$here/python3.11\" \"$self\" \"$@\"\n"));
        assert!(s.ends_with("from conans.conan import run as _envpack_entry\nif __name__ == \"__main__\":\n    sys.exit(_envpack_entry())\n"));
    }

    #[test]
    fn dotted_attr_is_called_through_first_name() {
        let s = posix_console_script("python3", &ep("x", "a.b", "c.d"));
        assert!(s.contains("from a.b import c as _envpack_entry\n"));
        assert!(s.contains("sys.exit(_envpack_entry.d())"));
        let w = windows_console_script(&ep("x", "a.b", "c.d"));
        assert!(w.contains(r#""%~dp0..\python.exe" -c "import sys; sys.argv[0] = 'x'; from a.b import c as _e; sys.exit(_e.d())" %*"#));
        assert!(w.ends_with("exit /b %ERRORLEVEL%\r\n"));
        assert!(!w.replace("\r\n", "").contains('\n'), "CRLF only");
    }

    fn have(shell: &str) -> bool {
        std::process::Command::new(shell)
            .args(["-c", "true"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn syntax_ok(shell: &str, text: &str) {
        if !have(shell) {
            return;
        }
        let tmp = tempfile::NamedTempFile::new().unwrap();
        fs_err::write(tmp.path(), text).unwrap();
        let out = std::process::Command::new(shell)
            .arg("-n")
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell} -n: {out:?}\n{text}");
    }

    #[test]
    fn posix_outputs_parse_in_every_shell() {
        let unix = crate::platform::by_name("linux-x86_64").unwrap();
        let files = env_bin_launchers(&unix, 11, &[ep("conan", "conans.conan", "run")]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["bin/conan", "bin/python", "bin/python3"]);
        let poly = posix_console_script("python3.11", &ep("conan", "conans.conan", "run"));
        // sh stops at `exec`, so only the part before the closing quotes is sh.
        let sh_part = &poly[..poly.rfind("'''").unwrap()];
        for shell in ["sh", "dash", "bash", "zsh"] {
            for f in &files {
                assert!(f.executable);
                syntax_ok(shell, std::str::from_utf8(&f.contents).unwrap());
            }
            syntax_ok(shell, sh_part);
        }
        if have("python3") {
            let out = std::process::Command::new("python3")
                .args(["-c", "import ast, sys; ast.parse(sys.argv[1])", &poly])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let conan = std::str::from_utf8(&files[0].contents).unwrap();
        assert!(conan.contains("exec \"$env/python/bin/conan\" \"$@\""));
        assert!(conan.contains("/state/$(basename \"$env\")/conan-home"));
        let py = std::str::from_utf8(&files[2].contents).unwrap();
        assert!(py.ends_with("exec \"$env/python/bin/python3\" \"$@\"\n"));
    }

    #[test]
    fn windows_bin_launchers_are_relative_cmd_files() {
        let win = crate::platform::by_name("windows-x86_64").unwrap();
        let files = env_bin_launchers(&win, 11, &[ep("conan", "conans.conan", "run")]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["bin/conan.cmd", "bin/python.cmd", "bin/python3.cmd"]
        );
        for f in &files {
            let text = std::str::from_utf8(&f.contents).unwrap();
            assert!(text.contains(r"%~dp0..\python\python.exe"), "{text}");
            assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        }
        let conan = std::str::from_utf8(&files[0].contents).unwrap();
        assert!(conan.contains(
            r#"if not defined CONAN_HOME if defined _EP_HOME set "CONAN_HOME=%_EP_HOME%""#
        ));
    }
}
