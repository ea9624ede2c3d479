//! The `envpack-unpack` command line: unpack, roll back, verify or show a root.

mod cli_args;

use std::process::ExitCode;

use anyhow::Context as _;
use cli_args::{Action, Cli};
use envpack_unpack::{root_args, ProgressEvent, VerifyReport};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli: Cli = root_args::parse_or_exit();
    let action = match cli.action() {
        Ok(action) => action,
        Err(msg) => {
            report_error(&anyhow::anyhow!(msg), cli.json);
            return ExitCode::from(2);
        }
    };
    match run(&cli, &action) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err, cli.json);
            ExitCode::from(action.failure_code())
        }
    }
}

fn run(cli: &Cli, action: &Action) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory as _;
    match action {
        Action::Completions(shell) => {
            envpack_unpack::cli_docs::completions(Cli::command(), *shell, &mut std::io::stdout())
                .context("writing the completion script")?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Man(dir) => {
            let files = envpack_unpack::cli_docs::man_pages(Cli::command(), dir)?;
            print_result(cli, &files, || {
                format!("wrote {} man pages into {}", files.len(), dir.display())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Doctor(args) => {
            let report = envpack_unpack::doctor(&args.root, &args.options())
                .with_context(|| format!("checking {}", args.root.display()))?;
            if cli.json {
                print!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::from(if report.healthy { 0 } else { 1 }))
        }
        Action::Repair(args) => {
            let report = envpack_unpack::repair(&args.root, &args.options())
                .with_context(|| format!("repairing {}", args.root.display()))?;
            print_result(cli, &report, || report.to_text())?;
            Ok(ExitCode::from(if report.repaired { 0 } else { 1 }))
        }
        Action::Rollback(root) => {
            let outcome = envpack_unpack::rollback(root)
                .with_context(|| format!("rolling back {}", root.display()))?;
            print_result(cli, &outcome, || root_args::rollback_text(&outcome))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Status(root) => {
            let status = envpack_unpack::status(root)
                .with_context(|| format!("reading {}", root.display()))?;
            print_result(cli, &status, || root_args::status_text(&status))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::VerifyRoot(root) => verified(
            cli,
            &envpack_unpack::verify_root(root)
                .with_context(|| format!("verifying {}", root.display()))?,
        ),
        Action::VerifyArtifact(artifact, trust) => {
            let mut report = envpack_unpack::verify_artifact(artifact)
                .with_context(|| format!("verifying {}", artifact.display()))?;
            if let Some(opts) = trust {
                let v = envpack_unpack::signature_check::verify_signature(artifact, opts)
                    .with_context(|| {
                        format!(
                            "checking the signature and provenance of {}",
                            artifact.display()
                        )
                    })?;
                report.signature = Some(v);
            }
            verified(cli, &report)
        }
        Action::Unpack {
            artifact,
            root,
            keep_artifact,
            trust,
        } => {
            let quiet = cli.quiet || cli.json;
            let progress = |event: ProgressEvent| {
                if !quiet {
                    eprintln!("{event}");
                }
            };
            let opts = envpack_unpack::unpack::UnpackOptions {
                keep_artifact: *keep_artifact,
                trust: trust.clone(),
            };
            let outcome = envpack_unpack::unpack::unpack_with(artifact, root, &progress, &opts)
                .with_context(|| {
                    format!("unpacking {} into {}", artifact.display(), root.display())
                })?;
            print_result(cli, &outcome, || {
                if outcome.already_current {
                    format!("{} is already current", outcome.env_id)
                } else {
                    format!("current is now {}", outcome.env_id)
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a verify report; exit 1 when it found differences.
fn verified(cli: &Cli, report: &VerifyReport) -> anyhow::Result<ExitCode> {
    print_result(cli, report, || verify_text(report))?;
    Ok(if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_text(report: &VerifyReport) -> String {
    let mut out = format!(
        "{}: {} entries checked, {} differences",
        report.env_id,
        report.files_checked,
        report.differences.len()
    );
    if let Some(sig) = &report.signature {
        out.push('\n');
        out.push_str(sig);
    }
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

/// The error and its causes, through the reporter both binaries share.
fn report_error(err: &anyhow::Error, json: bool) {
    let causes: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    root_args::report_error(&causes, json);
}
