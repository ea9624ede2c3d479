//! CPython archives in python-build-standalone layout: naming, `SHA256SUMS`, pinning and fetching.

use std::collections::BTreeMap;
use std::sync::Arc;

use envpack_layers::digest::Sha256Digest;
use url::Url;

use crate::lock::{LockedPython, LockedPythonRelease};
use crate::spec::PythonFile;
use envpack_net::{Cache, CachedBlob};
use envpack_net::{HttpClient, Memo};
use envpack_pypkg::Platform;

/// Errors pinning or fetching CPython.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// The release's checksum list has no line for the archive.
    #[error("{sums_url} has no entry for {filename}: is python {version} build {build} published for {platform}?")]
    NotInSums {
        sums_url: String,
        filename: String,
        version: String,
        build: String,
        platform: String,
    },
    /// A malformed checksum list.
    #[error("{url}: line {line}: {detail}")]
    BadSums {
        url: String,
        line: usize,
        detail: String,
    },
    /// Download and cache problems (including hash mismatches).
    #[error(transparent)]
    Net(#[from] envpack_net::NetError),
    /// A bad URL.
    #[error("bad CPython URL \"{}\": {}", envpack_layers::shown_name(.0), .1)]
    Url(String, url::ParseError),
}

/// `cpython-{ver}+{build}-{triple}-{variant}.tar.gz`
pub fn archive_filename(release: &LockedPythonRelease, platform: &Platform) -> String {
    format!(
        "cpython-{}+{}-{}-{}.tar.gz",
        release.version, release.build, platform.pbs_triple, release.variant
    )
}

/// Parse `sha256sum`-style lines (`<hex>  <file>` or `<hex> *<file>`); blank lines are skipped.
pub fn parse_sha256sums(
    text: &str,
    url: &str,
) -> Result<BTreeMap<String, Sha256Digest>, PythonError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let bad = |detail: &str| PythonError::BadSums {
            url: url.to_string(),
            line: i + 1,
            detail: detail.to_string(),
        };
        let (hex, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `<sha256>  <filename>`"))?;
        let digest = Sha256Digest::from_hex(hex).map_err(|_| bad("not a sha256"))?;
        let name = rest.trim_start().trim_start_matches('*');
        if name.is_empty() || name.contains('/') {
            return Err(bad("bad file name"));
        }
        out.insert(name.to_string(), digest);
    }
    Ok(out)
}

/// Where the archive of a locked platform is downloaded from.
pub fn archive_url(
    locked: &LockedPython,
    release: &LockedPythonRelease,
    mirror: &Url,
) -> Result<Url, PythonError> {
    if let Some(u) = &locked.url {
        return Url::parse(u).map_err(|e| PythonError::Url(u.clone(), e));
    }
    let rel = format!("{}/{}", release.build, locked.filename);
    mirror.join(&rel).map_err(|e| PythonError::Url(rel, e))
}

/// The `SHA256SUMS` lists read during one lock, by URL; shared by the platforms pinned at once.
#[derive(Default)]
pub struct SumsMemo(Memo<String, Arc<BTreeMap<String, Sha256Digest>>>);

impl SumsMemo {
    /// The list at `url`, fetched on first use.
    fn get(
        &self,
        http: &HttpClient,
        url: &Url,
    ) -> Result<Arc<BTreeMap<String, Sha256Digest>>, PythonError> {
        self.0.get_or_try(&url.to_string(), || {
            let resp = http.get_bytes(url, None, 4 << 20)?;
            let text = String::from_utf8_lossy(&resp.bytes);
            Ok(Arc::new(parse_sha256sums(&text, url.as_str())?))
        })
    }
}

/// Pin the CPython archive of one platform: from an explicit url+sha256, or the mirror's
/// `SHA256SUMS`. The archive is downloaded (hash-checked) to learn its size and warm the cache.
pub fn lock_python(
    release: &LockedPythonRelease,
    explicit: Option<&PythonFile>,
    platform: &Platform,
    mirror: &Url,
    sums_memo: &SumsMemo,
    http: &HttpClient,
    cache: &Cache,
) -> Result<LockedPython, PythonError> {
    if let Some(file) = explicit {
        let url = Url::parse(&file.url).map_err(|e| PythonError::Url(file.url.clone(), e))?;
        let sha = Sha256Digest::from_hex(&file.sha256).map_err(|_| PythonError::BadSums {
            url: file.url.clone(),
            line: 0,
            detail: "explicit sha256 is not 64 hex digits".into(),
        })?;
        let blob = cache.fetch(http, &url, Some((sha, None)))?;
        let filename = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .unwrap_or("cpython.tar.gz")
            .to_string();
        return Ok(LockedPython {
            filename,
            url: Some(file.url.clone()),
            sha256: blob.sha256,
            size: blob.size,
        });
    }
    let filename = archive_filename(release, platform);
    let sums_url = mirror
        .join(&format!("{}/SHA256SUMS", release.build))
        .map_err(|e| PythonError::Url(release.build.clone(), e))?;
    let sha = sums_memo
        .get(http, &sums_url)?
        .get(&filename)
        .copied()
        .ok_or_else(|| PythonError::NotInSums {
            sums_url: sums_url.to_string(),
            filename: filename.clone(),
            version: release.version.clone(),
            build: release.build.clone(),
            platform: platform.name.clone(),
        })?;
    let locked = LockedPython {
        filename,
        url: None,
        sha256: sha,
        size: 0,
    };
    let url = archive_url(&locked, release, mirror)?;
    let blob = cache.fetch(http, &url, Some((sha, None)))?;
    Ok(LockedPython {
        size: blob.size,
        ..locked
    })
}

/// The archive of a locked platform from the cache, downloading it if needed (hash and size checked).
pub fn fetch_python(
    locked: &LockedPython,
    release: &LockedPythonRelease,
    mirror: &Url,
    http: &HttpClient,
    cache: &Cache,
) -> Result<CachedBlob, PythonError> {
    let url = archive_url(locked, release, mirror)?;
    Ok(cache.fetch(http, &url, Some((locked.sha256, Some(locked.size))))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lines() {
        let h = "ab".repeat(32);
        let text = format!("{h}  cpython-a.tar.gz\n\n{h} *cpython-b.tar.gz\r\n");
        let m = parse_sha256sums(&text, "u").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["cpython-b.tar.gz"].to_hex(), h);
        for bad in ["zz  file", "onlyonefield", &format!("{h}  ../x")] {
            assert!(parse_sha256sums(bad, "u").is_err(), "{bad}");
        }
    }

    #[test]
    fn filename_follows_release_naming() {
        let rel = LockedPythonRelease {
            version: "3.12.7".into(),
            build: "20241016".into(),
            variant: "install_only_stripped".into(),
        };
        let p = envpack_pypkg::platform_by_name("linux-x86_64").unwrap();
        assert_eq!(
            archive_filename(&rel, &p),
            "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
        );
        let locked = LockedPython {
            filename: archive_filename(&rel, &p),
            url: None,
            sha256: Sha256Digest([0; 32]),
            size: 1,
        };
        let mirror = Url::parse("file:///srv/pbs/").unwrap();
        assert_eq!(
            archive_url(&locked, &rel, &mirror).unwrap().as_str(),
            "file:///srv/pbs/20241016/cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
        );
    }

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let cases: Vec<(PythonError, &str)> = vec![
            (
                PythonError::NotInSums {
                    sums_url: "https://mirror.example/20241016/SHA256SUMS".into(),
                    filename: "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz".into(),
                    version: "3.12.7".into(),
                    build: "20241016".into(),
                    platform: "linux-x86_64".into(),
                },
                "https://mirror.example/20241016/SHA256SUMS has no entry for \
                 cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz: \
                 is python 3.12.7 build 20241016 published for linux-x86_64?",
            ),
            (
                PythonError::BadSums {
                    url: "https://mirror.example/20241016/SHA256SUMS".into(),
                    line: 3,
                    detail: "not a sha256".into(),
                },
                "https://mirror.example/20241016/SHA256SUMS: line 3: not a sha256",
            ),
            (
                PythonError::Net(envpack_net::NetError::NoLocation),
                "no cache directory: pass --cache-dir or set ENVPACK_CACHE_DIR, XDG_CACHE_HOME or \
                 HOME",
            ),
            (
                PythonError::Url(
                    "mirror/20241016".into(),
                    url::ParseError::RelativeUrlWithoutBase,
                ),
                "bad CPython URL \"mirror/20241016\": relative URL without a base",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
