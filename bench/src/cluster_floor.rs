//! `bench cluster-floor`: one node of the cluster's floor, the least a node on our Redis store
//! does to deliver the bytes ours delivers (the `floor-3` system of `bench cluster`).
//!
//! It shares the hub of the `cluster` example (`RedisStore`, hub `cluster`, the same history
//! and TTL) through sse-runtime, so the store, its publish script and its one tail loop per
//! node are ours, and everything after them is written by hand on tokio alone: no hyper, no
//! axum, no task per subscriber. One task follows topic `bench` (a [`Resume`] from now on)
//! and writes each event, framed once as a chunk, to every subscriber's socket in one loop,
//! one `send(2)` each, as nginx walks its subscribers; what a socket does not take waits in
//! that subscriber's buffer and goes before its next bytes (retried every millisecond until
//! it has gone). Events that are ready together go as one chunk, as ours coalesces them.
//!
//! `bench cluster-floor --tasks` (the `floor-tasks-3` system) writes the same chunks from a
//! task per subscriber instead, each woken by a tokio `broadcast` of the framed chunks and
//! writing with `write_all`, as `axum::serve` runs a task per connection: the floor with the
//! wake-up and poll of every subscriber's task that any design on hyper has, and still no
//! hyper and no SSE layer. A subscriber that falls more than [`TASKS_CAPACITY`] chunks behind
//! is cut off (and the bench's counts fail the run).
//!
//! `bench cluster-floor --hyper` (the `floor-hyper-3` system) hands the same events, unframed,
//! to hyper instead: an axum router served by `sse_runtime::serve(..).http1_only()`, as the
//! `cluster` example is, whose `/events` body is each event's bytes from a tokio `broadcast`
//! and nothing else (hyper frames the chunks). The floor on hyper: a task per subscriber and
//! hyper's dispatch, but no SSE layer (no driver, no pings, no send timeout, no close hooks).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /events?...` | ours's response head, then every event of topic `bench` from now on (the query is not read) |
//! | `POST /publish/{topic}` | publishes the body to the topic through the store; answers the event's id |
//!
//! It reads `REDIS_URL` and `PORT`, says `listening on http://<addr>` on stderr as the
//! example does, sends no pings and never reads a subscriber's socket again: a subscriber that
//! left is dropped at its first failed write. A reference for the benchmark, not a server.
//!
//! [`Resume`]: sse_runtime::resume::Resume

use std::io;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as AxumPath, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;

use futures_util::{FutureExt as _, StreamExt as _};
use sse_runtime::resume::{Hub, RedisStore};
use sse_runtime::{LastEventId, Separator, ServerSentEvent};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use crate::server::floor::{date, read_head, sse_head, text};
use crate::server::frames_body;

/// What the `cluster` example keeps per topic, and for how long.
const HISTORY: usize = 10_000;
const TTL: Duration = Duration::from_secs(24 * 3600);
/// The one topic the node delivers.
const TOPIC: &str = "bench";
/// The most event bytes one chunk takes when events are ready together.
const CHUNK: usize = 64 * 1024;
/// How often bytes that a socket did not take are offered again.
const RETRY: Duration = Duration::from_millis(1);
/// The chunks a subscriber's task may be behind the writer (`--tasks`).
const TASKS_CAPACITY: usize = 256;
/// The longest publish body read.
const MAX_BODY: usize = 64 * 1024;

/// How a node's event chunks reach its subscribers' sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer {
    /// One task writes every chunk to every socket, in one loop.
    Loop,
    /// A task per subscriber, woken by a broadcast of the chunks, writes its own.
    Tasks,
    /// A body per subscriber on hyper, fed the events by a broadcast.
    Hyper,
}

/// Runs the node until the process is killed.
pub(crate) async fn run(writer: Writer) -> io::Result<()> {
    let url = std::env::var("REDIS_URL").map_err(|_| io::Error::other("REDIS_URL is not set"))?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(0);
    // The hub first: the node listens (and says so) once it can serve.
    let node = Node::start(&url, writer).await?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    node.serve(listener).await
}

/// A node's hub on the store, and its writer.
pub(crate) struct Node {
    hub: Hub,
    route: Route,
}

/// Where a subscriber's socket goes once its head is written.
#[derive(Clone)]
enum Route {
    /// To the one writer.
    Loop(mpsc::UnboundedSender<TcpStream>),
    /// To a task of its own that follows the broadcast of the framed chunks.
    Tasks(broadcast::Sender<Bytes>),
    /// To hyper, with a body that follows the broadcast of the events' bytes.
    Hyper(broadcast::Sender<Bytes>),
}

impl Node {
    /// Connects to the Redis at `url` and starts the writer.
    pub(crate) async fn start(url: &str, writer: Writer) -> io::Result<Self> {
        let store = RedisStore::builder(url)
            .hub("cluster")
            .history(HISTORY)
            .ttl(TTL)
            .connect()
            .await
            .map_err(io::Error::other)?;
        let hub = Hub::builder().store(store).build();
        let live = hub.resume([TOPIC], LastEventId::None).await;
        let route = match writer {
            Writer::Loop => {
                let (joins, joined) = mpsc::unbounded_channel();
                tokio::spawn(fan_out(live, Sink::Loop(joined)));
                Route::Loop(joins)
            }
            Writer::Tasks | Writer::Hyper => {
                let tx = broadcast::channel(TASKS_CAPACITY).0;
                // hyper frames the chunks of its bodies itself.
                let framed = writer == Writer::Tasks;
                tokio::spawn(fan_out(live, Sink::Broadcast(tx.clone(), framed)));
                if framed {
                    Route::Tasks(tx)
                } else {
                    Route::Hyper(tx)
                }
            }
        };
        Ok(Self { hub, route })
    }

    /// Accepts connections on `listener` until it fails.
    pub(crate) async fn serve(self, listener: TcpListener) -> io::Result<()> {
        if let Route::Hyper(events) = &self.route {
            let app = Router::new()
                .route("/events", get(hyper_events))
                .route("/publish/{topic}", post(hyper_publish))
                .with_state((self.hub.clone(), events.clone()));
            let listener = sse_runtime::connection::Listener::new(listener);
            return sse_runtime::serve(listener, app, &sse_runtime::Shutdown::new())
                .http1_only()
                .await;
        }
        loop {
            let (socket, _) = listener.accept().await?;
            let (hub, route) = (self.hub.clone(), self.route.clone());
            tokio::spawn(async move {
                // A client that went away ends its connection; nothing to tell.
                let _ = connection(socket, hub, route).await;
            });
        }
    }
}

/// One subscriber: its socket, and the bytes it did not take yet.
struct Subscriber {
    socket: TcpStream,
    pending: Vec<u8>,
}

impl Subscriber {
    /// Sends `bytes` after what is pending; `false` once the client is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        if self.pending.is_empty() {
            match self.socket.try_write(bytes) {
                Ok(n) => self.pending.extend_from_slice(&bytes[n..]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(bytes);
                }
                Err(_) => return false,
            }
            true
        } else {
            self.pending.extend_from_slice(bytes);
            self.flush()
        }
    }

    /// Offers the pending bytes again; `false` once the client is gone.
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.socket.try_write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    }
}

/// Offers bytes to every subscriber with `offer`, drops those that are gone; returns whether
/// any is left with bytes its socket did not take.
fn pass(subscribers: &mut Vec<Subscriber>, mut offer: impl FnMut(&mut Subscriber) -> bool) -> bool {
    let mut backlog = false;
    subscribers.retain_mut(|subscriber| {
        let alive = offer(subscriber);
        backlog |= alive && !subscriber.pending.is_empty();
        alive
    });
    backlog
}

/// Where the writer's chunks go.
enum Sink {
    /// Subscribers to write to, as they join.
    Loop(mpsc::UnboundedReceiver<TcpStream>),
    /// The subscribers' tasks (framed chunks) or bodies on hyper (the events' bytes, unframed,
    /// when the flag is `false`).
    Broadcast(broadcast::Sender<Bytes>, bool),
}

/// The node's writer: each event (or run of ready events), framed once, to every subscriber
/// in turn (or, `--tasks`, to their tasks; `--hyper`, unframed, to their bodies).
async fn fan_out(mut live: sse_runtime::resume::Resume, sink: Sink) {
    let (mut joined, broadcast) = match sink {
        Sink::Loop(joined) => (Some(joined), None),
        Sink::Broadcast(tx, framed) => (None, Some((tx, framed))),
    };
    let mut subscribers: Vec<Subscriber> = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK + 64);
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether a subscriber has bytes its socket did not take, as of the last pass over them.
    let mut backlog = false;
    loop {
        tokio::select! {
            biased;
            Some(socket) = async { Some(joined.as_mut()?.recv().await) } => match socket {
                Some(socket) => subscribers.push(Subscriber { socket, pending: Vec::new() }),
                None => return,
            },
            payload = live.next() => {
                let Some(payload) = payload else { return };
                let mut data = payload.encode(Separator::CrLf).to_vec();
                while data.len() < CHUNK {
                    match live.next().now_or_never() {
                        Some(Some(more)) => data.extend_from_slice(&more.encode(Separator::CrLf)),
                        Some(None) | None => break,
                    }
                }
                if let Some((tx, false)) = &broadcast {
                    // Fails only while no subscriber follows.
                    drop(tx.send(Bytes::from(data)));
                    continue;
                }
                chunk.clear();
                chunk.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
                chunk.extend_from_slice(&data);
                chunk.extend_from_slice(b"\r\n");
                match &broadcast {
                    // Fails only while no subscriber follows.
                    Some((tx, _)) => drop(tx.send(Bytes::copy_from_slice(&chunk))),
                    None => backlog = pass(&mut subscribers, |s| s.send(&chunk)),
                }
            }
            _ = retry.tick(), if backlog => {
                backlog = pass(&mut subscribers, Subscriber::flush);
            }
        }
    }
}

/// `GET /events` on hyper (`--hyper`): ours's response head, and a body of the events.
async fn hyper_events(State((_, events)): State<HyperState>) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONNECTION, "keep-alive"),
            (HeaderName::from_static("x-accel-buffering"), "no"),
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
        ],
        frames_body(events.subscribe()),
    )
        .into_response()
}

/// `POST /publish/{topic}` on hyper (`--hyper`): the body as the event's data; its id.
async fn hyper_publish(
    State((hub, _)): State<HyperState>,
    AxumPath(topic): AxumPath<String>,
    body: String,
) -> Result<String, StatusCode> {
    match hub.publish(&topic, ServerSentEvent::new().data(body)).await {
        Ok(id) => Ok(id.to_string()),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
    }
}

type HyperState = (Hub, broadcast::Sender<Bytes>);

/// A subscriber's task (`--tasks`): each chunk of the broadcast, written as it comes.
async fn follow(mut socket: TcpStream, mut chunks: broadcast::Receiver<Bytes>) -> io::Result<()> {
    loop {
        match chunks.recv().await {
            Ok(chunk) => socket.write_all(&chunk).await?,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                return Err(io::Error::other(format!("{missed} chunks missed")));
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Serves one connection's requests: a subscriber's socket goes to the writer; publishes are
/// answered one after the other.
async fn connection(mut socket: TcpStream, hub: Hub, route: Route) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let mut input = Vec::with_capacity(1024);
    loop {
        let Some(end) = read_head(&mut socket, &mut input).await? else {
            return Ok(());
        };
        let head = std::str::from_utf8(&input[..end])
            .map_err(|_| io::Error::other("a head not in UTF-8"))?
            .to_owned();
        input.drain(..end);
        let mut words = head.split(' ');
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if method == "GET" && (path == "/events" || path.starts_with("/events?")) {
            socket.write_all(sse_head(false).as_bytes()).await?;
            return match route {
                Route::Loop(joins) => joins
                    .send(socket)
                    .map_err(|_| io::Error::other("the writer ended")),
                Route::Tasks(chunks) => follow(socket, chunks.subscribe()).await,
                // Served by hyper instead (`Node::serve`).
                Route::Hyper(_) => Err(io::Error::other("not a connection of this server")),
            };
        }
        let topic = path.strip_prefix("/publish/").filter(|_| method == "POST");
        let Some(topic) = topic else {
            let answer = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: {}\r\n\r\n",
                date()
            );
            socket.write_all(answer.as_bytes()).await?;
            continue;
        };
        let length = head
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .ok_or_else(|| io::Error::other("a publish without a content-length"))?;
        if length > MAX_BODY {
            return Err(io::Error::other("a publish body too long"));
        }
        while input.len() < length {
            input.reserve(length - input.len());
            if socket.read_buf(&mut input).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let body: Vec<u8> = input.drain(..length).collect();
        let body = String::from_utf8(body).map_err(|_| io::Error::other("a body not in UTF-8"))?;
        match hub.publish(topic, ServerSentEvent::new().data(body)).await {
            Ok(id) => text(&mut socket, &id.to_string(), false).await?,
            Err(_) => {
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\ndate: {}\r\n\r\n",
                    date()
                );
                socket.write_all(answer.as_bytes()).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use sse_runtime::testing::RedisServer;

    use super::*;
    use crate::client::{Client, Poster};

    async fn floor_node(url: &str, writer: Writer) -> SocketAddr {
        let node = Node::start(url, writer).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(node.serve(listener));
        addr
    }

    /// The numbers of the ids that two floor nodes on one Redis answer and deliver: every
    /// event published on either reaches the subscribers of both, once, in order, with the
    /// chunked framing and consecutive ids that the cluster's checked clients read (a gap, a
    /// repeat, a bad chunk fails them), bursts that go out as one chunk included.
    #[tokio::test]
    async fn floor_nodes_deliver_every_event_once_in_order() {
        for writer in [Writer::Loop, Writer::Tasks, Writer::Hyper] {
            deliver_every_event_once_in_order(writer).await;
        }
    }

    async fn deliver_every_event_once_in_order(writer: Writer) {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let nodes = [
            floor_node(&redis.url(), writer).await,
            floor_node(&redis.url(), writer).await,
        ];
        let mut subscribers = Vec::new();
        for &addr in &nodes {
            let mut client = Client::get(addr, "/events?topic=bench", false, 4096)
                .await
                .unwrap()
                .checked();
            client.read_head().await.unwrap();
            subscribers.push(client);
        }
        let seq = |answer: &[u8]| -> u64 {
            let text = std::str::from_utf8(answer).unwrap();
            text.rsplit(':').next().unwrap().parse().unwrap()
        };
        // A subscriber joins the writer after its head: publish until both have one event.
        let mut poster = Poster::connect(nodes[0]).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let first = loop {
            let id = seq(poster.post("/publish/bench", b"warm").await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut fresh = Vec::new();
            for client in &mut subscribers {
                while tokio::time::timeout(Duration::from_millis(20), client.read_some())
                    .await
                    .is_ok_and(|read| !read.unwrap())
                {}
                fresh.push(client.events);
            }
            if fresh.iter().all(|&events| events > 0) {
                break id + 1;
            }
            assert!(tokio::time::Instant::now() < deadline, "no event arrived");
        };
        let base: Vec<u64> = subscribers.iter().map(|client| client.events).collect();
        // 100 events from 4 posters at once, on both nodes: bursts the writer takes together.
        let mut posting = tokio::task::JoinSet::new();
        for k in 0..4 {
            let addr = nodes[k % 2];
            posting.spawn(async move {
                let mut poster = Poster::connect(addr).await.unwrap();
                for _ in 0..25 {
                    poster.post("/publish/bench", b"x").await.unwrap();
                }
            });
        }
        while let Some(done) = posting.join_next().await {
            done.unwrap();
        }
        let last = seq(poster.post("/publish/bench", b"end").await.unwrap());
        assert_eq!(last, first + 100);
        for (client, base) in subscribers.iter_mut().zip(base) {
            tokio::time::timeout(Duration::from_secs(20), client.read_events(base + 101))
                .await
                .expect("every event within 20 s")
                .unwrap();
            let ids = client.ids().unwrap();
            assert_eq!(ids.last, last);
            ids.expect(ids.count, None, Some(last)).unwrap();
            assert_eq!(client.events, base + 101);
        }
    }
}
