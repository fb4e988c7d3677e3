//! Encode-once fan-out: one event, encoded once, shared by every subscriber.
//!
//! [`Broadcast`] is the hub (also at the crate root), [`Subscription`] one subscriber's stream,
//! [`LagPolicy`] what a subscriber that fell behind gets, and [`Builder`] the hub's options.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::BoxError;
use crate::event::{Separator, ServerSentEvent};
use crate::into_event::{IntoEvent, Payload};
use crate::lock;
use crate::tap::{Feed, Tap};

/// What a subscriber that fell behind gets.
///
/// ```
/// use futures_util::StreamExt;
/// use sse_runtime::broadcast::LagPolicy;
/// use sse_runtime::{Broadcast, Separator};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hub = Broadcast::builder(2).separator(Separator::Lf).build();
/// let mut slow = hub.subscribe();
/// for i in 0..5 {
///     hub.send(i).unwrap();
/// }
/// let notice = slow.next().await.unwrap().encode(Separator::Lf);
/// assert_eq!(notice, &b"event: lagged\ndata: 3\n\n"[..]);
/// # }
/// ```
///
/// A subscriber lags when more than `capacity` events were sent after the oldest one it has not
/// taken yet: a slow client, or one whose connection stalled. It then never receives an event
/// more than `capacity` behind the newest: exactly the `capacity` most recent events are still
/// there for it, whatever the capacity (see [`Broadcast::new`] for the memory this takes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LagPolicy {
    /// Skip the events it missed and tell it with an `event: lagged` whose data is the number of
    /// events skipped; then go on with the oldest event still held. The default.
    #[default]
    Notify,
    /// Skip the events it missed without a word.
    Skip,
    /// End its stream (cleanly: a browser reconnects, sending `Last-Event-ID`, and can catch up
    /// from your own storage).
    Disconnect,
}

/// A fan-out hub: events sent once reach every subscriber, encoded once.
///
/// Cheap to clone (share it as axum state). Each [`send`](Self::send) encodes the event with the
/// broadcast's separator into one `Bytes` that every subscriber's response shares; a subscriber's
/// stream yields those bytes unframed, so they go out as they are. Memory is bounded: a
/// subscriber is never handed an event more than `capacity` behind the newest, one that falls
/// further behind is handled by the [`LagPolicy`], and at most `capacity` rounded up to a power
/// of two encoded events stay in memory, whatever the number of subscribers.
///
/// ```
/// use axum::{Router, extract::State, routing::{get, post}};
/// use sse_runtime::{Broadcast, ServerSentEvent, sse};
///
/// sse! {
///     async fn events(State(hub): State<Broadcast>) {
///         for await event in hub.subscribe() {
///             yield event;
///         }
///     }
/// }
///
/// async fn send(State(hub): State<Broadcast>, message: String) -> String {
///     let delivered = hub.send(ServerSentEvent::new().event("message").data(message)).unwrap();
///     format!("sent to {delivered} clients")
/// }
///
/// let app: Router = Router::new()
///     .route("/events", get(events))
///     .route("/send", post(send))
///     .with_state(Broadcast::new(64));
/// ```
#[derive(Clone)]
pub struct Broadcast {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every event with its number in the order of sending.
    tx: Feed<(u64, Bytes)>,
    /// The number of the next event to send. Held while sending, so that numbers follow the
    /// order of the ring.
    next: Mutex<u64>,
    /// What subscriptions share (not the sender: dropping the broadcast ends them).
    shared: Arc<Shared>,
}

/// What a [`Subscription`] reads of its broadcast.
struct Shared {
    /// The number of events sent so far: what a subscriber compares its event's number with.
    /// (`Acquire` pairs with the sender's `Release`; a stale value only underestimates a lag.)
    head: AtomicU64,
    capacity: u64,
    separator: Separator,
    policy: LagPolicy,
}

impl Shared {
    /// How many events the subscriber that just received event `seq` is behind, counting it.
    fn behind(&self, seq: u64) -> u64 {
        self.head.load(Ordering::Acquire).saturating_sub(seq)
    }
}

impl Broadcast {
    /// A broadcast that keeps the `capacity` most recent events (at least 1) for subscribers
    /// that are behind; one further behind lags (see [`LagPolicy`]).
    ///
    /// Memory: the events live in tokio's broadcast ring, whose size is `capacity` rounded up
    /// to a power of two, so up to that many encoded events (for capacity 3, 4; for 9, 16) may
    /// stay in memory while a slow subscriber has not taken them. No subscriber is ever handed
    /// one more than `capacity` behind.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use sse_runtime::broadcast::LagPolicy;
    /// use sse_runtime::{Broadcast, Separator};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hub = Broadcast::builder(3)
    ///     .separator(Separator::Lf)
    ///     .lag_policy(LagPolicy::Skip)
    ///     .build();
    /// let mut slow = hub.subscribe();
    /// for i in 0..4 {
    ///     hub.send(i).unwrap();
    /// }
    /// // Four events for a capacity of three: the oldest is skipped.
    /// let first = slow.next().await.unwrap().encode(Separator::Lf);
    /// assert_eq!(first, &b"data: 1\n\n"[..]);
    /// # }
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self::builder(capacity).build()
    }

    /// The options of a broadcast keeping the `capacity` most recent events: CRLF separators
    /// and [`LagPolicy::Notify`] unless set.
    ///
    /// ```
    /// use sse_runtime::broadcast::LagPolicy;
    /// use sse_runtime::{Broadcast, Separator};
    ///
    /// let hub = Broadcast::builder(16)
    ///     .separator(Separator::Lf)
    ///     .lag_policy(LagPolicy::Disconnect)
    ///     .build();
    /// assert_eq!(hub.subscriber_count(), 0);
    /// ```
    pub fn builder(capacity: usize) -> Builder {
        Builder {
            capacity,
            separator: Separator::CrLf,
            policy: LagPolicy::Notify,
        }
    }

    /// Encodes `event` once and hands it to every current subscriber; returns how many there were.
    ///
    /// Fails only for a value that cannot be encoded (such as JSON with a NaN).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use sse_runtime::{Broadcast, Separator};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hub = Broadcast::new(8);
    /// let mut first = hub.subscribe();
    /// let mut second = hub.subscribe();
    /// assert_eq!(hub.send("hello").unwrap(), 2);
    /// let a = first.next().await.unwrap().encode(Separator::CrLf);
    /// let b = second.next().await.unwrap().encode(Separator::CrLf);
    /// assert_eq!(a, &b"data: hello\r\n\r\n"[..]);
    /// assert_eq!(a, b);
    /// # }
    /// ```
    pub fn send(&self, event: impl IntoEvent) -> Result<usize, BoxError> {
        let mut buf = BytesMut::new();
        if let Err(error) = event
            .into_event()
            .encode_to(self.inner.shared.separator, &mut buf)
        {
            return Err(error.to_string().into());
        }
        Ok(self.send_bytes(buf.freeze()))
    }

    /// Hands already-encoded bytes to every subscriber, unchanged.
    pub fn send_bytes(&self, bytes: Bytes) -> usize {
        let (delivered, woken) = {
            let mut next = lock(&self.inner.next);
            let seq = *next;
            let sent = self.inner.tx.send_later((seq, bytes), false);
            *next = seq + 1;
            self.inner.shared.head.store(seq + 1, Ordering::Release);
            sent
        };
        // Woken after the lock is let go, which a woken subscriber's task may want.
        drop(woken);
        delivered
    }

    /// A stream of everything sent from now on, for one response.
    pub fn subscribe(&self) -> Subscription {
        // Under the sending lock, as the feed's count wants.
        let _sending = lock(&self.inner.next);
        Subscription::new(self.inner.tx.tap(), self.inner.shared.clone())
    }

    /// How many subscriptions are alive.
    pub fn subscriber_count(&self) -> usize {
        self.inner.tx.receiver_count()
    }
}

/// The options of a [`Broadcast`], from [`Broadcast::builder`].
#[derive(Clone, Debug)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    capacity: usize,
    separator: Separator,
    policy: LagPolicy,
}

impl Builder {
    /// The separator of the encoded events (default CRLF).
    pub fn separator(mut self, separator: Separator) -> Self {
        self.separator = separator;
        self
    }

    /// What a subscriber that falls more than `capacity` behind gets (default
    /// [`LagPolicy::Notify`]).
    pub fn lag_policy(mut self, policy: LagPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The broadcast.
    pub fn build(self) -> Broadcast {
        let capacity = self.capacity.max(1);
        let tx = Feed::new(capacity);
        Broadcast {
            inner: Arc::new(Inner {
                tx,
                next: Mutex::new(0),
                shared: Arc::new(Shared {
                    head: AtomicU64::new(0),
                    capacity: u64::try_from(capacity).unwrap_or(u64::MAX),
                    separator: self.separator,
                    policy: self.policy,
                }),
            }),
        }
    }
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("subscribers", &self.subscriber_count())
            .field("capacity", &self.inner.shared.capacity)
            .field("separator", &self.inner.shared.separator)
            .field("policy", &self.inner.shared.policy)
            .finish()
    }
}

/// One subscriber of a [`Broadcast`]: a stream of encoded events (raw bytes), ready to be
/// yielded or handed to [`EventSourceResponse::new`](crate::EventSourceResponse::new).
///
/// ```
/// use axum::extract::State;
/// use sse_runtime::{Broadcast, EventSourceResponse};
///
/// async fn events(State(hub): State<Broadcast>) -> EventSourceResponse {
///     EventSourceResponse::new(hub.subscribe())
/// }
/// # let _ = events;
/// ```
pub struct Subscription {
    tap: Tap<(u64, Bytes)>,
    hub: Arc<Shared>,
}

impl Subscription {
    fn new(tap: Tap<(u64, Bytes)>, hub: Arc<Shared>) -> Self {
        Self { tap, hub }
    }

    /// The next event, or how many events were skipped because the subscriber fell more than
    /// `capacity` behind, or the end.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, RecvError>> {
        let capacity = self.hub.capacity;
        let (missed, behind) = match std::task::ready!(self.tap.poll_recv(cx)) {
            Ok((seq, bytes)) => {
                let behind = self.hub.behind(seq);
                if behind <= capacity {
                    return Poll::Ready(Ok(bytes));
                }
                // This event is older than the `capacity` most recent: skip it too.
                (1, behind - 1)
            }
            // tokio's ring (`capacity` rounded up to a power of two) overflowed: the receiver
            // now stands at the oldest event the ring holds. (`len` takes the ring's lock, on
            // this rare path only.)
            Err(RecvError::Lagged(missed)) => {
                let behind = self.tap.len();
                (missed, behind as u64)
            }
            Err(RecvError::Closed) => return Poll::Ready(Err(RecvError::Closed)),
        };
        Poll::Ready(Err(RecvError::Lagged(
            missed + self.skip(behind.saturating_sub(capacity)),
        )))
    }

    /// Skips up to `count` events that are ready; returns how many were skipped.
    fn skip(&mut self, count: u64) -> u64 {
        let mut skipped = 0;
        while skipped < count {
            match self.tap.try_recv() {
                Ok(_) => skipped += 1,
                Err(broadcast::error::TryRecvError::Lagged(missed)) => skipped += missed,
                Err(_) => break,
            }
        }
        skipped
    }
}

impl Stream for Subscription {
    type Item = Payload;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        let this = &mut *self;
        loop {
            if this.tap.is_ended() {
                return Poll::Ready(None);
            }
            match std::task::ready!(this.poll_event(cx)) {
                Ok(bytes) => return Poll::Ready(Some(bytes.into_event())),
                Err(RecvError::Closed) => {
                    this.tap.end();
                    return Poll::Ready(None);
                }
                Err(RecvError::Lagged(missed)) => {
                    #[cfg(feature = "metrics")]
                    metrics::counter!(crate::observe::names::LAGGED, "hub" => "broadcast")
                        .increment(1);
                    match this.hub.policy {
                        LagPolicy::Notify => {
                            let notice = ServerSentEvent::new().event("lagged").data(missed);
                            return Poll::Ready(Some(
                                notice.encode(this.hub.separator).into_event(),
                            ));
                        }
                        LagPolicy::Skip => {}
                        LagPolicy::Disconnect => {
                            tracing::debug!(
                                missed,
                                "broadcast subscriber lagged; ending its stream"
                            );
                            this.tap.end();
                            return Poll::Ready(None);
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subscription")
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn every_subscriber_shares_the_bytes_encoded_once() {
        let hub = Broadcast::new(4);
        let mut subscribers: Vec<_> = (0..3).map(|_| hub.subscribe()).collect();
        assert_eq!(hub.send(ServerSentEvent::new().id(1).data("x")).unwrap(), 3);
        let mut addresses = Vec::new();
        for subscriber in &mut subscribers {
            let payload = subscriber.next().await.unwrap();
            let bytes = payload.raw().expect("raw bytes").clone();
            assert_eq!(&bytes[..], b"id: 1\r\ndata: x\r\n\r\n");
            addresses.push(bytes.as_ptr());
        }
        assert!(
            addresses.windows(2).all(|pair| pair[0] == pair[1]),
            "{addresses:?}"
        );
    }

    fn text(payload: Payload) -> String {
        String::from_utf8(payload.raw().expect("raw bytes").to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_waiting_subscriber_wakes_for_each_event_in_order() {
        let hub = Broadcast::builder(4)
            .separator(Separator::Lf)
            .lag_policy(LagPolicy::Notify)
            .build();
        let mut subscription = hub.subscribe();
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(payload) = subscription.next().await {
                seen.push(text(payload));
                if seen.len() == 5 {
                    break;
                }
            }
            seen
        });
        // One event at a time, each sent once the subscriber waits for it; then a burst.
        for i in 0..2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            hub.send(ServerSentEvent::new().data(i)).unwrap();
        }
        for i in 2..5 {
            hub.send(ServerSentEvent::new().data(i)).unwrap();
        }
        let seen = reader.await.unwrap();
        let expected: Vec<String> = (0..5).map(|i| format!("data: {i}\n\n")).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_subscription_that_ended_stays_ended_and_leaves_the_broadcast() {
        let hub = Broadcast::builder(1)
            .separator(Separator::Lf)
            .lag_policy(LagPolicy::Disconnect)
            .build();
        let mut subscription = hub.subscribe();
        for i in 0..3 {
            hub.send(i).unwrap();
        }
        assert!(subscription.next().await.is_none());
        assert_eq!(hub.subscriber_count(), 0);
        assert!(subscription.next().await.is_none());
    }
}
