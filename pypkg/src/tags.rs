//! Wheel compatibility tags (PEP 425) for a target platform, ordered best first.

use std::collections::HashMap;
use std::fmt;

/// One `python-abi-platform` wheel tag triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WheelTag {
    /// Interpreter tag, e.g. `cp311`, `py3`.
    pub python: String,
    /// ABI tag, e.g. `cp311`, `abi3`, `none`.
    pub abi: String,
    /// Platform tag, e.g. `manylinux_2_17_x86_64`, `any`.
    pub platform: String,
}

impl WheelTag {
    /// Builds a tag from its three parts.
    pub fn new(python: &str, abi: &str, platform: &str) -> Self {
        WheelTag {
            python: python.to_string(),
            abi: abi.to_string(),
            platform: platform.to_string(),
        }
    }
}

impl fmt::Display for WheelTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// Which binary wheels a platform's CPython build can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelTarget {
    /// glibc Linux; `glibc` is the oldest glibc the interpreter supports.
    Manylinux {
        /// `x86_64`, `aarch64`, ...
        arch: String,
        /// (major, minor) of the oldest supported glibc.
        glibc: (u32, u32),
        /// (major, minor) of musl when musllinux wheels are acceptable.
        musllinux: Option<(u32, u32)>,
    },
    /// macOS with a deployment target.
    Macos {
        /// `x86_64` or `arm64`.
        arch: String,
        /// (major, minor) deployment target.
        version: (u32, u32),
    },
    /// Windows; `arch` is `amd64` or `arm64`.
    Windows {
        /// `amd64` or `arm64`.
        arch: String,
    },
}

impl WheelTarget {
    /// The spec setting this target has (`glibc` or `macos`) and its (major, minor); Windows
    /// has none.
    pub fn setting(&self) -> Option<(&'static str, (u32, u32))> {
        match self {
            WheelTarget::Manylinux { glibc, .. } => Some(("glibc", *glibc)),
            WheelTarget::Macos { version, .. } => Some(("macos", *version)),
            WheelTarget::Windows { .. } => None,
        }
    }

    /// The same target with its setting's version replaced (no-op on Windows).
    pub fn with_version(&self, v: (u32, u32)) -> WheelTarget {
        let mut out = self.clone();
        match &mut out {
            WheelTarget::Manylinux { glibc, .. } => *glibc = v,
            WheelTarget::Macos { version, .. } => *version = v,
            WheelTarget::Windows { .. } => {}
        }
        out
    }

    /// What the target must be raised to for a wheel tagged `tag` to load, together with that
    /// tag re-written at the current target (so the caller can check its interpreter and ABI
    /// parts against the supported tags); `None` when raising can't help: another OS or
    /// architecture, or a version the target already covers.
    pub fn raise_needed(&self, tag: &WheelTag) -> Option<((u32, u32), WheelTag)> {
        let (needed, platform) = match self {
            WheelTarget::Manylinux { arch, glibc, .. } => {
                let needed = manylinux_version(&tag.platform, arch)?;
                (needed, format!("manylinux_{}_{}_{arch}", glibc.0, glibc.1))
            }
            WheelTarget::Macos { arch, version } => {
                let (needed, format) = macos_version(&tag.platform)?;
                if !mac_binary_formats(*version, arch).contains(&format) {
                    return None;
                }
                (
                    needed,
                    format!("macosx_{}_{}_{format}", version.0, version.1),
                )
            }
            WheelTarget::Windows { .. } => return None,
        };
        let current = self.setting()?.1;
        (needed > current).then(|| (needed, WheelTag::new(&tag.python, &tag.abi, &platform)))
    }
}

/// The glibc a manylinux platform tag of `arch` needs (legacy aliases included).
fn manylinux_version(platform: &str, arch: &str) -> Option<(u32, u32)> {
    let rest = platform.strip_prefix("manylinux")?;
    let rest = rest.strip_suffix(arch)?.strip_suffix('_')?;
    match rest {
        "2014" => Some((2, 17)),
        "2010" => Some((2, 12)),
        "1" => Some((2, 5)),
        _ => {
            let (major, minor) = rest.strip_prefix('_')?.split_once('_')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        }
    }
}

/// The macOS version and binary format of a `macosx_MAJOR_MINOR_FORMAT` platform tag.
fn macos_version(platform: &str) -> Option<((u32, u32), &str)> {
    let mut parts = platform.strip_prefix("macosx_")?.splitn(3, '_');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(((major, minor), parts.next()?))
}

/// Platform tags for `target`, most specific first.
pub fn platform_tags(target: &WheelTarget) -> Vec<String> {
    match target {
        WheelTarget::Manylinux {
            arch,
            glibc,
            musllinux,
        } => {
            let mut out = manylinux_tags(arch, *glibc);
            if let Some((major, minor)) = musllinux {
                for m in (0..=*minor).rev() {
                    out.push(format!("musllinux_{major}_{m}_{arch}"));
                }
            }
            out
        }
        WheelTarget::Macos { arch, version } => macos_tags(arch, *version),
        WheelTarget::Windows { arch } => vec![format!("win_{arch}")],
    }
}

fn manylinux_tags(arch: &str, glibc: (u32, u32)) -> Vec<String> {
    // manylinux never covered glibc < 2.5; non-x86 architectures only exist from 2.17 on.
    let oldest_minor = if arch == "x86_64" || arch == "i686" {
        5
    } else {
        17
    };
    let mut out = Vec::new();
    if glibc.0 != 2 {
        return out;
    }
    for minor in (oldest_minor..=glibc.1).rev() {
        out.push(format!("manylinux_2_{minor}_{arch}"));
        let legacy = match minor {
            17 => Some("manylinux2014"),
            12 => Some("manylinux2010"),
            5 => Some("manylinux1"),
            _ => None,
        };
        // The legacy aliases were only defined for these architectures.
        let legacy_arch_ok = match minor {
            17 => true,
            _ => arch == "x86_64" || arch == "i686",
        };
        if let (Some(alias), true) = (legacy, legacy_arch_ok) {
            out.push(format!("{alias}_{arch}"));
        }
    }
    out
}

fn mac_binary_formats(version: (u32, u32), arch: &str) -> Vec<&'static str> {
    let mut formats: Vec<&'static str> = Vec::new();
    match arch {
        "x86_64" => {
            if version < (10, 4) {
                return formats;
            }
            formats.extend([
                "x86_64",
                "intel",
                "fat64",
                "fat32",
                "universal2",
                "universal",
            ]);
        }
        "arm64" => formats.extend(["arm64", "universal2"]),
        _ => {}
    }
    formats
}

fn macos_tags(arch: &str, version: (u32, u32)) -> Vec<String> {
    let mut out = Vec::new();
    if version.0 == 10 {
        for minor in (0..=version.1).rev() {
            for fmt in mac_binary_formats((10, minor), arch) {
                out.push(format!("macosx_10_{minor}_{fmt}"));
            }
        }
    }
    if version.0 >= 11 {
        for major in (11..=version.0).rev() {
            for fmt in mac_binary_formats((major, 0), arch) {
                out.push(format!("macosx_{major}_0_{fmt}"));
            }
        }
        // macOS 11+ still loads binaries built for 10.x (arm64 only via universal2).
        for minor in (4..=16).rev() {
            if arch == "x86_64" {
                for fmt in mac_binary_formats((10, minor), arch) {
                    out.push(format!("macosx_10_{minor}_{fmt}"));
                }
            } else {
                out.push(format!("macosx_10_{minor}_universal2"));
            }
        }
    }
    out
}

/// Every tag a CPython `py_major.py_minor` on `target` accepts, best first (like `packaging.tags.sys_tags`).
pub fn compatible_tags(target: &WheelTarget, py_major: u8, py_minor: u8) -> Vec<WheelTag> {
    let plats = platform_tags(target);
    let cp = format!("cp{py_major}{py_minor}");
    let mut out = Vec::new();
    for abi in [cp.as_str(), "abi3", "none"] {
        for p in &plats {
            out.push(WheelTag::new(&cp, abi, p));
        }
    }
    if py_major == 3 {
        for minor in (2..py_minor).rev() {
            let older = format!("cp3{minor}");
            for p in &plats {
                out.push(WheelTag::new(&older, "abi3", p));
            }
        }
    }
    let py_range = py_interpreter_range(py_major, py_minor);
    for py in &py_range {
        for p in &plats {
            out.push(WheelTag::new(py, "none", p));
        }
    }
    out.push(WheelTag::new(&cp, "none", "any"));
    for py in &py_range {
        out.push(WheelTag::new(py, "none", "any"));
    }
    out
}

fn py_interpreter_range(major: u8, minor: u8) -> Vec<String> {
    let mut out = vec![format!("py{major}{minor}"), format!("py{major}")];
    for m in (0..minor).rev() {
        out.push(format!("py{major}{m}"));
    }
    out
}

/// Rank of the best tag of a file within `supported` (lower is better); `None` if incompatible.
pub fn wheel_priority(tags_of_file: &[WheelTag], supported: &[WheelTag]) -> Option<usize> {
    tags_of_file
        .iter()
        .filter_map(|t| supported.iter().position(|s| s == t))
        .min()
}

/// Precomputed tag ranks for repeated [`wheel_priority`] lookups.
#[derive(Debug, Clone, Default)]
pub struct TagRanks {
    ranks: HashMap<WheelTag, usize>,
}

impl TagRanks {
    /// Indexes `supported` (best first).
    pub fn new(supported: &[WheelTag]) -> Self {
        let mut ranks = HashMap::new();
        for (i, t) in supported.iter().enumerate() {
            ranks.entry(t.clone()).or_insert(i);
        }
        TagRanks { ranks }
    }

    /// Same as [`wheel_priority`] but O(tags of the file).
    pub fn priority(&self, tags_of_file: &[WheelTag]) -> Option<usize> {
        tags_of_file
            .iter()
            .filter_map(|t| self.ranks.get(t))
            .copied()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(arch: &str) -> WheelTarget {
        WheelTarget::Manylinux {
            arch: arch.into(),
            glibc: (2, 17),
            musllinux: None,
        }
    }

    fn strs(tags: &[WheelTag]) -> Vec<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn manylinux_platforms_newest_first_with_aliases() {
        let p = platform_tags(&linux("x86_64"));
        assert_eq!(p[0], "manylinux_2_17_x86_64");
        assert_eq!(p[1], "manylinux2014_x86_64");
        assert_eq!(p[2], "manylinux_2_16_x86_64");
        assert!(p.contains(&"manylinux2010_x86_64".to_string()));
        assert_eq!(p.last().map(String::as_str), Some("manylinux1_x86_64"));
        assert!(!p.iter().any(|t| t.contains("2_28")));
        let a = platform_tags(&linux("aarch64"));
        assert_eq!(a, vec!["manylinux_2_17_aarch64", "manylinux2014_aarch64"]);
    }

    #[test]
    fn musllinux_when_enabled() {
        let t = WheelTarget::Manylinux {
            arch: "x86_64".into(),
            glibc: (2, 17),
            musllinux: Some((1, 2)),
        };
        let p = platform_tags(&t);
        let tail: Vec<_> = p.iter().rev().take(3).rev().cloned().collect();
        assert_eq!(
            tail,
            vec![
                "musllinux_1_2_x86_64",
                "musllinux_1_1_x86_64",
                "musllinux_1_0_x86_64"
            ]
        );
    }

    #[test]
    fn macos_platform_tables() {
        let arm = platform_tags(&WheelTarget::Macos {
            arch: "arm64".into(),
            version: (11, 0),
        });
        assert_eq!(
            &arm[..3],
            &[
                "macosx_11_0_arm64",
                "macosx_11_0_universal2",
                "macosx_10_16_universal2"
            ]
        );
        assert_eq!(
            arm.last().map(String::as_str),
            Some("macosx_10_4_universal2")
        );
        assert!(!arm.iter().any(|t| t.ends_with("x86_64")));

        let x86 = platform_tags(&WheelTarget::Macos {
            arch: "x86_64".into(),
            version: (10, 13),
        });
        assert_eq!(&x86[..2], &["macosx_10_13_x86_64", "macosx_10_13_intel"]);
        assert!(x86.contains(&"macosx_10_9_universal2".to_string()));
        assert!(x86.contains(&"macosx_10_4_x86_64".to_string()));
        assert!(!x86
            .iter()
            .any(|t| t.starts_with("macosx_10_14") || t.starts_with("macosx_11")));
        assert!(!x86.iter().any(|t| t.starts_with("macosx_10_3_")));
    }

    #[test]
    fn windows_platform() {
        assert_eq!(
            platform_tags(&WheelTarget::Windows {
                arch: "amd64".into()
            }),
            vec!["win_amd64"]
        );
    }

    #[test]
    fn cpython_tag_order() {
        let tags = compatible_tags(
            &WheelTarget::Windows {
                arch: "amd64".into(),
            },
            3,
            11,
        );
        let s = strs(&tags);
        let expect_prefix = [
            "cp311-cp311-win_amd64",
            "cp311-abi3-win_amd64",
            "cp311-none-win_amd64",
            "cp310-abi3-win_amd64",
            "cp39-abi3-win_amd64",
        ];
        assert_eq!(&s[..5], &expect_prefix);
        let pos = |t: &str| s.iter().position(|x| x == t).unwrap_or(usize::MAX);
        assert!(pos("cp32-abi3-win_amd64") < pos("py311-none-win_amd64"));
        assert!(pos("py311-none-win_amd64") < pos("py3-none-win_amd64"));
        assert!(pos("py3-none-win_amd64") < pos("py310-none-win_amd64"));
        assert!(pos("py30-none-win_amd64") < pos("cp311-none-any"));
        let tail = &s[s.len() - 14..];
        assert_eq!(tail[0], "cp311-none-any");
        assert_eq!(tail[1], "py311-none-any");
        assert_eq!(tail[2], "py3-none-any");
        assert_eq!(tail[13], "py30-none-any");
        assert_eq!(pos("cp31-abi3-win_amd64"), usize::MAX);
    }

    #[test]
    fn raise_needed_table() {
        let lin = linux("x86_64");
        let mac = WheelTarget::Macos {
            arch: "x86_64".into(),
            version: (10, 13),
        };
        let arm = WheelTarget::Macos {
            arch: "arm64".into(),
            version: (11, 0),
        };
        let tag = |p: &str| WheelTag::new("cp311", "cp311", p);
        type Case<'a> = (&'a WheelTarget, &'a str, Option<((u32, u32), &'a str)>);
        let cases: [Case; 12] = [
            (
                &lin,
                "manylinux_2_28_x86_64",
                Some(((2, 28), "manylinux_2_17_x86_64")),
            ),
            (&lin, "manylinux_2_17_x86_64", None),
            (&lin, "manylinux2014_x86_64", None),
            (&lin, "manylinux_2_28_aarch64", None),
            (&lin, "musllinux_1_2_x86_64", None),
            (&lin, "win_amd64", None),
            (
                &mac,
                "macosx_10_15_x86_64",
                Some(((10, 15), "macosx_10_13_x86_64")),
            ),
            (
                &mac,
                "macosx_10_15_universal2",
                Some(((10, 15), "macosx_10_13_universal2")),
            ),
            (&mac, "macosx_11_0_arm64", None),
            (&mac, "macosx_10_9_x86_64", None),
            (
                &arm,
                "macosx_12_0_arm64",
                Some(((12, 0), "macosx_11_0_arm64")),
            ),
            (&arm, "macosx_14_0_x86_64", None),
        ];
        for (target, platform, want) in cases {
            let got = target.raise_needed(&tag(platform));
            let want = want.map(|(v, p)| (v, tag(p)));
            assert_eq!(got, want, "{platform}");
        }
        let win = WheelTarget::Windows {
            arch: "amd64".into(),
        };
        assert_eq!(win.raise_needed(&tag("win_amd64")), None);
        assert_eq!(win.setting(), None);
        assert_eq!(
            mac.with_version((10, 15)).setting(),
            Some(("macos", (10, 15)))
        );
        assert!(platform_tags(&lin.with_version((2, 28)))
            .contains(&"manylinux_2_28_x86_64".to_string()));
    }

    #[test]
    fn priority_prefers_specific_and_rejects_foreign() {
        let sup = compatible_tags(&linux("x86_64"), 3, 11);
        let ranks = TagRanks::new(&sup);
        let native = vec![WheelTag::new("cp311", "cp311", "manylinux2014_x86_64")];
        let pure = vec![WheelTag::new("py3", "none", "any")];
        let foreign = vec![WheelTag::new("cp311", "cp311", "win_amd64")];
        let newer_glibc = vec![WheelTag::new("cp311", "cp311", "manylinux_2_28_x86_64")];
        let other_py = vec![WheelTag::new("cp312", "cp312", "manylinux2014_x86_64")];
        for (tags, ok) in [
            (&native, true),
            (&pure, true),
            (&foreign, false),
            (&newer_glibc, false),
            (&other_py, false),
        ] {
            assert_eq!(wheel_priority(tags, &sup).is_some(), ok, "{tags:?}");
            assert_eq!(ranks.priority(tags), wheel_priority(tags, &sup));
        }
        assert!(wheel_priority(&native, &sup) < wheel_priority(&pure, &sup));
        assert_eq!(wheel_priority(&native, &sup), Some(1));
    }
}
