//! Download settings from the environment: the same `ENVPACK_HTTP_*` for every request.

use crate::http::HttpConfig;
use crate::NetError;

/// Download behaviour: `ENVPACK_HTTP_RETRIES` (extra attempts), `ENVPACK_HTTP_STALL_TIMEOUT`
/// (seconds without progress before an attempt fails), `ENVPACK_HTTP_TIMEOUT` (seconds for a
/// whole request, 0 = none), `ENVPACK_HTTP_CONCURRENCY` (requests in flight at once, 1–64);
/// unset values keep the defaults. Proxies come from curl's
/// variables (`HTTPS_PROXY`, `NO_PROXY`, …), the CA bundle from `ENVPACK_HTTP_CA_BUNDLE` or
/// `SSL_CERT_FILE`; there is no spec field for them, since they describe the machine and a
/// spec change would make the lock stale.
pub fn http_config(offline: bool) -> Result<HttpConfig, NetError> {
    http_config_from(offline, |k| std::env::var(k).ok())
}

/// [`http_config`] with an injectable environment.
pub fn http_config_from(
    offline: bool,
    env: impl Fn(&str) -> Option<String>,
) -> Result<HttpConfig, NetError> {
    let number = |name: &str, default: u64| -> Result<u64, NetError> {
        match env(name).map(|v| v.trim().to_string()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|_| NetError::BadNumber {
                name: name.to_string(),
                value: v,
            }),
        }
    };
    let d = HttpConfig::default();
    Ok(HttpConfig {
        retries: u32::try_from(number("ENVPACK_HTTP_RETRIES", u64::from(d.retries))?)
            .unwrap_or(u32::MAX)
            .min(20),
        stall_timeout_secs: number("ENVPACK_HTTP_STALL_TIMEOUT", d.stall_timeout_secs)?,
        timeout_secs: number("ENVPACK_HTTP_TIMEOUT", d.timeout_secs)?,
        offline,
        proxies: crate::http::ProxySettings::from_env(&env)?,
        roots: crate::http::TrustRoots::from_env(&env)?,
        concurrency: usize::try_from(number("ENVPACK_HTTP_CONCURRENCY", d.concurrency as u64)?)
            .unwrap_or(usize::MAX)
            .clamp(1, 64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn http_settings_from_env() {
        let d = HttpConfig::default();
        let c = http_config_from(true, env_of(&[])).unwrap();
        assert_eq!(
            (c.retries, c.stall_timeout_secs, c.offline),
            (d.retries, d.stall_timeout_secs, true)
        );
        let c = http_config_from(
            false,
            env_of(&[
                ("ENVPACK_HTTP_RETRIES", "7"),
                ("ENVPACK_HTTP_STALL_TIMEOUT", " 2 "),
                ("ENVPACK_HTTP_TIMEOUT", "0"),
            ]),
        )
        .unwrap();
        assert_eq!((c.retries, c.stall_timeout_secs, c.timeout_secs), (7, 2, 0));
        assert_eq!(c.concurrency, d.concurrency);
        for (value, want) in [("1", 1), ("0", 1), ("16", 16), ("1000", 64)] {
            let c = http_config_from(false, |k| {
                (k == "ENVPACK_HTTP_CONCURRENCY").then(|| value.to_string())
            })
            .unwrap();
            assert_eq!(c.concurrency, want, "{value}");
        }
        assert_eq!(
            http_config_from(false, env_of(&[("ENVPACK_HTTP_RETRIES", "99")]))
                .unwrap()
                .retries,
            20
        );
        let e = http_config_from(false, env_of(&[("ENVPACK_HTTP_STALL_TIMEOUT", "5s")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ENVPACK_HTTP_STALL_TIMEOUT") && e.contains("5s"),
            "{e}"
        );
    }
}
