//! Safe extraction of one decompressed layer tar into a directory handle.
//!
//! Every entry is checked before anything is written; writes go through `cap_std`, whose
//! `Dir` cannot reach outside its root, so a rule missed here still cannot escape `dest`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use cap_std::fs::Dir;

use crate::digest::{HashingWriter, Sha256Digest};
use crate::error::{LayersError, Result};
use crate::file_writers::{create_file, io_at, FileWriters, MAX_QUEUED_FILE};
use crate::manifest::Manifest;
use crate::tree::{link_target_problem, rel_path_problem, EntryKind, TreeEntry};

/// Limits and expectations for [`extract_layer`].
#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions<'a> {
    /// When given, every entry must be listed and match exactly.
    pub manifest: Option<&'a Manifest>,
    /// Upper bound on the sum of file sizes in the layer.
    pub max_total_bytes: u64,
    /// Workers that create files up to [`MAX_QUEUED_FILE`] bytes, writing into the same
    /// directory as the `dest` given to [`extract_layer`]; without them every file is
    /// written inline.
    pub writers: Option<&'a FileWriters<'a>>,
}

impl Default for ExtractOptions<'_> {
    fn default() -> Self {
        ExtractOptions {
            manifest: None,
            max_total_bytes: u64::MAX,
            writers: None,
        }
    }
}

fn rejected(entry: &str, rule: &'static str) -> LayersError {
    LayersError::Rejected {
        entry: entry.to_string(),
        rule,
    }
}

/// Extracts `tar` into `dest`, returning the entries written in archive order.
/// The reader is read to its end, so a wrapping digest check (see
/// [`crate::artifact::DiffIdReader`]) always runs. With `opts.writers`, queued files exist
/// only once their [`crate::file_writers::with_file_writers`] returns.
pub fn extract_layer<R: Read>(tar: R, dest: &Dir, opts: &ExtractOptions) -> Result<Vec<TreeEntry>> {
    // Follows the block structure ahead of the parser: bounds extension headers in memory
    // and tells a truncated stream from a complete one.
    let mut archive = tar::Archive::new(crate::tar_guard::TarGuard::new(tar));
    let mut state = State {
        dest,
        opts,
        seen: HashMap::new(),
        symlinks: HashSet::new(),
        known_dirs: HashSet::new(),
        total: 0,
        out: Vec::new(),
    };
    for entry in archive.entries()? {
        state.one(entry?)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())?;
    Ok(state.out)
}

struct State<'d, 'o> {
    dest: &'d Dir,
    opts: &'o ExtractOptions<'o>,
    /// Paths seen in this layer, with whether they were directories.
    seen: HashMap<String, bool>,
    symlinks: HashSet<String>,
    /// Directories known to be real directories in `dest` (not symlinks).
    known_dirs: HashSet<String>,
    total: u64,
    out: Vec<TreeEntry>,
}

impl State<'_, '_> {
    fn one<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        // The tar reader skips malformed PAX records silently; another reader might not, and
        // the two would disagree about names and sizes.
        let malformed_pax = match entry.pax_extensions() {
            Ok(Some(records)) => records.into_iter().any(|r| r.is_err()),
            Ok(None) => false,
            Err(_) => true,
        };
        if malformed_pax {
            return Err(rejected(&shown, "malformed PAX record"));
        }
        let Ok(name) = String::from_utf8(raw) else {
            return Err(rejected(&shown, "non-UTF-8 name"));
        };
        let header = entry.header();
        let ty = header.entry_type();
        let path = match ty {
            tar::EntryType::Directory => name.strip_suffix('/').unwrap_or(&name).to_string(),
            _ => name.clone(),
        };
        let kind_rule = match ty {
            tar::EntryType::Regular | tar::EntryType::Directory | tar::EntryType::Symlink => None,
            tar::EntryType::Link => Some("hardlinks are not allowed"),
            tar::EntryType::Char | tar::EntryType::Block => Some("device nodes are not allowed"),
            tar::EntryType::Fifo => Some("fifos are not allowed"),
            _ => Some("unsupported entry type"),
        };
        if let Some(rule) = kind_rule {
            return Err(rejected(&name, rule));
        }
        if let Some(rule) = rel_path_problem(&path) {
            return Err(rejected(&name, rule));
        }
        let mode = header
            .mode()
            .map_err(|_| rejected(&name, "unreadable mode field"))?;
        if mode & 0o7000 != 0 {
            return Err(rejected(&name, "setuid/setgid/sticky bits are not allowed"));
        }
        let is_dir = ty == tar::EntryType::Directory;
        if let Some(prev_dir) = self.seen.insert(path.clone(), is_dir) {
            if !(prev_dir && is_dir) {
                return Err(rejected(&name, "duplicate entry"));
            }
        }
        self.check_parents(&name, &path)?;
        // Checked before the manifest lookup so the rejection names the rule, not a mismatch.
        let link_target = if ty == tar::EntryType::Symlink {
            let target = match entry.link_name_bytes() {
                Some(t) => String::from_utf8(t.into_owned())
                    .map_err(|_| rejected(&name, "non-UTF-8 symlink target"))?,
                None => return Err(rejected(&name, "symlink without target")),
            };
            if let Some(rule) = link_target_problem(&path, &target) {
                return Err(rejected(&name, rule));
            }
            target
        } else {
            String::new()
        };
        let size = if ty == tar::EntryType::Regular {
            entry.size()
        } else {
            0
        };
        self.total = self.total.saturating_add(size);
        if self.total > self.opts.max_total_bytes {
            return Err(rejected(&name, "layer exceeds the size limit"));
        }
        let expected = match self.opts.manifest {
            Some(m) => Some(m.get(&path).ok_or_else(|| LayersError::ManifestMismatch {
                path: path.clone(),
                detail: "not listed in the manifest".into(),
            })?),
            None => None,
        };
        let mismatch = |detail: String| LayersError::ManifestMismatch {
            path: path.clone(),
            detail,
        };
        let perm = mode & 0o777;
        if let Some(exp) = expected {
            let same_type = matches!(
                (&exp.kind, ty),
                (EntryKind::Dir, tar::EntryType::Directory)
                    | (EntryKind::File { .. }, tar::EntryType::Regular)
                    | (EntryKind::Symlink { .. }, tar::EntryType::Symlink)
            );
            if !same_type {
                let found = match ty {
                    tar::EntryType::Directory => "a directory",
                    tar::EntryType::Symlink => "a link",
                    _ => "a regular file",
                };
                return Err(mismatch(format!(
                    "the layer has {found}, the manifest {}",
                    exp.kind
                )));
            }
            if perm != exp.mode() {
                return Err(mismatch(format!(
                    "mode {perm:04o}, manifest has {:04o}",
                    exp.mode()
                )));
            }
        }
        let kind = match ty {
            tar::EntryType::Directory => {
                self.make_dir(&name, &path)?;
                EntryKind::Dir
            }
            tar::EntryType::Symlink => {
                let target = link_target;
                if let Some(EntryKind::Symlink { target: want }) = expected.map(|e| &e.kind) {
                    if *want != target {
                        return Err(mismatch(format!(
                            "link target {}, manifest has {}",
                            crate::error::shown_name(&target),
                            crate::error::shown_name(want)
                        )));
                    }
                }
                self.make_symlink(&name, &path, &target)?;
                self.symlinks.insert(path.clone());
                EntryKind::Symlink { target }
            }
            _ => {
                if let Some(EntryKind::File { size: want, .. }) = expected.map(|e| &e.kind) {
                    if *want != size {
                        return Err(mismatch(format!("size {size}, manifest has {want}")));
                    }
                }
                let executable = perm & 0o111 != 0;
                let want = match expected.map(|e| &e.kind) {
                    Some(EntryKind::File { sha256, .. }) => Some(*sha256),
                    _ => None,
                };
                let sha256 = self.write_file(&name, &path, &mut entry, size, executable, want)?;
                EntryKind::File {
                    size,
                    sha256,
                    executable,
                }
            }
        };
        self.out.push(TreeEntry { path, kind });
        Ok(())
    }

    /// Rejects entries whose parent chain contains a symlink (in this layer or on disk).
    fn check_parents(&mut self, name: &str, path: &str) -> Result<()> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            end += i + 1;
            if self.known_dirs.contains(parent) {
                continue;
            }
            if self.symlinks.contains(parent) {
                return Err(rejected(name, "path goes through a symlink"));
            }
            match self.dest.symlink_metadata(parent) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(rejected(name, "path goes through a symlink"))
                }
                Ok(m) if m.is_dir() => {
                    self.known_dirs.insert(parent.to_string());
                }
                Ok(_) => return Err(rejected(name, "parent is not a directory")),
                // Missing parents are created as plain directories before writing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(e, path)),
            }
        }
        Ok(())
    }

    fn ensure_parent(&mut self, path: &str) -> Result<()> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !self.known_dirs.contains(parent) {
                self.dest
                    .create_dir_all(parent)
                    .map_err(|e| io_at(e, parent))?;
                // A concurrent layer may have put a symlink on the chain between the check
                // and the creation; cap-std keeps that inside `dest`, this keeps it out.
                self.no_symlink_on_chain(path)?;
                set_mode(self.dest, parent, 0o755)?;
                self.known_dirs.insert(parent.to_string());
            }
        }
        Ok(())
    }

    /// Errors if any ancestor of `path` on disk is a symlink or not a directory.
    fn no_symlink_on_chain(&self, path: &str) -> Result<()> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            end += i + 1;
            let m = self
                .dest
                .symlink_metadata(parent)
                .map_err(|e| io_at(e, parent))?;
            if m.file_type().is_symlink() || !m.is_dir() {
                return Err(rejected(path, "path goes through a symlink"));
            }
        }
        Ok(())
    }

    fn make_dir(&mut self, name: &str, path: &str) -> Result<()> {
        self.ensure_parent(path)?;
        match self.dest.create_dir(path) {
            Ok(()) => {}
            // Layers share parent directories and may be extracted concurrently.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let m = self
                    .dest
                    .symlink_metadata(path)
                    .map_err(|e| io_at(e, path))?;
                if !m.is_dir() || m.file_type().is_symlink() {
                    return Err(rejected(
                        name,
                        "a non-directory already exists at this path",
                    ));
                }
            }
            Err(e) => return Err(io_at(e, path)),
        }
        set_mode(self.dest, path, 0o755)?;
        self.known_dirs.insert(path.to_string());
        Ok(())
    }

    /// Writes the entry's `size` bytes as the new file `path` and returns their digest,
    /// which must equal `want` when given. Small files are checked before anything is
    /// written and go to the workers; large ones stream and are removed again on a mismatch.
    fn write_file(
        &mut self,
        name: &str,
        path: &str,
        data: &mut impl Read,
        size: u64,
        executable: bool,
        want: Option<Sha256Digest>,
    ) -> Result<Sha256Digest> {
        self.ensure_parent(path)?;
        let short = |written: u64| {
            LayersError::format(
                "layer tar",
                format!("{path}: short entry ({written} of {size} bytes)"),
            )
        };
        let mismatch = |got: Sha256Digest, want: Sha256Digest| LayersError::ManifestMismatch {
            path: path.to_string(),
            detail: format!("content {got}, manifest has {want}"),
        };
        if let Some(writers) = self.opts.writers.filter(|_| size <= MAX_QUEUED_FILE) {
            let mut buf = Vec::with_capacity(size as usize);
            data.take(size)
                .read_to_end(&mut buf)
                .map_err(|e| io_at(e, path))?;
            if buf.len() as u64 != size {
                return Err(short(buf.len() as u64));
            }
            let digest = Sha256Digest::of_bytes(&buf);
            if let Some(want) = want.filter(|w| *w != digest) {
                return Err(mismatch(digest, want));
            }
            writers.submit(name, path, buf, executable)?;
            return Ok(digest);
        }
        let file = create_file(self.dest, name, path, executable)?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, file));
        io::copy(data, &mut w).map_err(|e| io_at(e, path))?;
        let (digest, n, buffered) = w.into_parts();
        let mut file = buffered
            .into_inner()
            .map_err(|e| io_at(e.into_error(), path))?;
        file.flush().map_err(|e| io_at(e, path))?;
        drop(file);
        if n != size {
            let _ = self.dest.remove_file(path);
            return Err(short(n));
        }
        if let Some(want) = want.filter(|w| *w != digest) {
            let _ = self.dest.remove_file(path);
            return Err(mismatch(digest, want));
        }
        Ok(digest)
    }

    fn make_symlink(&mut self, name: &str, path: &str, target: &str) -> Result<()> {
        self.ensure_parent(path)?;
        match create_symlink(self.dest, path, target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(rejected(name, "something already exists at this path"))
            }
            Err(e) => Err(io_at(e, path)),
        }
    }
}

#[cfg(unix)]
fn set_mode(dest: &Dir, path: &str, mode: u32) -> Result<()> {
    use cap_std::fs::{Permissions, PermissionsExt};
    dest.set_permissions(path, Permissions::from_mode(mode))
        .map_err(|e| io_at(e, path))
}

#[cfg(not(unix))]
fn set_mode(_dest: &Dir, _path: &str, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(not(windows))]
fn create_symlink(dest: &Dir, path: &str, target: &str) -> io::Result<()> {
    dest.symlink(target, path)
}

#[cfg(windows)]
fn create_symlink(dest: &Dir, path: &str, target: &str) -> io::Result<()> {
    // Windows needs to know the kind; resolve the (already validated) target lexically.
    let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let mut parts: Vec<&str> = parent.split('/').filter(|s| !s.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let resolved = parts.join("/");
    let native_target = target.replace('/', "\\");
    if !resolved.is_empty()
        && dest
            .metadata(&resolved)
            .map(|m| m.is_dir())
            .unwrap_or(false)
    {
        dest.symlink_dir(native_target, path)
    } else {
        dest.symlink_file(native_target, path)
    }
}

#[cfg(all(test, unix))]
#[path = "extract_tests.rs"]
mod tests;
