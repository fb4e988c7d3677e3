//! Keep-alive pings: SPEC section G (78-87), on tokio's paused clock.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{WITHIN, reader};
use futures_util::stream::{self, StreamExt};
use sse_runtime::testing::ReadError;
use sse_runtime::{DEFAULT_PING_INTERVAL, EventSourceResponse, Separator, ServerSentEvent};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// Checks `: ping - YYYY-MM-DD HH:MM:SS[.ffffff]+00:00` + sep + sep, and that the timestamp is
/// the current UTC time.
fn assert_default_ping(frame: &[u8], sep: Separator) {
    let text = std::str::from_utf8(frame).unwrap();
    let ending = format!("{sep}{sep}");
    let stamp = text
        .strip_prefix(": ping - ")
        .and_then(|rest| rest.strip_suffix(&ending))
        .unwrap_or_else(|| panic!("not a default ping: {text:?}"));
    let stamp = stamp.strip_suffix("+00:00").expect("UTC offset");
    let (seconds, fraction) = match stamp.split_once('.') {
        Some((seconds, fraction)) => (seconds, Some(fraction)),
        None => (stamp, None),
    };
    if let Some(fraction) = fraction {
        assert_eq!(fraction.len(), 6, "microseconds: {text:?}");
        assert!(fraction.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(fraction, "000000", "a zero fraction is left out (SPEC 79)");
    }
    let parsed = chrono::NaiveDateTime::parse_from_str(seconds, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("bad timestamp {seconds:?}: {e}"));
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).naive_utc();
    assert!(
        (now - parsed).num_seconds().abs() < 60,
        "{parsed} is not now ({now})"
    );
}

#[test]
fn spec_51_the_default_period_is_15_seconds() {
    assert_eq!(DEFAULT_PING_INTERVAL, Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn spec_51_79_default_pings_every_15_seconds_with_a_utc_timestamp() {
    let start = Instant::now();
    let mut body = reader(EventSourceResponse::new(stream::pending::<String>()));
    for n in 1..=3 {
        let frame = body.frame(WITHIN).await.unwrap().unwrap();
        assert_eq!(start.elapsed(), n * Duration::from_secs(15));
        assert_default_ping(&frame, Separator::CrLf);
    }
}

#[tokio::test(start_paused = true)]
async fn spec_78_fixed_period_from_the_start_not_reset_by_data() {
    let start = Instant::now();
    // Data at 350 ms; pings at 100, 200, 300 ms, then 400 ms.
    let source = stream::once(async {
        tokio::time::sleep(350 * MS).await;
        "data"
    })
    .chain(stream::pending());
    let mut body = reader(EventSourceResponse::new(source).ping(100 * MS));
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let frame = body.frame(WITHIN).await.unwrap().unwrap();
        let kind = if frame.starts_with(b": ping") {
            "ping"
        } else {
            "data"
        };
        seen.push((kind, start.elapsed().as_millis()));
    }
    assert_eq!(
        seen,
        [
            ("ping", 100),
            ("ping", 200),
            ("ping", 300),
            ("data", 350),
            ("ping", 400)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn frequent_data_does_not_delay_pings() {
    let start = Instant::now();
    let source = stream::iter(0..).then(|i| async move {
        tokio::time::sleep(30 * MS).await;
        i
    });
    let mut body = reader(EventSourceResponse::new(source).ping(100 * MS));
    let mut pings = Vec::new();
    while pings.len() < 3 {
        let frame = body.frame(WITHIN).await.unwrap().unwrap();
        if frame.windows(6).any(|w| w == b": ping") {
            pings.push(start.elapsed().as_millis());
        }
    }
    assert_eq!(pings, [100, 200, 300]);
}

#[tokio::test(start_paused = true)]
async fn spec_80_the_default_ping_uses_the_response_separator() {
    for sep in [Separator::Lf, Separator::Cr, Separator::CrLf] {
        let response = EventSourceResponse::new(stream::pending::<String>())
            .ping(MS)
            .separator(sep);
        let frame = reader(response).frame(WITHIN).await.unwrap().unwrap();
        assert_default_ping(&frame, sep);
    }
}

#[tokio::test(start_paused = true)]
async fn spec_81_ping_count_of_the_upstream_test() {
    // ping=0.2 s and 5 items 0.1 s apart: "ping" appears exactly twice.
    let source = stream::iter(1..=5).then(|i| async move {
        tokio::time::sleep(100 * MS).await;
        i
    });
    let response = EventSourceResponse::new(source).ping(200 * MS);
    let all = reader(response).read_to_end(WITHIN).await.unwrap();
    let text = String::from_utf8(all.to_vec()).unwrap();
    assert_eq!(text.matches("ping").count(), 2, "{text:?}");
    assert_eq!(text.matches("data: ").count(), 5);
}

#[tokio::test(start_paused = true)]
async fn spec_82_a_custom_ping_message_is_called_for_every_ping() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let response = EventSourceResponse::new(stream::pending::<String>())
        .ping(MS)
        .separator(Separator::Lf)
        .ping_message(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ServerSentEvent::new().comment(format!("hi {n}"))
        });
    let mut body = reader(response);
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b": hi 0\n\n"[..]
    );
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b": hi 1\n\n"[..]
    );
}

#[tokio::test(start_paused = true)]
async fn spec_82_a_custom_ping_event_keeps_its_own_separator_if_it_chose_one() {
    let response = EventSourceResponse::new(stream::pending::<String>())
        .ping(MS)
        .separator(Separator::Lf)
        .ping_message(|| {
            ServerSentEvent::new()
                .data("p")
                .event("ping")
                .separator(Separator::CrLf)
        });
    let frame = reader(response).frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(frame, &b"event: ping\r\ndata: p\r\n\r\n"[..]);
}

#[tokio::test(start_paused = true)]
async fn example_04_a_multi_line_ping_comment() {
    let response = EventSourceResponse::new(stream::pending::<String>())
        .ping(3 * MS)
        .ping_message(|| {
            ServerSentEvent::new().comment("invisible ping at\r\n2026-01-01T00:00:00")
        });
    let frame = reader(response).frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(
        frame,
        &b": invisible ping at\r\n: 2026-01-01T00:00:00\r\n\r\n"[..]
    );
}

#[tokio::test(start_paused = true)]
async fn spec_84_fixed_a_zero_period_sends_no_pings_at_all() {
    let response = EventSourceResponse::new(stream::pending::<String>()).ping(Duration::ZERO);
    let mut body = reader(response);
    let waited = body.frame(Duration::from_secs(24 * 3600)).await;
    assert!(matches!(waited, Err(ReadError::Timeout)), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn spec_83_no_ping_after_the_end() {
    let source = stream::once(async {
        tokio::time::sleep(150 * MS).await;
        "last"
    });
    let mut body = reader(EventSourceResponse::new(source).ping(100 * MS));
    let all = body.read_to_end(WITHIN).await.unwrap();
    assert!(all.starts_with(b": ping"));
    assert!(all.ends_with(b"data: last\r\n\r\n"));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn spec_87_a_panicking_ping_message_fails_only_this_response() {
    let response = EventSourceResponse::new(stream::pending::<String>())
        .ping(MS)
        .ping_message(|| panic!("factory failure"));
    let result = reader(response).frame(WITHIN).await;
    assert!(matches!(result, Err(ReadError::Aborted(_))), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn a_ping_and_data_ready_together_share_one_frame() {
    let source = stream::once(async {
        tokio::time::sleep(100 * MS).await;
        Bytes::from_static(b"data: x\n\n")
    })
    .chain(stream::pending());
    let response = EventSourceResponse::new(source)
        .ping(100 * MS)
        .ping_message(|| ServerSentEvent::new().comment("p"));
    let frame = reader(response).frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(frame, &b"data: x\n\n: p\r\n\r\n"[..]);
}
