use sse_runtime::sse_endpoint;

#[sse_endpoint(ping = 15)]
async fn numbers() {
    yield 1;
}

fn main() {}
