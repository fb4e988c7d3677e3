//! The metrics of the `metrics` feature through a recorder of zero size, as the facade's no-op
//! recorder is: such a recorder makes a stream keep no probe of its own (each count goes to
//! the facade as it happens, see `sse_runtime::observe`), and it must still get every count,
//! exactly. This one forwards to a registry in a static; it is the process's global recorder
//! (a test binary of its own, so no other recorder is installed before it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use sse_runtime::{ServerSentEvent, sse};
use tests::{HttpStream, serve_sse};

/// Every sample by its key as exported (`name` or `name{label="value"}`).
fn registry() -> &'static Mutex<HashMap<String, f64>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, f64>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn sample(name: &str) -> f64 {
    let registry = registry().lock().unwrap();
    registry.get(name).copied().unwrap_or(0.0)
}

struct Sample(String);

impl Sample {
    fn of(key: &Key) -> Arc<Self> {
        let mut name = key.name().to_owned();
        let labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}=\"{}\"", label.key(), label.value()))
            .collect();
        if !labels.is_empty() {
            name = format!("{name}{{{}}}", labels.join(","));
        }
        Arc::new(Self(name))
    }

    fn add(&self, value: f64) {
        *registry()
            .lock()
            .unwrap()
            .entry(self.0.clone())
            .or_default() += value;
    }
}

impl CounterFn for Sample {
    fn increment(&self, value: u64) {
        self.add(value as f64);
    }

    fn absolute(&self, value: u64) {
        registry()
            .lock()
            .unwrap()
            .insert(self.0.clone(), value as f64);
    }
}

impl GaugeFn for Sample {
    fn increment(&self, value: f64) {
        self.add(value);
    }

    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    fn set(&self, value: f64) {
        registry().lock().unwrap().insert(self.0.clone(), value);
    }
}

/// Of zero size: everything it records goes to the static registry.
struct Forwarding;

impl Recorder for Forwarding {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Sample::of(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Sample::of(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

sse! {
    // With a `retry:` prelude, which counts as bytes sent and not as an event.
    #[sse_endpoint(ping = 0, retry = 1500)]
    async fn finite() {
        for i in 1..=3 {
            yield ServerSentEvent::new().data(i);
        }
    }

    // One event, then a ping a second until the client leaves.
    #[sse_endpoint(ping = 1)]
    async fn pinging() {
        yield ServerSentEvent::new().data("x");
        std::future::pending::<()>().await;
    }
}

#[tokio::test]
async fn a_recorder_of_zero_size_gets_exact_counts() {
    assert_eq!(size_of::<Forwarding>(), 0);
    metrics::set_global_recorder(Forwarding).unwrap();
    let app = Router::new()
        .route("/finite", get(finite))
        .route("/pinging", get(pinging));
    let server = serve_sse(app).await;

    let mut finite = HttpStream::get(&server.url("/finite"), &[]).await;
    let finite_bytes = finite.to_end().await.len();
    let mut pinging = HttpStream::get(&server.url("/pinging"), &[]).await;
    // The first ping comes a second after the stream started; the next, a second later.
    // (A ping is one frame, `: ping - <time>` and a blank line, so it arrives whole.)
    let pinged = pinging.until(": ping - ").await;
    assert!(pinged.ends_with("\r\n\r\n"), "{pinged:?}");
    let pinging_bytes = pinged.len();
    drop(pinging);

    let closed = r#"sse_streams_closed_total{reason="client_disconnected"}"#;
    for _ in 0..300 {
        if sample(closed) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let expect = [
        ("sse_streams_open", 0.0),
        ("sse_streams_opened_total", 2.0),
        (r#"sse_streams_closed_total{reason="completed"}"#, 1.0),
        (closed, 1.0),
        ("sse_events_sent_total", 3.0 + 1.0),
        (
            "sse_sent_bytes_total",
            (finite_bytes + pinging_bytes) as f64,
        ),
        ("sse_pings_sent_total", 1.0),
    ];
    for (name, value) in expect {
        assert_eq!(
            sample(name),
            value,
            "{name} in {:?}",
            registry().lock().unwrap()
        );
    }
}
