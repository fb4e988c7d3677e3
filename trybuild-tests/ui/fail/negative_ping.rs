use sse_runtime::sse;

sse! {
    #[sse_endpoint(ping = -1)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
