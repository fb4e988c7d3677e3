//! `EventSourceResponse::coalesce`: at most one frame per window. Events that come faster go out
//! together, none waits longer than the window, rarer events are not delayed, and a full frame
//! or the end of the stream goes out at once. On tokio's paused clock.

mod common;

use std::time::Duration;

use common::{WITHIN, reader};
use futures_util::stream::{self, StreamExt};
use sse_runtime::EventSourceResponse;
use tokio::time::Instant;

/// `events`, each `gap` after the one before.
fn spaced(events: u32, gap: Duration) -> impl futures_core::Stream<Item = u32> + Send {
    stream::iter(1..=events).then(move |i| async move {
        if i > 1 {
            tokio::time::sleep(gap).await;
        }
        i
    })
}

/// The frames of `body` until `count` came, each with the milliseconds since `started`.
async fn frames(
    body: &mut sse_runtime::testing::BodyReader,
    count: usize,
    started: Instant,
) -> Vec<(u128, String)> {
    let mut frames = Vec::new();
    while frames.len() < count {
        let frame = body.frame(WITHIN).await.unwrap().unwrap();
        let text = String::from_utf8(frame.to_vec())
            .unwrap()
            .replace("\r\n\r\n", " ");
        frames.push((started.elapsed().as_millis(), text));
    }
    frames
}

/// Events `data: 1` to `data: 5` at 0, 2, 4, 6 and 8 ms in a 5 ms window: the first goes at
/// once, the others wait for the window since the frame before to end, none longer than it.
async fn five_events_two_ms_apart_go_out_once_per_window<T>(event: fn(u32) -> T)
where
    T: sse_runtime::IntoEvent + Send + 'static,
{
    let source = spaced(5, Duration::from_millis(2))
        .map(event)
        .chain(stream::pending());
    let response = EventSourceResponse::new(source).coalesce(Duration::from_millis(5));
    let mut body = reader(response);
    let started = Instant::now();
    assert_eq!(
        frames(&mut body, 3, started).await,
        [
            (0, "data: 1 ".to_owned()),
            (5, "data: 2 data: 3 ".to_owned()),
            (10, "data: 4 data: 5 ".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn events_faster_than_the_window_go_out_together_once_per_window() {
    five_events_two_ms_apart_go_out_once_per_window(|i| i).await;
}

#[tokio::test(start_paused = true)]
async fn events_rarer_than_the_window_go_out_at_once() {
    let source = spaced(3, Duration::from_millis(20)).chain(stream::pending());
    let response = EventSourceResponse::new(source).coalesce(Duration::from_millis(5));
    let mut body = reader(response);
    let started = Instant::now();
    assert_eq!(
        frames(&mut body, 3, started).await,
        [
            (0, "data: 1 ".to_owned()),
            (20, "data: 2 ".to_owned()),
            (40, "data: 3 ".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_stream_sends_what_is_held_at_once() {
    let source = spaced(3, Duration::from_millis(1));
    let response = EventSourceResponse::new(source).coalesce(Duration::from_secs(60));
    let mut body = reader(response);
    let started = Instant::now();
    assert_eq!(
        frames(&mut body, 1, started).await,
        [(0, "data: 1 ".to_owned())]
    );
    // Held by the 60 s window, then sent when the stream ends at 2 ms.
    assert_eq!(
        frames(&mut body, 1, started).await,
        [(2, "data: 2 data: 3 ".to_owned())]
    );
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_full_frame_goes_out_at_once() {
    let event = "x".repeat(1000);
    let source = stream::iter(["first".to_owned()])
        .chain(stream::iter(std::iter::repeat_n(event, 80)))
        .chain(stream::pending());
    let response = EventSourceResponse::new(source).coalesce(Duration::from_secs(60));
    let mut body = reader(response);
    let started = Instant::now();
    // The first frame holds all that was ready at once; the second is full before its
    // window ends, so it does not wait for it.
    for _ in 0..2 {
        let frame = body.frame(WITHIN).await.unwrap().unwrap();
        assert!(frame.len() >= 32 * 1024, "{}", frame.len());
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn without_a_window_each_event_goes_out_when_the_stream_waits() {
    let source = spaced(2, Duration::from_millis(2)).chain(stream::pending());
    let mut body = reader(EventSourceResponse::new(source).coalesce(Duration::ZERO));
    assert_eq!(
        &body.frame(WITHIN).await.unwrap().unwrap()[..],
        b"data: 1\r\n\r\n"
    );
    assert_eq!(
        &body.frame(WITHIN).await.unwrap().unwrap()[..],
        b"data: 2\r\n\r\n"
    );
}

sse_runtime::sse! {
    #[sse_endpoint(coalesce = 0.01)]
    async fn ticks() {
        for i in 1..=3 {
            tokio::time::sleep(Duration::from_millis(3)).await;
            yield i;
        }
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_endpoint_option_sets_the_window() {
    use axum::routing::get;
    use tower::ServiceExt;

    let app = axum::Router::new().route("/ticks", get(ticks));
    let request = http::Request::get("/ticks")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let mut body = sse_runtime::testing::BodyReader::new(response.into_body());
    let started = Instant::now();
    // Events at 3, 6 and 9 ms: the first at once, the others when its window ends.
    assert_eq!(
        frames(&mut body, 2, started).await,
        [
            (3, "data: 1 ".to_owned()),
            (13, "data: 2 data: 3 ".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn shared_events_are_held_and_merged_like_any_other() {
    // Raw bytes (a broadcast's encoded events) that could go out uncopied alone still wait for
    // the window and share its frame.
    five_events_two_ms_apart_go_out_once_per_window(|i| {
        bytes::Bytes::from(format!("data: {i}\r\n\r\n"))
    })
    .await;
}
