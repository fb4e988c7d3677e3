use sse_runtime::sse_endpoint;
use user_futures::Stream;

#[sse_endpoint]
fn numbers() -> impl Stream<Item = u32> {
    user_futures::stream::iter(1..=3)
}

fn main() {}
