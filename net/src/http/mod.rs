//! Blocking HTTP(S) and `file://` fetching with bounded, deterministic retries.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

mod agent;
mod proxy;
mod range;
mod sink;

pub use agent::{
    describe_error, is_certificate_error, is_proxy_refusal, Agent, SendError, Timeouts, TrustRoots,
    MAX_REDIRECTS,
};
pub use proxy::{NoProxy, ProxyServer, ProxySettings};
pub use range::{ContentRange, ResumeHint};
pub use sink::DownloadSink;

use crate::pool::RequestGate;
use crate::NetError;

/// How the client behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Extra attempts after the first on transient failures.
    pub retries: u32,
    /// Whole-request timeout in seconds (0 = none).
    pub timeout_secs: u64,
    /// Seconds without progress (connecting, waiting for the response, each body read)
    /// before an attempt counts as failed and is retried (0 = none).
    pub stall_timeout_secs: u64,
    /// Refuse every non-`file://` URL.
    pub offline: bool,
    /// The proxy for each scheme and the hosts reached directly.
    pub proxies: ProxySettings,
    /// The CA certificates servers must chain to.
    pub roots: TrustRoots,
    /// Requests in flight at once, across every thread sharing the client (at least 1).
    pub concurrency: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            retries: 4,
            timeout_secs: 3600,
            stall_timeout_secs: 30,
            offline: false,
            proxies: ProxySettings::default(),
            roots: TrustRoots::default(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Requests in flight at once unless `ENVPACK_HTTP_CONCURRENCY` says otherwise: enough to hide
/// a far index's latency, few enough not to look like abuse to a mirror.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// A fully read response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The body.
    pub bytes: Vec<u8>,
    /// `Content-Type` without parameters, lowercased.
    pub content_type: Option<String>,
    /// Final URL after redirects.
    pub url: Url,
}

/// One attempt's outcome before it becomes a [`NetError`].
enum Failure {
    /// Worth retrying.
    Transient(NetError),
    /// Give up now.
    Fatal(NetError),
}

/// A blocking client with retries; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    agent: Agent,
    config: HttpConfig,
    gate: Arc<RequestGate>,
    meter: crate::Meter,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish()
    }
}

/// Delay before retry `attempt` (1-based): 200ms * 2^(attempt-1), jittered by a hash of the URL.
pub fn backoff(url: &Url, attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    // FNV-1a of the URL: deterministic jitter in [0.75, 1.25) so parallel clients spread out.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in url.as_str().bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let permille = 750 + (h % 500);
    Duration::from_millis(base * permille / 1000)
}

fn strip_params(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl HttpClient {
    /// A client with `c`.
    pub fn new(c: HttpConfig) -> Self {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let stall = secs(c.stall_timeout_secs);
        let timeouts = Timeouts {
            global: secs(c.timeout_secs),
            connect: stall,
            per_read: stall,
        };
        let agent = Agent::new(&c.proxies, &c.roots, timeouts);
        let gate = Arc::new(RequestGate::new(c.concurrency));
        HttpClient {
            agent,
            config: c,
            gate,
            meter: crate::Meter::default(),
        }
    }

    /// The counts of what this client's downloads (not `get_bytes`) have received.
    pub fn meter(&self) -> &crate::Meter {
        &self.meter
    }

    /// How many requests this client puts in flight at once.
    pub fn concurrency(&self) -> usize {
        self.config.concurrency.max(1)
    }

    /// The configuration in use.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// GETs `url` into memory (at most `max_bytes`), with retries.
    pub fn get_bytes(
        &self,
        url: &Url,
        accept: Option<&str>,
        max_bytes: u64,
    ) -> Result<HttpResponse, NetError> {
        if url.scheme() == "file" {
            return read_file_url(url, max_bytes);
        }
        let mut sink: Vec<u8> = Vec::new();
        let (content_type, final_url) =
            self.with_retries(url, accept, Some(max_bytes), &mut sink)?;
        Ok(HttpResponse {
            bytes: sink,
            content_type,
            url: final_url,
        })
    }

    /// Streams `url` into `dest`; returns the byte count. A transient failure mid-body continues
    /// with a range request when the server allows it (strong validator + `Accept-Ranges`),
    /// otherwise `dest` is reset and the download starts over.
    pub fn download(&self, url: &Url, dest: &mut dyn DownloadSink) -> Result<u64, NetError> {
        let dest = &mut sink::Metered {
            inner: dest,
            meter: &self.meter,
        };
        if url.scheme() == "file" {
            let path = file_path(url)?;
            let mut f = fs_err::File::open(&path).map_err(|source| NetError::File {
                url: url.clone(),
                source,
            })?;
            return copy_body(url, &mut f, dest, None, None);
        }
        self.with_retries(url, None, None, dest)?;
        Ok(dest.written())
    }

    fn with_retries(
        &self,
        url: &Url,
        accept: Option<&str>,
        limit: Option<u64>,
        dest: &mut dyn DownloadSink,
    ) -> Result<(Option<String>, Url), NetError> {
        if self.config.offline {
            return Err(NetError::Offline { url: url.clone() });
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NetError::UnsupportedScheme { url: url.clone() });
        }
        let mut hint = ResumeHint::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The place is held for one attempt only: a backoff sleep doesn't keep others out.
            let permit = self.gate.enter();
            let outcome = self.attempt(url, accept, limit, dest, &mut hint);
            drop(permit);
            match outcome {
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(e)) => {
                    if attempt > self.config.retries {
                        return Err(match e {
                            NetError::Transport { url, detail, .. } => NetError::Transport {
                                url,
                                detail,
                                attempts: attempt,
                            },
                            other => other,
                        });
                    }
                    let wait = backoff(url, attempt);
                    tracing::warn!(%url, attempt, ?wait, error = %e, "retrying");
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// One request: fresh, or a range request continuing after what `dest` already holds.
    fn attempt(
        &self,
        url: &Url,
        accept: Option<&str>,
        limit: Option<u64>,
        dest: &mut dyn DownloadSink,
        hint: &mut ResumeHint,
    ) -> Result<(Option<String>, Url), Failure> {
        let transport = |detail: String| {
            Failure::Transient(NetError::Transport {
                url: url.clone(),
                detail,
                attempts: 1,
            })
        };
        let write_err = |source: io::Error| {
            Failure::Fatal(NetError::Write {
                url: url.clone(),
                source,
            })
        };
        let offset = dest.written();
        let resume = hint.resume_headers(offset);
        if offset > 0 && resume.is_none() {
            dest.reset().map_err(write_err)?;
        }
        let started = std::time::Instant::now();
        let fatal = |detail: String| {
            Failure::Fatal(NetError::Transport {
                url: url.clone(),
                detail,
                attempts: 1,
            })
        };
        let send_failed = |e: SendError| {
            let detail = self.agent.failure_detail(url.as_str(), &e);
            if e.is_permanent() {
                fatal(detail)
            } else {
                transport(detail)
            }
        };
        let mut req = self
            .agent
            .request(reqwest::Method::GET, url.as_str())
            .map_err(send_failed)?;
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some((range, if_range)) = &resume {
            tracing::info!(%url, offset, "resuming download");
            req = req.header("Range", range).header("If-Range", if_range);
        }
        let resp = self.agent.send(req).map_err(send_failed)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        };
        let status = resp.status().as_u16();
        let resumed = match (status, &resume) {
            (206, Some(_)) => {
                let range = header("content-range").and_then(|v| ContentRange::parse(&v));
                if range.map(|r| r.first) != Some(offset) {
                    // Not the continuation we asked for: start over on the next attempt.
                    dest.reset().map_err(write_err)?;
                    return Err(transport(format!(
                        "range response does not continue at byte {offset}"
                    )));
                }
                true
            }
            (416, Some(_)) => {
                dest.reset().map_err(write_err)?;
                return Err(transport(format!("range from byte {offset} refused (416)")));
            }
            _ => false,
        };
        let final_url = resp.url().clone();
        if !(200..300).contains(&status) || (status == 206 && !resumed) {
            let e = NetError::Status {
                url: url.clone(),
                status,
            };
            return Err(if e.is_transient() {
                Failure::Transient(e)
            } else {
                Failure::Fatal(e)
            });
        }
        if !resumed && dest.written() > 0 {
            // The validator changed (If-Range answered with the whole new file).
            dest.reset().map_err(write_err)?;
        }
        *hint = ResumeHint::from_headers(
            header("etag").as_deref(),
            header("last-modified").as_deref(),
            header("accept-ranges").as_deref(),
        );
        let content_type = header("content-type").map(|v| strip_params(&v));
        let expected = header("content-length").and_then(|s| s.trim().parse::<u64>().ok());
        let already = dest.written();
        let remaining_limit = limit.map(|max| max.saturating_sub(already));
        if let (Some(len), Some(max)) = (expected, remaining_limit) {
            if len > max {
                return Err(Failure::Fatal(NetError::TooLarge {
                    url: url.clone(),
                    limit: limit.unwrap_or(max),
                }));
            }
        }
        let mut body = Deadline {
            inner: resp,
            until: self.agent.global_timeout().map(|t| (started + t, t)),
        };
        match copy_body(url, &mut body, dest, expected, remaining_limit) {
            Ok(_) => Ok((content_type, final_url)),
            Err(e) if e.is_transient() => Err(Failure::Transient(e)),
            Err(e) => Err(Failure::Fatal(e)),
        }
    }
}

/// A body that fails with `TimedOut` once the whole request's time is up
/// (`ENVPACK_HTTP_TIMEOUT`); each read's own limit is the stall time.
struct Deadline<R> {
    inner: R,
    until: Option<(std::time::Instant, Duration)>,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((until, limit)) = self.until {
            if std::time::Instant::now() > until {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the request took longer than {} s", limit.as_secs()),
                ));
            }
        }
        self.inner.read(buf)
    }
}

/// Copies a body, enforcing `limit` and detecting short reads against `expected`.
fn copy_body(
    url: &Url,
    src: &mut dyn Read,
    dest: &mut dyn Write,
    expected: Option<u64>,
    limit: Option<u64>,
) -> Result<u64, NetError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got: u64 = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Out of time (a stall, or the whole request's limit): say so, not "truncated".
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(NetError::Transport {
                    url: url.clone(),
                    detail: format!("reading body after {got} bytes: {}", describe_error(&e)),
                    attempts: 1,
                })
            }
            Err(e) => {
                return Err(match expected {
                    Some(expected) if got < expected => NetError::Truncated {
                        url: url.clone(),
                        expected,
                        got,
                    },
                    _ => NetError::Transport {
                        url: url.clone(),
                        detail: format!("reading body: {}", describe_error(&e)),
                        attempts: 1,
                    },
                })
            }
        };
        got += n as u64;
        if let Some(max) = limit {
            if got > max {
                return Err(NetError::TooLarge {
                    url: url.clone(),
                    limit: max,
                });
            }
        }
        dest.write_all(&buf[..n])
            .map_err(|source| NetError::Write {
                url: url.clone(),
                source,
            })?;
    }
    if let Some(expected) = expected {
        if got < expected {
            return Err(NetError::Truncated {
                url: url.clone(),
                expected,
                got,
            });
        }
    }
    Ok(got)
}

fn file_path(url: &Url) -> Result<PathBuf, NetError> {
    url.to_file_path().map_err(|_| NetError::File {
        url: url.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a local file path"),
    })
}

/// Reads a `file://` URL; a directory serves its `index.html` (like a static web server).
fn read_file_url(url: &Url, max_bytes: u64) -> Result<HttpResponse, NetError> {
    let mut path = file_path(url)?;
    let file_err = |source| NetError::File {
        url: url.clone(),
        source,
    };
    if path.is_dir() {
        path.push("index.html");
    }
    let mut f = fs_err::File::open(&path).map_err(file_err)?;
    let mut bytes = Vec::new();
    copy_body(url, &mut f, &mut bytes, None, Some(max_bytes))?;
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("html") | Some("htm") => Some("text/html".to_string()),
        Some("json") => Some("application/json".to_string()),
        _ => None,
    };
    Ok(HttpResponse {
        bytes,
        content_type,
        url: url.clone(),
    })
}

#[cfg(test)]
mod net_tests;
#[cfg(any(test, feature = "test-support"))]
pub mod test_servers;
#[cfg(test)]
mod tests;
