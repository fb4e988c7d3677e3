//! HTTP/2 (h2c with prior knowledge, through hyper's client): events stream frame by frame, no
//! `connection` header is sent, and a reset stream is a disconnect.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Version};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_runtime::{EventSourceResponse, SseContext};
use tests::{Log, WITHIN, serve};

fn app(log: Log) -> Router {
    let ticks = |log: Log| {
        let source = async_stream::stream! {
            for i in 0.. {
                yield i;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        EventSourceResponse::new(source)
            .on_close(move |reason| log.push(format!("close:{reason:?}")))
    };
    let with_context = log.clone();
    Router::new()
        .route(
            "/ticks",
            get(move |context: SseContext| {
                let log = with_context.clone();
                async move { ticks(log).context(context) }
            }),
        )
        .route(
            "/ticks-without-context",
            get(move || {
                let log = log.clone();
                async move { ticks(log) }
            }),
        )
}

async fn h2_client(addr: std::net::SocketAddr) -> hyper::client::conn::http2::SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

async fn stream_over_h2(path: &str) {
    let log = Log::default();
    let server = serve(app(log.clone())).await;
    let mut client = h2_client(server.addr).await;
    let request = Request::get(format!("http://{}{path}", server.addr))
        .version(Version::HTTP_2)
        .body(Body::empty())
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert!(headers.get("connection").is_none());
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-accel-buffering"], "no");

    let mut body = response.into_body();
    let mut seen = Vec::new();
    while !seen.windows(9).any(|w| w == b"data: 3\r\n") {
        let frame = tokio::time::timeout(WITHIN, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.extend_from_slice(&frame.into_data().unwrap());
    }
    assert!(seen.starts_with(b"data: 0\r\n\r\ndata: 1\r\n\r\n"));

    drop(body);
    let entries = log.wait_for(|entries| !entries.is_empty()).await;
    assert_eq!(entries, ["close:ClientDisconnected"]);
}

#[tokio::test]
async fn events_stream_over_h2c_with_the_request_context() {
    stream_over_h2("/ticks").await;
}

#[tokio::test]
async fn events_stream_over_h2c_without_the_request_context() {
    // Without the version the response carries `connection: keep-alive`; hyper strips it on h2.
    stream_over_h2("/ticks-without-context").await;
}
