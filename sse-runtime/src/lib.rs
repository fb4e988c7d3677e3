//! Server-Sent Events for axum: byte-exact events, keep-alive pings, send timeouts, disconnect
//! hooks and graceful shutdown.
//!
//! The wire format and behaviour follow the Python library sse-starlette (`EventSourceResponse`,
//! `ServerSentEvent`, `JSONServerSentEvent`), byte for byte by default. On top of the runtime
//! API, the [`sse_endpoint`] attribute turns a generator-like async fn into an axum handler. The
//! fns whose bodies `yield` go inside an [`sse!`] block, because stable Rust rejects a bare
//! `yield` before any attribute could rewrite it:
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Router, extract::Path, routing::get};
//! use sse_runtime::{ServerSentEvent, sse};
//!
//! sse! {
//!     #[sse_endpoint(ping = 15, send_timeout = 5)]
//!     async fn numbers(Path((lo, hi)): Path<(u32, u32)>) {
//!         for i in lo..=hi {
//!             tokio::time::sleep(Duration::from_millis(900)).await;
//!             yield ServerSentEvent::new().id(i).data(i);
//!         }
//!     }
//! }
//!
//! let app: Router = Router::new().route("/numbers/{lo}/{hi}", get(numbers));
//! ```
//!
//! A fn that returns its stream has an ordinary body, so the attribute alone works for it (the
//! `yield`s of `async_stream::stream!` are that macro's):
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Router, extract::Path, routing::get};
//! use futures_util::Stream;
//! use sse_runtime::{ServerSentEvent, sse_endpoint};
//!
//! #[sse_endpoint(ping = 15, send_timeout = 5)]
//! async fn numbers(Path((lo, hi)): Path<(u32, u32)>) -> impl Stream<Item = ServerSentEvent> {
//!     async_stream::stream! {
//!         for i in lo..=hi {
//!             tokio::time::sleep(Duration::from_millis(900)).await;
//!             yield ServerSentEvent::new().id(i).data(i);
//!         }
//!     }
//! }
//!
//! let app: Router = Router::new().route("/numbers/{lo}/{hi}", get(numbers));
//! ```
//!
//! The same endpoint with the runtime API:
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::extract::Path;
//! use sse_runtime::{EventSourceResponse, ServerSentEvent, SseContext};
//!
//! async fn numbers(Path((lo, hi)): Path<(u32, u32)>, context: SseContext) -> EventSourceResponse {
//!     let events = async_stream::stream! {
//!         for i in lo..=hi {
//!             tokio::time::sleep(Duration::from_millis(900)).await;
//!             yield ServerSentEvent::new().id(i).data(i);
//!         }
//!     };
//!     EventSourceResponse::new(events)
//!         .ping(Duration::from_secs(15))
//!         .send_timeout(Duration::from_secs(5))
//!         .context(context)
//! }
//! # let _ = numbers;
//! ```
//!
//! Where to look:
//!
//! * [`ServerSentEvent`], [`Separator`], [`JsonServerSentEvent`]: events and their encoding;
//! * [`sse!`] and [`sse_endpoint`]: declarative endpoints whose bodies `yield` events, or
//!   return a stream of them;
//! * [`IntoEvent`]: what a stream may yield;
//! * [`EventSourceResponse`]: the response, its options and hooks ([`CloseReason`]);
//! * [`Broadcast`] and the [`broadcast`] module: encode-once fan-out to many clients;
//! * [`Hub`], [`LastEventId`] and the [`resume`] module: topics with history, and streams that
//!   resume exactly where a reconnecting client left off;
//! * [`channel`]: the [`Sender`](channel::Sender) of [`EventSourceResponse::channel`];
//! * [`serve`]: the one way to run an app with SSE streams; a shutdown never hangs on a client;
//! * [`Shutdown`], [`ShutdownSignal`]: graceful shutdown and farewells;
//! * [`StreamLimit`] and the [`limit`] module: caps on concurrent streams, with a refusal that
//!   makes browsers come back later;
//! * [`connection`]: the listener behind `serve`, whose connections enforce send timeouts and
//!   the shutdown's grace;
//! * [`testing`]: reading SSE responses in tests (feature `testing`).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod broadcast;
pub mod channel;
mod close;
pub mod connection;
mod context;
mod driver;
mod event;
mod into_event;
#[cfg(feature = "json")]
mod json;
pub mod limit;
pub mod observe;
mod random;
mod response;
pub mod resume;
mod serve;
mod shutdown;
mod tap;
mod task_poll;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
#[cfg(test)]
mod wake_count;

/// Locks `mutex`, whether or not a panic elsewhere poisoned it: every value the crate keeps
/// behind a lock is whole between statements, so a panic cannot leave it half-changed.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use broadcast::Broadcast;
pub use close::{CloseHooks, CloseReason, StreamAborted};
pub use context::SseContext;
pub use event::{ParseSeparatorError, Separator, ServerSentEvent};
pub use into_event::{IntoEvent, Payload};
#[cfg(feature = "json")]
pub use json::{Json, JsonError, JsonServerSentEvent};
pub use limit::StreamLimit;
pub use response::{DEFAULT_PING_INTERVAL, EventSourceResponse};
pub use resume::{Hub, LastEventId};
pub use serve::{Serve, serve};
pub use shutdown::{Shutdown, ShutdownSignal};

#[cfg(feature = "macros")]
pub use sse_macros::sse_endpoint;

/// A boxed error, as axum's: what a failing stream's errors convert into.
///
/// ```
/// let error: sse_runtime::BoxError = "database went away".into();
/// assert_eq!(error.to_string(), "database went away");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

// Not public API: only the expansion's names, so their docs would be noise.
#[doc(hidden)]
#[allow(missing_docs)]
#[path = "private.rs"]
pub mod __private;
