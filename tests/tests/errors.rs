//! A failing or panicking source ends its own response only (SPEC section M): that connection is
//! aborted without the terminating chunk, and the server keeps serving everyone else.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures_util::StreamExt;
use sse_runtime::{EventSourceResponse, SseContext};
use tests::{Log, WITHIN, serve};

fn app(log: Log) -> Router {
    let fail_log = log.clone();
    Router::new()
        .route(
            "/fail",
            get(move |context: SseContext| {
                let log = fail_log.clone();
                async move {
                    let source = async_stream::stream! {
                        yield Ok("before the error");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        yield Err(std::io::Error::other("database went away (e2e)"));
                    };
                    EventSourceResponse::from_try_stream(source)
                        .on_close(move |reason| log.push(format!("fail:{reason:?}")))
                        .context(context)
                }
            }),
        )
        .route(
            "/panic",
            get(move |context: SseContext| {
                let log = log.clone();
                async move {
                    let source = async_stream::stream! {
                        yield "before the panic";
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        panic!("the source panicked (e2e)");
                    };
                    EventSourceResponse::new(source)
                        .on_close(move |reason| log.push(format!("panic:{reason:?}")))
                        .context(context)
                }
            }),
        )
        .route(
            "/ticks",
            get(|context: SseContext| async move {
                let source = async_stream::stream! {
                    for i in 0.. {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        yield i;
                    }
                };
                EventSourceResponse::new(source).context(context)
            }),
        )
        .route("/health", get(|| async { "ok" }))
}

/// Reads a whole body with reqwest; returns the bytes and whether it ended with an error.
async fn fetch(client: &reqwest::Client, url: &str) -> (Vec<u8>, bool) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut bytes = Vec::new();
    let mut failed = false;
    while let Some(chunk) = tokio::time::timeout(WITHIN, body.next()).await.unwrap() {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    (bytes, failed)
}

#[tokio::test]
async fn a_failing_or_panicking_source_aborts_only_its_own_response() {
    tests::captured_logs();
    let log = Log::default();
    let server = serve(app(log.clone())).await;
    let client = reqwest::Client::new();

    // A long-lived stream on its own connection, running through the failures.
    let watcher = reqwest::Client::new();
    let mut ticks = watcher
        .get(server.url("/ticks"))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let first = tokio::time::timeout(WITHIN, ticks.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with(b"data: 0"));

    for round in 0..3 {
        let (bytes, failed) = fetch(&client, &server.url("/fail")).await;
        assert_eq!(bytes, b"data: before the error\r\n\r\n", "round {round}");
        assert!(
            failed,
            "an error must abort the response, not end it cleanly"
        );

        let (bytes, failed) = fetch(&client, &server.url("/panic")).await;
        assert_eq!(bytes, b"data: before the panic\r\n\r\n", "round {round}");
        assert!(failed, "a panic must abort the response");

        let health = client.get(server.url("/health")).send().await.unwrap();
        assert_eq!(health.text().await.unwrap(), "ok");
    }

    // Each failure was reported to its hooks and logged.
    let entries = log.wait_for(|e| e.len() == 6).await;
    assert_eq!(
        entries.iter().filter(|e| *e == "fail:Error").count(),
        3,
        "{entries:?}"
    );
    assert_eq!(
        entries.iter().filter(|e| *e == "panic:Error").count(),
        3,
        "{entries:?}"
    );
    let logs = tests::captured_logs();
    let errors = |needle: &str| {
        logs.lines()
            .filter(|l| l.contains("ERROR") && l.contains(needle))
            .count()
    };
    assert_eq!(errors("database went away (e2e)"), 3, "{logs}");
    assert_eq!(errors("the source panicked (e2e)"), 3, "{logs}");

    // The long-lived stream kept going throughout.
    let mut later = Vec::new();
    while later.len() < 3 {
        let chunk = tokio::time::timeout(WITHIN, ticks.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        later.push(chunk);
    }
}

/// SPEC 120 over a real socket: an event and the error right behind it, ready in the same poll.
/// The client still gets the response head and the event before the connection is aborted.
#[tokio::test]
async fn an_event_ready_with_the_error_still_reaches_the_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = Router::new().route(
        "/at-once",
        get(|context: SseContext| async move {
            let items: Vec<Result<&str, std::io::Error>> = vec![
                Ok("last words"),
                Err(std::io::Error::other("at once (e2e)")),
            ];
            EventSourceResponse::from_try_stream(futures_util::stream::iter(items)).context(context)
        }),
    );
    let server = tests::serve_sse(app).await;
    for _ in 0..20 {
        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        socket
            .write_all(b"GET /at-once HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(WITHIN, socket.read_to_end(&mut seen)).await;
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen:?}");
        assert!(seen.contains("data: last words\r\n\r\n"), "{seen:?}");
        assert!(!seen.ends_with("0\r\n\r\n"), "aborted, not ended: {seen:?}");
    }
}
