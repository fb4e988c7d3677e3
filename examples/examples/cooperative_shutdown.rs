//! Cooperative shutdown: ticks every second until the server shuts down, then a farewell event
//! and a clean end within the grace period.
//!
//! ```sh
//! cargo run -p examples --example cooperative_shutdown
//! curl -N http://127.0.0.1:8000/events
//! # press Ctrl-C in the server's terminal (or `kill -TERM <pid>`): curl shows
//! #   event: shutdown
//! #   data: server is shutting down, goodbye
//! # and ends cleanly; the server exits at once.
//! ```

use std::time::Duration;

use axum::{Router, routing::get};
use sse_runtime::{ServerSentEvent, Shutdown, ShutdownSignal, sse};

sse! {
    /// A tick a second; on shutdown, a farewell and a clean end (within the 5 s grace period,
    /// after which the stream would be cut).
    #[sse_endpoint(shutdown_grace = 5)]
    async fn events(shutdown: ShutdownSignal) {
        let mut n = 0;
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            n += 1;
            yield ServerSentEvent::new().id(n).data(format!("tick {n}"));
        }
        yield ServerSentEvent::new()
            .event("shutdown")
            .data("server is shutting down, goodbye");
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples::init_tracing();
    let shutdown = Shutdown::new();
    let app = Router::new().route("/events", get(events));
    let listener = examples::bind().await;
    // The shutdown reaches every stream, and a client that stopped reading is cut when the
    // grace ends, so the server always exits within the grace (plus a fraction of a second).
    sse_runtime::serve(listener, app, &shutdown).await?;
    tracing::info!("server stopped");
    Ok(())
}
