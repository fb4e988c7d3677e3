//! One tokio broadcast ring with a count of its sends ([`Feed`]), and one receiver of it polled
//! like a stream without a future per event ([`Tap`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::ReusableBoxFuture;

/// The sending side of a ring, which counts the sends it begins.
///
/// The count is what spares a [`Tap`] most of its polls: hyper polls a response body twice
/// more after each chunk it writes (until the body says to wait), and a tokio receiver that
/// finds nothing takes the ring's slot lock and its tail lock, which every receiver of the
/// ring shares, each time. A tap that waits for the ring's message number `n`, registered
/// with the poll's waker, knows while the count is `n` that the ring has nothing for it.
///
/// Sends and [`Feed::tap`] must be serialized by the owner (they are, under a lock of its):
/// the count then numbers the ring's messages as a receiver sees them.
pub(crate) struct Feed<T> {
    tx: broadcast::Sender<T>,
    /// Sends begun, and one more once the feed goes.
    sends: Arc<AtomicU64>,
}

impl<T: Clone + Send + 'static> Feed<T> {
    /// A ring of `capacity` messages (tokio rounds it up to a power of two).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity).0,
            sends: Arc::default(),
        }
    }

    /// Sends `message` to every receiver; returns how many there were.
    pub(crate) fn send(&self, message: T) -> usize {
        // Counted before the ring has it: a tap that read the old count registered its wait
        // before this send wakes the waiters, and the poll that wake brings reads the new one.
        self.sends.fetch_add(1, Ordering::Release);
        self.tx.send(message).unwrap_or(0)
    }

    /// A receiver of every message sent from now on.
    pub(crate) fn tap(&self) -> Tap<T> {
        Tap {
            rx: Some(self.tx.subscribe()),
            wait: None,
            waker: None,
            registered: false,
            sends: self.sends.clone(),
            next: self.sends.load(Ordering::Acquire),
        }
    }

    /// How many receivers there are.
    pub(crate) fn receiver_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        // Before the sender goes and wakes the waiting taps with the end: they must look.
        self.sends.fetch_add(1, Ordering::Release);
    }
}

/// A broadcast receiver that can be polled: ready events are taken with `try_recv` (no future),
/// and a wait for the next one reuses one allocation, made at the first wait.
pub(crate) struct Tap<T> {
    /// The receiver, while no wait is in progress.
    rx: Option<broadcast::Receiver<T>>,
    /// The wait for the next event once none was ready; it owns the receiver meanwhile.
    wait: Option<ReusableBoxFuture<'static, Received<T>>>,
    /// The waker the wait last registered, kept across waits (one clone per task).
    waker: Option<Waker>,
    /// The wait is registered with `waker`: the ring wakes it when a message comes.
    registered: bool,
    /// The feed's count of sends.
    sends: Arc<AtomicU64>,
    /// The number (in the feed's count) of the next message this tap receives.
    next: u64,
}

/// What a wait ends with, and the receiver back.
type Received<T> = (Result<T, RecvError>, broadcast::Receiver<T>);

async fn next<T: Clone>(mut rx: broadcast::Receiver<T>) -> Received<T> {
    let received = rx.recv().await;
    (received, rx)
}

impl<T: Clone + Send + 'static> Tap<T> {
    /// Whether the tap was ended (or its ring closed and the end was taken).
    pub(crate) fn is_ended(&self) -> bool {
        self.rx.is_none() && self.wait.is_none()
    }

    /// The next message of the ring: at once if one is ready, else through the (reused) wait.
    /// An ended tap reports `Closed`.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if self.registered
            && self.sends.load(Ordering::Acquire) == self.next
            && self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        {
            // Registered for message `next`, whose sending has not begun (see `Feed`).
            return Poll::Pending;
        }
        self.registered = false;
        if self.rx.is_some() {
            // Events sent together are taken without a future, one after the other.
            match self.try_recv() {
                Ok(message) => return Poll::Ready(Ok(message)),
                Err(TryRecvError::Lagged(missed)) => {
                    return Poll::Ready(Err(RecvError::Lagged(missed)));
                }
                Err(TryRecvError::Closed) => {
                    self.rx = None;
                    return Poll::Ready(Err(RecvError::Closed));
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        if let Some(rx) = self.rx.take() {
            match &mut self.wait {
                Some(wait) => wait.set(next(rx)),
                None => self.wait = Some(ReusableBoxFuture::new(next(rx))),
            }
        }
        let Some(wait) = &mut self.wait else {
            return Poll::Ready(Err(RecvError::Closed));
        };
        // `recv` is budgeted: with the task's budget spent it yields without polling the ring,
        // so without registering anything; such a wait is not taken for registered.
        let budgeted = tokio::task::coop::has_budget_remaining();
        let Poll::Ready((received, rx)) = wait.poll(cx) else {
            if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                self.waker = Some(cx.waker().clone());
            }
            self.registered = budgeted;
            return Poll::Pending;
        };
        self.rx = Some(rx);
        match &received {
            Ok(_) => self.next += 1,
            Err(RecvError::Lagged(missed)) => self.next += missed,
            Err(RecvError::Closed) => {}
        }
        Poll::Ready(received)
    }

    /// The next message if one is ready, when no wait holds the receiver (counted, as every
    /// receive is).
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let Some(rx) = &mut self.rx else {
            return Err(TryRecvError::Empty);
        };
        let received = rx.try_recv();
        match &received {
            Ok(_) => self.next += 1,
            Err(TryRecvError::Lagged(missed)) => self.next += missed,
            Err(_) => {}
        }
        received
    }

    /// How many messages wait in the ring, when no wait holds the receiver.
    pub(crate) fn len(&self) -> usize {
        self.rx.as_ref().map_or(0, broadcast::Receiver::len)
    }

    /// Ends the tap: the receiver, and with it its place in the ring, goes at once.
    pub(crate) fn end(&mut self) {
        self.rx = None;
        self.wait = None;
        self.registered = false;
        self.waker = None;
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use tokio::sync::broadcast::error::RecvError;

    use super::{Feed, Tap};
    use crate::wake_count::WakeCount;

    fn poll(tap: &mut Tap<u32>, waker: &Waker) -> Poll<Result<u32, RecvError>> {
        tap.poll_recv(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_waiting_tap_is_woken_by_the_next_send_and_receives_it() {
        let feed = Feed::new(4);
        let mut tap = feed.tap();
        let (counter, waker) = WakeCount::waker();
        assert!(poll(&mut tap, &waker).is_pending());
        // Polled again with nothing sent: still waiting (without looking at the ring).
        assert!(poll(&mut tap, &waker).is_pending());
        assert!(poll(&mut tap, &waker).is_pending());
        assert_eq!(feed.send(1), 1);
        assert_eq!(counter.wakes(), 1);
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(1)));
        assert!(poll(&mut tap, &waker).is_pending());
        assert_eq!(feed.send(2), 1);
        assert_eq!(feed.send(3), 1);
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(2)));
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(3)));
        assert!(poll(&mut tap, &waker).is_pending());
    }

    #[test]
    fn a_tap_counts_what_a_lag_skipped_and_still_wakes_for_the_next_send() {
        let feed = Feed::new(4);
        let mut tap = feed.tap();
        let (counter, waker) = WakeCount::waker();
        for n in 1..=6 {
            feed.send(n);
        }
        assert_eq!(
            poll(&mut tap, &waker),
            Poll::Ready(Err(RecvError::Lagged(2)))
        );
        assert_eq!(tap.try_recv(), Ok(3));
        for n in 4..=6 {
            assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(n)));
        }
        assert!(poll(&mut tap, &waker).is_pending());
        assert!(poll(&mut tap, &waker).is_pending());
        feed.send(7);
        assert_eq!(counter.wakes(), 1);
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(7)));
        // A lag met while waiting is counted too.
        assert!(poll(&mut tap, &waker).is_pending());
        for n in 8..=13 {
            feed.send(n);
        }
        assert_eq!(
            poll(&mut tap, &waker),
            Poll::Ready(Err(RecvError::Lagged(2)))
        );
        for n in 10..=13 {
            assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(n)));
        }
        assert!(poll(&mut tap, &waker).is_pending());
        feed.send(14);
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(14)));
    }

    #[test]
    fn a_waiting_tap_sees_its_feed_go() {
        let feed = Feed::<u32>::new(4);
        let mut tap = feed.tap();
        let (counter, waker) = WakeCount::waker();
        assert!(poll(&mut tap, &waker).is_pending());
        assert!(poll(&mut tap, &waker).is_pending());
        drop(feed);
        assert_eq!(counter.wakes(), 1);
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Err(RecvError::Closed)));
    }

    #[test]
    fn a_tap_polled_with_another_waker_registers_that_one() {
        let feed = Feed::new(4);
        let mut tap = feed.tap();
        let (first, first_waker) = WakeCount::waker();
        let (second, second_waker) = WakeCount::waker();
        assert!(poll(&mut tap, &first_waker).is_pending());
        assert!(poll(&mut tap, &second_waker).is_pending());
        feed.send(1);
        assert_eq!((first.wakes(), second.wakes()), (0, 1));
        assert_eq!(poll(&mut tap, &second_waker), Poll::Ready(Ok(1)));
    }

    #[tokio::test]
    async fn a_wait_cut_short_by_the_task_budget_is_not_taken_for_registered() {
        let feed = Feed::new(4);
        let mut tap = feed.tap();
        let (counter, waker) = WakeCount::waker();
        let (filler_tx, mut filler) = tokio::sync::broadcast::channel(512);
        for n in 0..300 {
            filler_tx.send(n).unwrap();
        }
        std::future::poll_fn(|cx| {
            // Ready receives spend the task's budget (128 of them).
            for _ in 0..300 {
                if !tokio::task::coop::has_budget_remaining() {
                    break;
                }
                let _ = std::pin::pin!(filler.recv()).poll(cx);
            }
            assert!(
                !tokio::task::coop::has_budget_remaining(),
                "the budget is spent"
            );
            // The wait yields for the budget, registering nothing with the ring.
            assert!(poll(&mut tap, &waker).is_pending());
            Poll::Ready(())
        })
        .await;
        tokio::task::yield_now().await;
        // With budget again: this poll must register the wait.
        assert!(poll(&mut tap, &waker).is_pending());
        let before = counter.wakes();
        feed.send(1);
        assert_eq!(counter.wakes(), before + 1, "the send wakes the wait");
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(1)));
    }

    #[test]
    fn a_tap_made_after_sends_waits_for_the_next_one() {
        let feed = Feed::new(4);
        feed.send(1);
        let mut tap = feed.tap();
        feed.send(2);
        let (_, waker) = WakeCount::waker();
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(2)));
        assert!(poll(&mut tap, &waker).is_pending());
        feed.send(3);
        assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(3)));
    }
}
