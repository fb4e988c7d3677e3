use sse_runtime::{EventSourceResponse, sse, sse_endpoint};

sse! {
    async fn numbers() -> EventSourceResponse {
        yield 1;
    }
}

#[sse_endpoint]
async fn letters() -> impl Iterator<Item = &'static str> {
    ["a", "b"].into_iter()
}

fn main() {}
