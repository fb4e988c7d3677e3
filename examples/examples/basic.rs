//! Basic streaming: the numbers 1 to 5, 0.9 s apart.
//!
//! ```sh
//! cargo run -p examples --example basic
//! curl -N http://127.0.0.1:8000/numbers
//! ```

use std::time::Duration;

use axum::{Router, routing::get};
use sse_runtime::{EventSourceResponse, ServerSentEvent, SseContext};

async fn numbers(context: SseContext) -> EventSourceResponse {
    let events = async_stream::stream! {
        for i in 1..=5 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            yield ServerSentEvent::new().data(i);
        }
    };
    EventSourceResponse::new(events).context(context)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples::init_tracing();
    let app = Router::new().route("/numbers", get(numbers));
    let listener = tokio::net::TcpListener::bind(examples::listen_addr()).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
