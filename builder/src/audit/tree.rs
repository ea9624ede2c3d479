//! `envpack audit --root DIR`: an unpacked env (a root's current env, or an env directory)
//! re-hashed against its manifest, and its meta files checked against its lock.

use std::path::{Path, PathBuf};

use envpack_layers::manifest::Manifest;
use envpack_layers::verify::verify_tree;

use super::meta::{check_meta, MetaFiles};
use super::report::AuditReport;
use crate::lock::Lock;

/// Name of the manifest file at an env's root.
const MANIFEST_FILE: &str = "manifest";

/// The env directory of `dir`: itself when it holds a manifest, else the env `current`
/// points at (a root made by the unpacker).
pub fn env_dir_of(dir: &Path) -> std::io::Result<PathBuf> {
    if dir.join(MANIFEST_FILE).is_file() {
        return Ok(dir.to_path_buf());
    }
    let current = dir.join("current");
    let target = fs_err::read_link(&current)?;
    Ok(if target.is_absolute() {
        target
    } else {
        dir.join(target)
    })
}

/// Audits the env at `dir` (root or env dir) against its manifest and lock.
pub fn audit_tree(dir: &Path, external: Option<&Lock>) -> AuditReport {
    let mut r = AuditReport::new(format!("root {}", dir.display()));
    let env = match env_dir_of(dir) {
        Ok(e) => e,
        Err(e) => {
            r.find(
                format!("root {}", dir.display()),
                format!("neither an env dir (no manifest) nor a root with a current env: {e}"),
            );
            return r;
        }
    };
    let manifest = match fs_err::read(env.join(MANIFEST_FILE))
        .map_err(|e| e.to_string())
        .and_then(|b| Manifest::parse(&b).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => {
            r.find(format!("{} manifest", env.display()), e);
            return r;
        }
    };
    match verify_tree(&env, &manifest, &[MANIFEST_FILE]) {
        Ok(diffs) => {
            for d in diffs {
                r.find(
                    format!("tree {}: {}", env.display(), d.path()),
                    d.to_string(),
                );
            }
        }
        Err(e) => r.find(format!("tree {}", env.display()), e.to_string()),
    }
    r.checked += manifest.entries.len();
    let mut meta = MetaFiles {
        origin: format!("tree {}", env.display()),
        ..MetaFiles::default()
    };
    for name in [
        "envpack.lock",
        "envpack.json",
        "manifest",
        crate::sbom::CDX_FILE,
        crate::sbom::SPDX_FILE,
    ] {
        if let Ok(bytes) = fs_err::read(env.join(name)) {
            meta.put(name, bytes);
        }
    }
    let (m, _) = check_meta(&meta, external);
    r.merge(m);
    r
}
