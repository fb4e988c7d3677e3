//! Many processes, one stream: Redis and three real processes of the `cluster` example, with
//! clients that behave as browsers do (on an ended or failed stream they reconnect, to the
//! next node, with `Last-Event-ID`). Each test starts its own `redis-server`; without one on
//! `PATH` the tests skip with a message (CI sets `SSE_REQUIRE_REDIS`, which makes that a
//! failure).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use sse_runtime::resume::{EventId, RedisStore};
use sse_runtime::testing::RedisServer;
use tests::ExampleProcess;
use tokio::task::JoinHandle;

/// These tests start many processes: one at a time, so that a 2-core machine copes.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a whole scenario may take.
const SCENARIO: Duration = Duration::from_secs(90);

struct Cluster {
    redis: RedisServer,
    nodes: Vec<Option<ExampleProcess>>,
    /// The nodes' base URLs (kept after a node is killed: clients find it dead).
    urls: Vec<String>,
}

impl Cluster {
    async fn start(redis: RedisServer) -> Self {
        let url = redis.url();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(Some(
                ExampleProcess::start_with("cluster", &[("REDIS_URL", &url)]).await,
            ));
        }
        let urls = nodes.iter().flatten().map(|node| node.url("")).collect();
        Self { redis, nodes, urls }
    }

    fn kill_9(&mut self, node: usize) {
        let mut process = self.nodes[node].take().expect("running");
        process.child.start_kill().expect("SIGKILL");
    }
}

/// What a client saw: the events, in order, as `(id, data)`, and the resets.
#[derive(Default, Debug)]
struct Seen {
    events: Vec<(EventId, String)>,
    resets: Vec<String>,
    reconnects: usize,
}

/// A client following `topics`, starting on node `first` from `since` and reconnecting to the
/// next node whenever its stream ends or fails, until `done` says so (or the scenario's time
/// is up).
fn client(
    urls: Vec<String>,
    first: usize,
    topics: &[&str],
    since: Option<EventId>,
    done: impl Fn(&Seen) -> bool + Send + 'static,
) -> (Arc<Mutex<Seen>>, JoinHandle<()>) {
    let query: Vec<String> = topics
        .iter()
        .map(|topic| format!("topic={topic}"))
        .collect();
    let path = format!("/events?{}", query.join("&"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut last = since.map(|id| id.to_string());
        let deadline = tokio::time::Instant::now() + SCENARIO;
        let mut node = first;
        while !done(&sink.lock().unwrap()) && tokio::time::Instant::now() < deadline {
            let mut request = http.get(format!("{}{path}", urls[node % urls.len()]));
            if let Some(id) = &last {
                request = request.header("last-event-id", id);
            }
            if let Ok(response) = request.send().await
                && response.status() == 200
            {
                let mut body = response.bytes_stream();
                let mut buffer = Vec::new();
                'stream: while let Some(Ok(chunk)) = body.next().await {
                    buffer.extend_from_slice(&chunk);
                    while let Some(end) = find(&buffer, b"\r\n\r\n") {
                        let frame: Vec<u8> = buffer.drain(..end + 4).collect();
                        let mut seen = sink.lock().unwrap();
                        if let Some(id) = record(&mut seen, &frame) {
                            last = Some(id);
                        }
                        if done(&seen) {
                            break 'stream;
                        }
                    }
                }
            }
            if done(&sink.lock().unwrap()) {
                break;
            }
            // As a browser does after `retry:` (shortened): reconnect, here to the next node.
            sink.lock().unwrap().reconnects += 1;
            node += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, task)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Records one frame; returns its id, if it has one.
fn record(seen: &mut Seen, frame: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(frame).expect("UTF-8 frame");
    let (mut id, mut event, mut data) = (None, None, None);
    for line in text.split("\r\n") {
        if let Some(value) = line.strip_prefix("id: ") {
            id = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("event: ") {
            event = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(value.to_owned());
        }
    }
    let id = id?;
    if event.as_deref() == Some("reset") {
        seen.resets.push(data.unwrap_or_default());
    } else {
        let parsed = id.parse::<EventId>().expect("a hub id");
        seen.events.push((parsed, data.unwrap_or_default()));
    }
    Some(id)
}

/// Publishes `data` to `topic` on `node`: the event's id, or `None` when not answered 200.
async fn publish(http: &reqwest::Client, node: &str, topic: &str, data: String) -> Option<EventId> {
    let response = http
        .post(format!("{node}/publish/{topic}"))
        .body(data)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.text().await.ok()?.trim().parse().ok()
}

/// The head of the hub, read by publishing a marker.
async fn head(http: &reqwest::Client, node: &str) -> EventId {
    publish(http, node, "marker", "head".into())
        .await
        .expect("a node answers")
}

/// Waits for every client task, within the scenario's time.
async fn join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        tokio::time::timeout(SCENARIO + Duration::from_secs(10), task)
            .await
            .expect("a client finished")
            .expect("a client did not panic");
    }
}

/// A tiny xorshift for the scenarios' random choices (seeded, so a failure can be rerun).
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The events of `topics` in `published`, in number order.
fn expected(published: &[(&'static str, EventId)], topics: &[&str]) -> Vec<EventId> {
    let mut ids: Vec<EventId> = published
        .iter()
        .filter(|(topic, _)| topics.contains(topic))
        .map(|(_, id)| *id)
        .collect();
    ids.sort_by_key(EventId::seq);
    ids
}

fn ids(seen: &Seen) -> Vec<EventId> {
    seen.events.iter().map(|(id, _)| *id).collect()
}

const TOPICS: [&[&str]; 3] = [&["a"], &["b"], &["a", "b"]];

/// What was published, once publishing is done: what the clients wait for.
type Published = Arc<Mutex<Option<Vec<(&'static str, EventId)>>>>;

/// A client's topics, what it saw, and its task.
type Client = (&'static [&'static str], (Arc<Mutex<Seen>>, JoinHandle<()>));

/// Done once the client has as many events as were published to `topics`.
fn has_every(
    published: &Published,
    topics: &'static [&'static str],
) -> impl Fn(&Seen) -> bool + Send + 'static {
    let published = published.clone();
    move |seen: &Seen| {
        published
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|published| seen.events.len() >= expected(published, topics).len())
    }
}

/// Waits for every client; each one's topics and what it saw.
async fn finish(clients: Vec<Client>) -> Vec<(&'static [&'static str], Arc<Mutex<Seen>>)> {
    let mut tasks = Vec::new();
    let mut seens = Vec::new();
    for (topics, (seen, task)) in clients {
        tasks.push(task);
        seens.push((topics, seen));
    }
    join(tasks).await;
    seens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_clients_over_three_nodes_get_every_event_in_order_exactly_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cluster = Cluster::start(redis).await;
    let http = reqwest::Client::new();
    let since = head(&http, &cluster.urls[0]).await;
    const EVENTS: usize = 300;
    // Each client knows how many events of its topics to wait for once publishing is done.
    let total = Published::default();
    let mut clients = Vec::new();
    for n in 0..30 {
        let topics = TOPICS[n % 3];
        let want = has_every(&total, topics);
        clients.push((
            topics,
            client(cluster.urls.clone(), n % 3, topics, Some(since), want),
        ));
    }
    let mut random = Random(0x5eed_0001);
    let mut published = Vec::new();
    for i in 0..EVENTS {
        let topic = ["a", "b"][random.below(2)];
        let node = &cluster.urls[random.below(3)];
        let id = publish(&http, node, topic, format!("{topic}{i}"))
            .await
            .expect("published");
        published.push((topic, id));
    }
    *total.lock().unwrap() = Some(published.clone());
    // One tail connection per node, whatever the number of clients.
    let tails = cluster.redis.client_ids(RedisStore::TAIL_CONNECTION_NAME);
    assert_eq!(tails.len(), 3, "{tails:?}");
    for (topics, seen) in finish(clients).await {
        let seen = seen.lock().unwrap();
        assert!(seen.resets.is_empty(), "{:?}", seen.resets);
        assert_eq!(
            ids(&seen),
            expected(&published, topics),
            "client of {topics:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_node_mid_stream_its_clients_resume_on_another_with_no_gap() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut cluster = Cluster::start(redis).await;
    let http = reqwest::Client::new();
    let since = head(&http, &cluster.urls[1]).await;
    let total = Published::default();
    let mut clients = Vec::new();
    for n in 0..9 {
        let topics = TOPICS[n % 3];
        let want = has_every(&total, topics);
        // Every client starts on node 0, the one that dies.
        clients.push((
            topics,
            client(cluster.urls.clone(), 0, topics, Some(since), want),
        ));
    }
    let mut published = Vec::new();
    for i in 0..400 {
        if i == 150 {
            cluster.kill_9(0);
        }
        let topic = ["a", "b"][i % 2];
        // Publishes go to the nodes that live.
        let node = &cluster.urls[1 + i % 2];
        published.push((
            topic,
            publish(&http, node, topic, format!("{i}"))
                .await
                .expect("published"),
        ));
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    *total.lock().unwrap() = Some(published.clone());
    for (topics, seen) in finish(clients).await {
        let seen = seen.lock().unwrap();
        assert!(seen.reconnects >= 1, "the client's node died under it");
        assert!(seen.resets.is_empty(), "{:?}", seen.resets);
        assert_eq!(
            ids(&seen),
            expected(&published, topics),
            "client of {topics:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_with_aof_every_answered_publish_reaches_every_client() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(redis) = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    let mut cluster = Cluster::start(redis).await;
    let http = reqwest::Client::new();
    let since = head(&http, &cluster.urls[0]).await;
    let answered = Published::default();
    let mut clients = Vec::new();
    for n in 0..9 {
        let topics = TOPICS[n % 3];
        let answered = answered.clone();
        // Done once it has every answered event (it may also get some that were published
        // but whose answer was lost to the restart).
        let want = move |seen: &Seen| {
            answered.lock().unwrap().as_ref().is_some_and(|published| {
                let got = ids(seen);
                expected(published, topics)
                    .iter()
                    .all(|id| got.contains(id))
            })
        };
        clients.push((
            topics,
            client(cluster.urls.clone(), n % 3, topics, Some(since), want),
        ));
    }
    let mut published = Vec::new();
    let mut failed = 0;
    for i in 0..300 {
        if i == 100 {
            // While Redis is down a publish is a 503: the publisher knows it was not
            // published.
            cluster.redis.shutdown();
            let response = http
                .post(format!("{}/publish/a", cluster.urls[0]))
                .body("while down")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 503);
            cluster.redis.start_again();
        }
        let topic = ["a", "b"][i % 2];
        match publish(&http, &cluster.urls[i % 3], topic, format!("{i}")).await {
            Some(id) => published.push((topic, id)),
            None => failed += 1,
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(published.len() >= 250, "{failed} publishes failed");
    assert!(
        published
            .windows(2)
            .all(|w| w[0].1.epoch() == w[1].1.epoch()),
        "AOF keeps the history: one epoch"
    );
    *answered.lock().unwrap() = Some(published.clone());
    for (topics, seen) in finish(clients).await {
        let seen = seen.lock().unwrap();
        assert!(seen.resets.is_empty(), "{:?}", seen.resets);
        let got = ids(&seen);
        assert!(
            got.windows(2).all(|w| w[0].seq() < w[1].seq()),
            "in order, once each"
        );
        for id in expected(&published, topics) {
            assert!(got.contains(&id), "client of {topics:?} misses {id}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_of_the_tail_connections_loses_nothing_and_flushall_is_one_reset() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cluster = Cluster::start(redis).await;
    let http = reqwest::Client::new();
    let since = head(&http, &cluster.urls[0]).await;
    let count = Published::default();
    let mut clients = Vec::new();
    for n in 0..6 {
        let want = has_every(&count, &["a"]);
        clients.push((
            &["a"][..],
            client(cluster.urls.clone(), n % 3, &["a"], Some(since), want),
        ));
    }
    let mut published = Vec::new();
    for i in 0..200 {
        if i % 50 == 25 {
            let tails = cluster.redis.client_ids(RedisStore::TAIL_CONNECTION_NAME);
            assert!(!tails.is_empty(), "the nodes' tail connections are named");
            for id in &tails {
                cluster.redis.cli(&["CLIENT", "KILL", "ID", id]);
            }
        }
        let id = publish(&http, &cluster.urls[i % 3], "a", format!("{i}"))
            .await
            .expect("published");
        published.push(("a", id));
    }
    *count.lock().unwrap() = Some(published.clone());
    for (topics, seen) in finish(clients).await {
        let seen = seen.lock().unwrap();
        assert!(seen.resets.is_empty());
        assert_eq!(ids(&seen), expected(&published, topics));
    }

    // FLUSHALL: a new history. A client following live events gets exactly one reset when it
    // resumes, then the live events of the new history.
    let last = published.last().unwrap().1;
    let after_flush = Arc::new(Mutex::new(Vec::<EventId>::new()));
    let wanted = after_flush.clone();
    // Done once it has the newest event of the new history.
    let (seen, task) = client(cluster.urls.clone(), 1, &["a"], Some(last), move |seen| {
        let wanted = wanted.lock().unwrap();
        wanted
            .last()
            .is_some_and(|newest| ids(seen).contains(newest))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cluster.redis.cli(&["FLUSHALL"]), "OK");
    // Until a publish of the new history is answered, the nodes may not have seen the flush.
    let mut new = Vec::new();
    for i in 0..20 {
        new.push(
            publish(&http, &cluster.urls[i % 3], "a", format!("new{i}"))
                .await
                .expect("published"),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(new.iter().all(|id| id.epoch() != last.epoch()));
    *after_flush.lock().unwrap() = new.clone();
    join(vec![task]).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.resets, ["other-epoch"], "exactly one reset");
    let got = ids(&seen);
    assert!(
        got.windows(2)
            .all(|w| w[0].seq() < w[1].seq() || w[0].epoch() != w[1].epoch())
    );
    // Everything after the reset is of the new history, in order, with nothing of it missed
    // from the reset's head on.
    let new_events: Vec<EventId> = got
        .iter()
        .copied()
        .filter(|id| id.epoch() != last.epoch())
        .collect();
    let first = new_events[0];
    let tail: Vec<EventId> = new
        .iter()
        .copied()
        .filter(|id| id.seq() >= first.seq())
        .collect();
    assert_eq!(new_events, tail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_config_balances_three_nodes_and_streams_through() {
    let _one = ONE_AT_A_TIME.lock().await;
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os(sse_runtime::testing::REQUIRE_REDIS).is_none(),
            "nginx is not on PATH (install Debian's nginx-light)"
        );
        eprintln!("skipping: nginx is not on PATH");
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cluster = Cluster::start(redis).await;
    // The repository's config, with this test's ports.
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/cluster/nginx.conf"
    ))
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config.replace("listen 127.0.0.1:8080", &format!("listen 127.0.0.1:{port}"));
    for (n, url) in cluster.urls.iter().enumerate() {
        let addr = url.trim_start_matches("http://");
        config = config.replace(&format!("127.0.0.1:800{}", n + 1), addr);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
    let mut nginx = tokio::process::Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nginx");
    // SIGTERM, not SIGKILL, at the end: nginx's master then stops its worker too.
    let stop_nginx = Stop(nginx.id().expect("running"));
    let front = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(response) = http.get(format!("{front}/?topic=a")).send().await
                && response.status() == 200
            {
                return response.text().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("nginx serves the page");
    assert!(ready.contains("page served by node"));
    // The page's node varies: requests are balanced.
    let mut nodes = std::collections::HashSet::new();
    for _ in 0..12 {
        let page = http
            .get(format!("{front}/?topic=a"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let node = page
            .split("served by node <code>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned();
        nodes.insert(node);
    }
    assert!(nodes.len() >= 2, "one node served every page: {nodes:?}");
    // A stream through nginx gets events published through nginx, each as it comes.
    let since = head(&http, &front).await;
    let (seen, task) = client(vec![front.clone()], 0, &["a"], Some(since), |seen| {
        seen.events.len() >= 5
    });
    for i in 0..5 {
        publish(&http, &front, "a", format!("via nginx {i}"))
            .await
            .expect("published");
        // Each arrives while the stream stays open: nginx does not buffer it.
        tokio::time::timeout(Duration::from_secs(10), async {
            while seen.lock().unwrap().events.len() <= i {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the event was streamed through");
    }
    join(vec![task]).await;
    drop(stop_nginx);
    let _ = tokio::time::timeout(Duration::from_secs(10), nginx.wait()).await;
}

/// Sends SIGTERM to a process when dropped (also when a test fails).
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

/// Without `REDIS_URL` the example is one node on the in-memory hub, with the same API, and
/// it bounds what it accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_example_is_one_node_in_memory_and_bounds_its_input() {
    let node = ExampleProcess::start("cluster").await;
    node.log_line("no REDIS_URL: hub in memory").await;
    let url = node.url("");
    let http = reqwest::Client::new();
    let first = publish(&http, &url, "a", "one".into())
        .await
        .expect("published");
    let second = publish(&http, &url, "b", "two".into())
        .await
        .expect("published");
    assert_eq!(second.seq(), first.seq() + 1);
    // Resumes with the header, and with the query parameter.
    let mut resumed = tests::HttpStream::get(
        &node.url("/events?topic=a&topic=b"),
        &[("last-event-id", &EventId::new(first.epoch(), 0).to_string())],
    )
    .await;
    let both = format!("id: {first}\r\ndata: one\r\n\r\nid: {second}\r\ndata: two\r\n\r\n");
    assert!(resumed.until(&both).await.ends_with(&both));
    let mut by_query = tests::HttpStream::get(
        &node.url(&format!("/events?topic=b&last_event_id={first}")),
        &[],
    )
    .await;
    let two = format!("id: {second}\r\ndata: two\r\n\r\n");
    assert!(by_query.until(&two).await.ends_with(&two));
    // Hostile input: a clear 4xx, or the documented reset.
    let big = vec![b'x'; 100 * 1024 * 1024];
    let status = http
        .post(format!("{url}/publish/a"))
        .body(big)
        .send()
        .await
        .map(|response| response.status().as_u16());
    // Refused at 64 KiB: a 413, or the connection closed while the rest was still sent.
    assert!(matches!(status, Ok(413) | Err(_)), "{status:?}");
    let bad = http
        .post(format!("{url}/publish/a%0Ab"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let long = "t".repeat(10 * 1024);
    let bad = tests::HttpStream::get(&node.url(&format!("/events?topic={long}")), &[]).await;
    assert_eq!(bad.status, 400);
    let mut garbage = tests::HttpStream::get(
        &node.url("/events?topic=a"),
        &[("last-event-id", &"x".repeat(64 * 1024))],
    )
    .await;
    assert_eq!(garbage.status, 200);
    let reset = format!("id: {second}\r\nevent: reset\r\ndata: invalid\r\n\r\n");
    assert!(garbage.until(&reset).await.ends_with(&reset));
    assert!(node.child.id().is_some(), "still running");
    node.stop().await;
}

/// Hostile input against a node on Redis: a clear 4xx, or the documented reset; the node and
/// its Redis go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_a_redis_node_is_a_4xx_or_one_reset() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let node = ExampleProcess::start_with("cluster", &[("REDIS_URL", &redis.url())]).await;
    let url = node.url("");
    let http = reqwest::Client::new();
    let head = publish(&http, &url, "a", "x".into())
        .await
        .expect("published");
    let reset = format!("id: {head}\r\nevent: reset\r\ndata: invalid\r\n\r\n");
    // 64 KiB in the header (a URI cannot hold it), CR/LF and garbage in the query.
    let huge = "x".repeat(64 * 1024);
    let mut stream =
        tests::HttpStream::get(&node.url("/events?topic=a"), &[("last-event-id", &huge)]).await;
    assert_eq!(stream.status, 200);
    assert!(stream.until(&reset).await.ends_with(&reset));
    for cursor in [
        format!("{head}\r\ndata: injected"),
        "Ab:1:2".to_owned(),
        "%".to_owned(),
    ] {
        let query = format!(
            "/events?topic=a&last_event_id={}",
            form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
        );
        let mut stream = tests::HttpStream::get(&node.url(&query), &[]).await;
        assert_eq!(stream.status, 200);
        assert!(stream.until(&reset).await.ends_with(&reset));
    }
    let many = "topic=a&".repeat(1_000);
    let long = "t".repeat(10 * 1024);
    for path in [
        format!("/events?{many}"),
        format!("/events?topic={long}"),
        "/events?topic=%01".into(),
    ] {
        let response = tests::HttpStream::get(&node.url(&path), &[]).await;
        assert_eq!(response.status, 400, "{}", &path[..path.len().min(60)]);
    }
    let big = vec![b'x'; 100 * 1024 * 1024];
    let status = http.post(format!("{url}/publish/a")).body(big).send().await;
    assert!(
        matches!(
            status.as_ref().map(|r| r.status().as_u16()),
            Ok(413) | Err(_)
        ),
        "{status:?}"
    );
    // Redis holds nothing of it, and the node still publishes.
    let next = publish(&http, &url, "a", "after".into())
        .await
        .expect("published");
    assert_eq!(next.seq(), head.seq() + 1);
    assert_eq!(redis.cli(&["XLEN", "sse:{cluster}:t:a"]), "2");
}
