//! The browser driver itself: a page served in process receives events through `EventSource`.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use futures_util::stream::{self, StreamExt};
use sse_runtime::{EventSourceResponse, ServerSentEvent};
use tests::browser::Browser;

#[tokio::test]
async fn a_browser_event_source_receives_events() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                Html(
                    "<script>window.got = []; const es = new EventSource('/events'); \
                     es.addEventListener('greeting', (e) => window.got.push(e.data));</script>",
                )
            }),
        )
        .route(
            "/events",
            get(|| async {
                let events = stream::iter(["hello", "world"])
                    .map(|text| ServerSentEvent::new().event("greeting").data(text))
                    .chain(stream::pending());
                EventSourceResponse::new(events)
            }),
        );
    let server = tests::serve(app).await;
    let mut page = browser.open(&server.url("/")).await;
    let got = page
        .wait_for("window.got", |value| {
            value.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    assert_eq!(got, serde_json::json!(["hello", "world"]));
    browser.close().await;
}
