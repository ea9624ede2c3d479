//! The checks a spec passes after it parses: names, platforms, versions, URLs, references,
//! and (when loaded from a file) the files it points at. Every error names the place in the
//! spec (`file:line:column`) when it can be found.

use std::path::Path;

use envpack_layers::digest::Sha256Digest;
use envpack_layers::shown_name;
use envpack_pypkg::{parse_python_version, platform_by_name};

use super::{BaseSource, ProfileSource, Spec, SpecError};
use crate::toml_place::{place, Key};

/// A character env names and CPython release tags may have: letters, digits, `.`, `_`, `-`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `tag` can be `[python].build`: a release tag of [`is_name_char`]s.
pub fn is_release_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.chars().all(is_name_char)
}

pub(super) fn validate(spec: &Spec, text: &str, origin: &str) -> Result<(), SpecError> {
    let at = |path: &[Key], message: String| invalid_at(text, origin, path, message);
    use Key::{Index, Name};
    let name = &spec.env.name;
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(is_name_char)
        || name.starts_with('.')
    {
        return Err(at(
            &[Name("env"), Name("name")],
            format!(
                "env.name \"{}\" must be 1-64 characters of A-Z a-z 0-9 . _ - and not start with '.'",
                shown_name(name)
            ),
        ));
    }
    if spec.env.platforms.is_empty() {
        return Err(at(
            &[Name("env"), Name("platforms")],
            "env.platforms is empty".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in spec.env.platforms.iter().enumerate() {
        let here = [Name("env"), Name("platforms"), Index(i)];
        platform_by_name(p).map_err(|e| at(&here, format!("env.platforms: {e}")))?;
        if !seen.insert(p) {
            return Err(at(
                &here,
                format!("env.platforms lists \"{}\" twice", shown_name(p)),
            ));
        }
    }
    for (p, settings) in &spec.platforms {
        let here = [Name("platforms"), Name(p)];
        if !spec.env.platforms.contains(p) {
            return Err(at(
                &here,
                format!(
                    "platforms.{p}: \"{}\" is not in env.platforms",
                    shown_name(p)
                ),
            ));
        }
        if settings.entries().count() == 0 {
            return Err(at(&here, format!("platforms.{p} sets nothing")));
        }
        spec.platform(p).map_err(|e| at(&here, e.to_string()))?;
    }
    parse_python_version(&spec.python.version)
        .map_err(|e| at(&[Name("python"), Name("version")], e.to_string()))?;
    if !is_release_tag(&spec.python.build) {
        return Err(at(
            &[Name("python"), Name("build")],
            format!(
                "python.build \"{}\" is not a release tag",
                shown_name(&spec.python.build)
            ),
        ));
    }
    for (p, f) in &spec.python.files {
        let here = [Name("python"), Name("files"), Name(p)];
        if !spec.env.platforms.contains(p) {
            return Err(at(
                &here,
                format!(
                    "python.files.{p}: \"{}\" is not in env.platforms",
                    shown_name(p)
                ),
            ));
        }
        Sha256Digest::from_hex(&f.sha256).map_err(|_| {
            let here = [here[0], here[1], here[2], Name("sha256")];
            at(
                &here,
                format!("python.files.{p}.sha256 is not 64 hex digits"),
            )
        })?;
        url::Url::parse(&f.url).map_err(|e| {
            let here = [here[0], here[1], here[2], Name("url")];
            at(
                &here,
                format!("python.files.{p}.url \"{}\": {e}", shown_name(&f.url)),
            )
        })?;
    }
    if spec.packages.requirements.is_empty() {
        return Err(at(
            &[Name("packages"), Name("requirements")],
            "packages.requirements is empty".into(),
        ));
    }
    for (i, r) in spec.packages.requirements.iter().enumerate() {
        envpack_pypkg::parse_requirement(r).map_err(|e| {
            let here = [Name("packages"), Name("requirements"), Index(i)];
            at(
                &here,
                format!("packages.requirements: \"{}\": {e}", shown_name(r)),
            )
        })?;
    }
    let mut remote_names = std::collections::BTreeSet::new();
    for (i, r) in spec.conan.remotes.iter().enumerate() {
        let here = [Name("conan"), Name("remotes"), Index(i)];
        if r.name.is_empty() || !remote_names.insert(&r.name) {
            return Err(at(
                &here,
                format!(
                    "conan.remotes: remote name \"{}\" is empty or repeated",
                    shown_name(&r.name)
                ),
            ));
        }
        url::Url::parse(&r.url).map_err(|e| {
            let here = [here[0], here[1], here[2], Name("url")];
            at(
                &here,
                format!(
                    "conan.remotes.{}: url \"{}\": {e}",
                    r.name,
                    shown_name(&r.url)
                ),
            )
        })?;
    }
    for (name, src) in &spec.conan.profiles {
        let here = [Name("conan"), Name("profiles"), Name(name)];
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(at(
                &here,
                format!("conan.profiles: bad profile name \"{}\"", shown_name(name)),
            ));
        }
        if let ProfileSource::PerPlatform(map) = src {
            for p in map.keys() {
                if !spec.env.platforms.contains(p) {
                    let here = [here[0], here[1], here[2], Name(p)];
                    return Err(at(
                        &here,
                        format!(
                            "conan.profiles.{name}: \"{}\" is not in env.platforms",
                            shown_name(p)
                        ),
                    ));
                }
            }
        }
    }
    match &spec.image.base {
        None => {}
        Some(BaseSource::All(r)) => {
            envpack_oci::Reference::parse(r)
                .map_err(|e| at(&[Name("image"), Name("base")], format!("image.base: {e}")))?;
        }
        Some(BaseSource::PerPlatform(map)) => {
            for (p, r) in map {
                let here = [Name("image"), Name("base"), Name(p)];
                if !spec.env.platforms.contains(p) {
                    return Err(at(
                        &here,
                        format!(
                            "image.base.{p}: \"{}\" is not in env.platforms",
                            shown_name(p)
                        ),
                    ));
                }
                envpack_oci::Reference::parse(r)
                    .map_err(|e| at(&here, format!("image.base.{p}: {e}")))?;
            }
        }
    }
    for home_path in spec.conan.home_files.keys() {
        envpack_layers::tree::validate_rel_path(home_path).map_err(|e| {
            let here = [Name("conan"), Name("home-files"), Name(home_path)];
            at(
                &here,
                format!("conan.home-files: \"{}\": {e}", shown_name(home_path)),
            )
        })?;
    }
    let mut refs = std::collections::BTreeSet::new();
    for (i, r) in spec.conan.recipes.iter().enumerate() {
        let here = [Name("conan"), Name("recipes"), Index(i), Name("ref")];
        let parsed = crate::conan_ref::RecipeRef::parse(&r.reference).map_err(|e| {
            at(
                &here,
                format!("conan.recipes: \"{}\" {e}", shown_name(&r.reference)),
            )
        })?;
        let origin = match (&r.path, &r.remote) {
            (Some(_), None) => Ok(()),
            (None, Some(remote)) if spec.conan.remotes.iter().any(|x| &x.name == remote) => Ok(()),
            (None, Some(remote)) => Err(format!(
                "conan.recipes: {} names remote \"{}\", which is not in conan.remotes",
                parsed,
                shown_name(remote)
            )),
            _ => Err(format!(
                "conan.recipes: {parsed} needs either path (a folder next to the spec) or remote (one of conan.remotes)"
            )),
        };
        if let Err(message) = origin {
            return Err(at(&[Name("conan"), Name("recipes"), Index(i)], message));
        }
        if !refs.insert((parsed.name.clone(), parsed.version.to_ascii_lowercase())) {
            return Err(at(
                &here,
                format!(
                    "conan.recipes: {}/{} is listed twice (a version differing only in case counts: macOS and Windows hold one folder for both)",
                    parsed.name, parsed.version
                ),
            ));
        }
    }
    let mut source_urls = std::collections::BTreeSet::new();
    for (i, src) in spec.conan.sources.iter().enumerate() {
        let here = [Name("conan"), Name("sources"), Index(i)];
        let url = url::Url::parse(&src.url).map_err(|e| {
            at(
                &here,
                format!("conan.sources: url \"{}\": {e}", shown_name(&src.url)),
            )
        })?;
        if !matches!(url.scheme(), "https" | "http" | "file") {
            return Err(at(
                &here,
                format!(
                    "conan.sources: url \"{}\": only https, http and file URLs are fetched",
                    shown_name(&src.url)
                ),
            ));
        }
        if !source_urls.insert(&src.url) {
            return Err(at(
                &here,
                format!(
                    "conan.sources: \"{}\" is listed twice",
                    shown_name(&src.url)
                ),
            ));
        }
        if let Some(sha) = &src.sha256 {
            if Sha256Digest::from_hex(sha).is_err() {
                let here = [here[0], here[1], here[2], Name("sha256")];
                return Err(at(
                    &here,
                    format!(
                        "conan.sources: sha256 \"{}\" is not 64 hex digits",
                        shown_name(sha)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A semantic error at `path` of the spec, with its line and column when the path is found.
fn invalid_at(text: &str, origin: &str, path: &[Key], message: String) -> SpecError {
    match place(text, path) {
        Some((line, column)) => SpecError::InvalidAt {
            path: origin.to_string(),
            line,
            column,
            message,
        },
        None => SpecError::Invalid {
            path: origin.to_string(),
            message,
        },
    }
}

/// The profiles and CONAN_HOME files the spec names: each a relative path to a file under
/// `base` (the spec's directory), so a typo is reported before anything is resolved.
pub(super) fn check_files(
    spec: &Spec,
    text: &str,
    origin: &str,
    base: &Path,
) -> Result<(), SpecError> {
    use Key::Name;
    let mut named: Vec<(Vec<Key>, String, &str)> = Vec::new();
    for (name, src) in &spec.conan.profiles {
        match src {
            ProfileSource::All(f) => named.push((
                vec![Name("conan"), Name("profiles"), Name(name)],
                format!("conan.profiles.{name}"),
                f,
            )),
            ProfileSource::PerPlatform(m) => {
                for (p, f) in m {
                    named.push((
                        vec![Name("conan"), Name("profiles"), Name(name), Name(p)],
                        format!("conan.profiles.{name}.{p}"),
                        f,
                    ));
                }
            }
        }
    }
    for (path, f) in &spec.conan.home_files {
        named.push((
            vec![Name("conan"), Name("home-files"), Name(path)],
            format!("conan.home-files.\"{}\"", shown_name(path)),
            f,
        ));
    }
    for (at, what, file) in named {
        if let Err(problem) = spec_file(base, file) {
            return Err(invalid_at(text, origin, &at, format!("{what}: {problem}")));
        }
    }
    if let Some(dir) = &spec.conan.config {
        if let Err(problem) = spec_dir(base, dir) {
            let at = [Name("conan"), Name("config")];
            return Err(invalid_at(
                text,
                origin,
                &at,
                format!("conan.config: {problem}"),
            ));
        }
    }
    for (i, r) in spec.conan.recipes.iter().enumerate() {
        let Some(path) = &r.path else { continue };
        let checked = spec_dir(base, path).and_then(|dir| {
            if dir.join("conanfile.py").is_file() {
                Ok(())
            } else {
                Err(format!("{path} has no conanfile.py"))
            }
        });
        if let Err(problem) = checked {
            let at = [Name("conan"), Name("recipes"), Key::Index(i), Name("path")];
            let what = format!("conan.recipes.\"{}\"", shown_name(&r.reference));
            return Err(invalid_at(text, origin, &at, format!("{what}: {problem}")));
        }
    }
    Ok(())
}

/// The directory a spec names by `rel` (a recipe folder, a config tree): inside the spec's
/// directory with every link followed, like [`spec_file`].
pub fn spec_dir(base: &Path, rel: &str) -> Result<std::path::PathBuf, String> {
    spec_entry(base, rel, true)
}

/// The file a spec names by `rel`, relative to the spec's directory `base`: it must be a file
/// and, with every link followed, still inside that directory, so a spec (say, from a cloned
/// repository) can't pull `~/.ssh/id_rsa` into a lock through `profiles/x -> ~/.ssh/id_rsa`.
pub fn spec_file(base: &Path, rel: &str) -> Result<std::path::PathBuf, String> {
    spec_entry(base, rel, false)
}

/// [`spec_file`] or (`dir`) [`spec_dir`].
fn spec_entry(base: &Path, rel: &str, dir: bool) -> Result<std::path::PathBuf, String> {
    let (kind, what) = if dir {
        ("directory", "folder")
    } else {
        ("file", "file")
    };
    let shown = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let shown = shown.display();
    if envpack_layers::tree::validate_rel_path(rel).is_err() {
        return Err(format!(
            "\"{}\" must be a relative path inside the spec's directory ({shown})",
            shown_name(rel)
        ));
    }
    let path = base.join(rel);
    if (dir && !path.is_dir()) || (!dir && !path.is_file()) {
        return Err(format!(
            "no {kind} {rel} (paths are relative to the spec's directory, {shown})"
        ));
    }
    let (target, base_dir) = fs_err::canonicalize(&path)
        .and_then(|t| Ok((t, fs_err::canonicalize(base)?)))
        .map_err(|e| format!("{rel}: {e}"))?;
    // The resolved path is what gets read, so a link swapped after this check isn't followed.
    if target.starts_with(&base_dir) {
        Ok(target)
    } else {
        Err(format!(
            "{rel} leads outside the spec's directory ({shown}) through a link; copy the {what} in instead"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load, parse, tests::GOOD};

    #[test]
    fn semantic_errors_carry_line_and_column() {
        // GOOD begins with a newline: line 2 is `[env]`.
        let cases = [
            (
                GOOD.replace("\"windows-x86_64\"]", "\"plan9-mips\"]"),
                "s.toml:4:30: env.platforms: unknown platform \"plan9-mips\"",
            ),
            (
                GOOD.replace("\"windows-x86_64\"]", "\"linux-x86_64\"]"),
                "s.toml:4:30: env.platforms lists \"linux-x86_64\" twice",
            ),
            (GOOD.replace("3.12.7", "3.12"), "s.toml:7:11: "),
            (
                GOOD.replace("conan==2.21.0", "conan=== ="),
                "s.toml:11:17: packages.requirements: \"conan=== =\"",
            ),
            (
                GOOD.replace("openssl-devenv", "../evil"),
                "s.toml:3:8: env.name \"../evil\" must be",
            ),
            (
                GOOD.replace("msvc = { windows-x86_64", "msvc = { macos-arm64"),
                "s.toml:15:71: conan.profiles.msvc: \"macos-arm64\" is not in env.platforms",
            ),
            (
                GOOD.replace("https://conan.example.org", "no url"),
                "s.toml:14:44: conan.remotes.openssl-conan: url \"no url/api/conan/openssl\"",
            ),
            (
                format!("{GOOD}\n[platforms.macos-arm64]\nmacos = \"14.0\"\n"),
                "s.toml:17:1: platforms.macos-arm64: \"macos-arm64\" is not in env.platforms",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text, "s.toml").unwrap_err().to_string();
            assert!(err.starts_with(want), "want {want:?}, got {err}");
        }
    }

    #[test]
    fn files_the_spec_names_must_exist_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("envpack.toml");
        fs_err::create_dir(dir.path().join("profiles")).unwrap();
        fs_err::write(dir.path().join("profiles/linux-gcc12"), "[settings]\n").unwrap();
        let shown = dir.path().display();
        let cases = [
            (
                GOOD.to_string(),
                format!("envpack.toml:15:74: conan.profiles.msvc.windows-x86_64: no file profiles/msvc (paths are relative to the spec's directory, {shown})"),
            ),
            (
                GOOD.replace("profiles/linux-gcc12", "../outside"),
                format!("envpack.toml:15:24: conan.profiles.default: \"../outside\" must be a relative path inside the spec's directory ({shown})"),
            ),
            (
                GOOD.replace(", msvc = { windows-x86_64 = \"profiles/msvc\" }", "")
                    + "[conan.home-files]\n\"settings_user.yml\" = \"conan/settings_user.yml\"\n",
                format!("envpack.toml:17:23: conan.home-files.\"settings_user.yml\": no file conan/settings_user.yml (paths are relative to the spec's directory, {shown})"),
            ),
        ];
        for (text, want) in cases {
            fs_err::write(&spec, &text).unwrap();
            let err = load(&spec).unwrap_err().to_string();
            let err = err.replacen(&spec.display().to_string(), "envpack.toml", 1);
            assert_eq!(err, want);
        }
        // A link that leads out of the spec's directory is refused, one that stays is fine.
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            fs_err::write(outside.path().join("secret"), "KEY").unwrap();
            std::os::unix::fs::symlink(
                outside.path().join("secret"),
                dir.path().join("profiles/msvc"),
            )
            .unwrap();
            fs_err::write(&spec, GOOD).unwrap();
            let err = load(&spec).unwrap_err().to_string();
            assert!(err.contains("conan.profiles.msvc.windows-x86_64: profiles/msvc leads outside the spec's directory"), "{err}");
            fs_err::remove_file(dir.path().join("profiles/msvc")).unwrap();
            std::os::unix::fs::symlink("linux-gcc12", dir.path().join("profiles/msvc")).unwrap();
            assert!(load(&spec).is_ok());
            fs_err::remove_file(dir.path().join("profiles/msvc")).unwrap();
        }
        // Every file present: loads.
        fs_err::write(dir.path().join("profiles/msvc"), "[settings]\n").unwrap();
        fs_err::write(&spec, GOOD).unwrap();
        assert!(load(&spec).is_ok());
        // No spec at all: where it was looked for and how to name one.
        let err = load(&dir.path().join("nope.toml")).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("no spec file nope.toml in {shown}; name the spec with --spec PATH (the default is envpack.toml in the current directory)")
        );
    }
}
