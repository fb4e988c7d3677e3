//! The response body: source stream, ping ticker, shutdown watch and hooks in one state machine.
//!
//! [`Driver::poll_step`] is the single place where a stream advances and where it ends. It is
//! driven in one of two ways:
//!
//! * **directly** ([`SseBody`]): hyper polls the body in its connection task. No extra task, no
//!   lock, no channel. A dropped body is a disconnected client.
//! * **through a producer task** ([`ProducerBody`]), only when a send timeout is set and the
//!   connection cannot enforce it itself: hyper stops polling a body while its write buffer is
//!   full, so a timer inside the body could never fire for a client that stopped reading. The task
//!   hands frames over a channel of capacity one and times out each hand-off.
//!
//! Every exit (end, error, panic, disconnect, shutdown, send timeout) goes through
//! `State::close`, or the driver's drop for a stream dropped unfinished, and reports exactly one
//! [`CloseReason`].

use std::any::Any;
use std::fmt;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::BoxError;
use crate::close::{BoxFuture, CloseReason, HookSet};
use crate::connection::ConnectionHandle;
use crate::event::{Separator, ServerSentEvent};
use crate::into_event::Payload;
use crate::shutdown::ShutdownWatch;
use crate::time::deadline;

/// Builds the message of every keep-alive ping.
pub(crate) type PingFactory = Arc<dyn Fn() -> ServerSentEvent + Send + Sync + 'static>;

/// Events that are ready together are coalesced into one body frame of at most about this size.
pub(crate) const FRAME_LIMIT: usize = 32 * 1024;

/// Raw bytes at least this large go out as a frame of their own instead of being copied.
const RAW_ZERO_COPY: usize = 4 * 1024;

/// One step of the stream, as the body hands it to hyper.
#[derive(Debug)]
pub(crate) enum Step {
    Data(Bytes),
    /// The end, with the terminating chunk.
    End,
    /// The end, without the terminating chunk: the connection is aborted.
    Abort(CloseReason),
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Clean(CloseReason),
    Abort(CloseReason),
}

/// Everything the driver needs, gathered by the response builder.
pub(crate) struct Parts {
    pub(crate) producer: Option<BoxFuture>,
    pub(crate) separator: Separator,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_message: Option<PingFactory>,
    pub(crate) shutdown: Option<ShutdownWatch>,
    pub(crate) connection: Option<ConnectionHandle>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) hooks: HookSet,
    pub(crate) prelude: Option<Bytes>,
}

/// What a response is built from: its stream, kept at its own type until the body is made, so
/// that the stream lives inside the body's allocation rather than in one of its own.
pub(crate) trait Start: Send {
    /// The response body: driven directly, or through a producer task with `send_timeout`.
    fn start(self: Box<Self>, parts: Parts, producer_timeout: Option<Duration>)
    -> axum::body::Body;
}

/// A stream waiting for its response to be sent.
pub(crate) struct Pending<S>(pub(crate) S);

impl<S> Start for Pending<S>
where
    S: Stream<Item = Item> + Send + 'static,
{
    fn start(
        self: Box<Self>,
        parts: Parts,
        producer_timeout: Option<Duration>,
    ) -> axum::body::Body {
        let driver = Driver::new(parts, self.0);
        match producer_timeout {
            Some(timeout) => axum::body::Body::new(ProducerBody::new(driver, timeout)),
            None => axum::body::Body::new(SseBody { driver }),
        }
    }
}

/// What a source yields.
pub(crate) type Item = Result<Payload, BoxError>;

/// The driver's view of its source, which lives beside it in the body.
trait SourceSlot {
    /// The next item; `None` once the source was dropped.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Item>>>;
    /// Drops the source.
    fn clear(&mut self);
}

impl<S: Stream<Item = Item>> SourceSlot for Pin<&mut Option<S>> {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Item>>> {
        self.as_mut()
            .as_pin_mut()
            .map(|source| source.poll_next(cx))
    }

    fn clear(&mut self) {
        self.set(None);
    }
}

pin_project! {
    /// The state machine of one response, with its source and its ping timer inline: one
    /// allocation (axum's box of the body) holds everything an idle stream needs.
    pub(crate) struct Driver<S> {
        #[pin]
        ping_timer: Option<Sleep>,
        state: State,
        #[pin]
        source: Option<S>,
    }

    impl<S> PinnedDrop for Driver<S> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped unfinished: the client went away (or its connection timed out).
            let this = this.project();
            if let Some(reason) = this.state.begin_close(None) {
                let mut source = this.source;
                source.set(None);
                this.state.finish_close(reason);
            }
        }
    }
}

/// Everything of [`Driver`] but its timer and its source: what every stream needs, inline.
struct State {
    /// The ping period in nanoseconds; 0 sends no pings.
    ping_nanos: u64,
    /// The frame being built (a `Vec`: 8 bytes less than a `BytesMut` in every open stream).
    buf: Vec<u8>,
    /// What only some streams use (hooks, shutdown, a send timeout, ...), out of line.
    extras: Option<Box<Extras>>,
    /// Size of the last frame (saturating): the next buffer starts with about this much room.
    last_frame: u16,
    separator: Separator,
    /// Why the stream ended, once it has.
    reason: Option<CloseReason>,
    /// The decided ending, delivered once the buffer is flushed.
    ending: Option<Outcome>,
    /// [`STARTED`], [`DELIVERED`] and [`DONE`]: one byte, as every open stream carries them.
    flags: u8,
}

/// The stream was polled once: its timer is armed.
const STARTED: u8 = 1;
/// Something was handed to hyper.
const DELIVERED: u8 = 2;
/// The end was handed to hyper.
const DONE: u8 = 4;

/// What only some streams use: allocated for the ones that do.
#[derive(Default)]
struct Extras {
    hooks: HookSet,
    shutdown: Option<ShutdownWatch>,
    ping_message: Option<PingFactory>,
    producer: Option<BoxFuture>,
    /// The connection, when this response set its write timeout.
    connection: Option<ConnectionHandle>,
    write_timeout: Option<Duration>,
    /// Large raw bytes waiting for the buffered bytes before them to go out.
    pending_raw: Option<Bytes>,
}

impl<S: Stream<Item = Item>> Driver<S> {
    pub(crate) fn new(parts: Parts, source: S) -> Self {
        let buf = parts
            .prelude
            .map(|prelude| prelude.to_vec())
            .unwrap_or_default();
        // Saturates at 584 years, which is as good as never.
        let ping_nanos = u64::try_from(parts.ping_interval.as_nanos()).unwrap_or(u64::MAX);
        // The connection tells why a dropped body ended: its write timed out, or the shutdown
        // closed it.
        let connection = parts
            .connection
            .filter(|_| parts.write_timeout.is_some() || parts.shutdown.is_some());
        let extras = Extras {
            hooks: parts.hooks,
            shutdown: parts.shutdown,
            ping_message: parts.ping_message.filter(|_| ping_nanos != 0),
            producer: parts.producer,
            connection,
            write_timeout: parts.write_timeout,
            pending_raw: None,
        };
        let used = !extras.hooks.is_empty()
            || extras.shutdown.is_some()
            || extras.ping_message.is_some()
            || extras.producer.is_some()
            || extras.write_timeout.is_some();
        Self {
            ping_timer: None,
            state: State {
                ping_nanos,
                buf,
                extras: used.then(|| Box::new(extras)),
                last_frame: 0,
                separator: parts.separator,
                reason: None,
                ending: None,
                flags: 0,
            },
            source: Some(source),
        }
    }

    /// Advances the stream: everything ready is encoded into one frame.
    pub(crate) fn poll_step(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Step> {
        let this = self.project();
        let mut source = this.source;
        this.state.poll_step(this.ping_timer, &mut source, cx)
    }

    /// Whether nothing more will be sent (hyper then writes the terminating chunk at once).
    pub(crate) fn is_end_stream(&self) -> bool {
        self.state.is_end_stream()
    }

    /// Ends the stream for `reason` (only the first call counts); see [`State::close`].
    pub(crate) fn close(self: Pin<&mut Self>, reason: CloseReason) {
        let reason = Some(reason);
        self.close_for(reason);
    }

    /// Ends the stream whose body was dropped unfinished, for the reason its connection tells
    /// (see [`State::drop_reason`]).
    fn close_dropped(self: Pin<&mut Self>) {
        self.close_for(None);
    }

    fn close_for(self: Pin<&mut Self>, reason: Option<CloseReason>) {
        let mut this = self.project();
        if let Some(reason) = this.state.begin_close(reason) {
            this.source.set(None);
            this.state.finish_close(reason);
        }
        this.ping_timer.set(None);
    }
}

impl State {
    fn poll_step(
        &mut self,
        mut ping_timer: Pin<&mut Option<Sleep>>,
        source: &mut dyn SourceSlot,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        if !self.is(DONE) && self.ending.is_none() {
            self.pump(ping_timer.as_mut(), source, cx);
            if self.ending.is_some() {
                // Closed: no more pings, and no timer entry left behind.
                ping_timer.set(None);
            }
        }
        if let Some(frame) = self.take_frame() {
            self.flags |= DELIVERED;
            return Poll::Ready(Step::Data(frame));
        }
        if let Some(outcome) = self.ending.take() {
            if matches!(outcome, Outcome::Abort(_)) && !self.is(DELIVERED) {
                // Nothing was sent yet: let hyper flush the response head first, so the client
                // sees the status and headers before the abort (SPEC 70, 105).
                self.flags |= DELIVERED;
                self.ending = Some(outcome);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.flags |= DONE;
            return Poll::Ready(match outcome {
                Outcome::Clean(_) => Step::End,
                Outcome::Abort(reason) => Step::Abort(reason),
            });
        }
        if self.is(DONE) {
            return Poll::Ready(Step::End);
        }
        Poll::Pending
    }

    fn is(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn is_end_stream(&self) -> bool {
        self.is(DONE)
            || (matches!(self.ending, Some(Outcome::Clean(_)))
                && self.buf.is_empty()
                && self.pending_raw().is_none())
    }

    fn ping_period(&self) -> Option<Duration> {
        (self.ping_nanos != 0).then(|| Duration::from_nanos(self.ping_nanos))
    }

    fn pending_raw(&self) -> Option<&Bytes> {
        self.extras.as_ref()?.pending_raw.as_ref()
    }

    fn start(&mut self, mut ping_timer: Pin<&mut Option<Sleep>>) {
        self.flags |= STARTED;
        if let Some(period) = self.ping_period() {
            // A fixed period from the start of the stream; the first ping one period in.
            ping_timer.set(Some(tokio::time::sleep_until(deadline(
                Instant::now(),
                period,
            ))));
        }
        if let Some(extras) = &self.extras
            && let (Some(connection), Some(timeout)) = (&extras.connection, extras.write_timeout)
        {
            connection.set_write_timeout(Some(timeout));
        }
    }

    fn pump(
        &mut self,
        mut ping_timer: Pin<&mut Option<Sleep>>,
        source: &mut dyn SourceSlot,
        cx: &mut Context<'_>,
    ) {
        if !self.is(STARTED) {
            self.start(ping_timer.as_mut());
        }
        if let Some(extras) = &mut self.extras {
            if let Some(producer) = &mut extras.producer {
                match catch_unwind(AssertUnwindSafe(|| producer.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => {}
                    // Its normal completion does not end the response (SPEC 114).
                    Ok(Poll::Ready(())) => extras.producer = None,
                    Err(panic) => {
                        log_panic("producer", &*panic);
                        return self.end(Outcome::Abort(CloseReason::Error), source);
                    }
                }
            }
            if let Some(shutdown) = &mut extras.shutdown
                && shutdown.poll(cx).is_ready()
            {
                return self.end(Outcome::Abort(CloseReason::Shutdown), source);
            }
        }
        while self.buf.len() < FRAME_LIMIT && self.pending_raw().is_none() {
            let polled = catch_unwind(AssertUnwindSafe(|| source.poll_item(cx)));
            match polled {
                Ok(None | Some(Poll::Pending)) => break,
                Ok(Some(Poll::Ready(Some(Ok(payload))))) => {
                    if payload.raw().is_some_and(|raw| raw.len() >= RAW_ZERO_COPY) {
                        self.extras.get_or_insert_default().pending_raw = payload.into_raw();
                        continue;
                    }
                    if self.buf.capacity() == 0 {
                        // Only now: a stream with nothing to send holds no buffer.
                        self.buf
                            .reserve((self.last_frame as usize).clamp(256, FRAME_LIMIT));
                    }
                    if let Err(error) = payload.encode_to(self.separator, &mut self.buf) {
                        tracing::error!(%error, "server-sent event could not be encoded; aborting the response");
                        return self.end(Outcome::Abort(CloseReason::Error), source);
                    }
                }
                Ok(Some(Poll::Ready(Some(Err(error))))) => {
                    tracing::error!(%error, "server-sent event stream failed; aborting the response");
                    return self.end(Outcome::Abort(CloseReason::Error), source);
                }
                Ok(Some(Poll::Ready(None))) => {
                    let shutting_down = self
                        .extras
                        .as_ref()
                        .and_then(|extras| extras.shutdown.as_ref())
                        .is_some_and(ShutdownWatch::begun);
                    let reason = if shutting_down {
                        CloseReason::Shutdown
                    } else {
                        CloseReason::Completed
                    };
                    return self.end(Outcome::Clean(reason), source);
                }
                Err(panic) => {
                    log_panic("stream", &*panic);
                    return self.end(Outcome::Abort(CloseReason::Error), source);
                }
            }
        }
        if let Some(period) = self.ping_period()
            && poll_ping(ping_timer, period, cx)
        {
            let message = self
                .extras
                .as_ref()
                .and_then(|extras| extras.ping_message.as_ref());
            match message {
                Some(factory) => match catch_unwind(AssertUnwindSafe(|| factory())) {
                    Ok(event) => event.write_to(self.separator, &mut self.buf),
                    Err(panic) => {
                        log_panic("ping message", &*panic);
                        self.end(Outcome::Abort(CloseReason::Error), source);
                    }
                },
                None => default_ping(self.separator, &mut self.buf),
            }
        }
    }

    /// Decides the ending: the hooks run now, the end is delivered once the buffer is flushed.
    fn end(&mut self, outcome: Outcome, source: &mut dyn SourceSlot) {
        let (Outcome::Clean(reason) | Outcome::Abort(reason)) = outcome;
        self.close(reason, source);
        self.ending = Some(outcome);
    }

    /// Ends the stream for `reason` (only the first call counts): client-close hooks, then the
    /// source is dropped, then the close hooks and background tasks. The caller drops the ping
    /// timer.
    fn close(&mut self, reason: CloseReason, source: &mut dyn SourceSlot) {
        if let Some(reason) = self.begin_close(Some(reason)) {
            source.clear();
            self.finish_close(reason);
        }
    }

    /// Decides why the stream ended (for a stream dropped unfinished, `None`: the client went
    /// away, or its connection timed out) and runs what comes before the source is dropped.
    /// `None` if the stream had already ended.
    fn begin_close(&mut self, reason: Option<CloseReason>) -> Option<CloseReason> {
        if self.reason.is_some() {
            return None;
        }
        let reason = reason.unwrap_or_else(|| self.drop_reason());
        self.reason = Some(reason);
        if let Some(extras) = &mut self.extras {
            extras.hooks.begin(reason);
        }
        Some(reason)
    }

    /// What comes after the source was dropped: the close hooks and background tasks.
    fn finish_close(&mut self, reason: CloseReason) {
        self.ping_nanos = 0;
        if let Some(extras) = &mut self.extras {
            extras.shutdown = None;
            extras.producer = None;
            if let Some(connection) = &extras.connection {
                connection.set_write_timeout(None);
            }
            extras.hooks.finish(reason);
        }
    }

    fn take_frame(&mut self) -> Option<Bytes> {
        if !self.buf.is_empty() {
            self.last_frame = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
            // The buffer starts afresh, so an idle stream keeps no allocation between frames.
            return Some(Bytes::from(std::mem::take(&mut self.buf)));
        }
        self.extras.as_mut()?.pending_raw.take()
    }

    /// The reason a stream that is dropped unfinished ended for.
    fn drop_reason(&self) -> CloseReason {
        let connection = self
            .extras
            .as_ref()
            .and_then(|extras| extras.connection.as_ref());
        match connection {
            Some(connection) if connection.timed_out() => CloseReason::SendTimeout,
            Some(connection) if connection.shut_down() => CloseReason::Shutdown,
            _ => CloseReason::ClientDisconnected,
        }
    }
}

/// Whether the ping timer fired; if so, it is set to the next period of the stream's schedule.
///
/// Missed periods are skipped, keeping the schedule (tokio's `MissedTickBehavior::Skip`): a
/// stream whose task was held up pings once, then again on its own beat.
fn poll_ping(timer: Pin<&mut Option<Sleep>>, period: Duration, cx: &mut Context<'_>) -> bool {
    let Some(mut sleep) = timer.as_pin_mut() else {
        return false;
    };
    if sleep.as_mut().poll(cx).is_pending() {
        return false;
    }
    let due = sleep.deadline();
    let now = Instant::now();
    let next = if now > deadline(due, Duration::from_millis(5)) {
        let behind = (now - due).as_nanos() % period.as_nanos();
        deadline(
            now,
            period - Duration::from_nanos(u64::try_from(behind).unwrap_or(0)),
        )
    } else {
        deadline(due, period)
    };
    // Armed at the next poll, which follows the frame this ping goes out in.
    sleep.reset(next);
    true
}

impl<S> fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("separator", &self.state.separator)
            .field("buffered", &self.state.buf.len())
            .field("closed", &self.state.reason)
            .finish_non_exhaustive()
    }
}

/// `: ping - 2026-11-24 01:06:23.498993+00:00` + SEP + SEP, as sse-starlette writes it (SPEC 79).
fn default_ping(separator: Separator, buf: &mut Vec<u8>) {
    buf.put_slice(ping_comment(SystemTime::now()).as_bytes());
    buf.put_slice(separator.as_bytes());
    buf.put_slice(separator.as_bytes());
}

/// The default ping comment line: Python's `str(datetime.now(timezone.utc))`, that is UTC with
/// microseconds, and no fraction at all when the microseconds are zero.
fn ping_comment(now: SystemTime) -> String {
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    let format = if now.timestamp_subsec_micros() == 0 {
        "%Y-%m-%d %H:%M:%S+00:00"
    } else {
        "%Y-%m-%d %H:%M:%S%.6f+00:00"
    };
    format!(": ping - {}", now.format(format))
}

fn log_panic(what: &str, panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>");
    tracing::error!(
        panic = message,
        "server-sent event {what} panicked; aborting the response"
    );
}

/// The error a body ends with when the response is aborted: hyper then closes the connection
/// without the terminating chunk, and the client sees an incomplete body.
///
/// ```
/// use std::time::Duration;
///
/// use axum::response::IntoResponse;
/// use futures_util::stream;
/// use sse_runtime::testing::{BodyReader, ReadError};
/// use sse_runtime::{CloseReason, EventSourceResponse, StreamAborted};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let failing = stream::iter([Err::<&str, _>(std::io::Error::other("boom"))]);
/// let response = EventSourceResponse::from_try_stream(failing).into_response();
/// let mut body = BodyReader::new(response.into_body());
/// let Err(ReadError::Aborted(error)) = body.frame(Duration::from_secs(1)).await else {
///     panic!("expected an abort");
/// };
/// let aborted = error.downcast_ref::<StreamAborted>().unwrap();
/// assert_eq!(aborted.reason(), CloseReason::Error);
/// # }
/// ```
#[derive(Debug)]
pub struct StreamAborted(CloseReason);

impl StreamAborted {
    /// Why the stream was aborted.
    pub fn reason(&self) -> CloseReason {
        self.0
    }
}

impl fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server-sent event stream aborted: {}", self.0)
    }
}

impl std::error::Error for StreamAborted {}

fn frame(step: Step) -> Option<Result<Frame<Bytes>, BoxError>> {
    match step {
        Step::Data(bytes) => Some(Ok(Frame::data(bytes))),
        Step::End => None,
        Step::Abort(reason) => Some(Err(Box::new(StreamAborted(reason)))),
    }
}

pin_project! {
    /// The body hyper polls directly.
    #[derive(Debug)]
    pub(crate) struct SseBody<S> {
        #[pin]
        driver: Driver<S>,
    }
}

impl<S: Stream<Item = Item>> Body for SseBody<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().driver.poll_step(cx).map(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.driver.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The body fed by a producer task, for send timeouts the connection cannot enforce.
pub(crate) struct ProducerBody<S> {
    rx: mpsc::Receiver<Step>,
    /// The stream, moved into its task on the first poll (it is not pinned before).
    start: Option<(Driver<S>, mpsc::Sender<Step>, Duration)>,
    done: bool,
}

// The driver is only moved, never pinned, while it waits in the body.
impl<S> Unpin for ProducerBody<S> {}

impl<S> ProducerBody<S> {
    fn new(driver: Driver<S>, send_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(1);
        Self {
            rx,
            start: Some((driver, tx, send_timeout)),
            done: false,
        }
    }
}

impl<S> fmt::Debug for ProducerBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerBody")
            .field("started", &self.start.is_none())
            .field("done", &self.done)
            .finish()
    }
}

impl<S: Stream<Item = Item> + Send + 'static> Body for ProducerBody<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some((driver, tx, timeout)) = this.start.take() {
            // Started on the first poll: building a response does no work (SPEC 58).
            tokio::spawn(produce(driver, tx, timeout));
        }
        let step = match std::task::ready!(this.rx.poll_recv(cx)) {
            Some(step) => step,
            // The producer stopped without saying how: it timed out, so abort.
            None => Step::Abort(CloseReason::SendTimeout),
        };
        if !matches!(step, Step::Data(_)) {
            this.done = true;
        }
        Poll::Ready(frame(step))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Runs the stream in a task of its own, handing each frame to the body within `timeout`.
async fn produce<S: Stream<Item = Item>>(
    driver: Driver<S>,
    tx: mpsc::Sender<Step>,
    timeout: Duration,
) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut driver = std::pin::pin!(driver);
    loop {
        let step = tokio::select! {
            biased;
            () = tx.closed() => return driver.as_mut().close_dropped(),
            step = poll_fn(|cx| driver.as_mut().poll_step(cx)) => step,
        };
        let last = !matches!(step, Step::Data(_));
        let permit = match tx.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Closed(())) => return driver.as_mut().close_dropped(),
            Err(TrySendError::Full(())) => {
                match tokio::time::timeout(timeout, tx.reserve()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return driver.as_mut().close_dropped(),
                    Err(_elapsed) => {
                        tracing::warn!(
                            ?timeout,
                            "server-sent event client stopped reading; send timeout, aborting the response"
                        );
                        return driver.as_mut().close(CloseReason::SendTimeout);
                    }
                }
            }
        };
        permit.send(step);
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::ping_comment;

    #[test]
    fn spec_79_ping_timestamps_match_python_str_of_a_utc_datetime() {
        // 2026-11-24 01:06:23 UTC
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_482_383);
        let micros = at + Duration::from_nanos(498_993_700);
        assert_eq!(
            ping_comment(micros),
            ": ping - 2026-11-24 01:06:23.498993+00:00"
        );
        assert_eq!(ping_comment(at), ": ping - 2026-11-24 01:06:23+00:00");
        let sub_micro = at + Duration::from_nanos(999);
        assert_eq!(
            ping_comment(sub_micro),
            ": ping - 2026-11-24 01:06:23+00:00"
        );
        let one_micro = at + Duration::from_micros(1);
        assert_eq!(
            ping_comment(one_micro),
            ": ping - 2026-11-24 01:06:23.000001+00:00"
        );
    }
}
