//! Running an env's program for a check: clean environment, output to the log dir, timeout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::doctor::log_dir::LogDir;

/// A program to run and the variables it gets on top of the clean base environment.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(String, OsString)>,
}

impl CommandSpec {
    /// `program args…` with no extra variables.
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Self {
        CommandSpec {
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            env: Vec::new(),
        }
    }

    /// Adds a variable.
    pub fn var(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// The command line as one readable string.
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// Exit code; `None` when killed by a signal, timed out or not started.
    pub code: Option<i32>,
    /// True when it was killed after the timeout.
    pub timed_out: bool,
    /// Why it could not be started, if it could not.
    pub spawn_error: Option<String>,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

impl CommandOutcome {
    /// True when it ran and exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// One line saying how it ended, for evidence.
    pub fn describe(&self) -> String {
        if let Some(e) = &self.spawn_error {
            return format!("could not start: {e}");
        }
        if self.timed_out {
            return "timed out and was killed".into();
        }
        match self.code {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        }
    }
}

/// The variables every command starts from; nothing of the caller's environment leaks in
/// except what Windows needs to start processes at all.
pub fn clean_env(home: &Path) -> Vec<(String, OsString)> {
    let mut env: Vec<(String, OsString)> = vec![
        ("HOME".into(), home.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("NO_COLOR".into(), "1".into()),
        ("TERM".into(), "dumb".into()),
        // Doctor must leave the env as it found it, even if a pyc is missing.
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];
    if cfg!(windows) {
        for name in ["SystemRoot", "windir", "ComSpec", "PATHEXT", "TEMP", "TMP"] {
            if let Some(v) = std::env::var_os(name) {
                env.push((name.into(), v));
            }
        }
        let root = std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into());
        let mut path = OsString::from(&root);
        path.push("\\System32");
        env.push(("PATH".into(), path));
        env.push(("USERPROFILE".into(), home.into()));
    } else {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env
}

/// Runs `spec` with [`clean_env`], writing `<name>.cmd`, `<name>.stdout` and `<name>.stderr`
/// into `log`; kills it after `timeout`.
pub fn run_logged(
    spec: &CommandSpec,
    log: &LogDir,
    name: &str,
    timeout: Duration,
) -> CommandOutcome {
    let mut outcome = CommandOutcome {
        code: None,
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: String::new(),
    };
    if let Err(e) = run_into_files(spec, log, name, timeout, &mut outcome) {
        outcome.spawn_error = Some(e.to_string());
    }
    outcome.stdout = read_lossy(&log.file(&format!("{name}.stdout")));
    outcome.stderr = read_lossy(&log.file(&format!("{name}.stderr")));
    outcome
}

fn run_into_files(
    spec: &CommandSpec,
    log: &LogDir,
    name: &str,
    timeout: Duration,
    outcome: &mut CommandOutcome,
) -> std::io::Result<()> {
    fs_err::write(log.file(&format!("{name}.cmd")), spec.display() + "\n")?;
    // Files instead of pipes: no deadlock on large output, and the output stays in the logs.
    let stdout = fs_err::File::create(log.file(&format!("{name}.stdout")))?;
    let stderr = fs_err::File::create(log.file(&format!("{name}.stderr")))?;
    let home = log.home()?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(clean_env(&home))
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout.into_parts().0))
        .stderr(Stdio::from(stderr.into_parts().0));
    let mut child = cmd
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", spec.program.display())))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            outcome.code = status.code();
            return Ok(());
        }
        if started.elapsed() >= timeout {
            tracing::warn!(command = %spec.display(), "timed out; killing it");
            let _ = child.kill();
            let _ = child.wait();
            outcome.timed_out = true;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_lossy(path: &Path) -> String {
    fs_err::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Looks `name` up in the caller's PATH (the shells a user has), then in the usual places.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if cfg!(unix) {
        dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    }
    let names: Vec<String> = if cfg!(windows) {
        vec![format!("{name}.exe"), name.to_owned()]
    } else {
        vec![name.to_owned()]
    };
    dirs.iter()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn clean_env_output_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::layout::RootLayout::new(dir.path());
        let log = LogDir::create(&layout, Some(&dir.path().join("log"))).unwrap();
        std::env::set_var("ENVPACK_DOCTOR_LEAK_TEST", "leaked");
        let spec = CommandSpec::new(
            "/bin/sh",
            &[
                "-c",
                "echo \"[$ENVPACK_DOCTOR_LEAK_TEST][$X]\"; echo err >&2; exit 3",
            ],
        )
        .var("X", "y");
        let out = run_logged(&spec, &log, "t", Duration::from_secs(10));
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "[][y]\n");
        assert_eq!(out.stderr, "err\n");
        assert!(log.file("t.cmd").is_file());
        let slow = CommandSpec::new("/bin/sh", &["-c", "sleep 5"]);
        let started = Instant::now();
        let out = run_logged(&slow, &log, "slow", Duration::from_millis(200));
        assert!(out.timed_out && !out.success(), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(4));
        let missing = run_logged(
            &CommandSpec::new("/nonexistent/x", &[]),
            &log,
            "m",
            Duration::from_secs(1),
        );
        assert!(missing.spawn_error.is_some(), "{missing:?}");
        assert!(missing.describe().contains("could not start"));
    }
}
