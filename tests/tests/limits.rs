//! Stream limits over real sockets, served the documented way (`sse_runtime::serve`): the
//! third stream of a cap of two gets exactly a `retry:` hint and a clean end; once a client
//! closes its socket the next request gets its stream; the `503` form carries `Retry-After`;
//! a shutdown gives every place back.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use sse_runtime::limit::{Refusal, RetryHint, StreamLimit};
use sse_runtime::{Shutdown, sse};
use tests::{HttpStream, WITHIN, raw_get, read_until, serve_graceful};

sse! {
    #[sse_endpoint(ping = 0)]
    async fn ticks() {
        for i in 1.. {
            tokio::time::sleep(Duration::from_millis(50)).await;
            yield i;
        }
    }
}

/// Waits (polling) until `limit` has `open` streams.
async fn until_open(limit: &StreamLimit, open: usize) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while limit.open() != open {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} open, expected {open}",
            limit.open()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_cap_refuses_with_a_retry_hint_then_admits_once_a_client_left() {
    let shutdown = Shutdown::new();
    let limit = StreamLimit::new(2)
        .retry(RetryHint::new(Duration::from_millis(200)).jitter(Duration::from_millis(200)));
    let api = StreamLimit::new(0).refusal(Refusal::ServiceUnavailable);
    let app = Router::new()
        .route("/ticks", get(ticks))
        .route("/api/ticks", get(ticks).layer(api.layer()))
        .layer(limit.layer());
    let server = serve_graceful(app, &shutdown).await;
    let url = |path: &str| format!("http://{}{path}", server.addr);

    let mut a = raw_get(server.addr, "/ticks").await;
    read_until(&mut a, b"data: 1\r\n\r\n").await;
    let mut b = HttpStream::get(&url("/ticks"), &[]).await;
    b.until("data: 1\r\n\r\n").await;
    assert_eq!(limit.open(), 2);

    // Over the cap: 200, the SSE headers, exactly the hint, a clean end.
    let mut refused = HttpStream::get(&url("/ticks"), &[]).await;
    assert_eq!(refused.status, 200);
    assert_eq!(
        refused.header("content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(refused.header("cache-control"), "no-store");
    let body = refused.to_end().await.to_owned();
    assert_eq!(refused.ended, Some(true), "a clean end");
    // A full body, not a stream: nothing of a stream runs for it.
    assert_eq!(refused.header("content-length"), body.len().to_string());
    let ms: u64 = body
        .strip_prefix("retry: ")
        .and_then(|rest| rest.strip_suffix("\r\n\r\n"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("not a retry hint alone: {body:?}"));
    assert!((200..=400).contains(&ms), "{ms}");
    assert_eq!(limit.open(), 2);

    // The 503 form, for clients that are not browsers.
    let mut unavailable = HttpStream::get(&url("/api/ticks"), &[]).await;
    assert_eq!(unavailable.status, 503);
    let after: u64 = unavailable.header("retry-after").parse().unwrap();
    assert!((5..=10).contains(&after), "the default hint: {after}");
    assert_eq!(unavailable.to_end().await, "");

    // A client closes its socket: its place is free, and the next request streams.
    drop(a);
    until_open(&limit, 1).await;
    let mut c = HttpStream::get(&url("/ticks"), &[]).await;
    c.until("data: 1\r\n\r\n").await;
    assert_eq!(limit.open(), 2);

    // A shutdown ends every stream, and gives every place back.
    shutdown.trigger();
    tokio::time::timeout(WITHIN, server.done)
        .await
        .expect("serve returned")
        .unwrap();
    assert_eq!(limit.open(), 0);
    drop((b, c));
}
