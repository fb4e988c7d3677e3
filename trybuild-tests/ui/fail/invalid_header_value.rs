use sse_runtime::sse;

sse! {
    #[sse_endpoint(headers("x-custom" = "line one\nline two"))]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
