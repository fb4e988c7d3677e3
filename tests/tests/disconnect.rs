//! Client disconnect over a real TCP connection (SPEC section I, 92-97): the source is dropped
//! within 100 ms even while parked in a long sleep, the client-close hook runs exactly once,
//! `on_close` sees `ClientDisconnected`, and no more pings are produced.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use sse_runtime::{EventSourceResponse, ServerSentEvent, SseContext};
use tests::{Log, raw_get, read_until, serve, serve_sse};

#[derive(Clone, Default)]
struct Probe {
    log: Log,
    pings: Arc<AtomicUsize>,
    dropped_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

struct DropTime(Probe);

impl Drop for DropTime {
    fn drop(&mut self) {
        *self.0.dropped_at.lock().unwrap() = Some(Instant::now());
        self.0.log.push("source_dropped");
    }
}

fn app(probe: Probe, send_timeout: Option<Duration>) -> Router {
    Router::new().route(
        "/parked",
        get(move |context: SseContext| {
            let probe = probe.clone();
            async move {
                let guard = DropTime(probe.clone());
                let source = async_stream::stream! {
                    let _guard = guard;
                    yield "first";
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                };
                let (pings, a, b) = (probe.pings.clone(), probe.log.clone(), probe.log.clone());
                let mut response = EventSourceResponse::new(source)
                    .ping(Duration::from_millis(20))
                    .ping_message(move || {
                        pings.fetch_add(1, Ordering::SeqCst);
                        ServerSentEvent::new().comment("p")
                    })
                    .on_client_close(move || a.push("client_close"))
                    .on_close(move |reason| b.push(format!("close:{reason:?}")))
                    .context(context);
                if let Some(timeout) = send_timeout {
                    response = response.send_timeout(timeout);
                }
                response
            }
        }),
    )
}

async fn disconnect_while_parked(probe: Probe, server: tests::Server) {
    let mut client = raw_get(server.addr, "/parked").await;
    read_until(&mut client, b"data: first\r\n\r\n").await;
    read_until(&mut client, b": p\r\n\r\n").await;
    assert!(probe.log.entries().is_empty(), "nothing ended yet");

    let closed_at = Instant::now();
    drop(client);
    let entries = probe
        .log
        .wait_for(|entries| entries.iter().any(|e| e.starts_with("close:")))
        .await;
    let dropped_at = probe.dropped_at.lock().unwrap().expect("source dropped");
    let delay = dropped_at.duration_since(closed_at);
    println!("source dropped {delay:?} after the client closed its socket");
    assert!(
        delay < Duration::from_millis(100),
        "source dropped only after {delay:?}"
    );
    assert_eq!(
        entries,
        ["client_close", "source_dropped", "close:ClientDisconnected"]
    );

    let pings = probe.pings.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        probe.pings.load(Ordering::SeqCst),
        pings,
        "pings after the disconnect"
    );
    assert_eq!(
        probe.log.entries().len(),
        3,
        "a hook ran twice: {:?}",
        probe.log.entries()
    );
}

#[tokio::test]
async fn disconnect_drops_a_parked_source_at_once_with_plain_axum_serve() {
    let probe = Probe::default();
    let server = serve(app(probe.clone(), None)).await;
    disconnect_while_parked(probe, server).await;
}

#[tokio::test]
async fn disconnect_drops_a_parked_source_at_once_with_the_sse_listener() {
    let probe = Probe::default();
    let server = serve_sse(app(probe.clone(), Some(Duration::from_secs(5)))).await;
    disconnect_while_parked(probe, server).await;
}

#[tokio::test]
async fn disconnect_drops_a_parked_source_at_once_in_a_producer_task() {
    // A send timeout without the SSE listener runs the stream in a task of its own.
    let probe = Probe::default();
    let server = serve(app(probe.clone(), Some(Duration::from_secs(5)))).await;
    disconnect_while_parked(probe, server).await;
}
