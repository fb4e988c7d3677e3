//! A hub's history and fan-out in Redis Streams: many processes, one sequence.
//!
//! # Layout
//!
//! Every key of a hub `h` carries the hash tag `{h}`, so that a hub is one Redis Cluster slot
//! and every script touches keys of that slot only:
//!
//! * `sse:{h}:meta`, a hash: `e` the epoch, `s` the number of the last event published, `f`
//!   the highest number of an event whose topic expired entirely (the hub-wide watermark that
//!   a topic made anew inherits);
//! * `sse:{h}:topics`, a sorted set: each topic with a stream, scored by its newest number
//!   (what an expired topic had, until the watermark covers it);
//! * `sse:{h}:t:<topic>`, a stream per topic: entry id `<seq>-0`, fields `e` (epoch), `v` (the
//!   number of the topic's previous event: a chain that shows a hole, and the first retained
//!   entry's `v` is the highest number trimmed), `k` (the entry's ordinal in the stream, for
//!   counting a range) and `f` (the frame, encoded once with its `id:` line).
//!
//! # Flow
//!
//! [`append`](Store::append) runs one Lua script: next number, `XADD` with `MAXLEN ~`, the
//! topic's TTL refreshed, the epoch made if there is none. It does not deliver: every process,
//! the publishing one included, receives events through its one **tail loop**, a dedicated
//! connection without response timeout that `XREAD`s the topics followed here from the last
//! number it saw, in number order across topics, and hands each frame to the local
//! [`Live`] rings. A read ([`Store::read`]) is one script too, so the gap check and the page
//! see one state.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Script, Value};
use tokio::task::AbortHandle;

use super::DEFAULT_HISTORY;
use super::id::{Epoch, EventId};
use super::live::Live;
use super::store::{BoxFuture, Page, Store, StoreError, Stored};
use crate::event::{Separator, ServerSentEvent};
use crate::lock;

/// The oldest Redis the store runs on (exclusive `XRANGE` bounds, `XADD` trimming as used).
pub const MIN_REDIS_VERSION: (u32, u32) = (7, 0);

/// How many entries of a topic one tail read takes at most.
const TAIL_COUNT: usize = 512;
/// How long one tail read blocks when nothing comes (a topic joining interrupts it).
const TAIL_BLOCK: Duration = Duration::from_secs(1);
/// How long a tail read must have waited for its entries for the loop to poll the streams of
/// idle connections itself: longer than a read that finds entries waiting takes, even on a
/// loaded machine.
const INLINE_AFTER_WAIT: Duration = Duration::from_millis(2);
/// How long a command of publishing or reading may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The tail loop's reconnect delays.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Makes the hub's meta hash if it has none (a new history, with the candidate epoch).
const INIT: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0, 'f', 0)
end
";

/// KEYS: meta. ARGV: candidate epoch. Returns `{epoch, head}`.
const HELLO: &str = "return {epoch, tonumber(redis.call('HGET', KEYS[1], 's'))}";

/// KEYS: meta, topics, the topic's stream. ARGV: candidate epoch, topic, history, ttl (ms,
/// 0: none), the frame before its `id:` line, the frame after it, the separator, the stream
/// key prefix. Returns `{seq, epoch}`.
const PUBLISH: &str = r"
local meta, tops, key = KEYS[1], KEYS[2], KEYS[3]
local seq = redis.call('HINCRBY', meta, 's', 1)
local id = string.format('%d', seq)
local prev, nth = '0', 1
local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
if last then
  prev = string.match(last[1], '^%d+')
  nth = tonumber(last[2][6]) + 1
else
  prev = redis.call('ZSCORE', tops, ARGV[2]) or redis.call('HGET', meta, 'f')
end
local frame = ARGV[5] .. 'id: ' .. epoch .. ':' .. id .. ARGV[7] .. ARGV[6]
redis.call('XADD', key, 'MAXLEN', '~', ARGV[3], id .. '-0', 'e', epoch, 'v', prev, 'k', nth, 'f', frame)
redis.call('ZADD', tops, seq, ARGV[2])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('PEXPIRE', key, ttl)
  local oldest = redis.call('ZRANGE', tops, 0, 7, 'WITHSCORES')
  local forgotten
  for i = 1, #oldest, 2 do
    if redis.call('EXISTS', ARGV[8] .. oldest[i]) == 1 then break end
    forgotten = oldest[i + 1]
    redis.call('ZREM', tops, oldest[i])
  end
  if forgotten then redis.call('HSET', meta, 'f', forgotten) end
end
return {id, epoch}
";

/// KEYS: meta, topics, then each topic's stream. ARGV: candidate epoch, after, until (`+` or
/// `<n>-0`), limit, then each topic's name. Returns `{epoch, head, complete, retained, then
/// per topic {seq, frame, seq, frame, ..}}`.
const READ: &str = r"
local tops = KEYS[2]
local head = tonumber(redis.call('HGET', KEYS[1], 's'))
local forgotten = tonumber(redis.call('HGET', KEYS[1], 'f'))
local after = tonumber(ARGV[2])
local from, to = '(' .. ARGV[2] .. '-0', ARGV[3]
local limit = tonumber(ARGV[4])
local complete, retained = 1, 0
local out = {epoch, head, 1, 0}
for i = 3, #KEYS do
  local key = KEYS[i]
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
  local floor
  if first then
    floor = tonumber(first[2][4])
  else
    floor = tonumber(redis.call('ZSCORE', tops, ARGV[i + 2]) or forgotten)
  end
  if floor > after then complete = 0 end
  local events = {}
  if first then
    local page = redis.call('XRANGE', key, from, to, 'COUNT', math.max(limit, 1))
    if page[1] then
      local last = redis.call('XREVRANGE', key, to, from, 'COUNT', 1)[1]
      retained = retained + tonumber(last[2][6]) - tonumber(page[1][2][6]) + 1
      for j = 1, math.min(#page, limit) do
        events[2 * j - 1] = tonumber(string.match(page[j][1], '^%d+'))
        events[2 * j] = page[j][2][8]
      end
    end
  end
  out[#out + 1] = events
end
out[3] = complete
out[4] = retained
return out
";

/// A hub's history in Redis Streams (Redis ≥ 7.0), shared by every process of the hub: an
/// event published on one reaches the subscribers of all, and a client resumes on any.
///
/// Switching a hub to it is one builder line; endpoints do not change:
///
/// ```no_run
/// use sse_runtime::resume::{Hub, RedisStore};
///
/// # async fn run() -> Result<(), sse_runtime::resume::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .hub("chat")
///     .history(10_000)
///     .ttl(std::time::Duration::from_secs(3600))
///     .connect()
///     .await?;
/// let hub = Hub::builder().store(store).build();
/// # drop(hub);
/// # Ok(())
/// # }
/// ```
///
/// Each process runs one tail loop for the hub (spawned when the hub is built, ended when it
/// is dropped): one extra connection, whatever the number of subscribers. A publish is
/// answered once Redis has recorded the event; its local subscribers receive it through the
/// tail loop, like every other process's, about one round trip later.
///
/// While Redis is unreachable, [`Hub::publish`](super::Hub::publish) and resumes fail with a
/// [`StoreError`] (nothing is published silently or lost silently), and the tail loop
/// reconnects with backoff, going on from the last number it saw. A new epoch (`FLUSHALL`, a
/// restart without persistence) ends every local stream, so that each client resumes and
/// meets the gap policy.
///
/// Redis must keep what it acknowledged: a `maxmemory-policy` of `noeviction` (an evicted
/// stream is a silent hole), and for publishes to survive a Redis crash, AOF with
/// `appendfsync always` (`everysec` may lose the last second).
pub struct RedisStore {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    tasks: Mutex<Vec<AbortHandle>>,
    attached: OnceLock<()>,
}

struct Shared {
    client: Client,
    control: ConnectionManager,
    keys: Keys,
    history: usize,
    ttl_ms: u64,
    publish: Script,
    read: Script,
    hello: Script,
    /// The epoch the tail loop feeds from (seen when the store connected, then by the loop).
    epoch: Mutex<String>,
    /// The tail connection's `CLIENT ID` (0: none yet).
    tail_id: AtomicI64,
    /// The generation of the topic list the tail read is blocked with.
    tail_generation: AtomicU64,
    /// Whether the tail loop is in a blocking read.
    blocked: AtomicBool,
}

struct Keys {
    meta: String,
    topics: String,
    stream_prefix: String,
}

impl Keys {
    fn new(hub: &str) -> Self {
        Self {
            meta: format!("sse:{{{hub}}}:meta"),
            topics: format!("sse:{{{hub}}}:topics"),
            stream_prefix: format!("sse:{{{hub}}}:t:"),
        }
    }

    fn stream(&self, topic: &str) -> String {
        format!("{}{topic}", self.stream_prefix)
    }
}

/// The options of a [`RedisStore`], from [`RedisStore::builder`].
#[derive(Clone, Debug)]
#[must_use = "a RedisStoreBuilder does nothing until `connect` is awaited"]
pub struct RedisStoreBuilder {
    url: String,
    hub: String,
    history: usize,
    ttl: Option<Duration>,
}

impl RedisStoreBuilder {
    /// The hub's name, which prefixes its keys (default `sse`): processes of one hub use the
    /// same name, and one Redis can hold many hubs.
    pub fn hub(mut self, name: impl Into<String>) -> Self {
        self.hub = name.into();
        self
    }

    /// How many events each topic keeps at least (default [`DEFAULT_HISTORY`]); Redis trims
    /// in whole nodes (`MAXLEN ~`), so a topic may keep somewhat more.
    pub fn history(mut self, events: usize) -> Self {
        self.history = events.max(1);
        self
    }

    /// Deletes a topic's history once nothing was published to it for `ttl` (default: kept
    /// until trimmed). A client whose cursor is older then meets the gap policy.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Connects, checks that the server is Redis ≥ 7.0, and reads (or makes) the hub's
    /// epoch.
    ///
    /// # Errors
    ///
    /// When the URL is not one, Redis cannot be reached, or its version is below 7.0.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let client = Client::open(self.url.as_str()).map_err(StoreError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut control = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(StoreError::new)?;
        check_version(&mut control).await?;
        let keys = Keys::new(&self.hub);
        let hello = Script::new(&format!("{INIT}{HELLO}"));
        let (epoch, _head): (String, u64) = hello
            .key(&keys.meta)
            .arg(Epoch::random().as_str())
            .invoke_async(&mut control)
            .await
            .map_err(StoreError::new)?;
        let ttl_ms = self.ttl.map_or(0, |ttl| {
            u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                control,
                keys,
                history: self.history,
                ttl_ms,
                publish: Script::new(&format!("{INIT}{PUBLISH}")),
                read: Script::new(&format!("{INIT}{READ}")),
                hello,
                epoch: Mutex::new(epoch),
                tail_id: AtomicI64::new(0),
                tail_generation: AtomicU64::new(0),
                blocked: AtomicBool::new(false),
            }),
            runtime: tokio::runtime::Handle::current(),
            tasks: Mutex::new(Vec::new()),
            attached: OnceLock::new(),
        })
    }
}

/// Fails unless the server is Redis ≥ [`MIN_REDIS_VERSION`].
async fn check_version(con: &mut ConnectionManager) -> Result<(), StoreError> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(con)
        .await
        .map_err(StoreError::new)?;
    supported(&info)
}

/// Whether the `INFO server` text is of a Redis ≥ [`MIN_REDIS_VERSION`].
fn supported(info: &str) -> Result<(), StoreError> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("unknown");
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    let (major, minor) = (parts.next().flatten(), parts.next().flatten());
    match (major, minor) {
        (Some(major), Some(minor)) if (major, minor) >= MIN_REDIS_VERSION => Ok(()),
        _ => Err(StoreError::new(format!(
            "Redis {version} is too old for the Redis store, which needs {}.{} or newer",
            MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1
        ))),
    }
}

impl RedisStore {
    /// The name (`CLIENT SETNAME`) of every tail loop's connection, as `CLIENT LIST` shows it.
    pub const TAIL_CONNECTION_NAME: &'static str = "sse-tail";

    /// A store for the hub `sse` on the Redis at `url`, with the defaults of
    /// [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// The options of a store on the Redis at `url` (`redis://[:password@]host[:port][/db]`):
    /// hub `sse`, [`DEFAULT_HISTORY`] events per topic, no TTL.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            hub: "sse".to_owned(),
            history: DEFAULT_HISTORY,
            ttl: None,
        }
    }

    async fn append_event(
        &self,
        topic: &str,
        event: ServerSentEvent,
        separator: Separator,
    ) -> Result<EventId, StoreError> {
        let shared = &*self.shared;
        let (before, after, sep) = event.encode_around_id(separator);
        let (seq, epoch): (u64, String) = shared
            .publish
            .key(&shared.keys.meta)
            .key(&shared.keys.topics)
            .key(shared.keys.stream(topic))
            .arg(Epoch::random().as_str())
            .arg(topic)
            .arg(shared.history)
            .arg(shared.ttl_ms)
            .arg(before)
            .arg(after)
            .arg(sep)
            .arg(&shared.keys.stream_prefix)
            .invoke_async(&mut shared.control.clone())
            .await
            .map_err(StoreError::new)?;
        Ok(EventId::new(parse_epoch(&epoch)?, seq))
    }

    async fn read_page(
        &self,
        topics: &[Arc<str>],
        after: u64,
        until: u64,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let shared = &*self.shared;
        let mut invocation = shared.read.key(&shared.keys.meta);
        invocation.key(&shared.keys.topics);
        for topic in topics {
            invocation.key(shared.keys.stream(topic));
        }
        let until = if until == u64::MAX {
            "+".to_owned()
        } else {
            format!("{until}-0")
        };
        invocation
            .arg(Epoch::random().as_str())
            .arg(after)
            .arg(until)
            .arg(limit);
        for topic in topics {
            invocation.arg(&**topic);
        }
        let reply: Value = invocation
            .invoke_async(&mut shared.control.clone())
            .await
            .map_err(StoreError::new)?;
        parse_page(reply, limit).ok_or_else(|| StoreError::new("malformed reply to a read"))
    }
}

fn parse_epoch(text: &str) -> Result<Epoch, StoreError> {
    Epoch::from_str(text)
        .map_err(|_| StoreError::new(format!("the hub's epoch {text:?} is not one")))
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::SimpleString(text) => text.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn parse_page(reply: Value, limit: usize) -> Option<Page> {
    let Value::Array(items) = reply else {
        return None;
    };
    let mut items = items.into_iter();
    let epoch = Epoch::from_str(text(&items.next()?)?).ok()?;
    let head = int(&items.next()?)?;
    let complete = int(&items.next()?)? == 1;
    let retained = int(&items.next()?)?;
    let mut events = Vec::new();
    for topic in items {
        let Value::Array(pairs) = topic else {
            return None;
        };
        let mut pairs = pairs.into_iter();
        while let (Some(seq), Some(frame)) = (pairs.next(), pairs.next()) {
            let Value::BulkString(frame) = frame else {
                return None;
            };
            events.push(Stored {
                seq: int(&seq)?,
                frame: Bytes::from(frame),
            });
        }
    }
    // Each topic's events are in order; the page is the lowest `limit` of all.
    events.sort_unstable_by_key(|event| event.seq);
    events.truncate(limit);
    Some(Page {
        epoch,
        head,
        events,
        retained,
        complete,
    })
}

impl Store for RedisStore {
    fn attach(&self, live: Live) {
        if self.attached.set(()).is_err() {
            tracing::error!("a RedisStore was attached to a second hub; it keeps the first");
            return;
        }
        let tail = self.runtime.spawn(tail(self.shared.clone(), live.clone()));
        let unblock = self.runtime.spawn(unblock(self.shared.clone(), live));
        let mut tasks = lock(&self.tasks);
        tasks.push(tail.abort_handle());
        tasks.push(unblock.abort_handle());
    }

    fn append<'a>(
        &'a self,
        topic: &'a str,
        event: ServerSentEvent,
        separator: Separator,
    ) -> BoxFuture<'a, Result<EventId, StoreError>> {
        Box::pin(self.append_event(topic, event, separator))
    }

    fn read<'a>(
        &'a self,
        topics: &'a [Arc<str>],
        after: u64,
        until: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(self.read_page(topics, after, until, limit))
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner);
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("meta", &self.shared.keys.meta)
            .field("history", &self.shared.history)
            .field("ttl_ms", &self.shared.ttl_ms)
            .finish_non_exhaustive()
    }
}

/// The tail loop: forever, with a reconnect and backoff after each lost connection.
async fn tail(shared: Arc<Shared>, live: Live) {
    // Per topic followed here, the number of the last entry fed (or the mark it joined at).
    let mut cursors: HashMap<Arc<str>, u64> = HashMap::new();
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = match connect_tail(&shared).await {
            Ok(mut con) => {
                backoff = BACKOFF_MIN;
                feed(&shared, &live, &mut con, &mut cursors).await
            }
            Err(error) => Err(error),
        };
        shared.blocked.store(false, Ordering::Release);
        shared.tail_id.store(0, Ordering::Release);
        if let Err(error) = connected {
            tracing::warn!(%error, retry_ms = backoff.as_millis() as u64, "redis tail loop lost its connection; reconnecting");
        }
        let jitter =
            Duration::from_millis(crate::random::u64() % (backoff.as_millis() as u64 / 2 + 1));
        tokio::time::sleep(backoff / 2 + jitter).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connect_tail(shared: &Shared) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(CONNECT_TIMEOUT));
    let mut con = shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut con).await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(RedisStore::TAIL_CONNECTION_NAME)
        .query_async::<()>(&mut con)
        .await?;
    shared.tail_id.store(id, Ordering::Release);
    Ok(con)
}

/// One entry read by the tail.
struct Entry {
    seq: u64,
    /// Where it goes in the delivery order: its number, or for a barrier the number its
    /// topic's hole starts after (so that nothing above that, of any topic, goes out first).
    order: u64,
    topic: usize,
    frame: Bytes,
}

/// Reads and delivers until the connection fails.
async fn feed(
    shared: &Shared,
    live: &Live,
    con: &mut MultiplexedConnection,
    cursors: &mut HashMap<Arc<str>, u64>,
) -> redis::RedisResult<()> {
    let count = TAIL_COUNT.min(live.capacity().div_ceil(2)).max(1);
    // After a round that delivered entries of the epoch it knows, the next round needs no
    // HELLO: the highest number fed is a head of that history read from Redis, so as good a
    // mark (a new subscriber's read is at or after it). A round that found nothing asks again,
    // which is how a new epoch is seen (its entries are not above the old cursors).
    let mut fed: Option<(String, u64)> = None;
    // How long the last batch delivered with polls here took.
    let mut fanout = Duration::ZERO;
    loop {
        let (epoch, head): (String, u64) = match fed.take() {
            Some(known) => known,
            None => {
                shared
                    .hello
                    .key(&shared.keys.meta)
                    .arg(Epoch::random().as_str())
                    .invoke_async(con)
                    .await?
            }
        };
        {
            let mut known = lock(&shared.epoch);
            live.mark(head);
            if *known != epoch {
                // A new history: every local stream ends, and its client meets the gap policy.
                tracing::warn!(old = %known, new = %epoch, "the Redis history changed epoch; ending every local stream");
                *known = epoch.clone();
                live.end_all();
                cursors.clear();
            }
        }
        let (followed, generation) = live.followed_since();
        cursors.retain(|topic, _| followed.iter().any(|(t, _)| t == topic));
        for (topic, joined_at) in &followed {
            cursors.entry(topic.clone()).or_insert(*joined_at);
        }
        if followed.is_empty() {
            let joined = live.joined();
            if live.generation() == generation {
                let _ = tokio::time::timeout(TAIL_BLOCK, joined).await;
            }
            continue;
        }
        let topics: Vec<Arc<str>> = followed.into_iter().map(|(topic, _)| topic).collect();
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(TAIL_BLOCK.as_millis() as u64)
            .arg("STREAMS");
        for topic in &topics {
            read.arg(shared.keys.stream(topic));
        }
        for topic in &topics {
            read.arg(format!("{}-0", cursors[topic]));
        }
        shared.tail_generation.store(generation, Ordering::Release);
        shared.blocked.store(true, Ordering::Release);
        let asked = tokio::time::Instant::now();
        let reply: redis::RedisResult<Value> = read.query_async(con).await;
        shared.blocked.store(false, Ordering::Release);
        // A read that waited for its entries found the node idle: the streams are polled
        // here, each event written as soon as it is in. Not when the node is busy: polls
        // here do not yield, so the node's other tasks (the publishes) would wait for the
        // whole fan-out, and woken tasks, which run later, take more events per write. So
        // only after a wait of several times the last such fan-out: then at most a fifth of
        // the loop's time goes to polls that do not yield.
        let waited = asked.elapsed();
        let inline = waited >= INLINE_AFTER_WAIT && waited >= fanout * 4;
        let reply = reply?;
        if live.generation() != generation {
            // A topic joined while this was read: read again with it, so that nothing is
            // delivered past what its first subscriber may have read.
            continue;
        }
        let Some(batch) = parse_batch(reply, &topics, &shared.keys.stream_prefix) else {
            tracing::error!("malformed XREAD reply in the redis tail loop");
            continue;
        };
        let empty = batch.iter().all(Vec::is_empty);
        let delivering = tokio::time::Instant::now();
        let delivered = deliver(live, &epoch, &topics, batch, count, cursors, inline);
        if inline {
            fanout = delivering.elapsed();
        }
        if !delivered {
            // Entries of another history than the hub's meta says: the next round sees the
            // new epoch (and ends every stream); not a busy loop meanwhile.
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else if !empty {
            let highest = cursors.values().copied().max().unwrap_or(head).max(head);
            fed = Some((epoch, highest));
        }
    }
}

/// Per topic, its entries as read: `(seq, epoch, prev, frame)`.
type Batch = Vec<Vec<(u64, Vec<u8>, u64, Bytes)>>;

fn parse_batch(reply: Value, topics: &[Arc<str>], prefix: &str) -> Option<Batch> {
    let mut batch: Batch = vec![Vec::new(); topics.len()];
    let streams = match reply {
        Value::Nil => return Some(batch),
        Value::Array(streams) => streams,
        _ => return None,
    };
    for stream in streams {
        let Value::Array(pair) = stream else {
            return None;
        };
        let mut pair = pair.into_iter();
        let (key, entries) = (pair.next()?, pair.next()?);
        let topic = text(&key)?.strip_prefix(prefix)?;
        let index = topics.iter().position(|t| &**t == topic)?;
        let Value::Array(entries) = entries else {
            return None;
        };
        for entry in entries {
            let Value::Array(entry) = entry else {
                return None;
            };
            let mut entry = entry.into_iter();
            let seq = text(&entry.next()?)?
                .split_once('-')
                .and_then(|(seq, _)| seq.parse().ok())?;
            let Value::Array(fields) = entry.next()? else {
                return None;
            };
            let (mut epoch, mut prev, mut frame) = (None, None, None);
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                match text(&name)? {
                    "e" => epoch = Some(value),
                    "v" => prev = int(&value),
                    "f" => frame = Some(value),
                    _ => {}
                }
            }
            let (Some(Value::BulkString(epoch)), Some(Value::BulkString(frame))) = (epoch, frame)
            else {
                return None;
            };
            batch[index].push((seq, epoch, prev?, Bytes::from(frame)));
        }
    }
    Some(batch)
}

/// Hands a batch to the local rings in number order across topics; `false`, and nothing
/// delivered, when it holds entries of another epoch. With `inline`, the streams of idle
/// connections are polled here, in their tasks' places, once the batch is in.
fn deliver(
    live: &Live,
    epoch: &str,
    topics: &[Arc<str>],
    batch: Batch,
    count: usize,
    cursors: &mut HashMap<Arc<str>, u64>,
    inline: bool,
) -> bool {
    // A topic that returned a full batch may have more below the others' later entries:
    // deliver only up to the lowest such batch's last number, and read on from there.
    let watermark = batch
        .iter()
        .filter(|entries| entries.len() >= count)
        .filter_map(|entries| entries.last().map(|entry| entry.0))
        .min()
        .unwrap_or(u64::MAX);
    let mut entries = Vec::new();
    for (index, read) in batch.into_iter().enumerate() {
        let topic = &topics[index];
        let Some(first) = read.first() else { continue };
        let cursor = cursors.get(topic).copied().unwrap_or(0);
        if read.iter().any(|entry| entry.1 != epoch.as_bytes()) {
            return false;
        }
        if first.2 > cursor {
            // The topic's previous event is not one this loop fed: trimmed before it was
            // read (or the topic joined at a mark older than its history). A barrier ends
            // the streams that had not sent up to there; their clients resume, and the
            // replay fills the hole or reports the gap.
            tracing::debug!(topic = %topic, from = cursor, to = first.2, "redis tail loop: a topic's history starts above its cursor");
            // The hole is this topic's events in (cursor, first.2]: the barrier goes out
            // before anything numbered above the cursor, of any topic. Placed at its own
            // number, a stream of several topics would first send another topic's events
            // from inside the hole, and miss this one's there without a gap being seen.
            entries.push(Entry {
                seq: first.2,
                order: cursor,
                topic: index,
                frame: Bytes::new(),
            });
        }
        entries.extend(
            read.into_iter()
                .take_while(|entry| entry.0 <= watermark)
                .map(|(seq, _, _, frame)| Entry {
                    seq,
                    order: seq,
                    topic: index,
                    frame,
                }),
        );
    }
    // At an equal place an event goes first: a barrier's place is the number it follows.
    entries.sort_unstable_by_key(|entry| (entry.order, u8::from(entry.frame.is_empty())));
    // The subscribers are woken once the whole batch is in the rings: a stream then takes
    // all of its events in one poll, and one write.
    let mut woken = Vec::new();
    for entry in entries
        .into_iter()
        .take_while(|entry| entry.order <= watermark)
    {
        let topic = &topics[entry.topic];
        if let Some(cursor) = cursors.get_mut(topic) {
            *cursor = entry.seq;
        }
        let stored = Stored {
            seq: entry.seq,
            frame: entry.frame,
        };
        woken.extend(
            live.deliver_later(topic, stored, inline)
                .map(|(_, woken)| woken),
        );
    }
    drop(woken);
    true
}

/// Interrupts the tail's blocking read when a topic joins, so that the topic is read at once.
async fn unblock(shared: Arc<Shared>, live: Live) {
    loop {
        let joined = live.joined();
        let mut tries = 0;
        while shared.blocked.load(Ordering::Acquire)
            && shared.tail_generation.load(Ordering::Acquire) != live.generation()
            && tries < 20
        {
            let id = shared.tail_id.load(Ordering::Acquire);
            let unblocked: redis::RedisResult<i64> = redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .query_async(&mut shared.control.clone())
                .await;
            if matches!(unblocked, Ok(1)) || unblocked.is_err() {
                break;
            }
            // The read has not reached Redis yet: try again shortly.
            tries += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        joined.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tail_loop_polls_idle_streams_itself_and_every_event_arrives_once() {
        use tokio::io::AsyncWriteExt;

        use crate::connection::{COUNTING, INLINE_POLLS, Listener, read_until};
        use crate::{EventSourceResponse, LastEventId, ServerSentEvent, Shutdown};

        let Some(redis) = crate::testing::RedisServer::start() else {
            return;
        };
        let _counting = COUNTING.lock().await;
        let store = RedisStore::builder(redis.url())
            .hub("inline")
            .connect()
            .await
            .unwrap();
        let hub = crate::Hub::builder().store(store).build();
        let events = hub.clone();
        let app = axum::Router::new().route(
            "/events",
            axum::routing::get(move || {
                let hub = events.clone();
                async move { EventSourceResponse::new(hub.resume(["t"], LastEventId::None).await) }
            }),
        );
        let listener = Listener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            crate::serve(listener, app, &Shutdown::new())
                .http1_only()
                .into_future(),
        );
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            client
                .write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            clients.push((client, Vec::new()));
        }
        // Until the tail loop feeds the topic (it reads it from when it joined) and every
        // stream has written from its task once (the head went out through hyper).
        let publish = |n: u32| {
            let hub = hub.clone();
            async move {
                hub.publish("t", ServerSentEvent::new().data(n))
                    .await
                    .unwrap();
            }
        };
        publish(0).await;
        for (client, seen) in &mut clients {
            read_until(client, seen, "data: 0\r\n").await;
        }
        // Paced: each read of the tail loop waits for its entry, so it polls the idle
        // streams itself.
        let before = INLINE_POLLS.load(Ordering::Relaxed);
        for n in 1..=10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publish(n).await;
            for (client, seen) in &mut clients {
                read_until(client, seen, &format!("data: {n}\r\n")).await;
            }
        }
        let inline = INLINE_POLLS.load(Ordering::Relaxed) - before;
        assert!(
            inline >= 24,
            "only {inline} of 30 deliveries polled by the tail loop"
        );
        // A burst: reads find entries waiting, and tasks are woken.
        for n in 11..=200 {
            publish(n).await;
        }
        for (client, seen) in &mut clients {
            read_until(client, seen, "data: 200\r\n").await;
            let numbers: Vec<u32> = String::from_utf8_lossy(seen)
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..=200).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_topics_hole_goes_out_before_later_events_of_other_topics() {
        let live = Live::new(8);
        let topics: Vec<Arc<str>> = vec!["a".into(), "c".into()];
        let mut rings = live.subscribe(&topics, usize::MAX).unwrap();
        let mut cursors = HashMap::from([(topics[0].clone(), 74), (topics[1].clone(), 32)]);
        let frame = |n: u64| Bytes::from(format!("id: e:{n}\ndata: x\n\n"));
        // `a` was trimmed past its cursor before this read: its first entry is 144, whose
        // previous event is 143. `c` goes on at 75, whose previous is 32.
        let batch = vec![
            vec![(144, b"e".to_vec(), 143, frame(144))],
            vec![(75, b"e".to_vec(), 32, frame(75))],
        ];
        assert!(deliver(&live, "e", &topics, batch, 1, &mut cursors, false));
        // One entry per topic was read, so this round delivers up to the lower, 75. `a`'s
        // hole begins after 74: its barrier goes out now, before `c`'s 75, so that a stream
        // of both topics ends instead of sending 75 and more while `a`'s are missing.
        let barrier = rings[0].try_recv().expect("the barrier of `a`");
        assert!(barrier.is_barrier());
        assert_eq!(barrier.seq, 143);
        assert!(rings[0].try_recv().is_err(), "144 waits for the next round");
        assert_eq!(rings[1].try_recv().unwrap().seq, 75);
        assert_eq!((cursors[&topics[0]], cursors[&topics[1]]), (143, 75));
    }

    #[test]
    fn redis_below_7_is_refused_with_its_version_named() {
        let info = |version: &str| {
            format!("# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n")
        };
        for ok in ["7.0.15", "7.2.4", "8.0.0", "10.1.2"] {
            assert!(supported(&info(ok)).is_ok(), "{ok}");
        }
        for old in ["6.2.14", "5.0.7", "garbage", ""] {
            let error = supported(&info(old)).unwrap_err().to_string();
            assert!(
                error.contains(&format!("Redis {old} is too old")),
                "{error}"
            );
            assert!(error.contains("needs 7.0 or newer"), "{error}");
        }
        assert!(
            supported("# Server\r\n")
                .unwrap_err()
                .to_string()
                .contains("unknown")
        );
    }
}
