//! The embedded store: a bounded ring of encoded events per topic, in this process's memory.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::id::{Epoch, EventId};
use super::live::Live;
use super::store::{BoxFuture, Page, Store, StoreError, Stored};
use crate::event::{Separator, ServerSentEvent};
use crate::lock;

/// The history of a hub in this process's memory: per topic, the `history` most recent events
/// (and, with [`max_age`](Self::max_age), none older than that), each kept once as the
/// encoded frame every subscriber shares.
///
/// Its epoch is new each time it is made, so after a restart every old id is recognised as
/// belonging to a history that is gone (the gap policy answers it).
///
/// Age is checked when a topic is published to or read: an expired event of a topic nobody
/// touches stays in memory until then (the count bound always holds). A topic whose history
/// has expired entirely is freed.
///
/// ```
/// use std::time::Duration;
///
/// use sse_runtime::resume::{Hub, MemoryStore};
///
/// let hub = Hub::builder()
///     .store(MemoryStore::new(10_000).max_age(Duration::from_secs(600)))
///     .build();
/// # drop(hub);
/// ```
pub struct MemoryStore {
    history: usize,
    max_age: Option<Duration>,
    live: OnceLock<Live>,
    state: Mutex<State>,
}

struct State {
    epoch: Epoch,
    /// The number of the last event appended.
    head: u64,
    topics: HashMap<Arc<str>, Ring>,
    /// The highest number trimmed from a topic since freed: a topic made anew may have had
    /// events up to here, so a position below it is not known to be complete.
    forgotten: u64,
}

struct Ring {
    events: VecDeque<Entry>,
    /// The highest number trimmed or expired from this topic (0: none).
    trimmed: u64,
}

struct Entry {
    stored: Stored,
    at: Instant,
}

impl Ring {
    /// The index of the first event numbered above `after`.
    fn start(&self, after: u64) -> usize {
        self.events
            .partition_point(|entry| entry.stored.seq <= after)
    }

    /// Keeps `stored`, the newest, within `history` events and `max_age`.
    fn record(&mut self, stored: Stored, history: usize, max_age: Option<Duration>, now: Instant) {
        self.expire(max_age, now);
        if history == 0 {
            self.trimmed = stored.seq;
            return;
        }
        if self.events.len() == history
            && let Some(oldest) = self.events.pop_front()
        {
            self.trimmed = oldest.stored.seq;
        }
        self.events.push_back(Entry { stored, at: now });
    }

    fn expire(&mut self, max_age: Option<Duration>, now: Instant) {
        let Some(max_age) = max_age else { return };
        while let Some(front) = self.events.front() {
            if now.saturating_duration_since(front.at) <= max_age {
                break;
            }
            self.trimmed = front.stored.seq;
            self.events.pop_front();
        }
    }
}

impl MemoryStore {
    /// A store keeping the `history` most recent events of each topic (0 keeps none: every
    /// resume from an older position is a gap).
    pub fn new(history: usize) -> Self {
        Self {
            history,
            max_age: None,
            live: OnceLock::new(),
            state: Mutex::new(State {
                epoch: Epoch::random(),
                head: 0,
                topics: HashMap::new(),
                forgotten: 0,
            }),
        }
    }

    /// Also drops events older than `max_age`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn append_now(&self, topic: &str, event: ServerSentEvent, separator: Separator) -> EventId {
        let now = Instant::now();
        let mut state = self.state();
        let seq = state.head + 1;
        let id = EventId::new(state.epoch, seq);
        let mut frame = BytesMut::new();
        event.id(id).encode_to(separator, &mut frame);
        let stored = Stored {
            seq,
            frame: frame.freeze(),
        };
        state.head = seq;
        let forgotten = state.forgotten;
        if !state.topics.contains_key(topic) {
            // The name is allocated for a new topic only, not on every publish.
            let ring = Ring {
                events: VecDeque::new(),
                trimmed: forgotten,
            };
            state.topics.insert(Arc::from(topic), ring);
        }
        if let Some(ring) = state.topics.get_mut(topic) {
            ring.record(stored.clone(), self.history, self.max_age, now);
        }
        // Delivered under the lock, so that subscribers receive events in number order.
        if let Some(live) = self.live.get() {
            live.deliver(topic, stored);
        }
        if self.history == 0 {
            self.free_if_unused(&mut state, topic);
        }
        id
    }

    fn read_now(&self, topics: &[Arc<str>], after: u64, until: u64, limit: usize) -> Page {
        let now = Instant::now();
        let mut state = self.state();
        let State {
            epoch,
            head,
            topics: rings,
            forgotten,
        } = &mut *state;
        let (epoch, head) = (*epoch, *head);
        let mut complete = true;
        let mut retained = 0;
        // Per topic followed, the ring and the index of its next event to read.
        let mut cursors = Vec::with_capacity(topics.len());
        for topic in topics {
            if let Some(ring) = rings.get_mut(topic) {
                ring.expire(self.max_age, now);
            }
        }
        for topic in topics {
            let Some(ring) = rings.get(topic) else {
                complete &= *forgotten <= after;
                continue;
            };
            complete &= ring.trimmed <= after;
            let start = ring.start(after);
            let end = ring.start(until);
            retained += (end - start) as u64;
            cursors.push((ring, start, end));
        }
        let mut events = Vec::with_capacity(limit.min(retained as usize));
        while events.len() < limit {
            // The next event is the lowest-numbered at any topic's cursor.
            let next = cursors
                .iter_mut()
                .filter(|(_, index, end)| index < end)
                .min_by_key(|(ring, index, _)| ring.events[*index].stored.seq);
            let Some((ring, index, _)) = next else { break };
            events.push(ring.events[*index].stored.clone());
            *index += 1;
        }
        let page = Page {
            epoch,
            head,
            events,
            retained,
            complete,
        };
        for topic in topics {
            self.free_if_unused(&mut state, topic);
        }
        page
    }

    /// Frees `topic` if it retains nothing and nobody here follows it.
    fn free_if_unused(&self, state: &mut State, topic: &str) {
        let Some(ring) = state.topics.get(topic) else {
            return;
        };
        if !ring.events.is_empty() || self.live.get().is_some_and(|live| live.is_followed(topic)) {
            return;
        }
        state.forgotten = state.forgotten.max(ring.trimmed);
        state.topics.remove(topic);
    }
}

impl Store for MemoryStore {
    fn attach(&self, live: Live) {
        if self.live.set(live).is_err() {
            tracing::error!("a MemoryStore was attached to a second hub; it keeps the first");
        }
    }

    fn append<'a>(
        &'a self,
        topic: &'a str,
        event: ServerSentEvent,
        separator: Separator,
    ) -> BoxFuture<'a, Result<EventId, StoreError>> {
        let id = self.append_now(topic, event, separator);
        Box::pin(std::future::ready(Ok(id)))
    }

    fn read<'a>(
        &'a self,
        topics: &'a [Arc<str>],
        after: u64,
        until: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        let page = self.read_now(topics, after, until, limit);
        Box::pin(std::future::ready(Ok(page)))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryStore")
            .field("epoch", &state.epoch)
            .field("head", &state.head)
            .field("topics", &state.topics.len())
            .field("history", &self.history)
            .field("max_age", &self.max_age)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(store: &MemoryStore) -> usize {
        store.state().topics.len()
    }

    #[tokio::test(start_paused = true)]
    async fn a_topic_whose_history_expired_is_freed_and_leaves_its_watermark() {
        let store = MemoryStore::new(10).max_age(Duration::from_secs(60));
        store.attach(Live::new(4));
        let event = || ServerSentEvent::new().data("x");
        let old = store.append_now("old", event(), Separator::Lf);
        tokio::time::advance(Duration::from_secs(61)).await;
        let recent = store.append_now("recent", event(), Separator::Lf);
        assert_eq!(topics(&store), 2);
        // Reading the expired topic frees it: no subscriber, nothing retained.
        let topic: Arc<str> = Arc::from("old");
        let page = store.read_now(std::slice::from_ref(&topic), 0, u64::MAX, 10);
        assert!(!page.complete && page.events.is_empty());
        assert_eq!(topics(&store), 1);
        // Made anew, it does not claim to hold what the old one had.
        assert!(
            !store
                .read_now(std::slice::from_ref(&topic), 0, u64::MAX, 10)
                .complete
        );
        assert!(store.read_now(&[topic], old.seq(), u64::MAX, 10).complete);
        assert_eq!(recent.seq(), 2);
    }

    #[test]
    fn the_count_bound_holds_exactly() {
        let store = MemoryStore::new(3);
        for _ in 0..10 {
            store.append_now("t", ServerSentEvent::new().data("x"), Separator::Lf);
        }
        let topic: Arc<str> = Arc::from("t");
        let page = store.read_now(&[topic], 0, u64::MAX, 100);
        let seqs: Vec<u64> = page.events.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, [8, 9, 10]);
        assert_eq!((page.retained, page.complete, page.head), (3, false, 10));
    }
}
