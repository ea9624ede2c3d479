//! The CLI reads proxies the way curl does, not the way the HTTP library would on its own:
//! `envpack unpack REF` from a loopback registry goes through the proxy of the scheme's own
//! variable (not `ALL_PROXY`, which the library would pick first), skips it for `NO_PROXY`, and
//! refuses a proxy setting it cannot use. No fixtures needed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use envpack_e2e::envpack_bin;

/// A proxy on loopback that records each request line and refuses it with 502.
fn refusing_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            log.lock().unwrap().push(line.trim_end().to_string());
            // Read the whole head: closing on unread bytes would reset the connection.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header != "\r\n" {
                header.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

/// A loopback port with nothing listening.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unpack(reference: &str, env: &[(&str, String)]) -> Output {
    let root = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(envpack_bin());
    cmd.args(["unpack", reference, "--root"])
        .arg(root.path().join("root"))
        .env("ENVPACK_HTTP_RETRIES", "0");
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "ENVPACK_HTTP_CA_BUNDLE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "no registry there, yet it succeeded");
    out
}

#[test]
fn registry_requests_follow_the_proxy_variables_and_bad_ones_are_refused() {
    let (port, seen) = refusing_proxy();
    let registry = format!("127.0.0.1:{}", dead_port());
    let reference = format!("{registry}/env:1");
    let proxy = format!("http://127.0.0.1:{port}");
    let dead_proxy = format!("http://127.0.0.1:{}", dead_port());
    let via = [
        ("HTTPS_PROXY", proxy.clone()),
        ("http_proxy", proxy.clone()),
        ("ALL_PROXY", dead_proxy.clone()),
    ];
    let out = unpack(&reference, &via);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("502"), "{stderr}");
    assert!(
        stderr.contains(&format!("via proxy {proxy} (from http_proxy)")),
        "{stderr}"
    );
    // The HTTPS probe (a tunnel), then the plain-HTTP ping a loopback registry gets (by its
    // absolute URL).
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            format!("CONNECT {registry} HTTP/1.1"),
            format!("GET http://{registry}/v2/ HTTP/1.1"),
        ]
    );

    let mut direct = via.to_vec();
    direct.push(("NO_PROXY", "localhost,127.0.0.1".into()));
    let out = unpack(&reference, &direct);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("via proxy"), "{stderr}");
    assert!(stderr.contains(&registry), "{stderr}");
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "NO_PROXY matched, yet the proxy was used"
    );

    // A proxy or CA bundle it cannot use is refused, naming the variable, masking a password.
    let out = unpack(
        &reference,
        &[(
            "HTTPS_PROXY",
            "socks5://user:hunter2@proxy.test:1080".into(),
        )],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "HTTPS_PROXY=socks5://user:***@proxy.test:1080: socks5:// proxies are not supported"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let out = unpack(
        &reference,
        &[("SSL_CERT_FILE", "/nonexistent/ca.pem".into())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SSL_CERT_FILE=/nonexistent/ca.pem: ") && stderr.contains("No such file"),
        "{stderr}"
    );
}
