//! The trust commands of the `envpack` command line: `keygen`, `sign`, `build --sign`,
//! `verify` (whose `--trust` checks a signature besides every digest) and `audit --vulns`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use envpack::image::referrer::SignedImage;
use envpack::signing::{self, SignedArtifact};
use envpack_unpack::root_args::SignatureArgs;

use crate::cli_args::Cli;

/// `envpack keygen --out KEY`.
pub fn keygen(cli: &Cli, out: &Path) -> anyhow::Result<()> {
    let files = signing::keygen(out)?;
    if cli.json {
        println!("{}", serde_json::to_string(&files)?);
    } else if !cli.quiet {
        println!(
            "wrote {} (secret: keep it out of reach) and {} (key {})\n  sign:   envpack sign ARTIFACT --key {}\n  verify: envpack-unpack unpack ARTIFACT --root ROOT --trust {}",
            files.secret.display(),
            files.public.display(),
            files.key_id,
            files.secret.display(),
            files.public.display()
        );
    }
    Ok(())
}

/// Signs each artifact, image layout and image reference with the key file `key`; every
/// signature is made before any is written or pushed, so a typo, or a layout or image that is
/// not an envpack image, signs nothing.
pub fn sign(cli: &Cli, paths: &[PathBuf], key: &Path) -> anyhow::Result<()> {
    use envpack::pull::UnpackSource;
    let key = signing::load_signing_key(key)?;
    let mut artifacts = Vec::new();
    let mut layouts: Vec<(PathBuf, Option<String>)> = Vec::new();
    let mut references = Vec::new();
    for p in paths {
        let source = match p.to_str() {
            Some(arg) => UnpackSource::classify(arg)?,
            None => UnpackSource::Artifact(p.clone()),
        };
        match source {
            UnpackSource::Artifact(a) => {
                envpack_layers::artifact::ArtifactReader::open(&a).map_err(|e| {
                    anyhow!(
                        "{}: {e} (envpack artifacts, OCI image layouts and image references are signed here)",
                        a.display()
                    )
                })?;
                artifacts.push(a);
            }
            UnpackSource::Layout(dir, tag) => layouts.push((dir, tag)),
            UnpackSource::Archive(file) => {
                return Err(anyhow!(
                    "{}: an oci-archive is signed as it is built (build --format oci-archive --sign KEY); or sign its layout (build --format oci)",
                    file.display()
                ))
            }
            UnpackSource::Registry(r) if r.tag.is_none() => {
                return Err(anyhow!(
                    "{r}: sign an image by tag (HOST/REPO:TAG), so the signed image can be pushed back under it"
                ))
            }
            UnpackSource::Registry(r) => references.push(r),
        }
    }
    // Every signature is made before any is written.
    let prepared = artifacts
        .iter()
        .map(|a| signing::sign_artifact(a, &key))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cache = envpack_net::Cache::open(cli.cache_dir.as_deref())?;
    let scratch = cache.scratch_dir()?;
    let mut images_prepared = Vec::new();
    for (i, (dir, tag)) in layouts.iter().enumerate() {
        let work = scratch.path().join(format!("layout-{i}"));
        images_prepared.push((
            None,
            envpack::image_signing::prepare_layout(dir, tag.as_deref(), &key, &work)?,
        ));
    }
    let options = crate::registry_options(cli, false)?;
    for (i, r) in references.iter().enumerate() {
        // The image (and its referrers) copied into a layout, digest-checked, signed there and
        // pushed back: only the new referrers are uploaded.
        let layout = scratch.path().join(format!("image-{i}"));
        envpack::audit::registry::mirror_to_layout(r, &options, &layout)
            .map_err(|e| anyhow!("fetching {r}: {e:#}"))?;
        let work = scratch.path().join(format!("image-{i}-work"));
        images_prepared.push((
            Some((r, layout.clone())),
            envpack::image_signing::prepare_layout(&layout, None, &key, &work)?,
        ));
    }
    let signed = prepared
        .into_iter()
        .map(signing::Prepared::write)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut images = Vec::new();
    for (push, layout) in images_prepared {
        images.extend(layout.write()?);
        if let Some((reference, dir)) = push {
            let reader = envpack_oci::LayoutReader::open(&dir)?;
            // The push re-puts the tag: refuse if it moved to another image since it was
            // fetched, rather than move it back.
            let (top, _) = reader.tagged(None)?;
            let scope = format!("repository:{}:pull", reference.repository);
            let client =
                envpack_oci::RegistryClient::connect(&reference.registry, &options, vec![scope])?;
            let tag = reference.tag.as_deref().unwrap_or_default();
            let now = client.manifest_digest(&reference.repository, tag)?;
            if now.as_deref() != Some(top.digest.as_str()) {
                return Err(anyhow!(
                    "{reference} names {} now, not the image that was signed ({}): nothing pushed for it; sign it again",
                    now.as_deref().unwrap_or("nothing"),
                    top.digest
                ));
            }
            let push = envpack_oci::PushOptions {
                client: options.clone(),
                mount_from: None,
                jobs: 4,
            };
            envpack_oci::push_layout(&reader, reference, &push)
                .map_err(|e| anyhow!("pushing the signatures to {reference}: {e}"))?;
        }
    }
    report_signed(cli, &signed, &images)
}

/// Prints the signatures written.
pub fn report_signed(
    cli: &Cli,
    signed: &[SignedArtifact],
    images: &[SignedImage],
) -> anyhow::Result<()> {
    if cli.json {
        let mut v = serde_json::json!({ "signed": signed });
        if !images.is_empty() {
            v["images"] = serde_json::to_value(images)?;
        }
        println!("{}", serde_json::to_string(&v)?);
    } else if !cli.quiet {
        for s in signed {
            println!(
                "signed {} with key {}: {}, {}",
                s.artifact.display(),
                s.key_id,
                s.signature.display(),
                s.provenance.display()
            );
        }
        for s in images {
            println!(
                "signed {} {} (env {}) with key {}: signature and provenance referrers",
                s.platform, s.manifest, s.env_id, s.key_id
            );
        }
    }
    Ok(())
}

/// `envpack verify [ARTIFACT | --root DIR] [--trust KEY.pub] [--signature FILE]`.
pub fn verify(
    cli: &Cli,
    artifact: Option<&Path>,
    root: Option<&Path>,
    signature: &SignatureArgs,
) -> anyhow::Result<()> {
    let env_root = std::env::var_os("ENVPACK_ROOT").map(PathBuf::from);
    let trust = signature.verify_options().map_err(crate::Usage)?;
    let mut report = match (artifact, root.or(env_root.as_deref())) {
        (Some(a), _) => envpack_unpack::verify_artifact(a)?,
        (None, _) if trust.is_some() => {
            return Err(crate::Usage("--trust and --signature check an ARTIFACT; give one").into())
        }
        (None, Some(r)) => envpack_unpack::verify_root(r)?,
        (None, None) => return Err(crate::Usage("give an ARTIFACT or --root DIR to verify").into()),
    };
    if let (Some(a), Some(opts)) = (artifact, &trust) {
        let v = envpack_unpack::signature_check::verify_signature(a, opts).map_err(|e| {
            anyhow!(
                "checking the signature and provenance of {}: {e}",
                a.display()
            )
        })?;
        report.signature = Some(v);
    }
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for d in &report.differences {
            println!("{d}");
        }
    }
    if !report.differences.is_empty() {
        return Err(anyhow!(
            "{} differences found in {}",
            report.differences.len(),
            report.env_id
        ));
    }
    if !cli.quiet && !cli.json {
        println!(
            "ok: {} ({} entries checked)",
            report.env_id, report.files_checked
        );
        if let Some(s) = &report.signature {
            println!("{s}");
        }
    }
    Ok(())
}

/// `envpack audit --vulns DB [--lock L | TARGET] [--fail-on S] [--sarif FILE]`.
pub fn audit_vulns(
    cli: &Cli,
    db: &Path,
    lock: Option<&Path>,
    target: Option<&Path>,
    fail_on: &str,
    sarif: Option<&Path>,
) -> anyhow::Result<()> {
    let gate: envpack::vulns::Gate = fail_on
        .to_ascii_lowercase()
        .parse()
        .map_err(|e: String| anyhow!(e))?;
    let lock_file = lock.or(target).unwrap_or(Path::new("envpack.lock"));
    let (lock, shown) = match (lock, target) {
        (None, Some(t)) => {
            let reader = envpack_layers::artifact::ArtifactReader::open(t).map_err(|e| {
                anyhow!("{e} (with --vulns, TARGET is an artifact; or give --lock)")
            })?;
            let text = String::from_utf8_lossy(reader.lock_bytes()).into_owned();
            let shown = format!("{}!envpack.lock", t.display());
            (envpack::lock::Lock::parse(&text, &shown)?, shown)
        }
        _ => (
            envpack::lock::read(lock_file)?.0,
            lock_file.display().to_string(),
        ),
    };
    let database = envpack::vulns::Database::open(db)?;
    let report = envpack::vulns::check_lock(&lock, &database, gate);
    if let Some(path) = sarif {
        // SARIF wants a URI: the lock file's (an artifact's, for the lock inside one).
        let uri = fs_err::canonicalize(lock_file)
            .ok()
            .and_then(|p| url::Url::from_file_path(p).ok())
            .map_or_else(|| shown.clone(), String::from);
        let doc = envpack::vulns::to_sarif(&report, &uri);
        envpack::atomic::write_file(path, format!("{doc:#}\n").as_bytes())?;
    }
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if !cli.quiet || report.failed {
        print!("{}", report.to_text());
    }
    if report.failed {
        // The report is the result (also under --json, where a second, error object would
        // break a reader of stdout); the exit code is the gate.
        let unevaluated = match report.unevaluated.len() {
            0 => String::new(),
            n => format!(
                " and {}",
                plural(n, "record not evaluated", "records not evaluated")
            ),
        };
        eprintln!(
            "error: {}{unevaluated} in {shown} fail the gate --fail-on {fail_on}",
            plural(report.findings.len(), "vulnerability", "vulnerabilities")
        );
        std::process::exit(1);
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
