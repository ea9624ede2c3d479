//! Looking ahead through a real loopback index (`crate::test_server`).

use std::str::FromStr;
use std::sync::Arc;

use envpack_net::{Cache, HttpClient, HttpConfig};
use url::Url;

use crate::index::{IndexFile, SimpleIndex};
use crate::test_server::{project_of, serve_together, Seen};
use crate::{platform_by_name, ResolveRequest};
use crate::{BuiltWheel, Resolver, SdistBuilder};

/// `top` depends on `a`, `b` and `c`, each a wheel with PEP 658 metadata and no dependencies;
/// the dependencies' metadata documents are the requests counted, each held until three are
/// in flight.
fn index_server() -> (Url, Arc<Seen>) {
    serve_together(
        |path| path.ends_with(".metadata") && !path.contains("/top-"),
        |path| {
            let name = project_of(path);
            if path.ends_with(".metadata") {
                let deps = if name == "top" {
                    "Requires-Dist: a\nRequires-Dist: b>=1\nRequires-Dist: c\n"
                } else {
                    ""
                };
                let body = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{deps}");
                ("200 OK", "text/plain", body)
            } else {
                let body = format!(
                    r#"<a href="../../files/{name}-1.0-py3-none-any.whl" data-core-metadata="true">w</a>"#
                );
                ("200 OK", "text/html", body)
            }
        },
        3,
    )
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
    assert_eq!(seen.peak(), 3);
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
    assert_eq!(
        seen.sorted_paths(),
        want,
        "each page and document fetched once"
    );
}
