//! The response body: source stream, ping ticker, shutdown watch and hooks in one state machine.
//!
//! [`Core::poll_step`] is the single place where a stream advances and where it ends. It is driven
//! in one of two ways:
//!
//! * **directly** ([`SseBody`]): hyper polls the body in its connection task. No extra task, no
//!   lock, no channel. A dropped body is a disconnected client.
//! * **through a producer task** ([`ProducerBody`]), only when a send timeout is set and the
//!   connection cannot enforce it itself: hyper stops polling a body while its write buffer is
//!   full, so a timer inside the body could never fire for a client that stopped reading. The task
//!   hands frames over a channel of capacity one and times out each hand-off.
//!
//! Every exit (end, error, panic, disconnect, shutdown, send timeout) goes through [`Core::end`],
//! which reports exactly one [`CloseReason`].

use std::any::Any;
use std::fmt;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::BoxError;
use crate::close::{BoxFuture, CloseReason, Closer};
use crate::connection::ConnectionHandle;
use crate::event::{Separator, ServerSentEvent};
use crate::into_event::Payload;
use crate::shutdown::ShutdownWatch;

/// What the driver pulls events from.
pub(crate) type Source = Pin<Box<dyn Stream<Item = Result<Payload, BoxError>> + Send + 'static>>;

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
    pub(crate) source: Source,
    pub(crate) producer: Option<BoxFuture>,
    pub(crate) separator: Separator,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_message: Option<PingFactory>,
    pub(crate) shutdown: Option<ShutdownWatch>,
    pub(crate) connection: Option<ConnectionHandle>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) closer: Closer,
    pub(crate) prelude: Option<Bytes>,
}

pin_project! {
    /// The state machine of one response. The ping timer lives inline (pinned) rather than in
    /// an allocation of its own: every open stream carries one.
    pub(crate) struct Core {
        state: State,
        #[pin]
        ping_timer: Option<Sleep>,
    }
}

/// Everything of [`Core`] but its timer.
struct State {
    source: Option<Source>,
    separator: Separator,
    ping: Option<Ping>,
    shutdown: Option<ShutdownWatch>,
    connection: Option<ConnectionHandle>,
    /// What few streams use, out of line so that the others do not carry it.
    rare: Option<Box<Rare>>,
    closer: Closer,
    buf: BytesMut,
    /// The decided ending, delivered once the buffer is flushed.
    ending: Option<Outcome>,
    started: bool,
    /// Whether anything was handed to hyper yet.
    delivered: bool,
    done: bool,
    /// Size of the last frame: the next buffer starts with about this much room.
    last_frame: u32,
}

#[derive(Default)]
struct Rare {
    producer: Option<BoxFuture>,
    write_timeout: Option<Duration>,
    /// Large raw bytes waiting for the buffered bytes before them to go out.
    pending_raw: Option<Bytes>,
}

struct Ping {
    period: Duration,
    message: Option<PingFactory>,
}

impl Core {
    pub(crate) fn new(parts: Parts) -> Self {
        let ping = (!parts.ping_interval.is_zero()).then(|| Ping {
            period: parts.ping_interval,
            message: parts.ping_message,
        });
        let buf = match parts.prelude {
            Some(prelude) => BytesMut::from(&prelude[..]),
            None => BytesMut::new(),
        };
        let rare = (parts.producer.is_some() || parts.write_timeout.is_some()).then(|| {
            Box::new(Rare {
                producer: parts.producer,
                write_timeout: parts.write_timeout,
                pending_raw: None,
            })
        });
        Self {
            state: State {
                source: Some(parts.source),
                separator: parts.separator,
                ping,
                shutdown: parts.shutdown,
                connection: parts.connection,
                rare,
                closer: parts.closer,
                buf,
                ending: None,
                started: false,
                delivered: false,
                done: false,
                last_frame: 0,
            },
            ping_timer: None,
        }
    }

    /// The state of a stream that has not started (its timer is not armed yet), to be moved
    /// into a task; [`Core::resume`] puts it back.
    fn into_unstarted(self) -> State {
        let Self { state, ping_timer } = self;
        debug_assert!(ping_timer.is_none() && !state.started);
        state
    }

    fn resume(state: State) -> Self {
        Self {
            state,
            ping_timer: None,
        }
    }

    /// Advances the stream: everything ready is encoded into one frame.
    pub(crate) fn poll_step(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Step> {
        let this = self.project();
        this.state.poll_step(this.ping_timer, cx)
    }

    /// Whether nothing more will be sent (hyper then writes the terminating chunk at once).
    pub(crate) fn is_end_stream(&self) -> bool {
        self.state.is_end_stream()
    }

    /// Ends the stream for `reason` (only the first call counts); see [`State::close`].
    pub(crate) fn close(self: Pin<&mut Self>, reason: CloseReason) {
        let mut this = self.project();
        this.state.close(reason);
        this.ping_timer.set(None);
    }
}

impl State {
    fn poll_step(
        &mut self,
        mut ping_timer: Pin<&mut Option<Sleep>>,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        if !self.done && self.ending.is_none() {
            self.pump(ping_timer.as_mut(), cx);
            if self.ending.is_some() {
                // Closed: no more pings, and no timer entry left behind.
                ping_timer.set(None);
            }
        }
        if let Some(frame) = self.take_frame() {
            self.delivered = true;
            return Poll::Ready(Step::Data(frame));
        }
        if let Some(outcome) = self.ending.take() {
            if matches!(outcome, Outcome::Abort(_)) && !self.delivered {
                // Nothing was sent yet: let hyper flush the response head first, so the client
                // sees the status and headers before the abort (SPEC 70, 105).
                self.delivered = true;
                self.ending = Some(outcome);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.done = true;
            return Poll::Ready(match outcome {
                Outcome::Clean(_) => Step::End,
                Outcome::Abort(reason) => Step::Abort(reason),
            });
        }
        if self.done {
            return Poll::Ready(Step::End);
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || (matches!(self.ending, Some(Outcome::Clean(_)))
                && self.buf.is_empty()
                && self.pending_raw().is_none())
    }

    fn pending_raw(&self) -> Option<&Bytes> {
        self.rare.as_ref()?.pending_raw.as_ref()
    }

    fn start(&mut self, mut ping_timer: Pin<&mut Option<Sleep>>) {
        self.started = true;
        if let Some(ping) = &self.ping {
            // A fixed period from the start of the stream; the first ping one period in.
            ping_timer.set(Some(tokio::time::sleep_until(Instant::now() + ping.period)));
        }
        if let (Some(connection), Some(timeout)) = (
            &self.connection,
            self.rare.as_ref().and_then(|rare| rare.write_timeout),
        ) {
            connection.set_write_timeout(Some(timeout));
        }
    }

    fn pump(&mut self, mut ping_timer: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) {
        if !self.started {
            self.start(ping_timer.as_mut());
        }
        if let Some(producer) = self.rare.as_mut().and_then(|rare| rare.producer.as_mut()) {
            match catch_unwind(AssertUnwindSafe(|| producer.as_mut().poll(cx))) {
                Ok(Poll::Pending) => {}
                // Its normal completion does not end the response (SPEC 114).
                Ok(Poll::Ready(())) => {
                    if let Some(rare) = &mut self.rare {
                        rare.producer = None;
                    }
                }
                Err(panic) => {
                    log_panic("producer", &*panic);
                    return self.end(Outcome::Abort(CloseReason::Error));
                }
            }
        }
        if let Some(shutdown) = &mut self.shutdown
            && shutdown.poll(cx).is_ready()
        {
            return self.end(Outcome::Abort(CloseReason::Shutdown));
        }
        while self.buf.len() < FRAME_LIMIT && self.pending_raw().is_none() {
            let Some(source) = &mut self.source else {
                break;
            };
            match catch_unwind(AssertUnwindSafe(|| source.as_mut().poll_next(cx))) {
                Ok(Poll::Pending) => break,
                Ok(Poll::Ready(Some(Ok(payload)))) => {
                    if payload.raw().is_some_and(|raw| raw.len() >= RAW_ZERO_COPY) {
                        self.rare.get_or_insert_default().pending_raw = payload.into_raw();
                        continue;
                    }
                    if self.buf.capacity() == 0 {
                        // Only now: a stream with nothing to send holds no buffer.
                        self.buf
                            .reserve((self.last_frame as usize).clamp(256, FRAME_LIMIT));
                    }
                    if let Err(error) = payload.encode_to(self.separator, &mut self.buf) {
                        tracing::error!(%error, "server-sent event could not be encoded; aborting the response");
                        return self.end(Outcome::Abort(CloseReason::Error));
                    }
                }
                Ok(Poll::Ready(Some(Err(error)))) => {
                    tracing::error!(%error, "server-sent event stream failed; aborting the response");
                    return self.end(Outcome::Abort(CloseReason::Error));
                }
                Ok(Poll::Ready(None)) => {
                    let reason = if self.shutdown.as_ref().is_some_and(ShutdownWatch::begun) {
                        CloseReason::Shutdown
                    } else {
                        CloseReason::Completed
                    };
                    return self.end(Outcome::Clean(reason));
                }
                Err(panic) => {
                    log_panic("stream", &*panic);
                    return self.end(Outcome::Abort(CloseReason::Error));
                }
            }
        }
        if let Some(ping) = &self.ping
            && poll_ping(ping_timer, ping.period, cx)
        {
            match &ping.message {
                Some(factory) => match catch_unwind(AssertUnwindSafe(|| factory())) {
                    Ok(event) => event.encode_to(self.separator, &mut self.buf),
                    Err(panic) => {
                        log_panic("ping message", &*panic);
                        self.end(Outcome::Abort(CloseReason::Error));
                    }
                },
                None => default_ping(self.separator, &mut self.buf),
            }
        }
    }

    /// Decides the ending: the hooks run now, the end is delivered once the buffer is flushed.
    fn end(&mut self, outcome: Outcome) {
        let (Outcome::Clean(reason) | Outcome::Abort(reason)) = outcome;
        self.close(reason);
        self.ending = Some(outcome);
    }

    /// Ends the stream for `reason` (only the first call counts): client-close hooks, then the
    /// source is dropped, then the close hooks and background tasks. The caller drops the ping
    /// timer.
    fn close(&mut self, reason: CloseReason) {
        if !self.closer.begin(reason) {
            return;
        }
        self.source = None;
        self.ping = None;
        self.shutdown = None;
        if let Some(rare) = &mut self.rare {
            rare.producer = None;
            if rare.write_timeout.is_some()
                && let Some(connection) = &self.connection
            {
                connection.set_write_timeout(None);
            }
        }
        self.closer.finish();
    }

    fn take_frame(&mut self) -> Option<Bytes> {
        if !self.buf.is_empty() {
            self.last_frame = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
            // The buffer starts afresh, so an idle stream keeps no allocation between frames.
            return Some(std::mem::take(&mut self.buf).freeze());
        }
        self.rare.as_mut()?.pending_raw.take()
    }

    /// The reason a stream that is dropped unfinished ended for.
    fn drop_reason(&self) -> CloseReason {
        match &self.connection {
            Some(connection) if connection.timed_out() => CloseReason::SendTimeout,
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
    let deadline = sleep.deadline();
    let now = Instant::now();
    let next = if now > deadline + Duration::from_millis(5) {
        let behind = (now - deadline).as_nanos() % period.as_nanos();
        now + (period - Duration::from_nanos(u64::try_from(behind).unwrap_or(0)))
    } else {
        deadline + period
    };
    // Armed at the next poll, which follows the frame this ping goes out in.
    sleep.reset(next);
    true
}

impl Drop for State {
    fn drop(&mut self) {
        if self.closer.reason().is_none() {
            let reason = self.drop_reason();
            self.close(reason);
        }
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("separator", &self.state.separator)
            .field("buffered", &self.state.buf.len())
            .field("closed", &self.state.closer.reason())
            .finish_non_exhaustive()
    }
}

/// `: ping - 2026-11-24 01:06:23.498993+00:00` + SEP + SEP, as sse-starlette writes it (SPEC 79).
fn default_ping(separator: Separator, buf: &mut BytesMut) {
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
    pub(crate) struct SseBody {
        #[pin]
        core: Core,
    }
}

impl SseBody {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().core.poll_step(cx).map(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.core.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The body fed by a producer task, for send timeouts the connection cannot enforce.
pub(crate) struct ProducerBody {
    rx: mpsc::Receiver<Step>,
    start: Option<(State, mpsc::Sender<Step>, Duration)>,
    done: bool,
}

impl ProducerBody {
    pub(crate) fn new(core: Core, send_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(1);
        Self {
            rx,
            start: Some((core.into_unstarted(), tx, send_timeout)),
            done: false,
        }
    }
}

impl fmt::Debug for ProducerBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerBody")
            .field("started", &self.start.is_none())
            .field("done", &self.done)
            .finish()
    }
}

impl Body for ProducerBody {
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
        if let Some((state, tx, timeout)) = this.start.take() {
            // Started on the first poll: building a response does no work (SPEC 58).
            tokio::spawn(produce(Core::resume(state), tx, timeout));
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
async fn produce(core: Core, tx: mpsc::Sender<Step>, timeout: Duration) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut core = std::pin::pin!(core);
    loop {
        let step = tokio::select! {
            biased;
            () = tx.closed() => return core.as_mut().close(CloseReason::ClientDisconnected),
            step = poll_fn(|cx| core.as_mut().poll_step(cx)) => step,
        };
        let last = !matches!(step, Step::Data(_));
        let permit = match tx.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Closed(())) => {
                return core.as_mut().close(CloseReason::ClientDisconnected);
            }
            Err(TrySendError::Full(())) => {
                match tokio::time::timeout(timeout, tx.reserve()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => {
                        return core.as_mut().close(CloseReason::ClientDisconnected);
                    }
                    Err(_elapsed) => {
                        tracing::warn!(
                            ?timeout,
                            "server-sent event client stopped reading; send timeout, aborting the response"
                        );
                        return core.as_mut().close(CloseReason::SendTimeout);
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
