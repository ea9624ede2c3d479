//! Precompiling `.pyc` files for a whole env tree, reproducibly.
//!
//! pycs are written as unchecked-hash pycs so the normalized mtimes of the tree never make them
//! stale (using the env must not change it). Each fixed chunk of the sorted file list is compiled
//! by a fresh interpreter: marshal output depends on object reference counts, so the work split
//! must not depend on timing or on the number of CPUs.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::host_python::HostPython;
use crate::PypkgError;

/// Number of compile processes; fixed so the output never depends on the machine.
const CHUNKS: usize = 4;

const DRIVER: &str = r#"
import json, os, py_compile, sys
root = sys.argv[1]
failed = []
for rel in sys.stdin.read().split("\0"):
    if not rel:
        continue
    try:
        py_compile.compile(os.path.join(root, rel), dfile=rel, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        failed.append(rel)
print(json.dumps(failed))
"#;

/// Compile every `.py` under `tree/python` that is not in `skip` (paths relative to `tree`).
/// Returns the files that are not valid Python (test data and the like), which are left
/// without a pyc, as an installer would.
pub fn compile_tree(
    host: &HostPython,
    tree: &Path,
    skip: &BTreeSet<String>,
) -> Result<Vec<String>, PypkgError> {
    let python_dir = tree.join("python");
    let mut sources = Vec::new();
    for entry in walkdir::WalkDir::new(&python_dir).sort_by_file_name() {
        let entry = entry.map_err(|source| PypkgError::Walk {
            dir: python_dir.clone(),
            source,
        })?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "py") {
            let rel = entry
                .path()
                .strip_prefix(tree)
                .map_err(|_| PypkgError::OutsideTree {
                    path: entry.path().to_path_buf(),
                })?;
            let rel = rel
                .to_str()
                .ok_or_else(|| PypkgError::NonUtf8Path {
                    path: rel.to_path_buf(),
                })?
                .replace('\\', "/");
            if !rel.split('/').any(|c| c == "__pycache__") && !skip.contains(&rel) {
                sources.push(rel);
            }
        }
    }
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    sources.sort();
    let per = sources.len().div_ceil(CHUNKS).max(1);
    let mut children = Vec::new();
    for chunk in sources.chunks(per) {
        let mut child = Command::new(&host.exe)
            .args(["-s", "-c", DRIVER])
            .arg(tree)
            .env("PYTHONHASHSEED", "0")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| PypkgError::Run {
                exe: host.exe.clone(),
                source,
            })?;
        let list = chunk.join("\0");
        let mut stdin = child.stdin.take().ok_or(PypkgError::CompilerStdin)?;
        // Feed stdin from a thread so a full stdout pipe can't deadlock us.
        let feeder = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
        children.push((child, feeder));
    }
    let mut failed = Vec::new();
    for (child, feeder) in children {
        feeder
            .join()
            .map_err(|_| PypkgError::FeederPanicked)?
            .map_err(|source| PypkgError::Compiler {
                what: "sending file list to the compiler",
                source,
            })?;
        let out = child
            .wait_with_output()
            .map_err(|source| PypkgError::Compiler {
                what: "waiting for the compiler",
                source,
            })?;
        if !out.status.success() {
            return Err(PypkgError::CompileFailed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let list: Vec<String> =
            serde_json::from_slice(&out.stdout).map_err(PypkgError::CompilerOutput)?;
        failed.extend(list);
    }
    if !failed.is_empty() {
        tracing::debug!("{} files are not valid Python and got no pyc", failed.len());
    }
    Ok(failed)
}
