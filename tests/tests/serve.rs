//! The hyper settings of `sse_runtime::serve` ([`sse_runtime::Serve`]): HTTP/1 only, and the cap
//! on what an HTTP/1 connection buffers of a request head. (The order in which `serve` ends is
//! in `shutdown.rs`.)

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_runtime::connection::Listener;
use sse_runtime::{EventSourceResponse, Serve, Shutdown, SseContext};
use tests::{WITHIN, raw_get, read_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The data of `/sizes`' events: one byte up to twice `Listener`'s gathering limit (2 KiB) and
/// far beyond, so that hyper's writes take both paths of the connection's `Io`.
const SIZES: [usize; 6] = [1, 64, 2_000, 2_048, 4_096, 100_000];

fn sized(size: usize) -> String {
    (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

fn app() -> Router {
    Router::new()
        .route(
            "/sizes",
            get(|context: SseContext| async move {
                let events = async_stream::stream! {
                    for size in SIZES {
                        yield sse_runtime::ServerSentEvent::new().data(sized(size));
                        // Each alone in its write.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                EventSourceResponse::new(events).context(context)
            }),
        )
        .route(
            "/ticks",
            get(|context: SseContext| async move {
                let ticks = async_stream::stream! {
                    for i in 0.. {
                        yield i;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                EventSourceResponse::new(ticks).context(context)
            }),
        )
}

/// Serves [`app`] with `configure` applied to the [`Serve`]; the server stops with the test.
async fn serve_with(configure: impl FnOnce(Serve) -> Serve) -> SocketAddr {
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = configure(sse_runtime::serve(listener, app(), &Shutdown::new()));
    tokio::spawn(async move { serve.await.unwrap() });
    addr
}

/// Whether an h2 request with prior knowledge gets a `200` stream.
async fn h2_streams(addr: SocketAddr) -> bool {
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .ok()?;
        tokio::spawn(connection);
        let request = Request::get(format!("http://{addr}/ticks"))
            .version(Version::HTTP_2)
            .body(Body::empty())
            .unwrap();
        let response = sender.send_request(request).await.ok()?;
        Some(response.status() == 200)
    };
    tokio::time::timeout(WITHIN, attempt)
        .await
        .expect("the h2 attempt neither succeeded nor failed")
        .unwrap_or(false)
}

/// The status line of the answer to a `GET /ticks` with one header of `header_bytes` bytes.
async fn status_with_header(addr: SocketAddr, header_bytes: usize) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ticks HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n",
        "p".repeat(header_bytes)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(WITHIN, async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("no answer");
    let head = String::from_utf8_lossy(&head);
    head.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn events_small_and_large_arrive_byte_exact_through_the_listener_s_writes() {
    let addr = serve_with(|serve| serve).await;
    let body = tokio::time::timeout(WITHIN, async {
        reqwest::get(format!("http://{addr}/sizes"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
    .await
    .expect("the stream did not end");
    let expected: String = SIZES
        .iter()
        .map(|&size| format!("data: {}\r\n\r\n", sized(size)))
        .collect();
    assert_eq!(body.len(), expected.len());
    assert!(body == expected, "the bytes differ");
}

#[tokio::test]
async fn by_default_serve_speaks_http1_and_h2() {
    let addr = serve_with(|serve| serve).await;
    assert!(
        h2_streams(addr).await,
        "h2 with prior knowledge was refused"
    );
    read_until(&mut raw_get(addr, "/ticks").await, b"data: 1\r\n").await;
}

#[tokio::test]
async fn http1_only_refuses_h2_and_streams_over_http1() {
    let addr = serve_with(Serve::http1_only).await;
    assert!(
        !h2_streams(addr).await,
        "h2 was served by an HTTP/1-only server"
    );
    read_until(&mut raw_get(addr, "/ticks").await, b"data: 1\r\n").await;
}

#[tokio::test]
async fn http1_max_buf_size_refuses_a_longer_request_head_with_431() {
    let capped = serve_with(|serve| serve.http1_max_buf_size(8192)).await;
    assert_eq!(status_with_header(capped, 4_000).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_with_header(capped, 12_000).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // hyper's default cap (about 400 KiB) takes the same head.
    let default = serve_with(|serve| serve).await;
    assert_eq!(status_with_header(default, 12_000).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn an_http1_max_buf_size_under_8_kib_counts_as_8_kib_and_does_not_panic() {
    let addr = serve_with(|serve| serve.http1_max_buf_size(0)).await;
    assert_eq!(status_with_header(addr, 6_000).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_with_header(addr, 12_000).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}
