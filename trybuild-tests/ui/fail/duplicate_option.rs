use sse_runtime::sse;

sse! {
    #[sse_endpoint(ping = 15, send_timeout = 5, ping = 30)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
