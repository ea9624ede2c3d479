//! The commands that pin and gather a lock's inputs: `lock`, and `bundle`, which writes them
//! all out for a build with no network (`envpack --bundle DIR build`).

use std::path::{Path, PathBuf};

use envpack::build::BuildOptions;
use envpack::locking::LockOptions;
use envpack_net::Cache;

use crate::cli_args::Cli;
use crate::cli_progress::Progress;
use crate::{http, read_lock, registry_options};

/// `envpack lock`.
pub fn lock(
    cli: &Cli,
    progress: &Progress,
    spec: &Path,
    out: &Path,
    index_url: Option<&str>,
) -> anyhow::Result<()> {
    let spec = envpack::spec::load(spec)?;
    let cache = Cache::open(cli.cache_dir.as_deref())?;
    let http = http(cli, progress)?;
    let previous = out
        .exists()
        .then(|| read_lock(out))
        .transpose()
        .ok()
        .flatten();
    let envpack::locking::LockOutcome { lock, warnings } = envpack::locking::lock(
        &spec,
        &LockOptions {
            index_flag: index_url,
            cache: &cache,
            http: &http,
            previous: previous.as_ref().map(|(l, _)| l),
            progress: &|m| progress.step(m),
        },
    )?;
    let bases = envpack::pull_base::resolve_bases(
        &spec.spec,
        &lock,
        previous.as_ref().map(|(l, _)| l),
        &cache,
        &registry_options(cli, false)?,
    )?;
    envpack::locking::write_lock_with_bases(&lock, &bases, out)?;
    let summary: Vec<serde_json::Value> = lock
            .platforms
            .iter()
            .map(|p| serde_json::json!({"platform": p.name, "packages": p.packages.len(), "python": p.python.filename}))
            .collect();
    // Warnings go to stderr even with --json (which also carries them) or --quiet.
    if !warnings.is_empty() {
        progress.done();
    }
    for w in &warnings {
        eprintln!("warning: {}", w.message);
    }
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"lock": out, "platforms": summary, "warnings": warnings})
        );
    } else if !cli.quiet {
        progress.done();
        for p in &lock.platforms {
            println!(
                "locked {}: CPython {} + {} packages",
                p.name,
                lock.python.version,
                p.packages.len()
            );
        }
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// `envpack bundle`.
pub fn bundle(
    cli: &Cli,
    progress: &Progress,
    (spec, lock): (&Path, &Path),
    platforms: &[String],
    out: &Path,
    index_url: Option<&str>,
) -> anyhow::Result<()> {
    let spec = envpack::spec::load(spec)?;
    let (lock_value, lock_text) = read_lock(lock)?;
    envpack::locking::check_fresh(&spec, &lock_value, lock)?;
    let cache = Cache::open(cli.cache_dir.as_deref())?;
    let http = http(cli, progress)?;
    let step = |m: &str| progress.step(m);
    let opts = BuildOptions::new(
        Some(&spec),
        index_url,
        (&cache, &http),
        &step,
        platforms,
        out,
    );
    let report = envpack::bundle::bundle(
        &envpack::bundle::BundleRequest {
            lock: &lock_value,
            lock_text: &lock_text,
            spec: &spec,
            out,
        },
        &opts,
    )?;
    progress.done();
    let path: &PathBuf = &report.path;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"bundle": path, "files": report.files, "bytes": report.bytes})
        );
    } else if !cli.quiet {
        let mib = report.bytes as f64 / f64::from(1 << 20);
        println!(
            "wrote the bundle {}: {} files, {mib:.1} MiB",
            path.display(),
            report.files
        );
        let dir = match report.path.extension().is_some_and(|e| e == "tar") {
            true => {
                let stem = report.path.with_extension("");
                let name = stem.file_name().map(PathBuf::from).unwrap_or_default();
                println!(
                    "  carry it, then: tar -xf {} (gives {}/)",
                    path.display(),
                    name.display()
                );
                name
            }
            false => report.path.clone(),
        };
        let d = dir.display();
        println!("  check it: (cd {d} && sha256sum -c SHA256SUMS)");
        println!("  rebuild with no network: envpack --bundle {d} build --spec {d}/spec/envpack.toml --lock {d}/spec/envpack.lock");
    }
    Ok(())
}
