//! How far a client's downloads have come, for progress bars: counters any download thread adds
//! to and the CLI reads, rather than a callback passed through every layer between them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes expected and received by a client's downloads (clones share the counts).
#[derive(Debug, Clone, Default)]
pub struct Meter {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    expected: AtomicU64,
    received: AtomicU64,
}

impl Meter {
    /// Announces `bytes` more to come (downloads about to start).
    pub fn expect(&self, bytes: u64) {
        self.counts.expected.fetch_add(bytes, Ordering::Relaxed);
    }

    /// (received, expected) so far; received may pass expected when a size was not known.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.counts.received.load(Ordering::Relaxed),
            self.counts.expected.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn received(&self, bytes: u64) {
        self.counts.received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A download that starts over takes back what it had received.
    pub(crate) fn taken_back(&self, bytes: u64) {
        let _ = self
            .counts
            .received
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_counts_and_a_restart_takes_back() {
        let m = Meter::default();
        let c = m.clone();
        m.expect(100);
        c.received(60);
        assert_eq!(m.progress(), (60, 100));
        c.taken_back(80);
        assert_eq!(m.progress(), (0, 100));
    }
}
