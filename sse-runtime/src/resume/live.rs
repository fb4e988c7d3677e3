//! A hub's local fan-out: one tokio broadcast ring per topic that has subscribers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use super::store::Stored;

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
    topics: Mutex<HashMap<Arc<str>, broadcast::Sender<Stored>>>,
    /// How many events a subscriber may be behind before it lags (and its stream ends).
    capacity: usize,
}

impl Live {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
            }),
        }
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, broadcast::Sender<Stored>>> {
        self.inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `event` of `topic` to its local subscribers; returns how many there were.
    pub fn deliver(&self, topic: &str, event: Stored) -> usize {
        match self.topics().get(topic) {
            Some(tx) => tx.send(event).unwrap_or(0),
            None => 0,
        }
    }

    /// Whether any local subscriber follows `topic`.
    pub fn is_followed(&self, topic: &str) -> bool {
        self.topics().contains_key(topic)
    }

    /// The topics local subscribers follow.
    pub fn followed(&self) -> Vec<Arc<str>> {
        self.topics().keys().cloned().collect()
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
    ) -> Option<Vec<broadcast::Receiver<Stored>>> {
        let mut map = self.topics();
        let full = |topic: &Arc<str>| {
            map.get(topic).map_or(0, broadcast::Sender::receiver_count) >= max_per_topic
        };
        if topics.iter().any(full) {
            return None;
        }
        let receivers = topics
            .iter()
            .map(|topic| {
                map.entry(topic.clone())
                    .or_insert_with(|| broadcast::channel(self.inner.capacity).0)
                    .subscribe()
            })
            .collect();
        Some(receivers)
    }

    /// Frees the rings of `topics` that no receiver reads any more.
    pub(crate) fn release(&self, topics: &[Arc<str>]) {
        let mut map = self.topics();
        for topic in topics {
            if map.get(topic).is_some_and(|tx| tx.receiver_count() == 0) {
                map.remove(topic);
            }
        }
    }

    /// How many subscriptions read `topic` here.
    pub(crate) fn subscriber_count(&self, topic: &str) -> usize {
        self.topics()
            .get(topic)
            .map_or(0, broadcast::Sender::receiver_count)
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
