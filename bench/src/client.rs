//! Load clients: raw tokio `TcpStream`s that read as fast as they can and parse only what they
//! must (count `data:` lines, spot the end of the body), so the client is never the bottleneck.
//!
//! A [`Checked`] client parses the body instead: it undoes the chunked encoding, reads every
//! line and checks that the `id:`s are consecutive numbers of one history (`[<epoch>:]<seq>`).
//! A [stamped](Client::stamped) client is a checked one that also reads a send time at the
//! start of each event's data, for publish-to-delivery latencies.
//!
//! A [`Poster`] publishes: one request per event on a keep-alive connection.

use std::io;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

use memchr::memmem::Finder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What every event has once, whichever the server.
const DATA: &[u8] = b"data:";
/// The end of a chunked body.
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";
/// Bytes kept from one read to the next so that no marker is missed across reads.
const TAIL: usize = 16;

static DATA_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(DATA));
/// The event type of ours's lag notice (`LagPolicy::Notify`): it has a `data:` line too, the
/// number of events missed, so counting data lines alone would take it for an event.
static LAGGED_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"event: lagged"));

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
    /// The parser of a checked client.
    checked: Option<Box<Checked>>,
}

impl Client {
    /// Connects and sends `GET path`; `close` asks the server to close after the response.
    pub(crate) async fn get(
        addr: SocketAddr,
        path: &str,
        close: bool,
        buffer: usize,
    ) -> io::Result<Self> {
        let mut client = Self::connect(addr, buffer).await?;
        client.request(path, close, None).await?;
        Ok(client)
    }

    /// Connects without sending anything yet (see [`request`](Self::request)).
    pub(crate) async fn connect(addr: SocketAddr, buffer: usize) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: vec![0; buffer.max(2 * TAIL)],
            carried: 0,
            events: 0,
            bytes: 0,
            checked: None,
        })
    }

    /// Parses the response with a [`Checked`] parser from now on (before the first read).
    pub(crate) fn checked(mut self) -> Self {
        self.checked = Some(Box::default());
        self
    }

    /// A checked client that also reads each event's send time (see [`Stamps`]), in
    /// nanoseconds since `base`.
    pub(crate) fn stamped(mut self, base: Instant) -> Self {
        let mut checked = Box::<Checked>::default();
        checked.stamps = Some(Stamps {
            base,
            now: 0,
            seen: Vec::new(),
        });
        self.checked = Some(checked);
        self
    }

    /// The port of the server end of the connection (which node of several it reads).
    pub(crate) fn server_port(&self) -> u16 {
        self.stream.peer_addr().map_or(0, |addr| addr.port())
    }

    /// What a stamped client measured (`None` for any other).
    pub(crate) fn stamps(&self) -> Option<&Stamps> {
        self.checked.as_ref()?.stamps.as_ref()
    }

    /// Sends `GET path`, with a `Last-Event-ID` if given.
    pub(crate) async fn request(
        &mut self,
        path: &str,
        close: bool,
        last_event_id: Option<&str>,
    ) -> io::Result<()> {
        let connection = if close { "close" } else { "keep-alive" };
        let cursor =
            last_event_id.map_or_else(String::new, |id| format!("last-event-id: {id}\r\n"));
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\nconnection: {connection}\r\n{cursor}\r\n"
        );
        self.stream.write_all(request.as_bytes()).await
    }

    /// What the checked parser found: the ids (`None` for a client that is not checked).
    pub(crate) fn ids(&self) -> Option<&Ids> {
        self.checked.as_ref().map(|checked| &checked.ids)
    }

    /// Reads once; returns whether the body ended (end of stream or last chunk). Cancel-safe:
    /// dropped while it waits, it has read nothing.
    pub(crate) async fn read_some(&mut self) -> io::Result<bool> {
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
        if let Some(checked) = &mut self.checked {
            if let Some(stamps) = &mut checked.stamps {
                stamps.now = nanos_since(stamps.base);
            }
            checked.feed(&self.buf[..end])?;
            self.events = checked.data_lines;
            return Ok(checked.finished);
        }
        let window = &self.buf[..end];
        if LAGGED_FINDER.find(window).is_some() {
            return Err(io::Error::other(
                "a lag notice arrived: the subscriber missed events",
            ));
        }
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
            if self.read_some().await? && self.events < events {
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

/// A publisher's keep-alive connection: one request per event (a `POST` of its data, or a
/// `GET`), each answered before the next.
pub(crate) struct Poster {
    addr: SocketAddr,
    /// `None` once the server said it closes the connection after its answer.
    stream: Option<TcpStream>,
    request: Vec<u8>,
    /// The answer being read: `have` bytes of it so far.
    buf: Vec<u8>,
    have: usize,
    /// Connections opened again because the server had closed the previous one.
    pub(crate) reconnects: u64,
}

impl Poster {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            stream: Some(stream),
            request: Vec::with_capacity(512),
            buf: vec![0; 4096],
            have: 0,
            reconnects: 0,
        })
    }

    /// `POST path` with `body` (`text/plain`); see [`send`](Self::send).
    pub(crate) async fn post(&mut self, path: &str, body: &[u8]) -> io::Result<&[u8]> {
        use std::io::Write as _;
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )?;
        self.request.extend_from_slice(body);
        self.send("POST", path).await
    }

    /// `GET path`; see [`send`](Self::send).
    pub(crate) async fn get(&mut self, path: &str) -> io::Result<&[u8]> {
        use std::io::Write as _;
        self.request.clear();
        write!(self.request, "GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n")?;
        self.send("GET", path).await
    }

    /// Sends the request in `self.request`; fails unless the answer is a 2xx. Returns the
    /// answer's body. When the server closed the connection after its previous answer (a
    /// server's cap on requests per connection), opens another first.
    async fn send(&mut self, method: &str, path: &str) -> io::Result<&[u8]> {
        let what = || format!("{method} {path}");
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                self.reconnects += 1;
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                stream
            }
        };
        stream.write_all(&self.request).await?;
        self.have = 0;
        let head_len = loop {
            if let Some(at) = memchr::memmem::find(&self.buf[..self.have], b"\r\n\r\n") {
                break at + 4;
            }
            self.fill(&mut stream).await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]).to_ascii_lowercase();
        let status: u16 = head
            .strip_prefix("http/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("{}: not a response: {head:?}", what())))?;
        let header = |name: &str| {
            head.split("\r\n")
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        if header("transfer-encoding").is_some() {
            return Err(io::Error::other(format!(
                "{}: a chunked answer (this client reads content-length only)",
                what()
            )));
        }
        let body_len: usize = header("content-length")
            .map_or(Some(0), |value| value.parse().ok())
            .ok_or_else(|| io::Error::other(format!("{}: bad content-length", what())))?;
        let close = header("connection") == Some("close");
        let total = head_len + body_len;
        while self.have < total {
            self.fill(&mut stream).await?;
        }
        if self.have > total {
            return Err(io::Error::other(format!(
                "{}: bytes after the answer",
                what()
            )));
        }
        if !close {
            self.stream = Some(stream);
        }
        let answer = &self.buf[head_len..total];
        if !(200..300).contains(&status) {
            return Err(io::Error::other(format!(
                "{}: {status} {}",
                what(),
                String::from_utf8_lossy(answer).trim()
            )));
        }
        Ok(answer)
    }

    /// Reads more of the answer.
    async fn fill(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        if self.have == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = stream.read(&mut self.buf[self.have..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before its answer",
            ));
        }
        self.have += n;
        Ok(())
    }
}

/// The server's counters from `/stats`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    pub(crate) live: u64,
    pub(crate) subscribers: u64,
    /// Subscribers of ours's resumable topic.
    pub(crate) resumable: u64,
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
        resumable: field("resumable")?,
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

/// The ids of a checked stream: consecutive numbers of one history, or the first fault.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    /// What precedes the number (`<epoch>:`, or nothing); the same for every id.
    prefix: Vec<u8>,
    /// The first and last number seen, once an id was.
    pub(crate) first: Option<u64>,
    pub(crate) last: u64,
    pub(crate) count: u64,
    /// The first id that did not follow the one before.
    pub(crate) fault: Option<String>,
}

impl Ids {
    fn see(&mut self, value: &[u8]) {
        let split = value
            .iter()
            .rposition(|&b| b == b':')
            .map_or(0, |at| at + 1);
        let (prefix, digits) = value.split_at(split);
        let number = std::str::from_utf8(digits)
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        self.count += 1;
        let fault = match (number, self.first) {
            (None, _) => Some("not a number"),
            (Some(n), None) => {
                self.prefix = prefix.to_vec();
                self.first = Some(n);
                self.last = n;
                None
            }
            (Some(_), Some(_)) if prefix != self.prefix => Some("of another history"),
            (Some(n), Some(_)) if Some(n) != self.last.checked_add(1) => Some("not consecutive"),
            (Some(n), Some(_)) => {
                self.last = n;
                None
            }
        };
        if let Some(what) = fault
            && self.fault.is_none()
        {
            self.fault = Some(format!(
                "id {:?} after {}{}: {what}",
                String::from_utf8_lossy(value),
                String::from_utf8_lossy(&self.prefix),
                self.last
            ));
        }
    }

    /// The history (`<epoch>:`) and number of the last id, as a client sends it back.
    pub(crate) fn last_id(&self) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.prefix), self.last)
    }

    /// Fails unless the ids were exactly `first..=last`, one per event of `events`.
    pub(crate) fn expect(
        &self,
        events: u64,
        first: Option<u64>,
        last: Option<u64>,
    ) -> io::Result<()> {
        let fail = |what: String| Err(io::Error::other(format!("ids: {what}")));
        if let Some(fault) = &self.fault {
            return fail(fault.clone());
        }
        if self.count != events {
            return fail(format!("{} ids for {events} events", self.count));
        }
        let Some(got_first) = self.first else {
            return if events == 0 {
                Ok(())
            } else {
                fail("none".into())
            };
        };
        if first.is_some_and(|first| first != got_first)
            || last.is_some_and(|last| last != self.last)
        {
            return fail(format!(
                "{got_first}..={} instead of {first:?}..={last:?}",
                self.last
            ));
        }
        Ok(())
    }
}

/// The data of a stamped event starts with this, then the send time in decimal nanoseconds.
pub(crate) const STAMP: &str = "t=";

/// Nanoseconds from `base` to now: the clock of stamps.
pub(crate) fn nanos_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The `q` quantile (0 to 1) of `sorted` nanoseconds, in milliseconds: the smallest value that
/// at least that share of them does not exceed.
pub(crate) fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

/// What a stamped client saw: for each event whose data starts with [`STAMP`], its send time
/// and how long after it the read that brought the event returned (both in nanoseconds since
/// the publisher's and the client's common `base`: one process, one clock).
#[derive(Debug)]
pub(crate) struct Stamps {
    base: Instant,
    /// When the bytes being parsed were read.
    now: u64,
    /// `(sent, latency)` of every stamped event, in order.
    pub(crate) seen: Vec<(u64, u64)>,
}

impl Stamps {
    fn see(&mut self, data: &[u8]) {
        let data = data.strip_prefix(b" ").unwrap_or(data);
        let Some(digits) = data.strip_prefix(STAMP.as_bytes()) else {
            return;
        };
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let sent = std::str::from_utf8(&digits[..len])
            .ok()
            .and_then(|text| text.parse::<u64>().ok());
        if let Some(sent) = sent {
            self.seen.push((sent, self.now.saturating_sub(sent)));
        }
    }
}

/// Where a checked parser is in the response.
#[derive(Debug, Default)]
enum Part {
    /// In the head, having matched this many bytes of the blank line that ends it.
    #[default]
    Head,
    /// In a chunk-size line, with the size read so far.
    Size(u64),
    /// After the size, in a chunk extension, up to the line's end.
    Extension(u64),
    /// In a chunk's data, with this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data, with this many bytes of it left.
    DataEnd(u8),
    /// At the blank line after the last chunk (no trailers), with this many bytes of it left.
    Last(u8),
    /// A body that is not chunked: everything is data.
    Raw,
    /// After the last chunk.
    Done,
}

/// A parser of a whole SSE response: head, chunked framing, lines.
#[derive(Debug, Default)]
struct Checked {
    part: Part,
    /// The head so far (only while in it).
    head: Vec<u8>,
    /// A line begun in an earlier piece of data.
    line: Vec<u8>,
    data_lines: u64,
    ids: Ids,
    finished: bool,
    /// A stamped client's send times and latencies.
    stamps: Option<Stamps>,
}

impl Checked {
    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.part {
                Part::Head => {
                    let Some(&byte) = bytes.first() else { break };
                    bytes = &bytes[1..];
                    self.head.push(byte);
                    if self.head.ends_with(b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&self.head).to_ascii_lowercase();
                        self.part = if head.contains("\r\ntransfer-encoding: chunked\r\n") {
                            Part::Size(0)
                        } else {
                            Part::Raw
                        };
                        self.head = Vec::new();
                    }
                }
                Part::Size(size) | Part::Extension(size) => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    let in_size = matches!(self.part, Part::Size(_));
                    self.part = match byte {
                        b'\n' if size == 0 => Part::Last(2),
                        b'\n' => Part::Data(size),
                        b'\r' | b';' => Part::Extension(size),
                        _ if !in_size => Part::Extension(size),
                        _ => {
                            let digit = char::from(byte).to_digit(16).ok_or_else(|| {
                                io::Error::other(format!("bad chunk size byte {byte:#x}"))
                            })?;
                            Part::Size(size.saturating_mul(16) + u64::from(digit))
                        }
                    };
                }
                Part::Data(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    let (data, rest) = bytes.split_at(take);
                    self.lines(data);
                    bytes = rest;
                    let left = left - take as u64;
                    self.part = if left == 0 {
                        Part::DataEnd(2)
                    } else {
                        Part::Data(left)
                    };
                }
                Part::DataEnd(left) => {
                    bytes = &bytes[1..];
                    self.part = if left > 1 {
                        Part::DataEnd(left - 1)
                    } else {
                        Part::Size(0)
                    };
                }
                Part::Last(left) => {
                    bytes = &bytes[1..];
                    self.part = if left > 1 {
                        Part::Last(left - 1)
                    } else {
                        self.finished = true;
                        Part::Done
                    };
                }
                Part::Raw => {
                    self.lines(bytes);
                    bytes = &[];
                }
                Part::Done => {
                    return Err(io::Error::other("bytes after the last chunk"));
                }
            }
        }
        Ok(())
    }

    /// Feeds body data: whole lines are read in place, a line cut by the end is kept.
    fn lines(&mut self, mut data: &[u8]) {
        while let Some(end) = memchr::memchr(b'\n', data) {
            let (line, rest) = data.split_at(end);
            data = &rest[1..];
            if self.line.is_empty() {
                self.line_done(line);
            } else {
                let mut whole = std::mem::take(&mut self.line);
                whole.extend_from_slice(line);
                self.line_done(&whole);
                whole.clear();
                self.line = whole;
            }
        }
        self.line.extend_from_slice(data);
    }

    fn line_done(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"id:") {
            self.ids.see(value.strip_prefix(b" ").unwrap_or(value));
        } else if let Some(data) = line.strip_prefix(DATA) {
            self.data_lines += 1;
            if let Some(stamps) = &mut self.stamps {
                stamps.see(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunked SSE response of `frames`, the chunks cut where `chunks` says.
    fn response(frames: &[&str], chunks: usize) -> Vec<u8> {
        let body: String = frames.concat();
        let mut out =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for chunk in body.as_bytes().chunks(chunks) {
            out.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    fn parse(bytes: &[u8], piece: usize) -> io::Result<Checked> {
        let mut checked = Checked::default();
        for piece in bytes.chunks(piece) {
            checked.feed(piece)?;
        }
        Ok(checked)
    }

    #[test]
    fn ids_and_events_survive_every_cut() {
        let frames = [
            "id: Ab:7\r\ndata: x\r\n\r\n",
            ": ping\r\n\r\n",
            "id: Ab:8\ndata: y\ndata: z\n\n",
            "id:Ab:9\r\ndata: w\r\n\r\n",
        ];
        let bytes = response(&frames, 5);
        for piece in 1..bytes.len() {
            let checked = parse(&bytes, piece).unwrap();
            assert!(checked.finished, "piece {piece}");
            assert_eq!(checked.data_lines, 4);
            checked.ids.expect(3, Some(7), Some(9)).unwrap();
            assert_eq!(checked.ids.last_id(), "Ab:9");
        }
    }

    #[test]
    fn a_stamped_client_reads_send_times_across_cuts() {
        let frames = [
            "id: 1\r\ndata: t=00000000000000000100 xxxx\r\n\r\n",
            "data:t=250\n\n",
            "data: no stamp\r\n\r\n",
        ];
        let bytes = response(&frames, 7);
        for piece in 1..bytes.len() {
            let mut checked = Checked {
                stamps: Some(Stamps {
                    base: Instant::now(),
                    now: 1_000,
                    seen: Vec::new(),
                }),
                ..Checked::default()
            };
            for piece in bytes.chunks(piece) {
                checked.feed(piece).unwrap();
            }
            assert_eq!(checked.data_lines, 3);
            let seen = checked.stamps.map(|stamps| stamps.seen);
            assert_eq!(seen, Some(vec![(100, 900), (250, 750)]), "piece {piece}");
        }
    }

    #[test]
    fn a_gap_a_repeat_or_another_history_fails() {
        for frames in [
            ["id: 1\r\ndata: x\r\n\r\n", "id: 3\r\ndata: x\r\n\r\n"],
            ["id: 1\r\ndata: x\r\n\r\n", "id: 1\r\ndata: x\r\n\r\n"],
            ["id: Ab:1\r\ndata: x\r\n\r\n", "id: Cd:2\r\ndata: x\r\n\r\n"],
        ] {
            let checked = parse(&response(&frames, 64), 64).unwrap();
            assert!(checked.ids.expect(2, None, None).is_err(), "{frames:?}");
        }
        let frames = ["id: 4\r\ndata: x\r\n\r\n", "id: 5\r\ndata: x\r\n\r\n"];
        let checked = parse(&response(&frames, 64), 64).unwrap();
        assert!(checked.ids.expect(2, Some(5), Some(6)).is_err());
        assert!(checked.ids.expect(3, Some(4), Some(5)).is_err());
        checked.ids.expect(2, Some(4), Some(5)).unwrap();
    }

    /// Serves `bytes` on a loopback socket, the body `piece` bytes a write, to one [`Client`] that
    /// reads them all with `read_some`; returns what the client made of them.
    async fn read_unchecked(bytes: Vec<u8>, piece: usize) -> io::Result<u64> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            // The head in one write, as every server sends it; the body cut anywhere.
            let head = memchr::memmem::find(&bytes, b"\r\n\r\n").map_or(0, |at| at + 4);
            socket.write_all(&bytes[..head]).await?;
            for part in bytes[head..].chunks(piece) {
                socket.write_all(part).await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            io::Result::Ok(())
        });
        let mut client = Client::connect(addr, 64).await?;
        let read = async {
            while !client.read_some().await? {}
            io::Result::Ok(client.events)
        }
        .await;
        server.await.map_err(io::Error::other)??;
        read
    }

    #[tokio::test]
    async fn an_unchecked_client_counts_events_and_fails_on_a_lag_notice_wherever_it_is_cut() {
        let events = ["data: a\r\n\r\n", "data: b\r\n\r\n"];
        let lagging = [
            "data: a\r\n\r\n",
            "event: lagged\r\ndata: 1\r\n\r\n",
            "data: c\r\n\r\n",
        ];
        for piece in [1, 3, 7, 13, 64] {
            // One chunk each (the unchecked client counts markers in the raw bytes, and the
            // servers' chunks hold whole events), cut anywhere by the socket's reads.
            let count = read_unchecked(response(&events, 1000), piece)
                .await
                .unwrap();
            assert_eq!(count, 2, "cut every {piece}");
            let error = read_unchecked(response(&lagging, 1000), piece)
                .await
                .unwrap_err();
            assert!(
                error.to_string().contains("lag notice"),
                "cut every {piece}: {error}"
            );
        }
    }
}
