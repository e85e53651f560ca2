//! How long a failed message stays invisible before it is tried again.

use std::time::Duration;

/// The longest visibility SQS allows, and the cap of the exponential policy.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// The retry delay of a FAILED message (RETRIED messages use the delay their handler asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackoffPolicy {
    /// Always the same delay (the seed's default policy, 5 s).
    Fixed(Duration),
    /// Random whole seconds in `1..=2^receive_count - 1`, capped at `cap` (12 h at most), as
    /// the seed's exponential policy.
    Exponential {
        /// The longest delay.
        cap: Duration,
    },
    /// Exponential with a base and an equal jitter, as the seed's
    /// `ExponentialBackoffBaseJitterPolicy`: on the n-th receive, `n + rand(0..=s/2)` whole
    /// seconds where `s = rand(n..=2^n)`, capped at `cap` (12 h at most): 1–2 s after the
    /// first receive, 2–4 s after the second, 3–7 s, 4–12 s, 5–21 s...
    ExponentialBaseJitter {
        /// The longest delay.
        cap: Duration,
    },
}

/// A backoff policy named as the seed names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a backoff policy: use NaiveBackoffPolicy (fixed), ExponentialBackoffPolicy \
     or ExponentialBackoffBaseJitterPolicy (or fixed, exponential, exponential-jitter)"
)]
pub struct UnknownBackoffPolicy(pub String);

impl Default for BackoffPolicy {
    fn default() -> BackoffPolicy {
        BackoffPolicy::Fixed(Duration::from_secs(5))
    }
}

impl BackoffPolicy {
    /// The exponential policy with the 12 h cap.
    pub fn exponential() -> BackoffPolicy {
        BackoffPolicy::Exponential { cap: MAX_VISIBILITY }
    }

    /// The exponential policy with base and jitter, with the 12 h cap.
    pub fn exponential_base_jitter() -> BackoffPolicy {
        BackoffPolicy::ExponentialBaseJitter { cap: MAX_VISIBILITY }
    }

    /// The policy the seed's configuration names (`{NAME}__SQS_CONSUMER__BACKOFF_POLICY`), with
    /// the fixed policy's delay (`MESSAGE_RETRY_VISIBILITY_TIMEOUT_SECONDS`, which the seed's
    /// exponential policies ignore too). Our short names work as well: `fixed`, `exponential`,
    /// `exponential-jitter`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pubsub_core::backoff::BackoffPolicy;
    ///
    /// let five = Duration::from_secs(5);
    /// assert_eq!(BackoffPolicy::named("NaiveBackoffPolicy", five), Ok(BackoffPolicy::Fixed(five)));
    /// assert_eq!(BackoffPolicy::named("exponential", five), Ok(BackoffPolicy::exponential()));
    /// assert!(BackoffPolicy::named("Linear", five).is_err());
    /// ```
    pub fn named(name: &str, fixed_delay: Duration) -> Result<BackoffPolicy, UnknownBackoffPolicy> {
        match name.trim() {
            "NaiveBackoffPolicy" | "fixed" => Ok(BackoffPolicy::Fixed(fixed_delay)),
            "ExponentialBackoffPolicy" | "exponential" => Ok(BackoffPolicy::exponential()),
            "ExponentialBackoffBaseJitterPolicy" | "exponential-jitter" => {
                Ok(BackoffPolicy::exponential_base_jitter())
            }
            other => Err(UnknownBackoffPolicy(other.to_owned())),
        }
    }

    /// The delay before the next attempt of a message received `receive_count` times.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pubsub_core::backoff::BackoffPolicy;
    ///
    /// assert_eq!(BackoffPolicy::default().delay(3), Duration::from_secs(5));
    /// let d = BackoffPolicy::exponential().delay(3); // 1..=7 s
    /// assert!((1..=7).contains(&d.as_secs()));
    /// ```
    pub fn delay(&self, receive_count: u32) -> Duration {
        match *self {
            BackoffPolicy::Fixed(delay) => delay.min(MAX_VISIBILITY),
            BackoffPolicy::Exponential { cap } => {
                let cap = cap.min(MAX_VISIBILITY).as_secs().max(1);
                let upper = 1u64.checked_shl(receive_count.max(1)).map_or(u64::MAX, |p| p - 1).clamp(1, cap);
                Duration::from_secs(fastrand::u64(1..=upper))
            }
            BackoffPolicy::ExponentialBaseJitter { cap } => {
                let cap = cap.min(MAX_VISIBILITY).as_secs().max(1);
                let base = u64::from(receive_count.max(1));
                // Past 2^43 s the cap (12 h at most) has long won: no need to go higher.
                let upper = 1u64.checked_shl(receive_count.max(1)).unwrap_or(u64::MAX).min(1 << 43).max(base);
                let scaling = fastrand::u64(base..=upper);
                Duration::from_secs((base + fastrand::u64(0..=scaling / 2)).min(cap))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_stays_in_its_window_and_under_the_cap() {
        let policy = BackoffPolicy::exponential();
        for receive_count in 1..70 {
            let upper = if receive_count >= 16 { 43_200 } else { (1u64 << receive_count) - 1 };
            for _ in 0..50 {
                let secs = policy.delay(receive_count).as_secs();
                assert!((1..=upper.min(43_200)).contains(&secs), "{receive_count}: {secs}");
            }
        }
        assert_eq!(policy.delay(1), Duration::from_secs(1));
        let capped = BackoffPolicy::Exponential { cap: Duration::from_secs(3) };
        assert!((0..200).all(|_| capped.delay(10) <= Duration::from_secs(3)));
    }

    #[test]
    fn base_jitter_stays_in_the_seeds_windows_and_under_the_cap() {
        let policy = BackoffPolicy::exponential_base_jitter();
        // The seed's own table: 1-2 s, 2-4 s, 3-7 s, 4-12 s, 5-21 s.
        for (receive_count, low, high) in [(1, 1, 2), (2, 2, 4), (3, 3, 7), (4, 4, 12), (5, 5, 21)] {
            let delays: Vec<u64> = (0..2000).map(|_| policy.delay(receive_count).as_secs()).collect();
            assert!(delays.iter().all(|secs| (low..=high).contains(secs)), "{receive_count}: {delays:?}");
            // Both ends come up in 2,000 draws for the first three (the top of the third has a
            // chance of 1 in 30 a draw); further up the top gets too rare to wait for.
            if receive_count <= 3 {
                assert!(
                    delays.contains(&low) && delays.contains(&high),
                    "{receive_count}: both ends reached"
                );
            }
        }
        assert!((0..200).all(|_| policy.delay(200) <= MAX_VISIBILITY));
        let capped = BackoffPolicy::ExponentialBaseJitter { cap: Duration::from_secs(3) };
        assert!((0..200).all(|_| capped.delay(10) == Duration::from_secs(3)));
    }

    #[test]
    fn fixed_is_fixed_and_capped() {
        assert_eq!(BackoffPolicy::Fixed(Duration::from_secs(9)).delay(7), Duration::from_secs(9));
        assert_eq!(BackoffPolicy::Fixed(Duration::from_secs(1 << 20)).delay(1), MAX_VISIBILITY);
    }
}
