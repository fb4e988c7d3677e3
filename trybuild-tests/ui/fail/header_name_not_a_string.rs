use sse_runtime::sse;

sse! {
    #[sse_endpoint(headers(x_custom = "value", "x-count" = 3))]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
