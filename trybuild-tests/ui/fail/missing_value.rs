use sse_runtime::sse;

sse! {
    #[sse_endpoint(ping, headers = "x-custom")]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
