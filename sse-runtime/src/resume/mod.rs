//! Resumable streams: a client that reconnects with `Last-Event-ID` gets exactly what it
//! missed, then live events: no gap, no duplicate.
//!
//! A [`Hub`] holds named topics. [`Hub::publish`] gives each event an id the hub owns
//! ([`EventId`], `<epoch>:<seq>`), keeps it in the topic's bounded history (a [`Store`]; the
//! [`MemoryStore`] by default) and delivers it to the topic's subscribers, encoded once.
//! [`Hub::resume`] takes the client's cursor ([`LastEventId`], an extractor) and yields every
//! retained event after it, then live events. When what the client missed is not all retained,
//! the [`GapPolicy`] says what it gets: by default one `event: reset`.
//!
//! ```
//! use axum::{Router, extract::{Path, State}, routing::{get, post}};
//! use sse_runtime::resume::Hub;
//! use sse_runtime::{LastEventId, ServerSentEvent, sse};
//!
//! sse! {
//!     #[sse_endpoint(ping = 15)]
//!     async fn chat(State(hub): State<Hub>, since: LastEventId) {
//!         for await event in hub.resume(["chat"], since).await {
//!             yield event;
//!         }
//!     }
//! }
//!
//! async fn say(State(hub): State<Hub>, message: String) -> String {
//!     let event = ServerSentEvent::new().event("message").data(message);
//!     hub.publish("chat", event).await.unwrap().to_string()
//! }
//!
//! let app: Router = Router::new()
//!     .route("/chat", get(chat))
//!     .route("/say", post(say))
//!     .with_state(Hub::new());
//! ```
//!
//! # The guarantee
//!
//! Ids number every event of the hub, whatever its topic, from 1 with no gap; a client's
//! cursor is the id of the last event it received. Resuming after it yields, in order and
//! once each, every event of the followed topics numbered above it, then every later one as
//! it is published, provided that
//!
//! * the cursor is of this history (the same epoch: a restarted process with in-memory
//!   history, or a wiped store, starts a new one) and not ahead of the head;
//! * every event of those topics above the cursor is still retained (the `history` most
//!   recent events of each topic, none older than `max_age`), and there are at most
//!   `max_replay` of them.
//!
//! Otherwise the gap policy applies: [`GapPolicy::Reset`] (the default) sends exactly one
//! `event: reset`, whose `id:` is the head's id (so the next reconnect does not reset again)
//! and whose data is the [`GapReason`], then live events; [`GapPolicy::FromOldest`] replays
//! what is retained instead; [`GapPolicy::NoContent`] answers `204`, which stops a browser
//! from reconnecting.
//!
//! A subscriber that falls more than the hub's `capacity` events behind (a client that stopped
//! reading) is never skipped silently: its stream ends cleanly, the browser reconnects with
//! its last id, and the replay fills the hole (or the gap policy answers, if the history no
//! longer holds it). So are the streams of a history trimmed mid-replay.
//!
//! # Sizing the history
//!
//! Keep at least what your clients miss in their longest usual absence: a topic receiving
//! `r` events per second whose clients may be away for `t` seconds (a phone in a tunnel, a
//! deploy) needs `history ≥ r·t` (and `max_age ≥ t`). Memory is the encoded events, once, per
//! topic, whatever the number of subscribers.

mod access;
mod id;
mod live;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;
mod store;
mod stream;

use std::fmt;
use std::sync::Arc;

pub use access::{
    Action, Authorize, Denied, Grant, GrantRejection, MAX_TOPIC_LEN, MAX_TOPICS, TOPIC_QUERY,
    is_valid_topic,
};
pub use id::{
    Epoch, EventId, InvalidEventId, LAST_EVENT_ID_QUERY, LastEventId, MAX_LAST_EVENT_ID_LEN,
};
pub use live::Live;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis_store::{MIN_REDIS_VERSION, RedisStore, RedisStoreBuilder};
pub use store::{BoxFuture, Page, Store, StoreError, Stored};
pub use stream::{Resume, ResumeRequest};

use http::request::Parts;

use crate::event::{Separator, ServerSentEvent};
use crate::limit::{DEFAULT_RETRY, Refusal, Refused, RefusedBy, RetryHint, StreamLimit};

/// The default number of events a [`MemoryStore`] of [`Hub::new`] keeps per topic.
pub const DEFAULT_HISTORY: usize = 1_000;
/// The default for how many events a subscriber may be behind the newest before its stream
/// ends ([`HubBuilder::capacity`]).
pub const DEFAULT_CAPACITY: usize = 256;
/// The default for the most events one resume replays ([`HubBuilder::max_replay`]).
pub const DEFAULT_MAX_REPLAY: u64 = 10_000;

/// What a client gets when the events it missed are not all retained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapPolicy {
    /// Exactly one `event: reset` whose `id:` is the head's id and whose data is the
    /// [`GapReason`], then live events. The client knows to reload its state; its next
    /// reconnect resumes from the reset. The default.
    #[default]
    Reset,
    /// Replay what is retained (from the oldest retained event, or from the cursor when only
    /// `max_replay` was in the way, sending `max_replay` events and then ending the stream so
    /// that the client comes back for the rest): continuous, but lossy, and the client is not
    /// told.
    FromOldest,
    /// `204 No Content`, which makes a browser's `EventSource` stop reconnecting. Needs the
    /// response to be made from the [`Resume`] itself; see there.
    NoContent,
}

/// Why a resume could not replay exactly what the client missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapReason {
    /// Some event after the cursor was trimmed or expired from the history.
    Trimmed,
    /// The cursor belongs to another history (a restart, or a wiped store).
    OtherEpoch,
    /// The cursor is ahead of the newest event.
    Ahead,
    /// The cursor is not one (see [`LastEventId::Invalid`]).
    Invalid,
    /// More events than `max_replay` are after the cursor.
    TooMany,
}

impl GapReason {
    /// The reason as the data of a reset event: `trimmed`, `other-epoch`, `ahead`,
    /// `invalid` or `too-many`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trimmed => "trimmed",
            Self::OtherEpoch => "other-epoch",
            Self::Ahead => "ahead",
            Self::Invalid => "invalid",
            Self::TooMany => "too-many",
        }
    }
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resumable fan-out hub: topics with bounded history, ids it owns, exact resume.
///
/// Cheap to clone (share it as axum state). See the [module docs](self) for the guarantee.
///
/// ```
/// use futures_util::StreamExt;
/// use sse_runtime::resume::Hub;
/// use sse_runtime::{LastEventId, Separator, ServerSentEvent};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hub = Hub::builder().separator(Separator::Lf).build();
/// let mut ids = Vec::new();
/// for i in 1..=3 {
///     ids.push(hub.publish("news", ServerSentEvent::new().data(i)).await.unwrap());
/// }
/// // A client that received the first event resumes after it.
/// let mut resume = hub.resume(["news"], LastEventId::After(ids[0])).await;
/// let frame = resume.next().await.unwrap().encode(Separator::Lf);
/// assert_eq!(frame, format!("id: {}\ndata: 2\n\n", ids[1]).as_bytes());
/// # }
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    store: Arc<dyn Store>,
    live: Live,
    separator: Separator,
    policy: GapPolicy,
    max_replay: u64,
    authorize: Option<Box<dyn Authorize>>,
    /// The resumes open now, against the hub-wide cap (`usize::MAX` when none was set).
    subscriptions: StreamLimit,
    /// The most subscriptions one topic may have here.
    max_per_topic: usize,
    refusal: Refusal,
    refusal_retry: RetryHint,
}

impl HubInner {
    /// A refusal of a resume, in the hub's form, with a delay drawn for it.
    pub(crate) fn refuse(&self, why: &'static str) -> Refused {
        let refused = Refused::new(self.refusal, self.refusal_retry, RefusedBy::Hub);
        tracing::debug!(retry_ms = refused.retry_ms, "resume refused: {why}");
        refused
    }
}

impl Hub {
    /// A hub on a [`MemoryStore`] keeping [`DEFAULT_HISTORY`] events per topic, with the
    /// defaults of [`Hub::builder`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// The options of a hub: a [`MemoryStore`] keeping [`DEFAULT_HISTORY`] events per topic,
    /// CRLF separators, [`GapPolicy::Reset`], [`DEFAULT_CAPACITY`] and
    /// [`DEFAULT_MAX_REPLAY`], unless set.
    ///
    /// ```
    /// use sse_runtime::resume::{GapPolicy, Hub, MemoryStore};
    ///
    /// let hub = Hub::builder()
    ///     .store(MemoryStore::new(500))
    ///     .capacity(1024)
    ///     .max_replay(5_000)
    ///     .gap_policy(GapPolicy::FromOldest)
    ///     .build();
    /// # drop(hub);
    /// ```
    pub fn builder() -> HubBuilder {
        HubBuilder {
            authorize: None,
            store: None,
            separator: Separator::CrLf,
            policy: GapPolicy::Reset,
            capacity: DEFAULT_CAPACITY,
            max_replay: DEFAULT_MAX_REPLAY,
            max_subscribers: usize::MAX,
            max_per_topic: usize::MAX,
            refusal: Refusal::Retry,
            refusal_retry: DEFAULT_RETRY,
        }
    }

    /// Publishes `event` to `topic`: gives it the hub's next id (**replacing any id it
    /// has**), encodes it once, records it in the topic's history and delivers it to the
    /// topic's subscribers. Returns its id.
    ///
    /// Fails only when the store does (never for the [`MemoryStore`]); then the event was
    /// not published.
    ///
    /// ```
    /// use sse_runtime::ServerSentEvent;
    /// use sse_runtime::resume::Hub;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hub = Hub::new();
    /// let first = hub.publish("a", ServerSentEvent::new().id("mine").data(1)).await.unwrap();
    /// let second = hub.publish("b", ServerSentEvent::new().data(2)).await.unwrap();
    /// assert_eq!((first.seq(), second.seq()), (1, 2));
    /// assert_eq!(first.epoch(), second.epoch());
    /// # }
    /// ```
    pub async fn publish(
        &self,
        topic: &str,
        event: impl Into<ServerSentEvent>,
    ) -> Result<EventId, StoreError> {
        self.inner
            .store
            .append(topic, event.into(), self.inner.separator)
            .await
    }

    /// Resumes a client following `topics` from its cursor `since`: `.await` it for the
    /// [`Resume`] stream (replay, then live). The options of this resume
    /// ([`gap_policy`](ResumeRequest::gap_policy), [`max_replay`](ResumeRequest::max_replay))
    /// can be set before awaiting.
    ///
    /// Repeated topics count once. On a hub with an [`Authorize`] hook, resume through a
    /// [`Grant`] instead: this resume is then refused (`403` when the response is made from
    /// it; inside a `sse!` body, a stream that ends at once), so that nothing reaches an
    /// unchecked subscriber.
    pub fn resume<T>(
        &self,
        topics: impl IntoIterator<Item = T>,
        since: LastEventId,
    ) -> ResumeRequest
    where
        T: Into<Arc<str>>,
    {
        ResumeRequest::new(self.inner.clone(), normalize(topics), since, false)
    }

    /// Asks the hub's [`Authorize`] hook whether the request `parts` may follow `topics`; the
    /// [`Grant`] is what [`Grant::resume`] resumes. A hub without a hook grants everything.
    ///
    /// ```
    /// use sse_runtime::resume::{Action, Denied, Hub};
    ///
    /// let hub = Hub::builder()
    ///     .authorize(|_: &http::request::Parts, action: Action<'_>| match action {
    ///         Action::Subscribe(topics) if topics.iter().all(|t| &**t != "secret") => Ok(()),
    ///         _ => Err(Denied::Forbidden),
    ///     })
    ///     .build();
    /// let (parts, ()) = http::Request::new(()).into_parts();
    /// assert!(hub.grant(&parts, ["news"]).is_ok());
    /// assert_eq!(hub.grant(&parts, ["news", "secret"]).unwrap_err(), Denied::Forbidden);
    /// ```
    pub fn grant<T>(
        &self,
        parts: &Parts,
        topics: impl IntoIterator<Item = T>,
    ) -> Result<Grant, Denied>
    where
        T: Into<Arc<str>>,
    {
        let topics = normalize(topics);
        if let Some(hook) = &self.inner.authorize {
            access::check(&**hook, parts, Action::Subscribe(&topics))?;
        }
        Ok(Grant {
            hub: self.inner.clone(),
            topics,
        })
    }

    /// Asks the hub's [`Authorize`] hook whether the request `parts` may publish to `topic`
    /// (call it in your publish handler; [`publish`](Self::publish) itself trusts its caller,
    /// which is server code). A hub without a hook allows it.
    ///
    /// ```
    /// use sse_runtime::resume::{Action, Denied, Hub};
    ///
    /// let hub = Hub::builder()
    ///     .authorize(|request: &http::request::Parts, action: Action<'_>| match action {
    ///         Action::Publish(_) if request.headers.contains_key("x-admin") => Ok(()),
    ///         _ => Err(Denied::Forbidden),
    ///     })
    ///     .build();
    /// let (parts, ()) = http::Request::new(()).into_parts();
    /// assert_eq!(hub.authorize_publish(&parts, "news"), Err(Denied::Forbidden));
    /// ```
    pub fn authorize_publish(&self, parts: &Parts, topic: &str) -> Result<(), Denied> {
        match &self.inner.authorize {
            Some(hook) => access::check(&**hook, parts, Action::Publish(topic)),
            None => Ok(()),
        }
    }

    /// The id of the newest event: what a page can embed as its first connection's
    /// `last_event_id`, so that nothing published between the page load and the connection
    /// is missed. `<epoch>:0` before the first event.
    ///
    /// ```
    /// use sse_runtime::ServerSentEvent;
    /// use sse_runtime::resume::Hub;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hub = Hub::new();
    /// assert_eq!(hub.head().await.unwrap().seq(), 0);
    /// let id = hub.publish("a", ServerSentEvent::new().data(1)).await.unwrap();
    /// assert_eq!(hub.head().await.unwrap(), id);
    /// # }
    /// ```
    pub async fn head(&self) -> Result<EventId, StoreError> {
        let page = self.inner.store.read(&[], 0, 0, 0).await?;
        Ok(EventId::new(page.epoch, page.head))
    }

    /// How many subscriptions of this process follow `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner.live.subscriber_count(topic)
    }

    /// How many resumes of this hub are open in this process, whatever their topics (what
    /// [`HubBuilder::max_subscribers`] caps). A resume counts from the moment it is awaited
    /// until it is dropped or its stream ended.
    pub fn subscriptions(&self) -> usize {
        self.inner.subscriptions.open()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("live", &self.inner.live)
            .field("separator", &self.inner.separator)
            .field("policy", &self.inner.policy)
            .field("max_replay", &self.inner.max_replay)
            .field("subscriptions", &self.inner.subscriptions.open())
            .finish_non_exhaustive()
    }
}

/// The topics as a resume follows them: sorted, each once.
fn normalize<T: Into<Arc<str>>>(topics: impl IntoIterator<Item = T>) -> Arc<[Arc<str>]> {
    let mut topics: Vec<Arc<str>> = topics.into_iter().map(Into::into).collect();
    topics.sort_unstable();
    topics.dedup();
    topics.into()
}

/// The options of a [`Hub`], from [`Hub::builder`].
#[must_use = "a HubBuilder does nothing until `build` is called"]
pub struct HubBuilder {
    authorize: Option<Box<dyn Authorize>>,
    store: Option<Arc<dyn Store>>,
    separator: Separator,
    policy: GapPolicy,
    capacity: usize,
    max_replay: u64,
    max_subscribers: usize,
    max_per_topic: usize,
    refusal: Refusal,
    refusal_retry: RetryHint,
}

impl HubBuilder {
    /// Where the history is kept (default: a [`MemoryStore`] of [`DEFAULT_HISTORY`] events
    /// per topic).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The separator of the encoded events (default CRLF).
    pub fn separator(mut self, separator: Separator) -> Self {
        self.separator = separator;
        self
    }

    /// What a client whose missed events are not all retained gets (default
    /// [`GapPolicy::Reset`]); a resume may override it.
    pub fn gap_policy(mut self, policy: GapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How many events a subscriber may be behind the newest of its topic (at least 1;
    /// default [`DEFAULT_CAPACITY`]). One further behind has its stream ended, and resumes.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most events one resume replays (default [`DEFAULT_MAX_REPLAY`]); a client further
    /// behind is a gap ([`GapReason::TooMany`]). A resume may override it.
    pub fn max_replay(mut self, max_replay: u64) -> Self {
        self.max_replay = max_replay;
        self
    }

    /// Who may follow which topics and who may publish (see [`Authorize`], [`Grant`]). With a
    /// hook, resumes go through a [`Grant`].
    pub fn authorize(mut self, hook: impl Authorize) -> Self {
        self.authorize = Some(Box::new(hook));
        self
    }

    /// The most resumes of this hub open at once in this process, whatever their topics
    /// (default: no cap). One more is refused: see
    /// [`max_subscribers_per_topic`](Self::max_subscribers_per_topic).
    pub fn max_subscribers(mut self, max: usize) -> Self {
        self.max_subscribers = max;
        self
    }

    /// The most subscriptions one topic may have in this process (default: no cap). A resume
    /// that follows a topic at its cap (or one over [`max_subscribers`](Self::max_subscribers))
    /// is refused as a whole: it subscribes to nothing, reads no history, and its stream is
    /// the hub's [`refusal`](Self::refusal) as a stream limit's is. Made into the response
    /// itself (`EventSourceResponse::new(hub.resume(..).await)`, or an endpoint fn that
    /// returns it), the response is exactly that refusal (a `200` with a `retry:` hint, or a
    /// `503`) and its hooks see [`CloseReason::Refused`](crate::CloseReason::Refused).
    /// Consumed inside a `sse!` body, whose response has started, it yields the `retry:` hint
    /// and ends, which a browser also reads as "come back later" (and a `503` form falls back
    /// to it, with a warning). [`Resume::is_refused`] tells.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use futures_util::StreamExt;
    /// use sse_runtime::LastEventId;
    /// use sse_runtime::resume::Hub;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hub = Hub::builder()
    ///     .max_subscribers_per_topic(1)
    ///     .refusal_retry(Duration::from_secs(1))
    ///     .build();
    /// let first = hub.resume(["room"], LastEventId::None).await;
    /// let mut second = hub.resume(["room"], LastEventId::None).await;
    /// assert!(!first.is_refused() && second.is_refused());
    /// let frame = second.next().await.unwrap().encode(sse_runtime::Separator::CrLf);
    /// assert!(frame.starts_with(b"retry: ") && frame.ends_with(b"\r\n\r\n"));
    /// assert!(second.next().await.is_none());
    /// // Another topic has room.
    /// assert!(!hub.resume(["lobby"], LastEventId::None).await.is_refused());
    /// # }
    /// ```
    pub fn max_subscribers_per_topic(mut self, max: usize) -> Self {
        self.max_per_topic = max;
        self
    }

    /// How a refused resume answers, when it is the response's own stream (default
    /// [`Refusal::Retry`]).
    pub fn refusal(mut self, refusal: Refusal) -> Self {
        self.refusal = refusal;
        self
    }

    /// When refused subscribers are told to come back (default
    /// [`DEFAULT_RETRY`], 5 to 10 s).
    pub fn refusal_retry(mut self, hint: impl Into<RetryHint>) -> Self {
        self.refusal_retry = hint.into();
        self
    }

    /// The hub.
    pub fn build(self) -> Hub {
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new(DEFAULT_HISTORY)));
        let live = Live::new(self.capacity);
        store.attach(live.clone());
        Hub {
            inner: Arc::new(HubInner {
                store,
                live,
                separator: self.separator,
                policy: self.policy,
                max_replay: self.max_replay,
                authorize: self.authorize,
                subscriptions: StreamLimit::new(self.max_subscribers),
                max_per_topic: self.max_per_topic,
                refusal: self.refusal,
                refusal_retry: self.refusal_retry,
            }),
        }
    }
}

impl fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBuilder")
            .field("separator", &self.separator)
            .field("policy", &self.policy)
            .field("capacity", &self.capacity)
            .field("max_replay", &self.max_replay)
            .field("max_subscribers", &self.max_subscribers)
            .field("max_subscribers_per_topic", &self.max_per_topic)
            .field("refusal", &self.refusal)
            .field("refusal_retry", &self.refusal_retry)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_barrier_ends_only_the_streams_behind_it() {
        let hub = Hub::builder().separator(Separator::Lf).build();
        let publish = |topic: &'static str, data: u32| {
            let hub = hub.clone();
            async move {
                hub.publish(topic, ServerSentEvent::new().data(data))
                    .await
                    .unwrap()
            }
        };
        let first = publish("t", 1).await;
        // `behind` has sent up to event 1; events 2 and 3 go to another topic.
        let mut behind = hub.resume(["t"], LastEventId::After(first)).await;
        publish("u", 2).await;
        let third = publish("u", 3).await;
        let mut ahead = hub.resume(["t"], LastEventId::After(third)).await;
        // A feed that lost what it had of `t` up to event 3 says so.
        hub.inner.live.deliver("t", Stored::barrier(third.seq()));
        let fourth = publish("t", 4).await;
        let text = |payload: Option<crate::Payload>| payload.map(|p| p.encode(Separator::Lf));
        assert_eq!(
            text(ahead.next().await),
            Some(Bytes::from(format!("id: {fourth}\ndata: 4\n\n"))),
            "a stream that had sent up to the barrier goes on"
        );
        assert_eq!(
            text(behind.next().await),
            None,
            "a stream behind it ends, and its client resumes"
        );
    }

    #[tokio::test]
    async fn a_barrier_ends_a_stream_of_several_topics_before_another_topics_event() {
        let hub = Hub::builder().separator(Separator::Lf).build();
        let first = hub
            .publish("t", ServerSentEvent::new().data(1))
            .await
            .unwrap();
        // `both` follows `t` and `u`, and has sent up to event 1.
        let mut both = hub.resume(["t", "u"], LastEventId::After(first)).await;
        // A feed that lost `t`'s events after 1, up to 5, says so (before anything above 1),
        // then hands on an event of `u` from inside that hole.
        hub.inner.live.deliver("t", Stored::barrier(5));
        hub.inner.live.deliver(
            "u",
            Stored {
                seq: 3,
                frame: Bytes::from(format!("id: {}:3\ndata: 3\n\n", first.epoch())),
            },
        );
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), both.next())
            .await
            .expect("the stream answers");
        assert_eq!(
            next.map(|payload| payload.encode(Separator::Lf)),
            None,
            "it ends: `u`'s event 3 may not go out while `t`'s events up to 5 are lost"
        );
    }

    #[tokio::test]
    async fn replayed_frames_are_the_live_frames_bytes() {
        let hub = Hub::builder().separator(Separator::Lf).build();
        let mut live = hub.resume(["t"], LastEventId::None).await;
        let id = hub
            .publish("t", ServerSentEvent::new().data("shared"))
            .await
            .unwrap();
        let live_bytes: Bytes = live.next().await.unwrap().raw().unwrap().clone();
        let mut replay = hub.resume(["t"], LastEventId::Earliest).await;
        let replayed: Bytes = replay.next().await.unwrap().raw().unwrap().clone();
        assert_eq!(live_bytes, replayed);
        assert_eq!(
            live_bytes.as_ptr(),
            replayed.as_ptr(),
            "one encoding, shared"
        );
        assert_eq!(
            &live_bytes[..],
            format!("id: {id}\ndata: shared\n\n").as_bytes()
        );
    }
}
