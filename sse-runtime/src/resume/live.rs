//! A hub's local fan-out: one tokio broadcast ring per topic that has subscribers.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::store::Stored;
use crate::lock;
use crate::tap::{Feed, Tap, Woken};

/// Where a [`Store`](super::Store) delivers the events it appends: the local subscribers of
/// each topic. Cheap to clone.
///
/// A topic's ring exists while the topic has subscribers; an event of a topic nobody here
/// follows costs a map lookup.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<Arc<str>, Ring>>,
    /// How many events a subscriber may be behind before it lags (and its stream ends).
    capacity: usize,
    /// A position the store knows every later subscriber's first read to be at or after
    /// (see [`Live::mark`]); a new ring records it.
    mark: AtomicU64,
    /// How many rings were ever made: a store's feed sees that the topics changed.
    generation: AtomicU64,
    /// Woken when a ring is made.
    joined: Notify,
}

struct Ring {
    tx: Feed<Stored>,
    /// The mark when the ring was made.
    joined_at: u64,
}

impl Live {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                mark: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                joined: Notify::new(),
            }),
        }
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Ring>> {
        lock(&self.inner.topics)
    }

    /// Hands `event` of `topic` to its local subscribers; returns how many there were.
    pub fn deliver(&self, topic: &str, event: Stored) -> usize {
        // Woken after the lock is let go, which a woken subscriber's task may want.
        self.deliver_later(topic, event, false)
            .map_or(0, |(receivers, woken)| {
                drop(woken);
                receivers
            })
    }

    /// Hands `event` of `topic` to its local subscribers like [`Live::deliver`], with how many
    /// there were, and wakes them when the [`Woken`] returned is dropped (the topics' lock is
    /// let go by then); with `inline`, that polls the streams of idle connections right
    /// there, in their tasks' places (see `Feed::send_later`). For a store's own feed task,
    /// which holds no lock a stream could take: it drops them after a batch, so that each
    /// stream is polled once for all of the batch's events.
    pub(crate) fn deliver_later(
        &self,
        topic: &str,
        event: Stored,
        inline: bool,
    ) -> Option<(usize, Woken)> {
        self.topics()
            .get(topic)
            .map(|ring| ring.tx.send_later(event, inline))
    }

    /// Whether any local subscriber follows `topic`.
    pub fn is_followed(&self, topic: &str) -> bool {
        self.topics().contains_key(topic)
    }

    /// The topics local subscribers follow.
    pub fn followed(&self) -> Vec<Arc<str>> {
        self.topics().keys().cloned().collect()
    }

    /// The topics local subscribers follow, each with the [mark](Self::mark) its ring was
    /// made at, and the [generation](Self::generation) of that list.
    ///
    /// For a store whose events reach this process through a feed it reads (a Redis tail
    /// loop): a topic must be fed from at most its mark, and a batch read before the
    /// generation changed must not be delivered past a topic that joined meanwhile.
    pub fn followed_since(&self) -> (Vec<(Arc<str>, u64)>, u64) {
        let map = self.topics();
        let generation = self.generation();
        let topics = map
            .iter()
            .map(|(topic, ring)| (topic.clone(), ring.joined_at))
            .collect();
        (topics, generation)
    }

    /// How many rings were made so far: it changes whenever a topic joins.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Records `position`: a head the store read, so that every subscription made from now
    /// on reads its history at or after it. A ring made later is fed from there. Positions
    /// of one history only grow; a store that starts a new history sets it anew.
    pub fn mark(&self, position: u64) {
        // Under the lock, so that a ring made after this call records it.
        let _map = self.topics();
        self.inner.mark.store(position, Ordering::Release);
    }

    /// Completes when a topic joins (a ring is made) after this call, even if it is polled
    /// only later.
    pub fn joined(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.joined.notified()
    }

    /// How many events a subscriber may be behind before its stream ends.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Ends the stream of every local subscriber of every topic (a new history: they all
    /// resume, and meet the gap policy).
    pub fn end_all(&self) {
        self.topics().clear();
    }

    /// Ends the stream of every local subscriber of `topic` (cleanly: they reconnect and
    /// resume from their last id). For a store that found a hole it cannot fill in its live
    /// feed, such as a new epoch.
    pub fn end(&self, topic: &str) {
        self.topics().remove(topic);
    }

    /// One receiver per topic, each created with the topic's ring if it has none; `None`, and
    /// no receiver at all, when a topic has `max_per_topic` receivers already (checked under
    /// the lock that subscribing takes, so concurrent resumes cannot overshoot).
    pub(crate) fn subscribe(
        &self,
        topics: &[Arc<str>],
        max_per_topic: usize,
    ) -> Option<Vec<Tap<Stored>>> {
        let mut map = self.topics();
        let full = |topic: &Arc<str>| {
            map.get(topic).map_or(0, |ring| ring.tx.receiver_count()) >= max_per_topic
        };
        if topics.iter().any(full) {
            return None;
        }
        let mut made = false;
        let receivers = topics
            .iter()
            .map(|topic| {
                map.entry(topic.clone())
                    .or_insert_with(|| {
                        made = true;
                        Ring {
                            tx: Feed::new(self.inner.capacity),
                            joined_at: self.inner.mark.load(Ordering::Acquire),
                        }
                    })
                    .tx
                    .tap()
            })
            .collect();
        if made {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
            drop(map);
            self.inner.joined.notify_waiters();
        }
        Some(receivers)
    }

    /// Frees the rings of `topics` that no receiver reads any more.
    pub(crate) fn release(&self, topics: &[Arc<str>]) {
        let mut map = self.topics();
        for topic in topics {
            if map
                .get(topic)
                .is_some_and(|ring| ring.tx.receiver_count() == 0)
            {
                map.remove(topic);
            }
        }
    }

    /// How many subscriptions read `topic` here.
    pub(crate) fn subscriber_count(&self, topic: &str) -> usize {
        self.topics()
            .get(topic)
            .map_or(0, |ring| ring.tx.receiver_count())
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("topics", &self.topics().len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}
