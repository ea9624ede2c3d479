//! A loopback HTTP server for the index tests: it holds every request 100 ms, so that requests
//! sent together are seen together, and records the paths asked for and how many of the
//! counted ones were in flight at once.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    /// Every path asked for, in the order the answers went out.
    pub paths: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Seen {
    /// The most counted requests that were in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// The paths asked for so far, sorted.
    pub fn sorted_paths(&self) -> Vec<String> {
        let mut p = self.paths.lock().unwrap().clone();
        p.sort();
        p
    }
}

/// An answer: status line, content type, body.
pub type Answer = (&'static str, &'static str, String);

/// Serves `answer(path)` for every request; requests whose path `counted` accepts make up
/// [`Seen::peak`]. Returns the base URL `http://127.0.0.1:PORT/simple/`.
pub fn serve(counted: fn(&str) -> bool, answer: fn(&str) -> Answer) -> (Url, Arc<Seen>) {
    serve_together(counted, answer, 0)
}

/// Like [`serve`], and a counted request is held until `together` of them are in flight (or
/// 2 s pass), so requests sent together are seen together however busy the machine is.
pub fn serve_together(
    counted: fn(&str) -> bool,
    answer: fn(&str) -> Answer,
    together: usize,
) -> (Url, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let seen = s.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let count = counted(&path);
                if count {
                    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.peak.fetch_max(now, Ordering::SeqCst);
                    let since = std::time::Instant::now();
                    while seen.in_flight.load(Ordering::SeqCst) < together
                        && since.elapsed() < Duration::from_secs(2)
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
                if count {
                    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                seen.paths.lock().unwrap().push(path.clone());
                let (status, kind, body) = answer(&path);
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    let base = Url::parse(&format!("http://127.0.0.1:{port}/simple/")).unwrap();
    (base, seen)
}

/// The last segment of `path` up to its first `-`: the project a page or file is for.
pub fn project_of(path: &str) -> &str {
    let last = path.trim_matches('/').rsplit('/').next().unwrap_or("");
    last.split('-').next().unwrap_or("")
}
