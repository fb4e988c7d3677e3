//! A throwaway `redis-server` for tests (features `testing` and `redis`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to anything) where Redis tests must run: [`RedisServer::start`] then panics instead
/// of skipping when `redis-server` is missing. CI sets it.
pub const REQUIRE_REDIS: &str = "SSE_REQUIRE_REDIS";

/// A `redis-server` of this test's own, on a free loopback port with a temporary directory;
/// stopped, and its directory removed, when dropped. No test shares it.
///
/// ```no_run
/// use sse_runtime::testing::RedisServer;
///
/// let Some(redis) = RedisServer::start() else {
///     return; // no redis-server here: the test skips (with a message on stderr)
/// };
/// assert_eq!(redis.cli(&["PING"]), "PONG");
/// println!("{}", redis.url());
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts one without persistence; `None`, after a message on stderr, when
    /// `redis-server` is not on `PATH` (unless [`REQUIRE_REDIS`] is set, which makes that a
    /// panic).
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Starts one with extra configuration, such as `["--appendonly", "yes"]`.
    pub fn start_with(args: &[&str]) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os(REQUIRE_REDIS).is_none(),
                "{REQUIRE_REDIS} is set but redis-server is not on PATH"
            );
            eprintln!("skipping: redis-server is not on PATH (install Debian's redis-server)");
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "sse-redis-{}-{port}-{}",
            std::process::id(),
            crate::random::u64()
        ));
        std::fs::create_dir_all(&dir).expect("make the Redis directory");
        let mut server = Self {
            child: None,
            port,
            dir,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ping(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (where an AOF goes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `redis-cli` against it; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The ids of its clients named `name` (`CLIENT SETNAME`), from `CLIENT LIST`: for
    /// `CLIENT KILL ID`. A Redis store's tail connections are named
    /// [`RedisStore::TAIL_CONNECTION_NAME`](crate::resume::RedisStore::TAIL_CONNECTION_NAME).
    pub fn client_ids(&self, name: &str) -> Vec<String> {
        let named = format!(" name={name} ");
        self.cli(&["CLIENT", "LIST"])
            .lines()
            .filter(|line| line.contains(&named))
            .filter_map(|line| Some(line.strip_prefix("id=")?.split(' ').next()?.to_owned()))
            .collect()
    }

    /// Stops it (`SIGKILL`), as a crash would; [`restart`](Self::restart) brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it cleanly (`SHUTDOWN`, which writes an AOF out) and waits for its exit.
    pub fn shutdown(&mut self) {
        let _ = self.cli(&["SHUTDOWN"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (so with what it persisted).
    pub fn restart(&mut self) {
        self.shutdown();
        self.spawn();
    }

    /// Starts it again after a [`kill`](Self::kill) or [`shutdown`](Self::shutdown).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "it is running");
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
