//! Authorization per topic with bearer tokens: each user follows its own `users/<name>` topic
//! and the shared `news`; only the `admin` token publishes. A forbidden subscription is refused
//! with `401`/`403` before any stream starts, and no event of another user's topic ever reaches
//! a subscriber, live or replayed, whatever `Last-Event-ID` it sends.
//!
//! ```sh
//! cargo run -p examples --example authorization
//! curl -N -H 'authorization: Bearer alice' 'http://127.0.0.1:8000/events?topic=news&topic=users/alice'
//! curl -i -H 'authorization: Bearer alice' 'http://127.0.0.1:8000/events?topic=users/bob'   # 403
//! curl -i 'http://127.0.0.1:8000/events?topic=news'                                         # 401
//! curl -X POST -H 'authorization: Bearer admin' http://127.0.0.1:8000/publish/users/alice -d 'hi'
//! ```
//!
//! The tokens are a fixed table to keep the example short: put your session or JWT check in
//! `user_of`, or read what an authentication layer left in the request's extensions.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use sse_runtime::resume::{Action, Denied, Grant, Hub};
use sse_runtime::{LastEventId, ServerSentEvent, sse};

/// The user a request's bearer token names.
fn user_of(request: &Parts) -> Result<&'static str, Denied> {
    let token = request
        .headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(Denied::Unauthorized)?;
    ["alice", "bob", "admin"]
        .into_iter()
        .find(|user| *user == token)
        .ok_or(Denied::Unauthorized)
}

fn authorize(request: &Parts, action: Action<'_>) -> Result<(), Denied> {
    let user = user_of(request)?;
    let allowed = match action {
        Action::Subscribe(topics) => topics.iter().all(|topic| {
            &**topic == "news" || topic.strip_prefix("users/") == Some(user) || user == "admin"
        }),
        Action::Publish(_) => user == "admin",
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

sse! {
    /// The granted topics (`?topic=..`), resumable with `Last-Event-ID`.
    #[sse_endpoint(ping = 15)]
    async fn events(grant: Grant, since: LastEventId) {
        for await event in grant.resume(since).await {
            yield event;
        }
    }
}

async fn publish(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
    parts: Parts,
    body: String,
) -> Result<String, Denied> {
    hub.authorize_publish(&parts, &topic)?;
    let event = ServerSentEvent::new().event("message").data(body);
    Ok(hub
        .publish(&topic, event)
        .await
        .map_err(|_| Denied::Forbidden)?
        .to_string())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hub = Hub::builder().authorize(authorize).build();
    let app = Router::new()
        .route("/events", get(events))
        .route("/publish/{*topic}", post(publish))
        .with_state(hub);
    examples::serve(app).await
}
