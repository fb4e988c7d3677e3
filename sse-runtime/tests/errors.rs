//! Errors end one response only: SPEC section M (120-122) and 119, plus panics and values that
//! cannot be encoded.

mod common;

use std::time::Duration;

use common::{Log, Logs, WITHIN, hooks, reader, settle};
use futures_util::stream::{self, StreamExt};
use sse_runtime::testing::ReadError;
use sse_runtime::{CloseReason, EventSourceResponse, Json};

#[tokio::test(start_paused = true)]
async fn spec_120_an_error_after_the_first_item_delivers_it_then_aborts() {
    let logs = Logs::capture();
    let log = Log::default();
    let guard = log.on_drop("source_dropped");
    let items: Vec<Result<&str, std::io::Error>> =
        vec![Ok("first"), Err(std::io::Error::other("boom-spec-120"))];
    let source = stream::iter(items).chain(stream::once(async move {
        drop(guard);
        Ok("never")
    }));
    let mut body = reader(hooks(EventSourceResponse::from_try_stream(source), &log));
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: first\r\n\r\n"[..]
    );
    let end = body.frame(WITHIN).await;
    let Err(ReadError::Aborted(error)) = end else {
        panic!("expected an abort, got {end:?}")
    };
    let aborted = error
        .downcast_ref::<sse_runtime::StreamAborted>()
        .expect("StreamAborted");
    assert_eq!(aborted.reason(), CloseReason::Error);
    settle().await;
    // SPEC 119: no background after an error.
    assert_eq!(log.entries(), ["source_dropped", "close:Error"]);
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("boom-spec-120")),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn events_ready_before_an_error_are_flushed_before_the_abort() {
    let items: Vec<Result<u8, std::io::Error>> =
        vec![Ok(1), Ok(2), Err(std::io::Error::other("boom")), Ok(3)];
    let mut body = reader(EventSourceResponse::from_try_stream(stream::iter(items)));
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\ndata: 2\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_source_aborts_this_response_and_is_logged() {
    let logs = Logs::capture();
    let log = Log::default();
    let source = stream::iter([1, 2]).map(|i| {
        if i == 2 {
            panic!("source exploded");
        }
        i
    });
    let mut body = reader(hooks(EventSourceResponse::new(source), &log));
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
    settle().await;
    assert_eq!(log.entries(), ["close:Error"]);
    assert!(logs.text().contains("source exploded"), "{}", logs.text());
}

#[tokio::test(start_paused = true)]
async fn a_panic_after_an_await_is_contained_too() {
    let log = Log::default();
    let source = async_stream::stream! {
        yield "ok";
        tokio::time::sleep(Duration::from_secs(1)).await;
        let index = std::hint::black_box(5);
        yield ["only one"][index];
    };
    let mut body = reader(hooks(EventSourceResponse::new(source), &log));
    assert!(body.frame(WITHIN).await.unwrap().is_some());
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
    assert_eq!(log.entries(), ["close:Error"]);
}

#[tokio::test(start_paused = true)]
async fn spec_35_a_non_finite_json_value_ends_the_response_as_an_error() {
    let logs = Logs::capture();
    let log = Log::default();
    let source = stream::iter([Json(1.0), Json(f64::NAN), Json(2.0)]);
    let mut body = reader(hooks(EventSourceResponse::new(source), &log));
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1.0\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
    settle().await;
    assert_eq!(log.entries(), ["close:Error"]);
    assert!(
        logs.text().contains("not JSON compliant"),
        "{}",
        logs.text()
    );
}

#[tokio::test(start_paused = true)]
async fn spec_116_a_panicking_producer_fails_the_response() {
    let log = Log::default();
    let response = EventSourceResponse::with_producer(1, |tx| async move {
        tx.send("one").await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        panic!("producer exploded");
    });
    let mut body = reader(hooks(response, &log));
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: one\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
    assert_eq!(log.entries(), ["close:Error"]);
}
