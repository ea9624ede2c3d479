//! What a person sees: under a terminal a build draws a byte bar while it downloads; without
//! one it prints plain step lines; neither shows Rust's Debug text.

use super::*;

/// A copy of the shared cache (hard links) without the linux-x86_64 wheels, so a build has
/// something to download but no sdist to rebuild.
fn cache_missing_wheels(l: &Locked, name: &str) -> PathBuf {
    let copy = l.dir.join(name);
    let _ = fs_err::remove_dir_all(&copy);
    let st = Command::new("cp")
        .arg("-al")
        .arg(&l.cache)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let lock: toml::Value = toml::from_str(&l.lock_text).unwrap();
    let mut removed = 0;
    for p in lock["platform"].as_array().unwrap() {
        if p["name"].as_str() != Some("linux-x86_64") {
            continue;
        }
        for pkg in p["package"].as_array().unwrap() {
            if pkg["kind"].as_str() == Some("wheel") {
                let sha = pkg["sha256"].as_str().unwrap();
                let blob = copy.join("blobs/sha256").join(sha);
                if blob.exists() {
                    fs_err::remove_file(blob).unwrap();
                    removed += 1;
                }
            }
        }
    }
    assert!(removed > 3, "only {removed} wheels to download");
    copy
}

fn no_debug_text(out: &str) {
    assert!(
        !out.contains("Some(") && !out.contains(" {") && !out.contains("{ "),
        "{out}"
    );
}

#[test]
fn a_build_draws_a_byte_bar_on_a_terminal_and_plain_lines_elsewhere() {
    let l = locked();
    let cache = cache_missing_wheels(l, "progress-cache-tty");
    let dist = l.dir.join("progress-dist-tty");
    let cmd = format!(
        "{} --cache-dir {} build --platform linux-x86_64 --out {}",
        envpack_bin().display(),
        cache.display(),
        dist.display()
    );
    // `script` gives the build a pseudo-terminal; its output is what the terminal got.
    let tty = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .current_dir(&l.dir)
        .env("ENVPACK_INDEX_URL", &l.index.url)
        .env("ENVPACK_PYTHON_MIRROR", &l.mirror_url)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(screen.contains("downloading "), "{screen}");
    // The bar: its frame, bytes of the total, rate and ETA.
    assert!(screen.contains("] "), "{screen}");
    assert!(screen.contains("MiB ("), "{screen}");
    assert!(screen.contains("/s, ETA "), "{screen}");
    no_debug_text(&screen);

    let cache = cache_missing_wheels(l, "progress-cache-plain");
    let out = envpack(&l.dir, &cache, &l.index.url, &l.mirror_url)
        .args(["build", "--platform", "linux-x86_64", "--out"])
        .arg(l.dir.join("progress-dist-plain"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("envpack: downloading "), "{err}");
    for line in err.lines() {
        assert!(
            line.starts_with("envpack: ") || line.starts_with("warning: "),
            "not a plain line: {line:?}"
        );
    }
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err}");
    no_debug_text(&err);
    // The result is on stdout.
    let result = String::from_utf8_lossy(&out.stdout);
    assert!(result.starts_with("built "), "{result}");
}
