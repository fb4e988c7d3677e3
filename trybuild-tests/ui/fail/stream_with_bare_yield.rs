use sse_runtime::{sse, sse_endpoint};
use user_futures::Stream;

#[sse_endpoint]
async fn numbers() -> impl Stream<Item = u32> {
    yield 1;
    user_futures::stream::iter(2..=3)
}

sse! {
    async fn letters() -> impl Stream<Item = &'static str> {
        yield "a";
        user_futures::stream::iter(["b", "c"])
    }
}

fn main() {}
