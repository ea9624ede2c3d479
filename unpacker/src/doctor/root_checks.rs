//! Checks of the root around the env: `current`, the shims, the state dir, the kept artifact.

use std::path::Path;

use envpack_layers::manifest::Manifest;

use crate::current_link::read_current;
use crate::doctor::finding::{Finding, FindingClass};
use crate::doctor::report::Check;
use crate::doctor::tool_checks::{remotes_of, remotes_text};
use crate::error::UnpackError;
use crate::kept_artifact::{artifact_manifest_bytes, kept_artifact_path, open_verified};
use crate::layout::RootLayout;
use crate::root_record::RootRecord;
use crate::shims::{
    activate_file_name, env_programs, is_shim, manifest_programs, plan_shims, program_shim,
    ShimStyle,
};
use crate::state_seed::CONAN_HOME_TEMPLATE;

/// Check `root.current`; also returns the env to examine (the record's current, else the
/// link's). Errors when the root has no env at all.
pub fn check_current(layout: &RootLayout) -> Result<(Check, String), UnpackError> {
    const ID: &str = "root.current";
    let record = RootRecord::load(&layout.record_file())?;
    let link = read_current(layout);
    let (link_id, link_problem) = match link {
        Ok(id) => (id, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let announced = link_id.is_some() && record.switching_to == link_id;
    let env_id = match (&record.current, &link_id) {
        // The switch was announced and made; only its record is missing.
        (_, Some(l)) if announced => l.clone(),
        (Some(r), _) => r.clone(),
        (None, Some(l)) => l.clone(),
        (None, None) => {
            return Err(UnpackError::NoCurrent {
                root: layout.root.clone(),
            })
        }
    };
    let evidence = format!(
        "root.json records current {}; current -> {}",
        record
            .current
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), |r| format!("envs/{r}")),
        link_id
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), |l| format!("envs/{l}"))
    );
    let finding = match (&record.current, &link_id, link_problem) {
        (_, _, Some(problem)) => Some(problem),
        _ if announced => None,
        (Some(r), Some(l), _) if r != l => Some(format!(
            "current points at envs/{l} but root.json records {r}"
        )),
        (Some(r), None, _) => Some(format!("current is missing; root.json records {r}")),
        (None, Some(l), _) => Some(format!(
            "root.json records no current env but current points at envs/{l}"
        )),
        _ => None,
    };
    let findings = finding
        .map(|d| Finding::at(FindingClass::SwitchedCurrent, "current", d))
        .into_iter()
        .collect();
    Ok((Check::from_findings(ID, evidence, findings), env_id))
}

/// The programs in the env's `bin/`, from the manifest when there is one (so a damaged
/// `bin/` does not shrink the list), else from disk.
fn programs(env_dir: &Path, manifest: Option<&Manifest>) -> Result<Vec<String>, UnpackError> {
    match manifest {
        Some(m) => Ok(manifest_programs(&m.entries, ShimStyle::native())),
        None => env_programs(env_dir),
    }
}

/// Check `root.shims`: every shim the env needs is there, is ours and has the right text.
pub fn check_shims(
    layout: &RootLayout,
    env_id: &str,
    manifest: Option<&Manifest>,
) -> Result<Check, UnpackError> {
    const ID: &str = "root.shims";
    let env_dir = layout.env_dir(env_id);
    if !env_dir.is_dir() {
        return Ok(Check::skip(
            ID,
            "the env directory is missing (see env.tree)",
        ));
    }
    let style = ShimStyle::native();
    let mut expected: Vec<(String, Option<String>)> =
        plan_shims(&programs(&env_dir, manifest)?, style)
            .into_iter()
            .map(|p| (p.file_name, Some(program_shim(&p.target, style))))
            .collect();
    // The activate shim embeds the root's path as a fallback, which changes when a root is
    // moved; being ours is enough for it.
    expected.push((activate_file_name(style).to_owned(), None));
    let mut findings = Vec::new();
    for (name, text) in &expected {
        let rel = format!("bin/{name}");
        let path = layout.bin_dir().join(name);
        if !path.is_file() {
            findings.push(Finding::at(
                FindingClass::MissingShim,
                rel,
                "shim is missing",
            ));
        } else if !is_shim(&path)? {
            findings.push(Finding::at(
                FindingClass::ForeignShim,
                rel,
                "a file that is not an envpack shim has this name; it is left alone",
            ));
        } else if text
            .as_ref()
            .is_some_and(|t| fs_err::read(&path).ok().as_deref() != Some(t.as_bytes()))
        {
            findings.push(Finding::at(
                FindingClass::CorruptedShim,
                rel,
                "text differs from the shim the unpacker writes",
            ));
        } else if !is_executable(&path)? {
            findings.push(Finding::at(
                FindingClass::CorruptedShim,
                rel,
                "not executable",
            ));
        }
    }
    let evidence = format!(
        "{} shims expected in {}",
        expected.len(),
        layout.bin_dir().display()
    );
    Ok(Check::from_findings(ID, evidence, findings))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs_err::metadata(path)?.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> std::io::Result<bool> {
    Ok(true)
}

/// Check `state.conan_home`: the writable CONAN_HOME exists and still holds every file the
/// template seeded, with the pinned remotes. Other edits are the user's and not flagged.
pub fn check_state(layout: &RootLayout, env_id: &str) -> Result<Check, UnpackError> {
    const ID: &str = "state.conan_home";
    let home = layout.conan_home(env_id);
    let rel_home = format!("state/{env_id}/conan-home");
    let template = layout.env_dir(env_id).join(CONAN_HOME_TEMPLATE);
    if !template.is_dir() {
        return Ok(Check::skip(
            ID,
            "the env has no conan-home template (see env.tree)",
        ));
    }
    match fs_err::symlink_metadata(&home) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Check::from_findings(
                ID,
                format!("{} does not exist", home.display()),
                vec![Finding::at(
                    FindingClass::MissingState,
                    rel_home,
                    "state dir is missing",
                )],
            ))
        }
        Err(e) => return Err(e.into()),
        Ok(m) if !m.is_dir() => {
            return Ok(Check::from_findings(
                ID,
                format!("{} is not a directory", home.display()),
                vec![Finding::at(
                    FindingClass::StaleState,
                    rel_home,
                    "not a directory",
                )],
            ))
        }
        Ok(_) => {}
    }
    let mut files = Vec::new();
    template_files(&template, "", &mut files)?;
    let mut findings = Vec::new();
    for rel in &files {
        if !home.join(rel).exists() {
            findings.push(Finding::at(
                FindingClass::StaleState,
                format!("{rel_home}/{rel}"),
                "seeded from the template but now missing",
            ));
        }
    }
    let env_dir = std::path::absolute(layout.env_dir(env_id))?;
    let remotes = (
        fs_err::read(template.join("remotes.json"))
            .map(|b| crate::state_seed::resolve_local_remotes(&b, &env_dir).unwrap_or(b)),
        fs_err::read(home.join("remotes.json")),
    );
    if let (Ok(want), Ok(got)) = remotes {
        match (remotes_of(&want), remotes_of(&got)) {
            (Ok(w), Ok(g)) if w != g => findings.push(Finding::at(
                FindingClass::StaleState,
                format!("{rel_home}/remotes.json"),
                format!(
                    "remotes {} differ from the pinned {}",
                    remotes_text(&g),
                    remotes_text(&w)
                ),
            )),
            (Ok(_), Err(e)) => findings.push(Finding::at(
                FindingClass::StaleState,
                format!("{rel_home}/remotes.json"),
                format!("unreadable: {e}"),
            )),
            _ => {}
        }
    }
    let evidence = format!(
        "{} holds the {} files of the template: {} problems",
        home.display(),
        files.len(),
        findings.len()
    );
    Ok(Check::from_findings(ID, evidence, findings))
}

/// Relative paths ('/'-separated) of the files below `dir`.
fn template_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs_err::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if e.file_type()?.is_dir() {
            template_files(&e.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Check `state.writable`: a file can be created (and is removed again) in the state dir.
pub fn check_state_writable(layout: &RootLayout, env_id: &str) -> Check {
    const ID: &str = "state.writable";
    let home = layout.conan_home(env_id);
    if !home.is_dir() {
        return Check::skip(ID, "the state dir is missing (see state.conan_home)");
    }
    let probe = home.join(format!(".envpack-doctor-probe-{}", std::process::id()));
    // A new file only (O_EXCL): the name is predictable, and a link planted under it in the
    // writable state dir must not have doctor write through it.
    let result = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"probe"))
        .and_then(|()| fs_err::remove_file(&probe));
    match result {
        Ok(()) => Check::pass(
            ID,
            format!("created and removed a file in {}", home.display()),
        ),
        Err(e) => Check::from_findings(
            ID,
            format!("cannot write in {}", home.display()),
            vec![Finding::at(
                FindingClass::StateNotWritable,
                format!("state/{env_id}/conan-home"),
                e.to_string(),
            )],
        ),
    }
}

/// Check `root.trust`: which keys the root requires, and who signed the current env.
pub fn check_trust(layout: &RootLayout, env_id: &str) -> Check {
    const ID: &str = "root.trust";
    let trust = match crate::root_trust::RootTrust::read(&layout.root) {
        Ok(t) => t,
        Err(e) => {
            return Check::from_findings(
                ID,
                "the trust record cannot be read",
                vec![Finding::at(
                    FindingClass::UnsignedCurrent,
                    ".envpack/trust.json",
                    e.to_string(),
                )],
            )
        }
    };
    let policy = match trust.required() {
        Ok(keys) if !keys.is_empty() => format!(
            "requires signatures by key {}",
            keys.keys()
                .iter()
                .map(|k| k.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "requires no signature (checked only with --trust)".to_owned(),
    };
    let signed = trust
        .envs
        .get(env_id)
        .and_then(|e| e.key_id.as_ref().map(|k| (k, e.signed_at)));
    let current = match signed {
        Some((key, at)) => format!(
            "current env signed by key {key}{}",
            at.map_or(String::new(), |t| format!(" at {t}"))
        ),
        None => "current env unpacked without a signature check".to_owned(),
    };
    let evidence = format!("{policy}; {current}");
    if trust.required_keys.is_empty() || signed.is_some() {
        Check::pass(ID, evidence)
    } else {
        Check::from_findings(
            ID,
            evidence,
            vec![Finding::general(
                FindingClass::UnsignedCurrent,
                format!("{env_id} is current but no signature of it was checked; unpack a signed artifact"),
            )],
        )
    }
}

/// Check `artifact.kept`: the kept artifact is there and verifies; returns its manifest bytes.
pub fn check_artifact(layout: &RootLayout, env_id: &str) -> (Check, Option<Vec<u8>>) {
    const ID: &str = "artifact.kept";
    let path = kept_artifact_path(layout, env_id);
    let rel = format!(".envpack/artifacts/{env_id}.envpack.tar");
    let verified = open_verified(&path, env_id, &layout.root)
        .and_then(|r| artifact_manifest_bytes(&r).map_err(|e| e.to_string()));
    match verified {
        Ok(bytes) => (
            Check::pass(
                ID,
                format!("{} verified: every layer digest matches", path.display()),
            ),
            Some(bytes),
        ),
        Err(e) => (
            Check::from_findings(
                ID,
                format!("repair needs this copy, or --artifact FILE: {e}"),
                vec![Finding::at(FindingClass::MissingArtifact, rel, e)],
            ),
            None,
        ),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_write_probe_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(&dir.path().join("root"));
        let home = layout.conan_home("e");
        fs_err::create_dir_all(&home).unwrap();
        let victim = dir.path().join("victim.txt");
        fs_err::write(&victim, "precious\n").unwrap();
        let probe = home.join(format!(".envpack-doctor-probe-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &probe).unwrap();
        let check = check_state_writable(&layout, "e");
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "precious\n");
        assert!(fs_err::symlink_metadata(&probe)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!check.findings.is_empty());
        fs_err::remove_file(&probe).unwrap();
        assert!(check_state_writable(&layout, "e").findings.is_empty());
    }
}
