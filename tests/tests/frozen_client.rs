//! A client that stops reading never holds up a graceful shutdown (SPEC section J): with the
//! documented wiring (`sse_runtime::serve`), `serve` returns within the grace period plus
//! `SHUTDOWN_MARGIN`, every stream reports `Shutdown` to its hooks, and the sockets are closed,
//! over HTTP/1.1 and h2, with and without a grace period.
//!
//! hyper stops polling a response body while its client is not reading, so the body cannot see
//! the shutdown; the connection's `Io` does, as it is the one thing hyper still waits on.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use sse_runtime::connection::SHUTDOWN_MARGIN;
use sse_runtime::{EventSourceResponse, Shutdown, SseContext};
use tests::{
    GracefulServer, Log, flood_events, raw_get, read_to_close, read_until, serve_graceful,
    until_stalled,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// An endless stream of 32 KiB events, counting what it produced.
fn flood(log: Log, produced: Arc<AtomicUsize>, grace: Duration) -> Router {
    Router::new().route(
        "/flood",
        get(move |context: SseContext| {
            let (log, produced) = (log.clone(), produced.clone());
            async move {
                let events = flood_events(produced);
                let (a, b) = (log.clone(), log.clone());
                EventSourceResponse::new(events)
                    .shutdown_grace(grace)
                    .on_client_close(move || a.push("client_close"))
                    .on_close(move |reason| b.push(format!("close:{reason:?}")))
                    .context(context)
            }
        }),
    )
}

/// Triggers the shutdown and checks the guarantee: `serve` returns after the grace and within
/// the grace plus the margin (and some slack for a busy machine); each stream reports
/// `Shutdown` once, and never a client close.
async fn shut_down(
    server: GracefulServer,
    shutdown: &Shutdown,
    grace: Duration,
    log: &Log,
    streams: usize,
) {
    let triggered = Instant::now();
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(20), server.done)
        .await
        .expect("axum::serve hung on a client that stopped reading")
        .unwrap();
    let took = triggered.elapsed();
    let bound = grace + SHUTDOWN_MARGIN + Duration::from_secs(2);
    assert!(took >= grace, "closed before the grace ended: {took:?}");
    assert!(took <= bound, "shutdown took {took:?}, bound {bound:?}");
    let entries = log.wait_for(|e| e.len() >= streams).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        log.entries(),
        vec!["close:Shutdown".to_owned(); streams],
        "{entries:?}"
    );
}

async fn frozen_http1(grace: Duration) {
    let (log, produced) = (Log::default(), Arc::new(AtomicUsize::new(0)));
    let shutdown = Shutdown::new();
    let server = serve_graceful(flood(log.clone(), produced.clone(), grace), &shutdown).await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = raw_get(server.addr, "/flood").await;
        read_until(&mut client, b"\r\n\r\n").await;
        // From here on, the client reads nothing.
        clients.push(client);
    }
    until_stalled(&produced, 2).await;
    shut_down(server, &shutdown, grace, &log, 2).await;
    for client in &mut clients {
        // The socket was closed: reading drains what is buffered, then ends.
        read_to_close(client).await;
    }
}

#[tokio::test]
async fn a_frozen_http1_client_does_not_hold_up_a_shutdown_without_grace() {
    frozen_http1(Duration::ZERO).await;
}

#[tokio::test]
async fn a_frozen_http1_client_is_cut_when_the_grace_ends() {
    frozen_http1(Duration::from_secs(1)).await;
}

/// Opens an h2 (prior knowledge) connection by hand and asks for `path`, then reads nothing:
/// the server sees a client that stops reading after the response head. With `wide_open`, the
/// client grants the largest flow-control windows, so the server writes until the socket's
/// buffers are full; without, the server stops when the default 64 KiB window is used up.
async fn frozen_h2_get(addr: std::net::SocketAddr, path: &str, wide_open: bool) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let settings: &[u8] = if wide_open {
        // SETTINGS_INITIAL_WINDOW_SIZE = 2^31 - 1
        &[0x00, 0x04, 0x7f, 0xff, 0xff, 0xff]
    } else {
        &[]
    };
    frame(&mut out, 0x4, 0, 0, settings);
    if wide_open {
        let increment: u32 = 0x7fff_ffff - 65_535;
        frame(&mut out, 0x8, 0, 0, &increment.to_be_bytes());
    }
    // HPACK: :method GET, :scheme http (static table), :path and :authority as literals.
    let mut headers = vec![0x82, 0x86, 0x04, u8::try_from(path.len()).unwrap()];
    headers.extend_from_slice(path.as_bytes());
    headers.extend_from_slice(&[0x01, 9]);
    headers.extend_from_slice(b"localhost");
    // END_STREAM | END_HEADERS on stream 1.
    frame(&mut out, 0x1, 0x5, 1, &headers);
    stream.write_all(&out).await.unwrap();
    stream
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

async fn frozen_h2(grace: Duration, wide_open: bool) {
    let (log, produced) = (Log::default(), Arc::new(AtomicUsize::new(0)));
    let shutdown = Shutdown::new();
    let server = serve_graceful(flood(log.clone(), produced.clone(), grace), &shutdown).await;
    let mut client = frozen_h2_get(server.addr, "/flood", wide_open).await;
    until_stalled(&produced, 1).await;
    shut_down(server, &shutdown, grace, &log, 1).await;
    read_to_close(&mut client).await;
}

#[tokio::test]
async fn a_frozen_h2_client_does_not_hold_up_a_shutdown_without_grace() {
    frozen_h2(Duration::ZERO, false).await;
}

#[tokio::test]
async fn a_frozen_h2_client_is_cut_when_the_grace_ends() {
    frozen_h2(Duration::from_secs(1), false).await;
}

#[tokio::test]
async fn an_h2_client_with_full_socket_buffers_is_cut_when_the_grace_ends() {
    frozen_h2(Duration::from_secs(1), true).await;
}
