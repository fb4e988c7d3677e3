use sse_runtime::sse;

sse! {
    #[sse_endpoint(ping = 15)]
    #[sse_endpoint(send_timeout = 5)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
