//! The metrics of the `metrics` feature (`sse_runtime::observe::names`): a scripted scenario
//! over real HTTP with a Prometheus recorder installed, and the exact counts it exports.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use futures_util::StreamExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use sse_runtime::broadcast::LagPolicy;
use sse_runtime::limit::StreamLimit;
use sse_runtime::resume::{Hub, MemoryStore};
use sse_runtime::{Broadcast, LastEventId, ServerSentEvent, sse};
use tests::{HttpStream, serve_sse};

sse! {
    // With a `retry:` prelude, which counts as bytes sent and not as an event.
    #[sse_endpoint(ping = 0, retry = 1500)]
    async fn finite() {
        for i in 1..=3 {
            yield ServerSentEvent::new().data(i);
        }
    }

    #[sse_endpoint(ping = 0)]
    async fn resumed(State(hub): State<Hub>, since: LastEventId) {
        for await event in hub.resume(["t"], since).await {
            yield event;
        }
    }
}

/// The value of the sample `name` (with its labels, as exported), 0 if absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_scripted_scenario_exports_exact_counts() {
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    let hub = Hub::builder()
        .store(MemoryStore::new(100))
        .capacity(2)
        .build();
    let app = Router::new()
        .route("/finite", get(finite))
        .route("/resumed", get(resumed))
        .route("/full", get(finite).layer(StreamLimit::new(0).layer()))
        .with_state(hub.clone());
    let server = serve_sse(app).await;

    // One stream that completes: 3 events.
    let mut finite = HttpStream::get(&server.url("/finite"), &[]).await;
    let finite_body = finite.to_end().await;
    assert!(
        finite_body.starts_with("retry: 1500\r\n\r\n"),
        "{finite_body}"
    );
    let finite_bytes = finite_body.len();
    // One resume that replays 2 events, then leaves.
    let first = hub
        .publish("t", ServerSentEvent::new().data("a"))
        .await
        .unwrap();
    for data in ["b", "c"] {
        hub.publish("t", ServerSentEvent::new().data(data))
            .await
            .unwrap();
    }
    let cursor = first.to_string();
    let mut replay = HttpStream::get(&server.url("/resumed"), &[("last-event-id", &cursor)]).await;
    let replay_bytes = replay.until("data: c\r\n\r\n").await.len();
    drop(replay);
    // One resume that meets a gap: the reset is its one event.
    let mut gap = HttpStream::get(&server.url("/resumed"), &[("last-event-id", "bogus")]).await;
    let gap_bytes = gap.until("data: invalid\r\n\r\n").await.len();
    drop(gap);

    // Two refusals, one by a stream limit, one by a hub: neither counts as a stream.
    let mut refused = HttpStream::get(&server.url("/full"), &[]).await;
    assert!(refused.to_end().await.starts_with("retry: "));
    let full = Hub::builder().max_subscribers_per_topic(0).build();
    assert!(full.resume(["x"], LastEventId::None).await.is_refused());

    // Two subscribers that lag, one of each hub (on a topic of its own, so that the streams
    // above, which may not have noticed their clients left, do not lag too).
    let mut lagging = hub.resume(["lag"], LastEventId::None).await;
    for data in 0..5 {
        hub.publish("lag", ServerSentEvent::new().data(data))
            .await
            .unwrap();
    }
    assert!(lagging.next().await.is_none(), "ended, not skipped");
    let broadcast = Broadcast::builder(2).lag_policy(LagPolicy::Skip).build();
    let mut slow = broadcast.subscribe();
    for i in 0..5 {
        broadcast.send(i).unwrap();
    }
    slow.next().await.unwrap();

    let mut text = String::new();
    for _ in 0..300 {
        text = prometheus.render();
        if sample(
            &text,
            r#"sse_streams_closed_total{reason="client_disconnected"}"#,
        ) == 2.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let expect = [
        ("sse_streams_open", 0.0),
        ("sse_streams_opened_total", 3.0),
        (r#"sse_streams_closed_total{reason="completed"}"#, 1.0),
        (
            r#"sse_streams_closed_total{reason="client_disconnected"}"#,
            2.0,
        ),
        ("sse_events_sent_total", 3.0 + 2.0 + 1.0),
        (
            "sse_sent_bytes_total",
            (finite_bytes + replay_bytes + gap_bytes) as f64,
        ),
        ("sse_pings_sent_total", 0.0),
        ("sse_replays_total", 1.0),
        ("sse_replayed_events_total", 2.0),
        (r#"sse_resume_gaps_total{reason="invalid"}"#, 1.0),
        (r#"sse_lagged_subscribers_total{hub="resume"}"#, 1.0),
        (r#"sse_lagged_subscribers_total{hub="broadcast"}"#, 1.0),
        (r#"sse_streams_refused_total{by="stream_limit"}"#, 1.0),
        (r#"sse_streams_refused_total{by="hub"}"#, 1.0),
    ];
    for (name, value) in expect {
        assert_eq!(sample(&text, name), value, "{name} in:\n{text}");
    }
}
