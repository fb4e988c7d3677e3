use sse_runtime::sse;

sse! {
    #[sse_endpoint(crate = sse_runtime)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
