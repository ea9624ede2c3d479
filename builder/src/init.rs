//! `envpack init`: a first spec and Conan profile for this machine, so that a newcomer's first
//! `envpack lock` works with no editing when the CPython mirror is a directory, and says what to
//! change otherwise.
//!
//! The CPython release is taken from the mirror when the mirror is local (`file://` or a
//! directory): the newest version built for this machine's platform. A remote mirror is not
//! asked (init never touches the network); the spec then names the release envpack documents.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use envpack_pypkg::{all_platforms, parse_python_version, Platform};
use url::Url;

/// The CPython release written when the mirror can't be looked into.
pub const DEFAULT_PYTHON: (&str, &str) = ("3.12.7", "20241016");

/// What `init` is asked to write.
#[derive(Debug, Clone)]
pub struct InitRequest<'a> {
    /// The directory that gets `envpack.toml` and `profiles/` (made if missing).
    pub dir: &'a Path,
    /// `[env].name`; default: the directory's name.
    pub name: Option<&'a str>,
    /// CPython version and release tag, instead of looking into the mirror.
    pub python: Option<(&'a str, &'a str)>,
    /// The CPython mirror in effect (`ENVPACK_PYTHON_MIRROR` or the default).
    pub mirror: &'a Url,
    /// The platform the spec is written for (this machine's).
    pub platform: &'a Platform,
    /// The host's C/C++ compiler major version, if found.
    pub compiler_version: Option<String>,
}

/// What `init` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Initialized {
    /// The spec file.
    pub spec: PathBuf,
    /// The Conan profile.
    pub profile: PathBuf,
    /// The platform it is for.
    pub platform: String,
    /// `[env].name`.
    pub name: String,
    /// CPython version and release tag.
    pub python_version: String,
    /// The python-build-standalone release tag.
    pub python_build: String,
    /// Where the release was chosen from.
    pub python_from: String,
}

/// `s` as one word of a POSIX shell, or of PowerShell on Windows: as it is when nothing in it
/// needs quoting, else in single quotes; a leading `-` gets `./` so it isn't read as an option.
fn shell_word(s: &str, windows: bool) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:=%\\".contains(c);
    let s = if s.starts_with('-') {
        format!("./{s}")
    } else {
        s.to_string()
    };
    if !s.is_empty() && s.chars().all(plain) && (windows || !s.contains('\\')) {
        s
    } else if windows {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Initialized {
    /// What was written and what to run next, for a person; `index_from_env`: whether
    /// `ENVPACK_INDEX_URL` is set.
    pub fn next_steps(&self, index_from_env: bool) -> String {
        // On Windows the lines are PowerShell's.
        let windows = self.platform.starts_with("windows");
        let dir = self
            .spec
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let cd = match dir.as_str() {
            "" | "." => String::new(),
            d => format!("  cd {}\n", shell_word(d, windows)),
        };
        // The name is a spec name (letters, digits, `.`, `_`, `-`): it needs no quoting.
        let root = if windows {
            format!("$env:USERPROFILE\\envs\\{}", self.name)
        } else {
            format!("~/envs/{}", self.name)
        };
        let index = if index_from_env {
            "packages come from ENVPACK_INDEX_URL"
        } else {
            "set ENVPACK_INDEX_URL to your package index (or [packages].index in the spec) first"
        };
        format!(
            "wrote {} and {} for {} (CPython {} build {}, from {})\nnext ({index}):\n{cd}  envpack lock\n  envpack build --out dist\n  envpack-unpack dist/{name}-{platform}.envpack.tar --root {root}\n",
            self.spec.display(),
            self.profile.display(),
            self.platform,
            self.python_version,
            self.python_build,
            self.python_from,
            name = self.name,
            platform = self.platform,
        )
    }
}

/// [`init`] for this machine: its platform and compiler, and the CPython mirror in effect.
pub fn init_for_this_machine(
    dir: &Path,
    name: Option<&str>,
    python: Option<(&str, &str)>,
) -> anyhow::Result<Initialized> {
    let platform = envpack_pypkg::host_platform()
        .ok_or_else(|| anyhow!("this machine is none of envpack's platforms"))?;
    let mirror = crate::config::python_mirror(None)?;
    init(&InitRequest {
        dir,
        name,
        python,
        mirror: &mirror,
        compiler_version: detect_compiler_version(&platform),
        platform: &platform,
    })
}

/// Writes `envpack.toml` and one Conan profile into `req.dir`; refuses (changing nothing) if
/// either exists.
pub fn init(req: &InitRequest) -> anyhow::Result<Initialized> {
    let name = match req.name {
        Some(n) => n.to_string(),
        None => default_name(req.dir),
    };
    let (version, build, from) = match req.python {
        Some((v, b)) => (v.to_string(), b.to_string(), "the command line".to_string()),
        None => choose_python(req.mirror, req.platform)?,
    };
    parse_python_version(&version).map_err(|e| anyhow!("{e}"))?;
    let (profile_name, profile) = profile_for(req.platform, req.compiler_version.as_deref());
    let profile_rel = format!("profiles/{profile_name}");
    let spec = spec_text(&name, req.platform, &version, &build, &from, &profile_rel);
    // The text must be a spec envpack accepts, whatever the inputs were.
    crate::spec::parse(&spec, "envpack.toml").map_err(|e| match e {
        crate::spec::SpecError::Invalid { message, .. }
        | crate::spec::SpecError::InvalidAt { message, .. }
        | crate::spec::SpecError::Parse { message, .. } => {
            anyhow!("{message} (given to init or found in the mirror; nothing was written)")
        }
        e => anyhow!("{e}"),
    })?;

    let spec_path = req.dir.join("envpack.toml");
    let profile_path = req.dir.join(&profile_rel);
    for p in [&spec_path, &profile_path] {
        if p.symlink_metadata().is_ok() {
            bail!(
                "{} already exists; init never replaces a file (edit it, or init another directory)",
                p.display()
            );
        }
    }
    let profiles = req.dir.join("profiles");
    if profiles.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        bail!(
            "{} is not a directory (a link is not followed: the profile must be written inside {})",
            profiles.display(),
            req.dir.display()
        );
    }
    let made = make_dirs(req.dir)?;
    let written = write_new(&profile_path, &profile).and_then(|()| {
        write_new(&spec_path, &spec).inspect_err(|_| {
            let _ = fs_err::remove_file(&profile_path);
        })
    });
    if let Err(e) = written {
        for d in made.iter().rev() {
            let _ = fs_err::remove_dir(d);
        }
        return Err(e);
    }
    Ok(Initialized {
        spec: spec_path,
        profile: profile_path,
        platform: req.platform.name.clone(),
        name,
        python_version: version,
        python_build: build,
        python_from: from,
    })
}

/// The major version of the compiler a Conan profile for `platform` names, asked of the
/// compiler on PATH (`gcc`, or `clang` on macOS); `None` when there is none or it's MSVC.
pub fn detect_compiler_version(platform: &Platform) -> Option<String> {
    let tool = match platform.markers.platform_system.as_str() {
        "Linux" => "gcc",
        "Darwin" => "clang",
        _ => return None,
    };
    let out = std::process::Command::new(tool)
        .arg("-dumpversion")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let major = text.trim().split('.').next()?.to_string();
    (out.status.success() && !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
        .then_some(major)
}

/// The directory's name made into an env name (letters, digits, `.`, `_`, `-`).
fn default_name(dir: &Path) -> String {
    let base = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| if crate::spec::is_name_char(c) { c } else { '-' })
        .take(64)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if !clean.chars().any(|c| c.is_ascii_alphanumeric()) {
        "devenv".into()
    } else {
        clean
    }
}

/// The newest CPython of a local mirror for `platform`, else [`DEFAULT_PYTHON`].
fn choose_python(mirror: &Url, platform: &Platform) -> anyhow::Result<(String, String, String)> {
    let Ok(dir) = mirror.to_file_path() else {
        let (v, b) = DEFAULT_PYTHON;
        return Ok((
            v.into(),
            b.into(),
            format!("envpack's default ({mirror} was not asked)"),
        ));
    };
    let suffix = format!(
        "-{}-{}.tar.gz",
        platform.pbs_triple,
        crate::spec::DEFAULT_VARIANT
    );
    let mut best: Option<(pep440_rs::Version, String, String)> = None;
    let builds = fs_err::read_dir(&dir)
        .with_context(|| format!("looking for CPython in the mirror {mirror}"))?;
    for build in builds.filter_map(Result::ok) {
        let Ok(files) = fs_err::read_dir(build.path()) else {
            continue;
        };
        for f in files.filter_map(Result::ok) {
            let file = f.file_name().to_string_lossy().into_owned();
            let Some((version, tag)) = file
                .strip_prefix("cpython-")
                .and_then(|r| r.strip_suffix(&suffix))
                .and_then(|r| r.split_once('+'))
            else {
                continue;
            };
            // A release candidate or a short version is no default for a newcomer, and a tag
            // that isn't its directory's name would not be found there by lock.
            let in_its_dir = build.file_name().to_str() == Some(tag);
            let usable = crate::spec::is_release_tag(tag) && parse_python_version(version).is_ok();
            if !in_its_dir || !usable {
                continue;
            }
            let Ok(v) = version.parse::<pep440_rs::Version>() else {
                continue;
            };
            if v.any_prerelease() {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(bv, bt, _)| (&v, tag) > (bv, bt.as_str()))
            {
                best = Some((v, tag.to_string(), version.to_string()));
            }
        }
    }
    match best {
        Some((_, tag, version)) => Ok((version, tag, format!("the mirror {mirror}"))),
        None => bail!("the mirror {mirror} has no CPython for {} (no {{build}}/cpython-VERSION+BUILD{suffix}); pass --python VERSION --python-build TAG", platform.name),
    }
}

/// A Conan profile for `platform`'s usual compiler: its file name and text.
fn profile_for(platform: &Platform, compiler_version: Option<&str>) -> (String, String) {
    let arch = match platform.markers.platform_machine.as_str() {
        "aarch64" | "arm64" => "armv8",
        "AMD64" | "x86_64" => "x86_64",
        other => other,
    };
    let (os, compiler, default_version, extra) = match platform.markers.platform_system.as_str() {
        "Darwin" => (
            "Macos",
            "apple-clang",
            "15",
            "compiler.libcxx=libc++\ncompiler.cppstd=gnu17\n",
        ),
        "Windows" => (
            "Windows",
            "msvc",
            "194",
            "compiler.runtime=dynamic\ncompiler.cppstd=14\n",
        ),
        _ => (
            "Linux",
            "gcc",
            "12",
            "compiler.libcxx=libstdc++11\ncompiler.cppstd=gnu17\n",
        ),
    };
    let version = compiler_version.unwrap_or(default_version);
    let short = if compiler == "apple-clang" {
        "apple-clang"
    } else {
        compiler
    };
    let name = format!(
        "{}-{short}{version}",
        platform.name.split('-').next().unwrap_or("host")
    );
    let found = if compiler_version.is_some() {
        "found on this machine"
    } else {
        "envpack's default; set yours"
    };
    let text = format!(
        "# Written by `envpack init` for {} ({compiler} {version}: {found}).\n[settings]\nos={os}\narch={arch}\ncompiler={compiler}\ncompiler.version={version}\n{extra}build_type=Release\n",
        platform.name
    );
    (name, text)
}

/// The spec's text: one platform, the others named in a comment.
fn spec_text(
    name: &str,
    platform: &Platform,
    version: &str,
    build: &str,
    from: &str,
    profile: &str,
) -> String {
    let others: Vec<String> = all_platforms()
        .unwrap_or_default()
        .iter()
        .filter(|p| p.name != platform.name)
        .map(|p| p.name.clone())
        .collect();
    format!(
        r#"# An envpack environment, written by `envpack init` for {host}.
# Next: `envpack lock`, then `envpack build --out dist`. envpack's docs/spec-and-lock.md lists
# every key.

[env]
name = {q_name}
# Add platforms to build for from any machine: {others}.
platforms = [{q_host}]

[python]
# A python-build-standalone release (from {from}).
version = {q_version}
build = {q_build}

[packages]
requirements = ["conan==2.21.0"]
# The package index comes from ENVPACK_INDEX_URL, or:
# index = "https://pypi-mirror.example/simple/"

[conan]
# Remotes the env's Conan starts with, in priority order:
# remotes = [{{ name = "team", url = "https://conan.example/api/conan/team", verify-ssl = true }}]

[conan.profiles]
# Files next to this spec; add a per-platform table for other platforms:
# default = {{ {host} = {q_profile}, windows-x86_64 = "profiles/windows-msvc194" }}
default = {q_profile}
"#,
        host = platform.name,
        others = others.join(", "),
        q_name = quoted(name),
        q_host = quoted(&platform.name),
        q_version = quoted(version),
        q_build = quoted(build),
        q_profile = quoted(profile),
    )
}

/// `s` as a TOML basic string, quotes and control characters escaped: what the user or a
/// mirror's file names give can't add keys to the spec.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Creates `dir` and its missing parents; returns the ones it made, outermost first.
fn make_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut d = dir.join("profiles");
    while d.symlink_metadata().is_err() {
        missing.push(d.clone());
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p.to_path_buf(),
            _ => break,
        }
    }
    missing.reverse();
    for (i, m) in missing.iter().enumerate() {
        if let Err(e) = fs_err::create_dir(m) {
            for made in missing[..i].iter().rev() {
                let _ = fs_err::remove_dir(made);
            }
            return Err(e.into());
        }
    }
    Ok(missing)
}

/// Writes a file that must not exist yet (never replacing one made meanwhile).
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = fs_err::remove_file(path);
        return Err(anyhow!("writing {}: {e}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "init_tests.rs"]
mod tests;
