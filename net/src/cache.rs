//! Content-addressed download cache: every blob is stored under its sha256 and re-hashed on use.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envpack_layers::digest::{HashingWriter, Sha256Digest};
use url::Url;

use sha2::Digest as _;

use crate::http::{DownloadSink, HttpClient};
use crate::pool::SingleFlight;
use crate::NetError;

/// A verified file in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedBlob {
    /// Where it lives (do not modify).
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: Sha256Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// The cache directory: `blobs/sha256/<hex>` and `tmp/`.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Downloads in progress, by URL: a second thread asking for the same file waits for the
    /// first one, then (the sha256 being known) takes its blob instead of downloading again.
    downloads: Arc<SingleFlight<String>>,
    /// Corrupt entries being judged, by sha256: only the file there now is ever removed, so a
    /// thread that hashed a corrupt file can't delete the good one another thread put back.
    judging: Arc<SingleFlight<Sha256Digest>>,
}

/// Picks the cache root from the explicit path or the environment, in precedence order.
fn cache_root(
    explicit: Option<&Path>,
    envpack_dir: Option<String>,
    xdg: Option<String>,
    home: Option<String>,
) -> Option<PathBuf> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    explicit
        .map(Path::to_path_buf)
        .or_else(|| nonempty(envpack_dir))
        .or_else(|| nonempty(xdg).map(|p| p.join("envpack")))
        .or_else(|| nonempty(home).map(|p| p.join(".cache").join("envpack")))
}

impl Cache {
    /// Opens (creating) the cache: `explicit` > `ENVPACK_CACHE_DIR` > `$XDG_CACHE_HOME/envpack` > `$HOME/.cache/envpack`.
    pub fn open(explicit: Option<&Path>) -> Result<Cache, NetError> {
        let var = |k: &str| std::env::var(k).ok();
        let home = var("HOME").or_else(|| var("USERPROFILE"));
        let root = cache_root(
            explicit,
            var("ENVPACK_CACHE_DIR"),
            var("XDG_CACHE_HOME"),
            home,
        )
        .ok_or(NetError::NoLocation)?;
        fs_err::create_dir_all(root.join("blobs").join("sha256"))?;
        fs_err::create_dir_all(root.join("tmp"))?;
        Ok(Cache {
            root,
            downloads: Arc::new(SingleFlight::new()),
            judging: Arc::new(SingleFlight::new()),
        })
    }

    /// The cache root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(sha256.to_hex())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Of `files` (sha256 if known, size), the ones not stored yet: announced to `http`'s
    /// meter as bytes to come; returns how many and their bytes, `None` when all are stored.
    /// Presence is not checked here (`fetch` does that): this only sizes a progress bar.
    pub fn announce_downloads(
        &self,
        http: &HttpClient,
        files: impl IntoIterator<Item = (Option<Sha256Digest>, u64)>,
    ) -> Option<(usize, u64)> {
        let (mut count, mut bytes) = (0, 0);
        for (sha, size) in files {
            if sha.is_none_or(|s| !self.blob_path(&s).is_file()) {
                count += 1;
                bytes += size;
            }
        }
        (count > 0).then(|| {
            http.meter().expect(bytes);
            (count, bytes)
        })
    }

    /// The verified blob with `sha256`, if present; a corrupt entry is deleted and reported absent.
    pub fn get(&self, sha256: &Sha256Digest) -> Result<Option<PathBuf>, NetError> {
        Ok(self.get_blob(sha256)?.map(|b| b.path))
    }

    /// The bytes of the blob with `sha256`, read once and checked as read (for small documents
    /// used right away: nothing can change them between the check and the use); a corrupt
    /// entry is deleted and reported absent.
    pub fn read(&self, sha256: &Sha256Digest) -> Result<Option<Vec<u8>>, NetError> {
        let path = self.blob_path(sha256);
        for _ in 0..2 {
            let bytes = match fs_err::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if Sha256Digest::of_bytes(&bytes) == *sha256 {
                return Ok(Some(bytes));
            }
            if self.judge(sha256)?.is_none() {
                return Ok(None);
            }
            // Another thread put a good copy back meanwhile: read that one, checked again.
        }
        Ok(None)
    }

    /// A blob whose file just hashed wrong: under the key's flight, the file there now is
    /// hashed again and removed only if it is still wrong (another thread may have removed it
    /// or put a good copy back meanwhile).
    fn judge(&self, sha256: &Sha256Digest) -> Result<Option<CachedBlob>, NetError> {
        let path = self.blob_path(sha256);
        self.judging.run(sha256, || {
            if !path.is_file() {
                return Ok(None);
            }
            let (actual, size) = Sha256Digest::of_file(&path)?;
            if actual == *sha256 {
                return Ok(Some(CachedBlob {
                    path: path.clone(),
                    sha256: actual,
                    size,
                }));
            }
            tracing::warn!(path = %path.display(), expected = %sha256, %actual, "corrupt cache entry removed");
            match fs_err::remove_file(&path) {
                Ok(()) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn get_blob(&self, sha256: &Sha256Digest) -> Result<Option<CachedBlob>, NetError> {
        let path = self.blob_path(sha256);
        if !path.is_file() {
            return Ok(None);
        }
        let (actual, size) = Sha256Digest::of_file(&path)?;
        if actual != *sha256 {
            return self.judge(sha256);
        }
        Ok(Some(CachedBlob {
            path,
            sha256: actual,
            size,
        }))
    }

    /// Returns the blob for `url`, downloading (and verifying against `expect`) only on a miss.
    pub fn fetch(
        &self,
        http: &HttpClient,
        url: &Url,
        expect: Option<(Sha256Digest, Option<u64>)>,
    ) -> Result<CachedBlob, NetError> {
        let hit = || -> Result<Option<CachedBlob>, NetError> {
            match &expect {
                Some((sha, _)) => self.get_blob(sha),
                None => Ok(None),
            }
        };
        if let Some(hit) = hit()? {
            tracing::debug!(%url, "cache hit");
            return Ok(hit);
        }
        self.downloads.run(&url.to_string(), || {
            // Another thread may have stored it while this one waited.
            if let Some(hit) = hit()? {
                return Ok(hit);
            }
            // A pinned size bounds the body: a source that sends more (or never stops, like
            // a `file://` link to /dev/zero) is cut off there instead of filling the disk.
            let limit = expect.and_then(|(_, size)| size);
            let tmp = self.download_once(http, url, limit)?;
            self.verify_and_commit(url, tmp, expect)
        })
    }

    /// A temp file in the cache's own tmp dir (same filesystem as the blobs, so renames are atomic).
    fn temp_file(&self, prefix: &str) -> Result<tempfile::NamedTempFile, NetError> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(self.tmp_dir())
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("create temp file in {}: {e}", self.tmp_dir().display()),
                )
                .into()
            })
    }

    fn download_once(
        &self,
        http: &HttpClient,
        url: &Url,
        limit: Option<u64>,
    ) -> Result<Downloaded, NetError> {
        let tmp = self.temp_file("dl-")?;
        let mut sink = FileSink::new(tmp, limit);
        http.download(url, &mut sink)?;
        Ok(sink.finish()?)
    }

    fn verify_and_commit(
        &self,
        url: &Url,
        d: Downloaded,
        expect: Option<(Sha256Digest, Option<u64>)>,
    ) -> Result<CachedBlob, NetError> {
        // Dropping `d.tmp` on any error below deletes the bad file.
        if let Some((expected, size)) = expect {
            if d.sha256 != expected {
                return Err(NetError::DigestMismatch {
                    url: Box::new(url.clone()),
                    expected,
                    actual: d.sha256,
                });
            }
            if let Some(expected) = size.filter(|s| *s != d.size) {
                return Err(NetError::SizeMismatch {
                    url: Box::new(url.clone()),
                    expected,
                    actual: d.size,
                });
            }
        }
        self.commit(d)
    }

    fn commit(&self, d: Downloaded) -> Result<CachedBlob, NetError> {
        let dest = self.blob_path(&d.sha256);
        let tmp_path = d.tmp.path().to_path_buf();
        d.tmp
            .as_file()
            .sync_all()
            .map_err(|e| io::Error::new(e.kind(), format!("fsync {}: {e}", tmp_path.display())))?;
        d.tmp.persist(&dest).map_err(|e| {
            io::Error::new(
                e.error.kind(),
                format!(
                    "rename {} to {}: {}",
                    tmp_path.display(),
                    dest.display(),
                    e.error
                ),
            )
        })?;
        Ok(CachedBlob {
            path: dest,
            sha256: d.sha256,
            size: d.size,
        })
    }

    /// Copies `src` into the cache (hashing it) and returns the blob.
    pub fn insert_file(&self, src: &Path) -> Result<CachedBlob, NetError> {
        let tmp = self.temp_file("in-")?;
        let mut w = HashingWriter::new(io::BufWriter::new(tmp));
        let mut f = fs_err::File::open(src)?;
        io::copy(&mut f, &mut w)
            .map_err(|e| io::Error::new(e.kind(), format!("copy {}: {e}", src.display())))?;
        w.flush()?;
        let (sha256, size, buf) = w.into_parts();
        let tmp = buf.into_inner().map_err(|e| {
            io::Error::new(
                e.error().kind(),
                format!("copy {}: {}", src.display(), e.error()),
            )
        })?;
        self.commit(Downloaded { tmp, sha256, size })
    }

    /// A fresh temporary directory under the cache (same filesystem as the blobs).
    pub fn scratch_dir(&self) -> Result<tempfile::TempDir, NetError> {
        tempfile::Builder::new()
            .prefix("scratch-")
            .tempdir_in(self.tmp_dir())
            .map_err(|e| {
                NetError::Io(io::Error::new(
                    e.kind(),
                    format!("create dir in {}: {e}", self.tmp_dir().display()),
                ))
            })
    }
}

/// A download's temp file, hashed as it is written; a reset truncates it and starts the hash over.
struct FileSink {
    file: io::BufWriter<tempfile::NamedTempFile>,
    hasher: sha2::Sha256,
    len: u64,
    /// The most bytes accepted (the pinned size).
    limit: Option<u64>,
}

impl FileSink {
    fn new(tmp: tempfile::NamedTempFile, limit: Option<u64>) -> Self {
        FileSink {
            file: io::BufWriter::with_capacity(1 << 20, tmp),
            hasher: sha2::Sha256::new(),
            len: 0,
            limit,
        }
    }

    fn finish(self) -> io::Result<Downloaded> {
        let path = self.file.get_ref().path().to_path_buf();
        let tmp = self.file.into_inner().map_err(|e| {
            io::Error::new(
                e.error().kind(),
                format!("write {}: {}", path.display(), e.error()),
            )
        })?;
        Ok(Downloaded {
            tmp,
            sha256: Sha256Digest(self.hasher.finalize().into()),
            size: self.len,
        })
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.limit.filter(|l| self.len + buf.len() as u64 > *l) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the body is longer than the {limit} bytes its pin says"),
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl DownloadSink for FileSink {
    fn written(&self) -> u64 {
        self.len
    }
    fn reset(&mut self) -> io::Result<()> {
        use std::io::Seek;
        self.file.flush()?;
        let f = self.file.get_mut().as_file_mut();
        f.set_len(0)?;
        f.rewind()?;
        self.hasher = sha2::Sha256::new();
        self.len = 0;
        Ok(())
    }
}

/// A hashed download still in its temp file.
struct Downloaded {
    tmp: tempfile::NamedTempFile,
    sha256: Sha256Digest,
    size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpConfig;

    fn file_url(p: &Path) -> Url {
        Url::from_file_path(p).unwrap()
    }

    #[test]
    fn root_precedence() {
        let s = |v: &str| Some(v.to_string());
        let p = |v: &str| Some(PathBuf::from(v));
        assert_eq!(
            cache_root(Some(Path::new("/x")), s("/e"), s("/x2"), s("/h")),
            p("/x")
        );
        assert_eq!(cache_root(None, s("/e"), s("/xdg"), s("/h")), p("/e"));
        assert_eq!(
            cache_root(None, s(""), s("/xdg"), s("/h")),
            p("/xdg/envpack")
        );
        assert_eq!(
            cache_root(None, None, None, s("/h")),
            p("/h/.cache/envpack")
        );
        assert_eq!(cache_root(None, None, None, None), None);
    }

    #[test]
    fn fetch_verifies_stores_and_hits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(&dir.path().join("c"))).unwrap();
        let src = dir.path().join("a.whl");
        std::fs::write(&src, b"wheel bytes").unwrap();
        let http = HttpClient::new(HttpConfig {
            offline: true,
            ..HttpConfig::default()
        });
        let sha = Sha256Digest::of_bytes(b"wheel bytes");
        let blob = cache
            .fetch(&http, &file_url(&src), Some((sha, Some(11))))
            .unwrap();
        assert_eq!((blob.sha256, blob.size), (sha, 11));
        assert_eq!(std::fs::read(&blob.path).unwrap(), b"wheel bytes");
        // The download went through the client's meter; a stored file is not announced again.
        assert_eq!(http.meter().progress(), (11, 0));
        let other = Sha256Digest::of_bytes(b"other");
        let announced =
            cache.announce_downloads(&http, [(Some(sha), 11), (Some(other), 5), (None, 7)]);
        assert_eq!(announced, Some((2, 12)));
        assert_eq!(http.meter().progress(), (11, 12));
        assert_eq!(cache.announce_downloads(&http, [(Some(sha), 11)]), None);
        // A hit needs no source at all.
        std::fs::remove_file(&src).unwrap();
        assert_eq!(
            cache
                .fetch(&http, &file_url(&src), Some((sha, None)))
                .unwrap()
                .path,
            blob.path
        );
        assert_eq!(cache.get(&sha).unwrap(), Some(blob.path.clone()));
        // Corruption is detected, removed and reported absent.
        std::fs::write(&blob.path, b"evil").unwrap();
        assert_eq!(cache.get(&sha).unwrap(), None);
        assert!(!blob.path.exists());
    }

    #[test]
    fn a_corrupt_entry_is_judged_by_the_file_there_now() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(&dir.path().join("c"))).unwrap();
        let src = dir.path().join("a.whl");
        std::fs::write(&src, b"good bytes").unwrap();
        let good = cache.insert_file(&src).unwrap();
        // A thread that hashed a corrupt copy finds a good one put back meanwhile: kept.
        assert_eq!(cache.judge(&good.sha256).unwrap(), Some(good.clone()));
        assert_eq!(std::fs::read(&good.path).unwrap(), b"good bytes");
        // Still corrupt: removed; already removed by another thread: no error either.
        std::fs::write(&good.path, b"evil").unwrap();
        assert_eq!(cache.judge(&good.sha256).unwrap(), None);
        assert!(!good.path.exists());
        assert_eq!(cache.judge(&good.sha256).unwrap(), None);
        // Many threads meeting one corrupt entry at once: none fails.
        cache.insert_file(&src).unwrap();
        std::fs::write(&good.path, b"evil").unwrap();
        let seen = crate::parallel_map(8, &[(); 8], |_| cache.get(&good.sha256));
        assert!(seen.iter().all(|r| matches!(r, Ok(None))), "{seen:?}");
    }

    #[test]
    fn read_returns_checked_bytes_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(&dir.path().join("c"))).unwrap();
        let src = dir.path().join("manifest.json");
        std::fs::write(&src, b"{}").unwrap();
        let blob = cache.insert_file(&src).unwrap();
        assert_eq!(
            cache.read(&blob.sha256).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(
            cache.read(&Sha256Digest::of_bytes(b"absent")).unwrap(),
            None
        );
        std::fs::write(&blob.path, b"evil").unwrap();
        assert_eq!(cache.read(&blob.sha256).unwrap(), None);
        assert!(!blob.path.exists());
    }

    #[test]
    fn mismatches_keep_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(&dir.path().join("c"))).unwrap();
        let src = dir.path().join("a");
        std::fs::write(&src, b"actual").unwrap();
        let http = HttpClient::new(HttpConfig::default());
        let wrong = Sha256Digest::of_bytes(b"other");
        let e = cache
            .fetch(&http, &file_url(&src), Some((wrong, None)))
            .unwrap_err();
        assert!(matches!(e, NetError::DigestMismatch { .. }), "{e}");
        assert!(e.to_string().contains("a"));
        let right = Sha256Digest::of_bytes(b"actual");
        let e = cache
            .fetch(&http, &file_url(&src), Some((right, Some(99))))
            .unwrap_err();
        assert!(
            matches!(
                e,
                NetError::SizeMismatch {
                    expected: 99,
                    actual: 6,
                    ..
                }
            ),
            "{e}"
        );
        let blobs: Vec<_> = std::fs::read_dir(cache.root().join("blobs/sha256"))
            .unwrap()
            .collect();
        let tmps: Vec<_> = std::fs::read_dir(cache.root().join("tmp"))
            .unwrap()
            .collect();
        assert!(blobs.is_empty() && tmps.is_empty());
        // Without an expectation the file is hashed on download.
        let blob = cache.fetch(&http, &file_url(&src), None).unwrap();
        assert_eq!(blob.sha256, right);
    }

    #[test]
    fn insert_and_scratch() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(&dir.path().join("c"))).unwrap();
        let src = dir.path().join("built.whl");
        std::fs::write(&src, b"built").unwrap();
        let blob = cache.insert_file(&src).unwrap();
        assert_eq!(blob.sha256, Sha256Digest::of_bytes(b"built"));
        assert!(blob.path.starts_with(cache.root()));
        let s = cache.scratch_dir().unwrap();
        assert!(s.path().starts_with(cache.root().join("tmp")));
        assert!(cache
            .insert_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string()
            .contains("missing"));
    }
}
