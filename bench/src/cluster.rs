//! Three nodes on one Redis against nchan: `bench cluster [--quick] [--runs N]
//! [--node-threads N] [--system ..]` (see BENCHMARKS.md, "Three nodes on Redis against nchan").
//!
//! Every system runs as real processes on 127.0.0.1, started afresh for each load of a run and
//! killed at its end (also when it fails):
//!
//! * **ours, 3 nodes**: three `cluster` example processes (`examples/examples/cluster.rs`,
//!   built in release; one tokio worker thread each unless `--node-threads` says otherwise)
//!   sharing one hub through a `redis-server` of their own;
//! * **nchan, 3 nodes**: three nginx processes with nchan (one worker each, no master) in
//!   nchan's Redis mode, on a `redis-server` of their own, pinging each subscriber with a
//!   comment every 15 s as the example does (`: ping`);
//! * **the floor, 3 nodes**: three `bench cluster-floor` processes (this binary; one worker
//!   thread each, likewise) on our Redis store, with everything after the store written by
//!   hand: each node writes every event to all its subscribers' sockets in one loop, one
//!   `send(2)` each (see `cluster_floor.rs`). The least a node on the store does. Asked for,
//!   also the same with a task per subscriber (`floor-tasks-3`) and with a bare body on
//!   hyper, served as the example is (`floor-hyper-3`);
//! * **ours, 1 node on Redis** and **ours, 1 node in memory** (the example without
//!   `REDIS_URL`, no Redis at all): what the Redis store costs one node.
//!
//! Each `redis-server` runs on a free port, without persistence (`--save '' --appendonly no`),
//! in a temporary directory. Both sides are reached by the same clients with the same paths:
//! subscribers `GET /events?topic=bench` (SSE), spread evenly over the nodes, and publishers
//! `POST /publish/bench` with one event's data (64 bytes) per request, on keep-alive
//! connections, to the nodes in turn. Each event's data starts with its send time
//! (`t=<ns> `, nanoseconds on this process's clock), which the latency load reads back.
//!
//! Per run, two loads:
//!
//! 1. **Saturation**, each system on its own, with 1,000 subscribers, then with 3,000 (2,000
//!    more join): publishers (6 tasks) publish as fast as the system delivers. Each takes a
//!    number before its request and waits while that number is more than [`LEAD`] events
//!    ahead of the slowest subscriber, so that the rate is what every subscriber receives,
//!    sustained, not a burst into buffers (ours ends a stream that falls 256 events behind).
//!    Figures over a window after a warm-up: deliveries/s (events received, all subscribers
//!    together), the CPU time of the nodes and the `redis-server` (`/proc/PID/stat`, or the
//!    same in nanoseconds from `schedstat`) per delivered event, and how many events the nodes
//!    deliver per write system call (`write`, `writev`, `send`, `sendmsg`, `sendfile`, counted
//!    by `perf stat` on their tracepoints; without `perf`, `syscw` of `/proc/PID/io`, which
//!    misses `send`).
//! 2. **Fixed rate**, 40 events/s to 1,000 subscribers: publish-to-delivery latency, p50, p99,
//!    p99.9 and the largest, from the send time in the data to the end of the read that
//!    brought the event. The systems of a group (ours, nchan and the floor on three nodes; ours
//!    on one node, on Redis and in memory) run at once, each with its own subscribers, and take the
//!    load in turn, a few seconds each, for a few rounds: a tail latency moves with the
//!    machine's state from minute to minute, and so both sides see the same minutes.
//!
//! After each load every subscriber must have received every event published since it was
//! ready, exactly once (counts; on ours and the floor, also consecutive ids), or the run fails.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use std::{fs, io};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{self, Client, Poster, STAMP};
use crate::measure::{self, Cpu};
use crate::report::{self, Comparison, Figure, Goal, Results};
use crate::scenarios::{Figures, connect_many_with, own_cpu};

/// The topic every subscriber follows and every event is published to.
const SUBSCRIBE: &str = "/events?topic=bench";
const PUBLISH: &str = "/publish/bench";
/// The data of every event: its send time, padded to this many bytes.
const PAYLOAD_BYTES: usize = 64;
/// The `cluster` example's ping period (`#[sse_endpoint(ping = 15)]`): nchan's subscribers get
/// a ping comment as often, so that both sides do the same work.
const PING_SECS: u64 = 15;
/// Events kept per topic: the `cluster` example's `HISTORY`, and nchan's buffer likewise.
const HISTORY: usize = 10_000;
/// How far the publishers may run ahead of the slowest subscriber, in events (ours ends a
/// stream that falls `DEFAULT_CAPACITY` = 256 behind).
const LEAD: u64 = 100;
/// The saturation's publisher tasks; each has a keep-alive connection to every node.
const PUBLISHERS: usize = 6;
/// The fixed rate's publisher connections, to the nodes in turn.
const PACED_CONNECTIONS: usize = 3;
/// A bound on every wait of the run, so that a broken system cannot hang it.
const PATIENCE: Duration = Duration::from_secs(30);
/// The nchan module, as Debian's libnginx-mod-nchan installs it.
const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";
const NGINX: &str = "/usr/sbin/nginx";
/// Above this share of a core used by other processes during a window, a run says that it
/// was disturbed.
const OTHERS_NOTE_PCT: f64 = 10.0;
/// The one figure id of this benchmark in [`Results`] (its figures differ by key).
const ID: char = 'r';

/// Which system one run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum System {
    /// Three `cluster` nodes sharing a hub through one `redis-server`.
    Ours3,
    /// Three nginx + nchan nodes in nchan's Redis mode, on one `redis-server`.
    Nchan3,
    /// One `cluster` node on a `redis-server`.
    Ours1Redis,
    /// One `cluster` node on its in-memory hub.
    Ours1Memory,
    /// Three floor nodes (`bench cluster-floor`) sharing our Redis store: the least a node on
    /// it does to deliver ours's bytes.
    Floor3,
    /// The same with a task per subscriber (`bench cluster-floor --tasks`); only when asked
    /// for.
    FloorTasks3,
    /// The same events handed to hyper by a bare body (`bench cluster-floor --hyper`); only
    /// when asked for.
    FloorHyper3,
}

const SYSTEMS: [System; 7] = [
    System::Ours3,
    System::Nchan3,
    System::Floor3,
    System::FloorTasks3,
    System::FloorHyper3,
    System::Ours1Redis,
    System::Ours1Memory,
];

/// What a run without `--system` runs.
const DEFAULT_SYSTEMS: [System; 5] = [
    System::Ours3,
    System::Nchan3,
    System::Floor3,
    System::Ours1Redis,
    System::Ours1Memory,
];

impl System {
    /// Its name for `--system`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            System::Ours3 => "ours-3",
            System::Nchan3 => "nchan-3",
            System::Ours1Redis => "ours-1-redis",
            System::Ours1Memory => "ours-1-memory",
            System::Floor3 => "floor-3",
            System::FloorTasks3 => "floor-tasks-3",
            System::FloorHyper3 => "floor-hyper-3",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        SYSTEMS.into_iter().find(|system| system.name() == name)
    }

    fn as_str(self) -> &'static str {
        match self {
            System::Ours3 => "ours, 3 nodes on Redis",
            System::Nchan3 => "nchan, 3 nodes on Redis",
            System::Ours1Redis => "ours, 1 node on Redis",
            System::Ours1Memory => "ours, 1 node in memory",
            System::Floor3 => "floor, 3 nodes on our Redis store",
            System::FloorTasks3 => "floor with a task per subscriber, 3 nodes",
            System::FloorHyper3 => "floor on hyper, 3 nodes",
        }
    }

    fn nodes(self) -> usize {
        match self {
            System::Ours3
            | System::Nchan3
            | System::Floor3
            | System::FloorTasks3
            | System::FloorHyper3 => 3,
            System::Ours1Redis | System::Ours1Memory => 1,
        }
    }

    fn redis(self) -> bool {
        self != System::Ours1Memory
    }

    /// For a floor, the arguments of its `bench cluster-floor` nodes after the command's name.
    fn floor_args(self) -> Option<&'static [&'static str]> {
        match self {
            System::Floor3 => Some(&[]),
            System::FloorTasks3 => Some(&["--tasks"]),
            System::FloorHyper3 => Some(&["--hyper"]),
            _ => None,
        }
    }

    /// Whether it sends ours's ids (`<epoch>:<seq>`, consecutive), which its clients check.
    fn ours_ids(self) -> bool {
        self != System::Nchan3
    }
}

/// The sizes of a run (`--quick`: a tenth of the subscribers, shorter windows).
#[derive(Clone, Debug)]
struct Plan {
    /// Subscribers of the two saturation loads (the second adds to the first).
    crowds: [usize; 2],
    /// Subscribers and events per second of the fixed rate.
    paced_subscribers: usize,
    rate: u32,
    /// Load before a saturation's window starts, and that window.
    warmup: Duration,
    window: Duration,
    /// The fixed rate runs in rounds: in each, every system of a group in turn gets a warm-up
    /// and a window. A p99 over a run's windows rests on its slowest 1% of deliveries: with 3
    /// rounds (240 events) that was the tails of a few events, and a stall of the machine in
    /// one of them moved the run's p99 ratio between two systems by up to a quarter; 8 rounds
    /// (640 events) narrow that spread by a third (BENCHMARKS.md, "eight rounds per run").
    paced_rounds: usize,
    paced_warmup: Duration,
    paced_window: Duration,
    /// Worker threads of each of our nodes (`TOKIO_WORKER_THREADS`, which the example's
    /// `#[tokio::main]` runtime reads): 1, as nginx's one worker process per node.
    node_threads: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            crowds: [1_000, 3_000],
            paced_subscribers: 1_000,
            rate: 40,
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(3),
            paced_rounds: 8,
            paced_warmup: Duration::from_millis(500),
            paced_window: Duration::from_secs(2),
            node_threads: 1,
        }
    }

    fn quick() -> Self {
        Self {
            crowds: [100, 300],
            paced_subscribers: 100,
            rate: 40,
            warmup: Duration::from_millis(500),
            window: Duration::from_secs(2),
            paced_rounds: 2,
            paced_warmup: Duration::from_millis(500),
            paced_window: Duration::from_millis(1500),
            node_threads: 1,
        }
    }
}

/// The keys of one saturation load's figures.
struct SaturationKeys {
    rate: &'static str,
    cpu: &'static str,
    redis_cpu: &'static str,
    publishes: &'static str,
    client_busy: &'static str,
    per_write: &'static str,
    others: &'static str,
}

const SATURATION_KEYS: [SaturationKeys; 2] = [
    SaturationKeys {
        rate: "sat1_deliveries_per_s",
        cpu: "sat1_cpu_per_delivery",
        redis_cpu: "sat1_redis_cpu_per_delivery",
        publishes: "sat1_publishes_per_s",
        client_busy: "sat1_client_busy_pct",
        per_write: "sat1_deliveries_per_write",
        others: "sat1_others_pct",
    },
    SaturationKeys {
        rate: "sat2_deliveries_per_s",
        cpu: "sat2_cpu_per_delivery",
        redis_cpu: "sat2_redis_cpu_per_delivery",
        publishes: "sat2_publishes_per_s",
        client_busy: "sat2_client_busy_pct",
        per_write: "sat2_deliveries_per_write",
        others: "sat2_others_pct",
    },
];

/// The options of `bench cluster`.
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) runs: Option<usize>,
    /// Only these systems (for profiling one).
    pub(crate) only: Option<Vec<System>>,
    /// Worker threads per node of ours (default 1).
    pub(crate) node_threads: Option<usize>,
}

/// `bench cluster [--quick] [--runs N] [--system NAME,..] [--node-threads N]`.
pub(crate) async fn drive(options: Options) -> ExitCode {
    let Options {
        quick,
        runs,
        only,
        node_threads,
    } = options;
    let mut plan = if quick { Plan::quick() } else { Plan::full() };
    plan.node_threads = node_threads.unwrap_or(plan.node_threads);
    let runs = runs.unwrap_or(if quick { 1 } else { 3 });
    let limit = measure::raise_nofile_limit(true);
    // This process holds every subscriber, and the publishers' connections, plus a margin.
    let fit = usize::try_from(limit.saturating_sub(256)).unwrap_or(usize::MAX);
    if plan.crowds[1] > fit {
        eprintln!(
            "RLIMIT_NOFILE is {limit} (hard limit): scaling the subscribers down from {} to {fit}",
            plan.crowds[1]
        );
        plan.crowds[1] = fit;
        plan.crowds[0] = plan.crowds[0].min(fit);
        plan.paced_subscribers = plan.paced_subscribers.min(fit);
    }
    let binary = match cluster_binary() {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("bench cluster: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("# sse-runtime on Redis, 3 nodes, against nchan\n");
    for (name, value) in measure::machine() {
        println!("- {name}: {value}");
    }
    for (name, value) in versions() {
        println!("- {name}: {value}");
    }
    println!(
        "- ours: `{}`, one process per node, {} tokio worker thread{} each \
         (`TOKIO_WORKER_THREADS`); nchan: one nginx per node, `worker_processes 1`, \
         `master_process off`",
        binary.display(),
        plan.node_threads,
        if plan.node_threads == 1 { "" } else { "s" }
    );
    println!(
        "- loads: (i) saturation with {} and {} subscribers ({PUBLISHERS} publisher tasks, at \
         most {LEAD} events ahead of the slowest subscriber, {} s warm-up, {} s window); (ii) {} \
         events/s to {} subscribers, the systems of a group in turn, {} rounds of {} s \
         warm-up and {} s window each; events of {PAYLOAD_BYTES} bytes of data; runs: {runs}{}\n",
        report::number(plan.crowds[0] as f64, 0),
        report::number(plan.crowds[1] as f64, 0),
        plan.warmup.as_secs_f64(),
        plan.window.as_secs_f64(),
        plan.rate,
        report::number(plan.paced_subscribers as f64, 0),
        plan.paced_rounds,
        plan.paced_warmup.as_secs_f64(),
        plan.paced_window.as_secs_f64(),
        if quick { " (--quick sizes)" } else { "" }
    );
    let base = Instant::now();
    let mut tally = Tally::default();
    let selected = only.unwrap_or_else(|| DEFAULT_SYSTEMS.to_vec());
    for run in 0..runs {
        // (i), each system on its own; rotate which goes first, so drift in the machine evens
        // out.
        let mut order = selected.clone();
        let first = run % order.len();
        order.rotate_left(first);
        for system in order {
            let started = Instant::now();
            let figures = saturations(system, &plan, &binary, base).await;
            record(&mut tally, run, runs, system, started, figures);
        }
        // (ii), the systems of each group in turn (those of it that were selected).
        for systems in GROUPS {
            let mut group: Vec<System> = systems
                .iter()
                .copied()
                .filter(|system| selected.contains(system))
                .collect();
            if group.is_empty() {
                continue;
            }
            let first = run % group.len();
            group.rotate_left(first);
            let started = Instant::now();
            match pace_group(&group, &plan, &binary, base).await {
                Ok(all) => {
                    for (system, figures) in group.into_iter().zip(all) {
                        record(&mut tally, run, runs, system, started, Ok(figures));
                    }
                }
                Err(error) => {
                    for system in group {
                        let error = io::Error::other(error.to_string());
                        record(&mut tally, run, runs, system, started, Err(error));
                    }
                }
            }
        }
    }
    let results = &tally.results;
    for table in TABLES {
        // A table of a system only asked for is left out when it was not.
        let shown = [table.value, table.peer]
            .iter()
            .all(|system| DEFAULT_SYSTEMS.contains(system) || selected.contains(system));
        if shown {
            println!("## {} (same run)\n", table.heading);
            let rows = rows(&plan, table.value, table.peer, table.goals);
            println!("{}", results.comparison_table(&rows));
        }
    }
    println!(
        "Other processes on the machine used at most {:.0}% of one core during any window{}.\n",
        tally.others_pct,
        if tally.others_pct > OTHERS_NOTE_PCT {
            ": this run was disturbed"
        } else {
            ""
        }
    );
    if tally.failures > 0 {
        eprintln!("{} system runs failed", tally.failures);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// What the runs of a drive found.
#[derive(Default)]
struct Tally {
    results: Results<System>,
    failures: usize,
    /// The most CPU other processes used during any window, in % of one core.
    others_pct: f64,
}

/// Adds one system's figures of one run to the tally and shows them.
fn record(
    tally: &mut Tally,
    run: usize,
    runs: usize,
    system: System,
    started: Instant,
    figures: io::Result<Figures>,
) {
    match figures {
        Ok(figures) => {
            eprintln!(
                "run {}/{runs} {} ({:.0} s): {}",
                run + 1,
                system.as_str(),
                started.elapsed().as_secs_f64(),
                report::figures_line(&figures)
            );
            let others = figures
                .iter()
                .filter(|(key, _)| key.ends_with("others_pct"))
                .map(|&(_, value)| value)
                .fold(0.0, f64::max);
            if others > OTHERS_NOTE_PCT {
                eprintln!(
                    "  note: other processes used up to {others:.0}% of a core during a window: \
                     these figures are disturbed"
                );
            }
            tally.others_pct = tally.others_pct.max(others);
            tally.results.add(ID, system, figures);
        }
        Err(error) => {
            eprintln!(
                "run {}/{runs} {}: FAILED: {error}",
                run + 1,
                system.as_str()
            );
            tally.failures += 1;
        }
    }
}

/// The rows of one load, `value` against `peer`, with the goals of `goals` (for the
/// saturations' deliveries/s and CPU, and the fixed rate's p99).
fn rows(plan: &Plan, value: System, peer: System, goals: [Goal; 3]) -> Vec<Comparison<System>> {
    let peer_label = peer.as_str();
    let n = |count: usize| report::number(count as f64, 0);
    let figure = |side, key| Figure {
        scenario: ID,
        side,
        key,
    };
    let row = |title: String, label: &str, key, goal, digits| Comparison {
        scenario: ID,
        title,
        label: label.to_owned(),
        value: figure(value, key),
        peer_label,
        peer: figure(peer, key),
        goal,
        digits,
    };
    let mut rows = Vec::new();
    for (keys, crowd) in SATURATION_KEYS.iter().zip(plan.crowds) {
        let title = format!("(i) saturation, {} subscribers", n(crowd));
        rows.extend([
            row(title, "deliveries/s", keys.rate, goals[0], 0),
            row(
                String::new(),
                "server CPU us/delivered event (nodes + redis-server)",
                keys.cpu,
                goals[1],
                3,
            ),
            row(
                String::new(),
                "of which redis-server, us/delivered event",
                keys.redis_cpu,
                Goal::Info,
                3,
            ),
            row(String::new(), "publishes/s", keys.publishes, Goal::Info, 0),
            row(
                String::new(),
                "delivered events per write syscall of the nodes",
                keys.per_write,
                Goal::Info,
                2,
            ),
            row(
                String::new(),
                "load clients' CPU, % of one core",
                keys.client_busy,
                Goal::Info,
                0,
            ),
        ]);
    }
    let title = format!(
        "(ii) {} events/s to {} subscribers",
        plan.rate,
        n(plan.paced_subscribers)
    );
    rows.extend([
        row(
            title,
            "p50 ms, publish to the event's first delivery",
            "paced_first_p50_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "p50 ms, publish to delivery",
            "paced_p50_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "p99 ms, publish to delivery",
            "paced_p99_ms",
            goals[2],
            2,
        ),
        row(
            String::new(),
            "p99.9 ms, publish to delivery",
            "paced_p999_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "largest ms, publish to delivery",
            "paced_max_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "p50 ms, publish to the event's last delivery",
            "paced_event_last_p50_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "p90 ms, publish to the event's last delivery",
            "paced_event_last_p90_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "p99 ms of the node whose subscribers had it lowest",
            "paced_node_p99_min_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "p99 ms of the node whose subscribers had it highest",
            "paced_node_p99_max_ms",
            Goal::Info,
            2,
        ),
        row(
            String::new(),
            "server CPU us/delivered event (nodes + redis-server)",
            "paced_cpu_per_delivery",
            Goal::Info,
            3,
        ),
        row(
            String::new(),
            "delivered events per write syscall of the nodes",
            "paced_deliveries_per_write",
            Goal::Info,
            2,
        ),
    ]);
    rows
}

/// One comparison table of a drive: `value` against `peer`, with the goals of the
/// saturations' deliveries/s and CPU and of the fixed rate's p99.
struct Table {
    heading: &'static str,
    value: System,
    peer: System,
    goals: [Goal; 3],
}

/// The tables a drive prints, in order.
const TABLES: [Table; 6] = [
    // The issue's targets.
    Table {
        heading: "Three nodes on Redis: ours against nchan",
        value: System::Ours3,
        peer: System::Nchan3,
        goals: [
            Goal::RatioAtLeast(1.5),
            Goal::RatioAtMost(0.6),
            Goal::RatioAtMost(1.0),
        ],
    },
    // How far ours is from the least a node on the same store does, and where that least
    // stands.
    Table {
        heading: "Three nodes on Redis: ours against the floor",
        value: System::Ours3,
        peer: System::Floor3,
        goals: [Goal::Info; 3],
    },
    Table {
        heading: "Three nodes on Redis: the floor against nchan",
        value: System::Floor3,
        peer: System::Nchan3,
        goals: [Goal::Info; 3],
    },
    // What a task per subscriber costs, without hyper or an SSE layer.
    Table {
        heading: "Three nodes on Redis: the floor with a task per subscriber",
        value: System::FloorTasks3,
        peer: System::Floor3,
        goals: [Goal::Info; 3],
    },
    // What the SSE layer costs over a bare body on hyper.
    Table {
        heading: "Three nodes on Redis: ours against the floor on hyper",
        value: System::Ours3,
        peer: System::FloorHyper3,
        goals: [Goal::Info; 3],
    },
    // What the Redis store costs one node.
    Table {
        heading: "One node: the Redis store against the in-memory hub",
        value: System::Ours1Redis,
        peer: System::Ours1Memory,
        goals: [Goal::Info; 3],
    },
];

/// The systems whose fixed-rate loads alternate, round by round: each group's figures are of
/// the same minutes of the machine's life.
const GROUPS: [&[System]; 2] = [
    &[
        System::Ours3,
        System::Nchan3,
        System::Floor3,
        System::FloorTasks3,
        System::FloorHyper3,
    ],
    &[System::Ours1Redis, System::Ours1Memory],
];

/// (i): starts `system`, saturates it with the two crowds in turn, stops it (whatever
/// happened).
async fn saturations(
    system: System,
    plan: &Plan,
    binary: &Path,
    base: Instant,
) -> io::Result<Figures> {
    let deployment = Deployment::start(system, binary, plan.node_threads).await?;
    let figures = saturate_crowds(&deployment, plan, base).await;
    deployment.stop().await;
    figures
}

async fn saturate_crowds(
    deployment: &Deployment,
    plan: &Plan,
    base: Instant,
) -> io::Result<Figures> {
    let mut figures = Figures::new();
    let addrs = &deployment.addrs;
    let mut crowd = Crowd::new();
    let mut joined = 0;
    for (keys, size) in SATURATION_KEYS.iter().zip(plan.crowds) {
        crowd
            .join(addrs, size.saturating_sub(joined), |client| client)
            .await?;
        joined = size.max(joined);
        let saturation = saturate(deployment, &mut crowd, plan, base).await?;
        figures.extend([
            (keys.rate, saturation.deliveries_per_s),
            (keys.cpu, saturation.cpu_per_delivery),
            (keys.redis_cpu, saturation.redis_cpu_per_delivery),
            (keys.publishes, saturation.publishes_per_s),
            (keys.client_busy, saturation.client_busy_pct),
            (keys.per_write, saturation.deliveries_per_write),
            (keys.others, saturation.others_pct),
        ]);
    }
    crowd.finish().await?;
    Ok(figures)
}

/// (ii): starts every system of `group` (one or two), each with its own crowd, and runs the
/// fixed rate against them in turn; stops them all (whatever happened). The figures of each,
/// in `group`'s order.
async fn pace_group(
    group: &[System],
    plan: &Plan,
    binary: &Path,
    base: Instant,
) -> io::Result<Vec<Figures>> {
    let mut deployments = Vec::with_capacity(group.len());
    let mut started = Ok(());
    for &system in group {
        match Deployment::start(system, binary, plan.node_threads).await {
            Ok(deployment) => deployments.push(deployment),
            Err(error) => {
                started = Err(error);
                break;
            }
        }
    }
    let figures = match started {
        Ok(()) => pace_rounds(&deployments, plan, base).await,
        Err(error) => Err(error),
    };
    for deployment in deployments {
        deployment.stop().await;
    }
    figures
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// A directory of its own under the system's temporary directory, deleted when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> io::Result<Self> {
        static MADE: AtomicU64 = AtomicU64::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sse-bench-{what}-{}-{n}", std::process::id()));
        fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process of the run; killed when dropped, so also when the run fails.
struct Proc {
    name: String,
    child: Child,
    pid: u32,
}

impl Proc {
    /// Spawns `command`; its stdout and stderr go to this process's stderr, each line prefixed
    /// with `name`, except for what the caller takes first (`keep_stderr`).
    fn spawn(name: String, command: &mut Command, keep_stderr: bool) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| io::Error::other(format!("cannot start {name}: {error}")))?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other(format!("{name} exited at once")))?;
        if let Some(stdout) = child.stdout.take() {
            forward(name.clone(), stdout);
        }
        if !keep_stderr && let Some(stderr) = child.stderr.take() {
            forward(name.clone(), stderr);
        }
        Ok(Self { name, child, pid })
    }

    fn cpu(&self) -> io::Result<Cpu> {
        Cpu::read(self.pid)
    }

    fn writes(&self) -> io::Result<u64> {
        measure::write_syscalls(self.pid)
    }

    /// Fails if the process has exited.
    fn alive(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(io::Error::other(format!("{} exited: {status}", self.name))),
        }
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// Copies a child's output to stderr, line by line, prefixed with its name.
fn forward(name: String, output: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("  [{name}] {line}");
        }
    });
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `redis-server` of the run.
struct Redis {
    proc: Proc,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    async fn start() -> io::Result<Self> {
        let mut last = None;
        // A port taken between `free_port` and the server's bind: try another.
        for _ in 0..3 {
            let dir = TempDir::new("redis")?;
            let port = free_port()?;
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir.0)
                .args(["--daemonize", "no", "--loglevel", "warning"])
                .arg("--logfile")
                .arg(dir.0.join("redis.log"));
            let mut proc = Proc::spawn(format!("redis-server :{port}"), &mut command, false)?;
            match ready(&mut proc, port, redis_ping).await {
                Ok(()) => {
                    return Ok(Self {
                        proc,
                        port,
                        _dir: dir,
                    });
                }
                Err(error) => {
                    proc.stop().await;
                    let log = fs::read_to_string(dir.0.join("redis.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    last = Some(io::Error::other(format!("{error}: {}", tail.join(" / "))));
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }
}

/// Answers whether the Redis on `port` answers `PING`.
async fn redis_ping(port: u16) -> io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(b"PING\r\n").await?;
    let mut answer = [0; 7];
    stream.read_exact(&mut answer).await?;
    if &answer == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(io::Error::other("not a PONG"))
    }
}

/// Answers whether something listens on `port`.
async fn listening(port: u16) -> io::Result<()> {
    TcpStream::connect(("127.0.0.1", port)).await.map(drop)
}

/// Waits until `check(port)` succeeds while `proc` runs; fails after [`PATIENCE`].
async fn ready<F: Future<Output = io::Result<()>>>(
    proc: &mut Proc,
    port: u16,
    check: impl Fn(u16) -> F,
) -> io::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        proc.alive()?;
        if check(port).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("{} does not answer", proc.name)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `cluster` node with `threads` worker threads: on the Redis at `redis` (a port), or in
/// memory.
async fn start_ours(
    binary: &Path,
    redis: Option<u16>,
    threads: usize,
    node: usize,
) -> io::Result<(Proc, SocketAddr)> {
    let mut command = Command::new(binary);
    command
        .env("PORT", "0")
        .env("TOKIO_WORKER_THREADS", threads.to_string())
        // Its `listening on` line, and its warnings.
        .env("RUST_LOG", "warn,examples=info");
    match redis {
        Some(port) => command.env("REDIS_URL", format!("redis://127.0.0.1:{port}")),
        None => command.env_remove("REDIS_URL"),
    };
    said_where(Proc::spawn(format!("ours {node}"), &mut command, true)?).await
}

/// A floor node (`bench cluster-floor`, this binary, with `args`) with `threads` worker
/// threads, on the Redis at `redis` (a port).
async fn start_floor(
    redis: u16,
    args: &[&str],
    threads: usize,
    node: usize,
) -> io::Result<(Proc, SocketAddr)> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("cluster-floor")
        .args(args)
        .env("PORT", "0")
        .env("TOKIO_WORKER_THREADS", threads.to_string())
        .env("REDIS_URL", format!("redis://127.0.0.1:{redis}"));
    said_where(Proc::spawn(format!("floor {node}"), &mut command, true)?).await
}

/// Waits for a node's `listening on http://<addr>` line on its stderr, and forwards its other
/// lines.
async fn said_where(mut proc: Proc) -> io::Result<(Proc, SocketAddr)> {
    let stderr = proc.child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line
                .split_once("listening on http://")
                .map(|(_, rest)| rest)
            {
                let addr = rest.split_whitespace().next().unwrap_or("");
                return addr
                    .parse::<SocketAddr>()
                    .map_err(|_| io::Error::other(format!("not an address: {line:?}")));
            }
            eprintln!("  [{}] {line}", proc.name);
        }
        Err(io::Error::other("the node exited before it listened"))
    })
    .await
    .map_err(|_| io::Error::other("the node did not say where it listens"))??;
    let name = proc.name.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("  [{name}] {line}");
        }
    });
    Ok((proc, addr))
}

/// nginx with nchan, one worker in the foreground, on the Redis at `redis` (a port).
async fn start_nchan(redis: u16, node: usize) -> io::Result<(Proc, SocketAddr, TempDir)> {
    let dir = TempDir::new("nchan")?;
    let mut last = None;
    for _ in 0..3 {
        let port = free_port()?;
        let conf = dir.0.join("nginx.conf");
        fs::write(&conf, nchan_conf(&dir.0, port, redis))?;
        let mut command = Command::new(NGINX);
        command
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr"]);
        let mut proc = Proc::spawn(format!("nchan {node}"), &mut command, false)?;
        match ready(&mut proc, port, listening).await {
            Ok(()) => return Ok((proc, SocketAddr::from(([127, 0, 0, 1], port)), dir)),
            Err(error) => {
                proc.stop().await;
                last = Some(error);
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("nginx did not start")))
}

/// The configuration of one nchan node: the same routes as the `cluster` example, the same
/// history (10,000 events a topic, kept 24 h), new subscribers from the next event on (ours
/// without `Last-Event-ID`), nothing logged per request.
fn nchan_conf(dir: &Path, port: u16, redis: u16) -> String {
    let dir = dir.display();
    format!(
        r#"load_module {NCHAN_MODULE};
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 8192;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;

    upstream redis {{
        nchan_redis_server redis://127.0.0.1:{redis};
    }}

    server {{
        listen 127.0.0.1:{port};

        location = /events {{
            nchan_subscriber eventsource;
            nchan_channel_id $arg_topic;
            nchan_redis_pass redis;
            nchan_subscriber_first_message newest;
            nchan_eventsource_ping_interval {PING_SECS};
            nchan_eventsource_ping_comment "ping";
            nchan_eventsource_ping_event "";
            nchan_eventsource_ping_data "";
            nchan_message_buffer_length {HISTORY};
            nchan_message_timeout 24h;
        }}

        location ~ ^/publish/(.+)$ {{
            nchan_publisher;
            nchan_channel_id $1;
            nchan_redis_pass redis;
            nchan_message_buffer_length {HISTORY};
            nchan_message_timeout 24h;
            client_max_body_size 64k;
        }}
    }}
}}
"#
    )
}

/// One system's processes.
struct Deployment {
    system: System,
    nodes: Vec<Proc>,
    addrs: Vec<SocketAddr>,
    redis: Option<Redis>,
    /// The nodes' write system calls, `send(2)` included, if `perf` can count them; else
    /// `syscw` of `/proc/PID/io` (which misses `send(2)`).
    writes: Option<measure::Writes>,
    _dirs: Vec<TempDir>,
}

impl Deployment {
    async fn start(system: System, binary: &Path, node_threads: usize) -> io::Result<Self> {
        let redis = if system.redis() {
            Some(Redis::start().await?)
        } else {
            None
        };
        let mut deployment = Self {
            system,
            nodes: Vec::new(),
            addrs: Vec::new(),
            redis,
            writes: None,
            _dirs: Vec::new(),
        };
        let redis_port = deployment.redis.as_ref().map(|redis| redis.port);
        for node in 0..system.nodes() {
            let (proc, addr) = if let Some(args) = system.floor_args() {
                let port = redis_port.ok_or_else(|| io::Error::other("the floor needs Redis"))?;
                start_floor(port, args, node_threads, node + 1).await?
            } else if system == System::Nchan3 {
                let port = redis_port.ok_or_else(|| io::Error::other("nchan needs Redis"))?;
                let (proc, addr, dir) = start_nchan(port, node + 1).await?;
                deployment._dirs.push(dir);
                (proc, addr)
            } else {
                start_ours(binary, redis_port, node_threads, node + 1).await?
            };
            deployment.nodes.push(proc);
            deployment.addrs.push(addr);
        }
        let pids: Vec<u32> = deployment.nodes.iter().map(|node| node.pid).collect();
        deployment.writes = measure::Writes::start(&pids);
        if deployment.writes.is_none() {
            eprintln!(
                "perf cannot count the nodes' system calls: their writes are syscw of \
                 /proc/PID/io, which does not count send(2)"
            );
        }
        // Let start-up work settle before anything is measured.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(deployment)
    }

    fn cpu(&self) -> io::Result<CpuMark> {
        Ok(CpuMark {
            nodes: self
                .nodes
                .iter()
                .map(Proc::cpu)
                .collect::<io::Result<_>>()?,
            redis: self
                .redis
                .as_ref()
                .map(|redis| redis.proc.cpu())
                .transpose()?,
            client: own_cpu()?,
            writes: match &self.writes {
                Some(writes) => writes.total(),
                None => self
                    .nodes
                    .iter()
                    .map(Proc::writes)
                    .sum::<io::Result<u64>>()?,
            },
            machine: measure::machine_busy_seconds()?,
        })
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
        if let Some(redis) = self.redis {
            redis.proc.stop().await;
        }
    }
}

/// The CPU times of a system's processes, and of this one (the load clients), at one moment;
/// and the nodes' write system calls.
struct CpuMark {
    nodes: Vec<Cpu>,
    redis: Option<Cpu>,
    client: Cpu,
    writes: u64,
    /// The whole machine's busy time, in seconds.
    machine: f64,
}

/// CPU seconds between two marks, and the nodes' write system calls.
struct CpuSpent {
    nodes: f64,
    redis: f64,
    client: f64,
    writes: u64,
    /// Every other process's (the machine's busy time less the above), in seconds.
    others: f64,
}

impl CpuMark {
    fn since(&self, earlier: &CpuMark) -> CpuSpent {
        let nodes = self
            .nodes
            .iter()
            .zip(&earlier.nodes)
            .map(|(now, then)| now.seconds_since(then))
            .sum();
        let redis = match (&self.redis, &earlier.redis) {
            (Some(now), Some(then)) => now.seconds_since(then),
            _ => 0.0,
        };
        let client = self.client.seconds_since(&earlier.client);
        let machine = self.machine - earlier.machine;
        CpuSpent {
            nodes,
            redis,
            client,
            writes: self.writes - earlier.writes,
            others: (machine - nodes - redis - client).max(0.0),
        }
    }
}

/// The `cluster` example's binary, next to this one's (built first when run by cargo).
fn cluster_binary() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("this binary is in no directory"))?;
    let binary = dir.join("examples").join("cluster");
    let release = !cfg!(debug_assertions);
    if let Some(cargo) = std::env::var_os("CARGO") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        eprintln!("building the cluster example (cargo build -p examples --example cluster)");
        let status = std::process::Command::new(cargo)
            .arg("build")
            .args(release.then_some("--release"))
            .arg("--manifest-path")
            .arg(manifest)
            .args(["-p", "examples", "--example", "cluster"])
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "building the cluster example failed: {status}"
            )));
        }
    }
    if binary.exists() {
        Ok(binary)
    } else {
        Err(io::Error::other(format!(
            "no {}: build it with `cargo build{} -p examples --example cluster`",
            binary.display(),
            if release { " --release" } else { "" }
        )))
    }
}

/// The versions of the other side, for the report.
fn versions() -> Vec<(&'static str, String)> {
    let output = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|out| {
                let text = if out.stdout.is_empty() {
                    out.stderr
                } else {
                    out.stdout
                };
                String::from_utf8_lossy(&text).trim().to_owned()
            })
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    vec![
        ("redis", output("redis-server", &["--version"])),
        ("nginx", output(NGINX, &["-v"])),
        (
            "nchan",
            output(
                "dpkg-query",
                &[
                    "-W",
                    "-f",
                    "libnginx-mod-nchan ${Version}",
                    "libnginx-mod-nchan",
                ],
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Load.

/// Subscribers of the topic, spread evenly over the nodes, each read by a task of its own that
/// publishes its count of events.
struct Crowd {
    counts: Vec<Arc<AtomicU64>>,
    readers: JoinSet<io::Result<Client>>,
    stop: watch::Sender<bool>,
}

impl Crowd {
    fn new() -> Self {
        Self {
            counts: Vec::new(),
            readers: JoinSet::new(),
            stop: watch::channel(false).0,
        }
    }

    /// Connects `count` more subscribers, the nodes in turn, each made ready by `prepare`.
    async fn join(
        &mut self,
        addrs: &[SocketAddr],
        count: usize,
        prepare: impl Fn(Client) -> Client + Copy + Send + 'static,
    ) -> io::Result<()> {
        let nodes = addrs.len();
        let offset = self.counts.len() % nodes;
        for (i, &addr) in addrs.iter().enumerate() {
            // Subscriber k of the whole crowd is on node k % nodes: of the new ones (k from
            // `counts.len()` on), those whose place among them is `i - offset` modulo `nodes`.
            let place = (i + nodes - offset) % nodes;
            let share = count / nodes + usize::from(place < count % nodes);
            let clients = client::bounded(
                "subscribers connect",
                connect_many_with(addr, Some(SUBSCRIBE), share, prepare),
            )
            .await?;
            for client in clients {
                let count = Arc::new(AtomicU64::new(client.events));
                self.counts.push(count.clone());
                self.readers
                    .spawn(follow(client, count, self.stop.subscribe()));
            }
        }
        Ok(())
    }

    fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|count| count.load(Ordering::Acquire))
            .collect()
    }

    /// Events received by every subscriber together since `base` (counts per subscriber).
    fn progress(&self, base: &[u64]) -> u64 {
        self.counts
            .iter()
            .zip(base)
            .map(|(count, base)| count.load(Ordering::Acquire) - base)
            .sum()
    }

    /// Fails if a reader has stopped (its stream ended, or broke).
    fn check(&mut self) -> io::Result<()> {
        match self.readers.try_join_next() {
            None => Ok(()),
            Some(done) => match done.map_err(io::Error::other)? {
                Err(error) => Err(error),
                Ok(_) => Err(io::Error::other("a subscriber stopped reading")),
            },
        }
    }

    /// Stops every reader; returns the clients (their streams still open until dropped).
    async fn finish(mut self) -> io::Result<Vec<Client>> {
        self.stop.send_replace(true);
        let mut clients = Vec::with_capacity(self.counts.len());
        while let Some(done) = self.readers.join_next().await {
            clients.push(done.map_err(io::Error::other)??);
        }
        Ok(clients)
    }
}

/// Reads `client` until told to stop, storing its count of events after every read. A stream
/// that ends is an error: no system under test ends one by itself.
async fn follow(
    mut client: Client,
    count: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<Client> {
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => return Ok(client),
            read = client.read_some() => {
                if read? {
                    return Err(io::Error::other(format!(
                        "a subscriber's stream ended after {} events",
                        client.events
                    )));
                }
                count.store(client.events, Ordering::Release);
            }
        }
    }
}

/// The data of an event: its send time in nanoseconds since `base`, padded.
fn stamped_payload(base: Instant) -> Vec<u8> {
    let mut data = format!("{STAMP}{:020} ", client::nanos_since(base)).into_bytes();
    data.resize(PAYLOAD_BYTES, b'x');
    data
}

/// Publishes one event at a time until every subscriber has received one more than it had,
/// then waits until the counts stand still: every subscriber follows the topic, and nothing is
/// in flight. Returns the counts then.
async fn settle(crowd: &mut Crowd, addr: SocketAddr, base: Instant) -> io::Result<Vec<u64>> {
    let deadline = Instant::now() + PATIENCE;
    let before = crowd.counts();
    let mut poster = Poster::connect(addr).await?;
    loop {
        crowd.check()?;
        poster.post(PUBLISH, &stamped_payload(base)).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = crowd.counts();
        if now.iter().zip(&before).all(|(now, before)| now > before) {
            break;
        }
        if Instant::now() > deadline {
            let missing = now.iter().zip(&before).filter(|(n, b)| n <= b).count();
            return Err(io::Error::other(format!(
                "{missing} subscribers received none of the first events"
            )));
        }
    }
    let mut last = crowd.counts();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = crowd.counts();
        if now == last {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other("the subscribers' counts do not settle"));
        }
        last = now;
    }
}

/// Waits until every subscriber has received exactly `published` events since `base`; fails
/// if one received more (a duplicate), or after [`PATIENCE`].
async fn drain(crowd: &mut Crowd, base: &[u64], published: u64) -> io::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        crowd.check()?;
        let counts = crowd.counts();
        let got = counts.iter().zip(base).map(|(count, base)| count - base);
        if let Some(more) = got.clone().find(|&got| got > published) {
            return Err(io::Error::other(format!(
                "a subscriber received {more} events of {published} published"
            )));
        }
        if got.clone().all(|got| got == published) {
            // Nothing more may come: look once again after a while.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let again = crowd.counts();
            if again != counts {
                return Err(io::Error::other(format!(
                    "subscribers received more than the {published} events published"
                )));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let behind = got.filter(|&got| got < published).count();
            return Err(io::Error::other(format!(
                "{behind} subscribers still lack some of the {published} events published"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What publishers share in a saturation: numbers taken, and how far the slowest subscriber is.
#[derive(Default)]
struct Gate {
    /// Numbers taken by the publishers (each before its request).
    taken: AtomicU64,
    /// Publishes answered.
    published: AtomicU64,
    /// The fewest events any subscriber has received since the load began.
    slowest: AtomicU64,
    /// Woken when `slowest` moves, or the load stops.
    moved: Notify,
    stop: AtomicBool,
}

impl Gate {
    /// Takes a number and waits until it is at most [`LEAD`] ahead of the slowest
    /// subscriber; `false` once the load stops (the number is then not published).
    async fn pass(&self) -> bool {
        let number = self.taken.fetch_add(1, Ordering::AcqRel) + 1;
        loop {
            let moved = self.moved.notified();
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            if number <= self.slowest.load(Ordering::Acquire) + LEAD {
                return true;
            }
            let _ = tokio::time::timeout(Duration::from_millis(5), moved).await;
        }
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Release);
        self.moved.notify_waiters();
    }
}

/// The figures of one saturation.
struct Saturation {
    deliveries_per_s: f64,
    publishes_per_s: f64,
    cpu_per_delivery: f64,
    redis_cpu_per_delivery: f64,
    client_busy_pct: f64,
    deliveries_per_write: f64,
    others_pct: f64,
}

/// Publishers as fast as every subscriber receives: the figures of a window after a warm-up.
async fn saturate(
    deployment: &Deployment,
    crowd: &mut Crowd,
    plan: &Plan,
    base: Instant,
) -> io::Result<Saturation> {
    let addrs = &deployment.addrs;
    let before = settle(crowd, addrs[0], base).await?;
    // Each publisher goes to the nodes in turn, each from another node.
    let mut connections = Vec::with_capacity(PUBLISHERS);
    for p in 0..PUBLISHERS {
        let mut posters = Vec::with_capacity(addrs.len());
        for k in 0..addrs.len() {
            posters.push(Poster::connect(addrs[(p + k) % addrs.len()]).await?);
        }
        connections.push(posters);
    }
    let gate = Arc::new(Gate::default());
    let watcher = {
        let counts = crowd.counts.clone();
        let before = before.clone();
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !gate.stop.load(Ordering::Acquire) {
                tick.tick().await;
                let slowest = counts
                    .iter()
                    .zip(&before)
                    .map(|(count, before)| count.load(Ordering::Acquire) - before)
                    .min()
                    .unwrap_or(0);
                if slowest != gate.slowest.swap(slowest, Ordering::AcqRel) {
                    gate.moved.notify_waiters();
                }
            }
        })
    };
    let mut publishers = JoinSet::new();
    for mut posters in connections {
        let gate = gate.clone();
        publishers.spawn(async move {
            let mut turn = 0;
            while gate.pass().await {
                let next = turn % posters.len();
                turn += 1;
                let poster = &mut posters[next];
                poster.post(PUBLISH, &stamped_payload(base)).await?;
                gate.published.fetch_add(1, Ordering::AcqRel);
            }
            Ok::<_, io::Error>(())
        });
    }
    let measured = async {
        watch_for(plan.warmup, crowd, &mut publishers).await?;
        let start = (Instant::now(), deployment.cpu()?, crowd.progress(&before));
        let published_before = gate.published.load(Ordering::Acquire);
        watch_for(plan.window, crowd, &mut publishers).await?;
        let end = (Instant::now(), deployment.cpu()?, crowd.progress(&before));
        let published = gate.published.load(Ordering::Acquire) - published_before;
        Ok::<_, io::Error>((start, end, published))
    }
    .await;
    gate.halt();
    let mut failed = measured
        .as_ref()
        .err()
        .map(|error| io::Error::other(error.to_string()));
    while let Some(done) = publishers.join_next().await {
        if let Err(error) = done.map_err(io::Error::other).and_then(|result| result) {
            failed.get_or_insert(error);
        }
    }
    let _ = watcher.await;
    if let Some(error) = failed {
        return Err(error);
    }
    let ((t0, cpu0, delivered0), (t1, cpu1, delivered1), published) = measured?;
    drain(crowd, &before, gate.published.load(Ordering::Acquire)).await?;
    let elapsed = (t1 - t0).as_secs_f64();
    let delivered = (delivered1 - delivered0) as f64;
    let cpu = cpu1.since(&cpu0);
    Ok(Saturation {
        deliveries_per_s: delivered / elapsed,
        publishes_per_s: published as f64 / elapsed,
        cpu_per_delivery: (cpu.nodes + cpu.redis) * 1e6 / delivered,
        redis_cpu_per_delivery: cpu.redis * 1e6 / delivered,
        client_busy_pct: cpu.client * 100.0 / elapsed,
        deliveries_per_write: delivered / cpu.writes.max(1) as f64,
        others_pct: cpu.others * 100.0 / elapsed,
    })
}

/// Sleeps `duration`, failing early if a subscriber or a publisher stopped.
async fn watch_for(
    duration: Duration,
    crowd: &mut Crowd,
    publishers: &mut JoinSet<io::Result<()>>,
) -> io::Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100).min(end - Instant::now())).await;
        crowd.check()?;
        if let Some(done) = publishers.try_join_next() {
            done.map_err(io::Error::other)??;
            return Err(io::Error::other("a publisher stopped"));
        }
    }
    Ok(())
}

/// One window of the fixed rate, on one system.
struct Segment {
    /// The send times it covers (nanoseconds since `base`).
    window: (u64, u64),
    cpu: CpuSpent,
    /// Events received by every subscriber together in the window, and published in all.
    delivered: u64,
    published: u64,
}

/// The fixed rate against each of `deployments` in turn, [`Plan::paced_rounds`] times (who
/// goes first alternates); after each window, every subscriber of that system must have had
/// every event. Then each system's figures from all its windows.
async fn pace_rounds(
    deployments: &[Deployment],
    plan: &Plan,
    base: Instant,
) -> io::Result<Vec<Figures>> {
    let mut crowds = Vec::with_capacity(deployments.len());
    let mut befores = Vec::with_capacity(deployments.len());
    for deployment in deployments {
        let mut crowd = Crowd::new();
        crowd
            .join(&deployment.addrs, plan.paced_subscribers, move |client| {
                client.stamped(base)
            })
            .await?;
        crowds.push(crowd);
    }
    for (deployment, crowd) in deployments.iter().zip(&mut crowds) {
        befores.push(settle(crowd, deployment.addrs[0], base).await?);
    }
    let mut segments: Vec<Vec<Segment>> = deployments.iter().map(|_| Vec::new()).collect();
    let mut published = vec![0; deployments.len()];
    for round in 0..plan.paced_rounds {
        for k in 0..deployments.len() {
            let i = (round + k) % deployments.len();
            let segment = pace(&deployments[i], &mut crowds[i], &befores[i], plan, base).await?;
            published[i] += segment.published;
            drain(&mut crowds[i], &befores[i], published[i]).await?;
            segments[i].push(segment);
        }
    }
    let mut figures = Vec::with_capacity(deployments.len());
    for ((deployment, crowd), segments) in deployments.iter().zip(crowds).zip(segments) {
        let clients = crowd.finish().await?;
        figures.push(paced_figures(deployment.system, &clients, &segments)?);
    }
    Ok(figures)
}

/// The fixed rate: `plan.rate` events a second, to the nodes in turn, for a warm-up and a
/// window.
async fn pace(
    deployment: &Deployment,
    crowd: &mut Crowd,
    before: &[u64],
    plan: &Plan,
    base: Instant,
) -> io::Result<Segment> {
    let addrs = &deployment.addrs;
    let period = Duration::from_secs(1) / plan.rate;
    let warm = (plan.paced_warmup.as_secs_f64() * f64::from(plan.rate)).round() as u64;
    let measured = (plan.paced_window.as_secs_f64() * f64::from(plan.rate)).round() as u64;
    let mut senders = Vec::with_capacity(PACED_CONNECTIONS);
    let mut posting = JoinSet::new();
    for j in 0..PACED_CONNECTIONS {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut poster = Poster::connect(addrs[j % addrs.len()]).await?;
        posting.spawn(async move {
            let mut published = 0u64;
            while rx.recv().await.is_some() {
                poster.post(PUBLISH, &stamped_payload(base)).await?;
                published += 1;
            }
            Ok::<_, io::Error>(published)
        });
        senders.push(tx);
    }
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut start = None;
    for k in 0..warm + measured {
        tick.tick().await;
        if k == warm {
            start = Some((
                client::nanos_since(base),
                deployment.cpu()?,
                crowd.progress(before),
            ));
        }
        let sender = &senders[usize::try_from(k).unwrap_or(0) % senders.len()];
        if sender.send(()).is_err() {
            break;
        }
    }
    tick.tick().await;
    let (t1, cpu1, delivered1) = (
        client::nanos_since(base),
        deployment.cpu()?,
        crowd.progress(before),
    );
    drop(senders);
    let mut published = 0;
    while let Some(done) = posting.join_next().await {
        published += done.map_err(io::Error::other)??;
    }
    if published != warm + measured {
        return Err(io::Error::other(format!(
            "{published} events published of {}",
            warm + measured
        )));
    }
    crowd.check()?;
    let (t0, cpu0, delivered0) =
        start.ok_or_else(|| io::Error::other("the window never started"))?;
    Ok(Segment {
        window: (t0, t1),
        cpu: cpu1.since(&cpu0),
        delivered: delivered1 - delivered0,
        published,
    })
}

/// One system's figures of the fixed rate: latencies of every event sent in its windows, from
/// every subscriber, and the CPU over the windows.
fn paced_figures(system: System, clients: &[Client], segments: &[Segment]) -> io::Result<Figures> {
    let in_window = |sent: &u64| {
        segments
            .iter()
            .any(|s| (s.window.0..s.window.1).contains(sent))
    };
    let mut latencies = Vec::new();
    // Per event (its send time is its name), when its first and its last subscriber had it.
    let mut first: HashMap<u64, u64> = HashMap::new();
    let mut last: HashMap<u64, u64> = HashMap::new();
    // Per node (the port its subscribers read), its subscribers' latencies.
    let mut per_node: HashMap<u16, Vec<u64>> = HashMap::new();
    for client in clients {
        if system.ours_ids()
            && let Some(fault) = client.ids().and_then(|ids| ids.fault.as_ref())
        {
            return Err(io::Error::other(format!("ids: {fault}")));
        }
        let stamps = client
            .stamps()
            .ok_or_else(|| io::Error::other("a subscriber without stamps"))?;
        let node = per_node.entry(client.server_port()).or_default();
        for &(sent, latency) in stamps.seen.iter().filter(|(sent, _)| in_window(sent)) {
            latencies.push(latency);
            node.push(latency);
            let earliest = first.entry(sent).or_insert(latency);
            *earliest = (*earliest).min(latency);
            let latest = last.entry(sent).or_insert(latency);
            *latest = (*latest).max(latency);
        }
    }
    if latencies.is_empty() {
        return Err(io::Error::other("no event was sent in the windows"));
    }
    latencies.sort_unstable();
    let quantile = client::quantile_ms;
    let mut first: Vec<u64> = first.into_values().collect();
    first.sort_unstable();
    let mut last: Vec<u64> = last.into_values().collect();
    last.sort_unstable();
    // The lowest and the highest of the nodes' p99s: a node whose streams lag shows here.
    let node_p99s: Vec<f64> = per_node
        .into_values()
        .map(|mut node| {
            node.sort_unstable();
            quantile(&node, 0.99)
        })
        .collect();
    let node_p99 =
        |pick: fn(f64, f64) -> f64| node_p99s.iter().copied().reduce(pick).unwrap_or(0.0);
    let elapsed: f64 = segments
        .iter()
        .map(|s| (s.window.1 - s.window.0) as f64 / 1e9)
        .sum();
    let delivered: u64 = segments.iter().map(|s| s.delivered).sum();
    let sum = |f: fn(&CpuSpent) -> f64| segments.iter().map(|s| f(&s.cpu)).sum::<f64>();
    let (nodes, redis, client) = (sum(|c| c.nodes), sum(|c| c.redis), sum(|c| c.client));
    let others = sum(|c| c.others);
    let writes: u64 = segments.iter().map(|s| s.cpu.writes).sum();
    let delivered = delivered as f64;
    Ok(vec![
        ("paced_first_p50_ms", quantile(&first, 0.5)),
        ("paced_p50_ms", quantile(&latencies, 0.5)),
        ("paced_p99_ms", quantile(&latencies, 0.99)),
        ("paced_p999_ms", quantile(&latencies, 0.999)),
        ("paced_max_ms", quantile(&latencies, 1.0)),
        ("paced_event_last_p50_ms", quantile(&last, 0.5)),
        ("paced_event_last_p90_ms", quantile(&last, 0.9)),
        ("paced_node_p99_min_ms", node_p99(f64::min)),
        ("paced_node_p99_max_ms", node_p99(f64::max)),
        ("paced_samples", latencies.len() as f64),
        ("paced_cpu_per_delivery", (nodes + redis) * 1e6 / delivered),
        ("paced_deliveries_per_s", delivered / elapsed),
        ("paced_client_busy_pct", client * 100.0 / elapsed),
        (
            "paced_deliveries_per_write",
            delivered / writes.max(1) as f64,
        ),
        ("paced_others_pct", others * 100.0 / elapsed),
    ])
}
