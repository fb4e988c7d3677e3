//! The Redis store against a real `redis-server` of each test's own (issue: many server
//! processes, one stream). Two hubs on one Redis stand for two nodes. Without `redis-server`
//! on `PATH` each test skips with a message (CI sets `SSE_REQUIRE_REDIS`, which makes that a
//! failure). Real processes behind nginx: tests/tests/cluster.rs.

use std::time::Duration;

use futures_util::StreamExt;
use sse_runtime::resume::{EventId, GapReason, Hub, RedisStore, Resume, StoreError};
use sse_runtime::testing::RedisServer;
use sse_runtime::{LastEventId, Separator, ServerSentEvent};

/// A hub (a node) on `redis`, hub name `test`.
async fn node(redis: &RedisServer, history: usize) -> Hub {
    node_with(redis, RedisStore::builder(redis.url()).history(history)).await
}

async fn node_with(redis: &RedisServer, store: sse_runtime::resume::RedisStoreBuilder) -> Hub {
    let _ = redis;
    let store = store.hub("test").connect().await.expect("connect to redis");
    Hub::builder().store(store).separator(Separator::Lf).build()
}

async fn publish(hub: &Hub, topic: &str, data: impl std::fmt::Display) -> EventId {
    hub.publish(topic, ServerSentEvent::new().data(data))
        .await
        .expect("publish")
}

/// The next frame of `resume`, as text, within five seconds (`None`: the stream ended).
async fn next(resume: &mut Resume) -> Option<String> {
    let payload = tokio::time::timeout(Duration::from_secs(5), resume.next())
        .await
        .expect("an event within five seconds")?;
    Some(String::from_utf8(payload.encode(Separator::Lf).to_vec()).unwrap())
}

async fn assert_quiet(resume: &mut Resume) {
    let more = tokio::time::timeout(Duration::from_millis(300), resume.next()).await;
    assert!(more.is_err(), "unexpected {more:?}");
}

fn frame(id: EventId, data: impl std::fmt::Display) -> String {
    format!("id: {id}\ndata: {data}\n\n")
}

/// A client: follows `topics` on `hub` from `since` until it has `count` events, resuming
/// from its last id whenever its stream ends (as a browser does); the numbers it received.
/// A reset is a failure here (these tests keep enough history).
async fn client(hub: Hub, topics: Vec<&'static str>, since: EventId, count: usize) -> Vec<u64> {
    let mut last = since;
    let mut seen = Vec::new();
    while seen.len() < count {
        let mut resume = hub.resume(topics.clone(), LastEventId::After(last)).await;
        assert_eq!(resume.gap(), None, "no gap within the history");
        while let Some(got) = next(&mut resume).await {
            assert!(!got.contains("event: reset"), "{got}");
            let id: EventId = got.lines().next().unwrap()[4..].parse().unwrap();
            seen.push(id.seq());
            last = id;
            if seen.len() == count {
                break;
            }
        }
    }
    seen
}

/// Waits until `hub`'s tail loop feeds `resume`'s topics: publishes a marker to `topic` and
/// reads up to it (the tail loop reads a topic from when its first subscriber joined).
async fn settle(hub: &Hub, resume: &mut Resume, topic: &str) -> EventId {
    let marker = publish(hub, topic, "marker").await;
    loop {
        let got = next(resume).await.expect("the marker");
        if got.contains("marker") {
            return marker;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue12_item7_replay_then_live_across_two_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, 100).await, node(&redis, 100).await);
    let mut ids = Vec::new();
    for i in 1..=15 {
        // Published on either node: one sequence.
        let on = if i % 2 == 0 { &a } else { &b };
        ids.push(publish(on, "t", i).await);
    }
    assert!(
        ids.windows(2)
            .all(|w| w[1].seq() == w[0].seq() + 1 && w[1].epoch() == w[0].epoch())
    );
    // Resume on B from the 5th id: exactly 6..=15, then live 16 published on A.
    let mut resume = b.resume(["t"], LastEventId::After(ids[4])).await;
    assert_eq!(resume.gap(), None);
    for i in 6..=15 {
        assert_eq!(next(&mut resume).await.unwrap(), frame(ids[i - 1], i));
    }
    let live = publish(&a, "t", 16).await;
    assert_eq!(next(&mut resume).await.unwrap(), frame(live, 16));
    assert_quiet(&mut resume).await;
    // A cursor at the head replays nothing.
    let mut at_head = a.resume(["t"], LastEventId::After(live)).await;
    assert_quiet(&mut at_head).await;
    assert_eq!(a.head().await.unwrap(), live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_receives_every_event_in_order_across_topics() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = [
        node(&redis, 1000).await,
        node(&redis, 1000).await,
        node(&redis, 1000).await,
    ];
    let mut both = Vec::new();
    for hub in &nodes {
        both.push(hub.resume(["x", "y"], LastEventId::None).await);
    }
    let mut start = Vec::new();
    for (hub, resume) in nodes.iter().zip(&mut both) {
        start.push(settle(hub, resume, "x").await);
    }
    let after_markers = start.iter().map(EventId::seq).max().unwrap();
    // Three publishers at once, one per node, on two topics.
    let publishers = nodes.iter().enumerate().map(|(n, hub)| {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..100 {
                let topic = if (i + n) % 2 == 0 { "x" } else { "y" };
                ids.push(publish(&hub, topic, format!("{n}-{i}")).await.seq());
            }
            ids
        })
    });
    let mut published: Vec<u64> = Vec::new();
    for publisher in publishers {
        published.extend(publisher.await.unwrap());
    }
    published.sort_unstable();
    for resume in &mut both {
        let mut seen = Vec::new();
        while seen.len() < published.len() {
            let got = next(resume).await.expect("every event");
            let id = got.lines().next().unwrap().strip_prefix("id: ").unwrap();
            let seq = id.parse::<EventId>().unwrap().seq();
            if seq > after_markers {
                seen.push(seq);
            }
        }
        // Exactly the published numbers, in order, each once.
        assert_eq!(seen, published);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_trimmed_past_the_cursor_is_one_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let hub = node(&redis, 10).await;
    let mut ids = Vec::new();
    for i in 1..=1000 {
        ids.push(publish(&hub, "t", i).await);
    }
    let mut resume = hub.resume(["t"], LastEventId::After(ids[4])).await;
    assert_eq!(resume.gap(), Some(GapReason::Trimmed));
    let reset = next(&mut resume).await.unwrap();
    assert_eq!(
        reset,
        format!("id: {}\nevent: reset\ndata: trimmed\n\n", ids[999])
    );
    let live = publish(&hub, "t", "live").await;
    assert_eq!(next(&mut resume).await.unwrap(), frame(live, "live"));
    // A recent cursor is still within what Redis kept.
    let mut recent = hub.resume(["t"], LastEventId::After(ids[997])).await;
    assert_eq!(recent.gap(), None);
    assert_eq!(next(&mut recent).await.unwrap(), frame(ids[998], 999));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_epochs_ahead_and_invalid_cursors_are_resets() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let hub = node(&redis, 100).await;
    let head = publish(&hub, "t", 1).await;
    let other = EventId::new("Zzzzzzzz".parse().unwrap(), 1);
    let ahead = EventId::new(head.epoch(), head.seq() + 5);
    for (since, reason) in [
        (LastEventId::After(other), GapReason::OtherEpoch),
        (LastEventId::After(ahead), GapReason::Ahead),
        (LastEventId::Invalid, GapReason::Invalid),
    ] {
        let mut resume = hub.resume(["t"], since).await;
        assert_eq!(resume.gap(), Some(reason));
        let reset = next(&mut resume).await.unwrap();
        assert_eq!(
            reset,
            format!("id: {head}\nevent: reset\ndata: {reason}\n\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_is_a_new_epoch_ending_live_streams_and_a_reset_on_resume() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, 100).await, node(&redis, 100).await);
    let mut live = b.resume(["t"], LastEventId::None).await;
    let last = settle(&a, &mut live, "t").await;
    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    // The tail loop sees the new history and ends the stream (cleanly), within its block.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while live.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "a stream of the old history went on");
    let new = publish(&a, "t", "new").await;
    assert_ne!(new.epoch(), last.epoch());
    assert_eq!(new.seq(), 1);
    // The client resumes with its last id: exactly one reset, then live events.
    let mut resume = b.resume(["t"], LastEventId::After(last)).await;
    assert_eq!(resume.gap(), Some(GapReason::OtherEpoch));
    assert_eq!(
        next(&mut resume).await.unwrap(),
        format!("id: {new}\nevent: reset\ndata: other-epoch\n\n")
    );
    let after = publish(&a, "t", "after").await;
    assert_eq!(next(&mut resume).await.unwrap(), frame(after, "after"));
    assert_quiet(&mut resume).await;
}

/// The client ids of the tail connections.
fn tails(redis: &RedisServer) -> Vec<String> {
    redis.client_ids(RedisStore::TAIL_CONNECTION_NAME)
}

/// `CLIENT KILL`s every tail connection; how many there were.
fn kill_tails(redis: &RedisServer) -> usize {
    let ids = tails(redis);
    for id in &ids {
        assert_eq!(redis.cli(&["CLIENT", "KILL", "ID", id.as_str()]), "1");
    }
    ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tail_connection_loses_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, 10_000).await, node(&redis, 10_000).await);
    let start = publish(&a, "t", "start").await;
    let reader = tokio::spawn(client(b.clone(), vec!["t"], start, 300));
    let publisher = {
        let a = a.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..300 {
                ids.push(publish(&a, "t", i).await.seq());
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            ids
        })
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        // Each time, once both nodes' tail loops are back.
        let killed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if tails(&redis).len() == 2 {
                    return kill_tails(&redis);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the tail loops reconnect");
        assert_eq!(killed, 2);
    }
    let published = publisher.await.unwrap();
    assert_eq!(reader.await.unwrap(), published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_while_redis_is_down_is_a_typed_error_and_the_tail_comes_back() {
    let Some(mut redis) =
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    let hub = node(&redis, 100).await;
    let mut live = hub.resume(["t"], LastEventId::None).await;
    let before = settle(&hub, &mut live, "t").await;
    redis.shutdown();
    let failed: Result<EventId, StoreError> = tokio::time::timeout(
        Duration::from_secs(10),
        hub.publish("t", ServerSentEvent::new().data("x")),
    )
    .await
    .expect("a publish fails in time, not hangs");
    let error = failed.expect_err("Redis is down");
    assert!(
        error.to_string().starts_with("event store failed"),
        "{error}"
    );
    redis.start_again();
    // The same history (AOF): the stream goes on with the next number, nothing lost.
    let after = loop {
        match hub.publish("t", ServerSentEvent::new().data("back")).await {
            Ok(id) => break id,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(after.epoch(), before.epoch());
    assert_eq!(next(&mut live).await.unwrap(), frame(after, "back"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_topic_is_a_gap_not_an_empty_replay() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let hub = node_with(
        &redis,
        RedisStore::builder(redis.url()).ttl(Duration::from_millis(200)),
    )
    .await;
    let first = publish(&hub, "old", 1).await;
    let cursor = EventId::new(first.epoch(), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(redis.cli(&["EXISTS", "sse:{test}:t:old"]), "0");
    // Expired entirely: a cursor before its event is a gap, whether or not the topic is
    // published to again (which also makes the hub forget it once it is the oldest).
    let resume = hub.resume(["old"], LastEventId::After(cursor)).await;
    assert_eq!(resume.gap(), Some(GapReason::Trimmed));
    for topic in ["other", "old"] {
        publish(&hub, topic, 2).await;
    }
    let resume = hub.resume(["old"], LastEventId::After(cursor)).await;
    assert_eq!(resume.gap(), Some(GapReason::Trimmed));
    // From its last event on, it is complete.
    let mut resume = hub.resume(["old"], LastEventId::After(first)).await;
    assert_eq!(resume.gap(), None);
    assert!(next(&mut resume).await.unwrap().ends_with("data: 2\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_joining_a_busy_topic_on_another_node_misses_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, 100_000).await, node(&redis, 100_000).await);
    let publisher = {
        let a = a.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..2000 {
                let topic = if i % 3 == 0 { "p" } else { "q" };
                ids.push((topic, publish(&a, topic, i).await.seq()));
            }
            ids
        })
    };
    // Subscribers join mid-stream at staggered moments, each from the head it knows; each
    // needs exactly the events of its topics above that (counted once the publisher is done).
    let mut joins = Vec::new();
    let (tx, rx) = tokio::sync::watch::channel(None::<Vec<(&'static str, u64)>>);
    for k in 0..8u64 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let since = b.head().await.unwrap();
        let topics: Vec<&'static str> = match k % 3 {
            0 => vec!["p"],
            1 => vec!["q"],
            _ => vec!["p", "q"],
        };
        let (hub, mut rx) = (b.clone(), rx.clone());
        joins.push(tokio::spawn(async move {
            // Follows from the start, so that it reads while the publisher runs; learns
            // how many to expect at the end.
            let early = client(hub.clone(), topics.clone(), since, 1).await;
            let published = rx.wait_for(Option::is_some).await.unwrap().clone().unwrap();
            let expected: Vec<u64> = published
                .iter()
                .filter(|(topic, seq)| *seq > since.seq() && topics.contains(topic))
                .map(|(_, seq)| *seq)
                .collect();
            let last = EventId::new(since.epoch(), early[0]);
            let mut seen = early;
            seen.extend(client(hub, topics.clone(), last, expected.len() - 1).await);
            assert_eq!(seen, expected, "topics {topics:?} from {since}");
        }));
    }
    let published = publisher.await.unwrap();
    tx.send(Some(published)).unwrap();
    for join in joins {
        join.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_without_persistence_is_a_new_epoch_never_a_wrong_replay() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let hub = node(&redis, 100).await;
    let mut live = hub.resume(["t"], LastEventId::None).await;
    let last = settle(&hub, &mut live, "t").await;
    redis.kill();
    redis.start_again();
    // Its numbers start again from 1: an old cursor must not be read as a position in them.
    let mut fresh = Vec::new();
    for i in 0..3 {
        let id = loop {
            match hub.publish("t", ServerSentEvent::new().data(i)).await {
                Ok(id) => break id,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        fresh.push(id);
    }
    assert_ne!(fresh[0].epoch(), last.epoch());
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while live.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream of the lost history ended");
    let mut resume = hub.resume(["t"], LastEventId::After(last)).await;
    assert_eq!(resume.gap(), Some(GapReason::OtherEpoch));
    assert!(next(&mut resume).await.unwrap().contains("event: reset"));
}
