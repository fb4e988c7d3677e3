//! Deadlines that cannot overflow.
//!
//! `Instant + Duration` panics when the sum is out of the clock's range, and every duration a
//! user configures (ping period, send timeout, shutdown grace) may be `Duration::MAX`. Every
//! deadline is computed here instead, saturating at a point in the far future: a timer set that
//! far never fires in practice, which is what such a setting asks for.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: the far future (tokio uses the same horizon for a timeout that overflows).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `from + after`, or the far future when that is out of range.
pub(crate) fn deadline(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .or_else(|| from.checked_add(FAR_FUTURE))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(deadline(now, Duration::ZERO), now);
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(deadline(now, Duration::MAX), now + FAR_FUTURE);
    }
}
