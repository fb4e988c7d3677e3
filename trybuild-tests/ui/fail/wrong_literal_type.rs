use sse_runtime::sse;

sse! {
    #[sse_endpoint(ping = true, sep = 10, cache_control = 0)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
