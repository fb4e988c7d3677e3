use sse_runtime::sse;

sse! {
    #[sse_endpoint(retry = 1.5)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
