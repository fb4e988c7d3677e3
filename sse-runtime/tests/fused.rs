//! A body's `yield ServerSentEvent::new().id(..).data(..)` with its builder calls in field
//! order is written field by field straight into the frame (the macro fuses it, see
//! `sse_macros::fuse`). The bytes are exactly those of the built event's encoding (SPEC 3,
//! 13-21), with every separator, for every kind of value; a value that panics while it is
//! written leaves nothing of its event in the frame.

mod common;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::WITHIN;
use http::Request;
use sse_runtime::testing::BodyReader;
use sse_runtime::{Separator, ServerSentEvent, SseContext, sse};
use tower::ServiceExt;

/// A `Display` that writes itself in pieces, with a CRLF split across two of them and a CR at
/// the very end.
struct Pieces;

impl fmt::Display for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a\r")?;
        f.write_str("\nb\r")?;
        f.write_str("c\n")?;
        f.write_str("")?;
        f.write_str("\r")
    }
}

/// A `Display` that writes a little, then panics.
struct Boom;

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half of ")?;
        panic!("boom while formatting");
    }
}

/// What the values of [`ordered`] did, in order: evaluated (`noted`) or formatted (`Noisy`).
static ORDER: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// `value`, noting that it was evaluated.
fn noted<T>(what: &'static str, value: T) -> T {
    ORDER.lock().unwrap().push(what);
    value
}

/// A `Display` that notes when it is formatted.
struct Noisy(&'static str);

impl fmt::Display for Noisy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ORDER.lock().unwrap().push(self.0);
        f.write_str(self.0)
    }
}

/// The event of [`ordered`], built.
fn ordered_event() -> ServerSentEvent {
    ServerSentEvent::new()
        .comment(noted("comment", "c"))
        .id(noted("id", Noisy("format id")))
        .event(noted("event", "e"))
        .data(noted("data", Noisy("format data")))
        .retry(noted("retry", 9))
}

/// The events of [`fused`], built as values (a `yield` of a call is never fused).
fn built() -> Vec<ServerSentEvent> {
    let owned = String::from("owned\r\ntext");
    vec![
        ServerSentEvent::new().data("one line"),
        ServerSentEvent::new().data("a\nb\r\nc\rd"),
        ServerSentEvent::new().data(""),
        ServerSentEvent::new().data(String::from("trailing\r")),
        ServerSentEvent::new()
            .comment("c1\nc2")
            .id("i\r\nd")
            .event("e\nv\r")
            .data(Pieces)
            .retry(5),
        ServerSentEvent::new().id(-5i64).data(42u8),
        ServerSentEvent::new().id(7).data(1.5),
        ServerSentEvent::new().event('x').data(true),
        ServerSentEvent::new().id(&owned).data(&owned),
        ServerSentEvent::new()
            .data(Cow::Borrowed("cow"))
            .id(Cow::<str>::Owned("o\nwned".to_owned())),
        ServerSentEvent::new()
            .event(Box::<str>::from("boxed"))
            .data(Arc::<str>::from("arc\n")),
        ServerSentEvent::new().comment(Pieces),
        ServerSentEvent::new().retry(0),
        ServerSentEvent::new(),
        ServerSentEvent::new().data(u128::MAX).id(i128::MIN),
    ]
}

fn built_event(index: usize) -> ServerSentEvent {
    built().swap_remove(index)
}

sse! {
    /// The events of [`built`], each `yield`ed as a chain: fused where the calls are in field
    /// order, the builder where they are not (`.data(..).id(..)`), bytes alike either way.
    async fn fused() {
        let owned = String::from("owned\r\ntext");
        let cell = RefCell::new(String::from("one line"));
        // A temporary that lives to the end of the call, as in the builder chain.
        yield ServerSentEvent::new().data(cell.borrow().as_str());
        yield ServerSentEvent::new().data("a\nb\r\nc\rd");
        yield ServerSentEvent::new().data("");
        yield ServerSentEvent::new().data(String::from("trailing\r"));
        yield ServerSentEvent::new()
            .comment("c1\nc2")
            .id("i\r\nd")
            .event("e\nv\r")
            .data(Pieces)
            .retry(5);
        yield ServerSentEvent::new().id(-5i64).data(42u8);
        yield ServerSentEvent::new().id(7).data(1.5);
        yield ServerSentEvent::new().event('x').data(true);
        yield ServerSentEvent::new().id(&owned).data(&owned);
        yield ServerSentEvent::new()
            .data(Cow::Borrowed("cow"))
            .id(Cow::<str>::Owned("o\nwned".to_owned()));
        yield ServerSentEvent::new()
            .event(Box::<str>::from("boxed"))
            .data(Arc::<str>::from("arc\n"));
        yield ServerSentEvent::new().comment(Pieces);
        yield ServerSentEvent::new().retry(0);
        yield ServerSentEvent::new();
        yield sse_runtime::ServerSentEvent::new().data(u128::MAX).id(i128::MIN);
    }

    async fn built_events() {
        for i in 0..built().len() {
            yield built_event(i);
        }
    }

    async fn exploding() {
        yield ServerSentEvent::new().id(1).data("whole");
        yield ServerSentEvent::new().id(2).data(Boom);
        yield ServerSentEvent::new().id(3).data("never");
    }

    async fn failing() -> Result<(), String> {
        yield ServerSentEvent::new().id(1).data("whole");
        yield ServerSentEvent::new().id(2).data(Err::<&str, _>("failed".to_owned())?);
        yield ServerSentEvent::new().id(3).data("never");
        Ok(())
    }

    async fn returning() {
        yield ServerSentEvent::new().id(1).data("whole");
        let missing: Option<&str> = std::hint::black_box(None);
        yield ServerSentEvent::new().id(2).data(match missing {
            Some(text) => text,
            None => return,
        });
        yield ServerSentEvent::new().id(3).data("never");
    }

    /// [`ordered_event`], fused.
    async fn ordered() {
        yield ServerSentEvent::new()
            .comment(noted("comment", "c"))
            .id(noted("id", Noisy("format id")))
            .event(noted("event", "e"))
            .data(noted("data", Noisy("format data")))
            .retry(noted("retry", 9));
    }

    /// Leaves with `?` after a formatted field was written.
    async fn failing_after_a_formatted_field() -> Result<(), String> {
        yield ServerSentEvent::new().id(1).data("whole");
        yield ServerSentEvent::new()
            .id(2)
            .event(Pieces)
            .data(Err::<&str, _>("failed".to_owned())?);
        Ok(())
    }

    /// Enough events to fill several frames.
    async fn many() {
        for i in 0..2_000u32 {
            yield ServerSentEvent::new().id(i).data("x".repeat(100));
        }
    }

    /// Reads `fused_crlf` inside its own body (where nothing is lent), and yields its bytes.
    async fn reading_fused() {
        let inner = get_body("/fused_crlf").await;
        yield bytes::Bytes::from(inner);
    }
}

fn app() -> Router {
    Router::new()
        .route("/fused_crlf", get(fused))
        .route(
            "/fused_lf",
            get(async |context: SseContext| fused(context).await.separator(Separator::Lf)),
        )
        .route(
            "/fused_cr",
            get(async |context: SseContext| fused(context).await.separator(Separator::Cr)),
        )
        .route("/built_crlf", get(built_events))
        .route(
            "/built_lf",
            get(async |context: SseContext| built_events(context).await.separator(Separator::Lf)),
        )
        .route(
            "/built_cr",
            get(async |context: SseContext| built_events(context).await.separator(Separator::Cr)),
        )
        .route("/exploding", get(exploding))
        .route("/failing", get(failing))
        .route("/returning", get(returning))
        .route("/ordered", get(ordered))
        .route(
            "/failing_after_a_formatted_field",
            get(failing_after_a_formatted_field),
        )
        .route("/many", get(many))
        .route("/reading_fused", get(reading_fused))
}

async fn open(path: &str) -> BodyReader {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app().oneshot(request).await.unwrap();
    BodyReader::new(response.into_body())
}

async fn get_body(path: &str) -> Vec<u8> {
    open(path).await.read_to_end(WITHIN).await.unwrap().to_vec()
}

/// Every byte `path` sent, and whether its response ended aborted (`read_to_end` keeps no bytes
/// of an aborted one).
async fn read_until_end_or_abort(path: &str) -> (Vec<u8>, bool) {
    let mut body = open(path).await;
    let mut sent = Vec::new();
    let aborted = loop {
        match body.frame(WITHIN).await {
            Ok(Some(frame)) => sent.extend_from_slice(&frame),
            Ok(None) => break false,
            Err(error) => break error.is_aborted(),
        }
    };
    (sent, aborted)
}

/// That `path` sent its first event (`id: 1`, `data: whole`) whole, nothing of its second,
/// and ended aborted (`why`, if not).
async fn assert_aborted_after_the_whole_first_event(path: &str, why: &str) {
    let (sent, aborted) = read_until_end_or_abort(path).await;
    assert!(aborted, "{why}");
    assert_eq!(
        String::from_utf8_lossy(&sent),
        "id: 1\r\ndata: whole\r\n\r\n"
    );
}

#[tokio::test]
async fn spec_3_13_21_fused_events_are_the_bytes_of_built_events_with_every_separator() {
    for sep in ["crlf", "lf", "cr"] {
        let fused = get_body(&format!("/fused_{sep}")).await;
        let built = get_body(&format!("/built_{sep}")).await;
        assert_eq!(
            String::from_utf8_lossy(&fused),
            String::from_utf8_lossy(&built),
            "separator {sep}"
        );
    }
    // And those are the encodings of the events themselves.
    let expected: Vec<u8> = built()
        .iter()
        .flat_map(|event| event.encode(Separator::CrLf))
        .collect();
    assert_eq!(get_body("/fused_crlf").await, expected);
}

#[tokio::test]
async fn a_fused_event_whose_value_panics_leaves_nothing_of_itself_in_the_frame() {
    assert_aborted_after_the_whole_first_event("/exploding", "the response ends aborted").await;
}

#[tokio::test]
async fn spec_120_a_fused_event_left_by_its_value_s_error_leaves_nothing_of_itself() {
    assert_aborted_after_the_whole_first_event("/failing", "a failed body aborts the response")
        .await;
}

#[tokio::test]
async fn a_fused_event_left_after_a_formatted_field_leaves_nothing_of_itself() {
    assert_aborted_after_the_whole_first_event(
        "/failing_after_a_formatted_field",
        "a failed body aborts the response",
    )
    .await;
}

#[tokio::test]
async fn a_fused_event_evaluates_and_formats_its_values_in_the_builder_s_order() {
    let fused = get_body("/ordered").await;
    let fused_order = std::mem::take(&mut *ORDER.lock().unwrap());
    let built = ordered_event().encode(Separator::CrLf);
    let built_order = std::mem::take(&mut *ORDER.lock().unwrap());
    assert_eq!(
        String::from_utf8_lossy(&fused),
        String::from_utf8_lossy(&built)
    );
    assert_eq!(
        built_order,
        [
            "comment",
            "id",
            "format id",
            "event",
            "data",
            "format data",
            "retry"
        ]
    );
    assert_eq!(fused_order, built_order);
}

#[tokio::test]
async fn a_fused_event_left_by_a_return_in_its_value_leaves_nothing_of_itself() {
    assert_eq!(
        String::from_utf8_lossy(&get_body("/returning").await),
        "id: 1\r\ndata: whole\r\n\r\n"
    );
}

#[tokio::test]
async fn fused_events_fill_frames_of_bounded_size_with_every_byte() {
    let mut body = open("/many").await;
    let mut all = Vec::new();
    let mut frames = 0;
    while let Some(frame) = body.frame(WITHIN).await.unwrap() {
        // A frame ends with the event that reached the frame limit (32 KiB).
        assert!(
            frame.len() <= 32 * 1024 + 200,
            "a frame of {} bytes",
            frame.len()
        );
        frames += 1;
        all.extend_from_slice(&frame);
    }
    let expected: Vec<u8> = (0..2_000u32)
        .flat_map(|i| {
            ServerSentEvent::new()
                .id(i)
                .data("x".repeat(100))
                .encode(Separator::CrLf)
        })
        .collect();
    assert_eq!(all, expected);
    assert!(frames > 1, "{frames} frames");
}

#[tokio::test]
async fn fused_events_of_a_body_read_inside_another_are_built_and_sent_whole() {
    let expected: Vec<u8> = built()
        .iter()
        .flat_map(|event| event.encode(Separator::CrLf))
        .collect();
    assert_eq!(get_body("/reading_fused").await, expected);
}
