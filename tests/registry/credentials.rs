//! Registry credentials end to end: an auth file's inline `auth`, credential helpers on PATH,
//! the next auth file answering when a helper holds nothing, and a failing helper named.

use std::process::{Command, Output};

use envpack_e2e::registry::Registry;
use envpack_e2e::run;

use super::{envpack, json_of, layout, locked, TAG};

#[test]
fn credentials_come_from_the_auth_file() {
    let l = locked();
    let (dir, image) = layout();
    let reg = Registry::start_with_auth("ci", "s3cret pass");
    let reference = reg.reference("team/private", TAG);
    let home = tempfile::tempdir().unwrap();
    let auth_file = home.path().join("auth.json");
    let attempt = |auth: Option<&str>| -> Output {
        let mut cmd = envpack(l, &l.dir);
        cmd.args(["--json", "push", &reference, "--layout"])
            .arg(dir)
            .env("DOCKER_CONFIG", home.path())
            .env_remove("REGISTRY_AUTH_FILE");
        if let Some(a) = auth {
            let encoded = run(Command::new("sh").args(["-c", "printf %s \"$0\" | base64 -w0", a]));
            fs_err::write(
                &auth_file,
                format!(
                    r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
                    reg.host,
                    String::from_utf8_lossy(&encoded.stdout)
                ),
            )
            .unwrap();
            cmd.env("REGISTRY_AUTH_FILE", &auth_file);
        }
        cmd.output().unwrap()
    };
    let none = attempt(None);
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains("not authorized") && err.contains("no credentials"),
        "{err}"
    );
    let wrong = attempt(Some("ci:wrong"));
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("were refused"), "{err}");
    let right = attempt(Some("ci:s3cret pass"));
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert_eq!(json_of(&right)["digest"], image["digest"]);

    // Credential helpers on PATH: the host's `credHelpers` entry answers; a `credsStore` that
    // holds nothing for the host lets the next auth file answer; a failing helper is named.
    let bin = home.path().join("bin");
    fs_err::create_dir_all(&bin).unwrap();
    let helper = |name: &str, body: &str| {
        let path = bin.join(format!("docker-credential-{name}"));
        fs_err::write(&path, format!("#!/bin/sh\nread host\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    helper(
        "envpack-good",
        &format!(
            r#"[ "$host" = "{}" ] || exit 3; echo '{{"Username":"ci","Secret":"s3cret pass"}}'"#,
            reg.host
        ),
    );
    helper(
        "envpack-empty",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    helper("envpack-broken", "echo 'keyring locked' >&2; exit 1");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_helpers = |store: &str, helper: &str| -> Output {
        fs_err::write(&auth_file, format!(r#"{{"credsStore":"{store}"}}"#)).unwrap();
        fs_err::write(
            home.path().join("config.json"),
            format!(r#"{{"credHelpers":{{"{}":"{helper}"}}}}"#, reg.host),
        )
        .unwrap();
        envpack(l, &l.dir)
            .args(["--json", "push", &reference, "--layout"])
            .arg(dir)
            .env("DOCKER_CONFIG", home.path())
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let helped = with_helpers("envpack-empty", "envpack-good");
    assert!(
        helped.status.success(),
        "{}",
        String::from_utf8_lossy(&helped.stderr)
    );
    assert_eq!(json_of(&helped)["digest"], image["digest"]);
    let broken = with_helpers("envpack-broken", "envpack-good");
    assert!(!broken.status.success());
    let err = String::from_utf8_lossy(&broken.stderr);
    assert!(
        err.contains("docker-credential-envpack-broken")
            && err.contains("keyring locked")
            && err.contains("auth.json"),
        "{err}"
    );
}
