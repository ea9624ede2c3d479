//! What `envpack audit` does with its flags: pick the audit (pins, target, rebuild) and run it.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::report::AuditReport;
use crate::build::BuildOptions;
use crate::lock::Lock;
use envpack_net::Cache;
use envpack_net::HttpClient;
use envpack_pypkg::SimpleIndex;

/// The flags of `envpack audit`.
pub struct AuditArgs<'a> {
    /// ARTIFACT, layout dir or root given positionally.
    pub target: Option<&'a Path>,
    /// `--root DIR`.
    pub root: Option<&'a Path>,
    /// `--lock L` (default `envpack.lock` where a lock is needed).
    pub lock: Option<&'a Path>,
    /// `--spec S` (default `envpack.toml` when it exists).
    pub spec: Option<&'a Path>,
    /// `--rebuild`.
    pub rebuild: bool,
    /// `--against DIR` (default `dist`).
    pub against: Option<&'a Path>,
    /// `--platform` for `--rebuild`.
    pub platforms: &'a [String],
    /// `--index-url`.
    pub index_url: Option<&'a str>,
    /// `--offline`.
    pub offline: bool,
    /// `--insecure`: plain HTTP for a non-loopback registry.
    pub insecure: bool,
    /// `--trust KEY.pub`: check signatures and provenance with these keys.
    pub trust: &'a [PathBuf],
}

fn read_lock(path: &Path) -> anyhow::Result<(Lock, String)> {
    Ok(crate::lock::read(path)?)
}

/// Runs the audit the flags ask for.
pub fn run_audit(
    args: &AuditArgs,
    cache_dir: Option<&Path>,
    http: &HttpClient,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<AuditReport> {
    let target = match (args.target, args.root) {
        (Some(_), Some(_)) => return Err(anyhow!("give a TARGET or --root DIR, not both")),
        (t, r) => t.or(r),
    };
    if let Some(target) = target {
        if args.rebuild {
            return Err(anyhow!(
                "--rebuild compares with --against DIR, not with a TARGET"
            ));
        }
        let held = args.lock.map(read_lock).transpose()?;
        let external = held.as_ref().map(|(l, _)| l.clone());
        progress(&format!("auditing {}", target.display()));
        if !args.trust.is_empty() {
            if !target.is_file() {
                return Err(anyhow!(
                    "--trust checks a signed artifact file (or, with --rebuild, the artifacts in --against); {} is not one",
                    target.display()
                ));
            }
            let mut report = super::audit_target(target, external.as_ref());
            let lock =
                held.as_ref()
                    .zip(args.lock)
                    .map(|((lock, text), path)| super::signed::HeldLock {
                        lock,
                        text,
                        origin: path.display().to_string(),
                    });
            report.merge(super::signed::audit_signed(
                target,
                args.trust,
                lock.as_ref(),
                None,
            ));
            return Ok(report);
        }
        if !target.exists() {
            if let Some(reference) = target
                .to_str()
                .and_then(|t| envpack_oci::Reference::parse(t).ok())
            {
                let options = envpack_oci::ClientOptions::from_http(
                    &envpack_net::http_config(args.offline)?,
                    args.insecure,
                );
                let work = Cache::open(cache_dir)?.scratch_dir()?;
                return super::registry::audit_reference(
                    &reference,
                    &options,
                    work.path(),
                    external.as_ref(),
                );
            }
            return Err(anyhow!(
                "{} is neither an existing artifact, layout or root nor an image reference",
                target.display()
            ));
        }
        return Ok(super::audit_target(target, external.as_ref()));
    }
    let lock_path: PathBuf = args
        .lock
        .map_or_else(|| PathBuf::from("envpack.lock"), Path::to_path_buf);
    let (lock, lock_text) = read_lock(&lock_path)?;
    let spec_path = args.spec.map(Path::to_path_buf).or_else(|| {
        let default = lock_path.with_file_name("envpack.toml");
        default.is_file().then_some(default)
    });
    let spec = spec_path.as_deref().map(crate::spec::load).transpose()?;
    let cache = Cache::open(cache_dir)?;
    if args.rebuild {
        let against = args
            .against
            .map_or_else(|| PathBuf::from("dist"), Path::to_path_buf);
        let opts = BuildOptions::new(
            spec.as_ref(),
            args.index_url,
            (&cache, http),
            progress,
            args.platforms,
            &against,
        );
        progress("rebuilding every platform of the lock");
        let held = super::signed::HeldLock {
            lock: &lock,
            text: &lock_text,
            origin: lock_path.display().to_string(),
        };
        return super::rebuild::audit_rebuild(&held, &opts, &against, args.trust);
    }
    if !args.trust.is_empty() {
        return Err(anyhow!(
            "--trust checks a signed ARTIFACT, or with --rebuild the artifacts in --against; give one"
        ));
    }
    let mut report = AuditReport::new(lock_path.display().to_string());
    match &spec {
        Some(s) => report.merge(super::pins::audit_spec(s, &lock, &lock_path)),
        None => report
            .note("no spec given and no envpack.toml next to the lock: spec ↔ lock not checked"),
    }
    progress("re-hashing cached files");
    report.merge(super::pins::audit_cache(&lock, &cache));
    if args.offline {
        report.note("--offline: not checked that the package files are still on the index, nor the Conan remotes");
    } else {
        let spec_index = spec.as_ref().and_then(|s| s.spec.packages.index.as_deref());
        let url = crate::config::index_url(args.index_url, spec_index)?;
        progress(&format!("checking the package files on {url}"));
        let index = SimpleIndex::new(url, http.clone());
        report.merge(super::pins::audit_index(&lock, &index));
        if lock.conan_recipes.iter().any(|r| r.remote.is_some()) {
            progress("asking the Conan remotes about the pinned recipes");
            report.merge(super::conan::audit_remote_recipes(&lock, http));
        }
    }
    Ok(report)
}
