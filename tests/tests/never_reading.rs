//! Thousands of connections that ask for a stream and never read, on a busy hub: the server's
//! memory stays under a stated bound however much is published, and readers still get every
//! event. (The soak command measures the same with a longer window: RELIABILITY.md.)
//!
//! The bound per never-reading connection, without a send timeout (the worst case: nothing
//! ends them), is what the server can hold for it:
//!
//! * what an idle SSE connection costs (about 21 KiB: BENCHMARKS.md, scenario (d)), measured
//!   here once the connections are open and before the hub gets busy;
//! * 441 KiB of queued frames: hyper stops polling the body once 408 KiB (its write-buffer cap
//!   per HTTP/1.1 connection, 8 KiB + 100 × 4 KiB) are queued, and the frame it took last may
//!   cross the cap by one frame (frames coalesce up to 32 KiB, plus the event that crosses);
//! * a 32nd more: a frame holds at most that much room beyond its bytes (the driver shrinks
//!   the others before handing them over);
//! * 64 KiB of page rounding: hyper queues at most 16 frames, each touching at most one page
//!   it does not fill.
//!
//! That is idle + 519 KiB. The kernel's socket buffers are not RSS. The hub's ring adds its
//! capacity once.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sse_runtime::{Broadcast, Payload, ServerSentEvent, sse_endpoint};
use tests::{read_until, rss_kib, send_get, serve_sse};
use tokio::net::{TcpSocket, TcpStream};

const NEVER_READING: usize = 2_000;
const EVENT_BYTES: usize = 1024;
const CAPACITY: usize = 4096;
/// KiB a never-reading connection may hold beyond an idle one's, as above.
const QUEUED_KIB: f64 = (408.0 + 33.0) * (1.0 + 1.0 / 32.0) + 16.0 * 4.0;

#[sse_endpoint(ping = 15)]
async fn events(State(hub): State<Broadcast>) -> impl futures_util::Stream<Item = Payload> {
    hub.subscribe()
}

/// Asks for the stream with a 4 KiB receive buffer and reads only the head.
async fn never_reading(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    send_get(&mut stream, "/events").await;
    read_until(&mut stream, b"\r\n\r\n").await;
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_never_reading_connections_stay_under_the_memory_bound() {
    let hub = Broadcast::new(CAPACITY);
    let app = Router::new()
        .route("/events", get(events))
        .with_state(hub.clone());
    let server = serve_sse(app).await;
    // A reader that reads everything, to show the others do not hold it up.
    let payload = "p".repeat(EVENT_BYTES);
    // Counts the events it reads, as they come.
    let response = reqwest::get(server.url("/events")).await.unwrap();
    let reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut body = response.bytes_stream();
        let (mut events, mut carry) = (0, Vec::new());
        while events < 6010 {
            let Some(Ok(chunk)) = body.next().await else {
                break;
            };
            carry.extend_from_slice(&chunk);
            while let Some(end) = carry.windows(4).position(|w| w == b"\r\n\r\n") {
                if carry.starts_with(b"id: ") {
                    events += 1;
                }
                carry.drain(..end + 4);
            }
        }
        events
    });
    let publish = |from: usize, to: usize| {
        for i in from..to {
            let _subscribers = hub.send(ServerSentEvent::new().id(i).data(payload.as_str()));
        }
    };
    publish(0, 10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib().expect("Linux");
    let mut stalled = Vec::new();
    for _ in 0..NEVER_READING {
        stalled.push(never_reading(server.addr).await);
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while hub.subscriber_count() < NEVER_READING + 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every connection subscribed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = rss_kib().unwrap();
    // 1,000 events/s for 3 s, 3 MiB offered to each, far more than hyper queues and the
    // kernel buffers; then as much again: memory must not follow.
    let bound =
        idle as f64 + NEVER_READING as f64 * QUEUED_KIB + (CAPACITY * EVENT_BYTES) as f64 / 1024.0;
    let mut peaks = Vec::new();
    for round in 0..2 {
        let mut peak = 0;
        for tick in 0..300 {
            let from = 10 + (round * 300 + tick) * 10;
            publish(from, from + 10);
            tokio::time::sleep(Duration::from_millis(10)).await;
            if tick % 20 == 0 {
                peak = peak.max(rss_kib().unwrap());
            }
        }
        peaks.push(peak.max(rss_kib().unwrap()));
    }
    assert_eq!(reader.await.unwrap(), 6010, "the reader got every event");
    println!(
        "RSS {before} KiB before, {idle} KiB with {NEVER_READING} idle ({:.1} KiB each), {peaks:?} KiB after each 3 s of 1,000 events/s: {:.1} KiB queued per connection; bound {bound:.0} KiB",
        (idle as f64 - before as f64) / NEVER_READING as f64,
        (peaks[1] as f64 - idle as f64) / NEVER_READING as f64
    );
    for peak in &peaks {
        assert!(
            (*peak as f64) <= bound,
            "RSS {peak} KiB over the bound {bound:.0} KiB"
        );
    }
    // Bounded, not growing with what is published: the second round adds almost nothing.
    let growth = peaks[1].saturating_sub(peaks[0]) as f64;
    assert!(
        growth <= 0.05 * (peaks[0] - before) as f64,
        "RSS grew {growth} KiB in the second round: {peaks:?}"
    );
    drop(stalled);
    tokio::time::timeout(Duration::from_secs(30), async {
        while hub.subscriber_count() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the never-reading streams ended once their clients left");
}
