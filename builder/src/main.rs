//! The `envpack` command line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::CommandFactory as _;
use envpack::build::{BuildOptions, OutputFormat};
use envpack::image::ImageSettings;
use envpack::lock::Lock;
use envpack_layers::compress::Compression;
use envpack_net::Cache;
use envpack_net::HttpClient;

mod cli_args;
mod cli_inputs;
mod cli_progress;
mod cli_trust;

use cli_args::{Cli, Command, LockedInputs};
use cli_progress::Progress;
use envpack_unpack::root_args::{self, RootArg};

fn main() -> ExitCode {
    let cli: Cli = root_args::parse_or_exit();
    init_tracing(cli.quiet);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&e, cli.json);
            // A command line that can't be run exits 2, as clap's own usage errors do.
            ExitCode::from(if e.downcast_ref::<Usage>().is_some() {
                2
            } else {
                1
            })
        }
    }
}

/// A command line that parses but asks for nothing that can be done (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub(crate) &'static str);

/// The error and its causes, through the reporter both binaries share.
fn report_error(err: &anyhow::Error, json: bool) {
    let causes: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    root_args::report_error(&causes, json);
}

/// Reports `err` and exits with `code` (doctor and repair keep 1 for findings).
fn exit_with(code: u8, err: anyhow::Error, json: bool) -> ! {
    report_error(&err, json);
    std::process::exit(i32::from(code))
}

fn init_tracing(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(cli_progress::LogWriter::default)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .try_init();
}

pub(crate) fn http(cli: &Cli, progress: &Progress) -> anyhow::Result<HttpClient> {
    let client = HttpClient::new(envpack_net::http_config(offline(cli))?);
    progress.watch(client.meter());
    Ok(client)
}

/// Registry settings from the same `ENVPACK_HTTP_*` and `--offline` as every other request.
pub(crate) fn registry_options(
    cli: &Cli,
    insecure: bool,
) -> anyhow::Result<envpack_oci::ClientOptions> {
    Ok(envpack_oci::ClientOptions::from_http(
        &envpack_net::http_config(offline(cli))?,
        insecure,
    ))
}

/// Image settings from the flags and `ENVPACK_IMAGE_SOURCE` / `ENVPACK_IMAGE_REVISION`.
fn image_settings(tag: Option<String>, flags: &[String]) -> anyhow::Result<ImageSettings> {
    let mut annotations = std::collections::BTreeMap::new();
    for flag in flags {
        let (k, v) = envpack_oci::parse_annotation(flag)?;
        annotations.insert(k, v);
    }
    if let Some(t) = &tag {
        envpack_oci::validate_tag(t)?;
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(ImageSettings {
        tag,
        source: var("ENVPACK_IMAGE_SOURCE"),
        revision: var("ENVPACK_IMAGE_REVISION"),
        annotations,
        base: None,
    })
}

/// `--offline`, which a bundle implies: it holds every input.
fn offline(cli: &Cli) -> bool {
    cli.offline || envpack::config::bundle_in_use()
}

pub(crate) fn read_lock(path: &Path) -> anyhow::Result<(Lock, String)> {
    Ok(envpack::lock::read(path)?)
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    envpack::config::init_bundle(cli.bundle.as_deref())?;
    let progress = Progress::new(cli.quiet || cli.json);
    let result = dispatch(cli, &progress);
    progress.done();
    result
}

fn dispatch(cli: &Cli, progress: &Progress) -> anyhow::Result<()> {
    match &cli.command {
        Command::Completions { shell } => {
            envpack_unpack::cli_docs::completions(Cli::command(), *shell, &mut std::io::stdout())
                .context("writing the completion script")?;
            Ok(())
        }
        Command::Man { out } => {
            let files = envpack_unpack::cli_docs::man_pages(Cli::command(), out)?;
            if cli.json {
                println!("{}", serde_json::json!({ "man_pages": files }));
            } else if !cli.quiet {
                println!("wrote {} man pages into {}", files.len(), out.display());
            }
            Ok(())
        }
        Command::Init {
            dir,
            name,
            python,
            python_build,
        } => {
            let python = python.as_deref().zip(python_build.as_deref());
            let done = envpack::init::init_for_this_machine(dir, name.as_deref(), python)?;
            if cli.json {
                println!("{}", serde_json::to_string(&done)?);
            } else if !cli.quiet {
                print!(
                    "{}",
                    done.next_steps(std::env::var_os("ENVPACK_INDEX_URL").is_some())
                );
            }
            Ok(())
        }
        Command::Lock {
            spec,
            out,
            index_url,
        } => cli_inputs::lock(cli, progress, spec, out, index_url.as_deref()),
        Command::Bundle {
            inputs:
                LockedInputs {
                    spec,
                    lock,
                    platforms,
                },
            out,
            index_url,
        } => cli_inputs::bundle(
            cli,
            progress,
            (spec, lock),
            platforms,
            out,
            index_url.as_deref(),
        ),
        Command::Build {
            inputs:
                LockedInputs {
                    spec,
                    lock,
                    platforms,
                },
            out,
            format,
            compression,
            tag,
            annotations,
            index_url,
            sign,
        } => {
            let format: OutputFormat = format.parse()?;
            // Read before the build, so a bad key costs nothing.
            let key = match sign {
                Some(k) => Some(envpack::signing::load_signing_key(k)?),
                None => None,
            };
            let compression: Option<Compression> = compression
                .as_deref()
                .map(|c| {
                    c.parse().map_err(|_| {
                        anyhow!(
                            "--compression must be zstd or gzip, not \"{}\"",
                            envpack_layers::shown_name(c)
                        )
                    })
                })
                .transpose()?;
            let image = image_settings(tag.clone(), annotations)?;
            let spec = envpack::spec::load(spec)?;
            let (lock_value, lock_text) = read_lock(lock)?;
            envpack::locking::check_fresh(&spec, &lock_value, lock)?;
            let cache = Cache::open(cli.cache_dir.as_deref())?;
            let http = http(cli, progress)?;
            let built = envpack::build::build(
                &lock_value,
                &lock_text,
                &BuildOptions::new(
                    Some(&spec),
                    index_url.as_deref(),
                    (&cache, &http),
                    &|m| progress.step(m),
                    platforms,
                    out,
                )
                .writing(format, image, compression)
                .signed_with(key.as_ref()),
            )?;
            let signed: Vec<&envpack::signing::SignedArtifact> = built
                .artifacts
                .iter()
                .filter_map(|a| a.signed.as_ref())
                .collect();
            if key.is_none() {
                // A signature left from an earlier build would name another artifact.
                for a in &built.artifacts {
                    for stale in [
                        envpack_trust::signature_path(&a.path),
                        envpack_trust::intoto::provenance_path(&a.path),
                    ] {
                        if stale.exists() {
                            fs_err::remove_file(&stale)?;
                        }
                    }
                }
            }
            if cli.json {
                let mut v =
                    serde_json::json!({"artifacts": built.artifacts, "warnings": built.warnings});
                if let Some(image) = &built.image {
                    v["image"] = serde_json::to_value(image)?;
                }
                println!("{}", serde_json::to_string(&v)?);
            } else if !cli.quiet {
                progress.done();
                if let Some(image) = &built.image {
                    println!(
                        "built image {} (tag {}, {})",
                        image.path.display(),
                        image.tag,
                        image.digest
                    );
                    for p in &image.platforms {
                        println!("  {} {} env-id {}", p.platform, p.manifest_digest, p.env_id);
                    }
                    for s in &image.signatures {
                        println!("  signed {} with key {} (referrers)", s.manifest, s.key_id);
                    }
                }
                for a in &built.artifacts {
                    println!(
                        "built {} ({}, {} bytes)\n  env-id {}",
                        a.path.display(),
                        a.sha256,
                        a.size,
                        a.env_id
                    );
                }
                for s in &signed {
                    println!(
                        "  signed with key {}: {}, {}",
                        s.key_id,
                        s.signature.display(),
                        s.provenance.display()
                    );
                }
            }
            Ok(())
        }
        Command::Unpack {
            artifact,
            root,
            no_keep_artifact,
            rollback,
            insecure,
            trust,
        } => {
            let outcome = if *rollback {
                envpack_unpack::rollback(root)?
            } else {
                let arg = artifact
                    .as_ref()
                    .ok_or(Usage("give an ARTIFACT, image layout, oci-archive or image reference to unpack (or use `envpack rollback`)"))?;
                let source = envpack::pull::UnpackSource::classify(arg)?;
                if !matches!(source, envpack::pull::UnpackSource::Artifact(_)) {
                    progress.step(&format!("fetching {arg}"));
                }
                let client = registry_options(cli, *insecure)?;
                let trust = trust.options();
                // An image may carry several signatures: the one a --trust key verifies is used.
                let keys = envpack_trust::TrustedKeys::load(&trust.trust)?;
                let prepared = envpack::pull::prepare_artifact(
                    &source,
                    cli.cache_dir.as_deref(),
                    &client,
                    &keys,
                )
                .with_context(|| format!("reading {arg}"))?;
                if let Some(r) = &prepared.restored {
                    let found = envpack_trust::signature_path(&prepared.path).exists();
                    if !trust.trust.is_empty() && trust.signature.is_none() && !found {
                        anyhow::bail!("{arg} carries no envpack signature for its manifest {}: --trust needs one (sign the layout with `envpack sign LAYOUT --key KEY`, or build it with --sign, and push it again)", r.manifest_digest);
                    }
                }
                let opts = envpack_unpack::unpack::UnpackOptions {
                    keep_artifact: !no_keep_artifact,
                    trust,
                };
                envpack_unpack::unpack::unpack_with(
                    &prepared.path,
                    root,
                    &|ev| progress.step(&ev.to_string()),
                    &opts,
                )
                .with_context(|| format!("unpacking {arg} into {}", root.display()))?
            };
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"env_id": outcome.env_id, "previous": outcome.previous, "already_current": outcome.already_current})
                );
            } else if !cli.quiet {
                progress.done();
                if outcome.already_current {
                    println!(
                        "{} is already current in {}",
                        outcome.env_id,
                        root.display()
                    );
                } else {
                    println!("{} is now current in {}", outcome.env_id, root.display());
                }
            }
            Ok(())
        }
        Command::Push {
            reference,
            layout,
            archive,
            spec,
            lock,
            platforms,
            index_url,
            insecure,
            mount_from,
            jobs,
        } => {
            let reference = envpack_oci::Reference::parse(reference)?;
            let cache = Cache::open(cli.cache_dir.as_deref())?;
            let scratch = cache.scratch_dir()?;
            let layout_dir = match (layout, archive) {
                (Some(dir), _) => dir.clone(),
                (None, Some(file)) => {
                    let dir = scratch.path().join("layout");
                    envpack_oci::extract_layout_archive(file, &dir)
                        .with_context(|| format!("reading {}", file.display()))?;
                    dir
                }
                (None, None) => {
                    let spec = envpack::spec::load(spec)?;
                    let (lock_value, lock_text) = read_lock(lock)?;
                    envpack::locking::check_fresh(&spec, &lock_value, lock)?;
                    let http = http(cli, progress)?;
                    let out = scratch.path().join("layout");
                    envpack::build::build(
                        &lock_value,
                        &lock_text,
                        &BuildOptions::new(
                            Some(&spec),
                            index_url.as_deref(),
                            (&cache, &http),
                            &|m| progress.step(m),
                            platforms,
                            &out,
                        )
                        .writing(
                            OutputFormat::Oci,
                            image_settings(reference.tag.clone(), &[])?,
                            None,
                        ),
                    )?;
                    out
                }
            };
            progress.step(&format!("pushing to {reference}"));
            let reader = envpack_oci::LayoutReader::open(&layout_dir)
                .with_context(|| format!("reading the image layout {}", layout_dir.display()))?;
            let report = envpack_oci::push_layout(
                &reader,
                &reference,
                &envpack_oci::PushOptions {
                    client: registry_options(cli, *insecure)?,
                    mount_from: mount_from.clone(),
                    jobs: *jobs,
                },
            )
            .with_context(|| format!("pushing to {reference}"))?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else if !cli.quiet {
                progress.done();
                println!(
                    "pushed {} ({}): {} blobs uploaded ({} bytes), {} mounted, {} already there",
                    report.reference,
                    report.digest,
                    report.blobs_uploaded,
                    report.bytes_uploaded,
                    report.blobs_mounted,
                    report.blobs_skipped
                );
            }
            Ok(())
        }
        Command::Sbom {
            lock,
            platform,
            format,
            out,
        } => {
            let format: envpack::sbom::SbomFormat = format.parse()?;
            let (lock_value, _) = read_lock(lock)?;
            let cache = Cache::open(cli.cache_dir.as_deref())?;
            let output = envpack::sbom::command::run_sbom(
                &lock_value,
                platform.as_deref(),
                format,
                out.as_deref(),
                &cache,
            )?;
            match output {
                envpack::sbom::command::SbomOutput::Stdout(bytes) => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
                envpack::sbom::command::SbomOutput::Files(paths) => {
                    if cli.json {
                        println!("{}", serde_json::json!({ "sboms": paths }));
                    } else if !cli.quiet {
                        for p in paths {
                            println!("wrote {}", p.display());
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Audit {
            target,
            root,
            lock,
            spec,
            rebuild,
            against,
            platforms,
            index_url,
            insecure,
            trust,
            vulns,
            fail_on,
            sarif,
        } => {
            if let Some(db) = vulns {
                return cli_trust::audit_vulns(
                    cli,
                    db,
                    lock.as_deref(),
                    target.as_deref(),
                    fail_on,
                    sarif.as_deref(),
                );
            }
            let http = http(cli, progress)?;
            let args = envpack::audit::command::AuditArgs {
                target: target.as_deref(),
                root: root.as_deref(),
                lock: lock.as_deref(),
                spec: spec.as_deref(),
                rebuild: *rebuild,
                against: against.as_deref(),
                platforms,
                index_url: index_url.as_deref(),
                offline: offline(cli),
                insecure: *insecure,
                trust,
            };
            let report =
                envpack::audit::command::run_audit(&args, cli.cache_dir.as_deref(), &http, &|m| {
                    progress.step(m)
                })?;
            progress.done();
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else if !cli.quiet || !report.is_clean() {
                print!("{}", report.to_text());
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(anyhow!(
                    "audit of {}: {} finding(s)",
                    report.subject,
                    report.findings.len()
                ))
            }
        }
        Command::Status(RootArg { root }) => {
            let status = envpack_unpack::status(root)
                .with_context(|| format!("reading {}", root.display()))?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{}", root_args::status_text(&status));
            }
            Ok(())
        }
        Command::Rollback(RootArg { root }) => {
            let outcome = envpack_unpack::rollback(root)
                .with_context(|| format!("rolling back {}", root.display()))?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                println!("{}", root_args::rollback_text(&outcome));
            }
            Ok(())
        }
        Command::Doctor(args) => {
            let root = &args.root;
            let opts = args.options();
            let report = envpack_unpack::doctor(root, &opts)
                .unwrap_or_else(|e| exit_with(2, anyhow::Error::new(e), cli.json));
            if cli.json {
                print!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            std::process::exit(if report.healthy { 0 } else { 1 })
        }
        Command::Repair(args) => {
            let root = &args.root;
            let opts = args.options();
            let report = envpack_unpack::repair(root, &opts)
                .unwrap_or_else(|e| exit_with(2, anyhow::Error::new(e), cli.json));
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            std::process::exit(if report.repaired { 0 } else { 1 })
        }
        Command::Verify {
            artifact,
            root,
            signature,
        } => cli_trust::verify(cli, artifact.as_deref(), root.as_deref(), signature),
        Command::Keygen { out } => cli_trust::keygen(cli, out),
        Command::Sign { artifacts, key } => cli_trust::sign(cli, artifacts, key),
    }
}
