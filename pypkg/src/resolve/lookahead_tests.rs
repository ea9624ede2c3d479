//! Looking ahead through a real loopback index that holds every request a moment and records
//! how many metadata documents were in flight at once.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envpack_net::{Cache, HttpClient, HttpConfig};
use url::Url;

use crate::index::{IndexFile, SimpleIndex};
use crate::{platform_by_name, ResolveRequest};
use crate::{BuiltWheel, Resolver, SdistBuilder};

#[derive(Default)]
struct Seen {
    paths: Mutex<Vec<String>>,
    metadata_in_flight: AtomicUsize,
    metadata_peak: AtomicUsize,
}

/// `top` depends on `a`, `b` and `c`, each a wheel with PEP 658 metadata and no dependencies.
fn index_server() -> (Url, Arc<Seen>) {
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
                let metadata = path.ends_with(".metadata");
                if metadata {
                    let now = seen.metadata_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.metadata_peak.fetch_max(now, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
                if metadata {
                    seen.metadata_in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                seen.paths.lock().unwrap().push(path.clone());
                let name = path
                    .trim_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .split('-')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let (kind, body) = if metadata {
                    let deps = if name == "top" {
                        "Requires-Dist: a\nRequires-Dist: b>=1\nRequires-Dist: c\n"
                    } else {
                        ""
                    };
                    (
                        "text/plain",
                        format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{deps}"),
                    )
                } else {
                    (
                        "text/html",
                        format!(
                            r#"<a href="../../files/{name}-1.0-py3-none-any.whl" data-core-metadata="true">w</a>"#
                        ),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    let base = Url::parse(&format!("http://127.0.0.1:{port}/simple/")).unwrap();
    (base, seen)
}

struct NoBuilds;

impl SdistBuilder for NoBuilds {
    fn build_wheel(
        &self,
        sdist: &IndexFile,
        _: &std::path::Path,
    ) -> Result<BuiltWheel, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("no sdist expected, got {}", sdist.filename).into())
    }
}

#[test]
fn dependencies_metadata_is_fetched_together_and_once() {
    let (base, seen) = index_server();
    let index = SimpleIndex::new(
        base,
        HttpClient::new(HttpConfig {
            retries: 0,
            ..HttpConfig::default()
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(Some(dir.path())).unwrap();
    let resolver = Resolver {
        index: &index,
        cache: &cache,
        sdist_builder: &NoBuilds,
    };
    let platform = platform_by_name("linux-x86_64").unwrap();
    let requirements = [pep508_rs::Requirement::from_str("top").unwrap()];
    let resolved = resolver
        .resolve(&ResolveRequest {
            requirements: &requirements,
            platform: &platform,
            python_full_version: "3.11.7",
        })
        .unwrap();
    let mut names: Vec<String> = resolved.iter().map(|p| p.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c", "top"]);
    // pubgrub asks for a, b and c one after the other; the three documents were already on
    // their way together.
    assert_eq!(seen.metadata_peak.load(Ordering::SeqCst), 3);
    let mut paths = seen.paths.lock().unwrap().clone();
    paths.sort();
    let mut want: Vec<String> = ["a", "b", "c", "top"]
        .iter()
        .flat_map(|n| {
            [
                format!("/simple/{n}/"),
                format!("/files/{n}-1.0-py3-none-any.whl.metadata"),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(paths, want, "each page and document fetched once");
}
