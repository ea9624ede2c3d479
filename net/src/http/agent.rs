//! The one ureq agent setup every client uses: proxies, trusted CA roots, timeouts and the
//! user agent, so index, downloads, CPython and registry traffic all go out the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{Request, Response, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{AsSendBody, Body};

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
        /// Its certificates, shared by every agent (ureq pools connections per root set).
        certs: Arc<Vec<Certificate<'static>>>,
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
            ) => path == p && certs.iter().map(|x| x.der()).eq(c.iter().map(|x| x.der())),
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

/// Whether `e` is the server's certificate refused (no trusted CA, wrong name, expired):
/// the server speaks TLS, and trying again cannot help.
pub fn is_certificate_error(e: &ureq::Error) -> bool {
    let refused = |r: &rustls::Error| matches!(r, rustls::Error::InvalidCertificate(_));
    match e {
        ureq::Error::Rustls(r) => refused(r),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(refused),
        _ => false,
    }
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

    fn root_certs(&self) -> RootCerts {
        match self {
            TrustRoots::Bundled => RootCerts::WebPki,
            TrustRoots::File { certs, .. } => RootCerts::Specific(certs.clone()),
        }
    }
}

/// The certificates of a PEM bundle, each checked to be usable as a trust anchor (ureq would
/// skip a broken one silently, and every server would then fail with an unknown issuer).
fn load_bundle(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let bytes = fs_err::read(path).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => {
                let mut store = rustls::RootCertStore::empty();
                store
                    .add(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                    .map_err(|e| {
                        format!(
                            "{}: certificate {} is not usable: {e}",
                            path.display(),
                            certs.len() + 1
                        )
                    })?;
                certs.push(c);
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{}: not a PEM file: {e}", path.display())),
        }
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
    /// The whole request, body included.
    pub global: Option<Duration>,
    /// Connecting (name lookup, proxy CONNECT, TLS handshake).
    pub connect: Option<Duration>,
    /// From the request sent to the response head.
    pub response: Option<Duration>,
    /// Each read of the body.
    pub per_read: Option<Duration>,
}

/// A ureq agent that sends each request through the proxy `ProxySettings` chooses for its
/// URL; cheap to clone.
#[derive(Clone)]
pub struct Agent {
    agent: ureq::Agent,
    proxies: Arc<ProxySettings>,
    /// What a certificate failure was checked against, for its message.
    roots: Arc<str>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// The agent for `proxies`, `roots` and `timeouts`; statuses are returned, not errors.
    pub fn new(proxies: &ProxySettings, roots: &TrustRoots, timeouts: Timeouts) -> Agent {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Never ureq's own reading of the proxy variables: each request gets ours.
            .proxy(None)
            .tls_config(TlsConfig::builder().root_certs(roots.root_certs()).build())
            .timeout_global(timeouts.global)
            .timeout_connect(timeouts.connect)
            .timeout_recv_response(timeouts.response)
            .timeout_per_read(timeouts.per_read)
            .user_agent(concat!("envpack/", env!("CARGO_PKG_VERSION")))
            .build();
        Agent {
            agent: config.into(),
            proxies: Arc::new(proxies.clone()),
            roots: roots.to_string().into(),
        }
    }

    fn route(&self, uri: &Uri) -> Option<&ProxyServer> {
        self.proxies
            .for_target(uri.scheme_str()?, uri.host()?, uri.port_u16())
    }

    /// How a request to `url` goes out, for messages: `via proxy … (from VAR)` or `None`.
    pub fn route_of(&self, url: &str) -> Option<String> {
        let uri: Uri = url.parse().ok()?;
        self.route(&uri).map(|p| format!("via {}", p.describe()))
    }

    /// `e` for a message about `url`: with the proxy it went through, and for a refused
    /// certificate the roots that were trusted.
    pub fn failure_detail(&self, url: &str, e: &ureq::Error) -> String {
        let mut detail = e.to_string();
        if let Some(route) = self.route_of(url) {
            detail = format!("{detail} ({route})");
        }
        if is_certificate_error(e) {
            detail = format!("{detail}; trusted: {}", self.roots);
        }
        detail
    }

    /// A GET request to `uri`, routed.
    pub fn get(&self, uri: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let proxy = uri
            .parse::<Uri>()
            .ok()
            .and_then(|u| self.route(&u).map(|p| p.proxy().clone()));
        self.agent.get(uri).config().proxy(proxy).build()
    }

    /// Runs an `http` crate request, routed.
    pub fn run(&self, req: Request<impl AsSendBody>) -> Result<Response<Body>, ureq::Error> {
        let proxy = self.route(req.uri()).map(|p| p.proxy().clone());
        let req = self.agent.configure_request(req).proxy(proxy).build();
        self.agent.run(req)
    }
}
