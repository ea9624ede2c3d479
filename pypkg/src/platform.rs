//! Target platforms: the data in `platforms/*.toml`, embedded at compile time.

use envpack_layers::shown_name;
use serde::Deserialize;

use crate::tags::{self, WheelTag, WheelTarget};
use crate::PypkgError;

/// Directory layout of the CPython install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `python/bin/python3`, `python/lib/python3.X/site-packages`.
    Unix,
    /// `python/python.exe`, `python/Lib/site-packages`.
    Windows,
}

/// Which kind of launchers the environment gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LauncherKind {
    /// POSIX shell trampolines.
    Posix,
    /// `.cmd` launchers.
    Windows,
}

/// PEP 508 marker values that depend only on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkerValues {
    /// `os_name`.
    pub os_name: String,
    /// `sys_platform`.
    pub sys_platform: String,
    /// `platform_machine`.
    pub platform_machine: String,
    /// `platform_system`.
    pub platform_system: String,
    /// `platform_release`.
    pub platform_release: String,
    /// `platform_version`.
    pub platform_version: String,
}

/// One build/runtime target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Short name, e.g. `linux-x86_64`.
    pub name: String,
    /// python-build-standalone target triple.
    pub pbs_triple: String,
    /// OCI `os`.
    pub oci_os: String,
    /// OCI `architecture`.
    pub oci_arch: String,
    /// OCI `variant`, if any.
    pub oci_variant: Option<String>,
    /// CPython directory layout.
    pub layout: Layout,
    /// Launcher flavour.
    pub launcher: LauncherKind,
    /// Which binary wheels load.
    pub wheel: WheelTarget,
    /// Platform-dependent marker values.
    pub markers: MarkerValues,
}

const EMBEDDED: [(&str, &str); 5] = [
    (
        "linux-x86_64.toml",
        include_str!("../../platforms/linux-x86_64.toml"),
    ),
    (
        "linux-aarch64.toml",
        include_str!("../../platforms/linux-aarch64.toml"),
    ),
    (
        "macos-x86_64.toml",
        include_str!("../../platforms/macos-x86_64.toml"),
    ),
    (
        "macos-arm64.toml",
        include_str!("../../platforms/macos-arm64.toml"),
    ),
    (
        "windows-x86_64.toml",
        include_str!("../../platforms/windows-x86_64.toml"),
    ),
];

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawPlatform {
    name: String,
    pbs_triple: String,
    oci_os: String,
    oci_arch: String,
    oci_variant: Option<String>,
    layout: Layout,
    launcher: LauncherKind,
    wheel: RawWheel,
    markers: MarkerValues,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawWheel {
    kind: String,
    arch: String,
    glibc: Option<String>,
    musllinux: Option<bool>,
    musl: Option<String>,
    macos: Option<String>,
}

fn parse_major_minor(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn parse_platform(file: &str, text: &str) -> Result<Platform, PypkgError> {
    let data_err = |detail: String| PypkgError::PlatformData {
        file: file.to_string(),
        detail,
    };
    let raw: RawPlatform = toml::from_str(text).map_err(|e| data_err(e.to_string()))?;
    let version = |field: &str, v: Option<&String>| -> Result<(u32, u32), PypkgError> {
        let v = v.ok_or_else(|| data_err(format!("[wheel] needs `{field}`")))?;
        parse_major_minor(v).ok_or_else(|| {
            data_err(format!(
                "[wheel] {field} = \"{}\" is not MAJOR.MINOR",
                shown_name(v)
            ))
        })
    };
    let w = &raw.wheel;
    let wheel = match w.kind.as_str() {
        "manylinux" => WheelTarget::Manylinux {
            arch: w.arch.clone(),
            glibc: version("glibc", w.glibc.as_ref())?,
            musllinux: if w.musllinux.unwrap_or(false) {
                let musl = w.musl.clone().unwrap_or_else(|| "1.2".to_string());
                Some(version("musl", Some(&musl))?)
            } else {
                None
            },
        },
        "macos" => WheelTarget::Macos {
            arch: w.arch.clone(),
            version: version("macos", w.macos.as_ref())?,
        },
        "windows" => WheelTarget::Windows {
            arch: w.arch.clone(),
        },
        other => {
            return Err(data_err(format!(
                "unknown [wheel] kind \"{}\"",
                shown_name(other)
            )))
        }
    };
    Ok(Platform {
        name: raw.name,
        pbs_triple: raw.pbs_triple,
        oci_os: raw.oci_os,
        oci_arch: raw.oci_arch,
        oci_variant: raw.oci_variant,
        layout: raw.layout,
        launcher: raw.launcher,
        wheel,
        markers: raw.markers,
    })
}

/// `(major, minor, patch)` of a full CPython 3 version such as "3.12.7".
pub fn parse_python_version(v: &str) -> Result<(u8, u8, u8), PypkgError> {
    let parts: Vec<&str> = v.split('.').collect();
    let nums: Option<Vec<u8>> = parts.iter().map(|p| p.parse::<u8>().ok()).collect();
    match nums.as_deref() {
        Some([3, minor, patch]) => Ok((3, *minor, *patch)),
        _ => Err(PypkgError::CpythonVersion(v.to_string())),
    }
}

/// All known platforms, in a fixed order.
pub fn all() -> Result<Vec<Platform>, PypkgError> {
    EMBEDDED.iter().map(|(f, t)| parse_platform(f, t)).collect()
}

/// The platform called `n`.
pub fn by_name(n: &str) -> Result<Platform, PypkgError> {
    let platforms = all()?;
    let valid = platforms
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    platforms
        .iter()
        .find(|p| p.name == n)
        .cloned()
        .ok_or(PypkgError::UnknownPlatform {
            name: n.to_string(),
            valid,
        })
}

/// The platform this binary was compiled for, if it is one of ours.
pub fn host() -> Option<Platform> {
    let name = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        "linux-x86_64"
    } else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
        "linux-aarch64"
    } else if cfg!(all(target_os = "macos", target_arch = "x86_64")) {
        "macos-x86_64"
    } else if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        "macos-arm64"
    } else if cfg!(all(target_os = "windows", target_arch = "x86_64")) {
        "windows-x86_64"
    } else {
        return None;
    };
    by_name(name).ok()
}

impl Platform {
    /// PEP 508 marker environment for CPython `python_full_version` (e.g. "3.11.7") on this platform.
    pub fn marker_environment(
        &self,
        python_full_version: &str,
    ) -> Result<pep508_rs::MarkerEnvironment, PypkgError> {
        let bad = |detail: &str| PypkgError::PythonVersion {
            version: python_full_version.to_string(),
            detail: detail.to_string(),
        };
        let mut parts = python_full_version.split('.');
        let (major, minor) = match (parts.next(), parts.next()) {
            (Some(a), Some(b)) if a.parse::<u8>().is_ok() && b.parse::<u8>().is_ok() => (a, b),
            _ => return Err(bad("expected MAJOR.MINOR[.PATCH]")),
        };
        let python_version = format!("{major}.{minor}");
        let m = &self.markers;
        pep508_rs::MarkerEnvironment::try_from(pep508_rs::MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: python_full_version,
            os_name: &m.os_name,
            platform_machine: &m.platform_machine,
            platform_python_implementation: "CPython",
            platform_release: &m.platform_release,
            platform_system: &m.platform_system,
            platform_version: &m.platform_version,
            python_full_version,
            python_version: &python_version,
            sys_platform: &m.sys_platform,
        })
        .map_err(|e| bad(&e.to_string()))
    }

    /// This platform with a spec's target setting applied: `key` (`glibc` on Linux, `macos`
    /// on macOS) raised to `value` ("MAJOR.MINOR"), never below what its CPython build needs.
    pub fn with_target(&self, key: &str, value: &str) -> Result<Platform, PypkgError> {
        let err = |detail: String| PypkgError::PlatformTarget {
            platform: self.name.clone(),
            key: key.to_string(),
            detail,
        };
        let Some((own_key, minimum)) = self.wheel.setting() else {
            return Err(err(format!("{} has no target setting", self.name)));
        };
        if key != own_key {
            return Err(err(format!(
                "not a setting of {} (its target setting is `{own_key}`)",
                self.name
            )));
        }
        let v = parse_major_minor(value).ok_or_else(|| {
            err(format!(
                "\"{}\" is not MAJOR.MINOR (e.g. \"{}.{}\")",
                shown_name(value),
                minimum.0,
                minimum.1
            ))
        })?;
        if key == "glibc" && v.0 != 2 {
            return Err(err(format!(
                "\"{}\": glibc versions are 2.x",
                shown_name(value)
            )));
        }
        if v < minimum {
            return Err(err(format!(
                "\"{}\" is below {}.{}, the oldest {key} the pinned CPython build supports",
                shown_name(value),
                minimum.0,
                minimum.1
            )));
        }
        let mut out = self.clone();
        out.wheel = self.wheel.with_version(v);
        Ok(out)
    }

    /// The target for messages, e.g. `macos 10.13` (`None` on Windows).
    pub fn target_text(&self) -> Option<String> {
        self.wheel
            .setting()
            .map(|(key, (a, b))| format!("{key} {a}.{b}"))
    }

    /// Wheel tags this platform's CPython accepts, best first.
    pub fn supported_tags(&self, py_major: u8, py_minor: u8) -> Vec<WheelTag> {
        tags::compatible_tags(&self.wheel, py_major, py_minor)
    }

    /// The interpreter, relative to the env root.
    pub fn python_exe(&self) -> &'static str {
        match self.layout {
            Layout::Unix => "python/bin/python3",
            Layout::Windows => "python/python.exe",
        }
    }

    /// site-packages, relative to the env root.
    pub fn site_packages(&self, py_minor: u8) -> String {
        match self.layout {
            Layout::Unix => format!("python/lib/python3.{py_minor}/site-packages"),
            Layout::Windows => "python/Lib/site-packages".to_string(),
        }
    }

    /// Where console scripts go, relative to the env root.
    pub fn scripts_dir(&self) -> &'static str {
        match self.layout {
            Layout::Unix => "python/bin",
            Layout::Windows => "python/Scripts",
        }
    }

    /// C headers, relative to the env root.
    pub fn include_dir(&self, py_minor: u8) -> String {
        match self.layout {
            Layout::Unix => format!("python/include/python3.{py_minor}"),
            Layout::Windows => "python/Include".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn all_platforms_parse() {
        let all = all().unwrap();
        let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "linux-x86_64",
                "linux-aarch64",
                "macos-x86_64",
                "macos-arm64",
                "windows-x86_64"
            ]
        );
        let win = by_name("windows-x86_64").unwrap();
        assert_eq!(win.layout, Layout::Windows);
        assert_eq!(win.python_exe(), "python/python.exe");
        assert_eq!(win.site_packages(11), "python/Lib/site-packages");
        assert_eq!(
            win.supported_tags(3, 11)[0].to_string(),
            "cp311-cp311-win_amd64"
        );
        let lin = by_name("linux-x86_64").unwrap();
        assert_eq!(lin.site_packages(11), "python/lib/python3.11/site-packages");
        assert_eq!(lin.include_dir(11), "python/include/python3.11");
        assert_eq!(lin.scripts_dir(), "python/bin");
        let mac = by_name("macos-arm64").unwrap();
        assert_eq!(
            mac.supported_tags(3, 11)[0].to_string(),
            "cp311-cp311-macosx_11_0_arm64"
        );
    }

    #[test]
    fn target_settings_table() {
        let lin = by_name("linux-x86_64").unwrap();
        let mac = by_name("macos-x86_64").unwrap();
        let arm = by_name("macos-arm64").unwrap();
        let win = by_name("windows-x86_64").unwrap();
        let raised = lin.with_target("glibc", "2.28").unwrap();
        assert_eq!(raised.target_text().as_deref(), Some("glibc 2.28"));
        assert_eq!(
            raised.supported_tags(3, 11)[0].to_string(),
            "cp311-cp311-manylinux_2_28_x86_64"
        );
        assert_eq!(
            mac.with_target("macos", "10.15")
                .unwrap()
                .target_text()
                .as_deref(),
            Some("macos 10.15")
        );
        assert_eq!(lin.with_target("glibc", "2.17").unwrap(), lin);
        assert_eq!(win.target_text(), None);
        for (p, key, value, want) in [
            (&lin, "glibc", "2.12", "below 2.17"),
            (&lin, "glibc", "3.1", "2.x"),
            (&lin, "glibc", "2.x", "MAJOR.MINOR"),
            (&lin, "macos", "10.15", "its target setting is `glibc`"),
            (&mac, "macos", "10.9", "below 10.13"),
            (&arm, "macos", "10.15", "below 11.0"),
            (&win, "glibc", "2.28", "no target setting"),
        ] {
            let e = p.with_target(key, value).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.starts_with(&format!("platforms.{}.{key}", p.name)),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_platform_lists_valid_names() {
        let e = by_name("plan9").unwrap_err().to_string();
        assert!(e.contains("plan9") && e.contains("macos-arm64"), "{e}");
    }

    #[test]
    fn markers_evaluate_per_platform() {
        let req = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(
            "distro; sys_platform == 'linux' and python_version >= '3.8'",
        )
        .unwrap();
        let cases = [
            ("linux-x86_64", true),
            ("linux-aarch64", true),
            ("macos-arm64", false),
            ("windows-x86_64", false),
        ];
        for (name, active) in cases {
            let env = by_name(name).unwrap().marker_environment("3.11.7").unwrap();
            assert_eq!(req.marker.evaluate(&env, &[]), active, "{name}");
        }
        let win = by_name("windows-x86_64")
            .unwrap()
            .marker_environment("3.11.7")
            .unwrap();
        let col = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(
            "colorama; platform_system == 'Windows' and python_full_version >= '3.11.7'",
        )
        .unwrap();
        assert!(col.marker.evaluate(&win, &[]));
        assert!(by_name("linux-x86_64")
            .unwrap()
            .marker_environment("three")
            .is_err());
    }
}
