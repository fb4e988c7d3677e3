//! One tokio broadcast ring with a count of its sends ([`Feed`]), and one receiver of it polled
//! like a stream without a future per event ([`Tap`]).
//!
//! The ring holds the messages; the wakers of the taps that wait for the next one are parked
//! beside it, in one array the feed owns, not in tokio's list of waiting receivers. A send walks
//! that array, which lies in a few consecutive cache lines, where tokio's walk visits one node
//! per waiting receiver, each inside that receiver's own future on the heap: with a thousand
//! subscribers, each woken once per event, those are a thousand cache misses per event before
//! the first subscriber's task runs, and one more per subscriber when its task polls the
//! future again (BENCHMARKS.md, "cache lines per delivery").
//!
//! A send hands the taps it took to a [`Woken`], which wakes them when it is dropped, so that
//! an owner that sends under its lock wakes them after. For a feed task of the library's own
//! (the Redis tail loop), it polls the streams of idle connections right there, in their
//! tasks' places, instead of waking those tasks (see [`Socket::wake`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::connection::{self, Socket};
use crate::lock;

/// What a feed and its taps share.
#[derive(Default)]
struct Shared {
    /// Sends begun, and one more once the feed goes.
    sends: AtomicU64,
    /// How many times the parked wakers were taken (by a send, or by the feed's end); written
    /// under `parked`'s lock.
    takes: AtomicU64,
    /// The waiting taps: woken, and cleared, by the next send.
    parked: Mutex<Vec<Parked>>,
    /// The array a send swaps in for the parked taps it takes, kept for its capacity.
    spare: Mutex<Vec<Parked>>,
    /// The number of the next tap.
    taps: AtomicU64,
}

/// A waiting tap.
struct Parked {
    /// The tap's number.
    number: u64,
    /// Its task's waker.
    waker: Waker,
    /// The connection whose relayed body parked it from the direct path, if one did: the
    /// send polls that body in the task's place when the task is idle ([`Socket::wake`]).
    direct: Option<Arc<Socket>>,
}

impl Shared {
    /// Takes every parked tap, to be woken by the [`Woken`] returned (when it is dropped);
    /// `inline` lets it poll idle connections' bodies in their tasks' places.
    fn take_parked(self: &Arc<Self>, inline: bool) -> Woken {
        let mut parked = lock(&self.parked);
        if parked.is_empty() {
            return Woken {
                shared: None,
                taken: Vec::new(),
                inline,
            };
        }
        let spare = std::mem::take(&mut *lock(&self.spare));
        let taken = std::mem::replace(&mut *parked, spare);
        self.takes.fetch_add(1, Ordering::Release);
        Woken {
            shared: Some(self.clone()),
            taken,
            inline,
        }
    }
}

/// The taps a send took, woken when this is dropped: so that a sender that sends under a
/// lock of its own can wake them after it let the lock go. A tap parked from the direct
/// path of an idle connection has its body polled right here, in its task's place: what a
/// send then costs each subscriber is the poll and the write, not a task's wake-up too.
#[must_use = "dropping it wakes the taps"]
pub(crate) struct Woken {
    shared: Option<Arc<Shared>>,
    taken: Vec<Parked>,
    /// Whether bodies may be polled here (see [`Feed::send_later`]).
    inline: bool,
}

impl Drop for Woken {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let mut taken = std::mem::take(&mut self.taken);
        let mut budget = if self.inline && taken.iter().any(|parked| parked.direct.is_some()) {
            connection::inline_budget()
        } else {
            0
        };
        // The plain wakes first, so that other workers can take those tasks meanwhile.
        taken.retain(|parked| {
            if parked.direct.is_some() && budget > 0 {
                budget -= 1;
                true
            } else {
                parked.waker.wake_by_ref();
                false
            }
        });
        for parked in taken.drain(..) {
            match parked.direct {
                Some(socket) => socket.wake(parked.waker),
                None => parked.waker.wake(),
            }
        }
        let mut spare = lock(&shared.spare);
        if spare.capacity() < taken.capacity() {
            *spare = taken;
        }
    }
}

/// The sending side of a ring, which counts the sends it begins and wakes the taps that wait.
///
/// The count is what spares a [`Tap`] most of its polls: hyper polls a response body twice
/// more after each chunk it writes (until the body says to wait), and a tap that received
/// every message begun, and whose waker is still parked, knows without looking at the ring
/// that it has nothing.
///
/// Sends and [`Feed::tap`] must be serialized by the owner (they are, under a lock of its):
/// the count then numbers the ring's messages as a receiver sees them.
pub(crate) struct Feed<T> {
    /// The ring's sender; taken when the feed goes, before the taps are woken to see the end.
    tx: Option<broadcast::Sender<T>>,
    shared: Arc<Shared>,
}

impl<T: Clone + Send + 'static> Feed<T> {
    /// A ring of `capacity` messages (tokio rounds it up to a power of two).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tx: Some(broadcast::channel(capacity).0),
            shared: Arc::default(),
        }
    }

    /// Sends `message` to every receiver and wakes those that wait; returns how many
    /// receivers there were.
    #[cfg(test)]
    pub(crate) fn send(&self, message: T) -> usize {
        let (receivers, woken) = self.send_later(message, false);
        drop(woken);
        receivers
    }

    /// Sends `message` like [`Feed::send`], and returns the taps to wake with the count: they
    /// are woken when the [`Woken`] is dropped. With `inline`, that drop polls the streams of
    /// idle connections in their tasks' places: only for a sender that drops it holding no
    /// lock a stream's poll could take (its own feed task), never in a caller's code.
    pub(crate) fn send_later(&self, message: T, inline: bool) -> (usize, Woken) {
        // Counted before the ring has it: a tap that reads the count after this sees that a
        // message may be coming, and either finds it or parks before the wake below.
        self.shared.sends.fetch_add(1, Ordering::Release);
        let receivers = self
            .tx
            .as_ref()
            .map_or(0, |tx| tx.send(message).unwrap_or(0));
        (receivers, self.shared.take_parked(inline))
    }

    /// A receiver of every message sent from now on.
    pub(crate) fn tap(&self) -> Tap<T> {
        Tap {
            rx: self.tx.as_ref().map(broadcast::Sender::subscribe),
            waker: None,
            parked_at: None,
            shared: self.shared.clone(),
            next: self.shared.sends.load(Ordering::Acquire),
            number: self.shared.taps.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// How many receivers there are.
    pub(crate) fn receiver_count(&self) -> usize {
        self.tx
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        // The end first, then the wakes: a woken tap must find the ring closed.
        self.shared.sends.fetch_add(1, Ordering::Release);
        drop(self.tx.take());
        drop(self.shared.take_parked(false));
    }
}

/// A broadcast receiver that can be polled: messages are taken with `try_recv` (no future),
/// and a tap that finds none parks its task's waker with the feed.
pub(crate) struct Tap<T> {
    /// The receiver, until the tap ends.
    rx: Option<broadcast::Receiver<T>>,
    /// The waker last parked, kept across waits (one clone per task).
    waker: Option<Waker>,
    /// The feed's count of takes when this tap's waker was parked, while it may still be:
    /// it is, or is being woken, as long as the count is the same.
    parked_at: Option<u64>,
    shared: Arc<Shared>,
    /// The number (in the feed's count) of the next message this tap receives.
    next: u64,
    /// This tap's number, which names its parked waker.
    number: u64,
}

impl<T: Clone + Send + 'static> Tap<T> {
    /// Whether the tap was ended (or its ring closed and the end was taken).
    pub(crate) fn is_ended(&self) -> bool {
        self.rx.is_none()
    }

    /// The next message of the ring: at once if one is ready, else `Pending` with the poll's
    /// waker parked, woken by the next send. An ended tap reports `Closed`.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if let Some(at) = self.parked_at
            && self.shared.sends.load(Ordering::Acquire) == self.next
            && self.shared.takes.load(Ordering::Acquire) == at
            && self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        {
            // Every message begun was received, and the waker is still parked (or being
            // woken): the next send wakes it.
            return Poll::Pending;
        }
        if let Some(ready) = self.poll_ring() {
            return ready;
        }
        self.park(cx.waker());
        // A send that began before the waker was parked, and took the parked wakers before
        // it was, has its message in the ring, or is about to put it there and then wake the
        // waker: look once more.
        if self.shared.sends.load(Ordering::Acquire) != self.next
            && let Some(ready) = self.poll_ring()
        {
            return ready;
        }
        Poll::Pending
    }

    /// What the ring has for this tap, if anything: `None` when it has nothing yet.
    fn poll_ring(&mut self) -> Option<Poll<Result<T, RecvError>>> {
        if self.rx.is_none() {
            return Some(Poll::Ready(Err(RecvError::Closed)));
        }
        match self.try_recv() {
            Ok(message) => Some(Poll::Ready(Ok(message))),
            Err(TryRecvError::Lagged(missed)) => Some(Poll::Ready(Err(RecvError::Lagged(missed)))),
            Err(TryRecvError::Closed) => {
                self.end();
                Some(Poll::Ready(Err(RecvError::Closed)))
            }
            Err(TryRecvError::Empty) => None,
        }
    }

    /// Parks `waker` with the feed, for the next send to wake.
    fn park(&mut self, waker: &Waker) {
        let same = self.waker.as_ref().is_some_and(|w| w.will_wake(waker));
        if !same {
            self.waker = Some(waker.clone());
        }
        let mut parked = lock(&self.shared.parked);
        // Exact under the lock: takes happen under it.
        let takes = self.shared.takes.load(Ordering::Relaxed);
        if self.parked_at == Some(takes) {
            // Still parked (a send began, and has not taken the wakers yet).
            if !same && let Some(entry) = parked.iter_mut().find(|p| p.number == self.number) {
                entry.waker = waker.clone();
                entry.direct = connection::direct_socket(waker);
            }
            return;
        }
        parked.push(Parked {
            number: self.number,
            waker: waker.clone(),
            direct: connection::direct_socket(waker),
        });
        self.parked_at = Some(takes);
    }

    /// The next message if one is ready (counted, as every receive is).
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

    /// How many messages wait in the ring for this tap.
    pub(crate) fn len(&self) -> usize {
        self.rx.as_ref().map_or(0, broadcast::Receiver::len)
    }

    /// Ends the tap: the receiver, and with it its place in the ring, goes at once, and so
    /// does its parked waker.
    pub(crate) fn end(&mut self) {
        self.rx = None;
        self.unpark();
        self.waker = None;
    }
}

impl<T> Tap<T> {
    /// Takes this tap's waker back from the feed, if it is still parked: a parked waker keeps
    /// its task's memory, which should go with the tap, not at the topic's next send.
    fn unpark(&mut self) {
        let Some(at) = self.parked_at.take() else {
            return;
        };
        let mut parked = lock(&self.shared.parked);
        if self.shared.takes.load(Ordering::Relaxed) == at
            && let Some(i) = parked.iter().position(|p| p.number == self.number)
        {
            parked.swap_remove(i);
        }
    }
}

impl<T> Drop for Tap<T> {
    fn drop(&mut self) {
        self.unpark();
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

    #[test]
    fn a_tap_that_ends_or_goes_takes_its_parked_waker_back() {
        let feed = Feed::new(4);
        let (mut first, mut second) = (feed.tap(), feed.tap());
        let (counter, waker) = WakeCount::waker();
        assert!(poll(&mut first, &waker).is_pending());
        assert!(poll(&mut second, &waker).is_pending());
        assert_eq!(feed.shared.parked.lock().unwrap().len(), 2);
        drop(first);
        assert_eq!(feed.shared.parked.lock().unwrap().len(), 1);
        second.end();
        assert_eq!(feed.shared.parked.lock().unwrap().len(), 0);
        assert_eq!(feed.send(1), 0);
        assert_eq!(counter.wakes(), 0);
        assert_eq!(
            poll(&mut second, &waker),
            Poll::Ready(Err(RecvError::Closed))
        );
    }

    #[test]
    fn a_tap_woken_and_polled_again_parks_again() {
        let feed = Feed::new(4);
        let mut tap = feed.tap();
        let (counter, waker) = WakeCount::waker();
        for n in 1..=3 {
            assert!(poll(&mut tap, &waker).is_pending());
            feed.send(n);
            assert_eq!(counter.wakes(), n as usize);
            assert_eq!(feed.shared.parked.lock().unwrap().len(), 0);
            assert_eq!(poll(&mut tap, &waker), Poll::Ready(Ok(n)));
        }
        assert!(poll(&mut tap, &waker).is_pending());
        assert_eq!(feed.shared.parked.lock().unwrap().len(), 1);
    }

    /// Wakes a thread that parked itself.
    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }

    #[test]
    fn taps_on_other_threads_miss_no_wake_however_sends_and_parks_interleave() {
        // Each message is the last for a while: the publisher waits until every tap has it,
        // so a wake lost between a tap's look at the ring and its park shows as a tap that
        // never gets it.
        const TAPS: usize = 3;
        const MESSAGES: u32 = 10_000;
        let feed = std::sync::Arc::new(Feed::new(8));
        let received: std::sync::Arc<Vec<std::sync::atomic::AtomicU64>> =
            std::sync::Arc::new((0..TAPS).map(|_| Default::default()).collect());
        let threads: Vec<_> = (0..TAPS)
            .map(|i| {
                let mut tap = feed.tap();
                let received = received.clone();
                std::thread::spawn(move || {
                    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
                    let mut expected = 1;
                    let mut since = std::time::Instant::now();
                    loop {
                        match poll(&mut tap, &waker) {
                            Poll::Ready(Ok(n)) => {
                                assert_eq!(n, expected, "in order, none skipped");
                                expected += 1;
                                since = std::time::Instant::now();
                                received[i]
                                    .store(u64::from(n), std::sync::atomic::Ordering::Release);
                            }
                            Poll::Ready(Err(RecvError::Closed)) => return expected - 1,
                            Poll::Ready(Err(lag)) => panic!("{lag}"),
                            Poll::Pending => {
                                let parked = std::time::Instant::now();
                                std::thread::park_timeout(std::time::Duration::from_millis(500));
                                // Woken by the timeout, not by a send: then nothing may wait.
                                if parked.elapsed() >= std::time::Duration::from_millis(500) {
                                    assert!(
                                        tap.len() == 0,
                                        "tap {i}: message {expected} came with no wake"
                                    );
                                }
                                assert!(
                                    since.elapsed() < std::time::Duration::from_secs(10),
                                    "tap {i} waits for message {expected}"
                                );
                            }
                        }
                    }
                })
            })
            .collect();
        for n in 1..=MESSAGES {
            feed.send(n);
            let start = std::time::Instant::now();
            while received
                .iter()
                .any(|r| r.load(std::sync::atomic::Ordering::Acquire) < u64::from(n))
            {
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(10),
                    "message {n} not received by every tap"
                );
                std::thread::yield_now();
            }
        }
        drop(std::sync::Arc::into_inner(feed).expect("the only feed handle"));
        for thread in threads {
            assert_eq!(thread.join().expect("a tap thread"), MESSAGES);
        }
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
