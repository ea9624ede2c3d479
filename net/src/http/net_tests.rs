//! The HTTP client through real loopback servers: an HTTPS origin with a CA made here, and a
//! forward proxy that counts what it carried, configured the way a user does (variables).

use super::test_servers::{routes, ForwardProxy, Origin, TestCa};
use super::*;

const PAGE: &[u8] = b"<a href=\"pkg-1.0.tar.gz\">pkg</a>";

fn client(env: &[(&str, &str)]) -> HttpClient {
    client_retrying(env, 0)
}

fn client_retrying(env: &[(&str, &str)], retries: u32) -> HttpClient {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut c = crate::http_config_from(false, |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    c.retries = retries;
    c.stall_timeout_secs = 5;
    c.timeout_secs = 20;
    HttpClient::new(c)
}

/// An origin serving `/files/pkg.tar.gz`, and one whose `/pkg` redirects there: the redirect's
/// target URL, and the first URL (by name, `localhost`, where the target is by address).
fn redirect_pair() -> ((Origin, Origin), String, Url) {
    let target = Origin::plain(routes(&[(
        "/files/pkg.tar.gz",
        "application/x-tar",
        b"tar",
    )]));
    let moved = format!("http://127.0.0.1:{}/files/pkg.tar.gz", target.port);
    let first = Origin::plain(routes(&[("/pkg", "redirect", moved.as_bytes())]));
    let url = Url::parse(&format!("http://localhost:{}/pkg", first.port)).unwrap();
    ((target, first), moved, url)
}

/// Fetches `url` and checks it arrived from `moved`.
fn follow(c: &HttpClient, url: &Url, moved: &str) {
    let r = c.get_bytes(url, None, 1 << 20).unwrap();
    assert_eq!((r.bytes.as_slice(), r.url.as_str()), (&b"tar"[..], moved));
}

fn index(origin: &Origin, scheme: &str) -> Url {
    Url::parse(&format!("{scheme}://127.0.0.1:{}/simple/pkg/", origin.port)).unwrap()
}

#[test]
fn https_needs_the_ca_bundle_from_either_variable() {
    let ca = TestCa::new();
    let origin = Origin::tls(routes(&[("/simple/pkg/", "text/html", PAGE)]), &ca);
    let bundle = ca.bundle.to_str().unwrap();
    for var in ["SSL_CERT_FILE", "ENVPACK_HTTP_CA_BUNDLE"] {
        let r = client(&[(var, bundle)])
            .get_bytes(&index(&origin, "https"), None, 1 << 20)
            .unwrap();
        assert_eq!(r.bytes, PAGE);
    }
    // Without it: a TLS error, not retried (it cannot get better), naming what was trusted.
    let mut config = crate::http_config_from(false, |_| None).unwrap();
    config.retries = 3;
    let e = HttpClient::new(config)
        .get_bytes(&index(&origin, "https"), None, 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    assert!(
        e.contains(&format!("https://127.0.0.1:{}/", origin.port)),
        "{e}"
    );
    assert!(
        e.contains("trusted: the bundled roots") && e.contains("(after 1 attempts)"),
        "{e}"
    );
    assert_eq!(
        origin.count(),
        2,
        "the refused handshake never reached a request"
    );
}

#[test]
fn the_envpack_bundle_wins_over_ssl_cert_file() {
    let (ca, other) = (TestCa::new(), TestCa::new());
    let origin = Origin::tls(routes(&[("/simple/pkg/", "text/html", PAGE)]), &ca);
    let ours = ca.bundle.to_str().unwrap();
    let theirs = other.bundle.to_str().unwrap();
    let url = index(&origin, "https");
    client(&[("ENVPACK_HTTP_CA_BUNDLE", ours), ("SSL_CERT_FILE", theirs)])
        .get_bytes(&url, None, 1 << 20)
        .unwrap();
    // The bundle replaces the bundled roots rather than adding to them: another CA fails.
    let e = client(&[("SSL_CERT_FILE", theirs)])
        .get_bytes(&url, None, 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid peer certificate"), "{e}");
    assert!(
        e.contains(&format!(
            "trusted: only the 1 certificate(s) of {theirs} (from SSL_CERT_FILE)"
        )),
        "{e}"
    );
}

#[test]
fn a_missing_or_unusable_bundle_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (path, why) in [
        (&missing, "No such file"),
        (&junk, "holds no PEM certificate"),
        (&broken, "certificate 1 is not usable"),
    ] {
        let value = path.to_str().unwrap().to_string();
        let e = crate::http_config_from(false, |k| (k == "SSL_CERT_FILE").then(|| value.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("SSL_CERT_FILE={value}: ")), "{e}");
        assert!(e.contains(why) && e.contains(&value), "{e}");
    }
}

#[test]
fn https_goes_through_https_proxy_unless_no_proxy_matches() {
    let ca = TestCa::new();
    let origin = Origin::tls(routes(&[("/simple/pkg/", "text/html", PAGE)]), &ca);
    let proxy = ForwardProxy::start(None);
    let bundle = ca.bundle.to_str().unwrap();
    let url = index(&origin, "https");
    let via = client(&[("SSL_CERT_FILE", bundle), ("HTTPS_PROXY", &proxy.url())]);
    let mut sink = Vec::new();
    assert_eq!(via.download(&url, &mut sink).unwrap(), PAGE.len() as u64);
    {
        let carried = proxy.carried.lock().unwrap();
        assert_eq!(carried.len(), 1);
        assert_eq!(carried[0].method, "CONNECT");
        assert_eq!(carried[0].target, format!("127.0.0.1:{}", origin.port));
        assert_eq!(carried[0].authorization, None);
    }
    for no_proxy in [
        "127.0.0.1",
        "127.0.0.0/8",
        &format!("127.0.0.1:{}", origin.port),
        "*",
    ] {
        let direct = client(&[
            ("SSL_CERT_FILE", bundle),
            ("HTTPS_PROXY", &proxy.url()),
            ("NO_PROXY", no_proxy),
        ]);
        direct.get_bytes(&url, None, 1 << 20).unwrap();
        assert_eq!(proxy.count(), 1, "NO_PROXY={no_proxy} still used the proxy");
    }
    // HTTP_PROXY is for http:// URLs only; a NO_PROXY for another port does not match.
    let other_port = format!("127.0.0.1:{}", origin.port.wrapping_add(1));
    let proxy_url = proxy.url();
    let envs: [&[(&str, &str)]; 2] = [
        &[("SSL_CERT_FILE", bundle), ("HTTP_PROXY", &proxy_url)],
        &[
            ("SSL_CERT_FILE", bundle),
            ("ALL_PROXY", &proxy_url),
            ("NO_PROXY", &other_port),
        ],
    ];
    for env in envs {
        client(env).get_bytes(&url, None, 1 << 20).unwrap();
    }
    assert_eq!(proxy.count(), 2, "only ALL_PROXY applied to the https URL");
    assert_eq!(origin.count(), 7);
}

#[test]
fn plain_http_goes_through_http_proxy_in_absolute_form() {
    let origin = Origin::plain(routes(&[("/simple/pkg/", "text/html", PAGE)]));
    let proxy = ForwardProxy::start(None);
    let url = index(&origin, "http");
    let r = client(&[
        ("http_proxy", &proxy.url()),
        ("HTTPS_PROXY", "http://unused:1"),
    ])
    .get_bytes(&url, None, 1 << 20)
    .unwrap();
    assert_eq!(r.bytes, PAGE);
    let carried = proxy.carried.lock().unwrap();
    // An http:// target is asked for by its absolute URL (no tunnel), as curl and pip do.
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0].method, "GET");
    assert_eq!(carried[0].target, url.as_str());
}

#[test]
fn proxy_credentials_go_as_basic_auth_and_a_refusal_names_the_proxy() {
    let origin = Origin::plain(routes(&[("/simple/pkg/", "text/html", PAGE)]));
    let proxy = ForwardProxy::start(Some("us@er:p ss"));
    let url = index(&origin, "http");
    let good = format!("http://us%40er:p%20ss@127.0.0.1:{}", proxy.port);
    client(&[("HTTP_PROXY", &good)])
        .get_bytes(&url, None, 1 << 20)
        .unwrap();
    let bad = format!("http://us%40er:wrong-secret@127.0.0.1:{}", proxy.port);
    let e = client(&[("HTTP_PROXY", &bad)])
        .get_bytes(&url, None, 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(e.contains("407"), "{e}");
    assert!(
        e.contains(&format!(
            "via proxy http://us%40er:***@127.0.0.1:{} (from HTTP_PROXY)",
            proxy.port
        )),
        "{e}"
    );
    assert!(!e.contains("wrong-secret"), "{e}");
    let carried = proxy.carried.lock().unwrap();
    assert_eq!(carried.len(), 2, "a refusal by the proxy is not retried");
    assert_eq!(
        carried[0].authorization.as_deref(),
        Some("Basic dXNAZXI6cCBzcw==")
    );
    assert_eq!(origin.count(), 1);
}

#[test]
fn a_redirect_hop_to_a_no_proxy_host_goes_direct() {
    let ((target, _first), moved, url) = redirect_pair();
    let proxy = ForwardProxy::start(None);
    let c = client(&[("HTTP_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")]);
    follow(&c, &url, &moved);
    let carried = proxy.carried.lock().unwrap();
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0].target, url.as_str());
    assert_eq!(target.count(), 1);
}

#[test]
fn a_proxy_refusing_a_tunnel_is_asked_once() {
    let origin = Origin::plain(routes(&[("/simple/pkg/", "text/html", PAGE)]));
    let proxy = ForwardProxy::start(Some("u:right"));
    let bad = format!("http://u:wrong@127.0.0.1:{}", proxy.port);
    // An https:// URL: the proxy refuses the CONNECT. Trying a wrong password again could lock
    // the account, so it is not retried.
    let e = client_retrying(&[("HTTPS_PROXY", &bad)], 3)
        .get_bytes(&index(&origin, "https"), None, 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(e.contains("407"), "{e}");
    assert!(e.contains("via proxy http://u:***@127.0.0.1"), "{e}");
    assert_eq!(proxy.count(), 1, "{e}");
    assert_eq!(origin.count(), 0);
}

#[test]
fn every_redirect_hop_through_a_proxy_carries_its_credentials() {
    let (_origins, moved, url) = redirect_pair();
    let proxy = ForwardProxy::start(Some("u:right"));
    let good = format!("http://u:right@127.0.0.1:{}", proxy.port);
    follow(&client_retrying(&[("HTTP_PROXY", &good)], 3), &url, &moved);
    let carried = proxy.carried.lock().unwrap();
    let targets: Vec<&str> = carried.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(targets, [url.as_str(), moved.as_str()]);
    assert!(carried
        .iter()
        .all(|c| c.authorization.as_deref() == Some("Basic dTpyaWdodA==")));
}
