//! Encode-once fan-out: bounded buffering and the documented policies for lagging subscribers.

mod common;

use common::{WITHIN, reader};
use futures_util::StreamExt;
use sse_runtime::{Broadcast, EventSourceResponse, LagPolicy, Separator, ServerSentEvent};

async fn next_bytes(subscription: &mut sse_runtime::Subscription) -> Option<Vec<u8>> {
    let payload = tokio::time::timeout(WITHIN, subscription.next())
        .await
        .unwrap()?;
    Some(payload.encode(Separator::CrLf).to_vec())
}

#[tokio::test]
async fn events_reach_every_subscriber_with_the_broadcast_separator() {
    let hub = Broadcast::with_options(8, Separator::Lf, LagPolicy::Notify);
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
    let hub = Broadcast::with_options(2, Separator::CrLf, LagPolicy::Skip);
    let mut slow = hub.subscribe();
    for i in 0..5 {
        hub.send(i).unwrap();
    }
    assert_eq!(next_bytes(&mut slow).await.unwrap(), b"data: 3\r\n\r\n");
}

#[tokio::test]
async fn the_disconnect_policy_ends_a_lagging_subscription_cleanly() {
    let hub = Broadcast::with_options(2, Separator::CrLf, LagPolicy::Disconnect);
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
