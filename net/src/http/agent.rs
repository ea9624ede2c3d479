//! The one HTTP client setup every request uses (reqwest's blocking client, over rustls with
//! the ring provider): proxies, trusted CA roots, timeouts and the user agent, so index,
//! downloads, CPython and registry traffic all go out the same way.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::proxy::{ProxyServer, ProxySettings};
use crate::NetError;

/// Which CA certificates a TLS server must chain to.
#[derive(Clone, Default)]
pub enum TrustRoots {
    /// Mozilla's root set compiled into envpack (the same on every machine, and present in
    /// containers without a system CA store).
    #[default]
    Bundled,
    /// Only the certificates of a PEM file, instead of the bundled set (as pip's `--cert`,
    /// curl's `--cacert` and uv's `SSL_CERT_FILE` do).
    File {
        /// The file.
        path: PathBuf,
        /// The variable that named it.
        variable: String,
        /// Its certificates, shared by every client.
        certs: Arc<Vec<CertificateDer<'static>>>,
    },
}

impl PartialEq for TrustRoots {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TrustRoots::Bundled, TrustRoots::Bundled) => true,
            (
                TrustRoots::File { path, certs, .. },
                TrustRoots::File {
                    path: p, certs: c, ..
                },
            ) => path == p && certs == c,
            _ => false,
        }
    }
}

impl Eq for TrustRoots {}

impl std::fmt::Display for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustRoots::Bundled => f.write_str(
                "the bundled roots (ENVPACK_HTTP_CA_BUNDLE or SSL_CERT_FILE names a PEM file to trust instead)",
            ),
            TrustRoots::File {
                path,
                variable,
                certs,
            } => write!(
                f,
                "only the {} certificate(s) of {} (from {variable})",
                certs.len(),
                path.display()
            ),
        }
    }
}

impl std::fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The rustls error in `e`'s chain of causes, if there is one (reqwest wraps it in hyper's and
/// the I/O layer's errors).
fn rustls_cause<'e>(e: &'e (dyn StdError + 'static)) -> Option<&'e rustls::Error> {
    causes(e).find_map(|c| c.downcast_ref::<rustls::Error>())
}

/// `e` and its causes. An `io::Error` wrapping another error is followed into it (its own
/// `source` skips the wrapped error and goes to that one's cause).
fn causes<'e>(
    e: &'e (dyn StdError + 'static),
) -> impl Iterator<Item = &'e (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&cur: &&'e (dyn StdError + 'static)| match cur
        .downcast_ref::<std::io::Error>()
    {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn StdError + 'static))
            .or_else(|| cur.source()),
        None => cur.source(),
    })
}

/// Whether `e` is the server's certificate refused (no trusted CA, wrong name, expired):
/// the server speaks TLS, and trying again cannot help.
pub fn is_certificate_error(e: &(dyn StdError + 'static)) -> bool {
    rustls_cause(e).is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
}

/// Whether a proxy refused to open a tunnel for want of credentials (a 407 to `CONNECT`).
/// hyper-util's tunnel error type is private, so its words are the only sign.
pub fn is_proxy_refusal(e: &(dyn StdError + 'static)) -> bool {
    causes(e).any(|c| c.to_string().contains("proxy authorization required"))
}

/// `e` and its causes in words, each once: reqwest's own line names the URL, which the
/// caller's message already does, so only the causes are kept when there are any.
pub fn describe_error(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cur in causes(e).skip(1) {
        let text = cur.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        return e.to_string();
    }
    let mut out = parts.join(": ");
    // hyper's CONNECT tunnel reports a proxy's 407 in words only; say the status as well,
    // as for every other refusal.
    if out.contains("proxy authorization required") {
        out.push_str(" (407 Proxy Authentication Required)");
    }
    out
}

impl TrustRoots {
    /// `ENVPACK_HTTP_CA_BUNDLE`, else `SSL_CERT_FILE`, else the bundled roots. A file that is
    /// missing, unreadable, or holds no usable certificate is an error naming it.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, NetError> {
        for variable in ["ENVPACK_HTTP_CA_BUNDLE", "SSL_CERT_FILE"] {
            let Some(value) = env(variable).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let path = PathBuf::from(value.trim());
            let certs = load_bundle(&path).map_err(|reason| NetError::Setting {
                variable: variable.to_string(),
                value: value.clone(),
                reason,
            })?;
            return Ok(TrustRoots::File {
                path,
                variable: variable.to_string(),
                certs: Arc::new(certs),
            });
        }
        Ok(TrustRoots::Bundled)
    }

    fn root_store(&self) -> rustls::RootCertStore {
        let mut store = rustls::RootCertStore::empty();
        match self {
            TrustRoots::Bundled => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            TrustRoots::File { certs, .. } => {
                // Each was checked usable when the bundle was loaded.
                let (_, _) = store.add_parsable_certificates(certs.iter().cloned());
            }
        }
        store
    }
}

/// The certificates of a PEM bundle, each checked to be usable as a trust anchor (skipping a
/// broken one silently would make every server fail later with an unknown issuer).
fn load_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = fs_err::read(path).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        let cert = item.map_err(|e| format!("{}: not a PEM file: {e}", path.display()))?;
        let mut store = rustls::RootCertStore::empty();
        store.add(cert.clone()).map_err(|e| {
            format!(
                "{}: certificate {} is not usable: {e}",
                path.display(),
                certs.len() + 1
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// How long each phase of a request may take (`None` = no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole request, body included (enforced by the caller as it reads the body).
    pub global: Option<Duration>,
    /// Connecting (name lookup, proxy CONNECT, TLS handshake).
    pub connect: Option<Duration>,
    /// Waiting for the response head, and then for each read of the body.
    pub per_read: Option<Duration>,
}

/// A client that sends each request through the proxy `ProxySettings` chooses for its URL
/// (every redirect hop chooses again); cheap to clone.
#[derive(Clone)]
pub struct Agent {
    /// The client: at most the stall time for a response's head and for each read of its
    /// body, or why it could not be made (reported by every request).
    client: Result<Client, Arc<str>>,
    proxies: Arc<ProxySettings>,
    /// What a certificate failure was checked against, for its message.
    roots: Arc<str>,
    timeouts: Timeouts,
}

/// Redirects followed for one request, as browsers and curl's default.
pub const MAX_REDIRECTS: usize = 10;

/// Why a request could not be sent at all.
#[derive(Debug)]
pub enum SendError {
    /// The client could not be made (its TLS setup).
    Setup(Arc<str>),
    /// The request failed.
    Http(reqwest::Error),
    /// A redirect that can't be followed (too many, or to a bad place).
    Redirect(String),
    /// A proxy answered a plain-HTTP request with 407 (how it goes, for messages).
    ProxyRefused(String),
}

impl SendError {
    /// Whether trying again cannot help: the client can't be made, the server's certificate
    /// is refused, a proxy refused its credentials, the request or a redirect is bad.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Setup(_) | SendError::Redirect(_) | SendError::ProxyRefused(_) => true,
            SendError::Http(h) => is_certificate_error(h) || is_proxy_refusal(h) || h.is_builder(),
        }
    }
}

impl Agent {
    /// The client for `proxies`, `roots` and `timeouts`; statuses are returned, not errors.
    pub fn new(proxies: &ProxySettings, roots: &TrustRoots, timeouts: Timeouts) -> Agent {
        let proxies = Arc::new(proxies.clone());
        // Without a stall limit the whole-request limit still bounds each wait.
        let wait = timeouts.per_read.or(timeouts.global);
        Agent {
            client: build_client(&proxies, roots, timeouts.connect, wait).map_err(Arc::from),
            proxies: proxies.clone(),
            roots: roots.to_string().into(),
            timeouts,
        }
    }

    fn route(&self, url: &reqwest::Url) -> Option<&ProxyServer> {
        self.proxies
            .for_target(url.scheme(), url.host_str()?, url.port())
    }

    /// How a request to `url` goes out, for messages: `via proxy … (from VAR)` or `None`.
    pub fn route_of(&self, url: &str) -> Option<String> {
        let url = reqwest::Url::parse(url).ok()?;
        self.route(&url).map(|p| format!("via {}", p.describe()))
    }

    /// `e` for a message about `url`: with the proxy it went through, and for a refused
    /// certificate the roots that were trusted.
    pub fn failure_detail(&self, url: &str, e: &SendError) -> String {
        let mut detail = match e {
            SendError::Setup(why) => format!("the HTTP client could not be set up: {why}"),
            SendError::Http(e) => describe_error(e),
            SendError::Redirect(why) => why.clone(),
            SendError::ProxyRefused(_) => "407 Proxy Authentication Required".to_string(),
        };
        if let Some(route) = self.route_of(url) {
            detail = format!("{detail} ({route})");
        }
        if matches!(e, SendError::Http(h) if is_certificate_error(h)) {
            detail = format!("{detail}; trusted: {}", self.roots);
        }
        detail
    }

    /// A request to `url` that waits at most the stall time for its head and for each read
    /// of its body. A timeout set on the request instead bounds the whole request, body
    /// included: right for an upload, wrong for a download of unknown length.
    pub fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, SendError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| SendError::Setup(why.clone()))?;
        Ok(client.request(method, url))
    }

    /// The stall limit: how long a request may go without progress.
    pub fn stall(&self) -> Option<Duration> {
        self.timeouts.per_read
    }

    /// Sends `req`, following up to [`MAX_REDIRECTS`] redirects of a GET or HEAD here rather
    /// than in reqwest: reqwest adds a proxy's credentials once per request and drops them on
    /// a hop to another host, where each hop must get its own proxy's. `Authorization` is not
    /// sent to another origin.
    pub fn send(&self, req: RequestBuilder) -> Result<Response, SendError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| SendError::Setup(why.clone()))?;
        let mut request = req.build().map_err(SendError::Http)?;
        for _ in 0..=MAX_REDIRECTS {
            let again = matches!(*request.method(), Method::GET | Method::HEAD)
                .then(|| request.try_clone())
                .flatten();
            let resp = client.execute(request).map_err(SendError::Http)?;
            // A plain-HTTP request through a proxy gets the proxy's refusal as a status (an
            // HTTPS one as a failed tunnel): either way it is the proxy's, not the server's.
            if resp.status().as_u16() == 407 && resp.url().scheme() == "http" {
                if let Some(route) = self.route(resp.url()) {
                    return Err(SendError::ProxyRefused(format!("via {}", route.describe())));
                }
            }
            let (Some(mut next), true) = (again, resp.status().is_redirection()) else {
                return Ok(resp);
            };
            let Some(location) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Ok(resp);
            };
            let target = resp.url().join(location).map_err(|e| {
                SendError::Redirect(format!(
                    "{} redirected to \"{}\": {e}",
                    resp.url(),
                    envpack_layers::shown_name(location)
                ))
            })?;
            if !matches!(target.scheme(), "http" | "https") {
                return Err(SendError::Redirect(format!(
                    "{} redirected to {target}, which is not http(s)",
                    resp.url()
                )));
            }
            if target.origin() != resp.url().origin() {
                next.headers_mut().remove(reqwest::header::AUTHORIZATION);
                next.headers_mut().remove(reqwest::header::COOKIE);
            }
            *next.url_mut() = target;
            request = next;
        }
        Err(SendError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// The whole-request limit, for the caller reading the body.
    pub fn global_timeout(&self) -> Option<Duration> {
        self.timeouts.global
    }
}

fn build_client(
    proxies: &Arc<ProxySettings>,
    roots: &TrustRoots,
    connect: Option<Duration>,
    wait: Option<Duration>,
) -> Result<Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots.root_store())
        .with_no_client_auth();
    // Never reqwest's own reading of the proxy variables: one proxy per scheme, each asking
    // `for_target` for every connection (redirect hops included), with its credentials
    // decoded (reqwest would send a URL's percent-encoded user and password as they are).
    let mut builder = Client::builder().no_proxy();
    for (scheme, server) in [("http", &proxies.http), ("https", &proxies.https)] {
        let Some(server) = server else { continue };
        let chooser = proxies.clone();
        let mut proxy = reqwest::Proxy::custom(move |url| {
            if url.scheme() != scheme {
                return None;
            }
            chooser
                .for_target(url.scheme(), url.host_str()?, url.port())
                .map(|p| p.url().clone())
        });
        if let Some((user, password)) = server.credentials() {
            proxy = proxy.basic_auth(user, password);
        }
        builder = builder.proxy(proxy);
    }
    let mut builder = builder
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        // The blocking client's own timeout: the wait for the head, then each read (not the
        // whole body, unlike a per-request timeout).
        .timeout(wait)
        .tcp_keepalive(Duration::from_secs(60))
        .user_agent(concat!("envpack/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = connect {
        builder = builder.connect_timeout(t);
    }
    builder.build().map_err(|e| describe_error(&e))
}
