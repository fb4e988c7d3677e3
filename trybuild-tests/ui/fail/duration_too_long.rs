use sse_runtime::sse;

sse! {
    // 15 minutes meant, milliseconds written.
    #[sse_endpoint(send_timeout = 900000)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
