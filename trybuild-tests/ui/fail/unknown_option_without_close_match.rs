use sse_runtime::sse;

sse! {
    #[sse_endpoint(compression = true)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
