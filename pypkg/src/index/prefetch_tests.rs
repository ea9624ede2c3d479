//! Prefetching pages through a real loopback server (`crate::test_server`).

use super::*;
use crate::test_server::{serve, Seen};
use envpack_net::HttpConfig;
use std::str::FromStr;

/// Serves `/simple/<name>/` as a one-file page, `/simple/missing/` as 404 and
/// `/simple/broken/` as 500.
fn server() -> (Url, Arc<Seen>) {
    serve(
        |_| true,
        |path| {
            if path.contains("missing") {
                ("404 Not Found", "text/plain", String::new())
            } else if path.contains("broken") {
                ("500 Oops", "text/plain", String::new())
            } else {
                let name = path.trim_matches('/').rsplit('/').next().unwrap_or("");
                let body = format!(r#"<a href="../../files/{name}-1.0.tar.gz">x</a>"#);
                ("200 OK", "text/html", body)
            }
        },
    )
}

fn index(base: Url, concurrency: usize) -> SimpleIndex {
    SimpleIndex::new(
        base,
        HttpClient::new(HttpConfig {
            retries: 0,
            concurrency,
            ..HttpConfig::default()
        }),
    )
}

fn names(list: &[&str]) -> Vec<PackageName> {
    list.iter()
        .map(|n| PackageName::from_str(n).unwrap())
        .collect()
}

#[test]
fn prefetch_overlaps_requests_up_to_the_limit_and_fetches_each_page_once() {
    let (base, seen) = server();
    let idx = index(base, 3);
    let all = names(&["a", "b", "c", "d", "e", "f", "a", "b"]);
    idx.prefetch(&all);
    let peak = seen.peak();
    assert!((2..=3).contains(&peak), "peak {peak} with a limit of 3");
    assert_eq!(
        seen.sorted_paths(),
        ["a", "b", "c", "d", "e", "f"].map(|n| format!("/simple/{n}/"))
    );
    // The resolver's own asks are answered from memory.
    for n in &all {
        assert_eq!(
            idx.project_files(n).unwrap()[0].filename,
            format!("{n}-1.0.tar.gz")
        );
    }
    assert_eq!(seen.paths.lock().unwrap().len(), 6);
}

#[test]
fn threads_asking_for_one_page_share_one_request() {
    let (base, seen) = server();
    let idx = index(base, 8);
    let name = PackageName::from_str("shared").unwrap();
    let got = envpack_net::parallel_map(6, &[(); 6], |_| idx.project_files(&name).unwrap());
    assert!(got.iter().all(|f| f[0].filename == "shared-1.0.tar.gz"));
    assert_eq!(
        *seen.paths.lock().unwrap(),
        vec!["/simple/shared/".to_string()]
    );
}

#[test]
fn a_404_is_remembered_and_other_prefetch_failures_are_left_to_the_next_ask() {
    let (base, seen) = server();
    let idx = index(base, 4);
    idx.prefetch(&names(&["missing", "broken", "ok"]));
    assert_eq!(seen.paths.lock().unwrap().len(), 3);
    // The index said the project doesn't exist: every ask hears that, without asking again.
    let missing = PackageName::from_str("missing").unwrap();
    for _ in 0..2 {
        assert!(matches!(
            idx.project_files(&missing),
            Err(PypkgError::NotFound { .. })
        ));
    }
    assert_eq!(seen.paths.lock().unwrap().len(), 3);
    // A 500 is not remembered: the resolver's ask fetches (and reports) it itself.
    let broken = PackageName::from_str("broken").unwrap();
    let e = idx.project_files(&broken).unwrap_err().to_string();
    assert!(e.contains("500"), "{e}");
    assert_eq!(seen.paths.lock().unwrap().len(), 4);
}

#[test]
fn the_client_bounds_requests_in_flight_across_threads() {
    let (base, seen) = server();
    let idx = index(base, 2);
    // Six threads, each with its own page: the client's gate lets two through at a time.
    let all = names(&["p1", "p2", "p3", "p4", "p5", "p6"]);
    envpack_net::parallel_map(6, &all, |n| idx.project_files(n).unwrap());
    assert_eq!(seen.peak(), 2);
    assert_eq!(seen.paths.lock().unwrap().len(), 6);
}
