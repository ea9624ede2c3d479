//! Client for a PEP 503 (HTML) / PEP 691 (JSON) simple repository.

mod html;
mod json;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use envpack_layers::digest::Sha256Digest;
use url::Url;

use crate::filename::PackageName;
use crate::metadata::CoreMetadata;
use crate::PypkgError;
use envpack_net::{parallel_map, HttpClient, Memo, NetError, SingleFlight};

/// Content negotiation for project pages: JSON preferred, HTML accepted.
pub const SIMPLE_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Upper bound for a project page; the largest real ones are a few MB.
const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// One distribution file listed on a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// File name (last URL path segment).
    pub filename: String,
    /// Absolute download URL without fragment.
    pub url: Url,
    /// sha256 announced by the index.
    pub sha256: Option<Sha256Digest>,
    /// Size announced by the index (JSON only).
    pub size: Option<u64>,
    /// `Requires-Python` announced by the index.
    pub requires_python: Option<String>,
    /// `Some(reason or "")` when yanked.
    pub yanked: Option<String>,
    /// `Some(hash?)` when a PEP 658 `.metadata` file exists.
    pub metadata_sha256: Option<Option<Sha256Digest>>,
}

impl IndexFile {
    /// URL of the PEP 658 metadata file (`<file url>.metadata`).
    pub fn metadata_url(&self) -> Url {
        let mut u = self.url.clone();
        u.set_path(&format!("{}.metadata", self.url.path()));
        u
    }
}

/// Parses a sha256 hex string of either case.
pub(crate) fn parse_sha256_hex(s: &str) -> Option<Sha256Digest> {
    Sha256Digest::from_hex(&s.trim().to_ascii_lowercase()).ok()
}

/// Parses a fetched page according to its content type (sniffing when absent).
pub fn parse_project_page(
    page_url: &Url,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<IndexFile>, PypkgError> {
    let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let is_json = match content_type {
        Some(ct) => ct.ends_with("json"),
        None => looks_json,
    };
    if is_json {
        json::parse_project_json(page_url, body).map_err(|e| PypkgError::IndexMalformed {
            url: page_url.clone(),
            detail: e.to_string(),
        })
    } else {
        let text = String::from_utf8_lossy(body);
        Ok(html::parse_project_html(page_url, &text))
    }
}

/// A simple-repository client that remembers every project page it fetched; shared by the
/// threads of one lock (every platform's resolution), which never fetch the same page twice.
#[derive(Debug)]
pub struct SimpleIndex {
    base: Url,
    http: HttpClient,
    pages: Mutex<HashMap<PackageName, Arc<Vec<IndexFile>>>>,
    /// Projects the index answered 404 for, with the page's URL: the answer every later ask
    /// gets too. Other failures are not remembered: the next ask tries again.
    missing: Mutex<HashMap<PackageName, Url>>,
    page_flight: SingleFlight<PackageName>,
    metadata: Memo<Url, Arc<CoreMetadata>>,
}

impl SimpleIndex {
    /// A client for `base` (e.g. `http://127.0.0.1:PORT/simple/`; a missing trailing `/` is added).
    pub fn new(mut base: Url, http: HttpClient) -> Self {
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        SimpleIndex {
            base,
            http,
            pages: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashMap::new()),
            page_flight: SingleFlight::new(),
            metadata: Memo::default(),
        }
    }

    /// The index base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The HTTP client in use.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The files of project `name` (fetched once, then memoized).
    pub fn project_files(&self, name: &PackageName) -> Result<Arc<Vec<IndexFile>>, PypkgError> {
        if let Some(hit) = guard(&self.pages).get(name) {
            return Ok(hit.clone());
        }
        self.page_flight.run(name, || self.page_once(name))
    }

    /// Inside the page's flight: the memoized answer, else one fetch whose answer (files, or
    /// a 404) is memoized.
    fn page_once(&self, name: &PackageName) -> Result<Arc<Vec<IndexFile>>, PypkgError> {
        if let Some(url) = guard(&self.missing).get(name) {
            return Err(PypkgError::NotFound {
                name: name.clone(),
                url: url.clone(),
            });
        }
        if let Some(hit) = guard(&self.pages).get(name) {
            return Ok(hit.clone());
        }
        match self.fetch_page(name) {
            Ok(files) => {
                guard(&self.pages).insert(name.clone(), files.clone());
                Ok(files)
            }
            Err(PypkgError::NotFound { name, url }) => {
                guard(&self.missing).insert(name.clone(), url.clone());
                Err(PypkgError::NotFound { name, url })
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches the pages of `names` not fetched yet, [`HttpClient::concurrency`] at a time, so
    /// the resolver's later one-by-one asks are answered from memory.
    pub fn prefetch(&self, names: &[PackageName]) {
        let missing: Vec<&PackageName> = {
            let pages = guard(&self.pages);
            names.iter().filter(|n| !pages.contains_key(*n)).collect()
        };
        if missing.len() < 2 {
            return;
        }
        parallel_map(self.http.concurrency(), &missing, |name| {
            // A failure other than a 404 is left for the resolver's own ask to meet (and
            // report, for its own platform); this one only logs it.
            if let Err(e) = self.page_flight.run(*name, || self.page_once(name)) {
                tracing::debug!(project = %name, error = %e, "prefetching the index page failed");
            }
        });
    }

    fn fetch_page(&self, name: &PackageName) -> Result<Arc<Vec<IndexFile>>, PypkgError> {
        let url = self
            .base
            .join(&format!("{name}/"))
            .map_err(|e| PypkgError::IndexBadUrl {
                base: Box::new(self.base.clone()),
                name: name.clone(),
                detail: e.to_string(),
            })?;
        let resp = match self
            .http
            .get_bytes(&url, Some(SIMPLE_ACCEPT), MAX_PAGE_BYTES)
        {
            Ok(r) => r,
            Err(NetError::Status { status: 404, .. }) => {
                return Err(PypkgError::NotFound {
                    name: name.clone(),
                    url,
                })
            }
            Err(NetError::File { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(PypkgError::NotFound {
                    name: name.clone(),
                    url,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let files = Arc::new(parse_project_page(
            &resp.url,
            resp.content_type.as_deref(),
            &resp.bytes,
        )?);
        tracing::debug!(project = %name, files = files.len(), "index page");
        Ok(files)
    }

    /// Metadata already read for the file at `file_url`.
    pub fn cached_metadata(&self, file_url: &Url) -> Option<Arc<CoreMetadata>> {
        self.metadata.get(file_url)
    }

    /// The metadata of the file at `file_url`: read by `read` once, then shared by every
    /// platform's resolution (a second thread asking meanwhile waits for the first read).
    pub fn metadata(
        &self,
        file_url: &Url,
        read: impl FnOnce() -> Result<CoreMetadata, PypkgError>,
    ) -> Result<Arc<CoreMetadata>, PypkgError> {
        self.metadata.get_or_try(file_url, || read().map(Arc::new))
    }
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere can't leave a map half-updated: every update is a single operation.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod prefetch_tests;
#[cfg(test)]
mod tests {
    use super::*;
    use envpack_net::HttpConfig;
    use std::str::FromStr;

    #[test]
    fn file_index_is_read_and_memoized() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("simple").join("demo-pkg");
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(
            proj.join("index.html"),
            r#"<a href="../../demo_pkg-1.0.tar.gz">x</a>"#,
        )
        .unwrap();
        let base = Url::from_directory_path(dir.path().join("simple")).unwrap();
        let idx = SimpleIndex::new(
            base,
            HttpClient::new(HttpConfig {
                offline: true,
                ..HttpConfig::default()
            }),
        );
        let name = PackageName::from_str("Demo_Pkg").unwrap();
        let files = idx.project_files(&name).unwrap();
        assert_eq!(files[0].filename, "demo_pkg-1.0.tar.gz");
        assert_eq!(
            files[0].metadata_url().path(),
            format!("{}.metadata", files[0].url.path())
        );
        std::fs::remove_dir_all(&proj).unwrap();
        assert!(Arc::ptr_eq(&files, &idx.project_files(&name).unwrap()));
        let missing = PackageName::from_str("nope").unwrap();
        assert!(matches!(
            idx.project_files(&missing),
            Err(PypkgError::NotFound { .. })
        ));
    }

    #[test]
    fn content_type_dispatch() {
        let u = Url::parse("http://h/simple/a/").unwrap();
        let json = br#"{"files":[{"filename":"a-1.tar.gz","url":"a-1.tar.gz","hashes":{}}]}"#;
        assert_eq!(
            parse_project_page(&u, Some("application/vnd.pypi.simple.v1+json"), json)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(parse_project_page(&u, None, json).unwrap().len(), 1);
        let html = br#"<a href="a-1.tar.gz">a</a>"#;
        assert_eq!(
            parse_project_page(&u, Some("text/html"), html)
                .unwrap()
                .len(),
            1
        );
        assert!(parse_project_page(&u, Some("application/vnd.pypi.simple.v1+json"), html).is_err());
    }
}
