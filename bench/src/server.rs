//! The servers under test, one per process: `bench server ours|axum|floor [--setup ..]`.
//!
//! Ours and axum serve the same routes over plain HTTP/1.1 on 127.0.0.1:0, print their port on
//! stdout and exit when stdin closes (the driver went away):
//!
//! | route | what |
//! | --- | --- |
//! | `/events/{n}` | `n` events, each an id and 64 bytes of data, as fast as the client reads |
//! | `/events_timeout/{n}` | the same with a 5 s send timeout (ours; axum has none) |
//! | `/fanout` | every event published from now on |
//! | `/publish/{n}` | publishes `n` events to every `/fanout` stream |
//! | `/idle` | a stream that never sends an event (pings every 15 s) |
//! | `/churn` | one event, then nothing until the client leaves |
//! | `/stats` | `live=<open SSE streams> subscribers=<fan-out subscribers> resumable=<subscribers of t>` |
//!
//! The only difference between the two is the SSE layer: both build their streams with
//! `async_stream::stream!`, both ping every 15 s, both run on the same tokio runtime.
//!
//! `bench server ours --resume` also serves a resumable hub (`sse_runtime::resume`), for the
//! scenarios of ours only ((c) on the resumable hub, (g), (h)):
//!
//! | route | what |
//! | --- | --- |
//! | `/resume/events` | topic `t`, from the request's `Last-Event-ID`: replay, then live |
//! | `/resume/publish/{n}` | publishes `n` events to topic `t`; answers the hub's head (the last id) |
//!
//! Only then: axum rebuilds the route table for every connection, so two more routes cost
//! every connection memory (about 2 KiB here), and the scenarios against axum keep the same
//! routes on both sides.
//!
//! `bench server ours --metrics` installs a Prometheus recorder (`metrics-exporter-prometheus`)
//! before it builds its routes, so before any stream starts; `/stats` then also answers the
//! recorder's rendered text. sse-runtime's `metrics` feature is compiled in either way: without
//! a recorder, its `metrics::counter!`/`gauge!` calls get no-op handles.
//!
//! `bench server axum --lean` serves `/idle` as the leanest stream axum has,
//! `Sse::new(stream::pending())`: no keep-alive and no live count; and `/fanout` as the
//! leanest fan-out body: each event framed once by `/publish/{n}` (ours's bytes, as the floor
//! frames them) and handed to hyper as it is, with no keep-alive and no formatting, the least
//! any body costs on the setup that serves it (its other routes are the same, for the reason
//! above).
//!
//! `bench server floor` is the [`floor`]: ours's bytes, from a server written by hand on tokio
//! alone, for `/events/{n}`, `/events_timeout/{n}`, `/fanout`, `/publish/{n}` and `/stats`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

use crate::Kind;

pub(crate) mod floor;

pub(crate) use theirs::frames_body;

/// The data of every event: 64 bytes, one line.
pub(crate) const PAYLOAD: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/";

/// Events the fan-out hub holds for a subscriber that is behind (both sides, and ours's
/// resumable hub).
const FANOUT_CAPACITY: usize = 128;

/// Events the resumable hub keeps of topic `t`: more than the largest replay of (h).
pub(crate) const RESUME_HISTORY: usize = 20_000;

/// The most events one resume may replay: (h) replays 10,000, the hub's default bound exactly.
pub(crate) const RESUME_MAX_REPLAY: u64 = 20_000;

/// The one topic of the resumable hub.
const TOPIC: &str = "t";

/// How the server accepts connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setup {
    /// `axum::serve(tokio::net::TcpListener, app)`, what an axum user writes.
    Plain,
    /// sse-runtime's documented setup for send timeouts: `connection::Listener` and
    /// `into_make_service_with_connect_info::<Connection>()`.
    Connection,
    /// `sse_runtime::serve(Listener, app, &Shutdown)` as it comes.
    Serve,
    /// The same with hyper's settings for SSE connections: `http1_only()` and
    /// `http1_max_buf_size(8192)`.
    ServeLean,
}

impl Setup {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Setup::Plain => "plain",
            Setup::Connection => "connection",
            Setup::Serve => "serve",
            Setup::ServeLean => "serve-lean",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "plain" => Some(Setup::Plain),
            "connection" => Some(Setup::Connection),
            "serve" => Some(Setup::Serve),
            "serve-lean" => Some(Setup::ServeLean),
            _ => None,
        }
    }
}

// Each server is a process of its own, so process-wide counters are per server.
static OPENED: AtomicU64 = AtomicU64::new(0);
static CLOSED: AtomicU64 = AtomicU64::new(0);

fn stream_opened() {
    OPENED.fetch_add(1, Ordering::Relaxed);
}

/// Counts a stream as live while it exists: created first thing in a stream's body, dropped
/// with the stream. Both servers use it, so the instrumentation is the same on both sides; ours
/// also counts `/churn` through its `on_close` hook.
struct LiveGuard;

impl LiveGuard {
    fn open() -> Self {
        stream_opened();
        LiveGuard
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        stream_closed();
    }
}

fn stream_closed() {
    CLOSED.fetch_add(1, Ordering::Relaxed);
}

/// The recorder's handle, with `--metrics`.
#[cfg(feature = "metrics")]
static RECORDER: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

fn live_streams() -> u64 {
    OPENED
        .load(Ordering::Relaxed)
        .saturating_sub(CLOSED.load(Ordering::Relaxed))
}

/// What `bench server` runs: which server, and its options. The driver turns it into the
/// arguments of `bench server` ([`args`](Self::args)), which the server parses back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) kind: Kind,
    pub(crate) setup: Setup,
    pub(crate) workers: usize,
    /// Ours with the resumable hub and its routes (`--resume`).
    pub(crate) resume: bool,
    /// Ours with a Prometheus recorder (`--metrics`).
    pub(crate) metrics: bool,
    /// axum with the leanest `/idle` it has (`--lean`): `Sse::new(stream::pending())`.
    pub(crate) lean: bool,
    /// Ours with `/fanout` coalescing events for [`COALESCE_WINDOW`] (`--coalesce`).
    pub(crate) coalesce: bool,
}

/// The coalescing window of `--coalesce` (`EventSourceResponse::coalesce`).
pub(crate) const COALESCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

impl Config {
    /// `kind` as the scenarios against axum run it: plain setup, nothing added.
    pub(crate) fn new(kind: Kind, workers: usize) -> Self {
        Self {
            kind,
            setup: Setup::Plain,
            workers,
            resume: false,
            metrics: false,
            lean: false,
            coalesce: false,
        }
    }

    /// The arguments of `bench server` for this configuration.
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args = vec![
            "server".to_owned(),
            self.kind.as_str().to_owned(),
            "--setup".to_owned(),
            self.setup.as_str().to_owned(),
            "--workers".to_owned(),
            self.workers.to_string(),
        ];
        for (on, flag) in [
            (self.resume, "--resume"),
            (self.metrics, "--metrics"),
            (self.lean, "--lean"),
            (self.coalesce, "--coalesce"),
        ] {
            if on {
                args.push(flag.to_owned());
            }
        }
        args
    }

    /// Parses the arguments after `bench server`.
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut kind = None;
        let mut config = Self::new(Kind::Ours, 2);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--setup" => match args.next().and_then(|s| Setup::parse(s)) {
                    Some(s) => config.setup = s,
                    None => {
                        return Err("--setup takes plain, connection, serve or serve-lean".into());
                    }
                },
                "--workers" => match args.next().and_then(|s| s.parse().ok()) {
                    Some(n) if n > 0 => config.workers = n,
                    _ => return Err("--workers takes a positive number".into()),
                },
                "--resume" => config.resume = true,
                "--metrics" => config.metrics = true,
                "--lean" => config.lean = true,
                "--coalesce" => config.coalesce = true,
                other => match Kind::parse(other) {
                    Some(k) => kind = Some(k),
                    None => return Err(format!("unknown argument {other:?}")),
                },
            }
        }
        config.kind = kind.ok_or("which server: ours, axum or floor?")?;
        let only = |on: bool, flag: &str, kind: Kind| {
            if on && config.kind != kind {
                Err(format!("{flag} is for {} only", kind.as_str()))
            } else {
                Ok(())
            }
        };
        only(config.resume, "--resume", Kind::Ours)?;
        only(config.metrics, "--metrics", Kind::Ours)?;
        only(config.lean, "--lean", Kind::Axum)?;
        only(config.coalesce, "--coalesce", Kind::Ours)?;
        if config.kind == Kind::Floor && config.setup != Setup::Plain {
            return Err("the floor has one setup: plain".into());
        }
        Ok(config)
    }
}

/// Runs a server until stdin closes.
pub(crate) fn run(config: Config) -> std::io::Result<()> {
    crate::measure::raise_nofile_limit(false);
    // The driver holds our stdin; when it goes away, so do we.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if config.metrics {
            install_recorder()?;
        }
        let app = match config.kind {
            Kind::Ours => ours::router(config.resume, config.coalesce),
            Kind::Axum => theirs::router(config.lean),
            Kind::Floor => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                announce(listener.local_addr()?.port());
                return floor::serve(listener).await;
            }
        };
        match config.setup {
            Setup::Plain => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                announce(listener.local_addr()?.port());
                axum::serve(listener, app).await
            }
            Setup::Connection => {
                use sse_runtime::connection::{Connection, Listener};
                let listener = Listener::bind("127.0.0.1:0").await?;
                announce(listener.local_addr()?.port());
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<Connection>(),
                )
                .await
            }
            Setup::Serve | Setup::ServeLean => {
                let listener = sse_runtime::connection::Listener::bind("127.0.0.1:0").await?;
                announce(listener.local_addr()?.port());
                let serve = sse_runtime::serve(listener, app, &sse_runtime::Shutdown::new());
                if config.setup == Setup::ServeLean {
                    serve.http1_only().http1_max_buf_size(8192).await
                } else {
                    serve.await
                }
            }
        }
    })
}

fn announce(port: u16) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{port}");
    let _ = stdout.flush();
}

async fn stats_text(subscribers: usize, resumable: usize) -> String {
    #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
    let mut text = format!(
        "live={} subscribers={subscribers} resumable={resumable}\n",
        live_streams()
    );
    // With `--metrics`, what a scrape would see, so that the driver can check the counts.
    #[cfg(feature = "metrics")]
    if let Some(handle) = RECORDER.get() {
        text.push_str(&handle.render());
    }
    text
}

/// Installs the Prometheus recorder, before the routes exist, so every stream sees it.
#[cfg(feature = "metrics")]
fn install_recorder() -> std::io::Result<()> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    let _ = RECORDER.set(handle);
    Ok(())
}

#[cfg(not(feature = "metrics"))]
fn install_recorder() -> std::io::Result<()> {
    Err(std::io::Error::other(
        "--metrics needs the bench built with `--features metrics`",
    ))
}

/// The body of `/events/{n}` as `kind` makes it, in this process, with nothing written to a
/// socket: each frame the body yields is passed to `frame` and dropped (`bench render`). The
/// floor's is its encoding loop, which writes its 64 KiB chunks to `frame` instead of its socket.
pub(crate) async fn render(kind: Kind, n: u64, mut frame: impl FnMut(&[u8])) {
    use axum::response::IntoResponse;
    use futures_util::StreamExt;

    let response = match kind {
        Kind::Ours => ours::events(sse_runtime::SseContext::default(), Path(n))
            .await
            .into_response(),
        Kind::Axum => theirs::events(Path(n)).await.into_response(),
        Kind::Floor => return floor::render(n, frame),
    };
    let mut body = response.into_body().into_data_stream();
    while let Some(bytes) = body.next().await {
        frame(&bytes.expect("an events body does not fail"));
    }
}

/// This crate: macro endpoints and `Broadcast`.
mod ours {
    use sse_runtime::resume::{Hub, MemoryStore};
    use sse_runtime::{Broadcast, CloseReason, LastEventId, ServerSentEvent, sse};

    use super::*;

    fn churn_closed(_reason: CloseReason) {
        stream_closed();
    }

    sse! {
        #[sse_endpoint(ping = 15)]
        pub(super) async fn events(Path(n): Path<u64>) {
            let _live = LiveGuard::open();
            for i in 0..n {
                yield ServerSentEvent::new().id(i).data(PAYLOAD);
            }
        }

        #[sse_endpoint(ping = 15, send_timeout = 5)]
        async fn events_timeout(Path(n): Path<u64>) {
            let _live = LiveGuard::open();
            for i in 0..n {
                yield ServerSentEvent::new().id(i).data(PAYLOAD);
            }
        }

        #[sse_endpoint(ping = 15)]
        async fn fanout(State(hub): State<Broadcast>) {
            let _live = LiveGuard::open();
            for await event in hub.subscribe() {
                yield event;
            }
        }

        #[sse_endpoint(ping = 15)]
        async fn idle() {
            let _live = LiveGuard::open();
            std::future::pending::<()>().await;
        }

        /// Counted by its close hook: the hook runs once for every one of the disconnects.
        #[sse_endpoint(ping = 15, on_close = churn_closed)]
        async fn churn() {
            stream_opened();
            yield ServerSentEvent::new().id(0).data(PAYLOAD);
            std::future::pending::<()>().await;
        }

        /// What the module docs of `sse_runtime::resume` show: replay after the client's
        /// cursor, then live events.
        #[sse_endpoint(ping = 15)]
        async fn resume_events(State(hub): State<Hub>, since: LastEventId) {
            let _live = LiveGuard::open();
            for await event in hub.resume([TOPIC], since).await {
                yield event;
            }
        }
    }

    /// `fanout` with a coalescing window ([`COALESCE_WINDOW`], `--coalesce`).
    async fn fanout_coalesced(
        context: sse_runtime::SseContext,
        hub: State<Broadcast>,
    ) -> sse_runtime::EventSourceResponse {
        fanout(context, hub).await.coalesce(COALESCE_WINDOW)
    }

    /// Publishes `n` events to the topic; answers the id of the last (the hub's head).
    async fn resume_publish(State(hub): State<Hub>, Path(n): Path<u64>) -> String {
        for _ in 0..n {
            // The memory store never fails.
            let _ = hub
                .publish(TOPIC, ServerSentEvent::new().data(PAYLOAD))
                .await;
        }
        match hub.head().await {
            Ok(head) => format!("{head}\n"),
            Err(error) => format!("{error}\n"),
        }
    }

    async fn publish(State(hub): State<Broadcast>, Path(n): Path<u64>) -> &'static str {
        for i in 0..n {
            // Fails only for events that cannot be encoded.
            let _ = hub.send(ServerSentEvent::new().id(i).data(PAYLOAD));
        }
        "ok\n"
    }

    /// Both hubs behind one `Arc`, so that cloning the state costs what axum's does.
    #[derive(Clone)]
    struct Hubs(std::sync::Arc<(Broadcast, Hub)>);

    impl axum::extract::FromRef<Hubs> for Broadcast {
        fn from_ref(hubs: &Hubs) -> Self {
            hubs.0.0.clone()
        }
    }

    impl axum::extract::FromRef<Hubs> for Hub {
        fn from_ref(hubs: &Hubs) -> Self {
            hubs.0.1.clone()
        }
    }

    async fn stats(State(hub): State<Broadcast>) -> String {
        stats_text(hub.subscriber_count(), 0).await
    }

    async fn stats_with_resume(State(hubs): State<Hubs>) -> String {
        let (broadcast, resumable) = &*hubs.0;
        stats_text(
            broadcast.subscriber_count(),
            resumable.subscriber_count(TOPIC),
        )
        .await
    }

    /// The routes both servers have, on a state that holds a `Broadcast`; with `coalesce`,
    /// `/fanout` is [`fanout_coalesced`].
    fn common<S>(coalesce: bool) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        Broadcast: axum::extract::FromRef<S>,
    {
        Router::new()
            .route("/events/{n}", get(events))
            .route("/events_timeout/{n}", get(events_timeout))
            .route(
                "/fanout",
                if coalesce {
                    get(fanout_coalesced)
                } else {
                    get(fanout)
                },
            )
            .route("/publish/{n}", get(publish))
            .route("/idle", get(idle))
            .route("/churn", get(churn))
    }

    pub(super) fn router(resume: bool, coalesce: bool) -> Router {
        let broadcast = Broadcast::new(FANOUT_CAPACITY);
        if !resume {
            return common(coalesce)
                .route("/stats", get(stats))
                .with_state(broadcast);
        }
        let resumable = Hub::builder()
            .store(MemoryStore::new(RESUME_HISTORY))
            .capacity(FANOUT_CAPACITY)
            .max_replay(RESUME_MAX_REPLAY)
            .build();
        common(coalesce)
            .route("/resume/events", get(resume_events))
            .route("/resume/publish/{n}", get(resume_publish))
            .route("/stats", get(stats_with_resume))
            .with_state(Hubs(std::sync::Arc::new((broadcast, resumable))))
    }
}

/// axum's own `Sse`, as an axum user writes it.
mod theirs {
    use std::sync::Arc;

    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use axum::http::{StatusCode, header};
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::response::{IntoResponse, Response};
    use bytes::Bytes;
    use futures_core::Stream;
    use tokio::sync::broadcast;
    use tokio_util::sync::ReusableBoxFuture;

    use super::*;

    #[derive(Clone)]
    struct Message {
        id: u64,
        data: Arc<str>,
    }

    /// Shared as `Arc<Hub>`, so that cloning the state costs what ours (`Broadcast`) does.
    struct Hub {
        tx: broadcast::Sender<Message>,
        payload: Arc<str>,
        /// `--lean`: every event framed once, as a chunk of ours's bytes, for [`fanout_lean`].
        frames: Option<broadcast::Sender<Bytes>>,
    }

    /// What an axum user writes: `Sse::new(stream).keep_alive(KeepAlive::default())` (15 s).
    fn respond<S>(stream: S) -> impl IntoResponse
    where
        S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
    {
        Sse::new(stream).keep_alive(KeepAlive::default())
    }

    pub(super) async fn events(Path(n): Path<u64>) -> impl IntoResponse {
        respond(async_stream::stream! {
            let _live = LiveGuard::open();
            for i in 0..n {
                yield Ok(Event::default().id(i.to_string()).data(PAYLOAD));
            }
        })
    }

    async fn fanout(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
        let mut rx = hub.tx.subscribe();
        respond(async_stream::stream! {
            let _live = LiveGuard::open();
            loop {
                match rx.recv().await {
                    Ok(message) => {
                        yield Ok(Event::default().id(message.id.to_string()).data(&*message.data));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    /// The leanest fan-out body on axum (`--lean`): each event's bytes, framed once by the
    /// publisher, handed to hyper as they are; no keep-alive, no formatting.
    /// What any body on `axum::serve` costs at least, whatever SSE layer makes it.
    async fn fanout_lean(State(hub): State<Arc<Hub>>) -> Response {
        let Some(frames) = &hub.frames else {
            return StatusCode::NOT_FOUND.into_response();
        };
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            frames_body(frames.subscribe()),
        )
            .into_response()
    }

    /// A body of each frame `frames` receives, as it is, and nothing else (the leanest body
    /// on hyper; also the cluster's floor on hyper, `bench cluster-floor --hyper`).
    pub(crate) fn frames_body(frames: broadcast::Receiver<Bytes>) -> axum::body::Body {
        axum::body::Body::new(Frames {
            next: ReusableBoxFuture::new(next_frame(frames)),
            _live: LiveGuard::open(),
        })
    }

    /// A body of the frames a receiver gets (as `tokio_stream`'s `BroadcastStream`: the
    /// receive is one future, reused).
    struct Frames {
        next: ReusableBoxFuture<'static, Received>,
        _live: LiveGuard,
    }

    type Received = (
        Result<Bytes, broadcast::error::RecvError>,
        broadcast::Receiver<Bytes>,
    );

    async fn next_frame(mut frames: broadcast::Receiver<Bytes>) -> Received {
        (frames.recv().await, frames)
    }

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            loop {
                let (received, frames) = ready!(self.next.poll(cx));
                self.next.set(next_frame(frames));
                match received {
                    Ok(frame) => return Poll::Ready(Some(Ok(http_body::Frame::data(frame)))),
                    // Missed events fail the driver's counts; no passing run has any.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Poll::Ready(None),
                }
            }
        }
    }

    async fn idle() -> impl IntoResponse {
        respond(async_stream::stream! {
            let _live = LiveGuard::open();
            std::future::pending::<()>().await;
            yield Ok(Event::default());
        })
    }

    /// The leanest idle stream axum has (`--lean`): no keep-alive, no live count (the driver
    /// counts the response heads instead).
    async fn idle_lean() -> impl IntoResponse {
        Sse::new(futures_util::stream::pending::<Result<Event, Infallible>>())
    }

    async fn churn() -> impl IntoResponse {
        respond(async_stream::stream! {
            let _live = LiveGuard::open();
            yield Ok(Event::default().id("0").data(PAYLOAD));
            std::future::pending::<()>().await;
        })
    }

    async fn publish(State(hub): State<Arc<Hub>>, Path(n): Path<u64>) -> &'static str {
        if let Some(frames) = &hub.frames {
            let mut frame = Vec::with_capacity(128);
            for i in 0..n {
                frame.clear();
                super::floor::encode(&mut frame, i);
                // Fails only when nobody listens.
                let _ = frames.send(Bytes::copy_from_slice(&frame));
            }
            return "ok\n";
        }
        for i in 0..n {
            // Fails only when nobody listens.
            let _ = hub.tx.send(Message {
                id: i,
                data: hub.payload.clone(),
            });
        }
        "ok\n"
    }

    async fn stats(State(hub): State<Arc<Hub>>) -> String {
        let subscribers = match &hub.frames {
            Some(frames) => frames.receiver_count(),
            None => hub.tx.receiver_count(),
        };
        stats_text(subscribers, 0).await
    }

    /// With `lean`, `/idle` is [`idle_lean`]; the routes are the same either way (see the
    /// module docs: every route costs each connection memory).
    pub(super) fn router(lean: bool) -> Router {
        let (tx, _) = broadcast::channel(FANOUT_CAPACITY);
        Router::new()
            .route("/events/{n}", get(events))
            // axum has no send timeout: (e) compares against the plain endpoint.
            .route("/events_timeout/{n}", get(events))
            .route("/fanout", if lean { get(fanout_lean) } else { get(fanout) })
            .route("/publish/{n}", get(publish))
            .route("/idle", if lean { get(idle_lean) } else { get(idle) })
            .route("/churn", get(churn))
            .route("/stats", get(stats))
            .with_state(Arc::new(Hub {
                tx,
                payload: Arc::from(PAYLOAD),
                frames: lean.then(|| broadcast::channel(FANOUT_CAPACITY).0),
            }))
    }
}
