use sse_runtime::sse;

sse! {
    #[sse_endpoint(headers("x custom" = "value"))]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
