//! Recipe revisions as Conan computes them. A revision is a hash over what Conan exports,
//! which its `exports`/`exports_sources` attributes (Python) and its post-export steps decide,
//! so envpack asks the very Conan the lock pins: installed from the lock's own wheels into a
//! scratch directory, run by the build host's CPython against a scratch index laid out exactly
//! as the env's, with no network remote configured.

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use super::{index_files, LOCAL_REMOTE};
use crate::lock::{LockedFile, LockedRecipe};
use envpack_net::Cache;
use envpack_pypkg::HostPython;

/// Runs Conan's command line with the arguments after `-c`.
const DRIVER: &str = "import sys\nfrom conan.cli.cli import main\nmain(sys.argv[1:])\n";

/// The revision of each of `recipes` (in their order), computed by the Conan installed from
/// `closure` (the lock's pins of conan and its dependencies).
pub fn recipe_revisions(
    recipes: &[LockedRecipe],
    host: &HostPython,
    closure: &[LockedFile],
    cache: &Cache,
) -> anyhow::Result<Vec<String>> {
    let scratch = cache.scratch_dir()?;
    let root = scratch.path();
    for f in index_files(recipes).map_err(|e| anyhow!(e))? {
        crate::assemble::write_generated(root, &f)?;
    }
    let env = root.join("conan-env");
    crate::sdist::install_build_env(&host.platform, &host.version, closure, &env, cache)
        .context("installing the lock's Conan to compute recipe revisions")?;
    let home = root.join("conan-home");
    fs_err::create_dir_all(&home)?;
    let remotes = serde_json::json!({"remotes": [{
        "name": LOCAL_REMOTE,
        "url": root.join(super::INDEX_DIR).to_string_lossy(),
        "verify_ssl": true,
        "remote_type": "local-recipes-index",
    }]});
    fs_err::write(home.join("remotes.json"), remotes.to_string())?;
    let site = env.join(host.platform.site_packages(host.py_minor));
    let mut out = Vec::new();
    for r in recipes {
        let pattern = format!("{}#*", r.reference);
        let output = conan_command(host, &site, &home, root)
            .args(["list", &pattern, "-r", LOCAL_REMOTE, "--format=json"])
            .output()
            .with_context(|| format!("running {}", host.exe.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "recipe {}: Conan could not list it: {}",
                r.reference,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let rev = revision_of(&stdout, &r.reference)
            .map_err(|e| anyhow!("recipe {} (from {}): {e}", r.reference, r.origin()))?;
        out.push(rev);
    }
    Ok(out)
}

/// A clean, pinned environment for the scratch Conan.
fn conan_command(host: &HostPython, site: &Path, home: &Path, scratch: &Path) -> Command {
    let mut cmd = Command::new(&host.exe);
    cmd.current_dir(scratch)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", scratch)
        .env("TMPDIR", scratch)
        .env("CONAN_HOME", home)
        .env("PYTHONPATH", site)
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .args(["-c", DRIVER]);
    cmd
}

/// The one revision `conan list REF#* --format=json` printed for `reference`, or the error
/// Conan reported (a recipe that doesn't load, a `python_requires` the index lacks).
pub(super) fn revision_of(json: &str, reference: &str) -> Result<String, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable output of conan list: {e}"))?;
    let remote = v
        .get(LOCAL_REMOTE)
        .ok_or("conan list printed no result for the env's recipes")?;
    if let Some(err) = remote.get("error").and_then(Value::as_str) {
        return Err(format!("Conan could not export it: {err}"));
    }
    let Some(found) = remote.get(reference) else {
        let listed: Vec<String> = remote
            .as_object()
            .map(|o| {
                o.keys()
                    .map(|k| format!("\"{}\"", envpack_layers::shown_name(k)))
                    .collect()
            })
            .unwrap_or_default();
        return Err(format!(
            "Conan lists {} instead; the recipe's name, version, user or channel differ from the spec's ref",
            listed.join(", ")
        ));
    };
    let revs = found
        .get("revisions")
        .and_then(Value::as_object)
        .ok_or("conan list printed no revisions")?;
    let mut keys = revs.keys();
    match (keys.next(), keys.next()) {
        (Some(rev), None) if rev.len() == 32 && rev.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(rev.clone())
        }
        _ => Err(format!(
            "conan list printed {} revisions, expected one",
            revs.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conan_list_output() {
        let ok = r#"{"envpack-recipes": {"tools/1.0": {"revisions": {"0378521c55c8c25e6acda795b7d70c7c": {"timestamp": 1.5}}}}}"#;
        assert_eq!(
            revision_of(ok, "tools/1.0").unwrap(),
            "0378521c55c8c25e6acda795b7d70c7c"
        );
        let other_user = ok.replace("tools/1.0", "tools/1.0@a/b");
        let cases = [
            (
                r#"{"envpack-recipes": {"error": "Cannot resolve python_requires 'x/1'"}}"#,
                "Conan could not export it: Cannot resolve python_requires 'x/1'",
            ),
            (other_user.as_str(), "Conan lists \"tools/1.0@a/b\" instead"),
            (r#"{"other": {}}"#, "printed no result"),
            ("not json", "unreadable output"),
            (
                r#"{"envpack-recipes": {"tools/1.0": {"revisions": {}}}}"#,
                "printed 0 revisions",
            ),
            (
                r#"{"envpack-recipes": {"tools/1.0": {"revisions": {"zz": {}}}}}"#,
                "printed 1 revisions",
            ),
        ];
        for (json, want) in cases {
            let e = revision_of(json, "tools/1.0").unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }
}
