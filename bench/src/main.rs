//! Load benchmark of sse-runtime against axum's built-in `Sse` (see BENCHMARKS.md).
//!
//! ```text
//! cargo run -p bench --release                  # every scenario, 5 runs, medians
//! cargo run -p bench --release -- --only a,c --runs 3
//! cargo run -p bench --release -- --quick       # a short smoke run (a tenth of the sizes)
//! cargo run -p bench --release -- --only a,b,i  # against the floor
//! cargo run -p bench --release -- soak --quick  # soak and chaos (see RELIABILITY.md)
//! cargo run -p bench --release -- cluster       # 3 nodes on Redis against nchan and the floor
//! cargo run -p bench --release -- render        # (a)'s events made in process, no socket
//! ```
//!
//! The driver re-executes itself as `bench server ours|axum|floor` child processes (one fresh
//! process per scenario run, on 127.0.0.1:0), runs the load clients itself, reads each server's
//! CPU time and memory from `/proc`, and prints a table of medians with the ratio ours/axum and,
//! where the floor is a side ((a), (b), (e), the trickle fan-out (i), and in (g) a storm of
//! plain requests for 100 events each, the floor of a reconnect storm), ours/floor. The floor
//! is a hand-written HTTP/1.1 server on tokio alone that sends ours's bytes (`server::floor`).
//! A second table compares ours with further peers of the same run: its resumable hub ((c) on
//! it, (g) and (h)), its metrics recorder, axum's leanest idle stream ((d) and (k), also against
//! ours served by `sse_runtime::serve` with hyper's settings for SSE connections), axum's
//! leanest fan-out body in (i) (pre-framed bytes: the least a body costs on hyper), and (c) and
//! (d) at 5,000 clients against the same at 10,000 ((j) and (k)).

mod client;
mod cluster;
mod cluster_floor;
mod measure;
mod render;
mod report;
mod scenarios;
mod server;
mod soak;

use std::process::ExitCode;
use std::time::Duration;

use report::{Comparison, Figure, Goal, Metric, Results, Scenario};
use scenarios::{Hub, RESUME_KEYS, RESUME_MISSED, ServerProcess, Sizes};
use server::Setup;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// sse-runtime: macro endpoints.
    Ours,
    /// axum's `axum::response::sse::Sse`.
    Axum,
    /// The floor: a hand-written HTTP/1.1 server on tokio alone that sends ours's bytes.
    Floor,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Axum => "axum",
            Kind::Floor => "floor",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [Kind::Ours, Kind::Axum, Kind::Floor]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// What one scenario run measures: a server, and in (c), which of ours's hubs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Side {
    /// Ours, on `Broadcast` where a scenario has a hub.
    Ours,
    /// axum's `Sse`.
    Axum,
    /// Ours, on the resumable hub (`sse_runtime::resume::Hub`).
    Resumable,
    /// Ours with a Prometheus recorder installed (`bench server ours --metrics`).
    Metered,
    /// The floor (`bench server floor`).
    Floor,
    /// axum with its leanest idle stream, in (d) and (k) (`bench server axum --lean`).
    AxumLean,
    /// Ours with a coalescing window on `/fanout`, in (i) (`bench server ours --coalesce`).
    Coalesced,
    /// Ours served by `sse_runtime::serve` with hyper's settings for SSE connections, in (d),
    /// (i) and (k) (`bench server ours --setup serve-lean`).
    ServeLean,
    /// axum's leanest body served as [`Side::ServeLean`] serves ours, in (i)
    /// (`bench server axum --lean --setup serve-lean`).
    AxumLeanServeLean,
}

impl Side {
    pub(crate) fn kind(self) -> Kind {
        match self {
            Side::Ours | Side::Resumable | Side::Metered | Side::Coalesced | Side::ServeLean => {
                Kind::Ours
            }
            Side::Axum | Side::AxumLean | Side::AxumLeanServeLean => Kind::Axum,
            Side::Floor => Kind::Floor,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Axum => "axum",
            Side::Resumable => "ours-resumable",
            Side::Metered => "ours+metrics",
            Side::Floor => "floor",
            Side::AxumLean => "axum-lean",
            Side::Coalesced => "ours+coalesce",
            Side::ServeLean => "ours+serve-lean",
            Side::AxumLeanServeLean => "axum-lean+serve-lean",
        }
    }
}

const USAGE: &str = "\
usage: bench [--runs N] [--only a,b,c,d,e,f,g,h,i,j,k] [--quick] [--workers N]
             [--side ours|axum|floor] [--wrap 'COMMAND ARGS..']
       bench server ours|axum|floor [--setup plain|connection|serve|serve-lean] [--workers N] [--resume]
                    [--metrics] [--lean] [--coalesce]
       bench soak [--quick]        (soak and chaos, see RELIABILITY.md)
       bench soak-server
       bench cluster [--quick] [--runs N] [--node-threads N]
                     [--system ours-3,nchan-3,floor-3,floor-tasks-3,floor-hyper-3,ours-1-redis,
                      ours-1-memory]
                                   (3 nodes on Redis against nchan, see BENCHMARKS.md)";

struct Options {
    runs: usize,
    only: Vec<char>,
    quick: bool,
    workers: usize,
    /// Only this side (for profiling one server).
    side: Option<Kind>,
    /// A command each server runs under, such as a profiler.
    wrap: Vec<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("server") {
        return server_main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("render") {
        return render::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("soak-server") {
        return soak::server_main();
    }
    if args.first().map(String::as_str) == Some("soak") {
        let quick = match &args[1..] {
            [] => false,
            [flag] if flag == "--quick" => true,
            _ => return usage_error("soak takes only --quick"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        return runtime.block_on(soak::drive(quick));
    }
    if args.first().map(String::as_str) == Some("cluster-floor") {
        let writer = match &args[1..] {
            [] => cluster_floor::Writer::Loop,
            [flag] if flag == "--tasks" => cluster_floor::Writer::Tasks,
            [flag] if flag == "--hyper" => cluster_floor::Writer::Hyper,
            _ => return usage_error("cluster-floor takes only --tasks or --hyper"),
        };
        // One worker thread unless told otherwise, as the `cluster` example's nodes run.
        let threads = std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        return match runtime.block_on(cluster_floor::run(writer)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bench cluster-floor: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("cluster") {
        let mut quick = false;
        let mut runs = None;
        let mut only = None;
        let mut node_threads = None;
        let mut rest = args[1..].iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--system" => {
                    let names = rest.next().map(String::as_str).unwrap_or("");
                    let systems: Option<Vec<_>> =
                        names.split(',').map(cluster::System::parse).collect();
                    match systems {
                        Some(systems) if !systems.is_empty() => only = Some(systems),
                        _ => {
                            return usage_error(
                                "--system takes ours-3, nchan-3, floor-3, floor-tasks-3, floor-hyper-3, ours-1-redis or ours-1-memory (or a list)",
                            );
                        }
                    }
                }
                "--runs" => match rest.next().and_then(|s| s.parse().ok()) {
                    Some(n) if n > 0 => runs = Some(n),
                    _ => return usage_error("--runs takes a positive number"),
                },
                "--node-threads" => match rest.next().and_then(|s| s.parse().ok()) {
                    Some(n) if n > 0 => node_threads = Some(n),
                    _ => return usage_error("--node-threads takes a positive number"),
                },
                other => return usage_error(&format!("unknown argument {other:?}")),
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        return runtime.block_on(cluster::drive(cluster::Options {
            quick,
            runs,
            only,
            node_threads,
        }));
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(drive(options))
}

fn server_main(args: &[String]) -> ExitCode {
    let config = match server::Config::parse(args) {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench server {}: {error}", config.kind.as_str());
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("{message}\n{USAGE}");
    ExitCode::from(2)
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        runs: 5,
        only: SCENARIOS.chars().collect(),
        quick: false,
        workers: 2,
        side: None,
        wrap: Vec::new(),
    };
    let mut runs = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => match args.next().and_then(|s| s.parse().ok()) {
                Some(n) if n > 0 => runs = Some(n),
                _ => return Err("--runs takes a positive number".into()),
            },
            "--only" => {
                let list = args.next().ok_or("--only takes a list such as a,c")?;
                let only: Vec<char> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| match s.chars().next() {
                        Some(id) if s.len() == 1 && SCENARIOS.contains(id) => Ok(id),
                        _ => Err(format!("no scenario {s:?}")),
                    })
                    .collect::<Result<_, _>>()?;
                options.only = only;
            }
            "--quick" => options.quick = true,
            "--workers" => match args.next().and_then(|s| s.parse().ok()) {
                Some(n) if n > 0 => options.workers = n,
                _ => return Err("--workers takes a positive number".into()),
            },
            "--side" => match args.next().and_then(|s| Kind::parse(s)) {
                Some(kind) => options.side = Some(kind),
                None => return Err("--side takes ours, axum or floor".into()),
            },
            "--wrap" => {
                let command = args.next().ok_or("--wrap takes a command")?;
                options.wrap = command.split_whitespace().map(str::to_owned).collect();
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    options.runs = runs.unwrap_or(if options.quick { 1 } else { 5 });
    Ok(options)
}

/// The ids of every scenario, in the order they run.
const SCENARIOS: &str = "abcdefghijk";

/// The scenarios against axum.
const BOTH: &[Side] = &[Side::Ours, Side::Axum];
/// The scenarios against axum and the floor.
const WITH_FLOOR: &[Side] = &[Side::Ours, Side::Axum, Side::Floor];
/// The idle scenarios: against axum as its users write it, and against its leanest stream.
const IDLE: &[Side] = &[Side::Ours, Side::Axum, Side::AxumLean, Side::ServeLean];

fn scenarios(sizes: &Sizes) -> Vec<Scenario> {
    let n = report::number;
    let metric = |key, label, goal, digits| Metric {
        key,
        label,
        goal,
        floor: Goal::Info,
        digits,
    };
    // (a) and (b): the floor's bytes at most twice as costly (the events of (e) are (a)'s).
    let cpu = |goal, floor| Metric {
        floor,
        ..metric("cpu_per_event", "server CPU us/event", goal, 3)
    };
    let rate = metric("events_per_s", "events/s", Goal::Info, 0);
    let fanout = || {
        vec![
            metric(
                "cpu_per_delivery",
                "server CPU us/delivered event",
                Goal::RatioAtMost(0.4),
                3,
            ),
            metric(
                "delivery_ms",
                "ms until all delivered",
                Goal::RatioAtMost(0.4),
                0,
            ),
        ]
    };
    let idle = || {
        vec![
            metric(
                "kib_per_connection",
                "server RSS KiB/connection",
                Goal::RatioAtMost(1.0),
                2,
            ),
            metric(
                "idle_cpu_ms",
                format_idle_label(sizes.idle_window),
                Goal::OursAtMost(1.0),
                2,
            ),
        ]
    };
    let trickle = &sizes.trickle;
    vec![
        Scenario {
            id: 'a',
            sides: &[Side::Ours, Side::Axum, Side::Metered, Side::Floor],
            title: format!("one client, {} events", n(sizes.single_events as f64, 0)),
            metrics: vec![cpu(Goal::RatioAtMost(0.5), Goal::RatioAtMost(2.0)), rate],
        },
        Scenario {
            id: 'b',
            sides: WITH_FLOOR,
            title: format!(
                "{} clients in parallel, {} events each",
                sizes.parallel_clients,
                n(sizes.events as f64, 0)
            ),
            metrics: vec![cpu(Goal::RatioAtMost(0.5), Goal::RatioAtMost(2.0)), rate],
        },
        Scenario {
            id: 'c',
            sides: &[Side::Ours, Side::Axum, Side::Resumable, Side::Metered],
            title: format!(
                "fan-out: {} clients, {} broadcast events",
                n(sizes.fanout_clients as f64, 0),
                sizes.fanout_events
            ),
            metrics: fanout(),
        },
        Scenario {
            id: 'd',
            sides: IDLE,
            title: format!(
                "{} idle streams (15 s ping)",
                n(sizes.idle_clients as f64, 0)
            ),
            metrics: idle(),
        },
        Scenario {
            id: 'e',
            sides: WITH_FLOOR,
            title: "as (a), send_timeout = 5 (axum and the floor: none)".to_owned(),
            metrics: vec![cpu(Goal::RatioAtMost(0.7), Goal::Info), rate],
        },
        Scenario {
            id: 'f',
            sides: BOTH,
            title: format!(
                "churn: {} connect/read-one/disconnect cycles",
                n(sizes.churn_cycles as f64, 0)
            ),
            metrics: vec![
                metric("live_after", "live streams after", Goal::OursAtMost(0.0), 0),
                metric(
                    "rss_growth_pct",
                    "server RSS growth %",
                    Goal::OursAtMost(10.0),
                    1,
                ),
                metric("cpu_per_cycle", "server CPU us/cycle", Goal::Info, 1),
            ],
        },
        // Ours only: their peers are other figures of ours (see `comparisons`).
        Scenario {
            id: 'g',
            sides: &[Side::Ours, Side::Floor],
            title: format!(
                "reconnect storm: {} clients resume {} events behind at once",
                n(sizes.storm_clients as f64, 0),
                sizes.storm_missed
            ),
            metrics: Vec::new(),
        },
        Scenario {
            id: 'h',
            sides: &[Side::Ours],
            title: "resume latency: one client, 1,000 and 10,000 events behind".to_owned(),
            metrics: Vec::new(),
        },
        // Against the floor; axum for information.
        Scenario {
            id: 'i',
            sides: &[
                Side::Ours,
                Side::Axum,
                Side::Floor,
                Side::Coalesced,
                Side::ServeLean,
                Side::AxumLean,
                Side::AxumLeanServeLean,
            ],
            title: format!(
                "trickle fan-out: {} clients, one event per publish request; (i1) {} publishes \
                 as fast as they go, (i2) {} a second for {} s",
                n(trickle.clients as f64, 0),
                n(trickle.saturated as f64, 0),
                trickle.rate,
                trickle.window.as_secs_f64()
            ),
            metrics: vec![
                Metric {
                    floor: Goal::RatioAtMost(1.3),
                    ..metric(
                        "sat_cpu_per_delivery",
                        "(i1) saturated: server CPU us/delivered event",
                        Goal::Info,
                        3,
                    )
                },
                metric(
                    "sat_deliveries_per_s",
                    "(i1) saturated: deliveries/s",
                    Goal::Info,
                    0,
                ),
                Metric {
                    floor: Goal::RatioAtMost(1.3),
                    ..metric(
                        "paced_cpu_per_delivery",
                        "(i2) paced: server CPU us/delivered event",
                        Goal::Info,
                        3,
                    )
                },
                metric(
                    "paced_p50_ms",
                    "(i2) paced: p50 ms, publish to delivery",
                    Goal::Info,
                    2,
                ),
                metric(
                    "paced_p99_ms",
                    "(i2) paced: p99 ms, publish to delivery",
                    Goal::Info,
                    2,
                ),
            ],
        },
        Scenario {
            id: 'j',
            sides: BOTH,
            title: format!("as (c) with {} clients", n(sizes.large_clients as f64, 0)),
            metrics: fanout(),
        },
        Scenario {
            id: 'k',
            sides: IDLE,
            title: format!(
                "as (d) with {} idle streams",
                n(sizes.large_clients as f64, 0)
            ),
            metrics: idle(),
        },
    ]
}

/// The second table: ours against further peers of the same run (its resumable hub, its
/// recorder, axum's leanest idle stream, the same scenarios at another size).
fn comparisons(sizes: &Sizes) -> Vec<Comparison> {
    let n = report::number;
    let figure = |scenario, side, key| Figure {
        scenario,
        side,
        key,
    };
    let broadcast_cpu = figure('c', Side::Ours, "cpu_per_delivery");
    let floor_storm = figure('g', Side::Floor, "cpu_per_request_event");
    let floor_storm_label = "floor: the storm as plain requests, us/event";
    let mut rows = vec![
        Comparison {
            scenario: 'a',
            title: format!(
                "(a) with a metrics recorder: one client, {} events",
                n(sizes.single_events as f64, 0)
            ),
            label: "server CPU us/event".to_owned(),
            value: figure('a', Side::Metered, "cpu_per_event"),
            peer_label: "(a) ours, no recorder",
            peer: figure('a', Side::Ours, "cpu_per_event"),
            goal: Goal::RatioAtMost(1.05),
            digits: 3,
        },
        Comparison {
            scenario: 'a',
            title: String::new(),
            label: "events/s".to_owned(),
            value: figure('a', Side::Metered, "events_per_s"),
            peer_label: "(a) ours, no recorder",
            peer: figure('a', Side::Ours, "events_per_s"),
            goal: Goal::Info,
            digits: 0,
        },
        Comparison {
            scenario: 'c',
            title: format!(
                "(c) with a metrics recorder: {} clients, {} broadcast events",
                n(sizes.fanout_clients as f64, 0),
                sizes.fanout_events
            ),
            label: "server CPU us/delivered event".to_owned(),
            value: figure('c', Side::Metered, "cpu_per_delivery"),
            peer_label: "(c) ours, no recorder",
            peer: broadcast_cpu,
            goal: Goal::RatioAtMost(1.05),
            digits: 3,
        },
        Comparison {
            scenario: 'c',
            title: String::new(),
            label: "ms until all delivered".to_owned(),
            value: figure('c', Side::Metered, "delivery_ms"),
            peer_label: "(c) ours, no recorder",
            peer: figure('c', Side::Ours, "delivery_ms"),
            goal: Goal::Info,
            digits: 0,
        },
        Comparison {
            scenario: 'c',
            title: format!(
                "(c) on the resumable hub: {} clients, {} published events",
                n(sizes.fanout_clients as f64, 0),
                sizes.fanout_events
            ),
            label: "server CPU us/delivered event".to_owned(),
            value: figure('c', Side::Resumable, "cpu_per_delivery"),
            peer_label: "(c) ours, Broadcast",
            peer: broadcast_cpu,
            goal: Goal::RatioAtMost(1.2),
            digits: 3,
        },
        Comparison {
            scenario: 'c',
            title: String::new(),
            label: "ms until all delivered".to_owned(),
            value: figure('c', Side::Resumable, "delivery_ms"),
            peer_label: "(c) ours, Broadcast",
            peer: figure('c', Side::Ours, "delivery_ms"),
            goal: Goal::Info,
            digits: 0,
        },
        Comparison {
            scenario: 'g',
            title: format!(
                "(g) reconnect storm: {} clients, {} events behind each",
                n(sizes.storm_clients as f64, 0),
                sizes.storm_missed
            ),
            label: "server CPU us/replayed event".to_owned(),
            value: figure('g', Side::Ours, "cpu_per_replay"),
            peer_label: "(c) ours, Broadcast: us/delivered event",
            peer: broadcast_cpu,
            goal: Goal::RatioAtMost(1.0),
            digits: 3,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: "server CPU us/replayed event".to_owned(),
            value: figure('g', Side::Ours, "cpu_per_replay"),
            peer_label: "(c) ours, resumable: us/delivered event",
            peer: figure('c', Side::Resumable, "cpu_per_delivery"),
            goal: Goal::Info,
            digits: 3,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: "server CPU us/replayed event, less the same storm with nothing missed"
                .to_owned(),
            value: figure('g', Side::Ours, "cpu_per_replay_net"),
            peer_label: "(c) ours, Broadcast: us/delivered event",
            peer: broadcast_cpu,
            goal: Goal::Info,
            digits: 3,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: "server CPU us/reconnect with nothing missed".to_owned(),
            value: figure('g', Side::Ours, "cpu_per_reconnect"),
            peer_label: "(f) ours: us/connect-read-one-disconnect cycle",
            peer: figure('f', Side::Ours, "cpu_per_cycle"),
            goal: Goal::Info,
            digits: 1,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: "ms until all caught up".to_owned(),
            value: figure('g', Side::Ours, "catch_up_ms"),
            peer_label: "(c) ours, Broadcast: ms until all delivered",
            peer: figure('c', Side::Ours, "delivery_ms"),
            goal: Goal::Info,
            digits: 0,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: format!(
                "floor: the same storm as plain requests, {} events each made on the spot \
                 (`/events/{}`): server CPU us/event",
                sizes.storm_missed, sizes.storm_missed
            ),
            value: floor_storm,
            peer_label: "(c) ours, Broadcast: us/delivered event",
            peer: broadcast_cpu,
            goal: Goal::Info,
            digits: 3,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: "server CPU us/replayed event".to_owned(),
            value: figure('g', Side::Ours, "cpu_per_replay"),
            peer_label: floor_storm_label,
            peer: floor_storm,
            goal: Goal::Info,
            digits: 3,
        },
        Comparison {
            scenario: 'g',
            title: String::new(),
            label: format!(
                "ours: the same storm as plain requests (`/events/{}`): server CPU us/event",
                sizes.storm_missed
            ),
            value: figure('g', Side::Ours, "cpu_per_request_event"),
            peer_label: floor_storm_label,
            peer: floor_storm,
            goal: Goal::Info,
            digits: 3,
        },
    ];
    let coalesce_ms = server::COALESCE_WINDOW.as_millis();
    for (i, (key, label, peer_label, peer_side, goal, digits)) in [
        (
            "sat_cpu_per_delivery",
            "(i1) saturated: server CPU us/delivered event",
            "(i1) floor",
            Side::Floor,
            Goal::RatioAtMost(1.3),
            3,
        ),
        (
            "sat_cpu_per_delivery",
            "(i1) saturated: server CPU us/delivered event",
            "(i1) ours, no window",
            Side::Ours,
            Goal::Info,
            3,
        ),
        (
            "paced_cpu_per_delivery",
            "(i2) paced: server CPU us/delivered event",
            "(i2) floor",
            Side::Floor,
            Goal::RatioAtMost(1.3),
            3,
        ),
        (
            "paced_cpu_per_delivery",
            "(i2) paced: server CPU us/delivered event",
            "(i2) ours, no window",
            Side::Ours,
            Goal::Info,
            3,
        ),
        (
            "paced_p50_ms",
            "(i2) paced: p50 ms, publish to delivery",
            "(i2) ours, no window",
            Side::Ours,
            Goal::Info,
            2,
        ),
        (
            "paced_p99_ms",
            "(i2) paced: p99 ms, publish to delivery",
            "(i2) ours, no window",
            Side::Ours,
            Goal::Info,
            2,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        rows.push(Comparison {
            scenario: 'i',
            title: if i == 0 {
                format!("(i) with a {coalesce_ms} ms coalescing window (`coalesce`)")
            } else {
                String::new()
            },
            label: label.to_owned(),
            value: figure('i', Side::Coalesced, key),
            peer_label,
            peer: figure('i', peer_side, key),
            goal,
            digits,
        });
    }
    // The trickle on `sse_runtime::serve`, whose `connection::Listener` sends small writes
    // with one `send(2)`.
    for (i, (key, label, digits)) in [
        (
            "sat_cpu_per_delivery",
            "(i1) saturated: server CPU us/delivered event",
            3,
        ),
        (
            "paced_cpu_per_delivery",
            "(i2) paced: server CPU us/delivered event",
            3,
        ),
        ("paced_p99_ms", "(i2) paced: p99 ms, publish to delivery", 2),
    ]
    .into_iter()
    .enumerate()
    {
        rows.push(Comparison {
            scenario: 'i',
            title: if i == 0 {
                "(i) ours on `sse_runtime::serve(..).http1_only().http1_max_buf_size(8192)`"
                    .to_owned()
            } else {
                String::new()
            },
            label: label.to_owned(),
            value: figure('i', Side::ServeLean, key),
            peer_label: "floor",
            peer: figure('i', Side::Floor, key),
            goal: Goal::Info,
            digits,
        });
    }
    // The least any body costs on each setup: axum's leanest fan-out body (pre-framed bytes,
    // nothing else), against the floor, and ours against it on the same setup.
    let paced = "paced_cpu_per_delivery";
    let paced_label = "(i2) paced: server CPU us/delivered event";
    for (i, (value, peer_label, peer)) in [
        (Side::AxumLean, "floor", Side::Floor),
        (Side::Ours, "axum-lean, same setup", Side::AxumLean),
        (Side::AxumLeanServeLean, "floor", Side::Floor),
        (
            Side::ServeLean,
            "axum-lean+serve-lean, same setup",
            Side::AxumLeanServeLean,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let title = match i {
            0 => {
                "(i) axum's leanest fan-out body, pre-framed bytes (`axum-lean`), on `axum::serve`"
            }
            2 => "(i) the same body on ours's `serve` lean (`axum-lean+serve-lean`)",
            _ => "",
        };
        rows.push(Comparison {
            scenario: 'i',
            title: title.to_owned(),
            label: if value == Side::AxumLean || value == Side::AxumLeanServeLean {
                paced_label.to_owned()
            } else {
                format!("{paced_label}, {}", value.as_str())
            },
            value: figure('i', value, paced),
            peer_label,
            peer: figure('i', peer, paced),
            goal: Goal::Info,
            digits: 3,
        });
    }
    for (i, (&missed, keys)) in RESUME_MISSED.iter().zip(RESUME_KEYS).enumerate() {
        let title = if i == 0 {
            "(h) resume latency: one client".to_owned()
        } else {
            String::new()
        };
        rows.push(Comparison {
            scenario: 'h',
            title,
            label: format!(
                "{} behind: ms from connect to the last replayed event",
                n(missed as f64, 0)
            ),
            value: figure('h', Side::Ours, keys[0]),
            peer_label: "ours, /events/N: ms to the last of N events made",
            peer: figure('h', Side::Ours, keys[1]),
            goal: Goal::Info,
            digits: 2,
        });
        rows.push(Comparison {
            scenario: 'h',
            title: String::new(),
            label: format!(
                "{} behind: server CPU us/replayed event",
                n(missed as f64, 0)
            ),
            value: figure('h', Side::Ours, keys[2]),
            peer_label: "ours, /events/N: us/event made",
            peer: figure('h', Side::Ours, keys[3]),
            goal: Goal::Info,
            digits: 3,
        });
    }
    for (id, clients) in [('d', sizes.idle_clients), ('k', sizes.large_clients)] {
        rows.push(Comparison {
            scenario: id,
            title: format!(
                "({id}) against axum's leanest idle stream: {} idle streams",
                n(clients as f64, 0)
            ),
            label: "server RSS KiB/connection".to_owned(),
            value: figure(id, Side::Ours, "kib_per_connection"),
            peer_label: "axum, `Sse::new(stream::pending())`",
            peer: figure(id, Side::AxumLean, "kib_per_connection"),
            goal: Goal::RatioAtMost(1.0),
            digits: 2,
        });
        rows.push(Comparison {
            scenario: id,
            title: format!(
                "({id}) ours on `sse_runtime::serve(..).http1_only().http1_max_buf_size(8192)`: {} idle streams",
                n(clients as f64, 0)
            ),
            label: "server RSS KiB/connection".to_owned(),
            value: figure(id, Side::ServeLean, "kib_per_connection"),
            peer_label: "axum, `Sse::new(stream::pending())`",
            peer: figure(id, Side::AxumLean, "kib_per_connection"),
            goal: Goal::Info,
            digits: 2,
        });
    }
    // The cost per stream at both sizes, side by side: how it grows.
    let growth = [
        (
            'j',
            'c',
            sizes.fanout_clients,
            "cpu_per_delivery",
            "server CPU us/delivered event",
            3,
        ),
        (
            'k',
            'd',
            sizes.idle_clients,
            "kib_per_connection",
            "server RSS KiB/connection",
            2,
        ),
    ];
    for (large, small, small_clients, key, label, digits) in growth {
        for (i, (side, peer_label)) in [
            (Side::Ours, "ours, at the smaller size"),
            (Side::Axum, "axum, at the smaller size"),
        ]
        .into_iter()
        .enumerate()
        {
            let title = if i == 0 {
                format!(
                    "({large}) growth: {} clients against ({small})'s {}",
                    n(sizes.large_clients as f64, 0),
                    n(small_clients as f64, 0)
                )
            } else {
                String::new()
            };
            rows.push(Comparison {
                scenario: large,
                title,
                label: format!("{}: {label}", side.as_str()),
                value: figure(large, side, key),
                peer_label,
                peer: figure(small, side, key),
                goal: Goal::Info,
                digits,
            });
        }
    }
    rows
}

fn format_idle_label(window: Duration) -> &'static str {
    if window == Duration::from_secs(5) {
        "server CPU ms over 5 s"
    } else {
        "server CPU ms over the idle window"
    }
}

async fn drive(options: Options) -> ExitCode {
    let mut sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let limit = measure::raise_nofile_limit(true);
    // Each side holds one socket per client, plus files and a margin.
    let fit = usize::try_from(limit.saturating_sub(256)).unwrap_or(usize::MAX);
    for (name, clients) in [
        ("fan-out", &mut sizes.fanout_clients),
        ("idle", &mut sizes.idle_clients),
        ("reconnect storm", &mut sizes.storm_clients),
        ("trickle fan-out", &mut sizes.trickle.clients),
        ("larger fan-out and idle", &mut sizes.large_clients),
    ] {
        if *clients > fit {
            eprintln!(
                "RLIMIT_NOFILE is {limit} (hard limit): scaling the {name} scenario down from {} to {fit} clients",
                *clients
            );
            *clients = fit;
        }
    }
    let all = scenarios(&sizes);
    let selected: Vec<Scenario> = all
        .into_iter()
        .filter(|s| options.only.contains(&s.id))
        .collect();
    let compared: Vec<Comparison> = comparisons(&sizes)
        .into_iter()
        .filter(|row| options.only.contains(&row.scenario))
        .filter(|row| cfg!(feature = "metrics") || row.value.side != Side::Metered)
        .collect();

    println!("# sse-runtime vs axum::response::sse, and the floor\n");
    for (name, value) in measure::machine() {
        println!("- {name}: {value}");
    }
    println!(
        "- servers: tokio multi-thread runtime, {} worker threads each; runs: {}{}\n",
        options.workers,
        options.runs,
        if options.quick {
            " (--quick sizes)"
        } else {
            ""
        }
    );

    if !options.wrap.is_empty() {
        eprintln!(
            "servers run under {:?}: their CPU and memory figures include the wrapper",
            options.wrap.join(" ")
        );
    }
    let mut results = Results::default();
    let mut failures = 0;
    for run in 0..options.runs {
        for scenario in &selected {
            // Rotate which side goes first, so drift in the machine evens out.
            let mut order = scenario.sides.to_vec();
            // The recorder's side needs the bench built with its `metrics` feature.
            order.retain(|side| cfg!(feature = "metrics") || *side != Side::Metered);
            let first = run % order.len();
            order.rotate_left(first);
            for side in order {
                if options.side.is_some_and(|kind| kind != side.kind()) {
                    continue;
                }
                match run_one(scenario.id, side, &sizes, &options).await {
                    Ok(figures) => {
                        eprintln!(
                            "run {}/{} ({}) {}: {}",
                            run + 1,
                            options.runs,
                            scenario.id,
                            side.as_str(),
                            report::figures_line(&figures)
                        );
                        results.add(scenario.id, side, figures);
                    }
                    Err(error) => {
                        failures += 1;
                        eprintln!(
                            "run {}/{} ({}) {}: FAILED: {error}",
                            run + 1,
                            options.runs,
                            scenario.id,
                            side.as_str()
                        );
                    }
                }
            }
        }
    }
    if selected.iter().any(|s| s.sides.contains(&Side::Axum)) {
        println!("{}", results.table(&selected));
        println!(
            "Setups: axum = `axum::serve(tokio::net::TcpListener, app)`; ours = the same, except (e), which uses sse-runtime's \
             documented send-timeout setup (`connection::Listener` + `ConnectInfo<Connection>`); floor = a hand-written \
             HTTP/1.1 server on tokio alone that sends ours's bytes (`bench server floor`).\n"
        );
    }
    if !compared.is_empty() {
        println!("## Ours against further peers of the same run\n");
        println!("{}", results.comparison_table(&compared));
    }
    if failures > 0 {
        eprintln!("{failures} scenario runs failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn run_one(
    id: char,
    side: Side,
    sizes: &Sizes,
    options: &Options,
) -> std::io::Result<scenarios::Figures> {
    let mut config = server::Config::new(side.kind(), options.workers);
    if id == 'e' && side == Side::Ours {
        config.setup = Setup::Connection;
    }
    if matches!(side, Side::ServeLean | Side::AxumLeanServeLean) {
        config.setup = Setup::ServeLean;
    }
    // Only the scenarios of the resumable hub have its routes (see `server`).
    config.resume =
        side == Side::Resumable || (matches!(id, 'g' | 'h') && side.kind() == Kind::Ours);
    config.metrics = side == Side::Metered;
    config.lean = matches!(side, Side::AxumLean | Side::AxumLeanServeLean);
    config.coalesce = side == Side::Coalesced;
    let metrics = config.metrics;
    let server = ServerProcess::start(&config, &options.wrap).await?;
    let hub = if side == Side::Resumable {
        Hub::Resumable
    } else {
        Hub::Broadcast
    };
    let figures = match id {
        'a' => scenarios::single(&server, "/events", sizes.single_events).await,
        'b' => scenarios::parallel(&server, sizes.parallel_clients, sizes.events).await,
        'c' => scenarios::fanout(&server, hub, sizes.fanout_clients, sizes.fanout_events).await,
        'd' | 'k' => {
            let clients = if id == 'd' {
                sizes.idle_clients
            } else {
                sizes.large_clients
            };
            // axum's leanest stream counts nothing: the response heads are the count.
            let counted = side != Side::AxumLean;
            scenarios::idle(&server, clients, sizes.idle_window, counted).await
        }
        'e' => scenarios::single(&server, "/events_timeout", sizes.single_events).await,
        'f' => {
            scenarios::churn(
                &server,
                sizes.churn_cycles,
                sizes.churn_warmup,
                sizes.churn_concurrency,
            )
            .await
        }
        'g' if side == Side::Floor => {
            scenarios::request_storm(&server, sizes.storm_clients, sizes.storm_missed).await
        }
        'g' => {
            async {
                let mut figures = scenarios::storm(
                    &server,
                    sizes.storm_clients,
                    sizes.storm_warmup,
                    sizes.storm_missed,
                )
                .await?;
                figures.extend(
                    scenarios::request_storm(&server, sizes.storm_clients, sizes.storm_missed)
                        .await?,
                );
                Ok(figures)
            }
            .await
        }
        'h' => scenarios::resume_latency(&server, sizes.resume_reps).await,
        'i' => scenarios::trickle(&server, &sizes.trickle).await,
        'j' => scenarios::fanout(&server, hub, sizes.large_clients, sizes.fanout_events).await,
        _ => Err(std::io::Error::other("no such scenario")),
    };
    // The recorder must have seen every event the clients counted (after the CPU window).
    let figures = match figures {
        Ok(mut figures) if metrics => {
            let expected = match id {
                'a' => sizes.single_events,
                'c' => sizes.fanout_clients as u64 * sizes.fanout_events,
                _ => 0,
            };
            match scenarios::recorded_events(&server, expected).await {
                Ok(recorded) => {
                    figures.push(("recorded_events", recorded as f64));
                    Ok(figures)
                }
                Err(error) => Err(error),
            }
        }
        other => other,
    };
    server.stop().await;
    figures
}
