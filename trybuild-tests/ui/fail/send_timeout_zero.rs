use sse_runtime::sse;

sse! {
    #[sse_endpoint(send_timeout = 0)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
