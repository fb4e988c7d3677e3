use sse_runtime::sse_endpoint;
use user_futures::Stream;

struct Price {
    value: f64,
}

#[sse_endpoint]
async fn prices() -> impl Stream<Item = Price> {
    user_futures::stream::iter(vec![Price { value: 1.5 }])
}

fn main() {}
