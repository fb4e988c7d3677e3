//! One resumed subscription: the replay, then live events, with no gap and no duplicate.

use std::fmt;
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::id::{Epoch, EventId, LastEventId};
use super::store::{BoxFuture, Page, StoreError, Stored};
use super::{GapPolicy, GapReason, HubInner};
use crate::event::ServerSentEvent;
use crate::into_event::{IntoEvent, Payload};
use crate::limit::{Permit, Refusal, Refused};
use crate::tap::Tap;

/// How many events one read of the store returns: the most a replay holds of its own.
pub(crate) const PAGE: usize = 256;

/// A resume being set up, from [`Hub::resume`](super::Hub::resume): set its options, then
/// `.await` it for the [`Resume`] stream.
///
/// ```
/// use sse_runtime::resume::{GapPolicy, Hub};
/// use sse_runtime::LastEventId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hub = Hub::new();
/// let resume = hub
///     .resume(["news"], LastEventId::Invalid)
///     .gap_policy(GapPolicy::NoContent)
///     .max_replay(500)
///     .await;
/// assert_eq!(resume.gap(), Some(sse_runtime::resume::GapReason::Invalid));
/// # }
/// ```
#[must_use = "a resume does nothing until awaited"]
pub struct ResumeRequest {
    hub: Arc<HubInner>,
    topics: Arc<[Arc<str>]>,
    since: LastEventId,
    policy: GapPolicy,
    max_replay: u64,
    /// Whether the topics come from a [`Grant`](super::Grant).
    granted: bool,
}

impl ResumeRequest {
    pub(super) fn new(
        hub: Arc<HubInner>,
        topics: Arc<[Arc<str>]>,
        since: LastEventId,
        granted: bool,
    ) -> Self {
        Self {
            policy: hub.policy,
            max_replay: hub.max_replay,
            hub,
            topics,
            since,
            granted,
        }
    }

    /// The gap policy of this resume (default: the hub's).
    pub fn gap_policy(mut self, policy: GapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The most events this resume replays (default: the hub's); more is a
    /// [`GapReason::TooMany`].
    pub fn max_replay(mut self, max_replay: u64) -> Self {
        self.max_replay = max_replay;
        self
    }
}

impl fmt::Debug for ResumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeRequest")
            .field("topics", &self.topics)
            .field("since", &self.since)
            .field("policy", &self.policy)
            .field("max_replay", &self.max_replay)
            .finish()
    }
}

impl IntoFuture for ResumeRequest {
    type Output = Resume;
    type IntoFuture = BoxFuture<'static, Resume>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.start())
    }
}

impl ResumeRequest {
    /// Subscribes to live delivery first, then reads the history: an event is either recorded
    /// before the read (so the read finds it) or delivered after the subscription (so the
    /// subscription has it); the overlap is dropped by number.
    async fn start(self) -> Resume {
        let Self {
            hub,
            topics,
            since,
            policy,
            max_replay,
            granted,
        } = self;
        if hub.authorize.is_some() && !granted {
            // A hub with authorization resumes only what a grant allowed.
            return Resume::forbidden(hub);
        }
        // The caps first: a refused resume subscribes to nothing and reads nothing.
        let Some(permit) = hub.subscriptions.try_permit() else {
            let refused = hub.refuse("the hub's subscriber cap is reached");
            return Resume::refused(hub, topics, refused);
        };
        let Some(receivers) = hub.live.subscribe(&topics, hub.max_per_topic) else {
            drop(permit);
            let refused = hub.refuse("a topic's subscriber cap is reached");
            return Resume::refused(hub, topics, refused);
        };
        let taps = receivers
            .into_iter()
            .map(|tap| TopicTap {
                tap,
                pending: None,
                checked: 0,
            })
            .collect();
        let mut resume = Resume::empty(hub, topics);
        resume.taps = taps;
        resume.permit = Some(permit);
        let (after, cursor) = match since {
            LastEventId::None => return resume,
            LastEventId::Earliest => (0, None),
            LastEventId::After(id) => (id.seq(), Some(id)),
            LastEventId::Invalid => (0, None),
        };
        let page = match resume.read(after, u64::MAX).await {
            Ok(page) => page,
            Err(error) => return resume.failed(error),
        };
        let gap = if since == LastEventId::Invalid {
            Some(GapReason::Invalid)
        } else if cursor.is_some_and(|id| id.epoch() != page.epoch) {
            Some(GapReason::OtherEpoch)
        } else if after > page.head {
            Some(GapReason::Ahead)
        } else if cursor.is_some() && !page.complete {
            Some(GapReason::Trimmed)
        } else if page.retained > max_replay {
            Some(GapReason::TooMany)
        } else {
            None
        };
        let Some(reason) = gap else {
            #[cfg(feature = "metrics")]
            metrics::counter!(crate::observe::names::REPLAYS).increment(1);
            resume.replay(after, page, max_replay);
            return resume;
        };
        resume.gap = Some(reason);
        #[cfg(feature = "metrics")]
        metrics::counter!(crate::observe::names::GAPS, "reason" => reason.as_str()).increment(1);
        match policy {
            GapPolicy::Reset | GapPolicy::NoContent => {
                resume.no_content = policy == GapPolicy::NoContent;
                let head = EventId::new(page.epoch, page.head);
                let reset = ServerSentEvent::new()
                    .event("reset")
                    .id(head)
                    .data(reason)
                    .encode(resume.hub.separator);
                resume.first = Some(reset.into_event());
                resume.high = page.head;
            }
            GapPolicy::FromOldest => {
                // Replay what is retained: from the cursor if only the cap was in the way,
                // else from the oldest event.
                let (after, page) = if reason == GapReason::TooMany {
                    (after, page)
                } else {
                    match resume.read(0, u64::MAX).await {
                        Ok(page) => (0, page),
                        Err(error) => return resume.failed(error),
                    }
                };
                resume.replay(after, page, max_replay);
            }
        }
        resume
    }
}

/// One resumed subscription to some topics of a [`Hub`](super::Hub): every retained event
/// after the client's cursor, then live events, each exactly once and in order; a stream of
/// encoded events (raw bytes), to yield or to hand to
/// [`EventSourceResponse::new`](crate::EventSourceResponse::new).
///
/// The stream ends (cleanly, so that a browser reconnects with its last id and the replay
/// fills the hole) when it cannot go on without a gap: it fell more than the hub's capacity
/// behind, its history changed epoch, or events it had yet to replay expired meanwhile.
///
/// With [`GapPolicy::NoContent`], a gap answers `204 No Content` when the response is made
/// from the `Resume` itself (`EventSourceResponse::new(resume)`, or an endpoint fn that
/// returns it); consumed inside another stream (a `sse!` body), whose response has already
/// started, it sends the reset instead and logs a warning.
pub struct Resume {
    hub: Arc<HubInner>,
    topics: Arc<[Arc<str>]>,
    taps: Vec<TopicTap>,
    /// The number of the last event sent (or skipped by a reset): anything at or below it is
    /// not sent again.
    high: u64,
    /// The highest number seen in any topic's ring so far.
    observed: u64,
    /// The reset, sent before anything else.
    first: Option<Payload>,
    phase: Phase,
    gap: Option<GapReason>,
    no_content: bool,
    /// Resumed without a grant on a hub with authorization: `403`, or nothing at all.
    forbidden: bool,
    /// Whether the stream's span was told its topics and gap (at the first poll, inside it).
    announced: bool,
    /// Events sent by the replay so far.
    replayed: u64,
    /// This resume's place in the hub's subscriber count, until its stream ends.
    permit: Option<Permit>,
    /// The hub had no room for this resume: its stream is the `retry:` hint alone.
    refused: Option<Refused>,
}

struct TopicTap {
    tap: Tap<Stored>,
    /// The next event of this topic, taken from the ring but not yet sent.
    pending: Option<Stored>,
    /// `observed` when this ring was last found empty.
    checked: u64,
}

enum Phase {
    Replay(Replay),
    Live,
    Ended,
}

struct Replay {
    page: std::vec::IntoIter<Stored>,
    /// Whether the store has nothing more after this page.
    last_page: bool,
    /// Events up to this number are replayed; later ones arrive live.
    until: u64,
    /// The history the replay reads (the first page's): a page of another ends it.
    epoch: Epoch,
    /// How many more events this replay may send.
    left: u64,
    /// End the stream once the replay is done (a replay cut short by `max_replay`).
    end_after: bool,
    fetch: Option<BoxFuture<'static, Result<Page, StoreError>>>,
}

impl Resume {
    /// A resume that follows nothing yet.
    fn empty(hub: Arc<HubInner>, topics: Arc<[Arc<str>]>) -> Self {
        Resume {
            hub,
            topics,
            taps: Vec::new(),
            high: 0,
            observed: 0,
            first: None,
            phase: Phase::Live,
            gap: None,
            no_content: false,
            forbidden: false,
            announced: false,
            replayed: 0,
            permit: None,
            refused: None,
        }
    }

    /// A resume the hub had no room for: it yields the `retry:` hint, then ends.
    fn refused(hub: Arc<HubInner>, topics: Arc<[Arc<str>]>, refused: Refused) -> Self {
        let frame = refused.frame(hub.separator);
        let mut resume = Resume::empty(hub, topics);
        resume.first = Some(frame.into_event());
        resume.phase = Phase::Ended;
        resume.refused = Some(refused);
        resume
    }

    /// Why this resume could not replay exactly what the client missed, if it could not.
    pub fn gap(&self) -> Option<GapReason> {
        self.gap
    }

    /// The status the response must answer with instead of streaming: `204` for a gap under
    /// [`GapPolicy::NoContent`], `403` for a resume without a grant. Taken once.
    pub(crate) fn take_status(&mut self) -> Option<http::StatusCode> {
        if std::mem::take(&mut self.forbidden) {
            return Some(http::StatusCode::FORBIDDEN);
        }
        std::mem::take(&mut self.no_content).then_some(http::StatusCode::NO_CONTENT)
    }

    /// A resume without a grant on a hub with authorization: it follows no topic, reads no
    /// history and sends nothing.
    fn forbidden(hub: Arc<HubInner>) -> Self {
        tracing::error!(
            "a resume without a Grant on a hub with authorization: refused (use Hub::grant \
             or the Grant extractor)"
        );
        let mut resume = Resume::empty(hub, Arc::from(Vec::new()));
        resume.phase = Phase::Ended;
        resume.forbidden = true;
        resume.announced = true;
        resume
    }

    /// Whether the hub refused this resume for want of room
    /// ([`HubBuilder::max_subscribers_per_topic`](super::HubBuilder::max_subscribers_per_topic),
    /// [`max_subscribers`](super::HubBuilder::max_subscribers)): its stream is a `retry:` hint
    /// alone, then the end.
    pub fn is_refused(&self) -> bool {
        self.refused.is_some()
    }

    /// Takes the refusal, for a response made from this resume: the response answers it, so
    /// the stream does not send its hint again.
    pub(crate) fn take_refusal(&mut self) -> Option<Refused> {
        let refused = self.refused?;
        self.first = None;
        Some(refused)
    }

    fn read(&self, after: u64, until: u64) -> BoxFuture<'static, Result<Page, StoreError>> {
        read(&self.hub, &self.topics, after, until, PAGE)
    }

    /// Replays `page` and what follows it, up to the head it was read at.
    fn replay(&mut self, after: u64, page: Page, max_replay: u64) {
        self.high = after;
        self.phase = Phase::Replay(Replay {
            last_page: page.retained <= page.events.len() as u64,
            page: page.events.into_iter(),
            until: page.head,
            epoch: page.epoch,
            left: max_replay,
            end_after: page.retained > max_replay,
            fetch: None,
        });
    }

    fn failed(mut self, error: StoreError) -> Self {
        tracing::error!(%error, "resume failed to read the history");
        self.first = Some(Payload::invalid(error));
        self.phase = Phase::Ended;
        self
    }

    /// The replay is over (done, or cut short): the span and the meters learn how much it sent.
    fn replay_done(&mut self) {
        if !matches!(self.phase, Phase::Replay(_)) {
            return;
        }
        tracing::Span::current().record("replayed", self.replayed);
        #[cfg(feature = "metrics")]
        metrics::counter!(crate::observe::names::REPLAYED_EVENTS).increment(self.replayed);
        self.phase = Phase::Ended;
    }

    /// The first poll, inside the stream's span (when there is one): it learns the topics and
    /// the gap, and a gap is logged.
    fn announce(&mut self) {
        self.announced = true;
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record("topics", tracing::field::display(self.topics.join(",")));
        }
        let Some(reason) = self.gap else { return };
        span.record("gap", reason.as_str());
        if reason == GapReason::OtherEpoch {
            // Every client of a restarted hub with in-memory history comes here once: not
            // worth a warning each (the metric counts them).
            tracing::debug!(%reason, "resume gap: the cursor is of another history");
        } else {
            tracing::warn!(%reason, topics = %self.topics.join(","), "resume gap: the history no longer covers the cursor");
        }
    }

    fn end(&mut self) -> Poll<Option<Payload>> {
        self.replay_done();
        self.phase = Phase::Ended;
        for tap in &mut self.taps {
            tap.tap.end();
        }
        // No longer a subscriber: its place in the hub's count is free.
        self.permit = None;
        Poll::Ready(None)
    }

    fn poll_replay(&mut self, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        loop {
            let Phase::Replay(replay) = &mut self.phase else {
                return Poll::Ready(None);
            };
            if replay.left > 0
                && let Some(event) = replay.page.next()
            {
                if event.seq <= self.high {
                    continue;
                }
                self.high = event.seq;
                replay.left -= 1;
                self.replayed += 1;
                return Poll::Ready(Some(event.frame.into_event()));
            }
            if replay.left == 0 || replay.last_page {
                let end_after = replay.end_after;
                self.replay_done();
                if end_after {
                    return self.end();
                }
                self.phase = Phase::Live;
                return Poll::Ready(None);
            }
            let fetch = match &mut replay.fetch {
                Some(fetch) => fetch,
                None => {
                    let limit = PAGE.min(usize::try_from(replay.left).unwrap_or(PAGE));
                    let read = read(&self.hub, &self.topics, self.high, replay.until, limit);
                    replay.fetch.insert(read)
                }
            };
            let page = std::task::ready!(fetch.as_mut().poll(cx));
            replay.fetch = None;
            match page {
                Ok(page) if page.complete && page.epoch == replay.epoch => {
                    replay.last_page = page.retained <= page.events.len() as u64;
                    replay.page = page.events.into_iter();
                }
                Ok(_) => {
                    // Events it had yet to replay were trimmed meanwhile (or the history is
                    // another): the client reconnects from its last id and learns of the gap.
                    tracing::debug!("history trimmed during a replay; ending the stream");
                    return self.end();
                }
                Err(error) => {
                    tracing::error!(%error, "resume failed to read the history");
                    self.phase = Phase::Ended;
                    return Poll::Ready(Some(Payload::invalid(error)));
                }
            }
        }
    }

    /// A ring lagged (the subscriber fell more than `capacity` behind) or closed (the store
    /// ended the topic): the stream ends, cleanly, and the client resumes from its last id.
    fn lost(&mut self, error: RecvError) -> Poll<Option<Payload>> {
        if let RecvError::Lagged(missed) = error {
            tracing::debug!(missed, "resumable subscriber lagged; ending its stream");
            #[cfg(feature = "metrics")]
            metrics::counter!(crate::observe::names::LAGGED, "hub" => "resume").increment(1);
        }
        self.end()
    }

    /// The next live event of any topic, in number order across topics.
    ///
    /// Events of all topics are appended, and delivered, in number order. So once event `n`
    /// was seen in one ring, every event below `n` is already in its ring: a ring found empty
    /// after `n` was seen holds nothing below `n`. The lowest pending event may be sent once
    /// every empty ring was checked after it was seen.
    fn poll_live(&mut self, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        if let [tap] = &mut self.taps[..] {
            // One topic: its ring is in number order already.
            loop {
                match std::task::ready!(tap.tap.poll_recv(cx)) {
                    Ok(event) if event.seq <= self.high => {}
                    Ok(event) if event.is_barrier() => return self.behind_barrier(),
                    Ok(event) => {
                        self.high = event.seq;
                        return Poll::Ready(Some(event.frame.into_event()));
                    }
                    Err(error) => return self.lost(error),
                }
            }
        }
        loop {
            let candidate = self
                .taps
                .iter()
                .filter_map(|tap| tap.pending.as_ref().map(|event| event.seq))
                .min();
            let mut refilled = false;
            for tap in &mut self.taps {
                if tap.pending.is_some() || candidate.is_some_and(|seq| tap.checked >= seq) {
                    continue;
                }
                match tap.tap.poll_recv(cx) {
                    // A hole in this topic's feed that this stream has not sent past: it ends
                    // now, before any other topic's event from inside the hole goes out (the
                    // barrier's number is the hole's top, not where it starts).
                    Poll::Ready(Ok(event)) if event.is_barrier() => {
                        if event.seq > self.high {
                            return self.behind_barrier();
                        }
                        // Sent past already: nothing of this hole is missing here.
                        refilled = true;
                        break;
                    }
                    Poll::Ready(Ok(event)) => {
                        self.observed = self.observed.max(event.seq);
                        tap.pending = Some(event);
                        refilled = true;
                        break;
                    }
                    Poll::Ready(Err(error)) => return self.lost(error),
                    Poll::Pending => tap.checked = self.observed,
                }
            }
            if refilled {
                continue;
            }
            let Some(seq) = candidate else {
                return Poll::Pending;
            };
            let Some(event) = self
                .taps
                .iter_mut()
                .find(|tap| tap.pending.as_ref().is_some_and(|event| event.seq == seq))
                .and_then(|tap| tap.pending.take())
            else {
                return Poll::Pending;
            };
            if event.seq <= self.high {
                continue;
            }
            // Never a barrier: those end the stream or are dropped as they arrive.
            self.high = event.seq;
            return Poll::Ready(Some(event.frame.into_event()));
        }
    }

    /// The store's feed lost events above what this stream sent (a [`Stored::barrier`]): the
    /// stream ends, cleanly, and the client resumes from its last id.
    fn behind_barrier(&mut self) -> Poll<Option<Payload>> {
        tracing::debug!(
            high = self.high,
            "the store's feed has a hole after this stream's last event; ending it"
        );
        self.end()
    }
}

/// A read of the store that owns what it needs.
fn read(
    hub: &Arc<HubInner>,
    topics: &Arc<[Arc<str>]>,
    after: u64,
    until: u64,
    limit: usize,
) -> BoxFuture<'static, Result<Page, StoreError>> {
    let (hub, topics) = (hub.clone(), topics.clone());
    Box::pin(async move { hub.store.read(&topics, after, until, limit).await })
}

impl Stream for Resume {
    type Item = Payload;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        let this = self.get_mut();
        if !this.announced {
            this.announce();
        }
        if this.no_content {
            this.no_content = false;
            tracing::warn!(
                "gap policy NoContent cannot answer 204 in a response that has started; \
                 sending a reset instead (return the Resume from the endpoint to answer 204)"
            );
        }
        if let Some(first) = this.first.take() {
            if this
                .refused
                .is_some_and(|refused| refused.refusal == Refusal::ServiceUnavailable)
            {
                tracing::warn!(
                    "a hub's 503 refusal cannot be answered in a response that has started; \
                     sending its retry hint instead (return the Resume from the endpoint to answer 503)"
                );
            }
            return Poll::Ready(Some(first));
        }
        loop {
            match this.phase {
                Phase::Ended => return Poll::Ready(None),
                Phase::Live => return this.poll_live(cx),
                Phase::Replay(_) => match std::task::ready!(this.poll_replay(cx)) {
                    Some(payload) => return Poll::Ready(Some(payload)),
                    // The replay is done: on to live events (or the end).
                    None => continue,
                },
            }
        }
    }
}

impl Drop for Resume {
    fn drop(&mut self) {
        self.replay_done();
        self.taps.clear();
        self.hub.live.release(&self.topics);
    }
}

impl fmt::Debug for Resume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resume")
            .field("topics", &self.topics)
            .field("high", &self.high)
            .field("gap", &self.gap)
            .field("refused", &self.refused.is_some())
            .finish_non_exhaustive()
    }
}
