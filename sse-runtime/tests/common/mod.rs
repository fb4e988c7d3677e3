//! Helpers shared by the runtime's tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use sse_runtime::EventSourceResponse;
use sse_runtime::testing::BodyReader;

/// A generous bound for reads that must succeed.
pub const WITHIN: Duration = Duration::from_secs(30);

/// What [`hooks`] record when a client leaves: the client-close hook runs before the source is
/// dropped, then the close hook, then the background task (SPEC 93, 95).
pub const DISCONNECTED: [&str; 4] = [
    "client_close",
    "source_dropped",
    "close:ClientDisconnected",
    "background",
];

/// Adds hooks that record `client_close`, `close:<reason>` and `background` in `log`.
pub fn hooks(response: EventSourceResponse, log: &Log) -> EventSourceResponse {
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    response
        .on_client_close(move || a.push("client_close"))
        .on_close(move |reason| b.push(format!("close:{reason:?}")))
        .background(async move { c.push("background") })
}

/// A source that yields `"first"`, then parks in an hour-long sleep; `source_dropped` is logged
/// when it is dropped.
pub fn parked_source(log: &Log) -> impl futures_util::Stream<Item = &'static str> + Send + 'static {
    use futures_util::StreamExt;
    let guard = log.on_drop("source_dropped");
    futures_util::stream::once(async { "first" }).chain(futures_util::stream::once(async move {
        let _guard = guard;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "never"
    }))
}

/// Builds the response and returns a reader of its body.
pub fn reader(response: EventSourceResponse) -> BodyReader {
    BodyReader::new(response.into_response().into_body())
}

/// An ordered record of what happened, shared between a test and its hooks.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// A value that logs `entry` when dropped: put it in a stream to see when the stream is
    /// dropped.
    pub fn on_drop(&self, entry: &str) -> DropLog {
        DropLog(self.clone(), entry.to_owned())
    }
}

pub struct DropLog(Log, String);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.0.push(self.1.clone());
    }
}

/// A flag set when dropped.
#[derive(Clone, Default)]
pub struct Flag(Arc<AtomicBool>);

impl Flag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn guard(&self) -> FlagGuard {
        FlagGuard(self.clone())
    }
}

pub struct FlagGuard(Flag);

impl Drop for FlagGuard {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Lets spawned tasks (background hooks, producers) run.
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// What `tracing` logged in this test binary. One global subscriber collects every event (a
/// per-thread subscriber can miss events whose callsite another thread registered first), so a
/// test looks for a message only it produces.
pub struct Logs;

static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

impl Logs {
    pub fn capture() -> Self {
        LOGS.get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let writer = buf.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(move || Writer(writer.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            buf
        });
        Logs
    }

    pub fn text(&self) -> String {
        let buf = LOGS.get().expect("capture() first");
        String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
