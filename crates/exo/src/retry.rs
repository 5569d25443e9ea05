//! Retry policy: which failures are retried and how long to wait. Pure functions, so the
//! waits can be tested without a clock.

use std::time::Duration;

/// Bounds for retrying throttled (429), failing (5xx) or unreachable requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub max_attempts: u32,
    /// Back-off before the second try; doubles each try.
    pub base_delay: Duration,
    /// Upper bound of one back-off.
    pub max_delay: Duration,
    /// Upper bound honoured for a server's `Retry-After`.
    pub retry_after_cap: Duration,
    /// How long one request may wait on throttling (429) without using up its tries: while
    /// the waits of its 429 answers add up to no more than this, each 429 is waited out (its
    /// `Retry-After` honoured) and retried without counting against `max_attempts` — the
    /// service is asking to slow down, not failing. Beyond it, 429s count as failed tries.
    pub throttle_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(120),
            throttle_budget: Duration::from_secs(600),
        }
    }
}

/// The least a throttled wait counts against [`RetryPolicy::throttle_budget`], so that a
/// service answering 429 with `Retry-After: 0` over and over still exhausts the budget.
pub const MIN_THROTTLE_CHARGE: Duration = Duration::from_secs(1);

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based), with "equal jitter": half of the
    /// exponential step is fixed, the other half scaled by `jitter` (a number in `[0, 1)`).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let step = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        step / 2 + step.mul_f64(jitter) / 2
    }

    /// The wait a 429 asks for: its `Retry-After`, capped; without a usable header, the
    /// ordinary back-off.
    pub fn throttle_wait(
        &self,
        retry_after: Option<Duration>,
        attempt: u32,
        jitter: f64,
    ) -> Duration {
        match retry_after {
            Some(d) => d.min(self.retry_after_cap),
            None => self.backoff(attempt, jitter),
        }
    }

    /// Whether a throttled (429) answer, after `throttled` already charged to this request,
    /// with a coming wait of `wait`, is waited out for free: `Some(new charge total)`, or
    /// `None` when it counts as a failed try (the budget is spent).
    pub fn free_throttle(&self, throttled: Duration, wait: Duration) -> Option<Duration> {
        let total = throttled.saturating_add(wait.max(MIN_THROTTLE_CHARGE));
        (total <= self.throttle_budget).then_some(total)
    }
}

/// Parses a `Retry-After` value: delay seconds (the Exchange module parses it as a double, so
/// fractions are accepted) or an HTTP date (relative to `now`). `None` when unusable.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    let date = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = date.duration_since(now);
    if delta.is_negative() {
        Some(Duration::ZERO)
    } else {
        Duration::try_from(delta).ok()
    }
}

/// The `Retry-After` of an answer, when it has a usable one.
pub fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()))
}

/// Whether an HTTP status is worth retrying (throttling and server-side failures).
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            retry_after_cap: Duration::from_secs(60),
            throttle_budget: Duration::from_secs(10),
        }
    }

    #[test]
    fn throttling_is_free_until_its_budget_is_spent() {
        let p = policy();
        // Waits are charged at least one second each.
        assert_eq!(
            p.free_throttle(Duration::ZERO, Duration::from_millis(100)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            p.free_throttle(Duration::from_secs(4), Duration::from_secs(6)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            p.free_throttle(Duration::from_secs(4), Duration::from_millis(6001)),
            None
        );
        // Retry-After: 0 over and over still ends: 10 free waits, then none.
        let mut spent = Duration::ZERO;
        let mut free = 0;
        while let Some(total) = p.free_throttle(spent, Duration::ZERO) {
            spent = total;
            free += 1;
        }
        assert_eq!(free, 10);
        let none = RetryPolicy {
            throttle_budget: Duration::ZERO,
            ..p
        };
        assert_eq!(none.free_throttle(Duration::ZERO, Duration::ZERO), None);
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let p = policy();
        let cases = [
            (1, 0.0, 50),
            (1, 0.999_999, 100),
            (2, 0.0, 100),
            (3, 0.0, 200),
            (3, 0.5, 300),
            (5, 0.0, 800),
            (6, 0.0, 1000),
            (60, 0.999_999, 2000),
            (u32::MAX, 0.0, 1000),
        ];
        for (attempt, jitter, millis) in cases {
            let got = p.backoff(attempt, jitter).as_millis();
            assert!(
                got.abs_diff(millis) <= 1,
                "attempt {attempt} jitter {jitter}: {got} ms, want {millis}"
            );
        }
    }

    #[test]
    fn backoff_ignores_bad_jitter() {
        let p = policy();
        assert_eq!(p.backoff(2, f64::NAN), Duration::from_millis(100));
        assert_eq!(p.backoff(2, -3.0), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 7.0), Duration::from_millis(200));
    }

    #[test]
    fn retry_after_values() {
        let now: jiff::Timestamp = "2024-05-22T16:52:10Z".parse().expect("ts");
        let cases: [(&str, Option<u64>); 8] = [
            ("2", Some(2000)),
            ("0.5", Some(500)),
            (" 1.25 ", Some(1250)),
            ("0", Some(0)),
            ("-1", None),
            ("soon", None),
            ("Wed, 22 May 2024 16:52:13 GMT", Some(3000)),
            ("Wed, 22 May 2024 16:52:00 GMT", Some(0)),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_retry_after(text, now).map(|d| d.as_millis() as u64),
                millis,
                "{text:?}"
            );
        }
    }

    #[test]
    fn throttle_wait_caps_retry_after() {
        let p = policy();
        assert_eq!(
            p.throttle_wait(Some(Duration::from_secs(3600)), 1, 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.throttle_wait(Some(Duration::from_millis(1500)), 1, 0.0),
            Duration::from_millis(1500)
        );
        assert_eq!(p.throttle_wait(None, 2, 0.0), p.backoff(2, 0.0));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 501] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
