//! What a stream tells the outside: one `tracing` span per stream and, with the `metrics`
//! feature, counters and a gauge through the `metrics` facade, named in [`names`].
//!
//! The span is `DEBUG`, target `sse_runtime::stream`, name `sse_stream`, with the fields
//! `route`, `peer`, `http.version`, and, recorded at close, `reason`, `events`, `bytes`,
//! `pings`, `duration_ms`; a resumed stream adds `topics`, `replayed` and `gap`. The stream's
//! source is polled inside it. See the README's "Operating it" for the metrics and alerts.
//!
//! A stream carries any of this only when someone listens: a span when the `tracing`
//! subscriber wants `DEBUG` spans of `sse_runtime`, meters when the `metrics` feature is on.
//! With a recorder that keeps counts (Prometheus's, for one), counts are kept per stream and
//! handed to the meters once per body frame (an atomic add each, no lock). With none
//! installed (the facade's no-op recorder) and no span wanted, a stream keeps nothing of
//! this: each count goes to the facade as it happens, which does nothing with it.
//!
//! ```
//! use sse_runtime::observe::names;
//!
//! assert_eq!(names::STREAMS_OPEN, "sse_streams_open");
//! assert_eq!(names::EVENTS_SENT, "sse_events_sent_total");
//! ```

use std::net::SocketAddr;

use http::Version;
use tokio::time::Instant;

use crate::close::CloseReason;

/// The metric names, in Prometheus conventions.
pub mod names {
    /// Gauge: streams open now.
    pub const STREAMS_OPEN: &str = "sse_streams_open";
    /// Counter: streams started.
    pub const STREAMS_OPENED: &str = "sse_streams_opened_total";
    /// Counter, label `reason` (a [`CloseReason`](crate::CloseReason) in snake case): streams
    /// ended.
    pub const STREAMS_CLOSED: &str = "sse_streams_closed_total";
    /// Counter, label `by` (`stream_limit` or `hub`): streams refused for want of room (a
    /// [`StreamLimit`](crate::limit::StreamLimit), or a hub's subscriber caps). A response
    /// that was the refusal is not counted as opened or closed; a stream that met a hub's
    /// refusal inside its body (a `sse!` body) is, as `completed`.
    pub const STREAMS_REFUSED: &str = "sse_streams_refused_total";
    /// Counter: events (items of the stream) sent.
    pub const EVENTS_SENT: &str = "sse_events_sent_total";
    /// Counter: bytes of body sent (events, pings, the `retry:` prelude).
    pub const BYTES_SENT: &str = "sse_sent_bytes_total";
    /// Counter: keep-alive pings sent.
    pub const PINGS_SENT: &str = "sse_pings_sent_total";
    /// Counter: resumes from a cursor that replayed without a gap.
    pub const REPLAYS: &str = "sse_replays_total";
    /// Counter: events sent by replays.
    pub const REPLAYED_EVENTS: &str = "sse_replayed_events_total";
    /// Counter, label `reason` (a [`GapReason`](crate::resume::GapReason)): resumes that met a
    /// gap and got the gap policy.
    pub const GAPS: &str = "sse_resume_gaps_total";
    /// Counter, label `hub` (`broadcast` or `resume`): subscribers that fell too far behind
    /// (skipped, notified or disconnected, as the hub's policy says).
    pub const LAGGED: &str = "sse_lagged_subscribers_total";
}

/// What a response knows of its request, for the span.
#[derive(Clone, Debug, Default)]
pub(crate) struct Origin {
    pub(crate) route: Option<axum::extract::MatchedPath>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) version: Option<Version>,
}

/// How a stream is observed.
pub(crate) enum Watch {
    /// Nobody listens (no `DEBUG` span wanted, no `metrics` feature).
    #[cfg_attr(feature = "metrics", allow(dead_code))]
    Unobserved,
    /// Only the meters listen, through a recorder that keeps no state of its own (the
    /// `metrics` facade's no-op recorder when none is installed, or one of zero size): the
    /// stream keeps no probe, and hands each count to the facade as it happens
    /// ([`meter`]), so a poll reads no line of the stream's out-of-line parts for it. What
    /// such a recorder does with the counts, it still gets every one of them.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    Metered,
    /// A span is wanted, or a recorder with state of its own is installed: a probe that keeps
    /// the stream's counts and the recorder's handles.
    Probed(Box<Probe>),
}

/// Whether the current recorder keeps state of its own. The facade's no-op recorder (the one
/// in place while none is installed) is of zero size; a recorder that keeps counts is not. A
/// recorder of zero size that forwards elsewhere is metered per call ([`Watch::Metered`]):
/// slower, and as exact.
#[cfg(feature = "metrics")]
fn recorder_keeps_state() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

/// The meters of a stream without a probe ([`Watch::Metered`]), looked up at each count.
#[cfg(feature = "metrics")]
pub(crate) mod meter {
    use super::names;
    use crate::close::CloseReason;

    pub(crate) fn opened() {
        metrics::gauge!(names::STREAMS_OPEN).increment(1.0);
        metrics::counter!(names::STREAMS_OPENED).increment(1);
    }

    pub(crate) fn events(count: u64) {
        metrics::counter!(names::EVENTS_SENT).increment(count);
    }

    pub(crate) fn bytes(len: usize) {
        metrics::counter!(names::BYTES_SENT).increment(len as u64);
    }

    pub(crate) fn ping() {
        metrics::counter!(names::PINGS_SENT).increment(1);
    }

    pub(crate) fn closed(reason: CloseReason) {
        metrics::gauge!(names::STREAMS_OPEN).decrement(1.0);
        metrics::counter!(names::STREAMS_CLOSED, "reason" => reason.as_label()).increment(1);
    }
}

/// Without the `metrics` feature no stream is [`Watch::Metered`]: nothing to count.
#[cfg(not(feature = "metrics"))]
pub(crate) mod meter {
    use crate::close::CloseReason;

    pub(crate) fn events(_: u64) {}
    pub(crate) fn bytes(_: usize) {}
    pub(crate) fn ping() {}
    pub(crate) fn closed(_: CloseReason) {}
}

/// The observation of one stream.
pub(crate) struct Probe {
    span: tracing::Span,
    started: Instant,
    events: u64,
    bytes: u64,
    pings: u64,
    #[cfg(feature = "metrics")]
    meters: Meters,
}

#[cfg(feature = "metrics")]
struct Meters {
    events: metrics::Counter,
    bytes: metrics::Counter,
    pings: metrics::Counter,
    /// What was already handed to the counters.
    flushed: (u64, u64, u64),
}

impl Probe {
    /// How a stream starting now is observed: by a probe of its own if anyone listens, or
    /// (see [`Watch::Metered`]) by the meters alone.
    pub(crate) fn start(origin: &Origin) -> Watch {
        let span = tracing::debug_span!(
            target: "sse_runtime::stream",
            "sse_stream",
            route = origin.route.as_ref().map(|route| route.as_str()),
            peer = origin.peer.map(tracing::field::display),
            http.version = origin.version.map(tracing::field::debug),
            topics = tracing::field::Empty,
            reason = tracing::field::Empty,
            events = tracing::field::Empty,
            bytes = tracing::field::Empty,
            pings = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            replayed = tracing::field::Empty,
            gap = tracing::field::Empty,
        );
        if span.is_disabled() {
            #[cfg(not(feature = "metrics"))]
            return Watch::Unobserved;
            #[cfg(feature = "metrics")]
            if !recorder_keeps_state() {
                meter::opened();
                return Watch::Metered;
            }
        }
        #[cfg(feature = "metrics")]
        meter::opened();
        Watch::Probed(Box::new(Self::new(span)))
    }

    fn new(span: tracing::Span) -> Self {
        Self {
            span,
            started: Instant::now(),
            events: 0,
            bytes: 0,
            pings: 0,
            #[cfg(feature = "metrics")]
            meters: Meters {
                events: metrics::counter!(names::EVENTS_SENT),
                bytes: metrics::counter!(names::BYTES_SENT),
                pings: metrics::counter!(names::PINGS_SENT),
                flushed: (0, 0, 0),
            },
        }
    }

    /// The span to enter while the source is polled (so that what it logs, and what a
    /// [`Resume`](crate::resume::Resume) records, lands in it).
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// `count` events sent (more than one when a body wrote them at once, see `driver::direct`).
    pub(crate) fn events(&mut self, count: u64) {
        self.events += count;
    }

    pub(crate) fn ping(&mut self) {
        self.pings += 1;
    }

    /// A body frame of `len` bytes went to hyper.
    pub(crate) fn frame(&mut self, len: usize) {
        self.bytes += len as u64;
        #[cfg(feature = "metrics")]
        self.flush();
    }

    #[cfg(feature = "metrics")]
    fn flush(&mut self) {
        let meters = &mut self.meters;
        let (events, bytes, pings) = meters.flushed;
        meters.events.increment(self.events - events);
        meters.bytes.increment(self.bytes - bytes);
        meters.pings.increment(self.pings - pings);
        meters.flushed = (self.events, self.bytes, self.pings);
    }

    /// The stream ended for `reason`: the span records its figures and says so, at `DEBUG`.
    pub(crate) fn close(&mut self, reason: CloseReason) {
        #[cfg(feature = "metrics")]
        {
            self.flush();
            meter::closed(reason);
        }
        if self.span.is_disabled() {
            return;
        }
        let elapsed = self.started.elapsed();
        self.span.record("reason", tracing::field::display(reason));
        self.span.record("events", self.events);
        self.span.record("bytes", self.bytes);
        self.span.record("pings", self.pings);
        self.span.record(
            "duration_ms",
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        );
        tracing::debug!(
            target: "sse_runtime::stream",
            parent: &self.span,
            %reason,
            events = self.events,
            bytes = self.bytes,
            "server-sent event stream closed"
        );
    }
}
