use sse_runtime::sse;

sse! {
    #[sse_endpoint(cache_control = "no-cache", headers("cache-control" = "public"))]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
