//! Load clients: raw tokio `TcpStream`s that read as fast as they can and parse only what they
//! must (count `data:` lines, spot the end of the body), so the client is never the bottleneck.

use std::io;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use memchr::memmem::Finder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What every event has once, whichever the server.
const DATA: &[u8] = b"data:";
/// The end of a chunked body.
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";
/// Bytes kept from one read to the next so that no marker is missed across reads.
const TAIL: usize = 8;

static DATA_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(DATA));

/// A bound on anything a client waits for, so that a broken server cannot hang the run.
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what}: no answer"))
}

/// One SSE client connection.
pub(crate) struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes at the start of `buf` carried over from the previous read.
    carried: usize,
    /// `data:` lines seen so far.
    pub(crate) events: u64,
    /// Body bytes and head seen so far.
    pub(crate) bytes: u64,
}

impl Client {
    /// Connects and sends `GET path`; `close` asks the server to close after the response.
    pub(crate) async fn get(
        addr: SocketAddr,
        path: &str,
        close: bool,
        buffer: usize,
    ) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let connection = if close { "close" } else { "keep-alive" };
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\nconnection: {connection}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        Ok(Self {
            stream,
            buf: vec![0; buffer.max(2 * TAIL)],
            carried: 0,
            events: 0,
            bytes: 0,
        })
    }

    /// Reads once; returns whether the body ended (end of stream or last chunk).
    async fn read_some(&mut self) -> io::Result<bool> {
        let n = self.stream.read(&mut self.buf[self.carried..]).await?;
        if n == 0 {
            return Ok(true);
        }
        let end = self.carried + n;
        if self.bytes == 0 && !self.buf[..end].starts_with(b"HTTP/1.1 200") {
            let head = String::from_utf8_lossy(&self.buf[..end.min(64)]).into_owned();
            return Err(io::Error::other(format!("not a 200 response: {head:?}")));
        }
        self.bytes += n as u64;
        let window = &self.buf[..end];
        // A marker wholly inside the carried bytes was counted by the previous read.
        let carried = self.carried;
        self.events += DATA_FINDER
            .find_iter(window)
            .filter(|&at| at + DATA.len() > carried)
            .count() as u64;
        let finished = window.ends_with(LAST_CHUNK);
        let keep = end.min(TAIL);
        self.buf.copy_within(end - keep..end, 0);
        self.carried = keep;
        Ok(finished)
    }

    /// Reads until the body ends.
    pub(crate) async fn read_to_end(&mut self) -> io::Result<()> {
        while !self.read_some().await? {}
        Ok(())
    }

    /// Reads until at least `events` events arrived in all.
    pub(crate) async fn read_events(&mut self, events: u64) -> io::Result<()> {
        while self.events < events {
            if self.read_some().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended after {} of {events} events", self.events),
                ));
            }
        }
        Ok(())
    }

    /// Reads until the response head arrived (the stream is established).
    pub(crate) async fn read_head(&mut self) -> io::Result<()> {
        while self.bytes == 0 {
            if self.read_some().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before the response head",
                ));
            }
        }
        Ok(())
    }
}

/// A one-shot `GET` (a connection of its own); returns the body.
pub(crate) async fn fetch(addr: SocketAddr, path: &str) -> io::Result<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| io::Error::other("malformed response"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!("GET {path}: {head}")));
        }
        Ok(body.to_owned())
    };
    tokio::time::timeout(PATIENCE, attempt)
        .await
        .map_err(|_| timed_out(path))?
}

/// The server's counters from `/stats`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    pub(crate) live: u64,
    pub(crate) subscribers: u64,
}

pub(crate) async fn stats(addr: SocketAddr) -> io::Result<Stats> {
    let body = fetch(addr, "/stats").await?;
    let field = |name: &str| {
        body.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in /stats: {body:?}")))
    };
    Ok(Stats {
        live: field("live")?,
        subscribers: field("subscribers")?,
    })
}

/// Polls `/stats` until `done` holds; fails after [`PATIENCE`].
pub(crate) async fn wait_for(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(Stats) -> bool,
) -> io::Result<Stats> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stats = stats(addr).await?;
        if done(stats) {
            return Ok(stats);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(io::Error::other(format!("{what}: still {stats:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `f` under [`PATIENCE`].
pub(crate) async fn bounded<T>(
    what: &str,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(PATIENCE, f)
        .await
        .map_err(|_| timed_out(what))?
}
