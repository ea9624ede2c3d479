//! Proxy settings from curl's environment variables, and which requests they apply to.
//!
//! HTTP clients read these variables with rules of their own; envpack follows curl's, pip's and
//! uv's (the scheme's own variable before `ALL_PROXY`, a bad value an error and never a silent
//! direct connection, `NO_PROXY=example.com` matching subdomains, IP ranges), so the client
//! asks [`ProxySettings::for_target`] for every connection, redirect hops included.

use std::net::IpAddr;

use envpack_layers::shown_name as shown;

use crate::NetError;

/// Where a request for `http://` URLs looks for its proxy, first non-empty wins.
const HTTP_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
/// The same for `https://` URLs.
const HTTPS_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// Hosts that bypass the proxy.
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// One proxy server, with the variable that named it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyServer {
    /// `scheme://host:port`, without credentials.
    url: url::Url,
    /// The user and password, percent-decoded.
    credentials: Option<(String, String)>,
    /// The URL with any password masked, for messages.
    shown: String,
    /// The environment variable it came from.
    variable: String,
}

impl ProxyServer {
    /// The proxy's URL, without credentials.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The user and password to send it (`Proxy-Authorization: Basic`), percent-decoded.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `proxy http://user:***@host:port (from HTTPS_PROXY)`, for messages.
    pub fn describe(&self) -> String {
        format!("proxy {} (from {})", self.shown, self.variable)
    }
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The proxies for each scheme and the hosts exempt from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// For `http://` URLs.
    pub http: Option<ProxyServer>,
    /// For `https://` URLs.
    pub https: Option<ProxyServer>,
    /// Hosts reached directly.
    pub no_proxy: NoProxy,
}

fn first_set(names: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Option<(String, String)> {
    names.iter().find_map(|name| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (name.to_string(), v))
    })
}

impl ProxySettings {
    /// Reads `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY`
    /// and `no_proxy`/`NO_PROXY` from `env`; the variable in effect for a scheme must hold a
    /// usable proxy URL, so a typo is an error and never a silent direct connection.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, NetError> {
        let no_proxy = match first_set(&NO_PROXY_VARS, env) {
            Some((variable, value)) => {
                NoProxy::parse(&value).map_err(|reason| NetError::Setting {
                    variable,
                    value,
                    reason,
                })?
            }
            None => NoProxy::default(),
        };
        let server = |names: &[&str]| -> Result<Option<ProxyServer>, NetError> {
            first_set(names, env)
                .map(|(variable, value)| {
                    parse_proxy(&value, &variable).map_err(|reason| NetError::Setting {
                        value: mask_password(&value),
                        variable,
                        reason,
                    })
                })
                .transpose()
        };
        Ok(ProxySettings {
            http: server(&HTTP_VARS)?,
            https: server(&HTTPS_VARS)?,
            no_proxy,
        })
    }

    /// The proxy for a request to `scheme://host:port` (`port` `None` = the scheme's default),
    /// or `None` to connect directly.
    pub fn for_target(&self, scheme: &str, host: &str, port: Option<u16>) -> Option<&ProxyServer> {
        let (server, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => (self.http.as_ref()?, 80),
            "https" => (self.https.as_ref()?, 443),
            _ => return None,
        };
        (!self.no_proxy.matches(host, port.unwrap_or(default_port))).then_some(server)
    }
}

/// Parses a proxy URL as curl does: a missing scheme means `http://`; a missing port the
/// scheme's default (80 or 443, as pip and uv; curl alone assumes 1080).
fn parse_proxy(value: &str, variable: &str) -> Result<ProxyServer, String> {
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| format!("not a proxy URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        s if s.starts_with("socks") => {
            return Err(format!(
                "{s}:// proxies are not supported; envpack talks to http:// and https:// proxies (HTTP CONNECT)"
            ))
        }
        s => return Err(format!("unsupported proxy scheme {s}:// (use http:// or https://)")),
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("a proxy URL has no path, query or fragment".into());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("no host")?;
    let port = url
        .port_or_known_default()
        .ok_or("no port and no default for the scheme")?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "the user or password is not UTF-8 once percent-decoded".to_string())
    };
    let credentials = if !url.username().is_empty() || url.password().is_some() {
        Some((
            decode(url.username())?,
            decode(url.password().unwrap_or(""))?,
        ))
    } else {
        None
    };
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let userinfo = match (url.username(), url.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(_)) => format!("{user}:***@"),
    };
    Ok(ProxyServer {
        url: bare,
        credentials,
        shown: format!("{}://{userinfo}{host}:{port}", url.scheme()),
        variable: variable.to_string(),
    })
}

/// `value` with the password of a `user:password@` part replaced by `***`, for messages.
fn mask_password(value: &str) -> String {
    let start = value.find("://").map(|i| i + 3).unwrap_or(0);
    let Some(at) = value[start..].rfind('@').map(|i| i + start) else {
        return value.to_string();
    };
    match value[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &value[..start + colon], &value[at..]),
        None => value.to_string(),
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// `*`: no proxy at all.
    All,
    /// A host name, matching itself and every name below it, on `port` or any port.
    Domain { name: String, port: Option<u16> },
    /// An IP address, matching only that literal address in a URL (names are not resolved).
    Ip { addr: IpAddr, port: Option<u16> },
    /// `addr/bits`: IP literals in that network.
    Network { addr: IpAddr, bits: u8 },
}

/// The parsed `NO_PROXY` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Bypass>,
}

/// `host:port` split at a final `:digits`; `None` port when there is none.
fn split_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => port
            .parse::<u16>()
            .map(|p| (host, Some(p)))
            .map_err(|_| format!("\"{}\": \"{}\" is not a port", shown(entry), shown(port))),
        _ => Ok((entry, None)),
    }
}

impl NoProxy {
    /// Parses a comma (or space) separated list: `*`, names (a leading `.` or `*.` is
    /// ignored: `.example.com` also matches `example.com`, as in curl), IP addresses, CIDR
    /// networks, and any of the names or addresses with `:port` (IPv6 as `[addr]:port`).
    pub fn parse(list: &str) -> Result<NoProxy, String> {
        let mut entries = Vec::new();
        for raw in list.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
            entries.push(Self::parse_entry(raw)?);
        }
        Ok(NoProxy { entries })
    }

    fn parse_entry(raw: &str) -> Result<Bypass, String> {
        let not_ip = |addr: &str| {
            format!(
                "\"{}\": \"{}\" is not an IP address",
                shown(raw),
                shown(addr)
            )
        };
        if raw == "*" {
            return Ok(Bypass::All);
        }
        if let Some((addr, bits)) = raw.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| not_ip(addr))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| {
                    format!("\"{}\": the prefix length must be 0 to {max}", shown(raw))
                })?;
            return Ok(Bypass::Network { addr, bits });
        }
        if let Ok(addr) = raw.parse::<IpAddr>() {
            return Ok(Bypass::Ip { addr, port: None });
        }
        if let Some(rest) = raw.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("\"{}\": unclosed '['", shown(raw)))?;
            let addr: IpAddr = addr.parse().map_err(|_| not_ip(addr))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| {
                            format!("\"{}\": \"{}\" is not ':port'", shown(raw), shown(p))
                        })?,
                ),
            };
            return Ok(Bypass::Ip { addr, port });
        }
        let (host, port) = split_port(raw)?;
        if let Ok(addr) = host.parse::<IpAddr>() {
            return Ok(Bypass::Ip { addr, port });
        }
        let name = host
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if name.is_empty() || name.contains(['*', '/', '@']) {
            return Err(format!(
                "\"{}\" is not a host name, IP address or network",
                shown(raw)
            ));
        }
        Ok(Bypass::Domain { name, port })
    }

    /// Whether a request to `host` (as in a URL: IPv6 in brackets allowed) on `port` goes
    /// directly. Loopback is not exempt unless listed, as in curl.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        let ip = bare.parse::<IpAddr>().ok();
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.entries.iter().any(|e| match e {
            Bypass::All => true,
            Bypass::Domain { name: n, port: p } => {
                ip.is_none()
                    && port_ok(p)
                    && (name == *n
                        || name
                            .strip_suffix(n.as_str())
                            .is_some_and(|rest| rest.ends_with('.')))
            }
            Bypass::Ip { addr, port: p } => ip == Some(*addr) && port_ok(p),
            Bypass::Network { addr, bits } => ip.is_some_and(|ip| in_network(ip, *addr, *bits)),
        })
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (ip >> shift) == (net >> shift)
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
