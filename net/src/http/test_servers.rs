//! Servers on loopback for the proxy and CA bundle tests: an origin (plain HTTP or HTTPS with
//! a certificate from a CA made in the test) and a forward proxy that counts what it carried.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA made for one test, and a server certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    _dir: tempfile::TempDir,
    /// `ca_pem` written to a file.
    pub bundle: PathBuf,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Makes the CA, the server certificate and the bundle file.
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "envpack test CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, ca.pem()).unwrap();
        TestCa {
            server_chain: vec![leaf.der().clone()],
            server_key: key.serialize_der(),
            _dir: dir,
            bundle,
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), key)
            .unwrap();
        Arc::new(config)
    }
}

/// Reads a request head (request line and headers) from `r`; `None` at end of stream.
fn read_head(r: &mut impl BufRead) -> Option<(String, BTreeMap<String, String>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_string();
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some((request_line, headers))
}

/// Answers for each request path: `(content type, body)`; any other path gets a 404. The
/// content type `redirect` answers 302 with the body as `Location`.
pub type Routes = BTreeMap<String, (String, Vec<u8>)>;

fn respond(w: &mut impl Write, routes: &Routes, request_line: &str) -> io::Result<()> {
    let path = request_line.split(' ').nth(1).unwrap_or("");
    match routes.get(path) {
        Some((ct, location)) if ct == "redirect" => {
            w.write_all(b"HTTP/1.1 302 Found\r\nLocation: ")?;
            w.write_all(location)?;
            w.write_all(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        }
        Some((ct, body)) => {
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            w.write_all(body)?;
        }
        None => w.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    w.flush()
}

/// An origin server on 127.0.0.1, one request per connection.
pub struct Origin {
    /// Its port.
    pub port: u16,
    /// Requests answered.
    pub requests: Arc<AtomicUsize>,
}

impl Origin {
    /// Plain HTTP.
    pub fn plain(routes: Routes) -> Origin {
        Self::start(routes, None)
    }

    /// HTTPS with `ca`'s server certificate.
    pub fn tls(routes: Routes, ca: &TestCa) -> Origin {
        Self::start(routes, Some(ca.server_config()))
    }

    fn start(routes: Routes, tls: Option<Arc<rustls::ServerConfig>>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let (count, routes) = (requests.clone(), Arc::new(routes));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (count, routes, tls) = (count.clone(), routes.clone(), tls.clone());
                thread::spawn(move || {
                    // A failed handshake (the client refusing the certificate) just ends here.
                    let _ = match tls {
                        Some(config) => match rustls::ServerConnection::new(config) {
                            Ok(conn) => {
                                serve_one(rustls::StreamOwned::new(conn, stream), &routes, &count)
                            }
                            Err(_) => Ok(()),
                        },
                        None => serve_one(stream, &routes, &count),
                    };
                });
            }
        });
        Origin { port, requests }
    }

    /// How many requests it answered.
    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve_one<S: Read + Write>(s: S, routes: &Routes, count: &AtomicUsize) -> io::Result<()> {
    let mut r = BufReader::new(s);
    if let Some((line, _)) = read_head(&mut r) {
        count.fetch_add(1, Ordering::SeqCst);
        respond(r.get_mut(), routes, &line)?;
    }
    Ok(())
}

/// What the proxy saw of one request.
#[derive(Debug, Clone)]
pub struct Carried {
    /// `CONNECT` or the method of an absolute-form request.
    pub method: String,
    /// `host:port` for CONNECT, the absolute URL otherwise.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A forward proxy on 127.0.0.1: CONNECT tunnels and absolute-form requests, optionally
/// requiring Basic proxy credentials (407 otherwise).
pub struct ForwardProxy {
    /// Its port.
    pub port: u16,
    /// Every request it received, in order.
    pub carried: Arc<Mutex<Vec<Carried>>>,
}

impl ForwardProxy {
    /// Starts it; `basic` is the `user:password` it demands, if any.
    pub fn start(basic: Option<&str>) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let carried = Arc::new(Mutex::new(Vec::new()));
        let log = carried.clone();
        let expected = basic.map(|b| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )
        });
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, expected) = (log.clone(), expected.clone());
                thread::spawn(move || {
                    let _ = proxy_one(stream, &log, expected.as_deref());
                });
            }
        });
        ForwardProxy { port, carried }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests went through it.
    pub fn count(&self) -> usize {
        self.carried.lock().unwrap().len()
    }
}

fn proxy_one(
    client: TcpStream,
    log: &Mutex<Vec<Carried>>,
    expected: Option<&str>,
) -> io::Result<()> {
    let mut r = BufReader::new(client.try_clone()?);
    let Some((line, headers)) = read_head(&mut r) else {
        return Ok(());
    };
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authorization = headers.get("proxy-authorization").cloned();
    log.lock().unwrap().push(Carried {
        method: method.to_string(),
        target: target.to_string(),
        authorization: authorization.clone(),
    });
    let mut client_w = client;
    if expected.is_some() && authorization.as_deref() != expected {
        client_w.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let (upstream_addr, first_bytes) = if method == "CONNECT" {
        (target.to_string(), None)
    } else {
        let rest = target.strip_prefix("http://").unwrap_or(target);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in headers.iter().filter(|(k, _)| !k.starts_with("proxy-")) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        (authority.to_string(), Some(head))
    };
    let mut upstream = match TcpStream::connect(&upstream_addr) {
        Ok(u) => u,
        Err(_) => {
            client_w.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
    };
    match first_bytes {
        None => client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?,
        Some(head) => upstream.write_all(head.as_bytes())?,
    }
    let mut up_r = upstream.try_clone()?;
    let mut down_w = client_w.try_clone()?;
    let down = thread::spawn(move || {
        let _ = io::copy(&mut up_r, &mut down_w);
        let _ = down_w.shutdown(Shutdown::Write);
    });
    // Bytes the head reader already buffered belong to the tunnel.
    upstream.write_all(r.buffer())?;
    let mut rest = r.into_inner();
    let _ = io::copy(&mut rest, &mut upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = down.join();
    Ok(())
}

/// One route: `path` answered with `body` as `content_type`.
pub fn routes(entries: &[(&str, &str, &[u8])]) -> Routes {
    entries
        .iter()
        .map(|(p, ct, b)| (p.to_string(), (ct.to_string(), b.to_vec())))
        .collect()
}
