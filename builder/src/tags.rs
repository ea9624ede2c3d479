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
