//! How long a failed message stays invisible before it is tried again.

use std::time::Duration;

/// The longest visibility SQS allows, and the cap of the exponential policy.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// The retry delay of a FAILED message (RETRIED messages use the delay their handler asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffPolicy {
    /// Always the same delay (the seed's default policy, 5 s).
    Fixed(Duration),
    /// Random whole seconds in `1..=2^receive_count - 1`, capped at `cap` (12 h at most), as
    /// the seed's exponential policy.
    Exponential {
        /// The longest delay.
        cap: Duration,
    },
}

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
    fn fixed_is_fixed_and_capped() {
        assert_eq!(BackoffPolicy::Fixed(Duration::from_secs(9)).delay(7), Duration::from_secs(9));
        assert_eq!(BackoffPolicy::Fixed(Duration::from_secs(1 << 20)).delay(1), MAX_VISIBILITY);
    }
}
