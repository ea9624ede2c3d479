//! A blocking client for the OCI distribution API, talking HTTP directly (ureq) so manifests
//! go out as the exact bytes of the layout and blobs stream from disk.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Method, Request, Response};
use ureq::{Body, SendBody};
use url::Url;

use super::challenge::{parse_challenge, Challenge};
use super::credentials::{lookup, Credentials};
use super::reference::hostname_of;
use super::reference::is_loopback_host;
use super::retry::RetryPolicy;
use crate::error::{OciError, Result};

/// Largest manifest or index we read (the distribution default limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Media types we accept when asking for a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Shortest wait for a registry's answer once a request is sent.
const RESPONSE_WAIT: Duration = Duration::from_secs(600);

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
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
    /// Scopes to ask a token service for besides the challenge's own (pull on mount sources).
    extra_scopes: Vec<String>,
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
        // After the last byte of a large upload a registry may take minutes (hashing, moving
        // the blob into storage) before it answers: never less than RESPONSE_WAIT.
        response: options.stall_timeout.map(|s| s.max(RESPONSE_WAIT)),
        per_read: options.stall_timeout,
    };
    envpack_net::Agent::new(&options.proxies, &options.roots, timeouts)
}

pub(super) fn transport(method: &Method, url: &str, e: ureq::Error) -> OciError {
    match e {
        _ if envpack_net::is_certificate_error(&e) => OciError::Certificate {
            what: format!("{method} {url}"),
            detail: e.to_string(),
        },
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => OciError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            detail: e.to_string(),
            attempts: 1,
        },
        other => OciError::Protocol {
            what: format!("{method} {url}"),
            detail: other.to_string(),
        },
    }
}

pub(super) fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The start of an error response's body, for messages.
pub(super) fn error_body(resp: &mut Response<Body>) -> String {
    let text = resp
        .body_mut()
        .with_config()
        .limit(4096)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    text.trim().chars().take(500).collect()
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
    fn failed(&self, method: &Method, url: &str, e: ureq::Error) -> OciError {
        let full = self.agent.failure_detail(url, &e);
        match transport(method, url, e) {
            OciError::Transport {
                method, attempts, ..
            } => OciError::Transport {
                method,
                url: url.to_string(),
                detail: full,
                attempts,
            },
            OciError::Protocol { what, .. } => OciError::Protocol { what, detail: full },
            OciError::Certificate { what, .. } => OciError::Certificate { what, detail: full },
            other => other,
        }
    }

    /// The base URL in use (`https://host/` or `http://host/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `GET /v2/`: reachable and speaking the distribution API (401 counts: auth comes later).
    fn ping(&self) -> Result<()> {
        let url = self.url("v2/")?;
        let req = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .body(SendBody::none())
            .map_err(|e| OciError::Protocol {
                what: format!("GET {url}"),
                detail: e.to_string(),
            })?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| self.failed(&Method::GET, url.as_str(), e))?;
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

    /// Whether the host answers plain HTTP at /v2/ (only used to explain a refusal).
    fn plain_answers(&self) -> bool {
        let url = format!("http://{}/v2/", self.registry);
        self.agent
            .get(&url)
            .call()
            .map(|r| matches!(r.status().as_u16(), 200 | 401))
            .unwrap_or(false)
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
    ) -> Result<Response<Body>> {
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

    fn no_credentials_hint(&self) -> String {
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
    ) -> Result<Response<Body>> {
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
    ) -> Result<Response<Body>> {
        let mut b = Request::builder().method(method.clone()).uri(url.as_str());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = self.authorization.lock().ok().and_then(|g| g.clone()) {
            b = b.header("Authorization", a);
        }
        let bad = |e: ureq::http::Error| OciError::Protocol {
            what: format!("{method} {url}"),
            detail: e.to_string(),
        };
        let result = match payload {
            Payload::Empty => {
                let body = if matches!(*method, Method::GET | Method::HEAD | Method::DELETE) {
                    SendBody::none()
                } else {
                    b = b.header("Content-Length", "0");
                    SendBody::from_owned_reader(std::io::empty())
                };
                self.agent.run(b.body(body).map_err(bad)?)
            }
            Payload::Bytes(bytes, content_type) => {
                b = b
                    .header("Content-Type", *content_type)
                    .header("Content-Length", bytes.len().to_string());
                let mut r: &[u8] = bytes;
                self.agent
                    .run(b.body(SendBody::from_reader(&mut r)).map_err(bad)?)
            }
            Payload::File(path, size) => {
                let file = fs_err::File::open(path)?;
                b = b
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size.to_string());
                let reader = std::io::BufReader::with_capacity(1 << 20, file.take(*size));
                self.agent
                    .run(b.body(SendBody::from_owned_reader(reader)).map_err(bad)?)
            }
        };
        result.map_err(|e| self.failed(method, url.as_str(), e))
    }

    /// Answers a challenge: Basic sends the credentials, Bearer fetches a token.
    fn authorize(&self, ch: &Challenge, method: &Method, url: &Url) -> Result<()> {
        let value = match ch.scheme.as_str() {
            "basic" => match &self.credentials {
                Some(c) => c.basic_header(),
                None => {
                    return Err(OciError::Unauthorized {
                        method: method.to_string(),
                        url: url.to_string(),
                        status: 401,
                        hint: self.no_credentials_hint(),
                    })
                }
            },
            "bearer" => format!("Bearer {}", self.fetch_token(ch)?),
            other => {
                return Err(OciError::Protocol {
                    what: format!("authenticating to {}", self.registry),
                    detail: format!("unsupported auth scheme {other:?}"),
                })
            }
        };
        if let Ok(mut g) = self.authorization.lock() {
            *g = Some(value);
        }
        Ok(())
    }

    fn fetch_token(&self, ch: &Challenge) -> Result<String> {
        let realm = ch.params.get("realm").ok_or_else(|| OciError::Protocol {
            what: format!("authenticating to {}", self.registry),
            detail: "Bearer challenge without realm".into(),
        })?;
        let mut url = Url::parse(realm).map_err(|e| OciError::Protocol {
            what: format!("authenticating to {}", self.registry),
            detail: format!("bad token realm {realm:?}: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = ch.params.get("service") {
                q.append_pair("service", s);
            }
            let mut scopes: Vec<&str> = Vec::new();
            if let Some(s) = ch.params.get("scope") {
                scopes.extend(s.split(' '));
            }
            scopes.extend(self.extra_scopes.iter().map(String::as_str));
            scopes.dedup();
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let what = format!("GET {url}");
        let token = self.retry.run(&what, |_| {
            let mut req = self.agent.get(url.as_str());
            if let Some(c) = &self.credentials {
                req = req.header("Authorization", c.basic_header());
            }
            let mut resp = req
                .call()
                .map_err(|e| self.failed(&Method::GET, url.as_str(), e))?;
            let status = resp.status().as_u16();
            if status == 401 || status == 403 {
                return Err(OciError::Unauthorized {
                    method: "GET".into(),
                    url: url.to_string(),
                    status,
                    hint: format!(
                        "; the token service refused the credentials for {}",
                        self.registry
                    ),
                });
            }
            if status != 200 {
                return Err(OciError::Status {
                    method: "GET".into(),
                    url: url.to_string(),
                    status,
                    body: error_body(&mut resp),
                });
            }
            let bytes = resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .map_err(|e| transport(&Method::GET, url.as_str(), e))?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| OciError::Protocol {
                    what: format!("GET {url}"),
                    detail: format!("token response is not JSON: {e}"),
                })?;
            v.get("token")
                .or_else(|| v.get("access_token"))
                .and_then(|t| t.as_str())
                .map(str::to_string)
                .ok_or_else(|| OciError::Protocol {
                    what: format!("GET {url}"),
                    detail: "token response without token".into(),
                })
        })?;
        Ok(token)
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
