//! PEP 508 requirement strings from the outside (wheel METADATA, sdist pyproject.toml, specs),
//! parsed so that no input can crash envpack.
//!
//! `pep508_rs` 0.9 panics on a package or extra name that ends in `.`, `-` or `_` right before
//! a character its scanner stops at (found by the `wheel_metadata` fuzz target:
//! `Requires-Dist: a.*` and `Requires-Dist: a[b_`). Such names are invalid under PEP 508
//! anyway, so they are refused here first. Its error messages also panic when they cut a
//! multi-byte character, so non-ASCII requirements (none exist on the package indexes we
//! target, PEP 508 names and versions are ASCII) are refused up front. Any other panic inside
//! the parser is turned into an error as well (in builds that unwind).

use std::str::FromStr;

use envpack_layers::shown_name;
use pep508_rs::{Requirement, VerbatimUrl};

/// Parses one PEP 508 requirement; the error says what is wrong.
pub fn parse_requirement(text: &str) -> Result<Requirement<VerbatimUrl>, String> {
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii() || (c.is_ascii_control() && *c != '\t'))
    {
        return Err(format!(
            "\"{}\": character '{}' is not allowed in a requirement (ASCII text only)",
            shown_name(text),
            shown_name(c.encode_utf8(&mut [0; 4]))
        ));
    }
    let name = leading_name(text);
    check_name_ends(text, "package", &name)?;
    // Extras: `name [ a , b ]`; each one must also end with a letter or digit.
    let rest = text.trim_start()[name.len()..].trim_start();
    if let Some(list) = rest.strip_prefix('[') {
        let list = list.split(']').next().unwrap_or(list);
        for extra in list.split(',') {
            let extra = leading_name(extra);
            check_name_ends(text, "extra", &extra)?;
        }
    }
    // The error is rendered inside too: rendering is where one of the panics was.
    let parsed = std::panic::catch_unwind(|| {
        Requirement::<VerbatimUrl>::from_str(text).map_err(|e| e.to_string())
    });
    parsed.unwrap_or_else(|_| {
        Err(format!(
            "\"{}\": not a valid PEP 508 requirement",
            shown_name(text)
        ))
    })
}

/// The name-like run (letters, digits, `.`, `-`, `_`) at the start of `s`, after spaces.
fn leading_name(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect()
}

/// Refuses a name whose last character is not a letter or digit.
fn check_name_ends(text: &str, what: &str, name: &str) -> Result<(), String> {
    match name.chars().last().filter(|c| !c.is_ascii_alphanumeric()) {
        Some(last) => Err(format!(
            "\"{}\": the {what} name \"{}\" ends with '{last}' (a name must start and end with a letter or digit)",
            shown_name(text),
            shown_name(name)
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_crashers() {
        let ok = [
            "conan==2.21.0",
            "  PyYAML >=6",
            "a.b-c_d[x] ; python_version >= '3'",
            "x",
        ];
        for r in ok {
            assert!(parse_requirement(r).is_ok(), "{r}");
        }
        let bad = [
            "targVVVVVVVVM.*, ",
            "a.*",
            "a-",
            "a_ ==1",
            "zz[zzzzzzzzz,\x0b\x0b\x0b\x0bnatzsummabyzzzzzzzzz______",
            "a[b_]",
            "a[ok, b-]",
            "8argezzz[zhtutpsDDDmetaon,D \u{39c}Metadat:/   _DDD==Dzz",
            "a ==1 ; python_version == '\u{e9}'",
            "a ==1\u{0}",
            "==1",
            "",
            "conan=2",
        ];
        for r in bad {
            let e = parse_requirement(r).unwrap_err();
            assert!(!e.is_empty(), "{r}");
        }
    }
}
