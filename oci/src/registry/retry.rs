//! Bounded retries with exponential backoff for transient registry failures.

use std::time::Duration;

use crate::error::{OciError, Result};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts after the first.
    pub retries: u32,
    /// Delay before the first retry; doubles each time.
    pub first_delay: Duration,
    /// Upper bound on one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX);
        self.first_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// Runs `op` until it succeeds, fails for good, or the retries are used up; `op` gets the
    /// attempt number (1-based). A transport error's attempt count is updated to the total.
    pub fn run<T>(&self, what: &str, mut op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt <= self.retries => {
                    let pause = self.delay(attempt - 1);
                    tracing::warn!("{what}: {e}; retrying in {:.1}s", pause.as_secs_f64());
                    std::thread::sleep(pause);
                }
                Err(OciError::Transport {
                    method,
                    url,
                    detail,
                    ..
                }) => {
                    return Err(OciError::Transport {
                        method,
                        url,
                        detail,
                        attempts: attempt,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn status(code: u16) -> OciError {
        OciError::Status {
            method: "GET".into(),
            url: "u".into(),
            status: code,
            body: String::new(),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0), Duration::from_millis(250));
        assert_eq!(p.delay(1), Duration::from_millis(500));
        assert_eq!(p.delay(3), Duration::from_secs(2));
        assert_eq!(p.delay(10), Duration::from_secs(8));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn retries_transient_errors_only_and_bounded() {
        let mut calls = 0;
        let r = quick(3).run("x", |_| {
            calls += 1;
            if calls < 3 {
                Err(status(503))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<()> = quick(2).run("x", |_| {
            calls += 1;
            Err(status(500))
        });
        assert!(r.is_err());
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<()> = quick(5).run("x", |_| {
            calls += 1;
            Err(status(404))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "a 404 is not retried");

        let r: Result<()> = quick(1).run("x", |_| {
            Err(OciError::Transport {
                method: "GET".into(),
                url: "u".into(),
                detail: "reset".into(),
                attempts: 1,
            })
        });
        assert!(r.unwrap_err().to_string().contains("after 2 attempts"));
    }
}
