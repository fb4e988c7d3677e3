//! Fns that return their stream, with the attribute alone on stable Rust: the body is ordinary
//! Rust that may `.await` before it returns the stream, and the `yield`s of `stream! { .. }`
//! are that macro's. Every kind of parameter works as in the other bodies.

#![deny(unused)]

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Json, Router, routing::get, routing::post};
use serde::Deserialize;
use sse_runtime::{CloseHooks, ServerSentEvent, ShutdownSignal, sse, sse_endpoint};
use user_futures::stream::{self, Stream, StreamExt};

#[derive(Clone)]
struct Hub {
    greeting: &'static str,
}

impl Hub {
    async fn ready(&self) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    fn subscribe(&self) -> impl Stream<Item = String> + Send + use<> {
        let greeting = self.greeting;
        stream::iter(1..=3).map(move |n| format!("{greeting} {n}"))
    }
}

#[derive(Deserialize)]
struct Page {
    from: u32,
}

#[derive(Deserialize)]
struct Filter {
    symbols: Vec<String>,
}

/// A custom extractor: the `x-user-id` header.
struct UserId(String);

impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get("x-user-id")
            .and_then(|value| value.to_str().ok())
            .map(|id| UserId(id.to_owned()))
            .ok_or(StatusCode::UNAUTHORIZED)
    }
}

#[sse_endpoint(ping = 5)]
async fn numbers() -> impl Stream<Item = u32> {
    stream::iter(1..=3)
}

/// `stream!` owns its `yield`s, which stable rustc does not parse.
#[sse_endpoint]
async fn generated(Path(limit): Path<u32>) -> impl Stream<Item = ServerSentEvent> + Send + 'static {
    user_async_stream::stream! {
        for i in 0..limit {
            tokio::time::sleep(Duration::from_millis(1)).await;
            yield ServerSentEvent::new().id(i).data(i);
        }
    }
}

/// Awaits before it returns the stream, and returns early.
#[sse_endpoint]
async fn awaited(State(hub): State<Hub>, Query(page): Query<Page>) -> impl Stream<Item = String> {
    hub.ready().await;
    if page.from > 100 {
        return hub.subscribe().left_stream();
    }
    let offset = tokio::task::spawn(async move { page.from }).await.unwrap();
    stream::iter(offset..offset + 2)
        .map(|n| n.to_string())
        .right_stream()
}

/// `CloseHooks` is bound before the body runs, and the stream may keep it.
#[sse_endpoint]
async fn hooked(
    hooks: CloseHooks,
    UserId(user): UserId,
    shutdown: ShutdownSignal,
) -> impl Stream<Item = String> {
    let left = user.clone();
    hooks.on_client_close(move || println!("{left} left"));
    user_async_stream::stream! {
        let _hooks = hooks;
        while !shutdown.is_triggered() {
            yield format!("hello {user}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// A JSON body, last as in any handler; the item is any `IntoEvent`.
#[sse_endpoint]
async fn subscribe(Json(filter): Json<Filter>) -> impl Stream<Item = Json<String>> {
    stream::iter(filter.symbols).map(Json)
}

/// Declared without its item type, or with an `impl` one.
#[sse_endpoint]
async fn loose() -> impl Stream<Item = impl sse_runtime::IntoEvent> + Unpin + Sync {
    stream::iter(["a", "b"])
}

// Inside `sse!`, too, where `for await` loops work as in the other bodies.
sse! {
    #[sse_endpoint(ping = 0)]
    async fn in_block() -> impl Stream<Item = usize> {
        let mut total = 0;
        for await chunk in axum::body::Body::from("bytes").into_data_stream() {
            total += chunk.map_or(0, |chunk| chunk.len());
        }
        stream::iter([total])
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/numbers", get(numbers))
        .route("/generated/{limit}", get(generated))
        .route("/awaited", get(awaited))
        .route("/hooked", get(hooked))
        .route("/subscribe", post(subscribe))
        .route("/loose", get(loose))
        .route("/in-block", get(in_block))
        .with_state(Hub { greeting: "hi" });
}
