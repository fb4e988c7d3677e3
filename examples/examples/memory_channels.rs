//! Push-based streams fed by channels (sse-starlette's example 05, `data_sender_callable`): one
//! producer, several producers merged into one channel, and backpressure with a small buffer.
//!
//! ```sh
//! cargo run -p examples --example memory_channels
//! curl -N http://127.0.0.1:8000/memory-channel   # nine events a second apart, then the end
//! curl -N http://127.0.0.1:8000/multi-producer   # three producers, merged
//! curl -N http://127.0.0.1:8000/backpressure     # a fast producer held back by a buffer of 2
//! ```
//!
//! Each producer runs inside its response (`EventSourceResponse::with_producer`): it starts with
//! the stream and is dropped with it, so a client that leaves stops its producers at once. The
//! stream ends when every sender is gone.

use std::time::Duration;

use axum::{Router, routing::get};
use sse_runtime::channel::Sender;
use sse_runtime::{EventSourceResponse, ServerSentEvent, SseContext};

static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One producer with a buffer of 10: nine `production_data` events, then `producer_complete`.
async fn memory_channel(context: SseContext) -> EventSourceResponse {
    let request = NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    EventSourceResponse::with_producer(10, move |tx| async move {
        for i in 1..=9 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let event = ServerSentEvent::new()
                .event("production_data")
                .id(format!("prod-{request}-{i}"))
                .data(format!("data item {i} from request {request}"));
            if tx.send(event).await.is_err() {
                tracing::info!(request, "memory-channel: client left, producer stops");
                return;
            }
        }
        let _ = tx
            .send(
                ServerSentEvent::new()
                    .event("producer_complete")
                    .data("all data sent"),
            )
            .await;
        // Dropping `tx` here ends the stream cleanly.
    })
    .context(context)
}

/// Three producers with buffers of 5, forwarded into one channel with a buffer of 20.
async fn multi_producer(context: SseContext) -> EventSourceResponse {
    EventSourceResponse::with_producer(20, |merged: Sender| async move {
        let mut forwarders = tokio::task::JoinSet::new();
        for producer in 1..=3u32 {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<ServerSentEvent>(5);
            forwarders.spawn(async move {
                for i in 1..=3u32 {
                    tokio::time::sleep(Duration::from_millis(300 * u64::from(producer))).await;
                    let event = ServerSentEvent::new()
                        .event(format!("producer_{producer}"))
                        .data(format!("producer {producer}, item {i}"));
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            });
            let merged = merged.clone();
            forwarders.spawn(async move {
                while let Some(event) = rx.recv().await {
                    if merged.send(event).await.is_err() {
                        return;
                    }
                }
            });
        }
        // The JoinSet lives in this producer: a client leaving drops it, aborting the tasks.
        while forwarders.join_next().await.is_some() {}
    })
    .ping(Duration::from_secs(3))
    .context(context)
}

/// A producer twenty items fast (10 ms apart) into a buffer of 2: `send` waits whenever the
/// buffer is full, so the producer runs at the pace of the client.
async fn backpressure(context: SseContext) -> EventSourceResponse {
    EventSourceResponse::with_producer(2, |tx| async move {
        for i in 1..=20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let started = tokio::time::Instant::now();
            if tx
                .send(ServerSentEvent::new().id(i).data(format!("item {i}")))
                .await
                .is_err()
            {
                return;
            }
            let waited = started.elapsed();
            if waited > Duration::from_millis(5) {
                tracing::debug!(item = i, ?waited, "backpressure: producer waited for room");
            }
        }
    })
    .ping(Duration::from_secs(2))
    .context(context)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/memory-channel", get(memory_channel))
        .route("/multi-producer", get(multi_producer))
        .route("/backpressure", get(backpressure));
    examples::serve(app).await
}
