//! `envpack build`: fetch everything a lock pins (cache first), assemble each platform's tree
//! and write it out: portable artifacts, an OCI image layout or an oci-archive.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use envpack_layers::compress::Compression;

use crate::artifact_writer::{package, BuiltArtifact};
use crate::assemble::{EnvInputs, LayerForm};
use crate::env_layers::{env_layers, EnvMeta};
use crate::image::{env_prefix, place_layout, BuiltImage, ImageSettings, ImageWriter};
use crate::lock::{Lock, LockedPackage, LockedPlatform};
use crate::spec::LoadedSpec;
use envpack_net::Cache;
use envpack_net::HttpClient;
use envpack_oci::write_layout_archive;
use envpack_pypkg::InstallWarning;
use envpack_pypkg::LazyHost;
use envpack_pypkg::WheelInput;
use envpack_pypkg::{host_platform, Platform};
use inputs::Inputs;
pub(crate) use inputs::{build_pins, fetch_all, package_need, Need, Origins};

mod inputs;

/// What `envpack build` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One portable artifact per platform in the output directory.
    Tarball,
    /// An OCI image layout directory.
    Oci,
    /// An OCI image layout as one tar file.
    OciArchive,
}

impl std::str::FromStr for OutputFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "tarball" => Ok(OutputFormat::Tarball),
            "oci" => Ok(OutputFormat::Oci),
            "oci-archive" => Ok(OutputFormat::OciArchive),
            _ => bail!(
                "--format must be tarball, oci or oci-archive, not \"{}\"",
                envpack_layers::shown_name(s)
            ),
        }
    }
}

impl OutputFormat {
    /// The layer compression used when none is asked for: zstd for tarballs, gzip for images
    /// (the widest runtime support).
    pub fn default_compression(self) -> Compression {
        match self {
            OutputFormat::Tarball => Compression::Zstd,
            OutputFormat::Oci | OutputFormat::OciArchive => Compression::Gzip,
        }
    }
}

/// Inputs of a build besides the lock.
pub struct BuildOptions<'a> {
    /// Platforms to build (empty: all in the lock; for images, all linux ones).
    pub platforms: &'a [String],
    /// Output directory (tarball, oci) or file (oci-archive).
    pub out_dir: &'a Path,
    /// What to write.
    pub format: OutputFormat,
    /// Image choices (used by the OCI formats).
    pub image: ImageSettings,
    /// Layer compression.
    pub compression: Compression,
    /// Index URL from `--index-url`.
    pub index_flag: Option<&'a str>,
    /// Index URL from the spec.
    pub spec_index: Option<&'a str>,
    /// CPython mirror from the spec.
    pub spec_mirror: Option<&'a str>,
    /// Cache.
    pub cache: &'a Cache,
    /// HTTP client.
    pub http: &'a HttpClient,
    /// Progress: one line per step (called from the threads that gather inputs).
    pub progress: &'a (dyn Fn(&str) + Sync),
    /// Sign each tarball artifact as it is written (with its provenance), or each platform
    /// manifest of an image (as referrers).
    pub sign: Option<&'a envpack_trust::SigningKey>,
}

impl<'a> BuildOptions<'a> {
    /// Tarballs of `platforms` into `out_dir`, from the spec's index and CPython mirror
    /// (`index_flag` wins over the spec's index).
    pub fn new(
        spec: Option<&'a LoadedSpec>,
        index_flag: Option<&'a str>,
        fetch: (&'a Cache, &'a HttpClient),
        progress: &'a (dyn Fn(&str) + Sync),
        platforms: &'a [String],
        out_dir: &'a Path,
    ) -> Self {
        BuildOptions {
            platforms,
            out_dir,
            format: OutputFormat::Tarball,
            image: ImageSettings::default(),
            compression: OutputFormat::Tarball.default_compression(),
            index_flag,
            spec_index: spec.and_then(|s| s.spec.packages.index.as_deref()),
            spec_mirror: spec.and_then(|s| s.spec.python.mirror.as_deref()),
            cache: fetch.0,
            http: fetch.1,
            progress,
            sign: None,
        }
    }

    /// The same build signing every tarball artifact with `key` as it is written.
    pub fn signed_with(self, key: Option<&'a envpack_trust::SigningKey>) -> Self {
        BuildOptions { sign: key, ..self }
    }

    /// The same build writing `format` (with `image`'s choices; `compression` or the
    /// format's default).
    pub fn writing(
        self,
        format: OutputFormat,
        image: ImageSettings,
        compression: Option<Compression>,
    ) -> Self {
        BuildOptions {
            format,
            image,
            compression: compression.unwrap_or_else(|| format.default_compression()),
            ..self
        }
    }

    /// The same build from another cache into another directory.
    pub fn redirected(&self, cache: &'a Cache, out_dir: &'a Path) -> Self {
        BuildOptions {
            out_dir,
            cache,
            image: self.image.clone(),
            ..*self
        }
    }
}

/// What a build wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutput {
    /// Portable artifacts (tarball format).
    pub artifacts: Vec<BuiltArtifact>,
    /// The image (OCI formats).
    pub image: Option<BuiltImage>,
    /// Wheel defects that did not stop the build (also logged as warnings).
    pub warnings: Vec<BuildWarning>,
}

/// A wheel defect one platform's install warned about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildWarning {
    /// The platform whose env holds the wheel.
    pub platform: String,
    /// What is wrong.
    #[serde(flatten)]
    pub warning: InstallWarning,
}

/// Where each platform's tree goes once assembled.
enum Sink {
    Tarball(Vec<BuiltArtifact>),
    Image {
        writer: Box<ImageWriter>,
        work: tempfile::TempDir,
    },
}

/// Build the chosen platforms of a (fresh) lock into the chosen output format.
pub fn build(lock: &Lock, lock_text: &str, opts: &BuildOptions) -> anyhow::Result<BuildOutput> {
    let chosen = choose_platforms(lock, opts)?;
    let epoch = crate::config::epoch(lock.epoch);
    // Inputs first: a configuration or download failure leaves no output directory behind.
    let prepared = Prepared::new(lock, &chosen, opts)?;
    let (mut sink, work_dir) = match opts.format {
        OutputFormat::Tarball => {
            crate::artifact_writer::prepare_out_dir(opts.out_dir)?;
            (Sink::Tarball(Vec::new()), opts.out_dir.to_path_buf())
        }
        OutputFormat::Oci | OutputFormat::OciArchive => {
            let parent = match opts.out_dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            fs_err::create_dir_all(&parent)?;
            let work = tempfile::Builder::new()
                .prefix(".envpack-oci-")
                .tempdir_in(&parent)
                .with_context(|| format!("creating a work dir in {}", parent.display()))?;
            let writer = Box::new(ImageWriter::new(
                &work.path().join("layout"),
                &work.path().join("layers"),
                opts.compression,
                opts.image.clone(),
            )?);
            let dir = work.path().to_path_buf();
            (Sink::Image { writer, work }, dir)
        }
    };
    // Base images are pinned in the lock; only images use them.
    let bases = match opts.format {
        OutputFormat::Tarball => Vec::new(),
        _ => lock.image_bases.clone(),
    };

    let mut warnings = Vec::new();
    let mut found = |platform: &str, found: &[InstallWarning]| {
        warnings.extend(found.iter().map(|w| BuildWarning {
            platform: platform.to_string(),
            warning: w.clone(),
        }))
    };
    for p in &chosen {
        let locked = lock
            .platform(&p.name)
            .ok_or_else(|| anyhow!("platform {} is not in the lock", p.name))?;
        let (archive, wheels) = prepared.platform_inputs(lock, locked, opts)?;
        let inputs = EnvInputs {
            lock,
            lock_text,
            platform: p,
            locked,
            python_archive: &archive,
            wheels: &wheels,
            host: &prepared.host,
            host_sha256: prepared.host_sha256,
            epoch,
            cache: opts.cache,
            conan_sources: &prepared.conan_sources,
        };
        let meta = EnvMeta {
            name: &lock.name,
            platform: &p.name,
            python_version: &lock.python.version,
            python_build: &lock.python.build,
            epoch,
            lock_bytes: lock_text.as_bytes(),
            target: match (&locked.glibc, &locked.macos) {
                (Some(v), _) => Some(("glibc", v.as_str())),
                (None, Some(v)) => Some(("macos", v.as_str())),
                (None, None) => None,
            },
        };
        (opts.progress)(&format!("assembling {}", p.name));
        let staging = tempfile::Builder::new()
            .prefix(".envpack-staging-")
            .tempdir_in(&work_dir)
            .with_context(|| format!("creating a staging dir in {}", work_dir.display()))?;
        let layer_work = tempfile::Builder::new()
            .prefix(".envpack-work-")
            .tempdir_in(&work_dir)
            .with_context(|| format!("creating a work dir in {}", work_dir.display()))?;
        match &mut sink {
            Sink::Tarball(out) => {
                let form = LayerForm {
                    prefix: "",
                    compression: opts.compression,
                };
                let env = env_layers(&inputs, &meta, &form, staging.path(), layer_work.path())?;
                found(&p.name, &env.warnings);
                (opts.progress)(&format!("writing the artifact for {}", p.name));
                let artifact = package(&env, &meta, opts.out_dir, opts.sign)?;
                crate::sbom::write_beside(&artifact.path, staging.path())?;
                out.push(artifact);
            }
            Sink::Image { writer, .. } => {
                let base = match bases.iter().find(|b| b.platform == p.name) {
                    Some(b) => {
                        (opts.progress)(&format!("pulling base image {}@{}", b.name, b.digest));
                        Some(crate::pull_base::pull_base(
                            b,
                            opts.cache,
                            &envpack_oci::ClientOptions::from_http(opts.http.config(), false),
                            &crate::pull_base::oci_of(p),
                        )?)
                    }
                    None => None,
                };
                writer.set_base(base);
                let prefix = env_prefix(&lock.name, &p.name);
                let form = writer.layer_form(&prefix);
                let env = env_layers(&inputs, &meta, &form, staging.path(), layer_work.path())?;
                found(&p.name, &env.warnings);
                (opts.progress)(&format!("writing the image of {}", p.name));
                writer.add_platform(staging.path(), &env, &meta, p)?;
            }
        }
    }

    match sink {
        Sink::Tarball(artifacts) => Ok(BuildOutput {
            artifacts,
            image: None,
            warnings,
        }),
        Sink::Image { writer, work } => {
            let mut image = writer.finish()?;
            if let Some(key) = opts.sign {
                (opts.progress)("signing the image");
                image.signatures = crate::image_signing::sign_layout(
                    &image.path,
                    Some(&image.tag),
                    key,
                    work.path(),
                )?;
            }
            if opts.format == OutputFormat::OciArchive {
                (opts.progress)("writing the oci-archive");
                let (sha, _) = write_layout_archive(&image.path, opts.out_dir, epoch)
                    .with_context(|| format!("writing {}", opts.out_dir.display()))?;
                image.archive_sha256 = Some(sha.to_string());
            } else {
                place_layout(&image.path, opts.out_dir)?;
            }
            image.path = opts.out_dir.to_path_buf();
            drop(work);
            Ok(BuildOutput {
                artifacts: Vec::new(),
                image: Some(image),
                warnings,
            })
        }
    }
}

/// The platforms to build: the ones asked for (each must be in the lock), else all of the
/// lock's; images hold linux platforms only.
fn choose_platforms(lock: &Lock, opts: &BuildOptions) -> anyhow::Result<Vec<Platform>> {
    let image = opts.format != OutputFormat::Tarball;
    if opts.platforms.is_empty() {
        let all: Vec<Platform> = lock
            .platforms
            .iter()
            .map(|p| lock.target_platform(&p.name))
            .collect::<Result<_, _>>()?;
        if !image {
            return Ok(all);
        }
        let linux: Vec<Platform> = all
            .iter()
            .filter(|p| p.oci_os == "linux")
            .cloned()
            .collect();
        if linux.is_empty() {
            let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
            return Err(envpack_oci::OciError::NoPlatforms {
                built: names.join(", "),
            }
            .into());
        }
        return Ok(linux);
    }
    let mut v = Vec::new();
    for name in opts.platforms {
        let p = lock.target_platform(name)?;
        if lock.platform(name).is_none() {
            let have: Vec<&str> = lock.platforms.iter().map(|p| p.name.as_str()).collect();
            bail!("platform {name} is not in the lock (it has: {}); add it to env.platforms and re-run `envpack lock`", have.join(", "));
        }
        if image && p.oci_os != "linux" {
            bail!("platform {name} can't go into an OCI image: images hold linux platforms only (use --format tarball for it)");
        }
        v.push(p);
    }
    Ok(v)
}

/// The build host's CPython pin: its platform's own, else the lock's `[build-python]` when that
/// is for this host. It compiles every platform's bytecode and rebuilds the sdists.
fn build_host_python(lock: &Lock, host: &str) -> anyhow::Result<crate::lock::LockedPython> {
    if let Some(p) = lock.platform(host) {
        return Ok(p.python.clone());
    }
    match &lock.build_python {
        Some(b) if b.platform == host => Ok(b.python()),
        Some(b) => bail!(
            "this lock was made on {} (its [build-python] is that platform's CPython) and can be built there, or on a host whose platform is in env.platforms; this host is {host}",
            b.platform
        ),
        None => bail!(
            "building needs the build host's CPython ({host}) in the lock: it compiles the bytecode; re-run `envpack lock` on this host (or add {host} to env.platforms)"
        ),
    }
}

/// What every platform's assembly shares: the gathered inputs and the build host's CPython.
struct Prepared {
    inputs: Inputs,
    host: LazyHost,
    host_sha256: envpack_layers::digest::Sha256Digest,
    conan_sources: Vec<(envpack_layers::digest::Sha256Digest, PathBuf)>,
}

impl Prepared {
    /// Gathers the inputs of `chosen` and of the build host's CPython.
    fn new(lock: &Lock, chosen: &[Platform], opts: &BuildOptions) -> anyhow::Result<Self> {
        let origins = Origins::new(opts)?;

        let host_platform = host_platform()
            .ok_or_else(|| anyhow!("this machine is not one of envpack's platforms"))?;
        let host_python = build_host_python(lock, &host_platform.name)?;
        let locked = chosen
            .iter()
            .map(|p| {
                lock.platform(&p.name)
                    .ok_or_else(|| anyhow!("platform {} is not in the lock", p.name))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut pythons = vec![&host_python];
        pythons.extend(locked.iter().map(|l| &l.python));
        let packages: Vec<&[LockedPackage]> = locked.iter().map(|l| &l.packages[..]).collect();
        let count: usize = packages.iter().map(|p| p.len()).sum();
        (opts.progress)(&format!(
            "fetching CPython for {} platform(s) and the build host, and {count} package file(s)",
            chosen.len()
        ));
        let inputs = Inputs::gather(&origins.sources(lock), &pythons, &packages, opts)?;
        let host = LazyHost::new(
            inputs.path(&host_python.sha256)?.to_path_buf(),
            host_platform,
            &lock.python.version,
            opts.cache,
        );
        let conan_sources = lock
            .conan_sources
            .iter()
            .map(|s| Ok((s.sha256, inputs.path(&s.sha256)?.to_path_buf())))
            .collect::<anyhow::Result<_>>()?;
        Ok(Prepared {
            inputs,
            host,
            host_sha256: host_python.sha256,
            conan_sources,
        })
    }

    /// The CPython archive and the wheels of one platform.
    fn platform_inputs(
        &self,
        lock: &Lock,
        locked: &LockedPlatform,
        opts: &BuildOptions,
    ) -> anyhow::Result<(PathBuf, Vec<WheelInput>)> {
        let archive = self.inputs.path(&locked.python.sha256)?.to_path_buf();
        let wheels = self
            .inputs
            .wheels(&locked.packages, lock, &self.host, opts)
            .with_context(|| format!("the packages of {}", locked.name))?;
        Ok((archive, wheels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_flat_json_objects() {
        let w = BuildWarning {
            platform: "macos-arm64".into(),
            warning: InstallWarning {
                wheel: "cmake-3.31.6-py3-none-macosx_10_10_universal2.whl".into(),
                file: "cmake-3.31.6.dist-info/WHEEL".into(),
                problem: "sha256 does not match RECORD".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({
                "platform": "macos-arm64",
                "wheel": "cmake-3.31.6-py3-none-macosx_10_10_universal2.whl",
                "file": "cmake-3.31.6.dist-info/WHEEL",
                "problem": "sha256 does not match RECORD",
            })
        );
    }
}
