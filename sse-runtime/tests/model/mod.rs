//! The model of the resume guarantee shared by `resume_model.rs` (the in-memory hub) and
//! `redis_model.rs` (nodes on one Redis): random schedules of publishes on several topics,
//! from two concurrent publishers on a multi-thread runtime, while subscribers follow random
//! sets of topics, read a random number of events, disconnect (mid-replay included), stall
//! long enough to lag, and reconnect with the id of the last event they received, each time to
//! a random node. At the end each one reconnects (to each node in turn) and reads until the
//! last event of its topics. Whatever the timing, what a subscriber received, concatenated
//! over its connections, must be exactly the published sequence of its topics, except where a
//! reset says the history no longer held what it missed: then exactly that reset, whose id is
//! where it goes on from, followed by the events after it.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use proptest::prelude::*;
use sse_runtime::resume::{EventId, Hub};
use sse_runtime::{Payload, Separator, ServerSentEvent};
use tokio::sync::watch;

const TOPICS: [&str; 3] = ["a", "b", "c"];

/// The most nodes a case picks from (a model of fewer nodes takes the choice modulo its own).
const NODES: usize = 3;

#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// Which node (hub) it connects to, modulo the number of nodes.
    node: usize,
    /// How many events to read before disconnecting.
    read: usize,
    /// Stall this long before reading (long enough, with a small capacity, to lag).
    stall_us: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Subscriber {
    /// Which of `TOPICS` it follows (a non-empty subset).
    topics: Vec<&'static str>,
    sessions: Vec<Session>,
}

#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// The history each topic keeps (a store's `history`).
    pub(crate) history: usize,
    /// The capacity of each topic's live ring (a hub's `capacity`).
    pub(crate) capacity: usize,
    /// For each of two publishers: bursts of (topic index, events, node).
    publishers: [Vec<(usize, usize, usize)>; 2],
    subscribers: Vec<Subscriber>,
}

/// Random cases: histories, ring capacities, publishers' bursts and subscribers' sessions, each
/// on a random node.
pub(crate) fn case() -> impl Strategy<Value = Case> {
    let bursts = || prop::collection::vec((0..TOPICS.len(), 1usize..12, 0usize..NODES), 1..14);
    let session = (
        0usize..NODES,
        1usize..40,
        prop_oneof![3 => Just(0u64), 1 => 100u64..3000],
    )
        .prop_map(|(node, read, stall_us)| Session {
            node,
            read,
            stall_us,
        });
    let subscriber = (
        prop::sample::subsequence(TOPICS.to_vec(), 1..=TOPICS.len()),
        prop::collection::vec(session, 0..6),
    )
        .prop_map(|(topics, sessions)| Subscriber { topics, sessions });
    (
        1usize..40,
        1usize..16,
        bursts(),
        bursts(),
        prop::collection::vec(subscriber, 1..5),
    )
        .prop_map(|(history, capacity, first, second, subscribers)| Case {
            history,
            capacity,
            publishers: [first, second],
            subscribers,
        })
}

/// What a subscriber received: an event, or a reset to a head; and, for the failure messages,
/// where each connection began and that a stream ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    Event(u64),
    Reset(u64),
    /// A connection to node `.0` from the cursor `.1`.
    Connect(usize, u64),
    /// The stream ended (the hub ended it: a lag, a barrier, a trimmed replay).
    Ended,
}

fn parse(frame: &[u8]) -> (EventId, Got) {
    let text = std::str::from_utf8(frame).unwrap();
    let id: EventId = text
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no id in {text:?}"))
        .parse()
        .unwrap();
    let got = if text.contains("event: reset") {
        Got::Reset(id.seq())
    } else {
        Got::Event(id.seq())
    };
    (id, got)
}

/// One subscriber's life; returns everything it received, in order.
async fn subscribe(
    nodes: Vec<Hub>,
    subscriber: Subscriber,
    mut done: watch::Receiver<bool>,
    last_of_topics: Arc<Mutex<Option<u64>>>,
) -> Vec<Got> {
    let epoch = nodes[0].head().await.unwrap().epoch();
    // From before the first event: everything, or a reset if it is no longer retained.
    let mut cursor = EventId::new(epoch, 0);
    let mut got = Vec::new();
    for session in &subscriber.sessions {
        if *done.borrow() {
            break;
        }
        let node = session.node % nodes.len();
        got.push(Got::Connect(node, cursor.seq()));
        let mut resume = nodes[node]
            .resume(subscriber.topics.clone(), cursor.into())
            .await;
        if session.stall_us > 0 {
            tokio::time::sleep(Duration::from_micros(session.stall_us)).await;
        }
        for _ in 0..session.read {
            let next = tokio::select! {
                next = resume.next() => next,
                _ = done.wait_for(|done| *done) => break,
            };
            if !take(next, &mut cursor, &mut got) {
                break;
            }
        }
    }
    // The publishers are done: read up to the last event of its topics.
    let _ = done.wait_for(|done| *done).await;
    let last = last_of_topics.lock().unwrap().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // On each node in turn.
    let mut turn = 0;
    while cursor.seq() < last {
        let node = turn % nodes.len();
        turn += 1;
        got.push(Got::Connect(node, cursor.seq()));
        let mut resume = nodes[node]
            .resume(subscriber.topics.clone(), cursor.into())
            .await;
        while cursor.seq() < last {
            let next = tokio::time::timeout_at(deadline, resume.next())
                .await
                .expect("the final reads finish");
            if !take(next, &mut cursor, &mut got) {
                break;
            }
        }
    }
    got
}

/// Records what a stream's `next` gave: an event (its id becomes the cursor), or the end of
/// the stream. Whether the stream goes on.
fn take(next: Option<Payload>, cursor: &mut EventId, got: &mut Vec<Got>) -> bool {
    let Some(payload) = next else {
        got.push(Got::Ended);
        return false;
    };
    let (id, event) = parse(&payload.encode(Separator::Lf));
    *cursor = id;
    got.push(event);
    true
}

/// Checks `got` against the published numbers of the subscriber's topics.
fn check(
    got: &[Got],
    published: &BTreeSet<u64>,
    by_topic: &[(u64, usize)],
    subscriber: &Subscriber,
    case: &Case,
) {
    let mut position = 0;
    for (index, item) in got.iter().enumerate() {
        match *item {
            Got::Event(seq) => {
                let expected = published.range(position + 1..).next().copied();
                assert_eq!(
                    Some(seq),
                    expected,
                    "item {index} after {position}: {got:?} of {published:?}"
                );
                position = seq;
            }
            Got::Reset(head) => {
                assert!(head >= position, "a reset back to {head} from {position}");
                // A reset is owed only if more events of one of its topics than the history
                // holds came after its position.
                let owed = subscriber.topics.iter().any(|topic| {
                    let topic = TOPICS.iter().position(|t| t == topic).unwrap();
                    by_topic
                        .iter()
                        .filter(|(seq, t)| *t == topic && *seq > position)
                        .count()
                        > case.history
                });
                assert!(owed, "an unjustified reset at {position}: {got:?}");
                position = head;
            }
            Got::Connect(..) | Got::Ended => {}
        }
    }
    let last = published.iter().next_back().copied().unwrap_or(0);
    assert!(
        position >= last,
        "ended at {position} short of {last}: {got:?}"
    );
}

/// Runs `case` on the hubs `nodes` makes (one or more nodes of one history), on a
/// multi-thread runtime of its own, and checks every subscriber's reception.
pub(crate) fn run<F, N>(case: Case, nodes: N)
where
    N: FnOnce(&Case) -> F,
    F: Future<Output = Vec<Hub>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let nodes = nodes(&case).await;
        assert!(!nodes.is_empty(), "a model runs on one node at least");
        let (done_tx, done) = watch::channel(false);
        let lasts: Vec<_> = case
            .subscribers
            .iter()
            .map(|_| Arc::new(Mutex::new(None)))
            .collect();
        let subscribers: Vec<_> = case
            .subscribers
            .iter()
            .zip(&lasts)
            .map(|(subscriber, last)| {
                tokio::spawn(subscribe(
                    nodes.clone(),
                    subscriber.clone(),
                    done.clone(),
                    last.clone(),
                ))
            })
            .collect();
        let publishers: Vec<_> = case
            .publishers
            .iter()
            .map(|bursts| {
                let (nodes, bursts) = (nodes.clone(), bursts.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for (topic, events, node) in bursts {
                        let hub = &nodes[node % nodes.len()];
                        for _ in 0..events {
                            let event = ServerSentEvent::new().data("x");
                            let id = hub.publish(TOPICS[topic], event).await.unwrap();
                            ids.push((id.seq(), topic));
                        }
                        tokio::task::yield_now().await;
                    }
                    ids
                })
            })
            .collect();
        let mut by_topic = Vec::new();
        for publisher in publishers {
            by_topic.extend(publisher.await.unwrap());
        }
        by_topic.sort_unstable();
        let expected: Vec<u64> = (1..=by_topic.len() as u64).collect();
        let numbers: Vec<u64> = by_topic.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(numbers, expected, "ids are contiguous from 1");
        let published: Vec<BTreeSet<u64>> = case
            .subscribers
            .iter()
            .map(|subscriber| {
                by_topic
                    .iter()
                    .filter(|(_, topic)| subscriber.topics.contains(&TOPICS[*topic]))
                    .map(|(seq, _)| *seq)
                    .collect()
            })
            .collect();
        for (last, published) in lasts.iter().zip(&published) {
            *last.lock().unwrap() = published.iter().next_back().copied();
        }
        done_tx.send(true).unwrap();
        for ((subscriber, task), published) in
            case.subscribers.iter().zip(subscribers).zip(&published)
        {
            let got = task.await.unwrap();
            check(&got, published, &by_topic, subscriber, &case);
        }
    });
}
