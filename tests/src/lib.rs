//! Helpers shared by the end-to-end tests: real servers on 127.0.0.1 port 0, raw clients.

pub mod browser;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use sse_runtime::connection::{Connection, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A generous bound for things that must happen.
pub const WITHIN: Duration = Duration::from_secs(30);

/// A running server; aborted when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` with plain `axum::serve` on 127.0.0.1:0.
pub async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

/// Serves `app` with the documented SSE setup: [`Listener`] and `ConnectInfo<Connection>`.
pub async fn serve_sse(app: Router) -> Server {
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<Connection>(),
        )
        .await
        .unwrap();
    });
    Server { addr, task }
}

/// Opens a raw HTTP/1.1 connection and sends `GET path`.
pub async fn raw_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    send_get(&mut stream, path).await;
    stream
}

/// Writes a `GET path` request on `stream`.
pub async fn send_get(stream: &mut TcpStream, path: &str) {
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

/// Reads from `stream` until the bytes read contain `needle`; returns everything read.
pub async fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 8192];
    tokio::time::timeout(WITHIN, async {
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "connection closed before {:?} arrived: {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("timed out waiting for the server");
    seen
}

/// An ordered record of what happened, shared between a test and its server's hooks.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Appends an entry.
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    /// Everything so far.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (polling) until `done` holds for the entries, up to [`WITHIN`].
    pub async fn wait_for(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let entries = self.entries();
            if done(&entries) {
                return entries;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting; log: {entries:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The resident memory of this process, in KiB (Linux), for figures printed by tests.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A server shut down through a [`sse_runtime::Shutdown`] handle.
pub struct GracefulServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Resolves when `axum::serve` has returned.
    pub done: JoinHandle<()>,
}

/// Serves `app` the documented way, [`sse_runtime::serve`], until `shutdown`.
pub async fn serve_graceful(app: Router, shutdown: &sse_runtime::Shutdown) -> GracefulServer {
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = sse_runtime::serve(listener, app, shutdown);
    let done = tokio::spawn(async move { serve.await.unwrap() });
    GracefulServer { addr, done }
}

/// Serves `app` with plain `axum::serve` on a `TcpListener`, with `shutdown.layer()` and
/// `with_graceful_shutdown(shutdown.on_signal())`: what plain axum can do.
pub async fn serve_graceful_plain(app: Router, shutdown: &sse_runtime::Shutdown) -> GracefulServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.layer(shutdown.layer());
    let signal = shutdown.on_signal();
    let done = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
            .unwrap();
    });
    GracefulServer { addr, done }
}

/// An endless stream of 32 KiB events, counting in `produced` those it made: for a client that
/// never reads, which fills every buffer between it and the stream.
pub fn flood_events(
    produced: Arc<AtomicUsize>,
) -> impl futures_util::Stream<Item = String> + Send + 'static {
    futures_util::stream::repeat_with(move || {
        produced.fetch_add(1, Ordering::Relaxed);
        "x".repeat(32 * 1024)
    })
}

/// Waits until the streams of [`flood_events`] have stopped producing (at least `streams`
/// events made, and none for 300 ms): every buffer between them and the clients that do not
/// read is full, and hyper no longer polls the bodies.
pub async fn until_stalled(produced: &AtomicUsize, streams: usize) {
    let deadline = std::time::Instant::now() + WITHIN;
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = produced.load(Ordering::Relaxed);
        if now == last && now >= streams {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never stalled"
        );
        last = now;
    }
}

/// Reads `stream` until the server closes it; returns everything read.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(WITHIN, async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server did not close the connection");
    seen
}

/// Whether a chunked HTTP/1.1 body ended with its terminating chunk (a clean end), as opposed
/// to an aborted connection.
pub fn ended_cleanly(raw: &[u8]) -> bool {
    raw.ends_with(b"\r\n0\r\n\r\n")
}

/// The path of an example binary of the `examples` package.
///
/// `cargo test --workspace` builds every example before running the tests. When the binary is
/// missing or older than the sources it is built from (only this package was tested after an
/// edit), it is built here, so a stale binary is never tested.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target layout");
    let binary = profile_dir.join("examples").join(name);
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let sources = ["examples", "sse-runtime/src", "sse-macros/src"].map(|dir| root.join(dir));
    let newest_source = sources.iter().filter_map(|dir| newest_mtime(dir)).max();
    if built.is_none() || newest_source > built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--quiet", "-p", "examples", "--example", name]);
        if profile_dir
            .file_name()
            .is_some_and(|profile| profile == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo");
        assert!(status.success(), "could not build example {name}");
    }
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}

fn newest_mtime(path: &std::path::Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest_mtime(&entry.ok()?.path()))
        .max()
}

/// A running example process; killed when dropped.
pub struct ExampleProcess {
    /// The child process.
    pub child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log lines (stderr), as they arrive.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl ExampleProcess {
    /// Starts example `name` on a free port (`PORT=0`) and waits until it listens.
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, &[]).await
    }

    /// [`start`](Self::start) with more environment variables.
    pub async fn start_with(name: &str, env: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(example_binary(name))
            .envs(env.iter().copied())
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the example");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let addr = tokio::time::timeout(WITHIN, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                logs.lock().unwrap().push(line.clone());
                if let Some(url) = line.split("listening on http://").nth(1) {
                    return url
                        .trim()
                        .parse::<SocketAddr>()
                        .expect("address in the log line");
                }
            }
            panic!(
                "the example exited before listening: {:?}",
                logs.lock().unwrap()
            );
        })
        .await
        .expect("the example did not start listening");
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, addr, logs }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        self.signal(rustix::process::Signal::INT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = self.child.id().expect("running") as i32;
        let pid = rustix::process::Pid::from_raw(pid).expect("a valid pid");
        rustix::process::kill_process(pid, signal).expect("send a signal");
    }
}

/// What `tracing` logged in this test binary: one global subscriber collects every event, so a
/// test looks for a message only it produces.
pub fn captured_logs() -> String {
    let buf = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A streaming HTTP GET with reqwest, read incrementally.
pub struct HttpStream {
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: http::HeaderMap,
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    /// Everything read so far.
    pub seen: Vec<u8>,
    /// Whether the body ended, and how: `Some(true)` cleanly, `Some(false)` with an error.
    pub ended: Option<bool>,
}

impl HttpStream {
    /// Sends `GET url` with `headers`.
    pub async fn get(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = reqwest::Client::new().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = tokio::time::timeout(WITHIN, request.send())
            .await
            .expect("no response")
            .unwrap();
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            seen: Vec::new(),
            ended: None,
        }
    }

    /// Reads until the body so far contains `needle`.
    pub async fn until(&mut self, needle: &str) -> &str {
        use futures_util::StreamExt;
        let needle = needle.as_bytes();
        tokio::time::timeout(WITHIN, async {
            while !self.seen.windows(needle.len()).any(|w| w == needle) {
                match self.body.next().await {
                    Some(Ok(chunk)) => self.seen.extend_from_slice(&chunk),
                    other => panic!(
                        "the body ended ({other:?}) before {:?}; read: {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&self.seen)
                    ),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out; read: {:?}", String::from_utf8_lossy(&self.seen)));
        std::str::from_utf8(&self.seen).expect("UTF-8 body")
    }

    /// Reads to the end of the body; returns everything read.
    pub async fn to_end(&mut self) -> &str {
        use futures_util::StreamExt;
        tokio::time::timeout(WITHIN, async {
            loop {
                match self.body.next().await {
                    Some(Ok(chunk)) => self.seen.extend_from_slice(&chunk),
                    Some(Err(_)) => return self.ended = Some(false),
                    None => return self.ended = Some(true),
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the body did not end; read: {:?}",
                String::from_utf8_lossy(&self.seen)
            )
        });
        std::str::from_utf8(&self.seen).expect("UTF-8 body")
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap_or(""))
    }
}

impl ExampleProcess {
    /// Waits until a log line contains `needle`; returns it.
    pub async fn log_line(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Some(line) = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.contains(needle))
            {
                return line.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?}: {:?}",
                self.logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn stop(self) {
        self.terminate();
        self.wait_for_clean_exit().await;
    }

    /// Waits for the process to exit with status 0.
    pub async fn wait_for_clean_exit(mut self) {
        let status = tokio::time::timeout(WITHIN, self.child.wait())
            .await
            .expect("the example did not exit after SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "exit status {status}; logs: {:?}",
            self.logs.lock().unwrap()
        );
    }
}
