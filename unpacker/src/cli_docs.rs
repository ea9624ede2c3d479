//! Shell completions and man pages of a command line, for the `completions` and `man`
//! subcommands both binaries have (`clap_complete`, `clap_mangen`): generated from the same
//! clap definitions as the parser, so they can't drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// `cmd`'s completion script for `shell`, written to `out` (clap_complete panics on a failed
/// write, e.g. a closed pipe, so it writes into memory first).
pub fn completions(
    mut cmd: clap::Command,
    shell: Shell,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes a man page (section 1) for `cmd` and each visible subcommand into `dir` (made if
/// missing): `NAME.1`, `NAME-SUB.1`, …; returns the files written.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fs_err::create_dir_all(dir)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)?;
    let path = dir.join(man.get_filename());
    fs_err::write(&path, page)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> clap::Command {
        clap::Command::new("demo")
            .about("A demo")
            .subcommand(
                clap::Command::new("run")
                    .about("Runs")
                    .arg(clap::Arg::new("root").long("root")),
            )
            .subcommand(clap::Command::new("old").hide(true))
    }

    #[test]
    fn man_pages_cover_the_visible_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man1");
        let files = man_pages(demo(), &out).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["demo.1", "demo-run.1"]);
        let run = fs_err::read_to_string(out.join("demo-run.1")).unwrap();
        assert!(
            run.starts_with(".ie \\n(.g .ds Aq \\(aq") || run.contains(".TH demo-run 1"),
            "{run}"
        );
        assert!(run.contains("\\-\\-root"), "{run}");
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let mut out = Vec::new();
            completions(demo(), shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("run"), "{shell}: {text}");
            assert!(text.contains("demo"), "{shell}");
        }
    }
}
