//! Chat rooms that survive reconnects: every message has an id from a resumable `Hub`, and a
//! client that comes back with its last id gets exactly the messages it missed, then live ones.
//!
//! ```sh
//! cargo run -p examples --example chat
//! # then open http://127.0.0.1:8000/ (or /?room=rust) in two browser tabs, or:
//! curl -N http://127.0.0.1:8000/rooms/lobby/events                    # live messages
//! curl -X POST http://127.0.0.1:8000/rooms/lobby/messages -d 'hello'   # answers its id
//! curl -N -H 'Last-Event-ID: <an id>' http://127.0.0.1:8000/rooms/lobby/events
//! curl -N 'http://127.0.0.1:8000/rooms/lobby/events?last_event_id=earliest'
//! curl http://127.0.0.1:8000/metrics                                  # for Prometheus
//! ```
//!
//! The page embeds the hub's newest id and opens its first connection with
//! `?last_event_id=<that id>`, so nothing said between the page load and the connection is
//! missed; later reconnects send `Last-Event-ID` themselves. Each room keeps its last 100
//! messages: a client that missed more (or whose id is from before a restart) gets one
//! `event: reset` instead, and the page says so.
//!
//! `GET /metrics` exports the streams' metrics (feature `metrics` of sse-runtime) for
//! Prometheus: open streams, why they closed, events and bytes sent, replays and resets.
//!
//! Room names are 1-64 characters of `A-Z a-z 0-9 _ -` (else 400); a message is at most 4 KiB
//! of UTF-8 text (else 413). Anyone may open a room: a public deployment would also bound how
//! many there are.

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde::Deserialize;
use sse_runtime::resume::{Hub, MemoryStore};
use sse_runtime::{LastEventId, ServerSentEvent, sse};
use tower_http::limit::RequestBodyLimitLayer;

/// Messages kept per room for clients that reconnect.
const HISTORY: usize = 100;
/// The longest message, in bytes.
const MAX_MESSAGE: usize = 4 * 1024;
/// The longest room name.
const MAX_ROOM: usize = 64;
/// The room of a page that names none.
const DEFAULT_ROOM: &str = "lobby";

/// The room named in the path, checked: 1-64 characters of `A-Z a-z 0-9 _ -`, else 400.
struct Room(String);

/// The answer to a room name that is not one: 400.
struct BadRoom;

impl IntoResponse for BadRoom {
    fn into_response(self) -> Response {
        let message = "a room name is 1-64 characters of A-Z, a-z, 0-9, _ and -\n";
        (StatusCode::BAD_REQUEST, message).into_response()
    }
}

fn check_room(name: String) -> Result<String, BadRoom> {
    let valid = (1..=MAX_ROOM).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some(name).ok_or(BadRoom)
}

impl<S: Send + Sync> FromRequestParts<S> for Room {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_room(name)
            .map(Room)
            .map_err(IntoResponse::into_response)
    }
}

sse! {
    /// The room's messages after the client's cursor (`Last-Event-ID`, else `?last_event_id=`),
    /// then live ones; without a cursor, live ones only.
    #[sse_endpoint(ping = 15, retry = 1000)]
    async fn events(State(hub): State<Hub>, Room(room): Room, since: LastEventId) {
        tracing::info!(%room, since = %since, "client joined");
        for await event in hub.resume([room], since).await {
            yield event;
        }
    }
}

/// Publishes the body (UTF-8 text, at most 4 KiB) to the room; answers the message's id.
async fn say(
    State(hub): State<Hub>,
    Room(room): Room,
    text: String,
) -> Result<String, (StatusCode, &'static str)> {
    if text.trim().is_empty() {
        return Err((StatusCode::BAD_REQUEST, "empty message\n"));
    }
    let event = ServerSentEvent::new().event("message").data(text);
    match hub.publish(&room, event).await {
        Ok(id) => Ok(id.to_string()),
        Err(error) => {
            tracing::error!(%error, "could not publish");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "could not publish\n"))
        }
    }
}

#[derive(Deserialize)]
struct PageQuery {
    room: Option<String>,
}

/// The page of a room (`?room=`, default `lobby`), with the hub's newest id rendered in.
async fn page(State(hub): State<Hub>, Query(query): Query<PageQuery>) -> Response {
    let room = match check_room(query.room.unwrap_or_else(|| DEFAULT_ROOM.to_owned())) {
        Ok(room) => room,
        Err(bad) => return bad.into_response(),
    };
    let head = match hub.head().await {
        Ok(head) => head,
        Err(error) => {
            tracing::error!(%error, "could not read the head");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // Both are plain ASCII (a checked room name, `<letters>:<digits>`): safe in HTML as is.
    let html = include_str!("chat.html")
        .replace("{{room}}", &room)
        .replace("{{head}}", &head.to_string());
    // A cached page would carry an old head: always render it afresh.
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hub = Hub::builder().store(MemoryStore::new(HISTORY)).build();
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    let app = Router::new()
        .route("/", get(page))
        .route("/metrics", get(move || async move { prometheus.render() }))
        .route("/rooms/{room}/events", get(events))
        .route(
            "/rooms/{room}/messages",
            post(say).layer(RequestBodyLimitLayer::new(MAX_MESSAGE)),
        )
        .with_state(hub);
    examples::serve(app).await
}
