//! Every option on fns that return their stream, infallible and fallible.

#![deny(unused)]

use axum::{Router, routing::get};
use sse_runtime::{CloseReason, ServerSentEvent, sse_endpoint};
use user_futures::stream::{self, Stream};

fn my_ping() -> ServerSentEvent {
    ServerSentEvent::new().comment("still here")
}

fn client_left() {}
async fn log_close(_reason: CloseReason) {}
async fn cleanup() {}

fn error_event(error: std::io::Error) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

#[sse_endpoint(
    ping = 15,
    ping_message = my_ping,
    send_timeout = 5,
    sep = "\n",
    status = 200,
    headers("x-custom" = "value", "X-Other" = "other value"),
    cache_control = "no-cache",
    media_type = "text/event-stream",
    retry = 3000,
    on_client_close = client_left,
    on_close = log_close,
    background = cleanup,
    shutdown_grace = 2.5,
    drain_on_shutdown = false,
    crate = "sse_runtime",
)]
async fn everything() -> impl Stream<Item = u32> {
    stream::iter(1..=3)
}

#[sse_endpoint(
    ping = 0.5,
    send_timeout = 1e-1,
    sep = "\r",
    status = 299,
    headers("x-feed" = "prices"),
    retry = 10,
    on_client_close = client_left,
    on_close = log_close,
    background = cleanup,
    shutdown_grace = 1,
    drain_on_shutdown = true,
    on_error = error_event,
)]
async fn everything_fallible() -> impl Stream<Item = Result<u32, std::io::Error>> {
    stream::iter(vec![Ok(1)])
}

fn main() {
    let _app: Router = Router::new()
        .route("/everything", get(everything))
        .route("/everything-fallible", get(everything_fallible));
}
