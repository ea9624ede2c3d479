//! Base image pins: one manifest digest per platform, written last in the lock.

use serde::Deserialize;

use crate::spec::SpecError;

/// Header of the tables pinning base images; they come last in the lock.
pub const BASE_TABLE: &str = "[[image-base]]";

/// A platform's base image, resolved by `lock` to the manifest digest `build` pulls.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBase {
    /// Platform name.
    pub platform: String,
    /// The reference as the spec wrote it (for the base-name annotation).
    pub name: String,
    /// The platform manifest's digest (`sha256:…`).
    pub digest: String,
}

/// Base pins sorted by platform, each digest well-formed, no platform twice.
pub(super) fn checked_bases(
    mut bases: Vec<LockedBase>,
    origin: &str,
) -> Result<Vec<LockedBase>, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        path: origin.to_string(),
        message,
    };
    for b in &bases {
        envpack_oci::check_digest(&b.digest)
            .map_err(|e| invalid(format!("image-base {}: {e}", b.platform)))?;
    }
    bases.sort_by(|a, b| a.platform.cmp(&b.platform));
    if bases.windows(2).any(|w| w[0].platform == w[1].platform) {
        return Err(invalid("image-base lists a platform twice".into()));
    }
    Ok(bases)
}
