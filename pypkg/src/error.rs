//! The one error type of Python packaging: names, platforms, metadata, RECORD, wheels, the
//! index, the resolver, the build host's CPython and bytecode. Every message names the file,
//! URL, line or platform it is about.

use std::io;
use std::path::PathBuf;

use envpack_layers::digest::Sha256Digest;
use envpack_layers::shown_name;
use envpack_net::NetError;
use pep440_rs::Version;
use url::Url;

use crate::filename::PackageName;

/// Python packaging failures.
#[derive(Debug, thiserror::Error)]
pub enum PypkgError {
    /// A string that is not a valid project name.
    #[error("invalid package name \"{}\": use letters, digits, '-', '_' or '.', starting and ending with a letter or digit", shown_name(.0))]
    InvalidPackageName(String),

    /// No platform of that name.
    #[error("unknown platform \"{}\"; valid platforms: {valid}", shown_name(.name))]
    UnknownPlatform {
        /// The requested name.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// An embedded platform data file is malformed.
    #[error("platform data {file}: {detail}")]
    PlatformData {
        /// The data file.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// A spec's target setting does not fit the platform.
    #[error("platforms.{platform}.{key}: {detail}")]
    PlatformTarget {
        /// The platform.
        platform: String,
        /// The setting (`glibc`, `macos`).
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A Python version string is malformed.
    #[error("invalid python version \"{}\": {detail}", shown_name(.version))]
    PythonVersion {
        /// The offending version.
        version: String,
        /// What is wrong.
        detail: String,
    },
    /// A CPython version that is not a full `3.Y.Z`.
    #[error("python.version \"{}\" must be a full CPython 3 version like \"3.12.7\"", shown_name(.0))]
    CpythonVersion(String),

    /// Core metadata that is not UTF-8.
    #[error("core metadata is not valid UTF-8")]
    MetadataNotUtf8,
    /// A required core metadata header is absent.
    #[error("core metadata lacks the {0} header")]
    MetadataMissing(&'static str),
    /// A core metadata header value does not parse.
    #[error("core metadata header {header}: `{value}`: {detail}")]
    MetadataInvalid {
        /// Header name.
        header: &'static str,
        /// Offending value.
        value: String,
        /// Parser message.
        detail: String,
    },
    /// A core metadata line is neither a header nor a continuation.
    #[error("core metadata line {line}: not a `Name: value` header: `{text}`")]
    MetadataSyntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A wheel's metadata could not be read.
    #[error("wheel {path}: {detail}")]
    MetadataWheel {
        /// The wheel file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },

    /// An `entry_points.txt` line is neither a section, a comment nor `key = value`.
    #[error("entry_points.txt line {line}: cannot parse \"{}\"", shown_name(.text))]
    EntryPointsSyntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A script name that could escape the scripts dir or is otherwise unusable.
    #[error("entry_points.txt line {line}: unsafe script name \"{}\"", shown_name(.name))]
    EntryPointsUnsafeName {
        /// 1-based line number.
        line: usize,
        /// The name.
        name: String,
    },
    /// An entry point's object reference is not `module:attr` with Python identifiers.
    #[error("entry_points.txt line {line}: bad object reference \"{}\" (expected module:attr)", shown_name(.value))]
    EntryPointsReference {
        /// 1-based line number.
        line: usize,
        /// The value.
        value: String,
    },
    /// The same script name appears twice in `entry_points.txt`.
    #[error("entry_points.txt: script \"{}\" defined twice", shown_name(.0))]
    EntryPointsDuplicate(String),

    /// An archive entry was rejected or the archive is malformed.
    #[error("{archive}: {source}")]
    ArchiveLayers {
        /// The archive.
        archive: String,
        /// Why.
        source: envpack_layers::LayersError,
    },
    /// Not an archive format we read.
    #[error("{0}: unsupported archive format (expected .tar.gz, .tgz or .zip)")]
    ArchiveUnsupported(String),

    /// A `RECORD` row does not have the three columns RECORD requires.
    #[error("RECORD line {line}: expected 3 columns, found {found}")]
    RecordColumns {
        /// 1-based line number.
        line: usize,
        /// Number of columns seen.
        found: usize,
    },
    /// A quoted `RECORD` field is never closed.
    #[error("RECORD line {line}: unterminated quoted field")]
    RecordUnterminated {
        /// 1-based line number.
        line: usize,
    },
    /// The CSV reader refused the `RECORD` text.
    #[error("RECORD line {line}: {detail}")]
    RecordCsv {
        /// 1-based line number.
        line: usize,
        /// The reader's message.
        detail: String,
    },
    /// A `RECORD` size column is not a number.
    #[error("RECORD line {line}: size `{value}` is not a number")]
    RecordSize {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        value: String,
    },
    /// A `RECORD` hash is malformed or uses a weak/unknown algorithm.
    #[error("bad hash `{0}`: expected sha256=, sha384= or sha512= with url-safe base64")]
    RecordHash(String),

    /// A wheel's zip structure is broken.
    #[error("{wheel}: not a valid zip archive: {source}")]
    WheelZip {
        /// The wheel.
        wheel: PathBuf,
        /// The zip error.
        source: zip::result::ZipError,
    },
    /// A wheel exceeds a size or count limit.
    #[error("{wheel}: {what} exceeds the limit of {limit}")]
    WheelTooLarge {
        /// The wheel.
        wheel: PathBuf,
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A wheel member path could escape the install dir or is not portable.
    #[error("{wheel}: unsafe member path \"{}\": {why}", shown_name(.member))]
    WheelUnsafePath {
        /// The wheel.
        wheel: PathBuf,
        /// The member name.
        member: String,
        /// Why it is unsafe.
        why: &'static str,
    },
    /// Two wheel members share a name.
    #[error("{wheel}: duplicate member names in the zip directory")]
    WheelDuplicate {
        /// The wheel.
        wheel: PathBuf,
    },
    /// A wheel member is a symlink.
    #[error("{wheel}: member \"{}\" is a symlink; wheels may not contain links", shown_name(.member))]
    WheelSymlink {
        /// The wheel.
        wheel: PathBuf,
        /// The member name.
        member: String,
    },
    /// A wheel's `.dist-info` is missing, ambiguous or incomplete, or its layout cannot be
    /// mapped onto the env.
    #[error("{wheel}: {why}")]
    WheelLayout {
        /// The wheel.
        wheel: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A wheel's `RECORD` is malformed.
    #[error("{wheel}: {source}")]
    WheelRecord {
        /// The wheel.
        wheel: PathBuf,
        /// The parse error.
        source: Box<PypkgError>,
    },
    /// A wheel member cannot be read back from the zip (corrupt data, wrong size).
    #[error("{wheel}: {member}: {why}")]
    WheelVerify {
        /// The wheel.
        wheel: PathBuf,
        /// The member name.
        member: String,
        /// What does not match.
        why: String,
    },
    /// A wheel's `entry_points.txt` is invalid.
    #[error("{wheel}: {source}")]
    WheelEntryPoints {
        /// The wheel.
        wheel: PathBuf,
        /// The parse error.
        source: Box<PypkgError>,
    },
    /// Two sources would write the same env file.
    #[error("{wheel}: {path} would be written twice (by {first} and {second})")]
    InstallConflict {
        /// The wheel.
        wheel: PathBuf,
        /// The env-relative destination.
        path: String,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },

    /// The index has no page for the project.
    #[error("project {name} not found on the index ({url})")]
    NotFound {
        /// The project.
        name: PackageName,
        /// The page URL.
        url: Url,
    },
    /// An index page does not parse.
    #[error("{url}: malformed project page: {detail}")]
    IndexMalformed {
        /// The page URL.
        url: Url,
        /// Parser message.
        detail: String,
    },
    /// The project name cannot form an index URL.
    #[error("index URL {base} cannot be joined with {name}: {detail}")]
    IndexBadUrl {
        /// Index base.
        base: Box<Url>,
        /// The project.
        name: PackageName,
        /// Parser message.
        detail: String,
    },

    /// Top-level requirements that nothing on the index meets.
    #[error("{}", unmet_text(platform, unmet))]
    Unmet {
        /// Platform name.
        platform: String,
        /// Each requirement and why.
        unmet: Vec<crate::Unmet>,
    },
    /// No set of versions satisfies the requirements.
    #[error("no solution for platform {platform}:\n{report}")]
    NoSolution {
        /// Platform name.
        platform: String,
        /// pubgrub's derivation report.
        report: String,
    },
    /// An sdist built a wheel the platform cannot use (native code built for the host).
    #[error("{package} {version} has no wheel for {platform} and its sdist builds a platform-specific wheel ({wheel}); provide a wheel for {platform} on the index{hint}")]
    NativeSdist {
        /// What a raised target would admit instead ("; ..."), or empty.
        hint: String,
        /// The project.
        package: PackageName,
        /// Its version.
        version: Version,
        /// The built wheel's name.
        wheel: String,
        /// Platform name.
        platform: String,
    },
    /// Metadata of a file could not be read.
    #[error("metadata of {file}: {source}")]
    Metadata {
        /// The file.
        file: String,
        /// Why.
        source: Box<PypkgError>,
    },
    /// A PEP 658 metadata file does not match its announced hash.
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}")]
    MetadataDigestMismatch {
        /// The metadata URL.
        url: Box<Url>,
        /// Announced digest.
        expected: Sha256Digest,
        /// Actual digest.
        actual: Sha256Digest,
    },
    /// Metadata disagrees with the file it came from.
    #[error("{file}: inconsistent metadata: {detail}")]
    InconsistentMetadata {
        /// The file.
        file: String,
        /// What disagrees.
        detail: String,
    },
    /// Building a wheel from an sdist failed.
    #[error("building a wheel from {file} failed: {source}")]
    Build {
        /// The sdist.
        file: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Direct URL requirements are not supported (a lock pins index files).
    #[error(
        "requirement \"{}\" uses a direct URL; only index requirements are supported",
        shown_name(.requirement)
    )]
    UrlRequirement {
        /// The requirement.
        requirement: String,
    },
    /// A resolver invariant broke.
    #[error("internal resolver error: {0}")]
    Internal(String),

    /// A CPython archive without its interpreter.
    #[error("the CPython archive for {platform} has no {exe}")]
    NoInterpreter {
        /// The platform.
        platform: String,
        /// The interpreter's path inside the archive.
        exe: String,
    },
    /// The unpacked CPython does not run here or reports another version.
    #[error(
        "the locked CPython for {platform} does not run here or is not {version} (it reports \"{got}\")"
    )]
    WrongPython {
        /// The platform.
        platform: String,
        /// The locked version.
        version: String,
        /// What the interpreter reported.
        got: String,
    },
    /// The build host's CPython failed to unpack or run once; every later use is told so.
    #[error("the build host's CPython {version} for {platform} can't be used: {reason}")]
    HostUnusable {
        /// The host platform.
        platform: String,
        /// The locked version.
        version: String,
        /// The first failure, with its causes.
        reason: String,
    },
    /// An interpreter could not be started.
    #[error("running {}", exe.display())]
    Run {
        /// The interpreter.
        exe: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An interpreter started but failed.
    #[error("{} does not run: {stderr}", exe.display())]
    DoesNotRun {
        /// The interpreter.
        exe: PathBuf,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// Walking a tree for bytecode compilation failed.
    #[error("walking {}", dir.display())]
    Walk {
        /// The tree.
        dir: PathBuf,
        /// Why.
        source: walkdir::Error,
    },
    /// A walked path that is not under the tree.
    #[error("{} is outside the tree", path.display())]
    OutsideTree {
        /// The path.
        path: PathBuf,
    },
    /// A path bytecode cannot name.
    #[error("non-UTF-8 path {}", path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// Talking to the bytecode compiler failed (`what` says which step).
    #[error("{what}")]
    Compiler {
        /// The step.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The bytecode compiler's stdin could not be taken.
    #[error("no stdin for the compiler")]
    CompilerStdin,
    /// The thread feeding the compiler panicked.
    #[error("bytecode feeder thread panicked")]
    FeederPanicked,
    /// The bytecode compiler failed.
    #[error("compiling bytecode failed: {0}")]
    CompileFailed(String),
    /// The bytecode compiler's output is not the JSON list it prints.
    #[error("reading compiler output")]
    CompilerOutput(#[source] serde_json::Error),

    /// Filesystem failure (the message names the path).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Download or cache failure.
    #[error(transparent)]
    Net(#[from] NetError),
}

fn unmet_text(platform: &str, unmet: &[crate::Unmet]) -> String {
    let lines: Vec<String> = unmet
        .iter()
        .map(|u| format!("{}: {}", u.requirement, u.detail))
        .collect();
    format!("for {platform}: {}", lines.join("\n"))
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
