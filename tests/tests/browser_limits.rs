//! A real browser against a stream limit: with a cap of one, page A holds the only place; page
//! B's `EventSource` is refused with a `retry:` hint again and again, never gives up, and gets
//! its stream once A has left; across refusals it keeps its `Last-Event-ID`. And the reason the
//! refusal is a `200`: Chromium's `EventSource` gives up for good on a `503` (whatever its
//! `Retry-After`) and on a `204`.
//!
//! Skipped where Chromium is not installed, unless `SSE_REQUIRE_BROWSER` is set (CI sets it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::Value;
use sse_runtime::limit::{Refusal, RetryHint, StreamLimit};
use sse_runtime::{CloseReason, EventSourceResponse, ServerSentEvent, SseContext};
use tests::WITHIN;
use tests::browser::{Browser, Page};
use tokio::time::Instant;

/// The hint of the refusals: 200 to 400 ms.
const RETRY: RetryHint =
    RetryHint::new(Duration::from_millis(200)).jitter(Duration::from_millis(200));

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>stream limits</title>
<script>
const who = new URLSearchParams(location.search).get("who");
window.log = { opens: 0, errors: 0, errorStates: [], closedEver: false, received: [] };
window.source = new EventSource("/events?who=" + who);
source.onopen = () => { log.opens += 1; };
source.onerror = () => {
  log.errors += 1;
  log.errorStates.push(source.readyState);
  if (source.readyState === EventSource.CLOSED) log.closedEver = true;
};
source.onmessage = (event) => { log.received.push(event.data); };
// Between two samples `readyState` could only be CLOSED and back if a page reopened it,
// which this page never does; the error handler sees every transition anyway.
setInterval(() => {
  if (source.readyState === EventSource.CLOSED) log.closedEver = true;
}, 10);
</script>
"#;

/// What the server saw, in order, with when.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, Instant)>>>);

impl Seen {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push((entry, Instant::now()));
    }

    fn entries(&self) -> Vec<(String, Instant)> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, entry: &str) -> usize {
        self.entries().iter().filter(|(e, _)| e == entry).count()
    }

    fn first(&self, entry: &str) -> Option<Instant> {
        self.entries()
            .into_iter()
            .find_map(|(e, at)| (e == entry).then_some(at))
    }

    async fn wait_for(&self, entry: &str, times: usize) {
        let deadline = Instant::now() + WITHIN;
        while self.count(entry) < times {
            assert!(
                Instant::now() < deadline,
                "waited for {times} x {entry:?}; saw {:?}",
                self.entries().iter().map(|(e, _)| e).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Ticks `<who>-1`, `<who>-2`, .. every 100 ms (B's streams end after three); the server logs
/// `<who>:request`, `<who>:polled` at the first poll (a refused stream is never polled) and
/// `<who>:<reason>` when it closes.
async fn events(
    State(seen): State<Seen>,
    Query(query): Query<HashMap<String, String>>,
    context: SseContext,
) -> EventSourceResponse {
    let who = query.get("who").cloned().unwrap_or_default();
    seen.push(format!("{who}:request"));
    let length = if who == "b" { 3 } else { usize::MAX };
    let (polled, closed) = (seen.clone(), seen);
    let (name, tag) = (who.clone(), who.clone());
    let mut first = true;
    let ticks = ticks_every(Duration::from_millis(100))
        .enumerate()
        .map(move |(i, ())| {
            if std::mem::take(&mut first) {
                polled.push(format!("{name}:polled"));
            }
            format!("{name}-{}", i + 1)
        })
        .take(length);
    EventSourceResponse::new(ticks)
        .on_close(move |reason: CloseReason| closed.push(format!("{tag}:{reason:?}")))
        .context(context)
}

/// A tick every `period`, the first one period in.
fn ticks_every(period: Duration) -> impl futures_util::Stream<Item = ()> + Send {
    futures_util::stream::unfold(
        tokio::time::interval_at(Instant::now() + period, period),
        |mut interval| async move {
            interval.tick().await;
            Some(((), interval))
        },
    )
}

async fn log_of(page: &Page<'_>) -> Value {
    page.evaluate("window.log").await
}

fn received(log: &Value) -> Vec<String> {
    log["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|data| data.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_refused_page_keeps_reconnecting_and_gets_its_stream_once_there_is_room() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let limit = StreamLimit::new(1).retry(RETRY);
    let seen = Seen::default();
    let app = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .with_state(seen.clone())
        .layer(limit.layer());
    let server = tests::serve_sse(app).await;

    // A takes the only place and receives its events.
    let a = browser.open(&server.url("/?who=a")).await;
    a.wait_for("window.log.received.length", |n| n.as_u64() >= Some(2))
        .await;
    assert_eq!(limit.open(), 1);

    // B is refused, and comes back, again and again, while A holds the place.
    let b = browser.open(&server.url("/?who=b")).await;
    seen.wait_for("b:Refused", 4).await;
    let b_log = log_of(&b).await;
    assert!(received(&b_log).is_empty(), "{b_log}");
    assert_eq!(seen.count("b:polled"), 0, "a refused stream never runs");
    let a_log = log_of(&a).await;
    assert!(received(&a_log).len() >= 2, "A kept its stream: {a_log}");

    // Each comeback waited for the hint (200 to 400 ms, plus the round trips) rather than
    // hammering, and no longer than that: Chromium's own delay, without a hint, is 3 s.
    let refusals: Vec<Instant> = seen
        .entries()
        .into_iter()
        .filter_map(|(e, at)| (e == "b:Refused").then_some(at))
        .collect();
    let gaps: Vec<Duration> = refusals.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("B came back after {gaps:?}");
    for gap in &gaps {
        assert!(*gap >= Duration::from_millis(180), "too soon: {gaps:?}");
        assert!(
            *gap < Duration::from_secs(2),
            "the hint was not followed: {gaps:?}"
        );
    }

    // A leaves; B gets the place and its events.
    a.evaluate("window.source.close()").await;
    seen.wait_for("a:ClientDisconnected", 1).await;
    let left = seen.first("a:ClientDisconnected").unwrap();
    b.wait_for("window.log.received.length", |n| n.as_u64() >= Some(3))
        .await;
    let b_log = log_of(&b).await;
    assert_eq!(received(&b_log)[..3], ["b-1", "b-2", "b-3"], "{b_log}");
    let joined = seen.first("b:polled").expect("B's stream ran");
    assert!(joined > left, "B got in after A left");

    // B's stream ends after three events; B reconnects after the delay the last refusal set,
    // which is still its reconnection time (not Chromium's 3 s).
    b.wait_for("window.log.received.length", |n| n.as_u64() >= Some(6))
        .await;
    let b_log = log_of(&b).await;
    assert_eq!(received(&b_log)[3..6], ["b-1", "b-2", "b-3"], "{b_log}");
    let ended = seen.first("b:Completed").unwrap();
    let back = seen
        .entries()
        .into_iter()
        .find_map(|(e, at)| (e == "b:request" && at > ended).then_some(at))
        .unwrap();
    let delay = back - ended;
    eprintln!("after its stream ended B came back in {delay:?}");
    assert!(
        Duration::from_millis(180) <= delay && delay < Duration::from_secs(2),
        "{delay:?}"
    );

    // B never gave up: every error it saw left it CONNECTING (0), never CLOSED (2).
    let refused = seen.count("b:Refused");
    assert_eq!(b_log["closedEver"], Value::Bool(false), "{b_log}");
    let states = b_log["errorStates"].as_array().unwrap();
    assert!(states.iter().all(|state| state == 0), "{b_log}");
    assert!(states.len() >= refused, "an error per refusal: {b_log}");
    // A refusal looks like a short stream to the page: `open`, then `error`, each time.
    assert!(
        b_log["opens"].as_u64().unwrap() as usize > refused,
        "{b_log}"
    );
    eprintln!("B was refused {refused} times; its log: {b_log}");

    browser.close().await;
}

const GIVE_UP_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>non-200</title>
<script>
window.states = {};
for (const path of ["/unavailable", "/no-content"]) {
  const source = new EventSource(path);
  window.states[path] = () => source.readyState;
}
</script>
"#;

#[tokio::test]
async fn a_503_or_a_204_makes_event_source_give_up_for_good() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    // The 503 form of a full limit, with a short Retry-After (1 s).
    let unavailable_limit = StreamLimit::new(0)
        .retry(RETRY)
        .refusal(Refusal::ServiceUnavailable);
    let unavailable = Arc::new(AtomicUsize::new(0));
    let no_content = Arc::new(AtomicUsize::new(0));
    let (u, n) = (unavailable.clone(), no_content.clone());
    let app = Router::new()
        .route("/", get(|| async { Html(GIVE_UP_PAGE) }))
        .route(
            "/unavailable",
            get(move |context: SseContext| {
                u.fetch_add(1, Ordering::SeqCst);
                async move {
                    EventSourceResponse::new(futures_util::stream::pending::<&str>())
                        .context(context)
                }
            })
            .layer(unavailable_limit.layer()),
        )
        .route(
            "/no-content",
            get(move || {
                n.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::NO_CONTENT }
            }),
        );
    let server = tests::serve_sse(app).await;
    let page = browser.open(&server.url("/")).await;
    let states = r#"[window.states["/unavailable"](), window.states["/no-content"]()]"#;
    page.wait_for(states, |states| *states == serde_json::json!([2, 2]))
        .await;
    // Well past the Retry-After and the hint: neither came back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(page.evaluate(states).await, serde_json::json!([2, 2]));
    assert_eq!(unavailable.load(Ordering::SeqCst), 1);
    assert_eq!(no_content.load(Ordering::SeqCst), 1);
    browser.close().await;
}

/// Events with ids `n`, data `<who>-<n>`, every 100 ms, from after the request's
/// `Last-Event-ID`. B's first stream sends two, asks for a reconnect in 2 s, and ends.
async fn numbered(
    State(seen): State<Seen>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    context: SseContext,
) -> EventSourceResponse {
    let who = query.get("who").cloned().unwrap_or_default();
    let last = headers
        .get("last-event-id")
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned);
    seen.push(format!("{who}:request:{}", last.as_deref().unwrap_or("-")));
    let after: u64 = last.and_then(|id| id.parse().ok()).unwrap_or(0);
    let first_of_b = who == "b" && after == 0;
    let (polled, closed) = (seen.clone(), seen);
    let (name, tag) = (who.clone(), who);
    let mut first = true;
    let events = ticks_every(Duration::from_millis(100))
        .enumerate()
        .map(move |(i, ())| {
            if std::mem::take(&mut first) {
                polled.push(format!("{name}:polled"));
            }
            let n = after + i as u64 + 1;
            ServerSentEvent::new().id(n).data(format!("{name}-{n}"))
        })
        .take(if first_of_b { 2 } else { usize::MAX });
    let response = EventSourceResponse::new(events)
        .on_close(move |reason: CloseReason| closed.push(format!("{tag}:{reason:?}")))
        .context(context);
    if first_of_b {
        response.retry(2000)
    } else {
        response
    }
}

#[tokio::test]
async fn a_refused_page_keeps_its_last_event_id_and_resumes_after_it() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let limit = StreamLimit::new(1).retry(RETRY);
    let seen = Seen::default();
    let app = Router::new()
        .route("/", get(page))
        .route("/events", get(numbered))
        .with_state(seen.clone())
        .layer(limit.layer());
    let server = tests::serve_sse(app).await;

    // B gets events 1 and 2, then its stream ends; it will be back in 2 s.
    let b = browser.open(&server.url("/?who=b")).await;
    seen.wait_for("b:Completed", 1).await;
    let ended = seen.first("b:Completed").unwrap();
    // Meanwhile A takes the place.
    let a = browser.open(&server.url("/?who=a")).await;
    a.wait_for("window.log.received.length", |n| n.as_u64() >= Some(1))
        .await;
    let taken = seen.first("a:polled").unwrap();
    assert!(
        taken - ended < Duration::from_secs(2),
        "A took the place only after B's reconnect was due"
    );

    // B comes back with its Last-Event-ID and is refused, again and again.
    seen.wait_for("b:Refused", 3).await;
    a.evaluate("window.source.close()").await;
    b.wait_for("window.log.received.length", |n| n.as_u64() >= Some(4))
        .await;
    let b_log = log_of(&b).await;
    assert_eq!(
        received(&b_log)[..4],
        ["b-1", "b-2", "b-3", "b-4"],
        "{b_log}"
    );
    assert_eq!(b_log["closedEver"], Value::Bool(false), "{b_log}");

    // Every request of B after the first sent the last id it had received: refusals, which
    // carry no id, left it as it was.
    let requests: Vec<String> = seen
        .entries()
        .into_iter()
        .filter_map(|(e, _)| e.strip_prefix("b:request:").map(str::to_owned))
        .collect();
    eprintln!("B's requests, by Last-Event-ID: {requests:?}");
    assert_eq!(requests[0], "-");
    assert!(requests.len() >= 5, "{requests:?}");
    assert!(requests[1..].iter().all(|id| id == "2"), "{requests:?}");

    browser.close().await;
}
