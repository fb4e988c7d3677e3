//! Streaming lifecycle: SPEC section F (70-77), hooks (I, L) and the exactly-once close report,
//! driven in process on tokio's paused clock.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{DISCONNECTED, Log, WITHIN, hooks, parked_source, reader, settle};
use futures_util::stream::{self, StreamExt};
use sse_runtime::testing::ReadError;
use sse_runtime::{
    CloseReason, EventSourceResponse, IntoEvent, Payload, Separator, ServerSentEvent,
};

#[tokio::test(start_paused = true)]
async fn spec_72_clean_end_sends_the_terminator_then_runs_hooks_and_background() {
    let log = Log::default();
    let guard = log.on_drop("source_dropped");
    let source = stream::iter(["a", "b"]).chain(stream::once(async move {
        drop(guard);
        "c"
    }));
    let mut body = reader(hooks(EventSourceResponse::new(source), &log));
    let all = body.read_to_end(WITHIN).await.unwrap();
    assert_eq!(&all[..], b"data: a\r\n\r\ndata: b\r\n\r\ndata: c\r\n\r\n");
    settle().await;
    assert_eq!(
        log.entries(),
        ["source_dropped", "close:Completed", "background"]
    );
}

#[tokio::test(start_paused = true)]
async fn spec_73_an_empty_stream_sends_only_the_terminator() {
    let mut body = reader(EventSourceResponse::new(stream::empty::<String>()));
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn spec_74_75_any_iterator_or_stream_with_mixed_items() {
    let items: Vec<Payload> = vec![
        "a".into_event(),
        Bytes::from_static(b"b").into_event(),
        ServerSentEvent::new().data("c").into_event(),
        None::<u8>.into_event(),
        7.into_event(),
    ];
    let mut body = reader(EventSourceResponse::new(stream::iter(items)));
    let all = body.read_to_end(WITHIN).await.unwrap();
    assert_eq!(&all[..], b"data: a\r\n\r\nbdata: c\r\n\r\ndata: 7\r\n\r\n");
}

#[tokio::test(start_paused = true)]
async fn spec_71_events_are_sent_as_they_come_and_ready_ones_coalesce() {
    let source = stream::iter(1..=6).then(|i| async move {
        if i == 4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        i
    });
    let mut body = reader(EventSourceResponse::new(source));
    let first = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: 1\r\n\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n");
    let started = tokio::time::Instant::now();
    let second = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(
        &second[..],
        b"data: 4\r\n\r\ndata: 5\r\n\r\ndata: 6\r\n\r\n"
    );
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn coalesced_frames_are_bounded() {
    let event = "x".repeat(1000);
    let source = stream::iter(std::iter::repeat_n(event, 200));
    let mut body = reader(EventSourceResponse::new(source));
    let mut frames = Vec::new();
    while let Some(frame) = body.frame(WITHIN).await.unwrap() {
        frames.push(frame.len());
    }
    assert_eq!(frames.iter().sum::<usize>(), 200 * 1010);
    assert!(frames.len() >= 200 * 1010 / (33 * 1024), "{frames:?}");
    assert!(
        frames.iter().all(|&len| len <= 32 * 1024 + 1010),
        "{frames:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn large_raw_bytes_go_out_without_copying() {
    let big = Bytes::from(vec![b'z'; 64 * 1024]);
    let address = big.as_ptr();
    let source = stream::iter([Bytes::from_static(b"small"), big]);
    let mut body = reader(EventSourceResponse::new(source));
    assert_eq!(&body.frame(WITHIN).await.unwrap().unwrap()[..], b"small");
    let frame = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(frame.as_ptr(), address);
    assert_eq!(frame.len(), 64 * 1024);
}

#[tokio::test(start_paused = true)]
async fn retry_is_sent_first() {
    let source = stream::iter(["a"]);
    let response = EventSourceResponse::new(source)
        .retry(3000)
        .separator(Separator::Lf);
    let all = reader(response).read_to_end(WITHIN).await.unwrap();
    assert_eq!(&all[..], b"retry: 3000\n\ndata: a\n\n");
}

#[tokio::test(start_paused = true)]
async fn separator_applies_to_scalars_and_unset_events() {
    let items = vec![
        "x\ny".into_event(),
        ServerSentEvent::new().event("e").data(1).into_event(),
        ServerSentEvent::new()
            .data("own")
            .separator(Separator::CrLf)
            .into_event(),
    ];
    let response = EventSourceResponse::new(stream::iter(items)).separator(Separator::Cr);
    let all = reader(response).read_to_end(WITHIN).await.unwrap();
    assert_eq!(
        &all[..],
        b"data: x\rdata: y\r\revent: e\rdata: 1\r\rdata: own\r\n\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn spec_93_95_disconnect_runs_the_client_hook_before_dropping_the_source_then_the_rest() {
    let log = Log::default();
    let source = parked_source(&log);
    let mut body = reader(hooks(EventSourceResponse::new(source), &log));
    assert_eq!(
        body.frame(WITHIN).await.unwrap().unwrap(),
        &b"data: first\r\n\r\n"[..]
    );
    assert!(matches!(
        body.frame(Duration::from_secs(1)).await,
        Err(ReadError::Timeout)
    ));
    assert!(log.entries().is_empty());
    drop(body);
    settle().await;
    assert_eq!(log.entries(), DISCONNECTED);
}

#[tokio::test(start_paused = true)]
async fn spec_97_improved_a_stream_dropped_before_its_first_poll_still_cleans_up() {
    let log = Log::default();
    let guard = log.on_drop("source_dropped");
    let source = stream::once(async move {
        let _guard = guard;
        "never polled"
    });
    let body = reader(hooks(EventSourceResponse::new(source), &log));
    drop(body);
    settle().await;
    assert_eq!(log.entries(), DISCONNECTED);
}

#[tokio::test(start_paused = true)]
async fn close_hooks_run_exactly_once_even_when_polled_after_the_end() {
    let log = Log::default();
    let mut body = reader(hooks(EventSourceResponse::new(stream::iter([1])), &log));
    assert!(body.read_to_end(WITHIN).await.is_ok());
    assert_eq!(body.frame(WITHIN).await.unwrap(), None);
    drop(body);
    settle().await;
    assert_eq!(log.entries(), ["close:Completed", "background"]);
}

#[tokio::test(start_paused = true)]
async fn several_hooks_of_each_kind_all_run_in_order() {
    let log = Log::default();
    let (a, b) = (log.clone(), log.clone());
    let response = EventSourceResponse::new(stream::iter([1]))
        .on_close(move |_| a.push("first"))
        .on_close(move |_| b.push("second"));
    reader(response).read_to_end(WITHIN).await.unwrap();
    assert_eq!(log.entries(), ["first", "second"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_is_contained_and_the_others_still_run() {
    let log = Log::default();
    let a = log.clone();
    let response = EventSourceResponse::new(stream::iter([1]))
        .on_close(|_| panic!("hook failure"))
        .on_close(move |reason| a.push(format!("after:{reason:?}")));
    let all = reader(response).read_to_end(WITHIN).await.unwrap();
    assert_eq!(&all[..], b"data: 1\r\n\r\n");
    assert_eq!(log.entries(), ["after:Completed"]);
}

#[tokio::test(start_paused = true)]
async fn close_hooks_registered_from_inside_the_stream_see_the_reason() {
    let log = Log::default();
    let hooks = sse_runtime::CloseHooks::new();
    let (in_stream, l) = (hooks.clone(), log.clone());
    let source = async_stream::stream! {
        let user = "user-42";
        let l2 = l.clone();
        in_stream.on_client_close(move || l.push(format!("{user} left")));
        in_stream.on_close(move |reason| l2.push(format!("{user}:{reason:?}")));
        yield "hello";
        tokio::time::sleep(Duration::from_secs(3600)).await;
    };
    let mut body = reader(EventSourceResponse::new(source).close_hooks(&hooks));
    body.frame(WITHIN).await.unwrap();
    drop(body);
    assert_eq!(
        log.entries(),
        ["user-42 left", "user-42:ClientDisconnected"]
    );
    // Registering after the end is ignored rather than leaking or panicking.
    hooks.on_close(|_| unreachable!("registered after the stream ended"));
}

#[tokio::test(start_paused = true)]
async fn an_invalid_header_reports_an_error_to_the_hooks() {
    let log = Log::default();
    let response = hooks(EventSourceResponse::new(stream::iter([1])), &log).header("bad name", "x");
    let response = axum::response::IntoResponse::into_response(response);
    assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    settle().await;
    assert_eq!(log.entries(), ["close:Error"]);
}

#[test]
fn close_reasons_say_whether_background_runs() {
    assert!(CloseReason::Completed.runs_background());
    assert!(CloseReason::ClientDisconnected.runs_background());
    assert!(CloseReason::Shutdown.runs_background());
    assert!(!CloseReason::SendTimeout.runs_background());
    assert!(!CloseReason::Error.runs_background());
}
