//! Reading SSE responses in tests (feature `testing`).
//!
//! An SSE body may never end, so a test must never collect it whole (sse-starlette issue #165).
//! [`BodyReader`] reads a response body frame by frame, each read bounded by a timeout, and
//! [`parse_events`] reads bytes back with a spec-conformant parser (the `eventsource-stream`
//! crate, which follows the WHATWG algorithm).
//!
//! With feature `redis` too, [`RedisServer`] starts a throwaway `redis-server` of a test's own.
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::response::IntoResponse;
//! use futures_util::stream;
//! use sse_runtime::EventSourceResponse;
//! use sse_runtime::testing::{BodyReader, parse_events};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let response = EventSourceResponse::new(stream::iter(["a", "b"])).into_response();
//! let mut reader = BodyReader::new(response.into_body());
//! let bytes = reader.read_to_end(Duration::from_secs(5)).await.unwrap();
//! assert_eq!(&bytes[..], b"data: a\r\n\r\ndata: b\r\n\r\n");
//! let events = parse_events(&bytes);
//! assert_eq!(events[1].data, "b");
//! # }
//! ```

use std::fmt;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body_util::BodyExt;

use crate::BoxError;

pub use eventsource_stream::Event;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{REQUIRE_REDIS, RedisServer};

/// Why a read did not return data.
///
/// ```
/// use std::time::Duration;
///
/// use axum::response::IntoResponse;
/// use futures_util::stream;
/// use sse_runtime::EventSourceResponse;
/// use sse_runtime::testing::{BodyReader, ReadError};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let silent = EventSourceResponse::new(stream::pending::<&str>()).into_response();
/// let mut body = BodyReader::new(silent.into_body());
/// let waited = body.frame(Duration::from_secs(1)).await;
/// assert!(matches!(waited, Err(ReadError::Timeout)));
/// # }
/// ```
#[derive(Debug)]
pub enum ReadError {
    /// Nothing arrived within the timeout.
    Timeout,
    /// The body failed: the response was aborted (no terminating chunk).
    Aborted(BoxError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Timeout => f.write_str("timed out waiting for the body"),
            ReadError::Aborted(error) => write!(f, "the body was aborted: {error}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// Whether the body was aborted (as opposed to a timeout).
    pub fn is_aborted(&self) -> bool {
        matches!(self, ReadError::Aborted(_))
    }
}

/// Reads a response body frame by frame, with a timeout on every read (see the
/// [module example](self)).
#[derive(Debug)]
pub struct BodyReader {
    body: Body,
    ended: bool,
}

impl BodyReader {
    /// A reader of `body`.
    pub fn new(body: Body) -> Self {
        Self { body, ended: false }
    }

    /// The next data frame; `Ok(None)` at a clean end.
    pub async fn frame(&mut self, timeout: Duration) -> Result<Option<Bytes>, ReadError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            let next = tokio::time::timeout(timeout, self.body.frame())
                .await
                .map_err(|_| ReadError::Timeout)?;
            match next {
                None => {
                    self.ended = true;
                    return Ok(None);
                }
                Some(Err(error)) => {
                    self.ended = true;
                    return Err(ReadError::Aborted(error.into_inner()));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Everything until the clean end of the body, which must come within `timeout`.
    pub async fn read_to_end(&mut self, timeout: Duration) -> Result<Bytes, ReadError> {
        let deadline = crate::time::deadline(tokio::time::Instant::now(), timeout);
        let mut all = BytesMut::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.frame(left).await? {
                Some(data) => all.extend_from_slice(&data),
                None => return Ok(all.freeze()),
            }
        }
    }

    /// Frames until the bytes read contain `needle` (within `timeout` in all); returns them all.
    pub async fn read_until(
        &mut self,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, ReadError> {
        let deadline = crate::time::deadline(tokio::time::Instant::now(), timeout);
        let mut all = BytesMut::new();
        while !contains(&all, needle) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.frame(left).await? {
                Some(data) => all.extend_from_slice(&data),
                None => break,
            }
        }
        Ok(all.freeze())
    }

    /// Whether the body ended (cleanly or not).
    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Parses a complete event stream with a spec-conformant parser, as a browser would: comments
/// are skipped, data lines are joined with `\n`, events without data are not dispatched.
///
/// # Panics
///
/// On bytes that are not an event stream (not UTF-8): it is an assertion for tests. Use
/// [`try_parse_events`] to get the error instead.
///
/// ```
/// use sse_runtime::testing::parse_events;
///
/// let events = parse_events(b": ping\r\n\r\nid: 1\r\nevent: e\r\ndata: a\r\ndata: b\r\n\r\n");
/// assert_eq!(events.len(), 1);
/// assert_eq!((events[0].id.as_str(), events[0].event.as_str()), ("1", "e"));
/// assert_eq!(events[0].data, "a\nb");
/// ```
pub fn parse_events(bytes: &[u8]) -> Vec<Event> {
    try_parse_events(bytes).unwrap_or_else(|error| panic!("not a valid event stream: {error}"))
}

/// [`parse_events`], with the error for bytes that are not an event stream.
///
/// ```
/// use sse_runtime::testing::try_parse_events;
///
/// assert_eq!(try_parse_events(b"data: a\n\n").unwrap()[0].data, "a");
/// assert!(try_parse_events(b"data: \xff\n\n").is_err());
/// ```
pub fn try_parse_events(bytes: &[u8]) -> Result<Vec<Event>, BoxError> {
    use eventsource_stream::Eventsource;
    // A trailing LF completes a final line that ends in a lone CR (the parser waits for a
    // possible LF otherwise); after an event's blank line it is one more empty line, ignored.
    let chunks = [
        Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(bytes)),
        Ok(Bytes::from_static(b"\n")),
    ];
    let mut events = pin!(futures_util::stream::iter(chunks).eventsource());
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = events.as_mut().poll_next(&mut cx) {
        out.push(item.map_err(|error| error.to_string())?);
    }
    Ok(out)
}
