//! What endpoints that return their stream (`#[sse_endpoint] async fn f() -> impl Stream<..>`,
//! the attribute alone on stable Rust) send, byte for byte, and how they end. Every endpoint is
//! served through an axum `Router`, as an application would.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::routing::get;
use http::{Request, StatusCode, Version};
use serde::Deserialize;
use sse_runtime::testing::BodyReader;
use sse_runtime::{
    CloseHooks, CloseReason, ServerSentEvent, Shutdown, ShutdownSignal, sse_endpoint,
};
use user_futures::stream::{self, BoxStream, Stream, StreamExt, TryStream};

mod support;

use support::{TIMEOUT, body_of, call, get_response, read_until_abort, text};

// ---------------------------------------------------------------------------------------------
// Streams of events

#[sse_endpoint(ping = 0)]
async fn numbers() -> impl Stream<Item = u32> {
    stream::iter(1..=3)
}

#[tokio::test]
async fn every_item_of_the_returned_stream_is_sent_then_the_stream_ends_cleanly() {
    let app = Router::new().route("/", get(numbers));
    let response = get_response(app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(
        text(&body_of(response).await),
        "data: 1\r\n\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n"
    );
}

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Deserialize)]
struct Range {
    count: u32,
}

/// Awaits before it returns the stream, which `stream!` builds with `yield`s.
#[sse_endpoint(ping = 0)]
async fn greetings(
    State(Greeting(greeting)): State<Greeting>,
    Path(name): Path<String>,
    Query(range): Query<Range>,
) -> impl Stream<Item = ServerSentEvent> + Send + 'static {
    let first = tokio::task::spawn(async { 7 }).await.unwrap();
    user_async_stream::stream! {
        for id in first..first + range.count {
            tokio::time::sleep(Duration::from_millis(1)).await;
            yield ServerSentEvent::new().id(id).data(format!("{greeting} {name}"));
        }
    }
}

#[tokio::test]
async fn the_body_awaits_then_its_stream_sees_the_extractors() {
    let app = Router::new()
        .route("/{name}", get(greetings))
        .with_state(Greeting("hello"));
    let body = body_of(get_response(app, "/ada?count=2").await).await;
    assert_eq!(
        text(&body),
        "id: 7\r\ndata: hello ada\r\n\r\nid: 8\r\ndata: hello ada\r\n\r\n"
    );
}

#[sse_endpoint(ping = 0)]
async fn early_return(Path(empty): Path<bool>) -> BoxStream<'static, &'static str> {
    if empty {
        return stream::empty().boxed();
    }
    stream::iter(["a", "b"]).boxed()
}

#[tokio::test]
async fn a_return_in_the_body_returns_its_stream() {
    let app = Router::new().route("/{empty}", get(early_return));
    let full = body_of(get_response(app.clone(), "/false").await).await;
    assert_eq!(text(&full), "data: a\r\n\r\ndata: b\r\n\r\n");
    let response = get_response(app, "/true").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body_of(response).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Streams of `Result`s

static FAILED: Mutex<Vec<CloseReason>> = Mutex::new(Vec::new());

fn record_failed(reason: CloseReason) {
    FAILED.lock().unwrap().push(reason);
}

#[sse_endpoint(ping = 0, on_close = record_failed)]
async fn failing() -> impl Stream<Item = Result<u32, io::Error>> {
    stream::iter(vec![Ok(1), Ok(2), Err(io::Error::other("upstream")), Ok(3)])
}

#[tokio::test]
async fn an_error_item_aborts_the_body_after_the_events_before_it() {
    let app = Router::new().route("/", get(failing));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: 1\r\n\r\ndata: 2\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
    assert_eq!(*FAILED.lock().unwrap(), [CloseReason::Error]);
}

#[sse_endpoint(ping = 0)]
async fn try_stream() -> impl TryStream<Ok = &'static str, Error = String> {
    stream::iter([Ok("only"), Err("bad".to_owned())])
}

#[tokio::test]
async fn an_error_of_a_try_stream_aborts_the_body() {
    let app = Router::new().route("/", get(try_stream));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: only\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
}

#[sse_endpoint(ping = 0)]
async fn succeeding() -> impl Stream<Item = io::Result<&'static str>> {
    stream::iter([Ok("fine")])
}

#[tokio::test]
async fn a_stream_of_results_without_an_error_ends_cleanly() {
    let app = Router::new().route("/", get(succeeding));
    assert_eq!(
        text(&body_of(get_response(app, "/").await).await),
        "data: fine\r\n\r\n"
    );
}

fn error_event(error: io::Error) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

static RECOVERED: Mutex<Vec<CloseReason>> = Mutex::new(Vec::new());

fn record_recovered(reason: CloseReason) {
    RECOVERED.lock().unwrap().push(reason);
}

#[sse_endpoint(ping = 0, on_error = error_event, on_close = record_recovered)]
async fn recovering() -> impl Stream<Item = Result<u32, io::Error>> {
    user_async_stream::stream! {
        yield Ok(10);
        yield Err(io::Error::other("upstream"));
        yield Ok(20);
    }
}

#[tokio::test]
async fn on_error_sends_the_first_error_as_the_last_event_then_ends_cleanly() {
    let app = Router::new().route("/", get(recovering));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(
        text(&body),
        "data: 10\r\n\r\nevent: error\r\ndata: upstream\r\n\r\n"
    );
    assert_eq!(*RECOVERED.lock().unwrap(), [CloseReason::Completed]);
}

// ---------------------------------------------------------------------------------------------
// Response options

#[sse_endpoint(
    ping = 0,
    status = 201,
    headers("X-Feed" = "prices", "x-region" = "eu"),
    cache_control = "public, max-age=29",
    media_type = "text/plain",
)]
async fn decorated() -> impl Stream<Item = &'static str> {
    stream::iter(["x"])
}

#[tokio::test]
async fn status_headers_cache_control_and_media_type_reach_the_response() {
    let app = Router::new().route("/", get(decorated));
    let response = get_response(app, "/").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let headers = response.headers();
    assert_eq!(headers["x-feed"], "prices");
    assert_eq!(headers["x-region"], "eu");
    assert_eq!(headers["cache-control"], "public, max-age=29");
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(text(&body_of(response).await), "data: x\r\n\r\n");
}

#[sse_endpoint(ping = 0, sep = "\n", retry = 3000)]
async fn lf_with_retry() -> impl Stream<Item = ServerSentEvent> {
    stream::iter([ServerSentEvent::new().id(1).data("a\r\nb")])
}

#[tokio::test]
async fn sep_and_retry_shape_every_line() {
    let app = Router::new().route("/", get(lf_with_retry));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "retry: 3000\n\nid: 1\ndata: a\ndata: b\n\n");
}

fn still_here() -> ServerSentEvent {
    ServerSentEvent::new().comment("still here")
}

#[sse_endpoint(ping = 0.05, ping_message = still_here)]
async fn quiet() -> impl Stream<Item = u32> {
    stream::pending()
}

#[tokio::test]
async fn ping_and_ping_message_send_the_custom_ping_periodically() {
    let app = Router::new().route("/", get(quiet));
    let response = get_response(app, "/").await;
    let mut reader = BodyReader::new(response.into_body());
    let bytes = reader
        .read_until(b": still here\r\n\r\n: still here\r\n\r\n", TIMEOUT)
        .await
        .expect("two pings arrive");
    assert_eq!(text(&bytes), ": still here\r\n\r\n: still here\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// The request context: the HTTP version, the method and the shutdown handle reach the response

static HEAD_CLOSED: Mutex<Vec<CloseReason>> = Mutex::new(Vec::new());

fn record_head(reason: CloseReason) {
    HEAD_CLOSED.lock().unwrap().push(reason);
}

#[sse_endpoint(ping = 0, on_close = record_head)]
async fn one() -> impl Stream<Item = u32> {
    stream::iter([1])
}

#[tokio::test]
async fn connection_keep_alive_is_sent_on_http1_only() {
    let app = Router::new().route("/", get(one));
    let http1 = get_response(app.clone(), "/").await;
    assert_eq!(http1.headers()["connection"], "keep-alive");
    let request = Request::get("/")
        .version(Version::HTTP_2)
        .body(Body::empty())
        .unwrap();
    let http2 = call(app, request).await;
    assert!(!http2.headers().contains_key("connection"));
}

#[tokio::test]
async fn a_head_request_gets_the_headers_alone() {
    let app = Router::new().route("/", get(one));
    let request = Request::head("/").body(Body::empty()).unwrap();
    let response = call(app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body_of(response).await.is_empty());
    assert!(
        HEAD_CLOSED
            .lock()
            .unwrap()
            .contains(&CloseReason::HeadRequest)
    );
}

#[sse_endpoint(ping = 0, shutdown_grace = 2)]
async fn farewell(shutdown: ShutdownSignal) -> impl Stream<Item = ServerSentEvent> {
    user_async_stream::stream! {
        yield ServerSentEvent::new().data("hello");
        shutdown.wait().await;
        yield ServerSentEvent::new().event("shutdown").data("goodbye");
    }
}

#[tokio::test]
async fn shutdown_grace_lets_the_stream_send_a_farewell_and_end_cleanly() {
    let shutdown = Shutdown::new();
    let app = Router::new()
        .route("/", get(farewell))
        .layer(shutdown.layer());
    let response = get_response(app, "/").await;
    let mut reader = BodyReader::new(response.into_body());
    let first = reader.frame(TIMEOUT).await.unwrap().unwrap();
    assert_eq!(text(&first), "data: hello\r\n\r\n");
    shutdown.trigger();
    let rest = reader.read_to_end(TIMEOUT).await.expect("a clean end");
    assert_eq!(text(&rest), "event: shutdown\r\ndata: goodbye\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// Per-request state in hooks: a `CloseHooks` parameter

static LEFT: Mutex<Vec<(SocketAddr, String)>> = Mutex::new(Vec::new());

#[derive(Deserialize)]
struct Who {
    user: String,
}

#[sse_endpoint(ping = 0)]
async fn per_client(
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    hooks: CloseHooks,
    Query(who): Query<Who>,
) -> impl Stream<Item = String> {
    let user = who.user.clone();
    hooks.on_client_close(move || LEFT.lock().unwrap().push((addr, user)));
    stream::repeat(format!("hello {}", who.user)).then(|text| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        text
    })
}

#[tokio::test]
async fn a_close_hooks_parameter_sees_per_request_state_when_the_client_leaves() {
    let addr: SocketAddr = "192.0.2.7:4242".parse().unwrap();
    let app = Router::new()
        .route("/", get(per_client))
        .layer(MockConnectInfo(addr));
    let response = get_response(app, "/?user=ada").await;
    let mut reader = BodyReader::new(response.into_body());
    let first = reader.frame(TIMEOUT).await.unwrap().unwrap();
    assert_eq!(text(&first), "data: hello ada\r\n\r\n");
    drop(reader);
    assert_eq!(*LEFT.lock().unwrap(), [(addr, "ada".to_owned())]);
}

// ---------------------------------------------------------------------------------------------
// Associated fns

struct Feed;

impl Feed {
    const LIMIT: u8 = 2;

    #[sse_endpoint(ping = 0)]
    pub async fn associated(Path(n): Path<u8>) -> impl Stream<Item = u8> {
        stream::iter(n..n + Self::LIMIT)
    }
}

#[tokio::test]
async fn an_associated_fn_is_a_handler_and_its_body_sees_self() {
    let app = Router::new().route("/{n}", get(Feed::associated));
    let body = body_of(get_response(app, "/9").await).await;
    assert_eq!(text(&body), "data: 9\r\n\r\ndata: 10\r\n\r\n");
}
