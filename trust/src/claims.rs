//! What an envpack signature says, in its trusted comment.
//!
//! minisign's trusted comment is free text covered by the signature; minisign itself writes
//! `timestamp:N<TAB>file:NAME<TAB>hashed`, with the file name as it is. envpack's comment starts
//! with the marker field `envpack:1`, then minisign's fields, then `envpack-index:sha256:HEX`
//! (the digest of the artifact's index member, which pins the lock and every layer) and
//! `envpack-env:ID`. Only a comment that starts with the marker has envpack claims: in
//! minisign's own comment a file named `x<TAB>envpack-index:sha256:…` would otherwise forge
//! one. Fields are `key:value` separated by tabs; a repeated field makes the comment
//! unreadable rather than letting either copy win.

use crate::error::TrustError;

const INDEX: &str = "envpack-index";
const ENV: &str = "envpack-env";
const TIMESTAMP: &str = "timestamp";
const FILE: &str = "file";
const MARKER: &str = "envpack:1";

/// A value from a comment as messages show it: control characters escaped (`\n`, `\u{1b}`).
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The claims of a signature's trusted comment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    /// When it was signed (seconds since the Unix epoch), as the signer says.
    pub timestamp: Option<u64>,
    /// The signed file's name, as the signer says.
    pub file: Option<String>,
    /// `sha256:HEX` of the artifact's index member (only in envpack's signatures).
    pub index: Option<String>,
    /// The artifact's env id (only in envpack's signatures).
    pub env_id: Option<String>,
}

impl Claims {
    /// Reads the claims of a trusted comment; fields it doesn't know are left alone.
    pub fn parse(comment: &str) -> Result<Self, TrustError> {
        let bad = |detail: String| TrustError::BadSignature {
            what: "trusted comment".into(),
            detail,
        };
        let mut claims = Claims::default();
        let mut fields = comment.split('\t');
        if comment.split('\t').next() != Some(MARKER) {
            // minisign's own comment: only its leading timestamp is read.
            if let Some(t) = fields.next().and_then(|f| f.strip_prefix("timestamp:")) {
                claims.timestamp = Some(
                    t.parse()
                        .map_err(|_| bad(format!("timestamp \"{}\" is not a number", shown(t))))?,
                );
            }
            return Ok(claims);
        }
        for field in fields.skip(1) {
            let Some((key, value)) = field.split_once(':') else {
                continue;
            };
            let slot = match key {
                TIMESTAMP => {
                    let t = value.parse().map_err(|_| {
                        bad(format!("timestamp \"{}\" is not a number", shown(value)))
                    })?;
                    set(&mut claims.timestamp, t, key)
                }
                FILE => set(&mut claims.file, value.to_owned(), key),
                INDEX => {
                    let hex = value.strip_prefix("sha256:").unwrap_or("");
                    if hex.len() != 64
                        || !hex
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    {
                        return Err(bad(format!(
                            "{INDEX} \"{}\" is not sha256:<64 hex digits>",
                            shown(value)
                        )));
                    }
                    set(&mut claims.index, value.to_owned(), key)
                }
                ENV => set(&mut claims.env_id, value.to_owned(), key),
                _ => Ok(()),
            };
            slot.map_err(bad)?;
        }
        Ok(claims)
    }

    /// The trusted comment for these claims, minisign's fields first.
    pub fn to_comment(&self) -> String {
        let mut fields = vec![MARKER.to_owned()];
        if let Some(t) = self.timestamp {
            fields.push(format!("{TIMESTAMP}:{t}"));
        }
        if let Some(f) = &self.file {
            fields.push(format!("{FILE}:{}", clean(f)));
        }
        fields.push("hashed".to_owned());
        if let Some(i) = &self.index {
            fields.push(format!("{INDEX}:{}", clean(i)));
        }
        if let Some(e) = &self.env_id {
            fields.push(format!("{ENV}:{}", clean(e)));
        }
        fields.join("\t")
    }
}

fn set<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{key} is given twice"));
    }
    *slot = Some(value);
    Ok(())
}

/// A value as written into the comment: a tab or line break in a file name would start a new
/// field (or line) and could forge a claim, so every control character becomes `?`.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn claims_round_trip_through_the_comment() {
        let c = Claims {
            timestamp: Some(1_700_000_000),
            file: Some("devenv-linux-x86_64.envpack.tar".into()),
            index: Some(DIGEST.into()),
            env_id: Some("devenv-0123".into()),
        };
        let text = c.to_comment();
        assert_eq!(
            text,
            format!("envpack:1\ttimestamp:1700000000\tfile:devenv-linux-x86_64.envpack.tar\thashed\tenvpack-index:{DIGEST}\tenvpack-env:devenv-0123")
        );
        assert_eq!(Claims::parse(&text).unwrap(), c);
    }

    #[test]
    fn minisigns_own_comments_read_as_claims_without_an_index() {
        let c = Claims::parse("timestamp:1555779966\tfile:test\thashed").unwrap();
        assert_eq!(c.timestamp, Some(1_555_779_966));
        assert_eq!(c.index, None);
        assert_eq!(Claims::parse("anything at all").unwrap(), Claims::default());
        // minisign writes the file name unescaped: a name cannot smuggle in a claim.
        let forged = format!("timestamp:1\tfile:x\thashed\tenvpack-index:{DIGEST}");
        assert_eq!(Claims::parse(&forged).unwrap().index, None);
        let forged = format!("timestamp:1\tfile:x\tenvpack:1\tenvpack-index:{DIGEST}");
        assert_eq!(Claims::parse(&forged).unwrap().index, None);
    }

    #[test]
    fn a_file_name_cannot_forge_a_claim() {
        let c = Claims {
            file: Some(format!("a.tar\tenvpack-index:{DIGEST}\nx")),
            ..Claims::default()
        };
        let parsed = Claims::parse(&c.to_comment()).unwrap();
        assert_eq!(parsed.index, None);
        assert_eq!(parsed.file, Some(format!("a.tar?envpack-index:{DIGEST}?x")));
    }

    #[test]
    fn unreadable_claims_are_refused() {
        let table: &[(&str, &str)] = &[
            ("timestamp:soon", "not a number"),
            ("timestamp:1\ttimestamp:2", "timestamp is given twice"),
            (
                &format!("envpack-index:{DIGEST}\tenvpack-index:{DIGEST}"),
                "given twice",
            ),
            ("envpack-index:sha256:abc", "64 hex digits"),
            ("envpack-index:md5:0123", "64 hex digits"),
            ("envpack-env:a\tenvpack-env:b", "envpack-env is given twice"),
        ];
        for (comment, want) in table {
            let comment = if comment.starts_with("timestamp:soon") {
                comment.to_string()
            } else {
                format!("{MARKER}\t{comment}")
            };
            let err = Claims::parse(&comment).unwrap_err().to_string();
            assert!(err.contains(want), "{comment:?}: {err}");
        }
    }
}
