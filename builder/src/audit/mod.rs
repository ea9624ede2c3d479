//! `envpack audit`: answers "what exactly is in this environment, and does it match the
//! lock?" without trusting the builder. Every check reports findings that name the exact item
//! (package and file, layer and path, lock entry) instead of stopping at the first.

pub mod artifact;
pub mod command;
pub mod conan;
pub mod layout;
pub mod meta;
pub mod pins;
pub mod rebuild;
pub mod registry;
pub mod report;
pub mod signed;
pub mod tree;

pub use report::{AuditReport, Finding};

use std::path::Path;

use crate::lock::Lock;

/// Audits whatever `target` is: an OCI image layout dir, an unpacked root or env dir, or a
/// portable artifact file.
pub fn audit_target(target: &Path, external: Option<&Lock>) -> AuditReport {
    if target.is_dir() {
        if layout::is_layout(target) {
            layout::audit_layout(target, external)
        } else {
            tree::audit_tree(target, external)
        }
    } else {
        artifact::audit_artifact(target, external)
    }
}
