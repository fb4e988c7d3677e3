use sse_runtime::sse;

sse! {
    #[sse_endpoint(ping = 1e999)]
    async fn numbers() {
        yield 1;
    }

    #[sse_endpoint(ping = f64::INFINITY)]
    async fn letters() {
        yield "a";
    }
}

fn main() {}
