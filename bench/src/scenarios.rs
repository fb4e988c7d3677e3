//! The scenarios: each runs against one freshly started server process and returns its figures.

use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{self, Client};
use crate::measure::{Cpu, rss_kib};
use crate::server::Config;

/// Sizes of the scenarios (the issue's, or a tenth of them for `--quick`).
#[derive(Clone, Debug)]
pub(crate) struct Sizes {
    /// Events to the one client of (a) and (e): the 2,000,000, so that the floor's
    /// share (about 0.1 s of CPU) is long enough for a stable ratio.
    pub(crate) single_events: u64,
    /// Events to each client of (b).
    pub(crate) events: u64,
    pub(crate) parallel_clients: usize,
    pub(crate) fanout_clients: usize,
    pub(crate) fanout_events: u64,
    pub(crate) idle_clients: usize,
    pub(crate) idle_window: Duration,
    pub(crate) churn_cycles: u64,
    pub(crate) churn_warmup: u64,
    pub(crate) churn_concurrency: usize,
    pub(crate) storm_clients: usize,
    pub(crate) storm_warmup: u64,
    pub(crate) storm_missed: u64,
    pub(crate) resume_reps: usize,
    /// The clients of (j) and (k): (c) and (d) at a larger size.
    pub(crate) large_clients: usize,
    pub(crate) trickle: Trickle,
}

/// The sizes of (i), the trickle fan-out.
#[derive(Clone, Debug)]
pub(crate) struct Trickle {
    pub(crate) clients: usize,
    /// Publishes of (i1), at saturation.
    pub(crate) saturated: u64,
    /// Publishes a second of (i2), and for how long.
    pub(crate) rate: u32,
    pub(crate) window: Duration,
}

/// How far behind the one client of (h) resumes (the same with `--quick`).
pub(crate) const RESUME_MISSED: [u64; 2] = [1_000, 10_000];

impl Sizes {
    pub(crate) fn full() -> Self {
        Self {
            single_events: 2_000_000,
            events: 200_000,
            parallel_clients: 32,
            fanout_clients: 5_000,
            fanout_events: 100,
            idle_clients: 5_000,
            idle_window: Duration::from_secs(5),
            churn_cycles: 20_000,
            churn_warmup: 10_000,
            churn_concurrency: 8,
            storm_clients: 5_000,
            storm_warmup: 10,
            storm_missed: 100,
            resume_reps: 11,
            large_clients: 10_000,
            trickle: Trickle {
                clients: 1_000,
                saturated: 2_000,
                rate: 40,
                window: Duration::from_secs(5),
            },
        }
    }

    pub(crate) fn quick() -> Self {
        Self {
            single_events: 200_000,
            events: 20_000,
            parallel_clients: 8,
            fanout_clients: 500,
            fanout_events: 100,
            idle_clients: 500,
            idle_window: Duration::from_secs(1),
            churn_cycles: 2_000,
            churn_warmup: 1_000,
            churn_concurrency: 8,
            storm_clients: 500,
            storm_warmup: 10,
            storm_missed: 100,
            resume_reps: 5,
            large_clients: 1_000,
            trickle: Trickle {
                clients: 100,
                saturated: 200,
                rate: 40,
                window: Duration::from_millis(500),
            },
        }
    }
}

/// One figure of one run.
pub(crate) type Figures = Vec<(&'static str, f64)>;

/// A server process started for one scenario run.
pub(crate) struct ServerProcess {
    child: Child,
    pid: u32,
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `bench server ..` as `config` says (under `wrap`, if given) and waits until it
    /// answers.
    pub(crate) async fn start(config: &Config, wrap: &[String]) -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = match wrap.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(config.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the server exited at once"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
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
        };
        client::stats(server.addr).await?;
        // Let start-up work settle before anything is measured.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(server)
    }

    pub(crate) fn cpu(&self) -> io::Result<Cpu> {
        Cpu::read(self.pid)
    }

    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        rss_kib(self.pid)
    }

    /// Closes the server's stdin, which makes it exit; kills it if it has not within a while
    /// (a profiler wrapping it may need that while to write its data).
    pub(crate) async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// Which of ours's hubs a fan-out follows: (c) runs on both (axum's side on its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hub {
    /// `Broadcast`: `/fanout`, `/publish/{n}`, ids `0..n`.
    Broadcast,
    /// The resumable hub's topic: `/resume/events`, `/resume/publish/{n}`, ids `<epoch>:1..=n`.
    Resumable,
}

/// Connects `count` streams to `path` (a few hundred at a time) and waits for their heads;
/// with `path` `None`, connects only (see [`Client::connect`]).
async fn connect_many(
    addr: SocketAddr,
    path: Option<&'static str>,
    count: usize,
    checked: bool,
) -> io::Result<Vec<Client>> {
    connect_many_with(addr, path, count, move |client| {
        if checked { client.checked() } else { client }
    })
    .await
}

/// [`connect_many`], each client made ready by `prepare` (its parser) before its request.
pub(crate) async fn connect_many_with(
    addr: SocketAddr,
    path: Option<&'static str>,
    count: usize,
    prepare: impl Fn(Client) -> Client + Copy + Send + 'static,
) -> io::Result<Vec<Client>> {
    const AT_ONCE: usize = 200;
    let mut clients = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while clients.len() < count {
        while started < count && tasks.len() < AT_ONCE {
            started += 1;
            tasks.spawn(async move {
                let client = Client::connect(addr, 16 * 1024).await?;
                let mut client = prepare(client);
                if let Some(path) = path {
                    client.request(path, false, None).await?;
                    client.read_head().await?;
                }
                Ok::<_, io::Error>(client)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        clients.push(done.map_err(io::Error::other)??);
    }
    Ok(clients)
}

/// (a) and (e): one client reads `events` events as fast as it can.
pub(crate) async fn single(server: &ServerProcess, path: &str, events: u64) -> io::Result<Figures> {
    let path = format!("{path}/{events}");
    let before = server.cpu()?;
    let client_before = own_cpu()?;
    let start = Instant::now();
    let mut client = Client::get(server.addr, &path, true, 256 * 1024).await?;
    client::bounded("single stream", client.read_to_end()).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = server.cpu()?.seconds_since(&before);
    let client_cpu = own_cpu()?.seconds_since(&client_before);
    check_count(client.events, events)?;
    Ok(vec![
        ("cpu_per_event", cpu * 1e6 / events as f64),
        ("events_per_s", events as f64 / elapsed),
        ("client_busy_pct", client_cpu * 100.0 / elapsed),
    ])
}

/// (b): `clients` clients in parallel, each reading `events` events.
pub(crate) async fn parallel(
    server: &ServerProcess,
    clients: usize,
    events: u64,
) -> io::Result<Figures> {
    let addr = server.addr;
    let path = format!("/events/{events}");
    let before = server.cpu()?;
    let client_before = own_cpu()?;
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let path = path.clone();
        tasks.spawn(async move {
            let mut client = Client::get(addr, &path, true, 256 * 1024).await?;
            client.read_to_end().await?;
            Ok::<_, io::Error>(client.events)
        });
    }
    let received = client::bounded("parallel streams", async {
        let mut received = 0;
        while let Some(done) = tasks.join_next().await {
            let count = done.map_err(io::Error::other)??;
            check_count(count, events)?;
            received += count;
        }
        Ok(received)
    })
    .await?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = server.cpu()?.seconds_since(&before);
    let client_cpu = own_cpu()?.seconds_since(&client_before);
    Ok(vec![
        ("cpu_per_event", cpu * 1e6 / received as f64),
        ("events_per_s", received as f64 / elapsed),
        ("client_busy_pct", client_cpu * 100.0 / elapsed),
    ])
}

/// (c): `clients` subscribers; `events` events published at once; until every client has all.
/// Every client checks its ids: exactly the events published, in order.
pub(crate) async fn fanout(
    server: &ServerProcess,
    hub: Hub,
    clients: usize,
    events: u64,
) -> io::Result<Figures> {
    let addr = server.addr;
    let (path, publish, first) = match hub {
        Hub::Broadcast => ("/fanout", "/publish", 0),
        Hub::Resumable => ("/resume/events", "/resume/publish", 1),
    };
    let connected = client::bounded(
        "fan-out connect",
        connect_many(addr, Some(path), clients, true),
    )
    .await?;
    client::wait_for(addr, "fan-out subscribers", |stats| {
        let subscribers = match hub {
            Hub::Broadcast => stats.subscribers,
            Hub::Resumable => stats.resumable,
        };
        subscribers == clients as u64 && stats.live == clients as u64
    })
    .await?;
    let mut readers = JoinSet::new();
    for mut client in connected {
        readers.spawn(async move {
            client.read_events(events).await?;
            Ok::<_, io::Error>((Instant::now(), client))
        });
    }
    // Every reader is parked on its socket before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.cpu()?;
    let client_before = own_cpu()?;
    let start = Instant::now();
    client::fetch(addr, &format!("{publish}/{events}")).await?;
    let (last, held) = client::bounded("fan-out delivery", async {
        let mut last = start;
        let mut held = Vec::with_capacity(clients);
        while let Some(done) = readers.join_next().await {
            let (at, client) = done.map_err(io::Error::other)??;
            check_count(client.events, events)?;
            check_ids(&client, events, first)?;
            last = last.max(at);
            held.push(client);
        }
        Ok((last, held))
    })
    .await?;
    let cpu = server.cpu()?.seconds_since(&before);
    let client_cpu = own_cpu()?.seconds_since(&client_before);
    drop(held);
    let delivered = (clients as u64 * events) as f64;
    let elapsed = (last - start).as_secs_f64();
    Ok(vec![
        ("delivery_ms", elapsed * 1e3),
        ("cpu_per_delivery", cpu * 1e6 / delivered),
        ("client_busy_pct", client_cpu * 100.0 / elapsed),
    ])
}

/// With a recorder: `sse_events_sent_total` as the server's `/stats` renders it, which must be at
/// least `expected` (the events the clients received).
pub(crate) async fn recorded_events(server: &ServerProcess, expected: u64) -> io::Result<u64> {
    let body = client::fetch(server.addr, "/stats").await?;
    let name = sse_runtime::observe::names::EVENTS_SENT;
    let recorded = body
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .ok_or_else(|| io::Error::other(format!("no {name} in /stats: {body:?}")))?;
    if recorded < expected {
        return Err(io::Error::other(format!(
            "the recorder counted {recorded} events sent, the clients {expected}"
        )));
    }
    Ok(recorded)
}

/// How far (i1)'s publisher may run ahead of the slowest subscriber, in events: half the
/// servers' fan-out ring (128), so that the rate measured is one every subscriber receives, not
/// a burst into buffers that overflows the ring (ours then ends the stream with a lag notice,
/// and the floor and axum skip events, which fails the counts).
const TRICKLE_LEAD: u64 = 64;

/// (i): trickle fan-out. `sizes.clients` subscribers of `/fanout`; one publisher sends
/// `GET /publish/1` on a keep-alive connection, one request at a time, the next once the last is
/// answered: (i1) `sizes.saturated` of them as fast as that goes, at most [`TRICKLE_LEAD`]
/// ahead of the slowest subscriber, then (i2) `sizes.rate` a second for `sizes.window`, each
/// part with subscribers of its own (so that no stream lives the 15 s until ours's and axum's
/// first ping). Every subscriber must receive every event, exactly. The latency of a delivery in (i2) runs from the publish request's send time to the
/// end of the read that brought the event: the publishes are one at a time, so a subscriber's
/// k-th event is the k-th publish's, and every side sends its usual event, nothing added to it.
pub(crate) async fn trickle(server: &ServerProcess, sizes: &Trickle) -> io::Result<Figures> {
    let clients = sizes.clients;
    let saturated = trickle_part(server, clients, sizes.saturated, None).await?;
    let paced_count = (sizes.window.as_secs_f64() * f64::from(sizes.rate)).round() as u64;
    let period = Duration::from_secs(1) / sizes.rate;
    let mut paced = trickle_part(server, clients, paced_count, Some(period)).await?;
    paced.latencies.sort_unstable();
    let deliveries = |publishes: u64| (clients as u64 * publishes) as f64;
    Ok(vec![
        (
            "sat_cpu_per_delivery",
            saturated.cpu * 1e6 / deliveries(sizes.saturated),
        ),
        (
            "sat_deliveries_per_s",
            deliveries(sizes.saturated) / saturated.elapsed,
        ),
        (
            "sat_client_busy_pct",
            saturated.client_cpu * 100.0 / saturated.elapsed,
        ),
        (
            "paced_cpu_per_delivery",
            paced.cpu * 1e6 / deliveries(paced_count),
        ),
        ("paced_p50_ms", client::quantile_ms(&paced.latencies, 0.5)),
        ("paced_p99_ms", client::quantile_ms(&paced.latencies, 0.99)),
    ])
}

/// What one part of (i) took.
struct Trickled {
    /// Server and client CPU seconds, from the first publish until every event arrived.
    cpu: f64,
    client_cpu: f64,
    /// Seconds from the first publish until the last subscriber had the last event.
    elapsed: f64,
    /// With a period: nanoseconds from each publish's request to each subscriber's receipt of
    /// its event.
    latencies: Vec<u64>,
}

/// Connects `clients` subscribers of `/fanout`, publishes `count` events one `GET /publish/1`
/// at a time (each `period`, if given; else each once the previous is answered), reads them on
/// every subscriber, then lets the subscribers go and waits until the server has too.
async fn trickle_part(
    server: &ServerProcess,
    clients: usize,
    count: u64,
    period: Option<Duration>,
) -> io::Result<Trickled> {
    let addr = server.addr;
    let connected = client::bounded(
        "trickle connect",
        connect_many(addr, Some("/fanout"), clients, false),
    )
    .await?;
    client::wait_for(addr, "trickle subscribers", |stats| {
        stats.subscribers == clients as u64 && stats.live == clients as u64
    })
    .await?;
    let mut poster = client::Poster::connect(addr).await?;
    let base = Instant::now();
    let mut readers = JoinSet::new();
    let received: std::sync::Arc<[AtomicU64]> = (0..clients).map(|_| AtomicU64::new(0)).collect();
    for (index, mut client) in connected.into_iter().enumerate() {
        let received = received.clone();
        readers.spawn(async move {
            let mut arrivals = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
            while client.events < count {
                if client.read_some().await? {
                    return Err(io::Error::other("a subscriber's stream ended"));
                }
                received[index].store(client.events, Ordering::Release);
                let now = client::nanos_since(base);
                let got = usize::try_from(client.events.min(count)).unwrap_or(usize::MAX);
                arrivals.resize(got, now);
            }
            check_count(client.events, count)?;
            Ok::<_, io::Error>((arrivals, client))
        });
    }
    // Every reader is parked on its socket before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.cpu()?;
    let client_before = own_cpu()?;
    let start = client::nanos_since(base);
    let mut sent = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut tick = period.map(tokio::time::interval);
    client::bounded("trickle publishes", async {
        for number in 1..=count {
            match &mut tick {
                Some(tick) => {
                    tick.tick().await;
                }
                None => {
                    while received
                        .iter()
                        .map(|n| n.load(Ordering::Acquire))
                        .min()
                        .is_some_and(|slowest| number > slowest + TRICKLE_LEAD)
                    {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            sent.push(client::nanos_since(base));
            poster.get("/publish/1").await?;
        }
        Ok(())
    })
    .await?;
    let (last, held, latencies) = client::bounded("trickle delivery", async {
        let mut last = start;
        let mut held = Vec::with_capacity(clients);
        let mut latencies = Vec::new();
        while let Some(done) = readers.join_next().await {
            let (arrivals, client) = done.map_err(io::Error::other)??;
            last = last.max(arrivals.last().copied().unwrap_or(start));
            if period.is_some() {
                let each = arrivals.iter().zip(&sent);
                latencies.extend(each.map(|(at, sent)| at.saturating_sub(*sent)));
            }
            held.push(client);
        }
        Ok((last, held, latencies))
    })
    .await?;
    let cpu = server.cpu()?.seconds_since(&before);
    let client_cpu = own_cpu()?.seconds_since(&client_before);
    drop(held);
    client::wait_for(addr, "trickle disconnects", |stats| {
        stats.subscribers == 0 && stats.live == 0
    })
    .await?;
    Ok(Trickled {
        cpu,
        client_cpu,
        elapsed: (last - start) as f64 / 1e9,
        latencies,
    })
}

/// (d) and (k): `clients` idle streams: memory per connection, CPU over `window`. With
/// `counted`, the server's live count must reach `clients` too; every response head has come
/// either way (axum's leanest stream counts nothing).
pub(crate) async fn idle(
    server: &ServerProcess,
    clients: usize,
    window: Duration,
    counted: bool,
) -> io::Result<Figures> {
    let addr = server.addr;
    let rss_before = server.rss_kib()?;
    let connected = client::bounded(
        "idle connect",
        connect_many(addr, Some("/idle"), clients, false),
    )
    .await?;
    if counted {
        client::wait_for(addr, "idle streams", |stats| stats.live == clients as u64).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss_kib()?;
    let before = server.cpu()?;
    tokio::time::sleep(window).await;
    let cpu = server.cpu()?.seconds_since(&before);
    drop(connected);
    Ok(vec![
        (
            "kib_per_connection",
            rss_after.saturating_sub(rss_before) as f64 / clients as f64,
        ),
        ("idle_cpu_ms", cpu * 1e3),
    ])
}

/// (f): connect, read one event, disconnect, `cycles` times, `concurrency` at once.
pub(crate) async fn churn(
    server: &ServerProcess,
    cycles: u64,
    warmup: u64,
    concurrency: usize,
) -> io::Result<Figures> {
    let addr = server.addr;
    client::bounded("churn warm-up", cycle_many(addr, warmup, concurrency)).await?;
    client::wait_for(addr, "churn warm-up teardown", |stats| stats.live == 0).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_kib()?;
    let before = server.cpu()?;
    client::bounded("churn", cycle_many(addr, cycles, concurrency)).await?;
    // Torn-down streams must all be gone; wait a bounded while for the last disconnects.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut live = client::stats(addr).await?.live;
    while live > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        live = client::stats(addr).await?.live;
    }
    let cpu = server.cpu()?.seconds_since(&before);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = server.rss_kib()?;
    Ok(vec![
        ("live_after", live as f64),
        (
            "rss_growth_pct",
            (rss_after as f64 / rss_before as f64 - 1.0) * 100.0,
        ),
        ("cpu_per_cycle", cpu * 1e6 / cycles as f64),
    ])
}

async fn cycle_many(addr: SocketAddr, cycles: u64, concurrency: usize) -> io::Result<()> {
    let mut tasks = JoinSet::new();
    let per_task = cycles.div_ceil(concurrency as u64);
    let mut left = cycles;
    while left > 0 {
        let count = per_task.min(left);
        left -= count;
        tasks.spawn(async move {
            for _ in 0..count {
                let mut client = Client::get(addr, "/churn", false, 4 * 1024).await?;
                client.read_events(1).await?;
            }
            Ok::<_, io::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(io::Error::other)??;
    }
    Ok(())
}

/// (g): a reconnect storm. `clients` clients follow the resumable topic and receive `warmup`
/// events, then leave; `missed` more are published; then all of them send their request with
/// `Last-Event-ID` at once. Until every client has caught up: the time, and the server CPU per
/// replayed event. Then the same storm again with nothing missed (every cursor at the head),
/// which is what the reconnects cost besides the replay: the difference is the replay's cost.
///
/// The TCP connections of a storm are opened before the clock starts (and the requests only
/// then), so the figures are the resumes', not the kernel's listen queue's (5,000 handshakes at
/// once overflow it, and a dropped SYN is retried a second later).
pub(crate) async fn storm(
    server: &ServerProcess,
    clients: usize,
    warmup: u64,
    missed: u64,
) -> io::Result<Figures> {
    let addr = server.addr;
    let path = "/resume/events";
    let connected = client::bounded(
        "storm connect",
        connect_many(addr, Some(path), clients, true),
    )
    .await?;
    client::wait_for(addr, "storm subscribers", |stats| {
        stats.resumable == clients as u64 && stats.live == clients as u64
    })
    .await?;
    let cursor = client::fetch(addr, &format!("/resume/publish/{warmup}")).await?;
    let cursor = cursor.trim().to_owned();
    let mut readers = JoinSet::new();
    for mut client in connected {
        readers.spawn(async move {
            client.read_events(warmup).await?;
            Ok::<_, io::Error>(client)
        });
    }
    client::bounded("storm warm-up", async {
        while let Some(done) = readers.join_next().await {
            let client = done.map_err(io::Error::other)??;
            check_count(client.events, warmup)?;
            check_ids(&client, warmup, 1)?;
            check_last_id(&client, &cursor)?;
        }
        Ok(())
    })
    .await?;
    // Every client has `cursor` and is gone: the server must have let go of them all.
    client::wait_for(addr, "storm disconnects", |stats| {
        stats.resumable == 0 && stats.live == 0
    })
    .await?;
    let head = client::fetch(addr, &format!("/resume/publish/{missed}")).await?;
    let head = head.trim().to_owned();
    let resume = |cursor: &str| Request::Resume {
        cursor: cursor.to_owned(),
        head: head.clone(),
    };
    let storm = wave(server, clients, resume(&cursor), missed, warmup + 1).await?;
    // The same storm with nothing missed: what the reconnects cost besides the replay.
    client::wait_for(addr, "storm disconnects", |stats| {
        stats.resumable == 0 && stats.live == 0
    })
    .await?;
    let baseline = wave(server, clients, resume(&head), 0, 0).await?;
    let replayed = (clients as u64 * missed) as f64;
    Ok(vec![
        ("catch_up_ms", storm.elapsed * 1e3),
        ("cpu_per_replay", storm.cpu * 1e6 / replayed),
        ("client_busy_pct", storm.client_cpu * 100.0 / storm.elapsed),
        ("cpu_per_reconnect", baseline.cpu * 1e6 / clients as f64),
        (
            "cpu_per_replay_net",
            (storm.cpu - baseline.cpu) * 1e6 / replayed,
        ),
    ])
}

/// (g)'s peer on the floor and on ours: the same storm of requests, each answered with
/// `events` events made on the spot (`/events/{events}`, on connections opened beforehand),
/// which is what a request with its events costs where nothing is looked up or replayed. The
/// server CPU per event of the storm, and the time until every client had all of its events.
pub(crate) async fn request_storm(
    server: &ServerProcess,
    clients: usize,
    events: u64,
) -> io::Result<Figures> {
    // Every stream of an earlier wave has ended.
    client::wait_for(server.addr, "request storm: earlier streams", |stats| {
        stats.live == 0
    })
    .await?;
    let storm = wave(server, clients, Request::Events, events, 0).await?;
    Ok(vec![
        ("requests_ms", storm.elapsed * 1e3),
        (
            "cpu_per_request_event",
            storm.cpu * 1e6 / (clients as u64 * events) as f64,
        ),
    ])
}

/// What one wave of reconnects took.
struct Wave {
    /// From the first request to the last client's last event (or head), in seconds.
    elapsed: f64,
    /// The server's CPU over that time, in seconds.
    cpu: f64,
    /// The clients' CPU over that time, in seconds.
    client_cpu: f64,
}

/// What each client of a wave asks for.
enum Request {
    /// `/resume/events` from `cursor`; its last event (or, with nothing missed, its head) is
    /// `head`.
    Resume { cursor: String, head: String },
    /// `/events/{n}`: `n` events made on the spot, then the end of the body.
    Events,
}

/// Opens `clients` connections (not measured), then sends every `request` at once and reads
/// until each client has its `missed` events, numbered from `first` (with nothing missed, until
/// each has the response head).
async fn wave(
    server: &ServerProcess,
    clients: usize,
    request: Request,
    missed: u64,
    first: u64,
) -> io::Result<Wave> {
    let (path, cursor, head) = match request {
        Request::Resume { cursor, head } => ("/resume/events".to_owned(), Some(cursor), Some(head)),
        Request::Events => (format!("/events/{missed}"), None, None),
    };
    let sockets = client::bounded(
        "storm reconnect",
        connect_many(server.addr, None, clients, true),
    )
    .await?;
    let (go, wait) = watch::channel(false);
    let mut readers = JoinSet::new();
    for mut client in sockets {
        let mut wait = wait.clone();
        let (path, cursor) = (path.clone(), cursor.clone());
        readers.spawn(async move {
            wait.wait_for(|&go| go).await.map_err(io::Error::other)?;
            client.request(&path, false, cursor.as_deref()).await?;
            if missed == 0 {
                client.read_head().await?;
            } else {
                client.read_events(missed).await?;
            }
            Ok::<_, io::Error>((Instant::now(), client))
        });
    }
    // Every client is parked on the signal, and the server has accepted every connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.cpu()?;
    let client_before = own_cpu()?;
    let start = Instant::now();
    go.send_replace(true);
    let (last, held) = client::bounded("storm catch-up", async {
        let mut last = start;
        let mut held = Vec::with_capacity(clients);
        while let Some(done) = readers.join_next().await {
            let (at, client) = done.map_err(io::Error::other)??;
            check_count(client.events, missed)?;
            if missed > 0 {
                check_ids(&client, missed, first)?;
                if let Some(head) = &head {
                    check_last_id(&client, head)?;
                }
            }
            last = last.max(at);
            held.push(client);
        }
        Ok((last, held))
    })
    .await?;
    let cpu = server.cpu()?.seconds_since(&before);
    let client_cpu = own_cpu()?.seconds_since(&client_before);
    drop(held);
    Ok(Wave {
        elapsed: (last - start).as_secs_f64(),
        cpu,
        client_cpu,
    })
}

/// The figures of (h), per size of [`RESUME_MISSED`]: the resume's time and CPU per replayed
/// event, and those of `/events/{n}` (the same number of events made on the spot) as its peer.
pub(crate) const RESUME_KEYS: [[&str; 4]; 2] = [
    [
        "resume_ms_1000",
        "events_ms_1000",
        "cpu_per_replay_1000",
        "cpu_per_event_1000",
    ],
    [
        "resume_ms_10000",
        "events_ms_10000",
        "cpu_per_replay_10000",
        "cpu_per_event_10000",
    ],
];

/// (h): one client resumes `n` events behind, for each `n` of [`RESUME_MISSED`]: the time from
/// connecting to its last replayed event, median of `reps` (after one unmeasured), and the
/// server CPU per replayed event. The same for `/events/{n}` on the same server.
pub(crate) async fn resume_latency(server: &ServerProcess, reps: usize) -> io::Result<Figures> {
    let addr = server.addr;
    let largest = RESUME_MISSED.iter().copied().max().unwrap_or(0);
    // Some more than the largest replay, so that no cursor is at the start of the history.
    let head = client::fetch(addr, &format!("/resume/publish/{}", largest + 1_000)).await?;
    let head = head.trim();
    let (epoch, seq) = head
        .rsplit_once(':')
        .and_then(|(epoch, seq)| Some((epoch, seq.parse::<u64>().ok()?)))
        .ok_or_else(|| io::Error::other(format!("not an id: {head:?}")))?;
    let mut figures = Figures::new();
    for (&n, keys) in RESUME_MISSED.iter().zip(RESUME_KEYS) {
        let cursor = format!("{epoch}:{}", seq - n);
        let resume = |client: Client| check_ids(&client, n, seq - n + 1);
        let (ms, cpu) =
            timed_reads(server, reps, n, "/resume/events", Some(&cursor), resume).await?;
        let made = |client: Client| check_ids(&client, n, 0);
        let path = format!("/events/{n}");
        let (peer_ms, peer_cpu) = timed_reads(server, reps, n, &path, None, made).await?;
        figures.extend([
            (keys[0], ms),
            (keys[1], peer_ms),
            (keys[2], cpu),
            (keys[3], peer_cpu),
        ]);
    }
    Ok(figures)
}

/// `reps` + 1 single clients of `path`, one after the other, each until `events` events (the
/// first unmeasured): the median time from connect to the last event, in ms, and the server
/// CPU per event, in us.
async fn timed_reads(
    server: &ServerProcess,
    reps: usize,
    events: u64,
    path: &str,
    cursor: Option<&str>,
    check: impl Fn(Client) -> io::Result<()>,
) -> io::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(reps);
    let mut cpu = 0.0;
    for rep in 0..=reps {
        let before = server.cpu()?;
        let start = Instant::now();
        let client = client::bounded(path, async {
            let mut client = Client::connect(server.addr, 256 * 1024).await?.checked();
            client.request(path, true, cursor).await?;
            client.read_events(events).await?;
            Ok(client)
        })
        .await?;
        let elapsed = start.elapsed().as_secs_f64();
        let spent = server.cpu()?.seconds_since(&before);
        check_count(client.events, events)?;
        check(client)?;
        // The stream is gone before the next one starts.
        client::wait_for(server.addr, "single stream teardown", |stats| {
            stats.live == 0
        })
        .await?;
        if rep > 0 {
            times.push(elapsed * 1e3);
            cpu += spent;
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    Ok((median, cpu * 1e6 / (reps as u64 * events) as f64))
}

/// The CPU time of this process: the load clients (a share of 100% is one core busy).
pub(crate) fn own_cpu() -> io::Result<Cpu> {
    Cpu::read(std::process::id())
}

fn check_count(got: u64, expected: u64) -> io::Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "received {got} events instead of {expected}"
        )))
    }
}

/// Fails unless the client's ids were exactly `first..first + events`, in order.
fn check_ids(client: &Client, events: u64, first: u64) -> io::Result<()> {
    let ids = client
        .ids()
        .ok_or_else(|| io::Error::other("the client did not check its ids"))?;
    ids.expect(events, Some(first), Some(first + events - 1))
}

/// Fails unless the client's last id is `expected` (the whole id, its history too).
fn check_last_id(client: &Client, expected: &str) -> io::Result<()> {
    let last = client.ids().map(client::Ids::last_id).unwrap_or_default();
    if last == expected {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "last id {last:?} instead of {expected:?}"
        )))
    }
}
