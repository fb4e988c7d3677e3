use std::rc::Rc;

use sse_runtime::sse_endpoint;
use user_futures::{Stream, StreamExt};

#[sse_endpoint]
async fn numbers() -> impl Stream<Item = u32> {
    let shared = Rc::new(1);
    user_futures::stream::iter(1..=3).map(move |n| n + *shared)
}

fn main() {}
