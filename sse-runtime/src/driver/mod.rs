//! The response body: source stream, ping schedule, shutdown watch and hooks in one state
//! machine, split by role as hyper splits `proto/h1`:
//!
//! * this file: the state machine ([`Driver`]), and how a stream ends ([`Ending`]);
//! * `ping`: the ping schedule and the default ping message;
//! * `body`: the body hyper polls directly ([`SseBody`]): no extra task, lock or channel;
//! * `producer`: the body fed by a producer task ([`ProducerBody`]), only for a send timeout
//!   the connection cannot enforce: hyper stops polling a body while its write buffer is full,
//!   so a timer inside the body could never fire for a client that stopped reading. The task
//!   hands frames over a channel of capacity one and times out each hand-off.
//!
//! [`Driver::poll_step`] is the single place where a stream advances and where it decides how
//! it ends. Every exit (end, error, panic, disconnect, shutdown, send timeout) goes through
//! `State::close`, which reports exactly one [`CloseReason`] through `HookSet::close`.

mod body;
pub(crate) mod direct;
mod frames;
mod ping;
mod producer;

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::BoxError;
use crate::close::{CloseReason, HookSet};
use crate::connection::ConnectionHandle;
use crate::event::{Separator, ServerSentEvent};
use crate::into_event::Payload;
use crate::limit::Permit;
use crate::observe::{self, Origin, Probe, Watch};
use crate::shutdown::{self, ShutdownWatch};
use crate::time::deadline;

use self::body::SseBody;
use self::producer::ProducerBody;

/// Builds the message of every keep-alive ping.
pub(crate) type PingFactory = Arc<dyn Fn() -> ServerSentEvent + Send + Sync + 'static>;

/// A future the response runs beside its stream (`EventSourceResponse::with_producer`).
pub(crate) type Producer = Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// Events that are ready together are coalesced into one body frame of at most about this size.
pub(crate) const FRAME_LIMIT: usize = 32 * 1024;

/// Raw bytes at least this large go out as a frame of their own instead of being copied.
const RAW_ZERO_COPY: usize = 4 * 1024;

/// Whether raw bytes that begin a frame may be the frame themselves, uncopied, if nothing
/// follows them: any but empty ones and those that go out alone anyway.
pub(crate) fn shares(bytes: &Bytes) -> bool {
    !bytes.is_empty() && bytes.len() < RAW_ZERO_COPY
}

/// Whether `payload` goes out as a frame of its own (large raw bytes) instead of being copied
/// into the frame being built.
pub(crate) fn goes_alone(payload: &Payload) -> bool {
    payload.raw().is_some_and(|raw| raw.len() >= RAW_ZERO_COPY)
}

/// How a stream ended: why, and whether the response is aborted (no terminating chunk, so the
/// client sees an incomplete body) or ends cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ending {
    pub(crate) reason: CloseReason,
    pub(crate) abort: bool,
}

impl Ending {
    fn clean(reason: CloseReason) -> Self {
        Self {
            reason,
            abort: false,
        }
    }

    fn abort(reason: CloseReason) -> Self {
        Self {
            reason,
            abort: true,
        }
    }
}

/// One step of the stream, as the body hands it to hyper.
#[derive(Debug)]
pub(crate) enum Step {
    Data(Bytes),
    End(Ending),
}

/// How a send timeout is enforced, decided once by the response builder.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SendTimeout {
    Off,
    /// The connection's `Io` times out stalled writes (HTTP/1 with `connection::Listener`).
    Connection(Duration),
    /// A producer task times out its hand-off to the body.
    Producer(Duration),
}

/// Everything the driver needs, gathered by the response builder.
pub(crate) struct Settings {
    pub(crate) producer: Option<Producer>,
    pub(crate) separator: Separator,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_message: Option<PingFactory>,
    pub(crate) shutdown: Option<ShutdownWatch>,
    pub(crate) connection: Option<ConnectionHandle>,
    pub(crate) send_timeout: SendTimeout,
    /// How long events may be held back to go out together.
    pub(crate) coalesce: Option<Duration>,
    pub(crate) hooks: HookSet,
    pub(crate) prelude: Option<Bytes>,
    /// The stream's place in a [`StreamLimit`](crate::limit::StreamLimit).
    pub(crate) permit: Option<Permit>,
    /// What the span says of the request.
    pub(crate) origin: Origin,
}

/// What a response is built from: its stream, kept at its own type until the body is made, so
/// that the stream lives inside the body's allocation rather than in one of its own.
pub(crate) trait Start: Send {
    /// The response body: driven directly, or through a producer task for a send timeout.
    fn start(self: Box<Self>, settings: Settings) -> axum::body::Body;
}

/// A stream whose response has not been sent yet.
pub(crate) struct Unstarted<S>(pub(crate) S);

impl<S> Start for Unstarted<S>
where
    S: Stream<Item = Item> + Send + 'static,
{
    fn start(self: Box<Self>, mut settings: Settings) -> axum::body::Body {
        let send_timeout = settings.send_timeout;
        match settings.prelude.take() {
            // Only a stream with a prelude carries one: the others keep no room for it.
            Some(prelude) => {
                let source = Prelude {
                    first: Some(prelude),
                    inner: self.0,
                };
                let mut driver = Driver::new(settings, source);
                driver.state.flags |= PRELUDE;
                body(driver, send_timeout)
            }
            None => body(Driver::new(settings, self.0), send_timeout),
        }
    }
}

/// The body hyper polls: driven directly, or through a producer task for a send timeout.
fn body<S>(driver: Driver<S>, send_timeout: SendTimeout) -> axum::body::Body
where
    S: Stream<Item = Item> + Send + 'static,
{
    match send_timeout {
        SendTimeout::Producer(timeout) => axum::body::Body::new(ProducerBody::new(driver, timeout)),
        SendTimeout::Off | SendTimeout::Connection(_) => {
            axum::body::Body::new(SseBody::new(driver))
        }
    }
}

pin_project! {
    /// A source that yields the response's prelude (its `retry:` field, as raw bytes) before
    /// the items of the stream: the first frame begins with it.
    pub(crate) struct Prelude<S> {
        first: Option<Bytes>,
        #[pin]
        inner: S,
    }
}

impl<S: Stream<Item = Item>> Stream for Prelude<S> {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = self.project();
        match this.first.take() {
            Some(prelude) => Poll::Ready(Some(Ok(crate::IntoEvent::into_event(prelude)))),
            None => this.inner.poll_next(cx),
        }
    }
}

/// What a source yields.
pub(crate) type Item = Result<Payload, BoxError>;

/// The driver's view of its source, which lives beside it in the body.
///
/// It exists so that `State` (everything but the source and the timer) stays one non-generic
/// type while the source stays inline in the driver: `State` reaches its sibling field through
/// this callback, to poll it and to drop it at the right point of the close sequence.
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
            // Dropped unfinished: the client went away, or its connection closed it.
            let this = this.project();
            let mut source = this.source;
            this.state.close_dropped(&mut || source.set(None));
            this.state.finish_probe();
        }
    }
}

/// Everything of [`Driver`] but its timer and its source: what every stream needs, inline.
struct State {
    /// The ping period in nanoseconds; 0 sends no pings.
    ping_nanos: u64,
    /// What only some streams use (hooks, shutdown, a send timeout, ...), out of line.
    extras: Option<Box<Extras>>,
    /// Size of the last frame (saturating): the next buffer starts with about this much room.
    last_frame: u16,
    separator: Separator,
    /// How the stream ended, once it has: its hooks ran, and the ending is handed to hyper
    /// once the buffer is flushed.
    ended: Option<Ending>,
    /// [`STARTED`], [`DONE`], [`FLUSHED`], and which parts of `extras` a poll must look at
    /// ([`PRODUCES`] and the rest): a poll of a stream whose extras need nothing then reads no
    /// line of the box, which for a stream woken once per event is a cache miss saved. Two
    /// bytes, in what was the struct's padding.
    flags: u16,
    /// The task poll ([`task_poll`](crate::task_poll)) in which the last poll left every part
    /// of the stream waiting, registered with the task's waker; 0 for none. A later poll of
    /// the body within the same task poll (hyper makes two after each chunk) then finds nothing
    /// new without looking: whatever changed since woke the task, which is polled again.
    quiet: u64,
}

/// The stream was polled once: its timer is armed.
const STARTED: u16 = 1;
/// The ending was handed to hyper.
const DONE: u16 = 4;
/// Before an abort, hyper was given one turn to write out what it holds.
const FLUSHED: u16 = 8;
/// `extras.producer` is set: every poll polls it.
const PRODUCES: u16 = 2;
/// `extras.shutdown` is set.
const WATCHES: u16 = 16;
/// The shutdown watch was polled and is waiting, registered with the stream's waker: until a
/// shutdown of the process begins ([`shutdown::none_triggered`]), it needs no poll.
const ARMED: u16 = 32;
/// `extras.pending_raw` may be set (it is never set without this flag).
const RAW: u16 = 64;
/// `extras.coalesce` is set.
const COALESCES: u16 = 128;
/// `extras.probe` is set.
const PROBED: u16 = 256;
/// `extras.probe` is set and its span is enabled: the source is polled inside it.
const SPANNED: u16 = 512;
/// The source is a [`Prelude`] that has not yielded its prelude yet: that item is no event.
const PRELUDE: u16 = 1024;
/// The stream is metered without a probe ([`Watch::Metered`]): each count goes to the
/// `metrics` facade as it happens; cleared once the close was counted.
const METERED: u16 = 2048;

/// What only some streams use: allocated for the ones that do.
#[derive(Default)]
struct Extras {
    hooks: HookSet,
    shutdown: Option<ShutdownWatch>,
    ping_message: Option<PingFactory>,
    producer: Option<Producer>,
    /// The connection, when it can tell why a dropped body ended (its write timed out, or the
    /// shutdown closed it).
    connection: Option<ConnectionHandle>,
    /// The send timeout the connection enforces, armed when the stream starts.
    send_timeout: Option<Duration>,
    /// Large raw bytes waiting for the buffered bytes before them to go out.
    pending_raw: Option<Bytes>,
    /// The span and meters, when anyone listens; taken when the stream's figures are final.
    probe: Option<Box<Probe>>,
    /// The stream's place in a limit: given back when the stream closes (or, at the latest,
    /// when the body is dropped).
    permit: Option<Permit>,
    /// The coalescing window, with its timer once a frame was held back.
    coalesce: Option<Coalesce>,
}

/// A coalescing window (`EventSourceResponse::coalesce`): at most one frame per window. A frame
/// goes out at once if the last one went out a window ago or more; otherwise it waits for the
/// window to end, gathering what comes meanwhile.
struct Coalesce {
    window: Duration,
    /// When the last frame went out.
    last: Option<Instant>,
    /// Armed while a frame is held back; made the first time one is.
    timer: Option<Pin<Box<Sleep>>>,
    /// The frame held back. The only frame that outlives a poll: the others are built and
    /// handed to hyper within one, so a stream keeps no buffer of its own.
    held: Vec<u8>,
}

impl Coalesce {
    /// Whether the frame being built (`buffered` bytes) waits. A full frame never does.
    fn holds(&mut self, buffered: usize, cx: &mut Context<'_>) -> bool {
        if buffered == 0 {
            return false;
        }
        let now = Instant::now();
        if let Some(last) = self.last
            && buffered < FRAME_LIMIT
        {
            let due = deadline(last, self.window);
            if due > now {
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return true;
                }
            }
        }
        // The frame goes out now.
        self.last = Some(now);
        false
    }
}

impl Extras {
    /// Whether a stream needs none of this (then it is not allocated). `pending_raw` is filled
    /// on demand.
    fn is_unused(&self) -> bool {
        self.hooks.is_empty()
            && self.shutdown.is_none()
            && self.ping_message.is_none()
            && self.producer.is_none()
            && self.connection.is_none()
            && self.send_timeout.is_none()
            && self.probe.is_none()
            && self.permit.is_none()
            && self.coalesce.is_none()
    }
}

impl<S: Stream<Item = Item>> Driver<S> {
    pub(crate) fn new(settings: Settings, source: S) -> Self {
        debug_assert!(settings.prelude.is_none(), "the prelude is the source's");
        // Saturates at 584 years, which is as good as never.
        let ping_nanos = u64::try_from(settings.ping_interval.as_nanos()).unwrap_or(u64::MAX);
        let send_timeout = match settings.send_timeout {
            SendTimeout::Connection(timeout) => Some(timeout),
            SendTimeout::Off | SendTimeout::Producer(_) => None,
        };
        let connection = settings
            .connection
            .filter(|_| send_timeout.is_some() || settings.shutdown.is_some());
        let (probe, metered) = match Probe::start(&settings.origin) {
            Watch::Probed(probe) => (Some(probe), false),
            Watch::Metered => (None, true),
            Watch::Unobserved => (None, false),
        };
        let extras = Extras {
            hooks: settings.hooks,
            shutdown: settings.shutdown,
            ping_message: settings.ping_message.filter(|_| ping_nanos != 0),
            producer: settings.producer,
            connection,
            send_timeout,
            pending_raw: None,
            probe,
            permit: settings.permit,
            coalesce: settings.coalesce.map(|window| Coalesce {
                window,
                last: None,
                timer: None,
                held: Vec::new(),
            }),
        };
        let mut flags = 0;
        for (set, flag) in [
            (extras.producer.is_some(), PRODUCES),
            (extras.shutdown.is_some(), WATCHES),
            (extras.coalesce.is_some(), COALESCES),
            (extras.probe.is_some(), PROBED),
            (metered, METERED),
            (
                extras
                    .probe
                    .as_ref()
                    .is_some_and(|probe| !probe.span().is_disabled()),
                SPANNED,
            ),
        ] {
            if set {
                flags |= flag;
            }
        }
        Self {
            ping_timer: None,
            state: State {
                ping_nanos,
                extras: (!extras.is_unused()).then(|| Box::new(extras)),
                last_frame: 0,
                separator: settings.separator,
                ended: None,
                flags,
                quiet: 0,
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

    /// Ends the stream, aborted, for `reason` (unless it had ended already).
    pub(crate) fn close(self: Pin<&mut Self>, reason: CloseReason) {
        let this = self.project();
        let mut source = this.source;
        this.state.close(Ending::abort(reason), &mut source);
        this.state.finish_probe();
        let mut timer = this.ping_timer;
        timer.set(None);
    }

    /// Ends the stream whose body was dropped unfinished, for the reason its connection tells.
    pub(crate) fn close_dropped(self: Pin<&mut Self>) {
        let this = self.project();
        let mut source = this.source;
        this.state.close_dropped(&mut || source.set(None));
        this.state.finish_probe();
        let mut timer = this.ping_timer;
        timer.set(None);
    }
}

impl State {
    fn poll_step(
        &mut self,
        mut ping_timer: Pin<&mut Option<Sleep>>,
        source: &mut dyn SourceSlot,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let poll = crate::task_poll::current(cx.waker());
        if poll != 0 && self.quiet == poll && self.ended.is_none() {
            return Poll::Pending;
        }
        self.quiet = 0;
        // The frame is built in this poll's buffer, and handed to hyper in it (or held back).
        let mut buf = self.take_held();
        if self.ended.is_none() {
            let (lone, waits) = self.pump(&mut buf, ping_timer.as_mut(), source, cx);
            if waits && poll != 0 && self.ended.is_none() && !self.is(COALESCES) {
                // Everything waits, registered with this poll's waker (a coalescing window's
                // hold is decided anew at each poll, so it is left out).
                self.quiet = poll;
            }
            if self.ended.is_some() {
                // Closed: no more pings, and no timer entry left behind.
                ping_timer.set(None);
            }
            if let Some(frame) = lone {
                debug_assert!(buf.is_empty(), "lone bytes are the whole frame");
                // Shared bytes alone in their frame: they go out as they are.
                self.last_frame = u16::try_from(frame.len()).unwrap_or(u16::MAX);
                return Poll::Ready(Step::Data(self.frame_out(frame)));
            }
        }
        if self.ended.is_none() && self.holds_back(&mut buf, cx) {
            return Poll::Pending;
        }
        if let Some(frame) = self.take_frame(buf) {
            return Poll::Ready(Step::Data(frame));
        }
        let Some(ending) = self.ended else {
            return Poll::Pending;
        };
        if ending.abort && !self.is(FLUSHED) {
            // Let hyper flush what it holds first (the response head, the frames just handed
            // over), so the client sees them before the abort (SPEC 70, 105, 120): on an
            // error hyper drops the connection without writing its buffer.
            self.flags |= FLUSHED;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.flags |= DONE;
        self.finish_probe();
        Poll::Ready(Step::End(ending))
    }

    /// Whether the frame being built is held back by a coalescing window: then it waits in
    /// the window, and `buf` is left empty.
    fn holds_back(&mut self, buf: &mut Vec<u8>, cx: &mut Context<'_>) -> bool {
        if !self.is(COALESCES) {
            return false;
        }
        let Some(extras) = self.extras.as_deref_mut() else {
            return false;
        };
        match &mut extras.coalesce {
            Some(coalesce) if extras.pending_raw.is_none() => {
                let holds = coalesce.holds(buf.len(), cx);
                if holds {
                    coalesce.held = std::mem::take(buf);
                }
                holds
            }
            _ => false,
        }
    }

    /// The frame a coalescing window held back, if any; else an empty buffer (no allocation).
    fn take_held(&mut self) -> Vec<u8> {
        if !self.is(COALESCES) {
            return Vec::new();
        }
        self.extras
            .as_deref_mut()
            .and_then(|extras| extras.coalesce.as_mut())
            .map(|coalesce| std::mem::take(&mut coalesce.held))
            .unwrap_or_default()
    }

    /// How many bytes wait between polls: those of a frame held back.
    fn held_len(&self) -> usize {
        if !self.is(COALESCES) {
            return 0;
        }
        self.extras
            .as_deref()
            .and_then(|extras| extras.coalesce.as_ref())
            .map_or(0, |coalesce| coalesce.held.len())
    }

    fn is(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    fn is_end_stream(&self) -> bool {
        self.is(DONE)
            || (self.ended.is_some_and(|ending| !ending.abort)
                && self.held_len() == 0
                && self.pending_raw().is_none())
    }

    fn ping_period(&self) -> Option<Duration> {
        (self.ping_nanos != 0).then(|| Duration::from_nanos(self.ping_nanos))
    }

    /// The room a frame's buffer gets when its first event comes: about the last frame, and an
    /// eighth more, so that the event that crosses the frame limit rarely doubles the buffer.
    fn first_room(&self) -> usize {
        let size = (self.last_frame as usize).clamp(256, FRAME_LIMIT);
        size + size / 8
    }

    fn pending_raw(&self) -> Option<&Bytes> {
        if !self.is(RAW) {
            return None;
        }
        self.extras.as_ref()?.pending_raw.as_ref()
    }

    /// Whether this poll must look at `extras` for the producer or the shutdown watch.
    fn extras_due(&self) -> bool {
        self.is(PRODUCES) || (self.is(WATCHES) && !(self.is(ARMED) && shutdown::none_triggered()))
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
            && let (Some(connection), Some(timeout)) = (&extras.connection, extras.send_timeout)
        {
            connection.set_write_timeout(Some(timeout));
        }
    }

    /// Polls what feeds the stream and encodes what is ready into the frame. Returns the frame
    /// when it is one shared event and nothing else (`lone`, below): those bytes go out
    /// uncopied, and `buf` is empty then.
    fn pump(
        &mut self,
        buf: &mut Vec<u8>,
        mut ping_timer: Pin<&mut Option<Sleep>>,
        source: &mut dyn SourceSlot,
        cx: &mut Context<'_>,
    ) -> (Option<Bytes>, bool) {
        // Whether the source was left waiting and no ping went out: then every part of the
        // stream polled here waits, registered with `cx`'s waker.
        let mut waits = false;
        if !self.is(STARTED) {
            self.start(ping_timer.as_mut());
        }
        if self.extras_due()
            && let Some(extras) = &mut self.extras
        {
            if let Some(producer) = &mut extras.producer {
                // Sound: after a panic the producer is dropped at once and never polled again,
                // so no state it broke is observed.
                match catch_unwind(AssertUnwindSafe(|| producer.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => {}
                    // Its normal completion does not end the response (SPEC 114).
                    Ok(Poll::Ready(())) => {
                        extras.producer = None;
                        self.flags &= !PRODUCES;
                    }
                    Err(panic) => {
                        log_panic("producer", &*panic);
                        self.close(Ending::abort(CloseReason::Error), source);
                        return (None, false);
                    }
                }
            }
            if let Some(shutdown) = &mut extras.shutdown {
                if shutdown.poll(cx).is_ready() {
                    self.close(Ending::abort(CloseReason::Shutdown), source);
                    return (None, false);
                }
                // Registered with this poll's waker. A stream is polled by one task (hyper's
                // connection task, or its h2 stream's), so later polls have the same waker;
                // were it another, the watch would still be polled at the first poll after a
                // shutdown began anywhere in the process (the next event or ping at the
                // latest), and the connection's own watch closes it after the grace.
                self.flags |= ARMED;
            }
        }
        // What the source logs, and what a resume records, belongs to the stream's span.
        let span = if self.is(SPANNED) {
            self.probe().map(|probe| probe.span().clone())
        } else {
            None
        };
        let _entered = span.as_ref().map(tracing::Span::enter);
        // Shared raw bytes that began the frame (its buffer has no capacity meanwhile): the
        // frame itself if nothing follows them, else copied into the buffer before what does.
        let mut lone: Option<Bytes> = None;
        while buf.len() < FRAME_LIMIT && self.pending_raw().is_none() {
            // The buffer is lent to the source for the poll: an endpoint's body writes what it
            // yields straight into it (see `direct`).
            let lent = direct::Lent::new(
                std::mem::take(buf),
                lone.take(),
                self.separator,
                self.first_room(),
            );
            // Sound for the same reason: a source that panicked is dropped, never polled again.
            let polled = catch_unwind(AssertUnwindSafe(|| source.poll_item(cx)));
            if let Some(sink) = lent.take_back() {
                *buf = sink.buf;
                lone = sink.lone;
                if sink.events > 0 {
                    self.count_events(sink.events);
                }
            }
            if !matches!(polled, Ok(None | Some(Poll::Pending))) {
                // Something follows the lone bytes, or the stream ends after them.
                self.unshare(buf, &mut lone);
            }
            match polled {
                Ok(None) => break,
                Ok(Some(Poll::Pending)) => {
                    waits = true;
                    break;
                }
                Ok(Some(Poll::Ready(Some(Ok(payload))))) => {
                    if self.is(PRELUDE) {
                        // The prelude's bytes, which begin the frame: counted as bytes only.
                        self.flags &= !PRELUDE;
                    } else {
                        self.count_events(1);
                    }
                    let payload = match direct::hold_lone(buf, &mut lone, payload) {
                        Ok(()) => continue,
                        Err(payload) => payload,
                    };
                    if goes_alone(&payload) {
                        self.extras.get_or_insert_default().pending_raw = payload.into_raw();
                        self.flags |= RAW;
                        continue;
                    }
                    if buf.capacity() == 0 {
                        // Only now: a stream with nothing to send holds no buffer.
                        *buf = frames::buffer(self.first_room());
                    }
                    if let Err(error) = payload.encode_to(self.separator, buf) {
                        tracing::error!(%error, "server-sent event could not be encoded; aborting the response");
                        self.close(Ending::abort(CloseReason::Error), source);
                        return (None, false);
                    }
                }
                Ok(Some(Poll::Ready(Some(Err(error))))) => {
                    tracing::error!(%error, "server-sent event stream failed; aborting the response");
                    self.close(Ending::abort(CloseReason::Error), source);
                    return (None, false);
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
                    self.close(Ending::clean(reason), source);
                    return (None, false);
                }
                Err(panic) => {
                    log_panic("stream", &*panic);
                    self.close(Ending::abort(CloseReason::Error), source);
                    return (None, false);
                }
            }
        }
        if let Some(period) = self.ping_period()
            && ping::poll_ping(ping_timer, period, cx)
        {
            waits = false;
            self.unshare(buf, &mut lone);
            if let Some(probe) = self.probe_mut() {
                probe.ping();
            } else if self.is(METERED) {
                observe::meter::ping();
            }
            let message = self
                .extras
                .as_ref()
                .and_then(|extras| extras.ping_message.as_ref());
            match message {
                // Sound: a factory that panicked is dropped with the stream, never called again.
                Some(factory) => match catch_unwind(AssertUnwindSafe(|| factory())) {
                    Ok(event) => event.write_to(self.separator, buf),
                    Err(panic) => {
                        log_panic("ping message", &*panic);
                        self.close(Ending::abort(CloseReason::Error), source);
                    }
                },
                None => ping::default_ping(self.separator, buf),
            }
        }
        if self.is(COALESCES) {
            // A coalescing window measures and holds back the buffer.
            self.unshare(buf, &mut lone);
        }
        (lone, waits)
    }

    /// Copies the lone shared bytes that began the frame, if any, into its buffer: something
    /// follows them, or the frame is held back.
    fn unshare(&self, buf: &mut Vec<u8>, lone: &mut Option<Bytes>) {
        if let Some(bytes) = lone.take() {
            direct::begin_frame(buf, bytes, self.first_room());
        }
    }

    /// Ends the stream (only the first call counts): the hooks run now, through
    /// [`HookSet::close`], which drops the source (and what runs beside it) at its point of the
    /// sequence; the ending is handed to hyper once the buffer is flushed. The caller drops the
    /// ping timer.
    fn close(&mut self, ending: Ending, source: &mut dyn SourceSlot) {
        self.close_with(ending, &mut || source.clear());
    }

    /// [`State::close`], given how to drop the source.
    fn close_with(&mut self, ending: Ending, drop_source: &mut dyn FnMut()) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(ending);
        self.ping_nanos = 0;
        self.flags &= !(PRODUCES | WATCHES | ARMED);
        let Some(extras) = self.extras.as_deref_mut() else {
            drop_source();
            return;
        };
        let mut hooks = std::mem::take(&mut extras.hooks);
        hooks.close(ending.reason, || {
            drop_source();
            extras.producer = None;
            extras.shutdown = None;
            if let Some(connection) = &extras.connection {
                connection.set_write_timeout(None);
            }
            // Once what the stream held is gone, and before the close hooks run: a hook that
            // looks at the limit sees the place free.
            extras.permit = None;
        });
    }

    /// Ends a stream whose body was dropped unfinished: the client went away, or its
    /// connection closed it (a send timeout, or the end of a shutdown's grace).
    fn close_dropped(&mut self, drop_source: &mut dyn FnMut()) {
        let connection = self
            .extras
            .as_ref()
            .and_then(|extras| extras.connection.as_ref());
        let reason = match connection {
            Some(connection) if connection.timed_out() => CloseReason::SendTimeout,
            Some(connection) if connection.shut_down() => CloseReason::Shutdown,
            _ => CloseReason::ClientDisconnected,
        };
        self.close_with(Ending::abort(reason), drop_source);
    }

    fn take_frame(&mut self, buf: Vec<u8>) -> Option<Bytes> {
        let frame = if buf.is_empty() {
            if !self.is(RAW) {
                return None;
            }
            self.flags &= !RAW;
            self.extras.as_mut()?.pending_raw.take()?
        } else {
            self.last_frame = u16::try_from(buf.len()).unwrap_or(u16::MAX);
            // The next poll starts afresh, so an idle stream keeps no allocation between frames.
            let mut frame = buf;
            // A frame may wait in hyper's queue for a slow reader: it holds its bytes (and at
            // most a 32nd more), not the room of a buffer that grew or was reserved for more
            // (hyper bounds its queue by length). Shrinking in place copies nothing. A large
            // buffer that is reused for the next frame (see `frames`) keeps up to a quarter
            // more: shrunk, it would have to grow again.
            let spare = frame.capacity() - frame.len();
            let reused = frames::pooled(frame.capacity()) && spare <= frame.len() / 4;
            if !reused && spare > frame.len() / 32 + 64 {
                frame.shrink_to_fit();
            }
            frames::frame(frame)
        };
        Some(self.frame_out(frame))
    }

    /// A frame on its way to hyper, counted.
    fn frame_out(&mut self, frame: Bytes) -> Bytes {
        if let Some(probe) = self.probe_mut() {
            probe.frame(frame.len());
        } else if self.is(METERED) {
            observe::meter::bytes(frame.len());
        }
        frame
    }

    /// `count` events went into the frame being built.
    fn count_events(&mut self, count: u64) {
        if let Some(probe) = self.probe_mut() {
            probe.events(count);
        } else if self.is(METERED) {
            observe::meter::events(count);
        }
    }

    fn probe(&self) -> Option<&Probe> {
        if !self.is(PROBED) {
            return None;
        }
        self.extras.as_ref()?.probe.as_deref()
    }

    fn probe_mut(&mut self) -> Option<&mut Probe> {
        if !self.is(PROBED) {
            return None;
        }
        self.extras.as_mut()?.probe.as_deref_mut()
    }

    /// Once the stream ended and its last frame went out (or never will): the probe records
    /// the figures, once.
    fn finish_probe(&mut self) {
        let Some(ending) = self.ended else { return };
        if let Some(mut probe) = self.extras.as_mut().and_then(|extras| extras.probe.take()) {
            self.flags &= !(PROBED | SPANNED);
            probe.close(ending.reason);
        } else if self.is(METERED) {
            self.flags &= !METERED;
            observe::meter::closed(ending.reason);
        }
    }
}

impl<S> fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("separator", &self.state.separator)
            .field("held", &self.state.held_len())
            .field("ended", &self.state.ended)
            .finish_non_exhaustive()
    }
}

fn log_panic(what: &str, panic: &(dyn Any + Send)) {
    tracing::error!(
        panic = crate::close::panic_message(panic),
        "server-sent event {what} panicked; aborting the response"
    );
}

#[cfg(test)]
mod tests {
    /// A driver of a stream that yields nothing, built as a response would build it.
    #[cfg(feature = "metrics")]
    fn bare_driver() -> super::Driver<futures_util::stream::Pending<super::Item>> {
        super::Driver::new(
            super::Settings {
                producer: None,
                separator: crate::event::Separator::default(),
                ping_interval: std::time::Duration::ZERO,
                ping_message: None,
                shutdown: None,
                connection: None,
                send_timeout: super::SendTimeout::Off,
                coalesce: None,
                hooks: crate::close::HookSet::default(),
                prelude: None,
                permit: None,
                origin: crate::observe::Origin::default(),
            },
            futures_util::stream::pending(),
        )
    }

    /// A recorder of zero size (as the facade's no-op one is), and one with state.
    #[cfg(feature = "metrics")]
    mod recorders {
        use metrics::{
            Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
        };

        pub(super) struct Stateless;
        pub(super) struct Stateful(#[allow(dead_code)] pub(super) u64);

        macro_rules! noop {
            ($t:ty) => {
                impl Recorder for $t {
                    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
                    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
                    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
                    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
                        Counter::noop()
                    }
                    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
                        Gauge::noop()
                    }
                    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
                        Histogram::noop()
                    }
                }
            };
        }
        noop!(Stateless);
        noop!(Stateful);
    }

    /// Without a recorder that keeps counts, and without a span, a stream keeps no probe and
    /// allocates nothing out of line for it (a poll then reads no line of it); with one that
    /// keeps counts, it has a probe. (The counts themselves: tests/tests/metrics*.rs.)
    #[cfg(feature = "metrics")]
    #[test]
    fn a_stream_keeps_a_probe_only_for_a_recorder_with_state() {
        let stateless = metrics::with_local_recorder(&recorders::Stateless, bare_driver);
        assert!(stateless.state.is(super::METERED));
        assert!(!stateless.state.is(super::PROBED));
        assert!(
            stateless.state.extras.is_none(),
            "nothing else needs the extras"
        );
        let none = bare_driver();
        assert!(none.state.is(super::METERED), "the facade's no-op recorder");
        assert!(none.state.extras.is_none());
        let stateful = metrics::with_local_recorder(&recorders::Stateful(1), bare_driver);
        assert!(stateful.state.is(super::PROBED));
        assert!(!stateful.state.is(super::METERED));
    }

    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use axum::response::IntoResponse as _;
    use futures_core::Stream;
    use http_body::Body as _;
    use tokio::sync::mpsc;

    use crate::EventSourceResponse;
    use crate::task_poll;
    use crate::wake_count::WakeCount;

    /// A stream of what is sent to it, counting its polls.
    struct Counted {
        events: mpsc::UnboundedReceiver<&'static str>,
        polls: Arc<AtomicUsize>,
    }

    impl Stream for Counted {
        type Item = &'static str;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.events.poll_recv(cx)
        }
    }

    /// Polls `body` once with `waker` (inside the task poll marked on this thread, if any).
    fn poll(body: &mut axum::body::Body, waker: &std::task::Waker) -> Poll<Option<String>> {
        let mut cx = Context::from_waker(waker);
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let data = frame.into_data().expect("a data frame");
                Poll::Ready(Some(String::from_utf8(data.to_vec()).unwrap()))
            }
            Poll::Ready(Some(Err(error))) => panic!("body failed: {error}"),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// hyper's repeated polls within one task poll (as `serve` marks them) skip a stream that
    /// was left waiting with the task's waker; a wake in between is the task's, so the next
    /// task poll finds the event. Another waker, or an unmarked poll, always looks.
    #[tokio::test]
    async fn repeated_polls_within_a_task_poll_skip_a_waiting_stream() {
        let (tx, events) = mpsc::unbounded_channel();
        let polls = Arc::new(AtomicUsize::new(0));
        let source = Counted {
            events,
            polls: polls.clone(),
        };
        let mut body = EventSourceResponse::new(source).into_response().into_body();
        let ((task, waker), (_other, stranger)) = (WakeCount::waker(), WakeCount::waker());
        let count = || polls.load(Ordering::SeqCst);

        let first = task_poll::enter(&waker);
        assert!(poll(&mut body, &waker).is_pending());
        let looked = count();
        assert!(looked >= 1, "the first poll looks");
        assert!(poll(&mut body, &waker).is_pending());
        assert_eq!(count(), looked, "the same task poll does not look again");
        tx.send("a").unwrap();
        assert_eq!(task.wakes(), 1, "the event woke the task");
        assert!(poll(&mut body, &waker).is_pending());
        assert_eq!(
            count(),
            looked,
            "still the same task poll: it is polled again, woken"
        );
        // A poll with another waker inside the task poll (an executor run inside it) looks.
        let stranger_saw = poll(&mut body, &stranger);
        assert!(count() > looked, "another waker looks");
        drop(first);
        assert!(matches!(&stranger_saw, Poll::Ready(Some(frame)) if frame.contains("data: a")));

        // The next task poll, after the wake: looks, and gets the next event.
        tx.send("b").unwrap();
        let second = task_poll::enter(&waker);
        let frame = poll(&mut body, &waker);
        assert!(matches!(&frame, Poll::Ready(Some(frame)) if frame.contains("data: b")));
        let looked = count();
        assert!(poll(&mut body, &waker).is_pending());
        assert_eq!(count(), looked, "after the frame, the same task poll skips");
        drop(second);

        // Unmarked (any server but `serve`): every poll looks.
        let before = count();
        assert!(poll(&mut body, &waker).is_pending());
        assert!(poll(&mut body, &waker).is_pending());
        assert_eq!(count(), before + 2);

        // A stream that ends: seen at the next task poll.
        drop(tx);
        let _third = task_poll::enter(&waker);
        assert!(matches!(poll(&mut body, &waker), Poll::Ready(None)));
    }
}
