//! Named crash points for the crash-consistency and race tests.
//!
//! A kill "somewhere between two steps" cannot be aimed by timing alone (the steps take
//! microseconds), so the tests set `ENVPACK_UNPACK_ABORT_AT=<point>` and the process aborts
//! right there, as a SIGKILL or power loss would leave it; or `ENVPACK_UNPACK_HOOK_AT=<point>`
//! with `ENVPACK_UNPACK_HOOK=<shell command>`, which runs the command there and waits for it
//! (a concurrent writer, made deterministic). Unset, this costs two environment lookups per
//! point.

/// Aborts the process, or runs the test hook, if the environment names `point`.
pub fn point(point: &str) {
    if std::env::var_os("ENVPACK_UNPACK_ABORT_AT").is_some_and(|v| v == point) {
        std::process::abort();
    }
    if std::env::var_os("ENVPACK_UNPACK_HOOK_AT").is_some_and(|v| v == point) {
        if let Some(cmd) = std::env::var_os("ENVPACK_UNPACK_HOOK") {
            let status = std::process::Command::new("sh").arg("-c").arg(cmd).status();
            tracing::warn!(point, ?status, "ran the test hook");
        }
    }
}
