use sse_runtime::sse;

sse! {
    #[sse_endpoint(headers("Connection" = "close", "x-a" = "1", "X-A" = "2"))]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
