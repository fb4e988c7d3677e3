//! Stream limits in process: over the cap a request gets exactly a `retry:` hint (jittered)
//! and a clean end, or a `503` with `Retry-After`; a stream holds its place for its whole life
//! and gives it back once on every exit path; `HEAD`, `204` and invalid headers take none;
//! per-app layers, per-route limits and children; a hub's per-topic and hub-wide caps. (Over
//! real sockets: tests/tests/limits.rs; in Chromium: tests/tests/browser_limits.rs.)

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use common::{Log, WITHIN, hooks, settle};
use futures_util::stream::{self, Stream, StreamExt};
use http::{Method, Request, StatusCode};
use sse_runtime::limit::{Refusal, RetryHint, StreamLimit};
use sse_runtime::resume::{GapPolicy, Hub};
use sse_runtime::testing::{BodyReader, ReadError};
use sse_runtime::{
    BoxError, CloseReason, EventSourceResponse, LastEventId, Separator, ServerSentEvent, Shutdown,
    SseContext, StreamAborted, sse,
};
use tower::ServiceExt;

const BASE: Duration = Duration::from_millis(200);
const JITTER: Duration = Duration::from_millis(200);

fn limit(max: usize) -> StreamLimit {
    StreamLimit::new(max).retry(RetryHint::new(BASE).jitter(JITTER))
}

/// Yields `"first"` (logging `source_polled`), then parks for an hour; logs `source_dropped`
/// when dropped, polled or not.
fn source(log: &Log) -> impl Stream<Item = &'static str> + Send + 'static {
    let guard = log.on_drop("source_dropped");
    let polled = log.clone();
    stream::once(async move {
        polled.push("source_polled");
        "first"
    })
    .chain(stream::once(async move {
        let _guard = guard;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "never"
    }))
}

/// `/events`: the runtime API with the request's context, logging through [`hooks`].
fn app(limit: &StreamLimit, log: &Log) -> Router {
    Router::new()
        .route("/events", get(events))
        .with_state(log.clone())
        .layer(limit.layer())
}

async fn events(State(log): State<Log>, context: SseContext) -> EventSourceResponse {
    hooks(EventSourceResponse::new(source(&log)), &log).context(context)
}

async fn call(app: &Router, method: Method, path: &str) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap()
}

/// A stream that is open: its first event has arrived.
async fn opened(app: &Router) -> BodyReader {
    let response = call(app, Method::GET, "/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = BodyReader::new(response.into_body());
    let first = body.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: first\r\n\r\n");
    body
}

/// The milliseconds of a refusal's body, which must be exactly `retry: <ms>` + a blank line.
fn retry_ms(body: &[u8], separator: &str) -> u64 {
    let text = std::str::from_utf8(body).unwrap();
    let ms = text
        .strip_prefix("retry: ")
        .and_then(|rest| rest.strip_suffix(&separator.repeat(2)))
        .unwrap_or_else(|| panic!("not a retry hint alone: {text:?}"));
    assert!(ms.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
    let ms: u64 = ms.parse().unwrap();
    assert_eq!(text, format!("retry: {ms}{separator}{separator}"));
    ms
}

fn in_range(ms: u64) -> bool {
    (BASE.as_millis() as u64..=(BASE + JITTER).as_millis() as u64).contains(&ms)
}

/// Reads a refusal of the `Retry` form: status 200, the SSE headers, the hint, a clean end.
async fn refused(response: Response) -> u64 {
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["connection"], "keep-alive");
    let body = BodyReader::new(response.into_body())
        .read_to_end(WITHIN)
        .await
        .expect("a clean end");
    let ms = retry_ms(&body, "\r\n");
    assert!(
        in_range(ms),
        "retry {ms} ms outside [{BASE:?}, {:?}]",
        BASE + JITTER
    );
    ms
}

fn count(log: &Log, entry: &str) -> usize {
    log.entries().iter().filter(|e| *e == entry).count()
}

#[tokio::test]
async fn over_the_cap_a_request_gets_exactly_a_retry_hint_and_a_clean_end() {
    let (limit, log) = (limit(2), Log::default());
    let app = app(&limit, &log);
    let a = opened(&app).await;
    let b = opened(&app).await;
    assert_eq!((limit.open(), limit.available()), (2, 0));

    refused(call(&app, Method::GET, "/events").await).await;
    settle().await;
    // The refused stream never ran: its source was dropped unpolled; its hooks saw why; no
    // client left; its place was never taken.
    assert_eq!(count(&log, "source_polled"), 2);
    assert_eq!(count(&log, "source_dropped"), 1);
    assert_eq!(count(&log, "close:Refused"), 1);
    assert_eq!(
        count(&log, "background"),
        1,
        "background tasks run after a refusal"
    );
    assert_eq!(count(&log, "client_close"), 0);
    assert_eq!(limit.open(), 2);
    drop((a, b));
    assert_eq!(limit.open(), 0);
}

#[tokio::test]
async fn once_a_client_leaves_the_next_request_gets_its_stream() {
    let (limit, log) = (limit(1), Log::default());
    let app = app(&limit, &log);
    let a = opened(&app).await;
    refused(call(&app, Method::GET, "/events").await).await;
    drop(a); // the client disconnects
    assert_eq!(limit.open(), 0);
    assert_eq!(count(&log, "close:ClientDisconnected"), 1);
    let _b = opened(&app).await;
    assert_eq!(limit.open(), 1);
}

#[tokio::test]
async fn a_close_hook_sees_the_place_free() {
    let limit = limit(1);
    let seen = Log::default();
    let (probe, record) = (limit.clone(), seen.clone());
    let response = EventSourceResponse::new(stream::iter(["a"]))
        .limit(&limit)
        .on_close(move |reason| record.push(format!("{reason:?} open={}", probe.open())));
    let mut body = BodyReader::new(response.into_response().into_body());
    assert_eq!(limit.open(), 1);
    assert_eq!(
        &body.read_to_end(WITHIN).await.unwrap()[..],
        b"data: a\r\n\r\n"
    );
    assert_eq!(seen.entries(), ["Completed open=0"]);
    assert_eq!(limit.open(), 0);
}

/// Builds `response` under `limit`, checks that it holds one place while open, runs `end` on
/// its body, and checks that the place was given back once, with `reason`.
async fn gives_back_once<F>(
    limit: &StreamLimit,
    response: EventSourceResponse,
    reason: &str,
    end: F,
) where
    F: AsyncFnOnce(BodyReader),
{
    let log = Log::default();
    let response = hooks(response.limit(limit), &log);
    let body = BodyReader::new(response.into_response().into_body());
    assert_eq!(limit.open(), 1, "held from the response on ({reason})");
    end(body).await;
    settle().await;
    assert_eq!(limit.open(), 0, "given back ({reason})");
    assert_eq!(
        count(&log, &format!("close:{reason}")),
        1,
        "{:?}",
        log.entries()
    );
}

fn aborted_with(end: Result<Bytes, ReadError>, reason: CloseReason) {
    let Err(ReadError::Aborted(error)) = end else {
        panic!("expected an abort, got {end:?}");
    };
    assert_eq!(
        error.downcast_ref::<StreamAborted>().unwrap().reason(),
        reason
    );
}

#[tokio::test]
async fn every_exit_path_gives_the_place_back_exactly_once() {
    let limit = limit(1);
    // The end of the source.
    let response = EventSourceResponse::new(stream::iter(["a", "b"]));
    gives_back_once(&limit, response, "Completed", async |mut body| {
        assert_eq!(
            &body.read_to_end(WITHIN).await.unwrap()[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n"
        );
    })
    .await;

    // A disconnect, before the first poll and after it.
    let response = EventSourceResponse::new(stream::pending::<&str>());
    gives_back_once(&limit, response, "ClientDisconnected", async |body| {
        drop(body)
    })
    .await;
    let log = Log::default();
    let response = EventSourceResponse::new(source(&log));
    gives_back_once(&limit, response, "ClientDisconnected", async |mut body| {
        body.frame(WITHIN).await.unwrap().unwrap();
        drop(body);
    })
    .await;

    // An error of the source.
    let failing = stream::iter([Ok("a"), Err::<&str, BoxError>("boom".into())]);
    let response = EventSourceResponse::from_try_stream(failing);
    gives_back_once(&limit, response, "Error", async |mut body| {
        aborted_with(body.read_to_end(WITHIN).await, CloseReason::Error);
    })
    .await;

    // A panic in the source.
    let panicking =
        stream::poll_fn(|_| -> std::task::Poll<Option<&str>> { panic!("the source exploded") });
    let response = EventSourceResponse::new(panicking);
    gives_back_once(&limit, response, "Error", async |mut body| {
        aborted_with(body.read_to_end(WITHIN).await, CloseReason::Error);
    })
    .await;

    // A shutdown, while the stream is open.
    let shutdown = Shutdown::new();
    let log = Log::default();
    let response = EventSourceResponse::new(source(&log)).shutdown(&shutdown);
    gives_back_once(&limit, response, "Shutdown", async |mut body| {
        body.frame(WITHIN).await.unwrap().unwrap();
        assert_eq!(limit.open(), 1);
        shutdown.trigger();
        aborted_with(body.read_to_end(WITHIN).await, CloseReason::Shutdown);
    })
    .await;

    // Opened after the shutdown began: it ends at once, and gives its place back.
    let response = EventSourceResponse::new(stream::pending::<&str>()).shutdown(&shutdown);
    gives_back_once(&limit, response, "Shutdown", async |mut body| {
        aborted_with(body.read_to_end(WITHIN).await, CloseReason::Shutdown);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_send_timeout_gives_the_place_back() {
    let limit = limit(1);
    let events = stream::iter(0..).map(|i| "x".repeat(4096) + &i.to_string());
    let response = EventSourceResponse::new(events).send_timeout(Duration::from_secs(5));
    gives_back_once(&limit, response, "SendTimeout", async |mut body| {
        // One read starts the stream's task; then the client stops reading.
        body.frame(WITHIN).await.unwrap().unwrap();
        while limit.open() == 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_503_variant_says_when_in_retry_after() {
    let limit = StreamLimit::new(0)
        .retry(RetryHint::new(Duration::from_millis(1500)).jitter(Duration::from_millis(1000)))
        .refusal(Refusal::ServiceUnavailable);
    let log = Log::default();
    let mut seconds = HashSet::new();
    for _ in 0..50 {
        let response = hooks(EventSourceResponse::new(source(&log)), &log)
            .limit(&limit)
            .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let headers = response.headers().clone();
        assert_eq!(headers["cache-control"], "no-store");
        assert!(!headers.contains_key("content-type"), "{headers:?}");
        let after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        // 1.5 to 2.5 s, rounded up to whole seconds.
        assert!((2..=3).contains(&after), "retry-after {after}");
        seconds.insert(after);
        let body = BodyReader::new(response.into_body())
            .read_to_end(WITHIN)
            .await
            .unwrap();
        assert!(body.is_empty());
    }
    assert_eq!(seconds.len(), 2, "both roundings occur: {seconds:?}");
    settle().await;
    assert_eq!(count(&log, "close:Refused"), 50);
    assert_eq!(count(&log, "source_polled"), 0);
    assert_eq!(limit.open(), 0);
}

#[tokio::test]
async fn the_retry_hint_is_jittered_over_its_whole_range() {
    let limit = limit(0);
    let mut hints = Vec::new();
    for _ in 0..200 {
        let response = EventSourceResponse::new(stream::pending::<&str>())
            .limit(&limit)
            .separator(Separator::Lf)
            .into_response();
        let body = BodyReader::new(response.into_body())
            .read_to_end(WITHIN)
            .await
            .unwrap();
        // In the response's separator.
        let ms = retry_ms(&body, "\n");
        assert!(in_range(ms), "{ms}");
        hints.push(ms);
    }
    let distinct: HashSet<u64> = hints.iter().copied().collect();
    assert!(
        distinct.len() >= 50,
        "only {} distinct hints",
        distinct.len()
    );
    let (min, max) = (hints.iter().min().unwrap(), hints.iter().max().unwrap());
    assert!(*min < 250 && *max > 350, "spread {min}..{max}");
}

#[tokio::test]
async fn head_requests_take_no_place_and_are_not_refused() {
    let (limit, log) = (limit(1), Log::default());
    let app = app(&limit, &log);
    let head = call(&app, Method::HEAD, "/events").await;
    assert_eq!(limit.open(), 0);
    assert_eq!(head.status(), StatusCode::OK);
    let _a = opened(&app).await;
    // The cap is reached; a HEAD still gets the stream's headers alone.
    let head = call(&app, Method::HEAD, "/events").await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let body = BodyReader::new(head.into_body())
        .read_to_end(WITHIN)
        .await
        .unwrap();
    assert!(body.is_empty());
    settle().await;
    assert_eq!(limit.open(), 1);
    assert_eq!(count(&log, "close:HeadRequest"), 2);
    assert_eq!(count(&log, "close:Refused"), 0);
}

#[tokio::test]
async fn no_content_and_an_invalid_header_take_no_place() {
    let limit = limit(1);
    let hub = Hub::new();
    let resume = hub
        .resume(["t"], LastEventId::Invalid)
        .gap_policy(GapPolicy::NoContent)
        .await;
    let response = EventSourceResponse::new(resume)
        .limit(&limit)
        .into_response();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(limit.open(), 0);
    let response = EventSourceResponse::new(stream::pending::<&str>())
        .header("bad name", "x")
        .limit(&limit)
        .into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(limit.open(), 0);
}

static MACRO_CLOSES: std::sync::Mutex<Vec<CloseReason>> = std::sync::Mutex::new(Vec::new());

fn record_close(reason: CloseReason) {
    MACRO_CLOSES.lock().unwrap().push(reason);
}

sse! {
    #[sse_endpoint(on_close = record_close)]
    async fn endpoint(State(log): State<Log>) {
        log.push("body_ran");
        yield "first";
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[tokio::test]
async fn the_layer_reaches_macro_endpoints() {
    let (limit, log) = (limit(1), Log::default());
    let app = Router::new()
        .route("/events", get(endpoint))
        .with_state(log.clone())
        .layer(limit.layer());
    let a = opened(&app).await;
    refused(call(&app, Method::GET, "/events").await).await;
    assert_eq!(log.entries(), ["body_ran"], "the refused body never ran");
    assert_eq!(*MACRO_CLOSES.lock().unwrap(), [CloseReason::Refused]);
    drop(a);
    assert_eq!(limit.open(), 0);
    let _b = opened(&app).await;
    assert_eq!(log.entries(), ["body_ran", "body_ran"]);
}

#[tokio::test]
async fn a_child_limit_counts_against_its_parent_too() {
    let (parent, log) = (limit(2), Log::default());
    let child = parent.child(1);
    let app = Router::new()
        .route("/exports", get(events).layer(child.layer()))
        .route("/events", get(events))
        .with_state(log.clone())
        .layer(parent.layer());
    let opened_at = async |path: &str| {
        let response = call(&app, Method::GET, path).await;
        let mut body = BodyReader::new(response.into_body());
        assert_eq!(
            &body.frame(WITHIN).await.unwrap().unwrap()[..],
            b"data: first\r\n\r\n"
        );
        body
    };
    let export = opened_at("/exports").await;
    assert_eq!((parent.open(), child.open()), (1, 1));
    // The child is full; the parent is not.
    refused(call(&app, Method::GET, "/exports").await).await;
    let event = opened_at("/events").await;
    assert_eq!((parent.open(), child.open()), (2, 1));
    // The parent is full: both routes refuse.
    refused(call(&app, Method::GET, "/events").await).await;
    drop(export);
    assert_eq!((parent.open(), child.open()), (1, 0));
    let _second = opened_at("/events").await;
    // The child has room, its parent has none: refused, and the child keeps no place.
    assert_eq!(child.available(), 0);
    refused(call(&app, Method::GET, "/exports").await).await;
    assert_eq!((parent.open(), child.open()), (2, 0));
    drop(event);
    let _export = opened_at("/exports").await;
    assert_eq!((parent.open(), child.open()), (2, 1));
}

#[tokio::test]
async fn a_limit_given_to_the_response_wins_over_the_apps() {
    let (app_limit, own) = (limit(5), limit(1));
    let log = Log::default();
    let route_limit = own.clone();
    let app = Router::new()
        .route(
            "/events",
            get(move |context: SseContext, State(log): State<Log>| {
                let own = route_limit.clone();
                async move {
                    // Before and after `context`: the caller's choice wins either way.
                    EventSourceResponse::new(source(&log))
                        .limit(&own)
                        .context(context)
                }
            }),
        )
        .route(
            "/after",
            get(move |context: SseContext, State(log): State<Log>| {
                let own = own.clone();
                async move {
                    EventSourceResponse::new(source(&log))
                        .context(context)
                        .limit(&own)
                }
            }),
        )
        .with_state(log)
        .layer(app_limit.layer());
    let _a = opened(&app).await;
    assert_eq!(app_limit.open(), 0);
    refused(call(&app, Method::GET, "/after").await).await;
    refused(call(&app, Method::GET, "/events").await).await;
}

fn topic_hub(per_topic: usize) -> Hub {
    Hub::builder()
        .max_subscribers_per_topic(per_topic)
        .refusal_retry(RetryHint::new(BASE).jitter(JITTER))
        .build()
}

/// The whole stream of a refused resume: its `retry:` hint, then the end.
async fn refusal_of(mut resume: sse_runtime::resume::Resume, separator: &str) -> u64 {
    assert!(resume.is_refused());
    let frame = tokio::time::timeout(WITHIN, resume.next())
        .await
        .unwrap()
        .unwrap();
    let ms = retry_ms(&frame.encode(Separator::Lf), separator);
    assert!(in_range(ms), "{ms}");
    assert!(
        tokio::time::timeout(WITHIN, resume.next())
            .await
            .unwrap()
            .is_none()
    );
    ms
}

#[tokio::test]
async fn a_topic_at_its_cap_refuses_a_third_subscriber_but_another_topic_does_not() {
    let hub = topic_hub(2);
    let a1 = hub.resume(["a"], LastEventId::None).await;
    let a2 = hub.resume(["a"], LastEventId::None).await;
    assert!(!a1.is_refused() && !a2.is_refused());
    refusal_of(hub.resume(["a"], LastEventId::None).await, "\r\n").await;
    let mut b = hub.resume(["b"], LastEventId::None).await;
    assert!(!b.is_refused());
    // A resume of several topics is refused as a whole if one is full: it takes nothing.
    refusal_of(hub.resume(["b", "a"], LastEventId::None).await, "\r\n").await;
    assert_eq!(
        (hub.subscriber_count("a"), hub.subscriber_count("b")),
        (2, 1)
    );
    assert_eq!(hub.subscriptions(), 3);
    // The subscribers that got in receive events.
    let id = hub
        .publish("b", ServerSentEvent::new().data("hello"))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WITHIN, b.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        frame.encode(Separator::CrLf),
        format!("id: {id}\r\ndata: hello\r\n\r\n").as_bytes()
    );
    // Once one leaves, there is room again.
    drop(a1);
    assert!(!hub.resume(["a"], LastEventId::None).await.is_refused());
    drop(a2);
}

#[tokio::test]
async fn a_refused_resume_reads_no_history() {
    let hub = topic_hub(1);
    for i in 0..5 {
        hub.publish("a", ServerSentEvent::new().data(i))
            .await
            .unwrap();
    }
    let _first = hub.resume(["a"], LastEventId::Earliest).await;
    refusal_of(hub.resume(["a"], LastEventId::Earliest).await, "\r\n").await;
}

#[tokio::test]
async fn the_hub_wide_cap_counts_every_topic() {
    let hub = Hub::builder()
        .max_subscribers(2)
        .refusal_retry(RetryHint::new(BASE).jitter(JITTER))
        .separator(Separator::Lf)
        .build();
    let x = hub.resume(["x"], LastEventId::None).await;
    let _y = hub.resume(["y"], LastEventId::None).await;
    assert_eq!(hub.subscriptions(), 2);
    // In the hub's separator.
    refusal_of(hub.resume(["z"], LastEventId::None).await, "\n").await;
    assert_eq!(hub.subscriber_count("z"), 0);
    drop(x);
    assert_eq!(hub.subscriptions(), 1);
    assert!(!hub.resume(["z"], LastEventId::None).await.is_refused());
}

#[tokio::test]
async fn a_refused_resume_made_into_the_response_is_the_refusal_itself() {
    let hub = topic_hub(0);
    let log = Log::default();
    let resume = hub.resume(["a"], LastEventId::None).await;
    let response = hooks(EventSourceResponse::new(resume), &log);
    // `refused` checks the response's CRLF bytes and its headers.
    refused(response.into_response()).await;
    settle().await;
    assert_eq!(log.entries(), ["close:Refused", "background"]);

    let resume = hub.resume(["a"], LastEventId::None).await;
    let response = EventSourceResponse::new(resume)
        .separator(Separator::Lf)
        .into_response();
    let body = BodyReader::new(response.into_body())
        .read_to_end(WITHIN)
        .await
        .unwrap();
    assert!(
        in_range(retry_ms(&body, "\n")),
        "in the response's separator"
    );

    let hub = Hub::builder()
        .max_subscribers_per_topic(0)
        .refusal(Refusal::ServiceUnavailable)
        .build();
    let resume = hub.resume(["a"], LastEventId::None).await;
    let response = EventSourceResponse::new(resume).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (5..=10).contains(&after),
        "the default hint: 5 to 10 s, got {after}"
    );
}

sse! {
    async fn room(State(hub): State<Hub>) {
        for await event in hub.resume(["room"], LastEventId::None).await {
            yield event;
        }
    }
}

#[tokio::test]
async fn a_refused_resume_in_a_sse_body_sends_the_hint_and_ends_cleanly() {
    let hub = topic_hub(1);
    let app = Router::new()
        .route("/room", get(room))
        .with_state(hub.clone());
    let first = call(&app, Method::GET, "/room").await;
    let mut first = BodyReader::new(first.into_body());
    // The body subscribes at its first poll.
    assert!(matches!(
        first.frame(Duration::from_millis(50)).await,
        Err(ReadError::Timeout)
    ));
    assert_eq!(hub.subscriber_count("room"), 1);
    let second = call(&app, Method::GET, "/room").await;
    assert_eq!(second.status(), StatusCode::OK);
    let body = BodyReader::new(second.into_body())
        .read_to_end(WITHIN)
        .await
        .expect("a clean end");
    assert!(in_range(retry_ms(&body, "\r\n")));
    let id = hub
        .publish("room", ServerSentEvent::new().data("hi"))
        .await
        .unwrap();
    let frame = first.frame(WITHIN).await.unwrap().unwrap();
    assert_eq!(
        &frame[..],
        format!("id: {id}\r\ndata: hi\r\n\r\n").as_bytes()
    );
}

#[tokio::test]
async fn a_subscriber_whose_stream_ended_frees_its_place_before_it_is_dropped() {
    let hub = Hub::builder()
        .capacity(1)
        .max_subscribers(1)
        .refusal_retry(RetryHint::new(BASE).jitter(JITTER))
        .build();
    let mut lagging = hub.resume(["t"], LastEventId::None).await;
    refusal_of(hub.resume(["t"], LastEventId::None).await, "\r\n").await;
    for i in 0..3 {
        hub.publish("t", ServerSentEvent::new().data(i))
            .await
            .unwrap();
    }
    // More than `capacity` behind: its stream ends, and so does its subscription.
    while tokio::time::timeout(WITHIN, lagging.next())
        .await
        .unwrap()
        .is_some()
    {}
    assert_eq!((hub.subscriptions(), hub.subscriber_count("t")), (0, 0));
    assert!(!hub.resume(["t"], LastEventId::None).await.is_refused());
}
