//! Options and error handling (sse-starlette's example 04): a custom ping message, error events
//! that continue and a fatal one that ends, a custom separator with multi-line data, proxy-friendly
//! caching with a custom header and a background task, and a health route.
//!
//! ```sh
//! cargo run -p examples --example advanced
//! curl -N http://127.0.0.1:8000/custom-ping        # pings are ": invisible ping at" + a time
//! curl -N http://127.0.0.1:8000/error-demo         # event: error at 3, event: fatal_error at 6
//! curl -N http://127.0.0.1:8000/custom-separator | od -c | head    # LF only
//! curl -N -i http://127.0.0.1:8000/proxy-friendly  # cache-control: public, max-age=29
//! curl http://127.0.0.1:8000/health
//! ```

use std::time::{Duration, SystemTime};

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};
use sse_runtime::{CloseReason, ServerSentEvent, sse};

/// Every ping: a two-line comment, invisible to `EventSource` clients.
fn invisible_ping() -> ServerSentEvent {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    ServerSentEvent::new().comment(format!("invisible ping at\r\n{seconds}"))
}

/// Some work that fails for item 3 (recoverable) and item 6 (fatal).
fn process(item: u32) -> Result<String, ProcessError> {
    match item {
        3 => Err(ProcessError::Recoverable(format!(
            "item {item} could not be processed"
        ))),
        6 => Err(ProcessError::Fatal(format!(
            "item {item} broke the pipeline"
        ))),
        _ => Ok(format!("item {item} processed")),
    }
}

enum ProcessError {
    Recoverable(String),
    Fatal(String),
}

fn streamed_proxy_response_done(reason: CloseReason) {
    tracing::info!(%reason, "proxy-friendly stream closed");
}

async fn log_completion() {
    tracing::info!("background task: proxy-friendly stream finished, audit record written");
}

sse! {
    /// Ten `custom` events two seconds apart, with a ping every three seconds.
    #[sse_endpoint(ping = 3, ping_message = invisible_ping)]
    async fn custom_ping() {
        for i in 1..=10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            yield ServerSentEvent::new().event("custom").id(i).data(format!("custom event {i}"));
        }
    }

    /// Errors become events: a recoverable one and the stream goes on, a fatal one and it ends.
    #[sse_endpoint]
    async fn error_demo() {
        for item in 1..=10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            match process(item) {
                Ok(text) => yield ServerSentEvent::new().event("item").id(item).data(text),
                Err(ProcessError::Recoverable(error)) => {
                    yield ServerSentEvent::new().event("error").id(item).data(error);
                }
                Err(ProcessError::Fatal(error)) => {
                    yield ServerSentEvent::new().event("fatal_error").id(item).data(error);
                    return;
                }
            }
        }
    }

    /// LF separators, and data with line breaks: each line becomes its own `data:` line.
    #[sse_endpoint(sep = "\n")]
    async fn custom_separator() {
        yield "line one\nline two";
        yield ServerSentEvent::new().event("crlf").data("windows\r\nline breaks\r\ntoo");
        yield ServerSentEvent::new().event("done").data("three events, LF only");
    }

    /// Cacheable by proxies that fan one upstream stream out to many clients, with a custom
    /// header and a background task that runs once the stream is done.
    #[sse_endpoint(
        cache_control = "public, max-age=29",
        headers("x-custom-header" = "custom-value"),
        on_close = streamed_proxy_response_done,
        background = log_completion,
    )]
    async fn proxy_friendly() {
        for i in 1..=3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            yield ServerSentEvent::new().id(i).data(format!("shared update {i}"));
        }
    }
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "healthy" }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/custom-ping", get(custom_ping))
        .route("/error-demo", get(error_demo))
        .route("/custom-separator", get(custom_separator))
        .route("/proxy-friendly", get(proxy_friendly))
        .route("/health", get(health));
    examples::serve(app).await
}
