use sse_runtime::sse;

sse! {
    #[sse_endpoint(status = 1000)]
    async fn numbers() {
        yield 1;
    }

    #[sse_endpoint(status = 20)]
    async fn letters() {
        yield "a";
    }
}

fn main() {}
