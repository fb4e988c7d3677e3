//! Caps on concurrent streams, with a refusal that makes a browser come back later.
//!
//! A [`StreamLimit`] counts the streams open now against a maximum. A request over the cap is
//! refused, by default in the one way a browser's `EventSource` reads as "try again later":
//! status `200` with the usual SSE headers and a body of exactly one `retry:` field
//! (`retry: <ms>` and a blank line), then a clean end. `EventSource` treats any status but
//! `200` (and any content type but `text/event-stream`) as fatal: it fails the connection, its
//! `readyState` becomes `CLOSED` and it never reconnects by itself; a `204` stops it on
//! purpose. A clean end after a `retry:` field, on the other hand, makes it wait that many
//! milliseconds and reconnect (with its `Last-Event-ID`), as after any stream that ended.
//!
//! The delay is drawn anew for every refusal, uniformly in `[base, base + jitter]`
//! ([`RetryHint`]; by default 5 to 10 s), so that clients refused together do not all come
//! back together. For clients that are not browsers (curl, other services, load balancers),
//! [`Refusal::ServiceUnavailable`] answers `503` with `Retry-After` instead.
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Router, routing::get};
//! use sse_runtime::limit::{RetryHint, StreamLimit};
//! use sse_runtime::sse;
//!
//! sse! {
//!     async fn ticks() {
//!         loop {
//!             tokio::time::sleep(Duration::from_secs(1)).await;
//!             yield "tick";
//!         }
//!     }
//! }
//!
//! // At most 10,000 streams in this app; a refused browser comes back in 2 to 6 seconds.
//! let limit = StreamLimit::new(10_000)
//!     .retry(RetryHint::new(Duration::from_secs(2)).jitter(Duration::from_secs(4)));
//! let app: Router = Router::new()
//!     .route("/ticks", get(ticks))
//!     .layer(limit.layer());
//! ```
//!
//! **What counts.** A stream takes its place when its response is made (`into_response`) and
//! gives it back exactly once when it ends, whatever ends it (the source's end, a disconnect,
//! an error or a panic, a send timeout, a shutdown; the place is free before the close hooks
//! run). A `HEAD` request, a `204` of a resume's gap policy and an invalid header take none and
//! are never refused. A refused stream never runs: its source is dropped unpolled, its close
//! hooks see [`CloseReason::Refused`](crate::CloseReason::Refused) and its background tasks
//! run.
//!
//! **Per app, per route, per topic.** [`StreamLimit::layer`] makes a limit reach every response
//! that is given the request's [`SseContext`](crate::SseContext) (every `#[sse_endpoint]`
//! handler, and runtime-API responses through
//! [`.context(..)`](crate::EventSourceResponse::context)); a response given a limit of its own
//! with [`EventSourceResponse::limit`](crate::EventSourceResponse::limit) counts against that
//! one instead. [`StreamLimit::child`] makes a limit for part of an app whose streams count
//! against the app's too. A resumable [`Hub`](crate::Hub) caps its subscribers per topic and in
//! all ([`HubBuilder::max_subscribers_per_topic`](crate::resume::HubBuilder::max_subscribers_per_topic)).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};

use crate::event::{Separator, ServerSentEvent};

/// The retry hint of a limit that was not given one: come back in 5 to 10 seconds.
///
/// ```
/// use std::time::Duration;
///
/// use sse_runtime::limit::DEFAULT_RETRY;
///
/// assert_eq!(DEFAULT_RETRY.base(), Duration::from_secs(5));
/// assert_eq!(DEFAULT_RETRY.jitter_width(), Duration::from_secs(5));
/// ```
pub const DEFAULT_RETRY: RetryHint = RetryHint::new(Duration::from_secs(5));

/// When a refused client should come back: a delay drawn uniformly in `[base, base + jitter]`,
/// anew for every refusal, in whole milliseconds.
///
/// `RetryHint::new(base)` spreads over `[base, 2 * base]`; [`jitter`](Self::jitter) sets the
/// width. A `Duration` converts into a hint with that base (so `.retry(Duration::from_secs(2))`
/// means 2 to 4 s). The draw is cheap (one hash of a counter with the standard library's
/// per-process random keys), not a secret.
///
/// ```
/// use std::time::Duration;
///
/// use sse_runtime::limit::RetryHint;
///
/// let hint = RetryHint::new(Duration::from_millis(200)).jitter(Duration::from_millis(100));
/// for _ in 0..100 {
///     let delay = hint.pick();
///     assert!(Duration::from_millis(200) <= delay && delay <= Duration::from_millis(300));
/// }
/// assert_eq!(RetryHint::from(Duration::from_secs(2)).jitter_width(), Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryHint {
    base_ms: u64,
    jitter_ms: u64,
}

impl RetryHint {
    /// A hint of `base` to twice `base`. A base of zero with no jitter makes browsers come back
    /// at once, which only moves the load.
    pub const fn new(base: Duration) -> Self {
        let base_ms = millis(base);
        Self {
            base_ms,
            jitter_ms: base_ms,
        }
    }

    /// Spreads the delay over `[base, base + width]` (zero: always `base`).
    pub const fn jitter(mut self, width: Duration) -> Self {
        self.jitter_ms = millis(width);
        self
    }

    /// The shortest delay.
    pub const fn base(&self) -> Duration {
        Duration::from_millis(self.base_ms)
    }

    /// How much longer than the base the delay may be.
    pub const fn jitter_width(&self) -> Duration {
        Duration::from_millis(self.jitter_ms)
    }

    /// A delay drawn from the range.
    pub fn pick(&self) -> Duration {
        Duration::from_millis(self.pick_ms())
    }

    pub(crate) fn pick_ms(&self) -> u64 {
        let spread = match self.jitter_ms.checked_add(1) {
            Some(spread) => crate::random::u64() % spread,
            None => crate::random::u64(),
        };
        self.base_ms.saturating_add(spread)
    }
}

impl Default for RetryHint {
    fn default() -> Self {
        DEFAULT_RETRY
    }
}

impl From<Duration> for RetryHint {
    fn from(base: Duration) -> Self {
        Self::new(base)
    }
}

/// Whole milliseconds of `duration`, saturating.
const fn millis(duration: Duration) -> u64 {
    let ms = duration.as_millis();
    if ms > u64::MAX as u128 {
        u64::MAX
    } else {
        ms as u64
    }
}

/// How a request over the cap is answered.
///
/// | | status | body | a browser's `EventSource` | other clients |
/// | --- | --- | --- | --- | --- |
/// | `Retry` | `200`, SSE headers | `retry: <ms>` and a blank line, then a clean end | waits `<ms>`, reconnects | see a short, successful stream; whether and when they come back is theirs to decide |
/// | `ServiceUnavailable` | `503`, `Retry-After: <s>` | empty | **gives up for good** (`readyState` `CLOSED`) | back off as HTTP says |
///
/// `Retry-After` is in whole seconds, rounded up (at least 1), of the same jittered delay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// `200`, the usual SSE headers, a body of exactly `retry: <ms>` and a blank line (in the
    /// response's separator), then a clean end. The default: what browsers respect.
    #[default]
    Retry,
    /// `503 Service Unavailable` with `Retry-After: <seconds>` and `cache-control: no-store`.
    /// For clients that are not browsers; an `EventSource` does not reconnect after it.
    ServiceUnavailable,
}

/// A cap on the streams open at once: cheap to clone, every clone counts the same streams.
///
/// Give it to an app with [`layer`](Self::layer) (or to one response with
/// [`EventSourceResponse::limit`](crate::EventSourceResponse::limit)); see the
/// [module docs](self) for what counts and how a refusal looks.
///
/// The cap and the count are shared by the clones; the retry hint and the refusal form belong
/// to the handle, so a clone may refuse differently while counting the same streams.
///
/// ```
/// use futures_util::stream;
/// use http_body_util::BodyExt;
/// use axum::response::IntoResponse;
/// use sse_runtime::EventSourceResponse;
/// use sse_runtime::limit::StreamLimit;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limit = StreamLimit::new(1);
/// let first = EventSourceResponse::new(stream::pending::<&str>()).limit(&limit).into_response();
/// assert_eq!((limit.open(), limit.available()), (1, 0));
///
/// // Over the cap: a `retry:` hint and a clean end.
/// let second = EventSourceResponse::new(stream::pending::<&str>()).limit(&limit).into_response();
/// assert_eq!(second.status(), 200);
/// let body = second.into_body().collect().await.unwrap().to_bytes();
/// assert!(body.starts_with(b"retry: ") && body.ends_with(b"\r\n\r\n"));
///
/// drop(first); // the client left
/// assert_eq!(limit.open(), 0);
/// # }
/// ```
#[derive(Clone)]
pub struct StreamLimit {
    node: Arc<Node>,
    retry: RetryHint,
    refusal: Refusal,
}

/// One counter of a limit, with the counter of the limit it is a child of.
struct Node {
    max: usize,
    open: AtomicUsize,
    parent: Option<Arc<Node>>,
}

impl Node {
    /// Takes a place here and in every ancestor, or none at all.
    ///
    /// A place taken here while an ancestor is full is given back at once: a concurrent
    /// request may meanwhile be refused by this counter though it would have fit (never the
    /// other way round), which errs on the side of the cap.
    fn try_take(&self) -> bool {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok();
        if !taken {
            return false;
        }
        if let Some(parent) = &self.parent
            && !parent.try_take()
        {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(parent) = &self.parent {
            parent.give_back();
        }
    }
}

impl StreamLimit {
    /// A limit of `max` streams open at once (0 refuses every stream), refusing with
    /// [`Refusal::Retry`] and [`DEFAULT_RETRY`].
    pub fn new(max: usize) -> Self {
        Self {
            node: Arc::new(Node {
                max,
                open: AtomicUsize::new(0),
                parent: None,
            }),
            retry: DEFAULT_RETRY,
            refusal: Refusal::Retry,
        }
    }

    /// A limit of `max` streams whose streams also count against this one (and its own
    /// parents): a stream opens only where every one of them has room. For a route, or a group
    /// of routes, of an app that has an app-wide limit: give the child to those responses (or
    /// install `child.layer()` on those routes), and they count against both. The child refuses
    /// with its own hint and form (at first, this handle's).
    ///
    /// ```
    /// use sse_runtime::limit::StreamLimit;
    ///
    /// let app = StreamLimit::new(10_000);
    /// let exports = app.child(50);
    /// assert_eq!(exports.max(), 50);
    /// assert_eq!(exports.available(), 50);
    /// ```
    pub fn child(&self, max: usize) -> Self {
        Self {
            node: Arc::new(Node {
                max,
                open: AtomicUsize::new(0),
                parent: Some(self.node.clone()),
            }),
            retry: self.retry,
            refusal: self.refusal,
        }
    }

    /// When refused clients are told to come back (default [`DEFAULT_RETRY`], 5 to 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use sse_runtime::limit::{RetryHint, StreamLimit};
    ///
    /// let spread = StreamLimit::new(100).retry(Duration::from_secs(1)); // 1 to 2 s
    /// let narrow = StreamLimit::new(100)
    ///     .retry(RetryHint::new(Duration::from_secs(1)).jitter(Duration::from_millis(250)));
    /// # drop((spread, narrow));
    /// ```
    pub fn retry(mut self, hint: impl Into<RetryHint>) -> Self {
        self.retry = hint.into();
        self
    }

    /// How requests over the cap are answered (default [`Refusal::Retry`]).
    ///
    /// ```
    /// use sse_runtime::limit::{Refusal, StreamLimit};
    ///
    /// // For an API whose clients are services, not browsers.
    /// let limit = StreamLimit::new(100).refusal(Refusal::ServiceUnavailable);
    /// # drop(limit);
    /// ```
    pub fn refusal(mut self, refusal: Refusal) -> Self {
        self.refusal = refusal;
        self
    }

    /// The layer that makes this limit count every SSE response of a router that is given the
    /// request's [`SseContext`](crate::SseContext) (every `#[sse_endpoint]` handler does). It
    /// is an [`axum::Extension`] carrying the handle, as [`Shutdown::layer`](crate::Shutdown::layer)
    /// is; an inner one (on a route) replaces an outer one, so use a [`child`](Self::child)
    /// there to keep counting against the app's.
    pub fn layer(&self) -> axum::Extension<StreamLimit> {
        axum::Extension(self.clone())
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.node.max
    }

    /// How many streams hold a place now (for a parent, its children's included).
    pub fn open(&self) -> usize {
        self.node.open.load(Ordering::Acquire)
    }

    /// How many more streams would open now: the least room of this limit and its parents.
    pub fn available(&self) -> usize {
        let mut node = Some(&*self.node);
        let mut room = usize::MAX;
        while let Some(current) = node {
            let open = current.open.load(Ordering::Acquire);
            room = room.min(current.max.saturating_sub(open));
            node = current.parent.as_deref();
        }
        room
    }

    /// The retry hint of this handle.
    pub fn retry_hint(&self) -> RetryHint {
        self.retry
    }

    /// The refusal form of this handle.
    pub fn refusal_form(&self) -> Refusal {
        self.refusal
    }

    /// A place for one stream, if there is room.
    pub(crate) fn try_permit(&self) -> Option<Permit> {
        self.node.try_take().then(|| Permit(self.node.clone()))
    }

    /// A place for one stream, or the refusal to answer with.
    pub(crate) fn try_open(&self) -> Result<Permit, Refused> {
        if let Some(permit) = self.try_permit() {
            return Ok(permit);
        }
        let refused = Refused::new(self.refusal, self.retry, RefusedBy::StreamLimit);
        tracing::debug!(
            max = self.node.max,
            retry_ms = refused.retry_ms,
            "server-sent event stream refused: the stream limit is reached"
        );
        Err(refused)
    }
}

impl fmt::Debug for StreamLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLimit")
            .field("max", &self.max())
            .field("open", &self.open())
            .field("child", &self.node.parent.is_some())
            .field("retry", &self.retry)
            .field("refusal", &self.refusal)
            .finish()
    }
}

/// One stream's place in a limit (and its parents'), given back once, when dropped.
pub(crate) struct Permit(Arc<Node>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// What refused a stream, for the metric's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusedBy {
    StreamLimit,
    Hub,
}

impl RefusedBy {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_label(self) -> &'static str {
        match self {
            RefusedBy::StreamLimit => "stream_limit",
            RefusedBy::Hub => "hub",
        }
    }
}

/// A refusal decided: its form and the delay drawn for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) refusal: Refusal,
    pub(crate) retry_ms: u64,
}

impl Refused {
    /// Draws the delay and counts the refusal.
    pub(crate) fn new(refusal: Refusal, hint: RetryHint, by: RefusedBy) -> Self {
        #[cfg(feature = "metrics")]
        metrics::counter!(crate::observe::names::STREAMS_REFUSED, "by" => by.as_label())
            .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = by;
        Self {
            refusal,
            retry_ms: hint.pick_ms(),
        }
    }

    /// `retry: <ms>` and a blank line.
    pub(crate) fn frame(&self, separator: Separator) -> Bytes {
        ServerSentEvent::new()
            .retry(self.retry_ms)
            .encode(separator)
    }

    /// The delay in whole seconds, rounded up, at least 1: `Retry-After`.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.retry_ms.div_ceil(1000).max(1)
    }

    /// The response: `headers` are the stream's own (status 200), for [`Refusal::Retry`].
    pub(crate) fn response(&self, headers: HeaderMap, separator: Separator) -> Response {
        match self.refusal {
            Refusal::Retry => {
                let mut response = Response::new(Body::from(self.frame(separator)));
                *response.headers_mut() = headers;
                response
            }
            Refusal::ServiceUnavailable => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                let headers = response.headers_mut();
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.retry_after_secs()),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_takes_a_place_in_its_parent_or_nowhere() {
        let app = StreamLimit::new(2);
        let route = app.child(5);
        let a = route.try_open().unwrap();
        let b = app.try_open().unwrap();
        assert_eq!((app.open(), route.open()), (2, 1));
        assert_eq!(route.available(), 0);
        // The parent is full: the child refuses, and keeps no place of its own.
        assert!(route.try_open().is_err());
        assert_eq!(route.open(), 1);
        drop(b);
        let c = route.try_open().unwrap();
        assert_eq!((app.open(), route.open()), (2, 2));
        drop((a, c));
        assert_eq!((app.open(), route.open()), (0, 0));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let at = |retry_ms| Refused {
            refusal: Refusal::ServiceUnavailable,
            retry_ms,
        };
        assert_eq!(at(0).retry_after_secs(), 1);
        assert_eq!(at(1000).retry_after_secs(), 1);
        assert_eq!(at(1001).retry_after_secs(), 2);
        assert_eq!(at(u64::MAX).retry_after_secs(), u64::MAX.div_ceil(1000));
    }

    #[test]
    fn hints_saturate_instead_of_overflowing() {
        let hint = RetryHint::new(Duration::MAX);
        assert_eq!(hint.pick_ms(), u64::MAX);
        let hint = RetryHint::new(Duration::ZERO).jitter(Duration::MAX);
        let _ = hint.pick_ms();
        let fixed = RetryHint::new(Duration::from_millis(7)).jitter(Duration::ZERO);
        assert_eq!(fixed.pick_ms(), 7);
    }
}
