//! `entry_points.txt` (INI) parsing: the `console_scripts` and `gui_scripts` a wheel declares.

use crate::PypkgError;

/// One script entry point: `name = module:attr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    /// Script file name (e.g. `conan`).
    pub name: String,
    /// Module to import (e.g. `conans.conan`).
    pub module: String,
    /// Dotted attribute path inside the module to call (e.g. `main` or `a.b`).
    pub attr: String,
}

impl EntryPoint {
    /// An entry point from its three parts.
    pub fn new(name: &str, module: &str, attr: &str) -> Self {
        EntryPoint {
            name: name.into(),
            module: module.into(),
            attr: attr.into(),
        }
    }
}

/// The script entry points of one distribution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptEntryPoints {
    /// `[console_scripts]`.
    pub console: Vec<EntryPoint>,
    /// `[gui_scripts]`.
    pub gui: Vec<EntryPoint>,
}

/// Parses the script sections of `entry_points.txt`; other sections are ignored.
pub fn parse_entry_points(text: &str) -> Result<ScriptEntryPoints, PypkgError> {
    let mut out = ScriptEntryPoints::default();
    let mut section: Option<String> = None;
    let mut seen = std::collections::BTreeSet::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            continue;
        }
        let syntax = || PypkgError::EntryPointsSyntax {
            line,
            text: raw.to_string(),
        };
        let (key, value) = trimmed
            .split_once('=')
            .or_else(|| trimmed.split_once(':'))
            .ok_or_else(syntax)?;
        let target = match section.as_deref() {
            Some("console_scripts") => &mut out.console,
            Some("gui_scripts") => &mut out.gui,
            Some(_) => continue,
            None => return Err(syntax()),
        };
        let name = key.trim();
        if !is_safe_script_name(name) {
            return Err(PypkgError::EntryPointsUnsafeName {
                line,
                name: name.to_string(),
            });
        }
        let (module, attr) =
            parse_reference(value.trim()).ok_or_else(|| PypkgError::EntryPointsReference {
                line,
                value: value.trim().to_string(),
            })?;
        if !seen.insert(name.to_string()) {
            return Err(PypkgError::EntryPointsDuplicate(name.to_string()));
        }
        target.push(EntryPoint {
            name: name.to_string(),
            module,
            attr,
        });
    }
    Ok(out)
}

/// Splits `module:attr [extras]` into module and attr; extras are irrelevant for launchers.
fn parse_reference(value: &str) -> Option<(String, String)> {
    let without_extras = match value.find('[') {
        Some(i) if value.ends_with(']') => value[..i].trim_end(),
        Some(_) => return None,
        None => value,
    };
    let (module, attr) = without_extras.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    let dotted_ok = |s: &str| !s.is_empty() && s.split('.').all(is_identifier);
    (dotted_ok(module) && dotted_ok(attr)).then(|| (module.to_string(), attr.to_string()))
}

/// A Python identifier (ASCII subset plus any non-ASCII letter, which Python also allows).
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Script names become file names in the scripts dir and the env's `bin/`, so they must
/// stay a single, portable path component.
pub fn is_safe_script_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, module: &str, attr: &str) -> EntryPoint {
        EntryPoint::new(name, module, attr)
    }

    #[test]
    fn parses_sections() {
        let text = "# c\n[console_scripts]\nconan = conans.conan:run\n\
                    wheel=wheel.cli:main [extra]\n\n[gui_scripts]\nw = a.b:c.d\n\
                    [other.group]\nx = not checked at all\n";
        let got = parse_entry_points(text).unwrap();
        assert_eq!(
            got.console,
            vec![
                ep("conan", "conans.conan", "run"),
                ep("wheel", "wheel.cli", "main")
            ]
        );
        assert_eq!(got.gui, vec![ep("w", "a.b", "c.d")]);
    }

    #[test]
    fn rejects_bad_input() {
        for (text, what) in [
            ("[console_scripts]\n../evil = a:b\n", "unsafe"),
            ("[console_scripts]\na/b = a:b\n", "unsafe"),
            ("[console_scripts]\n.hidden = a:b\n", "unsafe"),
            ("[console_scripts]\nx = a\n", "reference"),
            ("[console_scripts]\nx = a:b-c\n", "reference"),
            ("[console_scripts]\nx = a:b [oops\n", "reference"),
            (
                "[console_scripts]\nx = a:b\n[gui_scripts]\nx = a:c\n",
                "duplicate",
            ),
            ("x = a:b\n", "syntax"),
            ("[console_scripts]\njunk\n", "syntax"),
        ] {
            let err = parse_entry_points(text).unwrap_err();
            let ok = match what {
                "unsafe" => matches!(err, PypkgError::EntryPointsUnsafeName { .. }),
                "reference" => matches!(err, PypkgError::EntryPointsReference { .. }),
                "duplicate" => matches!(err, PypkgError::EntryPointsDuplicate(_)),
                _ => matches!(err, PypkgError::EntryPointsSyntax { .. }),
            };
            assert!(ok, "{text:?} gave {err:?}, wanted {what}");
        }
    }

    #[test]
    fn script_names() {
        for (name, ok) in [
            ("conan", true),
            ("pip3.11", true),
            ("f2py", true),
            ("a b", false),
            ("", false),
            ("-x", false),
            ("..", false),
            ("a\\b", false),
            ("c:x", false),
        ] {
            assert_eq!(is_safe_script_name(name), ok, "{name}");
        }
    }
}
