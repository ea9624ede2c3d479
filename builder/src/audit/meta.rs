//! The files of an env's meta layer (`envpack.lock`, `envpack.json`, the SBOMs) checked
//! against each other and against an external lock: same lock bytes, same platform and
//! versions, SBOMs exactly the ones the lock gives.

use std::collections::BTreeMap;

use envpack_layers::digest::Sha256Digest;
use serde_json::Value;

use super::report::AuditReport;
use crate::lock::{Lock, LockedPackage, LockedPlatform, PackageKind};
use crate::sbom::{licenses_from_cyclonedx, SbomFormat, SbomInputs, SbomModel};

/// The meta files of one env, as found (absent ones are findings).
#[derive(Debug, Clone, Default)]
pub struct MetaFiles {
    /// Where they come from (`artifact x.tar`, `root /r`), for findings.
    pub origin: String,
    /// `envpack.lock`.
    pub lock: Option<Vec<u8>>,
    /// `envpack.json`.
    pub info: Option<Vec<u8>>,
    /// `sbom.cdx.json`.
    pub cdx: Option<Vec<u8>>,
    /// `sbom.spdx.json`.
    pub spdx: Option<Vec<u8>>,
    /// `manifest`.
    pub manifest: Option<Vec<u8>>,
}

impl MetaFiles {
    /// Stores the bytes of a tree-root file by name; other names are ignored.
    pub fn put(&mut self, name: &str, bytes: Vec<u8>) {
        match name {
            "envpack.lock" => self.lock = Some(bytes),
            "envpack.json" => self.info = Some(bytes),
            crate::sbom::CDX_FILE => self.cdx = Some(bytes),
            crate::sbom::SPDX_FILE => self.spdx = Some(bytes),
            "manifest" => self.manifest = Some(bytes),
            _ => {}
        }
    }

    /// Whether `name` is one of the files gathered here.
    pub fn wants(name: &str) -> bool {
        matches!(
            name,
            "envpack.lock"
                | "envpack.json"
                | "manifest"
                | crate::sbom::CDX_FILE
                | crate::sbom::SPDX_FILE
        )
    }
}

/// What the meta files say, for callers that check more (layer digests, env id).
#[derive(Debug, Clone, Default)]
pub struct MetaFacts {
    /// Platform named by `envpack.json`.
    pub platform: Option<String>,
    /// `envpack.json` parsed.
    pub info: Option<Value>,
    /// The tree's lock, parsed.
    pub lock: Option<Lock>,
}

/// Checks the meta files; `external` is a lock given on the command line.
pub fn check_meta(m: &MetaFiles, external: Option<&Lock>) -> (AuditReport, MetaFacts) {
    let mut r = AuditReport::new(m.origin.clone());
    let mut facts = MetaFacts::default();
    let at = |f: &str| format!("{} {f}", m.origin);
    let (Some(lock_bytes), Some(info_bytes)) = (&m.lock, &m.info) else {
        r.find(at("meta"), "envpack.lock or envpack.json is missing");
        return (r, facts);
    };
    r.checked += 2;
    let info: Value = match serde_json::from_slice(info_bytes) {
        Ok(v) => v,
        Err(e) => {
            r.find(at("envpack.json"), format!("not JSON: {e}"));
            return (r, facts);
        }
    };
    let lock_sha = Sha256Digest::of_bytes(lock_bytes).to_string();
    if info["lock_sha256"].as_str() != Some(lock_sha.as_str()) {
        r.find(
            at("envpack.json"),
            format!(
                "lock_sha256 is {}, but the tree's envpack.lock hashes to {lock_sha}",
                info["lock_sha256"]
            ),
        );
    }
    let lock = match std::str::from_utf8(lock_bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| Lock::parse(t, &at("envpack.lock")).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(e) => {
            r.find(at("envpack.lock"), e);
            return (r, facts);
        }
    };
    if let Some(bytes) = &m.manifest {
        match envpack_layers::manifest::Manifest::parse(bytes) {
            Ok(manifest) => r.merge(super::conan::conan_files_in_manifest(
                &manifest, &lock, &m.origin,
            )),
            Err(e) => r.find(at("manifest"), e.to_string()),
        }
    }
    let platform = info["platform"].as_str().unwrap_or_default().to_string();
    facts.platform = Some(platform.clone());
    facts.info = Some(info.clone());
    let Some(locked) = lock.platform(&platform) else {
        r.find(
            at("envpack.json"),
            format!(
                "platform \"{}\" is not in the tree's lock",
                envpack_layers::shown_name(&platform)
            ),
        );
        return (r, facts);
    };
    for (key, want) in [
        ("version", &lock.python.version),
        ("build", &lock.python.build),
    ] {
        if info["python"][key].as_str() != Some(want.as_str()) {
            r.find(
                at("envpack.json"),
                format!(
                    "python.{key} is {}, the lock pins {want}",
                    info["python"][key]
                ),
            );
        }
    }
    let want_target = match (&locked.glibc, &locked.macos) {
        (Some(v), _) => serde_json::json!({ "glibc": v }),
        (None, Some(v)) => serde_json::json!({ "macos": v }),
        (None, None) => Value::Null,
    };
    if info["target"] != want_target {
        r.find(
            at("envpack.json"),
            format!(
                "target is {}, the lock records {want_target}",
                info["target"]
            ),
        );
    }
    if info["name"].as_str() != Some(lock.name.as_str()) {
        r.find(
            at("envpack.json"),
            format!("name is {}, the lock says {}", info["name"], lock.name),
        );
    }
    let tool = info["envpack_version"]
        .as_str()
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    check_sboms(&mut r, m, &lock, locked, tool);
    if let Some(ext) = external {
        compare_locks(&mut r, &lock, ext, &platform);
    }
    facts.lock = Some(lock);
    (r, facts)
}

/// Each SBOM must be exactly the one the tree's lock gives (licenses are the only input
/// besides the lock; they are taken from the CycloneDX document itself).
fn check_sboms(
    r: &mut AuditReport,
    m: &MetaFiles,
    lock: &Lock,
    locked: &LockedPlatform,
    tool_version: &str,
) {
    let licenses = match m
        .cdx
        .as_deref()
        .map(|b| licenses_from_cyclonedx(b, crate::sbom::CDX_FILE))
    {
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            r.find(
                format!("{} {}", m.origin, crate::sbom::CDX_FILE),
                e.to_string(),
            );
            Default::default()
        }
        None => Default::default(),
    };
    let model = SbomModel::from_inputs(&SbomInputs {
        lock,
        platform: locked,
        tool_version,
        licenses: &licenses,
    });
    for (format, found) in [(SbomFormat::CycloneDx, &m.cdx), (SbomFormat::Spdx, &m.spdx)] {
        let item = format!("{} {}", m.origin, format.tree_file());
        r.checked += 1;
        let Some(found) = found else {
            r.find(item, "missing");
            continue;
        };
        let want = match format.render(&model) {
            Ok(w) => w,
            Err(e) => {
                r.find(item, e.to_string());
                continue;
            }
        };
        if *found != want {
            for d in sbom_differences(format, &want, found) {
                r.find(item.clone(), d);
            }
        }
    }
}

/// Item-level differences between the expected and the found SBOM (components by
/// `bom-ref`, packages by `SPDXID`), else a document-level one.
pub fn sbom_differences(format: SbomFormat, want: &[u8], found: &[u8]) -> Vec<String> {
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    let (Some(w), Some(f)) = (parse(want), parse(found)) else {
        return vec!["not valid JSON".into()];
    };
    let (list, key) = match format {
        SbomFormat::CycloneDx => ("components", "bom-ref"),
        SbomFormat::Spdx => ("packages", "SPDXID"),
    };
    let index = |v: &Value| -> BTreeMap<String, Value> {
        v[list]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| (c[key].as_str().unwrap_or_default().to_string(), c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (wi, fi) = (index(&w), index(&f));
    let mut out = Vec::new();
    for (k, wv) in &wi {
        match fi.get(k) {
            None => out.push(format!("{k} is missing (the lock pins it)")),
            Some(fv) if fv != wv => out.push(format!(
                "{k} differs from the lock: expected {wv}, found {fv}"
            )),
            Some(_) => {}
        }
    }
    for k in fi.keys().filter(|k| !wi.contains_key(*k)) {
        out.push(format!("{k} is listed but not in the lock"));
    }
    if out.is_empty() {
        out.push(
            "differs from the SBOM the lock gives (document metadata or relationships)".into(),
        );
    }
    out
}

/// Entry-by-entry comparison of the tree's lock with an external one, for `platform`.
fn compare_locks(r: &mut AuditReport, tree: &Lock, ext: &Lock, platform: &str) {
    r.checked += 1;
    if tree.spec_hash != ext.spec_hash {
        r.find(
            "lock entry spec-hash",
            format!(
                "the tree's lock has {}, the given lock {}",
                tree.spec_hash, ext.spec_hash
            ),
        );
    }
    if tree.python != ext.python {
        r.find(
            "lock entry [python]",
            "CPython release differs between the tree's lock and the given lock",
        );
    }
    if tree.conan_remotes != ext.conan_remotes {
        r.find(
            "lock entry conan-remote",
            "Conan remotes differ between the tree's lock and the given lock",
        );
    }
    compare_conan_content(r, tree, ext);
    let (Some(t), Some(e)) = (tree.platform(platform), ext.platform(platform)) else {
        r.find(
            format!("lock entry platform {platform}"),
            "not in the given lock",
        );
        return;
    };
    if t.python != e.python {
        r.find(
            format!("lock entry {platform} python ({})", e.python.filename),
            format!(
                "tree has sha256 {}, the given lock {}",
                t.python.sha256, e.python.sha256
            ),
        );
    }
    for ep in &e.packages {
        let item = format!(
            "lock entry {platform} package {} ({})",
            ep.name, ep.filename
        );
        match t.packages.iter().find(|tp| tp.name == ep.name) {
            None => r.find(item, "in the given lock but not in the tree"),
            Some(tp) if tp.sha256 != ep.sha256 => r.find(
                item,
                format!("sha256: tree {}, given lock {}", tp.sha256, ep.sha256),
            ),
            Some(tp) if tp != ep => {
                r.find(item, format!("differs: {}", package_differences(tp, ep)))
            }
            Some(_) => {}
        }
    }
    for tp in t
        .packages
        .iter()
        .filter(|tp| !e.packages.iter().any(|ep| ep.name == tp.name))
    {
        r.find(
            format!(
                "lock entry {platform} package {} ({})",
                tp.name, tp.filename
            ),
            "in the tree but not in the given lock",
        );
    }
    for (what, tf, ef) in [
        ("profile", &t.profiles, &e.profiles),
        ("home-file", &t.home_files, &e.home_files),
    ] {
        if tf != ef {
            r.find(
                format!("lock entry {platform} {what}"),
                "Conan files differ between the tree's lock and the given lock",
            );
        }
    }
}

/// Recipes by reference (revision, then files) and sources by URL, between the two locks.
fn compare_conan_content(r: &mut AuditReport, tree: &Lock, ext: &Lock) {
    for e in &ext.conan_recipes {
        let item = format!("lock entry conan-recipe {}", e.reference);
        match tree
            .conan_recipes
            .iter()
            .find(|t| t.reference == e.reference)
        {
            None => r.find(item, "in the given lock but not in the tree"),
            Some(t) if t.revision != e.revision => r.find(
                item,
                format!("revision: tree {}, given lock {}", t.revision, e.revision),
            ),
            Some(t) if t != e => r.find(item, "same revision, other files or origin"),
            Some(_) => {}
        }
    }
    for t in &tree.conan_recipes {
        if !ext.conan_recipes.iter().any(|e| e.reference == t.reference) {
            r.find(
                format!("lock entry conan-recipe {}", t.reference),
                "in the tree but not in the given lock",
            );
        }
    }
    if tree.conan_sources != ext.conan_sources {
        r.find(
            "lock entry conan-source",
            "Conan sources differ between the tree's lock and the given lock",
        );
    }
}

/// The fields in which two pins of one package differ (sha256 aside, compared first), as
/// `field: tree X, given lock Y`, `; `-separated.
fn package_differences(tree: &LockedPackage, given: &LockedPackage) -> String {
    let kind = |k: PackageKind| match k {
        PackageKind::Wheel => "wheel".to_string(),
        PackageKind::Sdist => "sdist".to_string(),
    };
    let built = |b: &LockedPackage| {
        b.built_wheel.as_ref().map_or_else(
            || "none".to_string(),
            |w| format!("{} (sha256 {}, {} bytes)", w.filename, w.sha256, w.size),
        )
    };
    let list = |l: &[String]| {
        if l.is_empty() {
            "none".to_string()
        } else {
            l.join(", ")
        }
    };
    let fields = [
        ("version", tree.version.clone(), given.version.clone()),
        ("filename", tree.filename.clone(), given.filename.clone()),
        ("size", tree.size.to_string(), given.size.to_string()),
        ("kind", kind(tree.kind), kind(given.kind)),
        ("built-wheel", built(tree), built(given)),
        (
            "build-requires",
            list(&tree.build_requires),
            list(&given.build_requires),
        ),
        (
            "dependencies",
            list(&tree.dependencies),
            list(&given.dependencies),
        ),
    ];
    let differing: Vec<String> = fields
        .into_iter()
        .filter(|(_, t, g)| t != g)
        .map(|(field, t, g)| format!("{field}: tree {t}, given lock {g}"))
        .collect();
    differing.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::model::tests::sample_lock;
    use crate::sbom::{documents, Licenses};

    fn meta_of(lock: &Lock) -> MetaFiles {
        let text = lock.to_toml();
        let docs = documents(&SbomInputs {
            lock,
            platform: &lock.platforms[0],
            tool_version: env!("CARGO_PKG_VERSION"),
            licenses: &Licenses::new(),
        })
        .unwrap();
        let info = serde_json::json!({
            "name": lock.name, "platform": "linux-x86_64",
            "python": {"version": lock.python.version, "build": lock.python.build},
            "lock_sha256": Sha256Digest::of_bytes(text.as_bytes()).to_string(),
        });
        MetaFiles {
            origin: "root /r".into(),
            lock: Some(text.into_bytes()),
            info: Some(serde_json::to_vec(&info).unwrap()),
            cdx: Some(docs[0].1.clone()),
            spdx: Some(docs[1].1.clone()),
            manifest: None,
        }
    }

    #[test]
    fn consistent_meta_is_clean() {
        let lock = sample_lock();
        let (r, facts) = check_meta(&meta_of(&lock), Some(&lock));
        assert!(r.is_clean(), "{:?}", r.findings);
        assert_eq!(facts.platform.as_deref(), Some("linux-x86_64"));
    }

    #[test]
    fn envpack_json_target_must_match_the_lock() {
        let mut lock = sample_lock();
        lock.version = 2;
        lock.platforms[0].glibc = Some("2.28".into());
        let m = meta_of(&lock);
        let (r, _) = check_meta(&m, None);
        let text = r.to_text();
        assert!(
            text.contains("target is null, the lock records {\"glibc\":\"2.28\"}"),
            "{text}"
        );
        let mut info: Value = serde_json::from_slice(m.info.as_deref().unwrap()).unwrap();
        info["target"] = serde_json::json!({"glibc": "2.28"});
        let fixed = MetaFiles {
            info: Some(serde_json::to_vec(&info).unwrap()),
            ..m
        };
        let (r, _) = check_meta(&fixed, None);
        assert!(r.is_clean(), "{:?}", r.findings);
    }

    #[test]
    fn tampered_sbom_and_external_lock_are_named() {
        let lock = sample_lock();
        let mut m = meta_of(&lock);
        let cdx = String::from_utf8(m.cdx.take().unwrap()).unwrap();
        m.cdx = Some(cdx.replace(&"07".repeat(32), &"70".repeat(32)).into_bytes());
        let mut ext = lock.clone();
        ext.platforms[0].packages[0].sha256 = Sha256Digest([9; 32]);
        let (r, _) = check_meta(&m, Some(&ext));
        let text = r.to_text();
        assert!(
            text.contains("sbom.cdx.json: pkg:pypi/pyyaml@6.0.2 differs"),
            "{text}"
        );
        assert!(
            text.contains("lock entry linux-x86_64 package pyyaml (PyYAML-6.0.2"),
            "{text}"
        );
    }
}
