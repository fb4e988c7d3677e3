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
/// hub's sequence (contiguous, from 1), encodes it with its `id:` once, records it, and hands
/// it to the [`Live`] fan-out it was [attached](Self::attach) to, **in number order**
/// (delivering event `n + 1` before event `n` would let a subscriber drop `n` as already
/// sent). [`MemoryStore`](super::MemoryStore) is the embedded default.
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
