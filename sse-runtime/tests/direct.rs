//! What an `#[sse_endpoint]` body yields is written straight into the response's frame (the
//! driver lends its buffer for each poll): the bytes, the frames, the errors and the panics are
//! those of a stream polled item by item (SPEC 71, 120).

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use common::WITHIN;
use http::Request;
use sse_runtime::testing::BodyReader;
use sse_runtime::{Broadcast, EventSourceResponse, IntoEvent, Separator, ServerSentEvent, sse};
use tower::ServiceExt;

/// The address of the large raw bytes that `raw` yields, to check they are not copied.
static BIG: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();

fn big() -> Bytes {
    BIG.get_or_init(|| Bytes::from(vec![b'z'; 64 * 1024]))
        .clone()
}

sse! {
    async fn many() {
        let event = "x".repeat(1000);
        for _ in 0..200 {
            yield &event;
        }
    }

    async fn spaced() {
        for i in 1..=6 {
            if i == 4 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            yield ServerSentEvent::new().id(i).data(i);
        }
    }

    async fn exploding() {
        yield 1;
        yield 2;
        let index = std::hint::black_box(5);
        yield ["only one"][index];
    }

    async fn failing() -> Result<(), String> {
        yield "a";
        yield "b";
        Err("failed".to_owned())?;
        yield "never";
        Ok(())
    }

    async fn raw() {
        yield "small";
        yield big();
        yield "after";
    }

    /// Every borrowed or shared text type, and options, as a body yields them.
    async fn texts() {
        let owned = String::from("string ref");
        yield &owned;
        yield std::borrow::Cow::Borrowed("cow borrowed");
        yield std::borrow::Cow::<str>::Owned("cow\nowned".to_owned());
        yield Box::<str>::from("boxed");
        yield std::sync::Arc::<str>::from("arc");
        yield Some("some");
        yield None::<&str>;
        yield Some(7);
        yield Some(big());
        yield "after";
    }

    /// Every event of the hub, as a fan-out endpoint yields them.
    async fn relay(State(hub): State<Broadcast>) {
        for await event in hub.subscribe() {
            yield event;
        }
    }

    /// Every event of the hub, each followed by an event of its own.
    async fn annotated(State(hub): State<Broadcast>) {
        for await event in hub.subscribe() {
            yield event;
            yield ServerSentEvent::new().comment("seen");
        }
    }

    /// Reads another endpoint's response inside its own body, then yields what it read.
    async fn reading_another() {
        yield "before";
        let inner = get_body("/spaced").await;
        let events = sse_runtime::testing::parse_events(&inner);
        yield format!("read {} events", events.len());
    }
}

fn app() -> Router {
    Router::new()
        .route("/many", get(many))
        .route("/spaced", get(spaced))
        .route("/exploding", get(exploding))
        .route("/failing", get(failing))
        .route("/raw", get(raw))
        .route("/texts", get(texts))
        .route("/reading_another", get(reading_another))
}

/// `/relay` and `/annotated` on `hub`; the plain subscription as `/subscription`.
async fn open_on(hub: &Broadcast, path: &str) -> BodyReader {
    let app =
        Router::new()
            .route("/relay", get(relay))
            .route("/annotated", get(annotated))
            .route(
                "/subscription",
                get(|State(hub): State<Broadcast>| async move {
                    EventSourceResponse::new(hub.subscribe())
                }),
            )
            .with_state(hub.clone());
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    BodyReader::new(response.into_body())
}

/// Reads the next frame while sending `events` once the body has subscribed.
async fn frame_after(hub: &Broadcast, body: &mut BodyReader, events: &[&Bytes]) -> Bytes {
    let (frame, ()) = tokio::join!(body.frame(WITHIN), async {
        while hub.subscriber_count() == 0 {
            tokio::task::yield_now().await;
        }
        for event in events {
            hub.send_bytes((*event).clone());
        }
    });
    frame.unwrap().unwrap()
}

fn event(data: &str) -> Bytes {
    ServerSentEvent::new().data(data).encode(Separator::CrLf)
}

async fn open(path: &str) -> BodyReader {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app().oneshot(request).await.unwrap();
    BodyReader::new(response.into_body())
}

async fn get_body(path: &str) -> Vec<u8> {
    open(path).await.read_to_end(WITHIN).await.unwrap().to_vec()
}

#[tokio::test(start_paused = true)]
async fn a_body_fills_frames_of_bounded_size_with_every_byte() {
    let mut body = open("/many").await;
    let mut frames = Vec::new();
    while let Some(frame) = body.frame(WITHIN).await.unwrap() {
        assert!(
            frame
                .iter()
                .all(|&b| b == b'x' || b"data: \r\n".contains(&b))
        );
        frames.push(frame.len());
    }
    assert_eq!(frames.iter().sum::<usize>(), 200 * 1010);
    // Coalesced: about 32 KiB a frame, never more than the event that crosses the limit.
    assert!(frames.len() <= 200 * 1010 / (32 * 1024) + 1, "{frames:?}");
    assert!(
        frames.iter().all(|&len| len <= 32 * 1024 + 1010),
        "{frames:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn spec_71_a_body_sends_what_is_ready_when_it_waits() {
    let mut body = open("/spaced").await;
    let first = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(
        &first[..],
        b"id: 1\r\ndata: 1\r\n\r\nid: 2\r\ndata: 2\r\n\r\nid: 3\r\ndata: 3\r\n\r\n"
    );
    let started = tokio::time::Instant::now();
    let second = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(
        &second[..],
        b"id: 4\r\ndata: 4\r\n\r\nid: 5\r\ndata: 5\r\n\r\nid: 6\r\ndata: 6\r\n\r\n"
    );
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_panics_delivers_what_it_yielded_then_aborts() {
    let mut body = open("/exploding").await;
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: 1\r\n\r\ndata: 2\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn spec_120_a_failing_body_delivers_what_it_yielded_then_aborts() {
    let mut body = open("/failing").await;
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: a\r\n\r\ndata: b\r\n\r\n"[..]
    );
    assert!(body.frame(WITHIN).await.unwrap_err().is_aborted());
}

#[tokio::test(start_paused = true)]
async fn large_raw_bytes_from_a_body_go_out_without_copying() {
    let mut body = open("/raw").await;
    assert_eq!(
        &body.frame(WITHIN).await.unwrap().unwrap()[..],
        b"data: small\r\n\r\n"
    );
    let frame = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(frame.as_ptr(), big().as_ptr());
    assert_eq!(frame.len(), 64 * 1024);
    assert_eq!(
        &body.frame(WITHIN).await.unwrap().unwrap()[..],
        b"data: after\r\n\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_read_inside_a_body_keeps_its_events_apart() {
    let all = get_body("/reading_another").await;
    assert_eq!(&all[..], b"data: before\r\n\r\ndata: read 6 events\r\n\r\n");
    // Nothing was left lent: the next response on this thread is whole too.
    assert_eq!(get_body("/spaced").await.len(), 6 * 18);
}

#[tokio::test(start_paused = true)]
async fn text_types_and_options_from_a_body_are_written_as_their_payloads_are() {
    let mut body = open("/texts").await;
    let frame = body.frame(WITHIN).await.unwrap().unwrap();
    let expected: Vec<u8> = [
        "string ref".into_event(),
        "cow borrowed".into_event(),
        "cow\nowned".into_event(),
        "boxed".into_event(),
        "arc".into_event(),
        "some".into_event(),
        7.into_event(),
    ]
    .iter()
    .flat_map(|payload| payload.encode(Separator::CrLf))
    .collect();
    assert_eq!(&frame[..], &expected[..]);
    // Large raw bytes inside an option still go out alone, uncopied.
    let frame = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(frame.as_ptr(), big().as_ptr());
    assert_eq!(
        &body.frame(WITHIN).await.unwrap().unwrap()[..],
        b"data: after\r\n\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_event_alone_in_its_frame_goes_out_uncopied() {
    for path in ["/relay", "/subscription"] {
        let hub = Broadcast::new(8);
        let mut body = open_on(&hub, path).await;
        let one = event("one");
        let frame = frame_after(&hub, &mut body, &[&one]).await;
        assert_eq!(frame, one, "{path}");
        assert_eq!(frame.as_ptr(), one.as_ptr(), "{path}: the hub's own bytes");
        // Events that are ready together share one frame, copied in order.
        let (two, three) = (event("two"), event("three"));
        let frame = frame_after(&hub, &mut body, &[&two, &three]).await;
        assert_eq!(&frame[..], [&two[..], &three[..]].concat(), "{path}");
        // And one alone again after them.
        let four = event("four");
        let frame = frame_after(&hub, &mut body, &[&four]).await;
        assert_eq!(frame.as_ptr(), four.as_ptr(), "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_shared_event_followed_by_one_built_in_the_body_is_copied_before_it() {
    let hub = Broadcast::new(8);
    let mut body = open_on(&hub, "/annotated").await;
    let one = event("one");
    let frame = frame_after(&hub, &mut body, &[&one]).await;
    let seen = ServerSentEvent::new()
        .comment("seen")
        .encode(Separator::CrLf);
    assert_eq!(&frame[..], [&one[..], &seen[..]].concat());
}

#[tokio::test(start_paused = true)]
async fn a_shared_event_before_the_end_of_its_stream_is_sent_then_the_end() {
    let one = event("one");
    let source = futures_util::stream::iter([one.clone()]);
    let mut body = common::reader(EventSourceResponse::new(source));
    assert_eq!(body.frame(WITHIN).await.unwrap().unwrap(), one);
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}
