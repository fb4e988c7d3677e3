//! The first shutdown of a process (SPEC section J). Until any `Shutdown` is triggered, the
//! watches of a stream, of its connection's socket and of `serve`'s connection task skip their
//! poll once they are registered (a hint the process shares; `shutdown.rs` in sse-runtime).
//! This file holds one test so that its process has triggered nothing before it: every watch
//! here is on that fast path when the shutdown comes, and each of them must still wake up.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use sse_runtime::connection::SHUTDOWN_MARGIN;
use sse_runtime::{EventSourceResponse, ServerSentEvent, Shutdown, SseContext};
use tests::{
    Log, WITHIN, flood_events, raw_get, read_to_close, read_until, serve_graceful, until_stalled,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const GRACE: Duration = Duration::from_millis(300);

fn app(log: Log, produced: Arc<AtomicUsize>) -> Router {
    let ticks_log = log.clone();
    Router::new()
        // Polled every 20 ms (and pinged every 50), so its watch is polled many times while
        // registered before the shutdown comes.
        .route(
            "/ticks",
            get(move |context: SseContext| {
                let log = ticks_log.clone();
                async move {
                    let source = async_stream::stream! {
                        for n in 1.. {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            yield ServerSentEvent::new().id(n).data(format!("tick {n}"));
                        }
                    };
                    EventSourceResponse::new(source)
                        .ping(Duration::from_millis(50))
                        .shutdown_grace(GRACE)
                        .on_close(move |reason| log.push(format!("close:{reason:?}")))
                        .context(context)
                }
            }),
        )
        // For a client that never reads: hyper stops polling the body, and only the watch of
        // the connection's socket can close it.
        .route(
            "/flood",
            get(move |context: SseContext| {
                let (log, produced) = (log.clone(), produced.clone());
                async move {
                    EventSourceResponse::new(flood_events(produced))
                        .shutdown_grace(GRACE)
                        .on_close(move |reason| log.push(format!("close:{reason:?}")))
                        .context(context)
                }
            }),
        )
        // A plain request whose keep-alive connection then idles: only `serve`'s connection
        // task sees the shutdown and tells hyper to close it.
        .route("/plain", get(|| async { "plain" }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_106_109_the_first_shutdown_reaches_every_stream_socket_and_connection() {
    let log = Log::default();
    let produced = Arc::new(AtomicUsize::new(0));
    let shutdown = Shutdown::new();
    let server = serve_graceful(app(log.clone(), produced.clone()), &shutdown).await;

    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut client = raw_get(server.addr, "/ticks").await;
        read_until(&mut client, b"data: tick 5\r\n").await;
        readers.push(client);
    }
    let mut frozen = raw_get(server.addr, "/flood").await;
    until_stalled(&produced, 1).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /plain HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut idle, b"plain").await;
    // Every watch is registered and has been passed over by later polls.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let triggered = Instant::now();
    shutdown.trigger();
    tokio::time::timeout(WITHIN, server.done)
        .await
        .expect("serve hung after the first shutdown")
        .unwrap();
    let took = triggered.elapsed();
    let bound = GRACE + SHUTDOWN_MARGIN + Duration::from_secs(2);
    assert!(took < bound, "serve took {took:?}, more than {bound:?}");
    // Closed by the server, each of them (the frozen one's unread bytes are read first).
    for client in readers.iter_mut().chain([&mut idle, &mut frozen]) {
        read_to_close(client).await;
    }
    let entries = log.wait_for(|entries| entries.len() == 4).await;
    assert_eq!(
        entries.iter().filter(|e| *e == "close:Shutdown").count(),
        4,
        "{entries:?}"
    );
}
