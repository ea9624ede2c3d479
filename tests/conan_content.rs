//! Conan content end to end, with the real Conan 2.21 and a real `conan-server` on loopback:
//! a `python_requires` package and a C recipe from folders next to the spec, a header recipe
//! from the server, and the C recipe's upstream source pinned by sha256. `lock` pins each
//! revision (the remote's, and the ones the lock's Conan computes), `build` carries them; with
//! the server stopped and the source gone, `conan create` in the unpacked env resolves the
//! `python_requires` and the requirement from the env and builds the C program from the pinned
//! source, `conan list` shows the pinned revisions and `verify` still passes. `audit` reports a
//! revision that moved on the remote. Bad input changes nothing.

#![cfg(unix)]

#[path = "conan_content/bad_input.rs"]
mod bad_input;
#[path = "conan_content/image.rs"]
mod image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envpack_e2e::conan_server::{server_bin, ConanServer};
use envpack_e2e::*;

const TOOLS: &str = r#"from conan import ConanFile

def configure_args(conanfile):
    """The Configure options every recipe of the team passes."""
    args = ["no-shared" if not conanfile.options.get_safe("shared") else "shared"]
    if conanfile.options.get_safe("fips"):
        args.append("enable-fips")
    return args

class OpensslTools(ConanFile):
    name = "openssl-tools"
    version = "1.2.4"
    package_type = "python-require"
"#;

const HELLO: &str = r#"import os
from conan import ConanFile
from conan.tools.files import get, copy

class Hello(ConanFile):
    name = "hello"
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fips": [True, False]}
    default_options = {"shared": False, "fips": True}
    python_requires = "openssl-tools/1.2.4"
    requires = "zdemo/1.0"

    def source(self):
        get(self, **self.conan_data["sources"][self.version], strip_root=True)

    def build(self):
        tools = self.python_requires["openssl-tools"].module
        self.output.info("Configure options: " + " ".join(tools.configure_args(self)))
        inc = self.dependencies["zdemo"].cpp_info.includedirs[0]
        self.run(f"gcc -I{inc} -o hello {self.source_folder}/hello.c")
        self.run(os.path.join(self.build_folder, "hello"))

    def package(self):
        copy(self, "hello", self.build_folder, os.path.join(self.package_folder, "bin"))
"#;

/// A team hook from the `conan config install` tree: every build passes its gate.
const HOOK: &str = "def pre_build(conanfile):\n    conanfile.output.info(f\"security gate passed for {conanfile.ref}\")\n";

const ZDEMO: &str = r#"import os
from conan import ConanFile
from conan.tools.files import copy

class Zdemo(ConanFile):
    name = "zdemo"
    version = "1.0"
    exports_sources = "include/*"
    package_type = "header-library"

    def package(self):
        copy(self, "*.h", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))
"#;

/// A spec dir: the fixture spec with `remote` as its Conan remote and `conan_lines` (TOML)
/// added to `[conan]`, the tools and hello recipes, and the hello source archive (made here,
/// served from `file://`); returns the dir and the source's sha256.
fn spec_dir(name: &str, remote: &str, conan_lines: &str) -> (PathBuf, String) {
    let dir = process_dir(&format!("envpack-conan-{name}-"));
    write_fixture_spec_dir(&dir, &["linux-x86_64"], PROFILE);
    let spec = fixture_spec(&["linux-x86_64"], &[remote], "").replace(
        "\n[conan.profiles]",
        &format!("{conan_lines}\n\n[conan.profiles]"),
    );
    fs_err::write(dir.join("envpack.toml"), spec).unwrap();
    for (rel, text) in [
        ("recipes/openssl-tools/conanfile.py", TOOLS),
        ("recipes/hello/conanfile.py", HELLO),
        ("conan-config/global.conf", "core:non_interactive=True\n"),
        ("conan-config/extensions/hooks/hook_gate.py", HOOK),
    ] {
        fs_err::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        fs_err::write(dir.join(rel), text).unwrap();
    }
    let src = dir.join("upstream/hello-1.0");
    fs_err::create_dir_all(&src).unwrap();
    fs_err::write(
        src.join("hello.c"),
        "#include <stdio.h>\n#include \"zdemo.h\"\nint main(void) { printf(\"hello from the pinned source: %d\\n\", ZDEMO_ANSWER); return 0; }\n",
    )
    .unwrap();
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@1700000000",
            "--owner=0",
            "--group=0",
            "-czf",
            "hello-1.0.tar.gz",
            "hello-1.0",
        ])
        .current_dir(dir.join("upstream")));
    let sha = sha256_file(&dir.join("upstream/hello-1.0.tar.gz"));
    fs_err::write(
        dir.join("recipes/hello/conandata.yml"),
        format!("sources:\n  \"1.0\":\n    url: \"https://upstream.invalid/hello-1.0.tar.gz\"\n    sha256: \"{sha}\"\n"),
    )
    .unwrap();
    (dir, sha)
}

const PROFILE: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";

/// The `[conan]` lines of the main case: both folders, the server's recipe, the source, the
/// config tree.
fn content_lines(dir: &Path, sha: &str) -> String {
    format!(
        "recipes = [\n  {{ ref = \"openssl-tools/1.2.4\", path = \"recipes/openssl-tools\" }},\n  \
         {{ ref = \"hello/1.0\", path = \"recipes/hello\" }},\n  {{ ref = \"zdemo/1.0\", remote = \"team\" }},\n]\n\
         sources = [{{ url = \"file://{}/upstream/hello-1.0.tar.gz\", sha256 = \"{sha}\" }}]\n\
         config = \"conan-config\"",
        dir.display()
    )
}

/// `envpack` in `dir` against the fixture index and mirror; sources come from their own URLs.
fn envpack(dir: &Path, index: &IndexServer) -> Command {
    let mut cmd = example_envpack(dir, index);
    cmd.env_remove("ENVPACK_SOURCE_MIRROR");
    cmd
}

/// `envpack` in `dir` as for the example: sources from the fixture source mirror.
fn example_envpack(dir: &Path, index: &IndexServer) -> Command {
    let mirror = format!("file://{}", python_mirror().display());
    envpack_cmd(dir, &dir.join("cache"), &index.url, &mirror)
}

/// What a command printed, stdout then stderr.
fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lock's `revision = "…"` of `reference`.
fn locked_revision(lock: &str, reference: &str) -> String {
    let at = lock
        .find(&format!("ref = \"{reference}\"\nrevision = \""))
        .unwrap_or_else(|| panic!("{reference} not in the lock:\n{lock}"));
    let rest = &lock[at..];
    let start = rest.find("revision = \"").unwrap() + "revision = \"".len();
    rest[start..start + 32].to_string()
}

/// `ROOT/bin/conan ARGS` with the env's writable home, nothing else of this machine's Conan.
fn conan_in(root: &Path, home: &Path, args: &[&str]) -> Output {
    let state = fs_err::read_dir(root.join("state"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    Command::new(root.join("bin/conan"))
        .env("CONAN_HOME", state.join("conan-home"))
        .env("HOME", home)
        .env_remove("CONAN_DEFAULT_PROFILE")
        .args(args)
        .output()
        .unwrap()
}

/// The main case's spec dir (see [`spec_dir`]) with the server at `url` as remote "team", the
/// [`content_lines`] and `tail` (TOML) at the end.
fn team_spec(name: &str, url: &str, tail: &str) -> (PathBuf, String) {
    let remote = format!("{{ name = \"team\", url = \"{url}\", verify-ssl = false }}");
    let (dir, sha) = spec_dir(name, &remote, "");
    let spec = fs_err::read_to_string(dir.join("envpack.toml"))
        .unwrap()
        .replace(
            "\n\n[conan.profiles]",
            &format!("\n{}\n\n[conan.profiles]", content_lines(&dir, &sha)),
        );
    fs_err::write(dir.join("envpack.toml"), format!("{spec}{tail}")).unwrap();
    (dir, sha)
}

/// `envpack-unpack verify --root ROOT` finds the env as it was unpacked.
fn assert_verified(root: &Path) {
    let verify = run(Command::new(unpack_bin())
        .args(["verify", "--root"])
        .arg(root));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("0 differences"),
        "{verify:?}"
    );
}

/// A conan-server under `work` holding `zdemo/1.0` (a header recipe, from `work/zdemo`); returns
/// it with the revision it serves.
fn team_server(bin: &Path, work: &Path) -> (ConanServer, String) {
    let server = ConanServer::start(bin, &work.join("server"));
    let zdemo = work.join("zdemo");
    fs_err::create_dir_all(zdemo.join("include")).unwrap();
    fs_err::write(zdemo.join("conanfile.py"), ZDEMO).unwrap();
    fs_err::write(zdemo.join("include/zdemo.h"), "#define ZDEMO_ANSWER 42\n").unwrap();
    let rev = server.upload(&work.join("client"), &zdemo, "zdemo/1.0");
    (server, rev)
}

#[test]
fn recipes_python_requires_and_sources_work_offline_after_unpack() {
    let Some(bin) = server_bin() else {
        eprintln!("skipping: set ENVPACK_TEST_CONAN_SERVER");
        return;
    };
    let work = process_dir("envpack-conan-server-");
    let (mut server, server_rev) = team_server(&bin, &work);
    let zdemo = work.join("zdemo");

    let (dir, sha) = team_spec("main", &server.url, "");
    let index = IndexServer::start(&index_dir(), &[]);
    run(envpack(&dir, &index).arg("lock"));
    let lock = fs_err::read_to_string(dir.join("envpack.lock")).unwrap();
    assert!(
        lock.starts_with("# envpack.lock") && lock.contains("\nversion = 3\n"),
        "{lock}"
    );
    assert_eq!(locked_revision(&lock, "zdemo/1.0"), server_rev);
    let tools_rev = locked_revision(&lock, "openssl-tools/1.2.4");
    let hello_rev = locked_revision(&lock, "hello/1.0");
    assert!(
        lock.contains(&format!(
            "[[conan-source]]\nurl = \"file://{}/upstream/hello-1.0.tar.gz\"\nsha256 = \"{sha}\"",
            dir.display()
        )),
        "{lock}"
    );

    run(envpack(&dir, &index)
        .args(["build", "--out"])
        .arg(dir.join("dist")));
    // The SBOMs name each recipe by revision and the source by sha256, and pass the validators.
    let sbom = |ext: &str| {
        dir.join(format!(
            "dist/openssl-devenv-linux-x86_64.envpack.tar.{ext}.json"
        ))
    };
    for ext in ["cdx", "spdx"] {
        let text = fs_err::read_to_string(sbom(ext)).unwrap();
        for want in [
            format!("pkg:conan/openssl-tools@1.2.4?rrev={tools_rev}"),
            format!("pkg:conan/zdemo@1.0?rrev={server_rev}"),
            format!("pkg:generic/hello-1.0.tar.gz?checksum=sha256:{sha}"),
        ] {
            assert!(text.contains(&want), "{ext}: {want}");
        }
    }
    if let Some(tools) = sbom_tools() {
        validate_cyclonedx(&tools, &sbom("cdx"));
        validate_spdx(&tools, &sbom("spdx"));
    }
    // Offline from here: no remote, no upstream archive.
    server.stop();
    let bundle = dir.join("bundle");
    run(envpack(&dir, &index).args(["bundle", "--out"]).arg(&bundle));
    fs_err::remove_dir_all(dir.join("upstream")).unwrap();
    let artifact = dir.join("dist/openssl-devenv-linux-x86_64.envpack.tar");
    // The bundle carries the source and the recipe folders: with the server and the upstream
    // archive gone and an empty cache, a build from it makes the same artifact.
    assert!(bundle.join(format!("sources/{sha}")).is_file());
    assert!(bundle
        .join("spec/recipes/openssl-tools/conanfile.py")
        .is_file());
    let dead = "http://127.0.0.1:9/";
    run(envpack_cmd(&dir, &dir.join("cache-empty"), dead, dead)
        .arg("--bundle")
        .arg(&bundle)
        .args(["build", "--out"])
        .arg(dir.join("from-bundle"))
        .arg("--spec")
        .arg(bundle.join("spec/envpack.toml"))
        .arg("--lock")
        .arg(bundle.join("spec/envpack.lock")));
    assert_eq!(
        sha256_file(&dir.join("from-bundle/openssl-devenv-linux-x86_64.envpack.tar")),
        sha256_file(&artifact)
    );
    let root = dir.join("root");
    run(Command::new(unpack_bin())
        .arg(&artifact)
        .arg("--root")
        .arg(&root));
    let home = dir.join("home");
    fs_err::create_dir_all(&home).unwrap();

    let out = conan_in(
        &root,
        &home,
        &["list", "*#*", "-r", "envpack-recipes", "--format=json"],
    );
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (reference, rev) in [
        ("openssl-tools/1.2.4", &tools_rev),
        ("hello/1.0", &hello_rev),
        ("zdemo/1.0", &server_rev),
    ] {
        let revs = &listed["envpack-recipes"][reference]["revisions"];
        assert!(revs.get(rev).is_some(), "{reference}: {listed}");
    }

    let recipe = root.join("current/conan-recipes/recipes/hello/1.0");
    let out = conan_in(
        &root,
        &home,
        &[
            "create",
            &recipe.display().to_string(),
            "--version",
            "1.0",
            "--build=missing",
            "-r",
            "envpack-recipes",
        ],
    );
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Configure options: no-shared enable-fips"),
        "{said}"
    );
    assert!(said.contains("hello from the pinned source: 42"), "{said}");
    assert!(
        said.contains("retrieved from local download cache"),
        "{said}"
    );
    assert!(said.contains(&format!("hello/1.0#{hello_rev}")), "{said}");
    assert!(
        said.contains("security gate passed for hello/1.0"),
        "{said}"
    );
    let conf = conan_in(&root, &home, &["config", "show", "core:non_interactive"]);
    assert!(
        String::from_utf8_lossy(&conf.stdout).contains("True"),
        "{conf:?}"
    );
    let out = conan_in(
        &root,
        &home,
        &["list", "openssl-tools/*#*", "--format=json"],
    );
    let cached: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        cached["Local Cache"]["openssl-tools/1.2.4"]["revisions"]
            .get(&tools_rev)
            .is_some(),
        "{cached}"
    );
    assert_verified(&root);

    // The unpacked env's recipes and sources are the lock's, file by file.
    let audit = run(envpack(&dir, &index).arg("audit").arg(&root));
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains("all agree"),
        "{audit:?}"
    );

    // The remote moves on: audit says the lock is stale.
    server.resume();
    fs_err::write(zdemo.join("include/zdemo.h"), "#define ZDEMO_ANSWER 43\n").unwrap();
    let moved = server.upload(&work.join("client"), &zdemo, "zdemo/1.0");
    assert_ne!(moved, server_rev);
    let out = envpack(&dir, &index)
        .args(["audit", "--lock"])
        .arg(dir.join("envpack.lock"))
        .output()
        .unwrap();
    let said = printed(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("conan recipe zdemo/1.0#{server_rev} from remote team: the remote's latest revision is now {moved}: the lock is stale")),
        "{said}"
    );
}

/// The example of lockfiles/ carries the team's `openssl-tools` and the OpenSSL recipe that
/// extends it, with the real OpenSSL 3.0.22 tarball (from Debian's source archive): unpacked,
/// it builds OpenSSL with no network at all (a network namespace of its own), and the env is
/// unchanged afterwards. The one full OpenSSL build of the suite (about 1.5 min on 2 cores).
#[test]
fn the_example_builds_openssl_offline_with_the_teams_recipe() {
    let work = process_dir("envpack-conan-openssl-");
    let dir = work.join("example");
    copy_example(&dir);
    let lock = fs_err::read_to_string(dir.join("envpack.lock")).unwrap();
    let tools_rev = locked_revision(&lock, "openssl-tools/1.2.4");
    let openssl_rev = locked_revision(&lock, "openssl/3.0.22");
    let index = IndexServer::start(&index_dir(), &[]);
    run(example_envpack(&dir, &index)
        .args(["build", "--out"])
        .arg(work.join("dist")));
    drop(index);
    let root = work.join("root");
    run(Command::new(unpack_bin())
        .arg(work.join("dist/openssl-devenv-linux-x86_64.envpack.tar"))
        .arg("--root")
        .arg(&root));
    let home = work.join("home");
    fs_err::create_dir_all(&home).unwrap();
    let recipe = root.join("current/conan-recipes/recipes/openssl/3.0.22");
    let mut create = Command::new("unshare");
    create
        .args(["-n"])
        .arg(root.join("bin/conan"))
        .args(["create"])
        .arg(&recipe)
        .args([
            "--version",
            "3.0.22",
            "-r",
            "envpack-recipes",
            "--build=missing",
        ])
        .env("HOME", &home)
        .env_remove("CONAN_HOME");
    let out = create.output().unwrap();
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("openssl/3.0.22: Source https://www.openssl.org/source/openssl-3.0.22.tar.gz retrieved from local download cache"), "{said}");
    assert!(
        said.contains("Configure linux-x86_64 no-shared no-tests no-ssl3"),
        "{said}"
    );
    assert!(
        said.contains(&format!("openssl-tools/1.2.4#{tools_rev}")),
        "{said}"
    );
    assert!(
        said.contains(&format!("openssl/3.0.22#{openssl_rev}:")),
        "{said}"
    );
    let pref = said
        .lines()
        .find_map(|l| l.split("Full package reference: ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let path = conan_in(&root, &home, &["cache", "path", &pref]);
    assert!(path.status.success(), "{path:?}");
    let pkg = PathBuf::from(String::from_utf8_lossy(&path.stdout).trim());
    for lib in ["lib/libssl.a", "lib/libcrypto.a", "include/openssl/ssl.h"] {
        assert!(pkg.join(lib).is_file(), "{lib}");
    }
    let version = run(Command::new(pkg.join("bin/openssl")).arg("version"));
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("OpenSSL 3.0.22 "),
        "{version:?}"
    );
    assert_verified(&root);
    let _ = fs_err::remove_dir_all(&work);
}
