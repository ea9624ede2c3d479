//! OSV records (the Open Source Vulnerability schema) and a snapshot of them read from a
//! directory of `.json` files or from an `all.zip` such as OSV publishes per ecosystem.
//!
//! Unknown fields are allowed (the schema grows); a file that is not an OSV record is an error
//! naming it, because a gate that skips what it cannot read would pass on a broken database.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

/// Largest record read (the biggest real ones are a few hundred KiB).
const MAX_RECORD_BYTES: u64 = 8 << 20;
/// Largest snapshot read, all records together (PyPI's whole all.zip is ~1 GiB unpacked less).
const MAX_TOTAL_BYTES: u64 = 4 << 30;

/// One OSV record.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// The record id (GHSA-…, PYSEC-…, PSF-…).
    pub id: String,
    /// Last modification time (RFC 3339).
    #[serde(default)]
    pub modified: String,
    /// Set when the record was withdrawn.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability (CVE-…).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line about it.
    #[serde(default)]
    pub summary: Option<String>,
    /// CVSS vectors.
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// What it affects.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Database-specific fields (GHSA puts `severity` here).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// A `severity[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityScore {
    /// CVSS_V2, CVSS_V3, CVSS_V4, Ubuntu.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector.
    pub score: String,
}

/// An `affected[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    /// The package (absent in CPython's own records).
    #[serde(default)]
    pub package: Option<Package>,
    /// Affected version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Affected versions, listed.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package severity and other fields.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    /// Per-package CVSS vectors.
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// PyPI, npm, …
    #[serde(default)]
    pub ecosystem: String,
    /// The package name in its ecosystem.
    #[serde(default)]
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    /// ECOSYSTEM, SEMVER or GIT.
    #[serde(rename = "type")]
    pub kind: String,
    /// The events, in any order.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range: exactly one field is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    /// The first affected version ("0": from the start).
    pub introduced: Option<String>,
    /// The first version with the fix.
    pub fixed: Option<String>,
    /// The last affected version.
    pub last_affected: Option<String>,
    /// An upper limit on where to look (git only).
    pub limit: Option<String>,
}

/// A snapshot of OSV records.
#[derive(Debug, Default)]
pub struct Database {
    /// Where it was read from.
    pub source: PathBuf,
    /// Every record, by id (of a repeated id, the most recently modified copy).
    pub records: BTreeMap<String, Record>,
    /// Bytes read so far.
    read: u64,
}

impl Database {
    /// Reads every `.json` record of a directory (recursively) or of a `.zip`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let meta = fs_err::metadata(path).with_context(|| {
            "the vulnerability database (--vulns) must be an OSV directory or all.zip"
        })?;
        let mut db = Database {
            source: path.to_path_buf(),
            records: BTreeMap::new(),
            read: 0,
        };
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                let entry = entry.with_context(|| format!("reading {}", path.display()))?;
                if entry.file_type().is_file() && is_json(&entry.file_name().to_string_lossy()) {
                    let file = fs_err::File::open(entry.path())?;
                    db.add(file, &entry.path().display().to_string())?;
                }
            }
        } else {
            let file = fs_err::File::open(path)?;
            let mut zip = zip::ZipArchive::new(file).with_context(|| {
                format!(
                    "{} is not a zip (an OSV all.zip) or a directory",
                    path.display()
                )
            })?;
            for i in 0..zip.len() {
                let entry = zip
                    .by_index(i)
                    .with_context(|| format!("reading {}", path.display()))?;
                if entry.is_file() && is_json(entry.name()) {
                    let shown = format!("{}!{}", path.display(), entry.name());
                    db.add(entry, &shown)?;
                }
            }
        }
        if db.records.is_empty() {
            bail!("{}: no OSV records (.json) found", path.display());
        }
        Ok(db)
    }

    fn add(&mut self, reader: impl Read, shown: &str) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {shown}"))?;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            bail!("{shown}: larger than {MAX_RECORD_BYTES} bytes; not an OSV record");
        }
        self.read += bytes.len() as u64;
        if self.read > MAX_TOTAL_BYTES {
            bail!("{shown}: the snapshot holds more than {MAX_TOTAL_BYTES} bytes of records; not an OSV snapshot");
        }
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("{shown}: not an OSV record: {e}"))?;
        if record.id.is_empty() {
            bail!("{shown}: not an OSV record: no id");
        }
        // A stale copy of a record (an older export beside the new one) must not replace it.
        let newer = self
            .records
            .get(&record.id)
            .is_none_or(|old| time_key(&record.modified) >= time_key(&old.modified));
        if newer {
            self.records.insert(record.id.clone(), record);
        }
        Ok(())
    }

    /// The newest `modified` time of any record: how fresh the snapshot is.
    pub fn newest_modified(&self) -> Option<&str> {
        self.records
            .values()
            .map(|r| r.modified.as_str())
            .filter(|m| !m.is_empty())
            .max_by_key(|m| time_key(m))
    }
}

/// An RFC 3339 UTC time (as OSV writes them, `…Z`) as a comparable key: the seconds, then the
/// fraction padded, so `…00Z` sorts before `…00.5Z`.
fn time_key(t: &str) -> (String, String) {
    let t = t.trim_end_matches('Z');
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    (secs.to_owned(), format!("{frac:0<9}"))
}

fn is_json(name: &str) -> bool {
    name.ends_with(".json")
}
