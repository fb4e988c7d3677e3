//! The floor, `bench server floor`: the least a server does to send the bytes ours sends.
//!
//! A hand-written HTTP/1.1 server on tokio alone (no hyper, no axum), on the same runtime as the
//! others (multi-thread, `--workers` threads), one task per connection as `axum::serve` spawns,
//! the sockets as `axum::serve` leaves them (no `TCP_NODELAY`). It reads a request head (until
//! its blank line, at most 16 KiB), takes its path and whether it asks to close the connection,
//! and answers; on a keep-alive connection, the next request after. The answers are ours's byte
//! for byte, its date aside (the test below checks it against ours's router):
//!
//! | route | what |
//! | --- | --- |
//! | `/events/{n}`, `/events_timeout/{n}` | ours's response head, then `n` events `id: <i>\r\ndata: <PAYLOAD>\r\n\r\n`, encoded into one buffer; each time it holds 64 KiB, that is one chunk, sent with one `write_all` (the head goes with the first, the last chunk `0\r\n\r\n` with the rest) |
//! | `/fanout` | ours's response head, then every event published from now on: the connection's task receives each from a `tokio::sync::broadcast` (capacity 128) and sends it with one `write_all`, one chunk per event (nothing coalesced) |
//! | `/publish/{n}` | `n` events, ids `0..n`, each encoded and framed as a chunk once and sent to every subscriber; answers `ok\n` |
//! | `/stats` | `live=<open streams> subscribers=<fan-out subscribers> resumable=0`, as the others |
//!
//! It counts its streams with the same drop guard as the others. It sends no pings: none of the
//! scenarios it joins keeps a stream 15 s.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use super::{FANOUT_CAPACITY, LiveGuard, PAYLOAD, stats_text};

/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// The data of one chunk of `/events/{n}`: events are added until it holds this much.
const CHUNK: usize = 64 * 1024;
/// Room before a chunk's data for its size line and a response head.
const ROOM: usize = 512;

/// One event, framed as a chunk: what a subscriber's task writes.
type Frame = Arc<[u8]>;

/// Accepts connections until the process ends.
pub(super) async fn serve(listener: TcpListener) -> io::Result<()> {
    let (hub, _) = broadcast::channel::<Frame>(FANOUT_CAPACITY);
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let hub = hub.clone();
                tokio::spawn(async move {
                    // A client that went away ends its connection; nothing to tell.
                    let _ = connection(socket, hub).await;
                });
            }
            // What `axum::serve` does: go on after a connection's error, wait after another
            // (such as too many open files).
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// What a request asks for.
enum Route {
    Events(u64),
    Fanout,
    Publish(u64),
    Stats,
    NotFound,
}

impl Route {
    fn of(path: &str) -> Self {
        let count = |prefix: &str| path.strip_prefix(prefix)?.parse().ok();
        if let Some(n) = count("/events/").or_else(|| count("/events_timeout/")) {
            Route::Events(n)
        } else if let Some(n) = count("/publish/") {
            Route::Publish(n)
        } else if path == "/fanout" {
            Route::Fanout
        } else if path == "/stats" {
            Route::Stats
        } else {
            Route::NotFound
        }
    }
}

/// Serves one connection's requests, one after the other.
async fn connection(mut socket: TcpStream, hub: broadcast::Sender<Frame>) -> io::Result<()> {
    let mut input = Vec::with_capacity(1024);
    loop {
        let Some(end) = read_head(&mut socket, &mut input).await? else {
            return Ok(());
        };
        let (route, close) = parse(&input[..end])?;
        input.drain(..end);
        match route {
            Route::Events(n) => events(&mut socket, n, close).await?,
            Route::Fanout => return fanout(socket, hub.subscribe(), close).await,
            Route::Publish(n) => {
                publish(&hub, n);
                text(&mut socket, "ok\n", close).await?;
            }
            Route::Stats => {
                let stats = stats_text(hub.receiver_count(), 0).await;
                text(&mut socket, &stats, close).await?;
            }
            Route::NotFound => {
                let head = format!(
                    "HTTP/1.1 404 Not Found\r\n{}content-length: 0\r\ndate: {}\r\n\r\n",
                    if close { "connection: close\r\n" } else { "" },
                    date()
                );
                socket.write_all(head.as_bytes()).await?;
            }
        }
        if close {
            return Ok(());
        }
    }
}

/// Reads until `input` holds a whole request head; returns its length, blank line included,
/// or `None` if the client closed between requests.
pub(crate) async fn read_head(
    socket: &mut TcpStream,
    input: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let mut searched: usize = 0;
    loop {
        let from = searched.saturating_sub(3);
        if let Some(at) = memchr::memmem::find(&input[from..], b"\r\n\r\n") {
            return Ok(Some(from + at + 4));
        }
        searched = input.len();
        if searched >= MAX_HEAD {
            return Err(io::Error::other("request head too long"));
        }
        input.reserve(4096);
        if socket.read_buf(input).await? == 0 {
            return if input.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed within a request head",
                ))
            };
        }
    }
}

/// The route of a request head, and whether it asks to close the connection after.
fn parse(head: &[u8]) -> io::Result<(Route, bool)> {
    let head = std::str::from_utf8(head).map_err(|_| io::Error::other("a head not in UTF-8"))?;
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .ok_or_else(|| io::Error::other("no request line"))?;
    let close = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("connection")
                && value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("close"))
        })
    });
    Ok((Route::of(path), close))
}

/// The date header's value, as hyper writes it.
pub(crate) fn date() -> String {
    httpdate::fmt_http_date(SystemTime::now())
}

/// Ours's head of an SSE response (hyper adds `close` to ours's `connection: keep-alive` when
/// the request asked for it).
pub(crate) fn sse_head(close: bool) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncache-control: no-store\r\nconnection: keep-alive{}\r\n\
         x-accel-buffering: no\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
         transfer-encoding: chunked\r\ndate: {}\r\n\r\n",
        if close { ", close" } else { "" },
        date()
    )
}

/// A plain-text answer, head and body in one write.
pub(crate) async fn text(socket: &mut TcpStream, body: &str, close: bool) -> io::Result<()> {
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         {}date: {}\r\n\r\n{body}",
        body.len(),
        if close { "connection: close\r\n" } else { "" },
        date()
    );
    socket.write_all(answer.as_bytes()).await
}

/// Appends event `id` as ours encodes it.
pub(super) fn encode(out: &mut Vec<u8>, id: u64) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.extend_from_slice(b"\r\ndata: ");
    out.extend_from_slice(PAYLOAD.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// One buffer for a chunk of a chunked body: its data is appended after [`ROOM`] bytes kept
/// free for its size line and whatever goes before it, so that all of it is one contiguous
/// slice, written at once, without copying the data.
struct Chunk {
    buf: Vec<u8>,
}

impl Chunk {
    fn with_capacity(data: usize) -> Self {
        // The data, its CRLF and the last chunk after it.
        let mut buf = Vec::with_capacity(ROOM + data + 7);
        buf.resize(ROOM, 0);
        Self { buf }
    }

    /// The chunk's data, to append to.
    fn data(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn len(&self) -> usize {
        self.buf.len() - ROOM
    }

    /// `before`, then the data as one chunk (none if it is empty), then, if `last`, the last
    /// chunk: in one slice.
    fn framed(&mut self, before: &[u8], last: bool) -> &[u8] {
        let mut start = ROOM;
        let len = self.len();
        if len > 0 {
            let mut line = [0; 20];
            let mut cursor = &mut line[..];
            // 20 bytes hold any size line of a `usize`.
            let _ = write!(cursor, "{len:X}\r\n");
            let written = 20 - cursor.len();
            start -= written;
            self.buf[start..ROOM].copy_from_slice(&line[..written]);
            self.buf.extend_from_slice(b"\r\n");
        }
        if last {
            self.buf.extend_from_slice(b"0\r\n\r\n");
        }
        start -= before.len();
        self.buf[start..start + before.len()].copy_from_slice(before);
        &self.buf[start..]
    }

    /// Empties the data for the next chunk.
    fn clear(&mut self) {
        self.buf.truncate(ROOM);
    }
}

/// What [`events`] writes, in the same chunks, passed to `write` instead of a socket
/// (`bench render`).
pub(super) fn render(n: u64, mut write: impl FnMut(&[u8])) {
    let head = sse_head(false);
    let mut before = head.as_bytes();
    let mut chunk = Chunk::with_capacity(CHUNK + 128);
    for id in 0..n {
        encode(chunk.data(), id);
        if chunk.len() >= CHUNK {
            write(chunk.framed(before, false));
            chunk.clear();
            before = &[];
        }
    }
    write(chunk.framed(before, true));
}

/// `/events/{n}`: `n` events, 64 KiB a chunk, a chunk a write.
async fn events(socket: &mut TcpStream, n: u64, close: bool) -> io::Result<()> {
    let _live = LiveGuard::open();
    let head = sse_head(close);
    let mut before = head.as_bytes();
    let mut chunk = Chunk::with_capacity(CHUNK + 128);
    for id in 0..n {
        encode(chunk.data(), id);
        if chunk.len() >= CHUNK {
            socket.write_all(chunk.framed(before, false)).await?;
            chunk.clear();
            before = &[];
        }
    }
    socket.write_all(chunk.framed(before, true)).await
}

/// `/fanout`: every event published from now on, one write each, until the client leaves
/// (which it sees, as hyper does, by reading the connection while it waits).
async fn fanout(
    mut socket: TcpStream,
    mut events: broadcast::Receiver<Frame>,
    close: bool,
) -> io::Result<()> {
    let _live = LiveGuard::open();
    let (mut reader, mut writer) = socket.split();
    writer.write_all(sse_head(close).as_bytes()).await?;
    let mut ignored = [0; 64];
    loop {
        tokio::select! {
            biased;
            event = events.recv() => match event {
                Ok(frame) => writer.write_all(&frame).await?,
                // Missed events fail the driver's counts; no passing run has any.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                // The hub lives as long as the server.
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            read = reader.read(&mut ignored) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// `/publish/{n}`: `n` events, each framed once, to every subscriber.
fn publish(hub: &broadcast::Sender<Frame>, n: u64) {
    let mut chunk = Chunk::with_capacity(128);
    for id in 0..n {
        encode(chunk.data(), id);
        // Fails only when nobody listens.
        let _ = hub.send(Frame::from(chunk.framed(&[], false)));
        chunk.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    async fn serve_ours() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = super::super::ours::router(false, false);
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn serve_floor() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        addr
    }

    /// Sends `GET path` on a connection of its own.
    async fn get(addr: SocketAddr, path: &str, close: bool) -> TcpStream {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let connection = if close { "close" } else { "keep-alive" };
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\nconnection: {connection}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        socket
    }

    /// Reads until `done` holds for what was read (or the server closes); returns it all.
    async fn read_until(socket: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut raw = Vec::new();
        while !done(&raw) {
            let mut buf = [0; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        raw
    }

    /// The head without its date line, and the body (its data, if chunked).
    fn undated_and_decoded(raw: &[u8]) -> (String, String) {
        let at = memchr::memmem::find(raw, b"\r\n\r\n").expect("a head") + 4;
        let head = String::from_utf8(raw[..at].to_vec()).unwrap();
        let chunked = head.contains("\r\ntransfer-encoding: chunked\r\n");
        let head: Vec<&str> = head
            .split("\r\n")
            .filter(|line| !line.starts_with("date: "))
            .collect();
        let head = head.join("\r\n");
        if !chunked {
            return (head, String::from_utf8_lossy(&raw[at..]).into_owned());
        }
        let mut body = Vec::new();
        let mut rest = &raw[at..];
        while let Some(end) = memchr::memmem::find(rest, b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap(), 16).unwrap();
            let data = &rest[end + 2..];
            body.extend_from_slice(&data[..size]);
            assert_eq!(&data[size..size + 2], b"\r\n");
            rest = &data[size + 2..];
        }
        (head, String::from_utf8(body).unwrap())
    }

    fn body_ended(raw: &[u8]) -> bool {
        raw.ends_with(b"\r\n0\r\n\r\n")
    }

    #[tokio::test]
    async fn the_floor_answers_events_with_ours_bytes() {
        let (ours, floor) = (serve_ours().await, serve_floor().await);
        // 1,000 events: more than one 64 KiB chunk of the floor.
        for (path, close) in [
            ("/events/3", true),
            ("/events/3", false),
            ("/events/1000", true),
        ] {
            let mut answers = Vec::new();
            for addr in [ours, floor] {
                let mut socket = get(addr, path, close).await;
                answers.push(undated_and_decoded(
                    &read_until(&mut socket, body_ended).await,
                ));
            }
            assert_eq!(answers[0], answers[1], "{path}, close: {close}");
        }
        let mut socket = get(floor, "/events/3", true).await;
        let raw = read_until(&mut socket, body_ended).await;
        let (_, body) = undated_and_decoded(&raw);
        let event = |id| format!("id: {id}\r\ndata: {PAYLOAD}\r\n\r\n");
        assert_eq!(body, [event(0), event(1), event(2)].concat());
    }

    /// Subscribes to `/fanout` at `addr`, waits until the server counts the subscriber, sends
    /// each of `paths` on a connection of its own, then reads the stream until it has 3
    /// events: the answers to `paths`, and the stream as read, head first.
    async fn fan_out_three(addr: SocketAddr, paths: &[&str]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut subscriber = get(addr, "/fanout", false).await;
        let head = read_until(&mut subscriber, |raw| raw.ends_with(b"\r\n\r\n")).await;
        while !crate::client::fetch(addr, "/stats")
            .await
            .unwrap()
            .contains("subscribers=1 ")
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut answers = Vec::new();
        for path in paths {
            let mut publisher = get(addr, path, true).await;
            answers.push(read_until(&mut publisher, |_| false).await);
        }
        let data = |raw: &[u8]| memchr::memmem::find_iter(raw, b"data:").count();
        let events = read_until(&mut subscriber, |raw| data(raw) == 3).await;
        (answers, [head, events].concat())
    }

    #[tokio::test]
    async fn the_floor_fans_out_ours_bytes() {
        let mut answers = Vec::new();
        for addr in [serve_ours().await, serve_floor().await] {
            let (published, stream) =
                fan_out_three(addr, &["/publish/1", "/publish/2", "/nothing"]).await;
            answers.extend(published.iter().map(|answer| undated_and_decoded(answer)));
            answers.push(undated_and_decoded(&stream));
        }
        let (ours, floor) = answers.split_at(answers.len() / 2);
        assert_eq!(ours, floor);
    }

    /// `bench server axum --lean`'s `/fanout`, the least a body costs on a setup, carries the
    /// floor's bytes for the same publishes.
    #[tokio::test]
    async fn the_leanest_axum_body_fans_out_the_floors_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lean = listener.local_addr().unwrap();
        let app = super::super::theirs::router(true);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut bodies = Vec::new();
        for addr in [lean, serve_floor().await] {
            let (_, stream) = fan_out_three(addr, &["/publish/1", "/publish/2"]).await;
            bodies.push(undated_and_decoded(&stream).1);
        }
        let event = |id| format!("id: {id}\r\ndata: {PAYLOAD}\r\n\r\n");
        assert_eq!(bodies[0], [event(0), event(0), event(1)].concat());
        assert_eq!(bodies[0], bodies[1]);
    }
}
