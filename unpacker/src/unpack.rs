//! Restoring an artifact into a root: verify, extract aside, then switch `current`.

use std::collections::BTreeSet;
use std::path::Path;

use envpack_layers::artifact::ArtifactReader;
use envpack_trust::{TrustedKeys, Verified};
use serde::Serialize;

use crate::current_link::{read_current, switch_current};
use crate::env_id::validate_env_id;
use crate::error::UnpackError;
use crate::progress::ProgressEvent;
use crate::root_dirs::RootDirs;
use crate::root_lock::RootLock;
use crate::root_record::{RootRecord, SwitchAction};
use crate::root_setup::prepare_root;
use crate::root_trust::RootTrust;
use crate::scratch::{clean_leftovers, Scratch};
use crate::signature_check::{check_signature, read_signature, Depth, TrustOptions};
use crate::staging::{extract_artifact, extract_meta, meta_layer_index};

/// What an unpack or rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnpackOutcome {
    /// The env that is now current.
    pub env_id: String,
    /// The env that was current before (the rollback target), if any.
    pub previous: Option<String>,
    /// True when the env was already current and nothing changed.
    pub already_current: bool,
}

/// Options of [`unpack_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Keep a copy (hard link when possible) of the artifact in the root, as the source
    /// `repair` restores damaged files from.
    pub keep_artifact: bool,
    /// What the artifact's signature must be.
    pub trust: TrustOptions,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            keep_artifact: true,
            trust: TrustOptions::default(),
        }
    }
}

/// Verifies `artifact` and makes it the current env of `root` (created if missing), keeping
/// a copy of the artifact in the root. Any failure before the switch leaves the root as it was.
pub fn unpack(
    artifact: &Path,
    root: &Path,
    progress: &dyn Fn(ProgressEvent),
) -> Result<UnpackOutcome, UnpackError> {
    unpack_with(artifact, root, progress, &UnpackOptions::default())
}

/// [`unpack`] with options.
pub fn unpack_with(
    artifact: &Path,
    root: &Path,
    progress: &dyn Fn(ProgressEvent),
    opts: &UnpackOptions,
) -> Result<UnpackOutcome, UnpackError> {
    let outcome = unpack_locked(artifact, root, progress, &opts.trust)?;
    if opts.keep_artifact {
        // The env is in place already; a root without the copy is only harder to repair.
        let layout = crate::root_setup::open_root(root)?;
        let _lock = RootLock::acquire(&layout)?;
        let dirs = RootDirs::open(&layout)?;
        let scratch = Scratch::new(&dirs)?;
        if let Err(e) =
            crate::kept_artifact::keep_artifact(&dirs, &outcome.env_id, artifact, &scratch)
        {
            tracing::warn!("could not keep a copy of the artifact in the root: {e}");
        }
    }
    Ok(outcome)
}

fn unpack_locked(
    artifact: &Path,
    root: &Path,
    progress: &dyn Fn(ProgressEvent),
    trust: &TrustOptions,
) -> Result<UnpackOutcome, UnpackError> {
    // Opened and, when asked, its signature checked first: an artifact that is missing, not
    // one or not signed as asked must not leave a new root behind.
    let reader = ArtifactReader::open(artifact)?;
    let signed = Signed::check_asked(&reader, root, trust)?;
    let env_id = reader.index().env_id.clone();
    validate_env_id(&env_id)?;
    let meta = meta_layer_index(&reader, artifact)?;
    // Every blob is checked even when the env is already present, so a damaged artifact is
    // never reported as a successful no-op; and before the root is made, so it leaves none.
    progress(ProgressEvent::VerifyingLayers {
        count: reader.index().layers.len(),
    });
    reader.verify_layers()?;
    crate::env_info::check_index_against_env_info(&reader, meta, artifact)?;

    let layout = prepare_root(root)?;
    let _lock = RootLock::acquire(&layout)?;
    let dirs = RootDirs::open(&layout)?;
    let signed = signed.check_root(&reader, &dirs)?;
    clean_leftovers(&dirs)?;
    let current = read_current(&layout)?;
    let trust_after = signed.trust_after(&env_id, &reader, &dirs)?;
    let env_dir = layout.env_dir(&env_id);
    let scratch = Scratch::new(&dirs)?;
    let mut created_env = false;
    if dirs.envs.symlink_metadata(&env_id).is_ok() {
        // Nothing gets extracted, so prove here that every layer decompresses to its diff_id.
        // (Extraction checks the same while it streams into hidden scratch space, which saves
        // a whole decompression pass on a fresh unpack.)
        reader.verify_uncompressed()?;
        check_existing_env(&reader, meta, &env_dir, &scratch)?;
        if current.as_deref() == Some(env_id.as_str()) {
            tracing::info!(env_id, "already current; nothing to do");
            if let Some(t) = &trust_after {
                t.store_in(&dirs)?;
            }
            let record = RootRecord::load(&layout.record_file())?;
            if record.current.as_deref() != Some(env_id.as_str()) {
                // A run killed between the link switch and the record write; finish it.
                record_switch(
                    &dirs,
                    record.current.as_deref(),
                    &env_id,
                    SwitchAction::Unpack,
                )?;
            }
            return Ok(UnpackOutcome {
                env_id,
                previous: RootRecord::load(&layout.record_file())?.previous,
                already_current: true,
            });
        }
    } else {
        let staged = scratch.path().join("env");
        extract_artifact(&reader, artifact, scratch.dir(), "env", &staged, progress)?;
        crate::durability::sync_tree(&staged)?;
        crate::fault::point("extracted");
        scratch
            .dir()
            .rename("env", &dirs.envs, &env_id)
            .map_err(|e| UnpackError::at(e, &env_dir))?;
        crate::root_dirs::sync_dir(&dirs.envs)?;
        crate::fault::point("env-in-place");
        created_env = true;
    }

    if let Some(t) = &trust_after {
        t.store_in(&dirs)?;
    }
    let switched = activate_env(&dirs, &env_id, &scratch, progress);
    if let Err(e) = switched {
        if trust_after.is_some() {
            if let Err(undo) = signed.before.store_in(&dirs) {
                tracing::warn!("could not restore the root's trust record: {undo}");
            }
        }
        if created_env {
            // Move the new env back into scratch so it disappears with it.
            if let Err(undo) = dirs.envs.rename(&env_id, scratch.dir(), "undo-env") {
                tracing::warn!("could not undo the new env dir: {undo}");
            }
        }
        return Err(e);
    }
    record_switch(&dirs, current.as_deref(), &env_id, SwitchAction::Unpack)?;
    crate::fault::point("recorded");
    Ok(UnpackOutcome {
        env_id,
        previous: current,
        already_current: false,
    })
}

/// Seeds state, writes shims and switches `current` to the (complete) `envs/<env_id>`.
/// On failure before the switch, shims added for this env are removed again.
pub(crate) fn activate_env(
    dirs: &RootDirs,
    env_id: &str,
    scratch: &Scratch,
    progress: &dyn Fn(ProgressEvent),
) -> Result<(), UnpackError> {
    let layout = &dirs.layout;
    let env_dir = layout.env_dir(env_id);
    let shims_before = existing_names(&dirs.bin)?;
    let seeded = crate::state_seed::seed_state(dirs, env_id, scratch)?;
    crate::fault::point("state-seeded");
    let before_switch = || -> Result<BTreeSet<String>, UnpackError> {
        let shims = crate::shims::write_shims(dirs, &env_dir, scratch)?;
        crate::fault::point("shims-written");
        progress(ProgressEvent::Switching {
            env_id: env_id.to_owned(),
        });
        announce_switch(dirs, env_id)?;
        crate::fault::point("switch-announced");
        switch_current(dirs, env_id, scratch)?;
        crate::fault::point("switched");
        Ok(shims)
    };
    match before_switch() {
        Ok(shims) => {
            crate::shims::remove_stale_shims(dirs, &shims)?;
            crate::fault::point("stale-shims-removed");
            Ok(())
        }
        Err(e) => {
            if let Err(undo) = crate::shims::remove_stale_shims(dirs, &shims_before) {
                tracing::warn!("could not remove new shims: {undo}");
            }
            if seeded {
                if let Err(undo) = dirs.state.remove_dir_all(env_id) {
                    tracing::warn!("could not remove new state dir: {undo}");
                }
            }
            Err(e)
        }
    }
}

/// Names present in the directory `dir`.
fn existing_names(dir: &cap_std::fs::Dir) -> std::io::Result<BTreeSet<String>> {
    dir.entries()?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Notes in `root.json` that `current` is about to point at `env_id`, so a kill right after
/// the switch leaves a record that still agrees with the link.
fn announce_switch(dirs: &RootDirs, env_id: &str) -> Result<(), UnpackError> {
    let mut record = RootRecord::load(&dirs.layout.record_file())?;
    record.switching_to = Some(env_id.to_owned());
    record.store_in(dirs)
}

/// Writes the switch into `root.json`, taking the link's old target as the previous env.
pub(crate) fn record_switch(
    dirs: &RootDirs,
    old_current: Option<&str>,
    env_id: &str,
    action: SwitchAction,
) -> Result<(), UnpackError> {
    let mut record = RootRecord::load(&dirs.layout.record_file())?;
    // The link is the truth; the record may lag behind it after a crash.
    if record.current.as_deref() != old_current {
        record.current = old_current.map(str::to_owned);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    record.switched_to(env_id, action, now);
    record.store_in(dirs)
}

/// An env dir with this id exists: accept it only if its manifest is the artifact's.
fn check_existing_env(
    reader: &ArtifactReader,
    meta: usize,
    env_dir: &Path,
    scratch: &Scratch,
) -> Result<(), UnpackError> {
    let shown = scratch.path().join("meta-check");
    let (_, artifact_manifest) = extract_meta(reader, meta, scratch.dir(), "meta-check", &shown)?;
    let on_disk = match crate::staging::read_env_file(env_dir, crate::staging::MANIFEST_FILE) {
        Ok(b) => b,
        Err(UnpackError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if on_disk != artifact_manifest {
        return Err(UnpackError::EnvMismatch {
            path: env_dir.to_path_buf(),
        });
    }
    tracing::info!(path = %env_dir.display(), "env already present; switching to it");
    Ok(())
}

/// The signature checks of one unpack, in the order they run.
struct Signed<'a> {
    opts: &'a TrustOptions,
    asked: TrustedKeys,
    signature: Option<envpack_trust::Signature>,
    verified: Option<Verified>,
    /// The root's trust record as it was.
    before: RootTrust,
}

impl<'a> Signed<'a> {
    /// Checks the signature against the `--trust` keys, before the root is touched.
    fn check_asked(
        reader: &ArtifactReader,
        root: &Path,
        opts: &'a TrustOptions,
    ) -> Result<Self, UnpackError> {
        let asked = TrustedKeys::load(&opts.trust)?;
        let usage = |what: &str, detail: &str| -> UnpackError {
            envpack_trust::TrustError::BadKey {
                what: what.into(),
                detail: detail.into(),
            }
            .into()
        };
        if opts.require_signature && asked.is_empty() {
            return Err(usage(
                "--require-signature",
                "needs the keys to require: give them with --trust KEY.pub",
            ));
        }
        // A signature named with no key to check it by would be silently ignored.
        if opts.signature.is_some()
            && asked.is_empty()
            && !RootTrust::read(root)?.requires_signature()
        {
            return Err(usage(
                "--signature",
                "names a signature to check, but there is no key to check it with: give \
                 --trust KEY.pub (or unpack into a root that requires signatures)",
            ));
        }
        let signature = read_signature(reader.path(), opts)?;
        let verified = if asked.is_empty() {
            None
        } else {
            let file = opts.signature_path(reader.path());
            Some(check_signature(
                &asked,
                signature.as_ref(),
                reader,
                &file,
                "--trust",
                Depth::Claims,
            )?)
        };
        Ok(Signed {
            opts,
            asked,
            signature,
            verified,
            before: RootTrust::default(),
        })
    }

    /// Checks the signature against the keys the root requires, if it requires any.
    fn check_root(mut self, reader: &ArtifactReader, dirs: &RootDirs) -> Result<Self, UnpackError> {
        self.before = RootTrust::load(dirs)?;
        let required = self.before.required()?;
        if !required.is_empty() {
            let file = self.opts.signature_path(reader.path());
            let verified = check_signature(
                &required,
                self.signature.as_ref(),
                reader,
                &file,
                "the root (it requires signatures by its keys)",
                Depth::Claims,
            )
            .map_err(|e| match e {
                UnpackError::Trust(source) => UnpackError::RootRequiresSignature {
                    root: dirs.layout.root.clone(),
                    source,
                },
                e => e,
            })?;
            self.verified = Some(verified);
        }
        Ok(self)
    }

    /// Refuses an env signed before the newest one the root accepted, and gives the root's
    /// trust record to write before the switch (None: it stays as it is).
    fn trust_after(
        &self,
        env_id: &str,
        reader: &ArtifactReader,
        dirs: &RootDirs,
    ) -> Result<Option<RootTrust>, UnpackError> {
        let mut after = self.before.clone();
        if let Some(v) = &self.verified {
            if !self.opts.allow_downgrade {
                self.before.check_not_older(env_id, v)?;
            }
        }
        after.note_env(
            env_id,
            &reader.index_digest().to_string(),
            self.verified.as_ref(),
            &|id| id == env_id || dirs.envs.symlink_metadata(id).is_ok(),
        );
        if self.opts.require_signature {
            after.require(&self.asked);
        }
        Ok((after != self.before).then_some(after))
    }
}
