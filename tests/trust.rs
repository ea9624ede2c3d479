//! Signatures end to end, on the real fixture env: `envpack keygen`, `sign` and
//! `build --sign`; Debian's `minisign` verifying ours and signing for us; the unpacker refusing
//! every hostile signature before it writes a byte; a root that requires signatures; a
//! replayed older env; `verify --trust`; doctor's trust check.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use envpack_e2e::unpacked::built;
use envpack_e2e::*;

#[path = "trust/audit.rs"]
mod audit;
#[path = "trust/hostile.rs"]
mod hostile;
#[path = "trust/images.rs"]
mod images;
#[path = "trust/policy.rs"]
mod policy;
#[path = "trust/provenance.rs"]
mod provenance;

/// Signed when A is signed (envpack sign), and when B is built with --sign.
const A_TIME: &str = "1700000000";
const B_TIME: &str = "1700000500";

struct Keys {
    /// envpack keygen: the key that signs A and B.
    k1: PathBuf,
    /// envpack keygen: a second key nobody trusts.
    k2: PathBuf,
    /// minisign -G -W: minisign's own key.
    m: PathBuf,
}

struct Fixture {
    work: PathBuf,
    keys: Keys,
    /// The fixture env, signed by k1 at A_TIME.
    a: PathBuf,
    /// Another env (another profile), built with `--sign k1` at B_TIME.
    b: PathBuf,
}

fn pubkey(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        require_minisign();
        let base = built();
        let work = process_dir("envpack-trust-");
        fs_err::create_dir_all(&work).unwrap();
        let keygen = |name: &str| {
            let key = work.join(format!("{name}.key"));
            run(Command::new(envpack_bin())
                .args(["keygen", "--out"])
                .arg(&key));
            key
        };
        let (k1, k2) = (keygen("k1"), keygen("k2"));
        let m = work.join("m.key");
        run(Command::new("minisign")
            .args(["-G", "-W", "-f", "-p"])
            .arg(pubkey(&m))
            .arg("-s")
            .arg(&m));

        let a = work.join("a/openssl-devenv-linux-x86_64.envpack.tar");
        fs_err::create_dir_all(a.parent().unwrap()).unwrap();
        fs_err::copy(&base.artifact, &a).unwrap();
        run(Command::new(envpack_bin())
            .env("ENVPACK_SIGN_TIME", A_TIME)
            .arg("sign")
            .arg(&a)
            .arg("--key")
            .arg(&k1));

        // B: the same spec with another default profile, so another env id.
        let spec_dir = work.join("b-spec");
        fs_err::create_dir_all(spec_dir.join("profiles")).unwrap();
        fs_err::copy(base.work.join("envpack.toml"), spec_dir.join("envpack.toml")).unwrap();
        fs_err::write(
            spec_dir.join("profiles/linux-gcc12"),
            "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Debug\n",
        )
        .unwrap();
        let index = IndexServer::start(&index_dir(), &[]);
        let mirror = format!("file://{}", python_mirror().display());
        let cache = base.work.join("cache");
        run(envpack_cmd(&spec_dir, &cache, &index.url, &mirror).arg("lock"));
        run(envpack_cmd(&spec_dir, &cache, &index.url, &mirror)
            .env("ENVPACK_SIGN_TIME", B_TIME)
            .args(["build", "--platform", "linux-x86_64", "--sign"])
            .arg(&k1)
            .arg("--out")
            .arg(work.join("b")));
        let b = work.join("b/openssl-devenv-linux-x86_64.envpack.tar");
        Fixture {
            work,
            keys: Keys { k1, k2, m },
            a,
            b,
        }
    })
}

fn require_minisign() {
    if Command::new("minisign").arg("-v").output().is_err() {
        panic!("minisign is not installed (scripts/test.sh installs it: apt-get install minisign)");
    }
}

fn unpack(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(unpack_bin());
    cmd.arg("unpack");
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every path of a tree with its type and content (or link target), for "nothing changed".
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let t = e.file_type();
        let what = if t.is_symlink() {
            format!("link {}", fs_err::read_link(e.path()).unwrap().display())
        } else if t.is_dir() {
            "dir".to_owned()
        } else {
            format!("file {}", sha256_file(e.path()))
        };
        out.insert(rel, what);
    }
    out
}

/// A copy of `artifact` under `dir` with `sig` (text) as its `.minisig`.
fn with_signature(dir: &Path, artifact: &Path, sig: Option<&str>) -> PathBuf {
    fs_err::create_dir_all(dir).unwrap();
    let copy = dir.join(artifact.file_name().unwrap());
    fs_err::copy(artifact, &copy).unwrap();
    if let Some(sig) = sig {
        fs_err::write(envpack_trust::signature_path(&copy), sig).unwrap();
    }
    copy
}

fn sig_text(artifact: &Path) -> String {
    fs_err::read_to_string(envpack_trust::signature_path(artifact)).unwrap()
}

#[test]
fn minisign_verifies_envpack_signatures_and_envpack_verifies_minisigns() {
    let f = fixture();
    // Ours, checked by Debian's minisign: the whole file and the trusted comment.
    for art in [&f.a, &f.b] {
        let out = run(Command::new("minisign")
            .arg("-Vm")
            .arg(art)
            .arg("-p")
            .arg(pubkey(&f.keys.k1)));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("envpack-index:sha256:"), "{said}");
    }
    // Signing is deterministic: the same artifact, key and time give the same bytes.
    let again = with_signature(&f.work.join("again"), &f.a, None);
    run(Command::new(envpack_bin())
        .env("ENVPACK_SIGN_TIME", A_TIME)
        .arg("sign")
        .arg(&again)
        .arg("--key")
        .arg(&f.keys.k1));
    assert_eq!(sig_text(&again), sig_text(&f.a));

    // minisign's, checked by envpack: no envpack claims, so the whole file is checked.
    let theirs = with_signature(&f.work.join("theirs"), &f.a, None);
    run(Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&f.keys.m)
        .arg("-m")
        .arg(&theirs));
    let root = f.work.join("root-minisign");
    let out = unpack(&[&theirs, &"--root", &root, &"--trust", &pubkey(&f.keys.m)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(Command::new(envpack_bin())
        .arg("verify")
        .arg(&theirs)
        .arg("--trust")
        .arg(pubkey(&f.keys.m)));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("signature: good (file)"), "{said}");
    // And the same file, once changed after signing, is refused by both.
    let changed = with_signature(&f.work.join("changed"), &theirs, Some(&sig_text(&theirs)));
    flip_byte_in_last_blob(&changed);
    let out = unpack(&[
        &changed,
        &"--root",
        &f.work.join("root-changed"),
        &"--trust",
        &pubkey(&f.keys.m),
    ]);
    assert!(
        stderr(&out).contains("does not verify: the artifact"),
        "{}",
        stderr(&out)
    );
    assert!(!f.work.join("root-changed").exists());
    let out = Command::new("minisign")
        .arg("-Vm")
        .arg(&changed)
        .arg("-p")
        .arg(pubkey(&f.keys.m))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Flips one byte near the end of the artifact (inside the last layer blob).
fn flip_byte_in_last_blob(artifact: &Path) {
    let mut bytes = fs_err::read(artifact).unwrap();
    // The tar ends with two zero blocks and padding; step back over them into the blob.
    let mut i = bytes.len() - 1;
    while bytes[i] == 0 {
        i -= 1;
    }
    bytes[i] ^= 0x55;
    fs_err::write(artifact, bytes).unwrap();
}

/// The signature of `artifact` edited: `edit` gets the parsed signature.
fn edited(artifact: &Path, edit: impl Fn(&mut envpack_trust::Signature)) -> String {
    let mut sig = envpack_trust::Signature::parse(&sig_text(artifact), "sig").unwrap();
    edit(&mut sig);
    sig.to_text()
}

#[test]
fn keygen_never_replaces_a_key_and_sign_refuses_what_is_not_an_artifact() {
    let f = fixture();
    let before = fs_err::read(&f.keys.k1).unwrap();
    let out = Command::new(envpack_bin())
        .args(["keygen", "--out"])
        .arg(&f.keys.k1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("exists; keygen never replaces a key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs_err::read(&f.keys.k1).unwrap(), before);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs_err::metadata(&f.keys.k1).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let not_artifact = f.work.join("notes.txt");
    fs_err::write(&not_artifact, "hello").unwrap();
    let out = Command::new(envpack_bin())
        .arg("sign")
        .arg(&f.a)
        .arg(&not_artifact)
        .arg("--key")
        .arg(&f.keys.k1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("notes.txt"), "{}", stderr(&out));
    assert!(!envpack_trust::signature_path(&not_artifact).exists());

    // A secret key minisign encrypted: its password comes from ENVPACK_KEY_PASSWORD.
    let enc = f.work.join("enc.key");
    let mut child = Command::new("minisign")
        .args(["-G", "-f", "-p"])
        .arg(pubkey(&enc))
        .arg("-s")
        .arg(&enc)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hunter2\nhunter2\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let art = with_signature(&f.work.join("enc"), &f.a, None);
    let out = Command::new(envpack_bin())
        .arg("sign")
        .arg(&art)
        .arg("--key")
        .arg(&enc)
        .env_remove("ENVPACK_KEY_PASSWORD")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("is encrypted: set ENVPACK_KEY_PASSWORD"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(envpack_bin())
        .arg("sign")
        .arg(&art)
        .arg("--key")
        .arg(&enc)
        .env("ENVPACK_KEY_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(
        stderr(&out).to_lowercase().contains("wrong password"),
        "{}",
        stderr(&out)
    );
    run(Command::new(envpack_bin())
        .arg("sign")
        .arg(&art)
        .arg("--key")
        .arg(&enc)
        .env("ENVPACK_KEY_PASSWORD", "hunter2"));
    run(Command::new("minisign")
        .arg("-Vm")
        .arg(&art)
        .arg("-p")
        .arg(pubkey(&enc)));
}

#[test]
fn unsigned_time_or_unchecked_signature_is_refused() {
    let f = fixture();
    // A root that accepted A (signed at A_TIME) refuses a signature that carries no time.
    let root = f.work.join("root-no-time");
    let out = unpack(&[&f.a, &"--root", &root, &"--trust", &pubkey(&f.keys.k1)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let timeless = with_signature(&f.work.join("timeless"), &f.b, None);
    run(Command::new("minisign")
        .args(["-S", "-t", "built by hand", "-s"])
        .arg(&f.keys.m)
        .arg("-m")
        .arg(&timeless));
    let before = snapshot(&root);
    let out = unpack(&[&timeless, &"--root", &root, &"--trust", &pubkey(&f.keys.m)]);
    assert!(
        stderr(&out).contains("was signed without a timestamp, before the newest"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&root), before);

    // --signature with no key to check it by is an error, not a silent pass.
    let fresh = f.work.join("root-sig-only");
    let out = unpack(&[
        &f.a,
        &"--root",
        &fresh,
        &"--signature",
        &envpack_trust::signature_path(&f.a),
    ]);
    assert!(
        stderr(&out).contains("--signature: names a signature to check, but there is no key"),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.exists());
    for bin in [envpack_bin(), unpack_bin()] {
        let out = Command::new(bin)
            .arg("verify")
            .arg(&f.a)
            .arg("--signature")
            .arg(envpack_trust::signature_path(&f.a))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("--signature needs --trust"),
            "{}",
            stderr(&out)
        );
    }
}
