use sse_runtime::sse_endpoint;
use user_futures::Stream;

#[sse_endpoint]
async fn numbers() -> impl Stream<Item = u32> + Clone {
    user_futures::stream::iter(1..=3)
}

fn main() {}
