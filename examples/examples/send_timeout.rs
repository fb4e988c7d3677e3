//! Detecting frozen clients (sse-starlette's example 06): 4 KiB events every millisecond; a client
//! that stops reading for 10 s is cut, and the server says so.
//!
//! ```sh
//! cargo run -p examples --example send_timeout
//! curl -N http://127.0.0.1:8000/events > /dev/null
//! # press Ctrl-Z to suspend curl: its buffers fill, and 10 s later the server logs
//! #   "client stopped reading: send timeout"   and closes the connection.
//! # `fg` then shows curl's "connection reset".
//! ```
//!
//! The server uses the SSE listener (`sse_runtime::connection`): a send timeout then closes the
//! socket itself, so a frozen client costs nothing once it is cut.

use std::time::Duration;

use axum::{Router, routing::get};
use sse_runtime::{CloseReason, Shutdown, sse};

fn report(reason: CloseReason) {
    match reason {
        CloseReason::SendTimeout => tracing::warn!("client stopped reading: send timeout"),
        other => tracing::info!(reason = %other, "stream closed"),
    }
}

sse! {
    /// 4 KiB events as fast as every millisecond.
    #[sse_endpoint(send_timeout = 10, on_close = report)]
    async fn events() {
        let padding = " ".repeat(4096);
        for i in 1u64.. {
            if i % 100 == 0 {
                tracing::info!(events = i, "sent");
            }
            yield sse_runtime::ServerSentEvent::new().id(i).data(&padding);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples::init_tracing();
    let shutdown = Shutdown::new();
    let app = Router::new().route("/events", get(events));
    let listener = examples::bind().await;
    sse_runtime::serve(listener, app, &shutdown).await
}
