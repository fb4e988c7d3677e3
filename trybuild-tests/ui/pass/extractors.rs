//! Every kind of parameter: axum's extractors, custom ones, optional ones, a JSON body (last),
//! `ShutdownSignal` and `CloseHooks` (first, in the middle: it is not an extractor).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router, routing::get, routing::post};
use serde::Deserialize;
use sse_runtime::{CloseHooks, ShutdownSignal, sse};

#[derive(Clone)]
struct AppState {
    greeting: String,
}

#[derive(Deserialize)]
struct Page {
    from: Option<u32>,
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

impl<S: Send + Sync> OptionalFromRequestParts<S> for UserId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(<UserId as FromRequestParts<S>>::from_request_parts(parts, state).await.ok())
    }
}

sse! {
    async fn path_and_query(Path((lo, hi)): Path<(u32, u32)>, Query(page): Query<Page>) {
        for i in page.from.unwrap_or(lo)..=hi {
            yield i;
        }
    }

    async fn query_map(Query(params): Query<HashMap<String, String>>) {
        yield params.len();
    }

    async fn state_and_headers(State(state): State<AppState>, headers: HeaderMap) {
        yield state.greeting.clone();
        yield headers.len();
    }

    async fn custom(UserId(user): UserId, maybe: Option<UserId>) {
        yield user;
        yield maybe.map(|UserId(id)| id);
    }

    async fn hooks_first(hooks: CloseHooks, ConnectInfo(addr): ConnectInfo<SocketAddr>) {
        hooks.on_client_close(move || println!("{addr} left"));
        yield "hi";
    }

    async fn json_body(
        State(state): State<AppState>,
        shutdown: ShutdownSignal,
        mut hooks: CloseHooks,
        Json(filter): Json<Filter>,
    ) {
        hooks = hooks.clone();
        hooks.on_close(|reason| println!("closed: {reason}"));
        for symbol in filter.symbols {
            if shutdown.is_triggered() {
                return;
            }
            yield format!("{} {symbol}", state.greeting);
        }
    }

    async fn no_parameters() {
        yield "none";
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/range/{lo}/{hi}", get(path_and_query))
        .route("/map", get(query_map))
        .route("/state", get(state_and_headers))
        .route("/custom", get(custom))
        .route("/hooks", get(hooks_first))
        .route("/json", post(json_body))
        .route("/none", get(no_parameters))
        .with_state(AppState {
            greeting: "hello".to_owned(),
        });
}
