//! Encode-once fan-out: bounded buffering and the documented policies for lagging subscribers.

mod common;

use common::{WITHIN, reader};
use futures_util::StreamExt;
use sse_runtime::broadcast::{LagPolicy, Subscription};
use sse_runtime::{Broadcast, EventSourceResponse, Separator, ServerSentEvent};

async fn next_bytes(subscription: &mut Subscription) -> Option<Vec<u8>> {
    let payload = tokio::time::timeout(WITHIN, subscription.next())
        .await
        .unwrap()?;
    Some(payload.encode(Separator::CrLf).to_vec())
}

#[tokio::test]
async fn events_reach_every_subscriber_with_the_broadcast_separator() {
    let hub = Broadcast::builder(8)
        .separator(Separator::Lf)
        .lag_policy(LagPolicy::Notify)
        .build();
    let mut a = hub.subscribe();
    let mut b = hub.subscribe();
    assert_eq!(hub.subscriber_count(), 2);
    assert_eq!(
        hub.send(ServerSentEvent::new().event("m").data("x\ny"))
            .unwrap(),
        2
    );
    assert_eq!(hub.send(7).unwrap(), 2);
    for subscriber in [&mut a, &mut b] {
        assert_eq!(
            next_bytes(subscriber).await.unwrap(),
            b"event: m\ndata: x\ndata: y\n\n"
        );
        assert_eq!(next_bytes(subscriber).await.unwrap(), b"data: 7\n\n");
    }
    drop(a);
    assert_eq!(hub.subscriber_count(), 1);
}

#[tokio::test]
async fn sending_without_subscribers_is_not_an_error() {
    let hub = Broadcast::new(1);
    assert_eq!(hub.send("nobody listens").unwrap(), 0);
}

#[tokio::test]
async fn a_value_that_cannot_be_encoded_is_refused() {
    let hub = Broadcast::new(1);
    let _subscriber = hub.subscribe();
    assert!(hub.send(sse_runtime::Json(f64::NAN)).is_err());
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_how_many_events_it_missed() {
    let hub = Broadcast::new(2);
    let mut slow = hub.subscribe();
    for i in 0..5 {
        hub.send(i).unwrap();
    }
    assert_eq!(
        next_bytes(&mut slow).await.unwrap(),
        b"event: lagged\r\ndata: 3\r\n\r\n"
    );
    assert_eq!(next_bytes(&mut slow).await.unwrap(), b"data: 3\r\n\r\n");
    assert_eq!(next_bytes(&mut slow).await.unwrap(), b"data: 4\r\n\r\n");
}

#[tokio::test]
async fn the_skip_policy_drops_missed_events_silently() {
    let hub = Broadcast::builder(2)
        .separator(Separator::CrLf)
        .lag_policy(LagPolicy::Skip)
        .build();
    let mut slow = hub.subscribe();
    for i in 0..5 {
        hub.send(i).unwrap();
    }
    assert_eq!(next_bytes(&mut slow).await.unwrap(), b"data: 3\r\n\r\n");
}

#[tokio::test]
async fn the_disconnect_policy_ends_a_lagging_subscription_cleanly() {
    let hub = Broadcast::builder(2)
        .separator(Separator::CrLf)
        .lag_policy(LagPolicy::Disconnect)
        .build();
    let slow = hub.subscribe();
    for i in 0..5 {
        hub.send(i).unwrap();
    }
    let response = EventSourceResponse::new(slow);
    assert_eq!(
        reader(response).read_to_end(WITHIN).await.unwrap(),
        &b""[..]
    );
}

#[tokio::test]
async fn a_subscription_ends_when_the_broadcast_is_dropped() {
    let hub = Broadcast::new(4);
    let subscription = hub.subscribe();
    hub.send("last").unwrap();
    drop(hub);
    let response = EventSourceResponse::new(subscription);
    assert_eq!(
        reader(response).read_to_end(WITHIN).await.unwrap(),
        &b"data: last\r\n\r\n"[..]
    );
}

/// Everything a subscriber that took nothing yet reads once the broadcast is dropped (its
/// stream then ends after the events still held for it).
async fn drain(hub: Broadcast, mut slow: Subscription) -> Vec<String> {
    drop(hub);
    let mut seen = Vec::new();
    while let Some(payload) = tokio::time::timeout(WITHIN, slow.next()).await.unwrap() {
        seen.push(String::from_utf8(payload.encode(Separator::Lf).to_vec()).unwrap());
    }
    seen
}

#[tokio::test]
async fn the_configured_capacity_is_enforced_for_capacities_1_to_17() {
    // tokio rounds its ring up to a power of two (3 holds 4, 9 holds 16); the broadcast still
    // keeps exactly `capacity` events for a subscriber, under every policy.
    for capacity in 1..=17usize {
        for sent in [
            capacity - 1,
            capacity,
            capacity + 1,
            capacity + 2,
            2 * capacity + 3,
            40,
        ] {
            for policy in [LagPolicy::Notify, LagPolicy::Skip, LagPolicy::Disconnect] {
                let hub = Broadcast::builder(capacity)
                    .separator(Separator::Lf)
                    .lag_policy(policy.clone())
                    .build();
                let slow = hub.subscribe();
                for i in 0..sent {
                    hub.send(i).unwrap();
                }
                let seen = drain(hub, slow).await;
                let kept = sent.min(capacity);
                let recent: Vec<String> = (sent - kept..sent)
                    .map(|i| format!("data: {i}\n\n"))
                    .collect();
                let expected: Vec<String> = if sent <= capacity {
                    recent
                } else {
                    match policy {
                        LagPolicy::Notify => {
                            let notice = format!("event: lagged\ndata: {}\n\n", sent - capacity);
                            std::iter::once(notice).chain(recent).collect()
                        }
                        LagPolicy::Skip => recent,
                        _ => Vec::new(),
                    }
                };
                assert_eq!(
                    seen, expected,
                    "capacity {capacity}, {sent} events sent, {policy:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_subscriber_that_keeps_within_the_capacity_never_lags() {
    for capacity in 1..=17usize {
        let hub = Broadcast::builder(capacity)
            .separator(Separator::Lf)
            .lag_policy(LagPolicy::Disconnect)
            .build();
        let mut subscriber = hub.subscribe();
        for round in 0..5 {
            for i in 0..capacity {
                hub.send(round * capacity + i).unwrap();
            }
            for i in 0..capacity {
                let payload = subscriber.next().await.expect("not lagged");
                let text = String::from_utf8(payload.encode(Separator::Lf).to_vec()).unwrap();
                assert_eq!(text, format!("data: {}\n\n", round * capacity + i));
            }
        }
        // One more than the capacity behind: now it lags, and the policy ends it.
        for i in 0..=capacity {
            hub.send(i).unwrap();
        }
        assert!(subscriber.next().await.is_none(), "capacity {capacity}");
    }
}
