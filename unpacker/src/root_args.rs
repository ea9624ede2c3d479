//! The command-line arguments of the root commands (`status`, `rollback`, `doctor`, `repair`),
//! shared by `envpack` and `envpack-unpack` (clap `flatten`/tuple variants) so the two binaries
//! cannot drift apart, and the text both print for their results.

use std::path::PathBuf;
use std::time::Duration;

use crate::{DoctorOptions, RepairOptions, RootStatus, UnpackOutcome};

/// Seconds a command run by doctor or repair may take unless told otherwise.
pub const DEFAULT_TIMEOUT: u64 = 120;

/// `--root DIR` (or ENVPACK_ROOT).
#[derive(Debug, Clone, clap::Args)]
pub struct RootArg {
    /// The root.
    #[arg(long, env = "ENVPACK_ROOT")]
    pub root: PathBuf,
}

/// The arguments of `doctor`.
#[derive(Debug, Clone, clap::Args)]
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
#[derive(Debug, Clone, clap::Args)]
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
