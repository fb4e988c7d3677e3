//! Basic streaming: finite and endless streams, path parameters, an idle-but-open stream, nested
//! routers, and a browser page that shows the events live (sse-starlette's example 01).
//!
//! ```sh
//! cargo run -p examples --example basic
//! # then open http://127.0.0.1:8000/ in a browser, or:
//! curl -N http://127.0.0.1:8000/numbers                # 1 to 5, 0.9 s apart, then the end
//! curl -N http://127.0.0.1:8000/starlette/numbers      # "Number: 1" to "Number: 10", one a second
//! curl -N http://127.0.0.1:8000/fastapi/endless        # every 0.5 s until you press Ctrl-C
//! curl -N http://127.0.0.1:8000/fastapi/range/3/7      # 3 to 7
//! curl -N http://127.0.0.1:8000/fastapi/conditional    # one event, then only pings every 5 s
//! curl -N -H 'Last-Event-ID: 2' http://127.0.0.1:8000/resume   # picks up after id 2
//! ```
//!
//! Closing `curl` on the endless stream logs how many events the client got.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use axum::{Router, routing::get};
use sse_runtime::{CloseHooks, ServerSentEvent, sse};

sse! {
    /// 1 to 5, 0.9 s apart, then a clean end.
    #[sse_endpoint]
    async fn numbers() {
        for i in 1..=5 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            yield i;
        }
    }

    /// "Number: 1" to "Number: 10", one a second.
    #[sse_endpoint]
    async fn starlette_numbers() {
        for i in 1..=10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            yield format!("Number: {i}");
        }
    }

    /// An event every 0.5 s until the client goes away; its departure is logged with the count.
    #[sse_endpoint]
    async fn endless(hooks: CloseHooks) {
        let sent = Arc::new(AtomicU64::new(0));
        let count = sent.clone();
        hooks.on_client_close(move || {
            tracing::info!(events = count.load(Ordering::Relaxed), "endless stream: client disconnected");
        });
        for n in 1.. {
            tokio::time::sleep(Duration::from_millis(500)).await;
            sent.store(n, Ordering::Relaxed);
            yield ServerSentEvent::new().id(n).data(format!("Event #{n}"));
        }
    }

    /// The numbers from `start` to `end`, 0.2 s apart.
    #[sse_endpoint]
    async fn range(Path((start, end)): Path<(i64, i64)>) {
        for i in start..=end {
            tokio::time::sleep(Duration::from_millis(200)).await;
            yield ServerSentEvent::new().id(i).data(i);
        }
    }

    /// One event, then an open but silent stream kept alive by pings: only a disconnect or the
    /// server's shutdown ends it.
    #[sse_endpoint(ping = 5)]
    async fn conditional() {
        yield ServerSentEvent::new().event("status").data("new data available");
        std::future::pending::<()>().await;
    }

    /// Three numbered events, resuming after the client's `Last-Event-ID`; then the stream ends,
    /// and a browser reconnects (after `retry` ms), sending the last id it saw.
    #[sse_endpoint(retry = 500)]
    async fn resume(headers: HeaderMap, State(state): State<AppState>) {
        let last: u64 = headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        state.resumes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(last_event_id = last, "resume: client connected");
        for id in last + 1..=last + 3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            yield ServerSentEvent::new().event("number").id(id).data(id);
        }
    }
}

#[derive(Clone, Default)]
struct AppState {
    resumes: Arc<AtomicU64>,
}

/// The page at `/`: an `EventSource` per stream, every event appended live.
async fn index() -> Html<&'static str> {
    Html(include_str!("basic.html"))
}

/// A router of its own, nested under `/fastapi` (sse-starlette's example mounts a sub-app).
fn fastapi() -> Router<AppState> {
    Router::new()
        .route("/endless", get(endless))
        .route("/range/{start}/{end}", get(range))
        .route("/conditional", get(conditional))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(index))
        .route("/numbers", get(numbers))
        .route("/resume", get(resume))
        .route("/starlette/numbers", get(starlette_numbers))
        .nest("/fastapi", fastapi())
        .with_state(AppState::default());
    examples::serve(app).await
}
