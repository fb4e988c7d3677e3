//! [`serve`]: the one documented way to run an app with SSE streams.

use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener as _;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tower_service::Service as _;

use crate::connection::{Connection, Listener};
use crate::shutdown::Shutdown;

/// Runs a hyper connection to its end; once the shutdown begins, tells it to close when its
/// requests end. (A macro: hyper's two connection types share no trait.)
macro_rules! drive {
    ($conn:expr, $shutdown:expr) => {{
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
            if !shutting_down && !(armed && crate::shutdown::none_triggered()) {
                if triggered.as_mut().poll(cx).is_ready() {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                } else {
                    armed = true;
                }
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
            let app = app.clone();
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo(connection.clone()));
                app.clone().call(request)
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
                            shutdown
                        );
                    }
                    Protocols::Http1(builder) => {
                        drive!(
                            builder.serve_connection(io, service).with_upgrades(),
                            shutdown
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
