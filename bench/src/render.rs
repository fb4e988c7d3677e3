//! `bench render`: what making the events of (a) costs in user space alone.
//!
//! Each side's body of `/events/{n}` runs in this process on a current-thread runtime, and its
//! frames are dropped as they come, so no socket, no kernel and no client is measured: only the
//! endpoint, the stream driver and (for axum) `Sse`'s encoding. The floor is its encoding loop
//! ([`crate::server`]'s floor writes the same chunks to its socket). The sides take turns, run
//! by run, so that a slow minute of this machine slows all of them alike; a figure is the
//! median of the runs' wall time per event, with the fastest run beside it.

use std::process::ExitCode;
use std::time::Instant;

use crate::Kind;

/// Events per run.
const EVENTS: u64 = 2_000_000;
/// Runs per side.
const RUNS: usize = 9;

/// `bench render [--quick] [--runs N] [--side ours|axum|floor]` (one side: for a profiler; no
/// ratio is printed then).
pub(crate) fn main(args: &[String]) -> ExitCode {
    let mut events = EVENTS;
    let mut runs = RUNS;
    let mut only = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => {
                events /= 10;
                runs = 3;
            }
            "--runs" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => runs = n,
                _ => return crate::usage_error("--runs takes a number above 0"),
            },
            "--side" => match rest.next().and_then(|name| Kind::parse(name)) {
                Some(kind) => only = Some(kind),
                None => return crate::usage_error("--side takes ours, axum or floor"),
            },
            other => {
                return crate::usage_error(&format!(
                    "render takes --quick, --runs and --side, not {other}"
                ));
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sides: Vec<Kind> = match only {
        Some(kind) => vec![kind],
        None => vec![Kind::Ours, Kind::Axum, Kind::Floor],
    };
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    // One unmeasured run of each warms the allocator and the frame pool.
    for &kind in &sides {
        runtime.block_on(run(kind, events / 10));
    }
    for _ in 0..runs {
        for (kind, times) in sides.iter().zip(&mut times) {
            times.push(runtime.block_on(run(*kind, events)) * 1e9 / events as f64);
        }
    }
    println!(
        "render of /events/{{n}} in process, {events} events, {runs} runs: ns/event, median [min-max]"
    );
    let medians: Vec<f64> = times.iter_mut().map(|times| median(times)).collect();
    let floor = sides
        .iter()
        .position(|&kind| kind == Kind::Floor)
        .map(|at| medians[at]);
    for ((kind, times), median) in sides.iter().zip(&times).zip(&medians) {
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(0.0, f64::max);
        let ratio = floor.map_or(String::new(), |floor| {
            format!("  {:.2}x the floor", median / floor)
        });
        println!(
            "{:>5}: {median:7.2} [{min:.2}-{max:.2}]{ratio}",
            kind.as_str()
        );
    }
    ExitCode::SUCCESS
}

/// One run: the seconds it took, after checking that it made every byte.
async fn run(kind: Kind, events: u64) -> f64 {
    let mut bytes = 0usize;
    let start = Instant::now();
    crate::server::render(kind, events, |frame| {
        bytes += std::hint::black_box(frame).len();
    })
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    // Every event is at least its `id: ` and `data: ` lines and the payload.
    let least = events as usize * (crate::server::PAYLOAD.len() + 12);
    assert!(
        bytes >= least,
        "{} made {bytes} bytes for {events} events",
        kind.as_str()
    );
    elapsed
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}
