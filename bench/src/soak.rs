//! Soak and chaos: `bench soak [--quick]` (see RELIABILITY.md, "Soak and chaos").
//!
//! The driver starts `bench soak-server` child processes (ours only, served the documented way,
//! `sse_runtime::serve` with a `Shutdown` that closing the server's stdin triggers) and runs two
//! bounded parts against them, on 127.0.0.1 only:
//!
//! 1. **Cycles**: connect/disconnect cycles (100,000, or 10,000 with `--quick`), at most 200 at
//!    once, each disconnecting at a random point: before the response head (close right after
//!    the request), mid-frame (read part of a stream of 64 KiB events), mid-replay (resume a
//!    long history from far back, close after a few KiB). Then a graceful shutdown while cycles
//!    continue, with streams open. Checks: every stream's close hook ran exactly once (hooks
//!    counted against streams started), no stream left live, server RSS after the cycles within
//!    10% of its RSS after a warm-up (each read once `malloc_trim` has returned malloc's free
//!    pages) and glibc's count of the heap in use within 5%, every open stream ended by the
//!    shutdown, the server exits.
//! 2. **Stalled subscribers**: 1,000 subscribers of a busy `Broadcast` (1 KiB events, 1,000 per
//!    second) that stop reading, beside 20 normal readers. Checks: server RSS under a computed
//!    bound, and the normal readers' delivery rate within 10% of the same server's rate without
//!    the stalled subscribers.
//!
//! Every wait has a time limit; the run stops by itself.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use futures_core::Stream;
use memchr::memmem;
use sse_runtime::connection::Listener;
use sse_runtime::resume::{Hub, MemoryStore};
use sse_runtime::{
    Broadcast, CloseHooks, CloseReason, LastEventId, Payload, ServerSentEvent, Shutdown,
    sse_endpoint,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client;
use crate::measure::rss_kib;

/// Events of the resumable topic's history, all kept; a mid-replay cycle resumes from one of
/// the first thousand.
const HISTORY: usize = 20_000;
/// The topic of the resumable hub.
const TOPIC: &str = "t";
/// Connections in flight at once during the cycles.
const CONCURRENCY: usize = 200;
/// The share of the cycles run before the RSS the end is compared with is taken (a tenth):
/// long enough for the allocator to reach its high-water mark for [`CONCURRENCY`] cycles at
/// once, some holding 64 KiB events; a leak grows with the other nine tenths.
const WARMUP_SHARE: u64 = 10;
/// Streams open when the shutdown begins.
const SHUTDOWN_STREAMS: usize = 200;
/// Cycles in flight at once during the shutdown.
const SHUTDOWN_CONCURRENCY: usize = 50;
/// Subscribers that stop reading, and normal readers beside them.
const STALLED: usize = 1_000;
const READERS: usize = 20;
/// Busy hub: `BUSY_BATCH` events every `BUSY_TICK`, each `BUSY_BYTES` of data.
const BUSY_BATCH: u64 = 10;
const BUSY_TICK: Duration = Duration::from_millis(10);
const BUSY_BYTES: usize = 1024;
/// Events the busy hub keeps for a subscriber that is behind.
const BUSY_CAPACITY: usize = 128;
/// hyper's default cap on what one HTTP/1.1 connection buffers for writing
/// (`DEFAULT_MAX_BUFFER_SIZE` of hyper 1.x: 8 KiB + 100 × 4 KiB), in KiB.
const HYPER_WRITE_CAP_KIB: f64 = 408.0;
/// What hyper may queue beyond its cap: it checks the cap before it takes a frame, so one
/// more frame, which sse-runtime coalesces up to about 32 KiB (`FRAME_LIMIT`) plus the event
/// that crosses it, in KiB.
const ONE_FRAME_KIB: f64 = 32.0 + BUSY_BYTES as f64 / 1024.0;
/// Room a queued frame may hold beyond its bytes: the driver shrinks any frame with more
/// than a 32nd (plus 64 bytes) spare.
const FRAME_SLACK: f64 = 1.0 / 32.0;
/// Pages touched but not filled: hyper queues at most 16 frames (`MAX_BUF_LIST_BUFFERS`),
/// each with at most one such page, in KiB.
const PAGE_ROUNDING_KIB: f64 = 16.0 * 4.0;
/// Server RSS per idle SSE connection, from BENCHMARKS.md (scenario (d)), in KiB.
const IDLE_CONNECTION_KIB: f64 = 21.3;
/// The seed of the cycles' random choices (printed, so a run can be repeated).
const SEED: u64 = 0x5eed_c4a0_5000;

static LARGE: LazyLock<String> = LazyLock::new(|| "L".repeat(64 * 1024));
static REPLAY_PAYLOAD: LazyLock<String> = LazyLock::new(|| "r".repeat(256));
static BUSY_PAYLOAD: LazyLock<String> = LazyLock::new(|| "b".repeat(BUSY_BYTES));

// ---------------------------------------------------------------------------------------------
// The server: `bench soak-server`.

/// Streams whose response (200) was handed to hyper.
static STARTED: AtomicU64 = AtomicU64::new(0);
/// Close hooks that ran, in all and per reason.
static CLOSED: AtomicU64 = AtomicU64::new(0);
const REASONS: [&str; 6] = [
    "completed",
    "client_disconnected",
    "shutdown",
    "send_timeout",
    "error",
    "other",
];
static BY_REASON: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
static PUBLISHED: AtomicU64 = AtomicU64::new(0);
static PUBLISHING: AtomicBool = AtomicBool::new(false);

fn closed(reason: CloseReason) {
    let slot = match reason {
        CloseReason::Completed => 0,
        CloseReason::ClientDisconnected => 1,
        CloseReason::Shutdown => 2,
        CloseReason::SendTimeout => 3,
        CloseReason::Error => 4,
        _ => 5,
    };
    BY_REASON[slot].fetch_add(1, Ordering::SeqCst);
    CLOSED.fetch_add(1, Ordering::SeqCst);
}

#[derive(Clone)]
struct Soak {
    hub: Hub,
    busy: Broadcast,
}

impl FromRef<Soak> for Hub {
    fn from_ref(soak: &Soak) -> Self {
        soak.hub.clone()
    }
}

impl FromRef<Soak> for Broadcast {
    fn from_ref(soak: &Soak) -> Self {
        soak.busy.clone()
    }
}

/// How many streams [`track`] follows one by one (more than any run starts).
const TRACKED: usize = 1 << 18;
/// Per stream (in the order their handlers ran), how many times its own close hook ran.
static CLOSES_OF: [AtomicU8; TRACKED] = [const { AtomicU8::new(0) }; TRACKED];
/// Handlers that ran, each giving its stream a number.
static TRACKING: AtomicU64 = AtomicU64::new(0);

/// Gives the stream a number and a close hook of its own that counts its runs: "exactly once"
/// checked stream by stream, not only in aggregate. Registered in the handler, before the
/// response exists, so that a client gone before the first poll is followed too.
fn track(hooks: &CloseHooks) {
    let number = TRACKING.fetch_add(1, Ordering::SeqCst) as usize;
    if number < TRACKED {
        hooks.on_close(move |_| {
            CLOSES_OF[number].fetch_add(1, Ordering::SeqCst);
        });
    }
}

/// Of the tracked streams: how many closed once, never (yet), and more than once.
fn tracked_counts() -> (u64, u64, u64) {
    let tracked = (TRACKING.load(Ordering::SeqCst) as usize).min(TRACKED);
    let (mut once, mut never, mut more) = (0, 0, 0);
    for closes in &CLOSES_OF[..tracked] {
        match closes.load(Ordering::SeqCst) {
            0 => never += 1,
            1 => once += 1,
            _ => more += 1,
        }
    }
    (once, never, more)
}

/// One event, then nothing until the client leaves or the server shuts down.
#[sse_endpoint(ping = 15, on_close = closed)]
async fn head(hooks: CloseHooks) -> impl Stream<Item = ServerSentEvent> {
    track(&hooks);
    async_stream::stream! {
        yield ServerSentEvent::new().data("hello");
        std::future::pending::<()>().await;
    }
}

/// 64 KiB events as fast as the client reads.
#[sse_endpoint(ping = 15, on_close = closed)]
async fn large(hooks: CloseHooks) -> impl Stream<Item = ServerSentEvent> {
    track(&hooks);
    async_stream::stream! {
        let mut id = 0u64;
        loop {
            yield ServerSentEvent::new().id(id).data(LARGE.as_str());
            id += 1;
        }
    }
}

/// Replay of the topic after the client's `Last-Event-ID`, then live.
#[sse_endpoint(ping = 15, on_close = closed)]
async fn replay(
    State(hub): State<Hub>,
    since: LastEventId,
    hooks: CloseHooks,
) -> impl Stream<Item = Payload> {
    track(&hooks);
    hub.resume([TOPIC], since).await
}

/// Every event of the busy hub from now on.
#[sse_endpoint(ping = 15, on_close = closed)]
async fn busy(State(hub): State<Broadcast>, hooks: CloseHooks) -> impl Stream<Item = Payload> {
    track(&hooks);
    hub.subscribe()
}

/// Counts a stream as started once its handler answered 200: from then on the response
/// belongs to hyper, and its close hook must run exactly once, whatever the client does.
async fn count_started(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::OK {
        STARTED.fetch_add(1, Ordering::SeqCst);
    }
    response
}

fn stats_line(subscribers: usize) -> String {
    let mut line = format!(
        "started={} closed={}",
        STARTED.load(Ordering::SeqCst),
        CLOSED.load(Ordering::SeqCst)
    );
    for (name, count) in REASONS.iter().zip(&BY_REASON) {
        line.push_str(&format!(" {name}={}", count.load(Ordering::SeqCst)));
    }
    let (once, never, more) = tracked_counts();
    line.push_str(&format!(
        " tracked={} closed_once={once} closed_never={never} closed_more={more}",
        TRACKING.load(Ordering::SeqCst)
    ));
    line.push_str(&format!(
        " subscribers={subscribers} published={}\n",
        PUBLISHED.load(Ordering::SeqCst)
    ));
    line
}

async fn stats_route(State(hub): State<Broadcast>) -> String {
    stats_line(hub.subscriber_count())
}

/// glibc's own account of the heap (`malloc_info(3)`), in bytes: `in_use` is what the
/// program holds (the arenas' size less their free chunks, plus mmapped blocks), `free` what
/// malloc keeps free in its arenas, which RSS counts too where those pages were touched.
async fn heap_route() -> String {
    match malloc_info::malloc_info() {
        Ok(info) => {
            let total = |kind: malloc_info::info::TotalType| {
                info.total
                    .iter()
                    .filter(|t| t.r#type == kind)
                    .map(|t| t.size)
                    .sum::<usize>()
            };
            let arenas: usize = info
                .system
                .iter()
                .filter(|s| s.r#type == malloc_info::info::SystemType::Current)
                .map(|s| s.size)
                .sum();
            let free = total(malloc_info::info::TotalType::Fast)
                + total(malloc_info::info::TotalType::Rest);
            let mmapped = total(malloc_info::info::TotalType::Mmap);
            format!(
                "in_use={} free={free} mmapped={mmapped}\n",
                arenas.saturating_sub(free) + mmapped
            )
        }
        Err(error) => format!("error={error}\n"),
    }
}

/// Returns the pages of malloc's free chunks to the system (`malloc_trim(3)`), then answers
/// [`heap_route`]'s figures. glibc gives back only the top of its heap on `free`; the pages of a
/// free chunk in the middle stay resident until something like this returns them, so RSS
/// after it is what the server holds, without the high-water mark of its fragments.
async fn trim_route() -> String {
    trim();
    heap_route().await
}

#[expect(unsafe_code, reason = "one FFI call, malloc_trim(3)")]
fn trim() {
    // SAFETY: malloc_trim takes a byte count, touches only malloc's own state (under its
    // locks) and has no requirement on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The id of the topic's first event: a cursor this far back replays the whole history.
async fn cursor(State(hub): State<Hub>) -> String {
    match hub.head().await {
        Ok(head) => format!("{head}\n"),
        Err(error) => format!("{error}\n"),
    }
}

/// Starts the busy hub's publisher (once).
async fn start_publisher(State(hub): State<Broadcast>) -> &'static str {
    if !PUBLISHING.swap(true, Ordering::SeqCst) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(BUSY_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut id = 0u64;
            loop {
                tick.tick().await;
                for _ in 0..BUSY_BATCH {
                    let _ = hub.send(ServerSentEvent::new().id(id).data(BUSY_PAYLOAD.as_str()));
                    id += 1;
                    PUBLISHED.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    "ok\n"
}

/// `bench soak-server`: serves until its stdin closes, which triggers a graceful shutdown;
/// prints its port first and its final counts last.
pub(crate) fn server_main() -> ExitCode {
    crate::measure::raise_nofile_limit(false);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench soak-server: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_soak()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench soak-server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_soak() -> io::Result<()> {
    // Resident from the start, so that the RSS checks do not see it fill in.
    for closes in &CLOSES_OF {
        closes.store(0, Ordering::SeqCst);
    }
    let hub = Hub::builder()
        .store(MemoryStore::new(HISTORY))
        .capacity(128)
        .max_replay(HISTORY as u64)
        .build();
    for _ in 0..HISTORY {
        let _ = hub
            .publish(TOPIC, ServerSentEvent::new().data(REPLAY_PAYLOAD.as_str()))
            .await;
    }
    let busy_hub = Broadcast::new(BUSY_CAPACITY);
    let app = Router::new()
        .route("/head", get(head))
        .route("/large", get(large))
        .route("/replay", get(replay))
        .route("/busy", get(busy))
        .route_layer(axum::middleware::from_fn(count_started))
        .route("/stats", get(stats_route))
        .route("/heap", get(heap_route))
        .route("/trim", get(trim_route))
        .route("/cursor", get(cursor))
        .route("/busy/start", get(start_publisher))
        .with_state(Soak {
            hub,
            busy: busy_hub.clone(),
        });
    let shutdown = Shutdown::new();
    let listener = Listener::bind("127.0.0.1:0").await?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", listener.local_addr()?.port())?;
        stdout.flush()?;
    }
    // The driver holds our stdin: when it closes it, we shut down gracefully.
    let trigger = shutdown.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        trigger.trigger();
    });
    sse_runtime::serve(listener, app, &shutdown).await?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "final {}", stats_line(busy_hub.subscriber_count()))?;
    stdout.flush()
}

// ---------------------------------------------------------------------------------------------
// The driver: `bench soak [--quick]`.

struct SoakServer {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl SoakServer {
    async fn start() -> io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        // One malloc arena, unless told otherwise: glibc gives each thread that frees under
        // contention an arena of its own, whose fragments RSS counts long after the memory was
        // freed; with one, RSS follows what the server holds. (A run with the default shows
        // both: RELIABILITY.md.)
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            command.env("MALLOC_ARENA_MAX", "1");
        }
        let mut child = command
            .arg("soak-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the server exited at once"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .map_err(|_| io::Error::other("the server did not print its port"))??
            .ok_or_else(|| io::Error::other("the server exited before printing its port"))?;
        let port: u16 = line
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("not a port: {line:?}")))?;
        let server = Self {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stdout,
        };
        stats(server.addr).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(server)
    }

    fn rss(&self) -> io::Result<u64> {
        rss_kib(self.pid)
    }

    /// The server's memory at a quiet point: RSS, then glibc's heap in use, and RSS once
    /// malloc has returned its free pages (the server's `/trim`).
    async fn memory(&self) -> io::Result<Memory> {
        let rss_kib = self.rss()?;
        let heap = parse_stats(&client::fetch(self.addr, "/trim").await?);
        if !heap.contains_key("in_use") {
            return Err(io::Error::other("the server's /trim gave no heap figures"));
        }
        Ok(Memory {
            rss_kib,
            heap_in_use: count(&heap, "in_use"),
            trimmed_rss_kib: self.rss()?,
        })
    }

    /// Closes stdin (the server shuts down gracefully); returns its final counts, its exit
    /// status and how long it took to exit.
    async fn shutdown(mut self) -> io::Result<(Stats, ExitStatus, Duration)> {
        let begun = Instant::now();
        drop(self.child.stdin.take());
        let line = tokio::time::timeout(client::PATIENCE, self.stdout.next_line())
            .await
            .map_err(|_| io::Error::other("the server did not exit after the shutdown"))??
            .ok_or_else(|| io::Error::other("the server exited without its final counts"))?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| io::Error::other("the server printed its counts but did not exit"))??;
        let took = begun.elapsed();
        let counts = line
            .strip_prefix("final ")
            .ok_or_else(|| io::Error::other(format!("not the final counts: {line:?}")))?;
        Ok((parse_stats(counts), status, took))
    }
}

/// [`SoakServer::memory`].
struct Memory {
    rss_kib: u64,
    /// Bytes (glibc's `malloc_info`: arenas less their free chunks, plus mmapped blocks).
    heap_in_use: u64,
    trimmed_rss_kib: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {} KiB, heap in use {} bytes, RSS after malloc_trim {} KiB",
            self.rss_kib, self.heap_in_use, self.trimmed_rss_kib
        )
    }
}

type Stats = BTreeMap<String, u64>;

fn parse_stats(text: &str) -> Stats {
    text.split_whitespace()
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn stats(addr: SocketAddr) -> io::Result<Stats> {
    Ok(parse_stats(&client::fetch(addr, "/stats").await?))
}

fn count(stats: &Stats, name: &str) -> u64 {
    stats.get(name).copied().unwrap_or(0)
}

/// Whether every tracked stream's own close hook ran exactly once, and every started stream
/// was tracked.
fn per_stream_once(stats: &Stats) -> bool {
    count(stats, "tracked") == count(stats, "started")
        && count(stats, "closed_once") == count(stats, "tracked")
        && count(stats, "closed_never") == 0
        && count(stats, "closed_more") == 0
}

fn per_stream_detail(stats: &Stats) -> String {
    format!(
        "tracked {} (started {}): once {}, never {}, more than once {}",
        count(stats, "tracked"),
        count(stats, "started"),
        count(stats, "closed_once"),
        count(stats, "closed_never"),
        count(stats, "closed_more")
    )
}

/// Streams started whose close hook has not run (yet).
fn live(stats: &Stats) -> i128 {
    i128::from(count(stats, "started")) - i128::from(count(stats, "closed"))
}

/// Polls `/stats` until `done`; fails after the patience.
async fn wait_stats(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&Stats) -> bool,
) -> io::Result<Stats> {
    let deadline = Instant::now() + client::PATIENCE;
    loop {
        let now = stats(addr).await?;
        if done(&now) {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("{what}: still {now:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// xorshift64*: deterministic choices from [`SEED`].
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Where a cycle disconnects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    /// Right after sending the request, before the response head.
    BeforeHead,
    /// Part of the way through a 64 KiB event.
    MidFrame,
    /// After a few KiB of a replay from far back.
    MidReplay,
}

const CUTS: [Cut; 3] = [Cut::BeforeHead, Cut::MidFrame, Cut::MidReplay];

/// One cycle: connect, request, read up to the cut, close.
async fn cycle(addr: SocketAddr, cut: Cut, random: u64, cursor: &str) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (path, header) = match cut {
        Cut::BeforeHead => ("/head", String::new()),
        Cut::MidFrame => ("/large", String::new()),
        Cut::MidReplay => (
            "/replay",
            format!("last-event-id: {cursor}{}\r\n", 1 + random % 1_000),
        ),
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: soak\r\naccept: text/event-stream\r\n{header}\r\n");
    stream.write_all(request.as_bytes()).await?;
    let want = match cut {
        Cut::BeforeHead => {
            // Half the time at once, half after letting the server start on the request.
            if random & 1 == 1 {
                tokio::task::yield_now().await;
            }
            return Ok(());
        }
        // Anywhere in the first three 64 KiB events (the head is under 200 bytes).
        Cut::MidFrame => 1 + (random >> 8) % (3 * 64 * 1024),
        Cut::MidReplay => 1 + (random >> 8) % (16 * 1024),
    };
    let mut buf = vec![0; 16 * 1024];
    let mut got = 0u64;
    let mut first = true;
    while got < want {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{cut:?}: closed after {got} of {want} bytes"
            )));
        }
        if first && !buf[..n].starts_with(b"HTTP/1.1 200") {
            let head = String::from_utf8_lossy(&buf[..n.min(80)]).into_owned();
            return Err(io::Error::other(format!("{cut:?}: {head:?}")));
        }
        first = false;
        got += n as u64;
    }
    Ok(())
}

/// What a batch of cycles did.
#[derive(Default, Debug)]
struct Tally {
    done: BTreeMap<Cut, u64>,
    failed: u64,
    first_error: Option<String>,
}

impl Tally {
    fn total(&self) -> u64 {
        self.done.values().sum()
    }
}

/// Runs `count` cycles (or until `stop`), at most `concurrency` at once.
async fn run_cycles(
    addr: SocketAddr,
    count: u64,
    concurrency: usize,
    rng: &mut Rng,
    cursor: &Arc<str>,
    stop: Option<&AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut tasks = JoinSet::new();
    let mut started = 0u64;
    loop {
        let stopped = stop.is_some_and(|stop| stop.load(Ordering::SeqCst));
        while !stopped && started < count && tasks.len() < concurrency {
            started += 1;
            let random = rng.next();
            let cut = CUTS[(random % 3) as usize];
            let cursor = cursor.clone();
            tasks.spawn(async move {
                let result =
                    client::bounded("a cycle", cycle(addr, cut, random >> 2, &cursor)).await;
                (cut, result)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok((cut, Ok(()))) => *tally.done.entry(cut).or_default() += 1,
            Ok((_, Err(error))) => {
                tally.failed += 1;
                tally.first_error.get_or_insert_with(|| error.to_string());
            }
            Err(error) => {
                tally.failed += 1;
                tally.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    tally
}

/// Records checks as they pass or fail.
#[derive(Default)]
struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: String) {
        println!("- [{}] {name}: {detail}", if ok { "pass" } else { "FAIL" });
        if !ok {
            self.failed.push(name.to_owned());
        }
    }
}

/// `bench soak [--quick]`.
pub(crate) async fn drive(quick: bool) -> ExitCode {
    let limit = crate::measure::raise_nofile_limit(true);
    let cycles: u64 = if quick { 10_000 } else { 100_000 };
    println!(
        "# soak and chaos ({})\n",
        if quick { "--quick" } else { "full" }
    );
    println!("- RLIMIT_NOFILE: {limit}; seed {SEED:#x}; concurrency {CONCURRENCY}\n");
    let mut checks = Checks::default();
    let begun = Instant::now();
    if let Err(error) = churn(cycles, &mut checks).await {
        checks.check("part 1 ran to its end", false, error.to_string());
    }
    if let Err(error) = stalled(quick, &mut checks).await {
        checks.check("part 2 ran to its end", false, error.to_string());
    }
    println!("\nsoak took {:.1} s", begun.elapsed().as_secs_f64());
    if checks.failed.is_empty() {
        println!("all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("FAILED: {}", checks.failed.join("; "));
        ExitCode::FAILURE
    }
}

/// Part 1: cycles with random disconnects, then a graceful shutdown under load.
async fn churn(cycles: u64, checks: &mut Checks) -> io::Result<()> {
    println!("## 1. {cycles} connect/disconnect cycles, then a graceful shutdown\n");
    let server = SoakServer::start().await?;
    let addr = server.addr;
    let head = client::fetch(addr, "/cursor").await?;
    let prefix = head
        .trim()
        .rsplit_once(':')
        .map_or_else(String::new, |(epoch, _)| format!("{epoch}:"));
    let cursor: Arc<str> = Arc::from(prefix);
    let mut rng = Rng(SEED);
    let rss_boot = server.rss()?;

    let warmup = cycles / WARMUP_SHARE;
    let warm = run_cycles(addr, warmup, CONCURRENCY, &mut rng, &cursor, None).await;
    wait_stats(addr, "live after the warm-up", |s| live(s) == 0).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = server.memory().await?;

    // In tenths, with RSS and the heap in use after each (streams all closed), to tell a
    // plateau from a leak.
    let timed = Instant::now();
    let mut rest = Tally::default();
    let mut trajectory = Vec::new();
    let tenth = (cycles - warmup) / 10;
    for part in 0..10 {
        let n = if part == 9 {
            cycles - warmup - 9 * tenth
        } else {
            tenth
        };
        let tally = run_cycles(addr, n, CONCURRENCY, &mut rng, &cursor, None).await;
        for (cut, n) in tally.done {
            *rest.done.entry(cut).or_default() += n;
        }
        rest.failed += tally.failed;
        if rest.first_error.is_none() {
            rest.first_error = tally.first_error;
        }
        wait_stats(addr, "live between tenths", |s| live(s) <= 0).await?;
        let heap = parse_stats(&client::fetch(addr, "/heap").await?);
        trajectory.push((server.rss()?, count(&heap, "in_use") / 1024));
    }
    let elapsed = timed.elapsed();
    let after = wait_stats(addr, "live after the cycles", |s| live(s) <= 0).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let end = server.memory().await?;
    let after = {
        let settled = stats(addr).await?;
        if settled == after { after } else { settled }
    };

    let mut done = warm.done.clone();
    for (cut, n) in &rest.done {
        *done.entry(*cut).or_default() += n;
    }
    let failed = warm.failed + rest.failed;
    println!(
        "cycles: {} done ({}), {failed} failed; {:.0} cycles/s after the warm-up",
        warm.total() + rest.total(),
        done.iter()
            .map(|(cut, n)| format!("{cut:?} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        rest.total() as f64 / elapsed.as_secs_f64()
    );
    println!("server counts after the cycles: {after:?}");
    println!("server (RSS, heap in use) after each tenth of the cycles (KiB): {trajectory:?}");
    println!("server RSS: {rss_boot} KiB at start");
    println!("after {warmup} warm-up cycles: {start}");
    println!("after all cycles: {end}");
    checks.check(
        "every cycle completed as planned",
        failed == 0,
        format!(
            "{failed} failed{}",
            warm.first_error
                .or(rest.first_error)
                .map_or_else(String::new, |e| format!(", first: {e}"))
        ),
    );
    checks.check(
        "close hooks: exactly one per started stream",
        count(&after, "started") == count(&after, "closed"),
        format!(
            "started {} closed {}",
            count(&after, "started"),
            count(&after, "closed")
        ),
    );
    checks.check(
        "own close hook: exactly one per started stream, stream by stream",
        per_stream_once(&after),
        per_stream_detail(&after),
    );
    let growth = |end: u64, start: u64| (end as f64 - start as f64) * 100.0 / start as f64;
    let trimmed = growth(end.trimmed_rss_kib, start.trimmed_rss_kib);
    checks.check(
        "server RSS within 10% of its start (each after malloc_trim)",
        trimmed <= 10.0,
        format!(
            "{trimmed:+.1}% ({} -> {} KiB; as it was before the trims, {:+.1}%: {} -> {} KiB)",
            start.trimmed_rss_kib,
            end.trimmed_rss_kib,
            growth(end.rss_kib, start.rss_kib),
            start.rss_kib,
            end.rss_kib
        ),
    );
    let heap = growth(end.heap_in_use, start.heap_in_use);
    let cycled = (cycles - warmup).max(1);
    checks.check(
        "server heap in use within 5% of its start",
        heap <= 5.0,
        format!(
            "{heap:+.1}% ({} -> {} bytes, {:+.1} bytes per cycle; 5% is {:.1} bytes per cycle)",
            start.heap_in_use,
            end.heap_in_use,
            (end.heap_in_use as f64 - start.heap_in_use as f64) / cycled as f64,
            start.heap_in_use as f64 * 0.05 / cycled as f64
        ),
    );

    // Graceful shutdown: streams open, cycles continuing.
    let mut open = Vec::with_capacity(SHUTDOWN_STREAMS);
    for _ in 0..SHUTDOWN_STREAMS {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /head HTTP/1.1\r\nhost: soak\r\naccept: text/event-stream\r\n\r\n")
            .await?;
        let mut buf = [0u8; 1024];
        let n = client::bounded("a stream head", async { stream.read(&mut buf).await }).await?;
        if !buf[..n].starts_with(b"HTTP/1.1 200") {
            return Err(io::Error::other(
                "a stream before the shutdown did not start",
            ));
        }
        open.push(stream);
    }
    let before = wait_stats(addr, "streams open before the shutdown", |s| {
        live(s) == SHUTDOWN_STREAMS as i128
    })
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let stop = stop.clone();
        let cursor = cursor.clone();
        let mut rng = Rng(SEED ^ 0xdead_beef);
        tokio::spawn(async move {
            run_cycles(
                addr,
                u64::MAX,
                SHUTDOWN_CONCURRENCY,
                &mut rng,
                &cursor,
                Some(&stop),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let readers: Vec<_> = open
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            })
        })
        .collect();
    let shutdown = server.shutdown().await;
    stop.store(true, Ordering::SeqCst);
    let mut ended = 0;
    for reader in readers {
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(10), reader).await {
            ended += 1;
        }
    }
    let during = background.await.unwrap_or_default();
    let (last, status, took) = shutdown?;
    println!(
        "shutdown: {} streams open ({} live), {} cycles done and {} refused or cut while it ran; the server exited in {} ms ({status})",
        SHUTDOWN_STREAMS,
        live(&before),
        during.total(),
        during.failed,
        took.as_millis()
    );
    println!("server counts at exit: {last:?}");
    checks.check(
        "shutdown ended every open stream",
        ended == SHUTDOWN_STREAMS,
        format!("{ended} of {SHUTDOWN_STREAMS}"),
    );
    checks.check(
        "close hooks at exit: exactly one per started stream",
        count(&last, "started") == count(&last, "closed"),
        format!(
            "started {} closed {} (shutdown {})",
            count(&last, "started"),
            count(&last, "closed"),
            count(&last, "shutdown")
        ),
    );
    checks.check(
        "own close hook at exit: exactly one per started stream, stream by stream",
        per_stream_once(&last),
        per_stream_detail(&last),
    );
    checks.check(
        "open streams reported Shutdown",
        count(&last, "shutdown") >= SHUTDOWN_STREAMS as u64,
        format!("{} Shutdown closes", count(&last, "shutdown")),
    );
    checks.check(
        "server exited cleanly",
        status.success(),
        format!("{status} after {} ms", took.as_millis()),
    );
    println!();
    Ok(())
}

/// A normal reader: counts `data:` lines into `events` until aborted.
async fn read_counting(addr: SocketAddr, events: Arc<AtomicU64>) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(b"GET /busy HTTP/1.1\r\nhost: soak\r\naccept: text/event-stream\r\n\r\n")
        .await?;
    let finder = memmem::Finder::new(b"data:");
    let mut buf = vec![0u8; 64 * 1024];
    let mut carried = 0;
    loop {
        let n = stream.read(&mut buf[carried..]).await?;
        if n == 0 {
            return Ok(());
        }
        let end = carried + n;
        let found = finder
            .find_iter(&buf[..end])
            .filter(|&at| at + 5 > carried)
            .count();
        events.fetch_add(found as u64, Ordering::Relaxed);
        let keep = end.min(4);
        buf.copy_within(end - keep..end, 0);
        carried = keep;
    }
}

/// A subscriber that reads the head and then nothing, with a small receive buffer.
async fn stall(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut stream = socket.connect(addr).await?;
    stream
        .write_all(b"GET /busy HTTP/1.1\r\nhost: soak\r\naccept: text/event-stream\r\n\r\n")
        .await?;
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).await?;
    if !buf[..n].starts_with(b"HTTP/1.1 200") {
        return Err(io::Error::other("a stalled subscriber did not start"));
    }
    Ok(stream)
}

/// Events delivered to the readers over `window`, per reader per second; samples RSS meanwhile.
async fn window(
    server: &SoakServer,
    events: &AtomicU64,
    window: Duration,
) -> io::Result<(f64, u64, u64)> {
    let published = count(&stats(server.addr).await?, "published");
    let from = events.load(Ordering::Relaxed);
    let begun = Instant::now();
    let mut peak = server.rss()?;
    while begun.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(server.rss()?);
    }
    let got = events.load(Ordering::Relaxed) - from;
    let published = count(&stats(server.addr).await?, "published") - published;
    let rate = got as f64 / READERS as f64 / begun.elapsed().as_secs_f64();
    Ok((rate, published, peak))
}

/// Part 2: stalled subscribers beside normal readers on a busy hub.
async fn stalled(quick: bool, checks: &mut Checks) -> io::Result<()> {
    let span = Duration::from_secs(if quick { 3 } else { 10 });
    println!(
        "## 2. {STALLED} stalled subscribers and {READERS} readers on a busy Broadcast ({} events/s of {BUSY_BYTES} B, no send_timeout)\n",
        BUSY_BATCH * 1000 / BUSY_TICK.as_millis() as u64
    );
    let server = SoakServer::start().await?;
    let addr = server.addr;
    client::fetch(addr, "/busy/start").await?;
    let events = Arc::new(AtomicU64::new(0));
    let mut readers = JoinSet::new();
    for _ in 0..READERS {
        readers.spawn(read_counting(addr, events.clone()));
    }
    wait_stats(addr, "readers subscribed", |s| {
        count(s, "subscribers") == READERS as u64
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rate_alone, published_alone, peak_alone) = window(&server, &events, span).await?;
    let rss_alone = server.rss()?;

    let mut stalled = Vec::with_capacity(STALLED);
    let mut connecting = JoinSet::new();
    let mut left = STALLED;
    while stalled.len() < STALLED {
        while left > 0 && connecting.len() < CONCURRENCY {
            left -= 1;
            connecting.spawn(client::bounded("a stalled subscriber", stall(addr)));
        }
        match connecting.join_next().await {
            Some(Ok(Ok(stream))) => stalled.push(stream),
            Some(Ok(Err(error))) => return Err(error),
            Some(Err(error)) => return Err(io::Error::other(error)),
            None => break,
        }
    }
    wait_stats(addr, "stalled subscribers subscribed", |s| {
        count(s, "subscribers") == (READERS + STALLED) as u64
    })
    .await?;
    // Let the stalled connections' buffers fill up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rate_stalled, published_stalled, peak_stalled) = window(&server, &events, span).await?;
    let rss_stalled = server.rss()?;

    drop(stalled);
    wait_stats(addr, "stalled subscribers gone", |s| {
        count(s, "subscribers") == READERS as u64
    })
    .await?;
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    let after = wait_stats(addr, "live after part 2", |s| live(s) == 0).await?;

    let bound = rss_alone as f64
        + STALLED as f64
            * (IDLE_CONNECTION_KIB
                + (HYPER_WRITE_CAP_KIB + ONE_FRAME_KIB) * (1.0 + FRAME_SLACK)
                + PAGE_ROUNDING_KIB)
        + (BUSY_CAPACITY * BUSY_BYTES) as f64 / 1024.0;
    println!(
        "readers alone: {rate_alone:.0} events/s each ({published_alone} published in the window), RSS {rss_alone} KiB (peak {peak_alone})"
    );
    println!(
        "with {STALLED} stalled: {rate_stalled:.0} events/s each ({published_stalled} published in the window), RSS {rss_stalled} KiB (peak {peak_stalled}), {:.1} KiB per stalled subscriber over the readers alone",
        (peak_stalled as f64 - rss_alone as f64) / STALLED as f64
    );
    println!(
        "bound: {rss_alone} + {STALLED} x ({IDLE_CONNECTION_KIB} KiB per connection + ({HYPER_WRITE_CAP_KIB} KiB hyper write cap + {ONE_FRAME_KIB} KiB one frame over it) x (1 + 1/32 frame slack) + {PAGE_ROUNDING_KIB} KiB page rounding) + {} KiB ring = {bound:.0} KiB",
        BUSY_CAPACITY * BUSY_BYTES / 1024
    );
    println!("server counts after: {after:?}");
    checks.check(
        "server RSS under the bound with stalled subscribers",
        (peak_stalled as f64) <= bound,
        format!("peak {peak_stalled} KiB <= {bound:.0} KiB"),
    );
    let drop_pct = (1.0 - rate_stalled / rate_alone) * 100.0;
    checks.check(
        "readers' delivery rate within 10% of the rate without stalled subscribers",
        drop_pct <= 10.0,
        format!("{rate_stalled:.0} vs {rate_alone:.0} events/s: {drop_pct:+.1}% drop"),
    );
    checks.check(
        "close hooks after part 2: exactly one per started stream",
        count(&after, "started") == count(&after, "closed"),
        format!(
            "started {} closed {} (client_disconnected {})",
            count(&after, "started"),
            count(&after, "closed"),
            count(&after, "client_disconnected")
        ),
    );
    checks.check(
        "own close hook after part 2: exactly one per started stream, stream by stream",
        per_stream_once(&after),
        per_stream_detail(&after),
    );
    let (last, status, _) = server.shutdown().await?;
    checks.check(
        "server exited cleanly",
        status.success() && count(&last, "started") == count(&last, "closed"),
        format!("{status}, {last:?}"),
    );
    Ok(())
}
