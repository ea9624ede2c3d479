use super::*;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// Parses `args` (without the program name) with ENVPACK_ROOT as `env_root`.
fn parse(args: &[&str], env_root: Option<&str>) -> Result<Action, String> {
    let cli = Cli::try_parse_from(std::iter::once("envpack-unpack").chain(args.iter().copied()))
        .map_err(|e| e.kind().to_string())?;
    cli.action_with(env_root.map(p), &|_| false)
}

fn doctor(root: &str, log_dir: Option<&str>, timeout: u64) -> Action {
    Action::Doctor(DoctorArgs {
        root: p(root),
        log_dir: log_dir.map(p),
        timeout,
    })
}

fn repair(root: &str, artifact: Option<&str>, timeout: u64) -> Action {
    Action::Repair(RepairArgs {
        root: p(root),
        artifact: artifact.map(p),
        timeout,
    })
}

fn unpack(artifact: &str, root: &str, keep_artifact: bool) -> Action {
    Action::Unpack {
        artifact: p(artifact),
        root: p(root),
        keep_artifact,
        trust: TrustOptions::default(),
    }
}

#[test]
fn both_grammars_give_the_same_action() {
    // (subcommand form, the earlier flag form, the action both mean)
    let cases: Vec<(&[&str], &[&str], Action)> = vec![
        (
            &["unpack", "a.tar", "--root", "R"],
            &["a.tar", "--root", "R"],
            unpack("a.tar", "R", true),
        ),
        (
            &["unpack", "a.tar", "--root", "R", "--no-keep-artifact"],
            &["a.tar", "--root", "R", "--no-keep-artifact"],
            unpack("a.tar", "R", false),
        ),
        (
            &["verify", "a.tar"],
            &["--verify", "a.tar"],
            Action::VerifyArtifact(p("a.tar"), None),
        ),
        (
            &["verify", "--root", "R"],
            &["--verify", "--root", "R"],
            Action::VerifyRoot(p("R")),
        ),
        (
            &["status", "--root", "R"],
            &["--status", "--root", "R"],
            Action::Status(p("R")),
        ),
        (
            &["rollback", "--root", "R"],
            &["--rollback", "--root", "R"],
            Action::Rollback(p("R")),
        ),
        (
            &["doctor", "--root", "R"],
            &["--doctor", "--root", "R"],
            doctor("R", None, DEFAULT_TIMEOUT),
        ),
        (
            &["doctor", "--root", "R", "--log-dir", "L", "--timeout", "5"],
            &[
                "--doctor",
                "--root",
                "R",
                "--log-dir",
                "L",
                "--timeout",
                "5",
            ],
            doctor("R", Some("L"), 5),
        ),
        (
            &["repair", "--root", "R"],
            &["--repair", "--root", "R"],
            repair("R", None, DEFAULT_TIMEOUT),
        ),
        (
            &[
                "repair",
                "--root",
                "R",
                "--artifact",
                "a.tar",
                "--timeout",
                "9",
            ],
            &["--repair", "a.tar", "--root", "R", "--timeout", "9"],
            repair("R", Some("a.tar"), 9),
        ),
    ];
    for (new, old, want) in cases {
        assert_eq!(parse(new, None), Ok(want.clone()), "{new:?}");
        assert_eq!(parse(old, None), Ok(want), "{old:?}");
    }
}

#[test]
fn global_flags_go_before_or_after_the_subcommand() {
    for args in [
        &["--json", "status", "--root", "R"][..],
        &["status", "--root", "R", "--json"],
        &["status", "--json", "--root", "R"],
    ] {
        let cli =
            Cli::try_parse_from(std::iter::once("envpack-unpack").chain(args.iter().copied()))
                .unwrap();
        assert!(cli.json, "{args:?}");
        assert_eq!(
            cli.action_with(None, &|_| false),
            Ok(Action::Status(p("R")))
        );
    }
}

#[test]
fn envpack_root_stands_in_for_root() {
    assert_eq!(parse(&["a.tar"], Some("E")), Ok(unpack("a.tar", "E", true)));
    assert_eq!(
        parse(&["verify"], Some("E")),
        Ok(Action::VerifyRoot(p("E")))
    );
    // An artifact wins over ENVPACK_ROOT for verify, in the new grammar...
    assert_eq!(
        parse(&["verify", "a.tar"], Some("E")),
        Ok(Action::VerifyArtifact(p("a.tar"), None))
    );
    // ...while the earlier one verified the root whenever one was set, as it always did.
    assert_eq!(
        parse(&["--verify", "a.tar"], Some("E")),
        Ok(Action::VerifyRoot(p("E")))
    );
    // A subcommand's --root wins over ENVPACK_ROOT.
    assert_eq!(
        parse(&["verify", "--root", "R"], Some("E")),
        Ok(Action::VerifyRoot(p("R")))
    );
}

#[test]
fn incomplete_or_mixed_command_lines_are_refused() {
    let refused: &[&[&str]] = &[
        // the two grammars mixed
        &["unpack", "a.tar", "--root", "R", "--verify"],
        &["--doctor", "status", "--root", "R"],
        // clap's own refusals
        &["unpack", "a.tar"],
        &["status"],
        &["verify", "a.tar", "--root", "R"],
        &["--rollback", "a.tar", "--root", "R"],
        &["--log-dir", "L", "--root", "R"],
    ];
    for args in refused {
        assert!(parse(args, None).is_err(), "{args:?} was accepted");
    }
    assert_eq!(parse(&["verify"], None), Err(VERIFY_NEEDS.to_string()));
    assert_eq!(
        parse(&["--status"], None),
        Err("--root DIR is required (or set ENVPACK_ROOT)".to_string())
    );
    assert!(parse(&["--root", "R"], None)
        .unwrap_err()
        .contains("envpack-unpack unpack ARTIFACT --root DIR"));
}

#[test]
fn failures_of_doctor_and_repair_exit_2() {
    assert_eq!(doctor("R", None, 1).failure_code(), 2);
    assert_eq!(repair("R", None, 1).failure_code(), 2);
    assert_eq!(Action::Status(p("R")).failure_code(), 1);
    assert_eq!(unpack("a", "R", true).failure_code(), 1);
}

#[test]
fn a_command_that_changes_the_root_is_refused_next_to_a_file_of_its_name() {
    let parse_with = |args: &[&str], file: &'static str| {
        let cli =
            Cli::try_parse_from(std::iter::once("envpack-unpack").chain(args.iter().copied()))
                .unwrap();
        cli.action_with(None, &move |name| name == file)
    };
    for (args, file) in [
        (&["rollback", "--root", "R"][..], "rollback"),
        (&["repair", "--root", "R"], "repair"),
    ] {
        let err = parse_with(args, file).unwrap_err();
        assert!(err.contains(&format!("./{file}")), "{err}");
    }
    // Read-only commands, and other files, are not in the way.
    assert_eq!(
        parse_with(&["status", "--root", "R"], "status"),
        Ok(Action::Status(p("R")))
    );
    assert_eq!(
        parse_with(&["rollback", "--root", "R"], "repair"),
        Ok(Action::Rollback(p("R")))
    );
}
