//! `SseContext`: what a response needs to know about its request.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use http::request::Parts;
use http::{Method, Version};

use crate::connection::{Connection, ConnectionHandle};
use crate::limit::StreamLimit;
use crate::shutdown::{Shutdown, ShutdownSignal};

/// What an [`EventSourceResponse`](crate::EventSourceResponse) learns from its request: the HTTP
/// version, the app's [`Shutdown`] handle and [`StreamLimit`], and the [`Connection`]. It is an
/// extractor that never fails; `#[sse_endpoint]` functions use it behind the scenes.
///
/// * The **HTTP version** decides whether `connection: keep-alive` is sent: only on HTTP/1.x,
///   because the header is illegal in HTTP/2 (hyper strips it there and logs a warning).
/// * The **shutdown handle** (installed by [`Shutdown::layer`]) ends the stream on shutdown.
/// * The **stream limit** (installed by [`StreamLimit::layer`]) counts the stream, or refuses it.
/// * The **connection** (present with the [`connection`](crate::connection) server setup) lets a
///   send timeout close the socket without a task of its own.
/// * The **method**: a `HEAD` request gets the headers alone, and the stream never starts.
///
/// ```
/// use futures_util::stream;
/// use sse_runtime::{EventSourceResponse, SseContext};
///
/// async fn handler(context: SseContext) -> EventSourceResponse {
///     EventSourceResponse::new(stream::iter(["a", "b"])).context(context)
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Debug, Default)]
pub struct SseContext {
    pub(crate) version: Option<Version>,
    pub(crate) shutdown: Option<Shutdown>,
    pub(crate) limit: Option<StreamLimit>,
    pub(crate) connection: Option<ConnectionHandle>,
    pub(crate) head: bool,
    /// The route and the peer, for the stream's span.
    pub(crate) route: Option<MatchedPath>,
    pub(crate) peer: Option<SocketAddr>,
}

impl SseContext {
    /// Reads the context from request parts.
    pub fn from_parts(parts: &Parts) -> Self {
        let connection = parts.extensions.get::<ConnectInfo<Connection>>();
        let peer = connection.map(|info| info.0.remote_addr()).or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0)
        });
        Self {
            version: Some(parts.version),
            shutdown: parts.extensions.get::<Shutdown>().cloned(),
            limit: parts.extensions.get::<StreamLimit>().cloned(),
            connection: connection.map(|info| info.0.handle().clone()),
            head: parts.method == Method::HEAD,
            route: parts.extensions.get::<MatchedPath>().cloned(),
            peer,
        }
    }

    /// Whether the request is `HEAD`: the response then sends its headers alone and never
    /// starts the stream ([`CloseReason::HeadRequest`](crate::CloseReason::HeadRequest)).
    pub fn is_head(&self) -> bool {
        self.head
    }

    /// The request's HTTP version.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The app's shutdown handle, if the router has [`Shutdown::layer`].
    pub fn shutdown(&self) -> Option<&Shutdown> {
        self.shutdown.as_ref()
    }

    /// The app's stream limit, if the router has [`StreamLimit::layer`].
    pub fn limit(&self) -> Option<&StreamLimit> {
        self.limit.as_ref()
    }

    /// A signal the stream can wait on to send farewell events (never fires without a handle).
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shutdown
            .as_ref()
            .map_or_else(ShutdownSignal::never, Shutdown::signal)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SseContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}
