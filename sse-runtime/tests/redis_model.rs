//! The model-based test of the resume guarantee (`tests/model`) across nodes: three hubs on
//! one real `redis-server` of this test's own stand for three server processes. Publishers
//! publish to random nodes; subscribers read, disconnect (mid-replay included), lag and
//! reconnect with their last id to a random node, and at the end resume on each node in turn.
//! What each received must be exactly the published sequence of its topics, or exactly one
//! reset where the history no longer held what it missed (issue: many server processes, one
//! stream, item 4: the same algorithm and gap policy as the in-memory hub).
//!
//! Each case has a hub name of its own in the one Redis of the test, so cases share no keys.
//! Without `redis-server` on `PATH` the test skips with a message (CI sets
//! `SSE_REQUIRE_REDIS`, which makes that a failure). 256 cases in the normal suite; for more:
//! `PROPTEST_CASES=1000 cargo test -p sse-runtime --release --test redis_model`.

mod model;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::test_runner::TestRunner;
use sse_runtime::Separator;
use sse_runtime::resume::{Hub, RedisStore};
use sse_runtime::testing::RedisServer;

#[test]
fn every_subscriber_on_any_node_gets_its_topics_exactly_or_one_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // proptest's default, as `resume_model.rs` has: 256 cases, or `PROPTEST_CASES`.
    let mut runner = TestRunner::default();
    let names = AtomicU64::new(0);
    let url = redis.url();
    let outcome = runner.run(&model::case(), |case| {
        let hub = format!("model{}", names.fetch_add(1, Ordering::Relaxed));
        model::run(case, |case| {
            let (url, history, capacity) = (url.clone(), case.history, case.capacity);
            async move {
                let mut nodes = Vec::new();
                for _ in 0..3 {
                    let store = RedisStore::builder(url.as_str())
                        .history(history)
                        .hub(hub.as_str())
                        .connect()
                        .await
                        .expect("connect to redis");
                    nodes.push(
                        Hub::builder()
                            .store(store)
                            .capacity(capacity)
                            .separator(Separator::Lf)
                            .build(),
                    );
                }
                nodes
            }
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
