//! Broadcasting: `POST /send` fans a message out to every connected client, encoded once;
//! `GET /status` counts the clients (sse-starlette's example 02).
//!
//! ```sh
//! cargo run -p examples --example broadcasting
//! curl -N http://127.0.0.1:8000/events                # in one or more terminals
//! curl -X POST http://127.0.0.1:8000/send \
//!      -H 'content-type: application/json' -d '{"message": "hello", "event": "greeting"}'
//! curl http://127.0.0.1:8000/status                   # {"connected_clients":1}
//! ```
//!
//! A client that falls more than 100 events behind receives an `event: lagged` whose data is the
//! number of events it missed, then carries on with the oldest event still held (the 100 most
//! recent).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sse_runtime::{Broadcast, ServerSentEvent, sse};

sse! {
    /// Every message sent from now on.
    #[sse_endpoint]
    async fn events(State(hub): State<Broadcast>) {
        yield ServerSentEvent::new().comment("connected");
        for await event in hub.subscribe() {
            yield event;
        }
    }
}

#[derive(Deserialize)]
struct Message {
    message: String,
    event: Option<String>,
}

async fn send(State(hub): State<Broadcast>, Json(message): Json<Message>) -> Json<Value> {
    let mut event = ServerSentEvent::new().data(message.message);
    if let Some(name) = message.event {
        event = event.event(name);
    }
    let delivered = hub.send(event).unwrap_or(0);
    Json(json!({ "delivered_to": delivered }))
}

async fn status(State(hub): State<Broadcast>) -> Json<Value> {
    Json(json!({ "connected_clients": hub.subscriber_count() }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/events", get(events))
        .route("/send", post(send))
        .route("/status", get(status))
        .with_state(Broadcast::new(100));
    examples::serve(app).await
}
