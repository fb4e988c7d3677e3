//! Graceful shutdown per app: a [`Shutdown`] handle, not a global switch.
//!
//! `axum::serve(..).with_graceful_shutdown(..)` waits for every open connection to finish, and an
//! SSE stream never finishes by itself, so a server with open streams would hang on Ctrl-C. A
//! [`Shutdown`] handle ends them: give it to [`serve`](crate::serve), which wires it into the
//! router ([`Shutdown::layer`]), hands [`Shutdown::on_signal`] to `with_graceful_shutdown`, and
//! serves connections that close when the grace ends even if their client stopped reading.
//!
//! Each stream watches the handle through one cancellation future (no polling, no task and no
//! timer per connection; a grace timer is armed only once the shutdown has begun). Two handles
//! are independent: two servers in one process, or two tests, never affect each other.
//!
//! One bit is shared by the process, as a hint: whether any handle was ever triggered. Until
//! then a watch that is registered with its task's waker needs no poll, so a stream or a
//! connection woken for an event reads nothing of the watch (memory that, with thousands of
//! streams, is not in the cache). It changes when a watch looks, never what it sees.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::FromRequestParts;
use http::request::Parts;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::time::deadline;

/// Set once any [`Shutdown`] of the process was triggered (the hint of the module docs).
static ANY_TRIGGERED: AtomicBool = AtomicBool::new(false);

/// Whether no [`Shutdown`] of the process was triggered yet: a watch registered with the
/// waker it is polled with has nothing to see until this turns false.
pub(crate) fn none_triggered() -> bool {
    !ANY_TRIGGERED.load(Ordering::Acquire)
}

/// A shutdown switch for every SSE stream of one app. Cheap to clone.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sse_runtime::connection::Listener;
/// use sse_runtime::{Shutdown, sse};
///
/// sse! {
///     async fn ticks() {
///         loop {
///             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///             yield "tick";
///         }
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let app = Router::new().route("/ticks", get(ticks));
/// let listener = Listener::bind("127.0.0.1:8000").await?;
/// sse_runtime::serve(listener, app, &shutdown).await
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    token: CancellationToken,
    triggered_at: OnceLock<Instant>,
}

impl Shutdown {
    /// A new, untriggered handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: every stream of this app is told at once, and streams opened
    /// afterwards end immediately. Calling it again does nothing.
    ///
    /// ```
    /// let shutdown = sse_runtime::Shutdown::new();
    /// assert!(!shutdown.is_triggered());
    /// shutdown.trigger();
    /// assert!(shutdown.is_triggered());
    /// ```
    pub fn trigger(&self) {
        let now = Instant::now();
        self.inner.triggered_at.get_or_init(|| now);
        // Before the token's wake-ups, so that every watch they wake polls its future.
        ANY_TRIGGERED.store(true, Ordering::Release);
        self.inner.token.cancel();
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        // Set before the token is cancelled, and read without its lock (which every stream's
        // and connection's watch would otherwise take on each poll).
        self.inner.triggered_at.get().is_some()
    }

    /// Resolves once the shutdown has begun.
    pub async fn triggered(&self) {
        self.inner.token.cancelled().await;
    }

    /// A future for `axum::serve(..).with_graceful_shutdown(..)`: it waits for SIGINT (Ctrl-C),
    /// SIGTERM or a call to [`trigger`](Self::trigger), tells every stream, then resolves so that
    /// axum stops accepting connections and waits for the open ones (which now end).
    ///
    /// If a signal handler cannot be installed, it logs an error and waits for the others.
    pub fn on_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            tokio::select! {
                () = ctrl_c() => tracing::info!("SIGINT received, shutting down SSE streams"),
                () = sigterm() => tracing::info!("SIGTERM received, shutting down SSE streams"),
                () = this.triggered() => {}
            }
            this.trigger();
        }
    }

    /// The layer that makes this handle reach every SSE response of a router: endpoints made with
    /// `#[sse_endpoint]` and responses given a [`SseContext`](crate::SseContext) find it there.
    ///
    /// It is an [`axum::Extension`] carrying the handle.
    pub fn layer(&self) -> axum::Extension<Shutdown> {
        axum::Extension(self.clone())
    }

    /// A signal a stream can wait on to say goodbye (see [`ShutdownSignal`]).
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            shutdown: Some(self.clone()),
        }
    }

    pub(crate) fn triggered_at(&self) -> Option<Instant> {
        self.inner.triggered_at.get().copied()
    }

    pub(crate) fn cancelled_owned(&self) -> WaitForCancellationFutureOwned {
        self.inner.token.clone().cancelled_owned()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

async fn ctrl_c() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for SIGINT");
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
async fn sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn sigterm() {
    std::future::pending::<()>().await;
}

/// What a stream awaits to learn that the server is shutting down, so that it can send farewell
/// events within its grace period (sse-starlette's `shutdown_event`, SPEC 107-113).
///
/// It is an extractor: take it as a handler parameter (including in an `#[sse_endpoint]`
/// function). It finds the app's [`Shutdown`] installed by [`Shutdown::layer`]; without one it
/// never fires.
///
/// ```
/// use std::time::Duration;
///
/// use sse_runtime::{ServerSentEvent, ShutdownSignal, sse};
///
/// sse! {
///     #[sse_endpoint(shutdown_grace = 5)]
///     async fn ticks(shutdown: ShutdownSignal) {
///         let mut n = 0;
///         loop {
///             tokio::select! {
///                 () = shutdown.wait() => break,
///                 () = tokio::time::sleep(Duration::from_secs(1)) => {}
///             }
///             n += 1;
///             yield ServerSentEvent::new().id(n).data(format!("tick {n}"));
///         }
///         yield ServerSentEvent::new().event("shutdown").data("server is shutting down, goodbye");
///     }
/// }
/// # let _ = ticks;
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShutdownSignal {
    shutdown: Option<Shutdown>,
}

impl ShutdownSignal {
    /// A signal that never fires.
    pub fn never() -> Self {
        Self { shutdown: None }
    }

    /// Resolves once the shutdown has begun; never, if there is no [`Shutdown`].
    pub async fn wait(&self) {
        match &self.shutdown {
            Some(shutdown) => shutdown.triggered().await,
            None => std::future::pending().await,
        }
    }

    /// Whether the shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.shutdown.as_ref().is_some_and(Shutdown::is_triggered)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ShutdownSignal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            shutdown: parts.extensions.get::<Shutdown>().cloned(),
        })
    }
}

/// Per-response shutdown settings.
#[derive(Clone, Debug)]
pub(crate) struct ShutdownConfig {
    pub(crate) handle: Option<Shutdown>,
    pub(crate) grace: Duration,
    pub(crate) drain: bool,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            handle: None,
            grace: Duration::ZERO,
            drain: true,
        }
    }
}

/// The driver's view of the shutdown: one cancellation future, then one grace timer.
pub(crate) struct ShutdownWatch {
    handle: Shutdown,
    state: WatchState,
    grace: Duration,
    begun: bool,
}

enum WatchState {
    /// The cancellation future, and the waker it was last polled with: while the shutdown has
    /// not begun and the watch is polled with that same waker, the future is not polled again
    /// (its poll locks the token, which every stream and connection of the app shares).
    Waiting(Pin<Box<WaitForCancellationFutureOwned>>, Option<Waker>),
    Grace(Pin<Box<Sleep>>),
    /// The shutdown began before the stream did: end at the first poll.
    Late,
    Finished,
}

impl ShutdownWatch {
    /// `None` when there is nothing to watch (no handle, or the stream opted out of the drain).
    pub(crate) fn new(config: &ShutdownConfig) -> Option<Self> {
        let handle = config.handle.as_ref().filter(|_| config.drain)?;
        if handle.is_triggered() {
            // Opened after the shutdown began: end at once (SPEC 105).
            return Some(Self::with_state(handle, config.grace, WatchState::Late));
        }
        Some(Self::for_connection(handle, config.grace))
    }

    /// The watch of `handle` with `grace`, waiting for the shutdown (if it began already, the
    /// grace counts from then). A connection that carries SSE streams watches the shutdown too:
    /// ready once it began and the longest grace of its streams passed, when the connection
    /// must close whatever its client does.
    pub(crate) fn for_connection(handle: &Shutdown, grace: Duration) -> Self {
        let waiting = WatchState::Waiting(Box::pin(handle.cancelled_owned()), None);
        Self::with_state(handle, grace, waiting)
    }

    fn with_state(handle: &Shutdown, grace: Duration, state: WatchState) -> Self {
        Self {
            handle: handle.clone(),
            state,
            grace,
            begun: handle.is_triggered(),
        }
    }

    /// Lengthens the grace (a connection's is the longest of its streams'); no effect once the
    /// grace timer runs.
    pub(crate) fn extend_grace(&mut self, grace: Duration) {
        self.grace = self.grace.max(grace);
    }

    /// Whether the shutdown has begun (a stream ending now ends because of it).
    pub(crate) fn begun(&self) -> bool {
        self.begun
    }

    /// Ready when the stream must end now (and be aborted): at once for a grace of zero or a
    /// stream opened after the shutdown began, else when the grace ends.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.state {
                WatchState::Waiting(cancelled, polled_with) => {
                    // The trigger marks the handle before it cancels the token, whose cancel
                    // then wakes the waker the future holds: skipping the poll loses no wake.
                    if !self.handle.is_triggered()
                        && polled_with
                            .as_ref()
                            .is_some_and(|waker| waker.will_wake(cx.waker()))
                    {
                        return Poll::Pending;
                    }
                    if cancelled.as_mut().poll(cx).is_pending() {
                        match polled_with {
                            Some(waker) => waker.clone_from(cx.waker()),
                            None => *polled_with = Some(cx.waker().clone()),
                        }
                        return Poll::Pending;
                    }
                    self.begun = true;
                    if self.grace.is_zero() {
                        self.state = WatchState::Finished;
                        return Poll::Ready(());
                    }
                    let start = self.handle.triggered_at().unwrap_or_else(Instant::now);
                    self.state = WatchState::Grace(Box::pin(tokio::time::sleep_until(deadline(
                        start, self.grace,
                    ))));
                }
                WatchState::Grace(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.state = WatchState::Finished;
                    return Poll::Ready(());
                }
                WatchState::Late => {
                    self.state = WatchState::Finished;
                    return Poll::Ready(());
                }
                WatchState::Finished => return Poll::Pending,
            }
        }
    }
}

impl fmt::Debug for ShutdownWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownWatch")
            .field("grace", &self.grace)
            .field("begun", &self.begun)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use super::{Shutdown, ShutdownWatch};
    use crate::wake_count::WakeCount;

    #[test]
    fn a_watch_polled_again_with_its_waker_is_still_woken_by_the_trigger() {
        let shutdown = Shutdown::new();
        let mut watch = ShutdownWatch::for_connection(&shutdown, std::time::Duration::ZERO);
        let (count, waker) = WakeCount::waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert_eq!(watch.poll(&mut cx), Poll::Pending);
        }
        // Polled with another waker, then with the first again: the last one is woken.
        let (_other, other_waker) = WakeCount::waker();
        assert_eq!(
            watch.poll(&mut Context::from_waker(&other_waker)),
            Poll::Pending
        );
        assert_eq!(watch.poll(&mut cx), Poll::Pending);
        assert_eq!(count.wakes(), 0);
        shutdown.trigger();
        assert_eq!(count.wakes(), 1, "the trigger wakes the watch");
        assert_eq!(watch.poll(&mut cx), Poll::Ready(()));
        assert!(watch.begun());
    }

    #[test]
    fn a_watch_sees_a_trigger_at_its_next_poll_whatever_its_waker() {
        let shutdown = Shutdown::new();
        let mut watch = ShutdownWatch::for_connection(&shutdown, std::time::Duration::ZERO);
        let (_count, waker) = WakeCount::waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(watch.poll(&mut cx), Poll::Pending);
        shutdown.trigger();
        assert_eq!(watch.poll(&mut cx), Poll::Ready(()));
    }
}
