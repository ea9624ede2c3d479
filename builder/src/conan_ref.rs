//! Conan recipe references as a spec names them: `name/version[@user/channel]`, no revision
//! (the lock pins that) and no version range (the env carries one exact recipe), and the
//! rule every name that becomes a file or folder of the env passes: usable on Windows and
//! macOS too (an env built on Linux is unpacked there).

use std::fmt;

/// A parsed `name/version[@user/channel]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecipeRef {
    /// Package name (lowercase, as Conan requires by default).
    pub name: String,
    /// Exact version.
    pub version: String,
    /// `user/channel`, if the recipe declares them.
    pub user_channel: Option<(String, String)>,
}

impl fmt::Display for RecipeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.version)?;
        if let Some((user, channel)) = &self.user_channel {
            write!(f, "@{user}/{channel}")?;
        }
        Ok(())
    }
}

/// Conan's rule for names: lowercase letters, digits, `_+.-`, not starting with a
/// punctuation other than `_`, 2 to 101 characters.
fn check_name(name: &str) -> Result<(), String> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+.-".contains(c));
    if ok_first && ok_rest && (2..=101).contains(&name.len()) {
        Ok(())
    } else {
        Err(format!(
            "name \"{}\" must be 2 to 101 lowercase letters, digits or _+.- (not starting with +.-)",
            envpack_layers::shown_name(name)
        ))
    }
}

/// Versions, users and channels: letters, digits, `_+.-`, starting with a letter, digit or `_`.
fn check_part(what: &str, part: &str, max: usize) -> Result<(), String> {
    let ok_first = part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+.-".contains(c));
    if ok_first && ok_rest && part.len() <= max {
        Ok(())
    } else {
        Err(format!(
            "{what} \"{}\" must be letters, digits or _+.- (not starting with +.-), at most {max} characters",
            envpack_layers::shown_name(part)
        ))
    }
}

/// Why `part` (one path component) can't be a file or folder name on every platform: Windows
/// reserves device names (with any extension) and refuses `<>:"|?*`, control characters and a
/// trailing dot or space.
pub fn portable_component(part: &str) -> Result<(), &'static str> {
    if part
        .chars()
        .any(|c| c.is_control() || "<>:\"|?*\\".contains(c))
    {
        return Err("has a character Windows refuses in names");
    }
    if part.ends_with('.') || part.ends_with(' ') {
        return Err("ends with a dot or space, which Windows drops");
    }
    let stem = part.split('.').next().unwrap_or(part).to_ascii_lowercase();
    let reserved = matches!(stem.as_str(), "con" | "prn" | "aux" | "nul")
        || (stem.len() == 4
            && (stem.starts_with("com") || stem.starts_with("lpt"))
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        return Err("is a device name on Windows");
    }
    Ok(())
}

impl RecipeRef {
    /// Parses a reference; the error says which part is wrong.
    pub fn parse(text: &str) -> Result<RecipeRef, String> {
        if text.contains('#') {
            return Err(
                "has a revision (#…); name the recipe only, `envpack lock` pins its revision"
                    .into(),
            );
        }
        if text.contains(['[', ']', '*', ' ']) {
            return Err("is a pattern or a version range; name one exact name/version".into());
        }
        let (name_version, user_channel) = match text.split_once('@') {
            Some((nv, uc)) => (nv, Some(uc)),
            None => (text, None),
        };
        let Some((name, version)) = name_version.split_once('/') else {
            return Err("must be name/version".into());
        };
        check_name(name)?;
        check_part("version", version, 100)?;
        // The version names a folder beside the recipe's config.yml.
        if version.eq_ignore_ascii_case("config.yml") {
            return Err("version \"config.yml\" would be the index's own file".into());
        }
        for (what, part) in [("name", name), ("version", version)] {
            portable_component(part)
                .map_err(|why| format!("{what} \"{}\" {why}", envpack_layers::shown_name(part)))?;
        }
        let user_channel = match user_channel {
            None => None,
            Some(uc) => {
                let Some((user, channel)) = uc.split_once('/') else {
                    return Err("must be name/version@user/channel".into());
                };
                check_part("user", user, 51)?;
                check_part("channel", channel, 51)?;
                Some((user.to_string(), channel.to_string()))
            }
        };
        Ok(RecipeRef {
            name: name.to_string(),
            version: version.to_string(),
            user_channel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let ok = [
            ("openssl-tools/1.2.4", "openssl-tools/1.2.4"),
            ("zlib/1.3.1@team/stable", "zlib/1.3.1@team/stable"),
            ("_x/v1_a+b.c-d", "_x/v1_a+b.c-d"),
        ];
        for (text, shown) in ok {
            assert_eq!(RecipeRef::parse(text).unwrap().to_string(), shown, "{text}");
        }
        let bad = [
            ("zlib", "must be name/version"),
            ("zlib/1.3#abc", "has a revision"),
            ("zlib/[>1.0]", "a version range"),
            ("Zlib/1.3", "name \"Zlib\""),
            ("z/1.3", "name \"z\""),
            (".z/1.3", "name \".z\""),
            ("zlib/..", "version \"..\""),
            ("zlib/1/2", "version \"1/2\""),
            ("zlib/1.3@team", "must be name/version@user/channel"),
            ("zlib/1.3@-t/stable", "user \"-t\""),
            ("zlib/", "version \"\""),
            ("zz/config.yml", "would be the index's own file"),
            ("zz/CONFIG.YML", "would be the index's own file"),
            ("zz/con", "version \"con\" is a device name on Windows"),
            ("zz/lpt1.x", "is a device name on Windows"),
            ("zz/1.0.", "ends with a dot"),
            ("nul/1.0", "name \"nul\" is a device name"),
        ];
        for (text, want) in bad {
            let e = RecipeRef::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
