//! Full disk, for real: roots, output directories and lock files on small tmpfs mounts.
//! Running out of space must give a clear error that names the path, leave no partial env or
//! artifact visible, keep the previous `current` env intact and usable, and leave nothing
//! behind that the next run does not clean up.
//!
//! Needs root (mount). Under `ENVPACK_REQUIRE_FIXTURES=1` (scripts/test.sh) a failed mount is a
//! test failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use envpack_e2e::*;

const ARTIFACT: &str = "openssl-devenv-linux-x86_64.envpack.tar";

/// A tmpfs of `size` mounted at a new dir under `parent`; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(parent: &Path, name: &str, size: &str) -> Option<Tmpfs> {
        let path = parent.join(name);
        fs_err::create_dir_all(&path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_none(),
                "cannot mount a tmpfs at {} (the full-disk tests need root)",
                path.display()
            );
            eprintln!("skipping: cannot mount a tmpfs (not root?)");
            return None;
        }
        Some(Tmpfs { path })
    }

    /// Fills the mount with a file, leaving about `leave` bytes free.
    fn fill_leaving(&self, leave: u64) {
        let free = free_bytes(&self.path);
        let filler = free.saturating_sub(leave);
        let f = fs_err::File::create(self.path.join("filler")).unwrap();
        // tmpfs allocates on write, not on set_len: write it.
        let mut w = std::io::BufWriter::new(f);
        let chunk = vec![0x55u8; 1 << 20];
        let mut left = filler;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut w, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = std::io::Write::flush(&mut w);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn free_bytes(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// Two artifacts of the example env with different env ids (the second has another profile).
struct Built {
    _index: IndexServer,
    dir: PathBuf,
    cache: PathBuf,
    index_url: String,
    mirror_url: String,
    a: PathBuf,
    b: PathBuf,
}

fn envpack_in(dir: &Path, b: &Built) -> Command {
    envpack_cmd(dir, &b.cache, &b.index_url, &b.mirror_url)
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = envpack_e2e::process_dir("envpack-full-disk-");
        let index = IndexServer::start(&index_dir(), &[]);
        let dir = tmp.join("example");
        copy_example(&dir);
        let b = Built {
            dir: dir.clone(),
            cache: tmp.join("cache"),
            index_url: index.url.clone(),
            mirror_url: format!("file://{}/", python_mirror().display()),
            a: tmp.join("a").join(ARTIFACT),
            b: tmp.join("b").join(ARTIFACT),
            _index: index,
        };
        run(envpack_in(&dir, &b)
            .args(["build", "--out"])
            .arg(b.a.parent().unwrap()));
        // Another profile: another env id, the same big layers.
        let mut text = fs_err::read_to_string(dir.join("profiles/linux-gcc12")).unwrap();
        text.push_str("\n[buildenv]\nCFLAGS=-O2\n");
        fs_err::write(dir.join("profiles/linux-gcc12"), text).unwrap();
        run(envpack_in(&dir, &b).args(["lock"]));
        run(envpack_in(&dir, &b)
            .args(["build", "--out"])
            .arg(b.b.parent().unwrap()));
        b
    })
}

fn unpack(artifact: &Path, root: &Path) -> Output {
    Command::new(unpack_bin())
        .arg("--quiet")
        .arg(artifact)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs_err::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn unpack_into_a_full_disk_fails_cleanly_and_keeps_the_previous_env() {
    let b = built();
    let parent = tempfile::tempdir().unwrap();
    // Room for two envs (about 77 MB each), until the filler takes it.
    // Two envs of the example (each ~92 MB, plus the 15 MB OpenSSL source seeded into its state).
    let Some(fs) = Tmpfs::mount(parent.path(), "small", "320m") else {
        return;
    };
    let root = fs.path.join("root");
    let first = unpack(&b.a, &root);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let current_before = fs_err::read_link(root.join("current")).unwrap();
    fs.fill_leaving(8 << 20);

    let second = unpack(&b.b, &root);
    assert!(
        !second.status.success(),
        "the second env fit on a full disk?"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("No space left on device") || err.contains("os error 28"),
        "error does not say the disk is full: {err}"
    );
    assert!(
        err.contains(&*root.to_string_lossy()),
        "error does not name a path in the root: {err}"
    );
    // The previous env is still current, complete and usable; the new one is nowhere.
    assert_eq!(
        fs_err::read_link(root.join("current")).unwrap(),
        current_before
    );
    assert_eq!(
        names_in(&root.join("envs")).len(),
        1,
        "{:?}",
        names_in(&root.join("envs"))
    );
    let verify = Command::new(unpack_bin())
        .args(["--verify", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let py = Command::new(root.join("bin/python3"))
        .args(["-c", "print(6*7)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "42");

    // With space again, the next run cleans up the failed attempt and succeeds.
    fs_err::remove_file(fs.path.join("filler")).unwrap();
    let third = unpack(&b.b, &root);
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert_ne!(
        fs_err::read_link(root.join("current")).unwrap(),
        current_before
    );
    let tmp_left = names_in(&root.join(".envpack/tmp"));
    assert!(
        tmp_left.is_empty(),
        "leftovers after the retry: {tmp_left:?}"
    );
}

#[test]
fn first_unpack_on_a_tiny_disk_leaves_no_env_and_no_current() {
    let b = built();
    let parent = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(parent.path(), "tiny", "16m") else {
        return;
    };
    let root = fs.path.join("root");
    let o = unpack(&b.a, &root);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("No space left on device") || err.contains("os error 28"),
        "{err}"
    );
    assert!(
        !root.join("current").exists(),
        "a current link on a failed first unpack"
    );
    assert!(
        names_in(&root.join("envs")).is_empty(),
        "{:?}",
        names_in(&root.join("envs"))
    );
    assert!(!root.join("bin/conan").exists());
}

#[test]
fn build_and_lock_on_a_full_disk_write_nothing_partial() {
    let b = built();
    let parent = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(parent.path(), "out", "8m") else {
        return;
    };
    // The artifact is about 22 MB: it cannot fit.
    let out = fs.path.join("dist");
    let o = envpack_in(&b.dir, b)
        .args(["build", "--offline", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success(), "a 22 MB artifact fit in 8 MB?");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("No space left on device") || err.contains("os error 28"),
        "{err}"
    );
    assert!(
        err.contains(&*fs.path.to_string_lossy()),
        "error does not name the path: {err}"
    );
    let left = names_in(&out);
    assert!(left.is_empty(), "partial output left behind: {left:?}");

    // A lock rewrite on a full disk keeps the old lock byte for byte.
    let spec_dir = fs.path.join("spec");
    copy_example(&spec_dir);
    fs_err::copy(
        b.dir.join("profiles/linux-gcc12"),
        spec_dir.join("profiles/linux-gcc12"),
    )
    .unwrap();
    // Make the relock produce different bytes (a changed profile), then fill the disk.
    let old_lock = fs_err::read(spec_dir.join("envpack.lock")).unwrap();
    let mut profile = fs_err::read_to_string(spec_dir.join("profiles/linux-gcc12")).unwrap();
    profile.push_str("\n[conf]\ntools.build:jobs=2\n");
    fs_err::write(spec_dir.join("profiles/linux-gcc12"), profile).unwrap();
    fs_err::remove_dir_all(&out).ok();
    fs.fill_leaving(0);
    let o = envpack_in(&spec_dir, b).args(["lock"]).output().unwrap();
    assert!(!o.status.success(), "a lock was written to a full disk");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("No space left on device") || err.contains("os error 28"),
        "{err}"
    );
    assert_eq!(
        fs_err::read(spec_dir.join("envpack.lock")).unwrap(),
        old_lock
    );
    let stray: Vec<String> = names_in(&spec_dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "temp files left: {stray:?}");
}
