//! One stream, many server processes: nodes that share a hub through Redis. An event
//! published on any node reaches the clients of every node, and a client that reconnects to
//! any node gets exactly what it missed.
//!
//! ```sh
//! redis-server --port 6379 --appendonly yes &                       # Redis ≥ 7.0
//! PORT=8001 REDIS_URL=redis://127.0.0.1:6379 cargo run -p examples --example cluster &
//! PORT=8002 REDIS_URL=redis://127.0.0.1:6379 cargo run -p examples --example cluster &
//! PORT=8003 REDIS_URL=redis://127.0.0.1:6379 cargo run -p examples --example cluster &
//! curl -N 'http://127.0.0.1:8001/events?topic=a&topic=b'             # follows a and b
//! curl -X POST http://127.0.0.1:8003/publish/a -d 'hello'            # answers the event's id
//! curl -N -H 'Last-Event-ID: <an id>' 'http://127.0.0.1:8002/events?topic=a'
//! ```
//!
//! Then `nginx -c "$PWD/examples/cluster/nginx.conf"` balances the three on port 8080 (see the
//! README). Without `REDIS_URL` the example runs on the in-memory hub: one node.
//!
//! * `GET /events?topic=a&topic=b`: the topics' events after the client's cursor
//!   (`Last-Event-ID`, else `?last_event_id=`), then live ones. 1-64 topics of 1-256 printable
//!   characters, else 400.
//! * `POST /publish/{topic}`: the body (UTF-8, at most 64 KiB, else 413) is the event's data;
//!   answers `200` with the event's id as plain text, or `503` while Redis is unreachable (the
//!   event was then not published).
//! * `GET /?topic=a`: a page that follows a topic and publishes to it.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_core::Stream;
use serde::Deserialize;
use sse_runtime::resume::{Grant, Hub, MemoryStore, RedisStore, is_valid_topic};
use sse_runtime::{LastEventId, Payload, ServerSentEvent, Shutdown, sse_endpoint};
use tower_http::limit::RequestBodyLimitLayer;

/// Events kept per topic for clients that reconnect.
const HISTORY: usize = 10_000;
/// The longest event data, in bytes.
const MAX_BODY: usize = 64 * 1024;
/// The topic of a page that names none.
const DEFAULT_TOPIC: &str = "news";

/// Which node this is, for the page and the logs: its port.
#[derive(Clone)]
struct App {
    hub: Hub,
    node: String,
}

/// The followed topics' events after the cursor, then live ones. Returned as the response's
/// own stream, so that a refusal or a `NoContent` gap policy can answer with its status.
#[sse_endpoint(ping = 15, retry = 1000)]
async fn events(grant: Grant, since: LastEventId) -> impl Stream<Item = Payload> {
    grant.resume(since).await
}

/// Publishes the body to the topic; answers the event's id, or 503 when Redis is unreachable.
async fn publish(
    State(app): State<App>,
    Path(topic): Path<String>,
    body: String,
) -> Result<String, (StatusCode, &'static str)> {
    if !is_valid_topic(&topic) {
        return Err((StatusCode::BAD_REQUEST, "not a topic name\n"));
    }
    match app
        .hub
        .publish(&topic, ServerSentEvent::new().data(body))
        .await
    {
        Ok(id) => Ok(id.to_string()),
        Err(error) => {
            tracing::warn!(%error, "could not publish");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "the event store is unreachable\n",
            ))
        }
    }
}

#[derive(Deserialize)]
struct PageQuery {
    topic: Option<String>,
}

/// A page following a topic (`?topic=`, default `news`), with the hub's newest id rendered in.
async fn page(State(app): State<App>, Query(query): Query<PageQuery>) -> Response {
    let topic = query.topic.unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
    let plain = topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !(is_valid_topic(&topic) && plain && topic.len() <= 64) {
        let message = "the page follows topics of 1-64 characters of A-Z, a-z, 0-9, _ and -\n";
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let head = match app.hub.head().await {
        Ok(head) => head,
        Err(error) => {
            tracing::warn!(%error, "could not read the head");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the event store is unreachable\n",
            )
                .into_response();
        }
    };
    // All plain ASCII (a checked topic, `<letters>:<digits>`, a port): safe in HTML as is.
    let html = include_str!("cluster.html")
        .replace("{{topic}}", &topic)
        .replace("{{head}}", &head.to_string())
        .replace("{{node}}", &app.node);
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples::init_tracing();
    // The hub first: the node listens (and says so) once it can serve.
    let hub = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let store = RedisStore::builder(&url)
                .hub("cluster")
                .history(HISTORY)
                .ttl(Duration::from_secs(24 * 3600))
                .connect()
                .await;
            match store {
                Ok(store) => {
                    tracing::info!(%url, "hub on Redis");
                    Hub::builder().store(store).build()
                }
                Err(error) => {
                    eprintln!("cannot use the Redis at {url}: {error}");
                    std::process::exit(1);
                }
            }
        }
        Err(_) => {
            tracing::info!("no REDIS_URL: hub in memory (one node)");
            Hub::builder().store(MemoryStore::new(HISTORY)).build()
        }
    };
    let listener = examples::bind().await;
    let node = listener.local_addr()?.port().to_string();
    let app = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route(
            "/publish/{topic}",
            post(publish).layer(RequestBodyLimitLayer::new(MAX_BODY)),
        )
        .with_state(App { hub, node });
    // Streams end at SIGTERM (their clients resume on another node) instead of holding the
    // process. A node sits behind a proxy that speaks HTTP/1.1 to it (`cluster/nginx.conf`),
    // or serves browsers directly, which never use h2 without TLS: hyper's own HTTP/1
    // connection, without the version sniff and the layer it keeps, is all a node needs, and
    // costs less per event delivered (BENCHMARKS.md).
    sse_runtime::serve(listener, app, &Shutdown::new())
        .http1_only()
        .await
}

impl axum::extract::FromRef<App> for Hub {
    fn from_ref(app: &App) -> Hub {
        app.hub.clone()
    }
}
