//! Distribution file names (wheels and sdists) and normalized package names.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;

use crate::tags::WheelTag;
use crate::PypkgError;

/// A PEP 503 normalized project name (lowercase, runs of `-_.` collapsed to `-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

impl PackageName {
    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PackageName {
    type Err = PypkgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PypkgError::InvalidPackageName(s.to_string());
        let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_last_ok(s.chars().next()) || !first_last_ok(s.chars().last()) {
            return Err(bad());
        }
        let mut out = String::with_capacity(s.len());
        let mut in_sep = false;
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
                in_sep = false;
            } else if matches!(c, '-' | '_' | '.') {
                if !in_sep {
                    out.push('-');
                }
                in_sep = true;
            } else {
                return Err(bad());
            }
        }
        Ok(PackageName(out))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&pep508_rs::PackageName> for PackageName {
    fn from(n: &pep508_rs::PackageName) -> Self {
        // pep508_rs names are already PEP 503 normalized.
        PackageName(n.as_ref().to_string())
    }
}

/// A parsed `.whl` file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    /// Project name.
    pub name: PackageName,
    /// Project version.
    pub version: Version,
    /// Optional build tag (starts with a digit).
    pub build: Option<String>,
    /// Every tag the compressed tag sets expand to.
    pub tags: Vec<WheelTag>,
}

/// A parsed source distribution file name (`.tar.gz` or `.zip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdistFilename {
    /// Project name.
    pub name: PackageName,
    /// Project version.
    pub version: Version,
}

/// Either kind of distribution file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistFilename {
    /// A built wheel.
    Wheel(WheelFilename),
    /// A source distribution.
    Sdist(SdistFilename),
}

impl DistFilename {
    /// The project name.
    pub fn name(&self) -> &PackageName {
        match self {
            DistFilename::Wheel(w) => &w.name,
            DistFilename::Sdist(s) => &s.name,
        }
    }

    /// The project version.
    pub fn version(&self) -> &Version {
        match self {
            DistFilename::Wheel(w) => &w.version,
            DistFilename::Sdist(s) => &s.version,
        }
    }
}

/// Parses a wheel name `{name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl`.
pub fn parse_wheel_filename(f: &str) -> Option<WheelFilename> {
    let stem = f.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    let (name, version, build, py, abi, plat) = match parts.as_slice() {
        [n, v, p, a, pl] => (*n, *v, None, *p, *a, *pl),
        [n, v, b, p, a, pl] => {
            if !b.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            (*n, *v, Some(b.to_string()), *p, *a, *pl)
        }
        _ => return None,
    };
    let name = PackageName::from_str(name).ok()?;
    let version = Version::from_str(version).ok()?;
    let mut tags = Vec::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for pl in plat.split('.') {
                if p.is_empty() || a.is_empty() || pl.is_empty() {
                    return None;
                }
                tags.push(WheelTag::new(p, a, pl));
            }
        }
    }
    Some(WheelFilename {
        name,
        version,
        build,
        tags,
    })
}

/// Parses a source distribution name `{name}-{ver}.tar.gz` / `.zip`.
pub fn parse_sdist_filename(f: &str) -> Option<SdistFilename> {
    let stem = f
        .strip_suffix(".tar.gz")
        .or_else(|| f.strip_suffix(".zip"))?;
    // Versions never contain '-', legacy names may.
    let (name, version) = stem.rsplit_once('-')?;
    Some(SdistFilename {
        name: PackageName::from_str(name).ok()?,
        version: Version::from_str(version).ok()?,
    })
}

/// Parses a wheel or sdist file name; `None` for anything else.
pub fn parse_dist_filename(f: &str) -> Option<DistFilename> {
    if f.ends_with(".whl") {
        parse_wheel_filename(f).map(DistFilename::Wheel)
    } else {
        parse_sdist_filename(f).map(DistFilename::Sdist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_normalization() {
        for (raw, norm) in [
            ("PyYAML", "pyyaml"),
            ("python_dateutil", "python-dateutil"),
            ("zope.interface", "zope-interface"),
            ("a-_.b", "a-b"),
            ("X1", "x1"),
        ] {
            assert_eq!(
                PackageName::from_str(raw).map(|n| n.to_string()).ok(),
                Some(norm.to_string())
            );
        }
        for bad in ["", "-a", "a-", "a b", "ä", "a/b"] {
            assert!(PackageName::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wheel_names() {
        let w = parse_wheel_filename(
            "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name.as_str(), "pyyaml");
        assert_eq!(w.version.to_string(), "6.0.2");
        assert_eq!(w.build, None);
        assert_eq!(
            w.tags,
            vec![
                WheelTag::new("cp311", "cp311", "manylinux_2_17_x86_64"),
                WheelTag::new("cp311", "cp311", "manylinux2014_x86_64"),
            ]
        );
        let w = parse_wheel_filename("tzdata-2024.1-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.tags.len(), 2);
        let w = parse_wheel_filename("foo-1.0-1build-py3-none-any.whl").unwrap();
        assert_eq!(w.build.as_deref(), Some("1build"));
        for bad in [
            "foo-1.0-py3-none.whl",
            "foo-1.0-x-py3-none-any.whl",
            "foo-notaversion!!-py3-none-any.whl",
            "foo-1.0-py3-none-any.zip",
            "foo-1.0-py3--any.whl",
        ] {
            assert!(parse_wheel_filename(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sdist_names() {
        let s = parse_sdist_filename("patch-ng-1.18.1.tar.gz").unwrap();
        assert_eq!(
            (s.name.as_str(), s.version.to_string().as_str()),
            ("patch-ng", "1.18.1")
        );
        let s = parse_sdist_filename("Conan-2.21.0.zip").unwrap();
        assert_eq!(s.name.as_str(), "conan");
        assert!(parse_sdist_filename("foo-1.0.tar.bz2").is_none());
        assert!(parse_sdist_filename("foo.tar.gz").is_none());
        assert!(matches!(
            parse_dist_filename("a-1.0-py3-none-any.whl"),
            Some(DistFilename::Wheel(_))
        ));
        assert!(matches!(
            parse_dist_filename("a-1.0.tar.gz"),
            Some(DistFilename::Sdist(_))
        ));
        assert!(parse_dist_filename("a-1.0.exe").is_none());
    }
}
