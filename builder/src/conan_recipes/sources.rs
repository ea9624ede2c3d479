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

/// Where a source pinned at `url` with `sha256` is fetched: from `mirror` under its sha256
/// (the layout of Conan's backup-sources servers, and of a bundle's `sources/`) when one is
/// configured, else from `url` itself. A mirror needs the sha256: a file name alone is not
/// unique (`…/archive/refs/tags/v1.0.tar.gz`), and the mirror must not decide the pin.
pub fn fetch_url(
    url: &str,
    sha256: Option<&Sha256Digest>,
    mirror: Option<&url::Url>,
) -> anyhow::Result<url::Url> {
    let shown = envpack_layers::shown_name(url);
    let parsed = url::Url::parse(url).with_context(|| format!("conan source \"{shown}\""))?;
    let Some(mirror) = mirror else {
        return Ok(parsed);
    };
    let Some(sha256) = sha256 else {
        anyhow::bail!(
            "conan source \"{shown}\": ENVPACK_SOURCE_MIRROR serves sources by sha256; give its sha256 in the spec"
        );
    };
    mirror
        .join(&sha256.to_hex())
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
        let expect = match &src.sha256 {
            Some(hex) => Some((Sha256Digest::from_hex(hex)?, None)),
            None => None,
        };
        let pinned = expect.as_ref().map(|(sha, _)| sha);
        let url = fetch_url(&src.url, pinned, crate::config::source_mirror()?.as_ref())?;
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
        let d = Sha256Digest([0xab; 32]);
        let u = "https://www.openssl.org/source/openssl-3.0.22.tar.gz";
        assert_eq!(fetch_url(u, Some(&d), None).unwrap().as_str(), u);
        assert_eq!(fetch_url(u, None, None).unwrap().as_str(), u);
        assert_eq!(
            fetch_url(u, Some(&d), Some(&m)).unwrap().as_str(),
            format!("file:///srv/sources/{}", "ab".repeat(32))
        );
        let e = fetch_url(u, None, Some(&m)).unwrap_err().to_string();
        assert!(
            e.contains("serves sources by sha256; give its sha256"),
            "{e}"
        );
        assert!(fetch_url("not a url", Some(&d), None).is_err());
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
