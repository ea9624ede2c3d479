//! PEP 691 JSON project pages.

use serde::Deserialize;
use url::Url;

use super::{parse_sha256_hex, IndexFile};
use envpack_layers::digest::Sha256Digest;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    files: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<BoolOrString>,
    #[serde(default, rename = "core-metadata")]
    core_metadata: Option<BoolOrHashes>,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: Option<BoolOrHashes>,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrString {
    Bool(bool),
    String(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrHashes {
    Bool(bool),
    Hashes(std::collections::BTreeMap<String, String>),
}

fn metadata(v: Option<BoolOrHashes>) -> Option<Option<Sha256Digest>> {
    match v? {
        BoolOrHashes::Bool(false) => None,
        BoolOrHashes::Bool(true) => Some(None),
        BoolOrHashes::Hashes(h) => Some(h.get("sha256").and_then(|s| parse_sha256_hex(s))),
    }
}

/// Parses a PEP 691 project page fetched from `page_url`; file URLs are resolved against it.
pub fn parse_project_json(
    page_url: &Url,
    json: &[u8],
) -> Result<Vec<IndexFile>, serde_json::Error> {
    let page: Page = serde_json::from_slice(json)?;
    let mut out = Vec::with_capacity(page.files.len());
    for f in page.files {
        let Ok(mut url) = page_url.join(&f.url) else {
            tracing::warn!(url = %f.url, page = %page_url, "skipping file with an unparsable URL");
            continue;
        };
        url.set_fragment(None);
        out.push(IndexFile {
            filename: f.filename,
            url,
            sha256: f.hashes.get("sha256").and_then(|s| parse_sha256_hex(s)),
            size: f.size,
            requires_python: f.requires_python.filter(|s| !s.trim().is_empty()),
            yanked: match f.yanked {
                None | Some(BoolOrString::Bool(false)) => None,
                Some(BoolOrString::Bool(true)) => Some(String::new()),
                Some(BoolOrString::String(s)) => Some(s),
            },
            metadata_sha256: match f.core_metadata {
                Some(v) => metadata(Some(v)),
                None => metadata(f.dist_info_metadata),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parses_pep691_page() {
        let page = Url::parse("http://127.0.0.1:1/simple/demo/").unwrap();
        let json = format!(
            r#"{{"meta":{{"api-version":"1.1"}},"name":"demo","versions":["1.0"],"files":[
 {{"filename":"demo-1.0-py3-none-any.whl","url":"../../f/demo-1.0-py3-none-any.whl","hashes":{{"sha256":"{H1}","md5":"x"}},
   "requires-python":">=3.8","yanked":false,"core-metadata":{{"sha256":"{H2}"}},"size":123}},
 {{"filename":"demo-0.9.tar.gz","url":"https://elsewhere/demo-0.9.tar.gz#frag","hashes":{{}},"yanked":"bad build","dist-info-metadata":true}},
 {{"filename":"demo-0.8.tar.gz","url":"demo-0.8.tar.gz","hashes":{{"sha256":"{}"}},"yanked":true,"core-metadata":false,"dist-info-metadata":true,"requires-python":null}}
]}}"#,
            H1.to_uppercase()
        );
        let files = parse_project_json(&page, json.as_bytes()).unwrap();
        assert_eq!(files.len(), 3);
        let f = &files[0];
        assert_eq!(
            f.url.as_str(),
            "http://127.0.0.1:1/f/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(f.sha256.map(|d| d.to_hex()).as_deref(), Some(H1));
        assert_eq!(
            (f.size, f.requires_python.as_deref(), f.yanked.as_deref()),
            (Some(123), Some(">=3.8"), None)
        );
        assert_eq!(
            f.metadata_sha256.map(|m| m.map(|d| d.to_hex())),
            Some(Some(H2.to_string()))
        );
        let f = &files[1];
        assert_eq!(f.url.as_str(), "https://elsewhere/demo-0.9.tar.gz");
        assert_eq!(
            (f.sha256, f.yanked.as_deref(), f.metadata_sha256),
            (None, Some("bad build"), Some(None))
        );
        let f = &files[2];
        assert_eq!(
            f.sha256.map(|d| d.to_hex()).as_deref(),
            Some(H1),
            "uppercase hex accepted"
        );
        assert_eq!(
            (
                f.yanked.as_deref(),
                f.metadata_sha256,
                f.requires_python.as_deref()
            ),
            (Some(""), None, None)
        );
    }

    #[test]
    fn rejects_malformed_json() {
        let page = Url::parse("http://h/simple/demo/").unwrap();
        assert!(parse_project_json(&page, b"{\"files\": 3}").is_err());
        assert!(parse_project_json(&page, b"<html>").is_err());
        assert!(parse_project_json(&page, b"{}").unwrap().is_empty());
    }
}
