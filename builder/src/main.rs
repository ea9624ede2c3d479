//! The `envpack` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use envpack::build::{BuildOptions, OutputFormat};
use envpack::cache::Cache;
use envpack::http::HttpClient;
use envpack::image::ImageSettings;
use envpack::lock::Lock;
use envpack::locking::LockOptions;
use envpack_layers::compress::Compression;

/// Build reproducible, hermetic developer/CI environments from one lockfile.
#[derive(Parser)]
#[command(name = "envpack", version, about)]
struct Cli {
    /// Cache directory (default: $ENVPACK_CACHE_DIR, else $XDG_CACHE_HOME/envpack).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Never touch the network; everything must be in the cache.
    #[arg(long, global = true)]
    offline: bool,
    /// Print machine-readable JSON results on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Only print errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve the spec into a lock (CPython, packages for every platform, Conan config).
    Lock {
        /// The spec.
        #[arg(long, default_value = "envpack.toml")]
        spec: PathBuf,
        /// Where to write the lock.
        #[arg(long, default_value = "envpack.lock")]
        out: PathBuf,
        /// Package index (overrides ENVPACK_INDEX_URL and the spec).
        #[arg(long)]
        index_url: Option<String>,
    },
    /// Build the lock's platforms: portable artifacts, an OCI image layout or an oci-archive.
    Build {
        /// The spec (checked against the lock's spec hash).
        #[arg(long, default_value = "envpack.toml")]
        spec: PathBuf,
        /// The lock.
        #[arg(long, default_value = "envpack.lock")]
        lock: PathBuf,
        /// Platforms to build (default: all in the lock).
        #[arg(long = "platform", value_name = "PLATFORM")]
        platforms: Vec<String>,
        /// Output: a directory (tarball, oci) or a file (oci-archive).
        #[arg(long, default_value = "dist")]
        out: PathBuf,
        /// What to write: tarball (portable artifacts), oci (image layout dir) or oci-archive.
        #[arg(long, default_value = "tarball")]
        format: String,
        /// Layer compression: zstd or gzip (default: zstd for tarballs, gzip for images).
        #[arg(long)]
        compression: Option<String>,
        /// Image tag in the layout's index.json (default: <python>-conan<conan>).
        #[arg(long)]
        tag: Option<String>,
        /// Image annotation KEY=VALUE (repeatable; wins over the defaults).
        #[arg(long = "annotation", value_name = "KEY=VALUE")]
        annotations: Vec<String>,
        /// Package index (overrides ENVPACK_INDEX_URL and the spec).
        #[arg(long)]
        index_url: Option<String>,
    },
    /// Verify an artifact and restore it into a root (ROOT/envs/<id>, ROOT/current, ROOT/bin).
    Unpack {
        /// The artifact (omit with --rollback).
        artifact: Option<PathBuf>,
        /// The root.
        #[arg(long)]
        root: PathBuf,
        /// Switch `current` back to the previous env instead.
        #[arg(long, conflicts_with = "artifact")]
        rollback: bool,
    },
    /// Re-hash an unpacked root against its manifest, or check every digest of an artifact.
    Verify {
        /// An artifact to check.
        artifact: Option<PathBuf>,
        /// A root to check.
        #[arg(long, conflicts_with = "artifact")]
        root: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.quiet);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .try_init();
}

/// Progress lines: a spinner on a terminal, plain lines otherwise, nothing with --quiet.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Progress { bar, quiet }
    }
    fn step(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None if !self.quiet => eprintln!("envpack: {msg}"),
            None => {}
        }
    }
    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn http(cli: &Cli) -> anyhow::Result<HttpClient> {
    Ok(HttpClient::new(envpack::config::http_config(cli.offline)?))
}

/// Image settings from the flags and `ENVPACK_IMAGE_SOURCE` / `ENVPACK_IMAGE_REVISION`.
fn image_settings(tag: Option<String>, flags: &[String]) -> anyhow::Result<ImageSettings> {
    let mut annotations = std::collections::BTreeMap::new();
    for flag in flags {
        let (k, v) = envpack::image::index::parse_annotation(flag)?;
        annotations.insert(k, v);
    }
    if let Some(t) = &tag {
        envpack::image::index::validate_tag(t)?;
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

fn read_lock(path: &Path) -> anyhow::Result<(Lock, String)> {
    let text = fs_err::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "{} does not exist; run `envpack lock` first",
                path.display()
            )
        } else {
            e.into()
        }
    })?;
    let lock = Lock::parse(&text, &path.display().to_string())?;
    Ok((lock, text))
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let progress = Progress::new(cli.quiet || cli.json);
    let result = dispatch(cli, &progress);
    progress.done();
    result
}

fn dispatch(cli: &Cli, progress: &Progress) -> anyhow::Result<()> {
    match &cli.command {
        Command::Lock {
            spec,
            out,
            index_url,
        } => {
            let spec = envpack::spec::load(spec)?;
            let cache = Cache::open(cli.cache_dir.as_deref())?;
            let http = http(cli)?;
            let previous = out
                .exists()
                .then(|| read_lock(out))
                .transpose()
                .ok()
                .flatten();
            let lock = envpack::locking::lock(
                &spec,
                &LockOptions {
                    index_flag: index_url.as_deref(),
                    cache: &cache,
                    http: &http,
                    previous: previous.as_ref().map(|(l, _)| l),
                    progress: &|m| progress.step(m),
                },
            )?;
            envpack::locking::write_lock(&lock, out)?;
            let summary: Vec<serde_json::Value> = lock
                .platforms
                .iter()
                .map(|p| serde_json::json!({"platform": p.name, "packages": p.packages.len(), "python": p.python.filename}))
                .collect();
            if cli.json {
                println!("{}", serde_json::json!({"lock": out, "platforms": summary}));
            } else if !cli.quiet {
                progress.done();
                for p in &lock.platforms {
                    eprintln!(
                        "locked {}: CPython {} + {} packages",
                        p.name,
                        lock.python.version,
                        p.packages.len()
                    );
                }
                eprintln!("wrote {}", out.display());
            }
            Ok(())
        }
        Command::Build {
            spec,
            lock,
            platforms,
            out,
            format,
            compression,
            tag,
            annotations,
            index_url,
        } => {
            let format: OutputFormat = format.parse()?;
            let compression: Compression = match compression {
                None => format.default_compression(),
                Some(c) => c
                    .parse()
                    .map_err(|_| anyhow!("--compression must be zstd or gzip, not {c:?}"))?,
            };
            let image = image_settings(tag.clone(), annotations)?;
            let spec = envpack::spec::load(spec)?;
            let (lock_value, lock_text) = read_lock(lock)?;
            envpack::locking::check_fresh(&spec, &lock_value, lock)?;
            let cache = Cache::open(cli.cache_dir.as_deref())?;
            let http = http(cli)?;
            let built = envpack::build::build(
                &lock_value,
                &lock_text,
                &BuildOptions {
                    platforms,
                    out_dir: out,
                    format,
                    image,
                    compression,
                    index_flag: index_url.as_deref(),
                    spec_index: spec.spec.packages.index.as_deref(),
                    spec_mirror: spec.spec.python.mirror.as_deref(),
                    cache: &cache,
                    http: &http,
                    progress: &|m| progress.step(m),
                },
            )?;
            if cli.json {
                let mut v = serde_json::json!({"artifacts": built.artifacts});
                if let Some(image) = &built.image {
                    v["image"] = serde_json::to_value(image)?;
                }
                println!("{}", serde_json::to_string(&v)?);
            } else if !cli.quiet {
                progress.done();
                if let Some(image) = &built.image {
                    eprintln!(
                        "built image {} (tag {}, {})",
                        image.path.display(),
                        image.tag,
                        image.digest
                    );
                    for p in &image.platforms {
                        eprintln!("  {} {} env-id {}", p.platform, p.manifest_digest, p.env_id);
                    }
                }
                for a in &built.artifacts {
                    eprintln!(
                        "built {} ({}, {} bytes)\n  env-id {}",
                        a.path.display(),
                        a.sha256,
                        a.size,
                        a.env_id
                    );
                }
            }
            Ok(())
        }
        Command::Unpack {
            artifact,
            root,
            rollback,
        } => {
            let outcome = if *rollback {
                envpack_unpack::rollback(root)?
            } else {
                let artifact = artifact
                    .as_ref()
                    .ok_or_else(|| anyhow!("give an ARTIFACT to unpack, or --rollback"))?;
                envpack_unpack::unpack(artifact, root, &|ev| progress.step(&format!("{ev:?}")))
                    .with_context(|| {
                        format!("unpacking {} into {}", artifact.display(), root.display())
                    })?
            };
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"env_id": outcome.env_id, "previous": outcome.previous, "already_current": outcome.already_current})
                );
            } else if !cli.quiet {
                progress.done();
                if outcome.already_current {
                    eprintln!(
                        "{} is already current in {}",
                        outcome.env_id,
                        root.display()
                    );
                } else {
                    eprintln!("{} is now current in {}", outcome.env_id, root.display());
                }
            }
            Ok(())
        }
        Command::Verify { artifact, root } => {
            let report = match (artifact, root) {
                (Some(a), None) => envpack_unpack::verify_artifact(a)?,
                (None, Some(r)) => envpack_unpack::verify_root(r)?,
                _ => return Err(anyhow!("give an ARTIFACT or --root DIR to verify")),
            };
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"env_id": report.env_id, "files_checked": report.files_checked, "differences": report.differences})
                );
            } else {
                for d in &report.differences {
                    println!("{d}");
                }
            }
            if report.differences.is_empty() {
                if !cli.quiet && !cli.json {
                    eprintln!(
                        "ok: {} ({} entries checked)",
                        report.env_id, report.files_checked
                    );
                }
                Ok(())
            } else {
                Err(anyhow!(
                    "{} differences found in {}",
                    report.differences.len(),
                    report.env_id
                ))
            }
        }
    }
}
