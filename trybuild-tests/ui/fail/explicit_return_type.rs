use sse_runtime::{EventSourceResponse, sse};

sse! {
    async fn numbers() -> EventSourceResponse {
        yield 1;
    }
}

fn main() {}
