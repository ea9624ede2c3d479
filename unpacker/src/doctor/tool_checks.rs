//! Checks that run the env's own programs: Python and Conan, as a user would run them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use envpack_layers::shown_name;
use serde_json::Value;

use crate::doctor::finding::{Finding, FindingClass};
use crate::doctor::log_dir::LogDir;
use crate::doctor::report::Check;
use crate::doctor::run_command::{run_logged, CommandOutcome, CommandSpec};
use crate::env_info::ENV_INFO_FILE;
use crate::layout::RootLayout;
use crate::state_seed::CONAN_HOME_TEMPLATE;

/// Ids of the checks that run the env's tools, in order.
pub const TOOL_CHECKS: [&str; 4] = [
    "python.version",
    "conan.version",
    "conan.remotes",
    "conan.profile",
];

/// What the env pins, read from its `envpack.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pinned {
    /// `python.version`.
    pub python: Option<String>,
    /// `conan_version`.
    pub conan: Option<String>,
}

/// Reads the pinned versions from `envpack.json` bytes.
pub fn pinned_versions(env_info: &[u8]) -> Pinned {
    let Ok(v) = serde_json::from_slice::<Value>(env_info) else {
        return Pinned::default();
    };
    let s = |v: &Value| v.as_str().map(str::to_owned);
    Pinned {
        python: v.pointer("/python/version").and_then(s),
        conan: v.get("conan_version").and_then(s),
    }
}

/// The version in `conan --version` output (`Conan version 2.21.0`).
pub fn parse_conan_version(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Conan version "))
        .map(|v| v.trim().to_owned())
}

/// One remote as pinned: name, url, verify_ssl, in order.
pub type Remote = (String, String, bool);

/// Remotes for a message: `"name" url` each (`verify_ssl off` noted), comma-separated.
pub fn remotes_text(remotes: &[Remote]) -> String {
    if remotes.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = remotes
        .iter()
        .map(|(name, url, verify)| {
            let off = if *verify { "" } else { " (verify_ssl off)" };
            format!("\"{}\" {}{off}", shown_name(name), shown_name(url))
        })
        .collect();
    shown.join(", ")
}

/// `"text"`, quoted and escaped, or `none` when there is no text.
fn quoted_or(text: Option<&str>, none: &str) -> String {
    text.map_or_else(|| none.to_string(), |t| format!("\"{}\"", shown_name(t)))
}

/// The remotes of a `remotes.json` (`{"remotes": [...]}`) or of `conan remote list
/// --format=json` (`[...]`, disabled remotes left out, as Conan would not use them).
pub fn remotes_of(json: &[u8]) -> Result<Vec<Remote>, String> {
    let v: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("remotes") {
            Some(Value::Array(a)) => a,
            _ => return Err("no \"remotes\" list".into()),
        },
        _ => return Err("neither a list nor an object".into()),
    };
    let mut out = Vec::new();
    for r in list {
        if r.get("disabled").and_then(Value::as_bool) == Some(true)
            || r.get("enabled").and_then(Value::as_bool) == Some(false)
        {
            continue;
        }
        let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(name), Some(url)) = (field("name"), field("url")) else {
            return Err(format!("remote without name or url: {r}"));
        };
        let verify = r.get("verify_ssl").and_then(Value::as_bool).unwrap_or(true);
        out.push((name, url, verify));
    }
    Ok(out)
}

/// `[settings]` of a profile's text as (key, value) pairs.
pub fn profile_settings(text: &str) -> Vec<(String, String)> {
    let mut in_settings = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_settings = line == "[settings]";
        } else if in_settings && !line.is_empty() && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    out
}

/// Settings of the template profile that `conan profile show --format=json` did not resolve
/// to the same value on the host side, as readable lines.
pub fn profile_mismatches(template: &str, shown: &str) -> Vec<String> {
    let v: Value = match serde_json::from_str(shown) {
        Ok(v) => v,
        Err(e) => return vec![format!("output is not JSON: {e}")],
    };
    let Some(host) = v.pointer("/host/settings") else {
        return vec!["output has no host settings".into()];
    };
    profile_settings(template)
        .into_iter()
        .filter_map(|(k, want)| {
            let got = host.get(&k).and_then(Value::as_str);
            (got != Some(want.as_str())).then(|| {
                format!(
                    "{k}: expected {want}, resolved {}",
                    quoted_or(got, "nothing")
                )
            })
        })
        .collect()
}

/// The env's program `name` in `bin/` (`name`, or a Windows launcher for it).
pub fn env_program(env_dir: &Path, name: &str) -> PathBuf {
    let bin = env_dir.join("bin");
    if cfg!(windows) {
        for ext in ["exe", "cmd", "bat"] {
            let p = bin.join(format!("{name}.{ext}"));
            if p.is_file() {
                return p;
            }
        }
    }
    bin.join(name)
}

/// Runs the Python and Conan checks against `envs/<env_id>` with CONAN_HOME at its state dir.
pub struct ToolChecks<'a> {
    /// The root.
    pub layout: &'a RootLayout,
    /// The env checked.
    pub env_id: &'a str,
    /// Where command output goes.
    pub log: &'a LogDir,
    /// Per-command timeout.
    pub timeout: Duration,
}

impl ToolChecks<'_> {
    fn env_dir(&self) -> PathBuf {
        self.layout.env_dir(self.env_id)
    }

    fn run(&self, id: &str, spec: CommandSpec) -> CommandOutcome {
        run_logged(&spec, self.log, id, self.timeout)
    }

    fn conan(&self, args: &[&str]) -> CommandSpec {
        CommandSpec::new(env_program(&self.env_dir(), "conan"), args)
            .var("CONAN_HOME", self.layout.conan_home(self.env_id))
    }

    fn evidence(spec: &CommandSpec, out: &CommandOutcome, said: &str) -> String {
        format!("{} -> {}: {}", spec.display(), out.describe(), said.trim())
    }

    /// All tool checks, in order; conan ones are skipped while the state dir is missing, since
    /// Conan would create an unseeded home there.
    pub fn run_all(&self) -> Vec<Check> {
        let info = fs_err::read(self.env_dir().join(ENV_INFO_FILE)).unwrap_or_default();
        let pinned = pinned_versions(&info);
        let mut checks = vec![self.python(pinned.python.as_deref())];
        if !self.layout.conan_home(self.env_id).is_dir() {
            for id in &TOOL_CHECKS[1..] {
                checks.push(Check::skip(
                    id,
                    "the state dir is missing (see state.conan_home)",
                ));
            }
            return checks;
        }
        checks.push(self.conan_version(pinned.conan.as_deref()));
        checks.push(self.conan_remotes());
        checks.push(self.conan_profile());
        checks
    }

    fn python(&self, pinned: Option<&str>) -> Check {
        const ID: &str = "python.version";
        let spec = CommandSpec::new(
            env_program(
                &self.env_dir(),
                if cfg!(windows) { "python" } else { "python3" },
            ),
            &["-c", "import platform; print(platform.python_version())"],
        );
        let out = self.run(ID, spec.clone());
        let got = out.stdout.trim();
        let evidence = Self::evidence(&spec, &out, got);
        let problem = match pinned {
            _ if !out.success() => Some(format!("python did not run: {}", out.describe())),
            None => Some(format!("{ENV_INFO_FILE} pins no python.version")),
            Some(want) if want != got => Some(format!(
                "expected Python {want}, got \"{}\"",
                shown_name(got)
            )),
            Some(_) => None,
        };
        tool_check(ID, evidence, problem, FindingClass::ToolMismatch)
    }

    fn conan_version(&self, pinned: Option<&str>) -> Check {
        const ID: &str = "conan.version";
        let spec = self.conan(&["--version"]);
        let out = self.run(ID, spec.clone());
        let got = parse_conan_version(&out.stdout);
        let evidence = Self::evidence(&spec, &out, &out.stdout);
        let problem = match (pinned, got) {
            _ if !out.success() => Some(format!("conan did not run: {}", out.describe())),
            (None, _) => Some(format!("{ENV_INFO_FILE} pins no conan_version")),
            (Some(want), got) if Some(want) != got.as_deref() => Some(format!(
                "expected Conan {want}, got {}",
                quoted_or(got.as_deref(), "no version")
            )),
            _ => None,
        };
        tool_check(ID, evidence, problem, FindingClass::ToolMismatch)
    }

    fn conan_remotes(&self) -> Check {
        const ID: &str = "conan.remotes";
        let template = self
            .env_dir()
            .join(CONAN_HOME_TEMPLATE)
            .join("remotes.json");
        let env_dir = std::path::absolute(self.env_dir()).unwrap_or_else(|_| self.env_dir());
        let pinned = fs_err::read(&template)
            .map_err(|e| e.to_string())
            .and_then(|b| crate::state_seed::resolve_local_remotes(&b, &env_dir))
            .and_then(|b| remotes_of(&b));
        let pinned = match pinned {
            Ok(p) => p,
            Err(e) => return Check::skip(ID, format!("no pinned remotes to compare with: {e}")),
        };
        let spec = self.conan(&["remote", "list", "--format=json"]);
        let out = self.run(ID, spec.clone());
        let listed = remotes_of(out.stdout.as_bytes());
        let names: Vec<String> = pinned
            .iter()
            .map(|r| format!("\"{}\"", shown_name(&r.0)))
            .collect();
        let evidence = Self::evidence(&spec, &out, &format!("pinned {}", names.join(", ")));
        let problem = match listed {
            _ if !out.success() => Some(format!("conan remote list failed: {}", out.describe())),
            Err(e) => Some(format!("unreadable output: {e}")),
            Ok(l) if l != pinned => Some(format!(
                "conan lists {}, the lock pins {}",
                remotes_text(&l),
                remotes_text(&pinned)
            )),
            Ok(_) => None,
        };
        let path = format!("state/{}/conan-home/remotes.json", self.env_id);
        state_check(ID, evidence, problem, path)
    }

    fn conan_profile(&self) -> Check {
        const ID: &str = "conan.profile";
        let template = self
            .env_dir()
            .join(CONAN_HOME_TEMPLATE)
            .join("profiles")
            .join("default");
        let text = fs_err::read_to_string(&template).unwrap_or_default();
        let spec = self.conan(&["profile", "show", "--format=json"]);
        let out = self.run(ID, spec.clone());
        let evidence = Self::evidence(
            &spec,
            &out,
            &format!("{} settings pinned", profile_settings(&text).len()),
        );
        let problem = if out.success() {
            let m = profile_mismatches(&text, &out.stdout);
            (!m.is_empty()).then(|| m.join("; "))
        } else {
            Some(format!(
                "the default profile does not resolve: {}: {}",
                out.describe(),
                out.stderr.trim()
            ))
        };
        let path = format!("state/{}/conan-home/profiles/default", self.env_id);
        state_check(ID, evidence, problem, path)
    }
}

fn tool_check(id: &str, evidence: String, problem: Option<String>, class: FindingClass) -> Check {
    let findings = problem
        .map(|p| Finding::general(class, p))
        .into_iter()
        .collect();
    Check::from_findings(id, evidence, findings)
}

/// Conan's view of remotes and profiles comes from the state dir, so that is what is stale.
fn state_check(id: &str, evidence: String, problem: Option<String>, path: String) -> Check {
    let findings = problem
        .map(|p| Finding::at(FindingClass::StaleState, path, p))
        .into_iter()
        .collect();
    Check::from_findings(id, evidence, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_versions_from_env_info() {
        let info = br#"{"conan_version":"2.21.0","python":{"build":"b","version":"3.11.7"}}"#;
        assert_eq!(
            pinned_versions(info),
            Pinned {
                python: Some("3.11.7".into()),
                conan: Some("2.21.0".into())
            }
        );
        assert_eq!(pinned_versions(b"{}"), Pinned::default());
        assert_eq!(pinned_versions(b"not json"), Pinned::default());
    }

    #[test]
    fn conan_version_table() {
        for (out, want) in [
            ("Conan version 2.21.0\n", Some("2.21.0")),
            ("warn\nConan version 2.0.1 \n", Some("2.0.1")),
            ("2.21.0\n", None),
            ("", None),
        ] {
            assert_eq!(parse_conan_version(out).as_deref(), want, "{out:?}");
        }
    }

    #[test]
    fn remotes_from_both_formats() {
        let file = br#"{"remotes":[{"name":"a","url":"https://a/x","verify_ssl":true},
                                    {"name":"b","url":"https://b/y","verify_ssl":false}]}"#;
        let listed = br#"[{"name":"a","url":"https://a/x","verify_ssl":true,"enabled":true},
                          {"name":"b","url":"https://b/y","verify_ssl":false,"enabled":true,"recipes_only":false}]"#;
        assert_eq!(remotes_of(file).unwrap(), remotes_of(listed).unwrap());
        let disabled = br#"[{"name":"a","url":"https://a/x","verify_ssl":true,"enabled":true},
                            {"name":"b","url":"https://b/y","verify_ssl":false,"enabled":false}]"#;
        assert_eq!(remotes_of(disabled).unwrap().len(), 1);
        let reordered = br#"{"remotes":[{"name":"b","url":"https://b/y","verify_ssl":false},
                                         {"name":"a","url":"https://a/x","verify_ssl":true}]}"#;
        assert_ne!(remotes_of(file).unwrap(), remotes_of(reordered).unwrap());
        for bad in [&b"3"[..], b"{}", b"[{\"name\":\"a\"}]", b"nope"] {
            assert!(remotes_of(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn profile_checks() {
        let text = "[settings]\nos=Linux\narch = x86_64\n# c\n[conf]\nx=1\n";
        assert_eq!(
            profile_settings(text),
            vec![
                ("os".into(), "Linux".into()),
                ("arch".into(), "x86_64".into())
            ]
        );
        let ok = r#"{"host":{"settings":{"os":"Linux","arch":"x86_64","build_type":"Release"}}}"#;
        assert!(profile_mismatches(text, ok).is_empty());
        let off = r#"{"host":{"settings":{"os":"Windows"}}}"#;
        let m = profile_mismatches(text, off);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("os: expected Linux"), "{m:?}");
        assert_eq!(profile_mismatches(text, "garbage").len(), 1);
    }
}
