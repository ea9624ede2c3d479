//! The `envpack` command line's arguments (clap derive), apart from what runs them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use envpack_unpack::root_args::{DoctorArgs, RepairArgs, RootArg, SignatureArgs, TrustArgs};

/// Build reproducible, hermetic developer/CI environments from one lockfile.
#[derive(Parser)]
#[command(name = "envpack", version, about)]
pub struct Cli {
    /// Cache directory (default: $ENVPACK_CACHE_DIR, else $XDG_CACHE_HOME/envpack).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Never touch the network; everything must be in the cache.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Take every input from this bundle (made by `envpack bundle`): it is the package index,
    /// the CPython mirror and the base images, and implies --offline (also: ENVPACK_BUNDLE).
    #[arg(long, global = true, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Print machine-readable JSON results on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only print errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The spec, its lock and the platforms of it a command works on.
#[derive(clap::Args)]
pub struct LockedInputs {
    /// The spec (checked against the lock's spec hash).
    #[arg(long, default_value = "envpack.toml")]
    pub spec: PathBuf,
    /// The lock.
    #[arg(long, default_value = "envpack.lock")]
    pub lock: PathBuf,
    /// Platforms (default: all in the lock).
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write a first envpack.toml and Conan profile for this machine, and say what to run next.
    Init {
        /// Where to write them (made if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The environment's name (default: the directory's).
        #[arg(long)]
        name: Option<String>,
        /// CPython version (default: the newest in a local mirror, else envpack's default).
        #[arg(long, requires = "python_build", value_name = "VERSION")]
        python: Option<String>,
        /// The python-build-standalone release tag of --python.
        #[arg(long, requires = "python", value_name = "TAG")]
        python_build: Option<String>,
    },
    /// Print the shell completion script of envpack (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        shell: envpack_unpack::cli_docs::Shell,
    },
    /// Write the man pages of envpack (envpack.1, envpack-<command>.1).
    Man {
        /// The directory to write them into (made if missing), e.g. ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
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
        #[command(flatten)]
        inputs: LockedInputs,
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
        /// Sign every artifact with this secret key (ARTIFACT.minisig and its provenance beside
        /// it; an image gets both as referrers of each platform manifest).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
    /// Write every input of the lock (CPython, wheels, sdists, build packages, base images)
    /// with the spec into a directory (or DIR.tar) that `--bundle` builds from with no network.
    Bundle {
        #[command(flatten)]
        inputs: LockedInputs,
        /// A directory (an earlier bundle there is replaced), or a file ending in .tar.
        #[arg(long)]
        out: PathBuf,
        /// Package index to fetch missing files from (overrides ENVPACK_INDEX_URL and the spec).
        #[arg(long)]
        index_url: Option<String>,
    },
    /// Make an ed25519 signing key pair: KEY (secret, unencrypted, mode 0600) and KEY's .pub.
    Keygen {
        /// The secret key file to write (`ci.key` also writes `ci.pub`); never replaced.
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Sign artifacts (minisign format, ARTIFACT.minisig beside each) and OCI image layouts
    /// (a signature and a provenance referrer for each platform manifest).
    Sign {
        /// The artifacts, image layouts (DIR or DIR:TAG) and images in a registry
        /// (HOST[:PORT]/REPO:TAG: fetched, signed and the signatures pushed back).
        #[arg(required = true)]
        artifacts: Vec<PathBuf>,
        /// The secret key (from `envpack keygen` or `minisign -G`; an encrypted one takes its
        /// password from ENVPACK_KEY_PASSWORD).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Verify an artifact and restore it into a root (ROOT/envs/<id>, ROOT/current, ROOT/bin).
    Unpack {
        /// An artifact, OCI image layout (DIR or DIR:TAG), oci-archive, or registry reference
        /// HOST[:PORT]/REPO[:TAG|@DIGEST] (omit with --rollback).
        artifact: Option<String>,
        /// The root.
        #[arg(long, env = "ENVPACK_ROOT")]
        root: PathBuf,
        /// Do not keep a copy of the artifact in the root (repair then needs it given).
        #[arg(long)]
        no_keep_artifact: bool,
        /// The earlier spelling of `envpack rollback` (kept for one release).
        #[arg(long, conflicts_with_all = ["artifact", "trust", "signature", "require_signature", "allow_downgrade"], hide = true)]
        rollback: bool,
        /// Allow plain HTTP to a registry that is not on a loopback address.
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Show a root's current and previous environments.
    Status(RootArg),
    /// Switch a root's `current` back to the previous environment.
    Rollback(RootArg),
    /// Push an OCI image to a registry: an image layout, an oci-archive, or a fresh build.
    Push {
        /// Where to: HOST[:PORT]/REPOSITORY[:TAG] (default tag: the image's own).
        reference: String,
        /// Push this OCI image layout directory.
        #[arg(long, conflicts_with = "archive")]
        layout: Option<PathBuf>,
        /// Push this oci-archive.
        #[arg(long)]
        archive: Option<PathBuf>,
        /// Without --layout/--archive: the spec to build the image from.
        #[arg(long, default_value = "envpack.toml")]
        spec: PathBuf,
        /// Without --layout/--archive: the lock to build the image from.
        #[arg(long, default_value = "envpack.lock")]
        lock: PathBuf,
        /// Without --layout/--archive: platforms to build (default: all linux ones).
        #[arg(long = "platform", value_name = "PLATFORM")]
        platforms: Vec<String>,
        /// Package index for a build (overrides ENVPACK_INDEX_URL and the spec).
        #[arg(long)]
        index_url: Option<String>,
        /// Allow plain HTTP to a registry that is not on a loopback address.
        #[arg(long)]
        insecure: bool,
        /// Mount missing blobs from this repository of the same registry instead of uploading.
        #[arg(long, value_name = "REPOSITORY")]
        mount_from: Option<String>,
        /// Parallel blob uploads.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
    },
    /// Check an unpacked root without changing it (exit 0 healthy, 1 findings, 2 error).
    Doctor(DoctorArgs),
    /// Fix what doctor finds from the artifact, then check again (exit 0 healthy, 1 not
    /// repaired, 2 error).
    Repair(RepairArgs),
    /// Re-hash an unpacked root against its manifest, or check every digest (and, with
    /// --trust, the signature) of an artifact.
    Verify {
        /// An artifact to check.
        artifact: Option<PathBuf>,
        /// A root to check (default without an ARTIFACT: ENVPACK_ROOT).
        #[arg(long, conflicts_with = "artifact")]
        root: Option<PathBuf>,
        #[command(flatten)]
        signature: SignatureArgs,
    },
    /// Write the SBOM (CycloneDX 1.6 or SPDX 2.3 JSON) of a platform of the lock.
    Sbom {
        /// The lock.
        #[arg(long, default_value = "envpack.lock")]
        lock: PathBuf,
        /// Platform (required when the lock has several and --out is not a directory).
        #[arg(long)]
        platform: Option<String>,
        /// cyclonedx or spdx.
        #[arg(long)]
        format: String,
        /// Output file (or directory: one file per platform); stdout when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-check every pin of a lock, an artifact / image layout / root against its lock and
    /// SBOM, or (--rebuild) reproduce every artifact; exits non-zero on any finding.
    Audit {
        /// An artifact, an OCI image layout dir, an unpacked root or an image reference
        /// (HOST/REPO:TAG) to audit.
        target: Option<PathBuf>,
        /// An unpacked root (or env dir) to audit.
        #[arg(long)]
        root: Option<PathBuf>,
        /// The lock (default envpack.lock; with a TARGET, an extra lock to compare with).
        #[arg(long)]
        lock: Option<PathBuf>,
        /// The spec (default: envpack.toml next to the lock, when present).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Rebuild every platform into a temp dir and compare with the artifacts in --against.
        #[arg(long)]
        rebuild: bool,
        /// Previously built artifacts to compare a rebuild with (default: dist).
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
        /// Platforms to rebuild (default: all in the lock).
        #[arg(long = "platform", value_name = "PLATFORM")]
        platforms: Vec<String>,
        /// Package index (overrides ENVPACK_INDEX_URL and the spec).
        #[arg(long)]
        index_url: Option<String>,
        /// Allow plain HTTP for a registry that is not on loopback.
        #[arg(long)]
        insecure: bool,
        /// Check the signature and provenance of the ARTIFACT (or, with --rebuild, of each
        /// artifact in --against) with this public key, and the provenance against the lock
        /// (repeatable: any of them).
        #[arg(long = "trust", value_name = "KEY.pub")]
        trust: Vec<std::path::PathBuf>,
        /// Instead: check the lock's packages and CPython against this OSV snapshot (a
        /// directory of records or an all.zip), offline.
        #[arg(long, value_name = "DB", conflicts_with_all = ["rebuild", "root", "against", "platforms", "index_url", "insecure", "spec", "trust"])]
        vulns: Option<PathBuf>,
        /// With --vulns: the lowest severity that fails; a vulnerability of unknown severity,
        /// or a record that cannot be evaluated, fails every gate but none.
        #[arg(long, value_name = "SEVERITY", default_value = "low", requires = "vulns",
              value_parser = ["none", "low", "medium", "high", "critical"], ignore_case = true)]
        fail_on: String,
        /// With --vulns: also write the findings as SARIF 2.1.0 to FILE.
        #[arg(long, value_name = "FILE", requires = "vulns")]
        sarif: Option<PathBuf>,
    },
}
