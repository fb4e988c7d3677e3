//! `EventSourceResponse`: the builder, its header rules, and `IntoResponse`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_core::{Stream, TryStream};
use futures_util::{StreamExt, TryStreamExt};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use crate::BoxError;
use crate::channel::{self, Sender};
use crate::close::{CloseHooks, CloseReason, HookSet};
use crate::connection::ConnectionHandle;
use crate::context::SseContext;
use crate::driver::{self, PingFactory, Producer, SendTimeout, Start, Unstarted};
use crate::event::{Separator, ServerSentEvent};
use crate::into_event::IntoEvent;
use crate::limit::{Permit, Refused, StreamLimit};
use crate::observe::Origin;
use crate::shutdown::{Shutdown, ShutdownConfig, ShutdownWatch};

/// The default keep-alive ping period: 15 seconds (SPEC 51).
///
/// ```
/// assert_eq!(sse_runtime::DEFAULT_PING_INTERVAL.as_secs(), 15);
/// ```
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);

const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

const DEFAULT_MEDIA_TYPE: &str = "text/event-stream";
/// `DEFAULT_MEDIA_TYPE` with the charset every `text/` type gets (SPEC 68).
const DEFAULT_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// The headers of a response with no header of the application's and the default media type
/// (SPEC 66-68), in the order `build_headers` inserts them, for HTTP/1 and for HTTP/2.
///
/// A response takes a clone of these. hyper keeps an HTTP/1 response's emptied map for the life
/// of the connection, to parse the next request into, so its size counts for every open
/// stream. A map built by inserting holds room for 6 entries (656 bytes); a clone holds exactly
/// its entries (4: 448 bytes).
fn default_headers(version: Option<Version>) -> &'static HeaderMap {
    static HTTP1: LazyLock<HeaderMap> = LazyLock::new(|| default_headers_for(true));
    static HTTP2: LazyLock<HeaderMap> = LazyLock::new(|| default_headers_for(false));
    if version.is_none_or(|version| version < Version::HTTP_2) {
        &HTTP1
    } else {
        &HTTP2
    }
}

fn default_headers_for(http1: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if http1 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(DEFAULT_CONTENT_TYPE),
    );
    headers
}

/// A streaming `text/event-stream` response: sse-starlette's `EventSourceResponse` for axum.
///
/// Give it a stream of [`IntoEvent`] values; return it from a handler. Everything else has
/// sse-starlette's defaults:
///
/// * status 200; headers `cache-control: no-store` (unless you set one), `connection: keep-alive`
///   (HTTP/1.x only), `x-accel-buffering: no`, `content-type: text/event-stream; charset=utf-8`
///   (unless you set one), SPEC 61-68;
/// * CRLF separators;
/// * a comment ping `: ping - <UTC timestamp>` every 15 s, on a fixed period from the start of
///   the stream (data does not reset it), SPEC 78-79;
/// * no send timeout.
///
/// ```
/// use std::time::Duration;
///
/// use axum::{Router, routing::get};
/// use futures_util::stream::{self, StreamExt};
/// use sse_runtime::{EventSourceResponse, ServerSentEvent};
///
/// async fn numbers() -> EventSourceResponse {
///     let events = stream::iter(1..=5).then(|i| async move {
///         tokio::time::sleep(Duration::from_millis(900)).await;
///         ServerSentEvent::new().id(i).data(i)
///     });
///     EventSourceResponse::new(events).ping(Duration::from_secs(5))
/// }
///
/// let app: Router = Router::new().route("/numbers", get(numbers));
/// ```
///
/// **How it ends.** The stream ends when the source ends (a clean end of the body), when the
/// client goes away (the body is dropped, and with it the source, even while it is parked in a
/// long `await`), on a send timeout, on shutdown, or when the source fails or panics (the
/// connection is aborted without the terminating chunk and the error is logged through
/// `tracing`). The hooks learn which, as a [`CloseReason`].
#[must_use = "an EventSourceResponse does nothing unless it is returned from a handler"]
pub struct EventSourceResponse {
    source: Box<dyn Start>,
    producer: Option<Producer>,
    status: StatusCode,
    headers: HeaderMap,
    invalid_header: Option<http::Error>,
    media_type: Option<Cow<'static, str>>,
    separator: Separator,
    ping_interval: Duration,
    ping_message: Option<PingFactory>,
    send_timeout: Option<Duration>,
    coalesce: Option<Duration>,
    hooks: HookSet,
    shutdown: ShutdownConfig,
    version: Option<Version>,
    connection: Option<ConnectionHandle>,
    retry: Option<u64>,
    head: bool,
    /// The status a resumable source answers with instead of streaming (`204`, `403`).
    refusal: Option<StatusCode>,
    /// The limit this stream counts against.
    limit: Option<StreamLimit>,
    /// A resumable source was refused by its hub's subscriber caps.
    over_cap: Option<Refused>,
    /// The route and the peer, for the stream's span.
    origin: Origin,
}

impl EventSourceResponse {
    fn from_source(source: Box<dyn Start>) -> Self {
        Self {
            source,
            producer: None,
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            invalid_header: None,
            media_type: Some(Cow::Borrowed(DEFAULT_MEDIA_TYPE)),
            separator: Separator::CrLf,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_message: None,
            send_timeout: None,
            coalesce: None,
            hooks: HookSet::default(),
            shutdown: ShutdownConfig::default(),
            version: None,
            connection: None,
            retry: None,
            head: false,
            refusal: None,
            limit: None,
            over_cap: None,
            origin: Origin::default(),
        }
    }

    /// A response that sends every item of `stream`.
    ///
    /// ```
    /// use futures_util::stream;
    /// use sse_runtime::EventSourceResponse;
    ///
    /// let response = EventSourceResponse::new(stream::iter(vec!["a", "b"]));
    /// # drop(response);
    /// ```
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream + Send + 'static,
        S::Item: IntoEvent,
    {
        let mut stream = stream;
        // A resume may have to answer instead of streaming: 204 for a gap under `NoContent`,
        // 403 without a grant, or its hub's refusal when a subscriber cap is reached. Before
        // the response head, which only the response itself can do.
        let resume =
            (&mut stream as &mut dyn std::any::Any).downcast_mut::<crate::resume::Resume>();
        let (refusal, over_cap) = match resume {
            Some(resume) => (resume.take_status(), resume.take_refusal()),
            None => (None, None),
        };
        let mut response = Self::from_source(Box::new(Unstarted(
            stream.map(|item| Ok(item.into_event())),
        )));
        response.refusal = refusal;
        response.over_cap = over_cap;
        response
    }

    /// A response for a stream that may fail: an `Err` item ends the response as an error
    /// (aborted connection, [`CloseReason::Error`], logged through `tracing`).
    ///
    /// ```
    /// use futures_util::stream;
    /// use sse_runtime::EventSourceResponse;
    ///
    /// let items: Vec<Result<u32, std::io::Error>> = vec![Ok(1), Err(std::io::Error::other("boom"))];
    /// let response = EventSourceResponse::from_try_stream(stream::iter(items));
    /// # drop(response);
    /// ```
    pub fn from_try_stream<S>(stream: S) -> Self
    where
        S: TryStream + Send + 'static,
        S::Ok: IntoEvent,
        S::Error: Into<BoxError>,
    {
        Self::from_source(Box::new(Unstarted(
            stream
                .into_stream()
                .map(|item| item.map(IntoEvent::into_event).map_err(Into::into)),
        )))
    }

    /// A response fed through a channel: send events with the returned [`Sender`] (from any
    /// task); the stream ends cleanly when every sender is dropped.
    ///
    /// `capacity` bounds the events waiting to be sent (at least 1); a full channel makes
    /// [`Sender::send`] wait.
    ///
    /// ```
    /// use sse_runtime::{EventSourceResponse, ServerSentEvent};
    ///
    /// async fn handler() -> EventSourceResponse {
    ///     let (tx, response) = EventSourceResponse::channel(10);
    ///     tokio::spawn(async move {
    ///         for i in 1..=9 {
    ///             let event = ServerSentEvent::new().event("production_data").data(i);
    ///             if tx.send(event).await.is_err() {
    ///                 return; // the client left
    ///             }
    ///         }
    ///     });
    ///     response
    /// }
    /// # let _ = handler;
    /// ```
    pub fn channel(capacity: usize) -> (Sender, Self) {
        let (tx, rx) = channel::channel(capacity);
        (tx, Self::from_source(Box::new(Unstarted(rx))))
    }

    /// A response fed by a producer that runs inside the response: `producer` receives the
    /// [`Sender`], is started with the stream and dropped whenever the stream ends, like
    /// sse-starlette's `data_sender_callable` (SPEC 114-117). It needs no task of its own and
    /// cannot outlive the response.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use sse_runtime::EventSourceResponse;
    ///
    /// async fn handler() -> EventSourceResponse {
    ///     EventSourceResponse::with_producer(2, |tx| async move {
    ///         for i in 0..20 {
    ///             tokio::time::sleep(Duration::from_millis(10)).await;
    ///             if tx.send(i).await.is_err() {
    ///                 return;
    ///             }
    ///         }
    ///     })
    /// }
    /// # let _ = handler;
    /// ```
    pub fn with_producer<F, Fut>(capacity: usize, producer: F) -> Self
    where
        F: FnOnce(Sender) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, mut response) = Self::channel(capacity);
        response.producer = Some(Box::pin(producer(tx)));
        response
    }

    /// Sets the status code (default 200).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header. A name or value that is not valid makes the response a 500 (logged), so a
    /// typo cannot silently send a wrong header; [`headers`](Self::headers) takes a ready map.
    ///
    /// A `cache-control` header replaces the default `no-store` (SPEC 63); a `content-type`
    /// header replaces the default content type unchanged (SPEC 66); `connection` and
    /// `x-accel-buffering` are always `keep-alive` and `no` (SPEC 64).
    ///
    /// ```
    /// use futures_util::stream;
    /// use sse_runtime::EventSourceResponse;
    ///
    /// let response = EventSourceResponse::new(stream::empty::<&str>())
    ///     .header("cache-control", "public, max-age=29")
    ///     .header("x-custom-header", "custom-value");
    /// # drop(response);
    /// ```
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            (Err(error), _) => self.invalid_header = Some(error.into()),
            (_, Err(error)) => self.invalid_header = Some(error.into()),
        }
        self
    }

    /// Adds every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        let mut name = None;
        for (key, value) in headers {
            name = key.or(name);
            if let Some(name) = &name {
                self.headers.append(name.clone(), value);
            }
        }
        self
    }

    /// Sets the media type (default `text/event-stream`). A `text/*` type gets `; charset=utf-8`
    /// unless it names a charset; other types are sent as given (SPEC 67).
    pub fn media_type(mut self, media_type: impl Into<Cow<'static, str>>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// Sends no `content-type` header at all (sse-starlette's `media_type=None`).
    pub fn without_media_type(mut self) -> Self {
        self.media_type = None;
        self
    }

    /// Sets the separator of every line (default CRLF). Events that chose their own keep it.
    pub fn separator(mut self, separator: Separator) -> Self {
        self.separator = separator;
        self
    }

    /// Sets the keep-alive ping period (default 15 s); `Duration::ZERO` sends no pings.
    ///
    /// Pings go out on a fixed period from the start of the stream, whether or not data was sent
    /// in between (SPEC 78).
    pub fn ping(mut self, period: Duration) -> Self {
        self.ping_interval = period;
        self
    }

    /// Builds every ping with `message` instead of the default timestamp comment. The event uses
    /// the response's separator unless it set its own.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use futures_util::stream;
    /// use sse_runtime::{EventSourceResponse, ServerSentEvent};
    ///
    /// let response = EventSourceResponse::new(stream::pending::<u8>())
    ///     .ping(Duration::from_secs(3))
    ///     .ping_message(|| ServerSentEvent::new().comment("still here"));
    /// # drop(response);
    /// ```
    pub fn ping_message(
        mut self,
        message: impl Fn() -> ServerSentEvent + Send + Sync + 'static,
    ) -> Self {
        self.ping_message = Some(std::sync::Arc::new(message));
        self
    }

    /// Ends the stream when the client has not accepted data (events or pings) for `timeout`:
    /// the source is dropped, the hooks see [`CloseReason::SendTimeout`], background tasks do not
    /// run, and the connection is aborted.
    ///
    /// hyper stops polling a response body while its write buffer is full, so a timer inside the
    /// body could never fire for a client that stopped reading. With the
    /// [`connection`](crate::connection) server setup (and HTTP/1), the connection itself times
    /// out the stalled write and closes the socket, at no cost per event. Otherwise the stream
    /// runs in a task of its own that hands each frame to the body through a channel of capacity
    /// one and times out that hand-off; the socket then stays open until the client goes away.
    ///
    /// `Duration::ZERO` sets no timeout, as for [`ping`](Self::ping) (the attribute rejects
    /// `send_timeout = 0`); a timeout too long for the clock (`Duration::MAX`) never fires.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = Some(timeout).filter(|timeout| !timeout.is_zero());
        self
    }

    /// Sends at most one frame per `window`, so that events that arrive one at a time, faster
    /// than that, go out together in fewer, larger writes (default: none, every event goes out
    /// as soon as the stream waits for the next).
    ///
    /// Each write to a socket costs the kernel about the same whatever its size, so a stream
    /// that receives events one by one (a fan-out where each publish is a request of its own)
    /// spends most of its CPU in writes. With a window, a frame goes out at once when the last
    /// one went out a window ago or more; otherwise it waits until then, gathering what comes
    /// meanwhile. So an event waits at most `window`, and only when events come faster than
    /// one per window: a stream of rarer events is sent as without it. A full frame (32 KiB)
    /// and the end of the stream go out at once. BENCHMARKS.md (scenario (i)) measures the CPU
    /// it saves against the latency it adds: use it where throughput under bursts matters more
    /// than a few milliseconds of latency.
    ///
    /// `Duration::ZERO` holds nothing back.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use futures_util::stream;
    /// use sse_runtime::EventSourceResponse;
    ///
    /// let response = EventSourceResponse::new(stream::iter(["a", "b"]))
    ///     .coalesce(Duration::from_millis(5));
    /// # drop(response);
    /// ```
    pub fn coalesce(mut self, window: Duration) -> Self {
        self.coalesce = Some(window).filter(|window| !window.is_zero());
        self
    }

    /// Sends `retry: <milliseconds>` as the very first event, telling clients how long to wait
    /// before reconnecting.
    pub fn retry(mut self, milliseconds: u64) -> Self {
        self.retry = Some(milliseconds);
        self
    }

    /// Runs `hook` if the client disconnects, before the source is dropped (SPEC 93), and never
    /// otherwise. For async work, spawn a task from it.
    pub fn on_client_close(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.hooks.on_client_close(hook);
        self
    }

    /// Runs `hook` once when the stream ends, after the source was dropped, with the reason.
    ///
    /// ```
    /// use futures_util::stream;
    /// use sse_runtime::{CloseReason, EventSourceResponse};
    ///
    /// let response = EventSourceResponse::new(stream::iter([1, 2, 3])).on_close(|reason| {
    ///     if reason == CloseReason::ClientDisconnected {
    ///         tracing::info!("client left early");
    ///     }
    /// });
    /// # drop(response);
    /// ```
    pub fn on_close(mut self, hook: impl FnOnce(CloseReason) + Send + 'static) -> Self {
        self.hooks.on_close(hook);
        self
    }

    /// Spawns `task` once the stream has ended normally, by a disconnect or by a shutdown; not
    /// after a send timeout or an error (SPEC 118-119).
    pub fn background(mut self, task: impl Future<Output = ()> + Send + 'static) -> Self {
        self.hooks.background(task);
        self
    }

    /// Adds hooks registered at run time (see [`CloseHooks`]).
    pub fn close_hooks(mut self, hooks: &CloseHooks) -> Self {
        self.hooks.registered_at_run_time(hooks.clone());
        self
    }

    /// Applies what the request tells: HTTP version, shutdown handle, stream limit,
    /// connection, and whether the request is `HEAD` (then only the headers are sent, the
    /// stream never starts, and the hooks see [`CloseReason::HeadRequest`]).
    pub fn context(mut self, context: SseContext) -> Self {
        // The version, the connection and the method are facts about this request, so they win
        // over earlier calls; a handle given with `.shutdown(..)` or `.limit(..)` wins over the
        // app's, since the caller chose it for this stream.
        self.head = context.head;
        self.version = context.version.or(self.version);
        if self.shutdown.handle.is_none() {
            self.shutdown.handle = context.shutdown;
        }
        if self.limit.is_none() {
            self.limit = context.limit;
        }
        self.connection = context.connection.or(self.connection);
        self.origin.route = context.route.or(self.origin.route.take());
        self.origin.peer = context.peer.or(self.origin.peer);
        self
    }

    /// Sets the request's HTTP version: `connection: keep-alive` is sent on HTTP/1.x only.
    ///
    /// Without it (and without [`context`](Self::context)) the header is sent, as sse-starlette
    /// does; on HTTP/2 hyper then strips it and logs a warning.
    pub fn version(mut self, version: Version) -> Self {
        self.version = Some(version);
        self
    }

    /// Counts this stream against `limit`, instead of the app's (from
    /// [`context`](Self::context)), whatever the order of the calls: over the cap the response is
    /// the limit's [`Refusal`](crate::limit::Refusal) and the stream never starts
    /// ([`CloseReason::Refused`]). To count against both, make the route's limit a
    /// [`child`](StreamLimit::child) of the app's.
    ///
    /// The place is taken when the response is made (`into_response`) and given back once,
    /// when the stream ends, whatever ends it. `HEAD` requests take none.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use axum::{Router, extract::State, routing::get};
    /// use futures_util::stream;
    /// use sse_runtime::{EventSourceResponse, SseContext, StreamLimit};
    ///
    /// async fn exports(State(limit): State<StreamLimit>, context: SseContext) -> EventSourceResponse {
    ///     EventSourceResponse::new(stream::iter(["a", "b"]))
    ///         .limit(&limit)
    ///         .context(context)
    /// }
    ///
    /// let app: Router = Router::new()
    ///     .route("/exports", get(exports))
    ///     .with_state(StreamLimit::new(50).retry(Duration::from_secs(10)));
    /// ```
    pub fn limit(mut self, limit: &StreamLimit) -> Self {
        self.limit = Some(limit.clone());
        self
    }

    /// Ends the stream when `shutdown` is triggered (see [`Shutdown`]).
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown.handle = Some(shutdown.clone());
        self
    }

    /// Lets the stream run for up to `grace` after a shutdown began, so it can send farewell
    /// events (watch a [`ShutdownSignal`](crate::ShutdownSignal)) and end cleanly; it is aborted
    /// when the grace ends. Pings continue meanwhile. Default: zero, the stream is aborted at once.
    /// A grace too long for the clock (`Duration::MAX`) never ends: the stream then runs until it
    /// ends by itself.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown.grace = grace;
        self
    }

    /// With `false`, a shutdown does not end this stream: it runs until it ends by itself (SPEC
    /// #157).
    ///
    /// **Risk:** `axum::serve(..).with_graceful_shutdown(..)` waits for every open connection,
    /// so a stream that never ends keeps the server from exiting. Watch a
    /// [`ShutdownSignal`](crate::ShutdownSignal) in the stream, or bound the wait on the server
    /// side.
    pub fn drain_on_shutdown(mut self, drain: bool) -> Self {
        self.shutdown.drain = drain;
        self
    }

    fn build_headers(&mut self) -> Result<HeaderMap, http::Error> {
        if self.headers.is_empty() && self.media_type.as_deref() == Some(DEFAULT_MEDIA_TYPE) {
            return Ok(default_headers(self.version).clone());
        }
        self.assemble_headers()
    }

    fn assemble_headers(&mut self) -> Result<HeaderMap, http::Error> {
        let mut headers = std::mem::take(&mut self.headers);
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if self.version.is_none_or(|version| version < Version::HTTP_2) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        } else {
            headers.remove(header::CONNECTION);
        }
        headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
        if !headers.contains_key(header::CONTENT_TYPE)
            && let Some(media_type) = &self.media_type
        {
            let value = if media_type == DEFAULT_MEDIA_TYPE {
                // The common case, without building the value on every response.
                HeaderValue::from_static(DEFAULT_CONTENT_TYPE)
            } else if media_type.starts_with("text/") && !media_type.contains("charset=") {
                HeaderValue::try_from(format!("{media_type}; charset=utf-8"))?
            } else {
                HeaderValue::try_from(media_type.as_ref())?
            };
            headers.insert(header::CONTENT_TYPE, value);
        }
        Ok(headers)
    }

    fn into_body(self, permit: Option<Permit>) -> Body {
        if let (Some(connection), Some(shutdown)) = (&self.connection, &self.shutdown.handle)
            && self.shutdown.drain
        {
            // The backstop for a client that stops reading: hyper no longer polls this body
            // then, so the connection itself closes once the grace is over.
            connection.follow_shutdown(shutdown, self.shutdown.grace);
        }
        let prelude = self
            .retry
            .map(|retry| ServerSentEvent::new().retry(retry).encode(self.separator));
        let send_timeout = self.decide_send_timeout();
        let settings = driver::Settings {
            producer: self.producer,
            separator: self.separator,
            ping_interval: self.ping_interval,
            ping_message: self.ping_message,
            shutdown: ShutdownWatch::new(&self.shutdown),
            send_timeout,
            coalesce: self.coalesce,
            connection: self.connection,
            hooks: self.hooks,
            prelude,
            permit,
            origin: Origin {
                version: self.version,
                ..self.origin
            },
        };
        self.source.start(settings)
    }

    /// Which mechanism enforces the send timeout: the connection's `Io` where it can (the
    /// documented server setup, HTTP/1: one stream per connection), else a producer task.
    fn decide_send_timeout(&self) -> SendTimeout {
        let Some(timeout) = self.send_timeout else {
            return SendTimeout::Off;
        };
        let http1 = self
            .version
            .is_some_and(|version| version < Version::HTTP_2);
        if self.connection.is_some() && http1 {
            SendTimeout::Connection(timeout)
        } else {
            SendTimeout::Producer(timeout)
        }
    }

    /// Ends the stream before it started: the hooks learn why.
    fn abandon(self, reason: CloseReason) {
        let (mut hooks, source) = (self.hooks, self.source);
        hooks.close(reason, || drop(source));
    }
}

impl IntoResponse for EventSourceResponse {
    fn into_response(mut self) -> Response {
        let headers = match self
            .invalid_header
            .take()
            .map_or_else(|| self.build_headers(), Err)
        {
            Ok(headers) => headers,
            Err(error) => {
                tracing::error!(%error, "invalid header on a server-sent event response");
                self.abandon(CloseReason::Error);
                return (StatusCode::INTERNAL_SERVER_ERROR, "invalid response header")
                    .into_response();
            }
        };
        if let Some(status) = self.refusal {
            self.abandon(CloseReason::NoContent);
            return status.into_response();
        }
        let status = self.status;
        let body = if self.head {
            // Headers only (sse-starlette 3.7): nothing reads a HEAD response's body, so the
            // stream never starts, no client left, and it takes no place in a limit.
            self.abandon(CloseReason::HeadRequest);
            Body::empty()
        } else {
            let limited = match self.over_cap.take() {
                Some(refused) => Err(refused),
                None => self.limit.as_ref().map(StreamLimit::try_open).transpose(),
            };
            match limited {
                Ok(permit) => self.into_body(permit),
                Err(refused) => {
                    // The source is dropped unpolled; the client is told when to come back.
                    let separator = self.separator;
                    self.abandon(CloseReason::Refused);
                    return refused.response(headers, separator);
                }
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

impl fmt::Debug for EventSourceResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("media_type", &self.media_type)
            .field("separator", &self.separator)
            .field("ping_interval", &self.ping_interval)
            .field("send_timeout", &self.send_timeout)
            .field("coalesce", &self.coalesce)
            .field("hooks", &self.hooks)
            .field("shutdown", &self.shutdown)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect()
    }

    /// The shared maps are exactly what assembling the headers gives (SPEC 61-62, 66-68), on
    /// every version, so the shortcut changes no byte of any response.
    #[test]
    fn spec_61_the_shared_default_headers_are_the_assembled_ones() {
        for version in [None, Some(Version::HTTP_11), Some(Version::HTTP_2)] {
            let mut response = EventSourceResponse::new(futures_util::stream::empty::<&str>());
            response.version = version;
            let assembled = response.assemble_headers().unwrap();
            assert_eq!(
                list(default_headers(version)),
                list(&assembled),
                "{version:?}"
            );
            let mut response = EventSourceResponse::new(futures_util::stream::empty::<&str>());
            response.version = version;
            assert_eq!(list(&response.build_headers().unwrap()), list(&assembled));
        }
    }
}
