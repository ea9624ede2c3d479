//! Resolver against a local PEP 503 index served by `python3 -m http.server` from real wheels
//! (downloaded once with pip into `.fixtures/wheels-b`), plus a few synthetic packages for
//! extras, yanked files, PEP 658 metadata and sdist builds.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use envpack_layers::digest::Sha256Digest;
use envpack_net::{Cache, HttpClient, HttpConfig};
use envpack_pypkg::{
    platform_by_name, BuiltWheel, DistKind, IndexFile, PackageName, PypkgError, ResolveRequest,
    Resolver, SdistBuilder, SimpleIndex,
};
use url::Url;

const REAL_WHEELS: [&str; 5] = [
    "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "jinja2-3.1.6-py3-none-any.whl",
    "markupsafe-3.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    "python_dateutil-4.0.0-py3-none-any.whl",
    "tzdata-2026.6-py2.py3-none-any.whl",
];

/// Real wheels, fetched with pip's own configured index on first use.
fn real_wheels() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.fixtures/wheels-b");
    if REAL_WHEELS.iter().all(|w| dir.join(w).is_file()) {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("pip")
        .args([
            "download",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
        ])
        .arg(&dir)
        .args([
            "PyYAML==6.0.2",
            "Jinja2==3.1.6",
            "python-dateutil==4.0.0",
            "MarkupSafe==3.0.4",
            "tzdata==2026.6",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("fixture setup needs `pip` on PATH to download test wheels: {e}")
        });
    assert!(
        out.status.success(),
        "pip download of the test wheels failed (network or index unavailable?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for w in REAL_WHEELS {
        assert!(
            dir.join(w).is_file(),
            "pip did not produce {w} in {}",
            dir.display()
        );
    }
    dir
}

fn write_wheel(path: &Path, dist_info: &str, metadata: &str) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file(format!("{dist_info}/METADATA"), opts).unwrap();
    z.write_all(metadata.as_bytes()).unwrap();
    z.start_file(format!("{dist_info}/WHEEL"), opts).unwrap();
    z.write_all(b"Wheel-Version: 1.0\n").unwrap();
    z.finish().unwrap();
}

fn sha_hex(p: &Path) -> String {
    Sha256Digest::of_bytes(&std::fs::read(p).unwrap()).to_hex()
}

struct Link {
    file: String,
    with_hash: bool,
    attrs: String,
}

fn link(file: &str) -> Link {
    Link {
        file: file.to_string(),
        with_hash: true,
        attrs: String::new(),
    }
}

/// Lays out `root/files/*` and `root/simple/<project>/index.html`.
fn build_index(root: &Path, projects: &[(&str, Vec<Link>)]) {
    for (project, links) in projects {
        let dir = root.join("simple").join(project);
        std::fs::create_dir_all(&dir).unwrap();
        let mut html = String::from("<!DOCTYPE html><html><body>\n");
        for l in links {
            let hash = if l.with_hash {
                format!("#sha256={}", sha_hex(&root.join("files").join(&l.file)))
            } else {
                String::new()
            };
            html.push_str(&format!(
                "<a href=\"../../files/{}{hash}\" {}>{}</a><br/>\n",
                l.file, l.attrs, l.file
            ));
        }
        html.push_str("</body></html>\n");
        std::fs::write(dir.join("index.html"), html).unwrap();
    }
}

/// `python3 -m http.server` on a free 127.0.0.1 port; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(root: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the index server needs `python3` on PATH: {e}"));
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "python3 -m http.server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn index_url(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}/simple/", self.port)).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stands in for the PEP 517 builder: writes a wheel whose name comes from a table.
struct FakeBuilder {
    out: PathBuf,
}

impl SdistBuilder for FakeBuilder {
    fn build_wheel(
        &self,
        sdist: &IndexFile,
        sdist_path: &Path,
    ) -> Result<BuiltWheel, Box<dyn std::error::Error + Send + Sync>> {
        // The resolver hands over the verified download.
        assert_eq!(Some(Sha256Digest::of_file(sdist_path)?.0), sdist.sha256);
        let (filename, dist_info, meta) = match sdist.filename.as_str() {
            "envpack_sdist-2.0.tar.gz" => (
                "envpack_sdist-2.0-py3-none-any.whl",
                "envpack_sdist-2.0.dist-info",
                "Metadata-Version: 2.1\nName: envpack-sdist\nVersion: 2.0\nRequires-Dist: tzdata\n",
            ),
            "envpack_native-1.0.tar.gz" => (
                "envpack_native-1.0-cp311-cp311-linux_x86_64.whl",
                "envpack_native-1.0.dist-info",
                "Metadata-Version: 2.1\nName: envpack-native\nVersion: 1.0\n",
            ),
            other => return Err(format!("unexpected sdist {other}").into()),
        };
        let path = self.out.join(filename);
        write_wheel(&path, dist_info, meta);
        let (sha256, size) = Sha256Digest::of_file(&path)?;
        Ok(BuiltWheel {
            filename: filename.to_string(),
            path,
            sha256,
            size,
        })
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    server: Server,
    cache: Cache,
    builder: FakeBuilder,
    files: PathBuf,
}

fn fixture() -> Fixture {
    let wheels = real_wheels();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    let files = root.join("files");
    std::fs::create_dir_all(&files).unwrap();
    for w in REAL_WHEELS {
        std::fs::copy(wheels.join(w), files.join(w)).unwrap();
    }
    // PEP 658: jinja2's METADATA is served on its own, so its wheel must never be downloaded.
    let jinja = "jinja2-3.1.6-py3-none-any.whl";
    let mut zip = zip::ZipArchive::new(std::fs::File::open(files.join(jinja)).unwrap()).unwrap();
    let mut meta = Vec::new();
    std::io::Read::read_to_end(
        &mut zip.by_name("jinja2-3.1.6.dist-info/METADATA").unwrap(),
        &mut meta,
    )
    .unwrap();
    std::fs::write(files.join(format!("{jinja}.metadata")), &meta).unwrap();
    let meta_hash = Sha256Digest::of_bytes(&meta).to_hex();

    write_wheel(
        &files.join("jinja2-99.0-py3-none-any.whl"),
        "jinja2-99.0.dist-info",
        "Name: Jinja2\nVersion: 99.0\nRequires-Dist: does-not-exist\n",
    );
    write_wheel(
        &files.join("envpack_demo-1.0-py3-none-any.whl"),
        "envpack_demo-1.0.dist-info",
        "Metadata-Version: 2.1\nName: envpack-demo\nVersion: 1.0\nRequires-Dist: Jinja2>=3\n\
         Requires-Dist: PyYAML>=6 ; extra == \"yaml\"\nRequires-Dist: colorama ; sys_platform == \"win32\"\n\
         Requires-Dist: envpack-demo[yaml] ; extra == \"all\"\nProvides-Extra: yaml\nProvides-Extra: all\n",
    );
    write_wheel(
        &files.join("envpack_demo-2.0rc1-py3-none-any.whl"),
        "envpack_demo-2.0rc1.dist-info",
        "Name: envpack-demo\nVersion: 2.0rc1\nRequires-Dist: does-not-exist\n",
    );
    std::fs::write(
        files.join("envpack_sdist-2.0.tar.gz"),
        b"sdist bytes of envpack_sdist",
    )
    .unwrap();
    std::fs::write(files.join("envpack_native-1.0.tar.gz"), b"native sdist").unwrap();

    let mut jinja_link = link(jinja);
    jinja_link.attrs =
        format!("data-requires-python=\"&gt;=3.7\" data-core-metadata=\"sha256={meta_hash}\"");
    let mut yanked = link("jinja2-99.0-py3-none-any.whl");
    yanked.attrs = "data-yanked=\"broken\"".into();
    let mut tz = link(REAL_WHEELS[4]);
    tz.with_hash = false; // hashed on download instead
    let mut future_py = link("python_dateutil-4.0.0-py3-none-any.whl");
    future_py.attrs = "data-requires-python=\"&gt;=3.11\"".into();
    build_index(
        &root,
        &[
            ("pyyaml", vec![link(REAL_WHEELS[0])]),
            ("jinja2", vec![jinja_link, yanked]),
            ("markupsafe", vec![link(REAL_WHEELS[2])]),
            ("python-dateutil", vec![future_py]),
            ("tzdata", vec![tz]),
            (
                "envpack-demo",
                vec![
                    link("envpack_demo-1.0-py3-none-any.whl"),
                    link("envpack_demo-2.0rc1-py3-none-any.whl"),
                ],
            ),
            ("envpack-sdist", vec![link("envpack_sdist-2.0.tar.gz")]),
            ("envpack-native", vec![link("envpack_native-1.0.tar.gz")]),
        ],
    );
    let server = Server::start(&root);
    let cache = Cache::open(Some(&tmp.path().join("cache"))).unwrap();
    let out = tmp.path().join("built");
    std::fs::create_dir_all(&out).unwrap();
    Fixture {
        server,
        cache,
        builder: FakeBuilder { out },
        files,
        _tmp: tmp,
    }
}

fn reqs(list: &[&str]) -> Vec<pep508_rs::Requirement> {
    list.iter()
        .map(|r| pep508_rs::Requirement::from_str(r).unwrap())
        .collect()
}

fn name(s: &str) -> PackageName {
    PackageName::from_str(s).unwrap()
}

#[test]
fn resolves_real_wheels_for_linux_and_explains_failures() {
    let fx = fixture();
    let index = SimpleIndex::new(
        fx.server.index_url(),
        HttpClient::new(HttpConfig::default()),
    );
    let resolver = Resolver {
        index: &index,
        cache: &fx.cache,
        sdist_builder: &fx.builder,
    };
    let linux = platform_by_name("linux-x86_64").unwrap();
    let requirements = reqs(&[
        "PyYAML==6.0.2",
        "Jinja2",
        "python-dateutil",
        "envpack-demo[yaml]",
        "envpack-sdist; python_version >= '3.8'",
        "never-installed; sys_platform == 'win32'",
    ]);
    let req = ResolveRequest {
        requirements: &requirements,
        platform: &linux,
        python_full_version: "3.11.7",
    };
    let got = resolver.resolve(&req).unwrap();
    let summary: Vec<(String, String, DistKind)> = got
        .iter()
        .map(|p| (p.name.to_string(), p.version.to_string(), p.kind))
        .collect();
    assert_eq!(
        summary,
        [
            ("envpack-demo".into(), "1.0".into(), DistKind::Wheel),
            ("envpack-sdist".into(), "2.0".into(), DistKind::Sdist),
            ("jinja2".into(), "3.1.6".into(), DistKind::Wheel),
            ("markupsafe".into(), "3.0.4".into(), DistKind::Wheel),
            ("python-dateutil".into(), "4.0.0".into(), DistKind::Wheel),
            ("pyyaml".into(), "6.0.2".into(), DistKind::Wheel),
            ("tzdata".into(), "2026.6".into(), DistKind::Wheel),
        ]
    );
    let by = |n: &str| got.iter().find(|p| p.name == name(n)).unwrap();
    assert_eq!(
        by("envpack-demo").dependencies,
        [name("jinja2"), name("pyyaml")]
    );
    assert_eq!(by("jinja2").dependencies, [name("markupsafe")]);
    assert_eq!(by("pyyaml").file.filename, REAL_WHEELS[0]);
    let built = by("envpack-sdist").built_wheel.clone().unwrap();
    assert_eq!(built.filename, "envpack_sdist-2.0-py3-none-any.whl");
    assert_eq!(by("envpack-sdist").dependencies, [name("tzdata")]);

    // Downloads went through the verified cache; PEP 658 spared jinja2's wheel.
    let sha = |f: &str| Sha256Digest::of_file(&fx.files.join(f)).unwrap().0;
    assert!(fx.cache.get(&sha(REAL_WHEELS[0])).unwrap().is_some());
    assert!(fx.cache.get(&sha(REAL_WHEELS[4])).unwrap().is_some());
    assert!(fx
        .cache
        .get(&sha("jinja2-3.1.6-py3-none-any.whl"))
        .unwrap()
        .is_none());
    assert!(index.cached_metadata(&by("jinja2").file.url).is_some());

    // Pinning the yanked version makes it eligible (and its missing dependency is then explained).
    let pinned = reqs(&["Jinja2==99.0"]);
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &pinned,
            ..req
        })
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, PypkgError::NoSolution { .. }) && msg.contains("does-not-exist"),
        "{msg}"
    );

    // Asking for the pre-release explicitly selects it.
    let pre = reqs(&["envpack-demo>=2.0rc1"]);
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &pre,
            ..req
        })
        .unwrap_err();
    assert!(e.to_string().contains("does-not-exist"), "{e}");

    // Conflicts give pubgrub's report, naming the platform.
    let conflict = reqs(&["PyYAML==6.0.2", "envpack-demo[yaml]", "PyYAML<6"]);
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &conflict,
            ..req
        })
        .unwrap_err();
    let msg = e.to_string();
    eprintln!("conflict report:\n{msg}");
    assert!(
        msg.contains("linux-x86_64") && msg.contains("pyyaml"),
        "{msg}"
    );

    // Python too old for python-dateutil's Requires-Python.
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &reqs(&["python-dateutil"]),
            python_full_version: "3.10.4",
            ..req
        })
        .unwrap_err();
    assert!(e.to_string().contains("python-dateutil"), "{e}");

    // No Windows wheel of PyYAML on this index and no sdist: a readable failure for that platform.
    let windows = platform_by_name("windows-x86_64").unwrap();
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &reqs(&["PyYAML==6.0.2"]),
            platform: &windows,
            python_full_version: "3.11.7",
        })
        .unwrap_err();
    let msg = e.to_string();
    eprintln!("windows report:\n{msg}");
    assert!(
        msg.contains("windows-x86_64") && msg.contains("pyyaml"),
        "{msg}"
    );
    // The requirement nothing meets is the headline, in place of pubgrub's derivation.
    assert!(matches!(e, PypkgError::Unmet { .. }), "{msg}");
    assert!(
        msg.contains("pyyaml==6.0.2: no usable version of pyyaml on the index http://")
            && msg.contains("matches ==6.0.2: 6.0.2 has only wheels tagged cp311-cp311-manylinux"),
        "{msg}"
    );
    assert!(!msg.contains("Because"), "{msg}");

    // A version the index doesn't have: which index, and what it has nearby.
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &reqs(&["envpack-demo", "PyYAML==9.9"]),
            ..req
        })
        .unwrap_err();
    let msg = e.to_string();
    match &e {
        PypkgError::Unmet { unmet, .. } => {
            assert_eq!(unmet.len(), 1, "{msg}");
            assert_eq!(unmet[0].index, 1, "{msg}");
        }
        other => panic!("{other}"),
    }
    assert!(
        msg.starts_with("for linux-x86_64: pyyaml==9.9: no version of pyyaml on the index http://"),
        "{msg}"
    );
    assert!(msg.contains("matches ==9.9; the "), "{msg}");
    assert!(msg.contains("6.0.2"), "{msg}");

    // ...while pure-Python wheels resolve for it, with Windows-only markers active.
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &reqs(&["envpack-demo"]),
            platform: &windows,
            python_full_version: "3.11.7",
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("hint: colorama is not on the index"),
        "{e}"
    );

    // An sdist that builds a platform-specific wheel is refused.
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &reqs(&["envpack-native"]),
            ..req
        })
        .unwrap_err();
    assert!(matches!(e, PypkgError::NativeSdist { .. }), "{e}");
}

#[test]
fn offline_resolution_is_refused_with_the_url() {
    let fx = fixture();
    let index = SimpleIndex::new(
        fx.server.index_url(),
        HttpClient::new(HttpConfig {
            offline: true,
            ..HttpConfig::default()
        }),
    );
    let resolver = Resolver {
        index: &index,
        cache: &fx.cache,
        sdist_builder: &fx.builder,
    };
    let linux = platform_by_name("linux-x86_64").unwrap();
    let e = resolver
        .resolve(&ResolveRequest {
            requirements: &reqs(&["tzdata"]),
            platform: &linux,
            python_full_version: "3.11.7",
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("offline") && e.to_string().contains("/simple/tzdata/"),
        "{e}"
    );
}
