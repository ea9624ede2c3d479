//! The registry client through the same proxies and CA bundles as every other request, with
//! an in-process registry (plain HTTP, as loopback registries are reached, or HTTPS with a CA
//! made here) and a counting forward proxy.

use crate::registry::{ClientOptions, RegistryClient};
use crate::OciError;
use envpack_net::test_servers::{routes, ForwardProxy, Origin, Routes, TestCa};

const MANIFEST: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;

fn registry_routes() -> Routes {
    routes(&[
        ("/v2/", "application/json", b"{}"),
        (
            "/v2/base/manifests/1",
            "application/vnd.oci.image.manifest.v1+json",
            MANIFEST,
        ),
    ])
}

fn options(env: &[(&str, &str)]) -> ClientOptions {
    let mut http = envpack_net::http_config_from(false, |k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    http.retries = 0;
    http.stall_timeout_secs = 5;
    ClientOptions::from_http(&http, false)
}

fn pull(host: &str, options: &ClientOptions) -> Result<(String, Vec<u8>), OciError> {
    let client = RegistryClient::connect(host, options, Vec::new())?;
    let m = client.get_manifest("base", "1")?;
    Ok((client.base().scheme().to_string(), m.bytes))
}

#[test]
fn a_plain_loopback_registry_goes_through_the_proxy_unless_no_proxy_matches() {
    let registry = Origin::plain(registry_routes());
    let proxy = ForwardProxy::start(None);
    let host = format!("127.0.0.1:{}", registry.port);
    let url = proxy.url();
    let via = options(&[("HTTPS_PROXY", &url), ("HTTP_PROXY", &url)]);
    assert_eq!(
        pull(&host, &via).unwrap(),
        ("http".into(), MANIFEST.to_vec())
    );
    let carried = proxy.count();
    // The HTTPS probe tunnelled to the registry, then the plain ping and the manifest asked
    // for by their absolute URLs.
    assert_eq!(carried, 3);
    let seen: Vec<(String, String)> = proxy
        .carried
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.method.clone(), c.target.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("CONNECT".to_string(), host.clone()),
            ("GET".to_string(), format!("http://{host}/v2/")),
            (
                "GET".to_string(),
                format!("http://{host}/v2/base/manifests/1")
            ),
        ]
    );
    let answered = registry.count();
    for no_proxy in ["127.0.0.1", &host, "127.0.0.0/8"] {
        let direct = options(&[
            ("HTTPS_PROXY", &url),
            ("HTTP_PROXY", &url),
            ("NO_PROXY", no_proxy),
        ]);
        pull(&host, &direct).unwrap();
        assert_eq!(
            proxy.count(),
            carried,
            "NO_PROXY={no_proxy} still used the proxy"
        );
    }
    assert!(registry.count() >= answered + 3 * 2);
}

#[test]
fn a_proxy_that_refuses_fails_the_registry_request_naming_the_proxy() {
    let registry = Origin::plain(registry_routes());
    let proxy = ForwardProxy::start(Some("u:right"));
    let host = format!("127.0.0.1:{}", registry.port);
    let bad = format!("http://u:wrong@127.0.0.1:{}", proxy.port);
    let e = pull(
        &host,
        &options(&[("HTTP_PROXY", &bad), ("HTTPS_PROXY", &bad)]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("407"), "{e}");
    assert!(e.contains("via proxy http://u:***@127.0.0.1"), "{e}");
    assert!(!e.contains("wrong"), "{e}");
    assert_eq!(registry.count(), 0);
}

#[test]
fn an_https_registry_is_trusted_through_the_ca_bundle() {
    let ca = TestCa::new();
    let registry = Origin::tls(registry_routes(), &ca);
    let proxy = ForwardProxy::start(None);
    let host = format!("localhost:{}", registry.port);
    let bundle = ca.bundle.to_str().unwrap();
    let url = proxy.url();
    let trusted = options(&[("ENVPACK_HTTP_CA_BUNDLE", bundle), ("HTTPS_PROXY", &url)]);
    assert_eq!(
        pull(&host, &trusted).unwrap(),
        ("https".into(), MANIFEST.to_vec())
    );
    assert_eq!(
        proxy.count(),
        2,
        "the ping and the manifest, through the proxy"
    );
    // Without the bundle the certificate is refused, and a loopback registry that speaks
    // HTTPS is not retried over plain HTTP: the error is the certificate's.
    let e = pull(&host, &options(&[])).unwrap_err();
    assert!(matches!(e, OciError::Certificate { .. }), "{e}");
    let e = e.to_string();
    assert!(e.starts_with(&format!("GET https://{host}/v2/: ")), "{e}");
    assert!(
        e.contains("UnknownIssuer; trusted: the bundled roots"),
        "{e}"
    );
    assert_eq!(registry.count(), 2);
}

#[test]
fn a_manifest_larger_than_the_cap_is_refused_not_buffered() {
    // A hostile or broken registry can answer a manifest GET with any amount of bytes; reading
    // them all (as a plain `bytes()` would) lets it exhaust memory.
    let cap = crate::MAX_MANIFEST_BYTES as usize;
    let mut huge = MANIFEST.to_vec();
    huge.resize(cap + 1, b' ');
    let mut r = registry_routes();
    r.insert(
        "/v2/base/manifests/1".into(),
        ("application/vnd.oci.image.manifest.v1+json".into(), huge),
    );
    let registry = Origin::plain(r);
    let host = format!("127.0.0.1:{}", registry.port);
    let e = pull(&host, &options(&[])).unwrap_err().to_string();
    assert!(e.contains(&format!("larger than {cap} bytes")), "{e}");
    assert!(e.contains("/v2/base/manifests/1"), "{e}");
    // Exactly the cap is still a manifest (whitespace after JSON is allowed).
    let mut r = registry_routes();
    let mut at_cap = MANIFEST.to_vec();
    at_cap.resize(cap, b' ');
    r.insert(
        "/v2/base/manifests/1".into(),
        (
            "application/vnd.oci.image.manifest.v1+json".into(),
            at_cap.clone(),
        ),
    );
    let registry = Origin::plain(r);
    let host = format!("127.0.0.1:{}", registry.port);
    assert_eq!(pull(&host, &options(&[])).unwrap().1, at_cap);
}
