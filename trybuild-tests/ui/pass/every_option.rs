//! Every option at once, and each hook both sync and async.

use axum::{Router, routing::get};
use sse_runtime::{CloseReason, ServerSentEvent, sse};

fn my_ping() -> ServerSentEvent {
    ServerSentEvent::new().comment("still here")
}

fn client_left() {}
async fn client_left_async() {}
fn log_close(_reason: CloseReason) {}
async fn log_close_async(_reason: CloseReason) {}
async fn cleanup() {}

fn error_event(error: std::io::Error) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

sse! {
    #[sse_endpoint(
        ping = 15,
        ping_message = my_ping,
        send_timeout = 5,
        coalesce = 0.005,
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
        on_error = error_event,
        crate = "sse_runtime",
    )]
    async fn everything() -> std::io::Result<()> {
        yield 1;
        Ok(())
    }

    #[sse_endpoint(ping = 0.5, send_timeout = 1e-1, sep = "\r", status = 299)]
    async fn fractional() {
        yield "a";
    }

    #[sse_endpoint(ping = 0, sep = "\r\n", on_client_close = client_left_async, on_close = log_close_async)]
    async fn async_hooks() {
        yield "b";
    }

    #[sse_endpoint()]
    async fn empty_options() {
        yield "c";
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/everything", get(everything))
        .route("/fractional", get(fractional))
        .route("/async-hooks", get(async_hooks))
        .route("/empty-options", get(empty_options));
}
