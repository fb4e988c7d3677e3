use sse_runtime::sse;

sse! {
    #[sse_endpoint(pign = 15)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
