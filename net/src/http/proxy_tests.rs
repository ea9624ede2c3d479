//! Tests of `proxy.rs`: which variable wins, what NO_PROXY matches, what is refused.

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn settings(pairs: &[(&str, &str)]) -> ProxySettings {
    ProxySettings::from_env(&env_of(pairs)).unwrap()
}

/// The proxy a URL would use, as `host:port (VARIABLE)`, or "direct".
fn route(s: &ProxySettings, url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    match s.for_target(u.scheme(), u.host_str().unwrap(), u.port()) {
        Some(p) => format!(
            "{}:{} ({})",
            p.url().host_str().unwrap(),
            p.url().port_or_known_default().unwrap(),
            p.describe()
                .rsplit("from ")
                .next()
                .unwrap()
                .trim_end_matches(')')
        ),
        None => "direct".into(),
    }
}

#[test]
fn each_scheme_takes_its_own_variable_then_all_proxy() {
    let s = settings(&[
        ("HTTPS_PROXY", "http://sec:3128"),
        ("HTTP_PROXY", "plain:8080"),
        ("ALL_PROXY", "http://all:1"),
    ]);
    assert_eq!(route(&s, "https://h/x"), "sec:3128 (HTTPS_PROXY)");
    assert_eq!(route(&s, "http://h/x"), "plain:8080 (HTTP_PROXY)");
    let s = settings(&[("ALL_PROXY", "http://all:1")]);
    assert_eq!(route(&s, "https://h/x"), "all:1 (ALL_PROXY)");
    assert_eq!(route(&s, "http://h/x"), "all:1 (ALL_PROXY)");
    let s = settings(&[("HTTPS_PROXY", "http://sec:3128")]);
    assert_eq!(route(&s, "http://h/x"), "direct");
    assert_eq!(settings(&[]), ProxySettings::default());
}

#[test]
fn lower_case_wins_and_empty_means_unset() {
    let s = settings(&[
        ("https_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://upper:2"),
    ]);
    assert_eq!(route(&s, "https://h/"), "lower:1 (https_proxy)");
    let s = settings(&[("https_proxy", " "), ("HTTPS_PROXY", "http://upper:2")]);
    assert_eq!(route(&s, "https://h/"), "upper:2 (HTTPS_PROXY)");
    let s = settings(&[
        ("no_proxy", "a.test"),
        ("NO_PROXY", "*"),
        ("ALL_PROXY", "p:1"),
    ]);
    assert_eq!(route(&s, "https://a.test/"), "direct");
    assert_eq!(route(&s, "https://b.test/"), "p:1 (ALL_PROXY)");
}

#[test]
fn default_ports_credentials_and_masking() {
    let s = settings(&[
        ("HTTPS_PROXY", "https://us%40er:p%3Ass@tls-proxy"),
        ("HTTP_PROXY", "http://plain/"),
    ]);
    let p = s.https.as_ref().unwrap();
    assert_eq!(p.url().as_str(), "https://tls-proxy/");
    assert_eq!(p.url().port_or_known_default(), Some(443));
    assert_eq!(p.credentials(), Some(("us@er", "p:ss")));
    let shown = p.describe();
    assert!(
        !shown.contains("p%3Ass") && !shown.contains("p:ss"),
        "{shown}"
    );
    assert!(shown.contains("us%40er:***@tls-proxy:443"), "{shown}");
    assert_eq!(format!("{p:?}"), shown);
    assert_eq!(
        s.http.as_ref().unwrap().url().port_or_known_default(),
        Some(80)
    );
}

#[test]
fn a_bad_proxy_value_is_an_error_naming_the_variable() {
    let cases: &[(&str, &str, &str)] = &[
        ("HTTPS_PROXY", "socks5://u:secret@h:1080", "not supported"),
        ("https_proxy", "ftp://h:21", "unsupported proxy scheme"),
        ("HTTP_PROXY", "http://h:99999", "not a proxy URL"),
        ("ALL_PROXY", "http://h:3128/some/path", "no path"),
        ("HTTP_PROXY", "http://", "not a proxy URL"),
    ];
    for (var, value, why) in cases {
        let e = ProxySettings::from_env(&env_of(&[(var, value)])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{var}=")), "{msg}");
        assert!(msg.contains(why), "{msg}");
        assert!(!msg.contains("secret"), "password shown: {msg}");
    }
    // Only the variable in effect is read: a shadowed bad value changes nothing.
    let s = settings(&[
        ("https_proxy", "http://ok:1"),
        ("HTTPS_PROXY", "socks5://x"),
    ]);
    assert_eq!(route(&s, "https://h/"), "ok:1 (https_proxy)");
}

#[test]
fn no_proxy_matches_like_curl_plus_ports() {
    let list = NoProxy::parse(
        "Example.COM, .dot.test,*.star.test internal. 10.0.0.0/8,192.168.1.7,[::1]:8443,fd00::/8,only:8080,203.0.113.9:99",
    )
    .unwrap();
    let cases: &[(&str, u16, bool)] = &[
        ("example.com", 443, true),
        ("EXAMPLE.com.", 443, true),
        ("a.b.example.com", 80, true),
        ("notexample.com", 443, false),
        ("example.com.evil", 443, false),
        ("dot.test", 443, true),
        ("x.dot.test", 443, true),
        ("star.test", 443, true),
        ("x.star.test", 443, true),
        ("svc.internal", 443, true),
        ("10.200.3.4", 443, true),
        ("11.0.0.1", 443, false),
        ("192.168.1.7", 80, true),
        ("192.168.1.8", 80, false),
        ("[::1]", 8443, true),
        ("[::1]", 443, false),
        ("[fd12::5]", 443, true),
        ("only", 8080, true),
        ("only", 8081, false),
        ("sub.only", 8080, true),
        ("203.0.113.9", 99, true),
        ("203.0.113.9", 100, false),
        // Loopback is not implicitly exempt, and names are never resolved to match IPs.
        ("127.0.0.1", 80, false),
        ("localhost", 80, false),
    ];
    for (host, port, want) in cases {
        assert_eq!(list.matches(host, *port), *want, "{host}:{port}");
    }
    assert!(NoProxy::parse("*").unwrap().matches("anything", 1));
    assert!(!NoProxy::parse("").unwrap().matches("anything", 1));
    let s = settings(&[("NO_PROXY", "127.0.0.1:8443"), ("HTTPS_PROXY", "p:1")]);
    assert_eq!(route(&s, "https://127.0.0.1:8443/"), "direct");
    assert_eq!(route(&s, "https://127.0.0.1/"), "p:1 (HTTPS_PROXY)");
}

#[test]
fn a_bad_no_proxy_entry_is_an_error_naming_the_variable() {
    for bad in [
        "10.0.0.0/33",
        "host:port",
        "[::1",
        "1.2.3.4/x",
        "a/b",
        "*.",
        "[::1]x",
    ] {
        let e = ProxySettings::from_env(&env_of(&[("no_proxy", bad)])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("no_proxy="), "{bad}: {msg}");
    }
}

#[test]
fn hosts_are_matched_as_urls_give_them() {
    // The client asks for every hop with the URL's own host, which keeps IPv6 brackets.
    let s = settings(&[("HTTP_PROXY", "p:1"), ("NO_PROXY", "::1,a.test,10.0.0.0/8")]);
    for (url, bypass) in [
        ("http://[::1]:8/", true),
        ("http://x.a.test/", true),
        ("http://10.1.2.3/", true),
        ("http://b.test/", false),
        ("http://[::2]/", false),
    ] {
        let u = url::Url::parse(url).unwrap();
        let routed = s.for_target(u.scheme(), u.host_str().unwrap(), u.port());
        assert_eq!(routed.is_none(), bypass, "{url}");
    }
}

#[test]
fn password_masking_of_raw_values() {
    assert_eq!(mask_password("http://u:pw@h:1"), "http://u:***@h:1");
    assert_eq!(mask_password("u:p@w@h"), "u:***@h");
    assert_eq!(mask_password("http://u@h"), "http://u@h");
    assert_eq!(mask_password("h:3128"), "h:3128");
}
