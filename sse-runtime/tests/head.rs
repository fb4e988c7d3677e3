//! A `HEAD` request is not a departing client (sse-starlette 3.7, its issue #218): it gets the
//! headers alone, the stream never starts, the client-close hooks do not run, and the close
//! hooks and background tasks see `CloseReason::HeadRequest`. Health-check probes send HEAD.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{Log, WITHIN, hooks, settle};
use futures_util::StreamExt;
use futures_util::stream;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use sse_runtime::{CloseHooks, EventSourceResponse, SseContext, sse};
use tower::ServiceExt;

fn request(method: Method) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/events")
        .body(Body::empty())
        .unwrap()
}

/// Sends `method` to `app` and returns the status, the content type and the body.
async fn call(app: Router, method: Method) -> (StatusCode, String, Vec<u8>) {
    let response = app.oneshot(request(method)).await.unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = tokio::time::timeout(WITHIN, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    (status, content_type, body.to_vec())
}

fn builder_app(log: &Log) -> Router {
    let log = log.clone();
    Router::new().route(
        "/events",
        get(move |context: SseContext| {
            let log = log.clone();
            async move {
                let polled = log.clone();
                let guard = log.on_drop("source_dropped");
                let source = stream::iter(["a", "b"]).inspect(move |_| {
                    let _keep = &guard;
                    polled.push("source_polled");
                });
                hooks(EventSourceResponse::new(source), &log).context(context)
            }
        }),
    )
}

#[tokio::test]
async fn head_sends_the_headers_alone_and_never_starts_the_stream() {
    let log = Log::default();
    let (status, content_type, body) = call(builder_app(&log), Method::HEAD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/event-stream; charset=utf-8");
    assert!(body.is_empty());
    settle().await;
    assert_eq!(
        log.entries(),
        ["source_dropped", "close:HeadRequest", "background"]
    );
}

#[tokio::test]
async fn get_on_the_same_route_still_streams() {
    let log = Log::default();
    let (status, _, body) = call(builder_app(&log), Method::GET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"data: a\r\n\r\ndata: b\r\n\r\n");
    settle().await;
    assert_eq!(
        log.entries(),
        [
            "source_polled",
            "source_polled",
            "source_dropped",
            "close:Completed",
            "background"
        ]
    );
}

static MACRO_CLOSES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record_close(reason: sse_runtime::CloseReason) {
    MACRO_CLOSES
        .lock()
        .unwrap()
        .push(format!("close:{reason:?}"));
}

fn record_client_close() {
    MACRO_CLOSES.lock().unwrap().push("client_close".into());
}

sse! {
    #[sse_endpoint(on_close = record_close, on_client_close = record_client_close)]
    async fn endpoint(hooks: CloseHooks, axum::extract::State(log): axum::extract::State<Log>) {
        let (a, b) = (log.clone(), log.clone());
        hooks.on_client_close(move || a.push("client_close"));
        hooks.on_close(move |reason| b.push(format!("close:{reason:?}")));
        log.push("body_ran");
        yield "a";
    }
}

#[tokio::test]
async fn head_on_a_macro_endpoint_runs_no_body_and_no_client_close_hook() {
    let log = Log::default();
    let app = Router::new()
        .route("/events", get(endpoint))
        .with_state(log.clone());
    let (status, _, body) = call(app, Method::HEAD).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    settle().await;
    // The hooks registered at run time were never registered: the body never ran.
    assert_eq!(log.entries(), Vec::<String>::new());
    assert_eq!(*MACRO_CLOSES.lock().unwrap(), ["close:HeadRequest"]);
}
