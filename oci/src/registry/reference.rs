//! Image references: `HOST[:PORT]/REPO/PATH[:TAG][@sha256:HEX]`.
//!
//! The registry host is always explicit: there is no implied default registry, so a reference
//! can never silently point somewhere the user did not name.

use std::fmt;

use envpack_layers::shown_name;

use crate::error::{OciError, Result};

/// A parsed, validated image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, lowercased.
    pub registry: String,
    /// Repository path inside the registry.
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Manifest digest (`sha256:…`), if given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| OciError::BadReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                check_digest(d).map_err(|r| bad(&r))?;
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no registry host; write HOST[:PORT]/REPOSITORY[:TAG]"))?;
        if !looks_like_host(host) {
            return Err(bad(
                "the first component must be a registry host (with a '.' or ':' or 'localhost')",
            ));
        }
        // A ':' after the last '/' separates the tag.
        let (repository, tag) = match path.rfind(':') {
            Some(i) if !path[i..].contains('/') => (&path[..i], Some(path[i + 1..].to_string())),
            _ => (path, None),
        };
        check_repository(repository).map_err(|r| bad(&r))?;
        if let Some(t) = &tag {
            if let Some(reason) = tag_problem(t) {
                return Err(bad(&format!(
                    "invalid image tag \"{}\": {reason}; use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')",
                    shown_name(t)
                )));
            }
        }
        Ok(Reference {
            registry: host.to_ascii_lowercase(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if given, else the tag, else `latest`.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host without its port (brackets removed for IPv6).
    pub fn hostname(&self) -> &str {
        hostname_of(&self.registry)
    }

    /// Whether the host is loopback (localhost, 127.0.0.0/8, ::1), where plain HTTP is allowed.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.hostname())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host` of `host:port`, `[v6]:port` or `host`.
pub fn hostname_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// localhost, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

fn looks_like_host(c: &str) -> bool {
    // `[v6]` or `[v6]:port`, else `name` or `name:port`.
    let (name, port) = match c.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                let v6_ok =
                    !v6.is_empty() && v6.chars().all(|ch| ch.is_ascii_hexdigit() || ch == ':');
                match after {
                    "" => return v6_ok,
                    _ => match after.strip_prefix(':') {
                        Some(p) => return v6_ok && is_port(p),
                        None => return false,
                    },
                }
            }
            None => return false,
        },
        None => match c.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (c, None),
        },
    };
    if port.is_some_and(|p| !is_port(p)) {
        return false;
    }
    // Each label non-empty, letters, digits and inner hyphens: "." and ".." (paths) are not
    // hosts, whatever they contain.
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    });
    labels_ok && (name.contains('.') || port.is_some() || name == "localhost")
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `sha256:<64 lowercase hex>`.
pub fn check_digest(d: &str) -> std::result::Result<(), String> {
    match d.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "digest \"{}\" is not sha256:<64 lowercase hex digits>",
            shown_name(d)
        )),
    }
}

/// Distribution's repository grammar: '/'-separated lowercase components, each alphanumeric
/// runs joined by '.', '_', '__' or dashes.
fn check_repository(repo: &str) -> std::result::Result<(), String> {
    if repo.is_empty() || repo.len() > 255 {
        return Err("repository must be 1 to 255 characters".into());
    }
    for comp in repo.split('/') {
        let ok = !comp.is_empty()
            && comp
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
            && comp.as_bytes()[0].is_ascii_alphanumeric()
            && comp.as_bytes()[comp.len() - 1].is_ascii_alphanumeric()
            && !comp.contains("..")
            && !comp.contains("___")
            && !comp.contains("._")
            && !comp.contains("_.");
        if !ok {
            return Err(format!(
                "repository component \"{}\" must be lowercase letters and digits joined by '.', '_', '__' or '-'",
                shown_name(comp)
            ));
        }
    }
    Ok(())
}

/// What is wrong with `tag` under the OCI distribution tag grammar
/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, or `None` when it is a valid tag.
pub fn tag_problem(tag: &str) -> Option<&'static str> {
    let Some(first) = tag.chars().next() else {
        return Some("empty");
    };
    if tag.len() > 128 {
        return Some("longer than 128 characters");
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Some("must start with a letter, digit or '_'");
    }
    if !tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Some("has a character outside [A-Za-z0-9_.-]");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// text, registry, repository, tag, digest
    type Case<'a> = (String, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn parses_references() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let cases: Vec<Case> = vec![
            (
                "127.0.0.1:5000/team/env:3.12-conan2.21".into(),
                "127.0.0.1:5000",
                "team/env",
                Some("3.12-conan2.21"),
                None,
            ),
            (
                "registry.example/env".into(),
                "registry.example",
                "env",
                None,
                None,
            ),
            ("localhost/a/b/c".into(), "localhost", "a/b/c", None, None),
            (
                format!("Reg.Example:443/x@{d}"),
                "reg.example:443",
                "x",
                None,
                Some(d.as_str()),
            ),
            (
                format!("[::1]:5000/x:t@{d}"),
                "[::1]:5000",
                "x",
                Some("t"),
                Some(d.as_str()),
            ),
        ];
        for (text, reg, repo, tag, digest) in cases {
            let r = Reference::parse(&text).unwrap();
            assert_eq!(r.registry, reg, "{text}");
            assert_eq!(r.repository, repo, "{text}");
            assert_eq!(r.tag.as_deref(), tag, "{text}");
            assert_eq!(r.digest.as_deref(), digest, "{text}");
        }
        let r = Reference::parse("127.0.0.1:5000/team/env:v1").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/env:v1");
        assert_eq!(r.target(), "v1");
        assert_eq!(Reference::parse("localhost/x").unwrap().target(), "latest");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "env",
            "team/env:tag",
            "registry.example/",
            "registry.example/Team/env",
            "registry.example/env:bad tag",
            "registry.example/env:-x",
            "registry.example/a//b",
            "registry.example/a-/b",
            "registry.example/x@sha256:abc",
            "registry.example/x@md5:00",
            "./dist/env.tar",
            "../env/x",
            "a..b/x",
            ".example/x",
            "reg-.example/x",
            "reg.example:/x",
            "reg.example:50x/x",
            "[::1/x",
            "[zz]:5000/x",
            "[::1]5000/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for (reg, want) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.10", true),
            ("localhost:5000", true),
            ("[::1]:5000", true),
            ("128.0.0.1:5000", false),
            ("registry.example", false),
            ("localhost.example", false),
        ] {
            let r = Reference::parse(&format!("{reg}/x")).unwrap();
            assert_eq!(r.is_loopback(), want, "{reg}");
        }
    }
}
