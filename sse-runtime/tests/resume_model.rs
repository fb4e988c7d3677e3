//! A model-based test of the resume guarantee (module `sse_runtime::resume`, "The guarantee"),
//! on the in-memory hub: the model of `tests/model` (random publishes on several topics from two
//! concurrent publishers, subscribers that read, disconnect mid-replay, lag and reconnect with
//! their last id) on one node.
//!
//! 256 cases in the normal suite; for many more:
//! `PROPTEST_CASES=20000 cargo test -p sse-runtime --release --test resume_model`.

mod model;

use proptest::prelude::*;
use sse_runtime::Separator;
use sse_runtime::resume::{Hub, MemoryStore};

proptest! {
    // proptest's default: 256 cases, or `PROPTEST_CASES`.
    #[test]
    fn every_subscriber_gets_its_topics_exactly_or_one_reset(case in model::case()) {
        model::run(case, |case| {
            let hub = Hub::builder()
                .store(MemoryStore::new(case.history))
                .capacity(case.capacity)
                .separator(Separator::Lf)
                .build();
            async move { vec![hub] }
        });
    }
}
