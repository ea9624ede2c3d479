//! Tests of `mod.rs`, kept beside it so the module itself stays short.

use super::*;
use std::io::BufRead;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Serves one scripted raw response per connection, recording request heads.
fn serve(responses: Vec<Vec<u8>>) -> (Url, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for resp in responses {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = io::BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            seen2.lock().unwrap().push(head);
            s.write_all(&resp).unwrap();
        }
    });
    (
        Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap(),
        seen,
    )
}

fn ok(body: &str, ct: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status(code: u16) -> Vec<u8> {
    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
}

fn client(retries: u32) -> HttpClient {
    HttpClient::new(HttpConfig {
        retries,
        timeout_secs: 10,
        stall_timeout_secs: 5,
        offline: false,
        ..HttpConfig::default()
    })
}

#[test]
fn retries_5xx_and_truncation_then_succeeds() {
    let truncated =
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc".to_vec();
    let (url, seen) = serve(vec![
        status(503),
        truncated,
        ok("hello", "text/html; charset=utf-8"),
    ]);
    let r = client(3).get_bytes(&url, Some("text/html"), 1000).unwrap();
    assert_eq!(r.bytes, b"hello");
    assert_eq!(r.content_type.as_deref(), Some("text/html"));
    let heads = seen.lock().unwrap();
    assert_eq!(heads.len(), 3);
    assert!(heads[0].to_ascii_lowercase().contains("accept: text/html"));
}

fn cut(headers: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\n{headers}Content-Length: 10\r\nConnection: close\r\n\r\n{body}")
        .into_bytes()
}

#[test]
fn resumes_with_range_after_a_cut_body() {
    let partial = cut("ETag: \"v1\"\r\nAccept-Ranges: bytes\r\n", "01234");
    let rest = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\nConnection: close\r\n\r\n56789".to_vec();
    let (url, seen) = serve(vec![partial, rest]);
    let mut out = Vec::new();
    assert_eq!(client(2).download(&url, &mut out).unwrap(), 10);
    assert_eq!(out, b"0123456789");
    let heads = seen.lock().unwrap();
    let second = heads[1].to_ascii_lowercase();
    assert!(second.contains("range: bytes=5-"), "{second}");
    assert!(second.contains("if-range: \"v1\""), "{second}");
}

#[test]
fn starts_over_when_resuming_is_unsafe_or_refused() {
    // No validator: the retry asks for the whole file again.
    let (url, seen) = serve(vec![
        cut("Accept-Ranges: bytes\r\n", "01234"),
        ok("0123456789", "x/y"),
    ]);
    let mut out = Vec::new();
    assert_eq!(client(2).download(&url, &mut out).unwrap(), 10);
    assert_eq!(out, b"0123456789");
    assert!(!seen.lock().unwrap()[1]
        .to_ascii_lowercase()
        .contains("range:"));
    // The file changed (If-Range fails, full 200): the partial bytes are dropped.
    let (url, _) = serve(vec![
        cut("ETag: \"v1\"\r\nAccept-Ranges: bytes\r\n", "01234"),
        ok("abcdefghij", "x/y"),
    ]);
    let mut out = Vec::new();
    assert_eq!(client(2).download(&url, &mut out).unwrap(), 10);
    assert_eq!(out, b"abcdefghij");
    // A range answer at the wrong offset is discarded and the next attempt starts over.
    let wrong = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789".to_vec();
    let (url, seen) = serve(vec![
        cut("ETag: \"v1\"\r\nAccept-Ranges: bytes\r\n", "01234"),
        wrong,
        ok("0123456789", "x/y"),
    ]);
    let mut out = Vec::new();
    assert_eq!(client(3).download(&url, &mut out).unwrap(), 10);
    assert_eq!(out, b"0123456789");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn stalled_response_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // First connection: read the request, then say nothing.
        let (stalled, _) = listener.accept().unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let mut r = io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
        s.write_all(&ok("late but fine", "x/y")).unwrap();
        drop(stalled);
    });
    let url = Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
    let c = HttpClient::new(HttpConfig {
        retries: 1,
        timeout_secs: 30,
        stall_timeout_secs: 1,
        offline: false,
        ..HttpConfig::default()
    });
    let r = c.get_bytes(&url, None, 100).unwrap();
    assert_eq!(r.bytes, b"late but fine");
}

/// Serves one response whose body arrives in `pieces` pieces, `gap` apart.
fn drip(body: &'static [u8], pieces: usize, gap: std::time::Duration) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        for chunk in body.chunks(body.len().div_ceil(pieces)) {
            std::thread::sleep(gap);
            s.write_all(chunk).unwrap();
            s.flush().unwrap();
        }
    });
    Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap()
}

#[test]
fn a_slow_body_that_keeps_coming_outlasts_the_stall_limit() {
    // Five pieces 400 ms apart: 2 s in all, each piece within the 1 s stall limit. The limit is
    // on progress, not on the whole body.
    let url = drip(
        b"0123456789abcdefghij",
        5,
        std::time::Duration::from_millis(400),
    );
    let within = |timeout_secs| {
        HttpClient::new(HttpConfig {
            retries: 0,
            timeout_secs,
            stall_timeout_secs: 1,
            ..HttpConfig::default()
        })
    };
    let r = within(30).get_bytes(&url, None, 100).unwrap();
    assert_eq!(r.bytes, b"0123456789abcdefghij");
    // The whole-request limit still ends a body that keeps coming for too long.
    let url = drip(
        b"0123456789abcdefghij",
        5,
        std::time::Duration::from_millis(700),
    );
    let e = within(2)
        .get_bytes(&url, None, 100)
        .unwrap_err()
        .to_string();
    assert!(e.contains("longer than 2 s"), "{e}");
}

#[test]
fn not_found_fails_at_once_and_names_url() {
    let (url, seen) = serve(vec![status(404), ok("late", "text/plain")]);
    let e = client(3).get_bytes(&url, None, 1000).unwrap_err();
    assert!(matches!(e, NetError::Status { status: 404, .. }));
    assert!(e.to_string().contains(url.as_str()));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn gives_up_after_retries() {
    let (url, seen) = serve(vec![status(500), status(502)]);
    let e = client(1).get_bytes(&url, None, 1000).unwrap_err();
    assert!(matches!(e, NetError::Status { status: 502, .. }), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn limit_and_download() {
    let (url, _) = serve(vec![ok("0123456789", "x/y"), ok("payload", "x/y")]);
    let c = client(0);
    assert!(matches!(
        c.get_bytes(&url, None, 5),
        Err(NetError::TooLarge { limit: 5, .. })
    ));
    let mut out = Vec::new();
    assert_eq!(c.download(&url, &mut out).unwrap(), 7);
    assert_eq!(out, b"payload");
}

#[test]
fn offline_and_file_urls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<a>").unwrap();
    std::fs::write(dir.path().join("f.bin"), "data").unwrap();
    let c = HttpClient::new(HttpConfig {
        offline: true,
        ..HttpConfig::default()
    });
    let remote = Url::parse("http://127.0.0.1:9/x").unwrap();
    assert!(matches!(
        c.get_bytes(&remote, None, 10),
        Err(NetError::Offline { .. })
    ));
    let dir_url = Url::from_directory_path(dir.path()).unwrap();
    let r = c.get_bytes(&dir_url, None, 100).unwrap();
    assert_eq!(
        (r.bytes.as_slice(), r.content_type.as_deref()),
        (&b"<a>"[..], Some("text/html"))
    );
    let mut out = Vec::new();
    let f = Url::from_file_path(dir.path().join("f.bin")).unwrap();
    assert_eq!(c.download(&f, &mut out).unwrap(), 4);
    let missing = Url::from_file_path(dir.path().join("nope")).unwrap();
    let e = c.get_bytes(&missing, None, 10).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn backoff_grows_and_is_deterministic() {
    let u = Url::parse("http://h/a").unwrap();
    assert_eq!(backoff(&u, 1), backoff(&u, 1));
    let (a, b) = (backoff(&u, 1).as_millis(), backoff(&u, 3).as_millis());
    assert!((150..250).contains(&a), "{a}");
    assert!((600..1000).contains(&b), "{b}");
}
