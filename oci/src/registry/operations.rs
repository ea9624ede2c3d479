//! The distribution API's operations on blobs, manifests and referrers, over the client's
//! authenticated, retried requests (`client.rs`).

use std::io::{Read, Write};
use std::path::Path;

use envpack_layers::digest::{HashingWriter, Sha256Digest};
use reqwest::Method;

use super::client::{
    error_body, header, read_limited, FetchedManifest, Mount, Payload, RegistryClient,
    MANIFEST_ACCEPT,
};
use crate::error::{OciError, Result};
use crate::image::MAX_MANIFEST_BYTES;

impl RegistryClient {
    /// `HEAD /v2/<repo>/blobs/<digest>`: whether the repository has the blob.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self.send_expect(Method::HEAD, &url, &[], &Payload::Empty, &[200, 404])?;
        Ok(resp.status().as_u16() == 200)
    }

    /// Asks the registry to link `digest` from repository `from` into `repo`.
    pub fn mount_blob(&self, repo: &str, digest: &str, from: &str) -> Result<Mount> {
        let mut url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let resp = self.send_expect(Method::POST, &url, &[], &Payload::Empty, &[201, 202])?;
        if resp.status().as_u16() == 201 {
            return Ok(Mount::Mounted);
        }
        let loc = header(&resp, "location").ok_or_else(|| OciError::Protocol {
            what: format!("POST {url}"),
            detail: "202 without Location".into(),
        })?;
        Ok(Mount::Upload(loc.to_string()))
    }

    /// Uploads the file at `path` as blob `digest` (monolithic PUT streamed from disk). A
    /// session from a failed mount can be passed in; retries start a fresh session.
    pub fn upload_blob(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
        size: u64,
        mut session: Option<String>,
    ) -> Result<()> {
        let what = format!("uploading {digest} to {}/{repo}", self.registry);
        self.retry.run(&what, |_| {
            let loc = match session.take() {
                Some(l) => l,
                None => self.start_upload(repo)?,
            };
            let mut url = self.location(&loc)?;
            url.query_pairs_mut().append_pair("digest", digest);
            let mut resp = self.send(Method::PUT, &url, &[], &Payload::File(path, size))?;
            let status = resp.status().as_u16();
            if status != 201 {
                return Err(OciError::Status {
                    method: "PUT".into(),
                    url: url.to_string(),
                    status,
                    body: error_body(&mut resp),
                });
            }
            if let Some(d) = header(&resp, "docker-content-digest") {
                if d != digest {
                    return Err(OciError::DigestMismatch {
                        what: format!("blob uploaded to {}/{repo}", self.registry),
                        expected: digest.to_string(),
                        actual: d.to_string(),
                    });
                }
            }
            Ok(())
        })
    }

    fn start_upload(&self, repo: &str) -> Result<String> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let resp = self.send_expect(Method::POST, &url, &[], &Payload::Empty, &[202])?;
        header(&resp, "location")
            .map(str::to_string)
            .ok_or_else(|| OciError::Protocol {
                what: format!("POST {url}"),
                detail: "202 without Location".into(),
            })
    }

    /// `HEAD` a manifest: its digest if the registry has it.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<String>> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let resp = self.send_expect(
            Method::HEAD,
            &url,
            &[("Accept", MANIFEST_ACCEPT)],
            &Payload::Empty,
            &[200, 404],
        )?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        Ok(header(&resp, "docker-content-digest").map(str::to_string))
    }

    /// Puts `bytes` as a manifest under `reference` (tag or digest); checks the registry
    /// computed the same digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let digest = Sha256Digest::of_bytes(bytes).to_string();
        let resp = self.send_expect(
            Method::PUT,
            &url,
            &[],
            &Payload::Bytes(bytes, media_type),
            &[201],
        )?;
        if let Some(d) = header(&resp, "docker-content-digest") {
            if d != digest {
                return Err(OciError::DigestMismatch {
                    what: format!("manifest pushed to {}/{repo}:{reference}", self.registry),
                    expected: digest,
                    actual: d.to_string(),
                });
            }
        }
        Ok(digest)
    }

    /// Gets a manifest; when `reference` is a digest the bytes must hash to it.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut resp = self.send_expect(
            Method::GET,
            &url,
            &[("Accept", MANIFEST_ACCEPT)],
            &Payload::Empty,
            &[200],
        )?;
        let media_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
            .unwrap_or_default();
        let bytes = read_limited(&mut resp, MAX_MANIFEST_BYTES, url.as_str())?;
        let digest = Sha256Digest::of_bytes(&bytes).to_string();
        if reference.starts_with("sha256:") && digest != reference {
            return Err(OciError::DigestMismatch {
                what: format!("manifest {}/{repo}@{reference}", self.registry),
                expected: reference.to_string(),
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Downloads blob `digest` (`size` bytes) into `dest`, hashing as it streams; a wrong
    /// digest or size is an error and leaves no file behind.
    pub fn get_blob_to(&self, repo: &str, digest: &str, size: u64, dest: &Path) -> Result<()> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let what = format!("GET {url}");
        let result = self.retry.run(&what, |_| {
            let mut resp = self.send_expect(Method::GET, &url, &[], &Payload::Empty, &[200])?;
            let file = fs_err::File::create(dest)?;
            let mut w = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
            let mut r = (&mut resp).take(size.saturating_add(1));
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        return Err(OciError::Transport {
                            method: "GET".into(),
                            url: url.to_string(),
                            detail: format!(
                                "reading the body: {}",
                                envpack_net::describe_error(&e)
                            ),
                            attempts: 1,
                        })
                    }
                };
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n])?;
            }
            let (actual, got, buffered) = w.into_parts();
            let file = buffered
                .into_inner()
                .map_err(|e| OciError::Io(e.into_error()))?;
            file.sync_all()?;
            if got != size || actual.to_string() != digest {
                return Err(OciError::DigestMismatch {
                    what: format!(
                        "blob {}/{repo}@{digest} ({got} of {size} bytes)",
                        self.registry
                    ),
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            Ok(())
        });
        if result.is_err() {
            let _ = fs_err::remove_file(dest);
        }
        result
    }

    /// The referrers index the registry's referrers API gives for `digest` in `repo`, or none
    /// when the registry has no such API (a 404, as distribution 2.8 answers).
    pub fn get_referrers(&self, repo: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(&format!("v2/{repo}/referrers/{digest}"))?;
        let mut resp = self.send_expect(
            Method::GET,
            &url,
            &[("Accept", "application/vnd.oci.image.index.v1+json")],
            &Payload::Empty,
            &[200, 404],
        )?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        Ok(Some(read_limited(
            &mut resp,
            MAX_MANIFEST_BYTES,
            url.as_str(),
        )?))
    }

    /// Whether the registry serves the referrers API for `repo` (distribution 2.8 doesn't).
    pub fn referrers_api(&self, repo: &str, digest: &str) -> Result<bool> {
        Ok(self.get_referrers(repo, digest)?.is_some())
    }
}
