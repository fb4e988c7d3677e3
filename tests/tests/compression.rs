//! Behind tower-http's `CompressionLayer`, SSE is neither compressed nor buffered: its default
//! predicate skips `text/event-stream`, so events still arrive one at a time.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sse_runtime::{EventSourceResponse, SseContext};
use tests::{read_until, serve};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower_http::compression::CompressionLayer;

fn app(next: Arc<Notify>) -> Router {
    Router::new()
        .route(
            "/events",
            get(move |context: SseContext| {
                let next = next.clone();
                async move {
                    let source = async_stream::stream! {
                        yield "one";
                        next.notified().await;
                        yield "two";
                    };
                    EventSourceResponse::new(source).context(context)
                }
            }),
        )
        .route("/text", get(|| async { "compressible ".repeat(1000) }))
        .layer(CompressionLayer::new())
}

async fn get_gzip(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\naccept-encoding: gzip\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn events_pass_uncompressed_and_one_at_a_time() {
    let next = Arc::new(Notify::new());
    let server = serve(app(next.clone())).await;

    // The layer is active: an ordinary response is compressed.
    let mut text = get_gzip(server.addr, "/text").await;
    let head = read_until(&mut text, b"\r\n\r\n").await;
    assert!(String::from_utf8_lossy(&head).contains("content-encoding: gzip"));

    let mut events = get_gzip(server.addr, "/events").await;
    // The first event arrives while the stream is blocked before the second: nothing buffers.
    let first = read_until(&mut events, b"data: one\r\n\r\n").await;
    let head = String::from_utf8_lossy(&first).to_lowercase();
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(
        head.contains("content-type: text/event-stream; charset=utf-8"),
        "{head}"
    );
    next.notify_one();
    read_until(&mut events, b"data: two\r\n\r\n").await;
}
