//! A real browser across reconnects: while a publisher keeps publishing, the server cuts the
//! page's connection mid-stream again and again (cleanly, and abruptly without the terminating
//! chunk); Chromium's `EventSource` reconnects by itself with `Last-Event-ID`, and the page ends
//! with every event exactly once, in order.
//!
//! Skipped where Chromium is not installed, unless `SSE_REQUIRE_BROWSER` is set (CI sets it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::get;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use sse_runtime::resume::{Hub, MemoryStore};
use sse_runtime::{BoxError, EventSourceResponse, LastEventId, ServerSentEvent, SseContext};
use tests::browser::Browser;

/// How many events the publisher publishes.
const EVENTS: u64 = 200;
/// How far apart.
const PACE: Duration = Duration::from_millis(15);
/// How many events each connection gets before the server cuts it, in turn: varying, some
/// shorter than what a reconnect has to replay, some longer.
const CUTS: [usize; 9] = [7, 3, 12, 1, 9, 5, 15, 2, 11];
/// How long the whole run may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(60);

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>resume across cuts</title>
<script>
window.received = [];
window.ids = [];
window.resets = [];
window.opens = 0;
window.errors = 0;
const source = new EventSource("/events?last_event_id={{head}}");
source.onopen = () => { window.opens += 1; };
source.onerror = () => { window.errors += 1; };
source.onmessage = (event) => {
  window.received.push(Number(event.data));
  window.ids.push(event.lastEventId);
};
source.addEventListener("reset", (event) => { window.resets.push(event.data); });
</script>
"#;

#[derive(Clone)]
struct App {
    hub: Hub,
    /// Connections to `/events` so far.
    connections: Arc<AtomicUsize>,
    /// Connections that were cut abruptly (the body failed after its events).
    aborted: Arc<AtomicUsize>,
    /// Per connection: where it resumed from, and whether the cursor came in the header.
    cursors: Arc<Mutex<Vec<(String, bool)>>>,
}

async fn page(State(app): State<App>) -> Html<String> {
    let head = app.hub.head().await.unwrap();
    Html(PAGE.replace("{{head}}", &head.to_string()))
}

/// Resumes from the client's cursor and cuts the connection after a few events: every third
/// connection abruptly (the body fails: no terminating chunk), the others with a clean end.
async fn events(
    State(app): State<App>,
    since: LastEventId,
    headers: HeaderMap,
    context: SseContext,
) -> EventSourceResponse {
    let n = app.connections.fetch_add(1, Ordering::SeqCst);
    app.cursors
        .lock()
        .unwrap()
        .push((since.to_string(), headers.contains_key("last-event-id")));
    let cut = CUTS[n % CUTS.len()];
    let resume = app.hub.resume(["numbers"], since).await.take(cut);
    let response = if n % 3 == 1 {
        let aborted = app.aborted.clone();
        let failure = stream::once(async move {
            // Long enough for the events before it to go out: the cut comes mid-stream, after
            // the page has them, not before the response head.
            tokio::time::sleep(Duration::from_millis(30)).await;
            aborted.fetch_add(1, Ordering::SeqCst);
            Err::<sse_runtime::Payload, BoxError>("cut mid-stream".into())
        });
        EventSourceResponse::from_try_stream(resume.map(Ok).chain(failure))
    } else {
        EventSourceResponse::new(resume)
    };
    response.retry(100).context(context)
}

#[tokio::test]
async fn a_browser_gets_every_event_once_in_order_across_server_cuts() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let app = App {
        hub: Hub::builder().store(MemoryStore::new(1000)).build(),
        connections: Arc::default(),
        aborted: Arc::default(),
        cursors: Arc::default(),
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .with_state(app.clone());
    let server = tests::serve_sse(router).await;
    let page = browser.open(&server.url("/")).await;

    // The page was rendered with the head (nothing published yet), so whatever the publisher
    // sends before its first connection is replayed to it.
    let hub = app.hub.clone();
    let publisher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(PACE);
        for i in 1..=EVENTS {
            tick.tick().await;
            hub.publish("numbers", ServerSentEvent::new().data(i))
                .await
                .unwrap();
        }
    });

    let state = "{ received: window.received, ids: window.ids, resets: window.resets, \
                 opens: window.opens, errors: window.errors }";
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = page.evaluate(state).await;
        if now["received"].as_array().map_or(0, Vec::len) as u64 >= EVENTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {DEADLINE:?}: {} connections, cursors {:?}, page {now}",
            app.connections.load(Ordering::SeqCst),
            app.cursors.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.await.unwrap();
    // Anything still in flight would show as a duplicate or an extra.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = page.evaluate(state).await;

    let received: Vec<u64> = last["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap_or(0))
        .collect();
    let expected: Vec<u64> = (1..=EVENTS).collect();
    let cursors = app.cursors.lock().unwrap().clone();
    assert_eq!(
        received, expected,
        "every event once, in order; cursors {cursors:?}"
    );
    assert_eq!(last["resets"], Value::Array(Vec::new()), "no gap: {last}");

    // The ids the page saw are the hub's, numbered like the data.
    let ids = last["ids"].as_array().unwrap();
    for (id, n) in ids.iter().zip(1..) {
        let id = id.as_str().unwrap();
        assert!(id.ends_with(&format!(":{n}")), "id {id} of event {n}");
    }

    let connections = app.connections.load(Ordering::SeqCst);
    let opens = last["opens"].as_u64().unwrap();
    assert!(
        connections >= 4 && opens >= 4,
        "reconnected at least 3 times: {connections} connections, {opens} opens"
    );
    assert!(
        app.aborted.load(Ordering::SeqCst) >= 1,
        "at least one connection was cut abruptly"
    );
    // The first connection resumed from the head in the page's URL; every reconnect sent the
    // last id it had as `Last-Event-ID`, a valid cursor of this history.
    let epoch = app.hub.head().await.unwrap().epoch().to_string();
    assert_eq!(cursors[0], (format!("{epoch}:0"), false), "{cursors:?}");
    for (cursor, header) in &cursors[1..] {
        assert!(
            *header && cursor.starts_with(&format!("{epoch}:")),
            "{cursors:?}"
        );
    }

    eprintln!(
        "{connections} connections ({} cut abruptly), {opens} opens, {} errors seen by the page",
        app.aborted.load(Ordering::SeqCst),
        last["errors"]
    );
    browser.close().await;
}
