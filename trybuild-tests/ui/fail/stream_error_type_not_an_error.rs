use sse_runtime::sse_endpoint;
use user_futures::Stream;

#[derive(Debug)]
struct FeedError;

#[sse_endpoint]
async fn numbers() -> impl Stream<Item = Result<u32, FeedError>> {
    user_futures::stream::iter(vec![Ok(1), Err(FeedError)])
}

fn main() {}
