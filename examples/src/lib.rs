//! Shared helpers of the examples.

use std::net::SocketAddr;

use axum::Router;
use sse_runtime::Shutdown;
use sse_runtime::connection::Listener;

/// The address an example listens on: 127.0.0.1:8000, or the port in `PORT`.
pub fn listen_addr() -> SocketAddr {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(8000);
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise (once: later calls do nothing).
pub fn init_tracing() {
    let _already = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// Serves `app` on [`listen_addr`] with [`sse_runtime::serve`] until SIGINT (Ctrl-C) or SIGTERM,
/// with logging: open streams end instead of keeping the server alive, even for clients that
/// stopped reading. The `cooperative_shutdown` example spells this wiring out.
pub async fn serve(app: Router) -> std::io::Result<()> {
    init_tracing();
    sse_runtime::serve(bind().await, app, &Shutdown::new()).await
}

/// Binds [`listen_addr`] and logs where it listens; when the address cannot be had (a port
/// already in use), says so in one plain line and exits with status 1.
pub async fn bind() -> Listener {
    let addr = listen_addr();
    let bound = Listener::bind(addr)
        .await
        .and_then(|listener| Ok((listener.local_addr()?, listener)));
    match bound {
        Ok((local, listener)) => {
            tracing::info!("listening on http://{local}");
            listener
        }
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error} (set PORT to use another port)");
            std::process::exit(1);
        }
    }
}
