//! A blocking client for the OCI distribution API over the one HTTP client setup
//! (`envpack_net::Agent`), so manifests go out as the exact bytes of the layout and blobs
//! stream from disk.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use envpack_net::SendError;
use reqwest::blocking::{Body, Response};
use reqwest::Method;
use url::Url;

use super::challenge::parse_challenge;
use super::credentials::{lookup, Credentials};
use super::reference::hostname_of;
use super::reference::is_loopback_host;
use super::retry::RetryPolicy;
use crate::error::{OciError, Result};

/// Shortest wait for a registry's answer to a request that changes it: after the last byte
/// of an upload a registry may take minutes (hashing, moving the blob into storage).
const RESPONSE_WAIT: Duration = Duration::from_secs(600);

/// The slowest upload rate waited for, in bytes per second.
const SLOWEST_UPLOAD: u64 = 64 * 1024;

/// Media types we accept when asking for a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Allow plain HTTP for a non-loopback host.
    pub insecure: bool,
    /// Refuse to connect at all (`--offline`): callers answer from the cache or fail.
    pub offline: bool,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// No progress for this long (connecting, each read) fails an attempt; `None` waits
    /// forever. There is no whole-request limit: a blob transfer takes as long as its size
    /// needs, and the stall limit catches a transfer that hangs.
    pub stall_timeout: Option<Duration>,
    /// Credentials to use instead of looking them up (tests, `--creds`).
    pub credentials: Option<Credentials>,
    /// Proxies and `NO_PROXY`, as for every other request.
    pub proxies: envpack_net::ProxySettings,
    /// The CA certificates a registry must chain to, as for every other request.
    pub roots: envpack_net::TrustRoots,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions::from_http(&envpack_net::HttpConfig::default(), false)
    }
}

impl ClientOptions {
    /// The index and download client's settings (`ENVPACK_HTTP_RETRIES`,
    /// `ENVPACK_HTTP_STALL_TIMEOUT`, `--offline`, proxies, CA bundle), so registry traffic
    /// retries, stalls out, stays offline and goes out as every other request does. `ENVPACK_HTTP_TIMEOUT` (a whole-request
    /// limit) is left out: a multi-GB blob upload may rightly take longer than an hour.
    pub fn from_http(config: &envpack_net::HttpConfig, insecure: bool) -> ClientOptions {
        ClientOptions {
            insecure,
            offline: config.offline,
            retry: RetryPolicy {
                retries: config.retries,
                ..RetryPolicy::default()
            },
            stall_timeout: (config.stall_timeout_secs > 0)
                .then(|| Duration::from_secs(config.stall_timeout_secs)),
            credentials: None,
            proxies: config.proxies.clone(),
            roots: config.roots.clone(),
        }
    }
}

/// What a request sends.
pub enum Payload<'a> {
    /// Nothing.
    Empty,
    /// Bytes in memory, with their content type.
    Bytes(&'a [u8], &'a str),
    /// A file streamed from disk (`size` bytes), never read into memory whole.
    File(&'a Path, u64),
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// The media type the registry gave.
    pub media_type: String,
    /// sha256 of the bytes.
    pub digest: String,
}

/// Outcome of a cross-repository mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The registry linked the blob; nothing to upload.
    Mounted,
    /// The registry started an ordinary upload session at this URL instead.
    Upload(String),
}

/// A connection to one registry, with cached authorization.
pub struct RegistryClient {
    agent: envpack_net::Agent,
    base: Url,
    pub(super) registry: String,
    pub(super) credentials: Option<Credentials>,
    pub(super) authorization: Mutex<Option<String>>,
    /// Scopes to ask a token service for besides the challenge's own (pull on mount sources).
    pub(super) extra_scopes: Vec<String>,
    pub(super) retry: RetryPolicy,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

fn agent(options: &ClientOptions) -> envpack_net::Agent {
    let timeouts = envpack_net::Timeouts {
        global: None,
        connect: options.stall_timeout,
        per_read: options.stall_timeout,
    };
    envpack_net::Agent::new(&options.proxies, &options.roots, timeouts)
}

/// A request's failure as an error; `detail` is the failure in words.
pub(super) fn transport(method: &Method, url: &str, e: &SendError, detail: String) -> OciError {
    match e {
        SendError::Http(h) if envpack_net::is_certificate_error(h) => OciError::Certificate {
            what: format!("{method} {url}"),
            detail,
        },
        _ if e.is_permanent() => OciError::Protocol {
            what: format!("{method} {url}"),
            detail,
        },
        _ => OciError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            detail,
            attempts: 1,
        },
    }
}

pub(super) fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// At most `limit` bytes of a body; more is an error, as is a read that fails.
pub(super) fn read_limited(resp: &mut Response, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    resp.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| OciError::Transport {
            method: "GET".into(),
            url: what.to_string(),
            detail: format!("reading the body: {}", envpack_net::describe_error(&e)),
            attempts: 1,
        })?;
    if bytes.len() as u64 > limit {
        return Err(OciError::Protocol {
            what: format!("GET {what}"),
            detail: format!("the answer is larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

/// The start of an error response's body, for messages.
pub(super) fn error_body(resp: &mut Response) -> String {
    let mut bytes = Vec::new();
    let _ = resp.take(4096).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes)
        .trim()
        .chars()
        .take(500)
        .collect()
}

impl RegistryClient {
    /// Connects to `registry` (`host[:port]`): HTTPS, or plain HTTP for loopback hosts and
    /// with `insecure` when HTTPS doesn't answer. `extra_scopes` are token scopes needed
    /// besides the one each challenge names.
    pub fn connect(
        registry: &str,
        options: &ClientOptions,
        extra_scopes: Vec<String>,
    ) -> Result<Self> {
        if options.offline {
            return Err(OciError::Offline {
                registry: registry.to_string(),
            });
        }
        let credentials = match &options.credentials {
            Some(c) => Some(c.clone()),
            None => lookup(registry)?,
        };
        let plain_ok = options.insecure || is_loopback_host(hostname_of(registry));
        let parse = |s: &str| {
            Url::parse(s).map_err(|e| OciError::BadReference {
                reference: registry.to_string(),
                reason: e.to_string(),
            })
        };
        let mut client = RegistryClient {
            agent: agent(options),
            base: parse(&format!("https://{registry}/"))?,
            registry: registry.to_string(),
            credentials,
            authorization: Mutex::new(None),
            extra_scopes,
            retry: options.retry,
        };
        match client.ping() {
            Ok(()) => return Ok(client),
            Err(OciError::Transport { .. }) | Err(OciError::Protocol { .. }) if plain_ok => {
                client.base = parse(&format!("http://{registry}/"))?;
            }
            Err(e @ OciError::Transport { .. }) | Err(e @ OciError::Protocol { .. }) => {
                tracing::debug!("https ping failed: {e}");
                if client.plain_answers() {
                    return Err(OciError::PlainHttpRefused {
                        host: registry.to_string(),
                    });
                }
            }
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        let what = format!("GET {}v2/", client.base);
        client.retry.run(&what, |_| client.ping())?;
        Ok(client)
    }

    /// [`transport`], with the proxy used and, for a TLS refusal, the trusted roots named.
    fn failed(&self, method: &Method, url: &str, e: SendError) -> OciError {
        let full = self.agent.failure_detail(url, &e);
        transport(method, url, &e, full)
    }

    /// The base URL in use (`https://host/` or `http://host/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `GET /v2/`: reachable and speaking the distribution API (401 counts: auth comes later).
    fn ping(&self) -> Result<()> {
        let url = self.url("v2/")?;
        let mut resp = self.get(&url, None)?;
        match resp.status().as_u16() {
            200 | 401 => Ok(()),
            s => Err(OciError::Status {
                method: "GET".into(),
                url: url.to_string(),
                status: s,
                body: error_body(&mut resp),
            }),
        }
    }

    /// A plain GET of `url`, with `authorization` if given.
    pub(super) fn get(&self, url: &Url, authorization: Option<String>) -> Result<Response> {
        let failed = |e| self.failed(&Method::GET, url.as_str(), e);
        let mut req = self
            .agent
            .request(Method::GET, url.as_str())
            .map_err(failed)?;
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let resp = self.agent.send(req).map_err(failed)?;
        self.not_forwarded_by_proxy(&Method::GET, url, resp)
    }

    /// `resp`, unless a proxy could not forward it: a plain-HTTP request through a proxy gets
    /// that as a 502 or 504, where an HTTPS one gets a failed tunnel. The error names the
    /// proxy and is retried like a failed tunnel (a proxy's 407 is `Agent::send`'s).
    fn not_forwarded_by_proxy(
        &self,
        method: &Method,
        url: &Url,
        mut resp: Response,
    ) -> Result<Response> {
        let status = resp.status().as_u16();
        // Through a tunnel (https) these statuses are the registry's own.
        let Some(route) = (resp.url().scheme() == "http")
            .then(|| self.agent.route_of(resp.url().as_str()))
            .flatten()
        else {
            return Ok(resp);
        };
        match status {
            502 | 504 => Err(OciError::Transport {
                method: method.to_string(),
                url: url.to_string(),
                detail: format!("HTTP {status} ({route}): {}", error_body(&mut resp)),
                attempts: 1,
            }),
            _ => Ok(resp),
        }
    }

    /// Whether the host answers plain HTTP at /v2/ (only used to explain a refusal).
    fn plain_answers(&self) -> bool {
        Url::parse(&format!("http://{}/v2/", self.registry))
            .ok()
            .and_then(|url| self.get(&url, None).ok())
            .is_some_and(|r| matches!(r.status().as_u16(), 200 | 401))
    }

    pub(super) fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| OciError::Protocol {
            what: format!("building a URL for {path}"),
            detail: e.to_string(),
        })
    }

    /// Resolves an upload `Location` (absolute or relative).
    pub(super) fn location(&self, loc: &str) -> Result<Url> {
        self.url(loc)
    }

    /// One request with auth: a 401 triggers one challenge round and a resend.
    pub fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        payload: &Payload,
    ) -> Result<Response> {
        let mut challenged = false;
        loop {
            let mut resp = self.send_raw(&method, url, headers, payload)?;
            let status = resp.status().as_u16();
            if status == 401 && !challenged {
                challenged = true;
                let ch = header(&resp, "www-authenticate")
                    .and_then(parse_challenge)
                    .ok_or_else(|| OciError::Unauthorized {
                        method: method.to_string(),
                        url: url.to_string(),
                        status,
                        hint: "; the registry sent no usable WWW-Authenticate challenge".into(),
                    })?;
                let _ = error_body(&mut resp);
                self.authorize(&ch, &method, url)?;
                continue;
            }
            if status == 401 || status == 403 {
                let body = error_body(&mut resp);
                let hint = if self.credentials.is_none() {
                    format!("{}: {body}", self.no_credentials_hint())
                } else {
                    format!(
                        "; the credentials for {} were refused: {body}",
                        self.registry
                    )
                };
                return Err(OciError::Unauthorized {
                    method: method.to_string(),
                    url: url.to_string(),
                    status,
                    hint,
                });
            }
            return Ok(resp);
        }
    }

    pub(super) fn no_credentials_hint(&self) -> String {
        format!(
            "; no credentials for {} (log in with `podman login` / `docker login`, or set REGISTRY_AUTH_FILE)",
            self.registry
        )
    }

    /// Like [`send`](Self::send) with retries on transient failures; non-success statuses
    /// other than `ok` become errors (5xx ones retried).
    pub fn send_expect(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        payload: &Payload,
        ok: &[u16],
    ) -> Result<Response> {
        let what = format!("{method} {url}");
        self.retry.run(&what, |_| {
            let mut resp = self.send(method.clone(), url, headers, payload)?;
            let status = resp.status().as_u16();
            if ok.contains(&status) {
                Ok(resp)
            } else {
                Err(OciError::Status {
                    method: method.to_string(),
                    url: url.to_string(),
                    status,
                    body: error_body(&mut resp),
                })
            }
        })
    }

    fn send_raw(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(&str, &str)],
        payload: &Payload,
    ) -> Result<Response> {
        let failed = |e| self.failed(method, url.as_str(), e);
        let mut req = self
            .agent
            .request(method.clone(), url.as_str())
            .map_err(failed)?;
        // A request that changes the registry may wait minutes for its answer (a registry
        // hashes and moves an uploaded blob before it answers); an upload's limit also grows
        // with its size, so only one that stalls outright fails. (A timeout set here bounds
        // the whole request, which for these small answers is the wait.)
        let changes = !matches!(*method, Method::GET | Method::HEAD);
        if let (true, Some(stall)) = (changes, self.agent.stall()) {
            let size = match payload {
                Payload::File(_, size) => *size,
                _ => 0,
            };
            req =
                req.timeout(stall.max(RESPONSE_WAIT) + Duration::from_secs(size / SLOWEST_UPLOAD));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = self.authorization.lock().ok().and_then(|g| g.clone()) {
            req = req.header("Authorization", a);
        }
        req = match payload {
            Payload::Empty if matches!(*method, Method::GET | Method::HEAD | Method::DELETE) => req,
            // A POST or PUT without a body still says so (Content-Length: 0).
            Payload::Empty => req.body(Vec::new()),
            Payload::Bytes(bytes, content_type) => req
                .header("Content-Type", *content_type)
                .body(bytes.to_vec()),
            Payload::File(path, size) => {
                let file = fs_err::File::open(path)?;
                let reader = std::io::BufReader::with_capacity(1 << 20, file.take(*size));
                req.header("Content-Type", "application/octet-stream")
                    .body(Body::sized(reader, *size))
            }
        };
        let resp = self.agent.send(req).map_err(failed)?;
        self.not_forwarded_by_proxy(method, url, resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_net::HttpConfig;

    #[test]
    fn registry_settings_follow_the_http_settings() {
        let cfg = HttpConfig {
            retries: 7,
            timeout_secs: 5,
            stall_timeout_secs: 11,
            offline: true,
            ..HttpConfig::default()
        };
        let o = ClientOptions::from_http(&cfg, true);
        assert!(o.insecure && o.offline);
        assert_eq!(o.retry.retries, 7);
        assert_eq!(o.stall_timeout, Some(Duration::from_secs(11)));
        let never = ClientOptions::from_http(
            &HttpConfig {
                stall_timeout_secs: 0,
                ..HttpConfig::default()
            },
            false,
        );
        assert_eq!(never.stall_timeout, None);
        assert!(!never.offline && !never.insecure);
        assert_eq!(
            ClientOptions::default().retry.retries,
            HttpConfig::default().retries
        );
    }

    #[test]
    fn an_offline_client_refuses_before_any_request() {
        let options = ClientOptions {
            offline: true,
            ..ClientOptions::default()
        };
        // Nothing listens on port 9; an attempt would be a transport error instead.
        match RegistryClient::connect("127.0.0.1:9", &options, Vec::new()) {
            Err(OciError::Offline { registry }) => assert_eq!(registry, "127.0.0.1:9"),
            other => panic!("expected the offline refusal, got {other:?}"),
        }
    }
}
