//! The `envpack-unpack` command line: the subcommands `envpack` has for the same jobs
//! (`unpack`, `verify`, `status`, `rollback`, `doctor`, `repair`, with the same flags), and the
//! earlier flag grammar (`envpack-unpack ART --root R`, `--verify`, `--rollback`, …), hidden but
//! accepted for one release so scripts written against it keep working. Both parse to one
//! [`Action`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use envpack_unpack::cli_docs::Shell;
pub use envpack_unpack::root_args::DEFAULT_TIMEOUT;
use envpack_unpack::root_args::{DoctorArgs, RepairArgs, RootArg, SignatureArgs, TrustArgs};
use envpack_unpack::TrustOptions;

/// Verify a portable envpack artifact and restore it into a symlinked root.
#[derive(Debug, Parser)]
#[command(name = "envpack-unpack", version, about, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    legacy: Legacy,
    /// Print the result as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no progress lines.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The subcommands, named and flagged as `envpack`'s.
#[derive(Debug, Subcommand)]
enum Command {
    /// Verify an artifact and restore it into a root (created if missing); a second unpack of
    /// the same artifact changes nothing.
    Unpack {
        /// The artifact (.envpack.tar).
        artifact: PathBuf,
        /// The root.
        #[arg(long, env = "ENVPACK_ROOT")]
        root: PathBuf,
        /// Do not keep a copy of the artifact in the root (repair then needs it given).
        #[arg(long)]
        no_keep_artifact: bool,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Re-hash a root's current env against its manifest, or check every digest (and, with
    /// --trust, the signature) of an artifact.
    Verify {
        /// An artifact to check.
        artifact: Option<PathBuf>,
        /// A root to check (default without an ARTIFACT: ENVPACK_ROOT).
        #[arg(long, conflicts_with = "artifact")]
        root: Option<PathBuf>,
        #[command(flatten)]
        signature: SignatureArgs,
    },
    /// Show the root's current and previous environments.
    Status(RootArg),
    /// Switch `current` back to the previous environment.
    Rollback(RootArg),
    /// Check a root without changing it (exit 0 healthy, 1 findings, 2 error); writes a log dir
    /// with report.json and a SUCCESS marker.
    Doctor(DoctorArgs),
    /// Fix what doctor finds from the kept (or given) artifact, then check again (exit 0
    /// healthy, 1 not repaired, 2 error).
    Repair(RepairArgs),
    /// Print the shell completion script of envpack-unpack.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Write the man pages of envpack-unpack (envpack-unpack.1, envpack-unpack-<command>.1).
    Man {
        /// The directory to write them into (made if missing), e.g. ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// The earlier grammar, hidden from `--help`.
#[derive(Debug, Args)]
struct Legacy {
    #[arg(hide = true)]
    artifact: Option<PathBuf>,
    // ENVPACK_ROOT is read in `action`: an env-provided value would count as a legacy flag
    // given alongside a subcommand.
    #[arg(long, hide = true)]
    root: Option<PathBuf>,
    #[arg(long, hide = true, conflicts_with_all = ["artifact", "verify", "status"])]
    rollback: bool,
    #[arg(long, hide = true, conflicts_with_all = ["artifact", "rollback", "verify", "status"])]
    doctor: bool,
    #[arg(long, hide = true, conflicts_with_all = ["rollback", "verify", "status", "doctor"])]
    repair: bool,
    #[arg(long, hide = true, value_name = "DIR", requires = "doctor")]
    log_dir: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT)]
    timeout: u64,
    #[arg(long, hide = true)]
    no_keep_artifact: bool,
    #[arg(long, hide = true, conflicts_with = "status")]
    verify: bool,
    #[arg(long, hide = true, conflicts_with = "artifact")]
    status: bool,
}

/// What the command line asks for, whichever grammar it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Unpack `artifact` into `root`.
    Unpack {
        artifact: PathBuf,
        root: PathBuf,
        keep_artifact: bool,
        trust: TrustOptions,
    },
    /// Verify a root's current env.
    VerifyRoot(PathBuf),
    /// Verify an artifact (and its signature, when asked).
    VerifyArtifact(PathBuf, Option<TrustOptions>),
    /// Show a root.
    Status(PathBuf),
    /// Roll a root back.
    Rollback(PathBuf),
    /// Check a root.
    Doctor(DoctorArgs),
    /// Repair a root.
    Repair(RepairArgs),
    /// Print a completion script.
    Completions(Shell),
    /// Write the man pages into a directory.
    Man(PathBuf),
}

impl Action {
    /// Whether a failure is reported with exit code 2 (doctor and repair keep 1 for findings).
    pub fn failure_code(&self) -> u8 {
        match self {
            Action::Doctor(_) | Action::Repair(_) => 2,
            _ => 1,
        }
    }
}

impl Cli {
    /// The action asked for, or what is missing to make one.
    pub fn action(&self) -> Result<Action, String> {
        self.action_with(
            std::env::var_os("ENVPACK_ROOT").map(PathBuf::from),
            &|name| std::path::Path::new(name).exists(),
        )
    }

    /// [`Cli::action`] with `env_root` standing in for ENVPACK_ROOT and `exists` for a look
    /// at the working directory.
    fn action_with(
        &self,
        env_root: Option<PathBuf>,
        exists: &dyn Fn(&str) -> bool,
    ) -> Result<Action, String> {
        // In the earlier grammar `envpack-unpack rollback --root R` unpacked a file named
        // `rollback`; now it is the command. Where such a file is at hand and the command would
        // change the root, say so rather than guess.
        let changes_root = match &self.command {
            Some(Command::Rollback(_)) => Some("rollback"),
            Some(Command::Repair(_)) => Some("repair"),
            _ => None,
        };
        if let Some(name) = changes_root.filter(|n| exists(n)) {
            return Err(format!(
                "`{name}` is a command here, and also a file in this directory: to unpack the file, \
                 write `envpack-unpack unpack ./{name} --root DIR`; to run the command, run it \
                 from another directory"
            ));
        }
        match &self.command {
            Some(_) if self.legacy.any() => Err(
                "the earlier flags (--verify, --rollback, --status, --doctor, --repair, ...) go \
                 without a subcommand: use the subcommand's own"
                    .to_string(),
            ),
            Some(command) => command.action(env_root),
            None => self.legacy.action(env_root),
        }
    }
}

impl Command {
    fn action(&self, env_root: Option<PathBuf>) -> Result<Action, String> {
        Ok(match self {
            Command::Unpack {
                artifact,
                root,
                no_keep_artifact,
                trust,
            } => Action::Unpack {
                artifact: artifact.clone(),
                root: root.clone(),
                keep_artifact: !no_keep_artifact,
                trust: trust.options(),
            },
            Command::Verify {
                artifact: Some(a),
                signature,
                ..
            } => Action::VerifyArtifact(a.clone(), signature.verify_options()?),
            Command::Verify { signature, .. }
                if !signature.trust.is_empty() || signature.signature.is_some() =>
            {
                return Err("--trust and --signature check an ARTIFACT; give one".to_string())
            }
            Command::Verify { root, .. } => match root.clone().or(env_root) {
                Some(r) => Action::VerifyRoot(r),
                None => return Err(VERIFY_NEEDS.to_string()),
            },
            Command::Status(a) => Action::Status(a.root.clone()),
            Command::Rollback(a) => Action::Rollback(a.root.clone()),
            Command::Doctor(a) => Action::Doctor(a.clone()),
            Command::Repair(a) => Action::Repair(a.clone()),
            Command::Completions { shell } => Action::Completions(*shell),
            Command::Man { out } => Action::Man(out.clone()),
        })
    }
}

const VERIFY_NEEDS: &str = "give an ARTIFACT or --root DIR to verify";

impl Legacy {
    /// Whether any of the earlier grammar's arguments was given.
    fn any(&self) -> bool {
        let Legacy {
            artifact,
            root,
            rollback,
            doctor,
            repair,
            log_dir,
            timeout,
            no_keep_artifact,
            verify,
            status,
        } = self;
        artifact.is_some()
            || root.is_some()
            || log_dir.is_some()
            || *timeout != DEFAULT_TIMEOUT
            || *rollback
            || *doctor
            || *repair
            || *no_keep_artifact
            || *verify
            || *status
    }

    fn action(&self, env_root: Option<PathBuf>) -> Result<Action, String> {
        let given_root = self.root.clone().or(env_root);
        let root = || {
            given_root
                .clone()
                .ok_or_else(|| "--root DIR is required (or set ENVPACK_ROOT)".to_string())
        };
        if self.doctor {
            return Ok(Action::Doctor(DoctorArgs {
                root: root()?,
                log_dir: self.log_dir.clone(),
                timeout: self.timeout,
            }));
        }
        if self.repair {
            return Ok(Action::Repair(RepairArgs {
                root: root()?,
                artifact: self.artifact.clone(),
                timeout: self.timeout,
            }));
        }
        if self.rollback {
            return Ok(Action::Rollback(root()?));
        }
        if self.status {
            return Ok(Action::Status(root()?));
        }
        if self.verify {
            return match (&given_root, &self.artifact) {
                (Some(r), _) => Ok(Action::VerifyRoot(r.clone())),
                (None, Some(a)) => Ok(Action::VerifyArtifact(a.clone(), None)),
                (None, None) => Err(VERIFY_NEEDS.to_string()),
            };
        }
        match &self.artifact {
            Some(artifact) => Ok(Action::Unpack {
                artifact: artifact.clone(),
                root: root()?,
                keep_artifact: !self.no_keep_artifact,
                trust: TrustOptions::default(),
            }),
            None => Err(
                "no command given: try `envpack-unpack unpack ARTIFACT --root DIR` (see --help)"
                    .to_string(),
            ),
        }
    }
}

#[cfg(test)]
#[path = "cli_args_tests.rs"]
mod tests;
