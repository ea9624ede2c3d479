//! Activation scripts for bash/zsh, fish, PowerShell and cmd. Each finds its env from its
//! own physical location (so `ROOT/current/activate` works and nothing absolute is baked
//! in), puts `<env>/bin` first on PATH, points CONAN_HOME at `ROOT/state/<env-id>/conan-home`
//! when that dir exists, sets ENVPACK_ENV and the prompt, and offers `deactivate`.

use envpack_pypkg::{cmd_locate_env, crlf, GeneratedFile};
use envpack_pypkg::{LauncherKind, Platform};

/// Env name reduced to characters that need no quoting in any of the four shells.
fn prompt_name(env_name: &str) -> String {
    let cleaned: String = env_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "env".to_string()
    } else {
        cleaned
    }
}

/// The activation scripts for `platform`, paths relative to the env root, sorted.
pub fn activation_scripts(env_name: &str, platform: &Platform) -> Vec<GeneratedFile> {
    let name = prompt_name(env_name);
    let file = |path: &str, text: String| GeneratedFile {
        path: path.to_string(),
        contents: text.into_bytes(),
        executable: false,
    };
    let mut out = vec![file("activate.ps1", activate_ps1(&name))];
    match platform.launcher {
        LauncherKind::Posix => {
            out.push(file("activate", activate_sh(&name)));
            out.push(file("activate.fish", activate_fish(&name)));
        }
        LauncherKind::Windows => {
            out.push(file("activate.bat", activate_bat(&name)));
            out.push(file("deactivate.bat", deactivate_bat()));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// bash/zsh activation (POSIX sh syntax; bash- and zsh-only bits go through `eval`).
fn activate_sh(name: &str) -> String {
    format!(
        r#"# envpack activation for bash and zsh. Use it with: . path/to/activate
deactivate () {{
    if [ -n "${{_ENVPACK_OLD_PATH+x}}" ]; then
        PATH="$_ENVPACK_OLD_PATH"
        export PATH
        unset _ENVPACK_OLD_PATH
    fi
    if [ -n "${{_ENVPACK_OLD_CONAN_HOME+x}}" ]; then
        CONAN_HOME="$_ENVPACK_OLD_CONAN_HOME"
        export CONAN_HOME
        unset _ENVPACK_OLD_CONAN_HOME
    elif [ -n "${{ENVPACK_ENV+x}}" ]; then
        unset CONAN_HOME
    fi
    if [ -n "${{_ENVPACK_OLD_PS1+x}}" ]; then
        PS1="$_ENVPACK_OLD_PS1"
        unset _ENVPACK_OLD_PS1
    fi
    unset ENVPACK_ENV
    hash -r 2>/dev/null
    if [ "${{1:-}}" != nondestructive ]; then
        unset -f deactivate
    fi
}}
deactivate nondestructive

_envpack_self=""
if [ -n "${{BASH_VERSION:-}}" ]; then
    eval '_envpack_self="${{BASH_SOURCE[0]}}"'
elif [ -n "${{ZSH_VERSION:-}}" ]; then
    eval '_envpack_self="${{(%):-%x}}"'
fi
if [ -z "$_envpack_self" ]; then
    echo "envpack: source this file from bash or zsh (. path/to/activate)" >&2
    unset _envpack_self
    return 1
fi
# Follow symlinks to the real file, then take its physical directory: that is
# ROOT/envs/<env-id> even when sourced through ROOT/current or a ROOT/bin link.
while [ -h "$_envpack_self" ]; do
    _envpack_link=$(readlink "$_envpack_self")
    case "$_envpack_link" in
        /*) _envpack_self="$_envpack_link" ;;
        *) _envpack_self="$(dirname "$_envpack_self")/$_envpack_link" ;;
    esac
done
_envpack_env=$(cd -P "$(dirname "$_envpack_self")" && pwd -P)

_ENVPACK_OLD_PATH="$PATH"
PATH="$_envpack_env/bin:$PATH"
export PATH

_envpack_envs=$(dirname "$_envpack_env")
if [ "$(basename "$_envpack_envs")" = envs ]; then
    _envpack_home="$(dirname "$_envpack_envs")/state/$(basename "$_envpack_env")/conan-home"
    if [ -d "$_envpack_home" ]; then
        if [ -n "${{CONAN_HOME+x}}" ]; then
            _ENVPACK_OLD_CONAN_HOME="$CONAN_HOME"
        fi
        CONAN_HOME="$_envpack_home"
        export CONAN_HOME
    fi
fi

ENVPACK_ENV='{name}'
export ENVPACK_ENV
_ENVPACK_OLD_PS1="${{PS1-}}"
PS1="({name}) ${{PS1-}}"

unset _envpack_self _envpack_link _envpack_env _envpack_envs _envpack_home
hash -r 2>/dev/null
true
"#
    )
}

/// fish activation.
fn activate_fish(name: &str) -> String {
    format!(
        r#"# envpack activation for fish. Use it with: source path/to/activate.fish
function deactivate --description 'Leave the envpack environment'
    if set -q _ENVPACK_OLD_PATH
        set -gx PATH $_ENVPACK_OLD_PATH
        set -e _ENVPACK_OLD_PATH
    end
    if set -q _ENVPACK_OLD_CONAN_HOME
        set -gx CONAN_HOME $_ENVPACK_OLD_CONAN_HOME
        set -e _ENVPACK_OLD_CONAN_HOME
    else if set -q ENVPACK_ENV
        set -e CONAN_HOME
    end
    if functions -q _envpack_old_fish_prompt
        functions -e fish_prompt
        functions -c _envpack_old_fish_prompt fish_prompt
        functions -e _envpack_old_fish_prompt
    end
    set -e ENVPACK_ENV
    if test "$argv[1]" != nondestructive
        functions -e deactivate
    end
end
deactivate nondestructive

# `builtin realpath` follows every symlink, so ROOT/current/activate.fish resolves to
# ROOT/envs/<env-id>/activate.fish.
set -l _envpack_env (dirname (builtin realpath (status filename)))

set -g _ENVPACK_OLD_PATH $PATH
set -gx PATH $_envpack_env/bin $PATH

set -l _envpack_envs (dirname $_envpack_env)
if test (basename $_envpack_envs) = envs
    set -l _envpack_home (dirname $_envpack_envs)/state/(basename $_envpack_env)/conan-home
    if test -d $_envpack_home
        if set -q CONAN_HOME
            set -g _ENVPACK_OLD_CONAN_HOME $CONAN_HOME
        end
        set -gx CONAN_HOME $_envpack_home
    end
end

set -gx ENVPACK_ENV '{name}'
if functions -q fish_prompt
    functions -c fish_prompt _envpack_old_fish_prompt
    function fish_prompt
        set -l last_status $status
        printf '(%s) ' '{name}'
        # Give the old prompt the exit status it expects.
        echo "exit $last_status" | source
        _envpack_old_fish_prompt
    end
end
"#
    )
}

/// PowerShell activation (Windows PowerShell 5.1 and pwsh 7 on any OS).
fn activate_ps1(name: &str) -> String {
    let text = format!(
        r#"# envpack activation for PowerShell. Use it with: . path/to/activate.ps1
function global:deactivate([switch]$NonDestructive) {{
    if (Test-Path variable:global:_ENVPACK_OLD_PATH) {{
        $env:PATH = $global:_ENVPACK_OLD_PATH
        Remove-Variable -Name _ENVPACK_OLD_PATH -Scope global
    }}
    if (Test-Path variable:global:_ENVPACK_OLD_CONAN_HOME) {{
        $env:CONAN_HOME = $global:_ENVPACK_OLD_CONAN_HOME
        Remove-Variable -Name _ENVPACK_OLD_CONAN_HOME -Scope global
    }} elseif (Test-Path env:ENVPACK_ENV) {{
        Remove-Item env:CONAN_HOME -ErrorAction SilentlyContinue
    }}
    if (Test-Path function:global:_envpack_old_prompt) {{
        Copy-Item function:global:_envpack_old_prompt function:global:prompt
        Remove-Item function:global:_envpack_old_prompt
    }}
    Remove-Item env:ENVPACK_ENV -ErrorAction SilentlyContinue
    if (-not $NonDestructive) {{
        Remove-Item function:global:deactivate
    }}
}}
deactivate -NonDestructive

# Follow links (ROOT\current is a junction or symlink) so the env dir is envs\<env-id>.
function _envpack_resolve([string]$Path) {{
    for ($i = 0; $i -lt 40; $i++) {{
        $item = Get-Item -LiteralPath $Path -Force
        if (-not $item.LinkType -or -not $item.Target) {{ return $Path }}
        $target = @($item.Target)[0]
        if (-not [System.IO.Path]::IsPathRooted($target)) {{
            $target = Join-Path (Split-Path -Parent $Path) $target
        }}
        $Path = [System.IO.Path]::GetFullPath($target)
    }}
    return $Path
}}
$_envpack_env = _envpack_resolve (Split-Path -Parent (_envpack_resolve $PSCommandPath))
Remove-Item function:_envpack_resolve

$global:_ENVPACK_OLD_PATH = $env:PATH
$env:PATH = (Join-Path $_envpack_env 'bin') + [System.IO.Path]::PathSeparator + $env:PATH

$_envpack_envs = Split-Path -Parent $_envpack_env
if ((Split-Path -Leaf $_envpack_envs) -eq 'envs') {{
    $_envpack_state = Join-Path (Split-Path -Parent $_envpack_envs) 'state'
    $_envpack_home = Join-Path (Join-Path $_envpack_state (Split-Path -Leaf $_envpack_env)) 'conan-home'
    if (Test-Path -LiteralPath $_envpack_home -PathType Container) {{
        if (Test-Path env:CONAN_HOME) {{
            $global:_ENVPACK_OLD_CONAN_HOME = $env:CONAN_HOME
        }}
        $env:CONAN_HOME = $_envpack_home
    }}
}}

$env:ENVPACK_ENV = '{name}'
if (Test-Path function:prompt) {{
    Copy-Item function:prompt function:global:_envpack_old_prompt
    function global:prompt {{
        Write-Host -NoNewline '({name}) '
        _envpack_old_prompt
    }}
}}
Remove-Variable -Name _envpack_env, _envpack_envs, _envpack_state, _envpack_home -ErrorAction SilentlyContinue
"#
    );
    text.replace('\n', "\r\n")
}

/// cmd.exe activation: `call activate.bat`; undone by `deactivate.bat`.
fn activate_bat(name: &str) -> String {
    let locate = cmd_locate_env("%~dp0.");
    let mut lines = vec![
        "@echo off",
        "rem envpack activation for cmd.exe. Use it with: call path\\to\\activate.bat",
        "if defined ENVPACK_ENV call \"%~dp0deactivate.bat\"",
    ];
    lines.extend(locate.lines());
    let prompt = format!("set \"PROMPT=({name}) %PROMPT%\"");
    let env = format!("set \"ENVPACK_ENV={name}\"");
    lines.extend([
        "set \"_ENVPACK_OLD_PATH=%PATH%\"",
        "set \"PATH=%_EP_ENV%\\bin;%PATH%\"",
        // cmd has no empty-but-set variables, so an empty saved value means "was unset".
        "set \"_ENVPACK_OLD_CONAN_HOME=%CONAN_HOME%\"",
        "if defined _EP_HOME set \"CONAN_HOME=%_EP_HOME%\"",
        &env,
        "if not defined PROMPT set \"PROMPT=$P$G\"",
        "set \"_ENVPACK_OLD_PROMPT=%PROMPT%\"",
        &prompt,
        "set \"_EP_ENV=\"",
        "set \"_EP_NAME=\"",
        "set \"_EP_PARENT=\"",
        "set \"_EP_ID=\"",
        "set \"_EP_ENVS=\"",
        "set \"_EP_ROOT=\"",
        "set \"_EP_HOME=\"",
        "set \"_EP_TARGET=\"",
    ]);
    crlf(&lines)
}

/// cmd.exe deactivation, the twin of [`activate_bat`].
fn deactivate_bat() -> String {
    crlf(&[
        "@echo off",
        "if not defined ENVPACK_ENV exit /b 0",
        "set \"PATH=%_ENVPACK_OLD_PATH%\"",
        "set \"CONAN_HOME=%_ENVPACK_OLD_CONAN_HOME%\"",
        "set \"PROMPT=%_ENVPACK_OLD_PROMPT%\"",
        "set \"_ENVPACK_OLD_PATH=\"",
        "set \"_ENVPACK_OLD_CONAN_HOME=\"",
        "set \"_ENVPACK_OLD_PROMPT=\"",
        "set \"ENVPACK_ENV=\"",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shell_safe() {
        for (input, want) in [
            ("openssl-dev", "openssl-dev"),
            ("a b'c\"$(x)", "a_b_c___x_"),
            ("", "env"),
            ("v1.2+x", "v1.2+x"),
        ] {
            assert_eq!(prompt_name(input), want);
        }
    }

    #[test]
    fn no_absolute_paths_and_expected_files() {
        let unix = envpack_pypkg::platform_by_name("linux-x86_64").unwrap();
        let win = envpack_pypkg::platform_by_name("windows-x86_64").unwrap();
        let names = |p: &Platform| -> Vec<String> {
            activation_scripts("dev", p)
                .into_iter()
                .map(|f| f.path)
                .collect()
        };
        assert_eq!(names(&unix), ["activate", "activate.fish", "activate.ps1"]);
        assert_eq!(
            names(&win),
            ["activate.bat", "activate.ps1", "deactivate.bat"]
        );
        for f in activation_scripts("dev", &unix)
            .iter()
            .chain(&activation_scripts("dev", &win))
        {
            let text = String::from_utf8(f.contents.clone()).unwrap();
            assert!(
                text.contains("dev") || f.path == "deactivate.bat",
                "{}",
                f.path
            );
            assert!(
                !text.contains("/work/") && !text.contains("/tmp/"),
                "{}",
                f.path
            );
            assert!(
                text.contains("conan-home") || f.path == "deactivate.bat",
                "{}",
                f.path
            );
        }
    }

    #[cfg(unix)]
    use std::path::Path;
    #[cfg(unix)]
    use std::process::Command;

    #[cfg(unix)]
    fn have(shell: &str) -> bool {
        Command::new(shell)
            .args(["-c", "true"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// ROOT/envs/e1 with activation scripts, ROOT/current -> envs/e1, ROOT/state/e1/conan-home.
    #[cfg(unix)] // real POSIX shells and a symlinked root
    fn root_with_env(tmp: &Path) -> std::path::PathBuf {
        let root = tmp.join("my root");
        let env = root.join("envs/e1");
        fs_err::create_dir_all(env.join("bin")).unwrap();
        fs_err::create_dir_all(root.join("state/e1/conan-home")).unwrap();
        let unix = envpack_pypkg::platform_by_name("linux-x86_64").unwrap();
        for f in activation_scripts("dev env", &unix) {
            fs_err::write(env.join(&f.path), &f.contents).unwrap();
        }
        std::os::unix::fs::symlink("envs/e1", root.join("current")).unwrap();
        root
    }

    #[cfg(unix)] // real POSIX shells and a symlinked root
    #[test]
    fn shells_accept_the_syntax() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_with_env(tmp.path());
        let activate = root.join("envs/e1/activate");
        for sh in ["sh", "bash", "zsh", "dash"] {
            if have(sh) {
                let out = Command::new(sh).arg("-n").arg(&activate).output().unwrap();
                assert!(out.status.success(), "{sh}: {out:?}");
            }
        }
        if have("fish") {
            let out = Command::new("fish")
                .arg("--no-execute")
                .arg(root.join("envs/e1/activate.fish"))
                .output()
                .unwrap();
            assert!(out.status.success(), "fish: {out:?}");
        }
    }

    /// Sources ROOT/current/<script> in `shell`, printing state after activate and deactivate.
    #[cfg(unix)]
    fn activate_roundtrip(shell: &str, script: &str, root: &Path) -> String {
        let path = root.join("current").join(script);
        let program = if shell == "fish" {
            format!(
                "set -gx CONAN_HOME /orig\nsource '{}'\n\
                 echo \"A:$PATH[1]|$CONAN_HOME|$ENVPACK_ENV\"\ndeactivate\n\
                 echo \"D:$PATH[1]|$CONAN_HOME|\"(set -q ENVPACK_ENV; or echo unset)\n\
                 functions -q deactivate; or echo gone\n",
                path.display()
            )
        } else {
            format!(
                "CONAN_HOME=/orig; export CONAN_HOME; PS1='$ '\n. '{}'\n\
                 echo \"A:${{PATH%%:*}}|$CONAN_HOME|$ENVPACK_ENV|$PS1\"\ndeactivate\n\
                 echo \"D:${{PATH%%:*}}|$CONAN_HOME|${{ENVPACK_ENV-unset}}|$PS1\"\n\
                 command -v deactivate >/dev/null || echo gone\n",
                path.display()
            )
        };
        let out = Command::new(shell)
            .args(["-c", &program])
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    #[cfg(unix)] // real POSIX shells and a symlinked root
    #[test]
    fn activation_through_current_symlink_and_deactivate() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_with_env(tmp.path());
        let real = root.canonicalize().unwrap();
        let bin = real.join("envs/e1/bin");
        let home = real.join("state/e1/conan-home");
        for shell in ["bash", "zsh"] {
            if !have(shell) {
                continue;
            }
            let out = activate_roundtrip(shell, "activate", &root);
            let want_a = format!(
                "A:{}|{}|dev_env|(dev_env) $ ",
                bin.display(),
                home.display()
            );
            assert!(out.contains(&want_a), "{shell}: {out}");
            assert!(
                out.contains("D:/usr/bin|/orig|unset|$ \ngone"),
                "{shell}: {out}"
            );
        }
        if have("fish") {
            let out = activate_roundtrip("fish", "activate.fish", &root);
            let want_a = format!("A:{}|{}|dev_env", bin.display(), home.display());
            assert!(out.contains(&want_a), "fish: {out}");
            assert!(out.contains("D:/usr/bin|/orig|unset\ngone"), "fish: {out}");
        }
        if have("dash") {
            // dash cannot tell a sourced file its own path: it must refuse, not guess.
            let out = activate_roundtrip("dash", "activate", &root);
            assert!(
                out.contains("source this file from bash or zsh"),
                "dash: {out}"
            );
        }
    }

    #[cfg(unix)] // real POSIX shells and a symlinked root
    #[test]
    fn conan_home_untouched_without_state_dir() {
        if !have("bash") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = root_with_env(tmp.path());
        fs_err::remove_dir_all(root.join("state")).unwrap();
        let out = activate_roundtrip("bash", "activate", &root);
        assert!(out.contains("|/orig|dev_env|"), "{out}");
    }
}
