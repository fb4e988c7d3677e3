//! What `sse!` / `#[sse_endpoint]` endpoints send, byte for byte, and when their hooks run.
//! Every endpoint is served through an axum `Router`, as an application would.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::routing::{get, post};
use http::{Request, StatusCode, Version};
use serde::Deserialize;
use sse_runtime::testing::BodyReader;
use sse_runtime::{CloseHooks, CloseReason, Json, ServerSentEvent, Shutdown, ShutdownSignal, sse};
use tokio::sync::Notify;

mod support;

use support::{TIMEOUT, body_of, call, get_response, read_until_abort, text};

// ---------------------------------------------------------------------------------------------
// The body

sse! {
    #[sse_endpoint(ping = 0)]
    async fn mixed() {
        yield 1;
        yield "text";
        yield ServerSentEvent::new().id(7).event("update").data("a\nb");
        yield Json(serde_json::json!({"price": 12.5}));
        yield &b": raw bytes\r\n\r\n"[..];
        yield None::<u8>;
        yield String::from("owned");
        yield 2.5;
    }
}

#[tokio::test]
async fn mixed_yields_are_each_converted_through_into_event() {
    let app = Router::new().route("/", get(mixed));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(
        text(&body),
        "data: 1\r\n\r\n\
         data: text\r\n\r\n\
         id: 7\r\nevent: update\r\ndata: a\r\ndata: b\r\n\r\n\
         data: {\"price\":12.5}\r\n\r\n\
         : raw bytes\r\n\r\n\
         data: owned\r\n\r\n\
         data: 2.5\r\n\r\n"
    );
}

sse! {
    #[sse_endpoint(ping = 0)]
    async fn count(Path(limit): Path<u32>) {
        let mut n = 0;
        loop {
            n += 1;
            if n > limit {
                return;
            }
            match n % 3 {
                0 => yield "fizz",
                _ => {
                    yield n;
                }
            }
        }
    }
}

#[tokio::test]
async fn return_ends_the_stream_cleanly() {
    let app = Router::new().route("/{limit}", get(count));
    let body = body_of(get_response(app, "/4").await).await;
    assert_eq!(
        text(&body),
        "data: 1\r\n\r\ndata: 2\r\n\r\ndata: fizz\r\n\r\ndata: 4\r\n\r\n"
    );
}

sse! {
    #[sse_endpoint(ping = 0)]
    async fn never_yields() {}

    #[sse_endpoint(ping = 0)]
    async fn forwarded() -> Result<(), axum::Error> {
        let mut chunks = 0;
        'chunks: for await chunk in Body::from("upstream bytes").into_data_stream() {
            chunks += 1;
            if chunks > 1 {
                break 'chunks;
            }
            let chunk = chunk?;
            yield format!("chunk {}", String::from_utf8_lossy(&chunk));
        }
        yield format!("{chunks} chunk");
        Ok(())
    }
}

#[tokio::test]
async fn for_await_forwards_every_item_of_a_stream() {
    let app = Router::new().route("/", get(forwarded));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(
        text(&body),
        "data: chunk upstream bytes\r\n\r\ndata: 1 chunk\r\n\r\n"
    );
}

#[tokio::test]
async fn a_body_without_yield_sends_an_empty_stream() {
    let app = Router::new().route("/", get(never_yields));
    let response = get_response(app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body_of(response).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug)]
struct FeedError(&'static str);

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "feed failed: {}", self.0)
    }
}

impl std::error::Error for FeedError {}

fn fetch(n: u32) -> Result<u32, FeedError> {
    if n < 3 {
        Ok(n * 10)
    } else {
        Err(FeedError("upstream"))
    }
}

sse! {
    #[sse_endpoint(ping = 0)]
    async fn failing() -> Result<(), FeedError> {
        for n in 1.. {
            let value = fetch(n)?;
            yield value;
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0)]
    async fn failing_by_return() -> Result<(), FeedError> {
        yield "before";
        return Err(FeedError("returned"));
    }

    #[sse_endpoint(ping = 0)]
    async fn succeeding() -> Result<(), FeedError> {
        yield fetch(1)?;
        Ok(())
    }

    #[sse_endpoint(ping = 0, on_error = error_event)]
    async fn recovering() -> Result<(), FeedError> {
        for n in 1.. {
            yield fetch(n)?;
        }
        Ok(())
    }
}

fn error_event(error: FeedError) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

#[tokio::test]
async fn an_error_from_question_mark_aborts_the_body_after_the_events_before_it() {
    let app = Router::new().route("/", get(failing));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: 10\r\n\r\ndata: 20\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
}

#[tokio::test]
async fn returning_an_error_aborts_the_body() {
    let app = Router::new().route("/", get(failing_by_return));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: before\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
}

#[tokio::test]
async fn a_fallible_body_that_returns_ok_ends_cleanly() {
    let app = Router::new().route("/", get(succeeding));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "data: 10\r\n\r\n");
}

#[tokio::test]
async fn on_error_sends_the_mapped_error_as_a_final_event_then_ends_cleanly() {
    let app = Router::new().route("/", get(recovering));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(
        text(&body),
        "data: 10\r\n\r\ndata: 20\r\n\r\nevent: error\r\ndata: feed failed: upstream\r\n\r\n"
    );
}

// ---------------------------------------------------------------------------------------------
// `?` and `return` inside other macros' input: the fn's own, as in any fn returning a `Result`

sse! {
    #[sse_endpoint(ping = 0)]
    async fn question_mark_in_format() -> Result<(), FeedError> {
        for n in 1.. {
            yield format!("value {}", fetch(n)?);
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0, on_error = error_event)]
    async fn question_mark_in_vec() -> Result<(), FeedError> {
        for n in 1.. {
            let pair = vec![fetch(n)?, fetch(n + 1)?];
            yield format!("{pair:?}");
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0)]
    async fn question_mark_in_select() -> Result<(), FeedError> {
        for n in 1.. {
            tokio::select! {
                result = std::future::ready(fetch(n)) => {
                    let value = result?;
                    yield value;
                }
            }
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0, on_error = error_event)]
    async fn question_mark_in_select_with_on_error() -> Result<(), FeedError> {
        for n in 1.. {
            tokio::select! {
                result = std::future::ready(fetch(n)) => yield result?,
            }
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0)]
    async fn return_err_in_select() -> Result<(), FeedError> {
        for n in 1.. {
            tokio::select! {
                result = std::future::ready(fetch(n)) => match result {
                    Ok(value) => yield value,
                    Err(error) => return Err(error),
                },
            }
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0)]
    async fn return_in_select() -> Result<(), FeedError> {
        for n in 1.. {
            tokio::select! {
                biased;
                () = std::future::ready(()), if n == 2 => {
                    yield "returning Ok";
                    return Ok(());
                }
                result = std::future::ready(fetch(n)) => yield result?,
            }
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0)]
    async fn bare_return() -> Result<(), FeedError> {
        for n in 1.. {
            if n == 3 {
                return;
            }
            yield fetch(n)?;
        }
        Ok(())
    }

    #[sse_endpoint(ping = 0)]
    async fn bare_return_in_select() -> Result<(), FeedError> {
        for n in 1.. {
            tokio::select! {
                biased;
                () = std::future::ready(()), if n == 3 => return,
                result = std::future::ready(fetch(n)) => yield result?,
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn question_mark_in_format_args_aborts_the_body_after_the_events_before_it() {
    let app = Router::new().route("/", get(question_mark_in_format));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: value 10\r\n\r\ndata: value 20\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
}

#[tokio::test]
async fn question_mark_in_vec_with_on_error_sends_the_error_as_a_final_event() {
    let app = Router::new().route("/", get(question_mark_in_vec));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(
        text(&body),
        "data: [10, 20]\r\n\r\nevent: error\r\ndata: feed failed: upstream\r\n\r\n"
    );
}

#[tokio::test]
async fn question_mark_in_a_select_arm_aborts_the_body() {
    let app = Router::new().route("/", get(question_mark_in_select));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: 10\r\n\r\ndata: 20\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
}

#[tokio::test]
async fn question_mark_in_a_select_arm_with_on_error_sends_the_error_as_a_final_event() {
    let app = Router::new().route("/", get(question_mark_in_select_with_on_error));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(
        text(&body),
        "data: 10\r\n\r\ndata: 20\r\n\r\nevent: error\r\ndata: feed failed: upstream\r\n\r\n"
    );
}

#[tokio::test]
async fn return_err_in_a_select_arm_aborts_the_body() {
    let app = Router::new().route("/", get(return_err_in_select));
    let (bytes, error) = read_until_abort(get_response(app, "/").await).await;
    assert_eq!(text(&bytes), "data: 10\r\n\r\ndata: 20\r\n\r\n");
    assert!(error.is_aborted(), "{error}");
}

#[tokio::test]
async fn return_ok_in_a_select_arm_ends_the_stream_cleanly() {
    let app = Router::new().route("/", get(return_in_select));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "data: 10\r\n\r\ndata: returning Ok\r\n\r\n");
}

#[tokio::test]
async fn a_bare_return_in_a_fallible_body_ends_the_stream_cleanly() {
    let app = Router::new().route("/", get(bare_return));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "data: 10\r\n\r\ndata: 20\r\n\r\n");
}

#[tokio::test]
async fn a_bare_return_in_a_select_arm_of_a_fallible_body_ends_the_stream_cleanly() {
    let app = Router::new().route("/", get(bare_return_in_select));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "data: 10\r\n\r\ndata: 20\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// Response options

sse! {
    #[sse_endpoint(
        ping = 0,
        status = 201,
        headers("X-Feed" = "prices", "x-region" = "eu"),
        cache_control = "public, max-age=29",
        media_type = "text/plain",
    )]
    async fn decorated() {
        yield "x";
    }

    #[sse_endpoint(ping = 0, sep = "\n", retry = 3000)]
    async fn lf_with_retry() {
        yield ServerSentEvent::new().id(1).data("a\r\nb");
    }

    #[sse_endpoint(ping = 0, sep = "\r")]
    async fn cr() {
        yield 1;
    }

    #[sse_endpoint(ping = 0.05, ping_message = still_here)]
    async fn quiet() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        yield "never";
    }
}

fn still_here() -> ServerSentEvent {
    ServerSentEvent::new().comment("still here")
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

#[tokio::test]
async fn sep_and_retry_shape_every_line() {
    let app = Router::new().route("/", get(lf_with_retry));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "retry: 3000\n\nid: 1\ndata: a\ndata: b\n\n");
}

#[tokio::test]
async fn sep_cr_uses_carriage_returns_alone() {
    let app = Router::new().route("/", get(cr));
    let body = body_of(get_response(app, "/").await).await;
    assert_eq!(text(&body), "data: 1\r\r");
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
// The request context: the HTTP version and the shutdown handle reach the response

sse! {
    #[sse_endpoint(ping = 0)]
    async fn one() {
        yield 1;
    }

    #[sse_endpoint(ping = 0, shutdown_grace = 2)]
    async fn farewell(shutdown: ShutdownSignal) {
        yield "hello";
        shutdown.wait().await;
        yield ServerSentEvent::new().event("shutdown").data("goodbye");
    }

    #[sse_endpoint(ping = 0, drain_on_shutdown = false)]
    async fn report() {
        for part in 1..=3 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            yield part;
        }
    }
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
async fn shutdown_grace_lets_the_body_send_a_farewell_and_end_cleanly() {
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

#[tokio::test]
async fn drain_on_shutdown_false_keeps_the_stream_running_to_its_end() {
    let shutdown = Shutdown::new();
    let app = Router::new()
        .route("/", get(report))
        .layer(shutdown.layer());
    let response = get_response(app, "/").await;
    shutdown.trigger();
    let mut reader = BodyReader::new(response.into_body());
    let all = reader.read_to_end(TIMEOUT).await.expect("a clean end");
    assert_eq!(text(&all), "data: 1\r\n\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// Hooks

static COMPLETED: Mutex<Vec<CloseReason>> = Mutex::new(Vec::new());
static DISCONNECTED: Mutex<Vec<CloseReason>> = Mutex::new(Vec::new());
static CLIENT_LEFT: Notify = Notify::const_new();
static BACKGROUND_RAN: Notify = Notify::const_new();

fn record_completed(reason: CloseReason) {
    COMPLETED.lock().unwrap().push(reason);
}

fn record_disconnected(reason: CloseReason) {
    DISCONNECTED.lock().unwrap().push(reason);
}

async fn client_left() {
    CLIENT_LEFT.notify_one();
}

async fn after_stream() {
    BACKGROUND_RAN.notify_one();
}

sse! {
    #[sse_endpoint(ping = 0, on_close = record_completed, background = after_stream)]
    async fn finite() {
        yield 1;
    }

    #[sse_endpoint(ping = 0, on_close = record_disconnected, on_client_close = client_left)]
    async fn endless() {
        loop {
            yield "tick";
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn on_close_gets_completed_and_background_runs_when_the_body_ends() {
    let background = BACKGROUND_RAN.notified();
    let app = Router::new().route("/", get(finite));
    body_of(get_response(app, "/").await).await;
    assert_eq!(*COMPLETED.lock().unwrap(), [CloseReason::Completed]);
    tokio::time::timeout(TIMEOUT, background)
        .await
        .expect("the background task ran");
}

#[tokio::test]
async fn dropping_the_body_reports_client_disconnected_and_spawns_an_async_hook() {
    let left = CLIENT_LEFT.notified();
    let app = Router::new().route("/", get(endless));
    let response = get_response(app, "/").await;
    let mut reader = BodyReader::new(response.into_body());
    reader.frame(TIMEOUT).await.unwrap().unwrap();
    drop(reader);
    assert_eq!(
        *DISCONNECTED.lock().unwrap(),
        [CloseReason::ClientDisconnected]
    );
    tokio::time::timeout(TIMEOUT, left)
        .await
        .expect("the async on_client_close hook ran");
}

// ---------------------------------------------------------------------------------------------
// Per-request state in hooks: a `CloseHooks` parameter

static LEFT_ADDRESSES: Mutex<Vec<(SocketAddr, String)>> = Mutex::new(Vec::new());

#[derive(Deserialize)]
struct Who {
    user: String,
}

sse! {
    #[sse_endpoint(ping = 0)]
    async fn per_client(
        ConnectInfo(addr): ConnectInfo<SocketAddr>,
        Query(who): Query<Who>,
        hooks: CloseHooks,
    ) {
        let user = who.user.clone();
        hooks.on_client_close(move || LEFT_ADDRESSES.lock().unwrap().push((addr, user)));
        loop {
            yield format!("hello {}", who.user);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
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
    assert_eq!(*LEFT_ADDRESSES.lock().unwrap(), [(addr, "ada".to_owned())]);
}

// ---------------------------------------------------------------------------------------------
// Extractors

#[derive(Clone)]
struct Prices {
    currency: &'static str,
}

#[derive(Deserialize)]
struct Subscription {
    symbols: Vec<String>,
}

sse! {
    #[sse_endpoint(ping = 0)]
    async fn subscribe(
        State(prices): State<Prices>,
        headers: http::HeaderMap,
        Json(subscription): Json<Subscription>,
    ) {
        let agent = headers
            .get("user-agent")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("unknown")
            .to_owned();
        yield format!("agent {agent}");
        for symbol in subscription.symbols {
            yield format!("{symbol} in {}", prices.currency);
        }
    }
}

#[tokio::test]
async fn state_header_map_and_a_json_body_are_extracted_as_in_any_handler() {
    let app = Router::new()
        .route("/", post(subscribe))
        .with_state(Prices { currency: "EUR" });
    let request = Request::post("/")
        .header("content-type", "application/json")
        .header("user-agent", "test")
        .body(Body::from(r#"{"symbols":["AAPL","MSFT"]}"#))
        .unwrap();
    let body = body_of(call(app, request).await).await;
    assert_eq!(
        text(&body),
        "data: agent test\r\n\r\ndata: AAPL in EUR\r\n\r\ndata: MSFT in EUR\r\n\r\n"
    );
}

#[tokio::test]
async fn a_failing_extractor_rejects_the_request_before_any_stream_starts() {
    let app = Router::new()
        .route("/", post(subscribe))
        .with_state(Prices { currency: "EUR" });
    let request = Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from("not json"))
        .unwrap();
    let response = call(app, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

struct Feed;

impl Feed {
    sse! {
        #[sse_endpoint(ping = 0)]
        pub async fn associated(Path(n): Path<u8>) {
            yield n;
        }
    }
}

#[tokio::test]
async fn an_associated_fn_is_a_handler() {
    let app = Router::new().route("/{n}", get(Feed::associated));
    let body = body_of(get_response(app, "/9").await).await;
    assert_eq!(text(&body), "data: 9\r\n\r\n");
}
