use sse_runtime::sse;

sse! {
    #[sse_endpoint(on_close = |reason| println!("closed: {reason}"))]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
