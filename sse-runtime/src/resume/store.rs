//! The storage side of a resumable hub: what a backend must do, and nothing of resuming.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::id::{Epoch, EventId};
use super::live::Live;
use crate::event::{Separator, ServerSentEvent};

/// A boxed future, as a [`Store`] returns them (so that a hub can hold any store).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One stored event: its number in the hub's sequence and its frame, encoded once with its
/// `id:` line; replay and live delivery hand out these same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The event's number (its id's `seq`).
    pub seq: u64,
    /// The whole encoded event, from its first field to its blank line.
    pub frame: Bytes,
}

impl Stored {
    /// A **barrier** at `seq`: no event, but the word of a store whose live feed is known to
    /// be complete only above `seq` (it found the events of a topic trimmed before it could
    /// read them). A subscriber that has sent everything up to `seq` drops it; one behind it
    /// ends its stream, so that its client resumes and the replay fills the hole (or the gap
    /// policy answers).
    pub const fn barrier(seq: u64) -> Self {
        Self {
            seq,
            frame: Bytes::new(),
        }
    }

    /// Whether this is a [barrier](Self::barrier) (its frame is empty: an event never is).
    pub fn is_barrier(&self) -> bool {
        self.frame.is_empty()
    }
}

/// What [`Store::read`] found after a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The store's history.
    pub epoch: Epoch,
    /// The number of the last event published in the hub (0: none yet).
    pub head: u64,
    /// Up to `limit` events of the topics numbered above the position, in order.
    pub events: Vec<Stored>,
    /// How many events of the topics numbered above the position are retained, counting
    /// those in `events`.
    pub retained: u64,
    /// Whether every event of the topics numbered above the position is retained (none was
    /// trimmed or expired).
    pub complete: bool,
}

/// What a [`Store`] failed with (a backend that lost its server, say).
#[derive(Debug)]
pub struct StoreError(crate::BoxError);

impl StoreError {
    /// A store error with its cause.
    pub fn new(cause: impl Into<crate::BoxError>) -> Self {
        Self(cause.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event store failed: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Where a resumable [`Hub`](super::Hub) keeps its history: the storage side only. The
/// resume logic (subscribe, read, drop what was already sent, the gap policy) lives in the hub
/// and is the same for every store.
///
/// A store owns the ids: [`append`](Self::append) gives each event the next number of the
/// hub's sequence (contiguous, from 1), encodes it with its `id:` once, and records it. Every
/// recorded event reaches the [`Live`] fan-out the store was [attached](Self::attach) to,
/// **in number order** across topics (delivering event `n + 1` before event `n` would let a
/// subscriber drop `n` as already sent): handed over by `append` itself
/// ([`MemoryStore`](super::MemoryStore), the embedded default), or by a feed the store reads
/// (the Redis store's tail loop, which serves every process alike). A feed must deliver each
/// topic from at most the [mark](Live::mark) its ring [joined at](Live::followed_since), and
/// where it cannot (events trimmed before it read them) deliver a [barrier](Stored::barrier)
/// first or [end](Live::end) the topic: never skip silently.
pub trait Store: Send + Sync + 'static {
    /// Called once, when the hub is built: where this store delivers every event it appends.
    fn attach(&self, live: Live);

    /// Numbers `event` (replacing any id it has), encodes it with `separator` (unless it has
    /// its own), records it in `topic`'s history and delivers it; returns its id.
    fn append<'a>(
        &'a self,
        topic: &'a str,
        event: ServerSentEvent,
        separator: Separator,
    ) -> BoxFuture<'a, Result<EventId, StoreError>>;

    /// Up to `limit` events of `topics` numbered above `after` and at most `until`, in order,
    /// with what is known of the rest (see [`Page`]). `limit` 0 reads only the epoch and head.
    fn read<'a>(
        &'a self,
        topics: &'a [Arc<str>],
        after: u64,
        until: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, StoreError>>;
}
