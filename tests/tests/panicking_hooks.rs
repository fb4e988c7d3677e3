//! A panic in user code the runtime calls — a close hook, a ping factory, an `on_error` mapper,
//! a hub's authorization hook — ends only its own stream or request: requests of each kind,
//! interleaved with normal streams, leave the server serving normal streams as before.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use http::request::Parts;
use sse_runtime::resume::{Action, Denied, Grant, Hub};
use sse_runtime::{CloseReason, LastEventId, ServerSentEvent, sse};
use tests::{raw_get, read_to_close, read_until, serve_sse};

/// Close hooks that ran on the streams whose hook panics (counted before the panic).
static CLOSE_HOOKS: AtomicU64 = AtomicU64::new(0);

fn panicking_close(_reason: CloseReason) {
    CLOSE_HOOKS.fetch_add(1, Ordering::SeqCst);
    panic!("the close hook panicked (test)");
}

fn panicking_ping() -> ServerSentEvent {
    panic!("the ping factory panicked (test)");
}

fn panicking_mapper(_error: std::io::Error) -> ServerSentEvent {
    panic!("the on_error mapper panicked (test)");
}

fn panicking_authorize(_parts: &Parts, _action: Action<'_>) -> Result<(), Denied> {
    panic!("the authorization hook panicked (test)");
}

sse! {
    #[sse_endpoint(ping = 15, on_close = panicking_close)]
    async fn close_hook() {
        yield ServerSentEvent::new().data("closing");
    }

    #[sse_endpoint(ping = 0.05, ping_message = panicking_ping)]
    async fn ping() {
        yield ServerSentEvent::new().data("before the ping");
        std::future::pending::<()>().await;
    }

    #[sse_endpoint(ping = 15, on_error = panicking_mapper)]
    async fn mapper() -> Result<(), std::io::Error> {
        yield ServerSentEvent::new().data("before the error");
        // In the same poll as the event: it still goes out before the abort.
        return Err(std::io::Error::other("the source failed (test)"));
    }

    #[sse_endpoint(ping = 15)]
    async fn guarded(grant: Grant, since: LastEventId) {
        for await event in grant.resume(since).await {
            yield event;
        }
    }

    #[sse_endpoint(ping = 15)]
    async fn normal() {
        for i in 0..3u64 {
            yield ServerSentEvent::new().id(i).data("normal");
        }
    }
}

/// A normal stream: its three events and a clean end.
async fn expect_normal(addr: std::net::SocketAddr) {
    let mut stream = raw_get(addr, "/normal").await;
    let seen = read_until(&mut stream, b"\r\n0\r\n\r\n").await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(text.matches("data: normal").count(), 3, "{text}");
}

#[tokio::test]
async fn panics_in_hooks_end_only_their_own_stream_or_request() {
    let hub = Hub::builder().authorize(panicking_authorize).build();
    let app = Router::new()
        .route("/close-hook", get(close_hook))
        .route("/ping", get(ping))
        .route("/mapper", get(mapper))
        .route("/guarded", get(guarded))
        .route("/normal", get(normal))
        .with_state(hub);
    let server = serve_sse(app).await;
    // A normal stream stays open across all the panics: it must still work at the end.
    let mut long_lived = raw_get(server.addr, "/normal").await;

    const ROUNDS: u64 = 5;
    for round in 0..ROUNDS {
        expect_normal(server.addr).await;

        let mut stream = raw_get(server.addr, "/close-hook").await;
        let seen = read_until(&mut stream, b"data: closing").await;
        assert!(seen.starts_with(b"HTTP/1.1 200"), "round {round}");

        // The ping factory panics at the first ping: that stream ends (the connection closes).
        let mut stream = raw_get(server.addr, "/ping").await;
        let seen = read_to_close(&mut stream).await;
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.contains("data: before the ping"),
            "round {round}: {text}"
        );

        expect_normal(server.addr).await;

        // The mapper panics on the error: that stream ends.
        let mut stream = raw_get(server.addr, "/mapper").await;
        let seen = read_to_close(&mut stream).await;
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.contains("data: before the error"),
            "round {round}: {text}"
        );

        // The authorization hook panics: the request is refused (403), the stream never starts.
        let mut stream = raw_get(server.addr, "/guarded?topic=t").await;
        let seen = read_until(&mut stream, b"\r\n\r\n").await;
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.1 403"), "round {round}: {text}");
    }

    // Every close hook ran, once per stream, although each panicked.
    let deadline = tokio::time::Instant::now() + tests::WITHIN;
    while CLOSE_HOOKS.load(Ordering::SeqCst) < ROUNDS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "close hooks did not all run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(CLOSE_HOOKS.load(Ordering::SeqCst), ROUNDS);

    // The server still serves, and the stream opened before the panics ends normally.
    expect_normal(server.addr).await;
    let seen = read_until(&mut long_lived, b"\r\n0\r\n\r\n").await;
    assert_eq!(
        String::from_utf8_lossy(&seen)
            .matches("data: normal")
            .count(),
        3
    );
}
