//! A real Debian `docker-registry` (distribution 2.8) on 127.0.0.1 for the push/pull tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry with its own storage; dropping it stops the server.
pub struct Registry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub host: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Where the registry keeps its blobs.
    pub storage: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Registry {
    /// Starts `docker-registry serve` on a free port and waits until `/v2/` answers.
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// Like [`start`](Self::start), but every request needs HTTP Basic auth as `user`/`password`
    /// (htpasswd with a bcrypt hash made by Python's `crypt`).
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::start_with(Some((user, password)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("envpack-registry-")
            .tempdir()
            .expect("temp dir");
        let storage = dir.path().join("storage");
        fs_err::create_dir_all(&storage).unwrap();
        let mut auth_yaml = String::new();
        if let Some((user, password)) = auth {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    password,
                ])
                .output()
                .expect("python3 for a bcrypt hash");
            let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
            assert!(hash.starts_with("$2"), "no bcrypt hash: {hash:?}");
            let file = dir.path().join("htpasswd");
            fs_err::write(&file, format!("{user}:{hash}\n")).unwrap();
            auth_yaml = format!(
                "auth:\n  htpasswd:\n    realm: envpack-test\n    path: {}\n",
                file.display()
            );
        }
        // A port taken between probing and binding makes the registry exit; try a few.
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs_err::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
                    storage.display()
                ),
            )
            .unwrap();
            let stderr = if std::env::var_os("ENVPACK_FIXTURES_VERBOSE").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            };
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start docker-registry (Debian package docker-registry): {e}")
                });
            let host = format!("127.0.0.1:{port}");
            let base = format!("http://{host}");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(&host).is_ok()
                    && matches!(crate::http_get(&base, "/v2/", None).status, 200 | 401)
                {
                    return Registry {
                        host,
                        base,
                        storage,
                        child,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry on {host} did not answer /v2/ within 20 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry did not start on any of 5 ports");
    }

    /// `127.0.0.1:PORT/<repo>:<tag>`.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }

    /// Total bytes of blob data the registry stores (its `blobs/` tree).
    pub fn stored_blob_bytes(&self) -> u64 {
        dir_size(&self.storage.join("docker/registry/v2/blobs"))
    }
}

fn dir_size(p: &Path) -> u64 {
    let Ok(entries) = fs_err::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dir_size(&path),
                Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => 0,
            }
        })
        .sum()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a [`FlakyProxy`] does to one connection instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFault {
    /// Answer `503 Service Unavailable` and close.
    Unavailable,
    /// Read the request head, then close without answering (a dropped connection).
    Drop,
}

/// A TCP proxy on 127.0.0.1 in front of a registry that spoils the first connections with
/// the given faults (or every connection when `forever`), then forwards bytes untouched.
pub struct FlakyProxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyProxy {
    /// Starts the proxy in front of `upstream` (`host:port`).
    pub fn start(upstream: &str, faults: Vec<ProxyFault>, forever: bool) -> FlakyProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(faults)));
        let (served2, stop2, upstream) = (served.clone(), stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let mut client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
                let (queue, served, upstream) = (queue.clone(), served2.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let mut first = [0u8; 1];
                    // TLS probes (0x16) are not HTTP; close them without spending a fault.
                    if client.read_exact(&mut first).is_err() || first[0] == 0x16 {
                        return;
                    }
                    let fault = {
                        let mut q = queue.lock().unwrap();
                        match q.front().copied() {
                            Some(f) if forever => Some(f),
                            Some(_) => q.pop_front(),
                            None => None,
                        }
                    };
                    if let Some(fault) = fault {
                        served.fetch_add(1, Ordering::Relaxed);
                        let mut head = first.to_vec();
                        let mut b = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") && client.read_exact(&mut b).is_ok() {
                            head.push(b[0]);
                        }
                        if fault == ProxyFault::Unavailable {
                            let _ = client.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                        }
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = client.set_read_timeout(None);
                    let Ok(mut up) = std::net::TcpStream::connect(&upstream) else {
                        return;
                    };
                    if up.write_all(&first).is_err() {
                        return;
                    }
                    let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                    let back = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut u2, &mut c2);
                        let _ = c2.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut client, &mut up);
                    let _ = up.shutdown(std::net::Shutdown::Write);
                    let _ = back.join();
                });
            }
        });
        FlakyProxy { host, served, stop }
    }

    /// How many connections got a fault.
    pub fn faults_served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
