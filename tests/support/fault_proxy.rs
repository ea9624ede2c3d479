//! A fault-injecting HTTP server on loopback for the download tests.
//!
//! It sits in front of a real upstream (the fixture index server, or a directory served like a
//! static web server) and answers each request itself, so it can inject the faults a real
//! mirror produces: 5xx answers, connections reset in the middle of a body, bodies cut short,
//! responses that never start, bodies that drip slowly, and corrupted bytes. It also serves
//! byte ranges (with a strong ETag), so clients can resume.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Send the headers and half the body, then reset the connection (RST).
    ResetMidBody,
    /// Send the headers and a third of the body, then close cleanly.
    Truncate,
    /// Read the request and send nothing for this long, then close.
    Stall(Duration),
    /// Send the whole body in small pieces with pauses (slow, but it completes).
    Drip,
    /// Send the whole body with one byte flipped.
    Corrupt,
}

impl Fault {
    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Status(_) => "5xx status",
            Fault::ResetMidBody => "reset mid-body",
            Fault::Truncate => "truncated body",
            Fault::Stall(_) => "stalled response",
            Fault::Drip => "slow body",
            Fault::Corrupt => "corrupted body",
        }
    }
}

/// What the plan sees of a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The request path (with query).
    pub path: String,
    /// How many earlier requests had the same path.
    pub seen_before: usize,
    /// Whether it is a range request.
    pub ranged: bool,
}

/// Decides the fault (if any) for each request.
pub type FaultPlan = Box<dyn Fn(&RequestInfo) -> Option<Fault> + Send + Sync>;

/// Where the proxy gets the real bytes.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// An HTTP server on loopback (`http://127.0.0.1:PORT`), asked with the client's Accept.
    Http(String),
    /// A directory served like a static web server.
    Dir(PathBuf),
}

/// What happened, for the assertions and the report.
#[derive(Debug, Default, Clone)]
pub struct ProxyStats {
    /// Requests answered.
    pub requests: usize,
    /// Injected faults by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Range requests answered with 206.
    pub ranged_answers: usize,
    /// Bytes of bodies sent in 206 answers.
    pub ranged_bytes: u64,
}

/// A running proxy; dropping it stops accepting.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stats: Arc<Mutex<ProxyStats>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    /// Starts serving `upstream` on a free port with `plan`.
    pub fn start(upstream: Upstream, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let stats = Arc::new(Mutex::new(ProxyStats::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let plan: Arc<FaultPlan> = Arc::new(plan);
        let (stats2, stop2) = (stats.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (upstream, plan, stats, seen) =
                    (upstream.clone(), plan.clone(), stats2.clone(), seen.clone());
                thread::spawn(move || {
                    let _ = serve_connection(conn, &upstream, &plan, &stats, &seen);
                });
            }
        });
        FaultProxy { base, stats, stop }
    }

    /// A snapshot of what happened so far.
    pub fn stats(&self) -> ProxyStats {
        self.stats.lock().expect("stats lock").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Request {
        method,
        path,
        headers,
    })
}

/// The upstream's answer: status, content type, body.
fn fetch_upstream(upstream: &Upstream, req: &Request) -> (u16, String, Vec<u8>) {
    match upstream {
        Upstream::Dir(dir) => {
            let rel = req.path.split(['?', '#']).next().unwrap_or("");
            let clean: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
            if clean.iter().any(|p| *p == ".." || p.starts_with('.')) {
                return (404, "text/plain".into(), b"not found\n".to_vec());
            }
            let mut path = dir.clone();
            path.extend(&clean);
            if path.is_dir() {
                path.push("index.html");
            }
            match std::fs::read(&path) {
                Ok(body) => (200, "application/octet-stream".into(), body),
                Err(_) => (404, "text/plain".into(), b"not found\n".to_vec()),
            }
        }
        Upstream::Http(base) => {
            let addr = base.trim_start_matches("http://");
            let mut s = TcpStream::connect(addr).expect("connect upstream");
            let accept = req
                .headers
                .get("accept")
                .map(|a| format!("Accept: {a}\r\n"))
                .unwrap_or_default();
            write!(
                s,
                "GET {} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n",
                req.path
            )
            .expect("write upstream request");
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).expect("read upstream");
            let split = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("upstream header end");
            let head = String::from_utf8_lossy(&raw[..split]).to_string();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("upstream status");
            let mut ctype = "application/octet-stream".to_string();
            let mut location = None;
            for line in head.lines().skip(1) {
                if let Some((k, v)) = line.split_once(':') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "content-type" => ctype = v.trim().to_string(),
                        "location" => location = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            if let Some(loc) = location {
                // Redirects keep their target; the proxy answers them as-is.
                return (status, format!("redirect:{loc}"), Vec::new());
            }
            (status, ctype, raw[split + 4..].to_vec())
        }
    }
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]))
}

/// `Range: bytes=N-` (the only form our client sends), honoured only with a matching If-Range.
fn wanted_offset(req: &Request, etag: &str, len: usize) -> Option<usize> {
    let range = req.headers.get("range")?;
    let start: usize = range
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()?;
    let if_range_ok = req.headers.get("if-range").is_none_or(|v| v == etag);
    (if_range_ok && start < len).then_some(start)
}

fn serve_connection(
    conn: TcpStream,
    upstream: &Upstream,
    plan: &FaultPlan,
    stats: &Mutex<ProxyStats>,
    seen: &Mutex<BTreeMap<String, usize>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let Some(req) = read_request(&mut reader) else {
        return Ok(());
    };
    let seen_before = {
        let mut seen = seen.lock().expect("seen lock");
        let n = seen.entry(req.path.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    let info = RequestInfo {
        path: req.path.clone(),
        seen_before,
        ranged: req.headers.contains_key("range"),
    };
    let fault = plan(&info);
    {
        let mut st = stats.lock().expect("stats lock");
        st.requests += 1;
        if let Some(f) = &fault {
            *st.faults.entry(f.kind()).or_insert(0) += 1;
        }
    }
    let mut out = conn;
    match fault {
        Some(Fault::Status(code)) => {
            write!(
                out,
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return out.shutdown(Shutdown::Both);
        }
        Some(Fault::Stall(d)) => {
            thread::sleep(d);
            return out.shutdown(Shutdown::Both);
        }
        _ => {}
    }
    let (status, ctype, mut body) = fetch_upstream(upstream, &req);
    if let Some(loc) = ctype.strip_prefix("redirect:") {
        write!(
            out,
            "HTTP/1.1 {status} Moved\r\nLocation: {loc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return out.shutdown(Shutdown::Both);
    }
    let etag = etag_of(&body);
    let mut head = format!("Content-Type: {ctype}\r\nConnection: close\r\n");
    let mut status_line = format!("HTTP/1.1 {status} X\r\n");
    if status == 200 {
        head.push_str(&format!("ETag: {etag}\r\nAccept-Ranges: bytes\r\n"));
        if let Some(start) = wanted_offset(&req, &etag, body.len()) {
            let total = body.len();
            head.push_str(&format!(
                "Content-Range: bytes {start}-{}/{total}\r\n",
                total - 1
            ));
            status_line = "HTTP/1.1 206 Partial Content\r\n".to_string();
            body.drain(..start);
            let mut st = stats.lock().expect("stats lock");
            st.ranged_answers += 1;
            st.ranged_bytes += body.len() as u64;
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    if req.method == "HEAD" {
        body.clear();
    }
    out.write_all(status_line.as_bytes())?;
    out.write_all(head.as_bytes())?;
    match fault {
        Some(Fault::ResetMidBody) => {
            out.write_all(&body[..body.len() / 2])?;
            out.flush()?;
            // SO_LINGER 0 turns the close into a reset.
            rustix::net::sockopt::set_socket_linger(&out, Some(Duration::ZERO))?;
            drop(out);
            return Ok(());
        }
        Some(Fault::Truncate) => {
            out.write_all(&body[..body.len() / 3])?;
            return out.shutdown(Shutdown::Both);
        }
        Some(Fault::Drip) => {
            let piece = (body.len() / 8).max(1);
            for chunk in body.chunks(piece) {
                out.write_all(chunk)?;
                out.flush()?;
                thread::sleep(Duration::from_millis(40));
            }
        }
        Some(Fault::Corrupt) if !body.is_empty() => {
            let mid = body.len() / 2;
            body[mid] ^= 0x5a;
            out.write_all(&body)?;
        }
        _ => out.write_all(&body)?,
    }
    out.flush()?;
    out.shutdown(Shutdown::Both)
}
