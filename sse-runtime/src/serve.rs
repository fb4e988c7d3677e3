//! [`serve`]: the one documented way to run an app with SSE streams.

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener as _;
use http::{Method, Request, Response, StatusCode, Version, header};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tower_service::Service as _;

use crate::connection::{Connection, Listener};
use crate::shutdown::Shutdown;

/// Runs a hyper connection to its end; once the shutdown begins, tells it to close when its
/// requests end. (A macro: hyper's two connection types share no trait.)
macro_rules! drive {
    ($conn:expr, $shutdown:expr, $socket:expr) => {{
        let mut conn = pin!($conn);
        let mut triggered = pin!($shutdown.triggered());
        // Whether `triggered` waits, registered with this task's waker (a spawned task's
        // never changes): until a shutdown of the process begins it needs no poll, which
        // would lock the token that every connection shares.
        let mut armed = false;
        let mut shutting_down = false;
        let result = std::future::poll_fn(|cx| {
            // The streams this poll reaches can tell hyper's repeated polls of their bodies
            // within it from a poll after a wake (see `task_poll`).
            let _poll = crate::task_poll::enter(cx.waker());
            if !$socket.begin_poll() {
                // A send is polling the relayed body in this task's place; it wakes the task
                // when it is done.
                return std::task::Poll::Pending;
            }
            if !shutting_down && !(armed && crate::shutdown::none_triggered()) {
                if triggered.as_mut().poll(cx).is_ready() {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                } else {
                    armed = true;
                }
            }
            // Until this server's shutdown begins (seen above in this very poll), the frames
            // of a relayed SSE body go to the socket from here, and hyper is polled only when
            // it has something to do. A shutdown of another server of the process does not
            // stop them: the watch above is then polled at each poll, and tells.
            if !shutting_down && $socket.poll_task(cx).is_pending() {
                return std::task::Poll::Pending;
            }
            conn.as_mut().poll(cx)
        })
        .await;
        if let Err(error) = result {
            tracing::trace!(%error, "connection ended with an error");
        }
    }};
}

/// Serves `app` on `listener` until `shutdown` is triggered or the process gets SIGINT (Ctrl-C)
/// or SIGTERM, with everything SSE streams need: the [`Shutdown`] reaches every response
/// ([`Shutdown::layer`]), each connection can enforce a send timeout and is closed when the
/// shutdown's grace ends ([`connection`](crate::connection)), and `axum::serve` waits for the
/// connections with [`Shutdown::on_signal`].
///
/// Guarantee: once the shutdown begins, `serve` returns within the longest
/// [`shutdown_grace`](crate::EventSourceResponse::shutdown_grace) of the open streams plus
/// [`SHUTDOWN_MARGIN`](crate::connection::SHUTDOWN_MARGIN), whatever the clients do (reading,
/// slow, or frozen, over HTTP/1.1 or h2); every stream reports
/// [`CloseReason::Shutdown`](crate::CloseReason::Shutdown) to its hooks (unless it ended
/// otherwise first), and every socket that carried a stream is closed. Connections that never
/// carried an SSE stream are left to hyper's graceful shutdown (they finish their request).
///
/// It is what you would get from `axum::serve` wired as below, with one difference: `serve`
/// counts a connection as finished only once it has been dropped, with everything it held (the
/// request in flight, the response body, and with it a stream's hooks). `axum::serve` counts it
/// just before, so a body that hyper still held, say after a failed write, could still be
/// dropped, and its hooks still be running, when `axum::serve` had returned. With `serve`, once
/// it returns every hook of every stream it served has run.
///
/// ```no_run
/// # use axum::Router;
/// # use sse_runtime::Shutdown;
/// # use sse_runtime::connection::{Connection, Listener};
/// # async fn run(app: Router, shutdown: Shutdown) -> std::io::Result<()> {
/// let listener = Listener::bind("127.0.0.1:8000").await?;
/// let app = app.layer(shutdown.layer());
/// axum::serve(listener, app.into_make_service_with_connect_info::<Connection>())
///     .with_graceful_shutdown(shutdown.on_signal())
///     .await
/// # }
/// ```
///
/// The [`Serve`] it returns runs when awaited, and takes hyper settings first
/// ([`http1_only`](Serve::http1_only), [`http1_max_buf_size`](Serve::http1_max_buf_size)).
///
/// **With plain `axum::serve(TcpListener, app)`** (no [`Listener`]) a shutdown still ends every
/// stream that hyper polls, but hyper stops polling a body while its client is not reading, and
/// nothing else can end that stream: its hooks do not run and `serve` waits until the client
/// reads or goes away, which for a laptop gone to sleep may be hours. A
/// [`send_timeout`](crate::EventSourceResponse::send_timeout) then ends the stream after the
/// timeout (the hooks see `SendTimeout`), but the socket stays open and `serve` still waits.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sse_runtime::connection::Listener;
/// use sse_runtime::{Shutdown, sse};
///
/// sse! {
///     #[sse_endpoint(ping = 15, send_timeout = 5)]
///     async fn ticks() {
///         loop {
///             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///             yield "tick";
///         }
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let shutdown = Shutdown::new();
///     let app = Router::new().route("/ticks", get(ticks));
///     let listener = Listener::bind("127.0.0.1:8000").await?;
///     sse_runtime::serve(listener, app, &shutdown).await
/// }
/// ```
pub fn serve(listener: Listener, app: Router, shutdown: &Shutdown) -> Serve {
    Serve {
        listener,
        app: app.layer(shutdown.layer()),
        shutdown: shutdown.clone(),
        http1_only: false,
        http1_max_buf_size: None,
    }
}

/// The server [`serve`] returns: await it to run it. Its methods set how hyper serves each
/// connection.
///
/// ```no_run
/// # use axum::Router;
/// # use sse_runtime::Shutdown;
/// # use sse_runtime::connection::Listener;
/// # async fn run(app: Router) -> std::io::Result<()> {
/// let listener = Listener::bind("127.0.0.1:8000").await?;
/// sse_runtime::serve(listener, app, &Shutdown::new())
///     .http1_only()
///     .http1_max_buf_size(16 * 1024)
///     .await
/// # }
/// ```
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: Listener,
    app: Router,
    shutdown: Shutdown,
    http1_only: bool,
    http1_max_buf_size: Option<usize>,
}

/// The smallest read buffer hyper accepts for HTTP/1 (`max_buf_size` panics below it).
const MIN_HTTP1_BUF: usize = 8192;

impl Serve {
    /// Serves HTTP/1 only; by default a connection may speak HTTP/1.1 or h2 (prior knowledge),
    /// which hyper tells apart from its first bytes. Without that sniff an idle connection
    /// holds about 8 KiB less (BENCHMARKS.md, "Memory per idle connection"); an h2 client that
    /// connects without TLS then gets an error. Behind TLS or a proxy that speaks HTTP/1.1 to
    /// the app, nothing is lost.
    pub fn http1_only(mut self) -> Self {
        self.http1_only = true;
        self
    }

    /// The most an HTTP/1 connection buffers of what it reads: a request head longer than this
    /// is refused (`431`). hyper's default is about 400 KiB; values under 8 KiB count as 8 KiB.
    /// An SSE connection reads one request head and then nothing, so a small cap keeps an
    /// idle stream's read buffer small too (BENCHMARKS.md, "Memory per idle connection").
    pub fn http1_max_buf_size(mut self, bytes: usize) -> Self {
        self.http1_max_buf_size = Some(bytes.max(MIN_HTTP1_BUF));
        self
    }

    fn protocols(&self) -> Protocols {
        if self.http1_only {
            // hyper's own HTTP/1 connection: hyper-util's `auto` builder ignores `http1_only`
            // for connections with upgrades, and would still sniff the version.
            let mut http1 = hyper::server::conn::http1::Builder::new();
            if let Some(bytes) = self.http1_max_buf_size {
                http1.max_buf_size(bytes);
            }
            return Protocols::Http1(http1);
        }
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // As axum::serve: the CONNECT protocol, for WebSockets over h2.
        builder.http2().enable_connect_protocol();
        if let Some(bytes) = self.http1_max_buf_size {
            builder.http1().max_buf_size(bytes);
        }
        Protocols::Auto(builder)
    }

    async fn run(self) -> io::Result<()> {
        // Built once, shared by every connection.
        let protocols = Arc::new(self.protocols());
        let Self {
            mut listener,
            app,
            shutdown,
            ..
        } = self;
        // Once, not per connection or request: every handler becomes a ready route (what
        // `axum::serve` does again for each connection, and a plain `Router` per request).
        let app = app.with_state(());
        let mut signal = pin!(shutdown.on_signal());
        // Every connection's task holds a receiver, dropped last, after the connection.
        let (close_tx, close_rx) = tokio::sync::watch::channel(());
        loop {
            let (io, remote_addr) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut signal => break,
            };
            let connection = Connection::of(&io, remote_addr);
            let socket = io.socket().clone();
            let relay_socket = socket.clone();
            let app = app.clone();
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo(connection.clone()));
                let relay = relayable_request(&request).then(|| relay_socket.clone());
                let response = app.clone().call(request);
                async move {
                    let response = response.await?;
                    // An SSE stream's body relayed through the connection's socket, whose
                    // frames the connection task writes itself while hyper has nothing to
                    // write (`connection::Socket::poll_direct`): that skips hyper's dispatch
                    // for each event; the bytes are the chunks hyper would write.
                    Ok::<_, Infallible>(match relay {
                        Some(socket) if relayable_response(&response) => {
                            response.map(|body| Either::Right(socket.relay(body)))
                        }
                        _ => response.map(Either::Left),
                    })
                }
            });
            let (protocols, shutdown, close_rx) =
                (protocols.clone(), shutdown.clone(), close_rx.clone());
            tokio::spawn(async move {
                // Declared first, so dropped last: the connection, and all it holds, is gone
                // before `serve` can count it finished.
                let _close_rx = close_rx;
                let io = TokioIo::new(io);
                match &*protocols {
                    Protocols::Auto(builder) => {
                        drive!(
                            builder.serve_connection_with_upgrades(io, service),
                            shutdown,
                            socket
                        );
                    }
                    Protocols::Http1(builder) => {
                        drive!(
                            builder.serve_connection(io, service).with_upgrades(),
                            shutdown,
                            socket
                        );
                    }
                }
            });
        }
        drop(close_rx);
        drop(listener);
        close_tx.closed().await;
        Ok(())
    }
}

/// Whether hyper answers `request` with a chunked body if the response has no length:
/// HTTP/1.1 (HTTP/1.0 has no chunks, h2 frames of its own), not `HEAD` or `CONNECT`.
fn relayable_request<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11
        && request.method() != Method::HEAD
        && request.method() != Method::CONNECT
}

/// Whether `response` is an SSE stream that hyper sends chunked: `200`, `text/event-stream`,
/// no length or transfer coding of its own, and a body of unknown length that has not ended.
fn relayable_response(response: &Response<Body>) -> bool {
    let headers = response.headers();
    response.status() == StatusCode::OK
        && response.version() == Version::HTTP_11
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && !http_body::Body::is_end_stream(response.body())
        && http_body::Body::size_hint(response.body())
            .exact()
            .is_none()
}

/// How connections are served: HTTP/1.1 or h2 as the client's first bytes say, or HTTP/1 only.
enum Protocols {
    Auto(auto::Builder<TokioExecutor>),
    Http1(hyper::server::conn::http1::Builder),
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("http1_only", &self.http1_only)
            .field("http1_max_buf_size", &self.http1_max_buf_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::IntoFuture as _;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::connection::{
        COUNTING, DIRECT_CHUNKS, INLINE_POLLS, Listener, PARTIAL_CHUNKS, read_until,
    };
    use crate::tap::Feed;
    use crate::{EventSourceResponse, ServerSentEvent, Shutdown};

    /// Events of `/large`: 16 MiB in all.
    const LARGE: usize = 1_000;

    /// `count` events of `size` bytes of data each, `gap` apart, then the end.
    fn events(count: usize, size: usize, gap: Duration) -> EventSourceResponse {
        EventSourceResponse::new(async_stream::stream! {
            for i in 0..count {
                tokio::time::sleep(gap).await;
                yield ServerSentEvent::new().data(payload(i, size));
            }
        })
    }

    fn payload(i: usize, size: usize) -> String {
        let mut text = format!("{i}:");
        while text.len() < size {
            text.push(char::from(b'a' + (text.len() % 26) as u8));
        }
        text
    }

    fn expected(count: usize, size: usize) -> Vec<u8> {
        (0..count)
            .flat_map(|i| format!("data: {}\r\n\r\n", payload(i, size)).into_bytes())
            .collect()
    }

    async fn server() -> std::net::SocketAddr {
        server_with(Router::new()).await
    }

    async fn server_with(routes: Router) -> std::net::SocketAddr {
        let app = routes
            .route(
                "/few",
                get(|| async { events(20, 40, Duration::from_millis(5)) }),
            )
            .route(
                "/large",
                get(|| async { events(LARGE, 16_384, Duration::from_micros(200)) }),
            )
            .route("/plain", get(|| async { "plain" }));
        let listener = Listener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            super::serve(listener, app, &Shutdown::new())
                .http1_only()
                .into_future(),
        );
        addr
    }

    /// Sends a request of `line` with no body on `client`.
    async fn send(client: &mut TcpStream, line: &str) {
        let request = format!("{line}\r\nhost: x\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
    }

    /// Reads one response on `client`: its head, and its body decoded from chunks up to the
    /// last chunk (panics on framing that is not hyper's).
    async fn chunked_response(client: &mut TcpStream) -> (String, Vec<u8>) {
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 65_536];
        let (head, mut at) = loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8(raw[..end].to_vec()).unwrap(), end + 4);
            }
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed inside the head");
            raw.extend_from_slice(&buf[..n]);
        };
        let mut body = Vec::new();
        loop {
            // A size line, the data, a CRLF.
            let line_end = loop {
                if let Some(end) = raw[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + end;
                }
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0, "the connection closed inside a chunk");
                raw.extend_from_slice(&buf[..n]);
            };
            let line = std::str::from_utf8(&raw[at..line_end]).unwrap();
            assert_eq!(
                line,
                line.to_uppercase(),
                "hyper writes chunk sizes in upper case"
            );
            let size = usize::from_str_radix(line, 16).unwrap();
            let end = line_end + 2 + size + 2;
            while raw.len() < end {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0, "the connection closed inside a chunk");
                raw.extend_from_slice(&buf[..n]);
            }
            assert_eq!(&raw[end - 2..end], b"\r\n");
            if size == 0 {
                assert_eq!(raw.len(), end, "nothing after the last chunk");
                return (head, body);
            }
            body.extend_from_slice(&raw[line_end + 2..end - 2]);
            at = end;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_s_events_go_out_as_direct_chunks_and_the_connection_serves_on() {
        let _counting = COUNTING.lock().await;
        let addr = server().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let direct = few_direct_chunks(&mut client).await;
        assert!(direct >= 15, "only {direct} direct chunks");
        // hyper ended the response, and serves the next request on the same connection.
        send(&mut client, "GET /plain HTTP/1.1").await;
        let mut answer = vec![0u8; 4096];
        let mut read = 0;
        while !answer[..read].ends_with(b"plain") {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut answer[read..]))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed before the second response");
            read += n;
        }
        assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }

    /// Reads `/few` on `client`; how many of its chunks went out as direct writes.
    async fn few_direct_chunks(client: &mut TcpStream) -> u64 {
        let before = DIRECT_CHUNKS.load(Ordering::Relaxed);
        send(client, "GET /few HTTP/1.1").await;
        let (head, body) = tokio::time::timeout(Duration::from_secs(10), chunked_response(client))
            .await
            .unwrap();
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert_eq!(body, expected(20, 40));
        // The first event goes out with the head, through hyper; the others, 5 ms apart, are
        // written by the connection's task.
        DIRECT_CHUNKS.load(Ordering::Relaxed) - before
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_of_another_server_of_the_process_leaves_the_direct_path_on() {
        let _counting = COUNTING.lock().await;
        // Another server's shutdown, begun before this one serves a stream.
        Shutdown::new().trigger();
        let addr = server().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let direct = few_direct_chunks(&mut client).await;
        assert!(direct >= 15, "only {direct} direct chunks");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_gets_every_byte_in_order_after_partial_direct_writes() {
        let _counting = COUNTING.lock().await;
        let addr = server().await;
        let before = PARTIAL_CHUNKS.load(Ordering::Relaxed);
        let mut client = TcpStream::connect(addr).await.unwrap();
        send(&mut client, "GET /large HTTP/1.1").await;
        // 16 MiB of events, about a millisecond apart, while nothing is read: more than
        // loopback's socket buffers hold, so direct writes are taken in part or not at all,
        // the rest left to hyper's flush.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (_, body) =
            tokio::time::timeout(Duration::from_secs(20), chunked_response(&mut client))
                .await
                .unwrap();
        assert_eq!(body.len(), expected(LARGE, 16_384).len());
        assert!(body == expected(LARGE, 16_384), "the bytes differ");
        let partial = PARTIAL_CHUNKS.load(Ordering::Relaxed) - before;
        assert!(partial >= 1, "no direct write was taken in part");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_http1_0_stream_is_not_chunked_and_not_relayed() {
        let addr = server().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        send(&mut client, "GET /few HTTP/1.0").await;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut raw))
            .await
            .unwrap()
            .unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(!String::from_utf8_lossy(&raw[..end]).contains("chunked"));
        assert_eq!(&raw[end..], &expected(20, 40)[..]);
    }

    #[tokio::test]
    async fn a_client_that_leaves_an_idle_relayed_stream_ends_it_at_once() {
        // A few events, then nothing: the direct path wrote the later ones and left the
        // socket's read readiness to its watch, which the client's close must still reach
        // (hyper then reads the end).
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        let closed_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(closed_tx)));
        let routes = Router::new().route(
            "/idle",
            get(move || {
                let closed_tx = closed_tx.lock().unwrap().take();
                async move {
                    EventSourceResponse::new(async_stream::stream! {
                        for data in ["first", "second", "last"] {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            yield ServerSentEvent::new().data(data);
                        }
                        std::future::pending::<()>().await;
                    })
                    .on_close(move |reason| {
                        if let Some(tx) = closed_tx {
                            let _ = tx.send(reason);
                        }
                    })
                }
            }),
        );
        let addr = server_with(routes).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        send(&mut client, "GET /idle HTTP/1.1").await;
        read_until(&mut client, &mut Vec::new(), "data: last").await;
        // The read watch is armed by now; then the client goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(client);
        let reason = tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .expect("the stream ends once its client has gone")
            .unwrap();
        assert_eq!(reason, crate::CloseReason::ClientDisconnected);
    }

    /// The feed the streams of [`feed_server`] follow, sent to as a store's feed task sends
    /// (`Live::deliver_later` with `inline`): the send polls idle streams in their tasks' places.
    type TestFeed = Arc<(Feed<u32>, std::sync::Mutex<()>)>;

    fn test_feed(capacity: usize) -> TestFeed {
        Arc::new((Feed::new(capacity), std::sync::Mutex::new(())))
    }

    /// Sends `n`, and wakes the streams once the feed's lock (which serializes sends and
    /// taps) is let go.
    fn send_inline(feed: &TestFeed, n: u32) -> usize {
        let (receivers, woken) = {
            let _sending = feed.1.lock().unwrap();
            feed.0.send_later(n, true)
        };
        drop(woken);
        receivers
    }

    /// The numbers sent to `feed` from now on, as a stream.
    fn numbers(feed: &TestFeed) -> impl futures_util::Stream<Item = u32> + Send + use<> {
        let mut tap = {
            let _sending = feed.1.lock().unwrap();
            feed.0.tap()
        };
        futures_util::stream::poll_fn(move |cx| tap.poll_recv(cx).map(Result::ok))
    }

    const PING: u32 = 1_000;
    const PONG: u32 = 1_001;
    const BOOM: u32 = 1_002;

    /// A server whose `/feed` streams `feed`'s numbers; whose `/echo` does too, but polled for
    /// [`PING`] it sends [`PONG`] to the feed from inside that poll; and whose `/boom` panics
    /// when polled for [`BOOM`].
    async fn feed_server(feed: &TestFeed) -> std::net::SocketAddr {
        let (plain, echo, boom) = (feed.clone(), feed.clone(), feed.clone());
        let routes = Router::new()
            .route(
                "/feed",
                get(move || {
                    let numbers = numbers(&plain);
                    async move {
                        EventSourceResponse::new(futures_util::StreamExt::map(numbers, |n| {
                            ServerSentEvent::new().data(n)
                        }))
                    }
                }),
            )
            .route(
                "/echo",
                get(move || {
                    let (numbers, feed) = (numbers(&echo), echo.clone());
                    async move {
                        EventSourceResponse::new(futures_util::StreamExt::map(numbers, move |n| {
                            if n == PING {
                                send_inline(&feed, PONG);
                            }
                            ServerSentEvent::new().data(n)
                        }))
                    }
                }),
            )
            .route(
                "/boom",
                get(move || {
                    let numbers = numbers(&boom);
                    async move {
                        // A body of its own, not an `EventSourceResponse` (whose driver catches
                        // a stream's panic and ends the stream): relayed all the same, and
                        // polled again after its panic, it would go on.
                        let body = futures_util::StreamExt::map(numbers, |n| {
                            assert_ne!(n, BOOM, "boom");
                            Ok::<_, Infallible>(format!("data: {n}\r\n\r\n"))
                        });
                        (
                            [(http::header::CONTENT_TYPE, "text/event-stream")],
                            axum::body::Body::from_stream(body),
                        )
                    }
                }),
            );
        server_with(routes).await
    }

    /// A subscriber of `path`, its response's head read.
    async fn subscriber(addr: std::net::SocketAddr, path: &str) -> (TcpStream, Vec<u8>) {
        let mut client = TcpStream::connect(addr).await.unwrap();
        send(&mut client, &format!("GET {path} HTTP/1.1")).await;
        let mut seen = Vec::new();
        read_until(&mut client, &mut seen, "\r\n\r\n").await;
        // Then its task goes idle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        (client, seen)
    }

    /// A subscriber of `path` and one of `/feed`, on a new feed, each idle after event 0
    /// (the first event after the head goes out from the task: hyper flushed the head).
    async fn beside_a_plain_one(
        path: &str,
    ) -> (TestFeed, (TcpStream, Vec<u8>), (TcpStream, Vec<u8>)) {
        let feed = test_feed(64);
        let addr = feed_server(&feed).await;
        let mut this = subscriber(addr, path).await;
        let mut plain = subscriber(addr, "/feed").await;
        send_inline(&feed, 0);
        for (client, seen) in [&mut this, &mut plain] {
            read_until(client, seen, "data: 0\r\n").await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        (feed, this, plain)
    }

    #[tokio::test]
    async fn a_send_polls_idle_streams_in_their_tasks_places_and_every_event_arrives_once() {
        let _counting = COUNTING.lock().await;
        let feed = test_feed(64);
        let addr = feed_server(&feed).await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(subscriber(addr, "/feed").await);
        }
        let before = INLINE_POLLS.load(Ordering::Relaxed);
        let direct_before = DIRECT_CHUNKS.load(Ordering::Relaxed);
        for i in 0..20 {
            // On this runtime's one thread, the send writes each idle stream's event itself.
            assert_eq!(send_inline(&feed, i), 3);
            for (client, seen) in &mut clients {
                read_until(client, seen, &format!("data: {i}\r\n\r\n")).await;
            }
        }
        let inline = INLINE_POLLS.load(Ordering::Relaxed) - before;
        assert!(
            inline >= 45,
            "only {inline} of 60 deliveries polled by the send"
        );
        assert!(DIRECT_CHUNKS.load(Ordering::Relaxed) - direct_before >= 60);
        for (_, seen) in &clients {
            let text = String::from_utf8_lossy(seen);
            for i in 0..20 {
                assert_eq!(text.matches(&format!("data: {i}\r\n")).count(), 1, "{text}");
            }
        }
    }

    #[test]
    fn a_stream_that_sends_from_inside_a_send_s_poll_gets_both_events() {
        // On a thread of its own, so that a deadlock fails the test instead of hanging it.
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(a_stream_sends_from_inside_a_send_s_poll());
            let _ = done_tx.send(());
        });
        match done.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("stuck for 60 s"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the test failed"),
        }
    }

    async fn a_stream_sends_from_inside_a_send_s_poll() {
        let _counting = COUNTING.lock().await;
        let (feed, (mut echo, mut echo_seen), (mut plain, mut plain_seen)) =
            beside_a_plain_one("/echo").await;
        let before = INLINE_POLLS.load(Ordering::Relaxed);
        // The echo stream sends PONG while the send of PING polls it: the feed's lock is not
        // held there, and the inner send wakes, it does not poll.
        send_inline(&feed, PING);
        read_until(&mut echo, &mut echo_seen, &format!("data: {PONG}\r\n")).await;
        read_until(&mut plain, &mut plain_seen, &format!("data: {PONG}\r\n")).await;
        assert!(
            INLINE_POLLS.load(Ordering::Relaxed) > before,
            "no poll by the send"
        );
        for seen in [&echo_seen, &plain_seen] {
            let text = String::from_utf8_lossy(seen);
            let ping = text.find(&format!("data: {PING}")).unwrap();
            assert!(
                text.find(&format!("data: {PONG}")).unwrap() > ping,
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_that_panics_in_a_send_s_poll_ends_its_own_connection_only() {
        let _counting = COUNTING.lock().await;
        let (feed, (mut boom, _), (mut plain, mut plain_seen)) = beside_a_plain_one("/boom").await;
        let before = INLINE_POLLS.load(Ordering::Relaxed);
        // The panic is the stream's, met in the send's poll: the send goes on, and the
        // panicking stream's task ends with it, as if it had polled the stream itself.
        assert_eq!(send_inline(&feed, BOOM), 2);
        assert!(INLINE_POLLS.load(Ordering::Relaxed) - before >= 1);
        send_inline(&feed, 3);
        read_until(&mut plain, &mut plain_seen, "data: 3\r\n").await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), boom.read_to_end(&mut rest))
            .await
            .expect("the panicking stream's connection closes");
        // Closed, cleanly or with a reset, and nothing of the later events came.
        let _ = read;
        let text = String::from_utf8_lossy(&rest);
        assert!(
            !text.contains(&BOOM.to_string()) && !text.contains("data: 3"),
            "{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_from_two_threads_reach_every_stream_of_a_multi_thread_runtime_once() {
        let feed = test_feed(4096);
        let addr = feed_server(&feed).await;
        let mut clients = Vec::new();
        for _ in 0..8 {
            clients.push(subscriber(addr, "/feed").await);
        }
        // Two senders on the runtime's workers, each 200 events, racing the streams' tasks
        // (woken, or polled by a send where they last ran) and each other.
        let senders: Vec<_> = (0..2)
            .map(|sender| {
                let feed = feed.clone();
                tokio::spawn(async move {
                    for i in 0..200 {
                        send_inline(&feed, sender * 10_000 + i);
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        for (client, seen) in &mut clients {
            read_until(client, seen, "data: 199\r\n").await;
            read_until(client, seen, "data: 10199\r\n").await;
            let text = String::from_utf8_lossy(seen);
            for sender in 0..2 {
                let mut at = 0;
                for i in 0..200 {
                    let event = format!("data: {}\r\n", sender * 10_000 + i);
                    assert_eq!(text.matches(&event).count(), 1, "{event:?} not once");
                    let found = text.find(&event).unwrap();
                    assert!(found > at, "{event:?} out of order");
                    at = found;
                }
            }
        }
    }
}
