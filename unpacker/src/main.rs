//! The `envpack-unpack` command line: unpack, roll back, verify or show a root.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use envpack_unpack::{ProgressEvent, VerifyReport};

/// Verify a portable envpack artifact and restore it into a symlinked root.
#[derive(Debug, Parser)]
#[command(name = "envpack-unpack", version, about)]
struct Cli {
    /// The artifact (.tar) to unpack, or to check with --verify when no --root is given.
    /// With --repair: the artifact to restore from instead of the copy kept in the root.
    #[arg(required_unless_present_any = ["rollback", "verify", "status", "doctor", "repair"])]
    artifact: Option<PathBuf>,
    /// The root directory (created if missing when unpacking).
    #[arg(long, env = "ENVPACK_ROOT")]
    root: Option<PathBuf>,
    /// Switch current back to the previous environment.
    #[arg(long, conflicts_with_all = ["artifact", "verify", "status"], requires = "root")]
    rollback: bool,
    /// Check the root's current environment without changing it (exit 0 healthy, 1 findings,
    /// 2 error); writes a log dir with report.json and a SUCCESS marker.
    #[arg(long, conflicts_with_all = ["artifact", "rollback", "verify", "status"], requires = "root")]
    doctor: bool,
    /// Fix what doctor finds from the kept (or given) artifact, then run doctor again (exit 0
    /// healthy, 1 not repaired, 2 error).
    #[arg(long, conflicts_with_all = ["rollback", "verify", "status", "doctor"], requires = "root")]
    repair: bool,
    /// With --doctor: write the logs here instead of ROOT/.envpack/doctor/<run-id>.
    #[arg(long, value_name = "DIR", requires = "doctor")]
    log_dir: Option<PathBuf>,
    /// Seconds each command run by --doctor/--repair may take.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
    /// Do not keep a copy of the artifact in the root (repair then needs the artifact given).
    #[arg(long)]
    no_keep_artifact: bool,
    /// Verify the root's current environment (with --root) or an artifact (without).
    #[arg(long, conflicts_with = "status")]
    verify: bool,
    /// Show the root's current and previous environments.
    #[arg(long, conflicts_with = "artifact", requires = "root")]
    status: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print no progress lines.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err, cli.json);
            // Doctor and repair keep 1 for "findings", so their errors get a code of their own.
            ExitCode::from(if cli.doctor || cli.repair { 2 } else { 1 })
        }
    }
}

fn doctor_options(cli: &Cli) -> envpack_unpack::DoctorOptions {
    envpack_unpack::DoctorOptions {
        log_dir: cli.log_dir.clone(),
        timeout: std::time::Duration::from_secs(cli.timeout),
    }
}

fn run_doctor(cli: &Cli) -> anyhow::Result<ExitCode> {
    let root = required_root(cli)?;
    let report = envpack_unpack::doctor(&root, &doctor_options(cli))
        .with_context(|| format!("checking {}", root.display()))?;
    if cli.json {
        print!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::from(if report.healthy { 0 } else { 1 }))
}

fn run_repair(cli: &Cli) -> anyhow::Result<ExitCode> {
    let root = required_root(cli)?;
    let opts = envpack_unpack::RepairOptions {
        artifact: cli.artifact.clone(),
        doctor: doctor_options(cli),
    };
    let report = envpack_unpack::repair(&root, &opts)
        .with_context(|| format!("repairing {}", root.display()))?;
    print_result(cli, &report, || report.to_text())?;
    Ok(ExitCode::from(if report.repaired { 0 } else { 1 }))
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if cli.doctor {
        return run_doctor(cli);
    }
    if cli.repair {
        return run_repair(cli);
    }
    if cli.rollback {
        let root = required_root(cli)?;
        let outcome = envpack_unpack::rollback(&root)
            .with_context(|| format!("rolling back {}", root.display()))?;
        print_result(cli, &outcome, || {
            format!(
                "current is now {} (was {})",
                outcome.env_id,
                outcome.previous.as_deref().unwrap_or("none")
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if cli.status {
        let root = required_root(cli)?;
        let status =
            envpack_unpack::status(&root).with_context(|| format!("reading {}", root.display()))?;
        print_result(cli, &status, || {
            format!(
                "current: {}\nprevious: {}\nenvs: {}",
                status.current.as_deref().unwrap_or("none"),
                status.previous.as_deref().unwrap_or("none"),
                status.envs.join(" ")
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if cli.verify {
        let report = match (&cli.root, &cli.artifact) {
            (Some(root), _) => envpack_unpack::verify_root(root)
                .with_context(|| format!("verifying {}", root.display()))?,
            (None, Some(artifact)) => envpack_unpack::verify_artifact(artifact)
                .with_context(|| format!("verifying {}", artifact.display()))?,
            (None, None) => anyhow::bail!("--verify needs --root DIR or an ARTIFACT"),
        };
        print_result(cli, &report, || verify_text(&report))?;
        return Ok(if report.differences.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let root = required_root(cli)?;
    let artifact = cli
        .artifact
        .as_ref()
        .context("an ARTIFACT to unpack is required")?;
    let quiet = cli.quiet || cli.json;
    let progress = |event: ProgressEvent| {
        if !quiet {
            eprintln!("{event}");
        }
    };
    let opts = envpack_unpack::unpack::UnpackOptions {
        keep_artifact: !cli.no_keep_artifact,
    };
    let outcome = envpack_unpack::unpack::unpack_with(artifact, &root, &progress, &opts)
        .with_context(|| format!("unpacking {} into {}", artifact.display(), root.display()))?;
    print_result(cli, &outcome, || {
        if outcome.already_current {
            format!("{} is already current", outcome.env_id)
        } else {
            format!("current is now {}", outcome.env_id)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn required_root(cli: &Cli) -> anyhow::Result<PathBuf> {
    cli.root
        .clone()
        .context("--root DIR is required (or set ENVPACK_ROOT)")
}

fn verify_text(report: &VerifyReport) -> String {
    let mut out = format!(
        "{}: {} entries checked, {} differences",
        report.env_id,
        report.files_checked,
        report.differences.len()
    );
    for d in &report.differences {
        out.push_str("\n  ");
        out.push_str(d);
    }
    out
}

fn print_result<T: serde::Serialize>(
    cli: &Cli,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

/// One line per cause, outermost first; with `--json` the same as a JSON object on stdout.
fn report_error(err: &anyhow::Error, json: bool) {
    let causes: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    if json {
        let value = serde_json::json!({ "ok": false, "error": causes.first(), "causes": causes });
        println!("{value}");
        return;
    }
    for (i, cause) in causes.iter().enumerate() {
        if i == 0 {
            eprintln!("error: {cause}");
        } else {
            eprintln!("  caused by: {cause}");
        }
    }
}
