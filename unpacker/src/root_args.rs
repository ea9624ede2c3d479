//! The command-line arguments of the root commands (`status`, `rollback`, `doctor`, `repair`),
//! shared by `envpack` and `envpack-unpack` (clap `flatten`/tuple variants) so the two binaries
//! cannot drift apart, and the text both print for their results.

use std::path::PathBuf;
use std::time::Duration;

use crate::{DoctorOptions, RepairOptions, RootStatus, TrustOptions, UnpackOutcome};

/// Seconds a command run by doctor or repair may take unless told otherwise.
pub const DEFAULT_TIMEOUT: u64 = 120;

/// `--root DIR` (or ENVPACK_ROOT).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RootArg {
    /// The root.
    #[arg(long, env = "ENVPACK_ROOT")]
    pub root: PathBuf,
}

/// Which signature an artifact must carry (`unpack`, `verify`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SignatureArgs {
    /// Require a signature by this public key (minisign format, from `envpack keygen` or
    /// `minisign -G`; repeatable: any one of them).
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<PathBuf>,
    /// The artifact's signature (default: the artifact's path with `.minisig`).
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
}

/// The signature flags of `unpack`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TrustArgs {
    #[command(flatten)]
    pub signature: SignatureArgs,
    /// Make the root require a signature by the --trust keys on every later unpack.
    #[arg(long, requires = "trust")]
    pub require_signature: bool,
    /// Accept an env signed earlier than the current one (refused by default: a replayed
    /// older artifact is a rollback attack).
    #[arg(long)]
    pub allow_downgrade: bool,
}

impl SignatureArgs {
    /// The signature check `verify` is asked for: none without `--trust`; a `--signature`
    /// with no key to check it by is refused rather than ignored.
    pub fn verify_options(&self) -> Result<Option<TrustOptions>, &'static str> {
        match (self.trust.is_empty(), &self.signature) {
            (true, Some(_)) => Err("--signature needs --trust KEY.pub: the key to check it with"),
            (true, None) => Ok(None),
            (false, _) => Ok(Some(TrustOptions {
                trust: self.trust.clone(),
                signature: self.signature.clone(),
                ..TrustOptions::default()
            })),
        }
    }
}

impl TrustArgs {
    /// What the unpack is told.
    pub fn options(&self) -> TrustOptions {
        TrustOptions {
            trust: self.signature.trust.clone(),
            signature: self.signature.signature.clone(),
            require_signature: self.require_signature,
            allow_downgrade: self.allow_downgrade,
        }
    }
}

/// The arguments of `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DoctorArgs {
    /// The root.
    #[arg(long, env = "ENVPACK_ROOT")]
    pub root: PathBuf,
    /// Write the logs here instead of ROOT/.envpack/doctor/<run-id>.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Seconds each command the check runs may take.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u64,
}

/// The arguments of `repair`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RepairArgs {
    /// The root.
    #[arg(long, env = "ENVPACK_ROOT")]
    pub root: PathBuf,
    /// Restore from this artifact instead of the copy kept in the root.
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// Seconds each command the check runs may take.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u64,
}

impl DoctorArgs {
    /// What the doctor run is told.
    pub fn options(&self) -> DoctorOptions {
        DoctorOptions {
            log_dir: self.log_dir.clone(),
            timeout: Duration::from_secs(self.timeout),
        }
    }
}

impl RepairArgs {
    /// What the repair run is told.
    pub fn options(&self) -> RepairOptions {
        RepairOptions {
            artifact: self.artifact.clone(),
            doctor: DoctorOptions {
                log_dir: None,
                timeout: Duration::from_secs(self.timeout),
            },
        }
    }
}

/// `status` as text: current, previous and every env.
pub fn status_text(status: &RootStatus) -> String {
    format!(
        "current: {}\nprevious: {}\nenvs: {}",
        status.current.as_deref().unwrap_or("none"),
        status.previous.as_deref().unwrap_or("none"),
        status.envs.join(" ")
    )
}

/// `rollback` as text.
pub fn rollback_text(outcome: &UnpackOutcome) -> String {
    format!(
        "current is now {} (was {})",
        outcome.env_id,
        outcome.previous.as_deref().unwrap_or("none")
    )
}

/// Parses the command line as `C`; a usage error is printed as clap prints it, or, when
/// `--json` is on the command line, as the same JSON error object every other failure
/// prints, and exits 2. Help and version requests print and exit 0 as usual.
pub fn parse_or_exit<C: clap::Parser>() -> C {
    match C::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            let text = e.kind().to_string();
            let detail = e.to_string();
            let first = detail
                .lines()
                .next()
                .unwrap_or(&text)
                .trim_start_matches("error: ")
                .to_string();
            report_error(&[first, text], true);
            std::process::exit(2)
        }
        Err(e) => e.exit(),
    }
}

/// Prints an error and its causes, outermost first, as `error:` / `caused by:` lines on
/// stderr, and with `json` also as one `{"ok": false, "error", "causes"}` object on stdout
/// (for the program reading stdout; a person or a log still sees the lines).
pub fn report_error(causes: &[String], json: bool) {
    if json {
        let value = serde_json::json!({ "ok": false, "error": causes.first(), "causes": causes });
        println!("{value}");
    }
    for (i, cause) in causes.iter().enumerate() {
        if i == 0 {
            eprintln!("error: {cause}");
        } else {
            eprintln!("  caused by: {cause}");
        }
    }
}
