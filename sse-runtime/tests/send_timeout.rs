//! Send timeouts without a connection that can enforce them: the stream runs in a producer task
//! whose hand-off to the body is timed (SPEC section H, 88-91; PR #208 for pings). On tokio's
//! paused clock; the real-socket version is in the end-to-end tests.

mod common;

use std::time::Duration;

use common::{DISCONNECTED, Log, WITHIN, hooks, parked_source, reader, settle};
use futures_util::stream::{self, StreamExt};
use sse_runtime::testing::ReadError;
use sse_runtime::{CloseReason, EventSourceResponse, StreamAborted};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn spec_89_90_a_client_that_stops_reading_is_cut_after_the_timeout() {
    let log = Log::default();
    let guard = log.on_drop("source_dropped");
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = produced.clone();
    let source = stream::iter(0..).map(move |i| {
        let _keep = &guard;
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        "x".repeat(4096) + &i.to_string()
    });
    let response = hooks(
        EventSourceResponse::new(source).send_timeout(Duration::from_secs(5)),
        &log,
    );
    let mut body = reader(response);
    // One read starts the producer; then the client stops reading.
    assert!(body.frame(WITHIN).await.unwrap().is_some());
    let stopped = Instant::now();
    while log.entries().is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stopped.elapsed() >= Duration::from_secs(5));
    assert!(
        stopped.elapsed() <= Duration::from_secs(6),
        "{:?}",
        stopped.elapsed()
    );
    settle().await;
    // SPEC 90: no client-close hook and no background task after a send timeout.
    assert_eq!(log.entries(), ["source_dropped", "close:SendTimeout"]);
    // SPEC 89.3: the source was not advanced past what fits in the hand-off.
    let made = produced.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        made < 64,
        "the source ran ahead of the client: {made} events"
    );
    // What was handed over is still readable, then the body is aborted.
    loop {
        match body.frame(WITHIN).await {
            Ok(Some(_)) => continue,
            Err(ReadError::Aborted(error)) => {
                let aborted = error
                    .downcast_ref::<StreamAborted>()
                    .expect("StreamAborted");
                assert_eq!(aborted.reason(), CloseReason::SendTimeout);
                break;
            }
            other => panic!("expected an abort, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn spec_85_fixed_pings_are_covered_by_the_timeout() {
    let log = Log::default();
    let response = hooks(
        EventSourceResponse::new(stream::pending::<String>())
            .ping(Duration::from_secs(1))
            .send_timeout(Duration::from_secs(3)),
        &log,
    );
    let mut body = reader(response);
    assert!(
        body.frame(WITHIN)
            .await
            .unwrap()
            .unwrap()
            .starts_with(b": ping")
    );
    let stopped = Instant::now();
    // Nobody reads from t=1 s: ping 2 (t=2 s) fills the hand-off, ping 3 (t=3 s) waits and
    // times out 3 s later, at t=6 s.
    while log.entries().is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = stopped.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited <= Duration::from_millis(5100),
        "{waited:?}"
    );
    assert_eq!(log.entries(), ["close:SendTimeout"]);
}

#[tokio::test(start_paused = true)]
async fn a_reading_client_never_times_out_however_long_the_stream() {
    let log = Log::default();
    let source = stream::iter(0..50).then(|i| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        i
    });
    let response = hooks(
        EventSourceResponse::new(source).send_timeout(Duration::from_millis(500)),
        &log,
    );
    let all = reader(response)
        .read_to_end(Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&all).matches("data: ").count(), 50);
    settle().await;
    assert_eq!(log.entries(), ["close:Completed", "background"]);
}

#[tokio::test(start_paused = true)]
async fn with_a_timeout_a_disconnect_still_drops_a_parked_source_at_once() {
    let log = Log::default();
    let source = parked_source(&log);
    let response = hooks(
        EventSourceResponse::new(source).send_timeout(Duration::from_secs(5)),
        &log,
    );
    let mut body = reader(response);
    assert!(body.frame(WITHIN).await.unwrap().is_some());
    let dropped_at = Instant::now();
    drop(body);
    settle().await;
    assert_eq!(dropped_at.elapsed(), Duration::ZERO);
    assert_eq!(log.entries(), DISCONNECTED);
}

#[tokio::test(start_paused = true)]
async fn with_a_timeout_errors_and_clean_ends_behave_as_without() {
    let items: Vec<Result<u8, std::io::Error>> =
        vec![Ok(1), Err(std::io::Error::other("boom-timeout-mode"))];
    let response = EventSourceResponse::from_try_stream(stream::iter(items))
        .send_timeout(Duration::from_secs(1));
    let mut body = reader(response);
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());

    let response =
        EventSourceResponse::new(stream::iter(["a", "b"])).send_timeout(Duration::from_secs(1));
    assert_eq!(
        reader(response).read_to_end(WITHIN).await.unwrap(),
        &b"data: a\r\n\r\ndata: b\r\n\r\n"[..]
    );
}
