//! Every [`PypkgError`] variant's message, word for word: a changed message fails here first.

use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use envpack_layers::digest::Sha256Digest;
use pep440_rs::Version;
use url::Url;

use super::PypkgError as E;
use crate::filename::PackageName;

const A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
const B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

fn s(t: &str) -> String {
    t.to_string()
}

fn wheel() -> PathBuf {
    PathBuf::from("wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl")
}

fn url(u: &str) -> Url {
    Url::parse(u).unwrap()
}

fn name(n: &str) -> PackageName {
    PackageName::from_str(n).unwrap()
}

fn io_err(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, s(msg))
}

/// Names, platforms, metadata, entry points and archives.
#[test]
fn messages_of_names_metadata_and_archives() {
    let cases: Vec<(E, &str)> = vec![
        (
            E::InvalidPackageName(s("-yaml\n")),
            "invalid package name \"-yaml\\n\": use letters, digits, '-', '_' or '.', starting \
             and ending with a letter or digit",
        ),
        (
            E::UnknownPlatform {
                name: s("linux-sparc"),
                valid: s("linux-x86_64, macos-arm64"),
            },
            "unknown platform \"linux-sparc\"; valid platforms: linux-x86_64, macos-arm64",
        ),
        (
            E::PlatformData {
                file: s("linux-x86_64.toml"),
                detail: s("[wheel] needs `glibc`"),
            },
            "platform data linux-x86_64.toml: [wheel] needs `glibc`",
        ),
        (
            E::PlatformTarget {
                platform: s("linux-x86_64"),
                key: s("glibc"),
                detail: s("\"1.5\": glibc versions are 2.x"),
            },
            "platforms.linux-x86_64.glibc: \"1.5\": glibc versions are 2.x",
        ),
        (
            E::PythonVersion {
                version: s("3.x"),
                detail: s("not a number"),
            },
            "invalid python version \"3.x\": not a number",
        ),
        (
            E::CpythonVersion(s("3.12")),
            "python.version \"3.12\" must be a full CPython 3 version like \"3.12.7\"",
        ),
        (E::MetadataNotUtf8, "core metadata is not valid UTF-8"),
        (
            E::MetadataMissing("Version"),
            "core metadata lacks the Version header",
        ),
        (
            E::MetadataInvalid {
                header: "Requires-Python",
                value: s(">=3.x"),
                detail: s("bad version"),
            },
            "core metadata header Requires-Python: `>=3.x`: bad version",
        ),
        (
            E::MetadataSyntax {
                line: 4,
                text: s("no colon here"),
            },
            "core metadata line 4: not a `Name: value` header: `no colon here`",
        ),
        (
            E::MetadataWheel {
                path: wheel(),
                detail: s("no *.dist-info/METADATA"),
            },
            "wheel wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: no \
             *.dist-info/METADATA",
        ),
        (
            E::EntryPointsSyntax {
                line: 2,
                text: s("just words"),
            },
            "entry_points.txt line 2: cannot parse \"just words\"",
        ),
        (
            E::EntryPointsUnsafeName {
                line: 3,
                name: s("../evil"),
            },
            "entry_points.txt line 3: unsafe script name \"../evil\"",
        ),
        (
            E::EntryPointsReference {
                line: 5,
                value: s("mod:"),
            },
            "entry_points.txt line 5: bad object reference \"mod:\" (expected module:attr)",
        ),
        (
            E::EntryPointsDuplicate(s("tool")),
            "entry_points.txt: script \"tool\" defined twice",
        ),
        (
            E::ArchiveLayers {
                archive: s("pyyaml-6.0.2.tar.gz"),
                source: envpack_layers::LayersError::Rejected {
                    entry: s("../x"),
                    rule: "path leaves the tree",
                },
            },
            "pyyaml-6.0.2.tar.gz: archive entry ../x rejected: path leaves the tree",
        ),
        (
            E::ArchiveUnsupported(s("pyyaml-6.0.2.tar.bz2")),
            "pyyaml-6.0.2.tar.bz2: unsupported archive format (expected .tar.gz, .tgz or .zip)",
        ),
    ];
    check(cases);
}

/// RECORD and wheel contents.
#[test]
fn messages_of_records_and_wheels() {
    let record = || Box::new(E::RecordUnterminated { line: 7 });
    let cases: Vec<(E, &str)> = vec![
        (
            E::RecordColumns { line: 3, found: 2 },
            "RECORD line 3: expected 3 columns, found 2",
        ),
        (
            E::RecordUnterminated { line: 7 },
            "RECORD line 7: unterminated quoted field",
        ),
        (
            E::RecordCsv {
                line: 9,
                detail: s("invalid UTF-8"),
            },
            "RECORD line 9: invalid UTF-8",
        ),
        (
            E::RecordSize {
                line: 2,
                value: s("ten"),
            },
            "RECORD line 2: size `ten` is not a number",
        ),
        (
            E::RecordHash(s("md5=abc")),
            "bad hash `md5=abc`: expected sha256=, sha384= or sha512= with url-safe base64",
        ),
        (
            E::WheelZip {
                wheel: wheel(),
                source: zip::result::ZipError::FileNotFound,
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: not a valid zip \
             archive: specified file not found in archive",
        ),
        (
            E::WheelTooLarge {
                wheel: wheel(),
                what: s("the member count"),
                limit: 100000,
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: the member count \
             exceeds the limit of 100000",
        ),
        (
            E::WheelUnsafePath {
                wheel: wheel(),
                member: s("../../etc/x"),
                why: "leaves the install directory",
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: unsafe member path \
             \"../../etc/x\": leaves the install directory",
        ),
        (
            E::WheelDuplicate { wheel: wheel() },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: duplicate member names \
             in the zip directory",
        ),
        (
            E::WheelSymlink {
                wheel: wheel(),
                member: s("yaml/link"),
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: member \"yaml/link\" is \
             a symlink; wheels may not contain links",
        ),
        (
            E::WheelLayout {
                wheel: wheel(),
                why: s("unsupported Wheel-Version \"2.0\" (need 1.x)"),
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: unsupported \
             Wheel-Version \"2.0\" (need 1.x)",
        ),
        (
            E::WheelRecord {
                wheel: wheel(),
                source: record(),
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: RECORD line 7: \
             unterminated quoted field",
        ),
        (
            E::WheelVerify {
                wheel: wheel(),
                member: s("yaml/__init__.py"),
                why: s("CRC mismatch"),
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: yaml/__init__.py: CRC \
             mismatch",
        ),
        (
            E::WheelEntryPoints {
                wheel: wheel(),
                source: Box::new(E::EntryPointsDuplicate(s("tool"))),
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: entry_points.txt: \
             script \"tool\" defined twice",
        ),
        (
            E::InstallConflict {
                wheel: wheel(),
                path: s("bin/tool"),
                first: s("a-1.0"),
                second: s("b-2.0"),
            },
            "wheels/PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl: bin/tool would be \
             written twice (by a-1.0 and b-2.0)",
        ),
    ];
    check(cases);
}

/// The index and the resolver.
#[test]
fn messages_of_the_index_and_resolver() {
    let page = || url("https://pypi.example/simple/pyyaml/");
    let cases: Vec<(E, &str)> = vec![
        (
            E::NotFound {
                name: name("pyyaml"),
                url: page(),
            },
            "project pyyaml not found on the index (https://pypi.example/simple/pyyaml/)",
        ),
        (
            E::IndexMalformed {
                url: page(),
                detail: s("no files"),
            },
            "https://pypi.example/simple/pyyaml/: malformed project page: no files",
        ),
        (
            E::IndexBadUrl {
                base: Box::new(url("https://pypi.example/simple/")),
                name: name("pyyaml"),
                detail: s("relative URL without a base"),
            },
            "index URL https://pypi.example/simple/ cannot be joined with pyyaml: relative URL \
             without a base",
        ),
        (
            E::Unmet {
                platform: s("linux-x86_64"),
                unmet: vec![
                    crate::Unmet {
                        index: 0,
                        requirement: s("pyyaml>=99"),
                        detail: s("no version matches"),
                    },
                    crate::Unmet {
                        index: 1,
                        requirement: s("conan"),
                        detail: s("no wheel for linux-x86_64"),
                    },
                ],
            },
            "for linux-x86_64: pyyaml>=99: no version matches\nconan: no wheel for linux-x86_64",
        ),
        (
            E::NoSolution {
                platform: s("linux-x86_64"),
                report: s("a 1.0 depends on b<1"),
            },
            "no solution for platform linux-x86_64:\na 1.0 depends on b<1",
        ),
        (
            E::NativeSdist {
                hint: s("; glibc 2.28 would admit a wheel"),
                package: name("pyyaml"),
                version: Version::from_str("6.0.2").unwrap(),
                wheel: s("PyYAML-6.0.2-cp312-cp312-linux_x86_64.whl"),
                platform: s("linux-x86_64"),
            },
            "pyyaml 6.0.2 has no wheel for linux-x86_64 and its sdist builds a \
             platform-specific wheel (PyYAML-6.0.2-cp312-cp312-linux_x86_64.whl); provide a \
             wheel for linux-x86_64 on the index; glibc 2.28 would admit a wheel",
        ),
        (
            E::Metadata {
                file: s("pyyaml-6.0.2.tar.gz"),
                source: Box::new(E::MetadataMissing("Name")),
            },
            "metadata of pyyaml-6.0.2.tar.gz: core metadata lacks the Name header",
        ),
        (
            E::MetadataDigestMismatch {
                url: Box::new(url("https://files.example/x.whl.metadata")),
                expected: Sha256Digest::from_hex(A).unwrap(),
                actual: Sha256Digest::from_hex(B).unwrap(),
            },
            "https://files.example/x.whl.metadata: sha256 mismatch: expected \
             sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb, got \
             sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
        ),
        (
            E::InconsistentMetadata {
                file: s("x-1.0.whl"),
                detail: s("METADATA names version 1.1"),
            },
            "x-1.0.whl: inconsistent metadata: METADATA names version 1.1",
        ),
        (
            E::Build {
                file: s("x-1.0.tar.gz"),
                source: "the backend exited with status 1".into(),
            },
            "building a wheel from x-1.0.tar.gz failed: the backend exited with status 1",
        ),
        (
            E::UrlRequirement {
                requirement: s("x @ https://files.example/x.whl"),
            },
            "requirement \"x @ https://files.example/x.whl\" uses a direct URL; only index \
             requirements are supported",
        ),
        (
            E::Internal(s("no version chosen for pyyaml")),
            "internal resolver error: no version chosen for pyyaml",
        ),
    ];
    check(cases);
}

/// The build host's CPython, bytecode compilation, I/O and the network.
#[test]
fn messages_of_the_host_python_and_bytecode() {
    let exe = || PathBuf::from("/tmp/py/bin/python3");
    let walk = walkdir::WalkDir::new("/nonexistent/envpack-error-test")
        .into_iter()
        .next()
        .unwrap()
        .unwrap_err();
    let json = serde_json::from_str::<serde_json::Value>("[").unwrap_err();
    let cases: Vec<(E, &str)> = vec![
        (
            E::NoInterpreter {
                platform: s("linux-x86_64"),
                exe: s("python/bin/python3"),
            },
            "the CPython archive for linux-x86_64 has no python/bin/python3",
        ),
        (
            E::WrongPython {
                platform: s("linux-x86_64"),
                version: s("3.12.7"),
                got: s("3.11.2"),
            },
            "the locked CPython for linux-x86_64 does not run here or is not 3.12.7 (it reports \
             \"3.11.2\")",
        ),
        (
            E::HostUnusable {
                platform: s("linux-x86_64"),
                version: s("3.12.7"),
                reason: s("exec format error"),
            },
            "the build host's CPython 3.12.7 for linux-x86_64 can't be used: exec format error",
        ),
        (
            E::Run {
                exe: exe(),
                source: io_err("not found"),
            },
            "running /tmp/py/bin/python3",
        ),
        (
            E::DoesNotRun {
                exe: exe(),
                stderr: s("Segmentation fault"),
            },
            "/tmp/py/bin/python3 does not run: Segmentation fault",
        ),
        (
            E::Walk {
                dir: PathBuf::from("/env/lib"),
                source: walk,
            },
            "walking /env/lib",
        ),
        (
            E::OutsideTree {
                path: PathBuf::from("/elsewhere/x.py"),
            },
            "/elsewhere/x.py is outside the tree",
        ),
        (
            E::NonUtf8Path {
                path: PathBuf::from("/env/lib/odd.py"),
            },
            "non-UTF-8 path /env/lib/odd.py",
        ),
        (
            E::Compiler {
                what: "writing the file list to the compiler",
                source: io_err("broken pipe"),
            },
            "writing the file list to the compiler",
        ),
        (E::CompilerStdin, "no stdin for the compiler"),
        (E::FeederPanicked, "bytecode feeder thread panicked"),
        (
            E::CompileFailed(s("SyntaxError in x.py")),
            "compiling bytecode failed: SyntaxError in x.py",
        ),
        (E::CompilerOutput(json), "reading compiler output"),
        (
            E::Io(io_err("/env/lib: No such file or directory")),
            "/env/lib: No such file or directory",
        ),
        (
            E::Net(envpack_net::NetError::NoLocation),
            "no cache directory: pass --cache-dir or set ENVPACK_CACHE_DIR, XDG_CACHE_HOME or \
             HOME",
        ),
    ];
    check(cases);
}

fn check(cases: Vec<(E, &str)>) {
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
    }
}
