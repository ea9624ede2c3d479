//! Creating files in an extraction target, inline or on worker threads.
//!
//! Creating thousands of small files is mostly system-call time, which one thread cannot
//! overlap with decompressing and hashing. [`with_file_writers`] hands checked file contents
//! to workers, so the parsing thread only parses and checks while they create files.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex, OnceLock};

use cap_std::fs::{Dir, File, OpenOptions};

use crate::error::{LayersError, Result};

/// File contents waiting for a worker, at most; keeps peak memory flat whatever the archive.
const IN_FLIGHT_BYTES: u64 = 16 << 20;
/// Files queued per worker, at most (the byte budget usually binds first).
const QUEUE_DEPTH: usize = 256;
/// Files larger than this are written by the parsing thread as they stream, not buffered.
pub const MAX_QUEUED_FILE: u64 = 1 << 20;

/// Creates `path` in `dest` (it must not exist) with mode 0755 or 0644.
/// `name` is the archive entry's name, used in the error for an existing path.
pub(crate) fn create_file(dest: &Dir, name: &str, path: &str, executable: bool) -> Result<File> {
    let mode = if executable { 0o755 } else { 0o644 };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let file = match dest.open_with(path, &opts) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(LayersError::Rejected {
                entry: name.to_string(),
                rule: "something already exists at this path",
            })
        }
        Err(e) => return Err(io_at(e, path)),
    };
    if !umask_keeps(mode) {
        set_file_mode(&file, path, mode)?;
    }
    Ok(file)
}

/// An I/O error that names the entry inside the destination.
pub(crate) fn io_at(e: io::Error, path: &str) -> LayersError {
    LayersError::Io(io::Error::new(e.kind(), format!("extracting {path}: {e}")))
}

/// Whether creating a file with `mode` gives exactly `mode` under this process's umask, so
/// no separate chmod is needed. Unknown umask: false.
fn umask_keeps(mode: u32) -> bool {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    match UMASK.get_or_init(read_umask) {
        Some(mask) => mode & mask == 0,
        None => false,
    }
}

/// The umask as Linux reports it in /proc (reading it with umask(2) would change it for a
/// moment under the feet of other threads).
#[cfg(target_os = "linux")]
fn read_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_umask(&status)
}

#[cfg(not(target_os = "linux"))]
fn read_umask() -> Option<u32> {
    None
}

/// The `Umask:` field of a /proc status file.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_umask(status: &str) -> Option<u32> {
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))?
        .trim();
    u32::from_str_radix(value, 8).ok()
}

#[cfg(unix)]
fn set_file_mode(file: &File, path: &str, mode: u32) -> Result<()> {
    use cap_std::fs::{Permissions, PermissionsExt};
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| io_at(e, path))
}

#[cfg(not(unix))]
fn set_file_mode(_file: &File, _path: &str, _mode: u32) -> Result<()> {
    Ok(())
}

/// Writes `data` as the new file `path`.
fn write_whole(dest: &Dir, job: &Job) -> Result<()> {
    let mut file = create_file(dest, &job.name, &job.path, job.executable)?;
    file.write_all(&job.data).map_err(|e| io_at(e, &job.path))?;
    file.flush().map_err(|e| io_at(e, &job.path))
}

struct Job {
    name: String,
    path: String,
    data: Vec<u8>,
    executable: bool,
}

/// A count of buffered bytes that blocks submitters while it is over [`IN_FLIGHT_BYTES`].
struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
}

impl Budget {
    fn acquire(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        // One file alone may exceed the budget; it then waits for an empty queue.
        while *used > 0 && *used + n > IN_FLIGHT_BYTES {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += n;
    }

    fn release(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// The first write failure; later ones are consequences or noise.
struct Failure {
    set: AtomicBool,
    first: Mutex<Option<LayersError>>,
}

impl Failure {
    fn record(&self, e: LayersError) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e);
        }
        self.set.store(true, Ordering::Release);
    }

    fn happened(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    fn take(&self) -> Option<LayersError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A handle for queueing files to the workers of [`with_file_writers`].
pub struct FileWriters<'a> {
    /// One queue per worker; a directory's files all go to the same one.
    queues: Vec<SyncSender<Job>>,
    budget: &'a Budget,
    failure: &'a Failure,
}

impl std::fmt::Debug for FileWriters<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriters").finish_non_exhaustive()
    }
}

impl FileWriters<'_> {
    /// Queues the new file `path` with `data`; it exists once [`with_file_writers`] returns
    /// `Ok`. Fails fast once a worker has failed.
    pub fn submit(&self, name: &str, path: &str, data: Vec<u8>, executable: bool) -> Result<()> {
        if self.failure.happened() {
            return Err(stopped());
        }
        let n = data.len() as u64;
        self.budget.acquire(n);
        let queue = &self.queues[queue_for(path, self.queues.len())];
        let job = Job {
            name: name.to_string(),
            path: path.to_string(),
            data,
            executable,
        };
        queue.send(job).map_err(|_| {
            self.budget.release(n);
            stopped()
        })
    }
}

/// The queue for `path`: creating files takes a lock on their directory, so workers that
/// share directories mostly wait for each other; spreading directories spreads that lock.
fn queue_for(path: &str, queues: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parent.hash(&mut h);
    (h.finish() % queues.max(1) as u64) as usize
}

fn stopped() -> LayersError {
    LayersError::format("extraction", "stopped after a file could not be written")
}

/// Runs `run` with a pool of `threads` workers creating the files it submits in `dest`, and
/// waits for every queued file. A worker's failure wins over `run`'s result, since `run`
/// usually fails only because of it.
pub fn with_file_writers<T>(
    dest: &Dir,
    threads: usize,
    run: impl FnOnce(&FileWriters) -> Result<T>,
) -> Result<T> {
    let budget = Budget {
        used: Mutex::new(0),
        freed: Condvar::new(),
    };
    let failure = Failure {
        set: AtomicBool::new(false),
        first: Mutex::new(None),
    };
    let out = std::thread::scope(|s| {
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..threads.max(1) {
            let (tx, rx) = sync_channel::<Job>(QUEUE_DEPTH);
            queues.push(tx);
            let (budget, failure) = (&budget, &failure);
            workers.push(s.spawn(move || work(dest, rx, budget, failure)));
        }
        let writers = FileWriters {
            queues,
            budget: &budget,
            failure: &failure,
        };
        let out = run(&writers);
        // Closing the queue lets the workers finish what is in it and stop.
        drop(writers);
        for w in workers {
            if w.join().is_err() {
                failure.record(LayersError::format(
                    "extraction",
                    "a file-writing thread panicked",
                ));
            }
        }
        out
    });
    match failure.take() {
        Some(e) => Err(e),
        None => out,
    }
}

fn work(dest: &Dir, jobs: Receiver<Job>, budget: &Budget, failure: &Failure) {
    for job in jobs {
        // After a failure the queue is drained without writing, so submitters never block.
        if !failure.happened() {
            if let Err(e) = write_whole(dest, &job) {
                failure.record(e);
            }
        }
        budget.release(job.data.len() as u64);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use cap_std::ambient_authority;
    use std::os::unix::fs::PermissionsExt;

    fn open(p: &std::path::Path) -> Dir {
        Dir::open_ambient_dir(p, ambient_authority()).unwrap()
    }

    #[test]
    fn umask_field_table() {
        for (status, want) in [
            ("Name:\tx\nUmask:\t0022\nState:\tR\n", Some(0o022)),
            ("Umask:\t0077\n", Some(0o077)),
            ("Umask:\t0000\n", Some(0)),
            ("Name:\tx\n", None),
            ("Umask:\tzz\n", None),
        ] {
            assert_eq!(parse_umask(status), want, "{status:?}");
        }
    }

    #[test]
    fn every_queued_file_is_written_with_its_mode() {
        let t = tempfile::tempdir().unwrap();
        let dest = open(t.path());
        dest.create_dir("d").unwrap();
        with_file_writers(&dest, 3, |w| {
            for i in 0..500u32 {
                let data = vec![i as u8; (i as usize * 37) % 5000];
                w.submit(&format!("d/f{i}"), &format!("d/f{i}"), data, i % 3 == 0)?;
            }
            Ok(())
        })
        .unwrap();
        for i in 0..500u32 {
            let p = t.path().join(format!("d/f{i}"));
            assert_eq!(
                fs_err::read(&p).unwrap(),
                vec![i as u8; (i as usize * 37) % 5000]
            );
            let mode = fs_err::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if i % 3 == 0 { 0o755 } else { 0o644 }, "{i}");
        }
    }

    #[test]
    fn a_write_failure_wins_and_stops_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let dest = open(t.path());
        fs_err::write(t.path().join("taken"), b"old").unwrap();
        let err = with_file_writers(&dest, 2, |w| {
            w.submit("taken", "taken", b"new".to_vec(), false)?;
            // Keep submitting until the failure is noticed; the submitter never blocks.
            for i in 0..100_000u32 {
                w.submit(&format!("f{i}"), &format!("f{i}"), vec![0u8; 64], false)?;
            }
            Ok(())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("something already exists"),
            "{err}"
        );
        assert_eq!(fs_err::read(t.path().join("taken")).unwrap(), b"old");
    }

    #[test]
    fn a_missing_parent_is_an_error_naming_the_path() {
        let t = tempfile::tempdir().unwrap();
        let dest = open(t.path());
        let err = with_file_writers(&dest, 1, |w| w.submit("nope/f", "nope/f", vec![1], false))
            .unwrap_err();
        assert!(err.to_string().contains("nope/f"), "{err}");
    }

    #[test]
    fn files_larger_than_the_budget_still_go_through() {
        let t = tempfile::tempdir().unwrap();
        let dest = open(t.path());
        let big = (IN_FLIGHT_BYTES + 5) as usize;
        with_file_writers(&dest, 2, |w| {
            w.submit("a", "a", vec![1u8; big], false)?;
            w.submit("b", "b", vec![2u8; big], false)
        })
        .unwrap();
        assert_eq!(
            fs_err::metadata(t.path().join("b")).unwrap().len() as usize,
            big
        );
    }
}
