//! The doctor's log directory: `report.json`, each command's output, and a `SUCCESS` marker
//! written only when every check passed.

use std::path::{Path, PathBuf};

use crate::layout::RootLayout;

/// Name of the marker file written when the root is healthy.
pub const SUCCESS_MARKER: &str = "SUCCESS";
/// Name of the JSON report inside the log dir.
pub const REPORT_FILE: &str = "report.json";

/// A directory collecting one doctor run's outputs.
#[derive(Debug, Clone)]
pub struct LogDir {
    path: PathBuf,
}

impl LogDir {
    /// Creates `dir` (or `ROOT/.envpack/doctor/<run-id>` when `None`). An existing dir is
    /// reused, but a stale `SUCCESS` marker in it is removed first.
    pub fn create(layout: &RootLayout, dir: Option<&Path>) -> std::io::Result<Self> {
        let path = match dir {
            Some(d) => d.to_path_buf(),
            None => layout.meta_dir().join("doctor").join(run_id()),
        };
        fs_err::create_dir_all(&path)?;
        let marker = path.join(SUCCESS_MARKER);
        if fs_err::symlink_metadata(&marker).is_ok() {
            fs_err::remove_file(&marker)?;
        }
        Ok(LogDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of a log file named after a check (`<name>.stdout`, …).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A scratch HOME for the commands doctor runs, inside the log dir.
    pub fn home(&self) -> std::io::Result<PathBuf> {
        let home = self.path.join("home");
        fs_err::create_dir_all(&home)?;
        Ok(home)
    }

    /// Writes the report and, when `healthy`, the success marker (last, so its presence means
    /// the report next to it is complete).
    pub fn finish(&self, report_json: &str, healthy: bool) -> std::io::Result<()> {
        fs_err::write(self.file(REPORT_FILE), report_json)?;
        if healthy {
            fs_err::write(self.file(SUCCESS_MARKER), "")?;
        }
        Ok(())
    }
}

/// A sortable, unique-enough run id: UTC time plus the process id.
pub fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:09}-{}",
        utc_stamp(now.as_secs()),
        now.subsec_nanos(),
        std::process::id()
    )
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch.
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil-from-days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_table() {
        for (secs, want) in [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_700_000_000, "20231114T221320Z"),
            (1_798_761_599, "20261231T235959Z"),
        ] {
            assert_eq!(utc_stamp(secs), want, "{secs}");
        }
    }

    #[test]
    fn success_marker_only_when_healthy_and_cleared_on_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let custom = dir.path().join("logs");
        let log = LogDir::create(&layout, Some(&custom)).unwrap();
        log.finish("{}", true).unwrap();
        assert!(custom.join(SUCCESS_MARKER).is_file());
        let log = LogDir::create(&layout, Some(&custom)).unwrap();
        assert!(!custom.join(SUCCESS_MARKER).exists());
        log.finish("{}", false).unwrap();
        assert!(!custom.join(SUCCESS_MARKER).exists());
        assert_eq!(
            fs_err::read_to_string(custom.join(REPORT_FILE)).unwrap(),
            "{}"
        );
        let default = LogDir::create(&layout, None).unwrap();
        assert!(default.path().starts_with(layout.meta_dir().join("doctor")));
    }
}
