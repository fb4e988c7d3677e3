use sse_runtime::sse;

sse! {
    #[sse_endpoint(drain_on_shutdown = "no")]
    async fn report() {
        yield 1;
    }
}

fn main() {}
