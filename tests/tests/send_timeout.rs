//! Send timeout against a client that connects and never reads (SPEC section H; example 06): a
//! raw TCP socket with a small receive buffer while the source produces 4 KiB events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use sse_runtime::{EventSourceResponse, SseContext};
use tests::{Log, rss_kib, send_get, serve, serve_sse};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Default)]
struct Probe {
    log: Log,
    produced: Arc<AtomicU64>,
    last_produced: Arc<Mutex<Option<Instant>>>,
    closed_at: Arc<Mutex<Option<Instant>>>,
}

/// `/flood` yields 4 KiB events, as fast as possible or one per `pace`.
fn app(probe: Probe, pace: Option<Duration>) -> Router {
    Router::new().route(
        "/flood",
        get(move |context: SseContext| {
            let probe = probe.clone();
            async move {
                let counter = probe.clone();
                let source = async_stream::stream! {
                    let event = "x".repeat(4096);
                    loop {
                        counter.produced.fetch_add(4096, Ordering::SeqCst);
                        *counter.last_produced.lock().unwrap() = Some(Instant::now());
                        yield event.clone();
                        match pace {
                            Some(pace) => tokio::time::sleep(pace).await,
                            None => tokio::task::yield_now().await,
                        }
                    }
                };
                let (log, closed_at) = (probe.log.clone(), probe.closed_at.clone());
                let dropped = probe.log.clone();
                let guard = DropLog(dropped);
                EventSourceResponse::new(async_stream::stream! {
                    let _guard = guard;
                    for await event in source {
                        yield event;
                    }
                })
                .send_timeout(TIMEOUT)
                .on_close(move |reason| {
                    *closed_at.lock().unwrap() = Some(Instant::now());
                    log.push(format!("close:{reason:?}"));
                })
                .background(async { panic!("no background task after a send timeout") })
                .context(context)
            }
        }),
    )
}

struct DropLog(Log);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.0.push("source_dropped");
    }
}

/// A client that asks for the stream and then never reads.
async fn frozen_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    send_get(&mut stream, "/flood").await;
    stream
}

async fn wait_for_timeout(probe: &Probe) {
    let entries = probe
        .log
        .wait_for(|entries| entries.iter().any(|e| e.starts_with("close:")))
        .await;
    assert_eq!(entries, ["source_dropped", "close:SendTimeout"]);
    let last = probe
        .last_produced
        .lock()
        .unwrap()
        .expect("produced something");
    let closed = probe.closed_at.lock().unwrap().expect("closed");
    let after_full = closed.duration_since(last);
    let produced = probe.produced.load(Ordering::SeqCst);
    println!(
        "buffers filled with {} KiB of events; stream ended {after_full:?} later; server RSS {} KiB",
        produced / 1024,
        rss_kib().unwrap_or(0)
    );
    assert!(
        after_full <= TIMEOUT + Duration::from_secs(2),
        "ended {after_full:?} after the buffers filled"
    );
    assert!(
        produced < 64 * 1024 * 1024,
        "unbounded buffering: {produced} bytes produced"
    );
}

#[tokio::test]
async fn with_the_sse_listener_a_frozen_client_is_cut_and_its_socket_closed() {
    let probe = Probe::default();
    let server = serve_sse(app(probe.clone(), None)).await;
    let mut client = frozen_client(server.addr).await;
    wait_for_timeout(&probe).await;

    // The server closed the socket: reading what was buffered ends in EOF or a reset.
    let mut chunk = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept the socket open");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn without_the_sse_listener_a_frozen_client_still_ends_the_stream() {
    let probe = Probe::default();
    let server = serve(app(probe.clone(), None)).await;
    let _client = frozen_client(server.addr).await;
    wait_for_timeout(&probe).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_client_that_pauses_for_less_than_the_timeout_is_not_cut() {
    // 4 KiB every 10 ms; the client drains what arrived, then pauses for half the timeout.
    let probe = Probe::default();
    let server = serve_sse(app(probe.clone(), Some(Duration::from_millis(10)))).await;
    let mut client = frozen_client(server.addr).await;
    let mut chunk = vec![0u8; 256 * 1024];
    let started = Instant::now();
    let mut received = 0;
    while started.elapsed() < TIMEOUT * 4 {
        tokio::time::sleep(TIMEOUT / 2).await;
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(5), client.read(&mut chunk)).await
        {
            assert!(n > 0, "the server closed the connection");
            received += n;
        }
    }
    assert!(received > 100 * 1024, "received only {received} bytes");
    assert!(
        probe.log.entries().is_empty(),
        "cut a reading client: {:?}",
        probe.log.entries()
    );
}
