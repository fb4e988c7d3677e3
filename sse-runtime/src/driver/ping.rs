//! The ping schedule (a fixed period from the start of the stream, not reset by data) and the
//! default ping message, sse-starlette's comment with a UTC timestamp (SPEC 78-79).

use std::pin::Pin;
use std::task::Context;
use std::time::{Duration, SystemTime};

use bytes::BufMut;
use tokio::time::{Instant, Sleep};

use crate::event::Separator;
use crate::time::deadline;

/// Whether the ping timer fired; if so, it is set to the next period of the stream's schedule.
///
/// Missed periods are skipped, keeping the schedule (tokio's `MissedTickBehavior::Skip`): a
/// stream whose task was held up pings once, then again on its own beat.
pub(super) fn poll_ping(
    timer: Pin<&mut Option<Sleep>>,
    period: Duration,
    cx: &mut Context<'_>,
) -> bool {
    let Some(mut sleep) = timer.as_pin_mut() else {
        return false;
    };
    if sleep.as_mut().poll(cx).is_pending() {
        return false;
    }
    let due = sleep.deadline();
    let now = Instant::now();
    // A timer fires a little late as a matter of course (tokio's wheel counts milliseconds, and
    // a busy task is polled late): within 5 ms the next ping keeps the schedule from the due
    // time, so pings do not drift. Later than that the task was held up, and the missed
    // periods are skipped.
    let next = if now > deadline(due, Duration::from_millis(5)) {
        let behind = (now - due).as_nanos() % period.as_nanos();
        deadline(
            now,
            period - Duration::from_nanos(u64::try_from(behind).unwrap_or(0)),
        )
    } else {
        deadline(due, period)
    };
    // Armed at the next poll, which follows the frame this ping goes out in.
    sleep.reset(next);
    true
}

/// `: ping - 2026-11-24 01:06:23.498993+00:00` + SEP + SEP, as sse-starlette writes it (SPEC 79).
pub(super) fn default_ping(separator: Separator, buf: &mut Vec<u8>) {
    buf.put_slice(ping_comment(SystemTime::now()).as_bytes());
    buf.put_slice(separator.as_bytes());
    buf.put_slice(separator.as_bytes());
}

/// The default ping comment line: Python's `str(datetime.now(timezone.utc))`, that is UTC with
/// microseconds, and no fraction at all when the microseconds are zero.
fn ping_comment(now: SystemTime) -> String {
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    let format = if now.timestamp_subsec_micros() == 0 {
        "%Y-%m-%d %H:%M:%S+00:00"
    } else {
        "%Y-%m-%d %H:%M:%S%.6f+00:00"
    };
    format!(": ping - {}", now.format(format))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::ping_comment;

    #[test]
    fn spec_79_ping_timestamps_match_python_str_of_a_utc_datetime() {
        // 2026-11-24 01:06:23 UTC
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_482_383);
        let micros = at + Duration::from_nanos(498_993_700);
        assert_eq!(
            ping_comment(micros),
            ": ping - 2026-11-24 01:06:23.498993+00:00"
        );
        assert_eq!(ping_comment(at), ": ping - 2026-11-24 01:06:23+00:00");
        let sub_micro = at + Duration::from_nanos(999);
        assert_eq!(
            ping_comment(sub_micro),
            ": ping - 2026-11-24 01:06:23+00:00"
        );
        let one_micro = at + Duration::from_micros(1);
        assert_eq!(
            ping_comment(one_micro),
            ": ping - 2026-11-24 01:06:23.000001+00:00"
        );
    }
}
