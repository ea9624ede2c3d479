//! The image's small "root" layer: what `envpack-unpack` would add around an env in a root
//! (`current` link, `bin/` shims, the seeded writable state dir), plus the `envs/<env-id>` link
//! to the env's stable directory (see [`super::env_slot`]).

use std::path::Path;

use envpack_layers::tree::{EntryKind, TreeEntry};
use envpack_unpack::shims::{
    activate_file_name, activate_shim, manifest_programs, plan_shims, program_shim, ShimStyle,
};
use envpack_unpack::state_seed::{resolve_local_remotes, CONAN_HOME_TEMPLATE, REMOTES_FILE};

use envpack_oci::Result;

/// Where the env's CONAN_HOME template entry `path` goes in the root (under the state dir
/// named like the env's directory, which is where its launchers look), or `None` if it is not
/// part of the template.
pub fn state_path(path: &str, slot: &str) -> Option<String> {
    let rest = path.strip_prefix(CONAN_HOME_TEMPLATE)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(format!("state/{slot}/{CONAN_HOME_TEMPLATE}{rest}"))
}

/// Writes the root layer's files into `work` (copying the Conan template from `staging`) and
/// returns the layer's entries, relative to the image root `image_root` (an absolute path in
/// the image, used by the activate shim). The env's files live in `envs/<slot>`.
pub fn root_layer_entries(
    work: &Path,
    staging: &Path,
    env_entries: &[TreeEntry],
    env_id: &str,
    slot: &str,
    image_root: &str,
) -> Result<Vec<TreeEntry>> {
    let style = ShimStyle::Posix;
    let mut entries = vec![TreeEntry {
        path: "current".into(),
        kind: EntryKind::Symlink {
            target: format!("envs/{env_id}"),
        },
    }];
    if env_id != slot {
        entries.push(TreeEntry {
            path: format!("envs/{env_id}"),
            kind: EntryKind::Symlink {
                target: slot.to_string(),
            },
        });
    }
    let mut scripts: Vec<(String, String, bool)> =
        plan_shims(&manifest_programs(env_entries, style), style)
            .into_iter()
            .map(|p| (p.file_name, program_shim(&p.target, style), true))
            .collect();
    scripts.push((
        activate_file_name(style).to_string(),
        activate_shim(Path::new(image_root), style),
        false,
    ));
    fs_err::create_dir_all(work.join("bin"))?;
    for (name, script, executable) in scripts {
        let rel = format!("bin/{name}");
        fs_err::write(work.join("bin").join(&name), script.as_bytes())?;
        entries.push(TreeEntry::file_from_bytes(
            &rel,
            script.as_bytes(),
            executable,
        ));
    }
    for e in env_entries {
        let Some(dest) = state_path(&e.path, slot) else {
            continue;
        };
        if e.path == format!("{CONAN_HOME_TEMPLATE}/{REMOTES_FILE}") {
            if let EntryKind::File { executable, .. } = e.kind {
                let mut from = staging.to_path_buf();
                from.extend(e.path.split('/'));
                let env_dir = Path::new(image_root).join("envs").join(slot);
                let bytes =
                    resolve_local_remotes(&fs_err::read(&from)?, &env_dir).map_err(|detail| {
                        envpack_oci::OciError::BadDocument {
                            what: e.path.clone(),
                            detail,
                        }
                    })?;
                let mut to = work.to_path_buf();
                to.extend(dest.split('/'));
                if let Some(parent) = to.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                fs_err::write(&to, &bytes)?;
                entries.push(TreeEntry::file_from_bytes(&dest, &bytes, executable));
                continue;
            }
        }
        if let EntryKind::File { .. } = e.kind {
            let mut from = staging.to_path_buf();
            from.extend(e.path.split('/'));
            let mut to = work.to_path_buf();
            to.extend(dest.split('/'));
            if let Some(parent) = to.parent() {
                fs_err::create_dir_all(parent)?;
            }
            fs_err::copy(&from, &to)?;
        }
        entries.push(TreeEntry {
            path: dest,
            kind: e.kind.clone(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8], executable: bool) -> TreeEntry {
        TreeEntry::file_from_bytes(path, data, executable)
    }

    #[test]
    fn programs_and_state_paths() {
        let entries = [
            file("bin/python3", b"", true),
            file("bin/conan", b"", true),
            file("bin/sub/x", b"", true),
            TreeEntry {
                path: "bin".into(),
                kind: EntryKind::Dir,
            },
            file("activate", b"", false),
        ];
        assert_eq!(
            manifest_programs(&entries, ShimStyle::Posix),
            ["conan", "python3"]
        );
        assert_eq!(
            state_path("conan-home/profiles/default", "dev-linux").as_deref(),
            Some("state/dev-linux/conan-home/profiles/default")
        );
        assert_eq!(
            state_path("conan-home", "e").as_deref(),
            Some("state/e/conan-home")
        );
        assert_eq!(state_path("conan-homework", "e"), None);
        assert_eq!(state_path("bin/conan", "e"), None);
    }

    #[test]
    fn root_layer_has_link_shims_and_seeded_state() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("env");
        fs_err::create_dir_all(staging.join("conan-home/profiles")).unwrap();
        fs_err::write(staging.join("conan-home/profiles/default"), b"[settings]\n").unwrap();
        let work = dir.path().join("work");
        let env_entries = [
            // Shims come only from a `bin` the manifest lists as a real directory.
            TreeEntry {
                path: "bin".into(),
                kind: EntryKind::Dir,
            },
            file("bin/conan", b"", true),
            TreeEntry {
                path: "conan-home".into(),
                kind: EntryKind::Dir,
            },
            TreeEntry {
                path: "conan-home/profiles".into(),
                kind: EntryKind::Dir,
            },
            file("conan-home/profiles/default", b"[settings]\n", false),
        ];
        let entries = root_layer_entries(
            &work,
            &staging,
            &env_entries,
            "id1",
            "slot",
            "/opt/envpack/dev",
        )
        .unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "current",
                "envs/id1",
                "bin/conan",
                "bin/activate",
                "state/slot/conan-home",
                "state/slot/conan-home/profiles",
                "state/slot/conan-home/profiles/default"
            ]
        );
        assert_eq!(
            entries[0].kind,
            EntryKind::Symlink {
                target: "envs/id1".into()
            }
        );
        assert_eq!(
            entries[1].kind,
            EntryKind::Symlink {
                target: "slot".into()
            }
        );
        let shim = fs_err::read_to_string(work.join("bin/conan")).unwrap();
        assert!(shim.contains("current/bin/"), "{shim}");
        assert!(fs_err::read_to_string(work.join("bin/activate"))
            .unwrap()
            .contains("/opt/envpack/dev"));
        assert_eq!(
            fs_err::read(work.join("state/slot/conan-home/profiles/default")).unwrap(),
            b"[settings]\n"
        );
    }
}
