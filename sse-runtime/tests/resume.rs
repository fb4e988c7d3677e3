//! The resumable hub in process: replay then live, the gap cases, ordering across topics,
//! lag, encode-once. (Over HTTP: tests/tests/resume.rs; the model test: resume_model.rs.)

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use sse_runtime::resume::{EventId, GapPolicy, GapReason, Hub, MemoryStore, Resume};
use sse_runtime::{EventSourceResponse, LastEventId, Separator, ServerSentEvent};

fn hub(history: usize) -> Hub {
    Hub::builder()
        .store(MemoryStore::new(history))
        .separator(Separator::Lf)
        .build()
}

async fn publish(hub: &Hub, topic: &str, data: impl std::fmt::Display) -> EventId {
    hub.publish(topic, ServerSentEvent::new().data(data))
        .await
        .unwrap()
}

/// The next frame of `resume`, as text, within a second (`None`: the stream ended).
async fn next(resume: &mut Resume) -> Option<String> {
    let payload = tokio::time::timeout(Duration::from_secs(1), resume.next())
        .await
        .expect("an event within a second")?;
    Some(String::from_utf8(payload.encode(Separator::Lf).to_vec()).unwrap())
}

/// Nothing more arrives for a little while.
async fn assert_quiet(resume: &mut Resume) {
    let more = tokio::time::timeout(Duration::from_millis(50), resume.next()).await;
    assert!(more.is_err(), "unexpected {more:?}");
}

fn frame(id: EventId, data: impl std::fmt::Display) -> String {
    format!("id: {id}\ndata: {data}\n\n")
}

#[tokio::test]
async fn a_resume_replays_what_was_missed_then_goes_live() {
    let hub = hub(100);
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(publish(&hub, "t", i).await);
    }
    for i in 11..=15 {
        ids.push(publish(&hub, "t", i).await);
    }
    let mut resume = hub.resume(["t"], LastEventId::After(ids[4])).await;
    assert_eq!(resume.gap(), None);
    for i in 6..=15 {
        assert_eq!(next(&mut resume).await.unwrap(), frame(ids[i - 1], i));
    }
    let live = publish(&hub, "t", 16).await;
    assert_eq!(next(&mut resume).await.unwrap(), frame(live, 16));
    assert_quiet(&mut resume).await;
}

#[tokio::test]
async fn a_cursor_at_the_head_replays_nothing() {
    let hub = hub(100);
    publish(&hub, "t", 1).await;
    let head = publish(&hub, "t", 2).await;
    assert_eq!(hub.head().await.unwrap(), head);
    let mut resume = hub.resume(["t"], LastEventId::After(head)).await;
    assert_quiet(&mut resume).await;
    let live = publish(&hub, "t", 3).await;
    assert_eq!(next(&mut resume).await.unwrap(), frame(live, 3));
}

#[tokio::test]
async fn earliest_replays_everything_retained_and_no_cursor_only_live_events() {
    let hub = hub(3);
    let ids: Vec<_> = futures_util::future::join_all((1..=5).map(|i| {
        let hub = hub.clone();
        async move { publish(&hub, "t", i).await }
    }))
    .await;
    let mut earliest = hub.resume(["t"], LastEventId::Earliest).await;
    let mut fresh = hub.resume(["t"], LastEventId::None).await;
    for i in 3..=5 {
        assert_eq!(next(&mut earliest).await.unwrap(), frame(ids[i - 1], i));
    }
    assert_quiet(&mut fresh).await;
    let live = publish(&hub, "t", 6).await;
    assert_eq!(next(&mut earliest).await.unwrap(), frame(live, 6));
    assert_eq!(next(&mut fresh).await.unwrap(), frame(live, 6));
}

#[tokio::test]
async fn the_publishers_id_is_replaced_by_the_hubs() {
    let hub = hub(10);
    let mut resume = hub.resume(["t"], LastEventId::None).await;
    let id = hub
        .publish("t", ServerSentEvent::new().id("mine").data("x"))
        .await
        .unwrap();
    assert_eq!(id.seq(), 1);
    assert_eq!(next(&mut resume).await.unwrap(), frame(id, "x"));
}

/// Exactly one reset (its id the head, its data the reason), then live events.
async fn assert_one_reset_then_live(hub: &Hub, since: LastEventId, reason: GapReason) {
    let mut resume = hub.resume(["t"], since).await;
    assert_eq!(resume.gap(), Some(reason));
    let head = hub.head().await.unwrap();
    assert_eq!(
        next(&mut resume).await.unwrap(),
        format!("id: {head}\nevent: reset\ndata: {reason}\n\n")
    );
    assert_quiet(&mut resume).await;
    let live = publish(hub, "t", "live").await;
    assert_eq!(next(&mut resume).await.unwrap(), frame(live, "live"));
    assert_quiet(&mut resume).await;
}

#[tokio::test]
async fn gap_too_old_is_one_reset() {
    let hub = hub(100);
    let mut ids = Vec::new();
    for i in 1..=1000 {
        ids.push(publish(&hub, "t", i).await);
    }
    assert_one_reset_then_live(&hub, ids[4].into(), GapReason::Trimmed).await;
}

#[tokio::test]
async fn gap_other_epoch_is_one_reset() {
    let before_restart = hub(100);
    let hub = hub(100);
    publish(&hub, "t", 1).await;
    let stale = publish(&before_restart, "t", 1).await;
    assert_ne!(stale.epoch(), hub.head().await.unwrap().epoch());
    assert_one_reset_then_live(&hub, stale.into(), GapReason::OtherEpoch).await;
}

#[tokio::test]
async fn gap_ahead_of_the_head_is_one_reset() {
    let hub = hub(100);
    let head = publish(&hub, "t", 1).await;
    let ahead = EventId::new(head.epoch(), head.seq() + 5);
    assert_one_reset_then_live(&hub, ahead.into(), GapReason::Ahead).await;
}

#[tokio::test]
async fn gap_invalid_cursors_are_one_reset() {
    let hub = hub(100);
    publish(&hub, "t", 1).await;
    for bad in [
        &b""[..],
        b"garbage",
        b"ab:1\r\n",
        b"\xff\xfe:1",
        &[b'a'; 65][..],
    ] {
        let since = LastEventId::parse(bad);
        assert_eq!(since, LastEventId::Invalid);
        assert_one_reset_then_live(&hub, since, GapReason::Invalid).await;
    }
}

#[tokio::test]
async fn gap_more_than_max_replay_is_one_reset() {
    let hub = Hub::builder()
        .store(MemoryStore::new(1000))
        .separator(Separator::Lf)
        .max_replay(10)
        .build();
    let first = publish(&hub, "t", 0).await;
    for i in 1..=11 {
        publish(&hub, "t", i).await;
    }
    assert_one_reset_then_live(&hub, first.into(), GapReason::TooMany).await;
    // Ten behind is within the bound.
    let mut resume = hub
        .resume(["t"], EventId::new(first.epoch(), first.seq() + 2).into())
        .await;
    assert_eq!(resume.gap(), None);
    for _ in 0..10 {
        assert!(next(&mut resume).await.unwrap().contains("data: "));
    }
}

#[tokio::test]
async fn from_oldest_replays_what_is_retained() {
    let hub = hub(3);
    let mut ids = Vec::new();
    for i in 1..=6 {
        ids.push(publish(&hub, "t", i).await);
    }
    let mut resume = hub
        .resume(["t"], ids[0].into())
        .gap_policy(GapPolicy::FromOldest)
        .await;
    assert_eq!(resume.gap(), Some(GapReason::Trimmed));
    for i in 4..=6 {
        assert_eq!(next(&mut resume).await.unwrap(), frame(ids[i - 1], i));
    }
    assert_quiet(&mut resume).await;
}

#[tokio::test]
async fn from_oldest_beyond_max_replay_sends_a_chunk_and_ends() {
    let hub = Hub::builder()
        .store(MemoryStore::new(100))
        .separator(Separator::Lf)
        .gap_policy(GapPolicy::FromOldest)
        .max_replay(4)
        .build();
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(publish(&hub, "t", i).await);
    }
    let mut resume = hub.resume(["t"], ids[0].into()).await;
    for i in 2..=5 {
        assert_eq!(next(&mut resume).await.unwrap(), frame(ids[i - 1], i));
    }
    assert_eq!(next(&mut resume).await, None);
    // The client comes back from its last id for the next chunk.
    let mut again = hub.resume(["t"], ids[4].into()).await;
    assert_eq!(next(&mut again).await.unwrap(), frame(ids[5], 6));
}

#[tokio::test]
async fn events_of_several_topics_come_in_number_order_once_each() {
    let hub = hub(1000);
    let mut both = hub.resume(["a", "b", "a"], LastEventId::None).await;
    let mut only_b = hub.resume(["b"], LastEventId::None).await;
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..300u32 {
                let topic = if i % 3 == 0 { "b" } else { "a" };
                ids.push((topic, publish(&hub, topic, i).await));
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 300 {
        seen.push(next(&mut both).await.unwrap());
    }
    let ids = publisher.await.unwrap();
    let expected: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, (_, id))| frame(*id, i))
        .collect();
    assert_eq!(seen, expected);
    let b: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(_, (topic, _))| *topic == "b")
        .map(|(i, (_, id))| frame(*id, i))
        .collect();
    for expected in b {
        assert_eq!(next(&mut only_b).await.unwrap(), expected);
    }
    // A resume across both topics from the middle replays both, merged in order.
    let mut replay = hub.resume(["b", "a"], ids[149].1.into()).await;
    for (i, (_, id)) in ids.iter().enumerate().skip(150) {
        assert_eq!(next(&mut replay).await.unwrap(), frame(*id, i));
    }
}

#[tokio::test]
async fn a_lagging_subscriber_is_ended_not_skipped_and_resumes_complete() {
    let hub = Hub::builder()
        .store(MemoryStore::new(1000))
        .separator(Separator::Lf)
        .capacity(4)
        .build();
    let mut slow = hub.resume(["t"], LastEventId::None).await;
    let first = publish(&hub, "t", 1).await;
    assert_eq!(next(&mut slow).await.unwrap(), frame(first, 1));
    let mut ids = vec![first];
    for i in 2..=20 {
        ids.push(publish(&hub, "t", i).await);
    }
    // Nineteen behind with room for four: the stream ends rather than skipping.
    assert_eq!(next(&mut slow).await, None);
    let mut resumed = hub.resume(["t"], first.into()).await;
    for i in 2..=20 {
        assert_eq!(next(&mut resumed).await.unwrap(), frame(ids[i - 1], i));
    }
}

#[tokio::test]
async fn a_long_replay_is_paged_and_ends_if_trimmed_under_it() {
    // 1,000 retained; the replay reads 256 at a time.
    let hub = hub(1000);
    let mut ids = Vec::new();
    for i in 1..=1000 {
        ids.push(publish(&hub, "t", i).await);
    }
    let mut resume = hub.resume(["t"], LastEventId::Earliest).await;
    for i in 1..=300 {
        assert_eq!(next(&mut resume).await.unwrap(), frame(ids[i - 1], i));
    }
    // 1,000 more push everything it has yet to replay out of the history.
    for i in 1001..=2000 {
        publish(&hub, "t", i).await;
    }
    let mut rest = 0;
    while let Some(frame) = next(&mut resume).await {
        assert!(frame.contains("data: "));
        rest += 1;
    }
    assert!(rest < 700, "ended early, after {rest} more");
    // The reconnect learns of the gap.
    let last = ids[300 + rest - 1];
    let resumed = hub.resume(["t"], last.into()).await;
    assert_eq!(resumed.gap(), Some(GapReason::Trimmed));
}

#[tokio::test(start_paused = true)]
async fn events_older_than_max_age_are_not_replayed() {
    let hub = Hub::builder()
        .store(MemoryStore::new(100).max_age(Duration::from_secs(60)))
        .separator(Separator::Lf)
        .build();
    let old = publish(&hub, "t", "old").await;
    tokio::time::advance(Duration::from_secs(61)).await;
    let recent = publish(&hub, "t", "recent").await;
    let mut earliest = hub.resume(["t"], LastEventId::Earliest).await;
    assert_eq!(next(&mut earliest).await.unwrap(), frame(recent, "recent"));
    let before_old = EventId::new(old.epoch(), 0);
    let resume = hub.resume(["t"], before_old.into()).await;
    assert_eq!(resume.gap(), Some(GapReason::Trimmed));
    // Missing nothing is no gap, even when what it saw last expired.
    let resume = hub.resume(["t"], old.into()).await;
    assert_eq!(resume.gap(), None);
}

#[tokio::test]
async fn a_topic_leaves_the_hub_with_its_last_subscriber() {
    let hub = hub(10);
    let a = hub.resume(["t"], LastEventId::None).await;
    let b = hub.resume(["t", "u"], LastEventId::None).await;
    assert_eq!(
        (hub.subscriber_count("t"), hub.subscriber_count("u")),
        (2, 1)
    );
    drop(a);
    assert_eq!(hub.subscriber_count("t"), 1);
    drop(b);
    assert_eq!(
        (hub.subscriber_count("t"), hub.subscriber_count("u")),
        (0, 0)
    );
    assert!(format!("{hub:?}").contains("topics: 0"), "{hub:?}");
}

/// SPEC 71 for a replay: the events a replay has ready go out together, in few body frames.
#[tokio::test]
async fn a_replay_coalesces_into_few_frames() {
    let hub = hub(1000);
    let mut ids = Vec::new();
    for i in 1..=500 {
        ids.push(publish(&hub, "t", i).await);
    }
    let resume = hub.resume(["t"], LastEventId::Earliest).await;
    let mut body = common::reader(EventSourceResponse::new(resume).separator(Separator::Lf));
    let expected: String = ids.iter().zip(1..).map(|(id, i)| frame(*id, i)).collect();
    let mut seen = Vec::new();
    let mut frames = 0;
    while seen.len() < expected.len() {
        seen.extend_from_slice(&body.frame(common::WITHIN).await.unwrap().unwrap());
        frames += 1;
    }
    assert_eq!(String::from_utf8(seen).unwrap(), expected);
    // About 12 KiB of events: one or two frames (a page boundary may split them), not 500.
    assert!(frames <= 3, "{frames} frames");
}
