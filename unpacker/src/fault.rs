//! Named crash points for the crash-consistency tests.
//!
//! A kill "somewhere between two steps" cannot be aimed by timing alone (the steps take
//! microseconds), so the tests set `ENVPACK_UNPACK_ABORT_AT=<point>` and the process aborts
//! right there, as a SIGKILL or power loss would leave it. Unset, this costs one environment
//! lookup per point.

/// Aborts the process if `ENVPACK_UNPACK_ABORT_AT` names `point`.
pub fn point(point: &str) {
    if std::env::var_os("ENVPACK_UNPACK_ABORT_AT").is_some_and(|v| v == point) {
        std::process::abort();
    }
}
