//! [`serve`]: the one documented way to run an app with SSE streams.

use std::future::{Future, IntoFuture};
use std::io;

use axum::Router;

use crate::connection::{Connection, Listener};
use crate::shutdown::Shutdown;

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
/// carried an SSE stream are left to axum's own graceful shutdown (they finish their request).
///
/// It is exactly this, which you can write out to configure `axum::serve` further:
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
pub fn serve(
    listener: Listener,
    app: Router,
    shutdown: &Shutdown,
) -> impl Future<Output = io::Result<()>> + Send + use<> {
    let app = app.layer(shutdown.layer());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Connection>(),
    )
    .with_graceful_shutdown(shutdown.on_signal())
    .into_future()
}
