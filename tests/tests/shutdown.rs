//! Graceful shutdown that never hangs (SPEC section J, and issues #59, #73, #132, #152, #157,
//! #167): a `Shutdown` handle per app (not a global switch), cooperative farewells within a grace
//! period.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use sse_runtime::{EventSourceResponse, ServerSentEvent, Shutdown, ShutdownSignal, SseContext};
use tests::{
    GracefulServer, Log, WITHIN, ended_cleanly, raw_get, read_to_close, read_until, serve_graceful,
    serve_graceful_plain,
};

/// Ticks every 20 ms; with `farewell`, says goodbye when told about the shutdown.
fn ticks(log: Log, farewell: bool, grace: Duration) -> Router {
    Router::new().route(
        "/ticks",
        get(move |signal: ShutdownSignal, context: SseContext| {
            let log = log.clone();
            async move {
                let source = async_stream::stream! {
                    let mut n = 0;
                    loop {
                        tokio::select! {
                            () = signal.wait(), if farewell => break,
                            () = tokio::time::sleep(Duration::from_millis(20)) => {}
                        }
                        n += 1;
                        yield ServerSentEvent::new().id(n).data(format!("tick {n}"));
                    }
                    yield ServerSentEvent::new().event("shutdown").data("bye");
                };
                let (a, b) = (log.clone(), log.clone());
                EventSourceResponse::new(source)
                    .ping(Duration::from_millis(50))
                    .shutdown_grace(grace)
                    .on_close(move |reason| a.push(format!("close:{reason:?}")))
                    .background(async move { b.push("background") })
                    .context(context)
            }
        }),
    )
}

async fn wait_done(server: GracefulServer, since: Instant) -> Duration {
    tokio::time::timeout(WITHIN, server.done)
        .await
        .expect("axum::serve hung")
        .unwrap();
    since.elapsed()
}

#[tokio::test]
async fn spec_106_by_default_every_stream_is_aborted_at_once_and_serve_returns() {
    every_stream_is_aborted_at_once(false).await;
}

/// What plain `axum::serve` on a `TcpListener` can guarantee: streams whose clients read end on
/// shutdown (one whose client stopped reading cannot; see frozen_client.rs).
#[tokio::test]
async fn plain_axum_serve_ends_the_streams_of_reading_clients() {
    every_stream_is_aborted_at_once(true).await;
}

async fn every_stream_is_aborted_at_once(plain_axum: bool) {
    let log = Log::default();
    let shutdown = Shutdown::new();
    let app = ticks(log.clone(), false, Duration::ZERO);
    let server = if plain_axum {
        serve_graceful_plain(app, &shutdown).await
    } else {
        serve_graceful(app, &shutdown).await
    };
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = raw_get(server.addr, "/ticks").await;
        read_until(&mut client, b"data: tick 2\r\n").await;
        clients.push(client);
    }
    let triggered = Instant::now();
    shutdown.trigger();
    let took = wait_done(server, triggered).await;
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    for client in &mut clients {
        let rest = read_to_close(client).await;
        assert!(
            !ended_cleanly(&rest),
            "a default shutdown aborts the response"
        );
    }
    let entries = log.wait_for(|e| e.len() == 6).await;
    // SPEC 112: background tasks run after a shutdown.
    assert_eq!(
        entries.iter().filter(|e| *e == "close:Shutdown").count(),
        3,
        "{entries:?}"
    );
    assert_eq!(
        entries.iter().filter(|e| *e == "background").count(),
        3,
        "{entries:?}"
    );
}

#[tokio::test]
async fn spec_107_108_a_cooperative_stream_says_goodbye_and_ends_cleanly() {
    let log = Log::default();
    let shutdown = Shutdown::new();
    let server = serve_graceful(ticks(log.clone(), true, Duration::from_secs(5)), &shutdown).await;
    let mut client = raw_get(server.addr, "/ticks").await;
    read_until(&mut client, b"data: tick 1\r\n").await;
    let triggered = Instant::now();
    shutdown.trigger();
    let rest = read_to_close(&mut client).await;
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.contains("event: shutdown\r\ndata: bye\r\n\r\n"),
        "{text}"
    );
    assert!(
        ended_cleanly(&rest),
        "the farewell is followed by a clean end: {text:?}"
    );
    let took = wait_done(server, triggered).await;
    assert!(
        took < Duration::from_secs(1),
        "the stream finished early; shutdown took {took:?}"
    );
    assert_eq!(
        log.wait_for(|e| e.len() == 2).await,
        ["close:Shutdown", "background"]
    );
}

#[tokio::test]
async fn spec_109_86_a_stream_ignoring_the_signal_is_force_closed_when_the_grace_ends() {
    let log = Log::default();
    let shutdown = Shutdown::new();
    let grace = Duration::from_millis(700);
    let server = serve_graceful(ticks(log.clone(), false, grace), &shutdown).await;
    let mut client = raw_get(server.addr, "/ticks").await;
    read_until(&mut client, b"data: tick 1\r\n").await;
    let triggered = Instant::now();
    shutdown.trigger();
    let rest = read_to_close(&mut client).await;
    let closed = triggered.elapsed();
    assert!(
        closed >= grace && closed < grace + Duration::from_secs(1),
        "closed after {closed:?}"
    );
    assert!(!ended_cleanly(&rest), "a forced close aborts the response");
    let text = String::from_utf8_lossy(&rest);
    // SPEC 86, 110: data and pings continue during the grace period.
    assert!(text.matches("data: tick").count() >= 10, "{text}");
    assert!(
        text.contains(": ping - "),
        "no ping during the grace period: {text}"
    );
    wait_done(server, triggered).await;
    assert_eq!(
        log.wait_for(|e| e.len() == 2).await,
        ["close:Shutdown", "background"]
    );
}

#[tokio::test]
async fn spec_111_a_client_leaving_during_the_grace_ends_its_stream_early() {
    let log = Log::default();
    let shutdown = Shutdown::new();
    let server = serve_graceful(
        ticks(log.clone(), false, Duration::from_secs(30)),
        &shutdown,
    )
    .await;
    let mut client = raw_get(server.addr, "/ticks").await;
    read_until(&mut client, b"data: tick 1\r\n").await;
    let triggered = Instant::now();
    shutdown.trigger();
    read_until(&mut client, b"data: tick 3\r\n").await;
    drop(client);
    let took = wait_done(server, triggered).await;
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(
        log.wait_for(|e| e.len() == 2).await,
        ["close:ClientDisconnected", "background"]
    );
}

#[tokio::test]
async fn spec_105_streams_opened_after_the_shutdown_end_at_once() {
    let log = Log::default();
    let shutdown = Shutdown::new();
    // A server that keeps accepting (its own graceful shutdown is not wired), to open late streams.
    let app = ticks(log.clone(), true, Duration::from_secs(5)).layer(shutdown.layer());
    let server = tests::serve(app).await;
    shutdown.trigger();
    let mut client = raw_get(server.addr, "/ticks").await;
    let raw = read_to_close(&mut client).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        !text.contains("data:"),
        "no data after the shutdown: {text}"
    );
    assert!(!ended_cleanly(&raw));
    assert_eq!(
        log.wait_for(|e| e.len() == 2).await,
        ["close:Shutdown", "background"]
    );
}

#[tokio::test]
async fn issue_157_a_stream_that_opted_out_runs_to_completion() {
    let shutdown = Shutdown::new();
    let log = Log::default();
    let closes = log.clone();
    let app = Router::new().route(
        "/report",
        get(move |context: SseContext| {
            let log = closes.clone();
            async move {
                let source = async_stream::stream! {
                    for part in 1..=10 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        yield format!("part {part}");
                    }
                };
                EventSourceResponse::new(source)
                    .drain_on_shutdown(false)
                    .on_close(move |reason| log.push(format!("close:{reason:?}")))
                    .context(context)
            }
        }),
    );
    let server = serve_graceful(app, &shutdown).await;
    let mut client = raw_get(server.addr, "/report").await;
    read_until(&mut client, b"data: part 1\r\n").await;
    let triggered = Instant::now();
    shutdown.trigger();
    let rest = read_to_close(&mut client).await;
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("data: part 10\r\n\r\n"), "{text}");
    assert!(ended_cleanly(&rest));
    let took = wait_done(server, triggered).await;
    assert!(
        took >= Duration::from_millis(300),
        "the server did not wait for the stream: {took:?}"
    );
    assert_eq!(log.entries(), ["close:Completed"]);
}

#[tokio::test]
async fn two_servers_with_their_own_handles_shut_down_independently() {
    let (log_a, log_b) = (Log::default(), Log::default());
    let (shutdown_a, shutdown_b) = (Shutdown::new(), Shutdown::new());
    let a = serve_graceful(
        ticks(log_a.clone(), true, Duration::from_secs(5)),
        &shutdown_a,
    )
    .await;
    let b = serve_graceful(
        ticks(log_b.clone(), true, Duration::from_secs(5)),
        &shutdown_b,
    )
    .await;
    let mut client_a = raw_get(a.addr, "/ticks").await;
    let mut client_b = raw_get(b.addr, "/ticks").await;
    read_until(&mut client_a, b"data: tick 1\r\n").await;
    read_until(&mut client_b, b"data: tick 1\r\n").await;

    shutdown_a.trigger();
    let rest = read_to_close(&mut client_a).await;
    assert!(ended_cleanly(&rest));
    wait_done(a, Instant::now()).await;

    // B is untouched: its stream keeps ticking and its server keeps accepting.
    assert!(!shutdown_b.is_triggered());
    read_until(&mut client_b, b"data: tick 10\r\n").await;
    let mut late = raw_get(b.addr, "/ticks").await;
    read_until(&mut late, b"data: tick 1\r\n").await;
    assert!(log_b.entries().is_empty());

    shutdown_b.trigger();
    wait_done(b, Instant::now()).await;
    assert_eq!(log_b.wait_for(|e| e.len() == 4).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_need_no_task_of_their_own_and_leave_none_behind() {
    let shutdown = Shutdown::new();
    let log = Log::default();
    let server = serve_graceful(ticks(log.clone(), true, Duration::from_secs(5)), &shutdown).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut client = raw_get(server.addr, "/ticks").await;
        read_until(&mut client, b"data: tick 1\r\n").await;
        clients.push(client);
    }
    let during = metrics.num_alive_tasks();
    println!("alive tasks: {before} before, {during} with 100 open streams");
    // One task per connection (axum's), none per stream for pings or shutdown.
    assert!(during <= before + 100 + 2, "{before} -> {during}");
    shutdown.trigger();
    for client in &mut clients {
        assert!(ended_cleanly(&read_to_close(client).await));
    }
    let triggered = Instant::now();
    wait_done(server, triggered).await;
    let deadline = Instant::now() + WITHIN;
    while metrics.num_alive_tasks() > before.saturating_sub(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        metrics.num_alive_tasks() < before,
        "tasks left behind: {}",
        metrics.num_alive_tasks()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_open_streams_shut_down_within_the_grace_plus_one_second() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    const CONNECTIONS: usize = 25;
    const STREAMS_PER_CONNECTION: usize = 200; // hyper's default h2 concurrency limit
    let grace = Duration::from_secs(1);
    let log = Log::default();
    let closes = log.clone();
    // Streams that ignore the signal: each must be force-closed when the grace ends.
    let app = Router::new().route(
        "/idle",
        get(move |context: SseContext| {
            let log = closes.clone();
            async move {
                let source = async_stream::stream! {
                    yield "open";
                    std::future::pending::<()>().await;
                };
                EventSourceResponse::new(source)
                    .shutdown_grace(grace)
                    .on_close(move |reason| log.push(format!("{reason:?}")))
                    .context(context)
            }
        }),
    );
    let shutdown = Shutdown::new();
    let server = serve_graceful(app, &shutdown).await;

    let mut bodies = Vec::new();
    for _ in 0..CONNECTIONS {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (client, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..STREAMS_PER_CONNECTION {
            let mut client = client.clone();
            let uri = format!("http://{}/idle", server.addr);
            opening.spawn(async move {
                let request = http::Request::get(uri).body(Body::empty()).unwrap();
                let mut body = client.send_request(request).await.unwrap().into_body();
                let first = tokio::time::timeout(WITHIN, body.frame())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                assert_eq!(first.into_data().unwrap(), &b"data: open\r\n\r\n"[..]);
                body
            });
        }
        while let Some(body) = opening.join_next().await {
            bodies.push(body.unwrap());
        }
    }
    assert_eq!(bodies.len(), CONNECTIONS * STREAMS_PER_CONNECTION);

    let triggered = Instant::now();
    shutdown.trigger();
    let took = wait_done(server, triggered).await;
    println!(
        "{} streams: shutdown took {took:?} with a grace of {grace:?}",
        bodies.len()
    );
    assert!(
        took <= grace + Duration::from_secs(1),
        "shutdown took {took:?}"
    );
    let entries = log.wait_for(|e| e.len() == 5000).await;
    assert!(entries.iter().all(|e| e == "Shutdown"));
}

/// `serve` returns only once every connection is gone, and with it every response body: what
/// a body holds (a stream's hooks, its subscriptions) is released when it returns. hyper keeps
/// the body of a connection that failed on a write until the connection itself is dropped, and
/// axum's own `serve` counts a connection as finished just before it drops it, so a `Drop` still
/// running then (here a slow one, 100 ms) was still running when `serve` had returned.
///
/// The body is not an SSE stream (nothing of ours watches it): it runs on through the shutdown
/// until its client resets the connection and hyper's next write fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_after_the_body_of_a_connection_whose_write_failed_is_dropped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Its drop first wakes another task: the task woken last runs next on the same thread,
    // so this moves whatever the connection's end woke (the task running `serve`) to where the
    // other worker thread can take it meanwhile, as under load.
    struct SlowDrop(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            self.1.notify_one();
            std::thread::sleep(Duration::from_millis(100));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn({
        let wake = wake.clone();
        async move { wake.notified().await }
    });
    let app = {
        let (dropped, wake) = (dropped.clone(), wake.clone());
        Router::new().route(
            "/flood",
            get(move || {
                let guard = SlowDrop(dropped.clone(), wake.clone());
                async move {
                    let chunks = futures_util::stream::repeat_with(move || {
                        let _held = &guard;
                        Ok::<_, std::convert::Infallible>(vec![b'x'; 16 * 1024])
                    });
                    axum::body::Body::from_stream(chunks)
                }
            }),
        )
    };
    let shutdown = Shutdown::new();
    let server = serve_graceful(app, &shutdown).await;
    let mut client = raw_get(server.addr, "/flood").await;
    read_until(&mut client, b"xxxx").await;
    shutdown.trigger();
    tokio::time::sleep(Duration::from_millis(100)).await;
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    let triggered = Instant::now();
    wait_done(server, triggered).await;
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the body was not yet dropped when serve returned"
    );
}
