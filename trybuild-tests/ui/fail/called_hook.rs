use sse_runtime::sse;

async fn cleanup() {}

sse! {
    #[sse_endpoint(background = cleanup())]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
