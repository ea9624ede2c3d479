//! A real `conan-server` (the Conan remote, same version as conan) on loopback, with a `demo`
//! user that may upload, and the fixture Conan client to upload recipes to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::run;

/// `$ENVPACK_TEST_CONAN_SERVER` (scripts/test.sh makes it), or `None` to skip (an error when
/// the fixtures are required).
pub fn server_bin() -> Option<PathBuf> {
    match std::env::var_os("ENVPACK_TEST_CONAN_SERVER") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("ENVPACK_REQUIRE_FIXTURES").is_some() => {
            panic!("ENVPACK_REQUIRE_FIXTURES is set but ENVPACK_TEST_CONAN_SERVER is not (scripts/test.sh sets both)")
        }
        None => None,
    }
}

/// The fixture Conan client (`$ENVPACK_TEST_CONAN`).
pub fn conan_bin() -> PathBuf {
    PathBuf::from(std::env::var_os("ENVPACK_TEST_CONAN").expect("ENVPACK_TEST_CONAN is set"))
}

/// A running server; stopped (killed) on drop.
pub struct ConanServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    home: PathBuf,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl ConanServer {
    /// Starts a server whose home (config and storage) is `home`.
    pub fn start(bin: &Path, home: &Path) -> ConanServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        fs_err::create_dir_all(home).unwrap();
        fs_err::write(
            home.join("server.conf"),
            format!(
                "[server]\njwt_secret: envpack-test-secret\njwt_expire_minutes: 120\nssl_enabled: False\n\
                 port: {port}\npublic_port:\nhost_name: 127.0.0.1\nauthorize_timeout: 1800\n\
                 disk_storage_path: ./data\ndisk_authorize_timeout: 1800\nupdown_secret: envpack-test-updown\n\n\
                 [write_permissions]\n*/*@*/*: demo\n\n[read_permissions]\n*/*@*/*: *\n\n[users]\ndemo: demo\n"
            ),
        )
        .unwrap();
        let mut s = ConanServer {
            url: format!("http://127.0.0.1:{port}"),
            home: home.to_path_buf(),
            bin: bin.to_path_buf(),
            port,
            child: None,
        };
        s.resume();
        s
    }

    /// (Re)starts the process on the same port and storage; returns once it answers a ping.
    pub fn resume(&mut self) {
        let child = Command::new(&self.bin)
            .env("CONAN_SERVER_HOME", &self.home)
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let r = crate::http_get(&self.url, "/v1/ping", None);
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("conan_server on port {} did not answer /v1/ping", self.port);
    }

    /// Stops the process (the storage stays for [`ConanServer::resume`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Exports the recipe in `dir` with the fixture Conan (its own home under `client`) and
    /// uploads it; returns the revision the server now calls latest.
    pub fn upload(&self, client: &Path, dir: &Path, reference: &str) -> String {
        let conan = |args: &[&str]| {
            let mut cmd = Command::new(conan_bin());
            cmd.env("CONAN_HOME", client).args(args);
            run(&mut cmd)
        };
        if !client.join("remotes.json").exists() {
            fs_err::create_dir_all(client).unwrap();
            fs_err::write(
                client.join("remotes.json"),
                format!(
                    r#"{{"remotes": [{{"name": "srv", "url": "{}", "verify_ssl": false}}]}}"#,
                    self.url
                ),
            )
            .unwrap();
            conan(&["remote", "login", "srv", "demo", "-p", "demo"]);
        }
        conan(&["export", &dir.display().to_string()]);
        conan(&["upload", reference, "-r", "srv", "-c", "--only-recipe"]);
        let (name, version) = reference.split_once('/').unwrap();
        let r = crate::http_get(
            &self.url,
            &format!("/v2/conans/{name}/{version}/_/_/latest"),
            None,
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["revision"].as_str().unwrap().to_string()
    }
}

impl Drop for ConanServer {
    fn drop(&mut self) {
        self.stop();
    }
}
