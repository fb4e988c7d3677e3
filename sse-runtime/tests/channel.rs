//! Push-based sending: SPEC section K (114-117) and example 05.

mod common;

use std::time::Duration;

use common::{Flag, Log, WITHIN, reader, settle};
use sse_runtime::channel::{SendError, TrySendError};
use sse_runtime::{EventSourceResponse, ServerSentEvent};

#[tokio::test(start_paused = true)]
async fn spec_117_dropping_every_sender_ends_the_stream_cleanly() {
    let (tx, response) = EventSourceResponse::channel(10);
    let second = tx.clone();
    tokio::spawn(async move {
        for i in 1..=3 {
            tx.send(ServerSentEvent::new().id(format!("prod-{i}")).data(i))
                .await
                .unwrap();
        }
    });
    tokio::spawn(async move { second.send("from the clone").await.unwrap() });
    let all = reader(response).read_to_end(WITHIN).await.unwrap();
    let text = String::from_utf8(all.to_vec()).unwrap();
    assert!(text.contains(
        "id: prod-1\r\ndata: 1\r\n\r\nid: prod-2\r\ndata: 2\r\n\r\nid: prod-3\r\ndata: 3\r\n\r\n"
    ));
    assert!(text.contains("data: from the clone\r\n\r\n"));
}

#[tokio::test(start_paused = true)]
async fn sending_after_the_client_left_fails_so_the_producer_can_stop() {
    let (tx, response) = EventSourceResponse::channel(1);
    let mut body = reader(response);
    tx.send("one").await.unwrap();
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: one\r\n\r\n"[..]
    );
    assert!(!tx.is_closed());
    drop(body);
    assert!(tx.is_closed());
    assert_eq!(tx.send("two").await, Err(SendError::default_for_test()));
    assert_eq!(tx.try_send("three"), Err(TrySendError::Closed));
    tokio::time::timeout(WITHIN, tx.closed()).await.unwrap();
}

trait DefaultForTest {
    fn default_for_test() -> Self;
}

impl DefaultForTest for SendError {
    fn default_for_test() -> Self {
        // SendError has no public constructor; get one the way users do.
        let (tx, response) = EventSourceResponse::channel(1);
        drop(response);
        futures_util::FutureExt::now_or_never(tx.send(0))
            .unwrap()
            .unwrap_err()
    }
}

#[tokio::test(start_paused = true)]
async fn backpressure_a_full_channel_makes_send_wait() {
    let (tx, response) = EventSourceResponse::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(TrySendError::Full));
    let blocked = tokio::time::timeout(Duration::from_secs(5), tx.send(3)).await;
    assert!(blocked.is_err(), "send must wait while the channel is full");
    let mut body = reader(response);
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\ndata: 2\r\n\r\n"[..]
    );
    tx.send(3).await.unwrap();
    drop(tx);
    assert_eq!(
        body.read_to_end(WITHIN).await.unwrap(),
        &b"data: 3\r\n\r\n"[..]
    );
}

#[tokio::test(start_paused = true)]
async fn spec_114_115_a_producer_runs_with_the_stream_and_is_dropped_when_it_ends() {
    let log = Log::default();
    let guard_log = log.clone();
    let response = EventSourceResponse::with_producer(2, move |tx| async move {
        let _guard = guard_log.on_drop("producer_dropped");
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if tx.send(i).await.is_err() {
                return;
            }
        }
    });
    let mut body = reader(response);
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 0\r\n\r\n"[..]
    );
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\n"[..]
    );
    assert!(log.entries().is_empty());
    drop(body);
    assert_eq!(log.entries(), ["producer_dropped"]);
}

#[tokio::test(start_paused = true)]
async fn spec_114_a_finished_producer_ends_the_stream_once_its_sender_is_gone() {
    let response = EventSourceResponse::with_producer(10, |tx| async move {
        for i in 1..=3 {
            tx.send(i).await.unwrap();
        }
        tx.send(ServerSentEvent::new().event("producer_complete"))
            .await
            .unwrap();
    });
    let all = reader(response).read_to_end(WITHIN).await.unwrap();
    assert_eq!(
        &all[..],
        b"data: 1\r\n\r\ndata: 2\r\n\r\ndata: 3\r\n\r\nevent: producer_complete\r\n\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn spec_58_building_a_response_starts_nothing() {
    let started = Flag::default();
    let flag = started.clone();
    let response = EventSourceResponse::with_producer(1, move |tx| async move {
        flag.set();
        let _ = tx.send(1).await;
    });
    settle().await;
    assert!(!started.is_set());
    let mut body = reader(response);
    settle().await;
    assert!(!started.is_set(), "nothing runs until the body is polled");
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\n"[..]
    );
    assert!(started.is_set());
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}
