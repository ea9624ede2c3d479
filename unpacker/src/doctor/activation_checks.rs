//! Checks `activation.<shell>`: sourcing the root's activation in each shell puts the env's
//! `bin/` first on PATH and CONAN_HOME at the env's state dir.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::doctor::finding::{Finding, FindingClass};
use crate::doctor::log_dir::LogDir;
use crate::doctor::report::Check;
use crate::doctor::run_command::{find_program, run_logged, CommandSpec};
use crate::layout::RootLayout;

/// A shell the activation is checked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash, sourcing `ROOT/bin/activate`.
    Bash,
    /// zsh, sourcing `ROOT/bin/activate`.
    Zsh,
    /// fish, sourcing `ROOT/current/activate.fish`.
    Fish,
    /// PowerShell 7, dot-sourcing `ROOT/current/activate.ps1`.
    Pwsh,
    /// Windows cmd, calling `ROOT\bin\activate.cmd`.
    Cmd,
}

/// Every shell, in check order.
pub const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::Pwsh,
    Shell::Cmd,
];

/// Variable holding the root, so no script has to quote a path.
const ROOT_VAR: &str = "ENVPACK_DOCTOR_ROOT";

impl Shell {
    /// The name in the check id and the program looked up.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Pwsh => "pwsh",
            Shell::Cmd => "cmd",
        }
    }

    /// Arguments that run `script` (printing `PATH=…` and `CONAN_HOME=…` lines).
    fn args(self) -> Vec<&'static str> {
        match self {
            Shell::Bash | Shell::Zsh => vec![
                "-c",
                ". \"$ENVPACK_DOCTOR_ROOT/bin/activate\" || exit 97\n\
                 printf 'PATH=%s\\n' \"$PATH\"\nprintf 'CONAN_HOME=%s\\n' \"${CONAN_HOME-}\"\n",
            ],
            Shell::Fish => vec![
                "--no-config",
                "-c",
                "source $ENVPACK_DOCTOR_ROOT/current/activate.fish; or exit 97\n\
                 printf 'PATH=%s\\n' (string join : $PATH)\nprintf 'CONAN_HOME=%s\\n' \"$CONAN_HOME\"\n",
            ],
            Shell::Pwsh => vec![
                "-NoLogo",
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                ". (Join-Path $env:ENVPACK_DOCTOR_ROOT 'current/activate.ps1'); \
                 \"PATH=$env:PATH\"; \"CONAN_HOME=$env:CONAN_HOME\"",
            ],
            Shell::Cmd => vec![
                "/d",
                "/v:on",
                "/c",
                "call \"%ENVPACK_DOCTOR_ROOT%\\bin\\activate.cmd\" && echo PATH=!PATH!&& echo CONAN_HOME=!CONAN_HOME!",
            ],
        }
    }

    /// Why the shell is not checked on this OS, if it is not.
    fn unsupported_here(self) -> Option<&'static str> {
        match self {
            Shell::Cmd if !cfg!(windows) => Some("cmd exists on Windows only"),
            Shell::Bash | Shell::Zsh | Shell::Fish if cfg!(windows) => {
                Some("POSIX shell activation is checked on Unix hosts")
            }
            _ => None,
        }
    }
}

/// PATH entries and CONAN_HOME as printed by the check scripts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivatedVars {
    /// PATH split into entries.
    pub path: Vec<String>,
    /// CONAN_HOME (empty when unset).
    pub conan_home: String,
}

/// Parses the `PATH=`/`CONAN_HOME=` lines; the last of each wins (activation may print).
pub fn parse_activated(stdout: &str) -> Option<ActivatedVars> {
    let sep = if cfg!(windows) { ';' } else { ':' };
    let mut path = None;
    let mut home = None;
    for line in stdout.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(p) = line.strip_prefix("PATH=") {
            path = Some(p.split(sep).map(str::to_owned).collect());
        } else if let Some(h) = line.strip_prefix("CONAN_HOME=") {
            home = Some(h.trim_end().to_owned());
        }
    }
    Some(ActivatedVars {
        path: path?,
        conan_home: home?,
    })
}

/// What is wrong with the activated variables, as readable lines.
pub fn activation_problems(vars: &ActivatedVars, env_bin: &Path, conan_home: &Path) -> Vec<String> {
    let mut out = Vec::new();
    match vars.path.first() {
        Some(first) if same_path(Path::new(first), env_bin) => {}
        first => out.push(format!(
            "PATH starts with {}, expected {}",
            first.map_or_else(
                || "nothing".to_string(),
                |f| format!("\"{}\"", envpack_layers::shown_name(f))
            ),
            env_bin.display()
        )),
    }
    if !same_path(Path::new(&vars.conan_home), conan_home) {
        out.push(format!(
            "CONAN_HOME is \"{}\", expected {}",
            envpack_layers::shown_name(&vars.conan_home),
            conan_home.display()
        ));
    }
    out
}

/// Equal as written, or after resolving links on both sides.
fn same_path(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (fs_err::canonicalize(a), fs_err::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Runs the activation check in `shell` (skipped with evidence when absent here).
pub fn check_activation(
    shell: Shell,
    layout: &RootLayout,
    env_id: &str,
    log: &LogDir,
    timeout: Duration,
    program: Option<PathBuf>,
) -> Check {
    let id = format!("activation.{}", shell.name());
    if let Some(why) = shell.unsupported_here() {
        return Check::skip(&id, why);
    }
    let Some(program) = program.or_else(|| find_program(shell.name())) else {
        return Check::skip(
            &id,
            format!("{} is not installed on this host", shell.name()),
        );
    };
    let spec = CommandSpec {
        program,
        args: shell.args().into_iter().map(Into::into).collect(),
        env: vec![(ROOT_VAR.to_owned(), layout.root.clone().into_os_string())],
    };
    let out = run_logged(&spec, log, &id, timeout);
    let env_bin = layout.env_dir(env_id).join("bin");
    let home = layout.conan_home(env_id);
    let problems = match (out.success(), parse_activated(&out.stdout)) {
        (true, Some(vars)) => activation_problems(&vars, &env_bin, &home),
        (true, None) => vec!["the script printed no PATH/CONAN_HOME".to_owned()],
        (false, _) => vec![format!(
            "activation failed: {}: {}",
            out.describe(),
            out.stderr.trim()
        )],
    };
    let evidence = format!(
        "{} sourced the activation -> {}; expected PATH to start with {} and CONAN_HOME={}",
        shell.name(),
        out.describe(),
        env_bin.display(),
        home.display()
    );
    let findings = problems
        .into_iter()
        .map(|p| Finding::general(FindingClass::ActivationBroken, p))
        .collect();
    Check::from_findings(&id, evidence, findings)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn parse_and_judge_activated_vars() {
        let out = "noise\nPATH=/r/envs/e/bin:/usr/bin\nCONAN_HOME=/r/state/e/conan-home\n";
        let vars = parse_activated(out).unwrap();
        assert_eq!(vars.path, ["/r/envs/e/bin", "/usr/bin"]);
        let bin = Path::new("/r/envs/e/bin");
        let home = Path::new("/r/state/e/conan-home");
        assert!(activation_problems(&vars, bin, home).is_empty());
        let wrong = parse_activated("PATH=/usr/bin\nCONAN_HOME=\n").unwrap();
        let p = activation_problems(&wrong, bin, home);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("PATH starts with"), "{p:?}");
        assert!(parse_activated("PATH=/x\n").is_none());
    }
}
