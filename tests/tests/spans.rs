//! The span of every stream (`sse_runtime::observe`): a scripted scenario over real HTTP,
//! captured by a `tracing` layer, and the fields each stream's span closed with.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sse_runtime::resume::Hub;
use sse_runtime::{LastEventId, ServerSentEvent, sse};
use tests::{HttpStream, serve_sse};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The fields of one span.
type Fields = BTreeMap<String, String>;

#[derive(Default)]
struct Visitor(Fields);

impl Visit for Visitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Keeps every `sse_stream` span's fields, and hands them over when the span closes.
struct Capture(Arc<Mutex<Vec<Fields>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        if attrs.metadata().name() != "sse_stream" {
            return;
        }
        let mut visitor = Visitor::default();
        attrs.record(&mut visitor);
        cx.span(id).unwrap().extensions_mut().insert(visitor);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        if let Some(span) = cx.span(id)
            && let Some(visitor) = span.extensions_mut().get_mut::<Visitor>()
        {
            values.record(visitor);
        }
    }

    /// An event logged inside a stream's span adds its message to the span's fields.
    fn on_event(&self, event: &tracing::Event<'_>, cx: Context<'_, S>) {
        let Some(span) = cx.event_span(event) else {
            return;
        };
        let mut message = Visitor::default();
        event.record(&mut message);
        if let Some(text) = message.0.remove("message")
            && let Some(visitor) = span.extensions_mut().get_mut::<Visitor>()
        {
            let logged = visitor.0.entry("logged".to_owned()).or_default();
            logged.push_str(&text);
            logged.push('\n');
        }
    }

    fn on_close(&self, id: Id, cx: Context<'_, S>) {
        if let Some(span) = cx.span(&id)
            && let Some(visitor) = span.extensions_mut().remove::<Visitor>()
        {
            self.0.lock().unwrap().push(visitor.0);
        }
    }
}

fn closed_spans() -> Arc<Mutex<Vec<Fields>>> {
    static SPANS: OnceLock<Arc<Mutex<Vec<Fields>>>> = OnceLock::new();
    SPANS
        .get_or_init(|| {
            let spans = Arc::new(Mutex::new(Vec::new()));
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::DEBUG)
                .with(Capture(spans.clone()));
            tracing::subscriber::set_global_default(subscriber).unwrap();
            spans
        })
        .clone()
}

/// Waits for the span of the stream of `route` whose field `key` is `value` to close.
async fn span_of(route: &str, key: &str, value: &str) -> Fields {
    let spans = closed_spans();
    for _ in 0..500 {
        if let Some(fields) = spans.lock().unwrap().iter().find(|fields| {
            fields.get("route").map(String::as_str) == Some(route)
                && fields.get(key).map(String::as_str) == Some(value)
        }) {
            return fields.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no closed span of {route} with {key}={value}: {:?}",
        spans.lock().unwrap()
    );
}

sse! {
    #[sse_endpoint(ping = 0)]
    async fn finite() {
        tracing::info!("from the stream's own code");
        for i in 1..=3 {
            yield ServerSentEvent::new().data(i);
        }
    }

    #[sse_endpoint(ping = 0.05)]
    async fn idle() {
        std::future::pending::<()>().await;
        yield "never";
    }

    #[sse_endpoint(ping = 0)]
    async fn resumed(State(hub): State<Hub>, since: LastEventId) {
        for await event in hub.resume(["news", "sport"], since).await {
            yield event;
        }
    }
}

#[tokio::test]
async fn every_stream_has_a_span_that_records_how_it_went() {
    let _ = closed_spans();
    let hub = Hub::new();
    let app = Router::new()
        .route("/finite", get(finite))
        .route("/idle", get(idle))
        .route("/resumed", get(resumed))
        .with_state(hub.clone());
    let server = serve_sse(app).await;

    // A stream that completes: its events, its bytes, no pings.
    let mut stream = HttpStream::get(&server.url("/finite"), &[]).await;
    let body = stream.to_end().await.to_owned();
    let span = span_of("/finite", "reason", "completed").await;
    assert_eq!(span["events"], "3");
    assert_eq!(span["bytes"], body.len().to_string());
    assert_eq!(span["pings"], "0");
    assert_eq!(span["http.version"], "HTTP/1.1");
    // What the stream logs belongs to its span, and the span's farewell ends it.
    assert_eq!(
        span["logged"],
        "from the stream's own code\nserver-sent event stream closed\n"
    );
    assert!(span["peer"].starts_with("127.0.0.1:"), "{span:?}");
    assert!(span.contains_key("duration_ms"), "{span:?}");

    // A client that leaves after two pings.
    let mut stream = HttpStream::get(&server.url("/idle"), &[]).await;
    stream.until(": ping").await;
    // Pings every 50 ms: at least two more go out meanwhile (the socket buffers take them).
    tokio::time::sleep(Duration::from_millis(250)).await;
    drop(stream);
    let span = span_of("/idle", "reason", "client disconnected").await;
    assert!(span["pings"].parse::<u32>().unwrap() >= 2, "{span:?}");
    assert_eq!(span["events"], "0");

    // A resumed stream: its topics and how much it replayed.
    let first = hub
        .publish("news", ServerSentEvent::new().data("a"))
        .await
        .unwrap();
    for data in ["b", "c"] {
        hub.publish("sport", ServerSentEvent::new().data(data))
            .await
            .unwrap();
    }
    let cursor = first.to_string();
    let mut stream = HttpStream::get(&server.url("/resumed"), &[("last-event-id", &cursor)]).await;
    stream.until("data: c").await;
    drop(stream);
    let span = span_of("/resumed", "replayed", "2").await;
    assert_eq!(span["topics"], "news,sport");
    assert_eq!(span["reason"], "client disconnected");
    assert!(!span.contains_key("gap"), "{span:?}");

    // A resume that met a gap.
    let mut stream = HttpStream::get(&server.url("/resumed"), &[("last-event-id", "bogus")]).await;
    stream.until("event: reset").await;
    drop(stream);
    let span = span_of("/resumed", "gap", "invalid").await;
    assert_eq!(span["events"], "1");
}
