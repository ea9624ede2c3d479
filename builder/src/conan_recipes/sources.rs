//! Upstream sources: fetched at `lock` (checked against the spec's sha256 when it gives one)
//! and at `build`, and laid out where Conan's download cache looks for a file by its sha256.

use anyhow::Context;

use crate::lock::LockedSource;
use crate::spec::LoadedSpec;
use envpack_layers::digest::Sha256Digest;
use envpack_net::{Cache, HttpClient};

/// Where a source goes in the env: the home template's `sources-cache/s/<sha256>`, the file
/// `conan.tools.files.get(..., sha256=…)` takes before it tries any URL.
pub fn source_cache_path(sha256: &Sha256Digest) -> String {
    format!("conan-home/sources-cache/s/{}", sha256.to_hex())
}

/// Where a source pinned at `url` is fetched: from `mirror` (by the URL's file name) when one
/// is configured, else from `url` itself.
pub fn fetch_url(url: &str, mirror: Option<&url::Url>) -> anyhow::Result<url::Url> {
    let shown = envpack_layers::shown_name(url);
    let parsed = url::Url::parse(url).with_context(|| format!("conan source \"{shown}\""))?;
    let Some(mirror) = mirror else {
        return Ok(parsed);
    };
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .ok_or_else(|| {
            anyhow::anyhow!("conan source \"{shown}\" names no file to look up on a mirror")
        })?;
    mirror
        .join(name)
        .with_context(|| format!("conan source \"{shown}\" on mirror {mirror}"))
}

/// Pins every source of the spec, sorted by sha256 (downloading each into the cache once).
pub fn lock_sources(
    spec: &LoadedSpec,
    http: &HttpClient,
    cache: &Cache,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Vec<LockedSource>> {
    let mut out: Vec<LockedSource> = Vec::new();
    for src in &spec.spec.conan.sources {
        let url = fetch_url(&src.url, crate::config::source_mirror()?.as_ref())?;
        let expect = match &src.sha256 {
            Some(hex) => Some((Sha256Digest::from_hex(hex)?, None)),
            None => None,
        };
        progress(&format!("fetching source {url}"));
        let blob = cache.fetch(http, &url, expect).with_context(|| {
            format!(
                "conan.sources: \"{}\"",
                envpack_layers::shown_name(&src.url)
            )
        })?;
        if let Some(other) = out.iter().find(|o| o.sha256 == blob.sha256) {
            anyhow::bail!(
                "conan.sources: \"{}\" and \"{}\" are the same file (sha256 {}); list it once",
                envpack_layers::shown_name(&other.url),
                envpack_layers::shown_name(&src.url),
                blob.sha256.to_hex()
            );
        }
        out.push(LockedSource {
            url: src.url.clone(),
            sha256: blob.sha256,
            size: blob.size,
        });
    }
    out.sort_by_key(|s| s.sha256);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_urls() {
        let m = url::Url::parse("file:///srv/sources/").unwrap();
        let u = "https://www.openssl.org/source/openssl-3.0.22.tar.gz";
        assert_eq!(fetch_url(u, None).unwrap().as_str(), u);
        assert_eq!(
            fetch_url(u, Some(&m)).unwrap().as_str(),
            "file:///srv/sources/openssl-3.0.22.tar.gz"
        );
        assert_eq!(
            fetch_url("https://h.example/a%20b.tgz?x=1", Some(&m))
                .unwrap()
                .as_str(),
            "file:///srv/sources/a%20b.tgz"
        );
        for bad in ["https://h.example/", "https://h.example/x/.."] {
            assert!(fetch_url(bad, Some(&m)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_path_is_by_sha256() {
        let d = Sha256Digest([0xab; 32]);
        assert_eq!(
            source_cache_path(&d),
            format!("conan-home/sources-cache/s/{}", "ab".repeat(32))
        );
    }
}
