//! A spec's platform targets (`[platforms.<name>]`): the oldest glibc or macOS an env must run
//! on, which decides the wheels the resolver admits.

use serde::Deserialize;

use crate::spec::Spec;
use envpack_pypkg::{platform_by_name, Platform, PypkgError};

/// `[platforms.<name>]`: the system a platform targets, raised above its CPython's minimum.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// Oldest glibc the env must run on (Linux), e.g. "2.28": admits `manylinux_2_28` wheels.
    #[serde(default)]
    pub glibc: Option<String>,
    /// Oldest macOS the env must run on (macOS), e.g. "10.15": admits `macosx_10_15` wheels.
    #[serde(default)]
    pub macos: Option<String>,
}

impl PlatformSettings {
    /// The settings given, as (key, value).
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("glibc", &self.glibc), ("macos", &self.macos)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }
}

impl Spec {
    /// The platform called `name` with this spec's target settings applied.
    pub fn platform(&self, name: &str) -> Result<Platform, PypkgError> {
        let mut p = platform_by_name(name)?;
        if let Some(settings) = self.platforms.get(name) {
            for (key, value) in settings.entries() {
                p = p.with_target(key, value)?;
            }
        }
        Ok(p)
    }
}
