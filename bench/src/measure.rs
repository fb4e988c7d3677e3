//! What the kernel accounts to a server process: CPU time and resident memory, from `/proc`.

use std::fs;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises `RLIMIT_NOFILE` to its hard limit; returns the limit now in force.
pub(crate) fn raise_nofile_limit(verbose: bool) -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let now = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(error) => {
            if verbose {
                eprintln!("cannot raise RLIMIT_NOFILE: {error}");
            }
            limit.current
        }
    };
    now.unwrap_or(u64::MAX)
}

/// CPU time of a process so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cpu {
    /// `utime + stime` from `/proc/PID/stat`, in clock ticks.
    ticks: u64,
    /// The same accounting in nanoseconds: the sum of `/proc/PID/task/*/schedstat`'s run time,
    /// when the kernel exposes it.
    nanos: Option<u64>,
}

impl Cpu {
    pub(crate) fn read(pid: u32) -> std::io::Result<Self> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of the file are the 12th and 13th after the name.
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let ticks = field(11) + field(12);
        Ok(Self {
            ticks,
            nanos: schedstat_nanos(pid),
        })
    }

    /// The CPU time from `earlier` to `self`, in seconds.
    ///
    /// `/proc/PID/stat` counts in ticks of 1/`CLK_TCK` s (10 ms here), too coarse for runs of a
    /// few hundred milliseconds; the per-thread run time is the same accounting in nanoseconds.
    /// It misses threads that exited in between, so it is used only when both agree within a
    /// tick per thread or so; otherwise the ticks are.
    pub(crate) fn seconds_since(&self, earlier: &Cpu) -> f64 {
        let tick = 1.0 / clock_ticks_per_second();
        let by_ticks = (self.ticks.saturating_sub(earlier.ticks)) as f64 * tick;
        match (self.nanos, earlier.nanos) {
            (Some(now), Some(then)) if now >= then => {
                let by_nanos = (now - then) as f64 / 1e9;
                if (by_nanos - by_ticks).abs() <= 4.0 * tick + 0.05 * by_ticks {
                    by_nanos
                } else {
                    eprintln!(
                        "  note: CPU by ticks ({by_ticks:.3} s) and by run time ({by_nanos:.3} s) disagree; using ticks"
                    );
                    by_ticks
                }
            }
            _ => by_ticks,
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

fn schedstat_nanos(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: it then counts as nothing.
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    (total > 0).then_some(total)
}

/// Resident memory of a process (`VmRSS` of `/proc/PID/status`), in KiB.
pub(crate) fn rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS in /proc/PID/status"))
}

/// The write system calls a process made so far (`syscw` of `/proc/PID/io`: `write`,
/// `writev` and their kin, every thread, exited ones too).
pub(crate) fn write_syscalls(pid: u32) -> std::io::Result<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|line| line.strip_prefix("syscw:"))
        .and_then(|rest| rest.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no syscw in /proc/PID/io"))
}

/// The system calls that write to a socket: what [`Writes`] counts.
const WRITE_TRACEPOINTS: [&str; 5] = [
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_sendmsg",
    "syscalls:sys_enter_sendfile64",
];

/// The write system calls of some processes, counted as they go by `perf stat` on the
/// syscalls' tracepoints: `send(2)` and `sendmsg(2)` too, which `syscw` of `/proc/PID/io`
/// ([`write_syscalls`]) does not count. The count runs from [`Writes::start`] and is at most
/// one interval (10 ms) behind.
pub(crate) struct Writes {
    perf: std::process::Child,
    total: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Writes {
    /// Counts the write system calls of `pids` from now on; `None` if `perf` cannot (it is
    /// not installed, or may not trace them).
    pub(crate) fn start(pids: &[u32]) -> Option<Self> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        use std::sync::atomic::{AtomicU64, Ordering};

        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut perf = Command::new("perf")
            .args(["stat", "-x", ",", "-I", "10", "-p", &pids.join(",")])
            .args(WRITE_TRACEPOINTS.iter().flat_map(|point| ["-e", point]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let stderr = perf.stderr.take()?;
        let total = std::sync::Arc::new(AtomicU64::new(0));
        let (first, counted) = std::sync::mpsc::channel();
        let sum = total.clone();
        std::thread::spawn(move || {
            let mut first = Some(first);
            // One line per event and interval: `time,count,unit,event,..`.
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // `<not counted>`: the processes did not run in the interval.
                let mut fields = line.split(',');
                let count = fields.nth(1).map(str::trim);
                let traced = fields
                    .nth(1)
                    .is_some_and(|event| event.starts_with("syscalls:"));
                if !traced {
                    continue;
                }
                if let Some(count) = count.and_then(|count| count.parse::<u64>().ok()) {
                    sum.fetch_add(count, Ordering::Relaxed);
                }
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
            }
        });
        // A `perf` that cannot count exits, or prints no line of its tracepoints.
        if counted
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_err()
        {
            let _ = perf.kill();
            let _ = perf.wait();
            return None;
        }
        Some(Writes { perf, total })
    }

    /// The write system calls counted so far.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Writes {
    fn drop(&mut self) {
        let _ = self.perf.kill();
        let _ = self.perf.wait();
    }
}

/// CPU time the whole machine spent busy since boot (every CPU; `/proc/stat`'s first line,
/// less idle and iowait), in seconds: with the processes under test's own, what else ran.
pub(crate) fn machine_busy_seconds() -> std::io::Result<f64> {
    let stat = fs::read_to_string("/proc/stat")?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .ok_or_else(|| std::io::Error::other("no cpu line in /proc/stat"))?
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|&(i, _)| i != 3 && i != 4)
        .map(|(_, ticks)| ticks)
        .sum();
    Ok(busy as f64 / clock_ticks_per_second())
}

/// The machine, for the report.
pub(crate) fn machine() -> Vec<(&'static str, String)> {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown".to_owned(),
            |kib| format!("{} GiB", kib / (1024 * 1024)),
        );
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |text| text.trim().to_owned());
    vec![
        ("CPU", format!("{cpu} ({cores} cores available)")),
        ("memory", memory),
        ("kernel", format!("Linux {kernel}")),
        ("rustc", rustc),
        (
            "clock ticks",
            format!("{} per second", clock_ticks_per_second()),
        ),
    ]
}
